//! The live tier of `plane status`: on the cluster named by `PLANE_E2E_KUBECONFIG` (or a test API
//! server when it is not set), the release up with the local profile and a second RayCluster in
//! another namespace show as 2 RayClusters with their requested resources and the release's
//! health, in a table and in JSON; a user without grants gets named errors and exit 1.

#![allow(
    clippy::print_stderr,
    reason = "the live tier reports what status printed, for the record"
)]

mod common;

use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::{LOCAL, builtin, down, status, text, within};
use serde_json::{Value, json};

const RELEASE: &str = "datalayer-ray";
const NAMESPACE: &str = "plane-e2e-status";
const SECOND: &str = "second";

/// A RayCluster whose pods request 1 CPU and 2Gi (head) plus one worker of 2 CPU and 4Gi.
fn second_cluster() -> Value {
    let template = |cpu: &str, memory: &str| {
        json!({"spec": {"containers": [{"name": "ray", "image": "rayproject/ray:2.58.0-py312",
            "resources": {"requests": {"cpu": cpu, "memory": memory}, "limits": {"cpu": cpu, "memory": memory}}}]}})
    };
    json!({"apiVersion": "ray.io/v1", "kind": "RayCluster",
        "metadata": {"namespace": NAMESPACE, "name": SECOND},
        "spec": {"rayVersion": "2.58.0",
            "headGroupSpec": {"rayStartParams": {}, "template": template("1", "2Gi")},
            "workerGroupSpecs": [{"groupName": "workers", "replicas": 1, "minReplicas": 1, "maxReplicas": 1,
                "rayStartParams": {}, "template": template("2", "4Gi")}]}})
}

/// Removes what the test made: the second RayCluster and its namespace, and the release if the
/// test installed it.
fn clean_up(cluster: &Cluster, release_was_there: bool) {
    cluster.delete("ray.io/v1", "RayCluster", Some(NAMESPACE), SECOND);
    cluster.delete("v1", "Namespace", None, NAMESPACE);
    if !release_was_there {
        let out = within(
            down(cluster.kubeconfig(), RELEASE, &["--yes"]),
            Duration::from_secs(240),
        );
        assert!(out.status.success(), "down: {}", text(&out.stderr));
    }
}

#[test]
fn status_shows_two_rayclusters_their_requests_and_the_release_health() {
    let cluster = Cluster::under_test("status");
    let fixture = builtin(RELEASE);
    let release_was_there = cluster.inventory(RELEASE).is_some();
    // A namespace an earlier failed run left is removed first.
    cluster.delete("v1", "Namespace", None, NAMESPACE);

    let started = Instant::now();
    let out = within(
        fixture.cluster(
            "up",
            cluster.kubeconfig(),
            &[LOCAL, &["--timeout", "120s"]].concat(),
        ),
        Duration::from_secs(240),
    );
    assert!(out.status.success(), "up: {}", text(&out.stderr));
    eprintln!("up took {:.1}s", started.elapsed().as_secs_f64());

    cluster.apply_as(
        "e2e-status",
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}),
    );
    cluster.apply_as("e2e-status", &second_cluster());
    let deadline = Instant::now() + Duration::from_secs(60);
    while cluster
        .get("ray.io/v1", "RayCluster", Some(NAMESPACE), SECOND)
        .is_none_or(|c| c["status"]["state"] != "ready")
    {
        assert!(
            Instant::now() < deadline,
            "the second RayCluster is not ready"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    let started = Instant::now();
    let out = status(cluster.kubeconfig(), &[RELEASE, "-o", "json"]);
    eprintln!(
        "status -o json took {:.2}s",
        started.elapsed().as_secs_f64()
    );
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();

    let release = &json["releases"][0];
    assert_eq!(release["name"], RELEASE);
    assert_eq!(release["status"], "deployed");
    let health = &release["health"];
    assert!(health["total"].as_u64().unwrap() > 30, "{health}");
    assert_eq!(health["ready"], health["total"], "{health}");
    assert_eq!(release["parts"]["operator"]["version"], "v1.7.0");

    let clusters = json["ray"]["clusters"].as_array().unwrap();
    let names: Vec<String> = clusters
        .iter()
        .map(|c| {
            format!(
                "{}/{}",
                c["namespace"].as_str().unwrap(),
                c["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(names, ["default/raycluster", "plane-e2e-status/second"]);
    let second = &clusters[1];
    assert_eq!(second["ready"], true, "{second:#}");
    // The real cluster's simulated KubeRay creates the head and worker pods as v1.7.0 does: the
    // requests are summed from their containers (the workers' wait-gcs-ready init container is
    // not counted). The test server makes no pods: the status's desired resources stand in,
    // and say so. Either way they are the templates' 1 + 2 CPU and 2Gi + 4Gi.
    let from = if cluster.is_live() { "pods" } else { "status" };
    assert_eq!(second["requestsFrom"], from, "{second:#}");
    let pods = u64::from(cluster.is_live());
    assert_eq!(second["headPods"], pods, "{second:#}");
    assert_eq!(second["workerPods"], pods, "{second:#}");
    assert_eq!(
        second["requests"],
        json!({"cpuMillis": 3000, "memoryBytes": 6_u64 << 30, "gpu": 0})
    );
    let bootstrap = &clusters[0];
    assert_eq!(bootstrap["ready"], true, "{bootstrap:#}");
    assert_eq!(bootstrap["requestsFrom"], from, "{bootstrap:#}");
    if cluster.is_live() {
        assert_eq!(bootstrap["headPods"], 1, "{bootstrap:#}");
        assert!(
            bootstrap["workerPods"].as_u64().unwrap() >= 1,
            "{bootstrap:#}"
        );
    }
    assert!(
        bootstrap["requests"]["cpuMillis"].as_u64().unwrap() > 0,
        "{bootstrap:#}"
    );
    assert_eq!(
        json["ray"]["total"]["clusters"],
        json!({"ready": 2, "notReady": 0})
    );
    assert_eq!(json["errors"], json!([]));
    // Nothing answers behind Prometheus's Service there: one line says so, the rest is shown.
    assert_eq!(json["usage"]["available"], false);
    let why = json["usage"]["reason"].as_str().unwrap();
    assert!(
        why.contains("Service/ray-observability/prometheus"),
        "{why}"
    );
    assert_eq!(stderr.matches("usage unavailable").count(), 1, "{stderr}");

    let out = status(cluster.kubeconfig(), &[RELEASE]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    eprintln!("{table}");
    let rows: Vec<String> = table
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    let total = health["total"].as_u64().unwrap();
    assert!(
        rows.iter()
            .any(|r| r.starts_with("datalayer-ray plane-system")
                && r.contains(&format!(" deployed {total}/{total} "))),
        "{table}"
    );
    let second_row = format!("plane-e2e-status second ready 1/1 {pods} {pods} 3 6Gi 0 {from}");
    assert!(rows.contains(&second_row), "{table}");
    assert!(
        rows.iter()
            .any(|r| r.starts_with("default raycluster ready ") && r.ends_with(&format!(" {from}"))),
        "{table}"
    );
    assert!(
        rows.iter().any(|r| r.starts_with("TOTAL 2/2 ready")),
        "{table}"
    );

    // A user without any grant: every kind is named, nothing else breaks, exit 1.
    if let Some(limited) = cluster.limited_kubeconfig() {
        let out = status(limited, &["-o", "json"]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        let json: Value = serde_json::from_slice(&out.stdout).unwrap();
        let errors: Vec<&str> = json["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["resource"].as_str().unwrap())
            .collect();
        for resource in [
            "rayclusters.ray.io",
            "rayjobs.ray.io",
            "pods",
            "secrets in plane-system",
        ] {
            assert!(
                errors.contains(&resource),
                "{resource} not named: {errors:?}"
            );
        }
        assert!(
            json["errors"][0]["reason"]
                .as_str()
                .unwrap()
                .starts_with("forbidden for user \""),
            "{json:#}"
        );
        assert!(json["releases"].is_null() && json["ray"]["clusters"].is_null());
    }

    clean_up(&cluster, release_was_there);
}
