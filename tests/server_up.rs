//! End-to-end: the real binary runs diff, up and ls against the test API server.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::{Fixture, builtin, inventory, inventory_subjects, planned, text};
use plane_test_apiserver::{Config, TestServer};
use serde_json::Value;

const LOCAL: &[&str] = &["--profile", "local"];
const INVENTORY: &str = "/api/v1/namespaces/plane-system/secrets/plane-release-datalayer-ray";
const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/plane-system/leases";

/// The rendered objects of one component, as subjects.
fn component_subjects(fixture: &Fixture, component: &str) -> BTreeSet<String> {
    let out = fixture
        .template(&["--profile", "local", "-o", "json"])
        .output()
        .unwrap();
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["metadata"]["labels"]["plane.datalayer.io/component"] == component)
        .map(|o| match o["metadata"]["namespace"].as_str() {
            Some(ns) => format!(
                "{}/{ns}/{}",
                o["kind"].as_str().unwrap(),
                o["metadata"]["name"].as_str().unwrap()
            ),
            None => format!(
                "{}/{}",
                o["kind"].as_str().unwrap(),
                o["metadata"]["name"].as_str().unwrap()
            ),
        })
        .collect()
}

#[test]
fn lifecycle_of_datalayer_ray_with_the_local_profile() {
    let srv = TestServer::start(Config::default());
    let kc = srv.kubeconfig_path().to_path_buf();
    let fixture = builtin("datalayer-ray");

    // 1. diff on an empty cluster lists only creates, and --exit-code says so.
    let out = fixture
        .cluster("diff", &kc, &[LOCAL, &["--exit-code"]].concat())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let headers: Vec<&str> = stdout
        .lines()
        .filter(|l| {
            !l.starts_with(' ') && !l.starts_with('+') && !l.starts_with('-') && !l.is_empty()
        })
        .collect();
    let summary = headers.last().unwrap();
    assert!(
        summary.ends_with("to create, 0 to change, 0 to prune, 0 unchanged"),
        "{summary}"
    );
    assert!(
        headers[..headers.len() - 1]
            .iter()
            .all(|h| h.starts_with("create ")),
        "{headers:?}"
    );
    assert!(
        srv.requests().iter().all(|r| !r.is_mutating()),
        "diff wrote to the cluster"
    );

    // 2. up waits for the CRDs, the operator, the API and the RayCluster, then records the release.
    let out = fixture
        .cluster("up", &kc, &[LOCAL, &["--timeout", "60s"]].concat())
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    for subject in [
        "CustomResourceDefinition/rayclusters.ray.io",
        "Deployment/ray-system/kuberay-operator",
        "Deployment/datalayer-api/datalayer-ray",
        "RayCluster/default/raycluster",
    ] {
        assert!(
            stderr.contains("ready") && stderr.contains(subject),
            "{subject} not awaited:\n{stderr}"
        );
    }
    assert!(stderr.contains("revision 1 deployed"), "{stderr}");
    let rc = srv
        .get_object("ray.io/v1", "RayCluster", Some("default"), "raycluster")
        .expect("RayCluster created");
    assert_eq!(rc["status"]["state"], "ready");

    // 3. diff now shows nothing and exits 0.
    let out = fixture
        .cluster("diff", &kc, &[LOCAL, &["--exit-code"]].concat())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout)
            .trim_end()
            .lines()
            .last()
            .is_some_and(|l| l.starts_with("0 to create, 0 to change, 0 to prune, ")),
        "{}",
        text(&out.stdout)
    );

    // 4. A second up writes nothing but the inventory and its own lock (the Lease it takes and
    //    releases in the state namespace). plane's own fields prove every object unchanged, so
    //    it sends no dry-run, and at most one request per object plus ten in all.
    srv.clear_requests();
    let out = fixture.cluster("up", &kc, LOCAL).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let requests = srv.requests();
    let writes: Vec<String> = requests
        .iter()
        .filter(|r| r.is_mutating())
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    let allowed = [
        format!("PATCH {INVENTORY}"),
        format!("POST {LEASES}"),
        format!("DELETE {LEASES}/plane-lock-datalayer-ray"),
    ];
    assert!(
        writes.contains(&allowed[0]),
        "the inventory was not recorded: {writes:#?}"
    );
    assert!(
        writes.iter().all(|w| allowed.contains(w)),
        "unexpected writes: {writes:#?}"
    );
    let dry_runs: Vec<&str> = requests
        .iter()
        .filter(|r| r.dry_run)
        .map(|r| r.path.as_str())
        .collect();
    assert!(
        dry_runs.is_empty(),
        "a no-op up dry-runs nothing: {dry_runs:?}"
    );
    let objects = inventory_subjects(&inventory(&srv, "datalayer-ray").unwrap()).len();
    let sent: Vec<String> = requests
        .iter()
        .map(|r| format!("{} {}?{}", r.method, r.path, r.query))
        .collect();
    assert!(
        requests.len() <= objects + 10,
        "a no-op up of {objects} objects sent {} requests (bound: objects + 10):\n{}",
        requests.len(),
        sent.join("\n")
    );

    // 5. One value changes exactly the objects it feeds.
    let out = fixture
        .cluster(
            "diff",
            &kc,
            &[
                LOCAL,
                &["--set", "kuberay.reconcileConcurrency=2", "-o", "json"],
            ]
            .concat(),
        )
        .output()
        .unwrap();
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        planned(&plan, "configure"),
        BTreeSet::from(["Deployment/ray-system/kuberay-operator".to_owned()])
    );
    assert!(planned(&plan, "create").is_empty() && planned(&plan, "prune").is_empty());
    let out = fixture
        .cluster(
            "up",
            &kc,
            &[LOCAL, &["--set", "kuberay.reconcileConcurrency=2"]].concat(),
        )
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("configure Deployment/ray-system/kuberay-operator")
            && stderr.contains("1 configured"),
        "{stderr}"
    );

    // 6. Turning a component off prunes exactly its objects; without --yes and a terminal, up refuses.
    let off = [
        LOCAL,
        &[
            "--set",
            "kuberay.reconcileConcurrency=2",
            "--set",
            "observability.enabled=false",
        ],
    ]
    .concat();
    srv.clear_requests();
    let out = fixture.cluster("up", &kc, &off).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("--yes"), "{}", text(&out.stderr));
    assert!(
        srv.requests().iter().all(|r| !r.is_mutating()),
        "a refused prune wrote to the cluster"
    );

    let mut observability = component_subjects(&fixture, "observability");
    // `template` never prints the generated Grafana admin Secret, but it is the component's too.
    observability.insert("Secret/ray-observability/grafana-admin".to_owned());
    let out = fixture
        .cluster("diff", &kc, &[off.as_slice(), &["-o", "json"]].concat())
        .output()
        .unwrap();
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    let pruned = planned(&plan, "prune");
    let kept = planned(&plan, "skip");
    assert_eq!(
        &pruned | &kept,
        observability,
        "prune set differs from the component's objects"
    );
    assert!(kept.iter().all(|s| s.starts_with("Namespace/")), "{kept:?}");
    let out = fixture
        .cluster("up", &kc, &[off.as_slice(), &["--yes"]].concat())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    for subject in &pruned {
        let parts: Vec<&str> = subject.split('/').collect();
        let kind = parts[0];
        let (ns, name) = if parts.len() == 3 {
            (Some(parts[1]), parts[2])
        } else {
            (None, parts[1])
        };
        let api_version = match kind {
            "Deployment" => "apps/v1",
            "ClusterRole" | "ClusterRoleBinding" => "rbac.authorization.k8s.io/v1",
            _ => "v1",
        };
        assert!(
            srv.get_object(api_version, kind, ns, name).is_none(),
            "{subject} survived the prune"
        );
    }
    assert!(
        srv.get_object(
            "apps/v1",
            "Deployment",
            Some("ray-system"),
            "kuberay-operator"
        )
        .is_some()
    );

    // 7. ls shows the release, its revision and a healthy status.
    let out = common::plane()
        .args(["ls", "-o", "json", "--kubeconfig"])
        .arg(&kc)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    let row = &rows[0];
    assert_eq!(row["name"], "datalayer-ray");
    assert_eq!(row["revision"], 4);
    assert_eq!(row["status"], "deployed");
    assert_eq!(row["health"]["ready"], row["health"]["total"], "{row}");
    let out = common::plane()
        .args(["ls", "--kubeconfig"])
        .arg(&kc)
        .output()
        .unwrap();
    let table = text(&out.stdout);
    assert!(
        table.starts_with("NAME") && table.contains("HEALTH") && table.contains("datalayer-ray"),
        "{table}"
    );
}

#[test]
fn a_failing_raycluster_fails_fast_naming_it() {
    let srv = TestServer::start(Config::default());
    let kc = srv.kubeconfig_path().to_path_buf();
    let fixture = builtin("datalayer-ray").patch_file(
        "components/ray/raycluster.yaml.tera",
        "    plane.datalayer.io/controller-owned: \"spec.workerGroupSpecs[*].replicas\"\n",
        "    plane.datalayer.io/controller-owned: \"spec.workerGroupSpecs[*].replicas\"\n    test.plane.datalayer.io/fail: RayClusterFailed\n",
    );
    let started = Instant::now();
    let out = fixture
        .cluster("up", &kc, &[LOCAL, &["--timeout", "5m"]].concat())
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        elapsed < Duration::from_secs(60),
        "took {elapsed:?}: not fail-fast"
    );
    assert!(
        stderr.contains("RayCluster/default/raycluster failed")
            && stderr.contains("ReplicaFailure"),
        "{stderr}"
    );
    let out = common::plane()
        .args(["ls", "-o", "json", "--kubeconfig"])
        .arg(&kc)
        .output()
        .unwrap();
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows[0]["status"], "failed");
}

#[test]
fn a_wait_that_runs_out_lists_every_object_not_ready() {
    // Controllers that take a minute per step: nothing becomes ready within the timeout.
    let srv = TestServer::start(Config {
        controller_step: Duration::from_secs(60),
        ..Config::default()
    });
    let kc = srv.kubeconfig_path().to_path_buf();
    let fixture = Fixture::addon("minimal");
    let out = fixture
        .cluster("up", &kc, &["--profile", "dev", "--timeout", "2s"])
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("timed out waiting for 1 object(s)"),
        "{stderr}"
    );
    assert!(stderr.contains("Deployment/minimal/web:"), "{stderr}");
}

#[test]
fn secret_values_never_appear_in_output() {
    let srv = TestServer::start(Config::default());
    let kc = srv.kubeconfig_path().to_path_buf();
    let fixture = Fixture::addon("minimal");
    let first = "first-secret-value-4f1c";
    let second = "second-secret-value-9d2e";
    let out = fixture
        .cluster(
            "up",
            &kc,
            &[
                "--profile",
                "dev",
                "-v",
                "--set",
                &format!("web.token={first}"),
            ],
        )
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let generated = srv
        .get_object("v1", "Secret", Some("minimal"), "generated")
        .expect("generated secret created");
    let password = generated["data"]["password"]
        .as_str()
        .expect("a generated password")
        .to_owned();

    let mut seen = String::new();
    for args in [
        vec!["diff", "--set"],
        vec!["diff", "-o", "json", "--set"],
        vec!["up", "-v", "--set"],
    ] {
        let (command, rest) = args.split_first().unwrap();
        let set = format!("web.token={second}");
        let all: Vec<&str> = [&["--profile", "dev"], rest, &[set.as_str()]].concat();
        let out = fixture.cluster(command, &kc, &all).output().unwrap();
        assert!(out.status.success(), "{command}: {}", text(&out.stderr));
        seen.push_str(&text(&out.stdout));
        seen.push_str(&text(&out.stderr));
    }
    assert!(
        seen.contains("*** (before)") && seen.contains("*** (after)"),
        "the change is not shown masked:\n{seen}"
    );
    assert!(
        seen.contains("configure Secret/minimal/web-token"),
        "{seen}"
    );
    for secret in [first, second, password.as_str()] {
        assert!(!seen.contains(secret), "secret value printed:\n{seen}");
    }
    let decoded = String::from_utf8(STANDARD.decode(&password).expect("base64")).unwrap();
    assert!(!seen.contains(&decoded));
    // The generated secret keeps its value across runs.
    let again = srv
        .get_object("v1", "Secret", Some("minimal"), "generated")
        .unwrap();
    assert_eq!(again["data"]["password"], password.as_str());
}

#[test]
fn an_image_pull_failure_fails_fast_naming_the_pod() {
    let srv = TestServer::start(Config::default());
    let kc = srv.kubeconfig_path().to_path_buf();
    let fixture = builtin("datalayer-ray").patch_file(
        "components/api/deployment.yaml.tera",
        "  labels: {{ lbl }}\nspec:\n  replicas:",
        "  labels: {{ lbl }}\n  annotations: {test.plane.datalayer.io/fail: ImagePullBackOff}\nspec:\n  replicas:",
    );
    let started = Instant::now();
    let out = fixture
        .cluster("up", &kc, &[LOCAL, &["--timeout", "5m"]].concat())
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(60), "not fail-fast");
    assert!(
        stderr.contains("Deployment/datalayer-api/datalayer-ray failed")
            && stderr.contains("ImagePullBackOff"),
        "{stderr}"
    );
}

#[test]
fn a_profile_pinned_to_another_cluster_is_refused_before_any_request() {
    let srv = TestServer::start(Config::default());
    let kc = srv.kubeconfig_path().to_path_buf();
    let fixture = Fixture::addon("minimal").with_root_file(
        "pinned.yaml",
        "description: pinned\nenv:\n  RUN_URL: https://dev.example.com\ncluster:\n  context: aks-r-eastus\n",
    );
    for command in ["diff", "up"] {
        let out = fixture
            .cluster(command, &kc, &["--profile", "pinned.yaml"])
            .output()
            .unwrap();
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command}: {stderr}");
        assert!(
            stderr.contains("profile pinned may not touch this cluster")
                && stderr.contains("aks-r-eastus"),
            "{stderr}"
        );
    }
    assert!(
        srv.requests().is_empty(),
        "requests were sent: {:?}",
        srv.requests()
    );
}

/// A closed stderr (a pipe to `head` that went away, a CI log that closed) never panics: plane
/// ends with its normal exit code, for a run that succeeds and for one that fails.
#[test]
fn a_closed_stderr_never_panics() {
    let srv = TestServer::start(Config::default());
    let kc = srv.kubeconfig_path().to_path_buf();
    let fixture = builtin("datalayer-ray");
    let closed = || {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        writer
    };
    let cases: [(&str, std::process::Command, i32); 4] = [
        ("up", fixture.cluster("up", &kc, LOCAL), 0),
        ("no-op up", fixture.cluster("up", &kc, LOCAL), 0),
        (
            "diff with changes",
            fixture.cluster(
                "diff",
                &kc,
                &[LOCAL, &["--set", "api.replicas=3", "--exit-code"]].concat(),
            ),
            3,
        ),
        (
            "a bad value",
            fixture.template(&["--profile", "local", "--set", "api.replicas=many"]),
            2,
        ),
    ];
    for (name, mut cmd, code) in cases {
        let out = cmd
            .stdout(std::process::Stdio::null())
            .stderr(closed())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(code), "{name}");
    }
    assert_eq!(
        srv.get_object("v1", "Namespace", None, "datalayer-api")
            .map(|_| ()),
        Some(()),
        "the up with a closed stderr did its work"
    );
}
