//! `plane images`: every image a bundle runs and declares, offline, with the containers that run
//! each and the values that set it; over every profile, one render per profile.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use super::sandbox::render;
use crate::bundle::images::ImageUse;
use crate::bundle::profile;
use crate::cli::{ImagesArgs, ImagesFormat};
use crate::error::{Error, ExitStatus, Problem};
use crate::settings::RenderSettings;
use crate::ui::{Printer, Table, to_format};

/// The render settings of `plane images`: the flags' own, with every switch on when asked.
pub fn settings(args: &ImagesArgs) -> RenderSettings {
    let mut settings = RenderSettings::from_args(&args.render);
    settings.all_variants = args.all_variants;
    settings
}

pub fn run(args: &ImagesArgs, printer: &Printer) -> Result<ExitStatus, Error> {
    let images: Vec<Value> = if args.all_profiles {
        every_profile(args)?
    } else {
        let rendered = render(&settings(args))?;
        rendered
            .images
            .iter()
            .map(|image| serde_json::to_value(image).unwrap_or(Value::Null))
            .collect()
    };
    let text = match args.output {
        ImagesFormat::Json => to_format(&json!(images), false)?,
        ImagesFormat::Table => table(&images),
    };
    printer.data(&text);
    Ok(ExitStatus::Success)
}

/// One `plane images --profile P -o json` per profile, each its own sandboxed render; the
/// images together, each with the profiles that use it.
fn every_profile(args: &ImagesArgs) -> Result<Vec<Value>, Error> {
    let sources = crate::settings::sources(&args.render.sources);
    let mut names = profile::names(&sources.profiles);
    names.sort();
    let exe = std::env::current_exe()
        .map_err(|err| Error::failed("cannot find plane's own executable", &err))?;
    let own: Vec<OsString> = std::env::args_os().skip(1).collect();
    let mut merged: BTreeMap<String, (ImageUse, Vec<String>)> = BTreeMap::new();
    let mut problems = Vec::new();
    for name in &names {
        let args = super::fleet::child_args(
            &own,
            true,
            &["--profile".into(), name.clone(), "-o".into(), "json".into()],
        );
        let out = Command::new(&exe)
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .map_err(|err| Error::failed("cannot start plane for a profile", &err))?;
        if !out.status.success() {
            let stderr = crate::redact::mask(&String::from_utf8_lossy(&out.stderr)).into_owned();
            problems.push(
                Problem::new(format!("profile {name}: its render failed"))
                    .because(stderr.trim().to_owned()),
            );
            continue;
        }
        let found: Vec<ImageUse> = serde_json::from_slice(&out.stdout)
            .map_err(|err| Error::failed(format!("profile {name}: unreadable image list"), &err))?;
        for image in found {
            let entry = merged
                .entry(image.image.clone())
                .or_insert_with(|| (image.clone(), Vec::new()));
            for object in image.objects {
                if !entry.0.objects.contains(&object) {
                    entry.0.objects.push(object);
                }
            }
            for site in image.values {
                if !entry.0.values.contains(&site) {
                    entry.0.values.push(site);
                }
            }
            entry.1.push(name.clone());
        }
    }
    if !problems.is_empty() {
        return Err(Error::Input { problems });
    }
    Ok(merged
        .into_values()
        .map(|(image, profiles)| {
            let mut value = serde_json::to_value(image).unwrap_or(Value::Null);
            value["profiles"] = json!(profiles);
            value
        })
        .collect())
}

/// IMAGE, how it is pinned, what it was before a mirror, who runs it and the value that sets it.
fn table(images: &[Value]) -> String {
    let mut table = Table::new(&["IMAGE", "PINNED", "MIRRORS", "RUN BY", "SET BY"]);
    for image in images {
        let list = |key: &str| -> Vec<String> {
            image[key]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        };
        let objects = list("objects");
        let run_by = match (objects.first(), image["related"].as_str()) {
            (Some(first), _) if objects.len() > 1 => {
                format!("{first} and {} more", objects.len() - 1)
            }
            (Some(first), _) => first.clone(),
            (None, Some(related)) => format!("(started later) {related}"),
            (None, None) => "-".to_owned(),
        };
        let set_by = image["values"]
            .as_array()
            .and_then(|sites| sites.first())
            .map_or_else(
                || "-".to_owned(),
                |site| {
                    format!(
                        "{} ({})",
                        site["path"].as_str().unwrap_or("-"),
                        site["origin"].as_str().unwrap_or("-")
                    )
                },
            );
        table.row(vec![
            image["image"].as_str().unwrap_or("-").to_owned(),
            if image["digest"].is_string() {
                "digest".to_owned()
            } else {
                "tag".to_owned()
            },
            image["source"].as_str().unwrap_or("-").to_owned(),
            run_by,
            set_by,
        ]);
    }
    table.render()
}
