//! `plane gitops`: what Argo CD and Flux need beside `template --for` — the bundle's declared
//! readiness as Argo CD's Lua health checks, or as a Flux Kustomization's `healthCheckExprs`.

use serde_json::{Value, json};

use crate::app_file::App;
use crate::bundle::{self, Declared};
use crate::cli::{FluxArgs, GitopsArgs, GitopsBundleArgs, GitopsCommand};
use crate::error::{Error, ExitStatus, Problem};
use crate::ui::{Printer, to_format};

pub fn run(args: &GitopsArgs, printer: &Printer) -> Result<ExitStatus, Error> {
    match &args.command {
        GitopsCommand::ArgocdHealth(bundle) => argocd_health(bundle, printer),
        GitopsCommand::FluxKustomization(flux) => flux_kustomization(flux, printer),
        GitopsCommand::ArgocdParameters(bundle) => argocd_parameters(bundle, printer),
    }
}

/// The bundle's inputs as parameter announcements of Argo CD's plugin protocol.
fn argocd_parameters(args: &GitopsBundleArgs, printer: &Printer) -> Result<ExitStatus, Error> {
    let (addon, _, _) = declared(args)?;
    let sources = crate::settings::sources(&args.sources);
    let manifest = bundle::load(&sources, &addon)?.manifest;
    let parameters: Vec<Value> = manifest
        .inputs
        .iter()
        .map(|(name, spec)| {
            json!({
                "name": name,
                "title": if spec.description.is_empty() { name.clone() } else { spec.description.clone() },
                "required": spec.required,
                "itemType": "string",
                "collectionType": "string",
            })
        })
        .collect();
    printer.data(&format!("{}\n", Value::Array(parameters)));
    Ok(ExitStatus::Success)
}

/// The bundle's name and declarations, from its name or the app file.
fn declared(args: &GitopsBundleArgs) -> Result<(String, Option<App>, Declared), Error> {
    let app = match &args.app_file {
        Some(path) => Some(App::load(path).map_err(|problems| {
            let mut all = crate::error::Problems::default();
            all.extend(problems);
            all.into_result()
                .err()
                .unwrap_or_else(|| Error::input(Problem::new("invalid app file")))
        })?),
        None => None,
    };
    let addon = match (&args.addon, &app) {
        (Some(addon), _) => addon.clone(),
        (None, Some(app)) => app.file.addon.clone(),
        (None, None) => {
            return Err(Error::input(
                Problem::new("no bundle named").hint("name one, or pass --app-file plane.yaml"),
            ));
        }
    };
    let sources = crate::settings::sources(&args.sources);
    let loaded = bundle::load(&sources, &addon)?;
    Ok((addon, app, loaded.manifest.declared()))
}

/// argocd-cm's `resource.customizations.health.<group>_<Kind>` entries, as a ConfigMap to merge
/// into Argo CD's (`kubectl -n argocd patch configmap argocd-cm --patch-file ...`).
fn argocd_health(args: &GitopsBundleArgs, printer: &Printer) -> Result<ExitStatus, Error> {
    let (addon, _, declared) = declared(args)?;
    let entries = crate::gitops::lua::health_customizations(&declared.kinds).map_err(|why| {
        Error::input(
            Problem::new(format!(
                "the readiness {addon} declares cannot be written for Argo CD"
            ))
            .because(why),
        )
    })?;
    if entries.is_empty() {
        printer.status(&format!(
            "note: {addon} declares no readiness of its own kinds; Argo CD needs nothing more"
        ));
    }
    let data: serde_json::Map<String, Value> = entries
        .into_iter()
        .map(|(key, script)| (key, Value::String(script)))
        .collect();
    let config_map = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "argocd-cm",
            "namespace": "argocd",
            "labels": {"app.kubernetes.io/name": "argocd-cm", "app.kubernetes.io/part-of": "argocd"},
        },
        "data": data,
    });
    printer.data(&to_format(&config_map, true)?);
    Ok(ExitStatus::Success)
}

/// A Flux Kustomization that applies the render at `--path` of `--source`: prune, wait for
/// everything (the bundle's kinds by their declared readiness), server-side apply.
fn flux_kustomization(args: &FluxArgs, printer: &Printer) -> Result<ExitStatus, Error> {
    let (addon, app, declared) = declared(&args.bundle)?;
    let Some((kind, source)) = args.source.split_once('/') else {
        return Err(Error::input(
            Problem::new(format!(
                "--source {} does not name a Flux source",
                args.source
            ))
            .hint("write KIND/NAME, e.g. OCIRepository/addons-eastus or GitRepository/platform"),
        ));
    };
    let mut checks = Vec::new();
    for rule in declared.kinds.iter().filter(|k| k.readiness.is_some()) {
        let check = crate::gitops::cel_export::flux_check(rule).map_err(|why| {
            Error::input(
                Problem::new(format!(
                    "the readiness {addon} declares for {} cannot be written for Flux",
                    rule.kind
                ))
                .because(why),
            )
        })?;
        for caveat in crate::gitops::cel_export::flux_caveats(rule) {
            printer.warn(&caveat);
        }
        checks.push(serde_json::to_value(check).unwrap_or_default());
    }
    let release = app
        .as_ref()
        .and_then(|a| a.file.release.clone())
        .unwrap_or_else(|| addon.clone());
    let name = args.name.clone().unwrap_or(release);
    let mut spec = json!({
        "interval": args.interval,
        "timeout": args.timeout,
        "sourceRef": {"kind": kind, "name": source},
        "path": args.path,
        "prune": true,
        "wait": true,
    });
    if !checks.is_empty() {
        spec["healthCheckExprs"] = Value::Array(checks);
    }
    let kustomization = json!({
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": name, "namespace": args.namespace},
        "spec": spec,
    });
    printer.data(&to_format(&kustomization, true)?);
    Ok(ExitStatus::Success)
}
