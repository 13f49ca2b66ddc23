//! The release lock (DESIGN §8): a Lease per release, taken by `up` and `down`, renewed while
//! they run, released on exit, and expiring after a crash.
//!
//! The Lease is written with create and update, not server-side apply: a lock needs
//! compare-and-swap (create fails if it exists, update fails on a stale resourceVersion).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, PostParams, Preconditions};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::bundle::objects::MANAGED_BY;
use crate::kube::client::Cluster;
use crate::kube::client::retry::retry;
use crate::kube::error::KubeError;
use crate::kube::object::FIELD_MANAGER;
use crate::kube::progress::{Event, Reporter};
use crate::kube::release::latch::{Latch, latch};
use crate::kube::release::state;

/// How long a lock lives without renewal.
const LEASE_SECONDS: i32 = 30;
/// How often a held lock is renewed.
const RENEW_EVERY: Duration = Duration::from_secs(10);
/// A holder that could not renew for this long gives up before its Lease can expire under it.
#[allow(clippy::cast_sign_loss, reason = "a positive constant")]
const GIVE_UP_AFTER: Duration = Duration::from_secs(LEASE_SECONDS as u64 - 10);
const HOST: &str = "plane.datalayer.io/host";
const PID: &str = "plane.datalayer.io/pid";

/// A held lock; call [`Lock::release`] when done (a crash lets it expire instead).
pub struct Lock {
    api: Api<Lease>,
    name: String,
    identity: String,
    version: Version,
    stop: watch::Sender<bool>,
    renewer: JoinHandle<()>,
    /// Set once the lock is lost: another run took it over, it was deleted, or it could not be
    /// renewed in time.
    lost: Latch,
}

/// What one renewal found.
#[derive(Debug, PartialEq, Eq)]
enum Renewal {
    Renewed,
    /// The API did not answer or refused; try again next round.
    Failed,
    /// Someone else holds the Lease, or it is gone.
    Lost,
}

/// Who this process is, for the Lease and for messages.
fn identity() -> (String, String, u32) {
    let host = hostname();
    let pid = std::process::id();
    let mut nonce = [0u8; 4];
    let _ = getrandom::fill(&mut nonce);
    let nonce = u32::from_le_bytes(nonce);
    let nonce = format!("{nonce:08x}");
    (format!("{} pid {pid} ({nonce})", user_at_host()), host, pid)
}

/// Who runs plane: `user@host`, for the lock and the release's record.
pub fn user_at_host() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".into());
    format!("{user}@{}", hostname())
}

/// This machine's host name.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown".into())
}

/// Whether a lease's holder is gone: its lease expired, or it ran on this host under a process
/// that no longer exists (a crashed or killed run need not make the next one wait).
fn is_stale(lease: &Lease, now: Timestamp) -> bool {
    let spec = lease.spec.clone().unwrap_or_default();
    let Some(renewed) = spec.renew_time.or(spec.acquire_time) else {
        return true;
    };
    let duration = i64::from(spec.lease_duration_seconds.unwrap_or(LEASE_SECONDS));
    if renewed.0.as_second() + duration < now.as_second() {
        return true;
    }
    let annotations = lease.metadata.annotations.clone().unwrap_or_default();
    let same_host = annotations.get(HOST).is_some_and(|h| *h == hostname());
    let pid = annotations.get(PID).and_then(|p| p.parse::<u32>().ok());
    same_host && pid.is_some_and(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists())
}

fn lease_body(
    name: &str,
    identity: &str,
    host: &str,
    pid: u32,
    transitions: i32,
    now: Timestamp,
) -> Lease {
    Lease {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some([(MANAGED_BY.to_owned(), FIELD_MANAGER.to_owned())].into()),
            annotations: Some(
                [
                    (HOST.to_owned(), host.to_owned()),
                    (PID.to_owned(), pid.to_string()),
                ]
                .into(),
            ),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(identity.to_owned()),
            lease_duration_seconds: Some(LEASE_SECONDS),
            acquire_time: Some(MicroTime(now)),
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }),
    }
}

impl Lock {
    /// Whether a run holds the release's lock now (a stale lease holds nothing). One GET; no
    /// lock is taken.
    ///
    /// # Errors
    /// The read failing or refused.
    pub async fn is_held(
        cluster: &Cluster,
        namespace: &str,
        release: &str,
    ) -> Result<bool, KubeError> {
        let found = cluster.get(&lock_ref(namespace, release)).await?;
        let lease = found.map(serde_json::from_value::<Lease>).transpose();
        let lease = lease.map_err(|err| KubeError::Local {
            what: "cannot read the release lock".into(),
            subject: Some(lock_ref(namespace, release).subject()),
            reason: err.to_string(),
            hint: None,
        })?;
        Ok(lease.is_some_and(|lease| !is_stale(&lease, Timestamp::now())))
    }

    /// Takes the release's lock, waiting up to `wait` for another holder to let go.
    ///
    /// # Errors
    /// [`KubeError::LockHeld`] naming the holder, its host and since when; API failures.
    pub async fn acquire(
        client: &kube::Client,
        namespace: &str,
        release: &str,
        wait: Option<Duration>,
        reporter: &dyn Reporter,
    ) -> Result<Self, KubeError> {
        take(client, namespace, release, wait, reporter).await
    }
}

/// The release's lock, as plane reads it ahead with everything else.
pub fn lock_ref(namespace: &str, release: &str) -> crate::bundle::ObjectRef {
    crate::bundle::ObjectRef {
        api_version: "coordination.k8s.io/v1".into(),
        kind: "Lease".into(),
        namespace: Some(namespace.to_owned()),
        name: state::lock_name(release),
    }
}

async fn take(
    client: &kube::Client,
    namespace: &str,
    release: &str,
    wait: Option<Duration>,
    reporter: &dyn Reporter,
) -> Result<Lock, KubeError> {
    let api: Api<Lease> = Api::namespaced(client.clone(), namespace);
    let name = state::lock_name(release);
    let subject = crate::kube::object::subject("Lease", Some(namespace), &name);
    let (identity, host, pid) = identity();
    let deadline = wait.map(|w| tokio::time::Instant::now() + w);
    let mut told = false;
    let mut transient_failures = 0;
    // Most runs find no lock: try to create it first, and read it only when that conflicts.
    let mut look = false;
    let version: Version = Arc::new(Mutex::new(None));
    loop {
        let now = Timestamp::now();
        let existing = if look {
            retry(|| api.get_opt(&name)).await.map_err(|err| {
                KubeError::api("cannot read the release lock", Some(&subject), &err)
            })?
        } else {
            look = true;
            None
        };
        let attempt = match &existing {
            None => {
                let body = lease_body(&name, &identity, &host, pid, 0, now);
                match api.create(&PostParams::default(), &body).await {
                    Err(kube::Error::Api(status)) if status.code == 404 => {
                        state::ensure_namespace(client, namespace).await?;
                        continue;
                    }
                    other => other,
                }
            }
            Some(lease) if is_stale(lease, now) => {
                if let Some(holder) = lease.spec.as_ref().and_then(|s| s.holder_identity.clone()) {
                    reporter.report(Event::Note(format!(
                        "taking over the lock of {holder}, which is no longer running"
                    )));
                }
                let transitions = lease
                    .spec
                    .as_ref()
                    .and_then(|s| s.lease_transitions)
                    .unwrap_or(0)
                    + 1;
                let mut body = lease_body(&name, &identity, &host, pid, transitions, now);
                body.metadata
                    .resource_version
                    .clone_from(&lease.metadata.resource_version);
                api.replace(&name, &PostParams::default(), &body).await
            }
            Some(lease) => {
                let spec = lease.spec.clone().unwrap_or_default();
                let holder = spec.holder_identity.unwrap_or_else(|| "someone".into());
                let since = spec.acquire_time.map_or_else(
                    || "an unknown time".into(),
                    |t| {
                        t.0.round(jiff::Unit::Second)
                            .map(|t| t.to_string())
                            .unwrap_or_default()
                    },
                );
                match deadline {
                    Some(deadline) if tokio::time::Instant::now() < deadline => {
                        if !told {
                            reporter.report(Event::Note(format!(
                                "waiting for the lock held by {holder} since {since}"
                            )));
                            told = true;
                        }
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                    _ => {
                        return Err(KubeError::LockHeld {
                            release: release.to_owned(),
                            holder,
                            since,
                            waited: wait.is_some(),
                        });
                    }
                }
            }
        };
        match attempt {
            Ok(lease) => {
                set_version(&version, &lease);
                break;
            }
            // Someone else won the race (or a retried create already succeeded): look again.
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(err)
                if crate::kube::client::retry::is_transient(&err)
                    && transient_failures + 1 < crate::kube::client::retry::ATTEMPTS =>
            {
                transient_failures += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(err) => {
                return Err(KubeError::api(
                    "cannot take the release lock",
                    Some(&subject),
                    &err,
                ));
            }
        }
    }
    let (stop, mut stopped) = watch::channel(false);
    let (lost_setter, lost) = latch();
    let renew_api = api.clone();
    let renew_name = name.clone();
    let renew_identity = identity.clone();
    let renew_version = version.clone();
    let renewer = tokio::spawn(async move {
        let mut renewed_at = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = stopped.changed() => return,
                () = tokio::time::sleep(RENEW_EVERY) => {}
            }
            // A renewal that hangs must not outlast the Lease: it counts as failed.
            let renewal = tokio::time::timeout(
                RENEW_EVERY,
                renew(&renew_api, &renew_name, &renew_identity, &renew_version),
            )
            .await
            .unwrap_or(Renewal::Failed);
            match renewal {
                Renewal::Renewed => renewed_at = tokio::time::Instant::now(),
                Renewal::Failed if renewed_at.elapsed() < GIVE_UP_AFTER => {}
                Renewal::Failed | Renewal::Lost => {
                    lost_setter.set();
                    return;
                }
            }
        }
    });
    Ok(Lock {
        api,
        name,
        identity,
        version,
        stop,
        renewer,
        lost,
    })
}

/// The resourceVersion of the Lease as this process last wrote it.
type Version = Arc<Mutex<Option<String>>>;

fn set_version(version: &Version, lease: &Lease) {
    version
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone_from(&lease.metadata.resource_version);
}

/// Renews the Lease if this process still holds it.
async fn renew(api: &Api<Lease>, name: &str, identity: &str, version: &Version) -> Renewal {
    let mut lease = match api.get_opt(name).await {
        Ok(Some(lease)) => lease,
        Ok(None) => return Renewal::Lost,
        Err(_) => return Renewal::Failed,
    };
    let Some(spec) = lease.spec.as_mut() else {
        return Renewal::Lost;
    };
    if spec.holder_identity.as_deref() != Some(identity) {
        return Renewal::Lost;
    }
    spec.renew_time = Some(MicroTime(Timestamp::now()));
    match api.replace(name, &PostParams::default(), &lease).await {
        Ok(renewed) => {
            set_version(version, &renewed);
            Renewal::Renewed
        }
        Err(_) => Renewal::Failed,
    }
}

impl Lock {
    /// A flag set if this lock is lost while held.
    pub fn loss(&self) -> Latch {
        self.lost.clone()
    }

    /// Stops renewing and deletes the Lease if this process still holds it: at once when it is
    /// as this process last wrote it, else after reading it again.
    pub async fn release(self) {
        let _ = self.stop.send(true);
        let _ = self.renewer.await;
        let written = self
            .version
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if written.is_some() {
            let params = DeleteParams {
                preconditions: Some(Preconditions {
                    resource_version: written,
                    uid: None,
                }),
                ..DeleteParams::default()
            };
            match retry(|| self.api.delete(&self.name, &params)).await {
                // Changed since (or already gone): read it before deleting anything.
                Err(kube::Error::Api(status)) if status.code == 409 => {}
                _ => return,
            }
        }
        if let Ok(Some(lease)) = retry(|| self.api.get_opt(&self.name)).await
            && lease
                .spec
                .as_ref()
                .and_then(|s| s.holder_identity.as_deref())
                == Some(self.identity.as_str())
        {
            let params = DeleteParams {
                preconditions: Some(Preconditions {
                    resource_version: lease.metadata.resource_version.clone(),
                    uid: None,
                }),
                ..DeleteParams::default()
            };
            let _ = retry(|| self.api.delete(&self.name, &params)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(renewed_seconds_ago: i64, host: &str, pid: u32) -> Lease {
        let now = Timestamp::now();
        let then = Timestamp::from_second(now.as_second() - renewed_seconds_ago).unwrap();
        let mut lease = lease_body("l", "someone", host, pid, 0, then);
        lease.spec.as_mut().unwrap().acquire_time = Some(MicroTime(then));
        lease
    }

    #[test]
    fn a_lock_is_stale_when_expired_or_its_local_holder_is_gone() {
        let now = Timestamp::now();
        assert!(is_stale(&lease(120, "elsewhere", 1), now), "expired");
        assert!(
            !is_stale(&lease(5, "elsewhere", 1), now),
            "fresh, held elsewhere"
        );
        assert!(
            !is_stale(&lease(5, &hostname(), std::process::id()), now),
            "held by a live local process"
        );
        assert!(
            is_stale(&lease(5, &hostname(), u32::MAX - 7), now),
            "held by a dead local process"
        );
    }
}
