//! Ray's journeys as network flows, from what KubeRay v1.7.0 does (`tests/fixtures/kuberay/pods.tsv`:
//! the labels and ports of the pods it creates, and who connects to which), judged against the
//! rendered NetworkPolicies of the platform alone and of the platform with two team instances:
//! every journey's hops must be allowed, the flows between teams denied, and a journey that needs
//! something the bundle does not render fails naming the hop that blocks it.

mod common;

use std::collections::BTreeMap;

use common::netpol::{Cluster, Pod, pod, template_pod};
use common::{builtin, fixtures, text};
use serde_json::Value;

// --- KubeRay's facts --------------------------------------------------------------------------

/// One row of pods.tsv: (pod, fact, key, value).
struct Fact {
    pod: String,
    what: String,
    key: String,
    value: String,
}

fn facts() -> Vec<Fact> {
    let text = std::fs::read_to_string(fixtures().join("kuberay/pods.tsv")).expect("pods.tsv");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|line| {
            let cells: Vec<&str> = line.split('\t').collect();
            assert_eq!(cells.len(), 5, "five cells: {line:?}");
            Fact {
                pod: cells[0].to_owned(),
                what: cells[1].to_owned(),
                key: cells[2].to_owned(),
                value: cells[3].to_owned(),
            }
        })
        .collect()
}

/// What fills a fact's placeholders.
struct Names<'a> {
    cluster: &'a str,
    group: &'a str,
    rayjob: &'a str,
}

/// A pod KubeRay would create in `ns` as `role` (head, worker, submitter): the labels it gives it,
/// the ports it declares, plus the template's labels and ports when there is a template (the
/// bootstrap cluster's); a cluster the API or a RayJob creates is taken to declare nothing more.
fn kuberay_pod(
    facts: &[Fact],
    role: &str,
    name: &str,
    ns: &str,
    names: &Names<'_>,
    template: Option<&Value>,
) -> Pod {
    let mut p = match template {
        Some(t) => template_pod(name, ns, t, &[]),
        None => pod(name, ns, &[], &[]),
    };
    for f in facts.iter().filter(|f| f.pod == role) {
        let value = f
            .value
            .replace("{cluster}", names.cluster)
            .replace("{group}", names.group)
            .replace("{rayjob}", names.rayjob);
        match f.what.as_str() {
            "label" => {
                p.labels.insert(f.key.clone(), value);
            }
            "declares" if !p.ports.iter().any(|(n, ..)| *n == f.key) => {
                p.ports
                    .push((f.key.clone(), value.parse().expect("a port"), "TCP".into()));
            }
            _ => {}
        }
    }
    p
}

/// The ports `role` listens on, from the facts.
fn listens(facts: &[Fact], role: &str) -> Vec<u16> {
    facts
        .iter()
        .filter(|f| f.pod == role && f.what == "listens")
        .map(|f| f.value.parse().expect("a port"))
        .collect()
}

/// The ports `role` connects to on `target`; `any` stands for a few ports Ray picks at start.
fn connects(facts: &[Fact], role: &str, target: &str) -> Vec<u16> {
    let mut ports: Vec<u16> = Vec::new();
    for f in facts
        .iter()
        .filter(|f| f.pod == role && f.what == "connects" && f.key == target)
    {
        if f.value == "any" {
            ports.extend([6379, 8076, 10002, 40123, 52365]);
        } else {
            ports.push(f.value.parse().expect("a port"));
        }
    }
    ports
}

// --- the render -------------------------------------------------------------------------------

/// `plane template datalayer-ray --profile <profile> -o json` plus `args`: the objects.
fn render(profile: &str, args: &[&str]) -> Vec<Value> {
    let fixture = builtin("datalayer-ray");
    let out = fixture
        .template(&[&["--profile", profile, "-o", "json"], args].concat())
        .output()
        .expect("plane runs");
    assert!(
        out.status.success(),
        "{profile} {args:?}: {}",
        text(&out.stderr)
    );
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    list["items"].as_array().unwrap().clone()
}

fn policies(items: &[Value]) -> Vec<Value> {
    items
        .iter()
        .filter(|o| o["kind"] == "NetworkPolicy")
        .cloned()
        .collect()
}

fn deployment<'a>(items: &'a [Value], name: &str) -> Option<&'a Value> {
    items
        .iter()
        .find(|o| o["kind"] == "Deployment" && o["metadata"]["name"] == name)
}

// --- the world --------------------------------------------------------------------------------

/// Pods by a name the journeys use, and the policies they are judged by.
struct World {
    cluster: Cluster,
    pods: BTreeMap<String, Pod>,
}

/// One hop of a journey: from, to, port.
type Hop = (String, String, u16);

struct Journey {
    name: String,
    hops: Vec<Hop>,
}

impl World {
    fn pod(&self, name: &str) -> &Pod {
        self.pods
            .get(name)
            .unwrap_or_else(|| panic!("no pod {name}; have {:?}", self.pods.keys()))
    }

    /// Every hop allowed, or the first that is blocked and where.
    fn travel(&self, journey: &Journey) -> Result<(), String> {
        for (src, dest, port) in &journey.hops {
            self.cluster
                .verdict(self.pod(src), self.pod(dest), *port, "TCP")
                .map_err(|why| {
                    format!(
                        "{}: hop {src} -> {dest}:{port} is blocked: {why}",
                        journey.name
                    )
                })?;
        }
        Ok(())
    }

    fn denied(&self, src: &str, dest: &str, port: u16) -> bool {
        !self
            .cluster
            .allows(self.pod(src), self.pod(dest), port, "TCP")
    }
}

/// Adds the Ray pods of a RayCluster (head, two workers) and, when `rayjob` is given, the
/// submitter of that RayJob, all in `ns`, named `<prefix>-head` and so on.
fn add_ray_cluster(
    pods: &mut BTreeMap<String, Pod>,
    facts: &[Fact],
    prefix: &str,
    ns: &str,
    cluster: &str,
    rayjob: Option<&str>,
    templates: Option<(&Value, &Value, &str)>,
) {
    let group = templates.map_or("workers", |t| t.2);
    let names = Names {
        cluster,
        group,
        rayjob: rayjob.unwrap_or(""),
    };
    let head = format!("{prefix}-head");
    pods.insert(
        head.clone(),
        kuberay_pod(facts, "head", &head, ns, &names, templates.map(|t| t.0)),
    );
    for worker in [format!("{prefix}-worker"), format!("{prefix}-worker-2")] {
        pods.insert(
            worker.clone(),
            kuberay_pod(facts, "worker", &worker, ns, &names, templates.map(|t| t.1)),
        );
    }
    if rayjob.is_some() {
        let submitter = format!("{prefix}-submitter");
        pods.insert(
            submitter.clone(),
            kuberay_pod(facts, "submitter", &submitter, ns, &names, None),
        );
    }
}

/// The world of a platform render (`platform`) with the team instances' renders (`teams`: the
/// namespace and its objects): the workloads they run, the bootstrap cluster, a RayCluster the
/// API created and a RayJob's cluster with its submitter in every Ray namespace, the ingress
/// controller, and strangers.
fn world(
    facts: &[Fact],
    platform: &[Value],
    teams: &[(&str, Vec<Value>)],
    ingress_ns: &str,
) -> World {
    let mut pods = BTreeMap::new();
    let mut policies = policies(platform);
    for name in ["datalayer-ray", "kuberay-operator", "prometheus", "grafana"] {
        if let Some(d) = deployment(platform, name) {
            let ns = d["metadata"]["namespace"].as_str().unwrap();
            pods.insert(
                name.to_owned(),
                template_pod(name, ns, &d["spec"]["template"], &[]),
            );
        }
    }
    if let Some(rc) = platform.iter().find(|o| o["kind"] == "RayCluster") {
        let ns = rc["metadata"]["namespace"].as_str().unwrap();
        let group = &rc["spec"]["workerGroupSpecs"][0];
        // A RayJob that runs on it (`clusterSelector`): its submitter calls this head.
        add_ray_cluster(
            &mut pods,
            facts,
            "bootstrap",
            ns,
            rc["metadata"]["name"].as_str().unwrap(),
            Some("on-bootstrap"),
            Some((
                &rc["spec"]["headGroupSpec"]["template"],
                &group["template"],
                group["groupName"].as_str().unwrap(),
            )),
        );
    }
    // The Ray namespace of the platform's API: global.rayNamespaces, `default` in every profile.
    add_ray_cluster(
        &mut pods,
        facts,
        "api-made",
        "default",
        "made-by-the-api",
        None,
        None,
    );
    add_ray_cluster(
        &mut pods,
        facts,
        "rayjob",
        "default",
        "nightly-raycluster-x7k2p",
        Some("nightly"),
        None,
    );
    for (ns, items) in teams {
        policies.extend(self::policies(items));
        let api = deployment(items, "datalayer-ray").expect("a team's API");
        pods.insert(
            format!("{ns}-api"),
            template_pod(&format!("{ns}-api"), ns, &api["spec"]["template"], &[]),
        );
        add_ray_cluster(
            &mut pods,
            facts,
            ns,
            ns,
            &format!("{ns}-cluster"),
            Some("train"),
            None,
        );
        pods.insert(
            format!("{ns}-notebook"),
            pod(&format!("{ns}-notebook"), ns, &[("app", "notebook")], &[]),
        );
    }
    pods.insert(
        "ingress".into(),
        pod(
            "ingress",
            ingress_ns,
            &[("app.kubernetes.io/name", "traefik")],
            &[("web", 8000)],
        ),
    );
    pods.insert(
        "stranger".into(),
        pod("stranger", "elsewhere", &[("app", "random")], &[]),
    );
    pods.insert(
        "stranger-in-default".into(),
        pod("stranger-in-default", "default", &[("app", "random")], &[]),
    );
    World {
        cluster: Cluster::new(policies),
        pods,
    }
}

/// The journeys of a world, from the facts: each Ray cluster's own traffic, the API's and the
/// operator's calls, a RayJob's submitter, metrics both ways, the ingress to each API.
fn journeys(facts: &[Fact], w: &World, teams: &[&str]) -> Vec<Journey> {
    let mut out = Vec::new();
    let hop = |s: &str, d: &str, p: u16| (s.to_owned(), d.to_owned(), p);
    let mut clusters: Vec<(String, String)> = vec![
        ("api-made".into(), "datalayer-ray".into()),
        ("rayjob".into(), "datalayer-ray".into()),
    ];
    if w.pods.contains_key("bootstrap-head") {
        clusters.push(("bootstrap".into(), "datalayer-ray".into()));
    }
    for team in teams {
        clusters.push(((*team).to_owned(), format!("{team}-api")));
    }
    out.push(Journey {
        name: "the ingress controller reaches the platform's API".into(),
        hops: vec![hop("ingress", "datalayer-ray", 4460)],
    });
    for team in teams {
        out.push(Journey {
            name: format!("the ingress controller reaches {team}'s API"),
            hops: vec![hop("ingress", &format!("{team}-api"), 4460)],
        });
    }
    for (prefix, api) in &clusters {
        let head = format!("{prefix}-head");
        let worker = format!("{prefix}-worker");
        let worker2 = format!("{prefix}-worker-2");
        let mut hops = Vec::new();
        for port in connects(facts, "worker", "head") {
            hops.push(hop(&worker, &head, port));
        }
        for port in connects(facts, "head", "worker") {
            hops.push(hop(&head, &worker, port));
            hops.push(hop(&worker, &worker2, port));
        }
        out.push(Journey {
            name: format!("{prefix}: workers and head talk on every Ray port"),
            hops,
        });
        out.push(Journey {
            name: format!("{prefix}: the API ({api}) reaches the head's dashboard and Ray Client"),
            hops: vec![hop(api, &head, 8265), hop(api, &head, 10001)],
        });
        out.push(Journey {
            name: format!(
                "{prefix}: the operator reaches the head (HTTPMode jobs, status, serve health)"
            ),
            hops: connects(facts, "operator", "head")
                .into_iter()
                .map(|p| hop("kuberay-operator", &head, p))
                .collect(),
        });
        let submitter = format!("{prefix}-submitter");
        if w.pods.contains_key(&submitter) {
            out.push(Journey {
                name: format!("{prefix}: a RayJob's submitter reaches its cluster's head"),
                hops: connects(facts, "submitter", "head")
                    .into_iter()
                    .map(|p| hop(&submitter, &head, p))
                    .collect(),
            });
        }
        if w.pods.contains_key("prometheus") {
            let mut hops: Vec<Hop> = [8080, 44217, 44227]
                .into_iter()
                .filter(|p| listens(facts, "head").contains(p))
                .map(|p| hop("prometheus", &head, p))
                .collect();
            hops.push(hop("prometheus", &worker, 8080));
            hops.push(hop(&head, "prometheus", 9090));
            hops.push(hop(&head, "grafana", 3000));
            out.push(Journey {
                name: format!("{prefix}: Prometheus scrapes every Ray pod; the head queries Prometheus and Grafana"),
                hops,
            });
        }
    }
    out
}

/// Flows that must be denied: other namespaces (another team, a stranger) to any Ray port, a
/// team's pod to another team's API.
fn denied_flows(facts: &[Fact], teams: &[&str]) -> Vec<Hop> {
    let mut flows = Vec::new();
    let mut ray_namespaces: Vec<(String, String)> = vec![("api-made".into(), "stranger".into())];
    for (i, team) in teams.iter().enumerate() {
        let other = teams[(i + 1) % teams.len()];
        ray_namespaces.push(((*team).to_owned(), format!("{other}-notebook")));
        ray_namespaces.push(((*team).to_owned(), format!("{other}-head")));
        flows.push((format!("{other}-notebook"), format!("{team}-api"), 4460));
        flows.push((format!("{other}-api"), format!("{team}-head"), 8265));
    }
    for (prefix, from) in ray_namespaces {
        for port in listens(facts, "head") {
            flows.push((from.clone(), format!("{prefix}-head"), port));
        }
        for port in listens(facts, "worker") {
            flows.push((from.clone(), format!("{prefix}-worker"), port));
        }
    }
    for port in listens(facts, "head") {
        flows.push(("stranger-in-default".into(), "api-made-head".into(), port));
    }
    flows
}

/// Where a profile's ingress controller runs (networkPolicy.ingressController.namespace: the
/// local profile's k3s Traefik in kube-system, else the bundle's default).
fn ingress_namespace(profile: &str) -> &'static str {
    if profile == "local" {
        "kube-system"
    } else {
        "datalayer-traefik"
    }
}

fn assert_all_hold(w: &World, journeys: &[Journey], denied: &[Hop], what: &str) {
    let blocked: Vec<String> = journeys.iter().filter_map(|j| w.travel(j).err()).collect();
    assert!(blocked.is_empty(), "{what}:\n{}", blocked.join("\n"));
    let open: Vec<String> = denied
        .iter()
        .filter(|(s, d, p)| !w.denied(s, d, *p))
        .map(|(s, d, p)| format!("{s} -> {d}:{p}"))
        .collect();
    assert!(open.is_empty(), "{what}: must be denied: {open:?}");
}

#[test]
fn every_journey_holds_for_the_platform_of_each_profile() {
    let facts = facts();
    for profile in ["local", "r-eastus", "prod1"] {
        let platform = render(profile, &[]);
        let w = world(&facts, &platform, &[], ingress_namespace(profile));
        let journeys = journeys(&facts, &w, &[]);
        assert!(
            journeys.len() >= 10,
            "{profile}: {} journeys",
            journeys.len()
        );
        assert_all_hold(&w, &journeys, &denied_flows(&facts, &[]), profile);
    }
}

#[test]
fn every_journey_holds_for_the_platform_with_two_team_instances() {
    let facts = facts();
    let platform = render("local", &[]);
    let teams: Vec<(&str, Vec<Value>)> = ["team-a", "team-b"]
        .into_iter()
        .map(|t| {
            (
                t,
                render(
                    "local",
                    &["-n", t, "--set", "bootstrapRayCluster.enabled=true"],
                ),
            )
        })
        .collect();
    let w = world(&facts, &platform, &teams, ingress_namespace("local"));
    let names = ["team-a", "team-b"];
    let journeys = journeys(&facts, &w, &names);
    assert_all_hold(
        &w,
        &journeys,
        &denied_flows(&facts, &names),
        "platform and two teams",
    );
}

/// The policies the bundle rendered before they selected every RayCluster by KubeRay's labels
/// (kept as a fixture): a RayJob's submitter and a cluster the API created are blocked, and the
/// failure names the hop and the policy in the way.
#[test]
fn the_policies_of_one_cluster_name_block_submitters_and_clusters_the_api_creates() {
    let facts = facts();
    let fixture: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("netpol/before-every-raycluster-local.json"))
            .unwrap(),
    )
    .unwrap();
    let mut platform = render("local", &[]);
    platform.retain(|o| o["kind"] != "NetworkPolicy");
    platform.extend(fixture["items"].as_array().unwrap().iter().cloned());
    let w = world(&facts, &platform, &[], ingress_namespace("local"));
    let results: BTreeMap<String, Result<(), String>> = journeys(&facts, &w, &[])
        .iter()
        .map(|j| (j.name.clone(), w.travel(j)))
        .collect();
    let submitter = &results["bootstrap: a RayJob's submitter reaches its cluster's head"];
    let err = submitter.as_ref().unwrap_err();
    assert!(
        err.contains("hop bootstrap-submitter -> bootstrap-head:8265 is blocked")
            && err.contains("bootstrap-head's ingress in default (policies raycluster-ray-head)"),
        "{err}"
    );
    // A cluster the API created has no policy at all: its journeys pass, and so do the flows
    // that must be denied: a stranger of any namespace reaches every Ray port.
    assert!(results["api-made: workers and head talk on every Ray port"].is_ok());
    let open: Vec<String> = denied_flows(&facts, &[])
        .iter()
        .filter(|(s, d, p)| !w.denied(s, d, *p))
        .map(|(s, d, p)| format!("{s} -> {d}:{p}"))
        .collect();
    assert!(
        open.contains(&"stranger -> api-made-head:6379".to_owned()),
        "{open:?}"
    );
    assert!(
        open.contains(&"stranger -> api-made-worker:8080".to_owned()),
        "{open:?}"
    );
    // The bootstrap cluster's own traffic held then too.
    assert!(results["bootstrap: workers and head talk on every Ray port"].is_ok());
}
