//! End-to-end: `plane status` against the test API server: RayClusters in two namespaces (one
//! failing, one with pods, one known only from its status), RayJobs in each state, a RayService,
//! usage from a simulated Prometheus behind the service proxy, a release without Prometheus,
//! credentials that cannot list one kind, and a cluster without KubeRay's CRDs.

mod common;

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use common::{LOCAL, deployed, plane, status, text, within};
use plane_test_apiserver::{
    Config, FAIL_ANNOTATION, FaultRule, PROMETHEUS_ANNOTATION, PolicyRule, TestServer,
};
use serde_json::{Value, json};

const RELEASE: &str = "datalayer-ray";

fn status_json(kubeconfig: &Path, args: &[&str]) -> (Output, Value) {
    let out = status(kubeconfig, &[args, &["-o", "json"]].concat());
    let json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", text(&out.stdout), text(&out.stderr)));
    (out, json)
}

fn create(srv: &TestServer, object: &Value) {
    srv.create_object("tester", object)
        .unwrap_or_else(|e| panic!("create {object}: {e}"));
}

fn resources(cpu: &str, memory: &str, gpu: Option<&str>) -> Value {
    let mut requests = json!({"cpu": cpu, "memory": memory});
    if let Some(gpu) = gpu {
        requests["nvidia.com/gpu"] = json!(gpu);
    }
    json!({"requests": requests, "limits": requests})
}

fn ray_cluster(namespace: &str, name: &str, workers: i64, annotations: &Value) -> Value {
    let template = |res: Value| json!({"spec": {"containers": [{"name": "ray", "image": "rayproject/ray:2.58.0-py312", "resources": res}]}});
    json!({"apiVersion": "ray.io/v1", "kind": "RayCluster",
        "metadata": {"namespace": namespace, "name": name, "annotations": annotations},
        "spec": {"rayVersion": "2.58.0",
            "headGroupSpec": {"rayStartParams": {}, "template": template(resources("1", "2Gi", None))},
            "workerGroupSpecs": [{"groupName": "workers", "replicas": workers, "minReplicas": workers,
                "maxReplicas": workers, "rayStartParams": {},
                "template": template(resources("2", "4Gi", Some("1")))}]}})
}

fn ray_pod(namespace: &str, cluster: &str, node: &str, index: usize) -> Value {
    let res = if node == "head" {
        resources("1", "2Gi", None)
    } else {
        resources("2", "4Gi", Some("1"))
    };
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"namespace": namespace, "name": format!("{cluster}-{node}-{index}"),
            "labels": {"ray.io/cluster": cluster, "ray.io/node-type": node}},
        "spec": {"containers": [{"name": "ray", "image": "rayproject/ray:2.58.0-py312", "resources": res}]}})
}

fn ray_job(srv: &TestServer, namespace: &str, name: &str, deployment: &str, job: &str) {
    create(
        srv,
        &json!({"apiVersion": "ray.io/v1", "kind": "RayJob",
            "metadata": {"namespace": namespace, "name": name},
            "spec": {"entrypoint": "python -c 'print(1)'", "clusterSelector": {"ray.io/cluster": "analytics"}}}),
    );
    srv.patch_status(
        "kuberay",
        "ray.io/v1",
        "RayJob",
        Some(namespace),
        name,
        &json!({"status": {"jobDeploymentStatus": deployment, "jobStatus": job, "rayClusterName": "analytics"}}),
    )
    .unwrap();
}

/// Ray in two namespaces: `default/raycluster` from the release (no pods: requests from its
/// status), `team-b/analytics` with a head and two workers, `team-b/broken` failing; jobs running,
/// succeeded and failed; a ready RayService.
fn populate(srv: &TestServer) {
    create(
        srv,
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-b"}}),
    );
    create(srv, &ray_cluster("team-b", "analytics", 2, &json!({})));
    create(
        srv,
        &ray_cluster(
            "team-b",
            "broken",
            1,
            &json!({FAIL_ANNOTATION: "RayClusterFailed"}),
        ),
    );
    create(srv, &ray_pod("team-b", "analytics", "head", 0));
    create(srv, &ray_pod("team-b", "analytics", "worker", 0));
    create(srv, &ray_pod("team-b", "analytics", "worker", 1));
    ray_job(srv, "default", "etl", "Running", "RUNNING");
    ray_job(srv, "team-b", "train", "Complete", "SUCCEEDED");
    ray_job(srv, "team-b", "oops", "Failed", "FAILED");
    create(
        srv,
        &json!({"apiVersion": "ray.io/v1", "kind": "RayService",
            "metadata": {"namespace": "default", "name": "echo"},
            "spec": {"serveConfigV2": "applications: []\n", "rayClusterConfig": {"rayVersion": "2.58.0",
                "headGroupSpec": {"rayStartParams": {}, "template": {"spec": {"containers": [
                    {"name": "ray-head", "image": "rayproject/ray:2.58.0-py312"}]}}}}}}),
    );
    srv.patch_status(
        "kuberay",
        "ray.io/v1",
        "RayService",
        Some("default"),
        "echo",
        &json!({"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "NonZeroServeEndpoints",
            "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}}),
    )
    .unwrap();
    // The simulated KubeRay takes a few steps: wait until analytics is ready and broken has failed.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let state = |name: &str| srv.get_object("ray.io/v1", "RayCluster", Some("team-b"), name);
        let ready = state("analytics").is_some_and(|c| c["status"]["state"] == "ready");
        let failed = state("broken").is_some_and(|c| {
            c["status"]["conditions"]
                .as_array()
                .is_some_and(|cs| cs.iter().any(|x| x["type"] == "ReplicaFailure"))
        });
        if ready && failed {
            break;
        }
        assert!(Instant::now() < deadline, "the RayClusters did not settle");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Makes the release's Prometheus answer Ray's metrics for `team-b/analytics`.
fn simulate_prometheus(srv: &TestServer) {
    let samples = json!({
        "ray_node_cpu_utilization": [{"namespace": "team-b", "ray_io_cluster": "analytics", "value": "1.5"}],
        "ray_node_mem_used": [{"namespace": "team-b", "ray_io_cluster": "analytics", "value": "3221225472"}],
    });
    srv.patch_object(
        "tester",
        "v1",
        "Service",
        Some("ray-observability"),
        "prometheus",
        &json!({"metadata": {"annotations": {PROMETHEUS_ANNOTATION: samples.to_string()}}}),
    )
    .unwrap();
}

fn cluster<'a>(json: &'a Value, namespace: &str, name: &str) -> &'a Value {
    json["ray"]["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["namespace"] == namespace && c["name"] == name)
        .unwrap_or_else(|| panic!("no RayCluster {namespace}/{name} in {json:#}"))
}

/// `1040m` or `2` in millicores, as the simulated KubeRay writes desiredCPU.
fn millis(quantity: &str) -> u64 {
    quantity.strip_suffix('m').map_or_else(
        || quantity.parse::<u64>().unwrap() * 1000,
        |m| m.parse().unwrap(),
    )
}

#[test]
fn status_shows_the_release_ray_by_namespace_and_usage() {
    let (srv, fixture) = deployed(&[]);
    populate(&srv);
    let kc = srv.kubeconfig_path();

    // The bundle's Prometheus runs but nothing answers behind its Service: the rest still prints.
    let (out, json) = status_json(kc, &[RELEASE]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(json["usage"]["available"], false, "{json:#}");
    let why = json["usage"]["reason"].as_str().unwrap();
    assert!(
        why.contains("Service/ray-observability/prometheus")
            && why.contains("no endpoints available for service \"prometheus\""),
        "{why}"
    );
    let stderr = text(&out.stderr);
    assert_eq!(
        stderr.matches("usage unavailable").count(),
        1,
        "one line says why: {stderr}"
    );
    assert_eq!(json["ray"]["clusters"].as_array().unwrap().len(), 3);

    simulate_prometheus(&srv);
    srv.clear_requests();
    let (out, json) = status_json(kc, &[RELEASE]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    // 1. The release, its health as `ls` computes it, and where its parts are.
    let releases = json["releases"].as_array().unwrap();
    assert_eq!(releases.len(), 1);
    let release = &releases[0];
    assert_eq!(release["name"], RELEASE);
    assert_eq!(release["status"], "deployed");
    assert_eq!(release["health"]["ready"], release["health"]["total"]);
    assert!(release["health"]["total"].as_u64().unwrap() > 30);
    let parts = &release["parts"];
    assert_eq!(parts["api"]["url"], "http://ray.localtest.me/api/ray");
    assert_eq!(parts["api"]["from"], "Ingress/datalayer-api/datalayer-ray");
    assert_eq!(
        parts["prometheus"]["service"],
        "Service/ray-observability/prometheus"
    );
    assert_eq!(
        parts["grafana"]["url"],
        "http://grafana.ray-observability.svc:3000"
    );
    assert_eq!(parts["operator"]["version"], "v1.7.0");
    assert_eq!(parts["operator"]["readyReplicas"], 1);

    // 2. Each RayCluster with its requests: from its pods, or else its status.
    let analytics = cluster(&json, "team-b", "analytics");
    assert_eq!(analytics["ready"], true);
    assert_eq!(analytics["requestsFrom"], "pods");
    assert_eq!(
        analytics["requests"],
        json!({"cpuMillis": 5000, "memoryBytes": 10_u64 << 30, "gpu": 2})
    );
    assert_eq!(
        (
            analytics["headPods"].as_u64(),
            analytics["workerPods"].as_u64()
        ),
        (Some(1), Some(2))
    );
    let bootstrap = cluster(&json, "default", "raycluster");
    let desired = srv
        .get_object("ray.io/v1", "RayCluster", Some("default"), "raycluster")
        .unwrap()["status"]["desiredCPU"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(bootstrap["requestsFrom"], "status");
    assert_eq!(
        bootstrap["requests"]["cpuMillis"].as_u64(),
        Some(millis(&desired))
    );
    assert!(millis(&desired) > 0, "{desired}");
    assert_eq!(bootstrap["headPods"], 0);
    let broken = cluster(&json, "team-b", "broken");
    assert_eq!(
        (broken["ready"].as_bool(), broken["state"].as_str()),
        (Some(false), Some("failed"))
    );
    assert!(
        broken["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "ReplicaFailure"
                && c["status"] == "True"
                && c["reason"] == "FailedCreateHeadPod"),
        "{broken:#}"
    );
    // Its requests come from its status (the simulated KubeRay sums its spec).
    assert_eq!(broken["requests"]["cpuMillis"], 3000);

    // Per namespace and in total.
    let ns = &json["ray"]["namespaces"];
    assert_eq!(ns["team-b"]["clusters"], json!({"ready": 1, "notReady": 1}));
    assert_eq!(
        ns["default"]["clusters"],
        json!({"ready": 1, "notReady": 0})
    );
    assert_eq!(ns["team-b"]["jobs"]["succeeded"], 1);
    assert_eq!(ns["team-b"]["jobs"]["failed"], 1);
    assert_eq!(ns["default"]["jobs"]["running"], 1);
    let total = &json["ray"]["total"];
    assert_eq!(
        total["jobs"],
        json!({"pending": 0, "running": 1, "succeeded": 1, "failed": 1, "stopped": 0})
    );
    assert_eq!(total["services"], json!({"ready": 1, "notReady": 0}));
    assert_eq!(
        (total["headPods"].as_u64(), total["workerPods"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(
        total["requests"]["cpuMillis"].as_u64(),
        Some(5000 + 3000 + millis(&desired))
    );

    // 3. Usage from the release's Prometheus, through the API server's service proxy.
    assert_eq!(
        json["usage"],
        json!({"available": true, "from": ["Service/ray-observability/prometheus"]})
    );
    assert_eq!(analytics["usage"]["cpuCores"], 1.5);
    assert_eq!(analytics["usage"]["memoryBytes"], 3_221_225_472.0);
    assert!(bootstrap["usage"].is_null());
    assert_eq!(json["missing"], json!([]));
    assert_eq!(json["errors"], json!([]));

    // One cluster-wide LIST per kind, nothing written, Prometheus only through the proxy.
    let requests = srv.requests();
    for path in [
        "/apis/ray.io/v1/rayclusters",
        "/apis/ray.io/v1/rayjobs",
        "/apis/ray.io/v1/rayservices",
        "/api/v1/pods",
    ] {
        let lists = requests
            .iter()
            .filter(|r| r.method == "GET" && r.path == path)
            .count();
        assert_eq!(lists, 1, "{path}: {lists} LIST(s)");
    }
    assert!(
        requests
            .iter()
            .all(|r| !r.path.contains("/namespaces/team-b/ray")),
        "a per-namespace read"
    );
    assert!(requests.iter().all(|r| !r.is_mutating()), "status wrote");
    assert_eq!(
        requests
            .iter()
            .filter(|r| r
                .path
                .contains("/services/prometheus:9090/proxy/api/v1/query"))
            .count(),
        3
    );

    // 4. The same as a table.
    let out = status(kc, &[RELEASE]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    // Lines with their runs of spaces collapsed, found by how they start.
    let line = |start: &str| {
        table
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("no line starting {start:?} in\n{table}"))
    };
    assert!(
        line("datalayer-ray plane-system").contains("deployed"),
        "{table}"
    );
    assert!(
        line("api ").contains("http://ray.localtest.me/api/ray"),
        "{table}"
    );
    assert!(
        line("operator ").contains("KubeRay v1.7.0, 1/1 ready"),
        "{table}"
    );
    assert_eq!(
        line("team-b analytics"),
        "team-b analytics ready 2/2 1 2 5 10Gi 2 pods 1.50 3Gi"
    );
    assert!(
        line("team-b broken").starts_with("team-b broken failed 0/1 0 0 3 6Gi 1 status"),
        "{table}"
    );
    assert!(
        line("default raycluster").contains(" status - -"),
        "{table}"
    );
    assert!(
        line("team-b 1/2 ready")
            .starts_with("team-b 1/2 ready 1 succeeded, 1 failed none 1 2 8 16Gi 3"),
        "{table}"
    );
    assert!(
        line("TOTAL").starts_with("TOTAL 2/3 ready 1 running, 1 succeeded, 1 failed 1/1 ready 1 2"),
        "{table}"
    );
    let not_ready = table
        .split("NOT READY\n")
        .nth(1)
        .expect("a NOT READY section");
    assert!(
        not_ready.starts_with("RayCluster/team-b/broken: ReplicaFailure: "),
        "{not_ready}"
    );
    assert!(
        not_ready.contains(
            "  ReplicaFailure=True (FailedCreateHeadPod): failed to create head Pod broken"
        ),
        "{not_ready}"
    );
    assert!(!not_ready.contains("analytics"), "{not_ready}");

    // 5. A team instance's view reads the platform's Prometheus, which scrapes the team's Ray.
    let out = within(
        fixture.cluster("up", kc, &[LOCAL, &["-n", "team-b", "--no-wait"]].concat()),
        Duration::from_secs(120),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (out, json) = status_json(kc, &["-n", "team-b"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        json["usage"],
        json!({"available": true, "from": ["Service/ray-observability/prometheus"]}),
        "{json:#}"
    );
    assert_eq!(
        cluster(&json, "team-b", "analytics")["usage"]["cpuCores"],
        1.5
    );
}

#[test]
fn a_release_without_prometheus_still_shows_the_rest() {
    let (srv, _fixture) = deployed(&["observability.enabled=false"]);
    let (out, json) = status_json(srv.kubeconfig_path(), &[RELEASE]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        json["usage"],
        json!({"available": false, "reason": "release datalayer-ray has no Prometheus Service (its observability is off)"})
    );
    let parts = &json["releases"][0]["parts"];
    assert!(
        parts["prometheus"].is_null() && parts["grafana"].is_null(),
        "{parts:#}"
    );
    assert_eq!(parts["operator"]["version"], "v1.7.0");
    assert_eq!(json["ray"]["clusters"].as_array().unwrap().len(), 1);
    let stderr = text(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains("usage")).collect();
    assert_eq!(
        lines,
        [
            "warning: usage unavailable: release datalayer-ray has no Prometheus Service (its observability is off)"
        ]
    );
}

#[test]
fn credentials_that_cannot_list_a_kind_get_the_rest_and_exit_1() {
    let (srv, _fixture) = deployed(&[]);
    populate(&srv);
    // Everything status reads but RayJobs.
    srv.set_token_rules(
        "no-rayjobs",
        vec![
            PolicyRule::new(
                &["get", "list"],
                &[
                    "",
                    "apps",
                    "networking.k8s.io",
                    "rbac.authorization.k8s.io",
                    "apiextensions.k8s.io",
                    "policy",
                ],
                &["*"],
            ),
            PolicyRule::new(
                &["get", "list"],
                &["ray.io"],
                &["rayclusters", "rayservices"],
            ),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let limited = dir.path().join("kubeconfig");
    let admin = std::fs::read_to_string(srv.kubeconfig_path()).unwrap();
    std::fs::write(&limited, admin.replace(srv.token(), "no-rayjobs")).unwrap();

    let (out, json) = status_json(&limited, &[RELEASE]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(json["errors"].as_array().unwrap().len(), 1, "{json:#}");
    let error = &json["errors"][0];
    assert_eq!(error["resource"], "rayjobs.ray.io");
    assert_eq!(error["code"], 403);
    assert_eq!(error["reason"], "forbidden for user \"plane-test\"");
    assert!(
        error["hint"]
            .as_str()
            .unwrap()
            .contains("`list` on rayjobs.ray.io in all namespaces")
    );
    assert!(json["ray"]["jobs"].is_null() && json["ray"]["total"]["jobs"].is_null());
    assert_eq!(json["ray"]["clusters"].as_array().unwrap().len(), 3);
    assert_eq!(json["ray"]["total"]["services"]["ready"], 1);
    assert_eq!(
        json["releases"][0]["health"]["ready"],
        json["releases"][0]["health"]["total"]
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("warning: cannot read rayjobs.ray.io: forbidden for user \"plane-test\" — hint: ask a cluster admin"),
        "{stderr}"
    );
    assert!(
        stderr.contains("error: status is incomplete: rayjobs.ray.io could not be read"),
        "{stderr}"
    );

    // The table says the jobs are unknown, not none.
    let out = status(&limited, &[RELEASE]);
    assert_eq!(out.status.code(), Some(1));
    let table = text(&out.stdout);
    let total = table.lines().find(|l| l.starts_with("TOTAL")).unwrap();
    assert!(total.contains("unknown"), "{total}");
    assert!(table.contains("team-b"), "{table}");
}

#[test]
fn a_cluster_without_releases_says_so_and_succeeds() {
    let srv = TestServer::start(Config::default());
    let (out, json) = status_json(srv.kubeconfig_path(), &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // No release, so no bundle's view: nothing of Ray is asked or shown.
    assert_eq!(
        json,
        json!({"releases": [], "missing": [], "errors": []}),
        "{json:#}"
    );
    let out = status(srv.kubeconfig_path(), &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "RELEASES: none in the namespace plane-system\n"
    );
    assert!(
        !text(&out.stderr).contains("warning"),
        "{}",
        text(&out.stderr)
    );

    // A release name the cluster does not have is an error naming it.
    let out = status(srv.kubeconfig_path(), &["datalayer-rya"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("error: release datalayer-rya not found"),
        "{stderr}"
    );
}

#[test]
fn help_ends_with_examples() {
    let mut cmd = plane();
    cmd.args(["status", "--help"]);
    let out = within(cmd, Duration::from_secs(60));
    assert!(out.status.success());
    let help = text(&out.stdout);
    let tail = help.trim_end().rsplit("Examples:").next().unwrap();
    assert!(
        help.contains("Examples:") && tail.contains("plane status datalayer-ray"),
        "{help}"
    );
}

#[test]
fn objects_a_team_may_not_be_read_leave_a_gap_for_that_team_alone() {
    let (srv, fixture) = deployed(&[]);
    let kc = srv.kubeconfig_path().to_path_buf();
    create(
        &srv,
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}}),
    );
    let team = [LOCAL, &["-n", "team-a"]].concat();
    let out = within(fixture.cluster("up", &kc, &team), Duration::from_secs(120));
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Deployments may be read neither across namespaces nor in team-a.
    for path in [
        "/apis/apps/v1/deployments",
        "/apis/apps/v1/namespaces/team-a/*",
    ] {
        srv.add_fault(FaultRule::status("GET", path, 403, 1000));
    }
    let (out, json) = status_json(&kc, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let releases = json["releases"].as_array().unwrap();
    let row = |namespace: &str| {
        releases
            .iter()
            .find(|r| r["namespace"] == namespace)
            .unwrap_or_else(|| panic!("no release in {namespace}: {releases:?}"))
    };
    let platform = &row("plane-system")["health"];
    assert!(
        platform["total"].as_u64().is_some_and(|n| n > 0) && platform["ready"] == platform["total"],
        "the platform's health is read: {platform}"
    );
    assert!(row("team-a")["health"].is_null(), "{}", row("team-a"));
    let errors = json["errors"].to_string();
    assert!(
        errors.contains("the health of release datalayer-ray (namespace team-a)")
            && !errors.contains("(namespace plane-system)"),
        "{errors}"
    );
}
