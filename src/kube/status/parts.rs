//! Where a release's parts are: its API's URL (from its Ingress), its Grafana and Prometheus
//! Services and the KubeRay operator it runs, read from the objects its inventory records.

use futures::{StreamExt, stream};
use serde::Serialize;
use serde_json::Value;

use crate::kube::KubeError;
use crate::kube::client::Cluster;
use crate::kube::client::IN_FLIGHT;
use crate::kube::object::subject;
use crate::kube::release::inventory::Inventory;
use crate::kube::status::Gap;
use crate::kube::status::prometheus::PrometheusService;

/// The bundle's name label, which tells a Grafana Service from a Prometheus one.
const NAME_LABEL: &str = "app.kubernetes.io/name";
const COMPONENT_LABEL: &str = "app.kubernetes.io/component";

/// The API's public URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    pub url: String,
    /// The object it was read from: `Ingress/ns/name`.
    pub from: String,
}

/// A Service inside the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServicePart {
    /// `Service/ns/name`.
    pub service: String,
    pub port: u16,
    /// Its address inside the cluster: `http://name.ns.svc:port`.
    pub url: String,
}

/// The KubeRay operator as it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Operator {
    /// `Deployment/ns/name`.
    pub deployment: String,
    pub image: String,
    /// The image tag (`v1.7.0`), which is the operator's version.
    pub version: String,
    pub ready_replicas: i64,
    pub replicas: i64,
}

/// Where a release's parts are; a part the release does not have (or that could not be read)
/// is `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReleaseParts {
    pub api: Option<Endpoint>,
    pub grafana: Option<ServicePart>,
    pub prometheus: Option<ServicePart>,
    pub operator: Option<Operator>,
}

impl ReleaseParts {
    /// The Prometheus to ask for usage.
    pub fn prometheus_service(&self) -> Option<PrometheusService> {
        let part = self.prometheus.as_ref()?;
        let mut pieces = part.service.splitn(3, '/').skip(1);
        Some(PrometheusService {
            namespace: pieces.next()?.to_owned(),
            name: pieces.next()?.to_owned(),
            port: part.port,
        })
    }
}

/// Reads the release's Ingresses, Services and Deployments (up to 8 at once) and finds its parts.
/// An object that cannot be read is a gap, never a failure of the whole.
pub async fn release_parts(cluster: &Cluster, inventory: &Inventory) -> (ReleaseParts, Vec<Gap>) {
    let wanted: Vec<_> = inventory
        .objects
        .iter()
        .filter(|o| matches!(o.id.kind.as_str(), "Ingress" | "Service" | "Deployment"))
        .collect();
    let read: Vec<(String, Result<Option<Value>, KubeError>)> = stream::iter(wanted)
        .map(|o| async move {
            let subject = o.id.subject();
            let result = cluster.get(&o.id).await;
            (subject, result)
        })
        .buffered(IN_FLIGHT)
        .collect()
        .await;
    let mut objects = Vec::new();
    let mut gaps = Vec::new();
    for (subject, result) in read {
        match result {
            Ok(Some(object)) => objects.push(object),
            Ok(None) => {}
            Err(err) => gaps.push(Gap::new(
                &subject,
                &err,
                "ask a cluster admin for `get` on it",
            )),
        }
    }
    (find_parts(&objects), gaps)
}

/// Finds the parts among a release's objects (typed, with their kind). Pure.
pub fn find_parts(objects: &[Value]) -> ReleaseParts {
    let label = |o: &Value, k: &str| o["metadata"]["labels"][k].as_str().map(str::to_owned);
    let of_kind = |kind: &'static str| objects.iter().filter(move |o| o["kind"] == kind);
    let ingress = of_kind("Ingress")
        .find(|o| label(o, COMPONENT_LABEL).as_deref() == Some("api"))
        .or_else(|| of_kind("Ingress").next());
    let service = |name: &str| {
        of_kind("Service")
            .find(|o| label(o, NAME_LABEL).as_deref() == Some(name))
            .and_then(service_part)
    };
    ReleaseParts {
        api: ingress.and_then(endpoint),
        grafana: service("grafana"),
        prometheus: service("prometheus"),
        operator: of_kind("Deployment")
            .find(|o| label(o, NAME_LABEL).as_deref() == Some("kuberay-operator"))
            .map(operator),
    }
}

fn object_subject(object: &Value) -> String {
    subject(
        object["kind"].as_str().unwrap_or_default(),
        object["metadata"]["namespace"].as_str(),
        object["metadata"]["name"].as_str().unwrap_or_default(),
    )
}

fn endpoint(ingress: &Value) -> Option<Endpoint> {
    let rule = ingress["spec"]["rules"].as_array()?.first()?;
    let host = rule["host"].as_str().filter(|h| !h.is_empty())?;
    let path = rule["http"]["paths"][0]["path"].as_str().unwrap_or("/");
    let tls = ingress["spec"]["tls"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|t| {
            t["hosts"]
                .as_array()
                .is_some_and(|h| h.iter().any(|x| x == host))
        });
    let scheme = if tls { "https" } else { "http" };
    Some(Endpoint {
        url: format!("{scheme}://{host}{path}"),
        from: object_subject(ingress),
    })
}

fn service_part(service: &Value) -> Option<ServicePart> {
    let port = u16::try_from(service["spec"]["ports"][0]["port"].as_u64()?).ok()?;
    let name = service["metadata"]["name"].as_str()?;
    let namespace = service["metadata"]["namespace"].as_str()?;
    Some(ServicePart {
        service: object_subject(service),
        port,
        url: format!("http://{name}.{namespace}.svc:{port}"),
    })
}

fn operator(deployment: &Value) -> Operator {
    let image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    // `repo:tag` or `repo:tag@sha256:...`; a registry port (`host:5000/repo`) is no tag.
    let without_digest = image.split('@').next().unwrap_or_default();
    let version = without_digest
        .rsplit_once(':')
        .filter(|(_, tag)| !tag.contains('/'))
        .map_or("unknown", |(_, tag)| tag)
        .to_owned();
    Operator {
        deployment: object_subject(deployment),
        image,
        version,
        ready_replicas: deployment["status"]["readyReplicas"].as_i64().unwrap_or(0),
        replicas: deployment["spec"]["replicas"].as_i64().unwrap_or(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_each_part_by_the_bundle_labels() {
        let objects = vec![
            json!({"kind": "Ingress", "metadata": {"namespace": "api", "name": "datalayer-ray",
                    "labels": {COMPONENT_LABEL: "api"}},
                "spec": {"tls": [{"hosts": ["ray.example.com"]}],
                    "rules": [{"host": "ray.example.com", "http": {"paths": [{"path": "/api/ray"}]}}]}}),
            json!({"kind": "Service", "metadata": {"namespace": "obs", "name": "prometheus",
                    "labels": {NAME_LABEL: "prometheus"}}, "spec": {"ports": [{"port": 9090}]}}),
            json!({"kind": "Service", "metadata": {"namespace": "obs", "name": "grafana",
                    "labels": {NAME_LABEL: "grafana"}}, "spec": {"ports": [{"port": 3000}]}}),
            json!({"kind": "Deployment", "metadata": {"namespace": "ray-system", "name": "kuberay-operator",
                    "labels": {NAME_LABEL: "kuberay-operator"}},
                "spec": {"replicas": 1, "template": {"spec": {"containers": [
                    {"image": "registry:5000/kuberay/operator:v1.7.1"}]}}},
                "status": {"readyReplicas": 1}}),
        ];
        let parts = find_parts(&objects);
        assert_eq!(
            parts.prometheus_service(),
            Some(PrometheusService {
                namespace: "obs".into(),
                name: "prometheus".into(),
                port: 9090
            })
        );
        assert_eq!(parts.api.unwrap().url, "https://ray.example.com/api/ray");
        assert_eq!(parts.grafana.unwrap().url, "http://grafana.obs.svc:3000");
        let operator = parts.operator.unwrap();
        assert_eq!(
            (operator.version.as_str(), operator.ready_replicas),
            ("v1.7.1", 1)
        );
    }

    #[test]
    fn an_image_without_a_tag_has_no_version() {
        let deployment = json!({"kind": "Deployment", "metadata": {"namespace": "a", "name": "op"},
            "spec": {"template": {"spec": {"containers": [{"image": "registry:5000/operator"}]}}}});
        assert_eq!(operator(&deployment).version, "unknown");
    }
}
