//! A revision the record kept, made ready to apply again: its Secrets with their live values,
//! and a refusal when its operator is older than the CRDs on the cluster now.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use futures::{StreamExt, TryStreamExt, stream};
use serde_json::{Value, json};

use crate::bundle::objects::GENERATE_ANNOTATION;
use crate::bundle::{Component, Declared, Object, Required};
use crate::kube::client::{Cluster, READS_IN_FLIGHT};
use crate::kube::error::KubeError;
use crate::kube::release::inventory::{Inventory, Revision};
use crate::kube::release::revisions::value_digest;

/// The label that names what an object belongs to (`widget-operator`), and the one that gives
/// its version: a CRD carries its operator's.
const NAME_LABEL: &str = "app.kubernetes.io/name";
const VERSION_LABEL: &str = "app.kubernetes.io/version";

/// A kept revision, ready for the plan.
#[derive(Debug, Clone)]
pub struct Restored {
    /// Its metadata as the record has it.
    pub revision: Revision,
    /// Its objects in render order, Secrets with their live values.
    pub objects: Vec<Object>,
    pub components: Vec<String>,
    pub gated: BTreeSet<String>,
    /// What a team instance needs the platform to serve, as the revision's bundle said.
    pub requires: Vec<Required>,
    /// Every component the revision's bundle declared.
    pub all_components: Vec<Component>,
    /// What the revision's bundle declared of its kinds.
    pub declared: Declared,
    /// Secrets whose live values differ from the revision's: they keep the live ones.
    pub kept_values: Vec<String>,
}

/// Revision `revision` of the release, ready to apply: `None` when the record keeps no objects
/// for it.
///
/// # Errors
/// A Secret whose values are gone from the cluster (the record never stores them), a stored
/// operator older than the CRDs now on the cluster, and API failures.
pub async fn restore(
    cluster: &Cluster,
    inventory: &Inventory,
    revision: u64,
) -> Result<Option<Restored>, KubeError> {
    let (Some(metadata), Some((stored, objects))) = (
        inventory.revision(revision),
        inventory.stored.restore(revision),
    ) else {
        return Ok(None);
    };
    let secrets: Vec<_> = objects
        .iter()
        .filter(|o| o.object.id.kind == "Secret" && !is_generated(&o.object.value))
        .collect();
    let live_secrets: Vec<Option<Value>> = stream::iter(&secrets)
        .map(|o| cluster.get(&o.object.id))
        .buffered(READS_IN_FLIGHT)
        .try_collect()
        .await?;
    let mut values: BTreeMap<String, Value> = BTreeMap::new();
    let mut kept_values = Vec::new();
    let mut missing = Vec::new();
    for (secret, live) in secrets.iter().zip(&live_secrets) {
        let subject = secret.object.id.subject();
        let live_data = live.as_ref().map(|l| &l["data"]);
        let mut data = serde_json::Map::new();
        let mut differs = false;
        for (key, then) in &secret.secret_values {
            match live_data.and_then(|d| d[key].as_str()) {
                Some(encoded) => {
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(encoded)
                        .unwrap_or_default();
                    differs |= &value_digest(&bytes) != then;
                    data.insert(key.clone(), json!(encoded));
                }
                None => missing.push(KubeError::Local {
                    what: format!("revision {revision} cannot be restored"),
                    subject: Some(subject.clone()),
                    reason: format!(
                        "its key `{key}` is not on the cluster, and the record never keeps a Secret's values"
                    ),
                    hint: Some(format!(
                        "apply revision {revision}'s inputs with `plane up` instead"
                    )),
                }),
            }
        }
        if differs {
            kept_values.push(subject.clone());
        }
        values.insert(subject, Value::Object(data));
    }
    if !missing.is_empty() {
        return Err(KubeError::combine(missing, |n| {
            format!("{n} Secret value(s) of revision {revision} are gone")
        }));
    }
    let objects: Vec<Object> = objects
        .into_iter()
        .map(|o| {
            let mut object = o.object;
            if let Some(data) = values.remove(&object.id.subject())
                && let Some(fields) = object.value.as_object_mut()
            {
                fields.insert("data".into(), data);
            }
            object
        })
        .collect();
    refuse_older_operator(cluster, &objects, revision).await?;
    Ok(Some(Restored {
        revision: metadata,
        objects,
        components: stored.components.clone(),
        gated: stored.gated.clone(),
        requires: stored.requires.clone(),
        all_components: stored.declared.clone(),
        declared: stored.kinds.clone(),
        kept_values,
    }))
}

fn is_generated(value: &Value) -> bool {
    value["metadata"]["annotations"][GENERATE_ANNOTATION].is_string()
}

/// Refuses a revision whose operator is older than a CRD of its on the cluster now: the CRDs
/// stay as they are (they only move forward), and an older operator may not know their fields.
async fn refuse_older_operator(
    cluster: &Cluster,
    objects: &[Object],
    revision: u64,
) -> Result<(), KubeError> {
    // Each operator's version in the revision, by what its objects name (`widget-operator`).
    let mut stored: BTreeMap<&str, &str> = BTreeMap::new();
    for object in objects {
        let labels = &object.value["metadata"]["labels"];
        if let (Some(name), Some(version)) =
            (labels[NAME_LABEL].as_str(), labels[VERSION_LABEL].as_str())
        {
            stored.insert(name, version);
        }
    }
    let crds: Vec<&Object> = objects
        .iter()
        .filter(|o| o.id.kind == "CustomResourceDefinition")
        .collect();
    let live: Vec<Option<Value>> = stream::iter(&crds)
        .map(|o| cluster.get(&o.id))
        .buffered(READS_IN_FLIGHT)
        .try_collect()
        .await?;
    let mut older = Vec::new();
    for (crd, live) in crds.iter().zip(&live) {
        let Some(live) = live else { continue };
        let labels = &live["metadata"]["labels"];
        let (Some(name), Some(now)) = (labels[NAME_LABEL].as_str(), labels[VERSION_LABEL].as_str())
        else {
            continue;
        };
        let Some(then) = stored.get(name) else {
            continue;
        };
        if is_older(then, now) {
            older.push(KubeError::Local {
                what: format!("revision {revision} runs {name} {then}, older than the CRDs on the cluster"),
                subject: Some(crd.id.subject()),
                reason: format!(
                    "the CRD is at {name} {now}; a rollback never changes a CRD, and {name} {then} may not know its fields"
                ),
                hint: Some(format!(
                    "roll back to a revision with {name} {now} or newer, or apply the older version with `plane up` after reading its upgrade notes"
                )),
            });
        }
    }
    if older.is_empty() {
        return Ok(());
    }
    Err(KubeError::combine(older, |n| {
        format!("revision {revision} is older than {n} CRD(s) on the cluster")
    }))
}

/// Whether version `a` is provably older than `b` (`v1.6.2` < `v1.7.0`); versions that do not
/// read as numbers are never called older.
fn is_older(a: &str, b: &str) -> bool {
    let numbers = |v: &str| -> Option<Vec<u64>> {
        v.trim_start_matches('v')
            .split(['-', '+'])
            .next()?
            .split('.')
            .map(|n| n.parse().ok())
            .collect()
    };
    match (numbers(a), numbers(b)) {
        (Some(a), Some(b)) => a < b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::is_older;

    #[test]
    fn versions_compare_as_numbers() {
        assert!(is_older("v1.6.2", "v1.7.0"));
        assert!(is_older("v1.9.0", "v1.10.0"));
        assert!(!is_older("v1.7.0", "v1.7.0"));
        assert!(!is_older("v1.7.1", "v1.7.0"));
        assert!(!is_older("latest", "v1.7.0"));
        assert!(is_older("1.6.0-rc.1", "v1.7.0"));
    }
}
