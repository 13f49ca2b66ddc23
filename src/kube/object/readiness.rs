//! Readiness rules (DESIGN §7): is a live object ready, still progressing, or failed for good?

use serde_json::Value;

use crate::kinds::{self, Pods, Ready};

/// What one observation of an object says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// Not ready yet; the text says what is awaited.
    Progressing(String),
    /// A terminal state: waiting longer will not help.
    Failed(String),
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        matches!(self, Self::Ready)
    }
}

/// Whether plane waits for objects of this kind at all.
pub fn has_rule(kind: &str) -> bool {
    kinds::is_watched(kind)
}

/// Container states that waiting will not fix.
const TERMINAL_WAITING: &[&str] = &[
    "ImagePullBackOff",
    "ErrImagePull",
    "CrashLoopBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
];

/// A terminal container state of a pod, as `pod NAME: container C: REASON: message`.
pub fn pod_failure(pod: &Value) -> Option<String> {
    let name = pod["metadata"]["name"].as_str().unwrap_or("?");
    for field in ["initContainerStatuses", "containerStatuses"] {
        for status in pod["status"][field].as_array().into_iter().flatten() {
            let waiting = &status["state"]["waiting"];
            let Some(reason) = waiting["reason"].as_str() else {
                continue;
            };
            if TERMINAL_WAITING.contains(&reason) {
                let container = status["name"].as_str().unwrap_or("?");
                let message = waiting["message"]
                    .as_str()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default();
                // Why it last exited, in its own words: the kubelet fills this from the
                // container's termination log (say, "forbidden to list persistentvolumeclaims").
                let last = status["lastState"]["terminated"]["message"]
                    .as_str()
                    .map(str::trim)
                    .filter(|m| !m.is_empty())
                    .map(|m| format!("; it last exited with: {m}"))
                    .unwrap_or_default();
                return Some(format!(
                    "pod {name}: container {container}: {reason}{message}{last}"
                ));
            }
        }
    }
    None
}

/// The label selector of the pods a workload owns, from its spec.
pub fn pod_selector(object: &Value) -> Option<String> {
    match kinds::lookup(object["kind"].as_str()?)?.pods {
        Pods::Selector => {
            let labels = object["spec"]["selector"]["matchLabels"].as_object()?;
            let parts: Vec<String> = labels
                .iter()
                .filter_map(|(k, v)| v.as_str().map(|v| format!("{k}={v}")))
                .collect();
            (!parts.is_empty()).then(|| parts.join(","))
        }
        Pods::RayCluster => Some(format!(
            "ray.io/cluster={}",
            object["metadata"]["name"].as_str()?
        )),
        Pods::None => None,
    }
}

/// Evaluates the readiness of a live object.
pub fn evaluate(object: &Value) -> Readiness {
    let kind = object["kind"].as_str().unwrap_or_default();
    match kind {
        "CustomResourceDefinition" => crd(object),
        "Deployment" => deployment(object),
        "StatefulSet" => stateful_set(object),
        "DaemonSet" => daemon_set(object),
        "Job" => job(object),
        "PersistentVolumeClaim" => pvc(object),
        "Service" => service(object),
        "Namespace" => namespace(object),
        "RayCluster" => ray_cluster(object),
        "RayJob" => ray_job(object),
        "RayService" => ray_service(object),
        _ if kinds::ready(kind) == Ready::Exists => Readiness::Ready,
        _ => generic(object),
    }
}

fn condition<'a>(object: &'a Value, type_: &str) -> Option<&'a Value> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

fn condition_is(object: &Value, type_: &str, status: &str) -> bool {
    condition(object, type_).is_some_and(|c| c["status"] == status)
}

fn reason_of(condition: &Value) -> String {
    let reason = condition["reason"].as_str().unwrap_or("");
    let message = condition["message"].as_str().unwrap_or("");
    match (reason.is_empty(), message.is_empty()) {
        (false, false) => format!("{reason}: {message}"),
        (false, true) => reason.to_owned(),
        (true, false) => message.to_owned(),
        (true, true) => String::new(),
    }
}

/// `status.observedGeneration` has caught up with `metadata.generation` (absent counts as current
/// only when the object has no generation).
fn observed_current(object: &Value) -> bool {
    match (
        object["metadata"]["generation"].as_i64(),
        object["status"]["observedGeneration"].as_i64(),
    ) {
        (Some(generation), Some(observed)) => observed >= generation,
        (Some(_), None) => false,
        (None, _) => true,
    }
}

fn int(value: &Value) -> i64 {
    value.as_i64().unwrap_or(0)
}

fn crd(object: &Value) -> Readiness {
    if condition_is(object, "Established", "True") {
        Readiness::Ready
    } else if let Some(c) = condition(object, "NamesAccepted").filter(|c| c["status"] == "False") {
        Readiness::Failed(format!("names not accepted: {}", reason_of(c)))
    } else {
        Readiness::Progressing("waiting for condition Established".into())
    }
}

fn deadline_exceeded(object: &Value) -> Option<String> {
    // A deployer cannot see pods from a Deployment's status; a failing rollout shows as
    // ProgressDeadlineExceeded, or in a condition message naming the container state.
    let progressing = condition(object, "Progressing")?;
    if progressing["status"] == "False" && progressing["reason"] == "ProgressDeadlineExceeded" {
        return Some(reason_of(progressing));
    }
    None
}

fn container_failure(object: &Value) -> Option<String> {
    for type_ in ["Available", "Ready", "ReplicaFailure"] {
        if let Some(c) = condition(object, type_) {
            let text = reason_of(c);
            for terminal in TERMINAL_WAITING {
                if text.contains(terminal) {
                    return Some(text);
                }
            }
        }
    }
    None
}

fn deployment(object: &Value) -> Readiness {
    if let Some(failure) = deadline_exceeded(object).or_else(|| container_failure(object)) {
        return Readiness::Failed(failure);
    }
    if !observed_current(object) {
        return Readiness::Progressing(
            "waiting for the controller to observe the new generation".into(),
        );
    }
    let status = &object["status"];
    let desired = object["spec"]["replicas"].as_i64().unwrap_or(1);
    let (updated, ready, available, total) = (
        int(&status["updatedReplicas"]),
        int(&status["readyReplicas"]),
        int(&status["availableReplicas"]),
        int(&status["replicas"]),
    );
    if updated >= desired && ready >= desired && available >= desired && total <= desired {
        Readiness::Ready
    } else {
        Readiness::Progressing(format!(
            "{ready}/{desired} ready, {updated} updated, {available} available"
        ))
    }
}

fn stateful_set(object: &Value) -> Readiness {
    if !observed_current(object) {
        return Readiness::Progressing(
            "waiting for the controller to observe the new generation".into(),
        );
    }
    let status = &object["status"];
    let desired = object["spec"]["replicas"].as_i64().unwrap_or(1);
    let (ready, updated) = (
        int(&status["readyReplicas"]),
        int(&status["updatedReplicas"]),
    );
    let revision_done =
        status["currentRevision"] == status["updateRevision"] || status["updateRevision"].is_null();
    if ready >= desired && updated >= desired && revision_done {
        Readiness::Ready
    } else {
        Readiness::Progressing(format!("{ready}/{desired} ready, {updated} updated"))
    }
}

fn daemon_set(object: &Value) -> Readiness {
    if !observed_current(object) {
        return Readiness::Progressing(
            "waiting for the controller to observe the new generation".into(),
        );
    }
    let status = &object["status"];
    let desired = int(&status["desiredNumberScheduled"]);
    let (ready, updated) = (
        int(&status["numberReady"]),
        int(&status["updatedNumberScheduled"]),
    );
    if ready >= desired && updated >= desired {
        Readiness::Ready
    } else {
        Readiness::Progressing(format!("{ready}/{desired} ready, {updated} updated"))
    }
}

fn job(object: &Value) -> Readiness {
    if condition_is(object, "Complete", "True") {
        Readiness::Ready
    } else if let Some(c) = condition(object, "Failed").filter(|c| c["status"] == "True") {
        Readiness::Failed(format!("job failed: {}", reason_of(c)))
    } else {
        Readiness::Progressing(format!(
            "{} succeeded, {} active",
            int(&object["status"]["succeeded"]),
            int(&object["status"]["active"])
        ))
    }
}

fn pvc(object: &Value) -> Readiness {
    match object["status"]["phase"].as_str() {
        Some("Bound") => Readiness::Ready,
        Some("Lost") => Readiness::Failed("the volume claim lost its volume".into()),
        other => Readiness::Progressing(format!("phase {}", other.unwrap_or("Pending"))),
    }
}

fn service(object: &Value) -> Readiness {
    if object["spec"]["type"] != "LoadBalancer" {
        return Readiness::Ready;
    }
    let ingress = object["status"]["loadBalancer"]["ingress"].as_array();
    if ingress.is_some_and(|i| !i.is_empty()) {
        Readiness::Ready
    } else {
        Readiness::Progressing("waiting for a load balancer address".into())
    }
}

fn namespace(object: &Value) -> Readiness {
    match object["status"]["phase"].as_str() {
        Some("Terminating") => Readiness::Failed("the namespace is being deleted".into()),
        _ => Readiness::Ready,
    }
}

/// A RayCluster, as KubeRay v1.7.0 maintains its status (raycluster_controller.go
/// `calculateStatus`, utils/consistency.go `InconsistentRayClusterStatus`): the status is written
/// only when a compared field changes, so `observedGeneration` lags behind a spec change that
/// moves none of them (a new image, which running pods do not pick up anyway), and
/// `RayClusterProvisioned` turns True once and stays so. Ready is then: no `ReplicaFailure`, the
/// head ready, provisioned once, and the workers the spec asks for — each group's replicas bounded
/// by its min and max, times numOfHosts, none while suspended (utils.GetWorkerGroupDesiredReplicas)
/// — both counted by the operator (`desiredWorkerReplicas`, so it has seen this spec's size) and
/// ready (`readyWorkerReplicas`). Neither early after a scale-up nor stuck after an image change.
fn ray_cluster(object: &Value) -> Readiness {
    if let Some(c) = condition(object, "ReplicaFailure").filter(|c| c["status"] == "True") {
        return Readiness::Failed(format!("ReplicaFailure: {}", reason_of(c)));
    }
    let status = &object["status"];
    if status.is_null() {
        return Readiness::Progressing("no status yet".into());
    }
    if object["spec"]["suspend"] == true {
        return if condition_is(object, "RayClusterSuspended", "True") {
            Readiness::Ready
        } else {
            Readiness::Progressing("waiting for condition RayClusterSuspended".into())
        };
    }
    let has_conditions = status["conditions"]
        .as_array()
        .is_some_and(|c| !c.is_empty());
    if has_conditions {
        if !condition_is(object, "HeadPodReady", "True") {
            return Readiness::Progressing("waiting for condition HeadPodReady".into());
        }
        if !condition_is(object, "RayClusterProvisioned", "True") {
            return Readiness::Progressing(
                "head ready; waiting for condition RayClusterProvisioned".into(),
            );
        }
    } else {
        match status["state"].as_str() {
            Some("ready") => {}
            Some(state) => return Readiness::Progressing(format!("state {state}")),
            None => return Readiness::Progressing("no conditions or state yet".into()),
        }
    }
    let wanted = desired_workers(&object["spec"]);
    // Go's omitempty leaves a zero count out.
    let counted = status["desiredWorkerReplicas"].as_i64().unwrap_or(0);
    if counted != wanted {
        return Readiness::Progressing(format!(
            "waiting for the operator to size the cluster to {wanted} worker(s) (status says {counted})"
        ));
    }
    let ready = status["readyWorkerReplicas"].as_i64().unwrap_or(0);
    if ready < wanted {
        return Readiness::Progressing(format!("{ready}/{wanted} workers ready"));
    }
    Readiness::Ready
}

/// The workers a RayCluster's spec asks for, as KubeRay v1.7.0 counts them.
fn desired_workers(spec: &Value) -> i64 {
    spec["workerGroupSpecs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|g| g["suspend"] != true)
        .map(|g| {
            let min = g["minReplicas"].as_i64().unwrap_or(0);
            let max = g["maxReplicas"].as_i64().unwrap_or(i64::from(i32::MAX));
            let replicas = g["replicas"].as_i64().unwrap_or(min);
            let bounded = if replicas < min {
                min
            } else if replicas > max {
                max
            } else {
                replicas
            };
            bounded * g["numOfHosts"].as_i64().unwrap_or(1)
        })
        .sum()
}

/// A RayJob by its `jobDeploymentStatus` (KubeRay v1.7.0 rayjob_types.go): complete and
/// SUCCEEDED is ready; complete otherwise, Failed and ValidationFailed are failures with the
/// operator's reason; suspended is settled only when asked to be.
fn ray_job(object: &Value) -> Readiness {
    let status = &object["status"];
    let why = || {
        let reason = status["reason"].as_str().unwrap_or_default();
        let message = status["message"].as_str().unwrap_or_default();
        match (reason.is_empty(), message.is_empty()) {
            (false, false) => format!(": {reason}: {message}"),
            (false, true) => format!(": {reason}"),
            (true, false) => format!(": {message}"),
            (true, true) => String::new(),
        }
    };
    match status["jobDeploymentStatus"].as_str() {
        Some("Complete") if status["jobStatus"] == "SUCCEEDED" => Readiness::Ready,
        Some("Complete" | "Failed") => Readiness::Failed(format!(
            "job status {}{}",
            status["jobStatus"].as_str().unwrap_or("unknown"),
            why()
        )),
        Some("ValidationFailed") => {
            Readiness::Failed(format!("the spec failed validation{}", why()))
        }
        Some("Suspended") if object["spec"]["suspend"] == true => Readiness::Ready,
        Some(other) if !other.is_empty() => {
            Readiness::Progressing(format!("job deployment {other}"))
        }
        _ => Readiness::Progressing("no status yet".into()),
    }
}

/// A RayService by its `Ready` condition (KubeRay v1.7.0 rayservice_types.go: the service
/// serves and has endpoints), not during an upgrade; `serviceStatus: Running` where conditions
/// are not written.
fn ray_service(object: &Value) -> Readiness {
    if object["status"].is_null() {
        return Readiness::Progressing("no status yet".into());
    }
    if condition_is(object, "UpgradeInProgress", "True") {
        return Readiness::Progressing("upgrade in progress".into());
    }
    match condition(object, "Ready") {
        Some(c) if c["status"] == "True" => Readiness::Ready,
        Some(c) => Readiness::Progressing(format!("not ready: {}", reason_of(c))),
        None if object["status"]["serviceStatus"] == "Running" => Readiness::Ready,
        None => Readiness::Progressing("waiting for condition Ready".into()),
    }
}

/// Custom resources without a rule: `Ready=True` and a current `observedGeneration`. A freshly
/// applied resource with no status is not ready.
fn generic(object: &Value) -> Readiness {
    if object.get("status").is_none_or(Value::is_null) {
        return Readiness::Progressing("no status yet".into());
    }
    if let Some(c) = condition(object, "Ready") {
        return if c["status"] == "True" && observed_current(object) {
            Readiness::Ready
        } else {
            Readiness::Progressing(
                format!(
                    "Ready={} {}",
                    c["status"].as_str().unwrap_or("?"),
                    reason_of(c)
                )
                .trim_end()
                .to_owned(),
            )
        };
    }
    // A status without conditions: nothing better to wait on than the generation.
    if observed_current(object) {
        Readiness::Ready
    } else {
        Readiness::Progressing("waiting for observedGeneration".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Value {
        serde_yaml_ng::from_str(text).unwrap()
    }

    #[test]
    fn deployments_roll_out_fully_or_fail_on_the_deadline() {
        let rolled = yaml(
            "kind: Deployment\nmetadata: {generation: 2}\nspec: {replicas: 2}\nstatus: {observedGeneration: 2, replicas: 2, updatedReplicas: 2, readyReplicas: 2, availableReplicas: 2}\n",
        );
        assert_eq!(evaluate(&rolled), Readiness::Ready);
        let stale = yaml(
            "kind: Deployment\nmetadata: {generation: 3}\nspec: {replicas: 2}\nstatus: {observedGeneration: 2, replicas: 2, updatedReplicas: 2, readyReplicas: 2, availableReplicas: 2}\n",
        );
        assert!(matches!(evaluate(&stale), Readiness::Progressing(_)));
        let old_pods = yaml(
            "kind: Deployment\nmetadata: {generation: 2}\nspec: {replicas: 2}\nstatus: {observedGeneration: 2, replicas: 3, updatedReplicas: 2, readyReplicas: 2, availableReplicas: 2}\n",
        );
        assert!(matches!(evaluate(&old_pods), Readiness::Progressing(_)));
        let stuck = yaml(
            "kind: Deployment\nmetadata: {generation: 1}\nspec: {replicas: 1}\nstatus: {observedGeneration: 1, conditions: [{type: Progressing, status: \"False\", reason: ProgressDeadlineExceeded, message: 'ReplicaSet \"x\" has timed out progressing.'}]}\n",
        );
        assert!(
            matches!(evaluate(&stuck), Readiness::Failed(m) if m.contains("ProgressDeadlineExceeded"))
        );
        let pull = yaml(
            "kind: Deployment\nmetadata: {generation: 1}\nspec: {replicas: 1}\nstatus: {observedGeneration: 1, conditions: [{type: Available, status: \"False\", reason: MinimumReplicasUnavailable, message: 'container api: ImagePullBackOff'}]}\n",
        );
        assert!(matches!(evaluate(&pull), Readiness::Failed(m) if m.contains("ImagePullBackOff")));
        // The same terminal states as a pod's, CreateContainerError included.
        let create = yaml(
            "kind: Deployment\nmetadata: {generation: 1}\nspec: {replicas: 1}\nstatus: {observedGeneration: 1, conditions: [{type: Available, status: \"False\", reason: MinimumReplicasUnavailable, message: 'container api: CreateContainerError'}]}\n",
        );
        assert!(
            matches!(evaluate(&create), Readiness::Failed(m) if m.contains("CreateContainerError"))
        );
    }

    #[test]
    fn rayclusters_need_head_then_provisioned_and_fail_on_replica_failure() {
        let fresh = yaml("kind: RayCluster\nmetadata: {generation: 1}\n");
        assert_eq!(
            evaluate(&fresh),
            Readiness::Progressing("no status yet".into())
        );
        let head = yaml(
            "kind: RayCluster\nmetadata: {generation: 1}\nstatus: {observedGeneration: 1, conditions: [{type: HeadPodReady, status: \"True\"}, {type: RayClusterProvisioned, status: \"False\"}]}\n",
        );
        assert!(
            matches!(evaluate(&head), Readiness::Progressing(m) if m.contains("RayClusterProvisioned"))
        );
        let ready = yaml(
            "kind: RayCluster\nmetadata: {generation: 1}\nstatus: {observedGeneration: 1, conditions: [{type: HeadPodReady, status: \"True\"}, {type: RayClusterProvisioned, status: \"True\"}]}\n",
        );
        assert_eq!(evaluate(&ready), Readiness::Ready);
        let legacy = yaml(
            "kind: RayCluster\nmetadata: {generation: 1}\nstatus: {observedGeneration: 1, state: ready}\n",
        );
        assert_eq!(evaluate(&legacy), Readiness::Ready);
        let failed = yaml(
            "kind: RayCluster\nmetadata: {generation: 1}\nstatus: {conditions: [{type: ReplicaFailure, status: \"True\", reason: FailedCreateHeadPod, message: quota exceeded}]}\n",
        );
        assert_eq!(
            evaluate(&failed),
            Readiness::Failed("ReplicaFailure: FailedCreateHeadPod: quota exceeded".into())
        );
    }

    #[test]
    fn rayjobs_and_rayservices_follow_their_v1_7_status() {
        let job = |status: &str| yaml(&format!("kind: RayJob\nstatus: {status}\n"));
        assert_eq!(
            evaluate(&job(
                "{jobDeploymentStatus: Complete, jobStatus: SUCCEEDED}"
            )),
            Readiness::Ready
        );
        assert_eq!(
            evaluate(&job(
                "{jobDeploymentStatus: ValidationFailed, reason: ValidationFailed, message: entrypoint is empty}"
            )),
            Readiness::Failed(
                "the spec failed validation: ValidationFailed: entrypoint is empty".into()
            )
        );
        assert!(matches!(
            evaluate(&job("{jobDeploymentStatus: Running, jobStatus: RUNNING}")),
            Readiness::Progressing(_)
        ));
        let service = |status: &str| yaml(&format!("kind: RayService\nstatus: {status}\n"));
        assert_eq!(
            evaluate(&service("{conditions: [{type: Ready, status: \"True\"}]}")),
            Readiness::Ready
        );
        assert!(matches!(
            evaluate(&service(
                "{conditions: [{type: Ready, status: \"True\"}, {type: UpgradeInProgress, status: \"True\"}]}"
            )),
            Readiness::Progressing(_)
        ));
    }

    /// What KubeRay v1.7.0 writes after `up` changes a RayCluster (its status is written only
    /// when a compared field moves; RayClusterProvisioned stays True once set).
    #[test]
    fn rayclusters_follow_what_kuberay_maintains_after_a_change() {
        let cluster = |generation: u32, spec_replicas: &str, status: &str| {
            yaml(&format!(
                "kind: RayCluster\nmetadata: {{generation: {generation}}}\nspec: {{workerGroupSpecs: [{spec_replicas}]}}\nstatus: {{observedGeneration: 1, conditions: [{{type: HeadPodReady, status: \"True\"}}, {{type: RayClusterProvisioned, status: \"True\"}}], {status}}}\n"
            ))
        };
        // A new image only: nothing compared moved, observedGeneration stays at 1. Ready.
        let image_only = cluster(
            2,
            "{replicas: 1, minReplicas: 1, maxReplicas: 3}",
            "desiredWorkerReplicas: 1, readyWorkerReplicas: 1",
        );
        assert_eq!(evaluate(&image_only), Readiness::Ready);
        // minReplicas raised to 2: until the operator sizes it, and then until the worker is ready.
        let unseen = cluster(
            3,
            "{replicas: 1, minReplicas: 2, maxReplicas: 3}",
            "desiredWorkerReplicas: 1, readyWorkerReplicas: 1",
        );
        assert_eq!(
            evaluate(&unseen),
            Readiness::Progressing(
                "waiting for the operator to size the cluster to 2 worker(s) (status says 1)"
                    .into()
            )
        );
        let scaling = cluster(
            3,
            "{replicas: 1, minReplicas: 2, maxReplicas: 3}",
            "desiredWorkerReplicas: 2, readyWorkerReplicas: 1",
        );
        assert_eq!(
            evaluate(&scaling),
            Readiness::Progressing("1/2 workers ready".into())
        );
        let scaled = cluster(
            3,
            "{replicas: 1, minReplicas: 2, maxReplicas: 3}",
            "desiredWorkerReplicas: 2, readyWorkerReplicas: 2",
        );
        assert_eq!(evaluate(&scaled), Readiness::Ready);
        // Replicas above the max count as the max; hosts multiply; a suspended group counts none;
        // a zero count is left out of the status (omitempty).
        let bounded = cluster(
            2,
            "{replicas: 9, maxReplicas: 2, numOfHosts: 2}, {replicas: 4, suspend: true}",
            "desiredWorkerReplicas: 4, readyWorkerReplicas: 4",
        );
        assert_eq!(evaluate(&bounded), Readiness::Ready);
        let none = cluster(2, "{replicas: 0}", "state: ready");
        assert_eq!(evaluate(&none), Readiness::Ready);
    }

    #[test]
    fn pods_reveal_terminal_container_states() {
        let pod = yaml(
            "kind: Pod\nmetadata: {name: api-1}\nstatus: {containerStatuses: [{name: api, state: {waiting: {reason: ImagePullBackOff, message: 'Back-off pulling image'}}}]}\n",
        );
        assert_eq!(
            pod_failure(&pod).as_deref(),
            Some("pod api-1: container api: ImagePullBackOff: Back-off pulling image")
        );
        let crashing = yaml(
            "kind: Pod\nmetadata: {name: op-1}\nstatus: {containerStatuses: [{name: op, state: {waiting: {reason: CrashLoopBackOff, message: 'back-off 10s'}}, lastState: {terminated: {exitCode: 1, message: \"forbidden to list persistentvolumeclaims\\n\"}}}]}\n",
        );
        assert_eq!(
            pod_failure(&crashing).as_deref(),
            Some(
                "pod op-1: container op: CrashLoopBackOff: back-off 10s; it last exited with: forbidden to list persistentvolumeclaims"
            )
        );
        let starting = yaml(
            "kind: Pod\nmetadata: {name: api-1}\nstatus: {containerStatuses: [{name: api, state: {waiting: {reason: ContainerCreating}}}]}\n",
        );
        assert_eq!(pod_failure(&starting), None);
        let deployment =
            yaml("kind: Deployment\nspec: {selector: {matchLabels: {app: api, tier: web}}}\n");
        assert_eq!(
            pod_selector(&deployment).as_deref(),
            Some("app=api,tier=web")
        );
        assert_eq!(
            pod_selector(&yaml("kind: RayCluster\nmetadata: {name: rc}\n")).as_deref(),
            Some("ray.io/cluster=rc")
        );
    }

    #[test]
    fn other_rules() {
        assert_eq!(
            evaluate(&yaml(
                "kind: CustomResourceDefinition\nstatus: {conditions: [{type: Established, status: \"True\"}]}\n"
            )),
            Readiness::Ready
        );
        assert!(matches!(
            evaluate(&yaml("kind: CustomResourceDefinition\n")),
            Readiness::Progressing(_)
        ));
        assert_eq!(
            evaluate(&yaml(
                "kind: Job\nstatus: {conditions: [{type: Complete, status: \"True\"}]}\n"
            )),
            Readiness::Ready
        );
        assert!(matches!(
            evaluate(&yaml(
                "kind: Job\nstatus: {conditions: [{type: Failed, status: \"True\", reason: BackoffLimitExceeded}]}\n"
            )),
            Readiness::Failed(_)
        ));
        assert_eq!(
            evaluate(&yaml(
                "kind: PersistentVolumeClaim\nstatus: {phase: Bound}\n"
            )),
            Readiness::Ready
        );
        assert!(matches!(
            evaluate(&yaml("kind: Service\nspec: {type: LoadBalancer}\n")),
            Readiness::Progressing(_)
        ));
        assert_eq!(
            evaluate(&yaml("kind: Service\nspec: {type: ClusterIP}\n")),
            Readiness::Ready
        );
        assert_eq!(evaluate(&yaml("kind: ConfigMap\n")), Readiness::Ready);
        assert!(matches!(
            evaluate(&yaml("kind: Widget\nmetadata: {generation: 1}\n")),
            Readiness::Progressing(_)
        ));
        assert_eq!(
            evaluate(&yaml(
                "kind: Widget\nmetadata: {generation: 1}\nstatus: {observedGeneration: 1, conditions: [{type: Ready, status: \"True\"}]}\n"
            )),
            Readiness::Ready
        );
    }
}
