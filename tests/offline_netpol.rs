//! The datalayer-ray NetworkPolicies, judged from the rendered objects alone: an evaluator of
//! Kubernetes NetworkPolicy semantics (with its own unit tests), the pods a render would run plus
//! synthetic neighbours, and the allow matrix of README asserted flow by flow.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use assert_cmd::Command;

mod common;
use serde_json::{Value, json};

use common::netpol::{Cluster, Pod, labels, pod, selects, template_pod};

fn policy(ns: &str, spec: Value) -> Value {
    let mut p = json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                       "metadata": {"name": "p", "namespace": ns}});
    p["spec"] = spec;
    p
}

// --- the evaluator's own semantics ---------------------------------------------------------------

mod semantics {
    use super::*;

    fn web() -> Pod {
        pod("web", "shop", &[("app", "web")], &[("http", 8080)])
    }
    fn db() -> Pod {
        pod("db", "shop", &[("app", "db")], &[("sql", 5432)])
    }
    fn outsider() -> Pod {
        pod("outsider", "elsewhere", &[("app", "web")], &[])
    }

    #[test]
    fn without_policies_everything_flows() {
        let c = Cluster::new(vec![]);
        assert!(c.allows(&outsider(), &web(), 8080, "TCP"));
        assert!(c.allows(&web(), &db(), 1, "UDP"));
    }

    #[test]
    fn a_selecting_policy_without_rules_isolates_only_its_pods() {
        let c = Cluster::new(vec![policy(
            "shop",
            json!({"podSelector": {"matchLabels": {"app": "db"}}, "policyTypes": ["Ingress"]}),
        )]);
        assert!(!c.allows(&web(), &db(), 5432, "TCP"));
        assert!(c.allows(&db(), &web(), 8080, "TCP"), "web is not selected");
        // Ingress isolation does not limit what db sends.
        assert!(c.allows(&db(), &outsider(), 80, "TCP"));
    }

    #[test]
    fn a_lone_pod_selector_peer_means_the_policys_namespace() {
        let c = Cluster::new(vec![policy(
            "shop",
            json!({"podSelector": {}, "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "web"}}}]}]}),
        )]);
        assert!(c.allows(&web(), &db(), 5432, "TCP"));
        assert!(
            !c.allows(&outsider(), &db(), 5432, "TCP"),
            "same labels, other namespace"
        );
    }

    #[test]
    fn namespace_and_pod_selector_in_one_peer_both_hold_in_two_peers_either() {
        let and = json!([{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "elsewhere"}},
                          "podSelector": {"matchLabels": {"app": "api"}}}]);
        let or = json!([{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "elsewhere"}}},
                         {"podSelector": {"matchLabels": {"app": "api"}}}]);
        let c_and = Cluster::new(vec![policy(
            "shop",
            json!({"podSelector": {}, "ingress": [{"from": and}]}),
        )]);
        let c_or = Cluster::new(vec![policy(
            "shop",
            json!({"podSelector": {}, "ingress": [{"from": or}]}),
        )]);
        let outsider = outsider(); // app=web in elsewhere
        assert!(!c_and.allows(&outsider, &db(), 5432, "TCP"));
        assert!(c_or.allows(&outsider, &db(), 5432, "TCP"));
        let api = pod("api", "elsewhere", &[("app", "api")], &[]);
        assert!(c_and.allows(&api, &db(), 5432, "TCP"));
        // namespaceSelector {} is every namespace.
        let any_ns = Cluster::new(vec![policy(
            "shop",
            json!({"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "web"}}}]}]}),
        )]);
        assert!(any_ns.allows(&outsider, &db(), 5432, "TCP"));
        assert!(!any_ns.allows(&api, &db(), 5432, "TCP"));
    }

    #[test]
    fn empty_from_admits_every_source_but_ports_still_bind() {
        let c = Cluster::new(vec![policy(
            "shop",
            json!({"podSelector": {"matchLabels": {"app": "web"}}, "ingress": [{"ports": [{"port": 8080}]}]}),
        )]);
        assert!(c.allows(&outsider(), &web(), 8080, "TCP"));
        assert!(!c.allows(&outsider(), &web(), 8081, "TCP"));
        let none = Cluster::new(vec![policy(
            "shop",
            json!({"podSelector": {"matchLabels": {"app": "web"}}, "ingress": [{"from": []}]}),
        )]);
        assert!(none.allows(&outsider(), &web(), 9, "UDP"));
    }

    #[test]
    fn named_ports_resolve_on_the_destination_and_protocol_defaults_to_tcp() {
        let c = Cluster::new(vec![policy(
            "shop",
            json!({"podSelector": {}, "ingress": [{"ports": [{"port": "http"}, {"port": 53, "protocol": "UDP"}, {"port": 9000, "endPort": 9010}]}]}),
        )]);
        assert!(c.allows(&outsider(), &web(), 8080, "TCP"));
        assert!(!c.allows(&outsider(), &web(), 8081, "TCP"));
        assert!(
            !c.allows(&outsider(), &db(), 8080, "TCP"),
            "db has no port named http"
        );
        assert!(!c.allows(&outsider(), &web(), 8080, "UDP"));
        assert!(c.allows(&outsider(), &web(), 53, "UDP"));
        assert!(!c.allows(&outsider(), &web(), 53, "TCP"));
        assert!(c.allows(&outsider(), &web(), 9005, "TCP"));
        assert!(!c.allows(&outsider(), &web(), 9011, "TCP"));
    }

    #[test]
    fn policies_add_up() {
        let only_web = json!({"podSelector": {}, "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "web"}}}]}]});
        let only_elsewhere = json!({"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "elsewhere"}}}]}]});
        let one = Cluster::new(vec![policy("shop", only_web.clone())]);
        let both = Cluster::new(vec![
            policy("shop", only_web),
            policy("shop", only_elsewhere),
        ]);
        assert!(!one.allows(&outsider(), &db(), 5432, "TCP"));
        assert!(both.allows(&outsider(), &db(), 5432, "TCP"));
        assert!(both.allows(&web(), &db(), 5432, "TCP"));
        // A policy of another namespace never selects shop's pods.
        let foreign = Cluster::new(vec![policy(
            "elsewhere",
            json!({"podSelector": {}, "policyTypes": ["Ingress"]}),
        )]);
        assert!(foreign.allows(&web(), &db(), 5432, "TCP"));
        assert!(!foreign.allows(&web(), &outsider(), 1, "TCP"));
    }

    #[test]
    fn match_expressions() {
        let l = labels(&[("tier", "front"), ("env", "prod")]);
        let e = |op: &str, key: &str, vals: &[&str]| json!({"matchExpressions": [{"key": key, "operator": op, "values": vals}]});
        assert!(selects(&e("In", "tier", &["front", "back"]), &l));
        assert!(!selects(&e("In", "tier", &["back"]), &l));
        assert!(!selects(&e("In", "zone", &["a"]), &l));
        assert!(selects(&e("NotIn", "tier", &["back"]), &l));
        assert!(!selects(&e("NotIn", "tier", &["front"]), &l));
        assert!(selects(&e("NotIn", "zone", &["a"]), &l), "absent key");
        assert!(selects(&e("Exists", "env", &[]), &l));
        assert!(!selects(&e("Exists", "zone", &[]), &l));
        assert!(selects(&e("DoesNotExist", "zone", &[]), &l));
        assert!(!selects(&e("DoesNotExist", "env", &[]), &l));
        let both = json!({"matchLabels": {"env": "prod"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["back"]}]});
        assert!(
            !selects(&both, &l),
            "matchLabels and matchExpressions must both hold"
        );
        assert!(selects(&json!({}), &l));
    }

    #[test]
    fn egress_isolation_needs_both_ends_to_agree() {
        // Egress section without policyTypes: the policy is Ingress and Egress.
        let c = Cluster::new(vec![
            policy(
                "shop",
                json!({"podSelector": {"matchLabels": {"app": "web"}},
                       "egress": [{"to": [{"podSelector": {"matchLabels": {"app": "db"}}}], "ports": [{"port": 5432}]}]}),
            ),
            policy(
                "shop",
                json!({"podSelector": {"matchLabels": {"app": "db"}}, "policyTypes": ["Ingress"],
                       "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "other"}}}]}]}),
            ),
        ]);
        assert!(
            !c.allows(&web(), &db(), 5432, "TCP"),
            "egress allows it, db's ingress does not"
        );
        assert!(
            !c.allows(&web(), &outsider(), 80, "TCP"),
            "web's egress is isolated"
        );
        assert!(
            !c.allows(&outsider(), &web(), 8080, "TCP"),
            "web is isolated for ingress too, with no ingress rules"
        );
        let open_db = Cluster::new(vec![c.policies[0].clone()]);
        assert!(open_db.allows(&web(), &db(), 5432, "TCP"));
        assert!(!open_db.allows(&web(), &db(), 5433, "TCP"));
    }

    #[test]
    fn ip_blocks_match_pod_addresses_with_their_exceptions() {
        let web = web();
        let c = Cluster::new(vec![policy(
            "shop",
            json!({"podSelector": {"matchLabels": {"app": "db"}}, "ingress": [{"from": [{"ipBlock": {"cidr": "10.244.0.0/16", "except": [format!("{}/32", web.ip)]}}]}]}),
        )]);
        assert!(!c.allows(&web, &db(), 5432, "TCP"));
        assert!(c.allows(&outsider(), &db(), 5432, "TCP"));
        let v6 = Cluster::new(vec![policy(
            "shop",
            json!({"podSelector": {"matchLabels": {"app": "db"}}, "ingress": [{"from": [{"ipBlock": {"cidr": "fd00::/8"}}]}]}),
        )]);
        assert!(!v6.allows(&outsider(), &db(), 5432, "TCP"));
    }
}

// --- the bundle's pods and policies --------------------------------------------------------------

/// `plane template datalayer-ray --profile P -o json` with `--set`s and an optional values file.
fn render(profile: &str, sets: &[&str], values: Option<&str>) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::from_std(common::plane());
    cmd.args([
        "template",
        "datalayer-ray",
        "--profile",
        profile,
        "-o",
        "json",
    ]);
    for s in sets {
        cmd.args(["--set", s]);
    }
    if let Some(text) = values {
        let file = dir.path().join("values.yaml");
        std::fs::write(&file, text).unwrap();
        cmd.arg("-f").arg(&file);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{profile} {sets:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    list["items"].as_array().unwrap().clone()
}

/// The pods a render runs: one per Deployment, and per RayCluster a head and two workers of its
/// first group, labelled as KubeRay labels them.
fn rendered_pods(items: &[Value]) -> BTreeMap<String, Pod> {
    let mut pods = BTreeMap::new();
    for o in items {
        let ns = o["metadata"]["namespace"].as_str().unwrap_or_default();
        let name = o["metadata"]["name"].as_str().unwrap();
        match o["kind"].as_str().unwrap() {
            "Deployment" => {
                pods.insert(
                    name.to_owned(),
                    template_pod(name, ns, &o["spec"]["template"], &[]),
                );
            }
            "RayCluster" => {
                let kuberay = |node_type, group| {
                    [
                        ("ray.io/cluster", name),
                        ("ray.io/node-type", node_type),
                        ("ray.io/group", group),
                        ("ray.io/is-ray-node", "yes"),
                        ("app.kubernetes.io/created-by", "kuberay-operator"),
                        ("app.kubernetes.io/name", "kuberay"),
                    ]
                };
                let head = &o["spec"]["headGroupSpec"]["template"];
                pods.insert(
                    "ray-head".into(),
                    template_pod("ray-head", ns, head, &kuberay("head", "headgroup")),
                );
                let group = &o["spec"]["workerGroupSpecs"][0];
                let g = group["groupName"].as_str().unwrap();
                for w in ["ray-worker", "ray-worker-2"] {
                    pods.insert(
                        w.into(),
                        template_pod(w, ns, &group["template"], &kuberay("worker", g)),
                    );
                }
            }
            _ => {}
        }
    }
    pods
}

/// Pods that are not the release's: the ingress controller (where `ingress_ns` says), a team
/// notebook, strangers in other namespaces and in the release's own, another Ray cluster next to
/// the bootstrap one, cluster DNS, the API server, Loki.
fn neighbours(ingress_ns: &str) -> Vec<Pod> {
    let ray = |name, node_type| {
        pod(
            name,
            "default",
            &[
                ("ray.io/cluster", "other"),
                ("ray.io/node-type", node_type),
                ("ray.io/is-ray-node", "yes"),
            ],
            &[
                ("gcs", 6379),
                ("dashboard", 8265),
                ("client", 10001),
                ("metrics", 8080),
            ],
        )
    };
    let mut apiserver = pod(
        "apiserver",
        "kube-system",
        &[("component", "kube-apiserver")],
        &[("https", 6443)],
    );
    apiserver.ip = Ipv4Addr::new(172, 18, 0, 2);
    vec![
        pod(
            "ingress",
            ingress_ns,
            &[("app.kubernetes.io/name", "traefik")],
            &[("web", 8000)],
        ),
        pod("ingress-ns-other", ingress_ns, &[("app", "debug")], &[]),
        pod("team", "team-a", &[("app", "notebook")], &[]),
        pod("ci", "ci", &[("app", "ray-submit")], &[]),
        pod("stranger", "other", &[("app", "random")], &[("http", 80)]),
        pod("stranger-in-ray-ns", "default", &[("app", "random")], &[]),
        pod("api-ns-other", "datalayer-api", &[("app", "job")], &[]),
        pod(
            "obs-ns-other",
            "ray-observability",
            &[("app", "random")],
            &[],
        ),
        ray("other-head", "head"),
        ray("other-worker", "worker"),
        pod(
            "dns",
            "kube-system",
            &[("k8s-app", "kube-dns")],
            &[("dns", 53), ("dns-tcp", 53)],
        ),
        apiserver,
        pod(
            "loki",
            "loki",
            &[("app.kubernetes.io/name", "loki")],
            &[("http", 3100)],
        ),
    ]
}

struct World {
    cluster: Cluster,
    pods: BTreeMap<String, Pod>,
}

impl World {
    fn new(items: &[Value], ingress_ns: &str) -> World {
        let policies: Vec<Value> = items
            .iter()
            .filter(|o| o["kind"] == "NetworkPolicy")
            .cloned()
            .collect();
        let mut pods = rendered_pods(items);
        for p in neighbours(ingress_ns) {
            pods.insert(p.name.clone(), p);
        }
        World {
            cluster: Cluster::new(policies),
            pods,
        }
    }

    fn allows(&self, src: &str, dest: &str, port: u16, protocol: &str) -> bool {
        let pod = |n: &str| {
            self.pods
                .get(n)
                .unwrap_or_else(|| panic!("no pod {n}; have {:?}", self.pods.keys()))
        };
        self.cluster.allows(pod(src), pod(dest), port, protocol)
    }

    /// Asserts each (src, dest, port) flow is allowed; returns how many were checked.
    fn assert_allowed(&self, flows: &[(&str, &str, u16)]) -> usize {
        for (s, d, p) in flows {
            assert!(
                self.allows(s, d, *p, "TCP"),
                "{s} -> {d}:{p} must be allowed"
            );
        }
        flows.len()
    }

    fn assert_denied(&self, flows: &[(&str, &str, u16)]) -> usize {
        for (s, d, p) in flows {
            assert!(
                !self.allows(s, d, *p, "TCP"),
                "{s} -> {d}:{p} must be denied"
            );
        }
        flows.len()
    }
}

/// What the default policies must allow (README's allow matrix), profile local.
const ALLOWED: &[(&str, &str, u16)] = &[
    // The API: from its ingress controller.
    ("ingress", "datalayer-ray", 4460),
    // The head: dashboard/Jobs API and Ray Client from the API; dashboard from the operator.
    ("datalayer-ray", "ray-head", 8265),
    ("datalayer-ray", "ray-head", 10001),
    ("kuberay-operator", "ray-head", 8265),
    // Ray pods of the same cluster: every port, both ways.
    ("ray-worker", "ray-head", 6379),
    ("ray-worker", "ray-head", 8265),
    ("ray-worker", "ray-head", 10001),
    ("ray-worker", "ray-head", 52365),
    ("ray-head", "ray-worker", 12345),
    ("ray-worker", "ray-worker-2", 23456),
    ("ray-head", "ray-head", 6379),
    // Ray pods of another cluster of the namespace (one the API created): the namespace is the
    // boundary, for the policies select Ray pods by KubeRay's labels, whatever the cluster.
    ("other-head", "ray-head", 6379),
    ("other-worker", "ray-worker", 12345),
    ("other-worker", "ray-head", 10001),
    ("ray-head", "other-worker", 12345),
    // Metrics: from Prometheus.
    ("prometheus", "ray-head", 8080),
    ("prometheus", "ray-head", 44217),
    ("prometheus", "ray-head", 44227),
    ("prometheus", "ray-worker", 8080),
    ("prometheus", "kuberay-operator", 8080),
    // The health stack: Grafana reads Prometheus; the Ray dashboard queries both.
    ("grafana", "prometheus", 9090),
    ("ray-head", "prometheus", 9090),
    ("ray-head", "grafana", 3000),
];

/// What the default policies must deny, profile local.
const DENIED: &[(&str, &str, u16)] = &[
    // Strangers, anywhere, reach nothing of the release.
    ("stranger", "ray-head", 8265),
    ("stranger", "ray-head", 10001),
    ("stranger", "ray-head", 6379),
    ("stranger", "ray-head", 8080),
    ("stranger", "ray-worker", 8080),
    ("stranger", "ray-worker", 12345),
    ("stranger", "datalayer-ray", 4460),
    ("stranger", "kuberay-operator", 8080),
    ("stranger", "prometheus", 9090),
    ("stranger", "grafana", 3000),
    ("stranger-in-ray-ns", "ray-head", 8265),
    ("stranger-in-ray-ns", "ray-head", 6379),
    ("stranger-in-ray-ns", "ray-worker", 23456),
    ("team", "ray-head", 10001),
    ("team", "datalayer-ray", 4460),
    ("ci", "ray-head", 8265),
    // Same namespace as a trusted pod is not enough.
    ("api-ns-other", "ray-head", 8265),
    ("api-ns-other", "ray-head", 10001),
    ("obs-ns-other", "ray-head", 8080),
    ("obs-ns-other", "kuberay-operator", 8080),
    ("ingress-ns-other", "datalayer-ray", 4460),
    // Trusted pods only on their ports.
    ("datalayer-ray", "ray-head", 6379),
    ("datalayer-ray", "ray-head", 8080),
    ("datalayer-ray", "ray-worker", 8080),
    ("kuberay-operator", "ray-head", 10001),
    ("kuberay-operator", "ray-head", 6379),
    ("prometheus", "ray-head", 6379),
    ("prometheus", "ray-head", 8265),
    ("prometheus", "datalayer-ray", 4460),
    ("grafana", "ray-head", 8265),
    ("grafana", "kuberay-operator", 8080),
    ("ingress", "datalayer-ray", 9999),
    ("ingress", "ray-head", 8265),
    ("ingress", "grafana", 3000),
    ("ingress", "prometheus", 9090),
    ("ingress", "kuberay-operator", 8080),
    // The API takes nothing from the Ray side; workers do not query the health stack.
    ("ray-head", "datalayer-ray", 4460),
    ("ray-worker", "datalayer-ray", 4460),
    ("ray-worker", "prometheus", 9090),
    ("ray-worker", "grafana", 3000),
    ("ray-head", "kuberay-operator", 8080),
];

#[test]
fn the_default_policies_allow_exactly_the_matrix() {
    let items = render("local", &[], None);
    let kinds: Vec<String> = items
        .iter()
        .filter(|o| o["kind"] == "NetworkPolicy")
        .map(|o| {
            format!(
                "{}/{}",
                o["metadata"]["namespace"].as_str().unwrap(),
                o["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        kinds.len(),
        6,
        "one policy per workload (API, operator, head, workers, Prometheus, Grafana): {kinds:?}"
    );
    let w = World::new(&items, "kube-system");
    // Every release pod is isolated for ingress: none is left open by a selector that misses it.
    for name in [
        "datalayer-ray",
        "kuberay-operator",
        "prometheus",
        "grafana",
        "ray-head",
        "ray-worker",
    ] {
        assert!(
            !w.allows("stranger", name, 1, "TCP"),
            "{name} is not isolated"
        );
    }
    let allowed = w.assert_allowed(ALLOWED);
    let denied = w.assert_denied(DENIED);
    // Egress stays open by default: DNS, the API server and anything else.
    let open = w.assert_allowed(&[
        ("ray-worker", "dns", 53),
        ("datalayer-ray", "apiserver", 6443),
        ("ray-head", "loki", 3100),
        ("datalayer-ray", "stranger", 80),
        ("ray-worker", "stranger", 80),
    ]);
    assert_eq!((allowed, denied, open), (23, 41, 5));
}

#[test]
fn the_switch_removes_exactly_the_policies() {
    for profile in ["local", "r-eastus", "prod1"] {
        let on = render(profile, &[], None);
        let off = render(profile, &["networkPolicy.enabled=false"], None);
        let without: Vec<&Value> = on.iter().filter(|o| o["kind"] != "NetworkPolicy").collect();
        assert!(
            without.len() < on.len(),
            "{profile} renders no NetworkPolicy"
        );
        assert_eq!(off.iter().collect::<Vec<_>>(), without, "{profile}");
    }
}

#[test]
fn without_policies_the_matrix_is_wide_open() {
    // The same evaluator on a render without policies: every denied flow goes through, so the
    // denials above come from the policies, not from the evaluator.
    let items = render("local", &["networkPolicy.enabled=false"], None);
    assert!(items.iter().all(|o| o["kind"] != "NetworkPolicy"));
    let w = World::new(&items, "kube-system");
    w.assert_allowed(DENIED);
    w.assert_allowed(ALLOWED);
}

#[test]
fn the_api_accepts_the_ingress_controller_of_each_profile() {
    // Profile local uses k3s's Traefik (class traefik, kube-system); the others the
    // datalayer-traefik controller in its own namespace.
    for (profile, class, ns) in [
        ("local", "traefik", "kube-system"),
        ("r-eastus", "datalayer-traefik", "datalayer-traefik"),
        ("prod1", "datalayer-traefik", "datalayer-traefik"),
    ] {
        let items = render(profile, &[], None);
        let ingress = items
            .iter()
            .find(|o| o["kind"] == "Ingress")
            .expect("the API's Ingress");
        assert_eq!(ingress["spec"]["ingressClassName"], class, "{profile}");
        let w = World::new(&items, ns);
        w.assert_allowed(&[("ingress", "datalayer-ray", 4460)]);
        w.assert_denied(&[
            ("ingress-ns-other", "datalayer-ray", 4460),
            ("stranger", "datalayer-ray", 4460),
        ]);
        // Every pod the release runs in this profile is isolated.
        for name in rendered_pods(&items).keys() {
            assert!(
                !w.allows("stranger", name, 1, "TCP"),
                "{profile}: {name} is not isolated"
            );
        }
        let elsewhere = World::new(&items, "ingress-elsewhere");
        elsewhere.assert_denied(&[("ingress", "datalayer-ray", 4460)]);
    }
}

const EXTRA_SOURCES: &str = r"
networkPolicy:
  allow:
    rayClient: [{namespace: team-a}]
    rayDashboard: [{namespace: ci, podLabels: {app: ray-submit}}]
    api: [{namespace: team-a, podLabels: {app: notebook}}]
    grafana: [{namespace: kube-system, podLabels: {app.kubernetes.io/name: traefik}}]
";

#[test]
fn extra_sources_open_only_their_port() {
    let items = render("local", &[], Some(EXTRA_SOURCES));
    let w = World::new(&items, "kube-system");
    let allowed = w.assert_allowed(ALLOWED)
        + w.assert_allowed(&[
            ("team", "ray-head", 10001),
            ("ci", "ray-head", 8265),
            ("team", "datalayer-ray", 4460),
            ("ingress", "grafana", 3000),
        ]);
    let denied = w.assert_denied(&[
        ("team", "ray-head", 8265),
        ("team", "ray-head", 6379),
        ("team", "ray-worker", 12345),
        ("ci", "ray-head", 10001),
        ("ci", "ray-head", 6379),
        ("ci", "datalayer-ray", 4460),
        ("stranger", "ray-head", 10001),
        ("stranger", "ray-head", 8265),
        ("stranger-in-ray-ns", "ray-head", 10001),
        ("ingress", "prometheus", 9090),
        ("ingress-ns-other", "grafana", 3000),
    ]);
    // The rest of the default matrix still holds, bar the flows the values open on purpose.
    let opened = [
        ("team", "ray-head", 10001),
        ("ci", "ray-head", 8265),
        ("team", "datalayer-ray", 4460),
        ("ingress", "grafana", 3000),
    ];
    let still: Vec<_> = DENIED
        .iter()
        .copied()
        .filter(|f| !opened.contains(f))
        .collect();
    let denied = denied + w.assert_denied(&still);
    assert_eq!((allowed, denied), (27, 48));
}

const RESTRICTED_EGRESS: &str = r"
networkPolicy:
  egress:
    restrict: true
    apiServer: {cidrs: [172.18.0.2/32]}
    allow:
      - {namespace: loki, podLabels: {app.kubernetes.io/name: loki}, ports: [3100]}
";

#[test]
fn restricted_egress_keeps_dns_the_api_server_and_the_matrix() {
    let items = render("local", &[], Some(RESTRICTED_EGRESS));
    let w = World::new(&items, "kube-system");
    let release = [
        "datalayer-ray",
        "kuberay-operator",
        "prometheus",
        "grafana",
        "ray-head",
        "ray-worker",
    ];
    let mut allowed = w.assert_allowed(ALLOWED);
    let mut denied = w.assert_denied(DENIED);
    for p in release {
        assert!(w.allows(p, "dns", 53, "UDP"), "{p} -> DNS over UDP");
        allowed += w.assert_allowed(&[(p, "dns", 53), (p, "loki", 3100)]);
        denied += w.assert_denied(&[(p, "stranger", 80), (p, "loki", 3101), (p, "dns", 54)]);
    }
    // The API server, for the pods that call it.
    allowed += w.assert_allowed(&[
        ("datalayer-ray", "apiserver", 6443),
        ("kuberay-operator", "apiserver", 6443),
        ("prometheus", "apiserver", 6443),
        ("ray-head", "apiserver", 6443),
    ]);
    denied += w.assert_denied(&[
        ("ray-worker", "apiserver", 6443),
        ("grafana", "apiserver", 6443),
        ("datalayer-ray", "apiserver", 22),
        // Egress narrows what trusted pods may call, beyond the destinations' own policies.
        ("datalayer-ray", "other-head", 6379),
        ("kuberay-operator", "other-head", 10001),
        ("prometheus", "other-head", 6379),
        ("grafana", "ray-head", 8080),
    ]);
    // The API and the operator still reach other clusters' dashboards; Ray pods of a namespace,
    // each other whatever their cluster.
    allowed += w.assert_allowed(&[
        ("ray-worker", "other-worker", 12345),
        ("datalayer-ray", "other-head", 8265),
        ("datalayer-ray", "other-head", 10001),
        ("kuberay-operator", "other-head", 8265),
        ("prometheus", "other-head", 8080),
    ]);
    assert_eq!((allowed, denied), (44, 66));
}

#[test]
fn operator_mode_points_scrapes_at_the_configured_prometheus() {
    let items = render(
        "local",
        &[
            "observability.mode=operator",
            "networkPolicy.prometheus.namespace=monitoring",
        ],
        None,
    );
    assert!(
        !items.iter().any(|o| o["kind"] == "NetworkPolicy"
            && ["prometheus", "grafana"].contains(&o["metadata"]["name"].as_str().unwrap())),
        "no policies for a Prometheus and Grafana the release does not run"
    );
    let mut w = World::new(&items, "kube-system");
    let external = pod(
        "external-prometheus",
        "monitoring",
        &[("app.kubernetes.io/name", "prometheus")],
        &[("web", 9090)],
    );
    w.pods.insert(external.name.clone(), external);
    w.pods.insert(
        "old-prometheus".into(),
        pod(
            "old-prometheus",
            "ray-observability",
            &[("app.kubernetes.io/name", "prometheus")],
            &[],
        ),
    );
    w.assert_allowed(&[
        ("external-prometheus", "ray-head", 8080),
        ("external-prometheus", "ray-worker", 8080),
        ("external-prometheus", "kuberay-operator", 8080),
    ]);
    w.assert_denied(&[
        ("old-prometheus", "ray-head", 8080),
        ("external-prometheus", "ray-head", 6379),
    ]);
}
