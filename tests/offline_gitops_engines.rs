//! What `plane gitops argocd-health` and `flux-kustomization` print, as the engines run it: the
//! Lua under a real Lua 5.1 with Argo CD's `obj`, the CEL through a CEL evaluator with Flux's
//! variables, each giving plane's verdict on a RayCluster that is ready, failed or new.

use std::io::Write as _;
use std::process::{Command, Stdio};

use assert_cmd::cargo::cargo_bin;
use serde_json::{Value, json};

fn plane(args: &[&str]) -> Value {
    let out = Command::new(cargo_bin("plane"))
        .args(args)
        .env_remove("KUBECONFIG")
        .output()
        .expect("plane runs");
    assert!(
        out.status.success(),
        "plane {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_yaml_ng::from_slice(&out.stdout).expect("YAML on stdout")
}

/// A RayCluster with one worker group of `workers` replicas, and `status`.
fn ray_cluster(workers: i64, status: &Value) -> Value {
    json!({
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {"name": "c", "namespace": "ns", "generation": 1},
        "spec": {"workerGroupSpecs": [{"groupName": "g", "replicas": workers, "minReplicas": 0, "maxReplicas": 4}]},
        "status": status,
    })
}

fn condition(kind: &str, status: &str) -> Value {
    json!({"type": kind, "status": status})
}

/// Ready, failed, and just created (no status at all), with the verdict plane gives each.
fn cases() -> Vec<(&'static str, Value)> {
    let ready = ray_cluster(
        1,
        &json!({
            "observedGeneration": 1,
            "state": "ready",
            "desiredWorkerReplicas": 1,
            "readyWorkerReplicas": 1,
            "conditions": [condition("HeadPodReady", "True"), condition("RayClusterProvisioned", "True")],
        }),
    );
    let failed = ray_cluster(
        1,
        &json!({
            "observedGeneration": 1,
            "conditions": [condition("ReplicaFailure", "True")],
        }),
    );
    let mut new = ray_cluster(1, &Value::Null);
    new.as_object_mut().expect("an object").remove("status");
    vec![("ready", ready), ("failed", failed), ("progressing", new)]
}

/// `value` as a Lua table constructor, as gopher-lua hands Argo CD's `obj` to a script.
fn lua(value: &Value) -> String {
    match value {
        Value::Null => "nil".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("{s:?}"),
        Value::Array(items) => format!(
            "{{{}}}",
            items.iter().map(lua).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("[{k:?}] = {}", lua(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Runs an Argo CD health script on `object` under Lua 5.1 without the `string` and `math`
/// libraries (Argo CD does not open them); the status it returns.
fn argocd_status(script: &str, object: &Value) -> String {
    let program = format!(
        "string = nil\nmath = nil\nobj = {}\nlocal hs = (function()\n{script}\nend)()\n\
         io.write(hs.status)\n",
        lua(object)
    );
    let mut child = Command::new("lua5.1")
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("lua5.1 is installed (CI installs it)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(program.as_bytes())
        .expect("the script is written");
    let out = child.wait_with_output().expect("lua5.1 ends");
    assert!(
        out.status.success(),
        "lua5.1: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

#[test]
fn argocd_health_scripts_give_plane_s_verdicts_under_lua_5_1() {
    let config = plane(&["gitops", "argocd-health", "datalayer-ray"]);
    assert_eq!(config["kind"], "ConfigMap");
    let data = config["data"].as_object().expect("data");
    let keys: Vec<&str> = data.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "resource.customizations.health.ray.io_RayCluster",
            "resource.customizations.health.ray.io_RayJob",
            "resource.customizations.health.ray.io_RayService",
        ]
    );
    let script = data["resource.customizations.health.ray.io_RayCluster"]
        .as_str()
        .expect("a script");
    for (verdict, object) in cases() {
        let expected = match verdict {
            "ready" => "Healthy",
            "failed" => "Degraded",
            _ => "Progressing",
        };
        assert_eq!(argocd_status(script, &object), expected, "{verdict}");
    }
}

/// A JSON value as Flux hands it to CEL: Kubernetes integers are `int`, never `uint`.
fn cel_value(value: &Value) -> cel::Value {
    use cel::objects::{Key, Map};
    use std::sync::Arc;
    match value {
        Value::Null => cel::Value::Null,
        Value::Bool(b) => cel::Value::Bool(*b),
        Value::Number(n) => n.as_i64().map_or_else(
            || cel::Value::Float(n.as_f64().unwrap_or(f64::NAN)),
            cel::Value::Int,
        ),
        Value::String(s) => cel::Value::String(Arc::new(s.clone())),
        Value::Array(items) => cel::Value::List(Arc::new(items.iter().map(cel_value).collect())),
        Value::Object(fields) => cel::Value::Map(Map {
            map: Arc::new(
                fields
                    .iter()
                    .map(|(k, v)| (Key::String(Arc::new(k.clone())), cel_value(v)))
                    .collect(),
            ),
        }),
    }
}

/// Evaluates one of Flux's `healthCheckExprs` on `object`, whose top-level fields are its
/// variables as Flux binds them, in Flux's environment: the standard library with optional
/// values, and the strings extension.
fn flux_eval(expression: &str, object: &Value) -> Result<bool, String> {
    let mut env = cel::Env::stdlib();
    env.add_extension(cel::extensions::strings)
        .map_err(|e| e.to_string())?;
    let env = std::sync::Arc::new(env);
    let program = env.compile(expression).map_err(|e| e.to_string())?;
    let mut context = cel::Context::with_env(std::sync::Arc::clone(&env));
    for (key, value) in object.as_object().expect("an object") {
        context.add_variable_from_value(key.clone(), cel_value(value));
    }
    match program.execute(&context).map_err(|e| e.to_string())? {
        cel::Value::Bool(b) => Ok(b),
        other => Err(format!("not a bool: {other:?}")),
    }
}

#[test]
fn flux_kustomization_health_checks_give_plane_s_verdicts_through_cel() {
    let kustomization = plane(&[
        "gitops",
        "flux-kustomization",
        "datalayer-ray",
        "--source",
        "OCIRepository/addons-eastus",
    ]);
    assert_eq!(kustomization["kind"], "Kustomization");
    assert_eq!(kustomization["spec"]["prune"], true);
    assert_eq!(kustomization["spec"]["wait"], true);
    assert_eq!(
        kustomization["spec"]["sourceRef"],
        json!({"kind": "OCIRepository", "name": "addons-eastus"})
    );
    let checks = kustomization["spec"]["healthCheckExprs"]
        .as_array()
        .expect("healthCheckExprs");
    let kinds: Vec<&str> = checks.iter().filter_map(|c| c["kind"].as_str()).collect();
    assert_eq!(kinds, ["RayCluster", "RayJob", "RayService"]);
    let cluster = &checks[0];
    let current = cluster["current"].as_str().expect("current");
    let failed = cluster["failed"].as_str().expect("failed");
    for (verdict, object) in cases() {
        match verdict {
            "ready" => {
                assert_eq!(flux_eval(current, &object), Ok(true));
                assert_eq!(flux_eval(failed, &object), Ok(false));
            }
            "failed" => {
                assert_eq!(flux_eval(current, &object), Ok(false));
                assert_eq!(flux_eval(failed, &object), Ok(true));
            }
            // Flux cannot read `status` on an object without one: the expression errs, and Flux
            // waits (Unknown) as plane does (progressing); it never reads it as current.
            _ => assert_ne!(flux_eval(current, &object), Ok(true)),
        }
    }
}
