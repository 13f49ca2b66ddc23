//! The render `template --for argocd` gives, applied as Argo CD applies it — server-side, wave by
//! wave in `argocd.argoproj.io/sync-wave` order, each object marked with Argo CD's tracking id —
//! converges; `plane ls` and `status` show the release as Argo CD's, read-only; `up` and `down`
//! refuse it, naming the application. On the test server, and on the real control plane when
//! PLANE_E2E_KUBECONFIG is set (Argo CD itself cannot run here: the test applies as it would).

#![allow(
    clippy::print_stderr,
    reason = "the live tier reports its timings, for the record"
)]

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::{plane, status, succeeded, text, within};
use serde_json::{Value, json};

const APP_NAME: &str = "ray-eastus";
const APP: &str =
    "addon: datalayer-ray\nprofile: local\nsecrets:\n  ray-observability/grafana-admin: external\n";

/// The render as the plugin gives it to Argo CD.
fn render(folder: &std::path::Path) -> Vec<Value> {
    let mut cmd = plane();
    cmd.current_dir(folder)
        .args(["template", "--for", "argocd", "--app-file", "plane.yaml"])
        .env("ARGOCD_APP_NAME", APP_NAME);
    let out = within(cmd, Duration::from_secs(60));
    succeeded(&out);
    text(&out.stdout)
        .split("\n---\n")
        .map(|doc| serde_yaml_ng::from_str(doc.trim_start_matches("---\n")).unwrap())
        .collect()
}

/// What Argo CD's annotation tracking writes on every object it applies.
fn tracked(mut object: Value) -> Value {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    let kind = object["kind"].as_str().unwrap_or_default().to_owned();
    let namespace = object["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let name = object["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    object["metadata"]["annotations"]["argocd.argoproj.io/tracking-id"] =
        json!(format!("{APP_NAME}:{group}/{kind}:{namespace}/{name}"));
    object
}

fn wave(object: &Value) -> i64 {
    object["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"]
        .as_str()
        .and_then(|w| w.parse().ok())
        .unwrap_or(0)
}

fn ls_row(cluster: &Cluster) -> Option<Value> {
    let mut cmd = plane();
    cmd.args(["ls", "-o", "json", "--kubeconfig"])
        .arg(cluster.kubeconfig());
    let out = within(cmd, Duration::from_secs(60));
    succeeded(&out);
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    rows.as_array()?
        .iter()
        .find(|r| r["name"] == "datalayer-ray")
        .cloned()
}

fn established(cluster: &Cluster, name: &str) -> bool {
    cluster
        .get(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            None,
            name,
        )
        .is_some_and(|crd| {
            crd["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Established" && c["status"] == "True")
        })
}

#[test]
fn an_argocd_render_applied_wave_by_wave_converges_and_stays_argocds() {
    let cluster = Cluster::under_test("an_argocd_render_applied_wave_by_wave");
    let folder = tempfile::tempdir().unwrap();
    std::fs::write(folder.path().join("plane.yaml"), APP).unwrap();
    let objects = render(folder.path());

    // Argo CD: each wave applied server-side, the next once the CRDs of this one are served.
    let started = Instant::now();
    let mut waves: BTreeMap<i64, Vec<Value>> = BTreeMap::new();
    for object in &objects {
        waves
            .entry(wave(object))
            .or_default()
            .push(tracked(object.clone()));
    }
    for (wave, objects) in &waves {
        // Argo CD retries what the server refuses (a kind its discovery does not serve yet).
        for object in objects {
            let deadline = Instant::now() + Duration::from_secs(60);
            while let Err(why) = cluster.try_apply_as("argocd-controller", object) {
                assert!(Instant::now() < deadline, "wave {wave}: {why}: {object}");
                std::thread::sleep(Duration::from_millis(500));
            }
        }
        for crd in objects
            .iter()
            .filter(|o| o["kind"] == "CustomResourceDefinition")
        {
            let name = crd["metadata"]["name"].as_str().unwrap();
            let deadline = Instant::now() + Duration::from_secs(60);
            while !established(&cluster, name) {
                assert!(
                    Instant::now() < deadline,
                    "wave {wave}: {name} not established"
                );
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }

    // `plane ls`: the release is Argo CD's, and healthy once its objects are.
    let deadline = Instant::now() + Duration::from_secs(180);
    let row = loop {
        let Some(row) = ls_row(&cluster) else {
            let mut cmd = plane();
            cmd.args(["ls", "-o", "json", "--kubeconfig"])
                .arg(cluster.kubeconfig());
            let out = within(cmd, Duration::from_secs(60));
            panic!(
                "the release is not in ls: {}\n{}\n{:?}",
                text(&out.stdout),
                text(&out.stderr),
                cluster
                    .list("v1", "ConfigMap", None)
                    .iter()
                    .map(|c| c["metadata"]["name"].clone())
                    .collect::<Vec<_>>()
            );
        };
        if row["health"]["ready"] == row["health"]["total"] {
            break row;
        }
        assert!(Instant::now() < deadline, "not converged: {row:#}");
        std::thread::sleep(Duration::from_secs(1));
    };
    eprintln!("the Argo CD render converged in {:.1?}", started.elapsed());
    assert_eq!(row["status"], "argocd", "{row:#}");
    assert_eq!(
        row["engine"]["owner"],
        format!("Argo CD application {APP_NAME}")
    );
    assert!(row["revision"].is_null());
    assert_eq!(
        row["health"]["total"].as_u64(),
        Some(objects.len() as u64 - 1)
    );

    // `status` shows it, with its bundle's view.
    let out = status(cluster.kubeconfig(), &["-o", "json"]);
    succeeded(&out);
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let release = json["releases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "datalayer-ray")
        .expect("the release in status");
    assert_eq!(release["status"], "argocd");
    assert_eq!(json["ray"]["clusters"].as_array().map(Vec::len), Some(1));

    // `up` and `down` leave it to Argo CD, naming the application.
    let mut up = plane();
    up.current_dir(folder.path())
        .args(["up", "--app-file", "plane.yaml", "--yes", "--kubeconfig"])
        .arg(cluster.kubeconfig());
    let out = within(up, Duration::from_secs(120));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("is run by Argo CD application {APP_NAME}")),
        "{stderr}"
    );
    let out = within(
        common::on_release("down", cluster.kubeconfig(), "datalayer-ray", &["--yes"]),
        Duration::from_secs(120),
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("is run by Argo CD application {APP_NAME}")),
        "{stderr}"
    );
    assert!(
        ls_row(&cluster).is_some(),
        "down removed the release Argo CD runs"
    );

    // Argo CD deletes the application: the objects go, last wave first.
    for objects in waves.values().rev() {
        for object in objects.iter().rev() {
            let namespace = object["metadata"]["namespace"].as_str();
            cluster.delete(
                object["apiVersion"].as_str().unwrap(),
                object["kind"].as_str().unwrap(),
                namespace,
                object["metadata"]["name"].as_str().unwrap(),
            );
        }
    }
    assert!(ls_row(&cluster).is_none());
}
