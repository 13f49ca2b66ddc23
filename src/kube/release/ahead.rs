//! What `up` and `diff` read before they decide, started in one wave once discovery is known:
//! the plan's lists, the ownership looks, the IngressClasses, a team instance's namespace and
//! platform operator, and for `up` the lock and the state namespace's rules. Each step then takes
//! its answer instead of asking in turn.

use std::collections::BTreeSet;

use crate::bundle::{ObjectRef, ReleaseId, Rendered};
use crate::kube::client::Cluster;
use crate::kube::client::ahead::ReadAhead;
use crate::kube::release::{lock, ownership, plan, preflight};

/// Which command reads ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    /// `diff` and `up --dry-run`: the plan and its looks.
    Diff,
    /// `up`: also the lock, and the rules of the state namespace for the permission preflight.
    Up,
}

/// Starts every read the plan and its checks will make of `rendered`. Never fails: a read that
/// cannot start here is made by the step that needs it, which reports its failure.
pub async fn read_ahead(
    cluster: &Cluster,
    rendered: &Rendered,
    release: &ReleaseId,
    state_namespace: &str,
    reader: Reader,
) {
    let wide = ownership::wide_lists(rendered);
    let classes = preflight::ingress_classes(&rendered.objects);
    let mut versions: BTreeSet<&str> = wide.iter().map(|(v, _, _)| v.as_str()).collect();
    versions.insert("networking.k8s.io/v1");
    versions.insert("coordination.k8s.io/v1");
    if cluster.prefetch(versions).await.is_err() {
        return;
    }
    let Ok(lists) = plan::live_lists(cluster, &rendered.objects, None).await else {
        return;
    };
    let selector = plan::live_selector(release);
    let mut reads: Vec<ReadAhead> = lists
        .into_iter()
        .map(|(served, namespace)| ReadAhead::List {
            served,
            namespace,
            selector: selector.clone(),
        })
        .collect();
    for (api_version, kind, selector) in wide {
        if let Ok(Some(served)) = cluster.find(&api_version, &kind).await {
            reads.push(ReadAhead::List {
                served,
                namespace: None,
                selector,
            });
        }
    }
    if let Ok(Some(served)) = cluster.find("networking.k8s.io/v1", "IngressClass").await {
        reads.extend(classes.into_iter().map(|class| ReadAhead::Get {
            served: served.clone(),
            namespace: None,
            name: class.to_owned(),
        }));
    }
    if let Some(namespace) = &rendered.instance {
        // A team instance's checks: its namespace, and the platform's operator.
        if let Ok(Some(served)) = cluster.find("v1", "Namespace").await {
            reads.push(ReadAhead::Get {
                served,
                namespace: None,
                name: namespace.clone(),
            });
        }
        for detect in rendered.platform_operator().iter().flat_map(|e| &e.detect) {
            if let Ok(Some(served)) = cluster.find(&detect.api_version, &detect.kind).await {
                reads.push(ReadAhead::List {
                    served,
                    namespace: None,
                    selector: detect.selector.clone(),
                });
            }
        }
    }
    if reader == Reader::Up {
        let ObjectRef {
            namespace, name, ..
        } = lock::lock_ref(state_namespace, &release.name);
        if let Ok(Some(served)) = cluster.find("coordination.k8s.io/v1", "Lease").await {
            reads.push(ReadAhead::Get {
                served,
                namespace,
                name,
            });
        }
        reads.push(ReadAhead::Rules {
            namespace: state_namespace.to_owned(),
        });
    }
    cluster.read_ahead(reads);
}
