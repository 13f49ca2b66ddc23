//! A bundle plane knows only by what its addon.yaml declares (tests/fixtures/addons/widgets: its
//! own CRD, an operator-like Deployment, a Widget): `up` waits on the Widget by its declared
//! readiness and fails fast on its declared failure, `ls` counts it, `status` shows its view and
//! nothing of Ray, `diff` names the change a running Widget does not pick up, `down` removes it.
//! On the test server, and on the real control plane when PLANE_E2E_KUBECONFIG is set; the
//! Widget's operator is the test, which writes the status an operator would.

#![allow(
    clippy::print_stderr,
    reason = "the live tier reports its timings, for the record"
)]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::{Fixture, run_on, status, succeeded, text};
use serde_json::{Value, json};

const RELEASE: &str = "widgets";
const WIDGET: (&str, &str) = ("example.com/v1", "Widget");
const NAMESPACE: &str = "widget-system";

fn spawn(mut cmd: Command) -> Child {
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("plane runs")
}

/// Waits (up to `limit`) until `done` holds.
fn until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "{what} did not happen");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A finished child's output, within four minutes.
fn finish(child: Child) -> std::process::Output {
    let pid = child.id();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(child.wait_with_output());
    });
    if let Ok(out) = receiver.recv_timeout(Duration::from_secs(240)) {
        return out.expect("plane's output");
    }
    let _ = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status();
    panic!("plane {pid} still running after 240s");
}

fn widget(cluster: &Cluster) -> Option<Value> {
    cluster.get(WIDGET.0, WIDGET.1, Some(NAMESPACE), "main")
}

/// Writes the Widget's status, as its operator would.
fn report(cluster: &Cluster, status: &Value) {
    cluster.merge_patch_status(
        WIDGET.0,
        WIDGET.1,
        Some(NAMESPACE),
        "main",
        &json!({ "status": status }),
    );
}

/// The pod the Widget runs, as its operator would make it.
fn member() -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"namespace": NAMESPACE, "name": "main-0", "labels": {"example.com/widget": "main"}},
        "spec": {"containers": [{"name": "engine", "image": "example.com/widget-engine:v1",
            "resources": {"requests": {"cpu": "250m", "memory": "128Mi"}, "limits": {"cpu": "250m", "memory": "128Mi"}}}]}})
}

fn ls_row(cluster: &Cluster) -> Value {
    let mut cmd = common::plane();
    cmd.args(["ls", "-o", "json", "--kubeconfig"])
        .arg(cluster.kubeconfig());
    let out = common::within(cmd, Duration::from_secs(60));
    succeeded(&out);
    let rows: Value = serde_json::from_slice(&out.stdout).expect("ls JSON");
    rows.as_array()
        .and_then(|r| r.iter().find(|r| r["name"] == RELEASE))
        .cloned()
        .expect("the release in ls")
}

#[test]
fn a_bundle_known_only_by_its_declarations_is_waited_on_counted_and_shown() {
    let cluster = Cluster::under_test("a_bundle_known_only_by_its_declarations");
    let kc = cluster.kubeconfig().to_path_buf();
    let fixture = Fixture::addon(RELEASE);

    // 1. `up` waits on the Widget: nothing has written its status yet.
    let started = Instant::now();
    let up = spawn(fixture.cluster("up", &kc, &["--no-progress", "--timeout", "3m"]));
    until("the Widget's creation", Duration::from_secs(120), || {
        widget(&cluster).is_some()
    });
    std::thread::sleep(Duration::from_secs(2));
    let mut up = up;
    assert!(
        up.try_wait().expect("up's state").is_none(),
        "up ended before the Widget was ready"
    );
    cluster.apply_as("widget-operator", &member());
    report(
        &cluster,
        &json!({"observedGeneration": 1, "phase": "Running", "readyReplicas": 1}),
    );
    let out = finish(up);
    let stderr = succeeded(&out);
    eprintln!(
        "up, the Widget reported ready by hand: {:.1?}",
        started.elapsed()
    );
    assert!(stderr.contains("Widget/widget-system/main"), "{stderr}");

    // 2. `ls` counts it: every object ready, the Widget among them.
    let row = ls_row(&cluster);
    assert_eq!(row["health"]["ready"], row["health"]["total"], "{row:#}");
    report(
        &cluster,
        &json!({"observedGeneration": 1, "phase": "Degraded"}),
    );
    let row = ls_row(&cluster);
    assert_eq!(
        row["health"]["failing"], "Widget/widget-system/main: phase Degraded, 1/1 ready",
        "{row:#}"
    );
    report(
        &cluster,
        &json!({"observedGeneration": 1, "phase": "Running"}),
    );

    // 3. `status` shows the bundle's view, and nothing of Ray.
    let out = status(&kc, &["-o", "json"]);
    succeeded(&out);
    let json: Value = serde_json::from_slice(&out.stdout).expect("status JSON");
    assert!(json.get("ray").is_none(), "{json:#}");
    assert!(json.get("usage").is_none(), "{json:#}");
    let widgets = json["widgets"]["widgets"].as_array().expect("the Widgets");
    assert_eq!(widgets.len(), 1, "{json:#}");
    let main = &widgets[0];
    assert_eq!(
        (
            &main["name"],
            &main["state"],
            &main["ready"],
            &main["engine"]
        ),
        (&json!("main"), &json!("ready"), &json!(true), &json!("v1")),
        "{main:#}"
    );
    assert_eq!(main["memberPods"], 1, "{main:#}");
    assert_eq!(main["requestsFrom"], "pods", "{main:#}");
    assert_eq!(main["requests"]["cpuMillis"], 250, "{main:#}");
    assert_eq!(
        json["widgets"]["total"]["widgets"],
        json!({"ready": 1, "notReady": 0})
    );
    let parts = &json["releases"][0]["parts"];
    assert_eq!(parts["operator"]["version"], "v2.1.0", "{parts:#}");
    assert!(json["missing"].as_array().unwrap().is_empty(), "{json:#}");
    let out = status(&kc, &[]);
    succeeded(&out);
    let table = text(&out.stdout);
    assert!(
        table.contains("Widget operator v2.1.0")
            && table.contains("WIDGET ")
            && table.contains("ENGINE")
            && table.contains("MEMBER PODS"),
        "{table}"
    );
    assert!(!table.to_lowercase().contains("ray"), "{table}");

    // 4. `diff` names the change a running Widget does not pick up.
    let out = run_on(&fixture, &kc, "diff", &["--set", "widget.engine=v2"]);
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        said.contains(
            "changes spec.engine of a running Widget: a running widget keeps its engine; recreate \
             it (`kubectl delete widget -n widget-system main`, then `plane up`) to change it"
        ),
        "{said}"
    );

    // 5. `up` fails fast on the Widget's declared failure, with the operator's words.
    let up = spawn(fixture.cluster(
        "up",
        &kc,
        &[
            "--no-progress",
            "--timeout",
            "3m",
            "--yes",
            "--set",
            "widget.engine=v2",
        ],
    ));
    until("the new engine applied", Duration::from_secs(120), || {
        widget(&cluster).is_some_and(|w| w["spec"]["engine"] == "v2")
    });
    report(
        &cluster,
        &json!({"observedGeneration": 2, "phase": "Failed", "message": "engine v2 does not start"}),
    );
    let out = finish(up);
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("Widget/widget-system/main")
            && stderr.contains("the operator gave up: engine v2 does not start")
            && !stderr.contains("timed out"),
        "{stderr}"
    );

    // 6. `down` removes it all.
    cluster.delete("v1", "Pod", Some(NAMESPACE), "main-0");
    let mut down = common::plane();
    down.args(["down", RELEASE, "--yes", "--no-progress", "--kubeconfig"])
        .arg(&kc);
    succeeded(&common::within(down, Duration::from_secs(240)));
    assert!(widget(&cluster).is_none());
    assert!(cluster.inventory(RELEASE).is_none());
}
