//! Where a release's parts are, as its bundle's status view declares them: an Ingress's URL, a
//! Service's address, a Deployment's image, version and replicas, each found by label among the
//! objects its inventory records.

use futures::{StreamExt, stream};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::bundle::declared::view::{Part, PartKind};
use crate::kube::client::Cluster;
use crate::kube::client::IN_FLIGHT;
use crate::kube::error::KubeError;
use crate::kube::object::subject;
use crate::kube::release::inventory::Inventory;
use crate::kube::status::Gap;
use crate::kube::status::prometheus::PrometheusService;

/// An Ingress part: its public URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    pub url: String,
    /// The object it was read from: `Ingress/ns/name`.
    pub from: String,
}

/// A Service part, inside the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServicePart {
    /// `Service/ns/name`.
    pub service: String,
    pub port: u16,
    /// Its address inside the cluster: `http://name.ns.svc:port`.
    pub url: String,
}

/// A Deployment part, as it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Workload {
    /// `Deployment/ns/name`.
    pub deployment: String,
    pub image: String,
    /// The image tag (`v1.7.0`), which is its version.
    pub version: String,
    pub ready_replicas: i64,
    pub replicas: i64,
    /// What it runs, for the line `status` writes.
    #[serde(skip)]
    pub title: String,
}

/// One part as found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Found {
    Endpoint(Endpoint),
    Service(ServicePart),
    Workload(Workload),
}

/// Where a release's parts are, in the order its bundle declares them; a part the release does
/// not have (or that could not be read) is `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReleaseParts(pub Vec<(String, Option<Found>)>);

impl Serialize for ReleaseParts {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let map: Map<String, Value> = self
            .0
            .iter()
            .map(|(name, found)| {
                (
                    name.clone(),
                    serde_json::to_value(found).unwrap_or_default(),
                )
            })
            .collect();
        map.serialize(serializer)
    }
}

impl ReleaseParts {
    /// The Service part `name` as a Prometheus to ask.
    pub fn prometheus_service(&self, name: &str) -> Option<PrometheusService> {
        let Some((_, Some(Found::Service(part)))) = self.0.iter().find(|(n, _)| n == name) else {
            return None;
        };
        let mut pieces = part.service.splitn(3, '/').skip(1);
        Some(PrometheusService {
            namespace: pieces.next()?.to_owned(),
            name: pieces.next()?.to_owned(),
            port: part.port,
        })
    }
}

/// The parts a release's bundle declares.
pub fn declared_parts(inventory: &Inventory) -> &[Part] {
    inventory
        .declared
        .status
        .as_ref()
        .map_or(&[], |view| view.parts.as_slice())
}

/// Reads the release's objects of the kinds its parts are (up to 8 at once) and finds its parts.
/// An object that cannot be read is a gap, never a failure of the whole.
pub async fn release_parts(cluster: &Cluster, inventory: &Inventory) -> (ReleaseParts, Vec<Gap>) {
    let parts = declared_parts(inventory);
    let wanted: Vec<_> = inventory
        .objects
        .iter()
        .filter(|o| parts.iter().any(|p| p.kind.as_str() == o.id.kind))
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
    (find_parts(&objects, parts), gaps)
}

/// Finds the declared parts among a release's objects (typed, with their kind): the first object
/// of the part's kind its selector matches. Pure.
pub fn find_parts(objects: &[Value], parts: &[Part]) -> ReleaseParts {
    ReleaseParts(
        parts
            .iter()
            .map(|part| {
                let found = objects
                    .iter()
                    .filter(|o| o["kind"] == part.kind.as_str())
                    .find(|o| selects(&part.selector, o))
                    .and_then(|o| match part.kind {
                        PartKind::Ingress => endpoint(o).map(Found::Endpoint),
                        PartKind::Service => service_part(o).map(Found::Service),
                        PartKind::Deployment => Some(Found::Workload(workload(o, part))),
                    });
                (part.name.clone(), found)
            })
            .collect(),
    )
}

/// Whether `object`'s labels match a selector of `key=value`, `key!=value`, `key` and `!key`
/// terms (set-based terms match nothing here).
fn selects(selector: &str, object: &Value) -> bool {
    let labels = &object["metadata"]["labels"];
    selector.split(',').map(str::trim).all(|term| {
        if let Some((key, value)) = term.split_once("!=") {
            labels[key.trim()].as_str() != Some(value.trim())
        } else if let Some((key, value)) = term.split_once("==").or_else(|| term.split_once('=')) {
            labels[key.trim()].as_str() == Some(value.trim())
        } else if let Some(key) = term.strip_prefix('!') {
            labels[key.trim()].is_null()
        } else {
            !term.contains(' ') && labels[term].is_string()
        }
    })
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

fn workload(deployment: &Value, part: &Part) -> Workload {
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
    Workload {
        deployment: object_subject(deployment),
        image,
        version,
        ready_replicas: deployment["status"]["readyReplicas"].as_i64().unwrap_or(0),
        replicas: deployment["spec"]["replicas"].as_i64().unwrap_or(1),
        title: part.title.clone().unwrap_or_else(|| part.name.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NAME_LABEL: &str = "app.kubernetes.io/name";

    fn parts() -> Vec<Part> {
        serde_yaml_ng::from_str(
            "- {name: web, kind: Ingress, selector: app.kubernetes.io/component=web}\n\
             - {name: metrics, kind: Service, selector: app.kubernetes.io/name=metrics}\n\
             - {name: dashboards, kind: Service, selector: app.kubernetes.io/name=dashboards}\n\
             - {name: operator, kind: Deployment, selector: app.kubernetes.io/name=widget-operator, title: Widgets}\n",
        )
        .unwrap()
    }

    #[test]
    fn finds_each_declared_part_by_its_labels() {
        let objects = vec![
            json!({"kind": "Ingress", "metadata": {"namespace": "web", "name": "other"}}),
            json!({"kind": "Ingress", "metadata": {"namespace": "web", "name": "widgets",
                    "labels": {"app.kubernetes.io/component": "web"}},
                "spec": {"tls": [{"hosts": ["widgets.example.com"]}],
                    "rules": [{"host": "widgets.example.com", "http": {"paths": [{"path": "/api"}]}}]}}),
            json!({"kind": "Service", "metadata": {"namespace": "obs", "name": "metrics",
                    "labels": {NAME_LABEL: "metrics"}}, "spec": {"ports": [{"port": 9090}]}}),
            json!({"kind": "Deployment", "metadata": {"namespace": "sys", "name": "op",
                    "labels": {NAME_LABEL: "widget-operator"}},
                "spec": {"replicas": 1, "template": {"spec": {"containers": [
                    {"image": "registry:5000/widgets/operator:v1.7.1"}]}}},
                "status": {"readyReplicas": 1}}),
        ];
        let parts = find_parts(&objects, &parts());
        assert_eq!(
            parts.prometheus_service("metrics"),
            Some(PrometheusService {
                namespace: "obs".into(),
                name: "metrics".into(),
                port: 9090
            })
        );
        let json = serde_json::to_value(&parts).unwrap();
        assert_eq!(json["web"]["url"], "https://widgets.example.com/api");
        assert!(json["dashboards"].is_null());
        assert_eq!(json["operator"]["version"], "v1.7.1");
        assert_eq!(json["operator"]["readyReplicas"], 1);
        let names: Vec<&str> = parts.0.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["web", "metrics", "dashboards", "operator"]);
    }

    #[test]
    fn an_image_without_a_tag_has_no_version() {
        let deployment = json!({"kind": "Deployment", "metadata": {"namespace": "a", "name": "op"},
            "spec": {"template": {"spec": {"containers": [{"image": "registry:5000/operator"}]}}}});
        assert_eq!(workload(&deployment, &parts()[3]).version, "unknown");
    }

    #[test]
    fn selectors_match_labels() {
        let object = json!({"metadata": {"labels": {"a": "1", "b": "2"}}});
        assert!(selects("a=1,b", &object));
        assert!(selects("a==1,!c,b!=3", &object));
        assert!(!selects("a=2", &object));
        assert!(!selects("c", &object));
    }
}
