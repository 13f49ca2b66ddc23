//! Talking to the cluster: connect, discover, plan, apply, prune, wait, and record releases.
//! Only this module holds a Kubernetes client; it reports progress through [`Reporter`].

mod apply;
mod connect;
mod delete;
mod flag;
mod foreign;
mod inventory;
mod lock;
pub mod normalize;
pub mod ownership;
mod parts;
mod plan;
mod preflight;
pub mod ray;
pub mod readiness;
mod resources;
mod retry;
mod unchanged;
mod usage;
mod wait;

use std::fmt;

pub use apply::{ApplyOptions, apply, prune, target};
pub use connect::{ConnectOptions, Target, connect};
pub use delete::{CrdUsage, Removal, RemovalOptions, confirm_removed, plan_removal, remove};
pub use flag::{Flag, Setter as FlagSetter, flag};
pub use inventory::{
    HISTORY, Inventory, InventoryObject, Phase, Release, delete_inventory, list_releases,
    read_inventory, write_inventory,
};
pub use kube::Client;
pub use lock::{Lock, acquire as lock};
pub use parts::{Endpoint, Operator, Parts, ServicePart, find_parts, release_parts};
pub use plan::{Action, Plan, PlannedObject, plan};
pub use preflight::{Need, Resolved, check_access, resolve, warn_ingress_classes};
pub use resources::Resources;
pub use usage::{ClusterUsage, PrometheusService, USAGE_TIMEOUT, UsageByCluster, ray_usage};
pub use wait::{WaitOptions, WaitTarget, health, wait_ready};

use crate::error::Problem;

/// The field manager of every write plane makes.
pub(crate) const MANAGER: &str = "plane";

/// Every write is a server-side apply by [`MANAGER`]; conflicts with other managers are forced,
/// so the bundle stays the source of truth (decided here, once).
fn apply_params() -> kube::api::PatchParams {
    kube::api::PatchParams::apply(MANAGER).force()
}

/// Something the cluster work wants the user to know, as it happens.
#[derive(Debug, Clone)]
pub enum Event {
    /// A stage begins, named with its verb: `applying kuberay`, `pruning`, `deleting workloads`.
    Stage { name: String, objects: usize },
    /// One object was written or deleted with this action.
    Done { subject: String, action: Action },
    /// Waiting on an object, with what it last said.
    Waiting { subject: String, status: String },
    /// An object became ready.
    Ready {
        subject: String,
        ready: usize,
        total: usize,
    },
    /// Something worth a line that is not an error.
    Note(String),
}

/// Receives progress; the terminal layer implements it (indicatif or plain lines).
pub trait Reporter: Send + Sync {
    fn report(&self, event: Event);
}

/// A reporter that drops everything, for callers that show no progress.
pub struct Silent;

impl Reporter for Silent {
    fn report(&self, _event: Event) {}
}

/// A failure talking to the cluster, naming the object and the server's reason.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    #[error("{what}")]
    Api {
        what: String,
        subject: Option<String>,
        reason: String,
        code: Option<u16>,
        hint: Option<String>,
    },
    #[error("cannot connect: {reason}")]
    Connect {
        reason: String,
        hint: Option<String>,
    },
    #[error("timed out")]
    Timeout { waiting: Vec<(String, String)> },
    #[error("{subject} failed: {reason}")]
    NotReady { subject: String, reason: String },
    #[error("{} permission(s) missing", denials.len())]
    Denied { denials: Vec<String> },
    #[error("the cluster does not serve {} kind(s)", missing.len())]
    MissingKinds { missing: Vec<String> },
    #[error("release {release} is locked")]
    LockHeld {
        release: String,
        holder: String,
        since: String,
        waited: bool,
    },
    #[error("the lock of release {release} was lost")]
    LockLost { release: String },
    #[error("{} object(s) of release {release} still exist", subjects.len())]
    Remaining {
        release: String,
        subjects: Vec<String>,
    },
}

impl KubeError {
    /// Builds an API error for an action on an object from a kube-rs error.
    ///
    /// Every call goes through [`retry::retry`], so a transient error that arrives here has
    /// outlasted every attempt; the message says so.
    pub fn api(what: impl Into<String>, subject: Option<&str>, err: &kube::Error) -> Self {
        let hint_for = |code: u16| match code {
            401 => {
                Some("the credentials were refused: check the kubeconfig user or refresh the token")
            }
            403 => Some("the credentials lack permission for this; ask a cluster admin for RBAC"),
            429 | 500..=504 => Some("the API server is overloaded or failing; try again later"),
            _ => None,
        };
        let (mut reason, code, hint) = match err {
            kube::Error::Api(status) => (
                format!("{} ({} {})", status.message, status.code, status.reason),
                Some(status.code),
                hint_for(status.code),
            ),
            other if timed_out(other) => (
                "the API server did not answer within the request timeout".to_owned(),
                None,
                Some("check the API server's health, or allow more time with --request-timeout"),
            ),
            other if unreachable(other) => (
                format!(
                    "cannot connect to the API server: {}",
                    crate::error::innermost(other)
                ),
                None,
                Some(
                    "check that the cluster is reachable from here (VPN, proxy, firewall) and \
                     that the kubeconfig context points at it",
                ),
            ),
            other => (error_chain(other), None, None),
        };
        if retry::is_transient(err) {
            reason.push_str(&format!(
                " (still failing after {} attempts)",
                retry::ATTEMPTS
            ));
        }
        let hint = hint.map(str::to_owned);
        Self::Api {
            what: what.into(),
            subject: subject.map(str::to_owned),
            reason,
            code,
            hint,
        }
    }

    /// The HTTP status code the server answered with, if any.
    pub fn code(&self) -> Option<u16> {
        match self {
            Self::Api { code, .. } => *code,
            _ => None,
        }
    }

    pub fn to_problem(&self) -> Problem {
        match self {
            Self::Api {
                what,
                subject,
                reason,
                hint,
                ..
            } => {
                let mut problem = Problem::new(what.clone())
                    .because(reason.clone())
                    .maybe_hint(hint.clone());
                if let Some(subject) = subject {
                    problem = problem.at(subject.clone());
                }
                problem
            }
            Self::Connect { reason, hint } => Problem::new("cannot connect to the cluster")
                .because(reason.clone())
                .maybe_hint(hint.clone()),
            Self::Timeout { waiting } => {
                let mut problem = Problem::new(format!(
                    "timed out waiting for {} object(s) to become ready",
                    waiting.len()
                ));
                for (subject, status) in waiting {
                    problem = problem.because(format!("{subject}: {status}"));
                }
                problem.hint("raise --timeout, or look at the objects above with kubectl describe")
            }
            Self::NotReady { subject, reason } => Problem::new(format!("{subject} failed"))
                .at(subject.clone())
                .because(reason.clone()),
            Self::Denied { denials } => {
                let mut problem = Problem::new(format!(
                    "the current credentials lack {} permission(s) this run needs; nothing was changed",
                    denials.len()
                ));
                for denial in denials {
                    problem = problem.because(format!("cannot {denial}"));
                }
                problem.hint("ask a cluster admin for these RBAC rules, or run with credentials that have them")
            }
            Self::MissingKinds { missing } => {
                let mut problem = Problem::new(
                    "the cluster does not serve kinds this bundle renders; nothing was changed",
                );
                for kind in missing {
                    problem = problem.because(kind.clone());
                }
                problem.hint("install the CRDs that define them first, or turn off the components that render them")
            }
            Self::LockHeld {
                release,
                holder,
                since,
                waited,
            } => {
                let problem = Problem::new(format!("release {release} is locked by another run"))
                    .at(format!("Lease plane-lock-{release}"))
                    .because(format!("held by {holder} since {since}"));
                if *waited {
                    problem
                        .because("the wait for it ran out")
                        .hint("try again later, or wait longer with --wait-for-lock=DURATION")
                } else {
                    problem.hint(
                        "wait for it with --wait-for-lock[=DURATION]; a crashed run's lock expires 30s after its last renewal",
                    )
                }
            }
            Self::LockLost { release } => Problem::new(format!(
                "lost the lock of release {release}; stopped before starting more writes"
            ))
            .at(format!("Lease plane-lock-{release}"))
            .because("it could not be renewed in time, or another run took it over")
            .hint("see who holds it and the release's state with `plane ls`, then run again"),
            Self::Remaining { release, subjects } => {
                let mut problem = Problem::new(format!(
                    "{} object(s) of release {release} still exist after deletion; its record is kept",
                    subjects.len()
                ));
                for subject in subjects {
                    problem = problem.because(format!("{subject} was not deleted"));
                }
                problem.hint("run `plane down` again; `plane ls` still shows the release")
            }
        }
    }
}

/// Whether a request failed because `--request-timeout` passed without an answer.
fn timed_out(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Service(inner) if inner.is::<tower::timeout::error::Elapsed>())
}

/// Whether a request failed before reaching the server: refused, unresolvable, unroutable.
fn unreachable(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Service(_) | kube::Error::HyperError(_))
        && error_chain(err).contains("client error (Connect)")
}

/// Every message of an error's source chain, joined.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        let message = inner.to_string();
        if !text.contains(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        source = inner.source();
    }
    text
}

/// The subject of an object reference.
pub fn subject(kind: &str, namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{kind}/{ns}/{name}"),
        None => format!("{kind}/{name}"),
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
