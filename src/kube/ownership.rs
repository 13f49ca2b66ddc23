//! Who owns an object this release did not create: another plane release, a Helm release, another
//! deployer (kapp, Flux, Argo CD), other field managers, or nobody — so plane never takes one over
//! silently.

use std::fmt;

use futures::{StreamExt, TryStreamExt, stream};
use kube::api::ListParams;
use serde_json::Value;

use super::resources::Resources;
use super::retry::retry;
use super::{KubeError, MANAGER, subject};
use crate::bundle::objects::RELEASE_LABEL;

/// The owner of an existing object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// Another plane release, by its label.
    Release(String),
    /// A Helm release: its name and namespace when the object says them.
    Helm {
        release: Option<String>,
        namespace: Option<String>,
    },
    /// Another deployer that marks what it manages, with the name it gives.
    Tool { tool: &'static str, name: String },
    /// No deployer's marks, but these field managers wrote it.
    Managers(Vec<String>),
    /// Nothing says who made it.
    Nobody,
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Release(release) => write!(f, "plane release {release}"),
            Self::Helm { release, namespace } => {
                f.write_str("Helm release")?;
                match (release, namespace) {
                    (Some(release), Some(ns)) => write!(f, " {release} (namespace {ns})"),
                    (Some(release), None) => write!(f, " {release}"),
                    _ => Ok(()),
                }
            }
            Self::Tool { tool, name } => write!(f, "{tool} {name}"),
            Self::Managers(managers) => write!(f, "field managers {}", managers.join(", ")),
            Self::Nobody => f.write_str("nobody (no deployer's labels, no field managers)"),
        }
    }
}

/// Who owns `object`, or `None` when it is `release`'s own (it carries the release's label).
pub fn owner_of(object: &Value, release: &str) -> Option<Owner> {
    let metadata = &object["metadata"];
    let label = |key: &str| metadata["labels"][key].as_str().filter(|v| !v.is_empty());
    let annotation = |key: &str| {
        metadata["annotations"][key]
            .as_str()
            .filter(|v| !v.is_empty())
    };
    if let Some(other) = label(RELEASE_LABEL) {
        return (other != release).then(|| Owner::Release(other.to_owned()));
    }
    let helm_release = annotation("meta.helm.sh/release-name");
    if helm_release.is_some() || label("app.kubernetes.io/managed-by") == Some("Helm") {
        return Some(Owner::Helm {
            release: helm_release
                .or_else(|| label("app.kubernetes.io/instance"))
                .map(str::to_owned),
            namespace: annotation("meta.helm.sh/release-namespace").map(str::to_owned),
        });
    }
    let tools: [(&'static str, Option<String>); 4] = [
        (
            "kapp app",
            label("kapp.k14s.io/app")
                .map(str::to_owned)
                .or_else(|| annotation("kapp.k14s.io/identity").map(str::to_owned)),
        ),
        (
            "Flux Kustomization",
            label("kustomize.toolkit.fluxcd.io/name")
                .map(|name| qualified(label("kustomize.toolkit.fluxcd.io/namespace"), name)),
        ),
        (
            "Flux HelmRelease",
            label("helm.toolkit.fluxcd.io/name")
                .map(|name| qualified(label("helm.toolkit.fluxcd.io/namespace"), name)),
        ),
        (
            "Argo CD application",
            annotation("argocd.argoproj.io/tracking-id")
                .and_then(|id| id.split(':').next())
                .or_else(|| label("argocd.argoproj.io/instance"))
                .map(str::to_owned),
        ),
    ];
    if let Some((tool, Some(name))) = tools.into_iter().find(|(_, name)| name.is_some()) {
        return Some(Owner::Tool { tool, name });
    }
    let mut managers: Vec<String> = metadata["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|entry| entry["manager"].as_str())
        .filter(|manager| *manager != MANAGER)
        .map(str::to_owned)
        .collect();
    managers.sort();
    managers.dedup();
    Some(if managers.is_empty() {
        Owner::Nobody
    } else {
        Owner::Managers(managers)
    })
}

/// Serializes an owner as the text that names it.
///
/// # Errors
/// The serializer's.
#[allow(
    clippy::ref_option,
    reason = "serde's serialize_with passes the field by reference"
)]
pub fn serialize_owner<S: serde::Serializer>(
    owner: &Option<Owner>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match owner {
        Some(owner) => serializer.collect_str(owner),
        None => serializer.serialize_none(),
    }
}

fn qualified(namespace: Option<&str>, name: &str) -> String {
    namespace.map_or_else(|| name.to_owned(), |ns| format!("{ns}/{name}"))
}

/// What a bundle component installs that may already run in the cluster, installed by someone
/// else: objects of a kind found by a label selector in any namespace.
#[derive(Debug, Clone)]
pub struct Probe {
    pub api_version: String,
    pub kind: String,
    pub selector: String,
}

/// An object found by a probe that is not `release`'s, with its owner.
#[derive(Debug, Clone)]
pub struct Found {
    pub subject: String,
    pub owner: Owner,
}

/// Runs the probes (one LIST each, across all namespaces) and returns what they find that is not
/// `release`'s. A kind the cluster does not serve finds nothing.
///
/// # Errors
/// Discovery and list failures, 403 included (the caller decides what a refusal means).
pub async fn probe(
    resources: &Resources,
    probes: &[Probe],
    release: &str,
) -> Result<Vec<Found>, KubeError> {
    let lists: Vec<Vec<Found>> = stream::iter(probes)
        .map(|probe| async move {
            let Some(served) = resources
                .find(&probe.api_version, &probe.kind, false)
                .await?
            else {
                return Ok(Vec::new());
            };
            let api = resources.api(&served, None);
            let params = ListParams::default().labels(&probe.selector);
            let list = retry(|| api.list(&params)).await.map_err(|err| {
                KubeError::api(
                    format!("cannot look for existing {} objects", probe.kind),
                    None,
                    &err,
                )
            })?;
            Ok::<_, KubeError>(
                list.items
                    .into_iter()
                    .filter_map(|object| {
                        let value = served.typed(object);
                        let owner = owner_of(&value, release)?;
                        let metadata = &value["metadata"];
                        Some(Found {
                            subject: subject(
                                &probe.kind,
                                metadata["namespace"].as_str(),
                                metadata["name"].as_str().unwrap_or_default(),
                            ),
                            owner,
                        })
                    })
                    .collect(),
            )
        })
        .buffered(4)
        .try_collect()
        .await?;
    Ok(lists.into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn owner(metadata: &Value) -> Option<Owner> {
        owner_of(&json!({"metadata": metadata}), "datalayer-ray")
    }

    #[test]
    fn owners_are_told_apart() {
        assert_eq!(
            owner(&json!({"labels": {RELEASE_LABEL: "datalayer-ray"}})),
            None
        );
        assert_eq!(
            owner(&json!({"labels": {RELEASE_LABEL: "other"}})),
            Some(Owner::Release("other".into()))
        );
        let helm = owner(&json!({
            "labels": {"app.kubernetes.io/managed-by": "Helm"},
            "annotations": {"meta.helm.sh/release-name": "kuberay-operator", "meta.helm.sh/release-namespace": "kuberay"}
        }))
        .unwrap();
        assert_eq!(
            helm.to_string(),
            "Helm release kuberay-operator (namespace kuberay)"
        );
        assert_eq!(
            owner(&json!({"labels": {"kustomize.toolkit.fluxcd.io/name": "infra", "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}}))
                .unwrap()
                .to_string(),
            "Flux Kustomization flux-system/infra"
        );
        assert_eq!(
            owner(&json!({"annotations": {"argocd.argoproj.io/tracking-id": "ray:apps/Deployment:ray-system/op"}}))
                .unwrap()
                .to_string(),
            "Argo CD application ray"
        );
        assert_eq!(
            owner(&json!({"labels": {"kapp.k14s.io/app": "1700000000"}}))
                .unwrap()
                .to_string(),
            "kapp app 1700000000"
        );
        assert_eq!(
            owner(
                &json!({"managedFields": [{"manager": "kubectl-client-side-apply"}, {"manager": "plane"}, {"manager": "kubectl-edit"}]})
            ),
            Some(Owner::Managers(vec![
                "kubectl-client-side-apply".into(),
                "kubectl-edit".into()
            ]))
        );
        assert_eq!(owner(&json!({"name": "x"})), Some(Owner::Nobody));
    }
}
