//! Server-side defaults a real API server adds (so that diffs must ignore them) and name
//! validation.

use crate::error::Cause;
use crate::resources::ResourceType;
use serde_json::{Value, json};

fn set_default(map: &mut serde_json::Map<String, Value>, key: &str, v: Value) {
    map.entry(key.to_owned()).or_insert(v);
}

/// Fills in defaults for the built-in kinds plane uses. `seed` makes allocated cluster IPs
/// distinct.
pub fn apply(rt: &ResourceType, obj: &mut Value, seed: u64) {
    if rt.custom {
        return;
    }
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("apps", "Deployment") => {
            if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
                set_default(spec, "replicas", json!(1));
                set_default(spec, "revisionHistoryLimit", json!(10));
                set_default(spec, "progressDeadlineSeconds", json!(600));
                set_default(
                    spec,
                    "strategy",
                    json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}),
                );
            }
            pod_template(obj.pointer_mut("/spec/template/spec"));
        }
        ("apps", "StatefulSet") => {
            if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
                set_default(spec, "replicas", json!(1));
                set_default(spec, "revisionHistoryLimit", json!(10));
                set_default(spec, "podManagementPolicy", json!("OrderedReady"));
                set_default(
                    spec,
                    "updateStrategy",
                    json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
                );
            }
            pod_template(obj.pointer_mut("/spec/template/spec"));
        }
        ("apps", "DaemonSet") => {
            if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
                set_default(spec, "revisionHistoryLimit", json!(10));
                set_default(
                    spec,
                    "updateStrategy",
                    json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}),
                );
            }
            pod_template(obj.pointer_mut("/spec/template/spec"));
        }
        ("apps", "ReplicaSet") => pod_template(obj.pointer_mut("/spec/template/spec")),
        ("batch", "Job") => {
            if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
                set_default(spec, "backoffLimit", json!(6));
                set_default(spec, "completions", json!(1));
                set_default(spec, "parallelism", json!(1));
                set_default(spec, "completionMode", json!("NonIndexed"));
                set_default(spec, "suspend", json!(false));
            }
            pod_template(obj.pointer_mut("/spec/template/spec"));
        }
        ("batch", "CronJob") => {
            if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
                set_default(spec, "concurrencyPolicy", json!("Allow"));
                set_default(spec, "suspend", json!(false));
                set_default(spec, "successfulJobsHistoryLimit", json!(3));
                set_default(spec, "failedJobsHistoryLimit", json!(1));
            }
            pod_template(obj.pointer_mut("/spec/jobTemplate/spec/template/spec"));
        }
        ("", "Pod") => pod_template(obj.get_mut("spec")),
        ("", "Service") => service(obj, seed),
        ("", "PersistentVolumeClaim") => {
            if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
                set_default(spec, "volumeMode", json!("Filesystem"));
            }
            let status = crate::util::ensure_object(obj, &["status"]);
            set_default(status, "phase", json!("Pending"));
        }
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            let conversion = crate::util::ensure_object(obj, &["spec", "conversion"]);
            set_default(conversion, "strategy", json!("None"));
        }
        ("", "Namespace") => {
            let spec = crate::util::ensure_object(obj, &["spec"]);
            set_default(spec, "finalizers", json!(["kubernetes"]));
            let status = crate::util::ensure_object(obj, &["status"]);
            set_default(status, "phase", json!("Active"));
            // The real server keeps this label equal to the name, whatever a client sends.
            if let Some(name) = obj.pointer("/metadata/name").cloned() {
                let labels = crate::util::ensure_object(obj, &["metadata", "labels"]);
                labels.insert("kubernetes.io/metadata.name".to_owned(), name);
            }
        }
        ("", "Secret") => {
            if let Some(map) = obj.as_object_mut() {
                set_default(map, "type", json!("Opaque"));
                // Like the real server: stringData is write-only, merged into data as base64.
                if let Some(Value::Object(strings)) = map.remove("stringData") {
                    let data = map.entry("data").or_insert_with(|| json!({}));
                    if let Some(data) = data.as_object_mut() {
                        for (k, v) in strings {
                            let s = v.as_str().unwrap_or_default().to_owned();
                            data.insert(k, json!(crate::tls::base64(s.as_bytes())));
                        }
                    }
                }
            }
        }
        _ => {}
    }
}

fn service(obj: &mut Value, seed: u64) {
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    set_default(spec, "type", json!("ClusterIP"));
    set_default(spec, "sessionAffinity", json!("None"));
    set_default(spec, "internalTrafficPolicy", json!("Cluster"));
    set_default(spec, "ipFamilies", json!(["IPv4"]));
    set_default(spec, "ipFamilyPolicy", json!("SingleStack"));
    if !spec.contains_key("clusterIP") {
        let n = crate::util::mix(seed);
        let ip = format!("10.96.{}.{}", (n >> 8) % 256, 1 + (n % 254));
        spec.insert("clusterIP".to_owned(), json!(ip));
    }
    if !spec.contains_key("clusterIPs") && spec["clusterIP"] != "None" {
        let ip = spec["clusterIP"].clone();
        spec.insert("clusterIPs".to_owned(), json!([ip]));
    }
    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            set_default(p, "protocol", json!("TCP"));
            if let Some(port) = p.get("port").cloned() {
                set_default(p, "targetPort", port);
            }
        }
    }
}

fn pod_template(spec: Option<&mut Value>) {
    let Some(spec) = spec.and_then(Value::as_object_mut) else {
        return;
    };
    set_default(spec, "restartPolicy", json!("Always"));
    set_default(spec, "terminationGracePeriodSeconds", json!(30));
    set_default(spec, "dnsPolicy", json!("ClusterFirst"));
    set_default(spec, "securityContext", json!({}));
    set_default(spec, "schedulerName", json!("default-scheduler"));
    for list in ["containers", "initContainers"] {
        let Some(containers) = spec.get_mut(list).and_then(Value::as_array_mut) else {
            continue;
        };
        for c in containers.iter_mut().filter_map(Value::as_object_mut) {
            set_default(c, "terminationMessagePath", json!("/dev/termination-log"));
            set_default(c, "terminationMessagePolicy", json!("File"));
            let image = c.get("image").and_then(Value::as_str).unwrap_or("");
            let tag = image.rsplit('/').next().unwrap_or("");
            let policy = if !image.contains('@') && (!tag.contains(':') || tag.ends_with(":latest"))
            {
                "Always"
            } else {
                "IfNotPresent"
            };
            set_default(c, "imagePullPolicy", json!(policy));
            set_default(c, "resources", json!({}));
            if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
                for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                    set_default(p, "protocol", json!("TCP"));
                }
            }
        }
    }
}

/// Checks a name: DNS-1123 labels for Namespaces and Services, path segments for RBAC kinds,
/// DNS-1123 subdomains otherwise.
pub fn validate_name(rt: &ResourceType, name: &str) -> Option<Cause> {
    let label = matches!(rt.kind.as_str(), "Namespace" | "Service") && rt.group.is_empty();
    let path_segment = rt.group == "rbac.authorization.k8s.io";
    let message = if name.is_empty() {
        Some("Required value: name or generateName is required".to_owned())
    } else if path_segment {
        (name == "." || name == ".." || name.contains('/') || name.contains('%'))
            .then(|| format!("Invalid value: \"{name}\": may not contain '/' or '%'"))
    } else if label {
        (!dns_label(name)).then(|| {
            format!("Invalid value: \"{name}\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
        })
    } else {
        let ok = name.len() <= 253 && name.split('.').all(dns_label);
        (!ok).then(|| {
            format!("Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
        })
    };
    message.map(|message| crate::error::Cause {
        reason: if name.is_empty() {
            "FieldValueRequired"
        } else {
            "FieldValueInvalid"
        }
        .to_owned(),
        message,
        field: "metadata.name".to_owned(),
    })
}

/// The checks of built-in kinds beyond names that plane can run into: a workload's selector is
/// required and must match its Pod template's labels (the real messages and field paths).
pub fn validate_builtin(rt: &ResourceType, obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    if let Some(cause) = data_too_long(rt, obj) {
        causes.push(cause);
    }
    let workload = rt.group == "apps"
        && matches!(
            rt.kind.as_str(),
            "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet"
        );
    if !workload {
        return causes;
    }
    let selector = obj.pointer("/spec/selector");
    let labels = obj
        .pointer("/spec/template/metadata/labels")
        .cloned()
        .unwrap_or(json!({}));
    match selector {
        None | Some(Value::Null) => causes.push(Cause {
            reason: "FieldValueRequired".to_owned(),
            message: "Required value".to_owned(),
            field: "spec.selector".to_owned(),
        }),
        Some(_) => {}
    }
    // matchExpressions are not evaluated: only matchLabels can make a mismatch here.
    let matches = match selector
        .and_then(|s| s.get("matchLabels"))
        .and_then(Value::as_object)
    {
        Some(want) => want.iter().all(|(k, v)| labels.get(k) == Some(v)),
        None => selector.and_then(|s| s.get("matchExpressions")).is_some(),
    };
    if !matches {
        causes.push(Cause {
            reason: "FieldValueInvalid".to_owned(),
            message: format!(
                "Invalid value: {labels}: `selector` does not match template `labels`"
            ),
            field: "spec.template.metadata.labels".to_owned(),
        });
    }
    causes
}

/// What a Secret's or ConfigMap's data may hold in all, as the API server checks it.
const MAX_DATA_BYTES: usize = 1024 * 1024;

/// A Secret whose values (decoded) or a ConfigMap whose keys and values are over 1 MiB.
fn data_too_long(rt: &ResourceType, obj: &Value) -> Option<Cause> {
    let entries = |field: &str| {
        obj.get(field)
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.len(), v.as_str().unwrap_or_default()))
    };
    let total: usize = match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Secret") => entries("data")
            .map(|(_, v)| base64_decoded_len(v))
            .chain(entries("stringData").map(|(_, v)| v.len()))
            .sum(),
        ("", "ConfigMap") => entries("data")
            .chain(entries("binaryData"))
            .map(|(k, v)| k + v.len())
            .sum(),
        _ => return None,
    };
    (total > MAX_DATA_BYTES).then(|| Cause {
        reason: "FieldValueTooLong".to_owned(),
        message: format!("Too long: must have at most {MAX_DATA_BYTES} bytes"),
        field: "data".to_owned(),
    })
}

/// The length of what a base64 text decodes to.
fn base64_decoded_len(text: &str) -> usize {
    let padding = text.bytes().rev().take_while(|b| *b == b'=').count();
    (text.len() / 4 * 3).saturating_sub(padding)
}

fn dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::BUILTINS;

    fn rt(kind: &str) -> ResourceType {
        BUILTINS.iter().find(|t| t.kind == kind).unwrap().clone()
    }

    #[test]
    fn names() {
        assert!(validate_name(&rt("ConfigMap"), "a.b-c").is_none());
        assert!(validate_name(&rt("ConfigMap"), "A").is_some());
        assert!(validate_name(&rt("Service"), "a.b").is_some());
        assert!(validate_name(&rt("ClusterRole"), "system:x").is_none());
        assert!(validate_name(&rt("Namespace"), "-x").is_some());
    }

    #[test]
    fn secret_string_data_becomes_data() {
        let mut s = serde_json::json!({"stringData": {"a": "foo"}, "data": {"b": "Zm8="}});
        apply(&rt("Secret"), &mut s, 1);
        assert_eq!(
            s,
            serde_json::json!({"type": "Opaque", "data": {"a": "Zm9v", "b": "Zm8="}})
        );
    }

    #[test]
    fn deployment_and_service_defaults() {
        let mut d = serde_json::json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "nginx:1.2"}]}}}});
        apply(&rt("Deployment"), &mut d, 1);
        assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"],
            "IfNotPresent"
        );
        let mut s = serde_json::json!({"spec": {"ports": [{"port": 80}]}});
        apply(&rt("Service"), &mut s, 1);
        assert_eq!(s["spec"]["sessionAffinity"], "None");
        assert!(
            s["spec"]["clusterIP"]
                .as_str()
                .unwrap()
                .starts_with("10.96.")
        );
        assert_eq!(s["spec"]["ports"][0]["targetPort"], 80);
    }
}
