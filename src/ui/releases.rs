//! A release as `ls` and `status` show it: one JSON row, and its cells in a table.

use serde_json::{Value, json};

use crate::kube::{Health, Release};

/// A release's record with its live health (`null` when it could not be read).
pub fn release_value(release: &Release, health: Option<&Health>) -> Value {
    let inv = &release.inventory;
    let drift = health.map_or(Value::Null, |h| json!(h.drifted));
    let health = health.map_or(
        Value::Null,
        |h| json!({"ready": h.ready, "total": h.total, "failing": h.first_failing}),
    );
    let mut row = json!({
        "name": release.name,
        "namespace": release.namespace,
        "addon": inv.addon,
        "version": inv.version,
        "bundleDigest": inv.bundle_digest,
        "profile": inv.profile,
        "revision": inv.revision,
        "status": inv.phase.as_str(),
        "health": health,
        "drift": drift,
        "updated": inv.updated_at,
        "actor": inv.actor,
    });
    // A release an engine runs: its status is the engine's, and plane keeps no revisions of it.
    if let Some(run) = &release.engine {
        row["status"] = json!(run.engine);
        row["revision"] = Value::Null;
        row["updated"] = Value::Null;
        row["engine"] = json!({"engine": run.engine, "owner": run.owner});
    }
    row
}

/// The columns of a release row in a table.
pub const RELEASE_COLUMNS: &[&str] = &[
    "NAME",
    "NAMESPACE",
    "ADDON",
    "VERSION",
    "PROFILE",
    "REVISION",
    "STATUS",
    "HEALTH",
    "DRIFT",
    "UPDATED",
];

/// A release row's cells, in [`RELEASE_COLUMNS`] order.
pub fn release_cells(row: &Value) -> Vec<String> {
    let text = |k: &str| row[k].as_str().unwrap_or("-").to_owned();
    vec![
        text("name"),
        text("namespace"),
        text("addon"),
        text("version"),
        text("profile"),
        match &row["revision"] {
            Value::Null => "-".to_owned(),
            revision => revision.to_string(),
        },
        text("status"),
        health_text(&row["health"]),
        drift_text(&row["drift"]),
        text("updated"),
    ]
}

/// `-` when nothing drifted; else how many objects, and the first with how it drifted.
pub fn drift_text(drift: &Value) -> String {
    match drift.as_array().map(Vec::as_slice) {
        None => "unknown".to_owned(),
        Some([]) => "-".to_owned(),
        Some([first]) => first.as_str().unwrap_or("-").to_owned(),
        Some([first, rest @ ..]) => format!(
            "{} ({} and {} more)",
            rest.len() + 1,
            first.as_str().unwrap_or("-"),
            rest.len()
        ),
    }
}

/// `ready/total`, and the first object not ready in parentheses; `unknown` when not read.
pub fn health_text(health: &Value) -> String {
    if health.is_null() {
        return "unknown".to_owned();
    }
    let mut text = format!("{}/{}", health["ready"], health["total"]);
    if let Some(failing) = health["failing"].as_str() {
        text.push_str(&format!(" ({failing})"));
    }
    text
}
