//! The permissions a run needs, worked out from what it will do: the render (when the plan
//! itself was refused), the plan, or the removal; then checked all at once before any write.

use std::collections::BTreeSet;

use crate::bundle::Rendered;
use crate::kube::client::Cluster;
use crate::kube::error::KubeError;
use crate::kube::object::readiness;
use crate::kube::progress::Reporter;
use crate::kube::release::inventory::Inventory;
use crate::kube::release::plan::{Action, Plan};
use crate::kube::release::preflight::{Permission, check_access, resolve, warn_ingress_classes};

/// Every permission an `up` of `rendered` over `previous` could need, from the render alone;
/// kinds the cluster does not serve (and the render does not install) are refused here. For
/// when the plan itself was refused: this lists every denial at once rather than the first.
///
/// # Errors
/// [`KubeError::MissingKinds`], [`KubeError::Denied`], API failures.
pub async fn preflight_render(
    cluster: &Cluster,
    rendered: &Rendered,
    previous: Option<&Inventory>,
    state_ns: &str,
    reporter: &dyn Reporter,
) -> Result<(), KubeError> {
    let mut needs = state_needs(state_ns);
    let mut missing = Vec::new();
    for object in &rendered.objects {
        let id = &object.id;
        let Some(resolved) = resolve(cluster, &id.api_version, &id.kind, &rendered.objects).await?
        else {
            missing.push(format!("{} in {} (for {id})", id.kind, id.api_version));
            continue;
        };
        let namespace = id.namespace.clone().filter(|_| resolved.namespaced);
        let existed = previous.is_some_and(|p| p.objects.iter().any(|o| o.id.same_as(id)));
        let mut verbs = vec!["list", "patch"];
        if !existed {
            verbs.push("create");
        }
        if readiness::has_rule(&id.api_version, &id.kind, &rendered.declared) {
            verbs.push("watch");
        }
        if readiness::pod_selector(&object.value, &rendered.declared).is_some() {
            insert(&mut needs, "", "pods", namespace.as_ref(), &["watch"]);
        }
        insert(
            &mut needs,
            &resolved.group,
            &resolved.plural,
            namespace.as_ref(),
            &verbs,
        );
    }
    if !missing.is_empty() {
        return Err(KubeError::MissingKinds { missing });
    }
    for old in previous.map(|p| p.objects.as_slice()).unwrap_or_default() {
        let rendered_now = rendered.objects.iter().any(|o| old.id.same_as(&o.id));
        if rendered_now {
            continue;
        }
        if let Some(resolved) = resolve(cluster, &old.id.api_version, &old.id.kind, &[]).await? {
            let namespace = old.id.namespace.clone().filter(|_| resolved.namespaced);
            insert(
                &mut needs,
                &resolved.group,
                &resolved.plural,
                namespace.as_ref(),
                &["list", "delete"],
            );
        }
    }
    check_access(cluster, needs).await?;
    warn_ingress_classes(cluster, &rendered.objects, reporter).await
}

/// The permissions the writes of a plan need, and none for what it leaves alone: create and
/// patch what it creates, patch what it changes, list and delete what it prunes, list and watch
/// what `up` will wait for, and the release's record and lock. The plan's own reads and
/// dry-runs have shown the rest; when they were refused, [`preflight_render`] lists every
/// denial instead. Warns, meanwhile, about Ingresses whose IngressClass does not exist.
///
/// # Errors
/// [`KubeError::Denied`], API failures.
pub async fn preflight_plan(
    cluster: &Cluster,
    rendered: &Rendered,
    plan: &Plan,
    state_ns: &str,
    reporter: &dyn Reporter,
) -> Result<(), KubeError> {
    let mut needs = state_needs(state_ns);
    for object in &plan.objects {
        let waited = object.needs_wait();
        let mut verbs = match object.action {
            Action::Create => vec!["create", "patch"],
            Action::Configure => vec!["patch"],
            Action::Prune | Action::Delete => vec!["list", "delete"],
            Action::Unchanged | Action::Skip => Vec::new(),
        };
        if waited && readiness::has_rule(&object.id.api_version, &object.id.kind, &plan.declared) {
            verbs.extend(["list", "watch"]);
        }
        let pods = waited
            && object
                .desired
                .as_ref()
                .and_then(|desired| readiness::pod_selector(desired, &plan.declared))
                .is_some();
        if verbs.is_empty() && !pods {
            continue;
        }
        // The plan has refused every kind the cluster does not serve and the render does not
        // install.
        let Some(resolved) = resolve(
            cluster,
            &object.id.api_version,
            &object.id.kind,
            &rendered.objects,
        )
        .await?
        else {
            continue;
        };
        let namespace = object.id.namespace.clone().filter(|_| resolved.namespaced);
        if pods {
            insert(
                &mut needs,
                "",
                "pods",
                namespace.as_ref(),
                &["list", "watch"],
            );
        }
        insert(
            &mut needs,
            &resolved.group,
            &resolved.plural,
            namespace.as_ref(),
            &verbs,
        );
    }
    let (access, classes) = tokio::join!(
        check_access(cluster, needs),
        warn_ingress_classes(cluster, &rendered.objects, reporter),
    );
    access?;
    classes
}

/// The permissions `down` needs: its record and lock, and to read, list and delete every
/// recorded object; with `include_crds`, to count custom resources cluster-wide before deleting
/// their CRDs.
///
/// # Errors
/// [`KubeError::Denied`], API failures.
pub async fn preflight_removal(
    cluster: &Cluster,
    inventory: &Inventory,
    state_ns: &str,
    include_crds: bool,
) -> Result<(), KubeError> {
    cluster
        .prefetch(inventory.objects.iter().map(|o| o.id.api_version.as_str()))
        .await?;
    let mut needs = state_needs(state_ns);
    insert(
        &mut needs,
        "",
        "secrets",
        Some(&state_ns.to_owned()),
        &["delete"],
    );
    for object in &inventory.objects {
        let Some(resolved) = resolve(cluster, &object.id.api_version, &object.id.kind, &[]).await?
        else {
            continue;
        };
        let namespace = object.id.namespace.clone().filter(|_| resolved.namespaced);
        insert(
            &mut needs,
            &resolved.group,
            &resolved.plural,
            namespace.as_ref(),
            &["get", "list", "delete"],
        );
    }
    if include_crds {
        for object in inventory
            .objects
            .iter()
            .filter(|o| o.id.kind == "CustomResourceDefinition")
        {
            if let Some((plural, group)) = object.id.name.split_once('.') {
                insert(&mut needs, group, plural, None, &["list"]);
            }
        }
    }
    check_access(cluster, needs).await
}

/// What every `up` and `down` needs in the state namespace: the inventory Secret and the lock.
fn state_needs(state_ns: &str) -> BTreeSet<Permission> {
    let mut needs = BTreeSet::new();
    let namespace = state_ns.to_owned();
    insert(
        &mut needs,
        "",
        "secrets",
        Some(&namespace),
        &["get", "patch", "create"],
    );
    insert(
        &mut needs,
        "coordination.k8s.io",
        "leases",
        Some(&namespace),
        &["get", "create", "update", "delete"],
    );
    needs
}

/// Adds the permission for each verb on a resource in a namespace (or cluster-wide).
fn insert(
    needs: &mut BTreeSet<Permission>,
    group: &str,
    resource: &str,
    namespace: Option<&String>,
    verbs: &[&'static str],
) {
    for verb in verbs {
        needs.insert(Permission {
            verb,
            group: group.to_owned(),
            resource: resource.to_owned(),
            namespace: namespace.cloned(),
        });
    }
}
