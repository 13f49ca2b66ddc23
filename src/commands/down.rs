//! `plane down`: connect → read the release → preflight → lock → plan the removal → confirm →
//! delete stage by stage → remove the inventory.

use std::collections::{BTreeMap, BTreeSet};

use super::cluster;
use crate::bundle::profile;
use crate::cli::DownArgs;
use crate::error::{Error, Problem, Status};
use crate::kube::{self, Inventory, Phase, Removal, Resources, WaitOptions};
use crate::settings;
use crate::ui::{Printer, Progress};

pub fn run(args: &DownArgs, printer: &Printer) -> Result<Status, Error> {
    let runtime = cluster::runtime()?;
    runtime.block_on(async {
        let (target, resources) = cluster::connect(&args.cluster, None, printer).await?;
        let client = target.client.clone();
        let inventory = read(&client, args).await?;
        // The profile the release was installed with may pin its cluster.
        if let Some(name) = &inventory.profile {
            let sources = settings::sources(&crate::cli::SourceArgs {
                addons_dir: None,
                profiles_dir: None,
            });
            if let Ok(profile) = profile::load(&sources.profiles, name) {
                cluster::check_pin(Some(&profile), &target)?;
            }
        }
        let progress = printer.progress();
        preflight(&resources, &inventory, args).await?;
        // Show and confirm before the lock, so a refusal (or --dry-run) writes nothing at all.
        let removal = kube::plan_removal(&resources, &inventory, removal_options(args))
            .await
            .map_err(|e| cluster::failed(&e))?;
        let text = describe(&removal, &args.release);
        if args.dry_run {
            printer.data(&text);
            return Ok(Status::Success);
        }
        printer.status(text.trim_end());
        confirm(args, printer, &removal)?;
        let lock = kube::lock(
            &client,
            &args.state_namespace,
            &args.release,
            args.wait_for_lock,
            &progress,
        )
        .await
        .map_err(|e| cluster::failed(&e))?;
        let result = locked(
            args,
            printer,
            &progress,
            &resources,
            inventory,
            removal,
            &cluster::Guard::new(&lock),
        )
        .await;
        progress.finish();
        lock.release().await;
        result
    })
}

async fn read(client: &kube::Client, args: &DownArgs) -> Result<Inventory, Error> {
    kube::read_inventory(client, &args.state_namespace, &args.release)
        .await
        .map_err(|e| cluster::failed(&e))?
        .ok_or_else(|| Error::Failed {
            problem: Problem::new(format!("release {} not found", args.release))
                .at(format!("namespace {}", args.state_namespace))
                .hint("list releases with `plane ls`; pass --state-namespace if it was installed with another"),
        })
}

/// The permissions `down` needs: read, list and delete every recorded object, and count custom
/// resources cluster-wide before deleting their CRDs.
async fn preflight(
    resources: &Resources,
    inventory: &Inventory,
    args: &DownArgs,
) -> Result<(), Error> {
    resources
        .prefetch(inventory.objects.iter().map(|o| o.api_version.as_str()))
        .await
        .map_err(|e| cluster::failed(&e))?;
    let mut needs = cluster::state_needs(&args.state_namespace);
    needs.insert(kube::Need {
        verb: "delete",
        group: String::new(),
        resource: "secrets".into(),
        namespace: Some(args.state_namespace.clone()),
    });
    for object in &inventory.objects {
        let Some(resolved) = kube::resolve(resources, &object.api_version, &object.kind, &[])
            .await
            .map_err(|e| cluster::failed(&e))?
        else {
            continue;
        };
        let namespace = if resolved.namespaced {
            object.namespace.clone()
        } else {
            None
        };
        for verb in ["get", "list", "delete"] {
            needs.insert(kube::Need {
                verb,
                group: resolved.group.clone(),
                resource: resolved.plural.clone(),
                namespace: namespace.clone(),
            });
        }
    }
    if args.include_crds {
        for object in inventory
            .objects
            .iter()
            .filter(|o| o.kind == "CustomResourceDefinition")
        {
            if let Some((plural, group)) = object.name.split_once('.') {
                needs.insert(kube::Need {
                    verb: "list",
                    group: group.to_owned(),
                    resource: plural.to_owned(),
                    namespace: None,
                });
            }
        }
    }
    kube::check_access(resources.client(), needs)
        .await
        .map_err(|e| cluster::failed(&e))
}

fn removal_options(args: &DownArgs) -> kube::RemovalOptions {
    kube::RemovalOptions {
        include_crds: args.include_crds,
        include_volumes: args.include_volumes,
        include_adopted: args.include_adopted,
    }
}

/// Asks before deleting; without a terminal, refuses unless --yes.
fn confirm(args: &DownArgs, printer: &Printer, removal: &Removal) -> Result<(), Error> {
    if args.yes {
        return Ok(());
    }
    if !printer.interactive() {
        return Err(Error::Failed {
            problem: Problem::new(format!(
                "down would delete {} object(s) and there is no terminal to ask",
                removal.count()
            ))
            .hint(format!(
                "review the list above (or `plane down {} --dry-run`), then pass --yes",
                args.release
            )),
        });
    }
    if printer.confirm(&format!(
        "Delete release {} ({} objects)?",
        args.release,
        removal.count()
    )) {
        Ok(())
    } else {
        Err(Error::Failed {
            problem: Problem::new("nothing was deleted: not confirmed"),
        })
    }
}

/// Everything `down` does while it holds the lock.
async fn locked(
    args: &DownArgs,
    printer: &Printer,
    progress: &Progress,
    resources: &Resources,
    planned_from: Inventory,
    removal: Removal,
    guard: &cluster::Guard,
) -> Result<Status, Error> {
    let client = resources.client().clone();
    // Read again under the lock: another run may have changed the release while this one waited.
    let mut inventory = read(&client, args).await?;
    let removal = if inventory == planned_from {
        removal
    } else {
        let removal = kube::plan_removal(resources, &inventory, removal_options(args))
            .await
            .map_err(|e| cluster::failed(&e))?;
        printer.status(&format!(
            "the release changed while waiting for the lock:\n{}",
            describe(&removal, &args.release).trim_end()
        ));
        confirm(args, printer, &removal)?;
        removal
    };
    guard.check("down")?;
    inventory.phase = Phase::Deleting;
    inventory.updated_at = jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .map(|t| t.to_string())
        .unwrap_or_default();
    kube::write_inventory(&client, &args.state_namespace, &inventory)
        .await
        .map_err(|e| cluster::failed(&e))?;
    let wait = WaitOptions::within(args.timeout);
    // The record goes only once every object it lists is seen gone by name (or kept on purpose).
    let removed = async {
        kube::remove(resources, &removal, wait, progress).await?;
        kube::confirm_removed(resources, &inventory, &removal).await
    };
    let failure = match guard.run(removed).await {
        Ok(Ok(())) => {
            kube::delete_inventory(&client, &args.state_namespace, &args.release)
                .await
                .map_err(|e| cluster::failed(&e))?;
            progress.finish();
            printer.status(&format!(
                "release {} removed: {} deleted, {} kept",
                args.release,
                removal.count(),
                removal.kept.len()
            ));
            return Ok(Status::Success);
        }
        Ok(Err(err)) => cluster::failed(&err),
        // The release is another run's now: its record is that run's to write.
        Err(cluster::Stopped::LockLost) => return Err(cluster::lock_lost(&args.release)),
        Err(cluster::Stopped::Interrupted) => {
            cluster::interrupted("down stopped before it finished")
        }
    };
    inventory.phase = Phase::Failed;
    let _ = kube::write_inventory(&client, &args.state_namespace, &inventory).await;
    Err(failure)
}

/// Where a kind's objects are: `ns (count), ...`.
fn places(usage: &kube::CrdUsage) -> String {
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
            if !order.contains(&object.kind.as_str()) {
                order.push(&object.kind);
            }
            let name = object
                .namespace
                .as_ref()
                .map_or_else(|| object.name.clone(), |ns| format!("{ns}/{}", object.name));
            by_kind.entry(&object.kind).or_default().push(name);
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
        .map(|(o, why)| format!("  keep {} ({why})", o.subject()))
        .collect();
    for line in kept {
        out.push_str(&line);
        out.push('\n');
    }
    out
}
