//! Who owns an object this release did not create: another plane release, a Helm release, another
//! deployer (kapp, Flux, Argo CD), other field managers, or nobody — so plane never takes one over
//! silently.

use std::fmt;

use futures::{StreamExt, TryStreamExt, stream};
use kube::api::ListParams;
use serde_json::Value;

use crate::bundle::objects::ingress_routes;
use crate::bundle::objects::{MANAGED_BY, RELEASE_LABEL, RELEASE_NAMESPACE_LABEL};
use crate::bundle::{Claim, Detect, Object, ReleaseId, Rendered};
use crate::kube::KubeError;
use crate::kube::client::Cluster;
use crate::kube::client::WIDE_LISTS_IN_FLIGHT;
use crate::kube::client::read::{Listing, Reading};
use crate::kube::object::{FIELD_MANAGER, subject};
use crate::kube::release::plan::Plan;

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
    let metadata = &object["metadata"];
    let label = |key: &str| metadata["labels"][key].as_str().filter(|v| !v.is_empty());
    let annotation = |key: &str| {
        metadata["annotations"][key]
            .as_str()
            .filter(|v| !v.is_empty())
    };
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

/// An object a probe found that is not `release`'s, with its owner: an installation of what a
/// component provides that predates the release.
#[derive(Debug, Clone)]
pub struct ExistingInstall {
    pub subject: String,
    pub owner: Owner,
}

/// Runs the probes (one LIST each, across all namespaces) and returns what they find that is not
/// `release`'s. A kind the cluster does not serve finds nothing.
///
/// # Errors
/// Discovery and list failures, 403 included (the caller decides what a refusal means).
pub async fn probe(
    cluster: &Cluster,
    probes: &[Detect],
    release: &ReleaseId,
) -> Result<Vec<ExistingInstall>, KubeError> {
    let lists: Vec<Vec<ExistingInstall>> = stream::iter(probes)
        .map(|probe| async move {
            let params = ListParams::default().labels(&probe.selector);
            let what = format!("cannot look for existing {} objects", probe.kind);
            let reading = Reading {
                what: &what,
                subject: None,
            };
            let list = cluster
                .list(&probe.api_version, &probe.kind, None, &params, reading)
                .await?
                .objects()?;
            Ok::<_, KubeError>(
                list.into_iter()
                    .filter_map(|value| {
                        let owner = owner_of(&value, release)?;
                        let metadata = &value["metadata"];
                        Some(ExistingInstall {
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
        .buffered(WIDE_LISTS_IN_FLIGHT)
        .try_collect()
        .await?;
    Ok(lists.into_iter().flatten().collect())
}

/// What the cluster already holds that is not this release's.
#[derive(Debug, Default)]
pub struct Ownership {
    /// Rendered objects another owner has (another plane release, Helm, another tool, nobody),
    /// which `--take-ownership` may adopt: (subject, owner, component).
    pub adoptable: Vec<(String, Owner, String)>,
    /// What no flag may take: installations of what an enabled component provides, routes
    /// another release serves. (text, the component whose switch avoids it).
    pub conflicts: Vec<(String, Option<String>)>,
    /// Worth saying, not refusing: a component that is off with nothing found in its place, or
    /// a look that was not allowed.
    pub notes: Vec<String>,
}

/// Finds who owns what the plan would touch, and runs the probes of every component that
/// declares what of it may already run.
///
/// # Errors
/// API failures other than refused probes.
pub async fn find(
    cluster: &Cluster,
    rendered: &Rendered,
    plan: &Plan,
    release: &ReleaseId,
) -> Result<Ownership, KubeError> {
    let mut ownership = Ownership::default();
    let ours: std::collections::BTreeSet<&str> = plan
        .objects
        .iter()
        .filter(|o| !o.adopts())
        .map(|o| o.subject.as_str())
        .collect();
    for object in plan.objects.iter().filter(|o| o.adopts()) {
        let Some(owner) = object.owner.clone() else {
            continue;
        };
        ownership
            .adoptable
            .push((object.subject.clone(), owner, object.component.clone()));
    }
    for component in &rendered.all_components {
        let Some(existing) = &component.existing else {
            continue;
        };
        let on = rendered.components.contains(&component.name);
        // A team instance leaves these to the platform, whose presence was checked before.
        if rendered.instance.is_some() && !on {
            continue;
        }
        // What the plan found to be the release's own (an object labelled by an earlier plane
        // that the record lists) is no other installation.
        let found = probe(cluster, &existing.detect, release)
            .await
            .map(|found| {
                found
                    .into_iter()
                    .filter(|f| !ours.contains(f.subject.as_str()))
                    .collect::<Vec<_>>()
            });
        match found {
            Ok(found) if on => {
                for found in found {
                    ownership.conflicts.push((
                        format!(
                            "{} already runs: {} ({})",
                            existing.what, found.subject, found.owner
                        ),
                        Some(component.name.clone()),
                    ));
                }
            }
            Ok(found) if found.is_empty() => ownership.notes.push(format!(
                "component {} is off and no {} was found in the cluster: what depends on it may never become ready",
                component.name, existing.what
            )),
            Ok(_) => {}
            Err(err) if err.code() == Some(403) => ownership.notes.push(format!(
                "could not look for an existing {}: {}",
                existing.what,
                err.to_problem().causes.join(": ")
            )),
            Err(err) => return Err(err),
        }
    }
    route_conflicts(cluster, rendered, release, &mut ownership).await?;
    Ok(ownership)
}

/// An Ingress route (host and path) the render serves that another plane release's Ingress
/// already serves is a conflict: two releases would fight over one URL. One LIST of Ingresses
/// in all namespaces by plane's release label; credentials that may not list them leave a note.
async fn route_conflicts(
    cluster: &Cluster,
    rendered: &Rendered,
    release: &ReleaseId,
    ownership: &mut Ownership,
) -> Result<(), KubeError> {
    let ours: Vec<(&Object, Vec<(String, String)>)> = rendered
        .objects
        .iter()
        .filter(|o| o.id.kind == "Ingress")
        .map(|o| (o, ingress_routes(&o.value)))
        .collect();
    if ours.is_empty() {
        return Ok(());
    }
    let params = ListParams::default().labels(RELEASE_LABEL);
    let reading = Reading {
        what: "cannot look for the Ingress routes of other releases",
        subject: None,
    };
    let theirs = match cluster
        .list("networking.k8s.io/v1", "Ingress", None, &params, reading)
        .await?
    {
        Listing::Objects(objects) => objects,
        Listing::NotServed => return Ok(()),
        Listing::Forbidden(err) => {
            ownership.notes.push(format!(
                "could not check that no other release serves this release's routes: {}",
                err.to_problem().causes.join(": ")
            ));
            return Ok(());
        }
    };
    for (object, routes) in &ours {
        for other in &theirs {
            let metadata = &other["metadata"];
            let other_namespace = metadata["namespace"].as_str();
            let other_name = metadata["name"].as_str().unwrap_or_default();
            // The same Ingress, an earlier revision of this one, or another of this release's
            // own (renamed, to be pruned).
            if (other_namespace == object.id.namespace.as_deref() && other_name == object.id.name)
                || release.claim(other) == Claim::Ours
            {
                continue;
            }
            let labels = &metadata["labels"];
            let other_release = match labels[RELEASE_NAMESPACE_LABEL].as_str() {
                Some(namespace) => format!(
                    "{} (namespace {namespace})",
                    labels[RELEASE_LABEL].as_str().unwrap_or("?")
                ),
                None => labels[RELEASE_LABEL].as_str().unwrap_or("?").to_owned(),
            };
            for route in ingress_routes(other) {
                if routes.contains(&route) {
                    ownership.conflicts.push((
                        format!(
                            "{} would serve {}{}, which {} of plane release {other_release} serves",
                            object.id,
                            route.0,
                            route.1,
                            subject("Ingress", other_namespace, other_name)
                        ),
                        None,
                    ));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
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
