//! A no-op `up` writes nothing and `history` does not grow; a changed value still records a
//! revision; and a no-op never says `no changes` while another run holds the lock (the state it
//! read may be that run's half-way).

mod common;

use std::time::Duration;

use common::{LOCAL, deployed, text, within};
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(120);

fn history_len(kubeconfig: &std::path::Path) -> usize {
    common::history_revisions(kubeconfig).len()
}

#[test]
fn a_no_op_writes_nothing_and_a_change_still_records() {
    let (srv, fixture) = deployed(&[]);
    let kc = srv.kubeconfig_path().to_path_buf();
    assert_eq!(history_len(&kc), 1);
    srv.clear_requests();
    let out = within(fixture.cluster("up", &kc, LOCAL), LIMIT);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("no changes: revision 1 stays"), "{stderr}");
    let writes: Vec<String> = srv
        .requests()
        .iter()
        .filter(|r| r.is_mutating())
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(writes, Vec::<String>::new());
    assert_eq!(history_len(&kc), 1);

    let changed = within(
        fixture.cluster("up", &kc, &[LOCAL, &["--set", "api.replicas=2"]].concat()),
        LIMIT,
    );
    let stderr = text(&changed.stderr);
    assert!(changed.status.success(), "{stderr}");
    assert!(stderr.contains("revision 2 deployed"), "{stderr}");
    assert_eq!(history_len(&kc), 2);
}

#[test]
fn a_no_op_racing_another_run_never_claims_no_changes() {
    let (srv, fixture) = deployed(&[]);
    let kc = srv.kubeconfig_path().to_path_buf();
    // Another run holds the release's lock, renewed just now, from another host.
    let now = jiff::Timestamp::now().to_string();
    srv.create_object(
        "someone-else",
        &json!({
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": "plane-lock-datalayer-ray",
                "namespace": "plane-system",
                "annotations": {"plane.datalayer.io/host": "elsewhere", "plane.datalayer.io/pid": "1"},
            },
            "spec": {
                "holderIdentity": "someone@elsewhere",
                "leaseDurationSeconds": 60,
                "acquireTime": now,
                "renewTime": now,
            },
        }),
    )
    .expect("the lease is created");
    let out = within(fixture.cluster("up", &kc, LOCAL), LIMIT);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("no changes"), "{stderr}");
    assert!(stderr.contains("someone@elsewhere"), "{stderr}");
}

/// The longest chains of requests that waited on each other (round trips paid one after
/// another), measured under 50 ms of latency so that parallel requests overlap: a count, held
/// so that a change which adds a sequential step to these paths fails here.
const CHAINS: [(&str, &[&str], usize); 5] = [
    ("no-op up", &["up"], NO_OP_UP_CHAIN),
    ("diff", &["diff"], DIFF_CHAIN),
    ("ls", &["ls"], LS_CHAIN),
    ("ls -A", &["ls", "-A"], LS_CHAIN),
    ("status", &["status"], STATUS_CHAIN),
];
const NO_OP_UP_CHAIN: usize = 1;
const DIFF_CHAIN: usize = 1;
const LS_CHAIN: usize = 2;
const STATUS_CHAIN: usize = 3;

#[test]
fn the_no_op_path_waits_on_few_requests_in_a_row() {
    let (srv, fixture) = deployed(&[]);
    let kc = srv.kubeconfig_path().to_path_buf();
    srv.add_fault(plane_test_apiserver::FaultRule::latency("*", 50, 0));
    let mut measured = Vec::new();
    for (name, command, bound) in CHAINS {
        srv.clear_requests();
        let cmd = if matches!(command[0], "ls" | "status") {
            let mut cmd = common::plane();
            cmd.args(command).arg("--kubeconfig").arg(&kc);
            cmd
        } else {
            fixture.cluster(command[0], &kc, LOCAL)
        };
        let out = within(cmd, LIMIT);
        assert!(out.status.success(), "{name}: {}", text(&out.stderr));
        let requests = srv.requests();
        let links: Vec<String> = plane_test_apiserver::critical_chain(&requests)
            .iter()
            .map(|r| format!("{} {}?{}", r.method, r.path, r.query))
            .collect();
        let chain = links.len();
        measured.push(format!(
            "{name}: {chain} in a row of {} requests: {}",
            requests.len(),
            links.join(" -> ")
        ));
        assert!(
            chain <= bound,
            "{name}: {chain} requests in a row (held: {bound}); all: {measured:?}"
        );
    }
    // A team instance's no-op `up` (its checks of the namespace and the platform's operator
    // included) and `diff`: the same single wave.
    srv.clear_faults();
    srv.create_object(
        "admin",
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}}),
    )
    .expect("the team's namespace is created");
    let team = [LOCAL, &["-n", "team-a"]].concat();
    let out = within(fixture.cluster("up", &kc, &team), LIMIT);
    assert!(out.status.success(), "{}", text(&out.stderr));
    srv.add_fault(plane_test_apiserver::FaultRule::latency("*", 50, 0));
    for command in ["up", "diff"] {
        srv.clear_requests();
        let out = within(fixture.cluster(command, &kc, &team), LIMIT);
        assert!(
            out.status.success(),
            "team {command}: {}",
            text(&out.stderr)
        );
        let chain: Vec<String> = plane_test_apiserver::critical_chain(&srv.requests())
            .iter()
            .map(|r| format!("{} {}?{}", r.method, r.path, r.query))
            .collect();
        assert!(
            chain.len() <= TEAM_CHAIN,
            "team {command}: {} requests in a row (held: {TEAM_CHAIN}): {}",
            chain.len(),
            chain.join(" -> ")
        );
    }
}

/// A team instance's no-op `up` and `diff`: its tiers' check reads what the platform holds.
const TEAM_CHAIN: usize = 1;

/// How a test spoils a discovery file, and what it calls the spoiling.
type Corruption = (&'static str, fn(&mut Value));

/// The discovery requests the server was sent (`/api`, `/apis`, `/api/v1`,
/// `/apis/GROUP[/VERSION]`), by path, in order.
fn discovery_asked(srv: &plane_test_apiserver::TestServer) -> Vec<String> {
    let is_discovery = |path: &str| {
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        match segments.first() {
            Some(&"api") => segments.len() <= 2,
            Some(&"apis") => segments.len() <= 3,
            _ => false,
        }
    };
    srv.requests()
        .into_iter()
        .map(|r| r.path)
        .filter(|p| is_discovery(p))
        .collect()
}

/// The discovery files a run left in `dir`.
fn discovery_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir.join("discovery"))
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

#[test]
fn without_a_discovery_cache_discovery_is_one_round_trip_before_the_wave() {
    let (srv, fixture) = deployed(&[]);
    let kc = srv.kubeconfig_path().to_path_buf();
    let cache = tempfile::tempdir().unwrap();
    srv.add_fault(plane_test_apiserver::FaultRule::latency("*", 50, 0));
    srv.clear_requests();
    let mut cold = fixture.cluster("up", &kc, LOCAL);
    cold.env("PLANE_CACHE_DIR", cache.path());
    let out = within(cold, LIMIT);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut discovery = discovery_asked(&srv);
    discovery.sort_unstable();
    // Aggregated discovery: /api and /apis, nothing per group-version.
    assert_eq!(discovery, ["/api", "/apis"], "{discovery:?}");
    assert!(plane_test_apiserver::critical_path(&srv.requests()) <= NO_OP_UP_CHAIN + 1);
    assert_eq!(discovery_files(cache.path()).len(), 1);
}

#[test]
fn a_stale_discovery_cache_is_noticed_and_never_misleads() {
    let (srv, fixture) = deployed(&[]);
    let kc = srv.kubeconfig_path().to_path_buf();
    let cache = tempfile::tempdir().unwrap();
    let run = |command: &str| {
        let mut cmd = fixture.cluster(command, &kc, LOCAL);
        cmd.env("PLANE_CACHE_DIR", cache.path());
        within(cmd, LIMIT)
    };
    assert!(run("diff").status.success());
    let [file] = discovery_files(cache.path()).try_into().unwrap();
    let read = || -> Value { serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap() };
    // The cache is wrong one way, then the other: ConfigMaps served under another name (a 404
    // on their lists), then no RayCluster (a miss).
    let corruptions: [Corruption; 2] = [
        ("a renamed resource", |stored| {
            stored["groupVersions"]["v1"]["ConfigMap"]["plural"] = json!("configmapz");
        }),
        ("a kind left out", |stored| {
            stored["groupVersions"]["ray.io/v1"]
                .as_object_mut()
                .unwrap()
                .remove("RayCluster");
        }),
    ];
    for (what, corrupt) in corruptions {
        let mut stored = read();
        corrupt(&mut stored);
        std::fs::write(&file, stored.to_string()).unwrap();
        srv.clear_requests();
        let out = run("diff");
        let stdout = text(&out.stdout);
        assert!(out.status.success(), "{what}: {}", text(&out.stderr));
        assert!(
            stdout.contains("0 to create, 0 to change, 0 to prune"),
            "{what}: the stale cache changed the plan: {stdout}"
        );
        assert!(
            !discovery_asked(&srv).is_empty(),
            "{what}: the server was not asked"
        );
        // What the server said is kept: the next run finds both where they are.
        let mended = read();
        assert_eq!(
            mended["groupVersions"]["v1"]["ConfigMap"]["plural"],
            "configmaps"
        );
        assert!(mended["groupVersions"]["ray.io/v1"]["RayCluster"].is_object());
    }
}

#[test]
fn a_server_without_aggregated_discovery_is_asked_per_group_version() {
    let (srv, fixture) = deployed(&[]);
    let kc = srv.kubeconfig_path().to_path_buf();
    let cache = tempfile::tempdir().unwrap();
    srv.add_fault(plane_test_apiserver::FaultRule::status(
        "GET", "/apis", 404, 100,
    ));
    srv.clear_requests();
    let mut diff = fixture.cluster("diff", &kc, LOCAL);
    diff.env("PLANE_CACHE_DIR", cache.path());
    let out = within(diff, LIMIT);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        stdout.contains("0 to create, 0 to change, 0 to prune"),
        "{stdout}"
    );
    let asked = discovery_asked(&srv);
    assert!(
        asked.iter().any(|p| p == "/apis/apps/v1") && asked.iter().any(|p| p == "/api/v1"),
        "{asked:?}"
    );
}
