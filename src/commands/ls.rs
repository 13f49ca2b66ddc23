//! `plane ls`: the releases on the cluster, with their health computed live.

use serde_json::json;

use super::session;
use crate::cli::TableFormat;
use crate::error::{Error, ExitStatus};
use crate::kube;
use crate::settings::LsSettings;
use crate::ui::releases::{RELEASE_COLUMNS, release_cells, release_value};
use crate::ui::{Printer, Table, to_format};

pub fn run(settings: &LsSettings, printer: &Printer) -> Result<ExitStatus, Error> {
    let rows = session::runtime()?.block_on(async {
        let cluster = session::connect(&settings.cluster, None, printer).await?;
        let namespace = settings.namespace.as_deref();
        let (releases, engines) = futures::join!(
            kube::list_releases(cluster.client(), namespace),
            kube::list_engine_releases(cluster.client(), namespace),
        );
        let mut releases = releases?;
        releases.extend(engines?);
        // Every namespace (`-A`): one LIST per kind for all releases; one namespace: one LIST
        // per kind and namespace the releases record. One wave either way.
        let live = if settings.namespace.is_none() {
            kube::LiveObjects::read(&cluster, &releases).await?
        } else {
            kube::LiveObjects::read_in_namespaces(&cluster, &releases).await?
        };
        let healths: Vec<kube::Health> = releases.iter().map(|r| live.health(r)).collect();
        let mut rows = Vec::new();
        let mut reported = Vec::new();
        for (release, health) in releases.iter().zip(&healths) {
            let mut row = release_value(release, Some(health));
            let mut full = row.clone();
            full["valuesDigest"] = json!(release.inventory.values_digest);
            reported.push(full);
            if settings.namespace.is_none() {
                let tier = if release.inventory.instance.is_some() {
                    "team"
                } else {
                    "platform"
                };
                row["tier"] = tier.into();
            }
            rows.push(row);
        }
        super::fleet::write_report(&json!(reported));
        Ok::<_, Error>(rows)
    })?;
    let all = settings.namespace.is_none();
    let text = match settings.output {
        TableFormat::Table if all => {
            let mut table = Table::new(&[RELEASE_COLUMNS, &["TIER"]].concat());
            for row in &rows {
                let tier = row["tier"].as_str().unwrap_or("-").to_owned();
                table.row([release_cells(row), vec![tier]].concat());
            }
            table.render()
        }
        TableFormat::Table => {
            let mut table = Table::new(RELEASE_COLUMNS);
            for row in &rows {
                table.row(release_cells(row));
            }
            table.render()
        }
        TableFormat::Json => to_format(&json!(rows), false)?,
        TableFormat::Yaml => to_format(&json!(rows), true)?,
    };
    printer.data(&text);
    let drifted = rows
        .iter()
        .any(|row| row["drift"].as_array().is_some_and(|d| !d.is_empty()));
    Ok(if settings.exit_code && drifted {
        ExitStatus::Changes
    } else {
        ExitStatus::Success
    })
}
