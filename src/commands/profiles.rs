//! `plane profiles`: the profiles plane knows, with their region URL.

use serde_json::json;

use crate::bundle::profile;
use crate::cli::{ListArgs, TableFormat};
use crate::error::{Error, Status};
use crate::settings;
use crate::ui::{Printer, Table};

pub fn run(args: &ListArgs, printer: &Printer) -> Result<Status, Error> {
    let sources = settings::sources(&args.sources);
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
    let text = match args.output {
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
        TableFormat::Json => super::to_format(&json!(rows), false)?,
        TableFormat::Yaml => super::to_format(&json!(rows), true)?,
    };
    printer.data(&text);
    Ok(Status::Success)
}
