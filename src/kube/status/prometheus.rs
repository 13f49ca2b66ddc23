//! What the objects of a status view use, from a release's Prometheus with the queries its bundle
//! declares, asked through the API server's service proxy (so plane talks to nothing but the API
//! server), under a short deadline.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::bundle::declared::view::Usage;

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

/// What one object's pods use now: CPU cores busy, memory bytes used, GPUs busy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectUsage {
    pub cpu_cores: Option<f64>,
    pub memory_bytes: Option<f64>,
    pub gpu: Option<f64>,
}

/// Usage per (namespace, name) of an object.
pub type UsageByObject = BTreeMap<(String, String), ObjectUsage>;

/// Asks `prometheus` the declared queries, all at once, within [`USAGE_TIMEOUT`].
///
/// # Errors
/// One line saying why there is no usage: no answer in time, the proxy's or Prometheus's error.
pub async fn usage(
    client: &kube::Client,
    prometheus: &PrometheusService,
    declared: &Usage,
) -> Result<UsageByObject, String> {
    let labels = &declared.labels;
    let asked = async {
        futures::try_join!(
            query(client, prometheus, &declared.cpu, labels),
            query(client, prometheus, &declared.memory, labels),
            query(client, prometheus, &declared.gpu, labels),
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
    let mut usage = UsageByObject::new();
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

/// One instant query; its samples by the two labels naming an object.
async fn query(
    client: &kube::Client,
    prometheus: &PrometheusService,
    promql: &str,
    labels: &[String; 2],
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
    parse_vector(&text, labels)
}

/// Samples of one query, by (namespace, name) of an object.
pub type Samples = Vec<((String, String), f64)>;

/// The samples of a Prometheus instant-query answer (`resultType: vector`).
///
/// # Errors
/// An answer that is not JSON, an error answer, or another result type.
pub fn parse_vector(text: &str, labels: &[String; 2]) -> Result<Samples, String> {
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
        samples.push(((label(&labels[0]), label(&labels[1])), value));
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

    fn labels() -> [String; 2] {
        ["namespace".into(), "widget".into()]
    }

    #[test]
    fn reads_an_instant_vector() {
        let text = r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"namespace":"a","widget":"rc"},"value":[1700000000.1,"1.5"]},
            {"metric":{"namespace":"b","widget":"x"},"value":[1700000000.1,"NaN"]}]}}"#;
        assert_eq!(
            parse_vector(text, &labels()).unwrap(),
            vec![(("a".to_owned(), "rc".to_owned()), 1.5)]
        );
    }

    #[test]
    fn says_why_an_answer_is_unusable() {
        let error = r#"{"status":"error","errorType":"bad_data","error":"parse error"}"#;
        assert_eq!(
            parse_vector(error, &labels()).unwrap_err(),
            "Prometheus answered bad_data: parse error"
        );
        assert!(
            parse_vector("<html>502 Bad Gateway</html>", &labels())
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
