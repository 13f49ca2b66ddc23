//! Waiting for readiness (DESIGN §7): one watch per kind and namespace, a deadline for all, fail
//! fast on terminal states, and on timeout every laggard with its last status.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt, stream};
use kube::api::ListParams;
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::Value;
use tokio::time::Instant;

use crate::bundle::objects::RELEASE_LABEL;
use crate::bundle::{Declared, ObjectKey, ObjectRef};
use crate::kube::client::Cluster;
use crate::kube::client::discovery::ServedKind;
use crate::kube::client::read::Listing;
use crate::kube::client::{LISTS_IN_FLIGHT, READS_IN_FLIGHT};
use crate::kube::error::KubeError;
use crate::kube::object::readiness::{self, Readiness};
use crate::kube::progress::{Event, Reporter};
use crate::kube::release::drift::Applied;
use crate::kube::release::inventory::Release;

/// An object to wait for.
#[derive(Debug, Clone)]
pub struct WaitTarget {
    pub id: ObjectRef,
    /// A label selector for the object's pods, whose container states reveal failures
    /// (ImagePullBackOff, CrashLoopBackOff) that the object's own status does not show.
    pub pods: Option<String>,
}

/// When waiting ends.
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
    cluster: &Cluster,
    targets: &[WaitTarget],
    declared: &Declared,
    options: WaitOptions,
    reporter: &dyn Reporter,
) -> Result<(), KubeError> {
    let targets: Vec<&WaitTarget> = targets
        .iter()
        .filter(|t| readiness::has_rule(&t.id.api_version, &t.id.kind, declared))
        .collect();
    if targets.is_empty() {
        return Ok(());
    }
    let total = targets.len();
    let mut last: BTreeMap<String, String> = targets
        .iter()
        .map(|t| (t.id.subject(), "not observed yet".to_owned()))
        .collect();
    let mut streams = Vec::new();
    // One watch per kind and namespace (by plane's release label; by name when it holds one
    // target), however many objects of it the stage applied.
    let watches = by_kind_and_namespace(targets.iter().map(|t| &t.id));
    for ((api_version, kind, namespace), ids) in &watches {
        let Some(served) = cluster.find(api_version, kind).await? else {
            for id in ids {
                last.insert(id.subject(), "its kind is not served".into());
            }
            continue;
        };
        let api = cluster.api(&served, namespace.as_deref());
        let config = match ids.as_slice() {
            [one] => watcher::Config::default().fields(&format!("metadata.name={}", one.name)),
            _ => watcher::Config::default().labels(RELEASE_LABEL),
        };
        // A watch error names no object: it is told of each target of the watch.
        let scope = crate::kube::object::subject(kind, namespace.as_deref(), "");
        streams.push(
            observed(api, config, served, None, Watched::Object)
                .map(move |mut observation| {
                    if observation.event.is_err() {
                        observation.subject.clone_from(&scope);
                    }
                    observation
                })
                .boxed(),
        );
    }
    for target in &targets {
        if let (Some(selector), Some(namespace)) = (&target.pods, &target.id.namespace)
            && let Some(pods) = cluster.find("v1", "Pod").await?
        {
            let api = cluster.api(&pods, Some(namespace));
            let config = watcher::Config::default().labels(selector);
            streams.push(observed(
                api,
                config,
                pods,
                Some(target.id.subject()),
                Watched::Pods,
            ));
        }
    }
    let mut merged = stream::select_all(streams);
    let mut tally = WaitState {
        last,
        ready: 0,
        total,
        declared,
    };
    // A watch can miss an update (a CRD's storage re-initialising just after it was created has
    // been seen to): every RESYNC, what is still not ready is read once more.
    let mut resync = tokio::time::interval_at(Instant::now() + RESYNC, RESYNC);
    loop {
        let observation = tokio::select! {
            next = merged.next() => next,
            _ = resync.tick() => {
                let lagging: Vec<&&WaitTarget> =
                    targets.iter().filter(|t| !tally.is_ready(&t.id.subject())).collect();
                for target in lagging {
                    if let Some(value) = read(cluster, target).await?
                        && let Some(done) = tally.see(target.id.subject(), &value, reporter)
                    {
                        return done;
                    }
                }
                continue;
            }
            () = tokio::time::sleep_until(options.deadline) => None,
        };
        let Some(Observation {
            subject,
            watched,
            event,
        }) = observation
        else {
            return Err(tally.timeout());
        };
        if let Err(err) = &event
            && !tally.last.contains_key(&subject)
        {
            // A watch of a kind failed (it retries on its own): remember why for each of its
            // targets not ready yet, for a timeout report.
            for (target, last) in &mut tally.last {
                if target.starts_with(&subject) && last != "ready" {
                    *last = format!("watch error: {err}");
                }
            }
            continue;
        }
        if !tally.last.contains_key(&subject) {
            // Another object of a watched kind: not one this wait is for.
            continue;
        }
        let value = match event {
            Ok(Seen::Object(value)) => value,
            Ok(Seen::Deleted) if watched == Watched::Object => {
                tally.last.insert(subject.clone(), "deleted".into());
                continue;
            }
            Ok(Seen::Deleted | Seen::Nothing) => continue,
            Err(err) => {
                // The watcher retries on its own; remember why for a timeout report.
                tally
                    .last
                    .insert(subject.clone(), format!("watch error: {err}"));
                continue;
            }
        };
        if watched == Watched::Pods {
            // A pod of the target: only a terminal container state matters.
            if let Some(reason) = readiness::pod_failure(&value) {
                return Err(KubeError::NotReady { subject, reason });
            }
            continue;
        }
        if let Some(done) = tally.see(subject, &value, reporter) {
            return done;
        }
    }
}

/// How often a wait reads again what its watches have not shown ready.
const RESYNC: Duration = Duration::from_secs(5);

/// What a wait has seen of each target: its last status, and how many are ready.
struct WaitState<'a> {
    last: BTreeMap<String, String>,
    ready: usize,
    total: usize,
    /// How the bundle's own kinds are read.
    declared: &'a Declared,
}

impl WaitState<'_> {
    fn is_ready(&self, subject: &str) -> bool {
        self.last.get(subject).is_some_and(|s| s == "ready")
    }

    /// Takes one observation of a target; `Some` when the wait is over, either way.
    fn see(
        &mut self,
        subject: String,
        value: &Value,
        reporter: &dyn Reporter,
    ) -> Option<Result<(), KubeError>> {
        let was_ready = self.is_ready(&subject);
        match readiness::evaluate(value, self.declared) {
            Readiness::Ready => {
                if !was_ready {
                    self.ready += 1;
                    self.last.insert(subject.clone(), "ready".into());
                    reporter.report(Event::Ready {
                        subject,
                        ready: self.ready,
                        total: self.total,
                    });
                }
                (self.ready == self.total).then_some(Ok(()))
            }
            Readiness::Failed(reason) => Some(Err(KubeError::NotReady { subject, reason })),
            Readiness::Progressing(status) => {
                if was_ready {
                    self.ready -= 1;
                }
                if self.last.get(&subject) != Some(&status) {
                    reporter.report(Event::Waiting {
                        subject: subject.clone(),
                        status: status.clone(),
                    });
                }
                self.last.insert(subject, status);
                None
            }
        }
    }

    /// Every target not ready, with what it last said.
    fn timeout(self) -> KubeError {
        let waiting: Vec<(String, String)> = self
            .last
            .into_iter()
            .filter(|(_, s)| s != "ready")
            .collect();
        KubeError::Timeout { waiting }
    }
}

/// What a watch stream is about: the target itself, or the pods it owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Watched {
    Object,
    Pods,
}

/// One event of a merged watch, tagged with the target it concerns.
struct Observation {
    subject: String,
    watched: Watched,
    event: Result<Seen, watcher::Error>,
}

/// What a watch event says about an object.
enum Seen {
    /// The object as it is now, typed from the request.
    Object(Value),
    Deleted,
    /// Bookkeeping: the start or end of a relist.
    Nothing,
}

/// A watch on `api`, each object typed from the resource watched: the objects of a watcher's
/// initial list come from a LIST, whose items a real API server sends without a kind.
/// Each observation names `subject` when given (a target's pods), else the object it saw.
fn observed(
    api: kube::Api<kube::api::DynamicObject>,
    config: watcher::Config,
    served: ServedKind,
    subject: Option<String>,
    watched: Watched,
) -> futures::stream::BoxStream<'static, Observation> {
    watcher(api, config)
        .default_backoff()
        .map(move |event| {
            let named = |o: &kube::api::DynamicObject| {
                subject.clone().unwrap_or_else(|| {
                    crate::kube::object::subject(
                        &served.resource.kind,
                        o.metadata
                            .namespace
                            .as_deref()
                            .filter(|_| served.namespaced),
                        o.metadata.name.as_deref().unwrap_or_default(),
                    )
                })
            };
            let (seen, event) = match event {
                Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => {
                    (Some(named(&o)), Ok(Seen::Object(served.typed(o))))
                }
                Ok(watcher::Event::Delete(o)) => (Some(named(&o)), Ok(Seen::Deleted)),
                Ok(watcher::Event::Init | watcher::Event::InitDone) => (None, Ok(Seen::Nothing)),
                Err(err) => (None, Err(err)),
            };
            Observation {
                subject: seen.or_else(|| subject.clone()).unwrap_or_default(),
                watched,
                event,
            }
        })
        .boxed()
}

/// The live health of a set of objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    pub ready: usize,
    pub total: usize,
    /// The first object not ready, with its status.
    pub first_failing: Option<String>,
    /// Recorded objects another manager changed or deleted (`ls`'s DRIFT), each `subject: how`.
    pub drifted: Vec<String>,
}

impl Health {
    /// Tallies objects' readiness, in order: how many are ready, and the first that is not.
    fn of(statuses: impl IntoIterator<Item = (String, Readiness)>) -> Self {
        let mut health = Self {
            ready: 0,
            total: 0,
            first_failing: None,
            drifted: Vec::new(),
        };
        for (subject, status) in statuses {
            health.total += 1;
            match status {
                Readiness::Ready => health.ready += 1,
                Readiness::Progressing(why) | Readiness::Failed(why) => {
                    health
                        .first_failing
                        .get_or_insert_with(|| format!("{subject}: {why}"));
                }
            }
        }
        health
    }
}

/// The live objects of many releases, read with one LIST per kind across all namespaces by
/// plane's release label, whatever the number of releases: so `ls -A` and the platform's
/// `status` cost the same with one team instance or a hundred.
pub struct LiveObjects(HashMap<ObjectKey, Value>);

impl LiveObjects {
    /// Lists every kind the releases record.
    ///
    /// # Errors
    /// Discovery and list failures, a refused list included.
    pub async fn read(cluster: &Cluster, releases: &[Release]) -> Result<Self, KubeError> {
        let kinds: BTreeSet<(&str, &str)> = releases
            .iter()
            .flat_map(|r| r.inventory.objects.iter())
            .map(|o| (o.id.api_version.as_str(), o.id.kind.as_str()))
            .collect();
        cluster.prefetch(kinds.iter().map(|(v, _)| *v)).await?;
        let params = ListParams::default().labels(RELEASE_LABEL);
        let lists: Vec<Vec<Value>> = stream::iter(kinds)
            .map(|(api_version, kind)| {
                let params = &params;
                async move {
                    cluster
                        .list_objects(api_version, kind, None, params)
                        .await?
                        .objects()
                }
            })
            .buffered(LISTS_IN_FLIGHT)
            .try_collect()
            .await?;
        Ok(Self::of_lists(lists))
    }

    /// Lists every kind the releases record in each namespace they record it in (cluster-wide
    /// for a cluster-scoped kind), by plane's release label: all at once, so many releases cost
    /// one round trip, and credentials confined to a namespace can read their own. A list the
    /// credentials may not make falls back to reading its objects by name.
    ///
    /// # Errors
    /// Discovery and read failures.
    pub async fn read_in_namespaces(
        cluster: &Cluster,
        releases: &[Release],
    ) -> Result<Self, KubeError> {
        let objects = || releases.iter().flat_map(|r| r.inventory.objects.iter());
        cluster
            .prefetch(objects().map(|o| o.id.api_version.as_str()))
            .await?;
        let lists = by_kind_and_namespace(objects().map(|o| &o.id));
        let params = ListParams::default().labels(RELEASE_LABEL);
        let found: Vec<Vec<Value>> = stream::iter(lists)
            .map(|((api_version, kind, namespace), ids)| {
                let params = &params;
                async move {
                    match cluster
                        .list_objects(&api_version, &kind, namespace.as_deref(), params)
                        .await?
                    {
                        Listing::Objects(objects) => Ok(objects),
                        Listing::NotServed => Ok(Vec::new()),
                        Listing::Forbidden(_) => {
                            let read: Vec<Option<Value>> = stream::iter(ids)
                                .map(|id| cluster.get(id))
                                .buffered(READS_IN_FLIGHT)
                                .try_collect()
                                .await?;
                            Ok(read.into_iter().flatten().collect())
                        }
                    }
                }
            })
            .buffered(LISTS_IN_FLIGHT)
            .try_collect()
            .await?;
        Ok(Self::of_lists(found))
    }

    /// The objects of several lists, by key.
    fn of_lists(lists: Vec<Vec<Value>>) -> Self {
        Self(
            lists
                .into_iter()
                .flatten()
                .filter_map(|object| Some((ObjectKey::of_object(&object)?, object)))
                .collect(),
        )
    }

    /// The live objects of `release` (those that exist), in its record's order.
    pub fn of<'a>(&'a self, release: &'a Release) -> impl Iterator<Item = &'a Value> + 'a {
        release
            .inventory
            .objects
            .iter()
            .filter_map(|o| self.0.get(&o.id.key()))
    }

    /// The live health of `release`.
    pub fn health(&self, release: &Release) -> Health {
        let mut health = Health::of(release.inventory.objects.iter().map(|object| {
            let status = self.0.get(&object.id.key()).map_or_else(
                || Readiness::Failed("missing".into()),
                |live| readiness::evaluate(live, &release.inventory.declared),
            );
            (object.id.subject(), status)
        }));
        let applied = Applied::of(&release.inventory);
        health.drifted = release
            .inventory
            .objects
            .iter()
            .filter_map(|o| applied.drift(&o.id, self.0.get(&o.id.key())))
            .collect();
        health
    }
}

/// Objects grouped by kind and namespace: what one LIST or one watch covers.
fn by_kind_and_namespace<'a>(
    ids: impl Iterator<Item = &'a ObjectRef>,
) -> BTreeMap<(String, String, Option<String>), Vec<&'a ObjectRef>> {
    let mut groups: BTreeMap<_, Vec<&ObjectRef>> = BTreeMap::new();
    for id in ids {
        let key = (
            id.api_version.clone(),
            id.kind.clone(),
            id.namespace.clone(),
        );
        groups.entry(key).or_default().push(id);
    }
    groups
}

/// One object, read once and typed; `None` when it or its kind does not exist.
async fn read(cluster: &Cluster, target: &WaitTarget) -> Result<Option<Value>, KubeError> {
    cluster.get(&target.id).await
}
