//! Removing a release (`down`): stage its recorded objects so that custom resources go while
//! their operator still runs, and wait until each stage is gone.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt, stream};

use kube::api::{DeleteParams, ListParams, PropagationPolicy};
use kube::discovery::ApiResource;
use serde_json::Value;

use crate::bundle::crd::CrdSpec;
use crate::bundle::{ObjectKey, ReleaseId};
use crate::kinds::{self, BUILTIN_GROUPS, Stage};
use crate::kube::client::Cluster;
use crate::kube::client::discovery::ServedKind;
use crate::kube::client::read::Reading;
use crate::kube::client::retry::retry;
use crate::kube::client::{IN_FLIGHT, READS_IN_FLIGHT};
use crate::kube::error::KubeError;
use crate::kube::progress::{Event, Reporter};
use crate::kube::release::inventory::{Inventory, InventoryObject};
use crate::kube::release::namespaces;
use crate::kube::release::plan::{Action, list_live};
use crate::kube::release::wait::WaitOptions;

/// Stages in deletion order.
const STAGES: [&str; 6] = [
    Stage::ALL[0].name(),
    Stage::ALL[1].name(),
    Stage::ALL[2].name(),
    Stage::ALL[3].name(),
    Stage::ALL[4].name(),
    Stage::ALL[5].name(),
];

/// The stage of `down` that deletes `object`: its kind's, or for a built-in kind plane does
/// not know, the one of its scope.
fn stage_of(object: &InventoryObject) -> usize {
    let stage = if !BUILTIN_GROUPS.contains(&object.id.group()) {
        Stage::CustomResources
    } else if let Some(kind) = kinds::lookup(&object.id.kind) {
        kind.stage
    } else if object.id.namespace.is_none() {
        Stage::RbacAndClusterObjects
    } else {
        Stage::ServicesAndConfiguration
    };
    stage as usize
}

/// Custom resources that would die with a CRD: how many, in which namespaces.
#[derive(Debug, Clone)]
pub struct CustomResourceCount {
    pub crd: String,
    pub kind: String,
    pub by_namespace: BTreeMap<String, usize>,
}

impl CustomResourceCount {
    pub fn total(&self) -> usize {
        self.by_namespace.values().sum()
    }
}

/// What `down` will do.
#[derive(Debug, Clone, Default)]
pub struct Removal {
    /// Each stage's name and its objects, in order; only objects that still exist with the release's labels.
    pub stages: Vec<(String, Vec<InventoryObject>)>,
    /// Objects left in place, with why.
    pub kept: Vec<(InventoryObject, String)>,
    /// For each CRD to delete, the custom resources of its kind in the whole cluster.
    pub crd_usage: Vec<CustomResourceCount>,
    /// For each CRD kept, the custom resources of its kind that are not the release's: they
    /// stay, with nothing of the release left to reconcile them.
    pub left_behind: Vec<CustomResourceCount>,
}

impl Removal {
    pub fn count(&self) -> usize {
        self.stages.iter().map(|(_, objects)| objects.len()).sum()
    }
}

/// What `down` may delete beyond the release's own objects.
#[derive(Debug, Clone, Copy, Default)]
pub struct RemovalOptions {
    /// CRDs, and with them every custom resource of their kinds.
    pub include_crds: bool,
    /// PersistentVolumeClaims, and with them their data.
    pub include_volumes: bool,
    /// Objects that existed before the release took them over (`up --take-ownership`).
    pub include_adopted: bool,
}

/// Which recorded objects exist and how they will go.
///
/// # Errors
/// Discovery and list failures.
pub async fn plan_removal(
    cluster: &Cluster,
    release: &ReleaseId,
    inventory: &Inventory,
    options: RemovalOptions,
) -> Result<Removal, KubeError> {
    let live = list_live(cluster, &[], release, Some(inventory)).await?;
    let mut stages: Vec<Vec<InventoryObject>> = vec![Vec::new(); STAGES.len()];
    let mut kept = Vec::new();
    let mut crds = Vec::new();
    // A recorded object the release's labels do not find is gone, or no longer the release's:
    // look it up by name, so the record is never dropped while the object lives.
    let unlisted: Vec<&InventoryObject> = inventory
        .objects
        .iter()
        .filter(|o| !live.contains_key(&o.id.key()))
        .collect();
    for (object, exists) in unlisted.iter().zip(exist(cluster, &unlisted).await?) {
        if exists {
            kept.push((
                (*object).clone(),
                format!("it no longer carries the labels of release {release}, or an engine (Argo CD, Flux) runs it"),
            ));
        }
    }
    for object in &inventory.objects {
        let Some(live_object) = live.get(&object.id.key()) else {
            continue;
        };
        let keep = match object.id.kind.as_str() {
            _ if object.adopted && !options.include_adopted => Some(
                "it existed before this release took it over; --include-adopted deletes it"
                    .to_owned(),
            ),
            // A Namespace or CRD that predates the release holds more than the release.
            "Namespace" | "CustomResourceDefinition" if object.adopted => {
                Some("it existed before this release".to_owned())
            }
            "CustomResourceDefinition" if !options.include_crds => {
                Some("CRDs are kept unless --include-crds".to_owned())
            }
            "PersistentVolumeClaim" if !options.include_volumes => {
                Some("volumes are kept unless --include-volumes".to_owned())
            }
            _ => None,
        };
        if let Some(why) = keep {
            kept.push((object.clone(), why));
            continue;
        }
        if object.id.kind == "CustomResourceDefinition" {
            crds.push(live_object.clone());
        }
        stages[stage_of(object)].push(object.clone());
    }
    // A namespace the release created goes only if nothing but the release lives in it.
    let custom_kinds: Vec<(String, String)> = inventory
        .objects
        .iter()
        .filter(|o| o.id.kind == "CustomResourceDefinition")
        .filter_map(|o| {
            live.get(&ObjectKey::of(
                &o.id.api_version,
                &o.id.kind,
                None,
                &o.id.name,
            ))
        })
        .filter_map(CrdSpec::of)
        .map(|spec| (spec.api_version(), spec.kind))
        .collect();
    let namespace_stage = STAGES.iter().position(|s| *s == "namespaces").unwrap_or(0);
    let candidates = std::mem::take(&mut stages[namespace_stage]);
    let names: Vec<String> = candidates.iter().map(|o| o.id.name.clone()).collect();
    let reasons = namespaces::namespaces_to_keep(cluster, &names, release, &custom_kinds).await?;
    for (object, reason) in candidates.into_iter().zip(reasons) {
        match reason {
            Some(why) => kept.push((object, why)),
            None => stages[namespace_stage].push(object),
        }
    }
    let mut crd_usage = Vec::new();
    for crd in crds {
        crd_usage.push(count_custom_resources(cluster, &crd, None).await?);
    }
    let mut left_behind = Vec::new();
    for (object, _) in kept
        .iter()
        .filter(|(o, _)| o.id.kind == "CustomResourceDefinition")
    {
        let Some(crd) = live.get(&ObjectKey::of(
            &object.id.api_version,
            &object.id.kind,
            None,
            &object.id.name,
        )) else {
            continue;
        };
        // Only a note: credentials that cannot list them cost the note, not the removal.
        match count_custom_resources(cluster, crd, Some(release)).await {
            Ok(found) if found.total() > 0 => left_behind.push(found),
            Ok(_)
            | Err(KubeError::Api {
                code: Some(403), ..
            }) => {}
            Err(err) => return Err(err),
        }
    }
    let stages = STAGES
        .iter()
        .zip(stages)
        .filter(|(_, objects)| !objects.is_empty())
        .map(|(name, objects)| ((*name).to_owned(), objects))
        .collect();
    Ok(Removal {
        stages,
        kept,
        crd_usage,
        left_behind,
    })
}

/// Whether each object exists, looked up by name (16 at a time). A kind the server no longer
/// serves has no objects.
///
/// # Errors
/// Discovery and read failures, naming the object.
async fn exist(cluster: &Cluster, objects: &[&InventoryObject]) -> Result<Vec<bool>, KubeError> {
    stream::iter(objects)
        .map(|object| async move { Ok(cluster.get(&object.id).await?.is_some()) })
        .buffered(READS_IN_FLIGHT)
        .try_collect()
        .await
}

/// Checks that every recorded object `down` meant to delete is gone, looked up by name: the
/// release record may go only then.
///
/// # Errors
/// [`KubeError::Remaining`] naming what is still there; discovery and read failures.
pub async fn verify_gone(
    cluster: &Cluster,
    inventory: &Inventory,
    removal: &Removal,
) -> Result<(), KubeError> {
    let meant: Vec<&InventoryObject> = inventory
        .objects
        .iter()
        .filter(|o| !removal.kept.iter().any(|(kept, _)| kept == *o))
        .collect();
    let subjects: Vec<String> = meant
        .iter()
        .zip(exist(cluster, &meant).await?)
        .filter(|(_, exists)| *exists)
        .map(|(object, _)| object.id.subject())
        .collect();
    if subjects.is_empty() {
        Ok(())
    } else {
        Err(KubeError::Remaining {
            release: inventory.release.clone(),
            subjects,
        })
    }
}

/// The resource a CRD defines, at its storage version.
fn crd_resource(spec: &CrdSpec) -> ApiResource {
    ApiResource {
        api_version: spec.api_version(),
        group: spec.group.clone(),
        version: spec.storage_version.clone(),
        kind: spec.kind.clone(),
        plural: spec.plural.clone(),
    }
}

/// Counts the custom resources of a CRD's kind in every namespace, leaving out `release`'s own
/// when one is given.
async fn count_custom_resources(
    cluster: &Cluster,
    crd: &Value,
    release: Option<&ReleaseId>,
) -> Result<CustomResourceCount, KubeError> {
    let name = crd["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let crd_subject = format!("CustomResourceDefinition/{name}");
    let Some(spec) = CrdSpec::of(crd) else {
        return Ok(CustomResourceCount {
            crd: crd_subject,
            kind: String::new(),
            by_namespace: BTreeMap::new(),
        });
    };
    let served = ServedKind {
        resource: crd_resource(&spec),
        namespaced: spec.namespaced,
        cached: false,
    };
    let what = format!("cannot count {} objects", spec.kind);
    let reading = Reading {
        what: &what,
        subject: Some(&crd_subject),
    };
    let list = cluster
        .list_served(&served, None, &ListParams::default(), reading)
        .await?
        .objects()?;
    let mut by_namespace = BTreeMap::new();
    for object in list {
        let metadata = &object["metadata"];
        if release.is_some_and(|r| r.labels_match(&object)) {
            continue;
        }
        let namespace = metadata["namespace"].as_str().unwrap_or("(cluster)");
        *by_namespace.entry(namespace.to_owned()).or_insert(0) += 1;
    }
    let kind = spec.kind;
    Ok(CustomResourceCount {
        crd: crd_subject,
        kind,
        by_namespace,
    })
}

/// Deletes stage by stage, waiting until each stage's objects are gone.
///
/// # Errors
/// Refused deletions, or a stage whose objects are not gone by the deadline.
pub async fn remove(
    cluster: &Cluster,
    removal: &Removal,
    wait: WaitOptions,
    reporter: &dyn Reporter,
) -> Result<(), KubeError> {
    for (stage, objects) in &removal.stages {
        reporter.report(Event::Stage {
            name: format!("deleting {stage}"),
            objects: objects.len(),
        });
        // Every object of the stage is tried, 8 at a time; a stage with refusals stops the
        // removal, since later stages depend on it (custom resources need their operator).
        let refused: Vec<KubeError> = stream::iter(objects)
            .map(|object| {
                delete_one(
                    cluster,
                    &object.id.api_version,
                    &object.id.kind,
                    object.id.namespace.as_deref(),
                    &object.id.name,
                    Action::Delete,
                    reporter,
                )
            })
            .buffered(IN_FLIGHT)
            .filter_map(|result| async move { result.err() })
            .collect()
            .await;
        if !refused.is_empty() {
            return Err(KubeError::combine(refused, |n| {
                format!("the server rejected {n} object(s)")
            }));
        }
        // The whole stage is gone before the next begins; its objects are watched together.
        stream::iter(objects)
            .map(|object| wait_gone(cluster, object, wait, reporter))
            .buffer_unordered(READS_IN_FLIGHT)
            .try_collect::<Vec<()>>()
            .await?;
    }
    Ok(())
}

/// Deletes one object in the background (an object already gone is fine) and reports `action`.
///
/// # Errors
/// Discovery failures and refused deletions, naming the object.
pub(super) async fn delete_one(
    cluster: &Cluster,
    api_version: &str,
    kind: &str,
    namespace: Option<&str>,
    name: &str,
    action: Action,
    reporter: &dyn Reporter,
) -> Result<(), KubeError> {
    let Some(served) = cluster.find(api_version, kind).await? else {
        return Ok(());
    };
    let api = cluster.api(&served, namespace);
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..DeleteParams::default()
    };
    let subject = crate::kube::object::subject(kind, namespace, name);
    match retry(|| api.delete(name, &params)).await {
        Ok(_) => reporter.report(Event::Done { subject, action }),
        Err(kube::Error::Api(status)) if status.code == 404 => {}
        Err(err) => {
            return Err(KubeError::api(
                format!("cannot {action} the object"),
                Some(&subject),
                &err,
            ));
        }
    }
    Ok(())
}

/// Waits until an object no longer exists (finalizers done), with backoff up to a second.
async fn wait_gone(
    cluster: &Cluster,
    object: &InventoryObject,
    wait: WaitOptions,
    reporter: &dyn Reporter,
) -> Result<(), KubeError> {
    let Some(served) = cluster
        .find(&object.id.api_version, &object.id.kind)
        .await?
    else {
        return Ok(());
    };
    let api = cluster.api(&served, object.id.namespace.as_deref());
    let mut delay = Duration::from_millis(50);
    let mut told = false;
    loop {
        match retry(|| api.get_opt(&object.id.name)).await {
            Ok(None) => return Ok(()),
            Ok(Some(live)) => {
                if !told {
                    let finalizers = live.metadata.finalizers.clone().unwrap_or_default();
                    let status = if finalizers.is_empty() {
                        "being deleted".to_owned()
                    } else {
                        format!("waiting for finalizers {}", finalizers.join(", "))
                    };
                    reporter.report(Event::Waiting {
                        subject: object.id.subject(),
                        status,
                    });
                    told = true;
                }
            }
            Err(kube::Error::Api(status)) if status.code == 404 => return Ok(()),
            Err(err) => {
                return Err(KubeError::api(
                    "cannot check the deletion",
                    Some(&object.id.subject()),
                    &err,
                ));
            }
        }
        if tokio::time::Instant::now() + delay > wait.deadline {
            return Err(KubeError::Timeout {
                waiting: vec![(
                    object.id.subject(),
                    "still exists (finalizers or a stuck controller)".into(),
                )],
            });
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::ObjectRef;

    fn object(api_version: &str, kind: &str, namespace: Option<&str>) -> InventoryObject {
        InventoryObject {
            id: ObjectRef {
                api_version: api_version.into(),
                kind: kind.into(),
                namespace: namespace.map(str::to_owned),
                name: "x".into(),
            },
            component: String::new(),
            digest: String::new(),
            adopted: false,
        }
    }

    #[test]
    fn custom_resources_go_first_and_crds_last() {
        let order = |o: &InventoryObject| STAGES[stage_of(o)];
        assert_eq!(
            order(&object("example.com/v1", "Widget", Some("d"))),
            "custom resources"
        );
        assert_eq!(
            order(&object("apps/v1", "Deployment", Some("d"))),
            "workloads"
        );
        assert_eq!(
            order(&object("v1", "Service", Some("d"))),
            "services and configuration"
        );
        assert_eq!(
            order(&object("rbac.authorization.k8s.io/v1", "ClusterRole", None)),
            "rbac and cluster objects"
        );
        assert_eq!(order(&object("v1", "Namespace", None)), "namespaces");
        assert_eq!(
            order(&object(
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                None
            )),
            "crds"
        );
    }
}
