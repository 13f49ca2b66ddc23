//! Who owns an object, read from the object alone: this release, another plane release, a Helm
//! release, another deployer (kapp, Flux, Argo CD), other field managers, or nobody.

use std::fmt;

use serde_json::Value;

use super::FIELD_MANAGER;
use crate::bundle::objects::MANAGED_BY;
use crate::bundle::{Claim, ReleaseId};

/// The owner of an existing object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// Another plane release, by its labels: its name, and the namespace of its record when
    /// the labels say it (a plane before release namespaces did not).
    Release {
        name: String,
        namespace: Option<String>,
    },
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
            Self::Release {
                name,
                namespace: Some(namespace),
            } => write!(f, "plane release {name} (namespace {namespace})"),
            Self::Release {
                name,
                namespace: None,
            } => write!(f, "plane release {name} (labelled by an earlier plane)"),
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

/// Who owns `object`, or `None` when it is `release`'s own (its labels name the release and
/// its record's namespace). An object labelled with the release's name by an earlier plane,
/// which did not write the namespace, is another release's here: the plan's live list counts
/// it as the release's own only when the release's record lists it.
pub fn owner_of(object: &Value, release: &ReleaseId) -> Option<Owner> {
    let label = |key: &str| mark(object, "labels", key);
    let annotation = |key: &str| mark(object, "annotations", key);
    // An engine that keeps applying an object owns it, whatever plane's labels say (a release
    // rendered with `template --for` carries them): plane never takes it from the engine.
    if let Some(engine) = engine_of(object) {
        return Some(engine);
    }
    match release.claim(object) {
        Claim::Ours => return None,
        Claim::Unplaced => {
            return Some(Owner::Release {
                name: release.name.clone(),
                namespace: None,
            });
        }
        Claim::Other { name, namespace } => return Some(Owner::Release { name, namespace }),
        Claim::NotPlane => {}
    }
    let helm_release = annotation("meta.helm.sh/release-name");
    if helm_release.is_some() || label(MANAGED_BY) == Some("Helm") {
        return Some(Owner::Helm {
            release: helm_release
                .or_else(|| label("app.kubernetes.io/instance"))
                .map(str::to_owned),
            namespace: annotation("meta.helm.sh/release-namespace").map(str::to_owned),
        });
    }
    if let Some(name) = label("kapp.k14s.io/app").or_else(|| annotation("kapp.k14s.io/identity")) {
        return Some(Owner::Tool {
            tool: "kapp app",
            name: name.to_owned(),
        });
    }
    let mut managers: Vec<String> = object["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|entry| entry["manager"].as_str())
        .filter(|manager| *manager != FIELD_MANAGER)
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

/// The engine that keeps applying `object` (Argo CD, Flux), by the marks it puts on what it
/// manages.
pub fn engine_of(object: &Value) -> Option<Owner> {
    let label = |key: &str| mark(object, "labels", key);
    let annotation = |key: &str| mark(object, "annotations", key);
    let engines: [(&'static str, Option<String>); 3] = [
        (
            ARGO_CD,
            annotation("argocd.argoproj.io/tracking-id")
                .and_then(|id| id.split(':').next())
                .or_else(|| label("argocd.argoproj.io/instance"))
                .map(str::to_owned),
        ),
        (
            FLUX_KUSTOMIZATION,
            label("kustomize.toolkit.fluxcd.io/name")
                .map(|name| qualified(label("kustomize.toolkit.fluxcd.io/namespace"), name)),
        ),
        (
            "Flux HelmRelease",
            label("helm.toolkit.fluxcd.io/name")
                .map(|name| qualified(label("helm.toolkit.fluxcd.io/namespace"), name)),
        ),
    ];
    engines
        .into_iter()
        .find_map(|(tool, name)| name.map(|name| Owner::Tool { tool, name }))
}

/// How an Argo CD application owner is named.
pub const ARGO_CD: &str = "Argo CD application";
/// How a Flux Kustomization owner is named.
pub const FLUX_KUSTOMIZATION: &str = "Flux Kustomization";

impl Owner {
    /// Whether it is an engine that keeps applying what it owns: taking an object from it would
    /// start a fight, not a handover.
    pub fn is_engine(&self) -> bool {
        matches!(self, Self::Tool { tool, .. } if *tool == ARGO_CD || tool.starts_with("Flux "))
    }
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

/// A label or annotation (`marks` names which) of `object`; `None` when absent or empty.
fn mark<'a>(object: &'a Value, marks: &str, key: &str) -> Option<&'a str> {
    object["metadata"][marks][key]
        .as_str()
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::objects::{RELEASE_LABEL, RELEASE_NAMESPACE_LABEL};
    use serde_json::json;

    fn owner(metadata: &Value) -> Option<Owner> {
        owner_of(
            &json!({"metadata": metadata}),
            &ReleaseId::new("plane-system", "shop"),
        )
    }

    #[test]
    fn owners_are_told_apart() {
        assert_eq!(
            owner(
                &json!({"labels": {RELEASE_LABEL: "shop", RELEASE_NAMESPACE_LABEL: "plane-system"}})
            ),
            None
        );
        // The same name in another namespace: a team instance's, another owner.
        assert_eq!(
            owner(&json!({"labels": {RELEASE_LABEL: "shop", RELEASE_NAMESPACE_LABEL: "team-a"}}))
                .unwrap()
                .to_string(),
            "plane release shop (namespace team-a)"
        );
        assert_eq!(
            owner(&json!({"labels": {RELEASE_LABEL: "other"}})),
            Some(Owner::Release {
                name: "other".into(),
                namespace: None
            })
        );
        let helm = owner(&json!({
            "labels": {"app.kubernetes.io/managed-by": "Helm"},
            "annotations": {"meta.helm.sh/release-name": "widget-operator", "meta.helm.sh/release-namespace": "widgets"}
        }))
        .unwrap();
        assert_eq!(
            helm.to_string(),
            "Helm release widget-operator (namespace widgets)"
        );
        assert_eq!(
            owner(&json!({"labels": {"kustomize.toolkit.fluxcd.io/name": "infra", "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}}))
                .unwrap()
                .to_string(),
            "Flux Kustomization flux-system/infra"
        );
        assert_eq!(
            owner(&json!({"annotations": {"argocd.argoproj.io/tracking-id": "shop:apps/Deployment:shop-system/op"}}))
                .unwrap()
                .to_string(),
            "Argo CD application shop"
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
