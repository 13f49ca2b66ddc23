//! The ownership step of diff and up: what the plan would take from other owners, and what the
//! enabled components would install beside an existing installation, listed before any write.

use std::collections::BTreeMap;

use crate::bundle::Rendered;
use crate::error::{Error, Problem};
use crate::kube::ownership::{self, Owner, Probe};
use crate::kube::{self, Plan, Resources};
use crate::ui::Printer;

/// What the cluster already holds that is not this release's.
#[derive(Debug, Default)]
pub struct Ownership {
    /// Rendered objects another owner has, which `--take-ownership` may adopt: (subject, owner,
    /// component).
    pub adoptable: Vec<(String, Owner, String)>,
    /// What no flag may take: another installed plane release's objects, and installations of
    /// what an enabled component provides. (text, the component whose switch avoids it).
    pub conflicts: Vec<(String, Option<String>)>,
    /// Worth saying, not refusing: a component that is off with nothing found in its place, or
    /// a look that was not allowed.
    pub notes: Vec<String>,
}

/// Finds who owns what the plan would touch, and runs the probes of every component that
/// declares what of it may already run.
///
/// # Errors
/// API failures other than refused probes.
pub async fn find(
    resources: &Resources,
    rendered: &Rendered,
    plan: &Plan,
    release: &str,
    state_ns: &str,
) -> Result<Ownership, Error> {
    let mut ownership = Ownership::default();
    let mut installed: BTreeMap<String, bool> = BTreeMap::new();
    for object in plan.objects.iter().filter(|o| o.adopts()) {
        let Some(owner) = object.owner.clone() else {
            continue;
        };
        if let Owner::Release(other) = &owner {
            if !installed.contains_key(other) {
                let record = kube::read_inventory(resources.client(), state_ns, other)
                    .await
                    .map_err(|e| super::cluster::failed(&e))?;
                installed.insert(other.clone(), record.is_some());
            }
            if installed[other] {
                ownership
                    .conflicts
                    .push((format!("{} belongs to {owner}", object.subject), None));
                continue;
            }
        }
        ownership
            .adoptable
            .push((object.subject.clone(), owner, object.component.clone()));
    }
    for component in &rendered.declared {
        let Some(existing) = &component.existing else {
            continue;
        };
        let probes: Vec<Probe> = existing
            .detect
            .iter()
            .map(|d| Probe {
                api_version: d.api_version.clone(),
                kind: d.kind.clone(),
                selector: d.selector.clone(),
            })
            .collect();
        let on = rendered.components.contains(&component.name);
        match ownership::probe(resources, &probes, release).await {
            Ok(found) if on => {
                for found in found {
                    ownership.conflicts.push((
                        format!(
                            "{} already runs: {} ({})",
                            existing.what, found.subject, found.owner
                        ),
                        Some(component.name.clone()),
                    ));
                }
            }
            Ok(found) if found.is_empty() => ownership.notes.push(format!(
                "component {} is off and no {} was found in the cluster: what depends on it may never become ready",
                component.name, existing.what
            )),
            Ok(_) => {}
            Err(err) if err.code() == Some(403) => ownership.notes.push(format!(
                "could not look for an existing {}: {}",
                existing.what,
                err.to_problem().causes.join(": ")
            )),
            Err(err) => return Err(super::cluster::failed(&err)),
        }
    }
    Ok(ownership)
}

/// Warns about planned changes that will not take effect as the user may expect.
pub fn warn_plan(plan: &Plan, printer: &Printer) {
    for object in &plan.objects {
        if let Some(warning) = &object.warning {
            printer.warn(&format!("{}: {warning}", object.subject));
        }
    }
}

/// Says what was found, as notes (diff and `up --dry-run` change nothing, so they only tell).
pub fn show(ownership: &Ownership, printer: &Printer) {
    for (subject, owner, _) in &ownership.adoptable {
        printer.warn(&format!(
            "{subject} exists and belongs to {owner}: `up` refuses it unless --take-ownership"
        ));
    }
    for (text, _) in &ownership.conflicts {
        printer.warn(&format!("{text}: `up` refuses this"));
    }
    for note in &ownership.notes {
        printer.warn(note);
    }
}

/// Refuses an `up` that would take objects from other owners without `--take-ownership`, or
/// that conflicts with another release or an existing installation; says how to proceed.
///
/// # Errors
/// The refusal, naming every object and its owner.
pub fn refuse(
    ownership: &Ownership,
    rendered: &Rendered,
    take_ownership: bool,
) -> Result<(), Error> {
    let taking = !take_ownership && !ownership.adoptable.is_empty();
    if ownership.conflicts.is_empty() && !taking {
        return Ok(());
    }
    let count = ownership.conflicts.len() + if taking { ownership.adoptable.len() } else { 0 };
    let mut problem = Problem::new(format!(
        "{count} object(s) in the cluster belong to other owners; nothing was changed"
    ));
    let mut switches = Vec::new();
    for (text, component) in &ownership.conflicts {
        problem = problem.because(text.clone());
        switches.extend(component.clone());
    }
    if taking {
        for (subject, owner, component) in &ownership.adoptable {
            problem = problem.because(format!("{subject} belongs to {owner}"));
            // Turning a component off keeps what exists only where the cluster may provide it.
            if rendered
                .declared
                .iter()
                .any(|c| &c.name == component && c.existing.is_some())
            {
                switches.push(component.clone());
            }
        }
    }
    switches.sort();
    switches.dedup();
    let mut hints: Vec<String> = switches
        .iter()
        .filter_map(|component| rendered.switch_of(component))
        .map(|switch| format!("--set {switch}=false keeps what exists and installs the rest"))
        .collect();
    if taking {
        hints.push(
            "--take-ownership adopts objects of no other plane release (recorded as adopted; `down` keeps them)"
                .to_owned(),
        );
    }
    if ownership
        .conflicts
        .iter()
        .any(|(text, component)| component.is_none() && text.contains("plane release"))
    {
        hints.push(
            "two plane releases never share an object: remove the other release or render other names"
                .to_owned(),
        );
    }
    Err(Error::Failed {
        problem: problem.hint(hints.join("; or ")),
    })
}
