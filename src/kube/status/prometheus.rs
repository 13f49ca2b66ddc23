//! Ray's resource usage from a release's Prometheus, asked through the API server's service proxy
//! (so plane talks to nothing but the API server), under a short deadline.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

/// How long Prometheus may take to answer all the queries: usage is a nicety, never a wait.
pub const USAGE_TIMEOUT: Duration = Duration::from_secs(3);

/// A Prometheus Service: where the proxy path points.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct PrometheusService {
    pub namespace: String,
    pub name: String,
    pub port: u16,
}

impl PrometheusService {
    pub fn subject(&self) -> String {
        crate::kube::object::subject("Service", Some(&self.namespace), &self.name)
    }

    /// The API server path that proxies to this Service's `/api/v1/query`.
    fn query_path(&self, query: &str) -> String {
        let encoded: String = url::form_urlencoded::byte_serialize(query.as_bytes()).collect();
        format!(
            "/api/v1/namespaces/{}/services/{}:{}/proxy/api/v1/query?query={encoded}",
            self.namespace, self.name, self.port
        )
    }
}

/// The queries, over the series Ray's metrics exporter writes on every Ray pod, which the bundle's
/// scrape configuration labels with `namespace` and `ray_io_cluster`.
pub const CPU_QUERY: &str =
    "sum by (namespace, ray_io_cluster) (ray_node_cpu_utilization * ray_node_cpu_count / 100)";
pub const MEMORY_QUERY: &str = "sum by (namespace, ray_io_cluster) (ray_node_mem_used)";
pub const GPU_QUERY: &str = "sum by (namespace, ray_io_cluster) (ray_node_gpus_utilization / 100)";

/// What one RayCluster uses now: CPU cores busy, memory bytes used, GPUs busy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterUsage {
    pub cpu_cores: Option<f64>,
    pub memory_bytes: Option<f64>,
    pub gpu: Option<f64>,
}

/// Usage per (namespace, RayCluster).
pub type UsageByCluster = BTreeMap<(String, String), ClusterUsage>;

/// Asks `prometheus` for Ray's usage, all queries at once, within [`USAGE_TIMEOUT`].
///
/// # Errors
/// One line saying why there is no usage: no answer in time, the proxy's or Prometheus's error.
pub async fn ray_usage(
    client: &kube::Client,
    prometheus: &PrometheusService,
) -> Result<UsageByCluster, String> {
    let asked = async {
        futures::try_join!(
            query(client, prometheus, CPU_QUERY),
            query(client, prometheus, MEMORY_QUERY),
            query(client, prometheus, GPU_QUERY),
        )
    };
    let (cpu, memory, gpu) = tokio::time::timeout(USAGE_TIMEOUT, asked)
        .await
        .map_err(|_| {
            format!(
                "{} did not answer through the API server's service proxy within {}s",
                prometheus.subject(),
                USAGE_TIMEOUT.as_secs()
            )
        })?
        .map_err(|why| {
            format!(
                "{} through the API server's service proxy: {why}",
                prometheus.subject()
            )
        })?;
    let mut usage = UsageByCluster::new();
    for (key, value) in cpu {
        usage.entry(key).or_default().cpu_cores = Some(value);
    }
    for (key, value) in memory {
        usage.entry(key).or_default().memory_bytes = Some(value);
    }
    for (key, value) in gpu {
        usage.entry(key).or_default().gpu = Some(value);
    }
    Ok(usage)
}

/// One instant query; its samples by (namespace, ray_io_cluster).
async fn query(
    client: &kube::Client,
    prometheus: &PrometheusService,
    promql: &str,
) -> Result<Samples, String> {
    let request = http::Request::get(prometheus.query_path(promql))
        .body(Vec::new())
        .map_err(|err| err.to_string())?;
    let text = client
        .request_text(request)
        .await
        .map_err(|err| match err {
            kube::Error::Api(status) => {
                let message = one_line(&status.message);
                if status.reason.is_empty() || status.reason == "Failed to parse error data" {
                    format!("{} {message}", status.code)
                } else {
                    format!("{} {}: {message}", status.code, status.reason)
                }
            }
            other => one_line(&crate::kube::error::error_chain(&other)),
        })?;
    parse_vector(&text)
}

/// Samples of one query, by (namespace, RayCluster).
pub type Samples = Vec<((String, String), f64)>;

/// The samples of a Prometheus instant-query answer (`resultType: vector`).
///
/// # Errors
/// An answer that is not JSON, an error answer, or another result type.
pub fn parse_vector(text: &str) -> Result<Samples, String> {
    let answer: Value = serde_json::from_str(text)
        .map_err(|_| format!("the answer is not Prometheus JSON: {}", one_line(text)))?;
    if answer["status"] != "success" {
        return Err(format!(
            "Prometheus answered {}: {}",
            answer["errorType"].as_str().unwrap_or("an error"),
            answer["error"].as_str().unwrap_or("no message")
        ));
    }
    if answer["data"]["resultType"] != "vector" {
        return Err("Prometheus answered something other than an instant vector".into());
    }
    let mut samples = Vec::new();
    for sample in answer["data"]["result"].as_array().into_iter().flatten() {
        let label = |k: &str| sample["metric"][k].as_str().unwrap_or_default().to_owned();
        let Some(value) = sample["value"][1]
            .as_str()
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| v.is_finite())
        else {
            continue;
        };
        samples.push(((label("namespace"), label("ray_io_cluster")), value));
    }
    Ok(samples)
}

/// A message on one line, cut to a readable length.
fn one_line(text: &str) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > 200 {
        let cut: String = flat.chars().take(200).collect();
        format!("{cut}...")
    } else {
        flat
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_instant_vector() {
        let text = r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"namespace":"a","ray_io_cluster":"rc"},"value":[1700000000.1,"1.5"]},
            {"metric":{"namespace":"b","ray_io_cluster":"x"},"value":[1700000000.1,"NaN"]}]}}"#;
        assert_eq!(
            parse_vector(text).unwrap(),
            vec![(("a".to_owned(), "rc".to_owned()), 1.5)]
        );
    }

    #[test]
    fn says_why_an_answer_is_unusable() {
        let error = r#"{"status":"error","errorType":"bad_data","error":"parse error"}"#;
        assert_eq!(
            parse_vector(error).unwrap_err(),
            "Prometheus answered bad_data: parse error"
        );
        assert!(
            parse_vector("<html>502 Bad Gateway</html>")
                .unwrap_err()
                .contains("not Prometheus JSON")
        );
    }

    #[test]
    fn queries_go_through_the_service_proxy() {
        let prometheus = PrometheusService {
            namespace: "obs".into(),
            name: "prometheus".into(),
            port: 9090,
        };
        assert_eq!(
            prometheus.query_path("sum(x)"),
            "/api/v1/namespaces/obs/services/prometheus:9090/proxy/api/v1/query?query=sum%28x%29"
        );
    }
}
