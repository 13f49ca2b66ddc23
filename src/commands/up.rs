//! `plane up`: render → connect → plan → confirm → record → apply → prune → wait → record.

use std::collections::BTreeSet;

use super::{cluster, diff, owners, template};
use crate::bundle::Rendered;
use crate::cli::{PlanFormat, UpArgs};
use crate::error::{Error, Problem, Status};
use crate::kube::{
    self, Action, ApplyOptions, Inventory, InventoryObject, KubeError, Phase, Plan, Resources,
    WaitOptions,
};
use crate::ui::{Printer, Progress};

pub fn run(args: &UpArgs, printer: &Printer) -> Result<Status, Error> {
    let (rendered, profile) = template::render_with_profile(&args.render)?;
    let release = args
        .render
        .release
        .clone()
        .unwrap_or_else(|| args.render.addon.clone());
    let state_ns = args.render.state_namespace.clone();
    let runtime = cluster::runtime()?;
    runtime.block_on(async {
        let (target, resources) =
            cluster::connect(&args.cluster, profile.as_ref(), printer).await?;
        let client = target.client.clone();
        let previous = match cluster::read_previous(&resources, &rendered, &state_ns, &release)
            .await
        {
            Ok(previous) => previous,
            Err(err) if err.code() == Some(403) && !args.dry_run => {
                // Credentials that cannot read the record lack more: the preflight lists every
                // denial at once instead of this one alone.
                let progress = printer.progress();
                cluster::preflight_up(&resources, &rendered, None, &state_ns, &progress).await?;
                return Err(cluster::failed(&err));
            }
            Err(err) => return Err(cluster::failed(&err)),
        };
        cluster::refuse_empty_render(&rendered, previous.as_ref())?;
        if args.dry_run {
            let plan = kube::plan(&resources, &rendered.objects, &release, previous.as_ref())
                .await
                .map_err(|e| cluster::failed(&e))?;
            let ownership = owners::find(&resources, &rendered, &plan, &release, &state_ns).await?;
            owners::show(&ownership, printer);
            owners::warn_plan(&plan, printer);
            diff::show(&plan, PlanFormat::Diff, printer)?;
            return Ok(Status::Success);
        }
        let progress = printer.progress();
        let run = Run {
            args,
            printer,
            progress: &progress,
            rendered: &rendered,
            release: &release,
            state_ns: &state_ns,
            resources: &resources,
        };
        // Plan and confirm before the lock, so a refusal writes nothing at all.
        let plan = run.plan_and_check(previous.as_ref(), "plan").await?;
        let lock = kube::lock(&client, &state_ns, &release, args.wait_for_lock, &progress)
            .await
            .map_err(|e| cluster::failed(&e))?;
        let planned = Planned { plan, previous };
        let result = run
            .locked(
                profile.as_ref().map(|p| p.name.clone()),
                planned,
                &cluster::Guard::new(&lock),
            )
            .await;
        progress.finish();
        lock.release().await;
        result
    })
}

/// A plan and the inventory it was made against.
struct Planned {
    plan: Plan,
    previous: Option<Inventory>,
}

/// One `up`: its inputs, where it reports, and the cluster it talks to.
struct Run<'a> {
    args: &'a UpArgs,
    printer: &'a Printer,
    progress: &'a Progress,
    rendered: &'a Rendered,
    release: &'a str,
    state_ns: &'a str,
    resources: &'a Resources,
}

impl Run<'_> {
    /// The plan against `previous`, and every check before a write: the permission preflight
    /// (with the IngressClass warning), the ownership step, the RayCluster autoscaling warning
    /// and the prune confirmation. `up` calls it before the lock and again when the release
    /// changed while it waited for the lock: the plan it applies is always a checked one.
    async fn plan_and_check(
        &self,
        previous: Option<&Inventory>,
        headline: &str,
    ) -> Result<Plan, Error> {
        let (resources, rendered) = (self.resources, self.rendered);
        // The plan only reads and dry-runs; the preflight then checks what its writes need.
        let plan = match kube::plan(resources, &rendered.objects, self.release, previous).await {
            Ok(plan) => plan,
            Err(err) => {
                // A refused read or dry-run, or a kind the cluster lacks: say everything the
                // run would lack, all at once, rather than the first refusal alone.
                cluster::preflight_up(resources, rendered, previous, self.state_ns, self.progress)
                    .await?;
                return Err(cluster::failed(&err));
            }
        };
        // Both only read: one round trip for the two.
        let (checked, ownership) = tokio::join!(
            cluster::preflight_plan(resources, rendered, &plan, self.state_ns, self.progress),
            owners::find(resources, rendered, &plan, self.release, self.state_ns),
        );
        checked?;
        self.printer
            .status(&format!("{headline}: {}", plan.summary()));
        owners::warn_plan(&plan, self.printer);
        let ownership = ownership?;
        owners::refuse(&ownership, rendered, self.args.take_ownership)?;
        show_adoptions(&ownership, self.printer);
        confirm_prune(&plan, self.args.yes, self.printer)?;
        Ok(plan)
    }

    /// Everything `up` does while it holds the lock.
    async fn locked(
        &self,
        profile: Option<String>,
        planned: Planned,
        guard: &cluster::Guard,
    ) -> Result<Status, Error> {
        let Self {
            args,
            printer,
            progress,
            rendered,
            release,
            state_ns,
            resources,
        } = *self;
        let client = resources.client().clone();
        // Read again under the lock: another run may have changed the release while this one
        // waited.
        let previous = kube::read_inventory(&client, state_ns, release)
            .await
            .map_err(|e| cluster::failed(&e))?;
        let plan = if previous == planned.previous {
            planned.plan
        } else {
            cluster::refuse_empty_render(rendered, previous.as_ref())?;
            self.plan_and_check(
                previous.as_ref(),
                "the release changed while waiting for the lock; new plan",
            )
            .await?
        };

        guard.check("up")?;
        let mut inventory = start_inventory(rendered, &plan, release, profile, previous.as_ref());
        let outcome = guard
            .run(converge(
                resources,
                state_ns,
                &plan,
                rendered,
                &mut inventory,
                args,
                progress,
            ))
            .await;
        progress.finish();
        let failure = match outcome {
            Ok(Ok(())) => {
                printer.status(&format!(
                    "release {release} revision {} deployed in {:.1}s: {}",
                    inventory.revision,
                    progress.elapsed().as_secs_f64(),
                    done_summary(&plan)
                ));
                return Ok(Status::Success);
            }
            Ok(Err(err)) => cluster::failed(&err),
            // The release is another run's now: its record is that run's to write.
            Err(cluster::Stopped::LockLost) => return Err(cluster::lock_lost(release)),
            Err(cluster::Stopped::Interrupted) => {
                cluster::interrupted("up stopped before it finished")
            }
        };
        if plan.has_changes() || previous.is_some() {
            inventory.phase = Phase::Failed;
            inventory.updated_at = now();
            inventory.push_history();
            // Best effort: the original failure is what the user needs to see.
            let _ = kube::write_inventory(&client, state_ns, &inventory).await;
        }
        Err(failure)
    }
}

/// Names what `--take-ownership` adopts, and notes worth a line.
fn show_adoptions(ownership: &owners::Ownership, printer: &Printer) {
    for (subject, owner, _) in &ownership.adoptable {
        printer.status(&format!("  adopt {subject} (from {owner})"));
    }
    for note in &ownership.notes {
        printer.warn(note);
    }
}

/// Prunes are deletions: ask first on a terminal, refuse without one unless --yes.
fn confirm_prune(plan: &Plan, yes: bool, printer: &Printer) -> Result<(), Error> {
    let prunes: Vec<&str> = plan
        .objects
        .iter()
        .filter(|o| o.action == Action::Prune)
        .map(|o| o.subject.as_str())
        .collect();
    if prunes.is_empty() || yes {
        return Ok(());
    }
    for subject in &prunes {
        printer.status(&format!("  prune {subject}"));
    }
    if !printer.interactive() {
        return Err(Error::Failed {
            problem: Problem::new(format!(
                "the plan prunes {} object(s) and there is no terminal to ask",
                prunes.len()
            ))
            .hint("review them with `plane diff`, then pass --yes"),
        });
    }
    if printer.confirm(&format!("Delete these {} object(s)?", prunes.len())) {
        Ok(())
    } else {
        Err(Error::Failed {
            problem: Problem::new("nothing was changed: pruning was not confirmed"),
        })
    }
}

/// The inventory of this run, before anything is written: the next revision, phase applying, and
/// every object that may exist (previous ∪ rendered), so a crash forgets nothing.
fn start_inventory(
    rendered: &Rendered,
    plan: &Plan,
    release: &str,
    profile: Option<String>,
    previous: Option<&Inventory>,
) -> Inventory {
    let mut objects: Vec<InventoryObject> = rendered
        .objects
        .iter()
        .map(|o| InventoryObject {
            api_version: o.id.api_version.clone(),
            kind: o.id.kind.clone(),
            namespace: o.id.namespace.clone(),
            name: o.id.name.clone(),
            component: o.component.clone(),
            digest: kube::normalize::digest(&o.value),
            // Taken over now, or taken over by an earlier run: either way it predates the release.
            adopted: plan
                .objects
                .iter()
                .any(|p| p.adopts() && p.subject == o.id.to_string())
                || previous.is_some_and(|prev| {
                    prev.objects.iter().any(|old| {
                        old.adopted
                            && old.same(
                                &o.id.api_version,
                                &o.id.kind,
                                o.id.namespace.as_deref(),
                                &o.id.name,
                            )
                    })
                }),
        })
        .collect();
    if let Some(previous) = previous {
        for old in &previous.objects {
            if !objects
                .iter()
                .any(|o| old.same(&o.api_version, &o.kind, o.namespace.as_deref(), &o.name))
            {
                objects.push(old.clone());
            }
        }
    }
    let now = now();
    Inventory {
        release: release.to_owned(),
        addon: rendered.addon.clone(),
        version: rendered.version.clone(),
        profile,
        values_digest: rendered.values_digest.clone(),
        revision: previous.map_or(1, |p| p.revision + 1),
        phase: Phase::Applying,
        started_at: now.clone(),
        updated_at: now,
        actor: actor(),
        plane_version: env!("CARGO_PKG_VERSION").to_owned(),
        objects,
        history: previous.map(|p| p.history.clone()).unwrap_or_default(),
    }
}

async fn converge(
    resources: &Resources,
    state_ns: &str,
    plan: &Plan,
    rendered: &Rendered,
    inventory: &mut Inventory,
    args: &UpArgs,
    progress: &Progress,
) -> Result<(), KubeError> {
    let client = resources.client();
    let wait = WaitOptions::within(args.timeout);
    if plan.has_changes() {
        // Record first: everything that may exist is listed before anything is written.
        kube::write_inventory(client, state_ns, inventory).await?;
        let gated: BTreeSet<String> = if args.no_wait {
            BTreeSet::new()
        } else {
            rendered.gated.clone()
        };
        let options = ApplyOptions {
            concurrency: 8,
            components: rendered.components.clone(),
            gated,
            wait,
        };
        kube::apply(resources, plan, &options, progress).await?;
        if plan.count(Action::Prune) > 0 {
            inventory.phase = Phase::Pruning;
            inventory.updated_at = now();
            kube::write_inventory(client, state_ns, inventory).await?;
            kube::prune(resources, plan, progress).await?;
        }
    }
    // From here on the inventory lists exactly what is rendered (and what was kept on purpose).
    inventory.objects.retain(|o| {
        rendered.objects.iter().any(|r| {
            o.same(
                &r.id.api_version,
                &r.id.kind,
                r.id.namespace.as_deref(),
                &r.id.name,
            )
        }) || plan.objects.iter().any(|p| {
            p.action == Action::Skip
                && o.same(&p.api_version, &p.kind, p.namespace.as_deref(), &p.name)
        })
    });
    if !args.no_wait {
        let targets: Vec<kube::WaitTarget> = plan
            .objects
            .iter()
            .filter(|o| o.needs_wait())
            .map(kube::target)
            .collect();
        kube::wait_ready(resources, &targets, wait, progress).await?;
    }
    inventory.phase = Phase::Deployed;
    inventory.updated_at = now();
    inventory.push_history();
    kube::write_inventory(client, state_ns, inventory).await
}

fn done_summary(plan: &Plan) -> String {
    format!(
        "{} created, {} configured, {} pruned, {} unchanged",
        plan.count(Action::Create),
        plan.count(Action::Configure),
        plan.count(Action::Prune),
        plan.count(Action::Unchanged)
    )
}

fn now() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// Who ran plane: `user@host`.
fn actor() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".into());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown".into());
    format!("{user}@{host}")
}
