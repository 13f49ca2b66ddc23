//! The server driven by kubectl, and the `plane-test-apiserver` binary run as a process.

use plane_test_apiserver::{Config, TestServer};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const KUBECTL: &str = "/usr/bin/kubectl";

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "plane-test-apiserver-cli-{tag}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs kubectl against a kubeconfig with its own discovery cache (ports are reused between
/// servers; a shared cache would serve stale discovery).
fn kubectl(kubeconfig: &Path, cache: &Path, args: &[&str]) -> Output {
    Command::new(KUBECTL)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--cache-dir")
        .arg(cache)
        .args(args)
        .env_remove("KUBECONFIG")
        .output()
        .expect("kubectl runs")
}

fn ok(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "kubectl failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

const MANIFEST: &str = "
apiVersion: v1
kind: Namespace
metadata:
  name: team
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: cfg
  namespace: team
  labels: {app: web}
data:
  greeting: hello
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: team
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.27
        ports:
        - containerPort: 80
";

const CRD: &str = "
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}
  versions:
  - name: v1
    served: true
    storage: true
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer, maximum: 5}
";

#[test]
fn kubectl_applies_gets_waits_and_deletes() {
    let srv = TestServer::start(Config::default());
    let dir = Scratch::new("kubectl");
    let (kc, cache) = (srv.kubeconfig_path(), dir.0.join("cache"));
    let manifest = dir.0.join("m.yaml");
    std::fs::write(&manifest, MANIFEST).unwrap();
    let m = manifest.to_str().unwrap();

    let out = ok(&kubectl(kc, &cache, &["apply", "--server-side", "-f", m]));
    assert!(
        out.contains("deployment.apps/web serverside-applied"),
        "{out}"
    );
    let patches: Vec<_> = srv
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .collect();
    assert_eq!(patches.len(), 3);
    for p in &patches {
        assert_eq!(
            p.content_type.as_deref(),
            Some("application/apply-patch+yaml")
        );
        assert_eq!(p.field_manager.as_deref(), Some("kubectl"));
        assert!(p.status == 200 || p.status == 201);
    }
    let replicas = ok(&kubectl(
        kc,
        &cache,
        &[
            "get",
            "deploy",
            "web",
            "-n",
            "team",
            "-o",
            "jsonpath={.spec.replicas}",
        ],
    ));
    assert_eq!(replicas, "2");
    let table = ok(&kubectl(
        kc,
        &cache,
        &["get", "configmaps", "-n", "team", "-l", "app=web"],
    ));
    assert!(
        table.starts_with("NAME") && table.contains("cfg"),
        "{table}"
    );
    let rollout = ok(&kubectl(
        kc,
        &cache,
        &[
            "rollout",
            "status",
            "deploy/web",
            "-n",
            "team",
            "--timeout=20s",
        ],
    ));
    assert!(rollout.contains("successfully rolled out"), "{rollout}");

    // A second apply with a different manager and value conflicts; --force-conflicts takes over.
    let changed = dir.0.join("changed.yaml");
    std::fs::write(&changed, MANIFEST.replace("replicas: 2", "replicas: 3")).unwrap();
    let c = changed.to_str().unwrap();
    let out = kubectl(
        kc,
        &cache,
        &[
            "apply",
            "--server-side",
            "--field-manager",
            "other",
            "-f",
            c,
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("conflict with \"kubectl\""));
    ok(&kubectl(
        kc,
        &cache,
        &[
            "apply",
            "--server-side",
            "--field-manager",
            "other",
            "--force-conflicts",
            "-f",
            c,
        ],
    ));

    // CRDs: establish, then custom resources validated against the schema.
    let crd = dir.0.join("crd.yaml");
    std::fs::write(&crd, CRD).unwrap();
    ok(&kubectl(
        kc,
        &cache,
        &["apply", "--server-side", "-f", crd.to_str().unwrap()],
    ));
    ok(&kubectl(
        kc,
        &cache,
        &[
            "wait",
            "--for",
            "condition=established",
            "crd/widgets.example.com",
            "--timeout=20s",
        ],
    ));
    let cr = dir.0.join("cr.yaml");
    std::fs::write(&cr, "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w, namespace: team}\nspec: {size: 9}\n").unwrap();
    let out = kubectl(
        kc,
        &cache,
        &["apply", "--server-side", "-f", cr.to_str().unwrap()],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("spec.size") && err.contains("less than or equal to 5"),
        "{err}"
    );
    std::fs::write(&cr, "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w, namespace: team}\nspec: {size: 4}\n").unwrap();
    ok(&kubectl(
        kc,
        &cache,
        &["apply", "--server-side", "-f", cr.to_str().unwrap()],
    ));
    let widgets = ok(&kubectl(kc, &cache, &["get", "widgets", "-n", "team"]));
    assert!(
        widgets.contains("SIZE") && widgets.contains('4'),
        "{widgets}"
    );

    // Namespaced objects first: `delete -f` would start with the Namespace, whose termination
    // can remove them before kubectl gets to them.
    let out = ok(&kubectl(
        kc,
        &cache,
        &[
            "delete",
            "-n",
            "team",
            "deployment/web",
            "configmap/cfg",
            "--timeout=20s",
        ],
    ));
    assert!(out.contains("deployment.apps \"web\" deleted"), "{out}");
    let out = ok(&kubectl(
        kc,
        &cache,
        &["delete", "namespace", "team", "--timeout=20s"],
    ));
    assert!(out.contains("namespace \"team\" deleted"), "{out}");
    assert!(
        srv.get_object("apps/v1", "Deployment", Some("team"), "web")
            .is_none()
    );
    assert!(srv.get_object("v1", "Namespace", None, "team").is_none());
    assert!(
        srv.list_objects("example.com/v1", "Widget", None)
            .is_empty(),
        "the namespace took its widgets along"
    );
}

#[test]
fn admin_endpoints_log_and_inject() {
    let srv = TestServer::start(Config::default());
    let dir = Scratch::new("admin");
    let (kc, cache) = (srv.kubeconfig_path(), dir.0.join("cache"));
    let fault = dir.0.join("fault.json");
    std::fs::write(&fault, r#"{"method": "GET", "path": "/api/v1/namespaces/default/configmaps", "status": 503, "times": 1}"#).unwrap();
    ok(&kubectl(
        kc,
        &cache,
        &[
            "create",
            "--raw",
            "/_admin/faults",
            "-f",
            fault.to_str().unwrap(),
        ],
    ));
    let out = kubectl(
        kc,
        &cache,
        &["get", "--raw", "/api/v1/namespaces/default/configmaps"],
    );
    assert!(!out.status.success(), "the injected 503 reaches kubectl");
    ok(&kubectl(
        kc,
        &cache,
        &["get", "--raw", "/api/v1/namespaces/default/configmaps"],
    ));
    let log: serde_json::Value = serde_json::from_str(&ok(&kubectl(
        kc,
        &cache,
        &["get", "--raw", "/_admin/requests"],
    )))
    .unwrap();
    let codes: Vec<u64> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["path"] == "/api/v1/namespaces/default/configmaps")
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(codes, [503, 200]);
}

#[test]
fn the_binary_writes_its_kubeconfig_and_serves_until_killed() {
    let dir = Scratch::new("bin");
    let kc = dir.0.join("sub").join("kubeconfig");
    let mut child = Command::new(env!("CARGO_BIN_EXE_plane-test-apiserver"))
        .arg("--kubeconfig")
        .arg(&kc)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !kc.exists() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = kubectl(
        &kc,
        &dir.0.join("cache"),
        &["get", "namespaces", "-o", "name"],
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        ok(&out),
        "namespace/default\nnamespace/kube-node-lease\nnamespace/kube-public\nnamespace/kube-system\n"
    );

    let bad = Command::new(env!("CARGO_BIN_EXE_plane-test-apiserver"))
        .arg("--port")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--port needs a value"));
    let missing = Command::new(env!("CARGO_BIN_EXE_plane-test-apiserver"))
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
}
