//! What plane knows of KubeRay's objects without asking the server: which changes a running
//! RayCluster does not pick up.

use serde_json::Value;

/// Changes to a live RayCluster that its running pods do not pick up: KubeRay sets the head's
/// autoscaler up when it creates the head pod, so a change to `enableInTreeAutoscaling` or
/// `autoscalerOptions` waits for the cluster to be recreated, which plane never does on its own.
pub fn kept_by_running_pods(before: &Value, after: &Value) -> Option<String> {
    if before["kind"] != "RayCluster" {
        return None;
    }
    let changed: Vec<&str> = ["enableInTreeAutoscaling", "autoscalerOptions"]
        .into_iter()
        .filter(|field| before["spec"][field] != after["spec"][field])
        .collect();
    if changed.is_empty() {
        return None;
    }
    let namespace = before["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default");
    let name = before["metadata"]["name"].as_str().unwrap_or_default();
    Some(format!(
        "changes spec.{} of a running RayCluster: its running pods keep the old autoscaling setup; \
         to apply it, recreate the cluster (`kubectl delete raycluster -n {namespace} {name}`, then \
         `plane up`), which restarts its head and workers; plane never recreates it on its own",
        changed.join(" and spec.")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn autoscaling_changes_to_a_running_raycluster_are_called_out() {
        let cluster = |enabled: bool, idle: u32| {
            json!({"kind": "RayCluster", "metadata": {"name": "rc", "namespace": "ray"},
                "spec": {"enableInTreeAutoscaling": enabled, "autoscalerOptions": {"idleTimeoutSeconds": idle},
                         "workerGroupSpecs": [{"maxReplicas": 3}]}})
        };
        let why = kept_by_running_pods(&cluster(false, 60), &cluster(true, 60)).unwrap();
        assert!(
            why.contains("spec.enableInTreeAutoscaling")
                && why.contains("kubectl delete raycluster -n ray rc")
                && why.contains("never recreates"),
            "{why}"
        );
        assert!(
            kept_by_running_pods(&cluster(true, 60), &cluster(true, 120))
                .unwrap()
                .contains("spec.autoscalerOptions")
        );
        let mut more_workers = cluster(true, 60);
        more_workers["spec"]["workerGroupSpecs"][0]["maxReplicas"] = json!(5);
        assert_eq!(
            kept_by_running_pods(&cluster(true, 60), &more_workers),
            None
        );
        let mut deployment = cluster(false, 60);
        deployment["kind"] = json!("Deployment");
        assert_eq!(kept_by_running_pods(&deployment, &cluster(true, 60)), None);
    }
}
