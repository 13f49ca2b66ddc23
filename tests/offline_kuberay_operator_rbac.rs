//! The KubeRay operator's permissions in the rendered bundle, held to what the pinned KubeRay
//! release's operator role grants (`tests/fixtures/kuberay/operator-role.tsv`), for every
//! feature-gate and watched-namespace setting that changes them.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{plane, text};
use serde_json::Value;

/// (api group, resource, verb); the core group is "".
type Permission = (String, String, String);

/// Where a permission holds: `None` cluster-wide, or in one namespace.
type Scope = Option<String>;

/// What upstream grants that only a feature gate of the bundle needs, with the gate.
const GATED: &[(&str, &str, &str, &str)] = &[
    ("cert-manager.io", "*", "*", "RayClusterMTLS"),
    ("", "secrets", "delete", "RayClusterMTLS"),
    ("", "secrets", "update", "RayClusterMTLS"),
];

/// Resources that are cluster-scoped: a Role cannot grant them.
const CLUSTER_SCOPED: &[(&str, &str)] = &[("networking.k8s.io", "ingressclasses")];

/// The operator's leader election (the upstream chart's leader-election Role), in its namespace.
const LEADER_ELECTION: &[(&str, &str, &[&str])] = &[
    (
        "",
        "configmaps",
        &[
            "create", "delete", "get", "list", "patch", "update", "watch",
        ],
    ),
    ("", "events", &["create"]),
    (
        "coordination.k8s.io",
        "leases",
        &["create", "get", "list", "update"],
    ),
];

const OPERATOR_NAMESPACE: &str = "ray-system";

fn upstream() -> BTreeSet<Permission> {
    common::upstream_operator_role().into_iter().collect()
}

/// The gate a permission needs, if any.
fn gate_of(p: &Permission) -> Option<&'static str> {
    GATED
        .iter()
        .find(|(g, r, v, _)| *g == p.0 && (*r == "*" || *r == p.1) && (*v == "*" || *v == p.2))
        .map(|(_, _, _, gate)| *gate)
}

fn cluster_scoped(p: &Permission) -> bool {
    CLUSTER_SCOPED.iter().any(|(g, r)| *g == p.0 && *r == p.1)
}

fn render(sets: &[&str]) -> Vec<Value> {
    let mut cmd = plane();
    cmd.args([
        "template",
        "datalayer-ray",
        "--profile",
        "local",
        "-o",
        "json",
    ]);
    for set in sets {
        cmd.args(["--set", set]);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{sets:?}: {}", text(&out.stderr));
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    list["items"].as_array().unwrap().clone()
}

/// Every permission the operator's ServiceAccount gets from the rendered (Cluster)Roles and
/// their bindings, by scope. Wildcards are kept as they are written.
fn granted(objects: &[Value]) -> BTreeMap<Scope, BTreeSet<Permission>> {
    let is_operator = |binding: &Value| {
        binding["subjects"].as_array().is_some_and(|subjects| {
            subjects.iter().any(|s| {
                s["kind"] == "ServiceAccount"
                    && s["name"] == "kuberay-operator"
                    && s["namespace"] == OPERATOR_NAMESPACE
            })
        })
    };
    let find = |kind: &str, namespace: Option<&str>, name: &str| {
        objects.iter().find(|o| {
            o["kind"] == kind
                && o["metadata"]["name"] == name
                && o["metadata"]["namespace"].as_str() == namespace
        })
    };
    let mut out: BTreeMap<Scope, BTreeSet<Permission>> = BTreeMap::new();
    for binding in objects.iter().filter(|o| is_operator(o)) {
        let namespace = binding["metadata"]["namespace"].as_str();
        let role_name = binding["roleRef"]["name"].as_str().unwrap();
        let (role, scope) = match binding["kind"].as_str() {
            Some("ClusterRoleBinding") => (find("ClusterRole", None, role_name), None),
            Some("RoleBinding") => {
                let role = match binding["roleRef"]["kind"].as_str() {
                    Some("Role") => find("Role", namespace, role_name),
                    _ => find("ClusterRole", None, role_name),
                };
                (role, namespace.map(str::to_owned))
            }
            _ => continue,
        };
        let role = role.unwrap_or_else(|| panic!("{binding} binds a role the render lacks"));
        let grants = out.entry(scope).or_default();
        for rule in role["rules"].as_array().into_iter().flatten() {
            let list = |key: &str| -> Vec<String> {
                rule[key]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|v| v.as_str().unwrap().to_owned())
                    .collect()
            };
            for group in list("apiGroups") {
                for resource in list("resources") {
                    for verb in list("verbs") {
                        grants.insert((group.clone(), resource.clone(), verb));
                    }
                }
            }
        }
    }
    out
}

/// What is wrong with the operator's permissions in `objects`, given the gates switched on and
/// the namespaces it watches (empty: all): a line per missing or extra permission.
fn problems(objects: &[Value], gates: &[&str], watched: &[&str]) -> Vec<String> {
    let granted = granted(objects);
    let holds = |scope: &Scope, p: &Permission| {
        granted.get(scope).is_some_and(|set| {
            set.iter().any(|(g, r, v)| {
                (g == "*" || *g == p.0) && (r == "*" || *r == p.1) && (v == "*" || *v == p.2)
            })
        })
    };
    let needed: BTreeSet<Permission> = upstream()
        .into_iter()
        .filter(|p| gate_of(p).is_none_or(|gate| gates.contains(&gate)))
        .collect();
    let mut problems = Vec::new();
    // Everything upstream grants (that a gate switched on needs) is granted where it is needed.
    for p in &needed {
        let scopes: Vec<Scope> = if watched.is_empty() || cluster_scoped(p) {
            vec![None]
        } else {
            watched.iter().map(|ns| Some((*ns).to_owned())).collect()
        };
        for scope in scopes {
            if !holds(&scope, p) && !holds(&None, p) {
                problems.push(format!("missing: {}", described(p, &scope)));
            }
        }
    }
    // Nothing upstream does not grant, or that no gate switched on needs; with watched
    // namespaces, nothing cluster-wide but what a Role cannot grant.
    let leader: BTreeSet<Permission> = LEADER_ELECTION
        .iter()
        .flat_map(|(g, r, verbs)| {
            verbs
                .iter()
                .map(|v| ((*g).to_owned(), (*r).to_owned(), (*v).to_owned()))
        })
        .collect();
    for (scope, set) in &granted {
        for p in set {
            let allowed = needed.contains(p)
                && (scope.is_some() || watched.is_empty() || cluster_scoped(p))
                && scope
                    .as_ref()
                    .is_none_or(|ns| watched.contains(&ns.as_str()) || ns == OPERATOR_NAMESPACE)
                || scope.as_deref() == Some(OPERATOR_NAMESPACE) && leader.contains(p);
            if !allowed {
                problems.push(format!("extra: {}", described(p, scope)));
            }
        }
    }
    problems
}

/// `list persistentvolumeclaims cluster-wide`, `create events.events.k8s.io in default`.
fn described((group, resource, verb): &Permission, scope: &Scope) -> String {
    let group = if group.is_empty() {
        String::new()
    } else {
        format!(".{group}")
    };
    let place = scope
        .as_ref()
        .map_or("cluster-wide".into(), |ns| format!("in {ns}"));
    format!("{verb} {resource}{group} {place}")
}

#[test]
fn the_operator_gets_what_the_pinned_kuberay_needs_for_every_setting() {
    let mut checked = 0;
    for mtls in [false, true] {
        for cron in [false, true] {
            for watched in [&[][..], &["ray-system", "default"][..]] {
                let mut sets = vec![
                    format!("kuberay.featureGates.RayClusterMTLS={mtls}"),
                    format!("kuberay.featureGates.RayCronJob={cron}"),
                ];
                if !watched.is_empty() {
                    sets.push(format!("kuberay.watchNamespaces=[{}]", watched.join(", ")));
                }
                let sets: Vec<&str> = sets.iter().map(String::as_str).collect();
                let gates: Vec<&str> = [("RayClusterMTLS", mtls), ("RayCronJob", cron)]
                    .into_iter()
                    .filter(|(_, on)| *on)
                    .map(|(gate, _)| gate)
                    .collect();
                let found = problems(&render(&sets), &gates, watched);
                assert!(found.is_empty(), "{sets:?}:\n{}", found.join("\n"));
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 8);
}

#[test]
fn the_check_reports_a_missing_and_an_extra_permission() {
    let mut objects = render(&[]);
    assert!(problems(&objects, &[], &[]).is_empty());
    let role = objects
        .iter_mut()
        .find(|o| o["kind"] == "ClusterRole" && o["metadata"]["name"] == "kuberay-operator")
        .unwrap();
    let rules = role["rules"].as_array_mut().unwrap();
    // Drop persistentvolumeclaims from the rule that grants it; add core events back.
    for rule in rules.iter_mut() {
        if let Some(resources) = rule["resources"].as_array_mut() {
            resources.retain(|r| r != "persistentvolumeclaims");
        }
    }
    rules
        .push(serde_json::json!({"apiGroups": [""], "resources": ["events"], "verbs": ["create"]}));
    let found = problems(&objects, &[], &[]);
    assert!(
        found.contains(&"missing: list persistentvolumeclaims cluster-wide".to_owned())
            && found.contains(&"extra: create events cluster-wide".to_owned()),
        "{found:#?}"
    );
    // Watching some namespaces, the whole ClusterRole is more than the operator needs there.
    let found = problems(&render(&[]), &[], &["default"]);
    assert!(
        found.iter().any(|p| p == "extra: list pods cluster-wide"),
        "{found:#?}"
    );
}
