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
        let releases = kube::list_releases(cluster.client(), &settings.state_namespace).await?;
        let mut rows = Vec::new();
        for release in &releases {
            let health = kube::release_health(&cluster, release).await?;
            rows.push(release_value(release, Some(&health)));
        }
        Ok::<_, Error>(rows)
    })?;
    let text = match settings.output {
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
    Ok(ExitStatus::Success)
}
