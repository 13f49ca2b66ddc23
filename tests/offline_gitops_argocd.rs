//! plane as Argo CD's config-management plugin, run as Argo CD runs it: `deploy/argocd/plugin.yaml`
//! parsed, its `generate` command run in an application's folder (plane.yaml there) with Argo
//! CD's environment and no kubeconfig. Objects only on stdout, the same bytes on every run, `up`'s
//! stage order as sync waves, no prune or delete of what `up` never prunes and `down` keeps, no
//! Secret value anywhere; a missing input, an empty render and a generated Secret without a
//! provider each exit non-zero, naming the cause.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::text;
use serde_json::Value;

const PLUGIN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/argocd/plugin.yaml");
const RUN_URL: &str = "https://ray.example.com";

fn plugin() -> Value {
    let text = std::fs::read_to_string(PLUGIN).expect("deploy/argocd/plugin.yaml");
    serde_yaml_ng::from_str(&text).expect("plugin.yaml is YAML")
}

/// The command of `spec.<step>.command` in plugin.yaml.
fn command_of(step: &str) -> Vec<String> {
    let plugin = plugin();
    let pointer = match step {
        "generate" => "/spec/generate/command",
        _ => "/spec/parameters/dynamic/command",
    };
    plugin
        .pointer(pointer)
        .and_then(Value::as_array)
        .expect("a command")
        .iter()
        .map(|a| a.as_str().expect("a word").to_owned())
        .collect()
}

/// An application's folder with `app` as its plane.yaml.
fn app(text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("plane.yaml"), text).unwrap();
    dir
}

/// Runs a plugin command as Argo CD's repo-server sidecar does: in the application's folder,
/// `plane` on the PATH, Argo CD's variables, no kubeconfig and an empty home.
fn run(command: &[String], folder: &Path, env: &[(&str, &str)]) -> Output {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_plane"));
    let home = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(&command[0]);
    cmd.args(&command[1..])
        .current_dir(folder)
        .env_clear()
        .env("PATH", bin.parent().unwrap())
        .env("HOME", home.path())
        .env("KUBECONFIG", home.path().join("none"))
        .env("ARGOCD_APP_NAME", "ray-eastus")
        .env("ARGOCD_APP_NAMESPACE", "argocd")
        .env("NO_COLOR", "1");
    for (key, value) in env {
        cmd.env(key, value);
    }
    let out = common::within(cmd, std::time::Duration::from_secs(60));
    drop(home);
    out
}

const APP: &str =
    "addon: datalayer-ray\nprofile: local\nsecrets:\n  ray-observability/grafana-admin: external\n";

fn documents(stdout: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(stdout).expect("UTF-8");
    assert!(text.starts_with("---\n"), "{text}");
    text.split("\n---\n")
        .map(|doc| serde_yaml_ng::from_str::<Value>(doc.trim_start_matches("---\n")).unwrap())
        .collect()
}

fn annotation<'a>(object: &'a Value, key: &str) -> &'a str {
    object["metadata"]["annotations"][key]
        .as_str()
        .unwrap_or_default()
}

#[test]
fn the_plugin_renders_objects_only_in_ups_order_and_the_same_each_time() {
    let plugin = plugin();
    assert_eq!(plugin["kind"], "ConfigManagementPlugin");
    assert_eq!(plugin["spec"]["discover"]["fileName"], "./plane.yaml");
    let generate = command_of("generate");
    let folder = app(APP);
    let env = [("ARGOCD_ENV_DATALAYER_RUN_URL", RUN_URL)];
    let first = run(&generate, folder.path(), &env);
    assert!(first.status.success(), "{}", text(&first.stderr));
    let second = run(&generate, folder.path(), &env);
    assert_eq!(first.stdout, second.stdout, "two runs differ");

    let objects = documents(&first.stdout);
    assert!(objects.len() > 30, "{}", objects.len());
    for object in &objects {
        assert!(
            object["apiVersion"].is_string()
                && object["kind"].is_string()
                && object["metadata"]["name"].is_string(),
            "not an object: {object}"
        );
        assert!(
            annotation(object, "argocd.argoproj.io/sync-options").contains("ServerSideApply=true"),
            "{object}"
        );
    }
    // Waves: namespaces and CRDs first, then the components in `up`'s dependency order.
    let wave = |o: &Value| -> u32 {
        annotation(o, "argocd.argoproj.io/sync-wave")
            .parse()
            .unwrap()
    };
    let mut component_wave: BTreeMap<String, u32> = BTreeMap::new();
    for object in &objects {
        let kind = object["kind"].as_str().unwrap();
        if matches!(kind, "Namespace" | "CustomResourceDefinition") {
            assert_eq!(wave(object), 0, "{kind}");
            continue;
        }
        if let Some(component) =
            object["metadata"]["labels"]["plane.datalayer.io/component"].as_str()
        {
            let seen = component_wave
                .entry(component.to_owned())
                .or_insert(wave(object));
            assert_eq!(*seen, wave(object), "one wave per component: {component}");
        }
    }
    assert!(
        component_wave["kuberay"] < component_wave["api"],
        "{component_wave:?}"
    );
    assert!(
        component_wave["kuberay"] < component_wave["ray"],
        "{component_wave:?}"
    );
    assert!(
        component_wave.values().all(|w| *w > 0),
        "{component_wave:?}"
    );
    // What `up` never prunes and `down` keeps, Argo CD neither prunes nor deletes.
    for object in &objects {
        let options = annotation(object, "argocd.argoproj.io/sync-options");
        let kind = object["kind"].as_str().unwrap();
        let protected = matches!(
            kind,
            "Namespace" | "CustomResourceDefinition" | "PersistentVolumeClaim"
        );
        assert_eq!(
            options.contains("Prune=false"),
            protected,
            "{kind}: {options}"
        );
        assert_eq!(
            options.contains("Delete=false"),
            protected,
            "{kind}: {options}"
        );
    }
    // No generated Secret, no Secret value on either stream; the release's record comes along.
    assert!(
        !objects
            .iter()
            .any(|o| o["kind"] == "Secret" && o["metadata"]["name"] == "grafana-admin"),
        "the generated Secret is printed"
    );
    let record = objects
        .iter()
        .find(|o| o["metadata"]["name"] == "plane-engine-datalayer-ray")
        .expect("the release's record");
    assert_eq!(
        record["metadata"]["labels"]["plane.datalayer.io/engine"],
        "argocd"
    );
    let stdout = text(&first.stdout);
    assert!(stdout.contains(RUN_URL.trim_start_matches("https://")));
    let stderr = text(&first.stderr);
    assert!(!stderr.contains("error"), "{stderr}");
}

#[test]
fn the_plugin_announces_the_bundles_inputs_as_parameters() {
    let folder = app(APP);
    let out = run(&command_of("parameters"), folder.path(), &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let parameters: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let first = &parameters[0];
    assert_eq!(first["name"], "DATALAYER_RUN_URL");
    assert_eq!(first["required"], true);
    // A parameter reaches `generate` as PARAM_<NAME>.
    let out = run(
        &command_of("generate"),
        folder.path(),
        &[("PARAM_DATALAYER_RUN_URL", "https://param.example.com")],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("param.example.com"));
}

#[test]
fn a_misconfigured_application_never_prints_a_render() {
    let generate = command_of("generate");
    // A required input the application does not give, and no profile that sets it.
    let folder =
        app("addon: datalayer-ray\nsecrets:\n  ray-observability/grafana-admin: external\n");
    let out = run(&generate, folder.path(), &[]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("ARGOCD_ENV_DATALAYER_RUN_URL is required"),
        "{stderr}"
    );

    // Every component off: an empty render, which Argo CD would prune the release for.
    let mut off = String::from("addon: datalayer-ray\nprofile: local\nset:\n");
    for switch in [
        "kuberay.enabled",
        "api.enabled",
        "bootstrapRayCluster.enabled",
        "logging.enabled",
        "observability.enabled",
        "networkPolicy.enabled",
    ] {
        off.push_str(&format!("  - {switch}=false\n"));
    }
    let folder = app(&off);
    let out = run(
        &generate,
        folder.path(),
        &[("ARGOCD_ENV_DATALAYER_RUN_URL", RUN_URL)],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());
    assert!(
        text(&out.stderr).contains("is empty"),
        "{}",
        text(&out.stderr)
    );

    // A generated Secret nobody provides.
    let folder = app("addon: datalayer-ray\nprofile: local\n");
    let out = run(
        &generate,
        folder.path(),
        &[("ARGOCD_ENV_DATALAYER_RUN_URL", RUN_URL)],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("ray-observability/grafana-admin") && stderr.contains("no provider"),
        "{stderr}"
    );

    // A broken app file: named at its line.
    let folder = app("addon: datalayer-ray\nprofle: local\n");
    let out = run(
        &generate,
        folder.path(),
        &[("ARGOCD_ENV_DATALAYER_RUN_URL", RUN_URL)],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("plane.yaml:2"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn flux_renders_keep_crds_namespaces_and_volumes_from_prune() {
    let folder = app(APP);
    let mut cmd = common::plane();
    cmd.current_dir(folder.path())
        .args(["template", "--for", "flux", "--app-file", "plane.yaml"])
        .env("DATALAYER_RUN_URL", RUN_URL);
    let out = common::within(cmd, std::time::Duration::from_secs(60));
    assert!(out.status.success(), "{}", text(&out.stderr));
    for object in documents(&out.stdout) {
        let kind = object["kind"].as_str().unwrap();
        let prune = annotation(&object, "kustomize.toolkit.fluxcd.io/prune");
        let protected = matches!(
            kind,
            "Namespace" | "CustomResourceDefinition" | "PersistentVolumeClaim"
        );
        assert_eq!(prune == "disabled", protected, "{kind}");
        assert_eq!(annotation(&object, "argocd.argoproj.io/sync-wave"), "");
    }
}
