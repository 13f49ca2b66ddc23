//! Rendered Kubernetes objects: identity, the plane labels, kind priority and stable ordering.

use std::cmp::Ordering;
use std::fmt;

use serde_json::{Map, Value};

use crate::kinds::apply_rank;

/// The label every object plane manages carries.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const RELEASE_LABEL: &str = "plane.datalayer.io/release";
/// The namespace of the record of the release an object belongs to. With [`RELEASE_LABEL`] it is
/// the release's identity: release names are unique per namespace, so two releases of one name
/// (a platform and a team instance) are two owners.
pub const RELEASE_NAMESPACE_LABEL: &str = "plane.datalayer.io/release-namespace";
pub const ADDON_LABEL: &str = "plane.datalayer.io/addon";
pub const COMPONENT_LABEL: &str = "plane.datalayer.io/component";
/// The label of the ConfigMap that records a release an engine runs, with the release's name.
pub const ENGINE_RELEASE_LABEL: &str = "plane.datalayer.io/engine-release";
/// The label that names the engine a release is rendered for (`argocd`, `flux`).
pub const ENGINE_LABEL: &str = "plane.datalayer.io/engine";
/// The key of the release record in that ConfigMap.
pub const ENGINE_RECORD_KEY: &str = "release.json";
/// On a Namespace, CRD or PersistentVolumeClaim: `"true"` lets `up` prune it.
pub const PRUNE_ANNOTATION: &str = "plane.datalayer.io/prune";
/// On a Secret without data: the keys `up` generates once; `template` never prints it.
pub const GENERATE_ANNOTATION: &str = "plane.datalayer.io/generate";

/// Which object this is: apiVersion, kind, namespace and name. The one way plane names an
/// object, rendered, recorded, planned or waited for; its `Display` is the subject
/// `Kind/namespace/name` (`Kind/name` when cluster-scoped).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
}

/// What makes two references the same object: group, kind, namespace and name (an object is
/// the same whichever version of its group it is read in).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    pub group: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectKey {
    /// The key of the object `name` of `kind` in `api_version`'s group.
    pub fn of(api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> Self {
        Self {
            group: group_of(api_version).to_owned(),
            kind: kind.to_owned(),
            namespace: namespace.map(str::to_owned),
            name: name.to_owned(),
        }
    }
}

impl ObjectKey {
    /// The key of an object as JSON with its `apiVersion` and `kind`; `None` without them.
    pub fn of_object(object: &Value) -> Option<Self> {
        let text = |p: &str| object.pointer(p).and_then(Value::as_str);
        Some(Self::of(
            text("/apiVersion")?,
            text("/kind")?,
            text("/metadata/namespace"),
            text("/metadata/name")?,
        ))
    }
}

/// The API group of an `apiVersion` (`""` for core).
pub fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(group, _)| group)
}

impl ObjectRef {
    /// The reference of an object as JSON; `None` without `apiVersion`, `kind` or a name.
    pub fn of(object: &Value) -> Option<Self> {
        let text = |p: &str| object.pointer(p).and_then(Value::as_str).map(str::to_owned);
        Some(Self {
            api_version: text("/apiVersion")?,
            kind: text("/kind")?,
            namespace: text("/metadata/namespace"),
            name: text("/metadata/name")?,
        })
    }

    /// The API group (`""` for core).
    pub fn group(&self) -> &str {
        group_of(&self.api_version)
    }

    /// Objects are the same object when group, kind, namespace and name agree (versions may differ).
    pub fn same_as(&self, other: &Self) -> bool {
        self.group() == other.group()
            && self.kind == other.kind
            && self.namespace == other.namespace
            && self.name == other.name
    }

    /// The key of [`ObjectRef::same_as`], for maps and sets.
    pub fn key(&self) -> ObjectKey {
        ObjectKey::of(
            &self.api_version,
            &self.kind,
            self.namespace.as_deref(),
            &self.name,
        )
    }

    /// The subject, `Kind/namespace/name` (`Kind/name` when cluster-scoped).
    pub fn subject(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for ObjectRef {
    /// `Kind/namespace/name`, or `Kind/name` when cluster-scoped.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}/{ns}/{}", self.kind, self.name),
            None => write!(f, "{}/{}", self.kind, self.name),
        }
    }
}

impl Ord for ObjectRef {
    fn cmp(&self, other: &Self) -> Ordering {
        apply_rank(&self.kind)
            .cmp(&apply_rank(&other.kind))
            .then_with(|| self.kind.cmp(&other.kind))
            .then_with(|| self.namespace.cmp(&other.namespace))
            .then_with(|| self.name.cmp(&other.name))
            .then_with(|| self.api_version.cmp(&other.api_version))
    }
}

impl PartialOrd for ObjectRef {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// One rendered object and where it came from.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Object {
    pub id: ObjectRef,
    pub component: String,
    /// The template that rendered it, as shown to users.
    pub template: String,
    pub value: Value,
}

impl Object {
    /// The keys of a generated Secret, or `None` for any other object.
    pub fn generated_keys(&self) -> Option<Vec<String>> {
        if self.id.kind != "Secret" {
            return None;
        }
        let keys = self
            .value
            .pointer("/metadata/annotations")?
            .get(GENERATE_ANNOTATION)?
            .as_str()?;
        Some(
            keys.split(',')
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .map(str::to_owned)
                .collect(),
        )
    }
}

/// A stable digest of a value: SHA-256 of its JSON (`serde_json` sorts keys), in hex.
pub fn digest(value: &Value) -> String {
    use sha2::Digest as _;
    hex(&sha2::Sha256::digest(value.to_string().as_bytes()))
}

/// Bytes in lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

/// A release's identity, everywhere plane decides what is whose: the namespace that holds its
/// record (the state namespace, or a team instance's own) and its name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReleaseId {
    pub namespace: String,
    pub name: String,
}

/// Whose an object says it is, by plane's labels, seen from one release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This release's: both labels say so.
    Ours,
    /// This release's name without a namespace: labelled by a plane that did not write the
    /// namespace yet. It is this release's only if its record lists it; `up` then labels it
    /// anew.
    Unplaced,
    /// Another plane release's; its namespace when the labels say it.
    Other {
        name: String,
        namespace: Option<String>,
    },
    /// No plane release's.
    NotPlane,
}

impl ReleaseId {
    pub fn new(namespace: &str, name: &str) -> Self {
        Self {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }
    }

    /// What `object`'s labels say of whose it is.
    pub fn claim(&self, object: &Value) -> Claim {
        let labels = &object["metadata"]["labels"];
        let label = |key: &str| labels[key].as_str().filter(|v| !v.is_empty());
        let Some(name) = label(RELEASE_LABEL) else {
            return Claim::NotPlane;
        };
        match label(RELEASE_NAMESPACE_LABEL) {
            Some(namespace) if name == self.name && namespace == self.namespace => Claim::Ours,
            None if name == self.name => Claim::Unplaced,
            namespace => Claim::Other {
                name: name.to_owned(),
                namespace: namespace.map(str::to_owned),
            },
        }
    }

    /// Whether `object` is this release's by its labels, counting the labels of earlier plane
    /// versions (no namespace) as this release's: for checks that must not call the release's
    /// own objects foreign (what else lives in a namespace it would delete).
    pub fn labels_match(&self, object: &Value) -> bool {
        matches!(self.claim(object), Claim::Ours | Claim::Unplaced)
    }
}

impl fmt::Display for ReleaseId {
    /// `name (namespace ns)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (namespace {})", self.name, self.namespace)
    }
}

/// Sets plane's ownership labels on an object's metadata: the release's identity, its bundle
/// and component.
pub fn label(value: &mut Value, release: &ReleaseId, addon: &str, component: &str) {
    let Some(metadata) = value.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    let labels = metadata
        .entry("labels")
        .or_insert_with(|| Value::Object(Map::new()));
    if !labels.is_object() {
        *labels = Value::Object(Map::new());
    }
    if let Some(labels) = labels.as_object_mut() {
        labels.insert(MANAGED_BY.into(), "plane".into());
        labels.insert(RELEASE_LABEL.into(), release.name.clone().into());
        labels.insert(
            RELEASE_NAMESPACE_LABEL.into(),
            release.namespace.clone().into(),
        );
        labels.insert(ADDON_LABEL.into(), addon.into());
        labels.insert(COMPONENT_LABEL.into(), component.into());
    }
}

/// The (host, path) pairs an Ingress serves (`*` for a rule without a host).
pub fn ingress_routes(ingress: &Value) -> Vec<(String, String)> {
    let mut routes = Vec::new();
    for rule in ingress["spec"]["rules"].as_array().into_iter().flatten() {
        let host = rule["host"].as_str().unwrap_or("*").to_owned();
        for path in rule["http"]["paths"].as_array().into_iter().flatten() {
            routes.push((
                host.clone(),
                path["path"].as_str().unwrap_or("/").to_owned(),
            ));
        }
    }
    routes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(kind: &str, ns: Option<&str>, name: &str) -> ObjectRef {
        ObjectRef {
            api_version: "v1".into(),
            kind: kind.into(),
            namespace: ns.map(str::to_owned),
            name: name.into(),
        }
    }

    #[test]
    fn orders_by_kind_priority_then_namespace_then_name() {
        let mut ids = [
            id("Widget", Some("a"), "r"),
            id("Deployment", Some("b"), "x"),
            id("Deployment", Some("a"), "y"),
            id("Namespace", None, "z"),
            id("CustomResourceDefinition", None, "c"),
            id("Service", Some("a"), "s"),
        ];
        ids.sort();
        let shown: Vec<String> = ids.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "Namespace/z",
                "CustomResourceDefinition/c",
                "Service/a/s",
                "Deployment/a/y",
                "Deployment/b/x",
                "Widget/a/r"
            ]
        );
    }

    #[test]
    fn a_release_is_its_name_and_its_records_namespace() {
        let platform = ReleaseId::new("plane-system", "r");
        let object = |labels: Value| serde_json::json!({"metadata": {"labels": labels}});
        let mut ours = object(serde_json::json!({}));
        label(&mut ours, &platform, "a", "c");
        assert_eq!(platform.claim(&ours), Claim::Ours);
        let team = ReleaseId::new("team-a", "r");
        assert_eq!(
            team.claim(&ours),
            Claim::Other {
                name: "r".into(),
                namespace: Some("plane-system".into())
            }
        );
        let earlier = object(serde_json::json!({RELEASE_LABEL: "r"}));
        assert_eq!(team.claim(&earlier), Claim::Unplaced);
        assert!(team.labels_match(&earlier));
        assert_eq!(
            team.claim(&object(serde_json::json!({RELEASE_LABEL: "s"}))),
            Claim::Other {
                name: "s".into(),
                namespace: None
            }
        );
        assert_eq!(team.claim(&object(serde_json::json!({}))), Claim::NotPlane);
    }

    #[test]
    fn digests_are_stable_and_sensitive() {
        assert_eq!(
            digest(&serde_json::json!({"a": 1, "b": 2})),
            digest(&serde_json::json!({"b": 2, "a": 1}))
        );
        assert_ne!(
            digest(&serde_json::json!({"a": 1})),
            digest(&serde_json::json!({"a": 2}))
        );
    }
}
