//! `plane history`: a release's revisions, newest first, from its record. Reads only.

use serde_json::{Value, json};

use super::session;
use crate::cli::TableFormat;
use crate::error::{Error, ExitStatus};
use crate::kube::{Inventory, Revision};
use crate::settings::HistorySettings;
use crate::ui::{Printer, Table, to_format};

const COLUMNS: &[&str] = &[
    "REVISION",
    "UPDATED",
    "PHASE",
    "VERSION",
    "PROFILE",
    "VALUES",
    "ACTOR",
    "CHANGES",
    "ROLLBACK-OF",
];

pub fn run(settings: &HistorySettings, printer: &Printer) -> Result<ExitStatus, Error> {
    let release = &settings.release;
    let inventory = session::runtime()?.block_on(async {
        let cluster = session::connect(&settings.cluster, None, printer).await?;
        session::read_release(&cluster, release, printer).await
    })?;
    let rows = revisions(&inventory);
    let text = match settings.output {
        TableFormat::Table => {
            let mut table = Table::new(COLUMNS);
            for row in &rows {
                table.row(cells(row));
            }
            let mut text = table.render();
            let lost: Vec<String> = rows
                .iter()
                .filter(|r| r["restorable"] == false)
                .map(|r| r["revision"].to_string())
                .collect();
            if !lost.is_empty() {
                text.push_str(&format!(
                    "\nnot restorable (objects not kept): revision {}\n",
                    lost.join(", ")
                ));
            }
            text
        }
        TableFormat::Json => to_format(&json!(rows), false)?,
        TableFormat::Yaml => to_format(&json!(rows), true)?,
    };
    printer.data(&text);
    Ok(ExitStatus::Success)
}

/// Every revision the record keeps, newest first: the one in progress (if it is not in the
/// history yet), then the history. Values appear only as their digest; `restorable` says
/// whether the record kept its objects for `plane rollback`.
fn revisions(inventory: &Inventory) -> Vec<Value> {
    let current = inventory
        .history
        .first()
        .is_none_or(|r| r.revision != inventory.revision)
        .then(|| inventory.revision(inventory.revision))
        .flatten();
    current
        .iter()
        .chain(&inventory.history)
        .map(|revision: &Revision| {
            json!({
                "revision": revision.revision,
                "updated": revision.updated_at,
                "phase": revision.phase.as_str(),
                "version": revision.version,
                "profile": revision.profile,
                "values": short(&revision.values_digest),
                "bundleDigest": revision.bundle_digest,
                "actor": revision.actor,
                "changes": revision.changes,
                "rollbackOf": revision.rollback_of,
                "restorable": inventory.stored.has(revision.revision),
            })
        })
        .collect()
}

/// The first 12 characters of a digest: enough to tell revisions' inputs apart.
fn short(digest: &str) -> String {
    digest.chars().take(12).collect()
}

/// A row's cells, in [`COLUMNS`] order; `-` for what the record does not know.
fn cells(row: &Value) -> Vec<String> {
    let text = |k: &str| row[k].as_str().unwrap_or("-").to_owned();
    let changes = &row["changes"];
    let changes = if changes.is_null() {
        "-".to_owned()
    } else {
        format!(
            "+{} ~{} -{}",
            changes["created"], changes["configured"], changes["pruned"]
        )
    };
    vec![
        row["revision"].to_string(),
        text("updated"),
        text("phase"),
        text("version"),
        text("profile"),
        text("values"),
        text("actor"),
        changes,
        row["rollbackOf"]
            .as_u64()
            .map_or_else(|| "-".to_owned(), |r| r.to_string()),
    ]
}
