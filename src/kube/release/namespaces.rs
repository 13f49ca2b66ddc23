//! Before `down` deletes a namespace the release created: does anything else live there?
//! Deleting a namespace deletes everything in it, so one that holds other owners' objects is kept.

use std::collections::{BTreeMap, BTreeSet};

use futures::{StreamExt, TryStreamExt, stream};
use kube::api::ListParams;
use serde_json::Value;

use crate::bundle::ReleaseId;
use crate::kinds;
use crate::kube::client::Cluster;
use crate::kube::client::IN_FLIGHT;
use crate::kube::client::discovery::ServedKind;
use crate::kube::client::read::{Listing, Reading};
use crate::kube::error::KubeError;

/// A service-account token: it belongs to its ServiceAccount, which Kubernetes makes in every
/// namespace.
fn is_token(kind: &str, object: &Value) -> bool {
    kind == "Secret" && object["type"] == "kubernetes.io/service-account-token"
}

/// Namespaces a cluster's publishers may leave out (Istio skips them, for example).
const SYSTEM_NAMESPACES: &[&str] = &["kube-system", "kube-public", "kube-node-lease"];

/// Why each namespace of `namespaces` must stay: up to a few objects in it that are not
/// `release`'s, or the kinds that could not be checked. `None` when only the release's objects
/// are there.
///
/// `custom_kinds` are (apiVersion, kind) of the custom resources the release's CRDs define: work
/// of that kind left in the namespace would also lose its operator.
///
/// Objects the cluster itself publishes into every namespace (`kube-root-ca.crt`, OpenShift's
/// `openshift-service-ca.crt`, a service mesh's root certificate) are nobody's work: an object
/// counts as published when an object of the same kind and name is in every other namespace
/// that is not the release's (system namespaces may lack it) and in at least two of them.
///
/// # Errors
/// API failures other than a refused or unserved list.
pub async fn namespaces_to_keep(
    cluster: &Cluster,
    namespaces: &[String],
    release: &ReleaseId,
    custom_kinds: &[(String, String)],
) -> Result<Vec<Option<String>>, KubeError> {
    // Pods and ReplicaSets are not among them: their owners are. Objects with an owner
    // reference are left out too: their owner is what counts.
    let kinds: Vec<(String, String)> = kinds::work_kinds()
        .into_iter()
        .map(|k| (k.api_version.to_owned(), k.kind.to_owned()))
        .chain(custom_kinds.iter().cloned())
        .collect();
    let lookups: Vec<(&String, &(String, String))> = namespaces
        .iter()
        .flat_map(|ns| kinds.iter().map(move |kind| (ns, kind)))
        .collect();
    let found: Vec<Result<KindScan, KubeError>> = stream::iter(lookups)
        .map(|(namespace, (api_version, kind))| {
            others_of_kind(cluster, namespace, release, api_version, kind)
        })
        .buffered(IN_FLIGHT)
        .collect()
        .await;
    let mut per_namespace: Vec<(Vec<ForeignObject>, Vec<String>)> =
        vec![Default::default(); namespaces.len()];
    for (index, found) in found.into_iter().enumerate() {
        let (others, unchecked) = &mut per_namespace[index / kinds.len()];
        match found? {
            KindScan::Objects(found) => others.extend(found),
            KindScan::Unchecked(plural) => unchecked.push(plural),
        }
    }
    let candidates: BTreeMap<PublishedName, ServedKind> = per_namespace
        .iter()
        .flat_map(|(others, _)| others.iter().map(|o| (o.candidate(), o.served.clone())))
        .collect();
    let published = published(cluster, candidates, namespaces).await?;
    Ok(per_namespace
        .into_iter()
        .map(|(others, unchecked)| {
            let foreign: Vec<String> = others
                .into_iter()
                .filter(|o| !published.contains(&o.candidate()))
                .map(|o| format!("{}/{}", o.served.resource.kind, o.name))
                .collect();
            if !foreign.is_empty() {
                let shown = foreign.len().min(3);
                let more = foreign.len() - shown;
                let mut list = foreign[..shown].join(", ");
                if more > 0 {
                    list.push_str(&format!(" and {more} more"));
                }
                return Some(format!(
                    "it holds objects that are not part of this release: {list}"
                ));
            }
            (!unchecked.is_empty()).then(|| {
                format!(
                    "it could not be checked for other owners' objects (no permission to list {})",
                    unchecked.join(", ")
                )
            })
        })
        .collect())
}

/// Of the candidates, the (kind, name) pairs the cluster publishes into every namespace. One
/// LIST of namespaces, then one LIST per candidate by name across all namespaces. Anything that
/// cannot be read counts as not published, so its namespace stays.
async fn published(
    cluster: &Cluster,
    candidates: BTreeMap<PublishedName, ServedKind>,
    release_namespaces: &[String],
) -> Result<BTreeSet<PublishedName>, KubeError> {
    let mut published = BTreeSet::new();
    if candidates.is_empty() {
        return Ok(published);
    }
    let Some(namespace_kind) = cluster.find("v1", "Namespace").await? else {
        return Ok(published);
    };
    let reading = Reading {
        what: "cannot list namespaces",
        subject: None,
    };
    let listing = cluster
        .list_served(&namespace_kind, None, &ListParams::default(), reading)
        .await?;
    let Listing::Objects(all) = listing else {
        return Ok(published);
    };
    let others: BTreeSet<String> = all
        .iter()
        .filter(|ns| ns["metadata"]["deletionTimestamp"].is_null())
        .filter_map(|ns| ns["metadata"]["name"].as_str().map(str::to_owned))
        .filter(|name| !release_namespaces.contains(name))
        .collect();
    let required: BTreeSet<&String> = others
        .iter()
        .filter(|ns| !SYSTEM_NAMESPACES.contains(&ns.as_str()))
        .collect();
    let holders: Vec<Option<(PublishedName, BTreeSet<String>)>> = stream::iter(candidates)
        .map(|(candidate, served)| async move {
            let params = ListParams::default().fields(&format!("metadata.name={}", candidate.2));
            let what = format!("cannot list {} objects", served.resource.kind);
            let reading = Reading {
                what: &what,
                subject: None,
            };
            let objects = match cluster.list_served(&served, None, &params, reading).await? {
                Listing::Objects(objects) => objects,
                Listing::NotServed => Vec::new(),
                Listing::Forbidden(_) => return Ok(None),
            };
            let holders = objects
                .iter()
                .filter_map(|o| o["metadata"]["namespace"].as_str().map(str::to_owned))
                .collect();
            Ok(Some((candidate, holders)))
        })
        .buffered(IN_FLIGHT)
        .try_collect()
        .await?;
    for (candidate, namespaces) in holders.into_iter().flatten() {
        let outside = namespaces.iter().filter(|ns| others.contains(*ns)).count();
        if outside >= 2 && required.iter().all(|ns| namespaces.contains(*ns)) {
            published.insert(candidate);
        }
    }
    Ok(published)
}

/// An object in the namespace that is not the release's.
#[derive(Debug, Clone)]
struct ForeignObject {
    served: ServedKind,
    name: String,
}

/// (apiVersion, kind, name): what may be published under the same name in every namespace.
type PublishedName = (String, String, String);

impl ForeignObject {
    fn candidate(&self) -> PublishedName {
        (
            self.served.resource.api_version.clone(),
            self.served.resource.kind.clone(),
            self.name.clone(),
        )
    }
}

/// What one kind's list in the namespace found.
enum KindScan {
    /// Objects of other owners (none, if the kind is not served or only the release's are there).
    Objects(Vec<ForeignObject>),
    /// The list was refused: this plural could not be checked.
    Unchecked(String),
}

async fn others_of_kind(
    cluster: &Cluster,
    namespace: &str,
    release: &ReleaseId,
    api_version: &str,
    kind: &str,
) -> Result<KindScan, KubeError> {
    let Some(served) = cluster.find(api_version, kind).await? else {
        return Ok(KindScan::Objects(Vec::new()));
    };
    let listing = cluster
        .list_objects(api_version, kind, Some(namespace), &ListParams::default())
        .await?;
    let list = match listing {
        Listing::Objects(objects) => objects,
        Listing::NotServed => Vec::new(),
        Listing::Forbidden(_) => return Ok(KindScan::Unchecked(served.resource.plural.clone())),
    };
    let mut others = Vec::new();
    for value in list {
        let metadata = &value["metadata"];
        let owned = metadata["ownerReferences"]
            .as_array()
            .is_some_and(|refs| !refs.is_empty());
        if release.labels_match(&value) || owned || is_token(kind, &value) {
            continue;
        }
        others.push(ForeignObject {
            served: served.clone(),
            name: metadata["name"].as_str().unwrap_or_default().to_owned(),
        });
    }
    Ok(KindScan::Objects(others))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn service_account_tokens_belong_to_their_account() {
        let token = json!({"metadata": {"name": "default-token-x"}, "type": "kubernetes.io/service-account-token"});
        let password = json!({"metadata": {"name": "db"}, "type": "Opaque"});
        assert!(is_token("Secret", &token));
        assert!(!is_token("Secret", &password));
        assert!(!is_token("ConfigMap", &token));
    }
}
