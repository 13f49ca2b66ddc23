//! What the cluster holds that this release would touch and does not own — rendered objects of
//! other owners, installations its probes find, routes another release serves — so plane never
//! takes one over silently.

use futures::{StreamExt, TryStreamExt, stream};
use kube::api::ListParams;

use crate::bundle::objects::ingress_routes;
use crate::bundle::objects::{RELEASE_LABEL, RELEASE_NAMESPACE_LABEL};
use crate::bundle::{Claim, Component, Detect, Existing, Object, ReleaseId, Rendered};
use crate::kube::client::Cluster;
use crate::kube::client::WIDE_LISTS_IN_FLIGHT;
use crate::kube::client::read::{Listing, Reading};
use crate::kube::error::KubeError;
use crate::kube::object::owner::{Owner, owner_of};
use crate::kube::object::subject;
use crate::kube::release::plan::Plan;

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
        if owner.is_engine() {
            ownership.conflicts.push((
                format!(
                    "{} is run by {owner}, which keeps applying it: change it through that \
                     engine's source (`plane template --for` renders it), not with plane",
                    object.subject
                ),
                None,
            ));
            continue;
        }
        ownership
            .adoptable
            .push((object.subject.clone(), owner, object.component.clone()));
    }
    // What each component provides may already run, and another release may serve a route:
    // every look at once, one round trip for all.
    let looked = looked(rendered);
    let mut routes = Ownership::default();
    let (probed, route_check) = futures::join!(
        futures::future::join_all(looked.iter().map(|(_, existing)| probe(
            cluster,
            &existing.detect,
            release
        ))),
        route_conflicts(cluster, rendered, release, &mut routes),
    );
    for ((component, existing), found) in looked.iter().zip(probed) {
        let on = rendered.components.contains(&component.name);
        // What the plan found to be the release's own (an object labelled by an earlier plane
        // that the record lists) is no other installation.
        let found = found.map(|found| {
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
    route_check?;
    ownership.conflicts.extend(routes.conflicts);
    ownership.notes.extend(routes.notes);
    Ok(ownership)
}

/// The components whose probes run, with what they look for.
fn looked(rendered: &Rendered) -> Vec<(&Component, &Existing)> {
    rendered
        .all_components
        .iter()
        .filter_map(|component| component.existing.as_ref().map(|e| (component, e)))
        .filter(|(component, _)| {
            // A team instance leaves these to the platform, whose presence was checked before.
            rendered.instance.is_none() || rendered.components.contains(&component.name)
        })
        .collect()
}

/// What [`find`] lists across all namespaces, to read ahead: (apiVersion, kind, label selector)
/// of every probe, and the Ingresses of every release when the render has one.
pub fn wide_lists(rendered: &Rendered) -> Vec<(String, String, String)> {
    let mut lists: Vec<(String, String, String)> = looked(rendered)
        .into_iter()
        .flat_map(|(_, existing)| &existing.detect)
        .map(|d| (d.api_version.clone(), d.kind.clone(), d.selector.clone()))
        .collect();
    if rendered.objects.iter().any(|o| o.id.kind == "Ingress") {
        lists.push((
            "networking.k8s.io/v1".into(),
            "Ingress".into(),
            RELEASE_LABEL.into(),
        ));
    }
    lists
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
