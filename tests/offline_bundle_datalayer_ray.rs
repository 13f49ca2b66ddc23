//! The datalayer-ray bundle: what users and operators depend on, checked on the real binary's
//! renders — Ingress host per profile and per `DATALAYER_RUN_URL`, the API's RBAC, autoscaling
//! defaults, fluent-bit config, container order and hardening, pinned images, component switches.

use std::collections::{BTreeMap, BTreeSet};

use assert_cmd::Command;

mod common;
use serde_json::{Value, json};

const ADDON: &str = "datalayer-ray";
const PROFILES: [&str; 3] = ["local", "r-eastus", "prod1"];
/// Every component of the bundle and the values path of its switch.
const COMPONENTS: [(&str, &str); 6] = [
    ("kuberay", "kuberay.enabled"),
    ("api", "api.enabled"),
    ("ray", "bootstrapRayCluster.enabled"),
    ("logging", "logging.enabled"),
    ("observability", "observability.enabled"),
    ("ray-network", "networkPolicy.enabled"),
];

/// The real binary, with no input leaking in from the developer's environment.
fn plane() -> Command {
    Command::from_std(common::plane())
}

fn template_cmd(profile: &str, sets: &[String]) -> Command {
    let mut cmd = plane();
    cmd.args(["template", ADDON, "--profile", profile, "-o", "json"]);
    for set in sets {
        cmd.args(["--set", set]);
    }
    cmd
}

/// `plane template datalayer-ray --profile P -o json --set ...`: the rendered objects.
fn render_with(profile: &str, sets: &[&str], env: &[(&str, &str)]) -> Vec<Value> {
    let sets: Vec<String> = sets.iter().map(ToString::to_string).collect();
    let mut cmd = template_cmd(profile, &sets);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{profile} {sets:?}: exit {:?}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    let list: Value = serde_json::from_slice(&out.stdout).expect("-o json prints JSON");
    assert_eq!(list["kind"], "List");
    list["items"]
        .as_array()
        .expect("a v1/List has items")
        .clone()
}

fn render(profile: &str, sets: &[&str]) -> Vec<Value> {
    render_with(profile, sets, &[])
}

/// Runs a render expected to fail with exit code 2 and returns its stderr.
fn render_error(profile: &str, sets: &[&str], env: &[(&str, &str)]) -> String {
    let sets: Vec<String> = sets.iter().map(ToString::to_string).collect();
    let mut cmd = template_cmd(profile, &sets);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{profile} {sets:?} should be refused; stdout:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn subject(o: &Value) -> String {
    let m = &o["metadata"];
    match m["namespace"].as_str() {
        Some(ns) => format!(
            "{}/{}/{}",
            o["kind"].as_str().unwrap(),
            ns,
            m["name"].as_str().unwrap()
        ),
        None => format!(
            "{}/{}",
            o["kind"].as_str().unwrap(),
            m["name"].as_str().unwrap()
        ),
    }
}

fn component(o: &Value) -> &str {
    o["metadata"]["labels"]["plane.datalayer.io/component"]
        .as_str()
        .unwrap_or_else(|| panic!("{} has no component label", subject(o)))
}

fn by_subject(items: &[Value]) -> BTreeMap<String, Value> {
    items.iter().map(|o| (subject(o), o.clone())).collect()
}

fn find<'a>(items: &'a [Value], kind: &str, name: &str) -> &'a Value {
    items
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| {
            panic!(
                "{kind}/{name} not rendered; have {:?}",
                items.iter().map(subject).collect::<Vec<_>>()
            )
        })
}

fn all_of<'a>(items: &'a [Value], kind: &str) -> Vec<&'a Value> {
    items.iter().filter(|o| o["kind"] == kind).collect()
}

/// Components plane refuses to render a component without (addon.yaml `depends_on`). None in
/// this bundle: `api` and `ray` depend on `kuberay`, but `kuberay` declares an `existing`
/// KubeRay the cluster may provide instead.
fn dependencies(_name: &str) -> &'static [&'static str] {
    &[]
}

/// `--set` arguments turning every component on or off as `on` says (by COMPONENTS index).
fn switches(on: u32) -> Vec<String> {
    COMPONENTS
        .iter()
        .enumerate()
        .map(|(i, (_, path))| format!("{path}={}", on & (1 << i) != 0))
        .collect()
}

// --- item 1: every profile × every component combination -----------------------------------------

#[test]
fn every_profile_and_every_component_combination_renders() {
    let mut rendered_combinations = 0;
    for profile in PROFILES {
        for on in 0..(1u32 << COMPONENTS.len()) {
            let sets = switches(on);
            let out = template_cmd(profile, &sets).output().unwrap();
            let enabled: BTreeSet<&str> = COMPONENTS
                .iter()
                .enumerate()
                .filter(|(i, _)| on & (1 << i) != 0)
                .map(|(_, (name, _))| *name)
                .collect();
            let missing: Vec<(&str, &str)> = enabled
                .iter()
                .flat_map(|c| {
                    dependencies(c)
                        .iter()
                        .filter(|d| !enabled.contains(*d))
                        .map(move |d| (*c, *d))
                })
                .collect();
            if !missing.is_empty() {
                // Values do not allow this combination: refused before anything renders.
                assert_eq!(
                    out.status.code(),
                    Some(2),
                    "{profile} {sets:?} should be refused"
                );
                let stderr = String::from_utf8_lossy(&out.stderr);
                for (c, d) in missing {
                    assert!(
                        stderr.contains(&format!("`{c}`")) && stderr.contains(&format!("`{d}`")),
                        "{stderr}"
                    );
                }
                continue;
            }
            rendered_combinations += 1;
            assert!(
                out.status.success(),
                "{profile} {sets:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let list: Value = serde_json::from_slice(&out.stdout).unwrap();
            let items = list["items"].as_array().unwrap();
            let rendered: BTreeSet<&str> = items.iter().map(component).collect();
            // Each enabled component renders something, and nothing comes from a disabled one.
            assert_eq!(rendered, enabled, "{profile} {sets:?}");
            let subjects: Vec<String> = items.iter().map(subject).collect();
            let unique: BTreeSet<&String> = subjects.iter().collect();
            assert_eq!(
                unique.len(),
                subjects.len(),
                "{profile} {sets:?}: duplicate objects in {subjects:?}"
            );
        }
    }
    // 2^N combinations per profile, every one renders.
    assert_eq!(
        rendered_combinations,
        (1 << COMPONENTS.len()) * PROFILES.len()
    );
}

#[test]
fn switching_a_component_off_removes_exactly_its_objects() {
    for profile in PROFILES {
        for (name, path) in COMPONENTS {
            // Everything on, except what depends on `name` (plane refuses that without `name`).
            let mut base: Vec<String> = switches(u32::MAX);
            for (other, other_path) in COMPONENTS {
                if dependencies(other).contains(&name) {
                    base.push(format!("{other_path}=false"));
                }
            }
            let base: Vec<&str> = base.iter().map(String::as_str).collect();
            let full = by_subject(&render(profile, &base));
            assert!(
                full.values().any(|o| component(o) == name),
                "{profile}: {name} renders nothing"
            );
            let off = format!("{path}=false");
            let mut sets = base.clone();
            sets.push(&off);
            let without = by_subject(&render(profile, &sets));
            // networkPolicy.enabled also removes the other components' policies
            // (offline_netpol.rs `the_switch_removes_exactly_the_policies`).
            let expected: BTreeSet<&String> = full
                .iter()
                .filter(|(_, o)| component(o) != name)
                .filter(|(_, o)| !(name == "ray-network" && o["kind"] == "NetworkPolicy"))
                .map(|(s, _)| s)
                .collect();
            let got: BTreeSet<&String> = without.keys().collect();
            assert_eq!(got, expected, "{profile}: switching {name} off");
            for (s, o) in &without {
                // The one documented coupling: without logging, the RayCluster has no fluent-bit sidecar.
                if name == "logging" && o["kind"] == "RayCluster" {
                    continue;
                }
                assert_eq!(o, &full[s], "{profile}: switching {name} off changed {s}");
            }
        }
    }
}

#[test]
fn value_switches_render_and_touch_only_their_objects() {
    let kinds = |items: &[Value], comp: &str| -> BTreeSet<String> {
        items
            .iter()
            .filter(|o| component(o) == comp)
            .map(subject)
            .collect()
    };
    for profile in PROFILES {
        let base = render(profile, &[]);

        let no_crds = render(profile, &["kuberay.installCRDs=false"]);
        let removed: BTreeSet<String> = kinds(&base, "kuberay")
            .difference(&kinds(&no_crds, "kuberay"))
            .cloned()
            .collect();
        assert_eq!(
            removed,
            [
                "CustomResourceDefinition/rayclusters.ray.io",
                "CustomResourceDefinition/rayjobs.ray.io",
                "CustomResourceDefinition/rayservices.ray.io"
            ]
            .map(String::from)
            .into(),
            "{profile}"
        );

        let cron = render(profile, &["kuberay.featureGates.RayCronJob=true"]);
        find(&cron, "CustomResourceDefinition", "raycronjobs.ray.io");
        let args =
            find(&cron, "Deployment", "kuberay-operator")["spec"]["template"]["spec"]["containers"]
                [0]["args"]
                .to_string();
        assert!(args.contains("RayCronJob=true"), "{args}");

        let operator = render(profile, &["observability.mode=operator"]);
        let obs: BTreeSet<String> = kinds(&operator, "observability");
        for s in [
            "PodMonitor/ray-observability/ray-head-monitor",
            "PodMonitor/ray-observability/ray-workers-monitor",
            "ServiceMonitor/ray-observability/kuberay-operator",
            "ConfigMap/ray-observability/grafana-dashboards-ray",
        ] {
            assert!(
                obs.contains(s),
                "{profile}: operator mode lacks {s}: {obs:?}"
            );
        }
        assert!(
            !obs.iter().any(|s| s.contains("Deployment/")),
            "{profile}: operator mode deploys {obs:?}"
        );
        assert!(
            !kinds(&base, "observability")
                .iter()
                .any(|s| s.contains("Monitor/")),
            "{profile}: standalone renders monitors"
        );

        let no_ingress = render(profile, &["api.ingress.enabled=false"]);
        assert!(all_of(&no_ingress, "Ingress").is_empty());
        assert_eq!(
            no_ingress.len() + 1,
            base.len(),
            "{profile}: only the Ingress goes"
        );

        let two_ns = render(profile, &["global.rayNamespaces=[default, tenants]"]);
        assert_eq!(
            all_of(&two_ns, "ConfigMap")
                .iter()
                .filter(|o| o["metadata"]["name"] == "fluentbit-config")
                .count(),
            2
        );
    }
}

// --- item 4: what users depend on ------------------------------------------------------------------

#[test]
fn ingress_host_follows_each_profile_url() {
    for (profile, host, class, tls) in [
        (
            "r-eastus",
            "r-eastus.datalayer.run",
            "datalayer-traefik",
            true,
        ),
        ("prod1", "prod1.datalayer.run", "datalayer-traefik", true),
        ("local", "ray.localtest.me", "traefik", false),
    ] {
        let items = render(profile, &[]);
        let ingress = find(&items, "Ingress", "datalayer-ray");
        assert_eq!(ingress["metadata"]["namespace"], "datalayer-api");
        let spec = &ingress["spec"];
        assert_eq!(spec["ingressClassName"], class, "{profile}");
        assert_eq!(spec["rules"].as_array().unwrap().len(), 1);
        let rule = &spec["rules"][0];
        assert_eq!(rule["host"], host, "{profile}");
        let path = &rule["http"]["paths"][0];
        assert_eq!(path["path"], "/api/ray");
        assert_eq!(path["pathType"], "Prefix");
        assert_eq!(path["backend"]["service"]["name"], "datalayer-ray-svc");
        let issuer = &ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"];
        if tls {
            assert_eq!(
                spec["tls"],
                json!([{"hosts": [host], "secretName": "datalayer-ray-cert-secret"}]),
                "{profile}"
            );
            assert_eq!(issuer, "letsencrypt", "{profile}");
        } else {
            assert!(spec.get("tls").is_none(), "{profile}: {spec}");
            assert!(issuer.is_null(), "{profile}: {issuer}");
        }
        // The API gets the same URL.
        let env = &find(&items, "Deployment", "datalayer-ray")["spec"]["template"]["spec"]["containers"]
            [0]["env"];
        assert!(
            env.as_array().unwrap().contains(
                &json!({"name": "DATALAYER_RUN_URL", "value": format!("https://{host}")})
            ),
            "{env}"
        );
    }
}

#[test]
fn datalayer_run_url_from_the_environment_beats_the_profile() {
    for profile in PROFILES {
        let items = render_with(
            profile,
            &[],
            &[("DATALAYER_RUN_URL", "https://ray.example.com/base")],
        );
        let ingress = find(&items, "Ingress", "datalayer-ray");
        assert_eq!(
            ingress["spec"]["rules"][0]["host"], "ray.example.com",
            "{profile}"
        );
        if let Some(tls) = ingress["spec"].get("tls") {
            assert_eq!(tls[0]["hosts"], json!(["ray.example.com"]), "{profile}");
        }
        let env = &find(&items, "Deployment", "datalayer-ray")["spec"]["template"]["spec"]["containers"]
            [0]["env"];
        assert_eq!(
            env[0],
            json!({"name": "DATALAYER_RUN_URL", "value": "https://ray.example.com/base"}),
            "{profile}"
        );
    }
    let err = render_error(
        "local",
        &[],
        &[("DATALAYER_RUN_URL", "http://ray.example.com")],
    );
    assert!(
        err.contains("DATALAYER_RUN_URL") && err.contains("https"),
        "{err}"
    );
}

#[test]
fn api_rbac_is_exactly_the_documented_rules() {
    for profile in PROFILES {
        let items = render(profile, &[]);
        let role = find(&items, "ClusterRole", "datalayer-ray");
        let mut rules: Vec<(String, String, Vec<String>)> = Vec::new();
        for rule in role["rules"].as_array().unwrap() {
            let keys: BTreeSet<&str> = rule
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(
                keys,
                ["apiGroups", "resources", "verbs"].into(),
                "no resourceNames or nonResourceURLs: {rule}"
            );
            let mut verbs: Vec<String> = rule["verbs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_owned())
                .collect();
            verbs.sort();
            for group in rule["apiGroups"].as_array().unwrap() {
                for resource in rule["resources"].as_array().unwrap() {
                    rules.push((
                        group.as_str().unwrap().to_owned(),
                        resource.as_str().unwrap().to_owned(),
                        verbs.clone(),
                    ));
                }
            }
        }
        rules.sort();
        let v = |list: &[&str]| list.iter().map(ToString::to_string).collect::<Vec<_>>();
        let manage = v(&[
            "create", "delete", "get", "list", "patch", "update", "watch",
        ]);
        let read = v(&["get", "list", "watch"]);
        assert_eq!(
            rules,
            vec![
                (String::new(), "events".into(), read.clone()),
                (String::new(), "pods".into(), read),
                (String::new(), "pods/log".into(), v(&["get"])),
                ("ray.io".into(), "rayclusters".into(), manage.clone()),
                ("ray.io".into(), "rayjobs".into(), manage),
            ],
            "{profile}"
        );
        let binding = find(&items, "ClusterRoleBinding", "datalayer-ray");
        assert_eq!(
            binding["roleRef"],
            json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "datalayer-ray"})
        );
        assert_eq!(
            binding["subjects"],
            json!([{"kind": "ServiceAccount", "name": "datalayer-ray", "namespace": "datalayer-api"}])
        );
        let pod = &find(&items, "Deployment", "datalayer-ray")["spec"]["template"]["spec"];
        assert_eq!(pod["serviceAccountName"], "datalayer-ray");
    }
}

#[test]
fn bootstrap_cluster_autoscales_by_default_and_leaves_worker_replicas_to_ray() {
    let items = render("local", &[]);
    let cluster = find(&items, "RayCluster", "raycluster");
    let spec = &cluster["spec"];
    assert_eq!(spec["enableInTreeAutoscaling"], true);
    assert_eq!(spec["autoscalerOptions"]["idleTimeoutSeconds"], 60);
    assert_eq!(spec["autoscalerOptions"]["upscalingMode"], "Default");
    assert_eq!(spec["rayVersion"], "2.58.0");
    let workers = spec["workerGroupSpecs"].as_array().unwrap();
    assert_eq!(workers.len(), 1);
    assert_eq!(
        (
            &workers[0]["replicas"],
            &workers[0]["minReplicas"],
            &workers[0]["maxReplicas"]
        ),
        (&json!(1), &json!(1), &json!(3))
    );
    assert_eq!(
        cluster["metadata"]["annotations"]["plane.datalayer.io/controller-owned"],
        "spec.workerGroupSpecs[*].replicas"
    );
    let head_env = &spec["headGroupSpec"]["template"]["spec"]["containers"][0]["env"];
    assert!(head_env.as_array().unwrap().contains(&json!({"name": "RAY_PROMETHEUS_HOST", "value": "http://prometheus.ray-observability.svc:9090"})), "{head_env}");
    assert!(head_env.as_array().unwrap().contains(&json!({"name": "RAY_GRAFANA_HOST", "value": "http://grafana.ray-observability.svc:3000"})), "{head_env}");
    for params in [
        &spec["headGroupSpec"]["rayStartParams"],
        &workers[0]["rayStartParams"],
    ] {
        assert_eq!(params["metrics-export-port"], "8080");
    }

    // The tuning values reach the cluster; without autoscaling plane owns replicas again.
    let items = render(
        "local",
        &[
            "bootstrapRayCluster.autoscaling.idleTimeoutSeconds=300",
            "bootstrapRayCluster.autoscaling.upscalingMode=Conservative",
        ],
    );
    let options = &find(&items, "RayCluster", "raycluster")["spec"]["autoscalerOptions"];
    assert_eq!(
        (&options["idleTimeoutSeconds"], &options["upscalingMode"]),
        (&json!(300), &json!("Conservative"))
    );
    let items = render("local", &["bootstrapRayCluster.autoscaling.enabled=false"]);
    let cluster = find(&items, "RayCluster", "raycluster");
    assert_eq!(cluster["spec"]["enableInTreeAutoscaling"], false);
    assert!(cluster["spec"].get("autoscalerOptions").is_none());
    assert!(
        cluster["metadata"]
            .get("annotations")
            .is_none_or(|a| a.get("plane.datalayer.io/controller-owned").is_none())
    );

    // The bootstrap cluster is opt-in outside the local profile.
    for profile in ["r-eastus", "prod1"] {
        assert!(
            all_of(&render(profile, &[]), "RayCluster").is_empty(),
            "{profile}"
        );
    }
}

/// A run URL whose host cannot be an Ingress host is refused at input-check time, naming the
/// environment variable and why.
#[test]
fn a_run_url_that_cannot_be_an_ingress_host_is_refused() {
    for (url, why) in [
        (
            "https://10.0.0.1",
            "an Ingress host may not be an IP address",
        ),
        (
            "https://-bad-.io",
            "must start and end with a letter or digit (`-bad-`",
        ),
        ("https://a..io", "empty label"),
        ("https://x.io:8443", "must not have a port (:8443)"),
    ] {
        let err = render_error("r-eastus", &[], &[("DATALAYER_RUN_URL", url)]);
        for expected in [
            "DATALAYER_RUN_URL is not a valid URL",
            "--> environment variable DATALAYER_RUN_URL",
            why,
        ] {
            assert!(
                err.contains(expected),
                "{url}: {expected:?} missing:\n{err}"
            );
        }
    }
}

/// Labels and annotations from values are checked against Kubernetes' rules at render, all at
/// once, each naming the object, its template and the values path with its origin.
#[test]
fn labels_and_annotations_the_api_server_would_refuse_stop_the_render() {
    let err = render_error(
        "r-eastus",
        &[
            "observability.mode=operator",
            "observability.operator.selectorLabels.release=-bad-",
            "api.ingress.annotations.Bad Key=x",
        ],
        &[],
    );
    for expected in [
        "PodMonitor/ray-observability/ray-head-monitor has an invalid metadata.labels.release `-bad-`",
        "components/observability/monitors.yaml.tera",
        "it comes from values path `observability.operator.selectorLabels.release`, set by --set observability.operator.selectorLabels.release=-bad-",
        "Ingress/datalayer-api/datalayer-ray has an invalid metadata.annotations key `Bad Key`",
        "components/api/ingress.yaml.tera",
        "values path `api.ingress.annotations.Bad Key`",
        "4 problems found; nothing was sent to a cluster",
    ] {
        assert!(err.contains(expected), "{expected:?} missing:\n{err}");
    }
}

/// The chart's documented names and defaults: `bootstrapRayCluster: {enabled: false, autoscaling:
/// {enabled: true}, worker: {replicas: 1, minReplicas: 1, maxReplicas: 3}}`.
#[test]
fn the_bootstrap_raycluster_takes_the_charts_names_and_defaults() {
    let items = render("r-eastus", &["bootstrapRayCluster.enabled=true"]);
    let spec = &find(&items, "RayCluster", "raycluster")["spec"];
    assert_eq!(spec["enableInTreeAutoscaling"], true);
    let worker = &spec["workerGroupSpecs"][0];
    assert_eq!(
        (
            &worker["replicas"],
            &worker["minReplicas"],
            &worker["maxReplicas"]
        ),
        (&json!(1), &json!(1), &json!(3))
    );
    let items = render(
        "r-eastus",
        &[
            "bootstrapRayCluster.enabled=true",
            "bootstrapRayCluster.autoscaling.enabled=false",
        ],
    );
    let spec = &find(&items, "RayCluster", "raycluster")["spec"];
    assert_eq!(spec["enableInTreeAutoscaling"], false);
}

/// Values written for the old names (`ray.*`) are refused with the name to use now.
#[test]
fn the_old_ray_values_say_what_they_are_called_now() {
    let err = render_error(
        "r-eastus",
        &["ray.enabled=true", "ray.autoscaler.idleTimeoutSeconds=30"],
        &[],
    );
    for expected in [
        "unknown value `ray.enabled`",
        "--> --set ray.enabled=true",
        "did you mean `bootstrapRayCluster.enabled`? (renamed)",
        "unknown value `ray.autoscaler.idleTimeoutSeconds`",
        "did you mean `bootstrapRayCluster.autoscaling.idleTimeoutSeconds`? (renamed)",
    ] {
        assert!(err.contains(expected), "{expected:?} missing:\n{err}");
    }
    // A misspelt new name gets the nearest known key.
    let err = render_error("r-eastus", &["bootstrapRayClustr.enabled=true"], &[]);
    assert!(err.contains("did you mean `bootstrapRayCluster`?"), "{err}");
}

#[test]
fn worker_bounds_must_be_ordered() {
    let err = render_error("local", &["bootstrapRayCluster.worker.minReplicas=4"], &[]);
    assert!(
        err.contains("bootstrapRayCluster.worker.minReplicas")
            && err.contains("bootstrapRayCluster.worker.replicas"),
        "{err}"
    );
    let err = render_error("local", &["bootstrapRayCluster.worker.replicas=5"], &[]);
    assert!(
        err.contains("bootstrapRayCluster.worker.replicas")
            && err.contains("bootstrapRayCluster.worker.maxReplicas"),
        "{err}"
    );
    let err = render_error("local", &["api.replcas=2"], &[]);
    assert!(err.contains("api.replcas"), "{err}");
    let err = render_error("local", &["api.port=70000"], &[]);
    assert!(err.contains("api.port"), "{err}");
    let err = render_error("local", &["observability.mode=both"], &[]);
    assert!(err.contains("observability.mode"), "{err}");
    let err = render_error("local", &["bootstrapRayCluster.image.tag=latest"], &[]);
    assert!(err.contains("bootstrapRayCluster.image.tag"), "{err}");
}

#[test]
fn fluentbit_config_has_its_three_keys_in_every_ray_namespace() {
    let items = render("local", &["global.rayNamespaces=[default, team-a]"]);
    let maps: Vec<&Value> = items
        .iter()
        .filter(|o| o["kind"] == "ConfigMap" && o["metadata"]["name"] == "fluentbit-config")
        .collect();
    let namespaces: BTreeSet<&str> = maps
        .iter()
        .map(|o| o["metadata"]["namespace"].as_str().unwrap())
        .collect();
    assert_eq!(namespaces, ["default", "team-a"].into());
    for map in maps {
        let data = map["data"].as_object().unwrap();
        let keys: Vec<&str> = data.keys().map(String::as_str).collect();
        assert_eq!(keys, ["fluent-bit.conf", "parsers.conf", "script.lua"]);
        let conf = data["fluent-bit.conf"].as_str().unwrap();
        for needle in [
            "/tmp/ray/session_latest/logs/gcs_server.out",
            "/tmp/ray/session_latest/logs/raylet.out",
            "Name                   multiline",
            "Name               lua",
            "script             /fluent-bit/etc/script.lua",
            "Name               loki",
            "ray_cluster=${RAY_CLUSTER}",
            "Parsers_File       /fluent-bit/etc/parsers.conf",
        ] {
            assert!(
                conf.contains(needle),
                "fluent-bit.conf lacks {needle:?}:\n{conf}"
            );
        }
        assert!(
            data["parsers.conf"]
                .as_str()
                .unwrap()
                .contains("[MULTILINE_PARSER]")
        );
        assert!(
            data["script.lua"]
                .as_str()
                .unwrap()
                .contains("function ray_record(tag, timestamp, record)")
        );
    }
    // A bootstrap cluster outside the Ray namespaces would have no fluent-bit config: refused.
    let err = render_error("local", &["bootstrapRayCluster.namespace=elsewhere"], &[]);
    assert!(err.contains("global.rayNamespaces"), "{err}");
    // Only a cluster that exists needs it.
    render("prod1", &["bootstrapRayCluster.namespace=elsewhere"]);
    render(
        "local",
        &[
            "bootstrapRayCluster.namespace=elsewhere",
            "logging.enabled=false",
        ],
    );
}

/// The Loki labels fluent-bit sends are a fixed, small set: a job's, a worker's or a pid's id
/// never becomes a label (a stream per job would grow without bound); they go into the record.
/// The rendered script.lua runs under a real Lua 5.1 (fluent-bit embeds LuaJIT, a Lua 5.1).
#[test]
fn loki_labels_stay_bounded_and_ids_go_into_the_record() {
    let items = render("local", &[]);
    let map = items
        .iter()
        .find(|o| o["kind"] == "ConfigMap" && o["metadata"]["name"] == "fluentbit-config")
        .unwrap();
    let conf = map["data"]["fluent-bit.conf"].as_str().unwrap();
    let labels = conf
        .lines()
        .find_map(|l| l.trim().strip_prefix("Labels"))
        .expect("a Labels line")
        .trim();
    assert_eq!(
        labels,
        "job=ray, ray_cluster=${RAY_CLUSTER}, namespace=${POD_NAMESPACE}, node_type=${RAY_NODE_TYPE}, component=$component"
    );
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("script.lua");
    std::fs::write(&script, map["data"]["script.lua"].as_str().unwrap()).unwrap();
    // One line per file: the component label and the fields the record gained.
    let driver = format!(
        r#"dofile({script:?})
local fields = {{"job_submission_id", "job_id", "worker_id", "pid", "port", "dashboard_module"}}
for line in io.lines() do
  local tag, file = string.match(line, "^(%S+) (%S+)$")
  local _, _, record = ray_record(tag, 0, {{file = file, log = "hello"}})
  local out = record.component
  for _, f in ipairs(fields) do
    if record[f] ~= nil then out = out .. " " .. f .. "=" .. record[f] end
  end
  print(out)
end
"#
    );
    let logs = "/tmp/ray/session_latest/logs/";
    let cases = [
        ("ray.gcs_server", "gcs_server.out", "gcs_server"),
        ("ray.raylet", "raylet.out", "raylet"),
        ("ray.session", "dashboard_agent.log", "dashboard_agent"),
        (
            "ray.session",
            "dashboard_JobHead.log",
            "dashboard dashboard_module=JobHead",
        ),
        ("ray.session", "monitor.log", "monitor"),
        (
            "ray.session",
            "job-driver-raysubmit_aB3dE5fG7hJ9kL1m.log",
            "job-driver job_submission_id=raysubmit_aB3dE5fG7hJ9kL1m",
        ),
        (
            "ray.session",
            "job-driver-raysubmit_Zz9Yy8Xx7Ww6Vv5u.log",
            "job-driver job_submission_id=raysubmit_Zz9Yy8Xx7Ww6Vv5u",
        ),
        (
            "ray.session",
            "python-core-driver-02000000ffffffffffffffffffffffffffffffffffffffffffffffff_3141.log",
            "python-core-driver job_id=02000000ffffffffffffffffffffffffffffffffffffffffffffffff pid=3141",
        ),
        (
            "ray.session",
            "python-core-worker-9f3a2b1c4d5e_1234.log",
            "python-core-worker worker_id=9f3a2b1c4d5e pid=1234",
        ),
        (
            "ray.session",
            "worker-2f1e0a9b8c7d-01000000-4321.out",
            "worker job_id=01000000 worker_id=2f1e0a9b8c7d pid=4321",
        ),
        (
            "ray.session",
            "runtime_env_setup-01000000.log",
            "runtime_env_setup job_id=01000000",
        ),
        (
            "ray.session",
            "ray_client_server_23000.out",
            "ray_client_server port=23000",
        ),
        ("ray.session", "something-new-7.log", "other"),
    ];
    let input = cases
        .iter()
        .fold(String::new(), |mut input, (tag, file, _)| {
            input.push_str(&format!("{tag} {logs}{file}\n"));
            input
        });
    let mut child = std::process::Command::new("lua5.1")
        .arg("-e")
        .arg(&driver)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("lua5.1 (Debian package lua5.1; `.ci/run` installs it) runs fluent-bit's script");
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let want: Vec<String> = cases.iter().map(|(.., w)| (*w).to_owned()).collect();
    assert_eq!(got, want);
    // Two jobs, one label value: the component set is fixed whatever the ids.
    let components: BTreeSet<&str> = got.iter().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(components.len(), cases.len() - 1, "{components:?}");
}

#[test]
fn the_ray_container_comes_first_and_shares_its_logs_with_fluent_bit() {
    let items = render("local", &[]);
    let spec = &find(&items, "RayCluster", "raycluster")["spec"];
    let mut pods = vec![("head", &spec["headGroupSpec"]["template"]["spec"])];
    pods.extend(
        spec["workerGroupSpecs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| ("worker", &g["template"]["spec"])),
    );
    for (role, pod) in pods {
        let containers = pod["containers"].as_array().unwrap();
        let names: Vec<&str> = containers
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [format!("ray-{role}").as_str(), "fluentbit"],
            "{role}"
        );
        for c in containers {
            let mounts = c["volumeMounts"].as_array().unwrap();
            assert!(
                mounts.contains(&json!({"name": "ray-logs", "mountPath": "/tmp/ray"})),
                "{role}/{}: {mounts:?}",
                c["name"]
            );
        }
        let volumes = pod["volumes"].as_array().unwrap();
        assert!(
            volumes.contains(&json!({"name": "ray-logs", "emptyDir": {}})),
            "{volumes:?}"
        );
        assert!(
            volumes.contains(
                &json!({"name": "fluentbit-config", "configMap": {"name": "fluentbit-config"}})
            ),
            "{volumes:?}"
        );
    }
    // Logging off: no sidecar, the Ray container alone.
    let items = render("local", &["logging.enabled=false"]);
    let spec = &find(&items, "RayCluster", "raycluster")["spec"];
    assert_eq!(
        spec["headGroupSpec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn generated_secrets_are_never_printed() {
    for profile in PROFILES {
        for output in ["json", "yaml"] {
            let out = plane()
                .args(["template", ADDON, "--profile", profile, "-o", output])
                .output()
                .unwrap();
            assert!(out.status.success());
            let stdout = String::from_utf8(out.stdout).unwrap();
            assert!(
                !stdout.contains("plane.datalayer.io/generate"),
                "{profile} -o {output} prints a generated Secret"
            );
            assert!(
                !stdout.contains("kind: Secret") && !stdout.contains("\"kind\": \"Secret\""),
                "{profile} -o {output} prints a Secret"
            );
            let stderr = String::from_utf8(out.stderr).unwrap();
            assert!(
                stderr.contains("Secret/ray-observability/grafana-admin"),
                "{stderr}"
            );
        }
        // Grafana still reads its password from that Secret.
        let items = render(profile, &[]);
        let env = &find(&items, "Deployment", "grafana")["spec"]["template"]["spec"]["containers"]
            [0]["env"];
        assert!(env.as_array().unwrap().contains(&json!({"name": "GF_SECURITY_ADMIN_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "grafana-admin", "key": "admin-password"}}})), "{env}");
    }
}

// --- item 2: hardening, pinned images, RBAC without wildcards --------------------------------------

/// Every pod spec in the render, named, with the autoscaler container that `KubeRay` injects from
/// autoscalerOptions.
fn pod_specs(items: &[Value]) -> Vec<(String, Value)> {
    let mut pods = Vec::new();
    for o in items {
        let s = subject(o);
        match o["kind"].as_str().unwrap() {
            "Deployment" | "StatefulSet" | "DaemonSet" => {
                pods.push((s, o["spec"]["template"]["spec"].clone()));
            }
            "RayCluster" => {
                let spec = &o["spec"];
                pods.push((
                    format!("{s} head"),
                    spec["headGroupSpec"]["template"]["spec"].clone(),
                ));
                for g in spec["workerGroupSpecs"].as_array().unwrap() {
                    pods.push((
                        format!("{s} {}", g["groupName"]),
                        g["template"]["spec"].clone(),
                    ));
                }
                if spec["enableInTreeAutoscaling"] == true {
                    let options = &spec["autoscalerOptions"];
                    let autoscaler = json!({"name": "autoscaler", "image": spec["headGroupSpec"]["template"]["spec"]["containers"][0]["image"],
                        "resources": options["resources"], "securityContext": options["securityContext"]});
                    let pod_security =
                        spec["headGroupSpec"]["template"]["spec"]["securityContext"].clone();
                    pods.push((
                        format!("{s} autoscaler"),
                        json!({"securityContext": pod_security, "containers": [autoscaler]}),
                    ));
                }
            }
            _ => {}
        }
    }
    pods
}

/// Containers allowed a writable root filesystem, and why: the Ray image keeps its Python and
/// writes runtime environments and caches under its home directory.
const WRITABLE_ROOT: [&str; 3] = ["ray-head", "ray-worker", "autoscaler"];

#[test]
fn every_container_is_hardened_and_sized() {
    for profile in PROFILES {
        let items = render(profile, &["bootstrapRayCluster.enabled=true"]);
        let pods = pod_specs(&items);
        assert!(
            pods.len() >= 7,
            "{profile}: {:?}",
            pods.iter().map(|p| &p.0).collect::<Vec<_>>()
        );
        for (name, pod) in pods {
            let pod_sc = &pod["securityContext"];
            let containers = pod["containers"]
                .as_array()
                .unwrap()
                .iter()
                .chain(pod["initContainers"].as_array().into_iter().flatten());
            for c in containers {
                let at = format!("{profile}: {name} container {}", c["name"]);
                let sc = &c["securityContext"];
                for (key, want) in [
                    ("requests", "cpu"),
                    ("requests", "memory"),
                    ("limits", "cpu"),
                    ("limits", "memory"),
                ] {
                    assert!(
                        !c["resources"][key][want].is_null(),
                        "{at}: no resources.{key}.{want}"
                    );
                }
                assert!(
                    sc["runAsNonRoot"] == true || pod_sc["runAsNonRoot"] == true,
                    "{at}: runAsNonRoot"
                );
                assert_eq!(sc["allowPrivilegeEscalation"], false, "{at}");
                assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]), "{at}");
                assert!(sc["capabilities"].get("add").is_none(), "{at}");
                assert_ne!(sc["privileged"], true, "{at}");
                let seccomp = if sc["seccompProfile"].is_null() {
                    &pod_sc["seccompProfile"]
                } else {
                    &sc["seccompProfile"]
                };
                assert_eq!(seccomp["type"], "RuntimeDefault", "{at}");
                let writable = WRITABLE_ROOT.contains(&c["name"].as_str().unwrap());
                assert_eq!(
                    sc["readOnlyRootFilesystem"], !writable,
                    "{at}: readOnlyRootFilesystem"
                );
                if pod_sc["runAsUser"].is_number() {
                    assert_ne!(pod_sc["runAsUser"], 0, "{at}");
                }
            }
            assert!(
                pod.get("hostNetwork").is_none() && pod.get("hostPID").is_none(),
                "{profile}: {name}"
            );
        }
    }
}

#[test]
fn every_image_is_pinned() {
    for profile in PROFILES {
        let items = render(profile, &["bootstrapRayCluster.enabled=true"]);
        let mut images = BTreeSet::new();
        for (name, pod) in pod_specs(&items) {
            for c in pod["containers"].as_array().unwrap() {
                let image = c["image"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{name}: container without image"));
                images.insert(image.to_owned());
                let last = image.rsplit('/').next().unwrap();
                let pinned = image.contains("@sha256:")
                    || last
                        .split_once(':')
                        .is_some_and(|(_, tag)| !tag.is_empty() && tag != "latest");
                assert!(pinned, "{profile}: {name} uses unpinned image {image}");
            }
        }
        for expected in [
            "quay.io/kuberay/operator:v1.7.0",
            "rayproject/ray:2.58.0-py312",
            "fluent/fluent-bit:4.2.7",
        ] {
            assert!(images.contains(expected), "{profile}: {images:?}");
        }
    }
}

#[test]
fn images_take_a_tag_a_digest_or_both() {
    let digest = format!("sha256:{}", "0123456789abcdef".repeat(4));
    let image_of = |sets: &[&str]| -> String {
        let items = render("local", sets);
        let api = find(&items, "Deployment", "datalayer-ray");
        api["spec"]["template"]["spec"]["containers"][0]["image"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(image_of(&[]), "datalayer/ray:0.0.1");
    let both = format!("api.image.digest={digest}");
    assert_eq!(image_of(&[&both]), format!("datalayer/ray:0.0.1@{digest}"));
    assert_eq!(
        image_of(&["api.image.tag=", &both]),
        format!("datalayer/ray@{digest}")
    );
    // The Ray image of the bootstrap cluster (and so of every pod KubeRay starts from it) too.
    let items = render(
        "local",
        &[&format!("bootstrapRayCluster.image.digest={digest}")],
    );
    let cluster = find(&items, "RayCluster", "raycluster");
    assert_eq!(
        cluster["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["image"],
        format!("rayproject/ray:2.58.0-py312@{digest}")
    );
    // Neither, or a digest that is not one: refused with the values path.
    let err = render_error("local", &["api.image.tag="], &[]);
    assert!(err.contains("invalid value at `api.image`"), "{err}");
    let err = render_error("local", &["api.image.digest=sha256:123"], &[]);
    assert!(err.contains("invalid value at `api.image.digest`"), "{err}");
}

#[test]
fn no_rbac_rule_uses_a_wildcard() {
    for profile in PROFILES {
        for mode in ["standalone", "operator"] {
            let mode = format!("observability.mode={mode}");
            let items = render(profile, &[mode.as_str()]);
            let roles: Vec<&Value> = items
                .iter()
                .filter(|o| o["kind"] == "ClusterRole" || o["kind"] == "Role")
                .collect();
            assert!(roles.len() >= 3, "{profile}");
            for role in roles {
                for rule in role["rules"].as_array().unwrap() {
                    for key in [
                        "verbs",
                        "resources",
                        "apiGroups",
                        "nonResourceURLs",
                        "resourceNames",
                    ] {
                        for v in rule[key].as_array().into_iter().flatten() {
                            assert!(
                                !v.as_str().unwrap().contains('*'),
                                "{profile}: {} {key} {v}",
                                subject(role)
                            );
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn the_operator_gets_the_kuberay_rules_and_its_leader_election_role() {
    let items = render("prod1", &[]);
    let role = find(&items, "ClusterRole", "kuberay-operator");
    let grants = |group: &str, resource: &str, verb: &str| {
        role["rules"].as_array().unwrap().iter().any(|r| {
            r["apiGroups"].as_array().unwrap().contains(&json!(group))
                && r["resources"]
                    .as_array()
                    .unwrap()
                    .contains(&json!(resource))
                && r["verbs"].as_array().unwrap().contains(&json!(verb))
        })
    };
    for (group, resource, verb) in [
        ("ray.io", "rayclusters", "watch"),
        ("ray.io", "rayclusters/status", "patch"),
        ("ray.io", "rayjobs/finalizers", "update"),
        ("", "pods", "deletecollection"),
        ("", "serviceaccounts", "create"),
        ("rbac.authorization.k8s.io", "roles", "create"),
        ("batch", "jobs", "create"),
        ("coordination.k8s.io", "leases", "update"),
        ("networking.k8s.io", "ingresses", "create"),
    ] {
        assert!(
            grants(group, resource, verb),
            "kuberay-operator lacks {group}/{resource} {verb}"
        );
    }
    let lease = find(&items, "Role", "kuberay-operator-leader-election");
    assert_eq!(lease["metadata"]["namespace"], "ray-system");
    let deploy = find(&items, "Deployment", "kuberay-operator");
    let args = deploy["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap();
    assert!(
        args.contains(&json!("--enable-leader-election=true")),
        "{args:?}"
    );
    assert!(
        args.iter()
            .any(|a| a.as_str().unwrap().starts_with("--feature-gates=")
                && a.as_str()
                    .unwrap()
                    .contains("RayClusterStatusConditions=true")),
        "{args:?}"
    );
}

#[test]
fn services_select_their_pods_and_target_declared_ports() {
    for profile in PROFILES {
        let items = render(profile, &[]);
        for svc in all_of(&items, "Service") {
            let ns = &svc["metadata"]["namespace"];
            let selector = svc["spec"]["selector"].as_object().unwrap();
            let targets: Vec<&Value> = items
                .iter()
                .filter(|o| o["kind"] == "Deployment" && &o["metadata"]["namespace"] == ns)
                .filter(|o| {
                    let labels = &o["spec"]["template"]["metadata"]["labels"];
                    selector.iter().all(|(k, v)| &labels[k] == v)
                })
                .collect();
            assert_eq!(
                targets.len(),
                1,
                "{profile}: {} selects {} Deployments",
                subject(svc),
                targets.len()
            );
            let deploy = targets[0];
            let match_labels = deploy["spec"]["selector"]["matchLabels"]
                .as_object()
                .unwrap();
            assert!(
                match_labels
                    .iter()
                    .all(|(k, v)| &deploy["spec"]["template"]["metadata"]["labels"][k] == v),
                "{}",
                subject(deploy)
            );
            let ports: Vec<&Value> = deploy["spec"]["template"]["spec"]["containers"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|c| c["ports"].as_array().unwrap().iter())
                .collect();
            for port in svc["spec"]["ports"].as_array().unwrap() {
                let target = &port["targetPort"];
                assert!(
                    ports
                        .iter()
                        .any(|p| &p["name"] == target || &p["containerPort"] == target),
                    "{profile}: {} targets {target}, which {} does not declare",
                    subject(svc),
                    subject(deploy)
                );
            }
        }
    }
}

#[test]
fn every_object_belongs_to_a_namespace_the_bundle_creates_or_a_ray_namespace() {
    for profile in PROFILES {
        let items = render(profile, &["bootstrapRayCluster.enabled=true"]);
        let created: BTreeSet<&str> = all_of(&items, "Namespace")
            .iter()
            .map(|n| n["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            created,
            ["datalayer-api", "ray-observability", "ray-system"].into(),
            "{profile}"
        );
        for o in &items {
            if let Some(ns) = o["metadata"]["namespace"].as_str() {
                assert!(
                    created.contains(ns) || ns == "default",
                    "{profile}: {} is in a namespace nobody creates",
                    subject(o)
                );
            }
        }
    }
}

#[test]
fn a_replicated_api_is_spread_and_protected_from_voluntary_disruption() {
    let prod = render("prod1", &[]);
    let api = &find(&prod, "Deployment", "datalayer-ray")["spec"];
    assert_eq!(api["replicas"], 2);
    assert_eq!(
        api["template"]["spec"]["topologySpreadConstraints"][0]["topologyKey"],
        "kubernetes.io/hostname"
    );
    let pdb = find(&prod, "PodDisruptionBudget", "datalayer-ray");
    assert_eq!(
        pdb["spec"]["selector"]["matchLabels"],
        find(&prod, "Deployment", "datalayer-ray")["spec"]["selector"]["matchLabels"]
    );
    // A single replica gets neither: a PDB would block every node drain.
    let local = render("local", &[]);
    assert!(all_of(&local, "PodDisruptionBudget").is_empty());
    assert!(
        find(&local, "Deployment", "datalayer-ray")["spec"]["template"]["spec"]
            .get("topologySpreadConstraints")
            .is_none()
    );
}

#[test]
fn the_ray_dashboard_charts_the_core_ray_metrics() {
    for mode in ["standalone", "operator"] {
        let mode = format!("observability.mode={mode}");
        let items = render("prod1", &[mode.as_str()]);
        let map = find(&items, "ConfigMap", "grafana-dashboards-ray");
        assert_eq!(
            map["metadata"]["labels"]["grafana_dashboard"], "1",
            "the Grafana sidecar label"
        );
        let dashboard: Value =
            serde_json::from_str(map["data"]["ray-cluster.json"].as_str().unwrap())
                .expect("the dashboard is JSON");
        assert_eq!(dashboard["uid"], "datalayer-ray-cluster");
        let panels = dashboard["panels"].as_array().unwrap();
        let exprs: Vec<&str> = panels
            .iter()
            .flat_map(|p| p["targets"].as_array().into_iter().flatten())
            .map(|t| t["expr"].as_str().unwrap())
            .collect();
        assert!(
            panels.iter().filter(|p| p["type"] != "row").count() >= 12,
            "{} panels",
            panels.len()
        );
        for metric in [
            "ray_node_cpu_utilization",
            "ray_node_mem_used",
            "ray_tasks",
            "ray_actors",
            "ray_cluster_active_nodes",
            "ray_object_store_memory",
        ] {
            assert!(
                exprs.iter().any(|e| e.contains(metric)),
                "no panel charts {metric}"
            );
        }
        // Every Ray query filters on the Cluster variable that the scrape relabelling fills.
        for e in exprs.iter().filter(|e| e.contains("ray_")) {
            assert!(e.contains("ray_io_cluster=~\"$Cluster\""), "{e}");
        }
        let variables: Vec<&str> = dashboard["templating"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap())
            .collect();
        assert_eq!(variables, ["datasource", "Cluster"]);
    }
}
