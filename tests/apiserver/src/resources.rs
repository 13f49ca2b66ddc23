//! The resource types the server knows: a table of built-in kinds, the kinds CRDs define, and the
//! discovery documents built from them.

use crate::util::{api_version, get_str};
use serde_json::{Value, json};
use std::sync::LazyLock;

/// One served resource: a group/version/plural with its kind and scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceType {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    /// Whether writes to the main resource leave `status` alone (a `/status` subresource exists).
    pub status_subresource: bool,
    /// Review kinds (SelfSubjectAccessReview, ...) are create-only and never stored.
    pub create_only: bool,
    /// Defined by a CustomResourceDefinition.
    pub custom: bool,
    /// `additionalPrinterColumns` of a CRD version: (name, type, jsonPath).
    pub printer_columns: Vec<(String, String, String)>,
}

impl ResourceType {
    pub fn api_version(&self) -> String {
        api_version(&self.group, &self.version)
    }

    pub fn verbs(&self) -> Vec<&'static str> {
        if self.create_only {
            vec!["create"]
        } else {
            vec![
                "create",
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "update",
                "watch",
            ]
        }
    }
}

/// (group, version, kind, plural, namespaced, status subresource, short names)
type Row = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    bool,
    bool,
    &'static [&'static str],
);

const BUILTIN: &[Row] = &[
    ("", "v1", "Namespace", "namespaces", false, true, &["ns"]),
    (
        "",
        "v1",
        "ServiceAccount",
        "serviceaccounts",
        true,
        false,
        &["sa"],
    ),
    ("", "v1", "ConfigMap", "configmaps", true, false, &["cm"]),
    ("", "v1", "Secret", "secrets", true, false, &[]),
    ("", "v1", "Service", "services", true, true, &["svc"]),
    ("", "v1", "Endpoints", "endpoints", true, false, &["ep"]),
    (
        "",
        "v1",
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        true,
        true,
        &["pvc"],
    ),
    (
        "",
        "v1",
        "PersistentVolume",
        "persistentvolumes",
        false,
        true,
        &["pv"],
    ),
    ("", "v1", "Pod", "pods", true, true, &["po"]),
    ("", "v1", "Event", "events", true, false, &["ev"]),
    ("", "v1", "Node", "nodes", false, true, &["no"]),
    (
        "",
        "v1",
        "ResourceQuota",
        "resourcequotas",
        true,
        true,
        &["quota"],
    ),
    (
        "",
        "v1",
        "LimitRange",
        "limitranges",
        true,
        false,
        &["limits"],
    ),
    (
        "apps",
        "v1",
        "Deployment",
        "deployments",
        true,
        true,
        &["deploy"],
    ),
    (
        "apps",
        "v1",
        "StatefulSet",
        "statefulsets",
        true,
        true,
        &["sts"],
    ),
    ("apps", "v1", "DaemonSet", "daemonsets", true, true, &["ds"]),
    (
        "apps",
        "v1",
        "ReplicaSet",
        "replicasets",
        true,
        true,
        &["rs"],
    ),
    (
        "apps",
        "v1",
        "ControllerRevision",
        "controllerrevisions",
        true,
        false,
        &[],
    ),
    ("batch", "v1", "Job", "jobs", true, true, &[]),
    ("batch", "v1", "CronJob", "cronjobs", true, true, &["cj"]),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "Role",
        "roles",
        true,
        false,
        &[],
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        "rolebindings",
        true,
        false,
        &[],
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRole",
        "clusterroles",
        false,
        false,
        &[],
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        false,
        false,
        &[],
    ),
    (
        "networking.k8s.io",
        "v1",
        "Ingress",
        "ingresses",
        true,
        true,
        &["ing"],
    ),
    (
        "networking.k8s.io",
        "v1",
        "IngressClass",
        "ingressclasses",
        false,
        false,
        &[],
    ),
    (
        "networking.k8s.io",
        "v1",
        "NetworkPolicy",
        "networkpolicies",
        true,
        false,
        &["netpol"],
    ),
    (
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        false,
        true,
        &["crd", "crds"],
    ),
    (
        "coordination.k8s.io",
        "v1",
        "Lease",
        "leases",
        true,
        false,
        &[],
    ),
    (
        "authorization.k8s.io",
        "v1",
        "SelfSubjectAccessReview",
        "selfsubjectaccessreviews",
        false,
        false,
        &[],
    ),
    (
        "authorization.k8s.io",
        "v1",
        "SelfSubjectRulesReview",
        "selfsubjectrulesreviews",
        false,
        false,
        &[],
    ),
    (
        "policy",
        "v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        true,
        true,
        &["pdb"],
    ),
    (
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        true,
        true,
        &["hpa"],
    ),
    (
        "storage.k8s.io",
        "v1",
        "StorageClass",
        "storageclasses",
        false,
        false,
        &["sc"],
    ),
];

/// The built-in resource types, in discovery order.
pub static BUILTINS: LazyLock<Vec<ResourceType>> = LazyLock::new(|| {
    BUILTIN
        .iter()
        .map(
            |&(group, version, kind, plural, namespaced, status, short)| ResourceType {
                group: group.to_owned(),
                version: version.to_owned(),
                kind: kind.to_owned(),
                plural: plural.to_owned(),
                singular: kind.to_lowercase(),
                namespaced,
                short_names: short.iter().map(|s| (*s).to_owned()).collect(),
                categories: if matches!(
                    plural,
                    "pods"
                        | "services"
                        | "deployments"
                        | "statefulsets"
                        | "daemonsets"
                        | "replicasets"
                        | "jobs"
                        | "cronjobs"
                ) {
                    vec!["all".to_owned()]
                } else {
                    Vec::new()
                },
                status_subresource: status,
                create_only: group == "authorization.k8s.io",
                custom: false,
                printer_columns: Vec::new(),
            },
        )
        .collect()
});

/// The resource types one CRD object serves (one per served version).
pub fn from_crd(crd: &Value) -> Vec<ResourceType> {
    let spec = &crd["spec"];
    let Some(group) = get_str(spec, &["group"]) else {
        return Vec::new();
    };
    let names = &spec["names"];
    let (Some(kind), Some(plural)) = (get_str(names, &["kind"]), get_str(names, &["plural"]))
    else {
        return Vec::new();
    };
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    // No clone: KubeRay's CRDs are about a megabyte each, and this runs on every request.
    let Some(versions) = spec["versions"].as_array() else {
        return Vec::new();
    };
    versions
        .iter()
        .filter(|v| v["served"].as_bool().unwrap_or(true))
        .filter_map(|v| {
            let version = v["name"].as_str()?;
            let printer_columns = v["additionalPrinterColumns"]
                .as_array()
                .map(|cols| {
                    cols.iter()
                        .filter(|c| c["priority"].as_i64().unwrap_or(0) == 0)
                        .filter_map(|c| {
                            Some((
                                c["name"].as_str()?.to_owned(),
                                c["type"].as_str().unwrap_or("string").to_owned(),
                                c["jsonPath"].as_str()?.to_owned(),
                            ))
                        })
                        .collect()
                })
                .unwrap_or_default();
            Some(ResourceType {
                group: group.to_owned(),
                version: version.to_owned(),
                kind: kind.to_owned(),
                plural: plural.to_owned(),
                singular: get_str(names, &["singular"])
                    .map_or_else(|| kind.to_lowercase(), str::to_owned),
                namespaced: get_str(spec, &["scope"]) != Some("Cluster"),
                short_names: strings(&names["shortNames"]),
                categories: strings(&names["categories"]),
                status_subresource: v["subresources"].get("status").is_some(),
                create_only: false,
                custom: true,
                printer_columns,
            })
        })
        .collect()
}

/// `/api`.
pub fn api_versions() -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}],
    })
}

/// `/apis`: every non-core group with its versions, the first listed version preferred.
pub fn api_group_list(types: &[ResourceType]) -> Value {
    let groups: Vec<Value> = group_versions(types, false)
        .into_iter()
        .map(|(name, versions)| {
            let vs: Vec<Value> = versions
                .iter()
                .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
                .collect();
            json!({"name": name, "versions": vs, "preferredVersion": vs[0].clone()})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// The core group's versions (`core`) or every other group with its versions, in the order the
/// types list them (the first version is the preferred one).
fn group_versions(types: &[ResourceType], core: bool) -> Vec<(String, Vec<String>)> {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for t in types.iter().filter(|t| t.group.is_empty() == core) {
        match groups.iter_mut().find(|(g, _)| *g == t.group) {
            Some((_, versions)) if !versions.contains(&t.version) => {
                versions.push(t.version.clone());
            }
            Some(_) => {}
            None => groups.push((t.group.clone(), vec![t.version.clone()])),
        }
    }
    groups
}

/// The media type of aggregated discovery (`apidiscovery.k8s.io/v2`), as a client asks for it
/// in `Accept` and the server names it in `Content-Type`.
pub const AGGREGATED_DISCOVERY: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// Aggregated discovery: `/api` (`core`) or `/apis` as one `APIGroupDiscoveryList`, every
/// version of every group with its resources and their subresources.
pub fn aggregated_discovery(types: &[ResourceType], core: bool) -> Value {
    let items: Vec<Value> = group_versions(types, core)
        .into_iter()
        .map(|(group, versions)| {
            let versions: Vec<Value> = versions
                .iter()
                .map(|version| {
                    let resources: Vec<Value> = types
                        .iter()
                        .filter(|t| t.group == group && &t.version == version)
                        .map(|t| {
                            let kind =
                                json!({"group": t.group, "version": t.version, "kind": t.kind});
                            let mut r = json!({
                                "resource": t.plural,
                                "responseKind": kind,
                                "scope": if t.namespaced { "Namespaced" } else { "Cluster" },
                                "singularResource": t.singular,
                                "verbs": t.verbs(),
                            });
                            if !t.short_names.is_empty() {
                                r["shortNames"] = json!(t.short_names);
                            }
                            if !t.categories.is_empty() {
                                r["categories"] = json!(t.categories);
                            }
                            if t.status_subresource {
                                r["subresources"] = json!([{
                                    "subresource": "status",
                                    "responseKind": kind,
                                    "verbs": ["get", "patch", "update"],
                                }]);
                            }
                            r
                        })
                        .collect();
                    json!({"version": version, "resources": resources, "freshness": "Current"})
                })
                .collect();
            let mut metadata = json!({"creationTimestamp": null});
            if !group.is_empty() {
                metadata["name"] = json!(group);
            }
            json!({"metadata": metadata, "versions": versions})
        })
        .collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    })
}

/// `/apis/GROUP` (a single group's `APIGroup`), or `None` when no type has that group.
pub fn api_group(types: &[ResourceType], group: &str) -> Option<Value> {
    let list = api_group_list(types);
    let found = list["groups"]
        .as_array()?
        .iter()
        .find(|g| g["name"] == group)?
        .clone();
    let mut out = found;
    out["kind"] = json!("APIGroup");
    out["apiVersion"] = json!("v1");
    Some(out)
}

/// `/api/v1` or `/apis/GROUP/VERSION`, or `None` when nothing is served there.
pub fn api_resource_list(types: &[ResourceType], group: &str, version: &str) -> Option<Value> {
    let mut resources = Vec::new();
    for t in types
        .iter()
        .filter(|t| t.group == group && t.version == version)
    {
        let mut r = json!({
            "name": t.plural,
            "singularName": t.singular,
            "namespaced": t.namespaced,
            "kind": t.kind,
            "verbs": t.verbs(),
        });
        if !t.short_names.is_empty() {
            r["shortNames"] = json!(t.short_names);
        }
        if !t.categories.is_empty() {
            r["categories"] = json!(t.categories);
        }
        resources.push(r);
        if t.status_subresource {
            resources.push(json!({
                "name": format!("{}/status", t.plural),
                "singularName": "",
                "namespaced": t.namespaced,
                "kind": t.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
    }
    if resources.is_empty() {
        return None;
    }
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": api_version(group, version),
        "resources": resources,
    }))
}

/// Types grouped by `group/version`, for lookups by kind.
pub fn by_kind<'a>(
    types: &'a [ResourceType],
    api_version_str: &str,
    kind: &str,
) -> Option<&'a ResourceType> {
    let (g, v) = crate::util::split_api_version(api_version_str);
    types
        .iter()
        .find(|t| t.group == g && t.version == v && t.kind == kind)
}

/// `/openapi/v3`: one entry per served group/version.
pub fn openapi_v3_root(types: &[ResourceType]) -> Value {
    let mut paths = serde_json::Map::new();
    for t in types {
        let gv = if t.group.is_empty() {
            format!("api/{}", t.version)
        } else {
            format!("apis/{}/{}", t.group, t.version)
        };
        let count = types
            .iter()
            .filter(|x| x.group == t.group && x.version == t.version)
            .count();
        paths.insert(
            gv.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{gv}?hash=plane{count}")}),
        );
    }
    json!({ "paths": paths })
}

/// `/openapi/v3/apis/GROUP/VERSION`: paths only, no schemas. Enough for kubectl to see that
/// PATCH takes `fieldValidation`, so it leaves validation to the server.
pub fn openapi_v3_group_version(
    types: &[ResourceType],
    group: &str,
    version: &str,
) -> Option<Value> {
    let mut paths = serde_json::Map::new();
    let param = |name: &str| json!({"name": name, "in": "query", "schema": {"type": "string"}, "uniqueItems": true});
    for t in types
        .iter()
        .filter(|t| t.group == group && t.version == version)
    {
        let prefix = if group.is_empty() {
            format!("/api/{version}")
        } else {
            format!("/apis/{group}/{version}")
        };
        let path = if t.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", t.plural)
        } else {
            format!("{prefix}/{}/{{name}}", t.plural)
        };
        let gvk = json!({"group": group, "version": version, "kind": t.kind});
        let op = |verb: &str| {
            json!({
                "operationId": format!("{verb}{}", t.kind),
                "x-kubernetes-action": verb,
                "x-kubernetes-group-version-kind": gvk,
                "parameters": [param("dryRun"), param("fieldManager"), param("fieldValidation"), param("force")],
                "responses": {"200": {"description": "OK"}},
            })
        };
        paths.insert(
            path,
            json!({"get": op("get"), "put": op("put"), "patch": op("patch"), "delete": op("delete")}),
        );
    }
    if paths.is_empty() {
        return None;
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.35.0"},
        "paths": paths,
        "components": {"schemas": {}},
    }))
}
