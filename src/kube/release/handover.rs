//! Objects `up --take-ownership` moved from another plane release: that release's record
//! forgets them, so that no two records ever list one object.

use std::collections::{BTreeMap, BTreeSet};

use crate::bundle::{ObjectKey, ReleaseId};
use crate::kube::error::KubeError;
use crate::kube::object::owner::Owner;
use crate::kube::progress::{Event, Reporter};
use crate::kube::release::inventory::{list_releases, read_inventory, write_inventory};
use crate::kube::release::lock::Lock;
use crate::kube::release::plan::Plan;

/// After a plan that took objects from other plane releases was applied (their labels now
/// name `release`), removes them from those releases' records, each under its own lock, which
/// is never waited for. A record whose lock is held, or that the credentials may not change,
/// is named in a note: its release leaves the objects alone all the same, for their labels no
/// longer name it (its prune and `down` look at the labels before deleting).
///
/// # Errors
/// API failures other than refusals, which are notes.
pub async fn hand_over(
    client: &kube::Client,
    release: &ReleaseId,
    plan: &Plan,
    reporter: &dyn Reporter,
) -> Result<(), KubeError> {
    let mut known: BTreeMap<ReleaseId, BTreeSet<ObjectKey>> = BTreeMap::new();
    let mut unplaced: BTreeMap<String, BTreeSet<ObjectKey>> = BTreeMap::new();
    for object in &plan.objects {
        if let Some(Owner::Release { name, namespace }) = &object.owner {
            match namespace {
                Some(namespace) => known
                    .entry(ReleaseId::new(namespace, name))
                    .or_default()
                    .insert(object.id.key()),
                None => unplaced
                    .entry(name.clone())
                    .or_default()
                    .insert(object.id.key()),
            };
        }
    }
    if known.is_empty() && unplaced.is_empty() {
        return Ok(());
    }
    // Labels of an earlier plane name the release but not where its record is: look for every
    // record of that name.
    if !unplaced.is_empty() {
        match list_releases(client, None).await {
            Ok(releases) => {
                for found in releases {
                    if let Some(keys) = unplaced.get(&found.name) {
                        known
                            .entry(ReleaseId::new(&found.namespace, &found.name))
                            .or_default()
                            .extend(keys.iter().cloned());
                    }
                }
            }
            Err(err) if err.code() == Some(403) => reporter.report(Event::Note(format!(
                "warning: could not look for the records of {} to make them forget what this release took: {}",
                unplaced.keys().cloned().collect::<Vec<_>>().join(", "),
                err.to_problem().causes.join(": ")
            ))),
            Err(err) => return Err(err),
        }
    }
    for (other, taken) in known {
        if other == *release {
            continue;
        }
        forget(client, &other, &taken, reporter).await?;
    }
    Ok(())
}

/// Removes `taken` from `other`'s record under its lock.
async fn forget(
    client: &kube::Client,
    other: &ReleaseId,
    taken: &BTreeSet<ObjectKey>,
    reporter: &dyn Reporter,
) -> Result<(), KubeError> {
    let note = |why: String| {
        reporter.report(Event::Note(format!(
            "warning: the record of release {other} still lists {} object(s) this release took ({why}); \
             its labels now name this release, so release {} leaves them alone",
            taken.len(),
            other.name
        )));
    };
    match read_inventory(client, &other.namespace, &other.name).await {
        Ok(Some(record)) if record.objects.iter().any(|o| taken.contains(&o.id.key())) => {}
        Ok(_) => return Ok(()),
        Err(err) if err.code() == Some(403) => {
            note(err.to_problem().causes.join(": "));
            return Ok(());
        }
        Err(err) => return Err(err),
    }
    let lock = match Lock::acquire(client, &other.namespace, &other.name, None, reporter).await {
        Ok(lock) => lock,
        Err(err @ KubeError::LockHeld { .. }) => {
            note(err.to_problem().to_string());
            return Ok(());
        }
        Err(err) if err.code() == Some(403) => {
            note(err.to_problem().causes.join(": "));
            return Ok(());
        }
        Err(err) => return Err(err),
    };
    let result = async {
        let Some(mut record) = read_inventory(client, &other.namespace, &other.name).await? else {
            return Ok(());
        };
        let before = record.objects.len();
        record.objects.retain(|o| !taken.contains(&o.id.key()));
        if record.objects.len() == before {
            return Ok(());
        }
        write_inventory(client, &other.namespace, &record).await?;
        reporter.report(Event::Note(format!(
            "release {other} no longer lists the {} object(s) this release took",
            before - record.objects.len()
        )));
        Ok(())
    }
    .await;
    lock.release().await;
    result
}
