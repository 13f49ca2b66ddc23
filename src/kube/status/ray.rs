//! What runs on the cluster for Ray: RayClusters, RayJobs, RayServices and their pods, each read
//! with one cluster-wide LIST, summed into the states and requests `plane status` shows.

use std::collections::{BTreeMap, BTreeSet};

use kube_quantity::ParsedQuantity;
use serde::Serialize;
use serde_json::Value;

use super::{Listed, ListedKind, list_all};
use crate::kube::client::Cluster;
use crate::kube::object::readiness::{self, Readiness};

pub const RAY_CLUSTERS: ListedKind = ListedKind {
    api_version: "ray.io/v1",
    kind: "RayCluster",
    resource: "rayclusters.ray.io",
    selector: None,
};
pub const RAY_JOBS: ListedKind = ListedKind {
    api_version: "ray.io/v1",
    kind: "RayJob",
    resource: "rayjobs.ray.io",
    selector: None,
};
pub const RAY_SERVICES: ListedKind = ListedKind {
    api_version: "ray.io/v1",
    kind: "RayService",
    resource: "rayservices.ray.io",
    selector: None,
};
/// Ray's pods, found by the label KubeRay puts on every head and worker pod.
pub const RAY_PODS: ListedKind = ListedKind {
    api_version: "v1",
    kind: "Pod",
    resource: "pods",
    selector: Some(NODE_TYPE),
};

/// KubeRay's pod labels: the RayCluster a pod belongs to, and `head` or `worker`.
pub const CLUSTER_LABEL: &str = "ray.io/cluster";
pub const NODE_TYPE: &str = "ray.io/node-type";

/// Everything `status` reads about Ray, each kind listed once, concurrently.
#[derive(Debug, Clone)]
pub struct RayObjects {
    pub clusters: Listed,
    pub jobs: Listed,
    pub services: Listed,
    pub pods: Listed,
}

/// Lists RayClusters, RayJobs, RayServices and Ray's pods, all at once.
pub async fn list_ray(cluster: &Cluster) -> RayObjects {
    let (clusters, jobs, services, pods) = futures::join!(
        list_all(cluster, RAY_CLUSTERS),
        list_all(cluster, RAY_JOBS),
        list_all(cluster, RAY_SERVICES),
        list_all(cluster, RAY_PODS),
    );
    RayObjects {
        clusters,
        jobs,
        services,
        pods,
    }
}

/// CPU, memory and GPUs requested, summed exactly (CPU in millicores).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Requests {
    pub cpu_millis: u64,
    pub memory_bytes: u64,
    pub gpu: u64,
}

impl std::ops::AddAssign for Requests {
    fn add_assign(&mut self, other: Self) {
        self.cpu_millis += other.cpu_millis;
        self.memory_bytes += other.memory_bytes;
        self.gpu += other.gpu;
    }
}

/// A quantity in its unit (cores, bytes, devices), times `scale`, rounded; `None` when it does not
/// parse as a Kubernetes quantity.
pub fn quantity(text: &str, scale: i64) -> Option<u64> {
    let parsed = ParsedQuantity::try_from(text.trim()).ok()?;
    let value = (parsed * scale).to_bytes_f64()?;
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "requests are small, non-negative and rounded to whole units here"
    )]
    let whole = value.round().max(0.0) as u64;
    Some(whole)
}

/// What a pod's containers request. Init containers run before and are not counted.
pub fn pod_requests(pod: &Value) -> Requests {
    let mut sum = Requests::default();
    for container in pod["spec"]["containers"].as_array().into_iter().flatten() {
        let Some(requests) = container["resources"]["requests"].as_object() else {
            continue;
        };
        for (name, value) in requests {
            let Some(text) = value.as_str() else { continue };
            match name.as_str() {
                "cpu" => sum.cpu_millis += quantity(text, 1000).unwrap_or(0),
                "memory" => sum.memory_bytes += quantity(text, 1).unwrap_or(0),
                gpu if gpu.ends_with("/gpu") => sum.gpu += quantity(text, 1).unwrap_or(0),
                _ => {}
            }
        }
    }
    sum
}

/// The resources a RayCluster's status says its pods want (`desiredCPU`, `desiredMemory`,
/// `desiredGPU`), when the operator wrote them.
pub fn desired_requests(cluster: &Value) -> Option<Requests> {
    let status = &cluster["status"];
    let field = |name: &str, scale: i64| status[name].as_str().and_then(|t| quantity(t, scale));
    let cpu = field("desiredCPU", 1000);
    let memory = field("desiredMemory", 1);
    let gpu = field("desiredGPU", 1);
    (cpu.is_some() || memory.is_some() || gpu.is_some()).then(|| Requests {
        cpu_millis: cpu.unwrap_or(0),
        memory_bytes: memory.unwrap_or(0),
        gpu: gpu.unwrap_or(0),
    })
}

/// Where a RayCluster's requests were read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestsFrom {
    /// Summed from its pods' containers.
    Pods,
    /// Its status's `desiredCPU`/`desiredMemory`/`desiredGPU` (no pod visible).
    Status,
    /// Neither is known.
    None,
}

impl RequestsFrom {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pods => "pods",
            Self::Status => "status",
            Self::None => "none",
        }
    }
}

/// One condition of an object, as its status has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
    pub reason: String,
    pub message: String,
}

impl std::fmt::Display for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.kind, self.status)?;
        if !self.reason.is_empty() {
            write!(f, " ({})", self.reason)?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

fn conditions(object: &Value) -> Vec<Condition> {
    let text = |c: &Value, k: &str| c[k].as_str().unwrap_or_default().to_owned();
    object["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| Condition {
            kind: text(c, "type"),
            status: text(c, "status"),
            reason: text(c, "reason"),
            message: text(c, "message"),
        })
        .collect()
}

/// One RayCluster as `status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RayClusterState {
    pub namespace: String,
    pub name: String,
    pub ready: bool,
    /// `ready`, `progressing` or `failed` (plane's readiness rule for RayClusters, DESIGN §7).
    pub state: &'static str,
    /// What it waits for, or why it failed; `None` when ready.
    pub reason: Option<String>,
    pub desired_workers: i64,
    pub ready_workers: i64,
    /// Pods seen; `None` when pods could not be listed.
    pub head_pods: Option<u64>,
    pub worker_pods: Option<u64>,
    pub requests: Requests,
    pub requests_from: RequestsFrom,
    pub conditions: Vec<Condition>,
}

/// One RayJob's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobState {
    pub namespace: String,
    pub name: String,
    /// `pending`, `running`, `succeeded`, `failed` or `stopped`.
    pub state: &'static str,
    pub job_deployment_status: Option<String>,
    pub job_status: Option<String>,
    pub cluster: Option<String>,
}

/// One RayService's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceState {
    pub namespace: String,
    pub name: String,
    pub ready: bool,
}

/// The job states, in the order tables show them.
pub const JOB_STATES: &[&str] = &["pending", "running", "succeeded", "failed", "stopped"];

/// A RayJob's state from `jobStatus` (what the Ray job did) and `jobDeploymentStatus` (what
/// KubeRay did with it).
pub fn job_state(job: &Value) -> &'static str {
    let status = &job["status"];
    let job_status = status["jobStatus"].as_str().unwrap_or_default();
    let deployment = status["jobDeploymentStatus"].as_str().unwrap_or_default();
    match (job_status, deployment) {
        ("SUCCEEDED", _) => "succeeded",
        ("FAILED", _) | (_, "Failed" | "ValidationFailed") => "failed",
        ("STOPPED", _) => "stopped",
        ("RUNNING", _) | (_, "Running") => "running",
        _ => "pending",
    }
}

/// Whether a RayService serves: condition `Ready=True`, or (without conditions) the deprecated
/// `serviceStatus: Running`.
pub fn service_ready(service: &Value) -> bool {
    let conditions = conditions(service);
    if conditions.is_empty() {
        return service["status"]["serviceStatus"] == "Running";
    }
    conditions
        .iter()
        .any(|c| c.kind == "Ready" && c.status == "True")
}

fn meta(object: &Value, field: &str) -> String {
    object["metadata"][field]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Counts of a kind's objects in one namespace (or all).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadyCount {
    pub ready: u64,
    pub not_ready: u64,
}

/// Ray in one namespace, or in all: counts by state, pods and requests. A field is `None` when
/// its kind could not be read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RayTally {
    pub clusters: Option<ReadyCount>,
    pub jobs: Option<BTreeMap<&'static str, u64>>,
    pub services: Option<ReadyCount>,
    pub head_pods: Option<u64>,
    pub worker_pods: Option<u64>,
    /// The clusters' requests, each from its pods or else its status.
    pub requests: Option<Requests>,
}

/// Ray on the cluster: every object's state, and tallies per namespace and in total.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RaySummary {
    pub clusters: Option<Vec<RayClusterState>>,
    pub jobs: Option<Vec<JobState>>,
    pub services: Option<Vec<ServiceState>>,
    pub namespaces: BTreeMap<String, RayTally>,
    pub total: RayTally,
}

/// Ray's pods of one RayCluster: how many heads and workers, and what they request.
#[derive(Debug, Clone, Copy, Default)]
struct PodTally {
    head: u64,
    worker: u64,
    requests: Requests,
}

/// Pods by (namespace, RayCluster).
type PodsByCluster = BTreeMap<(String, String), PodTally>;

/// Sums what was listed. Pure: every input is already read.
pub fn summarize(objects: &RayObjects) -> RaySummary {
    let pods = objects.pods.objects();
    // (namespace, cluster) -> (head pods, worker pods, requests)
    let mut by_cluster: PodsByCluster = BTreeMap::new();
    for pod in pods.unwrap_or_default() {
        let phase = pod["status"]["phase"].as_str().unwrap_or_default();
        if matches!(phase, "Succeeded" | "Failed") {
            continue;
        }
        let labels = &pod["metadata"]["labels"];
        let Some(cluster) = labels[CLUSTER_LABEL].as_str() else {
            continue;
        };
        let entry = by_cluster
            .entry((meta(pod, "namespace"), cluster.to_owned()))
            .or_default();
        match labels[NODE_TYPE].as_str() {
            Some("head") => entry.head += 1,
            _ => entry.worker += 1,
        }
        entry.requests += pod_requests(pod);
    }

    let clusters = objects.clusters.objects().map(|list| {
        list.iter()
            .map(|c| cluster_state(c, pods.is_some(), &by_cluster))
            .collect::<Vec<_>>()
    });
    let jobs = objects.jobs.objects().map(|list| {
        list.iter()
            .map(|j| JobState {
                namespace: meta(j, "namespace"),
                name: meta(j, "name"),
                state: job_state(j),
                job_deployment_status: j["status"]["jobDeploymentStatus"]
                    .as_str()
                    .map(str::to_owned),
                job_status: j["status"]["jobStatus"].as_str().map(str::to_owned),
                cluster: j["status"]["rayClusterName"].as_str().map(str::to_owned),
            })
            .collect::<Vec<_>>()
    });
    let services = objects.services.objects().map(|list| {
        list.iter()
            .map(|s| ServiceState {
                namespace: meta(s, "namespace"),
                name: meta(s, "name"),
                ready: service_ready(s),
            })
            .collect::<Vec<_>>()
    });

    let mut names: BTreeSet<String> = BTreeSet::new();
    names.extend(clusters.iter().flatten().map(|c| c.namespace.clone()));
    names.extend(jobs.iter().flatten().map(|j| j.namespace.clone()));
    names.extend(services.iter().flatten().map(|s| s.namespace.clone()));
    names.extend(by_cluster.keys().map(|(ns, _)| ns.clone()));
    let namespaces = names
        .into_iter()
        .map(|ns| {
            let tally = tally(
                clusters.as_deref(),
                jobs.as_deref(),
                services.as_deref(),
                pods.is_some().then_some(&by_cluster),
                Some(&ns),
            );
            (ns, tally)
        })
        .collect();
    let total = tally(
        clusters.as_deref(),
        jobs.as_deref(),
        services.as_deref(),
        pods.is_some().then_some(&by_cluster),
        None,
    );
    RaySummary {
        clusters,
        jobs,
        services,
        namespaces,
        total,
    }
}

fn cluster_state(cluster: &Value, pods_known: bool, by_cluster: &PodsByCluster) -> RayClusterState {
    let (namespace, name) = (meta(cluster, "namespace"), meta(cluster, "name"));
    let seen = by_cluster.get(&(namespace.clone(), name.clone()));
    let (requests, requests_from) = match (seen, desired_requests(cluster)) {
        (Some(pods), _) => (pods.requests, RequestsFrom::Pods),
        (None, Some(desired)) => (desired, RequestsFrom::Status),
        (None, None) => (Requests::default(), RequestsFrom::None),
    };
    let (ready, state, reason) = match readiness::evaluate(cluster) {
        Readiness::Ready => (true, "ready", None),
        Readiness::Progressing(why) => (false, "progressing", Some(why)),
        Readiness::Failed(why) => (false, "failed", Some(why)),
    };
    let count = |field: &str| cluster["status"][field].as_i64().unwrap_or(0);
    RayClusterState {
        ready,
        state,
        reason,
        desired_workers: count("desiredWorkerReplicas"),
        ready_workers: count("readyWorkerReplicas"),
        head_pods: pods_known.then(|| seen.map_or(0, |s| s.head)),
        worker_pods: pods_known.then(|| seen.map_or(0, |s| s.worker)),
        requests,
        requests_from,
        conditions: conditions(cluster),
        namespace,
        name,
    }
}

fn tally(
    clusters: Option<&[RayClusterState]>,
    jobs: Option<&[JobState]>,
    services: Option<&[ServiceState]>,
    pods: Option<&PodsByCluster>,
    namespace: Option<&str>,
) -> RayTally {
    let here = |ns: &str| namespace.is_none_or(|n| n == ns);
    let clusters_here: Option<Vec<&RayClusterState>> =
        clusters.map(|list| list.iter().filter(|c| here(&c.namespace)).collect());
    let pods_here: Option<Vec<&PodTally>> = pods.map(|map| {
        map.iter()
            .filter(|((ns, _), _)| here(ns))
            .map(|(_, v)| v)
            .collect()
    });
    RayTally {
        clusters: clusters_here.as_ref().map(|list| ReadyCount {
            ready: list.iter().filter(|c| c.ready).count() as u64,
            not_ready: list.iter().filter(|c| !c.ready).count() as u64,
        }),
        jobs: jobs.map(|list| {
            let mut counts: BTreeMap<&'static str, u64> =
                JOB_STATES.iter().map(|s| (*s, 0)).collect();
            for job in list.iter().filter(|j| here(&j.namespace)) {
                *counts.entry(job.state).or_default() += 1;
            }
            counts
        }),
        services: services.map(|list| {
            let list: Vec<&ServiceState> = list.iter().filter(|s| here(&s.namespace)).collect();
            ReadyCount {
                ready: list.iter().filter(|s| s.ready).count() as u64,
                not_ready: list.iter().filter(|s| !s.ready).count() as u64,
            }
        }),
        head_pods: pods_here.as_ref().map(|p| p.iter().map(|s| s.head).sum()),
        worker_pods: pods_here.as_ref().map(|p| p.iter().map(|s| s.worker).sum()),
        // Requests are per cluster (pods or, without pods, status), so they need the clusters.
        requests: clusters_here.map(|list| {
            let mut sum = Requests::default();
            for cluster in list {
                sum += cluster.requests;
            }
            sum
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::status::{Gap, forbidden_reason, not_served};
    use serde_json::json;

    fn cluster(ns: &str, name: &str, status: &Value) -> Value {
        json!({"apiVersion": "ray.io/v1", "kind": "RayCluster",
            "metadata": {"namespace": ns, "name": name, "generation": 1},
            "spec": {"workerGroupSpecs": [{"replicas": 1, "minReplicas": 1, "maxReplicas": 1}]},
            "status": status})
    }

    fn ready_status() -> Value {
        json!({"observedGeneration": 1, "desiredWorkerReplicas": 1, "readyWorkerReplicas": 1,
            "desiredCPU": "1500m", "desiredMemory": "3Gi", "desiredGPU": "0",
            "conditions": [{"type": "HeadPodReady", "status": "True"},
                           {"type": "RayClusterProvisioned", "status": "True"}]})
    }

    fn pod(ns: &str, cluster: &str, node: &str, cpu: &str, memory: &str) -> Value {
        json!({"kind": "Pod", "metadata": {"namespace": ns, "name": format!("{cluster}-{node}"),
                "labels": {CLUSTER_LABEL: cluster, NODE_TYPE: node}},
            "spec": {"containers": [
                {"name": "ray", "resources": {"requests": {"cpu": cpu, "memory": memory, "nvidia.com/gpu": "1"}}},
                {"name": "sidecar", "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]},
            "status": {"phase": "Running"}})
    }

    fn job(ns: &str, name: &str, deployment: &str, status: &str) -> Value {
        json!({"kind": "RayJob", "metadata": {"namespace": ns, "name": name},
            "status": {"jobDeploymentStatus": deployment, "jobStatus": status}})
    }

    #[test]
    fn quantities_parse_as_kubernetes_writes_them() {
        assert_eq!(quantity("500m", 1000), Some(500));
        assert_eq!(quantity("1.5", 1000), Some(1500));
        assert_eq!(quantity("2", 1000), Some(2000));
        assert_eq!(quantity("1Gi", 1), Some(1 << 30));
        assert_eq!(quantity("256Mi", 1), Some(256 << 20));
        assert_eq!(quantity("1G", 1), Some(1_000_000_000));
        assert_eq!(quantity("0", 1), Some(0));
        assert_eq!(quantity("lots", 1), None);
    }

    #[test]
    fn a_pod_requests_what_its_containers_request() {
        let requests = pod_requests(&pod("a", "rc", "head", "1", "2Gi"));
        assert_eq!(
            requests,
            Requests {
                cpu_millis: 1100,
                memory_bytes: (2 << 30) + (64 << 20),
                gpu: 1
            }
        );
    }

    #[test]
    fn job_states_follow_kuberay() {
        assert_eq!(job_state(&job("a", "j", "Running", "RUNNING")), "running");
        assert_eq!(
            job_state(&job("a", "j", "Complete", "SUCCEEDED")),
            "succeeded"
        );
        assert_eq!(job_state(&job("a", "j", "Failed", "FAILED")), "failed");
        assert_eq!(job_state(&job("a", "j", "ValidationFailed", "")), "failed");
        assert_eq!(job_state(&job("a", "j", "Complete", "STOPPED")), "stopped");
        assert_eq!(job_state(&job("a", "j", "Initializing", "")), "pending");
    }

    #[test]
    fn requests_come_from_pods_or_else_the_status() {
        let objects = RayObjects {
            clusters: Listed::Objects(vec![
                cluster("a", "with-pods", &ready_status()),
                cluster("b", "no-pods", &ready_status()),
                cluster(
                    "b",
                    "broken",
                    &json!({"conditions": [{"type": "ReplicaFailure", "status": "True",
                        "reason": "FailedCreateHeadPod", "message": "quota"}]}),
                ),
            ]),
            jobs: Listed::Objects(vec![
                job("a", "run", "Running", "RUNNING"),
                job("b", "ok", "Complete", "SUCCEEDED"),
                job("b", "bad", "Failed", "FAILED"),
            ]),
            services: Listed::NotServed(not_served(RAY_SERVICES)),
            pods: Listed::Objects(vec![
                pod("a", "with-pods", "head", "1", "1Gi"),
                pod("a", "with-pods", "worker", "2", "4Gi"),
            ]),
        };
        let summary = summarize(&objects);
        let clusters = summary.clusters.unwrap();
        let by_name = |n: &str| clusters.iter().find(|c| c.name == n).unwrap();
        let with_pods = by_name("with-pods");
        assert_eq!(with_pods.requests_from, RequestsFrom::Pods);
        assert_eq!(with_pods.requests.cpu_millis, 3200);
        assert_eq!(
            (with_pods.head_pods, with_pods.worker_pods),
            (Some(1), Some(1))
        );
        let no_pods = by_name("no-pods");
        assert_eq!(no_pods.requests_from, RequestsFrom::Status);
        assert_eq!(no_pods.requests.cpu_millis, 1500);
        assert_eq!(no_pods.requests.memory_bytes, 3 << 30);
        assert_eq!(no_pods.head_pods, Some(0));
        let broken = by_name("broken");
        assert_eq!(broken.state, "failed");
        assert!(broken.reason.as_deref().unwrap().contains("quota"));
        assert_eq!(broken.requests_from, RequestsFrom::None);

        let b = &summary.namespaces["b"];
        assert_eq!(
            b.clusters,
            Some(ReadyCount {
                ready: 1,
                not_ready: 1
            })
        );
        let jobs = b.jobs.as_ref().unwrap();
        assert_eq!(
            (jobs["succeeded"], jobs["failed"], jobs["running"]),
            (1, 1, 0)
        );
        assert_eq!(summary.total.requests.unwrap().cpu_millis, 4700);
        assert_eq!(summary.total.head_pods, Some(1));
        assert_eq!(summary.total.services, Some(ReadyCount::default()));
    }

    #[test]
    fn an_unreadable_kind_is_unknown_not_zero() {
        let gap = Gap {
            resource: "pods".into(),
            code: Some(403),
            reason: "forbidden".into(),
            hint: None,
        };
        let objects = RayObjects {
            clusters: Listed::Objects(vec![cluster("a", "rc", &ready_status())]),
            jobs: Listed::Unreadable(gap.clone()),
            services: Listed::Objects(Vec::new()),
            pods: Listed::Unreadable(gap),
        };
        let summary = summarize(&objects);
        assert!(summary.jobs.is_none());
        assert!(summary.total.jobs.is_none());
        assert!(summary.total.head_pods.is_none());
        let rc = &summary.clusters.unwrap()[0];
        assert_eq!(rc.requests_from, RequestsFrom::Status);
        assert_eq!(rc.head_pods, None);
    }

    #[test]
    fn forbidden_names_the_user() {
        assert_eq!(
            forbidden_reason(
                "rayjobs.ray.io is forbidden: User \"jane\" cannot list resource \"rayjobs\""
            ),
            "forbidden for user \"jane\""
        );
    }
}
