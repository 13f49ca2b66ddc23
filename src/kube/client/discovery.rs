//! Discovery with a cache: which resource serves a kind, and whether it is namespaced.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Mutex;

use kube::api::{Api, DynamicObject};
use kube::core::GroupVersion;
use kube::core::discovery::v2::{ACCEPT_AGGREGATED_DISCOVERY_V2, APIGroupDiscoveryList};
use kube::discovery::{ApiResource, Scope};
use serde_json::Value;

use super::{Cluster, discovery_disk};
use crate::kube::client::retry::retry;
use crate::kube::error::KubeError;

/// The resource that serves a kind, and whether its objects live in a namespace.
#[derive(Debug, Clone)]
pub struct ServedKind {
    pub resource: ApiResource,
    pub namespaced: bool,
    /// Read from the disk cache, not asked of the server in this run: a 404 on it may mean the
    /// cache is stale, so the server is asked again before it is believed.
    pub cached: bool,
}

impl ServedKind {
    /// An object the server returned for a request on this resource, as JSON, with its
    /// `apiVersion` and `kind` taken from the request. A real API server leaves both off the
    /// items of a LIST (and so off a watcher's initial objects), so an object's kind must never
    /// be read from the object itself.
    pub fn typed(&self, object: DynamicObject) -> Value {
        let mut value = serde_json::to_value(object).unwrap_or(Value::Null);
        if let Some(map) = value.as_object_mut() {
            map.insert(
                "apiVersion".into(),
                Value::String(self.resource.api_version.clone()),
            );
            map.insert("kind".into(), Value::String(self.resource.kind.clone()));
        }
        value
    }
}

/// apiVersion -> kind -> served resource; a group-version the server does not serve maps to an
/// empty map.
pub type GroupVersions = HashMap<String, HashMap<String, ServedKind>>;

/// What plane knows of the server's kinds.
#[derive(Default)]
pub(super) struct Known {
    /// Asked of the server in this run.
    fresh: GroupVersions,
    /// The whole discovery was read in this run (aggregated): a group-version `fresh` lacks is
    /// not served.
    complete: bool,
    /// The server does not answer aggregated discovery: ask per group-version.
    per_group: bool,
    /// The disk cache, read at the first lookup; tried before asking, never trusted for "not
    /// served".
    disk: Option<GroupVersions>,
    disk_read: bool,
}

/// A lookup's answer.
enum Lookup {
    /// The resource serving the kind, or `None` when the server does not serve it.
    Found(Option<ServedKind>),
    /// Nothing known answers: the server must be asked.
    Ask,
}

impl Lookup {
    fn found(self) -> Option<ServedKind> {
        match self {
            Self::Found(found) => found,
            Self::Ask => None,
        }
    }
}

/// The discovery of one server: what is known, where it is kept on disk, and a gate so that
/// concurrent lookups that miss ask the server once.
pub(super) struct Cache {
    known: Mutex<Known>,
    file: Option<PathBuf>,
    asking: tokio::sync::Mutex<()>,
}

impl Cache {
    pub(super) fn new(file: Option<PathBuf>) -> Self {
        Self {
            known: Mutex::new(Known::default()),
            file,
            asking: tokio::sync::Mutex::new(()),
        }
    }

    fn known(&self) -> std::sync::MutexGuard<'_, Known> {
        self.known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The answer without asking the server: `Found` when this run or the disk cache knows (a
    /// kind the disk cache lacks is not known), `Ask` when the server must be asked.
    fn lookup(&self, server: &str, api_version: &str, kind: &str) -> Lookup {
        let mut known = self.known();
        if let Some(kinds) = known.fresh.get(api_version) {
            return Lookup::Found(kinds.get(kind).cloned());
        }
        if known.complete {
            return Lookup::Found(None);
        }
        let on_disk = self
            .disk(&mut known, server)
            .and_then(|disk| disk.get(api_version)?.get(kind).cloned());
        on_disk.map_or(Lookup::Ask, |served| Lookup::Found(Some(served)))
    }

    /// Whether a lookup of `api_version` can be answered without the server (a kind of it the
    /// disk cache lacks still asks).
    fn knows(&self, server: &str, api_version: &str) -> bool {
        let mut known = self.known();
        known.complete
            || known.fresh.contains_key(api_version)
            || self
                .disk(&mut known, server)
                .is_some_and(|disk| disk.contains_key(api_version))
    }

    /// The disk cache, read at the first look.
    fn disk<'k>(&self, known: &'k mut Known, server: &str) -> Option<&'k GroupVersions> {
        if !known.disk_read {
            known.disk_read = true;
            known.disk = self
                .file
                .as_deref()
                .and_then(|file| discovery_disk::load(file, server));
        }
        known.disk.as_ref()
    }

    /// Keeps what the server said, and writes this run's and the disk's knowledge back.
    fn learn(&self, server: &str, found: GroupVersions, complete: bool) {
        let mut known = self.known();
        known.fresh.extend(found);
        known.complete |= complete;
        let Some(file) = &self.file else { return };
        let mut all = if known.complete {
            GroupVersions::new()
        } else {
            known.disk.clone().unwrap_or_default()
        };
        all.extend(known.fresh.clone());
        drop(known);
        discovery_disk::save(file, server, &all);
    }
}

/// Discovery: kinds resolved to resources, from this run's answers, the disk cache, or the
/// server (the whole of it at once where it answers aggregated discovery).
impl Cluster {
    /// The resource serving `kind` in `api_version`, or `None` when the server does not serve
    /// it; from what this run or the disk cache knows when it can be.
    ///
    /// # Errors
    /// When discovery itself fails.
    pub async fn find(
        &self,
        api_version: &str,
        kind: &str,
    ) -> Result<Option<ServedKind>, KubeError> {
        if let Lookup::Found(found) = self.cache.lookup(&self.server, api_version, kind) {
            return Ok(found);
        }
        let _gate = self.cache.asking.lock().await;
        // Another lookup may have asked while this one waited at the gate.
        if let Lookup::Found(found) = self.cache.lookup(&self.server, api_version, kind) {
            return Ok(found);
        }
        self.ask(&[api_version]).await?;
        Ok(self.cache.lookup(&self.server, api_version, kind).found())
    }

    /// [`Cluster::find`], asking the server again first: after a CRD was created or changed,
    /// or when a resource the disk cache named was not found.
    ///
    /// # Errors
    /// When discovery itself fails.
    pub async fn rediscover(
        &self,
        api_version: &str,
        kind: &str,
    ) -> Result<Option<ServedKind>, KubeError> {
        let found = self.discover(api_version).await?;
        self.cache.learn(&self.server, found, false);
        Ok(self.cache.lookup(&self.server, api_version, kind).found())
    }

    /// Asks the server about `api_versions` (the caller holds the gate): one aggregated
    /// request pair for everything where the server answers it, else one request per
    /// group-version, all at once.
    async fn ask(&self, api_versions: &[&str]) -> Result<(), KubeError> {
        let unknown: BTreeSet<&str> = api_versions.iter().copied().collect();
        let per_group = self.cache.known().per_group;
        if !per_group {
            if let Some(all) = self.discover_all().await? {
                self.cache.learn(&self.server, all, true);
                return Ok(());
            }
            self.cache.known().per_group = true;
        }
        let found =
            futures::future::try_join_all(unknown.into_iter().map(|v| self.discover(v))).await?;
        self.cache
            .learn(&self.server, found.into_iter().flatten().collect(), false);
        Ok(())
    }

    /// Every kind the server serves, from aggregated discovery (`/api` and `/apis` at once);
    /// `None` when the server does not answer it.
    async fn discover_all(&self) -> Result<Option<GroupVersions>, KubeError> {
        let (core, groups) = futures::join!(self.aggregated("/api"), self.aggregated("/apis"));
        let (Some(core), Some(groups)) = (core?, groups?) else {
            return Ok(None);
        };
        let mut all = GroupVersions::new();
        for group in core.items.into_iter().chain(groups.items) {
            let name = group.metadata.and_then(|m| m.name).unwrap_or_default();
            for served in group.versions {
                let Some(version) = served.version.filter(|v| !v.is_empty()) else {
                    continue;
                };
                let api_version = if name.is_empty() {
                    version.clone()
                } else {
                    format!("{name}/{version}")
                };
                let kinds = served
                    .resources
                    .into_iter()
                    .filter_map(|r| {
                        let kind = r.response_kind?.kind?;
                        let served = ServedKind {
                            resource: ApiResource {
                                group: name.clone(),
                                version: version.clone(),
                                api_version: api_version.clone(),
                                kind: kind.clone(),
                                plural: r.resource?,
                            },
                            namespaced: r.scope.as_deref() == Some("Namespaced"),
                            cached: false,
                        };
                        Some((kind, served))
                    })
                    .collect();
                all.insert(api_version, kinds);
            }
        }
        Ok(Some(all))
    }

    /// One aggregated discovery document; `None` when the server answers the older kind.
    async fn aggregated(&self, path: &str) -> Result<Option<APIGroupDiscoveryList>, KubeError> {
        let request = http::Request::get(path)
            .header(http::header::ACCEPT, ACCEPT_AGGREGATED_DISCOVERY_V2)
            .body(Vec::new())
            .map_err(|err| KubeError::Local {
                what: "cannot build a discovery request".into(),
                subject: None,
                reason: err.to_string(),
                hint: None,
            })?;
        let text = match retry(|| self.client.request_text(request.clone())).await {
            Ok(text) => text,
            // A server (or a proxy before it) that refuses the aggregated form is asked per
            // group-version, whose own failures are then reported.
            Err(kube::Error::Api(_)) => return Ok(None),
            Err(err) => {
                return Err(KubeError::api(
                    "cannot discover the server's kinds",
                    None,
                    &err,
                ));
            }
        };
        let Ok(value) = serde_json::from_str::<Value>(&text) else {
            return Ok(None);
        };
        if value["kind"] != "APIGroupDiscoveryList" {
            return Ok(None);
        }
        Ok(serde_json::from_value(value).ok())
    }

    /// Asks the server which kinds one group-version serves.
    async fn discover(&self, api_version: &str) -> Result<GroupVersions, KubeError> {
        let gv: GroupVersion = api_version.parse().map_err(|_| KubeError::Local {
            what: format!("invalid apiVersion `{api_version}`"),
            subject: None,
            reason: "expected GROUP/VERSION or VERSION".into(),
            hint: None,
        })?;
        let kinds = match retry(|| kube::discovery::pinned_group(&self.client, &gv)).await {
            Ok(group) => group
                .versioned_resources(&gv.version)
                .into_iter()
                .filter(|(resource, _)| !resource.plural.contains('/'))
                .map(|(resource, caps)| {
                    (
                        resource.kind.clone(),
                        ServedKind {
                            namespaced: caps.scope == Scope::Namespaced,
                            resource,
                            cached: false,
                        },
                    )
                })
                .collect(),
            Err(kube::Error::Api(status)) if status.code == 404 => HashMap::new(),
            Err(err) => {
                return Err(KubeError::api(
                    format!("cannot discover {api_version}"),
                    None,
                    &err,
                ));
            }
        };
        Ok(HashMap::from([(api_version.to_owned(), kinds)]))
    }

    /// Makes every group-version known at once, from the disk cache or one round trip, instead
    /// of one round trip per group-version when [`Cluster::find`] meets them one after another.
    ///
    /// # Errors
    /// When discovery itself fails.
    pub async fn prefetch<'a>(
        &self,
        api_versions: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), KubeError> {
        let api_versions: Vec<&str> = api_versions.into_iter().collect();
        let unknown = |versions: &[&'a str]| -> Vec<&'a str> {
            versions
                .iter()
                .copied()
                .filter(|v| !self.cache.knows(&self.server, v))
                .collect()
        };
        if unknown(&api_versions).is_empty() {
            return Ok(());
        }
        let _gate = self.cache.asking.lock().await;
        // Another lookup may have asked while this one waited at the gate.
        let unknown = unknown(&api_versions);
        if unknown.is_empty() {
            return Ok(());
        }
        self.ask(&unknown).await
    }

    /// An API handle for one object's resource and namespace.
    pub fn api(&self, served: &ServedKind, namespace: Option<&str>) -> Api<DynamicObject> {
        api_for(self.client.clone(), served, namespace)
    }
}

/// An API handle for a resource: in `namespace` when it is namespaced, else cluster-wide.
pub(super) fn api_for(
    client: kube::Client,
    served: &ServedKind,
    namespace: Option<&str>,
) -> Api<DynamicObject> {
    match (served.namespaced, namespace) {
        (true, Some(ns)) => Api::namespaced_with(client, ns, &served.resource),
        _ => Api::all_with(client, &served.resource),
    }
}
