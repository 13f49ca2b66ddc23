//! `plane ls`: the releases on the cluster, with their health computed live.

use serde_json::json;

use super::cluster;
use crate::cli::{LsArgs, TableFormat};
use crate::error::{Error, Status};
use crate::kube::{self, WaitTarget};
use crate::ui::{Printer, Table};

pub fn run(args: &LsArgs, printer: &Printer) -> Result<Status, Error> {
    let runtime = cluster::runtime()?;
    let rows = runtime.block_on(async {
        let (target, resources) = cluster::connect(&args.cluster, None, printer).await?;
        let releases = kube::list_releases(&target.client, &args.state_namespace)
            .await
            .map_err(|e| cluster::failed(&e))?;
        let mut rows = Vec::new();
        for release in releases {
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
            let (ready, total, failing) = kube::health(&resources, &targets)
                .await
                .map_err(|e| cluster::failed(&e))?;
            let inv = &release.inventory;
            rows.push(json!({
                "name": release.name,
                "namespace": release.namespace,
                "addon": inv.addon,
                "version": inv.version,
                "profile": inv.profile,
                "revision": inv.revision,
                "status": inv.phase.as_str(),
                "health": {"ready": ready, "total": total, "failing": failing},
                "updated": inv.updated_at,
                "actor": inv.actor,
            }));
        }
        Ok::<_, Error>(rows)
    })?;
    let text = match args.output {
        TableFormat::Table => {
            let mut table = Table::new(&[
                "NAME",
                "NAMESPACE",
                "ADDON",
                "VERSION",
                "PROFILE",
                "REVISION",
                "STATUS",
                "HEALTH",
                "UPDATED",
            ]);
            for row in &rows {
                let health = &row["health"];
                let mut health_text = format!("{}/{}", health["ready"], health["total"]);
                if let Some(failing) = health["failing"].as_str() {
                    health_text.push_str(&format!(" ({failing})"));
                }
                let text = |k: &str| row[k].as_str().unwrap_or("-").to_owned();
                table.row(vec![
                    text("name"),
                    text("namespace"),
                    text("addon"),
                    text("version"),
                    text("profile"),
                    row["revision"].to_string(),
                    text("status"),
                    health_text,
                    text("updated"),
                ]);
            }
            table.render()
        }
        TableFormat::Json => super::to_format(&json!(rows), false)?,
        TableFormat::Yaml => super::to_format(&json!(rows), true)?,
    };
    printer.data(&text);
    Ok(Status::Success)
}
