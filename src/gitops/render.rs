//! What `template --for ENGINE` adds to a render so that the engine applies it as `up` would:
//! `up`'s stage order as Argo CD sync waves, server-side apply, no prune of what `up` never
//! prunes, no generated Secret, a refusal of an empty render, and a record of the release the
//! engine keeps for `plane ls`.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::app_file::Provider;
use crate::bundle::objects::{
    ENGINE_LABEL, ENGINE_RECORD_KEY as RECORD_KEY, ENGINE_RELEASE_LABEL, RELEASE_LABEL,
    RELEASE_NAMESPACE_LABEL,
};
use crate::bundle::{Object, ReleaseId, Rendered};
use crate::cli::Engine;
use crate::error::{Error, Problem};
use crate::kinds;

const SYNC_WAVE: &str = "argocd.argoproj.io/sync-wave";
const SYNC_OPTIONS: &str = "argocd.argoproj.io/sync-options";
const FLUX_PRUNE: &str = "kustomize.toolkit.fluxcd.io/prune";

/// The render as `engine` should apply it: every printable object with what the engine needs,
/// in render order, then the release's record.
///
/// # Errors
/// An empty render (an engine that prunes would delete the whole release), and generated Secrets
/// that the app file does not declare as provided from outside, each named.
pub fn for_engine(
    rendered: &Rendered,
    engine: Engine,
    release: &ReleaseId,
    profile: Option<&str>,
    provided: &BTreeMap<String, Provider>,
) -> Result<Vec<Value>, Error> {
    if rendered.objects.is_empty() {
        return Err(Error::input(
            Problem::new(format!(
                "the render of {} is empty; nothing is printed",
                rendered.addon
            ))
            .because(format!(
                "{} would prune every object of the release when it applies an empty render",
                engine_name(engine)
            ))
            .hint("check the app file's bundle, profile and switches"),
        ));
    }
    let undeclared: Vec<String> = rendered
        .objects
        .iter()
        .filter(|o| o.generated_keys().is_some())
        .map(secret_name)
        .filter(|name| !provided.contains_key(name))
        .collect();
    if !undeclared.is_empty() {
        let problem = Problem::new(format!(
            "{} generated Secret(s) of {} have no provider: {}",
            undeclared.len(),
            rendered.addon,
            undeclared.join(", ")
        ))
        .because(format!(
            "`plane up` creates them in the cluster and never prints their values; {} cannot",
            engine_name(engine)
        ));
        return Err(Error::input(problem.hint(format!(
            "say in the app file what provides each, e.g. `secrets: {{{}: external}}` \
             (external, sops or plane-up)",
            undeclared[0]
        ))));
    }
    let waves = waves(rendered);
    let mut out: Vec<Value> = rendered
        .printable()
        .map(|object| {
            let mut value = object.value.clone();
            let wave = waves.get(&object.component).copied().unwrap_or(0);
            let wave = if kinds::comes_first(&object.id.kind) {
                0
            } else {
                wave
            };
            match engine {
                Engine::Argocd => annotate(&mut value, &argocd(object, wave)),
                Engine::Flux => annotate(&mut value, &flux(object)),
            }
            value
        })
        .collect();
    out.push(record(rendered, engine, release, profile));
    Ok(out)
}

/// `NAMESPACE/NAME` of a generated Secret.
fn secret_name(object: &Object) -> String {
    format!(
        "{}/{}",
        object.id.namespace.as_deref().unwrap_or_default(),
        object.id.name
    )
}

fn engine_name(engine: Engine) -> &'static str {
    match engine {
        Engine::Argocd => "Argo CD",
        Engine::Flux => "Flux",
    }
}

/// The sync wave of each component: `up` applies namespaces and CRDs first (wave 0), then each
/// component in dependency order, waiting for a gated one before its dependents.
fn waves(rendered: &Rendered) -> BTreeMap<String, usize> {
    rendered
        .components
        .iter()
        .enumerate()
        .map(|(i, component)| (component.clone(), i + 1))
        .collect()
}

/// Argo CD's annotations: the wave; server-side apply; and for what `up` never prunes and
/// `down` keeps, no prune and no delete.
fn argocd(object: &Object, wave: usize) -> Vec<(&'static str, String)> {
    let mut options = vec!["ServerSideApply=true"];
    let known = kinds::lookup(&object.id.kind);
    if known.is_some_and(|k| k.protected) {
        options.push("Prune=false");
    }
    // `down` keeps CRDs and volumes, and a namespace that holds others' work, which Argo CD
    // cannot tell: it deletes none of them.
    if matches!(
        object.id.kind.as_str(),
        "CustomResourceDefinition" | "PersistentVolumeClaim" | "Namespace"
    ) {
        options.push("Delete=false");
    }
    vec![
        (SYNC_WAVE, wave.to_string()),
        (SYNC_OPTIONS, options.join(",")),
    ]
}

/// Flux's: no prune of what `up` never prunes.
fn flux(object: &Object) -> Vec<(&'static str, String)> {
    let protected = kinds::lookup(&object.id.kind).is_some_and(|k| k.protected);
    if protected {
        vec![(FLUX_PRUNE, "disabled".to_owned())]
    } else {
        Vec::new()
    }
}

fn annotate(value: &mut Value, annotations: &[(&'static str, String)]) {
    if annotations.is_empty() {
        return;
    }
    let Some(metadata) = value.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    let entry = metadata
        .entry("annotations")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(map) = entry.as_object_mut() {
        for (key, text) in annotations {
            map.insert((*key).to_owned(), Value::String(text.clone()));
        }
    }
}

/// Where the record of a release an engine runs lives: a team instance's namespace; else the
/// first namespace the render creates; else that of its first namespaced object.
pub fn record_namespace(rendered: &Rendered) -> Option<String> {
    rendered.instance.clone().or_else(|| {
        rendered
            .objects
            .iter()
            .find(|o| o.id.kind == "Namespace")
            .map(|o| o.id.name.clone())
            .or_else(|| rendered.objects.iter().find_map(|o| o.id.namespace.clone()))
    })
}

/// The ConfigMap `plane-engine-RELEASE` that records what the engine runs (the bundle, version,
/// objects and declared kinds), so that `plane ls` and `status` show the release as the
/// engine's, and `up` and `down` leave it to the engine. Applied in the first wave.
fn record(
    rendered: &Rendered,
    engine: Engine,
    release: &ReleaseId,
    profile: Option<&str>,
) -> Value {
    let objects: Vec<Value> = rendered
        .printable()
        .map(|o| serde_json::to_value(&o.id).unwrap_or_default())
        .collect();
    let body = json!({
        "release": release.name,
        "addon": rendered.addon,
        "version": rendered.version,
        "profile": profile,
        "valuesDigest": rendered.values_digest,
        "instance": rendered.instance,
        "engine": engine.as_str(),
        "objects": objects,
        "declared": rendered.declared,
    });
    let mut labels = Map::new();
    labels.insert(RELEASE_LABEL.into(), json!(release.name));
    labels.insert(RELEASE_NAMESPACE_LABEL.into(), json!(release.namespace));
    labels.insert(ENGINE_RELEASE_LABEL.into(), json!(release.name));
    labels.insert(ENGINE_LABEL.into(), json!(engine.as_str()));
    let mut value = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": format!("plane-engine-{}", release.name),
            "namespace": record_namespace(rendered),
            "labels": labels,
        },
        "data": {RECORD_KEY: body.to_string()},
    });
    if engine == Engine::Argocd {
        annotate(
            &mut value,
            &[
                (SYNC_WAVE, "0".to_owned()),
                (SYNC_OPTIONS, "ServerSideApply=true".to_owned()),
            ],
        );
    }
    value
}
