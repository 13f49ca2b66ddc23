//! What pods request: CPU, memory and GPUs from their containers, as Kubernetes quantities summed
//! exactly.

use kube_quantity::ParsedQuantity;
use serde::Serialize;
use serde_json::Value;

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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
        let pod = json!({"kind": "Pod", "spec": {"containers": [
            {"name": "main", "resources": {"requests": {"cpu": "1", "memory": "2Gi", "nvidia.com/gpu": "1"}}},
            {"name": "sidecar", "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}],
            "initContainers": [{"name": "init", "resources": {"requests": {"cpu": "4"}}}]}});
        assert_eq!(
            pod_requests(&pod),
            Requests {
                cpu_millis: 1100,
                memory_bytes: (2 << 30) + (64 << 20),
                gpu: 1
            }
        );
    }
}
