//! Waiting for readiness (DESIGN §7): one watch per object, a deadline for all, fail fast on
//! terminal states, and on timeout every laggard with its last status.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::{StreamExt, stream};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::Value;
use tokio::time::Instant;

use super::readiness::{self, Readiness};
use super::resources::Resources;
use super::retry::retry;
use super::{Event, KubeError, Reporter, subject};

/// An object to wait for.
#[derive(Debug, Clone)]
pub struct WaitTarget {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    /// A label selector for the object's pods, whose container states reveal failures
    /// (ImagePullBackOff, CrashLoopBackOff) that the object's own status does not show.
    pub pods: Option<String>,
}

impl WaitTarget {
    pub fn subject(&self) -> String {
        subject(&self.kind, self.namespace.as_deref(), &self.name)
    }
}

/// How long to wait.
#[derive(Debug, Clone, Copy)]
pub struct WaitOptions {
    pub deadline: Instant,
}

impl WaitOptions {
    pub fn within(timeout: Duration) -> Self {
        Self {
            deadline: Instant::now() + timeout,
        }
    }
}

/// Waits until every target with a readiness rule is ready.
///
/// # Errors
/// The first object that fails for good (naming it and its reason), or a timeout listing every
/// object not ready with its last observed status.
pub async fn wait_ready(
    resources: &Resources,
    targets: &[WaitTarget],
    options: WaitOptions,
    reporter: &dyn Reporter,
) -> Result<(), KubeError> {
    let targets: Vec<&WaitTarget> = targets
        .iter()
        .filter(|t| readiness::has_rule(&t.kind))
        .collect();
    if targets.is_empty() {
        return Ok(());
    }
    let total = targets.len();
    let mut last: BTreeMap<String, String> = targets
        .iter()
        .map(|t| (t.subject(), "not observed yet".to_owned()))
        .collect();
    let mut streams = Vec::new();
    for target in &targets {
        let Some(served) = resources
            .find(&target.api_version, &target.kind, false)
            .await?
        else {
            last.insert(target.subject(), "its kind is not served".into());
            continue;
        };
        let api = resources.api(&served, target.namespace.as_deref());
        let config = watcher::Config::default().fields(&format!("metadata.name={}", target.name));
        let subject = target.subject();
        streams.push(
            watcher(api, config)
                .default_backoff()
                .map(move |event| (subject.clone(), event))
                .boxed(),
        );
        if let (Some(selector), Some(namespace)) = (&target.pods, &target.namespace)
            && let Some(pods) = resources.find("v1", "Pod", false).await?
        {
            let api = resources.api(&pods, Some(namespace));
            let subject = target.subject();
            streams.push(
                watcher(api, watcher::Config::default().labels(selector))
                    .default_backoff()
                    .map(move |event| (subject.clone(), event))
                    .boxed(),
            );
        }
    }
    let mut merged = stream::select_all(streams);
    let mut ready = 0;
    loop {
        let next = tokio::time::timeout_at(options.deadline, merged.next()).await;
        let Ok(Some((subject, event))) = next else {
            let waiting: Vec<(String, String)> =
                last.into_iter().filter(|(_, s)| s != "ready").collect();
            return Err(KubeError::Timeout { waiting });
        };
        let object = match event {
            Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => o,
            Ok(watcher::Event::Delete(_)) => {
                last.insert(subject.clone(), "deleted".into());
                continue;
            }
            Ok(_) => continue,
            Err(err) => {
                // The watcher retries on its own; remember why for a timeout report.
                last.insert(subject.clone(), format!("watch error: {err}"));
                continue;
            }
        };
        let value = serde_json::to_value(&object).unwrap_or(Value::Null);
        if value["kind"] == "Pod" {
            // A pod of the target: only a terminal container state matters.
            if let Some(reason) = readiness::pod_failure(&value) {
                return Err(KubeError::NotReady { subject, reason });
            }
            continue;
        }
        let was_ready = last.get(&subject).is_some_and(|s| s == "ready");
        match readiness::evaluate(&value) {
            Readiness::Ready => {
                if !was_ready {
                    ready += 1;
                    last.insert(subject.clone(), "ready".into());
                    reporter.report(Event::Ready {
                        subject,
                        ready,
                        total,
                    });
                }
                if ready == total {
                    return Ok(());
                }
            }
            Readiness::Failed(reason) => return Err(KubeError::NotReady { subject, reason }),
            Readiness::Progressing(status) => {
                if was_ready {
                    ready -= 1;
                }
                if last.get(&subject) != Some(&status) {
                    reporter.report(Event::Waiting {
                        subject: subject.clone(),
                        status: status.clone(),
                    });
                }
                last.insert(subject, status);
            }
        }
    }
}

/// Live health of a set of objects: (ready, total, first object not ready with its status).
/// Reads up to 16 objects at once.
///
/// # Errors
/// Discovery or read failures.
pub async fn health(
    resources: &Resources,
    targets: &[WaitTarget],
) -> Result<(usize, usize, Option<String>), KubeError> {
    let statuses: Vec<Result<(String, Readiness), KubeError>> = stream::iter(targets)
        .map(|target| observe(resources, target))
        .buffered(16)
        .collect()
        .await;
    let mut ready = 0;
    let mut first_failing = None;
    for status in statuses {
        match status? {
            (_, Readiness::Ready) => ready += 1,
            (subject, Readiness::Progressing(why) | Readiness::Failed(why)) => {
                if first_failing.is_none() {
                    first_failing = Some(format!("{subject}: {why}"));
                }
            }
        }
    }
    Ok((ready, targets.len(), first_failing))
}

/// One object's readiness, read once.
async fn observe(
    resources: &Resources,
    target: &WaitTarget,
) -> Result<(String, Readiness), KubeError> {
    let subject = target.subject();
    let Some(served) = resources
        .find(&target.api_version, &target.kind, false)
        .await?
    else {
        return Ok((subject, Readiness::Failed("its kind is not served".into())));
    };
    let api = resources.api(&served, target.namespace.as_deref());
    let status = match retry(|| api.get_opt(&target.name)).await {
        Ok(Some(object)) => {
            readiness::evaluate(&serde_json::to_value(object).unwrap_or(Value::Null))
        }
        Ok(None) => Readiness::Failed("missing".into()),
        Err(err) => return Err(KubeError::api("cannot read object", Some(&subject), &err)),
    };
    Ok((subject, status))
}
