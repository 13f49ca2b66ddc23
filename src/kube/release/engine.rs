//! Releases an engine runs (`template --for argocd|flux`): found by the record their render
//! carries (a ConfigMap `plane-engine-RELEASE`), read-only, for `ls` and `status`, and so that
//! `up` and `down` leave them to the engine.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams};
use serde::Deserialize;

use crate::bundle::objects::{
    ENGINE_RECORD_KEY as RECORD_KEY, ENGINE_RELEASE_LABEL, RELEASE_NAMESPACE_LABEL,
};
use crate::bundle::{Declared, ObjectRef};
use crate::kube::client::retry::retry;
use crate::kube::error::KubeError;
use crate::kube::object::owner::engine_of;
use crate::kube::release::inventory::{EngineRun, Inventory, InventoryObject, Phase, Release};
use crate::kube::release::revisions::StoredRevisions;

/// What the record of an engine's release holds.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    release: String,
    addon: String,
    version: String,
    #[serde(default)]
    profile: Option<String>,
    #[serde(default)]
    values_digest: String,
    #[serde(default)]
    instance: Option<String>,
    engine: String,
    objects: Vec<ObjectRef>,
    #[serde(default)]
    declared: Declared,
}

/// The releases engines run whose identity is in `state_namespace` (as plane's own releases
/// are: the platform's state namespace, or a team's namespace), or all. Their records live in
/// the namespaces they render into, so they are listed across the cluster, or, when the
/// credentials may not, in `state_namespace` alone; none when that is refused too (the releases
/// plane records are listed apart). A record that does not parse is skipped.
///
/// # Errors
/// API failures other than a refusal.
pub async fn list_engine_releases(
    client: &kube::Client,
    state_namespace: Option<&str>,
) -> Result<Vec<Release>, KubeError> {
    let mut selector = ENGINE_RELEASE_LABEL.to_owned();
    if let Some(namespace) = state_namespace {
        selector.push_str(&format!(",{RELEASE_NAMESPACE_LABEL}={namespace}"));
    }
    let params = ListParams::default().labels(&selector);
    let mut scopes: Vec<Api<ConfigMap>> = vec![Api::all(client.clone())];
    scopes.extend(state_namespace.map(|ns| Api::namespaced(client.clone(), ns)));
    let mut list = None;
    for api in &scopes {
        match retry(|| api.list(&params)).await {
            Ok(found) => {
                list = Some(found);
                break;
            }
            Err(kube::Error::Api(status)) if matches!(status.code, 403 | 404) => {}
            Err(err) => {
                return Err(KubeError::api(
                    "cannot list the releases engines run",
                    state_namespace
                        .map(|ns| format!("Namespace/{ns}"))
                        .as_deref(),
                    &err,
                ));
            }
        }
    }
    let Some(list) = list else {
        return Ok(Vec::new());
    };
    let mut releases: Vec<Release> = list
        .items
        .into_iter()
        .filter_map(|config_map| {
            let labels = config_map.metadata.labels.as_ref()?;
            let namespace = labels.get(RELEASE_NAMESPACE_LABEL)?.clone();
            let value = serde_json::to_value(&config_map).ok()?;
            let owner = engine_of(&value).map(|owner| owner.to_string());
            let at = crate::kube::object::subject(
                "ConfigMap",
                config_map.metadata.namespace.as_deref(),
                config_map.metadata.name.as_deref().unwrap_or_default(),
            );
            let text = config_map.data.as_ref()?.get(RECORD_KEY)?;
            let record: Record = serde_json::from_str(text).ok()?;
            Some(release_of(record, namespace, owner, at))
        })
        .collect();
    releases.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    Ok(releases)
}

/// The release a record describes, as `ls` and `status` read releases.
fn release_of(record: Record, namespace: String, owner: Option<String>, at: String) -> Release {
    let objects = record
        .objects
        .into_iter()
        .map(|id| InventoryObject {
            id,
            component: String::new(),
            digest: String::new(),
            adopted: false,
        })
        .collect();
    let inventory = Inventory {
        release: record.release.clone(),
        addon: record.addon,
        version: record.version,
        profile: record.profile,
        pin: None,
        values_digest: record.values_digest,
        bundle_digest: None,
        revision: 0,
        phase: Phase::Deployed,
        started_at: String::new(),
        updated_at: String::new(),
        actor: owner.clone().unwrap_or_else(|| record.engine.clone()),
        plane_version: String::new(),
        objects,
        history: Vec::new(),
        instance: record.instance,
        changes: None,
        rollback_of: None,
        declared: record.declared,
        stored: StoredRevisions::default(),
    };
    Release {
        name: record.release,
        namespace,
        inventory,
        engine: Some(EngineRun {
            engine: record.engine,
            owner,
            record: at,
        }),
    }
}
