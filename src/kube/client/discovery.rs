//! Discovery with a cache: which resource serves a kind, and whether it is namespaced.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use kube::api::{Api, DynamicObject};
use kube::core::GroupVersion;
use kube::discovery::{ApiResource, Scope};
use serde_json::Value;

use super::Cluster;
use crate::kube::client::retry::retry;
use crate::kube::error::KubeError;

/// The resource that serves a kind, and whether its objects live in a namespace.
#[derive(Debug, Clone)]
pub struct ServedKind {
    pub resource: ApiResource,
    pub namespaced: bool,
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

/// What the server said of each group-version: apiVersion -> kind -> served resource; a
/// group-version the server does not serve maps to an empty map.
pub(super) type Cache = Mutex<HashMap<String, HashMap<String, ServedKind>>>;

/// Discovery: kinds resolved to resources, one request per group-version, asked again on demand.
impl Cluster {
    /// The resource serving `kind` in `api_version`, or `None` when the server does not serve
    /// it; from the cache when the group-version was discovered before.
    ///
    /// # Errors
    /// When discovery itself fails.
    pub async fn find(
        &self,
        api_version: &str,
        kind: &str,
    ) -> Result<Option<ServedKind>, KubeError> {
        if !self.cached(api_version) {
            self.discover(api_version).await?;
        }
        Ok(self.lookup(api_version, kind))
    }

    /// [`Cluster::find`], asking the server again first: after a CRD was created or changed.
    ///
    /// # Errors
    /// When discovery itself fails.
    pub async fn rediscover(
        &self,
        api_version: &str,
        kind: &str,
    ) -> Result<Option<ServedKind>, KubeError> {
        self.discover(api_version).await?;
        Ok(self.lookup(api_version, kind))
    }

    fn lookup(&self, api_version: &str, kind: &str) -> Option<ServedKind> {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(api_version)
            .and_then(|kinds| kinds.get(kind).cloned())
    }

    fn cached(&self, api_version: &str) -> bool {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains_key(api_version)
    }

    /// Asks the server which kinds a group-version serves, and caches the answer.
    async fn discover(&self, api_version: &str) -> Result<(), KubeError> {
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
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(api_version.to_owned(), kinds);
        Ok(())
    }

    /// Discovers every group-version not yet known, all at once: one round trip instead of one
    /// per group-version when [`Cluster::find`] meets them one after another.
    ///
    /// # Errors
    /// When discovery itself fails.
    pub async fn prefetch<'a>(
        &self,
        api_versions: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), KubeError> {
        let unknown: BTreeSet<&str> = api_versions
            .into_iter()
            .filter(|v| !self.cached(v))
            .collect();
        futures::future::try_join_all(unknown.into_iter().map(|v| self.discover(v)))
            .await
            .map(drop)
    }

    /// An API handle for one object's resource and namespace.
    pub fn api(&self, served: &ServedKind, namespace: Option<&str>) -> Api<DynamicObject> {
        match (served.namespaced, namespace) {
            (true, Some(ns)) => Api::namespaced_with(self.client.clone(), ns, &served.resource),
            _ => Api::all_with(self.client.clone(), &served.resource),
        }
    }
}
