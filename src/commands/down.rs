//! `plane down`: connect → read the release → preflight → plan the removal → confirm → lock →
//! plan again if the release changed → delete stage by stage → remove the record.

use std::collections::{BTreeMap, BTreeSet};

use super::guard::{Guard, Settled};
use super::session::{self, Deletion};
use crate::error::{Error, ExitStatus, Problem};
use crate::kube::{self, Cluster, Inventory, Phase, Removal, WaitOptions};
use crate::settings::DownSettings;
use crate::ui::{Printer, Progress};

pub fn run(settings: &DownSettings, printer: &Printer) -> Result<ExitStatus, Error> {
    let release = &settings.release;
    session::runtime()?.block_on(async {
        let cluster = session::connect(&settings.cluster, None, printer).await?;
        let inventory = session::read_release(&cluster, release, printer).await?;
        // The cluster the release's profile pins, as its record keeps it.
        session::check_recorded_pin(&inventory, &settings.sources, &cluster).await?;
        let progress = printer.progress();
        kube::preflight_removal(
            &cluster,
            &inventory,
            &release.state_namespace,
            settings.removal.include_crds,
        )
        .await?;
        refuse_platform_with_teams(&cluster, &inventory).await?;
        // Show and confirm before the lock, so a refusal (or --dry-run) writes nothing at all.
        let removal =
            kube::plan_removal(&cluster, &release.id(), &inventory, settings.removal).await?;
        let text = describe(&removal, &release.name);
        if settings.dry_run {
            printer.data(&text);
            return Ok(ExitStatus::Success);
        }
        printer.status(text.trim_end());
        confirm(settings, printer, &removal)?;
        let lock = session::lock(&cluster, release, settings.wait_for_lock, &progress).await?;
        let checked = (inventory, removal);
        let result = under_lock(
            settings,
            printer,
            &progress,
            &cluster,
            checked,
            &Guard::new(&lock),
        )
        .await;
        progress.finish();
        lock.release().await;
        result
    })
}

/// The platform goes last: while team instances of its bundle are installed, `down` of the
/// platform would take their operator and CRDs from under them.
async fn refuse_platform_with_teams(cluster: &Cluster, platform: &Inventory) -> Result<(), Error> {
    if platform.instance.is_some() {
        return Ok(());
    }
    let teams: Vec<String> = kube::list_releases(cluster.client(), None)
        .await?
        .into_iter()
        .filter(|r| r.inventory.instance.is_some() && r.inventory.addon == platform.addon)
        .map(|r| format!("{} in namespace {}", r.name, r.namespace))
        .collect();
    if teams.is_empty() {
        return Ok(());
    }
    let mut problem = Problem::new(format!(
        "release {} is the platform of {} team instance(s); nothing was deleted",
        platform.release,
        teams.len()
    ));
    for team in &teams {
        problem = problem.because(format!("team instance {team}"));
    }
    Err(Error::Failed {
        problem: problem.hint(format!(
            "remove each team instance first (`plane down {} -n NAMESPACE`), then the platform",
            platform.addon
        )),
    })
}

/// Asks before deleting; without a terminal, refuses unless --yes.
fn confirm(settings: &DownSettings, printer: &Printer, removal: &Removal) -> Result<(), Error> {
    let release = &settings.release.name;
    session::confirm(
        &Deletion {
            question: format!("Delete release {release} ({} objects)?", removal.count()),
            without_terminal: format!("down would delete {} object(s)", removal.count()),
            hint: format!(
                "review the list above (or `plane down {release} --dry-run`), then pass --yes"
            ),
            declined: "nothing was deleted: not confirmed",
        },
        settings.yes,
        printer,
    )
}

/// Everything `down` does while it holds the lock: read the record again (another run may have
/// changed it while this one waited) and plan again if it did, then delete and remove the record.
async fn under_lock(
    settings: &DownSettings,
    printer: &Printer,
    progress: &Progress,
    cluster: &Cluster,
    (planned_from, removal): (Inventory, Removal),
    guard: &Guard,
) -> Result<ExitStatus, Error> {
    let release = &settings.release;
    let client = cluster.client();
    let mut inventory = session::read_record(cluster, release).await?;
    let removal = if inventory == planned_from {
        removal
    } else {
        let removal =
            kube::plan_removal(cluster, &release.id(), &inventory, settings.removal).await?;
        printer.status(&format!(
            "the release changed while waiting for the lock:\n{}",
            describe(&removal, &release.name).trim_end()
        ));
        confirm(settings, printer, &removal)?;
        removal
    };
    guard.check("down")?;
    inventory.enter(Phase::Deleting);
    kube::write_inventory(client, &release.state_namespace, &inventory).await?;
    let wait = WaitOptions::within(settings.timeout);
    // The record goes only once every object it lists is seen gone by name (or kept on purpose).
    let removed = async {
        kube::remove(cluster, &removal, wait, progress).await?;
        kube::verify_gone(cluster, &inventory, &removal).await
    };
    let failure = match guard.run("down", &release.name, removed).await? {
        Settled::Done(()) => {
            kube::delete_inventory(client, &release.state_namespace, &release.name).await?;
            progress.finish();
            printer.status(&format!(
                "release {} removed: {} deleted, {} kept",
                release.name,
                removal.count(),
                removal.kept.len()
            ));
            return Ok(ExitStatus::Success);
        }
        Settled::Failed(failure) => failure,
    };
    inventory.phase = Phase::Failed;
    let _ = kube::write_inventory(client, &release.state_namespace, &inventory).await;
    Err(failure)
}

/// Where a kind's objects are: `ns (count), ...`.
fn places(usage: &kube::CustomResourceCount) -> String {
    usage
        .by_namespace
        .iter()
        .map(|(ns, n)| format!("{ns} ({n})"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The removal, grouped by kind, with what is kept and what dies with each CRD.
fn describe(removal: &Removal, release: &str) -> String {
    let mut out = format!(
        "release {release}: {} object(s) to delete\n",
        removal.count()
    );
    let mut by_kind: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut order: Vec<&str> = Vec::new();
    for (_, objects) in &removal.stages {
        for object in objects {
            if !order.contains(&object.id.kind.as_str()) {
                order.push(&object.id.kind);
            }
            let name = object.id.namespace.as_ref().map_or_else(
                || object.id.name.clone(),
                |ns| format!("{ns}/{}", object.id.name),
            );
            by_kind.entry(&object.id.kind).or_default().push(name);
        }
    }
    for kind in order {
        let names = &by_kind[kind];
        out.push_str(&format!(
            "  delete {kind} ({}): {}\n",
            names.len(),
            names.join(", ")
        ));
    }
    for usage in &removal.crd_usage {
        if usage.total() == 0 {
            out.push_str(&format!(
                "  {}: no {} objects exist in the cluster\n",
                usage.crd, usage.kind
            ));
        } else {
            out.push_str(&format!(
                "  {}: deleting it also deletes {} {} object(s) cluster-wide: {}\n",
                usage.crd,
                usage.total(),
                usage.kind,
                places(usage)
            ));
        }
    }
    for usage in &removal.left_behind {
        out.push_str(&format!(
            "  note: {} {} object(s) that are not part of this release stay ({}); once this release is gone nothing of it reconciles them, and their finalizers can block their deletion\n",
            usage.total(),
            usage.kind,
            places(usage)
        ));
    }
    let kept: BTreeSet<String> = removal
        .kept
        .iter()
        .map(|(o, why)| format!("  keep {} ({why})", o.id.subject()))
        .collect();
    for line in kept {
        out.push_str(&line);
        out.push('\n');
    }
    out
}
