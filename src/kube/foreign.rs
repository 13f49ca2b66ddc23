//! Before `down` deletes a namespace the release created: does anything else live there?
//! Deleting a namespace deletes everything in it, so one that holds other owners' objects is kept.

use futures::{StreamExt, stream};
use serde_json::Value;

use super::KubeError;
use super::resources::Resources;
use super::retry::retry;
use crate::bundle::objects::RELEASE_LABEL;

/// Kinds that hold someone's work or data. Pods and ReplicaSets are left out: their owners are
/// here. Objects with an owner reference are left out too: their owner is what counts.
const KINDS: &[(&str, &str)] = &[
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("apps/v1", "DaemonSet"),
    ("batch/v1", "Job"),
    ("batch/v1", "CronJob"),
    ("v1", "Service"),
    ("v1", "PersistentVolumeClaim"),
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
];

/// Made in every namespace by Kubernetes itself.
fn is_builtin(kind: &str, object: &Value) -> bool {
    match kind {
        "ConfigMap" => object["metadata"]["name"] == "kube-root-ca.crt",
        "Secret" => object["type"] == "kubernetes.io/service-account-token",
        _ => false,
    }
}

/// Why a namespace must stay: up to a few objects in it that are not `release`'s, or the kinds
/// that could not be checked. `None` when only the release's objects are there.
///
/// `custom_kinds` are (apiVersion, kind) of the custom resources the release's CRDs define: work
/// of that kind left in the namespace would also lose its operator.
///
/// # Errors
/// API failures other than a refused or unserved list.
pub async fn reason_to_keep(
    resources: &Resources,
    namespace: &str,
    release: &str,
    custom_kinds: &[(String, String)],
) -> Result<Option<String>, KubeError> {
    let kinds: Vec<(String, String)> = KINDS
        .iter()
        .map(|(v, k)| ((*v).to_owned(), (*k).to_owned()))
        .chain(custom_kinds.iter().cloned())
        .collect();
    let found: Vec<Result<Found, KubeError>> = stream::iter(&kinds)
        .map(|(api_version, kind)| others_of_kind(resources, namespace, release, api_version, kind))
        .buffered(8)
        .collect()
        .await;
    let mut foreign = Vec::new();
    let mut unchecked = Vec::new();
    for found in found {
        match found? {
            Found::Objects(subjects) => foreign.extend(subjects),
            Found::Unchecked(plural) => unchecked.push(plural),
        }
    }
    if !foreign.is_empty() {
        let shown = foreign.len().min(3);
        let more = foreign.len() - shown;
        let mut list = foreign[..shown].join(", ");
        if more > 0 {
            list.push_str(&format!(" and {more} more"));
        }
        return Ok(Some(format!(
            "it holds objects that are not part of this release: {list}"
        )));
    }
    if !unchecked.is_empty() {
        return Ok(Some(format!(
            "it could not be checked for other owners' objects (no permission to list {})",
            unchecked.join(", ")
        )));
    }
    Ok(None)
}

/// What one kind's list in the namespace found.
enum Found {
    /// Objects of other owners (none, if the kind is not served or only the release's are there).
    Objects(Vec<String>),
    /// The list was refused: this plural could not be checked.
    Unchecked(String),
}

async fn others_of_kind(
    resources: &Resources,
    namespace: &str,
    release: &str,
    api_version: &str,
    kind: &str,
) -> Result<Found, KubeError> {
    let Some(served) = resources.find(api_version, kind, false).await? else {
        return Ok(Found::Objects(Vec::new()));
    };
    let api = resources.api(&served, Some(namespace));
    let params = kube::api::ListParams::default();
    let list = match retry(|| api.list(&params)).await {
        Ok(list) => list.items,
        Err(kube::Error::Api(status)) if status.code == 403 => {
            return Ok(Found::Unchecked(served.resource.plural.clone()));
        }
        Err(err) => {
            return Err(KubeError::api(
                format!("cannot list {kind} objects"),
                Some(&format!("Namespace/{namespace}")),
                &err,
            ));
        }
    };
    let mut others = Vec::new();
    for object in list {
        let value = serde_json::to_value(&object).unwrap_or(Value::Null);
        let metadata = &value["metadata"];
        let owned = metadata["ownerReferences"]
            .as_array()
            .is_some_and(|refs| !refs.is_empty());
        if metadata["labels"][RELEASE_LABEL] == release || owned || is_builtin(kind, &value) {
            continue;
        }
        others.push(format!(
            "{kind}/{}",
            metadata["name"].as_str().unwrap_or_default()
        ));
    }
    Ok(Found::Objects(others))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn what_kubernetes_puts_in_every_namespace_is_nobody_elses() {
        let root_ca = json!({"metadata": {"name": "kube-root-ca.crt"}});
        let notes = json!({"metadata": {"name": "team-notes"}});
        let token = json!({"metadata": {"name": "default-token-x"}, "type": "kubernetes.io/service-account-token"});
        let password = json!({"metadata": {"name": "db"}, "type": "Opaque"});
        assert!(is_builtin("ConfigMap", &root_ca));
        assert!(!is_builtin("ConfigMap", &notes));
        assert!(is_builtin("Secret", &token));
        assert!(!is_builtin("Secret", &password));
        assert!(!is_builtin("Service", &root_ca));
    }
}
