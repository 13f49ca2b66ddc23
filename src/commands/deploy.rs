//! How `up` and `rollback` deploy a render: plan and check (permissions, ownership, prune
//! confirmation) → lock → plan again if the release changed → record → apply → prune → wait →
//! record.

use super::guard::{Guard, Settled};
use super::plan::{self, Intent, Planning};
use super::session;
use crate::bundle::profile::ClusterPin;
use crate::cli::PlanFormat;
use crate::error::{Error, ExitStatus};
use crate::kube::{self, ConvergeOptions, Inventory, Plan};
use crate::settings::DeploySettings;
use crate::ui::Progress;

/// How a render is deployed: `up`'s flags, or `rollback`'s.
pub struct Deploying {
    /// The command, as messages name it.
    pub command: &'static str,
    pub settings: DeploySettings,
    /// The profile the record names.
    pub profile: Option<String>,
    /// The cluster it pins, which the record keeps.
    pub pin: Option<ClusterPin>,
    /// The revision a rollback restores.
    pub rollback_of: Option<u64>,
}

/// Plans and checks the render against `previous`; then, unless it is a dry run, takes the lock
/// and converges.
pub async fn deploy(
    planning: &Planning<'_>,
    deploying: &Deploying,
    previous: Option<Inventory>,
    progress: &Progress,
) -> Result<ExitStatus, Error> {
    if deploying.settings.dry_run {
        let plan = planning
            .plan_and_check(previous.as_ref(), &Intent::Show)
            .await?;
        plan::show(&plan, PlanFormat::Diff, planning.printer)?;
        return Ok(ExitStatus::Success);
    }
    // A release an engine runs has no record of plane's: it stays the engine's.
    if previous.is_none() {
        session::refuse_engine_release(planning.cluster, planning.release, deploying.command)
            .await?;
    }
    // Plan and confirm before the lock, so a refusal writes nothing at all; whether another run
    // holds the lock is read in the same wave.
    let intent = intent(deploying, "plan", progress);
    let release = planning.release;
    let (plan, held) = futures::join!(
        planning.plan_and_check(previous.as_ref(), &intent),
        kube::Lock::is_held(planning.cluster, &release.state_namespace, &release.name),
    );
    let plan = plan?;
    if matches!(held, Ok(false))
        && let Some(revision) = unchanged(planning, deploying, previous.as_ref(), &plan)
    {
        progress.finish();
        planning
            .printer
            .status(&format!("no changes: revision {revision} stays"));
        super::fleet::write_report(&serde_json::json!({
            "revision": revision,
            "summary": "no changes",
        }));
        return Ok(ExitStatus::Success);
    }
    let lock = session::lock(
        planning.cluster,
        release,
        deploying.settings.wait_for_lock,
        progress,
    )
    .await?;
    let checked = PlanSnapshot { plan, previous };
    let result = under_lock(planning, deploying, progress, checked, &Guard::new(&lock)).await;
    progress.finish();
    lock.release().await;
    result
}

/// The revision that stays when `up` would change nothing: the same inputs (values, bundle
/// files, version, profile, pin) as the record's deployed revision, and every object the record
/// lists proven unchanged and ready by the plan's reads, no other. Then nothing is locked or
/// written, and `history` does not grow.
fn unchanged(
    planning: &Planning<'_>,
    deploying: &Deploying,
    previous: Option<&Inventory>,
    plan: &Plan,
) -> Option<u64> {
    let previous = previous?;
    let rendered = planning.rendered;
    let same_inputs = deploying.rollback_of.is_none()
        && previous.phase == kube::Phase::Deployed
        && previous.values_digest == rendered.values_digest
        && previous.version == rendered.version
        && previous.bundle_digest.as_deref() == Some(rendered.bundle_digest.as_str())
        && previous.profile == deploying.profile
        && previous.pin == deploying.pin
        && previous.instance == rendered.instance;
    // Unchanged, and read ready by the plan itself: nothing to apply and nothing to wait for.
    if !same_inputs
        || plan
            .objects
            .iter()
            .any(|o| o.action != kube::Action::Unchanged || o.needs_wait())
    {
        return None;
    }
    let planned: std::collections::BTreeSet<String> =
        plan.objects.iter().map(|o| o.subject.clone()).collect();
    let recorded: std::collections::BTreeSet<String> =
        previous.objects.iter().map(|o| o.id.subject()).collect();
    (planned == recorded).then_some(previous.revision)
}

/// A checked plan and the record it was made against.
struct PlanSnapshot {
    plan: Plan,
    previous: Option<Inventory>,
}

/// How a plan that is going to be applied is checked.
fn intent<'a>(deploying: &Deploying, headline: &'a str, progress: &'a Progress) -> Intent<'a> {
    Intent::Apply {
        headline,
        take_ownership: deploying.settings.take_ownership,
        yes: deploying.settings.yes,
        progress,
    }
}

/// Everything a deploy does while it holds the lock: read the record again (another run may
/// have changed it while this one waited) and plan again if it did, then converge and record.
async fn under_lock(
    planning: &Planning<'_>,
    deploying: &Deploying,
    progress: &Progress,
    checked: PlanSnapshot,
    guard: &Guard,
) -> Result<ExitStatus, Error> {
    let Planning {
        cluster,
        rendered,
        release,
        printer,
        ..
    } = *planning;
    let state_ns = &release.state_namespace;
    let previous = kube::read_inventory(cluster.client(), state_ns, &release.name).await?;
    let plan = if previous == checked.previous {
        checked.plan
    } else {
        session::refuse_empty_render(rendered, previous.as_ref())?;
        let headline = "the release changed while waiting for the lock; new plan";
        planning
            .plan_and_check(previous.as_ref(), &intent(deploying, headline, progress))
            .await?
    };
    guard.check(deploying.command)?;
    let profile = deploying.profile.clone();
    let mut inventory =
        Inventory::begin(rendered, &plan, &release.name, profile, previous.as_ref());
    inventory.rollback_of = deploying.rollback_of;
    inventory.pin.clone_from(&deploying.pin);
    let options = ConvergeOptions {
        timeout: deploying.settings.timeout,
        no_wait: deploying.settings.no_wait,
    };
    let work = kube::converge(
        cluster,
        state_ns,
        &plan,
        rendered,
        &mut inventory,
        options,
        progress,
    );
    let settled = guard.run(deploying.command, &release.name, work).await?;
    progress.finish();
    let failure = match settled {
        Settled::Done(()) => {
            // What was taken from other plane releases leaves their records.
            kube::hand_over(cluster.client(), &release.id(), &plan, progress).await?;
            let rollback = deploying
                .rollback_of
                .map(|r| format!(" (a rollback to revision {r})"))
                .unwrap_or_default();
            printer.status(&format!(
                "release {} revision {}{rollback} deployed in {:.1}s: {}",
                release.name,
                inventory.revision,
                progress.elapsed().as_secs_f64(),
                plan.done_summary()
            ));
            super::fleet::write_report(&serde_json::json!({
                "revision": inventory.revision,
                "summary": plan.done_summary(),
            }));
            return Ok(ExitStatus::Success);
        }
        Settled::Failed(failure) => failure,
    };
    if plan.has_changes() || previous.is_some() {
        kube::record_failure(cluster, state_ns, &mut inventory).await;
    }
    Err(failure)
}
