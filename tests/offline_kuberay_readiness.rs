//! The datalayer-ray bundle's declared readiness of KubeRay's kinds reads what KubeRay v1.7.0
//! writes (addons/datalayer-ray/docs/kuberay-status.md): the RayCluster, RayJob and RayService
//! rules, the pods of a RayCluster, and the change a running RayCluster does not pick up, each
//! evaluated as `up`, `ls` and `status` evaluate them.

use plane::bundle::{AddonManifest, Declared};
use plane::kube::{Readiness, pod_selector, readiness};
use serde_json::Value;

fn declared() -> Declared {
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/addons/datalayer-ray/addon.yaml"
    );
    let text = std::fs::read_to_string(file).unwrap();
    let manifest = AddonManifest::parse(&text, file).unwrap();
    assert!(manifest.check("datalayer-ray", file, &text).is_empty());
    manifest.declared()
}

fn yaml(text: &str) -> Value {
    serde_yaml_ng::from_str(text).unwrap()
}

fn evaluate(text: &str) -> Readiness {
    readiness(
        &yaml(&format!("apiVersion: ray.io/v1\n{text}")),
        &declared(),
    )
}

#[test]
fn rayclusters_need_head_then_provisioned_and_fail_on_replica_failure() {
    assert_eq!(
        evaluate("kind: RayCluster\nmetadata: {generation: 1}\n"),
        Readiness::Progressing("no status yet".into())
    );
    assert_eq!(
        evaluate(
            "kind: RayCluster\nmetadata: {generation: 1}\nstatus: {observedGeneration: 1, conditions: [{type: HeadPodReady, status: \"False\"}]}\n"
        ),
        Readiness::Progressing("waiting for condition HeadPodReady".into())
    );
    assert_eq!(
        evaluate(
            "kind: RayCluster\nmetadata: {generation: 1}\nstatus: {observedGeneration: 1, conditions: [{type: HeadPodReady, status: \"True\"}, {type: RayClusterProvisioned, status: \"False\"}]}\n"
        ),
        Readiness::Progressing("head ready; waiting for condition RayClusterProvisioned".into())
    );
    assert_eq!(
        evaluate(
            "kind: RayCluster\nmetadata: {generation: 1}\nstatus: {observedGeneration: 1, conditions: [{type: HeadPodReady, status: \"True\"}, {type: RayClusterProvisioned, status: \"True\"}]}\n"
        ),
        Readiness::Ready
    );
    assert_eq!(
        evaluate(
            "kind: RayCluster\nmetadata: {generation: 1}\nstatus: {observedGeneration: 1, state: ready}\n"
        ),
        Readiness::Ready
    );
    assert_eq!(
        evaluate("kind: RayCluster\nmetadata: {generation: 1}\nstatus: {state: suspended}\n"),
        Readiness::Progressing("state suspended".into())
    );
    assert_eq!(
        evaluate("kind: RayCluster\nmetadata: {generation: 1}\nstatus: {observedGeneration: 1}\n"),
        Readiness::Progressing("no conditions or state yet".into())
    );
    assert_eq!(
        evaluate(
            "kind: RayCluster\nmetadata: {generation: 1}\nstatus: {conditions: [{type: ReplicaFailure, status: \"True\", reason: FailedCreateHeadPod, message: quota exceeded}]}\n"
        ),
        Readiness::Failed("ReplicaFailure: FailedCreateHeadPod: quota exceeded".into())
    );
    assert_eq!(
        evaluate(
            "kind: RayCluster\nmetadata: {generation: 1}\nspec: {suspend: true}\nstatus: {conditions: [{type: RayClusterSuspended, status: \"False\"}]}\n"
        ),
        Readiness::Progressing("waiting for condition RayClusterSuspended".into())
    );
    assert_eq!(
        evaluate(
            "kind: RayCluster\nmetadata: {generation: 1}\nspec: {suspend: true}\nstatus: {conditions: [{type: RayClusterSuspended, status: \"True\"}]}\n"
        ),
        Readiness::Ready
    );
}

/// What KubeRay v1.7.0 writes after `up` changes a RayCluster (its status is written only when a
/// compared field moves; RayClusterProvisioned stays True once set).
#[test]
fn rayclusters_follow_what_kuberay_maintains_after_a_change() {
    let cluster = |generation: u32, groups: &str, status: &str| {
        evaluate(&format!(
            "kind: RayCluster\nmetadata: {{generation: {generation}}}\nspec: {{workerGroupSpecs: [{groups}]}}\nstatus: {{observedGeneration: 1, conditions: [{{type: HeadPodReady, status: \"True\"}}, {{type: RayClusterProvisioned, status: \"True\"}}], {status}}}\n"
        ))
    };
    // A new image only: nothing compared moved, observedGeneration stays at 1. Ready.
    assert_eq!(
        cluster(
            2,
            "{replicas: 1, minReplicas: 1, maxReplicas: 3}",
            "desiredWorkerReplicas: 1, readyWorkerReplicas: 1"
        ),
        Readiness::Ready
    );
    // minReplicas raised to 2: until the operator sizes it, and then until the worker is ready.
    assert_eq!(
        cluster(
            3,
            "{replicas: 1, minReplicas: 2, maxReplicas: 3}",
            "desiredWorkerReplicas: 1, readyWorkerReplicas: 1"
        ),
        Readiness::Progressing(
            "waiting for the operator to size the cluster to 2 worker(s) (status says 1)".into()
        )
    );
    assert_eq!(
        cluster(
            3,
            "{replicas: 1, minReplicas: 2, maxReplicas: 3}",
            "desiredWorkerReplicas: 2, readyWorkerReplicas: 1"
        ),
        Readiness::Progressing("1/2 workers ready".into())
    );
    assert_eq!(
        cluster(
            3,
            "{replicas: 1, minReplicas: 2, maxReplicas: 3}",
            "desiredWorkerReplicas: 2, readyWorkerReplicas: 2"
        ),
        Readiness::Ready
    );
    // Replicas above the max count as the max; hosts multiply; a suspended group counts none;
    // a zero count is left out of the status (omitempty); replicas default to the min.
    assert_eq!(
        cluster(
            2,
            "{replicas: 9, maxReplicas: 2, numOfHosts: 2}, {replicas: 4, suspend: true}",
            "desiredWorkerReplicas: 4, readyWorkerReplicas: 4"
        ),
        Readiness::Ready
    );
    assert_eq!(
        cluster(
            2,
            "{minReplicas: 2}",
            "desiredWorkerReplicas: 2, readyWorkerReplicas: 1"
        ),
        Readiness::Progressing("1/2 workers ready".into())
    );
    assert_eq!(
        cluster(2, "{replicas: 0}", "state: ready"),
        Readiness::Ready
    );
}

#[test]
fn rayjobs_and_rayservices_follow_their_v1_7_status() {
    let job = |status: &str| evaluate(&format!("kind: RayJob\nstatus: {status}\n"));
    assert_eq!(
        job("{jobDeploymentStatus: Complete, jobStatus: SUCCEEDED}"),
        Readiness::Ready
    );
    assert_eq!(
        job(
            "{jobDeploymentStatus: ValidationFailed, reason: ValidationFailed, message: entrypoint is empty}"
        ),
        Readiness::Failed(
            "the spec failed validation: ValidationFailed: entrypoint is empty".into()
        )
    );
    assert_eq!(
        job("{jobDeploymentStatus: Complete, jobStatus: FAILED, message: exit 1}"),
        Readiness::Failed("job status FAILED: exit 1".into())
    );
    assert_eq!(
        job("{jobDeploymentStatus: Failed}"),
        Readiness::Failed("job status unknown".into())
    );
    assert_eq!(
        job("{jobDeploymentStatus: Running, jobStatus: RUNNING}"),
        Readiness::Progressing("job deployment Running".into())
    );
    assert_eq!(job("{}"), Readiness::Progressing("no status yet".into()));
    assert_eq!(
        evaluate("kind: RayJob\nspec: {suspend: true}\nstatus: {jobDeploymentStatus: Suspended}\n"),
        Readiness::Ready
    );
    let service = |status: &str| evaluate(&format!("kind: RayService\nstatus: {status}\n"));
    assert_eq!(
        service("{conditions: [{type: Ready, status: \"True\"}]}"),
        Readiness::Ready
    );
    assert_eq!(
        service(
            "{conditions: [{type: Ready, status: \"True\"}, {type: UpgradeInProgress, status: \"True\"}]}"
        ),
        Readiness::Progressing("upgrade in progress".into())
    );
    assert_eq!(
        service("{conditions: [{type: Ready, status: \"False\", reason: NoEndpoints}]}"),
        Readiness::Progressing("not ready: NoEndpoints".into())
    );
    assert_eq!(service("{serviceStatus: Running}"), Readiness::Ready);
    assert_eq!(
        evaluate("kind: RayService\n"),
        Readiness::Progressing("no status yet".into())
    );
}

#[test]
fn a_rayclusters_pods_are_found_by_kuberays_label() {
    let cluster =
        yaml("apiVersion: ray.io/v1\nkind: RayCluster\nmetadata: {name: rc, namespace: ray}\n");
    assert_eq!(
        pod_selector(&cluster, &declared()).as_deref(),
        Some("ray.io/cluster=rc")
    );
}

#[test]
fn autoscaling_changes_to_a_running_raycluster_are_called_out() {
    let declared = declared();
    let rule = declared.rule("ray.io/v1", "RayCluster").unwrap();
    let cluster = |enabled: bool, idle: u32| {
        yaml(&format!(
            "apiVersion: ray.io/v1\nkind: RayCluster\nmetadata: {{name: rc, namespace: ray}}\nspec: {{enableInTreeAutoscaling: {enabled}, autoscalerOptions: {{idleTimeoutSeconds: {idle}}}, workerGroupSpecs: [{{maxReplicas: 3}}]}}\n"
        ))
    };
    let why = rule
        .not_picked_up(&cluster(false, 60), &cluster(true, 60))
        .unwrap();
    assert_eq!(
        why,
        "changes spec.enableInTreeAutoscaling of a running RayCluster: its running pods keep the old \
         autoscaling setup; to apply it, recreate the cluster (`kubectl delete raycluster -n ray rc`, \
         then `plane up`), which restarts its head and workers; plane never recreates it on its own"
    );
    assert!(
        rule.not_picked_up(&cluster(false, 60), &cluster(true, 120))
            .unwrap()
            .starts_with("changes spec.enableInTreeAutoscaling and spec.autoscalerOptions of")
    );
    let mut more_workers = cluster(true, 60);
    more_workers["spec"]["workerGroupSpecs"][0]["maxReplicas"] = serde_json::json!(5);
    assert_eq!(rule.not_picked_up(&cluster(true, 60), &more_workers), None);
}
