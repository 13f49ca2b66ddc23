//! `plane profiles`: the profiles plane knows, with their region URL.

use serde_json::json;

use crate::bundle::profile;
use crate::cli::TableFormat;
use crate::error::{Error, ExitStatus};
use crate::settings::ListSettings;
use crate::ui::{Printer, Table, to_format};

pub fn run(settings: &ListSettings, printer: &Printer) -> Result<ExitStatus, Error> {
    let sources = &settings.sources;
    let mut rows = Vec::new();
    for name in profile::names(&sources.profiles) {
        match profile::load(&sources.profiles, &name) {
            Ok(p) => rows.push(json!({
                "name": p.name,
                "url": p.region_url(),
                "description": p.spec.description,
                "cluster": p.spec.cluster,
            })),
            Err(problem) => printer.warn(&format!("profile {name} does not load: {problem}")),
        }
    }
    let text = match settings.output {
        TableFormat::Table => {
            let mut table = Table::new(&["NAME", "URL", "DESCRIPTION"]);
            for row in &rows {
                table.row(vec![
                    row["name"].as_str().unwrap_or("").to_owned(),
                    row["url"].as_str().unwrap_or("-").to_owned(),
                    row["description"].as_str().unwrap_or("").to_owned(),
                ]);
            }
            table.render()
        }
        TableFormat::Json => to_format(&json!(rows), false)?,
        TableFormat::Yaml => to_format(&json!(rows), true)?,
    };
    printer.data(&text);
    Ok(ExitStatus::Success)
}
