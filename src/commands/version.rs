//! `plane version`: plane's version, the commit it was built from, and each embedded bundle's
//! version and the digest of its files (what a release records).

use serde_json::json;

use crate::bundle::{self, Sources};
use crate::cli::VersionArgs;
use crate::error::{Error, ExitStatus};
use crate::ui::{Printer, Table, to_format};

pub fn run(args: &VersionArgs, printer: &Printer) -> Result<ExitStatus, Error> {
    let sources = Sources::embedded();
    let mut bundles = Vec::new();
    for name in bundle::names(&sources) {
        let addon = bundle::load(&sources, &name)?;
        bundles.push(json!({
            "name": name,
            "version": addon.manifest.version,
            "digest": addon.digest,
        }));
    }
    let doc = json!({
        "version": env!("CARGO_PKG_VERSION"),
        "commit": env!("PLANE_COMMIT"),
        "bundles": bundles,
    });
    let text = if args.output == crate::cli::TableFormat::Table {
        let mut table = Table::new(&["BUNDLE", "VERSION", "DIGEST"]);
        for bundle in &bundles {
            let cell = |key: &str| bundle[key].as_str().unwrap_or("-").to_owned();
            table.row(vec![cell("name"), cell("version"), cell("digest")]);
        }
        format!(
            "plane {} (commit {})\n{}",
            env!("CARGO_PKG_VERSION"),
            env!("PLANE_COMMIT"),
            table.render()
        )
    } else {
        to_format(&doc, args.output == crate::cli::TableFormat::Yaml)?
    };
    printer.data(&text);
    Ok(ExitStatus::Success)
}
