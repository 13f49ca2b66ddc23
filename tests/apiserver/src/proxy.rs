//! The service proxy (`/api/v1/namespaces/NS/services/NAME[:PORT]/proxy/...`), for a Prometheus:
//! a Service annotated with [`PROMETHEUS_ANNOTATION`] answers instant queries from the samples
//! the annotation holds; any other Service answers 503, as a real API server does for a Service
//! without a ready endpoint.

use crate::error::ApiError;
use crate::ops::{self, Target};
use crate::resources;
use crate::server::State;
use serde_json::{Value, json};
use std::collections::HashMap;

/// Makes a Service answer like a Prometheus behind the service proxy. Its value is a JSON object
/// from metric name to samples, each sample its labels plus `value`:
/// `{"ray_node_mem_used": [{"namespace": "a", "ray_io_cluster": "rc", "value": "1073741824"}]}`.
/// `GET .../proxy/api/v1/query?query=Q` answers the samples of every metric named in `Q`
/// (an instant vector; values as given, the query's arithmetic is not evaluated).
pub const PROMETHEUS_ANNOTATION: &str = "test.plane.datalayer.io/prometheus";

/// Answers a request to a Service's proxy: 403 without `get` on `services/proxy`, 404 for a
/// Service that does not exist, 503 for one that is not a simulated Prometheus.
pub fn service(
    state: &State,
    rules: &[crate::PolicyRule],
    namespace: &str,
    target: &str,
    path: &[&str],
    query: &HashMap<String, String>,
) -> Result<Value, ApiError> {
    // `[scheme:]name[:port]`
    let pieces: Vec<&str> = target.split(':').collect();
    let name = if pieces.len() == 3 {
        pieces[1]
    } else {
        pieces[0]
    };
    if !rules
        .iter()
        .any(|r| r.allows("get", "", "services/proxy", name))
    {
        return Err(ApiError::Forbidden {
            message: format!(
                "services \"{name}\" is forbidden: User \"plane-test\" cannot get resource \"services/proxy\" in API group \"\" in the namespace \"{namespace}\""
            ),
            group: String::new(),
            kind: "services".to_owned(),
            name: name.to_owned(),
            causes: Vec::new(),
        });
    }
    let service = {
        let inner = state.store.lock();
        let types = inner.types();
        let rt = resources::by_kind(&types, "v1", "Service")
            .ok_or_else(ApiError::no_route)?
            .clone();
        ops::get(
            &inner,
            &Target {
                rt,
                namespace: Some(namespace.to_owned()),
                name: Some(name.to_owned()),
                sub: None,
            },
        )?
    };
    let Some(samples) = service
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(PROMETHEUS_ANNOTATION))
        .and_then(Value::as_str)
    else {
        return Err(ApiError::ServiceUnavailable {
            message: format!("no endpoints available for service \"{name}\""),
        });
    };
    if path != ["api", "v1", "query"] {
        return Ok(json!({"status": "error", "errorType": "not_found",
            "error": format!("the simulated Prometheus answers only /api/v1/query, not /{}", path.join("/"))}));
    }
    let samples: HashMap<String, Vec<Value>> = serde_json::from_str(samples).map_err(|e| {
        ApiError::bad_request(format!("invalid {PROMETHEUS_ANNOTATION} annotation: {e}"))
    })?;
    let promql = query.get("query").map_or("", String::as_str);
    let mut result = Vec::new();
    let mut metrics: Vec<&String> = samples.keys().collect();
    metrics.sort();
    for metric in metrics.into_iter().filter(|m| promql.contains(m.as_str())) {
        for sample in &samples[metric] {
            let mut labels = sample.clone();
            let value = labels
                .as_object_mut()
                .and_then(|m| m.remove("value"))
                .unwrap_or(json!("0"));
            result.push(json!({"metric": labels, "value": [1_700_000_000.0, value]}));
        }
    }
    Ok(json!({"status": "success", "data": {"resultType": "vector", "result": result}}))
}
