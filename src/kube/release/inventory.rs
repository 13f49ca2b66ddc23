//! The release inventory (DESIGN §8): a Secret per release in the state namespace that records
//! every object the release may have created, so nothing plane deletes goes unrecorded.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams, Patch};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::bundle::objects::{ADDON_LABEL, MANAGED_BY};
use crate::bundle::profile::ClusterPin;
use crate::bundle::{Declared, ObjectRef};
use crate::kube::client::retry::retry;
use crate::kube::error::KubeError;
use crate::kube::object::FIELD_MANAGER;
use crate::kube::release::revisions::{OverLimit, SECRET_LIMIT, StoredRevisions};
use crate::kube::release::state;

/// Label on every inventory Secret, so one LIST finds all releases.
pub const INVENTORY_LABEL: &str = "plane.datalayer.io/inventory";
/// The release an inventory Secret belongs to (not the release label: the inventory is not one of
/// the release's objects and must never be pruned with them).
pub const INVENTORY_RELEASE_LABEL: &str = "plane.datalayer.io/inventory-of";
const RECORD_KEY: &str = "release.json";
/// The objects of recent revisions, beside the record (raw gzip bytes, no second base64).
const REVISIONS_KEY: &str = "revisions.json.gz";
/// How many past revisions' metadata an inventory keeps.
pub const HISTORY: usize = 10;

/// Where a release run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Applying,
    Pruning,
    Deployed,
    Failed,
    Deleting,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applying => "applying",
            Self::Pruning => "pruning",
            Self::Deployed => "deployed",
            Self::Failed => "failed",
            Self::Deleting => "deleting",
        }
    }
}

/// One object a release may have created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InventoryObject {
    #[serde(flatten)]
    pub id: ObjectRef,
    #[serde(default)]
    pub component: String,
    /// Digest of the rendered object (not of its values, which may be secret).
    #[serde(default)]
    pub digest: String,
    /// It existed before the release took it over; `down` keeps adopted Namespaces and CRDs.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub adopted: bool,
}

/// How many objects a revision created, changed and pruned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Changes {
    pub created: usize,
    pub configured: usize,
    pub pruned: usize,
}

/// Metadata of a past revision.
#[allow(
    clippy::struct_field_names,
    reason = "`revision` is the word users see in `plane ls`"
)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Revision {
    pub revision: u64,
    pub phase: Phase,
    pub version: String,
    #[serde(default)]
    pub profile: Option<String>,
    pub values_digest: String,
    /// SHA-256 of the bundle's files it was deployed from; `None` in older records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle_digest: Option<String>,
    pub updated_at: String,
    pub actor: String,
    /// What it changed; `None` in records of plane versions that did not count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<Changes>,
    /// The revision it rolled back to (`plane rollback`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_of: Option<u64>,
}

/// What the inventory Secret holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Inventory {
    pub release: String,
    pub addon: String,
    pub version: String,
    #[serde(default)]
    pub profile: Option<String>,
    /// The cluster its profile pins (empty when it pins none), so that `down` and `rollback`
    /// refuse another cluster without reading the profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin: Option<ClusterPin>,
    pub values_digest: String,
    /// SHA-256 of the bundle's files this revision was deployed from; `None` in older records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle_digest: Option<String>,
    pub revision: u64,
    pub phase: Phase,
    pub started_at: String,
    pub updated_at: String,
    pub actor: String,
    pub plane_version: String,
    pub objects: Vec<InventoryObject>,
    #[serde(default)]
    pub history: Vec<Revision>,
    /// The namespace of a team instance (`up -n`); `None` for the platform.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// What this revision changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<Changes>,
    /// The revision this one rolls back to (`plane rollback`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_of: Option<u64>,
    /// What the bundle declares of its kinds, which `ls` and `status` read without the bundle.
    #[serde(default, skip_serializing_if = "Declared::is_empty")]
    pub declared: Declared,
    /// The objects of recent revisions, kept beside `release.json` in the record.
    #[serde(skip)]
    pub stored: StoredRevisions,
}

impl Inventory {
    /// Records the end of a revision in the history, newest first, keeping [`HISTORY`] entries.
    pub fn push_history(&mut self) {
        let entry = self.current();
        self.history.retain(|r| r.revision != entry.revision);
        self.history.insert(0, entry);
        self.history.truncate(HISTORY);
        let kept: Vec<u64> = self.history.iter().map(|r| r.revision).collect();
        self.stored.retain(|revision| kept.contains(&revision));
    }

    /// This revision's metadata.
    fn current(&self) -> Revision {
        Revision {
            revision: self.revision,
            phase: self.phase,
            version: self.version.clone(),
            profile: self.profile.clone(),
            values_digest: self.values_digest.clone(),
            bundle_digest: self.bundle_digest.clone(),
            updated_at: self.updated_at.clone(),
            actor: self.actor.clone(),
            changes: self.changes,
            rollback_of: self.rollback_of,
        }
    }

    /// The past revision `revision`'s metadata, or this one's.
    pub fn revision(&self, revision: u64) -> Option<Revision> {
        if revision == self.revision {
            return Some(self.current());
        }
        self.history
            .iter()
            .find(|r| r.revision == revision)
            .cloned()
    }
}

/// A release as `ls` shows it: its record's metadata, without the objects of its revisions.
#[derive(Debug, Clone)]
pub struct Release {
    pub name: String,
    pub namespace: String,
    pub inventory: Inventory,
    /// Set for a release an engine runs (`template --for`): which, and the owner it marks the
    /// release's record with. plane only reads such a release.
    pub engine: Option<EngineRun>,
}

/// A release an engine runs, as its record (a ConfigMap the render carries) says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineRun {
    /// `argocd` or `flux`: the engine it was rendered for.
    pub engine: String,
    /// Who applies it, by the marks on its record (`Argo CD application platform-eastus`); `None` when no
    /// engine has marked it (applied by hand).
    pub owner: Option<String>,
    /// Where its record is: `ConfigMap/ns/plane-engine-NAME`.
    pub record: String,
}

/// Reads a release's inventory, or `None` when the release does not exist.
///
/// # Errors
/// API failures other than "not found", or an inventory plane cannot read.
pub async fn read_inventory(
    client: &kube::Client,
    namespace: &str,
    release: &str,
) -> Result<Option<Inventory>, KubeError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let name = state::record_name(release);
    let subject = crate::kube::object::subject("Secret", Some(namespace), &name);
    let secret = retry(|| api.get_opt(&name))
        .await
        .map_err(|err| KubeError::api("cannot read the release inventory", Some(&subject), &err))?;
    secret.map(|s| decode(&s, &subject, true)).transpose()
}

/// The record's metadata, and with `revisions` the objects it keeps of each revision (read
/// strictly for what deploys or rolls back; `ls` and `status` read them leniently, for drift).
fn decode(secret: &Secret, subject: &str, revisions: bool) -> Result<Inventory, KubeError> {
    let bytes = |key: &str| {
        secret
            .data
            .as_ref()
            .and_then(|d| d.get(key))
            .map(|b| b.0.as_slice())
            .unwrap_or_default()
    };
    let unreadable = |reason: String| KubeError::Local {
        what: "the release inventory is unreadable".into(),
        subject: Some(subject.to_owned()),
        reason,
        hint: Some("it was written by another plane version or edited by hand".into()),
    };
    let mut inventory: Inventory =
        serde_json::from_slice(bytes(RECORD_KEY)).map_err(|err| unreadable(err.to_string()))?;
    if revisions {
        // Records of plane versions that kept no objects have none: metadata-only revisions.
        inventory.stored = StoredRevisions::decode(bytes(REVISIONS_KEY))
            .map_err(|err| unreadable(format!("{REVISIONS_KEY}: {err}")))?;
    }
    Ok(inventory)
}

/// The record's data: its metadata and the revisions' objects that fit the budget beside it.
fn encode(inventory: &Inventory, subject: &str) -> Result<(Vec<u8>, Vec<u8>), KubeError> {
    let metadata = serde_json::to_vec(inventory).map_err(|err| KubeError::Local {
        what: "cannot encode the inventory".into(),
        subject: Some(subject.to_owned()),
        reason: err.to_string(),
        hint: None,
    })?;
    let mut stored = inventory.stored.clone();
    let revisions = stored
        .fit(metadata.len())
        .map_err(|OverLimit { bytes }| KubeError::Local {
            what: "the release record is too large to write; nothing was written".into(),
            subject: Some(subject.to_owned()),
            reason: format!(
                "it would hold {bytes} bytes, over the {SECRET_LIMIT} a Secret may hold"
            ),
            hint: Some("split the bundle into smaller releases".into()),
        })?;
    Ok((metadata, revisions))
}

/// Writes the inventory with server-side apply, creating the state namespace when missing.
///
/// # Errors
/// API failures, naming the inventory Secret.
pub async fn write_inventory(
    client: &kube::Client,
    namespace: &str,
    inventory: &Inventory,
) -> Result<(), KubeError> {
    let name = state::record_name(&inventory.release);
    let subject = crate::kube::object::subject("Secret", Some(namespace), &name);
    let (metadata, revisions) = encode(inventory, &subject)?;
    let mut data = serde_json::Map::new();
    data.insert(RECORD_KEY.into(), json!(STANDARD.encode(metadata)));
    if !revisions.is_empty() {
        data.insert(REVISIONS_KEY.into(), json!(STANDARD.encode(revisions)));
    }
    let secret = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                MANAGED_BY: FIELD_MANAGER,
                INVENTORY_LABEL: "true",
                INVENTORY_RELEASE_LABEL: inventory.release,
                ADDON_LABEL: inventory.addon,
            },
        },
        "type": "plane.datalayer.io/release",
        "data": data,
    });
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let params = crate::kube::release::ssa::apply_params();
    let patch = Patch::Apply(&secret);
    let result = retry(|| api.patch(&name, &params, &patch)).await;
    match result {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => {
            state::ensure_namespace(client, namespace).await?;
            retry(|| api.patch(&name, &params, &patch))
                .await
                .map(|_| ())
                .map_err(|err| {
                    KubeError::api("cannot write the release inventory", Some(&subject), &err)
                })
        }
        Err(err) => Err(KubeError::api(
            "cannot write the release inventory",
            Some(&subject),
            &err,
        )),
    }
}

/// Deletes a release's inventory (the last step of `down`).
///
/// # Errors
/// API failures other than "not found".
pub async fn delete_inventory(
    client: &kube::Client,
    namespace: &str,
    release: &str,
) -> Result<(), KubeError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let name = state::record_name(release);
    let params = kube::api::DeleteParams::default();
    match retry(|| api.delete(&name, &params)).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(err) => Err(KubeError::api(
            "cannot delete the release inventory",
            Some(&crate::kube::object::subject(
                "Secret",
                Some(namespace),
                &name,
            )),
            &err,
        )),
    }
}

/// All releases recorded in `namespace`, or in every namespace (one LIST either way), by
/// namespace and name; metadata only (see [`Release`]).
///
/// # Errors
/// API failures; a missing namespace means no releases.
pub async fn list_releases(
    client: &kube::Client,
    namespace: Option<&str>,
) -> Result<Vec<Release>, KubeError> {
    let api: Api<Secret> = match namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    };
    let params = ListParams::default().labels(&format!("{INVENTORY_LABEL}=true"));
    let list = match retry(|| api.list(&params)).await {
        Ok(list) => list,
        Err(kube::Error::Api(status)) if status.code == 404 => return Ok(Vec::new()),
        Err(err) => {
            return Err(KubeError::api(
                "cannot list releases",
                namespace.map(|ns| format!("Namespace/{ns}")).as_deref(),
                &err,
            ));
        }
    };
    let mut releases = Vec::new();
    for secret in list.items {
        let name = secret.metadata.name.clone().unwrap_or_default();
        let in_namespace = secret.metadata.namespace.clone().unwrap_or_default();
        let mut inventory = decode(
            &secret,
            &crate::kube::object::subject("Secret", Some(&in_namespace), &name),
            false,
        )?;
        // The objects the record keeps tell drift (what plane applied); a record whose kept
        // objects cannot be read is listed all the same, its drift then only deletions.
        if let Some(bytes) = secret.data.as_ref().and_then(|d| d.get(REVISIONS_KEY)) {
            inventory.stored = StoredRevisions::decode(&bytes.0).unwrap_or_default();
        }
        releases.push(Release {
            name: inventory.release.clone(),
            namespace: in_namespace,
            inventory,
            engine: None,
        });
    }
    releases.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    Ok(releases)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inventory() -> Inventory {
        Inventory {
            release: "r".into(),
            addon: "a".into(),
            version: "1".into(),
            profile: None,
            pin: None,
            values_digest: "d".into(),
            bundle_digest: None,
            revision: 1,
            phase: Phase::Deployed,
            started_at: "t".into(),
            updated_at: "t".into(),
            actor: "me".into(),
            plane_version: "0".into(),
            objects: Vec::new(),
            history: Vec::new(),
            instance: None,
            changes: None,
            rollback_of: None,
            declared: Declared::default(),
            stored: StoredRevisions::default(),
        }
    }

    #[test]
    fn history_keeps_the_newest_revisions_only() {
        let mut inv = inventory();
        for revision in 1..=25 {
            inv.revision = revision;
            inv.push_history();
        }
        assert_eq!(inv.history.len(), HISTORY);
        assert_eq!(inv.history[0].revision, 25);
        assert_eq!(inv.history[HISTORY - 1].revision, 16);
    }

    #[test]
    fn objects_match_across_versions_and_record_their_reference_flat() {
        let id = |api_version: &str, namespace: Option<&str>| ObjectRef {
            api_version: api_version.into(),
            kind: "Deployment".into(),
            namespace: namespace.map(str::to_owned),
            name: "x".into(),
        };
        let object = InventoryObject {
            id: id("apps/v1", Some("n")),
            component: "api".into(),
            digest: String::new(),
            adopted: false,
        };
        assert!(object.id.same_as(&id("apps/v1beta1", Some("n"))));
        assert!(!object.id.same_as(&id("apps/v1", None)));
        assert_eq!(object.id.subject(), "Deployment/n/x");
        // The record keeps the shape earlier versions of plane wrote and read.
        let recorded = serde_json::to_string(&object).unwrap();
        assert_eq!(
            recorded,
            r#"{"apiVersion":"apps/v1","kind":"Deployment","namespace":"n","name":"x","component":"api","digest":""}"#
        );
        assert_eq!(
            serde_json::from_str::<InventoryObject>(&recorded).unwrap(),
            object
        );
    }
}
