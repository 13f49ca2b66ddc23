//! Simulated controllers: workload status progression, CRD establishment, PVC binding,
//! RayClusters, failure injection by annotation, garbage collection, finalizer handling and
//! namespace termination. One step runs every `Config::controller_step`.

use crate::config::{FAIL_ANNOTATION, SIM_FAIL_ANNOTATION};
use crate::fields::{FieldSet, Seg};
use crate::ops;
use crate::store::{EventKind, Inner, Key, Manager};
use crate::util::{self, get_str, now_rfc3339};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The `fail` value standing for the `sim.k8s-real/fail` annotation.
const SIM_FAIL: &str = "SimFail";

/// Marks pods the failure simulation created, so the pod controller leaves them alone.
const SIMULATED: &str = "test.plane.datalayer.io/simulated";

/// How far a controller has brought one object since its last spec change.
struct Progress {
    uid: String,
    generation: i64,
    stage: u32,
    first_seen: Instant,
    /// The resourceVersion last reconciled at the final stage: unchanged means nothing to do.
    settled_rv: Option<String>,
}

/// The group/resources `reconcile` drives.
const CONTROLLED: &[(&str, &str)] = &[
    ("apps", "deployments"),
    ("apps", "statefulsets"),
    ("apps", "daemonsets"),
    ("apps", "replicasets"),
    ("batch", "jobs"),
    ("", "persistentvolumeclaims"),
    ("", "services"),
    ("", "pods"),
    ("apiextensions.k8s.io", "customresourcedefinitions"),
    ("ray.io", "rayclusters"),
];

/// The last stage any controller distinguishes (RayClusters use 0, 1 and 2+).
const FINAL_STAGE: u32 = 4;

/// The controllers' memory between steps.
pub struct Controllers {
    progress: HashMap<Key, Progress>,
    /// ConfigMaps published into every namespace (`Config::published_config_maps`).
    published: Vec<String>,
}

/// Times that may differ between two steps without the status having changed.
const VOLATILE: &[&str] = &[
    "lastTransitionTime",
    "lastUpdateTime",
    "lastProbeTime",
    "lastHeartbeatTime",
    "startTime",
    "completionTime",
    "stateTransitionTimes",
];

fn normalized(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !VOLATILE.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), normalized(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(normalized).collect()),
        other => other.clone(),
    }
}

fn condition(kind: &str, status: &str, reason: &str, message: &str) -> Value {
    let now = now_rfc3339();
    json!({"type": kind, "status": status, "reason": reason, "message": message, "lastTransitionTime": now})
}

/// Keeps the transition times of conditions whose status did not change.
fn carry_times(old: Option<&Value>, new: &mut Value) {
    let Some(old) = old else { return };
    if let (Some(oc), Some(nc)) = (
        old.get("conditions").and_then(Value::as_array),
        new.get_mut("conditions").and_then(Value::as_array_mut),
    ) {
        for c in nc.iter_mut() {
            if let Some(prev) = oc
                .iter()
                .find(|p| p["type"] == c["type"] && p["status"] == c["status"])
            {
                for k in ["lastTransitionTime", "lastUpdateTime"] {
                    if let Some(t) = prev.get(k) {
                        c[k] = t.clone();
                    }
                }
            }
        }
    }
    for k in ["startTime", "stateTransitionTimes"] {
        if let (Some(t), Some(m)) = (old.get(k), new.as_object_mut())
            && m.contains_key(k)
        {
            m.insert(k.to_owned(), t.clone());
        }
    }
}

fn seed_of(s: &str) -> u64 {
    s.bytes().fold(1_469_598_103_934_665_603_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(1_099_511_628_211)
    })
}

impl Controllers {
    pub fn new(published: Vec<String>) -> Self {
        Self {
            progress: HashMap::new(),
            published,
        }
    }

    /// One step over every object.
    pub fn step(&mut self, inner: &mut Inner, crd_delay: Duration) {
        publish(inner, &self.published);
        let uids: HashSet<String> = inner
            .objects
            .values()
            .filter_map(|s| get_str(&s.value, &["metadata", "uid"]).map(str::to_owned))
            .collect();
        let keys: Vec<Key> = inner.objects.keys().cloned().collect();
        for key in keys {
            let Some(stored) = inner.get(&key) else {
                continue;
            };
            let deleting = stored
                .value
                .pointer("/metadata/deletionTimestamp")
                .is_some();
            let orphaned = stored
                .value
                .pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .is_some_and(|owners| {
                    !owners.is_empty()
                        && owners
                            .iter()
                            .all(|o| o["uid"].as_str().is_none_or(|u| !uids.contains(u)))
                });
            if orphaned && !deleting {
                ops::delete_key(inner, &key, None);
                continue;
            }
            // Kinds no controller drives, and settled objects, are skipped before cloning: CRDs
            // can be a megabyte each.
            if !deleting && !CONTROLLED.contains(&(key.group.as_str(), key.resource.as_str())) {
                continue;
            }
            if !deleting
                && let Some(p) = self.progress.get(&key)
                && p.settled_rv.is_some()
                && p.settled_rv.as_deref()
                    == get_str(&stored.value, &["metadata", "resourceVersion"])
            {
                continue;
            }
            let v = Value::clone(&stored.value);
            if deleting {
                finalize(inner, &key, &v);
                continue;
            }
            let uid = get_str(&v, &["metadata", "uid"]).unwrap_or("").to_owned();
            let generation = v
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            let p = self
                .progress
                .entry(key.clone())
                .or_insert_with(|| Progress {
                    uid: uid.clone(),
                    generation,
                    stage: 0,
                    first_seen: Instant::now(),
                    settled_rv: None,
                });
            if p.uid != uid || p.generation != generation {
                let first_seen = if p.uid == uid {
                    p.first_seen
                } else {
                    Instant::now()
                };
                *p = Progress {
                    uid,
                    generation,
                    stage: 0,
                    first_seen,
                    settled_rv: None,
                };
            } else {
                p.stage = (p.stage + 1).min(FINAL_STAGE);
            }
            let (stage, elapsed) = (p.stage, p.first_seen.elapsed());
            reconcile(inner, &key, &v, stage, elapsed, crd_delay);
            // A CRD still waiting for its establishment delay is not settled yet.
            let waiting = key.resource == "customresourcedefinitions"
                && inner
                    .get(&key)
                    .is_some_and(|s| !crate::store::crd_established(&s.value));
            if stage == FINAL_STAGE && !waiting {
                p.settled_rv = inner
                    .get(&key)
                    .and_then(|s| get_str(&s.value, &["metadata", "resourceVersion"]))
                    .map(str::to_owned);
            }
        }
        self.progress.retain(|k, _| inner.objects.contains_key(k));
    }
}

/// What the real controller-manager puts into every namespace that is not terminating: the
/// ServiceAccount `default` and the published ConfigMaps (`kube-root-ca.crt` with the CA that
/// signed the server's certificate, ...), recreated when deleted.
fn publish(inner: &mut Inner, config_maps: &[String]) {
    let namespaces: Vec<String> = inner
        .list("", "namespaces", None)
        .into_iter()
        .filter(|(_, s)| s.value.pointer("/metadata/deletionTimestamp").is_none())
        .map(|(k, _)| k.name.clone())
        .collect();
    let key = |resource: &str, ns: &str, name: &str| Key {
        group: String::new(),
        resource: resource.to_owned(),
        namespace: ns.to_owned(),
        name: name.to_owned(),
    };
    for ns in namespaces {
        let sa = key("serviceaccounts", &ns, "default");
        if inner.get(&sa).is_none() {
            let mut obj = json!({"apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": "default", "namespace": ns}});
            inner.stamp_new(&mut obj);
            inner.put(sa, obj, Vec::new(), EventKind::Added);
        }
        for name in config_maps {
            let k = key("configmaps", &ns, name);
            if inner.get(&k).is_some() {
                continue;
            }
            let ca = crate::tls::get().map_or("", |t| t.ca_pem.as_str());
            let (data, annotations) = match name.as_str() {
                "kube-root-ca.crt" => (
                    json!({"ca.crt": ca}),
                    json!({"kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."}),
                ),
                "openshift-service-ca.crt" => (
                    json!({"service-ca.crt": ca}),
                    json!({"service.beta.openshift.io/inject-cabundle": "true"}),
                ),
                _ => (json!({}), json!({})),
            };
            let f = |s: &[&str]| -> Vec<Seg> {
                s.iter().map(|x| Seg::Field((*x).to_owned())).collect()
            };
            let mut fields = FieldSet::new();
            for (map, value) in [
                (vec!["data"], &data),
                (vec!["metadata", "annotations"], &annotations),
            ] {
                let Some(entries) = value.as_object().filter(|m| !m.is_empty()) else {
                    continue;
                };
                fields.insert(f(&map));
                for k in entries.keys() {
                    let mut p = map.clone();
                    p.push(k.as_str());
                    fields.insert(f(&p));
                }
            }
            let mut obj = json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": ns, "annotations": annotations}, "data": data});
            if annotations
                .as_object()
                .is_some_and(serde_json::Map::is_empty)
            {
                util::metadata_mut(&mut obj).remove("annotations");
            }
            inner.stamp_new(&mut obj);
            if fields.is_empty() {
                inner.put(k, obj, Vec::new(), EventKind::Added);
                continue;
            }
            let managers = vec![Manager {
                manager: "kube-controller-manager".to_owned(),
                operation: "Update",
                api_version: "v1".to_owned(),
                time: now_rfc3339(),
                fields,
                subresource: None,
            }];
            inner.put(k, obj, managers, EventKind::Added);
        }
    }
}

/// Drives the deletion of an object that has a deletionTimestamp.
fn finalize(inner: &mut Inner, key: &Key, v: &Value) {
    let uid = get_str(v, &["metadata", "uid"]).unwrap_or("").to_owned();
    let finalizers: Vec<String> = v
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .filter_map(|f| f.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if key.group.is_empty() && key.resource == "namespaces" {
        let contents: Vec<Key> = inner
            .objects
            .keys()
            .filter(|k| k.namespace == key.name)
            .cloned()
            .collect();
        for k in &contents {
            ops::delete_key(inner, k, None);
        }
        let remaining: Vec<(Key, Vec<String>)> = inner
            .objects
            .iter()
            .filter(|(k, _)| k.namespace == key.name)
            .map(|(k, s)| {
                let fins = s.value["metadata"]["finalizers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|f| f.as_str().map(str::to_owned))
                    .collect();
                (k.clone(), fins)
            })
            .collect();
        // The real namespace controller reports progress in conditions; it removes the
        // namespace only after a status saying all content is gone.
        let conditions = namespace_conditions(&remaining);
        let reported =
            v.pointer("/status/conditions").map(normalized) == Some(normalized(&conditions));
        if remaining.is_empty() && reported && finalizers.is_empty() {
            inner.remove(key);
        } else {
            write_status(
                inner,
                key,
                json!({"phase": "Terminating", "conditions": conditions}),
            );
        }
        return;
    }
    let dependents: Vec<Key> = inner
        .objects
        .iter()
        .filter(|(_, s)| {
            s.value
                .pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .is_some_and(|os| os.iter().any(|o| o["uid"] == uid.as_str()))
        })
        .map(|(k, _)| k.clone())
        .collect();
    if finalizers.iter().any(|f| f == "foregroundDeletion") {
        if dependents.is_empty() {
            ops::drop_finalizer(inner, key, "foregroundDeletion");
        } else {
            for d in &dependents {
                ops::delete_key(inner, d, None);
            }
        }
        return;
    }
    if finalizers.iter().any(|f| f == "orphan") {
        for d in &dependents {
            if let Some(s) = inner.get(d).cloned() {
                let mut dv = Value::clone(&s.value);
                if let Some(os) = dv
                    .pointer_mut("/metadata/ownerReferences")
                    .and_then(Value::as_array_mut)
                {
                    os.retain(|o| o["uid"] != uid.as_str());
                }
                inner.put(d.clone(), dv, s.managers, EventKind::Modified);
            }
        }
        ops::drop_finalizer(inner, key, "orphan");
        return;
    }
    if key.resource == "customresourcedefinitions"
        && finalizers
            .iter()
            .any(|f| f == "customresourcecleanup.apiextensions.k8s.io")
    {
        let group = get_str(v, &["spec", "group"]).unwrap_or("").to_owned();
        let plural = get_str(v, &["spec", "names", "plural"])
            .unwrap_or("")
            .to_owned();
        let crs: Vec<Key> = inner
            .objects
            .keys()
            .filter(|k| k.group == group && k.resource == plural)
            .cloned()
            .collect();
        if crs.is_empty() {
            ops::drop_finalizer(inner, key, "customresourcecleanup.apiextensions.k8s.io");
        } else {
            for k in crs {
                ops::delete_key(inner, &k, None);
            }
        }
    }
}

/// The conditions of a terminating namespace, as the real namespace controller words them.
fn namespace_conditions(remaining: &[(Key, Vec<String>)]) -> Value {
    let mut resources: Vec<String> = Vec::new();
    let mut finalizers: Vec<String> = Vec::new();
    for (k, fins) in remaining {
        let r = if k.group.is_empty() {
            format!("{}.", k.resource)
        } else {
            format!("{}.{}", k.resource, k.group)
        };
        if !resources.contains(&r) {
            resources.push(r);
        }
        for f in fins {
            if !finalizers.contains(f) {
                finalizers.push(f.clone());
            }
        }
    }
    let count = |r: &str| {
        remaining
            .iter()
            .filter(|(k, _)| {
                let q = if k.group.is_empty() {
                    format!("{}.", k.resource)
                } else {
                    format!("{}.{}", k.resource, k.group)
                };
                q == r
            })
            .count()
    };
    let content = if remaining.is_empty() {
        condition(
            "NamespaceContentRemaining",
            "False",
            "ContentRemoved",
            "All content successfully removed",
        )
    } else {
        let list: Vec<String> = resources
            .iter()
            .map(|r| format!("{r} has {} resource instances", count(r)))
            .collect();
        condition(
            "NamespaceContentRemaining",
            "True",
            "SomeResourcesRemain",
            &format!("Some resources are remaining: {}", list.join(", ")),
        )
    };
    let fins = if finalizers.is_empty() {
        condition(
            "NamespaceFinalizersRemaining",
            "False",
            "ContentHasNoFinalizers",
            "All content-preserving finalizers finished",
        )
    } else {
        let list: Vec<String> = finalizers
            .iter()
            .map(|f| {
                let n = remaining.iter().filter(|(_, fs)| fs.contains(f)).count();
                format!("{f} in {n} resource instances")
            })
            .collect();
        condition(
            "NamespaceFinalizersRemaining",
            "True",
            "SomeFinalizersRemain",
            &format!(
                "Some content in the namespace has finalizers remaining: {}",
                list.join(", ")
            ),
        )
    };
    json!([
        condition(
            "NamespaceDeletionDiscoveryFailure",
            "False",
            "ResourcesDiscovered",
            "All resources successfully discovered"
        ),
        condition(
            "NamespaceDeletionGroupVersionParsingFailure",
            "False",
            "ParsedGroupVersions",
            "All legacy kube types successfully parsed"
        ),
        condition(
            "NamespaceDeletionContentFailure",
            "False",
            "ContentDeleted",
            "All content successfully deleted, may be waiting on finalization"
        ),
        content,
        fins,
    ])
}

/// Writes `status` (and nothing else) if it differs from what is stored.
fn write_status(inner: &mut Inner, key: &Key, mut status: Value) {
    let Some(stored) = inner.get(key).cloned() else {
        return;
    };
    carry_times(stored.value.get("status"), &mut status);
    if stored.value.get("status").map(normalized) == Some(normalized(&status)) {
        return;
    }
    let mut v = Arc::unwrap_or_clone(stored.value);
    v["status"] = status;
    inner.put(key.clone(), v, stored.managers, EventKind::Modified);
}

fn int_at(v: &Value, ptr: &str, default: i64) -> i64 {
    v.pointer(ptr).and_then(Value::as_i64).unwrap_or(default)
}

fn reconcile(
    inner: &mut Inner,
    key: &Key,
    v: &Value,
    stage: u32,
    elapsed: Duration,
    crd_delay: Duration,
) {
    let sim_fail_at = if key.group == "ray.io" {
        "/metadata/annotations"
    } else {
        "/spec/template/metadata/annotations"
    };
    let sim_fail = v
        .pointer(sim_fail_at)
        .and_then(|a| a.get(SIM_FAIL_ANNOTATION))
        .is_some();
    let fail = match get_str(v, &["metadata", "annotations", FAIL_ANNOTATION]) {
        Some(f) => f.to_owned(),
        // The real test control plane's simulators: crash-looping pods, a failed RayCluster.
        None if sim_fail => SIM_FAIL.to_owned(),
        None => String::new(),
    };
    let stuck = fail == "Stuck";
    let stage = if stuck { 0 } else { stage };
    let generation = int_at(v, "/metadata/generation", 1);
    let name = get_str(v, &["metadata", "name"]).unwrap_or("").to_owned();
    let hash = util::suffix(seed_of(get_str(v, &["metadata", "uid"]).unwrap_or("")), 10);
    match (key.group.as_str(), key.resource.as_str()) {
        ("apps", "deployments") => {
            let n = int_at(v, "/spec/replicas", 1);
            let rs = format!("ReplicaSet \"{name}-{hash}\"");
            let pods_failing = matches!(
                fail.as_str(),
                "ImagePullBackOff" | "CrashLoopBackOff" | SIM_FAIL
            );
            if pods_failing {
                failing_pod(inner, key, v, &fail, &hash);
            }
            // A new Deployment goes through the real controller's first status writes: its new
            // ReplicaSet, not yet observed; then observed, nothing available; then updated.
            let created = condition(
                "Progressing",
                "True",
                "NewReplicaSetCreated",
                &format!("Created new replica set \"{name}-{hash}\""),
            );
            let unavailable = condition(
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
            );
            let unobserved = !stuck && v.pointer("/status/observedGeneration").is_none();
            let just_created = v
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .is_some_and(|cs| cs.iter().any(|c| c["reason"] == "NewReplicaSetCreated"));
            let status = if unobserved && v.pointer("/status/conditions").is_none() {
                json!({"conditions": [created]})
            } else if unobserved {
                let mut s = json!({"observedGeneration": generation, "terminatingReplicas": 0, "conditions": [unavailable, created]});
                if n > 0 {
                    s["unavailableReplicas"] = json!(n);
                }
                s
            } else if fail == "ProgressDeadlineExceeded" && stage >= 1 {
                json!({"observedGeneration": generation, "replicas": n, "updatedReplicas": n, "unavailableReplicas": n, "terminatingReplicas": 0,
                "conditions": [
                    condition("Available", "False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability."),
                    condition("Progressing", "False", "ProgressDeadlineExceeded", &format!("{rs} has timed out progressing.")),
                ]})
            } else if stage == 0
                || just_created
                || pods_failing
                || fail == "ProgressDeadlineExceeded"
            {
                let available = if n == 0 {
                    condition(
                        "Available",
                        "True",
                        "MinimumReplicasAvailable",
                        "Deployment has minimum availability.",
                    )
                } else {
                    condition(
                        "Available",
                        "False",
                        "MinimumReplicasUnavailable",
                        "Deployment does not have minimum availability.",
                    )
                };
                json!({"observedGeneration": generation, "replicas": n, "updatedReplicas": n, "unavailableReplicas": n, "terminatingReplicas": 0,
                    "conditions": [available, condition("Progressing", "True", "ReplicaSetUpdated", &format!("{rs} is progressing."))]})
            } else {
                json!({"observedGeneration": generation, "replicas": n, "updatedReplicas": n, "readyReplicas": n, "availableReplicas": n, "terminatingReplicas": 0,
                "conditions": [
                    condition("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability."),
                    condition("Progressing", "True", "NewReplicaSetAvailable", &format!("{rs} has successfully progressed.")),
                ]})
            };
            write_status(inner, key, status);
        }
        ("apps", "statefulsets") => {
            let n = int_at(v, "/spec/replicas", 1);
            let pods_failing = matches!(
                fail.as_str(),
                "ImagePullBackOff" | "CrashLoopBackOff" | SIM_FAIL
            );
            if pods_failing {
                failing_pod(inner, key, v, &fail, &hash);
            }
            let ready = if stage == 0 || pods_failing { 0 } else { n };
            let rev = format!("{name}-{hash}");
            write_status(
                inner,
                key,
                json!({"observedGeneration": generation, "replicas": n, "currentReplicas": n,
                "updatedReplicas": n, "readyReplicas": ready, "availableReplicas": ready,
                "currentRevision": rev, "updateRevision": rev, "collisionCount": 0}),
            );
        }
        ("apps", "daemonsets") => {
            let pods_failing = matches!(
                fail.as_str(),
                "ImagePullBackOff" | "CrashLoopBackOff" | SIM_FAIL
            );
            if pods_failing {
                failing_pod(inner, key, v, &fail, &hash);
            }
            let ready = i64::from(stage > 0 && !pods_failing);
            let mut s = json!({"observedGeneration": generation, "desiredNumberScheduled": 1, "currentNumberScheduled": 1,
                "numberMisscheduled": 0, "numberReady": ready, "updatedNumberScheduled": 1, "numberAvailable": ready});
            if ready == 0 {
                s["numberUnavailable"] = json!(1);
            }
            write_status(inner, key, s);
        }
        ("apps", "replicasets") => {
            let n = int_at(v, "/spec/replicas", 1);
            let ready = if stage == 0 { 0 } else { n };
            write_status(
                inner,
                key,
                json!({"observedGeneration": generation, "replicas": n, "fullyLabeledReplicas": n,
                "readyReplicas": ready, "availableReplicas": ready}),
            );
        }
        ("batch", "jobs") => {
            if v.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true) {
                return;
            }
            let completions = int_at(v, "/spec/completions", 1);
            let now = now_rfc3339();
            let status = if stage == 0
                || matches!(
                    fail.as_str(),
                    "ImagePullBackOff" | "CrashLoopBackOff" | SIM_FAIL
                ) {
                json!({"startTime": now, "active": int_at(v, "/spec/parallelism", 1), "ready": 0, "terminating": 0, "uncountedTerminatedPods": {}})
            } else if fail == "BackoffLimitExceeded" {
                let msg = "Job has reached the specified backoff limit";
                json!({"startTime": now, "failed": int_at(v, "/spec/backoffLimit", 6) + 1, "ready": 0, "terminating": 0, "uncountedTerminatedPods": {},
                    "conditions": [condition("FailureTarget", "True", "BackoffLimitExceeded", msg), condition("Failed", "True", "BackoffLimitExceeded", msg)]})
            } else {
                let msg = "Reached expected number of succeeded pods";
                json!({"startTime": now, "completionTime": now, "succeeded": completions, "ready": 0, "terminating": 0, "uncountedTerminatedPods": {},
                    "conditions": [condition("SuccessCriteriaMet", "True", "CompletionsReached", msg), condition("Complete", "True", "CompletionsReached", msg)]})
            };
            if matches!(
                fail.as_str(),
                "ImagePullBackOff" | "CrashLoopBackOff" | SIM_FAIL
            ) {
                failing_pod(inner, key, v, &fail, &hash);
            }
            write_status(inner, key, status);
        }
        ("", "persistentvolumeclaims") => {
            if stage == 0 {
                return;
            }
            let volume = format!("pvc-{}", get_str(v, &["metadata", "uid"]).unwrap_or(""));
            if v.pointer("/spec/volumeName").is_none()
                && let Some(stored) = inner.get(key).cloned()
            {
                let mut nv = Arc::unwrap_or_clone(stored.value);
                nv["spec"]["volumeName"] = json!(volume);
                inner.put(key.clone(), nv, stored.managers, EventKind::Modified);
            }
            let storage = v
                .pointer("/spec/resources/requests/storage")
                .cloned()
                .unwrap_or(json!("1Gi"));
            let modes = v
                .pointer("/spec/accessModes")
                .cloned()
                .unwrap_or(json!(["ReadWriteOnce"]));
            write_status(
                inner,
                key,
                json!({"phase": "Bound", "accessModes": modes, "capacity": {"storage": storage}}),
            );
        }
        ("", "services")
            if stage >= 1
                && v.pointer("/spec/type").and_then(Value::as_str) == Some("LoadBalancer") =>
        {
            write_status(
                inner,
                key,
                json!({"loadBalancer": {"ingress": [{"ip": "198.51.100.10", "ipMode": "VIP"}]}}),
            );
        }
        ("", "pods") => {
            if v.pointer(&format!(
                "/metadata/annotations/{}",
                SIMULATED.replace('/', "~1")
            ))
            .is_some()
                || stage == 0
            {
                return;
            }
            if let Some(text) = get_str(v, &["metadata", "annotations", SIM_FAIL_ANNOTATION]) {
                // fake-kubelet.py: Running, not Ready, containers crash-looping; the
                // annotation's text is their last termination message.
                let last = terminated_with(text);
                let cs = containers(v, "/spec/containers");
                let names: Vec<&str> = cs.iter().map(|(n, _)| n.as_str()).collect();
                let unready = format!("containers with unready status: [{}]", names.join(" "));
                let statuses: Vec<Value> = cs
                    .iter()
                    .map(|(n, image)| json!({"name": n, "image": image, "imageID": format!("sim://{image}"), "ready": false, "started": false, "restartCount": 1,
                        "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 10s restarting failed container (simulated: sim.k8s-real/fail)"}},
                        "lastState": {"terminated": last.clone()}}))
                    .collect();
                write_status(
                    inner,
                    key,
                    json!({"phase": "Running", "podIP": "10.244.0.20", "hostIP": "172.18.0.2", "startTime": now_rfc3339(),
                    "conditions": [condition("PodScheduled", "True", "", ""), condition("Initialized", "True", "", ""),
                        condition("ContainersReady", "False", "ContainersNotReady", &unready), condition("Ready", "False", "ContainersNotReady", &unready)],
                    "containerStatuses": statuses}),
                );
                return;
            }
            let statuses: Vec<Value> = containers(v, "/spec/containers")
                .iter()
                .map(|(n, image)| json!({"name": n, "image": image, "imageID": "", "ready": true, "started": true, "restartCount": 0,
                    "state": {"running": {"startedAt": now_rfc3339()}}}))
                .collect();
            write_status(
                inner,
                key,
                json!({"phase": "Running", "podIP": "10.244.0.20", "hostIP": "172.18.0.2", "startTime": now_rfc3339(),
                "conditions": [condition("PodScheduled", "True", "", ""), condition("Initialized", "True", "", ""),
                    condition("ContainersReady", "True", "", ""), condition("Ready", "True", "", "")],
                "containerStatuses": statuses}),
            );
        }
        ("apiextensions.k8s.io", "customresourcedefinitions") => {
            let mut names = v.pointer("/spec/names").cloned().unwrap_or(json!({}));
            if let Some(kind) = names.get("kind").and_then(Value::as_str).map(str::to_owned) {
                names
                    .as_object_mut()
                    .map(|m| m.entry("singular").or_insert(json!(kind.to_lowercase())));
                names
                    .as_object_mut()
                    .map(|m| m.entry("listKind").or_insert(json!(format!("{kind}List"))));
            }
            let stored_versions: Vec<Value> = v
                .pointer("/spec/versions")
                .and_then(Value::as_array)
                .map(|vs| {
                    vs.iter()
                        .filter(|x| x["storage"] == true)
                        .map(|x| x["name"].clone())
                        .collect()
                })
                .unwrap_or_default();
            let mut conditions = vec![condition(
                "NamesAccepted",
                "True",
                "NoConflicts",
                "no conflicts found",
            )];
            if !stuck && elapsed >= crd_delay {
                conditions.push(condition(
                    "Established",
                    "True",
                    "InitialNamesAccepted",
                    "the initial names have been accepted",
                ));
            } else {
                conditions.push(condition(
                    "Established",
                    "False",
                    "Installing",
                    "the initial names have been accepted",
                ));
            }
            write_status(
                inner,
                key,
                json!({"acceptedNames": names, "storedVersions": stored_versions, "conditions": conditions}),
            );
        }
        ("ray.io", "rayclusters") => raycluster(inner, key, v, stage, &fail, &hash),
        _ => {}
    }
}

fn containers(v: &Value, ptr: &str) -> Vec<(String, String)> {
    v.pointer(ptr)
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    (
                        c["name"].as_str().unwrap_or("").to_owned(),
                        c["image"].as_str().unwrap_or("").to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A container's last termination as fake-kubelet.py writes it: exit code 1, with the
/// annotation's text (when it has one) as the termination message.
fn terminated_with(text: &str) -> Value {
    let mut terminated = json!({"exitCode": 1, "reason": "Error", "startedAt": now_rfc3339(), "finishedAt": now_rfc3339()});
    if !text.is_empty() {
        terminated["message"] = json!(text);
    }
    terminated
}

/// Creates (once) a pod of the workload whose containers are stuck in `reason`, labelled with
/// the workload's selector so a deployer looking for its pods finds it.
fn failing_pod(inner: &mut Inner, owner_key: &Key, owner: &Value, reason: &str, hash: &str) {
    let owner_name = get_str(owner, &["metadata", "name"]).unwrap_or("");
    let name = format!(
        "{owner_name}-{}-{}",
        &hash[..hash.len().min(10)],
        util::suffix(seed_of(hash), 5)
    );
    let key = Key {
        group: String::new(),
        resource: "pods".to_owned(),
        namespace: owner_key.namespace.clone(),
        name: name.clone(),
    };
    if inner.get(&key).is_some() {
        return;
    }
    let (labels, template) = if owner_key.group == "ray.io" {
        (
            json!({"ray.io/cluster": owner_name, "ray.io/node-type": "head", "ray.io/group": "headgroup"}),
            "/spec/headGroupSpec/template/spec/containers",
        )
    } else {
        (
            owner
                .pointer("/spec/selector/matchLabels")
                .or_else(|| owner.pointer("/spec/template/metadata/labels"))
                .cloned()
                .unwrap_or(json!({})),
            "/spec/template/spec/containers",
        )
    };
    // The pods' own annotation (from the owner's pod template) or the owner's.
    let text = owner
        .pointer("/spec/template/metadata/annotations")
        .and_then(|a| a.get(SIM_FAIL_ANNOTATION))
        .or_else(|| {
            owner
                .pointer("/metadata/annotations")
                .and_then(|a| a.get(SIM_FAIL_ANNOTATION))
        })
        .and_then(Value::as_str)
        .unwrap_or_default();
    let statuses: Vec<Value> = containers(owner, template)
        .iter()
        .map(|(n, image)| {
            if reason == SIM_FAIL {
                // What realcluster's fake-kubelet.py writes for `sim.k8s-real/fail`.
                json!({"name": n, "image": image, "imageID": format!("sim://{image}"), "ready": false, "started": false, "restartCount": 1,
                    "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 10s restarting failed container (simulated: sim.k8s-real/fail)"}},
                    "lastState": {"terminated": terminated_with(text)}})
            } else if reason == "CrashLoopBackOff" {
                json!({"name": n, "image": image, "imageID": "", "ready": false, "started": false, "restartCount": 5,
                    "state": {"waiting": {"reason": "CrashLoopBackOff", "message": format!("back-off 5m0s restarting failed container={n} pod={name}")}},
                    "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "startedAt": now_rfc3339(), "finishedAt": now_rfc3339()}}})
            } else {
                json!({"name": n, "image": image, "imageID": "", "ready": false, "started": false, "restartCount": 0,
                    "state": {"waiting": {"reason": "ImagePullBackOff", "message": format!("Back-off pulling image \"{image}\"")}},
                    "lastState": {}})
            }
        })
        .collect();
    let spec_containers: Vec<Value> = containers(owner, template)
        .iter()
        .map(|(n, image)| json!({"name": n, "image": image}))
        .collect();
    let unready = format!(
        "containers with unready status: [{}]",
        containers(owner, template)
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let mut annotations = owner
        .pointer(if owner_key.group == "ray.io" {
            "/spec/headGroupSpec/template/metadata/annotations"
        } else {
            "/spec/template/metadata/annotations"
        })
        .cloned()
        .filter(Value::is_object)
        .unwrap_or(json!({}));
    annotations[SIMULATED] = json!("true");
    let mut pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": name, "namespace": owner_key.namespace, "labels": labels,
            "annotations": annotations,
            "ownerReferences": [{
                "apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner_name,
                "uid": owner["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true
            }]
        },
        "spec": {"containers": spec_containers, "nodeName": "plane-test-node"},
        "status": {
            "phase": if reason == "ImagePullBackOff" { "Pending" } else { "Running" },
            "conditions": [
                condition("PodScheduled", "True", "", ""),
                condition("Initialized", "True", "", ""),
                condition("ContainersReady", "False", "ContainersNotReady", &unready),
                condition("Ready", "False", "ContainersNotReady", &unready),
            ],
            "containerStatuses": statuses,
        }
    });
    inner.stamp_new(&mut pod);
    inner.put(key, pod, Vec::new(), EventKind::Added);
}

/// CPU cores, memory bytes and NVIDIA GPUs a pod template's containers request (a limit stands in
/// for a missing request, as the API server defaults it).
fn pod_wants(template: Option<&Value>) -> [f64; 3] {
    let mut wants = [0.0; 3];
    let containers = template
        .and_then(|t| t.pointer("/spec/containers"))
        .and_then(Value::as_array);
    for c in containers.into_iter().flatten() {
        for (i, name) in ["cpu", "memory", "nvidia.com/gpu"].into_iter().enumerate() {
            let amount = c
                .pointer(&format!("/resources/requests/{}", name.replace('/', "~1")))
                .or_else(|| c.pointer(&format!("/resources/limits/{}", name.replace('/', "~1"))))
                .and_then(Value::as_str)
                .map_or(0.0, parse_quantity);
            wants[i] += amount;
        }
    }
    wants
}

/// A Kubernetes quantity in its base unit; 0 for what does not parse.
fn parse_quantity(text: &str) -> f64 {
    let text = text.trim();
    let split = text
        .find(|c: char| c.is_ascii_alphabetic() && c != 'e' && c != 'E')
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let scale = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "Ki" => 1024.0,
        "Mi" => 1_048_576.0,
        "Gi" => 1_073_741_824.0,
        "Ti" => 1_099_511_627_776.0,
        _ => return 0.0,
    };
    number.parse::<f64>().map_or(0.0, |n| n * scale)
}

/// A quantity as KubeRay writes it: whole numbers plain (memory in the largest binary unit that
/// divides it), fractions in millis (`1500m`).
#[allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "requests are small and non-negative"
)]
fn format_quantity(amount: f64, binary: bool) -> String {
    let millis = (amount * 1000.0).round() as u64;
    if !millis.is_multiple_of(1000) {
        return format!("{millis}m");
    }
    let whole = millis / 1000;
    if binary && whole > 0 {
        for (suffix, unit) in [
            ("Ti", 1_u64 << 40),
            ("Gi", 1 << 30),
            ("Mi", 1 << 20),
            ("Ki", 1 << 10),
        ] {
            if whole.is_multiple_of(unit) {
                return format!("{}{suffix}", whole / unit);
            }
        }
    }
    whole.to_string()
}

fn raycluster(inner: &mut Inner, key: &Key, v: &Value, stage: u32, fail: &str, hash: &str) {
    let name = get_str(v, &["metadata", "name"]).unwrap_or("");
    let generation = int_at(v, "/metadata/generation", 1);
    let (mut desired, mut min, mut max) = (0, 0, 0);
    // KubeRay's desiredCPU/Memory/GPU: the head's and every wanted worker's container requests.
    let mut wants = pod_wants(v.pointer("/spec/headGroupSpec/template"));
    for g in v
        .pointer("/spec/workerGroupSpecs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        // KubeRay v1.7.0 utils.GetWorkerGroupDesiredReplicas: replicas bounded by min and max,
        // times numOfHosts; none while the group is suspended.
        let hosts = g["numOfHosts"].as_i64().unwrap_or(1);
        let gmin = g["minReplicas"].as_i64().unwrap_or(0);
        let gmax = g["maxReplicas"].as_i64().unwrap_or(i64::from(i32::MAX));
        let suspended = g["suspend"].as_bool().unwrap_or(false);
        let replicas = if suspended {
            0
        } else {
            g["replicas"]
                .as_i64()
                .unwrap_or(gmin)
                .clamp(gmin, gmax.max(gmin))
        };
        desired += replicas * hosts;
        if !suspended {
            min += gmin * hosts;
            max += gmax * hosts;
        }
        let worker = pod_wants(g.get("template"));
        #[allow(clippy::cast_precision_loss, reason = "replica counts are small")]
        let times = (replicas * hosts) as f64;
        for (i, amount) in worker.iter().enumerate() {
            wants[i] += amount * times;
        }
    }
    let mut status = json!({
        "observedGeneration": generation, "desiredWorkerReplicas": desired, "minWorkerReplicas": min,
        "maxWorkerReplicas": max, "desiredCPU": format_quantity(wants[0], false),
        "desiredMemory": format_quantity(wants[1], true), "desiredGPU": format_quantity(wants[2], false),
        "desiredTPU": "0", "lastUpdateTime": now_rfc3339(),
    });
    let not_found = condition(
        "HeadPodReady",
        "False",
        "HeadPodNotFound",
        "Head Pod not found",
    );
    let provisioning = condition(
        "RayClusterProvisioned",
        "False",
        "RayClusterPodsProvisioning",
        "RayCluster Pods are being provisioned for first time",
    );
    let head = json!({"podName": format!("{name}-head-{}", &hash[..5]), "podIP": "10.244.0.10",
        "serviceName": format!("{name}-head-svc"), "serviceIP": "10.96.0.100"});
    if fail == SIM_FAIL {
        // fake-kuberay.py: the annotation's value (or a default) as the failure message.
        let msg = get_str(v, &["metadata", "annotations", SIM_FAIL_ANNOTATION])
            .filter(|m| !m.is_empty())
            .unwrap_or("simulated pod creation failure (sim.k8s-real/fail)");
        status["conditions"] = json!([
            condition("ReplicaFailure", "True", "FailedCreateWorkerPod", msg),
            not_found,
            provisioning,
        ]);
        status["reason"] = json!(msg);
        status["readyWorkerReplicas"] = json!(0);
        status["availableWorkerReplicas"] = json!(0);
    } else if fail == "RayClusterFailed" && stage >= 1 {
        status["conditions"] = json!([
            not_found,
            provisioning,
            condition(
                "ReplicaFailure",
                "True",
                "FailedCreateHeadPod",
                &format!("failed to create head Pod {name}: simulated failure ({FAIL_ANNOTATION})")
            )
        ]);
    } else if matches!(fail, "ImagePullBackOff" | "CrashLoopBackOff") && stage >= 1 {
        failing_pod(inner, key, v, fail, hash);
        status["conditions"] = json!([
            condition(
                "HeadPodReady",
                "False",
                "ContainersNotReady",
                "containers with unready status"
            ),
            provisioning
        ]);
        status["head"] = head;
    } else if stage == 0 || fail == "RayClusterFailed" {
        status["conditions"] = json!([not_found, provisioning]);
    } else if stage == 1 {
        status["conditions"] = json!([
            condition("HeadPodReady", "True", "HeadPodRunningAndReady", ""),
            provisioning
        ]);
        status["head"] = head;
    } else {
        status["conditions"] = json!([
            condition("HeadPodReady", "True", "HeadPodRunningAndReady", ""),
            condition(
                "RayClusterProvisioned",
                "True",
                "AllPodRunningAndReadyFirstTime",
                "All Ray Pods are ready for the first time"
            )
        ]);
        status["head"] = head;
        status["state"] = json!("ready");
        status["readyWorkerReplicas"] = json!(desired);
        status["availableWorkerReplicas"] = json!(desired);
        status["stateTransitionTimes"] = json!({"ready": now_rfc3339()});
        status["endpoints"] = json!({"client": "10001", "dashboard": "8265", "gcs-server": "6379", "metrics": "8080"});
    }
    write_status(inner, key, status);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn desired_resources_sum_like_kuberay() {
        let head = json!({"spec": {"containers": [
            {"resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}},
            {"resources": {"limits": {"cpu": "100m", "memory": "256Mi", "nvidia.com/gpu": "1"}}}]}});
        let wants = pod_wants(Some(&head));
        assert_eq!(format_quantity(wants[0], false), "600m");
        assert_eq!(format_quantity(wants[1], true), "1280Mi");
        assert_eq!(format_quantity(wants[2], false), "1");
        assert_eq!(format_quantity(2.0 * parse_quantity("1.5Gi"), true), "3Gi");
        assert_eq!(format_quantity(parse_quantity("2"), false), "2");
    }
}
