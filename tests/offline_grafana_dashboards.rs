//! Grafana inside Ray's dashboard: every dashboard UID, panel id and URL variable the Ray dashboard
//! embeds (recorded in `tests/fixtures/ray/grafana-embeds.tsv`) is provisioned by the datalayer-ray
//! bundle, and Grafana is reachable from browsers, with anonymous Viewer and embedding, exactly
//! when its route (or an iframe host) asks for it.

mod common;

use std::collections::BTreeSet;

use common::{Fixture, LOCAL, builtin, text};
use serde_json::Value;

/// The run host of profile `local` (its DATALAYER_RUN_URL).
const LOCAL_HOST: &str = "ray.localtest.me";
const ROUTE_ON: &[&str] = &["--set", "observability.grafana.ingress.enabled=true"];

/// One line of the recorded facts.
struct Embed {
    uid: String,
    /// `dashboard`, `panel` or `var`.
    kind: String,
    /// The panel id or the variable name.
    name: String,
    /// For a panel: the metrics Ray's own panel queries.
    metrics: Vec<String>,
}

/// `tests/fixtures/ray/grafana-embeds.tsv`, the one place the tests hold these facts.
fn embeds() -> Vec<Embed> {
    let path = common::fixtures().join("ray/grafana-embeds.tsv");
    let facts = std::fs::read_to_string(&path).expect("the recorded Ray embeds");
    let rows: Vec<Embed> = facts
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|line| {
            let cells: Vec<&str> = line.split('\t').collect();
            let [uid, kind, name, _title, metrics, _source] = cells[..] else {
                panic!("not six cells: {line:?}");
            };
            assert!(
                ["dashboard", "panel", "var"].contains(&kind),
                "unknown kind in {line:?}"
            );
            Embed {
                uid: uid.to_owned(),
                kind: kind.to_owned(),
                name: name.to_owned(),
                metrics: metrics
                    .split(',')
                    .filter(|m| *m != "-")
                    .map(str::to_owned)
                    .collect(),
            }
        })
        .collect();
    assert!(
        rows.len() > 50,
        "{} facts in {}",
        rows.len(),
        path.display()
    );
    rows
}

fn uids(facts: &[Embed]) -> BTreeSet<&str> {
    facts.iter().map(|e| e.uid.as_str()).collect()
}

/// `template datalayer-ray --profile local -o json ARGS` of `fixture`: exit code, objects, stderr.
fn render(fixture: &Fixture, args: &[&str]) -> (Option<i32>, Vec<Value>, String) {
    let out = fixture
        .template(&[LOCAL, args, &["-o", "json"]].concat())
        .output()
        .expect("plane runs");
    let items = serde_json::from_slice::<Value>(&out.stdout)
        .ok()
        .and_then(|list| list["items"].as_array().cloned())
        .unwrap_or_default();
    (out.status.code(), items, text(&out.stderr))
}

/// The objects of a render that must succeed.
fn objects(args: &[&str]) -> Vec<Value> {
    let (code, items, stderr) = render(&builtin("datalayer-ray"), args);
    assert_eq!(code, Some(0), "{args:?}: {stderr}");
    items
}

/// Stderr of a render that must be refused (exit 2).
fn refusal(args: &[&str]) -> String {
    let (code, items, stderr) = render(&builtin("datalayer-ray"), args);
    assert_eq!(
        code,
        Some(2),
        "{args:?} should be refused; got {} objects",
        items.len()
    );
    stderr
}

fn find<'a>(items: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
    items
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
}

fn get<'a>(items: &'a [Value], kind: &str, name: &str) -> &'a Value {
    find(items, kind, name).unwrap_or_else(|| panic!("{kind}/{name} not rendered"))
}

/// The dashboards of every ConfigMap a Grafana sidecar picks up (`grafana_dashboard: "1"`), as
/// (ConfigMap/key, parsed JSON); a key that is no JSON fails the test.
fn dashboards(items: &[Value]) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for map in items
        .iter()
        .filter(|o| o["kind"] == "ConfigMap" && o["metadata"]["labels"]["grafana_dashboard"] == "1")
    {
        let name = map["metadata"]["name"].as_str().unwrap();
        let size: usize = map["data"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_str().unwrap().len())
            .sum();
        assert!(size < 900 * 1024, "ConfigMap {name} holds {size} bytes");
        for (key, text) in map["data"].as_object().unwrap() {
            let dashboard = serde_json::from_str(text.as_str().unwrap())
                .unwrap_or_else(|e| panic!("{name}/{key} is not JSON: {e}"));
            out.push((format!("{name}/{key}"), dashboard));
        }
    }
    out
}

/// Every panel of a dashboard, rows and the panels of collapsed rows included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    fn walk<'a>(list: &'a Value, out: &mut Vec<&'a Value>) {
        for panel in list.as_array().into_iter().flatten() {
            out.push(panel);
            walk(&panel["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

fn variables(dashboard: &Value) -> Vec<&str> {
    dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| v["name"].as_str().unwrap())
        .collect()
}

/// What the provisioned dashboards lack of the recorded facts, one line per problem.
fn problems(items: &[Value], facts: &[Embed]) -> Vec<String> {
    let mut out = Vec::new();
    let all = dashboards(items);
    for uid in uids(facts) {
        let count = all.iter().filter(|(_, d)| d["uid"] == uid).count();
        if count != 1 {
            out.push(format!("{uid} is provisioned {count} times"));
        }
    }
    for (at, dashboard) in &all {
        let ids: Vec<u64> = panels(dashboard)
            .iter()
            .map(|p| p["id"].as_u64().unwrap())
            .collect();
        if ids.len() != ids.iter().collect::<BTreeSet<_>>().len() {
            out.push(format!("{at}: panel ids repeat: {ids:?}"));
        }
        // The datasource is the variable Ray sets (var-datasource=Prometheus, RAY_PROMETHEUS_NAME)
        // or the bundle's datasource by name.
        let datasource = dashboard["templating"]["list"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|v| v["name"] == "datasource");
        if !datasource.is_some_and(|v| v["type"] == "datasource" && v["query"] == "prometheus") {
            out.push(format!("{at}: no prometheus variable `datasource`"));
        }
        for panel in panels(dashboard).into_iter().filter(|p| p["type"] != "row") {
            let ds = &panel["datasource"];
            if !(ds["uid"] == "${datasource}" || ds == "Prometheus" || ds["uid"] == "prometheus") {
                out.push(format!("{at}: panel {} reads datasource {ds}", panel["id"]));
            }
        }
    }
    for fact in facts {
        let Some((at, dashboard)) = all.iter().find(|(_, d)| d["uid"] == fact.uid.as_str()) else {
            continue;
        };
        match fact.kind.as_str() {
            "panel" => {
                let id: u64 = fact.name.parse().unwrap();
                let Some(panel) = panels(dashboard)
                    .into_iter()
                    .find(|p| p["id"] == id && p["type"] != "row")
                else {
                    out.push(format!("{at}: no panel {id} (the Ray dashboard embeds it)"));
                    continue;
                };
                let exprs: Vec<&str> = panel["targets"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|t| t["expr"].as_str())
                    .collect();
                if !fact
                    .metrics
                    .iter()
                    .any(|m| exprs.iter().any(|e| e.contains(m.as_str())))
                {
                    out.push(format!(
                        "{at}: panel {id} queries none of Ray's metrics {:?}: {exprs:?}",
                        fact.metrics
                    ));
                }
            }
            "var" if !variables(dashboard).contains(&fact.name.as_str()) => {
                out.push(format!(
                    "{at}: no variable {} (the Ray dashboard passes var-{})",
                    fact.name, fact.name
                ));
            }
            _ => {}
        }
    }
    out
}

fn container_env<'a>(container: &'a Value, name: &str) -> Option<&'a str> {
    container["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)
        .and_then(|e| e["value"].as_str())
}

fn grafana_env<'a>(items: &'a [Value], name: &str) -> Option<&'a str> {
    container_env(
        &get(items, "Deployment", "grafana")["spec"]["template"]["spec"]["containers"][0],
        name,
    )
}

fn iframe_host(items: &[Value]) -> Option<&str> {
    let cluster = items
        .iter()
        .find(|o| o["kind"] == "RayCluster")
        .expect("a RayCluster");
    container_env(
        &cluster["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0],
        "RAY_GRAFANA_IFRAME_HOST",
    )
}

/// Whether the Grafana NetworkPolicy admits `namespace`'s pods labelled `labels` on 3000.
fn grafana_admits(items: &[Value], namespace: &str, labels: &Value) -> bool {
    let policy = get(items, "NetworkPolicy", "grafana");
    policy["spec"]["ingress"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|rule| {
            rule["ports"]
                .as_array()
                .is_some_and(|ports| ports.iter().any(|p| p["port"] == 3000))
        })
        .flat_map(|rule| rule["from"].as_array().unwrap())
        .any(|peer| {
            peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] == namespace
                && &peer["podSelector"]["matchLabels"] == labels
        })
}

#[test]
fn every_dashboard_the_ray_dashboard_embeds_is_provisioned_in_both_modes() {
    let facts = embeds();
    assert_eq!(
        uids(&facts),
        BTreeSet::from([
            "rayDataDashboard",
            "rayDefaultDashboard",
            "rayServeDashboard",
            "rayServeDeploymentDashboard"
        ])
    );
    for mode in ["standalone", "operator"] {
        let set = format!("observability.mode={mode}");
        let items = objects(&["--set", &set]);
        assert_eq!(problems(&items, &facts), Vec::<String>::new(), "{mode}");
        // The bundle's own dashboard stays.
        assert!(
            dashboards(&items)
                .iter()
                .any(|(_, d)| d["uid"] == "datalayer-ray-cluster"),
            "{mode}"
        );
    }
    // The standalone Grafana mounts them where its file provider looks.
    let items = objects(&[]);
    let pod = &get(&items, "Deployment", "grafana")["spec"]["template"]["spec"];
    assert!(
        pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["configMap"]["name"] == "grafana-dashboards-ray"),
        "{pod}"
    );
}

#[test]
fn a_dropped_uid_panel_or_variable_is_caught() {
    let facts = embeds();
    let fixture = builtin("datalayer-ray")
        .patch_file(
            "files/grafana/ray-serve.json",
            "\"uid\": \"rayServeDashboard\"",
            "\"uid\": \"rayServe\"",
        )
        .patch_file(
            "files/grafana/ray-default.json",
            "\"id\": 41,",
            "\"id\": 4100,",
        )
        .patch_file(
            "files/grafana/ray-serve-deployment.json",
            "\"name\": \"Replica\"",
            "\"name\": \"ReplicaId\"",
        );
    let (code, items, stderr) = render(&fixture, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    let found = problems(&items, &facts).join("\n");
    for expected in [
        "rayServeDashboard is provisioned 0 times",
        "no panel 41",
        "no variable Replica",
    ] {
        assert!(found.contains(expected), "{expected:?} not in:\n{found}");
    }
}

#[test]
fn without_the_route_grafana_is_neither_anonymous_nor_embeddable() {
    let items = objects(&[]);
    assert!(find(&items, "Ingress", "grafana").is_none());
    assert_eq!(
        grafana_env(&items, "GF_AUTH_ANONYMOUS_ENABLED"),
        Some("false")
    );
    assert_eq!(
        grafana_env(&items, "GF_SECURITY_ALLOW_EMBEDDING"),
        Some("false")
    );
    assert_eq!(grafana_env(&items, "GF_SERVER_ROOT_URL"), None);
    assert_eq!(iframe_host(&items), None);
    let traefik = serde_json::json!({"app.kubernetes.io/name": "traefik"});
    assert!(!grafana_admits(&items, "kube-system", &traefik));
}

#[test]
fn the_route_serves_grafana_under_grafana_on_the_run_host_for_the_iframes() {
    let items = objects(ROUTE_ON);
    let ingress = get(&items, "Ingress", "grafana");
    assert_eq!(ingress["metadata"]["namespace"], "ray-observability");
    let api = get(&items, "Ingress", "datalayer-ray");
    assert_eq!(
        ingress["spec"]["ingressClassName"],
        api["spec"]["ingressClassName"]
    );
    let rule = &ingress["spec"]["rules"][0];
    assert_eq!(rule["host"], LOCAL_HOST);
    let path = &rule["http"]["paths"][0];
    assert_eq!(path["path"], "/grafana");
    assert_eq!(path["pathType"], "Prefix");
    assert_eq!(path["backend"]["service"]["name"], "grafana");
    assert_eq!(path["backend"]["service"]["port"]["name"], "http");
    // The Service's port it names.
    assert!(
        get(&items, "Service", "grafana")["spec"]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "http" && p["port"] == 3000)
    );

    let url = format!("https://{LOCAL_HOST}/grafana");
    assert_eq!(iframe_host(&items), Some(url.as_str()));
    assert_eq!(
        grafana_env(&items, "GF_AUTH_ANONYMOUS_ENABLED"),
        Some("true")
    );
    assert_eq!(
        grafana_env(&items, "GF_AUTH_ANONYMOUS_ORG_ROLE"),
        Some("Viewer")
    );
    assert_eq!(
        grafana_env(&items, "GF_SECURITY_ALLOW_EMBEDDING"),
        Some("true")
    );
    assert_eq!(
        grafana_env(&items, "GF_SERVER_ROOT_URL"),
        Some(format!("{url}/").as_str())
    );
    assert_eq!(
        grafana_env(&items, "GF_SERVER_SERVE_FROM_SUB_PATH"),
        Some("true")
    );

    // Profile local's ingress controller is k3s's Traefik in kube-system.
    let traefik = serde_json::json!({"app.kubernetes.io/name": "traefik"});
    assert!(grafana_admits(&items, "kube-system", &traefik));

    // No two Ingresses serve one route (plane refuses that between releases too).
    let routes: Vec<(String, String)> = items
        .iter()
        .filter(|o| o["kind"] == "Ingress")
        .flat_map(|o| o["spec"]["rules"].as_array().unwrap().clone())
        .flat_map(|r| {
            let host = r["host"].as_str().unwrap().to_owned();
            r["http"]["paths"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| (host.clone(), p["path"].as_str().unwrap().to_owned()))
                .collect::<Vec<_>>()
        })
        .collect();
    // Nor does any other route on the run host reach into Grafana's path, or it into theirs.
    let grafana = (LOCAL_HOST.to_owned(), "/grafana".to_owned());
    assert_eq!(
        routes.iter().filter(|r| **r == grafana).count(),
        1,
        "{routes:?}"
    );
    for (host, path) in routes.iter().filter(|r| **r != grafana) {
        let nested = |a: &str, b: &str| a == b || a.starts_with(&format!("{b}/"));
        assert!(
            host != LOCAL_HOST || !(nested(path, "/grafana") || nested("/grafana", path)),
            "{host}{path} overlaps the Grafana route"
        );
    }
    assert!(
        routes.contains(&(LOCAL_HOST.to_owned(), "/api/ray".to_owned())),
        "{routes:?}"
    );
}

#[test]
fn the_route_takes_the_api_ingress_tls_where_the_profile_has_it() {
    let out = common::plane()
        .args([
            "template",
            "datalayer-ray",
            "--profile",
            "prod1",
            "-o",
            "json",
        ])
        .args(ROUTE_ON)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    let items = list["items"].as_array().unwrap();
    let ingress = get(items, "Ingress", "grafana");
    let api = get(items, "Ingress", "datalayer-ray");
    assert_eq!(
        ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"],
        api["metadata"]["annotations"]["cert-manager.io/cluster-issuer"]
    );
    assert_eq!(
        ingress["spec"]["tls"][0]["hosts"],
        api["spec"]["tls"][0]["hosts"]
    );
    assert_eq!(
        ingress["spec"]["tls"][0]["secretName"],
        "grafana-cert-secret"
    );
    assert_eq!(ingress["spec"]["rules"][0]["host"], "prod1.datalayer.run");
    assert!(grafana_admits(
        items,
        "datalayer-traefik",
        &serde_json::json!({"app.kubernetes.io/name": "traefik"})
    ));
}

#[test]
fn a_given_iframe_host_wins_and_turns_anonymous_viewing_on() {
    let given = [
        "--set",
        "bootstrapRayCluster.grafanaIframeHost=http://localhost:3000",
    ];
    for args in [&given[..], &[&given[..], ROUTE_ON].concat()] {
        let items = objects(args);
        assert_eq!(
            iframe_host(&items),
            Some("http://localhost:3000"),
            "{args:?}"
        );
        assert_eq!(
            grafana_env(&items, "GF_AUTH_ANONYMOUS_ENABLED"),
            Some("true")
        );
        assert_eq!(
            grafana_env(&items, "GF_SECURITY_ALLOW_EMBEDDING"),
            Some("true")
        );
    }
    // Another Grafana serves the Ray heads: this one stays closed, and nothing is derived.
    let items = objects(
        &[
            ROUTE_ON,
            &["--set", "global.grafanaUrl=http://grafana.elsewhere:3000"],
        ]
        .concat(),
    );
    assert_eq!(iframe_host(&items), None);
    assert_eq!(
        grafana_env(&items, "GF_AUTH_ANONYMOUS_ENABLED"),
        Some("false")
    );
}

#[test]
fn anonymous_access_without_embedded_panels_and_colliding_routes_are_refused() {
    let stderr = refusal(&["--set", "observability.grafana.anonymousViewer=true"]);
    assert!(
        stderr.contains("observability.grafana.anonymousViewer")
            && stderr.contains("observability.grafana.ingress.enabled=true"),
        "{stderr}"
    );
    let stderr = refusal(&[ROUTE_ON, &["--set", "observability.mode=operator"]].concat());
    assert!(
        stderr.contains("bootstrapRayCluster.grafanaIframeHost"),
        "{stderr}"
    );
    for path in ["/api", "/api/ray", "/api/ray/grafana"] {
        let set = format!("observability.grafana.ingress.path={path}");
        let stderr = refusal(&[ROUTE_ON, &["--set", &set]].concat());
        assert!(
            stderr.contains("overlaps api.ingress.path"),
            "{path}: {stderr}"
        );
    }
    // A trailing slash would give Ray's iframes `//d-solo/...`.
    refusal(&[
        "--set",
        "bootstrapRayCluster.grafanaIframeHost=https://grafana.example/",
    ]);
}

#[test]
fn a_team_instance_points_its_ray_dashboard_at_the_platform_grafana() {
    let items = objects(
        &[
            ROUTE_ON,
            &["-n", "team-a", "--set", "bootstrapRayCluster.enabled=true"],
        ]
        .concat(),
    );
    assert!(
        find(&items, "Ingress", "grafana").is_none(),
        "teams run no Grafana"
    );
    assert!(find(&items, "Deployment", "grafana").is_none());
    let url = format!("https://{LOCAL_HOST}/grafana");
    assert_eq!(iframe_host(&items), Some(url.as_str()));
    assert_eq!(
        get(&items, "Ingress", "datalayer-ray")["spec"]["rules"][0]["host"],
        format!("team-a.{LOCAL_HOST}")
    );
}
