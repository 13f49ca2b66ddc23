//! `plane rollback`: connect → read the release → choose the revision → restore its objects
//! (Secrets keep their live values; refused when its operator is older than the CRDs now) →
//! then `up`'s steps: plan and check, lock, converge, and a revision recorded as a rollback.

use super::deploy::{Deploying, deploy};
use super::plan::Planning;
use super::session;
use crate::bundle::{Rendered, objects};
use crate::error::{Error, ExitStatus, Problem};
use crate::kube::{self, Inventory, Phase};
use crate::settings::RollbackSettings;
use crate::ui::Printer;

pub fn run(settings: &RollbackSettings, printer: &Printer) -> Result<ExitStatus, Error> {
    let release = &settings.release;
    session::runtime()?.block_on(async {
        let cluster = session::connect(&settings.cluster, None, printer).await?;
        let inventory = session::read_release(&cluster, release, printer).await?;
        // The cluster the release's profile pins, as its record keeps it.
        let pin = session::check_recorded_pin(&inventory, &settings.sources, &cluster).await?;
        let target = target(&inventory, settings.revision)?;
        let restored = kube::restore(&cluster, &inventory, target)
            .await?
            .ok_or_else(|| not_kept(&inventory, target))?;
        // A revision kept by an earlier plane carries labels without the release's namespace:
        // its objects are labelled with the release's identity as today's render would.
        let mut objects = restored.objects;
        for object in &mut objects {
            objects::label(
                &mut object.value,
                &release.id(),
                &inventory.addon,
                &object.component,
            );
        }
        let rendered = Rendered {
            objects,
            components: restored.components,
            gated: restored.gated,
            addon: inventory.addon.clone(),
            version: restored.revision.version.clone(),
            bundle_digest: restored.revision.bundle_digest.clone().unwrap_or_default(),
            values_digest: restored.revision.values_digest.clone(),
            instance: inventory.instance.clone(),
            requires: restored.requires,
            all_components: restored.all_components,
            declared: restored.declared,
            images: Vec::new(),
        };
        session::check_tier(&cluster, &rendered, release, printer).await?;
        printer.status(&format!(
            "rollback of {} from revision {} to revision {target} (version {}, profile {}, values {}, of {})",
            release.name,
            inventory.revision,
            restored.revision.version,
            restored.revision.profile.as_deref().unwrap_or("-"),
            restored.revision.values_digest.chars().take(12).collect::<String>(),
            restored.revision.updated_at,
        ));
        for subject in &restored.kept_values {
            printer.warn(&format!(
                "{subject} keeps its live values, which differ from revision {target}'s: the record never keeps a Secret's values"
            ));
        }
        let planning = Planning {
            cluster: &cluster,
            rendered: &rendered,
            release,
            printer,
            purpose: kube::Purpose::Rollback,
        };
        let deploying = Deploying {
            command: "rollback",
            settings: settings.deploy,
            profile: restored.revision.profile.clone(),
            pin,
            rollback_of: Some(target),
        };
        let progress = printer.progress();
        Box::pin(deploy(&planning, &deploying, Some(inventory), &progress)).await
    })
}

/// The revision to restore: the one asked for, if the record knows it; else the previous
/// deployed one, or the target of a rollback that did not finish (rerunning it converges).
fn target(inventory: &Inventory, requested: Option<u64>) -> Result<u64, Error> {
    let known: Vec<u64> = inventory.history.iter().map(|r| r.revision).collect();
    if let Some(revision) = requested {
        if revision == inventory.revision || known.contains(&revision) {
            return Ok(revision);
        }
        return Err(Error::input(
            Problem::new(format!(
                "release {} has no revision {revision}",
                inventory.release
            ))
            .because(format!(
                "its record keeps revisions {}",
                list(inventory.history.iter().map(|r| r.revision))
            ))
            .hint(format!("see `plane history {}`", inventory.release)),
        ));
    }
    if inventory.phase != Phase::Deployed
        && let Some(revision) = inventory.rollback_of
    {
        return Ok(revision);
    }
    inventory
        .history
        .iter()
        .find(|r| r.revision < inventory.revision && r.phase == Phase::Deployed)
        .map(|r| r.revision)
        .ok_or_else(|| {
            Error::input(
                Problem::new(format!(
                    "release {} has no earlier deployed revision to roll back to",
                    inventory.release
                ))
                .hint(format!(
                    "see `plane history {}`; name a revision to restore it",
                    inventory.release
                )),
            )
        })
}

/// Why a revision the record knows cannot be restored: its objects were not kept.
fn not_kept(inventory: &Inventory, revision: u64) -> Error {
    let kept: Vec<u64> = inventory.stored.kept().collect();
    let why = if inventory.stored.withheld(revision) {
        "one of its objects held the value of a secret input or a URL's credentials outside a \
         Secret's data, and the record never keeps those"
            .to_owned()
    } else if inventory.stored.given_up(revision) {
        format!(
            "its objects were given up to keep the record under its {} KiB budget",
            kube::RECORD_BUDGET / 1024
        )
    } else {
        "its objects were not kept: it was recorded by a plane version that kept none".to_owned()
    };
    let kept = if kept.is_empty() {
        "none".to_owned()
    } else {
        list(kept.into_iter())
    };
    Error::input(
        Problem::new(format!(
            "revision {revision} of release {} cannot be restored",
            inventory.release
        ))
        .because(why)
        .because(format!("revisions that can be: {kept}"))
        .hint(format!(
            "apply revision {revision}'s inputs with `plane up` (its values digest is in `plane history {}`)",
            inventory.release
        )),
    )
}

fn list(revisions: impl Iterator<Item = u64>) -> String {
    revisions
        .map(|r| r.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
