//! `plane addons`: the bundles plane knows, with version and description.

use serde_json::json;

use crate::bundle;
use crate::cli::TableFormat;
use crate::error::{Error, ExitStatus};
use crate::settings::ListSettings;
use crate::ui::{Printer, Table, to_format};

pub fn run(settings: &ListSettings, printer: &Printer) -> Result<ExitStatus, Error> {
    let sources = &settings.sources;
    let mut rows = Vec::new();
    for name in bundle::names(sources) {
        // A broken bundle is listed with its problem rather than hiding the others.
        match bundle::load(sources, &name) {
            Ok(addon) => rows.push(json!({
                "name": addon.manifest.name,
                "version": addon.manifest.version,
                "description": addon.manifest.description,
                "components": addon.manifest.components.iter().map(|c| c.name.clone()).collect::<Vec<_>>(),
            })),
            Err(err) => {
                printer.warn(&format!("bundle {name} does not load: {}", err.problems().first().map(ToString::to_string).unwrap_or_default()));
            }
        }
    }
    let text = match settings.output {
        TableFormat::Table => {
            let mut table = Table::new(&["NAME", "VERSION", "DESCRIPTION"]);
            for row in &rows {
                table.row(
                    ["name", "version", "description"]
                        .iter()
                        .map(|k| row[k].as_str().unwrap_or("").to_owned())
                        .collect(),
                );
            }
            table.render()
        }
        TableFormat::Json => to_format(&json!(rows), false)?,
        TableFormat::Yaml => to_format(&json!(rows), true)?,
    };
    printer.data(&text);
    Ok(ExitStatus::Success)
}
