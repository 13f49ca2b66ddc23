//! One `up` under the lock: the run's record first, then apply, prune and wait, and the record
//! again at every change of phase.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::bundle::Rendered;
use crate::bundle::objects::digest;
use crate::kube::client::Cluster;
use crate::kube::client::IN_FLIGHT;
use crate::kube::error::KubeError;
use crate::kube::progress::Reporter;
use crate::kube::release::apply::{ApplyOptions, apply, prune};
use crate::kube::release::inventory::{
    Changes, Inventory, InventoryObject, Phase, write_inventory,
};
use crate::kube::release::lock::user_at_host;
use crate::kube::release::plan::{Action, Plan};
use crate::kube::release::wait::{WaitOptions, WaitTarget, wait_ready};

/// How far `up` goes.
#[derive(Debug, Clone, Copy)]
pub struct ConvergeOptions {
    /// How long to wait for readiness (gated components and the end).
    pub timeout: Duration,
    /// Apply and record without waiting for readiness.
    pub no_wait: bool,
}

impl Inventory {
    /// The record of this run, before anything is written: the next revision, phase applying,
    /// and every object that may exist (previous ∪ rendered), so a crash forgets nothing.
    pub fn begin(
        rendered: &Rendered,
        plan: &Plan,
        release: &str,
        profile: Option<String>,
        previous: Option<&Inventory>,
    ) -> Self {
        let mut objects: Vec<InventoryObject> = rendered
            .objects
            .iter()
            .map(|o| InventoryObject {
                id: o.id.clone(),
                component: o.component.clone(),
                digest: digest(&o.value),
                // Taken over now, or taken over by an earlier run: either way it predates the
                // release.
                adopted: plan
                    .objects
                    .iter()
                    .any(|p| p.adopts() && p.id.same_as(&o.id))
                    || previous.is_some_and(|prev| {
                        prev.objects
                            .iter()
                            .any(|old| old.adopted && old.id.same_as(&o.id))
                    }),
            })
            .collect();
        if let Some(previous) = previous {
            for old in &previous.objects {
                if !objects.iter().any(|o| old.id.same_as(&o.id)) {
                    objects.push(old.clone());
                }
            }
        }
        let now = now();
        let revision = previous.map_or(1, |p| p.revision + 1);
        let mut stored = previous.map(|p| p.stored.clone()).unwrap_or_default();
        stored.keep(revision, rendered);
        Self {
            release: release.to_owned(),
            addon: rendered.addon.clone(),
            version: rendered.version.clone(),
            profile,
            pin: None,
            values_digest: rendered.values_digest.clone(),
            bundle_digest: Some(rendered.bundle_digest.clone()).filter(|d| !d.is_empty()),
            revision,
            phase: Phase::Applying,
            started_at: now.clone(),
            updated_at: now,
            actor: user_at_host(),
            plane_version: env!("CARGO_PKG_VERSION").to_owned(),
            objects,
            history: previous.map(|p| p.history.clone()).unwrap_or_default(),
            instance: rendered.instance.clone(),
            changes: Some(Changes {
                created: plan.count(Action::Create),
                configured: plan.count(Action::Configure),
                pruned: plan.count(Action::Prune),
            }),
            rollback_of: None,
            declared: rendered.declared.clone(),
            stored,
        }
    }

    /// Moves the record to `phase`, now.
    pub fn enter(&mut self, phase: Phase) {
        self.phase = phase;
        self.updated_at = now();
    }
}

/// Applies a checked plan under the lock: the record first (everything that may exist is listed
/// before anything is written), then apply with the gated waits, prune, the final wait, and the
/// record of a deployed revision.
///
/// # Errors
/// The first failure of a write, a wait or the record.
pub async fn converge(
    cluster: &Cluster,
    state_ns: &str,
    plan: &Plan,
    rendered: &Rendered,
    inventory: &mut Inventory,
    options: ConvergeOptions,
    reporter: &dyn Reporter,
) -> Result<(), KubeError> {
    let client = cluster.client();
    let wait = WaitOptions::within(options.timeout);
    if plan.has_changes() {
        write_inventory(client, state_ns, inventory).await?;
        let gated: BTreeSet<String> = if options.no_wait {
            BTreeSet::new()
        } else {
            rendered.gated.clone()
        };
        let apply_options = ApplyOptions {
            concurrency: IN_FLIGHT,
            components: rendered.components.clone(),
            gated,
            wait,
        };
        apply(cluster, plan, &apply_options, reporter).await?;
        if plan.count(Action::Prune) > 0 {
            inventory.enter(Phase::Pruning);
            write_inventory(client, state_ns, inventory).await?;
            prune(cluster, plan, reporter).await?;
        }
    }
    // From here on the inventory lists exactly what is rendered (and what was kept on purpose).
    inventory.objects.retain(|o| {
        rendered.objects.iter().any(|r| o.id.same_as(&r.id))
            || plan
                .objects
                .iter()
                .any(|p| p.action == Action::Skip && o.id.same_as(&p.id))
    });
    if !options.no_wait {
        let targets: Vec<WaitTarget> =
            plan.wait_targets(plan.objects.iter().filter(|o| o.needs_wait()));
        wait_ready(cluster, &targets, &plan.declared, wait, reporter).await?;
    }
    inventory.enter(Phase::Deployed);
    inventory.push_history();
    write_inventory(client, state_ns, inventory).await
}

/// Records a run that failed (or was interrupted) once it had started: phase failed, kept in
/// the history. Best effort: the original failure is what the user needs to see.
pub async fn record_failure(cluster: &Cluster, state_ns: &str, inventory: &mut Inventory) {
    inventory.enter(Phase::Failed);
    inventory.push_history();
    let _ = write_inventory(cluster.client(), state_ns, inventory).await;
}

/// Now, to the second, as RFC 3339.
pub fn now() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .map(|t| t.to_string())
        .unwrap_or_default()
}
