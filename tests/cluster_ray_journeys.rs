//! The Ray addon on a cluster, as KubeRay v1.7.0 runs it: a RayCluster made with kubectl, under a
//! name plane never rendered, is covered by the release's NetworkPolicies; an `up` that changes
//! only the bootstrap cluster's image converges at once (KubeRay does not move
//! observedGeneration for it), a worker scale-up is reported ready only with its new worker ready,
//! and a new bundle version with the same Prometheus configuration leaves Prometheus running.

#![allow(
    clippy::print_stderr,
    reason = "the live tier reports its timings, for the record"
)]

mod common;

use std::time::{Duration, Instant};

use common::cluster::{Cluster, skipped};
use common::netpol::selects;
use common::{LOCAL, builtin, run_on, succeeded, within};
use serde_json::{Value, json};

const RELEASE: &str = "datalayer-ray";
const BY_HAND: &str = "made-by-hand";

/// A RayCluster the release never rendered: one head, one worker.
fn by_hand() -> Value {
    let template = json!({"spec": {"containers": [{"name": "ray", "image": "rayproject/ray:2.58.0-py312",
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "100m", "memory": "256Mi"}}}]}});
    json!({"apiVersion": "ray.io/v1", "kind": "RayCluster",
        "metadata": {"namespace": "default", "name": BY_HAND},
        "spec": {"rayVersion": "2.58.0",
            "headGroupSpec": {"rayStartParams": {}, "template": template},
            "workerGroupSpecs": [{"groupName": "workers", "replicas": 1, "minReplicas": 1, "maxReplicas": 1,
                "rayStartParams": {}, "template": template}]}})
}

/// The pods of RayCluster `name` in `default`, as (name, labels, ready).
fn ray_pods(cluster: &Cluster, name: &str) -> Vec<(String, Value, bool)> {
    cluster
        .list("v1", "Pod", Some("default"))
        .into_iter()
        .filter(|p| p["metadata"]["labels"]["ray.io/cluster"] == name)
        .map(|p| {
            let ready = p["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            (
                p["metadata"]["name"].as_str().unwrap().to_owned(),
                p["metadata"]["labels"].clone(),
                ready,
            )
        })
        .collect()
}

/// The names of the NetworkPolicies of `default` that select pods with `labels` for ingress.
fn selecting(cluster: &Cluster, labels: &Value) -> Vec<String> {
    let labels = labels
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
        .collect();
    cluster
        .list("networking.k8s.io/v1", "NetworkPolicy", Some("default"))
        .into_iter()
        .filter(|p| selects(&p["spec"]["podSelector"], &labels))
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_owned())
        .collect()
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn ray_clusters_of_any_name_are_covered_and_changes_converge_as_kuberay_reports_them() {
    let cluster = Cluster::under_test("ray-journeys");
    cluster.delete("ray.io/v1", "RayCluster", Some("default"), BY_HAND);
    if cluster.inventory(RELEASE).is_some() {
        succeeded(&within(
            common::down(cluster.kubeconfig(), RELEASE, &["--yes"]),
            Duration::from_secs(240),
        ));
    }
    let fixture = builtin(RELEASE);
    let started = Instant::now();
    succeeded(&run_on(
        &fixture,
        cluster.kubeconfig(),
        "up",
        &[LOCAL, &["--timeout", "120s"]].concat(),
    ));
    eprintln!("up took {:.1}s", started.elapsed().as_secs_f64());

    // A RayCluster made by hand, under a name plane never rendered: its pods are selected by the
    // release's ray-head and ray-worker policies.
    cluster.apply_as("e2e-journeys", &by_hand());
    if cluster.is_live() {
        wait_for(
            "the hand-made cluster's pods",
            Duration::from_secs(60),
            || ray_pods(&cluster, BY_HAND).len() == 2,
        );
        for (pod, labels, _) in ray_pods(&cluster, BY_HAND) {
            let node_type = labels["ray.io/node-type"].as_str().unwrap().to_owned();
            assert_eq!(
                selecting(&cluster, &labels),
                [format!("ray-{node_type}")],
                "{pod}: {labels}"
            );
        }
    } else {
        skipped(
            "ray-journeys",
            "the hand-made RayCluster's pods: the test server creates no pods; its policies are checked against KubeRay's labels instead",
        );
        for node_type in ["head", "worker"] {
            let labels = json!({"ray.io/cluster": BY_HAND, "ray.io/node-type": node_type,
                "ray.io/is-ray-node": "yes", "app.kubernetes.io/created-by": "kuberay-operator"});
            assert_eq!(selecting(&cluster, &labels), [format!("ray-{node_type}")]);
        }
    }
    cluster.delete("ray.io/v1", "RayCluster", Some("default"), BY_HAND);

    // A new Ray image only: KubeRay writes no status for it, and plane does not wait for one.
    let generation = |c: &Cluster| {
        c.get("ray.io/v1", "RayCluster", Some("default"), "raycluster")
            .unwrap()["metadata"]["generation"]
            .as_i64()
            .unwrap()
    };
    let before = generation(&cluster);
    let started = Instant::now();
    succeeded(&run_on(
        &fixture,
        cluster.kubeconfig(),
        "up",
        &[
            LOCAL,
            &[
                "--set",
                "bootstrapRayCluster.image.tag=2.58.0-py311",
                "--timeout",
                "60s",
            ],
        ]
        .concat(),
    ));
    let took = started.elapsed();
    eprintln!("image-only up took {:.1}s", took.as_secs_f64());
    let rc = cluster
        .get("ray.io/v1", "RayCluster", Some("default"), "raycluster")
        .unwrap();
    assert!(generation(&cluster) > before);
    assert!(took < Duration::from_secs(30), "it waited {took:?}");
    eprintln!(
        "observedGeneration {} for generation {}",
        rc["status"]["observedGeneration"], rc["metadata"]["generation"]
    );

    // A scale-up (minReplicas raised): ready only once the new worker is.
    let scaled = [
        LOCAL,
        &[
            "--set",
            "bootstrapRayCluster.image.tag=2.58.0-py311",
            "--set",
            "bootstrapRayCluster.worker.minReplicas=2",
            "--set",
            "bootstrapRayCluster.worker.replicas=2",
            "--timeout",
            "60s",
        ],
    ]
    .concat();
    succeeded(&run_on(&fixture, cluster.kubeconfig(), "up", &scaled));
    let rc = cluster
        .get("ray.io/v1", "RayCluster", Some("default"), "raycluster")
        .unwrap();
    assert_eq!(rc["status"]["desiredWorkerReplicas"], 2, "{}", rc["status"]);
    assert!(
        rc["status"]["readyWorkerReplicas"].as_i64().unwrap() >= 2,
        "{}",
        rc["status"]
    );
    if cluster.is_live() {
        let workers: Vec<bool> = ray_pods(&cluster, "raycluster")
            .into_iter()
            .filter(|(_, l, _)| l["ray.io/node-type"] == "worker")
            .map(|(.., ready)| ready)
            .collect();
        assert!(
            workers.len() >= 2 && workers.iter().all(|r| *r),
            "workers when up returned: {workers:?}"
        );
    }

    // A new bundle version with the same Prometheus configuration: Prometheus is not rolled.
    let prometheus = |c: &Cluster| {
        let d = c
            .get(
                "apps/v1",
                "Deployment",
                Some("ray-observability"),
                "prometheus",
            )
            .unwrap();
        let pods: Vec<String> = c
            .list("v1", "Pod", Some("ray-observability"))
            .into_iter()
            .filter(|p| p["metadata"]["labels"]["app.kubernetes.io/name"] == "prometheus")
            .map(|p| p["metadata"]["uid"].as_str().unwrap().to_owned())
            .collect();
        (d["metadata"]["generation"].clone(), pods)
    };
    let (generation_before, pods_before) = prometheus(&cluster);
    let bumped = builtin(RELEASE).patch_file("addon.yaml", "version: 0.1.0", "version: 0.1.1");
    succeeded(&run_on(&bumped, cluster.kubeconfig(), "up", &scaled));
    let (generation_after, pods_after) = prometheus(&cluster);
    assert_eq!(
        generation_after, generation_before,
        "the Deployment changed"
    );
    assert_eq!(pods_after, pods_before, "Prometheus was restarted");
    if !cluster.is_live() {
        skipped(
            "ray-journeys",
            "Prometheus's pod uid: the test server runs no pods; its Deployment's generation stands in",
        );
    }

    succeeded(&within(
        common::down(cluster.kubeconfig(), RELEASE, &["--yes"]),
        Duration::from_secs(240),
    ));
}
