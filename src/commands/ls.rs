//! `plane ls`: the releases on the cluster, with their health computed live.

use serde_json::{Value, json};

use super::cluster;
use crate::cli::{LsArgs, TableFormat};
use crate::error::{Error, Status};
use crate::kube::{self, KubeError, Release, Resources, WaitTarget};
use crate::ui::{Printer, Table};

pub fn run(args: &LsArgs, printer: &Printer) -> Result<Status, Error> {
    let runtime = cluster::runtime()?;
    let rows = runtime.block_on(async {
        let (target, resources) = cluster::connect(&args.cluster, None, printer).await?;
        let releases = kube::list_releases(&target.client, &args.state_namespace)
            .await
            .map_err(|e| cluster::failed(&e))?;
        let mut rows = Vec::new();
        for release in &releases {
            rows.push(
                release_row(&resources, release)
                    .await
                    .map_err(|e| cluster::failed(&e))?,
            );
        }
        Ok::<_, Error>(rows)
    })?;
    let text = match args.output {
        TableFormat::Table => {
            let mut table = Table::new(RELEASE_COLUMNS);
            for row in &rows {
                table.row(release_cells(row));
            }
            table.render()
        }
        TableFormat::Json => super::to_format(&json!(rows), false)?,
        TableFormat::Yaml => super::to_format(&json!(rows), true)?,
    };
    printer.data(&text);
    Ok(Status::Success)
}

/// A release as `ls` (and `status`) show it, with its live health.
///
/// # Errors
/// Discovery or read failures of its objects.
pub async fn release_row(resources: &Resources, release: &Release) -> Result<Value, KubeError> {
    let health = release_health(resources, release).await?;
    Ok(release_value(release, &health))
}

/// A release's live health: ready objects of all its recorded objects, and the first one not
/// ready with its status, as `{"ready", "total", "failing"}`.
///
/// # Errors
/// Discovery or read failures of its objects.
pub async fn release_health(resources: &Resources, release: &Release) -> Result<Value, KubeError> {
    let targets: Vec<WaitTarget> = release
        .inventory
        .objects
        .iter()
        .map(|o| WaitTarget {
            api_version: o.api_version.clone(),
            kind: o.kind.clone(),
            namespace: o.namespace.clone(),
            name: o.name.clone(),
            pods: None,
        })
        .collect();
    let (ready, total, failing) = kube::health(resources, &targets).await?;
    Ok(json!({"ready": ready, "total": total, "failing": failing}))
}

/// A release's record with its health (`null` when it could not be read).
pub fn release_value(release: &Release, health: &Value) -> Value {
    let inv = &release.inventory;
    json!({
        "name": release.name,
        "namespace": release.namespace,
        "addon": inv.addon,
        "version": inv.version,
        "profile": inv.profile,
        "revision": inv.revision,
        "status": inv.phase.as_str(),
        "health": health,
        "updated": inv.updated_at,
        "actor": inv.actor,
    })
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
        row["revision"].to_string(),
        text("status"),
        health_text(&row["health"]),
        text("updated"),
    ]
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
