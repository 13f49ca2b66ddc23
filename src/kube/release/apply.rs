//! Apply a plan in stages with server-side apply (field manager `plane`), then prune.

use std::collections::BTreeSet;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures::{StreamExt, stream};
use kube::api::Patch;
use serde_json::{Map, Value};

use crate::kinds::{self, apply_rank};
use crate::kube::client::Cluster;
use crate::kube::client::discovery::ServedKind;
use crate::kube::client::retry::retry;
use crate::kube::error::KubeError;
use crate::kube::progress::{Event, Reporter};
use crate::kube::release::plan::{Action, Plan, PlannedObject};
use crate::kube::release::ssa::apply_params;
use crate::kube::release::wait::{WaitOptions, WaitTarget, wait_ready};

/// The order and pace of an apply: components in dependency order, which of them dependents
/// wait for, how many writes at once, and the deadline of those waits.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Writes in flight at once inside a stage.
    pub concurrency: usize,
    /// Components in dependency order.
    pub components: Vec<String>,
    /// Components whose dependents wait until they are ready.
    pub gated: BTreeSet<String>,
    pub wait: WaitOptions,
}

/// Applies every `create` and `configure` of the plan: CRDs and Namespaces first (waiting until
/// the CRDs are established and served), then component by component in kind-priority order.
/// Sends nothing for `unchanged` objects.
///
/// # Errors
/// The first stage that fails, naming every object the server refused.
pub async fn apply(
    cluster: &Cluster,
    plan: &Plan,
    options: &ApplyOptions,
    reporter: &dyn Reporter,
) -> Result<(), KubeError> {
    let applies = |o: &&PlannedObject| matches!(o.action, Action::Create | Action::Configure);
    let first_stage: Vec<&PlannedObject> = plan
        .objects
        .iter()
        .filter(applies)
        .filter(|o| kinds::comes_first(&o.id.kind))
        .collect();
    if !first_stage.is_empty() {
        reporter.report(Event::Stage {
            name: "applying crds and namespaces".into(),
            objects: first_stage.len(),
        });
        apply_group(cluster, &first_stage, options.concurrency, reporter).await?;
    }
    // Every kind the render installs is served before anything of it is dry-run or applied,
    // whatever the plan did with its CRD: one an interrupted run created a moment ago is
    // `unchanged` here yet may not be established. A CRD the plan read established needs no wait.
    let crds: Vec<WaitTarget> = plan.wait_targets(
        plan.objects
            .iter()
            .filter(|o| o.id.kind == "CustomResourceDefinition" && o.needs_wait()),
    );
    wait_ready(cluster, &crds, &plan.declared, options.wait, reporter).await?;
    wait_served(cluster, plan, options.wait).await?;
    validate(cluster, plan, options.concurrency).await?;
    for component in &options.components {
        let objects: Vec<&PlannedObject> = plan
            .objects
            .iter()
            .filter(applies)
            .filter(|o| &o.component == component && !kinds::comes_first(&o.id.kind))
            .collect();
        if objects.is_empty() {
            continue;
        }
        reporter.report(Event::Stage {
            name: format!("applying {component}"),
            objects: objects.len(),
        });
        // Same kind priority → one concurrent batch; batches in order.
        let mut start = 0;
        while start < objects.len() {
            let priority = apply_rank(&objects[start].id.kind);
            let end = objects[start..]
                .iter()
                .position(|o| apply_rank(&o.id.kind) != priority)
                .map_or(objects.len(), |n| start + n);
            apply_group(cluster, &objects[start..end], options.concurrency, reporter).await?;
            start = end;
        }
        if options.gated.contains(component) {
            let targets: Vec<WaitTarget> = plan.wait_targets(
                plan.objects
                    .iter()
                    .filter(|o| &o.component == component && o.desired.is_some()),
            );
            wait_ready(cluster, &targets, &plan.declared, options.wait, reporter).await?;
        }
    }
    Ok(())
}

/// Dry-runs every write the plan could not validate (objects in namespaces, or of kinds, the
/// release creates), now that those exist; stops before any of them is written when the server
/// rejects one, naming every rejection.
///
/// # Errors
/// The rejections, all at once.
async fn validate(cluster: &Cluster, plan: &Plan, concurrency: usize) -> Result<(), KubeError> {
    let unvalidated: Vec<&PlannedObject> = plan
        .objects
        .iter()
        .filter(|o| matches!(o.action, Action::Create | Action::Configure))
        .filter(|o| !o.dry_run_passed && o.generated_keys.is_none() && !o.binds_new_role)
        .filter(|o| !kinds::comes_first(&o.id.kind))
        .collect();
    let results: Vec<Result<(), KubeError>> = stream::iter(unvalidated)
        .map(|object| async move {
            let Some(desired) = &object.desired else {
                return Ok(());
            };
            let served = served(cluster, object).await?;
            let api = cluster.api(&served, object.id.namespace.as_deref());
            let params = apply_params().dry_run();
            let patch = Patch::Apply(desired);
            retry(|| api.patch(&object.id.name, &params, &patch))
                .await
                .map(drop)
                .map_err(|err| {
                    KubeError::api(
                        "the server rejected the object on dry-run",
                        Some(&object.subject),
                        &err,
                    )
                })
        })
        // A dry-run writes nothing: twice as many at once as the writes.
        .buffered(concurrency.max(1) * 2)
        .collect()
        .await;
    let rejected: Vec<KubeError> = results.into_iter().filter_map(Result::err).collect();
    if rejected.is_empty() {
        return Ok(());
    }
    Err(KubeError::Local {
        what: format!(
            "the server rejected {} object(s) on dry-run; nothing was written but the namespaces and CRDs",
            rejected.len()
        ),
        subject: None,
        reason: KubeError::listed(&rejected),
        hint: Some(
            "fix what the server names and run `plane up` again; `plane down` removes the namespaces and CRDs"
                .into(),
        ),
    })
}

/// Waits until discovery serves every kind the plan needs (after new CRDs), with backoff.
async fn wait_served(cluster: &Cluster, plan: &Plan, wait: WaitOptions) -> Result<(), KubeError> {
    let kinds: BTreeSet<(String, String)> = plan
        .objects
        .iter()
        .filter(|o| o.desired.is_some())
        .map(|o| (o.id.api_version.clone(), o.id.kind.clone()))
        .collect();
    for (api_version, kind) in kinds {
        if cluster.find(&api_version, &kind).await?.is_some() {
            continue;
        }
        // The cache may predate the CRD: ask again at once, then with backoff.
        let mut delay = Duration::from_millis(100);
        loop {
            if cluster.rediscover(&api_version, &kind).await?.is_some() {
                break;
            }
            if tokio::time::Instant::now() + delay > wait.deadline {
                return Err(KubeError::Local {
                    what: format!("the cluster does not serve {kind} in {api_version}"),
                    subject: None,
                    reason: "no matches for kind after its CRD was established".into(),
                    hint: Some("check the CRD's group, version and names".into()),
                });
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(2));
        }
    }
    Ok(())
}

async fn apply_group(
    cluster: &Cluster,
    objects: &[&PlannedObject],
    concurrency: usize,
    reporter: &dyn Reporter,
) -> Result<(), KubeError> {
    let results: Vec<Result<(), KubeError>> = stream::iter(objects)
        .map(|object| apply_one(cluster, object, reporter))
        .buffered(concurrency.max(1))
        .collect()
        .await;
    let errors: Vec<KubeError> = results.into_iter().filter_map(Result::err).collect();
    if errors.is_empty() {
        return Ok(());
    }
    Err(KubeError::combine(errors, |n| {
        format!("{n} objects could not be applied")
    }))
}

async fn served(cluster: &Cluster, object: &PlannedObject) -> Result<ServedKind, KubeError> {
    if let Some(served) = cluster
        .find(&object.id.api_version, &object.id.kind)
        .await?
    {
        return Ok(served);
    }
    cluster
        .rediscover(&object.id.api_version, &object.id.kind)
        .await?
        .ok_or_else(|| KubeError::Local {
            what: format!(
                "the cluster does not serve {} in {}",
                object.id.kind, object.id.api_version
            ),
            subject: Some(object.subject.clone()),
            reason: "no matches for kind".into(),
            hint: None,
        })
}

async fn apply_one(
    cluster: &Cluster,
    object: &PlannedObject,
    reporter: &dyn Reporter,
) -> Result<(), KubeError> {
    let Some(desired) = &object.desired else {
        return Ok(());
    };
    let mut body = desired.clone();
    let served = served(cluster, object).await?;
    let api = cluster.api(&served, object.id.namespace.as_deref());
    if let Some(keys) = &object.generated_keys {
        // Created once with fresh values; later applies (its labels moved) carry the live
        // values, read just before, so that they never change.
        let live = match object.action {
            Action::Create => None,
            _ => retry(|| api.get_opt(&object.id.name))
                .await
                .map_err(|err| {
                    KubeError::api(
                        "cannot read the generated Secret",
                        Some(&object.subject),
                        &err,
                    )
                })?,
        };
        match live.map(|live| served.typed(live)) {
            Some(live) if live["data"].is_object() => {
                if let Some(map) = body.as_object_mut() {
                    map.insert("data".into(), live["data"].clone());
                }
            }
            _ => fill_generated(&mut body, keys)?,
        }
    }
    let params = apply_params();
    let patch = Patch::Apply(&body);
    retry(|| api.patch(&object.id.name, &params, &patch))
        .await
        .map_err(|err| {
            KubeError::api(
                format!("cannot {} the object", object.action),
                Some(&object.subject),
                &err,
            )
        })?;
    reporter.report(Event::Done {
        subject: object.subject.clone(),
        action: object.action,
    });
    Ok(())
}

/// Puts random values under each key of a generated Secret. Never logged, never returned.
fn fill_generated(secret: &mut Value, keys: &[String]) -> Result<(), KubeError> {
    let mut data = Map::new();
    for key in keys {
        let mut bytes = [0u8; 24];
        getrandom::fill(&mut bytes).map_err(|err| KubeError::Local {
            what: "cannot generate a secret value".into(),
            subject: None,
            reason: err.to_string(),
            hint: None,
        })?;
        // URL-safe text a user can type, then base64 for the Secret's data field.
        let text = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        data.insert(key.clone(), Value::String(STANDARD.encode(text)));
    }
    if let Some(map) = secret.as_object_mut() {
        map.insert("data".into(), Value::Object(data));
    }
    Ok(())
}

/// Deletes the plan's `prune` objects, custom resources and workloads before what they need.
///
/// # Errors
/// Objects the server refused to delete; objects already gone are fine.
pub async fn prune(
    cluster: &Cluster,
    plan: &Plan,
    reporter: &dyn Reporter,
) -> Result<(), KubeError> {
    let mut objects: Vec<&PlannedObject> = plan
        .objects
        .iter()
        .filter(|o| o.action == Action::Prune)
        .collect();
    if objects.is_empty() {
        return Ok(());
    }
    objects.sort_by_key(|o| std::cmp::Reverse(apply_rank(&o.id.kind)));
    reporter.report(Event::Stage {
        name: "pruning".into(),
        objects: objects.len(),
    });
    for object in objects {
        crate::kube::release::delete::delete_one(
            cluster,
            &object.id.api_version,
            &object.id.kind,
            object.id.namespace.as_deref(),
            &object.id.name,
            Action::Prune,
            reporter,
        )
        .await?;
    }
    Ok(())
}
