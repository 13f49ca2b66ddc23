//! Telling and refusing what the cluster holds that is not this release's: objects of other
//! owners the plan would take, and installations beside which a component would run.

use crate::bundle::Rendered;
use crate::error::{Error, Problem};
use crate::kube::{Owner, Ownership};
use crate::ui::Printer;

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

/// Names what `--take-ownership` adopts, and notes worth a line.
pub fn show_adoptions(ownership: &Ownership, printer: &Printer) {
    for (subject, owner, _) in &ownership.adoptable {
        printer.status(&format!("  adopt {subject} (from {owner})"));
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
                .all_components
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
        let from_release = ownership
            .adoptable
            .iter()
            .any(|(_, owner, _)| matches!(owner, Owner::Release { .. }));
        hints.push(if from_release {
            "two plane releases never share an object: render other names, or move it to this \
             release with --take-ownership (the other release's record then forgets it; `down` \
             keeps what was adopted)"
                .to_owned()
        } else {
            "--take-ownership adopts them (recorded as adopted; `down` keeps them)".to_owned()
        });
    }
    Err(Error::Failed {
        problem: problem.hint(hints.join("; or ")),
    })
}
