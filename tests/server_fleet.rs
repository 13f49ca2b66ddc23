//! One command over three regions, each its own test API server: reads report every region and
//! add up their exit codes; `up` stops at the first failing wave with nothing written to the
//! regions after it, and says how to resume; two profiles on one cluster, or a pin whose cluster
//! identity differs, are refused before any write anywhere.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{Fixture, text, within};
use plane_test_apiserver::{Config, FaultRule, TestServer, merged_kubeconfig};
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(180);

/// Three regions r1, r2, r3: a test server each, one kubeconfig with a context each, and the
/// `minimal` bundle with a profile per region pinned to its context.
struct Regions {
    servers: Vec<TestServer>,
    fixture: Fixture,
    kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

const NAMES: [&str; 3] = ["r1", "r2", "r3"];

impl Regions {
    fn start() -> Self {
        let servers: Vec<TestServer> = NAMES
            .iter()
            .map(|_| TestServer::start(Config::default()))
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        let mut contexts: Vec<(&str, &TestServer)> = NAMES.iter().copied().zip(&servers).collect();
        // A second name for r1's cluster, for the test of two profiles on one cluster.
        contexts.push(("r1-again", &servers[0]));
        let contexts: Vec<(&str, &std::path::Path)> = contexts
            .into_iter()
            .map(|(name, server)| (name, server.kubeconfig_path()))
            .collect();
        std::fs::write(&kubeconfig, merged_kubeconfig(&contexts)).unwrap();
        let mut fixture = Fixture::addon("minimal");
        for name in NAMES.iter().chain(&["r1-again"]) {
            fixture =
                fixture.with_root_file(&format!("profiles/{name}.yaml"), &profile(name, None));
        }
        Self {
            servers,
            fixture,
            kubeconfig,
            _dir: dir,
        }
    }

    /// `plane <command> minimal` over the fleet, with `args`.
    fn plane(&self, command: &str, args: &[&str]) -> std::process::Output {
        within(self.fixture.cluster(command, &self.kubeconfig, args), LIMIT)
    }

    fn clear_requests(&self) {
        for server in &self.servers {
            server.clear_requests();
        }
    }

    /// The writes server `i` was sent since the last clear (dry runs are reads).
    fn writes(&self, i: usize) -> Vec<String> {
        self.servers[i]
            .requests()
            .into_iter()
            .filter(|r| r.method != "GET" && !r.dry_run)
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    }
}

/// A profile for the `minimal` bundle pinned to `context`, and to `uid` when given.
fn profile(context: &str, uid: Option<&str>) -> String {
    let uid = uid.map(|u| format!(", uid: {u}")).unwrap_or_default();
    format!(
        "env:\n  RUN_URL: https://{context}.example.com\nvalues:\n  minimal:\n    web:\n      \
         replicas: 1\ncluster: {{context: {context}{uid}}}\n"
    )
}

/// The summary row of `profile` in a fleet's output.
fn row_of(stdout: &str, profile: &str) -> String {
    stdout
        .lines()
        .find(|l| l.starts_with(profile))
        .unwrap_or_default()
        .to_owned()
}

fn release_on(server: &TestServer) -> Option<Value> {
    server.get_object(
        "v1",
        "Secret",
        Some("plane-system"),
        "plane-release-minimal",
    )
}

#[test]
fn reads_report_every_region_and_add_up_their_exit_codes() {
    let regions = Regions::start();
    let out = regions.plane("diff", &["--profiles", "r1,r2,r3", "--exit-code"]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    let summary = stdout.lines().next().unwrap();
    assert!(
        summary.starts_with("PROFILE") && summary.contains("RESULT"),
        "{stdout}"
    );
    for name in NAMES {
        assert!(
            stdout.contains(&format!("\n== {name} (context {name}")),
            "{stdout}"
        );
    }
    assert_eq!(
        stdout.matches("to create").count(),
        6,
        "a summary and a plan each: {stdout}"
    );

    let up = regions.plane(
        "up",
        &["--profiles", "r1,r2,r3", "--yes", "--timeout", "60s"],
    );
    assert!(up.status.success(), "{}", text(&up.stderr));
    assert!(regions.servers.iter().all(|s| release_on(s).is_some()));

    let same = regions.plane(
        "diff",
        &["--profiles", "r1,r2,r3", "--exit-code", "-o", "json"],
    );
    assert_eq!(same.status.code(), Some(0), "{}", text(&same.stderr));
    let docs: Vec<Value> = serde_json::from_slice(&same.stdout).unwrap();
    let profiles: Vec<&str> = docs.iter().filter_map(|d| d["profile"].as_str()).collect();
    assert_eq!(profiles, NAMES);
    for (doc, name) in docs.iter().zip(NAMES) {
        assert_eq!(doc["cluster"]["context"], name);
        assert!(
            doc["cluster"]["uid"]
                .as_str()
                .is_some_and(|u| !u.is_empty())
        );
    }

    // One region failing is that region's error; the others are still reported. Exit 1.
    regions.servers[1].add_fault(FaultRule::status(
        "GET",
        "*/secrets/plane-release-*",
        403,
        1000,
    ));
    let one_down = regions.plane("diff", &["--profiles", "r1,r2,r3", "--exit-code"]);
    let stdout = text(&one_down.stdout);
    let stderr = text(&one_down.stderr);
    assert_eq!(one_down.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("\n== r1 ") && stdout.contains("\n== r3 "),
        "{stdout}"
    );
    assert!(stderr.contains("1 of 3 profiles failed: r2"), "{stderr}");
    regions.servers[1].clear_faults();

    // ls side by side; --expect-same holds while every region runs one version.
    let ls = regions.plane_ls(&["--expect-same"]);
    assert_eq!(ls.status.code(), Some(0), "{}", text(&ls.stderr));
    let table = text(&ls.stdout);
    assert_eq!(table.matches(" minimal ").count(), 3, "{table}");
    assert!(table.contains("1.2.3"), "{table}");

    // Drift side by side: r2's web Deployment scaled by hand is r2's drift alone, and
    // --exit-code says so with 3 for the fleet.
    let clean = regions.plane_ls(&["--exit-code"]);
    assert_eq!(
        clean.status.code(),
        Some(0),
        "{}\n{}",
        text(&clean.stdout),
        text(&clean.stderr)
    );
    assert!(
        text(&clean.stdout).contains("DRIFT"),
        "{}",
        text(&clean.stdout)
    );
    regions.servers[1]
        .patch_object(
            "kubectl-scale",
            "apps/v1",
            "Deployment",
            Some("minimal"),
            "web",
            &serde_json::json!({"spec": {"replicas": 3}}),
        )
        .unwrap();
    let drifted = regions.plane_ls(&["--exit-code"]);
    let table = text(&drifted.stdout);
    assert_eq!(
        drifted.status.code(),
        Some(3),
        "{table}\n{}",
        text(&drifted.stderr)
    );
    assert!(
        row_of(&table, "r2").contains("Deployment/minimal/web: changed by kubectl-scale"),
        "{table}"
    );
    assert!(!row_of(&table, "r1").contains("changed by"), "{table}");
    assert!(!row_of(&table, "r3").contains("changed by"), "{table}");
}

impl Regions {
    /// `plane ls --profiles r1,r2,r3` with `args`.
    fn plane_ls(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = common::plane();
        cmd.current_dir(self.fixture.root())
            .args(["ls", "--profiles", "r1,r2,r3", "--profiles-dir"])
            .arg(self.fixture.root().join("profiles"))
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args);
        within(cmd, LIMIT)
    }
}

#[test]
fn a_failing_canary_sends_no_write_to_the_other_regions() {
    let regions = Regions::start();
    regions.servers[0].add_fault(FaultRule::status("PATCH", "*/deployments/*", 403, 1000));
    regions.clear_requests();
    let out = regions.plane(
        "up",
        &[
            "--profiles",
            "r1,r2,r3",
            "--canary",
            "r1",
            "--yes",
            "--timeout",
            "60s",
        ],
    );
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(!regions.writes(0).is_empty(), "the canary ran");
    assert_eq!(regions.writes(1), Vec::<String>::new(), "{stderr}");
    assert_eq!(regions.writes(2), Vec::<String>::new(), "{stderr}");
    assert!(stdout.contains("skipped"), "{stdout}");
    assert!(stderr.contains("skipped: r2, r3"), "{stderr}");
    assert!(
        stderr.contains("--profiles r1,r2,r3") && stderr.contains("--canary r1"),
        "the resume command: {stderr}"
    );
}

#[test]
fn a_failing_second_wave_names_the_skipped_and_its_resume_command_works() {
    let regions = Regions::start();
    let fleet = regions.fixture.root().join("fleet.yaml");
    std::fs::write(
        &fleet,
        "parallel: 1\nwaves:\n  - name: staging\n    profiles: [r1]\n  - name: east\n    \
         profiles: [r2]\n  - name: west\n    profiles: [r3]\n",
    )
    .unwrap();
    regions.servers[1].add_fault(FaultRule::status("PATCH", "*/deployments/*", 403, 1000));
    let out = regions.plane(
        "up",
        &["--fleet", "fleet.yaml", "--yes", "--timeout", "60s"],
    );
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(release_on(&regions.servers[0]).is_some());
    assert!(release_on(&regions.servers[2]).is_none());
    assert_eq!(regions.writes(2), Vec::<String>::new());
    let row = |name: &str| row_of(&stdout, name);
    assert!(row("r1").contains("revision 1"), "{stdout}");
    assert!(row("r2").contains("failed"), "{stdout}");
    assert!(row("r3").contains("skipped"), "{stdout}");
    let resume = stderr
        .lines()
        .find_map(|l| l.split("resume with: ").nth(1))
        .unwrap_or_else(|| panic!("no resume command: {stderr}"))
        .to_owned();
    assert!(
        resume.contains("--fleet fleet.yaml --profiles r2,r3"),
        "{resume}"
    );

    regions.servers[1].clear_faults();
    let words: Vec<String> = resume
        .split(' ')
        .skip(1)
        .map(|w| w.trim_matches('\'').to_owned())
        .collect();
    let mut again = common::plane();
    again.current_dir(regions.fixture.root()).args(&words);
    let resumed = within(again, LIMIT);
    assert!(
        resumed.status.success(),
        "{resume}\n{}",
        text(&resumed.stderr)
    );
    assert!(regions.servers.iter().all(|s| release_on(s).is_some()));
}

#[test]
fn two_profiles_on_one_cluster_or_a_wrong_uid_write_nothing_anywhere() {
    let regions = Regions::start();
    regions.clear_requests();
    let out = regions.plane("up", &["--profiles", "r1,r2,r1-again", "--yes"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("reach the same cluster"), "{stderr}");
    assert!(
        stderr.contains("r1 (context r1) and r1-again (context r1-again)"),
        "{stderr}"
    );
    for i in 0..3 {
        assert_eq!(regions.writes(i), Vec::<String>::new());
    }

    // r2 pinned to a uid its cluster does not have: another cluster answers at its address.
    std::fs::write(
        regions.fixture.root().join("profiles/r2.yaml"),
        profile("r2", Some("00000000-0000-0000-0000-000000000000")),
    )
    .unwrap();
    let wrong = regions.plane("diff", &["--profiles", "r1,r2,r3"]);
    let stderr = text(&wrong.stderr);
    assert_eq!(wrong.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("not the pinned uid"), "{stderr}");
    let up = regions.plane("up", &["--profiles", "r1,r2,r3", "--yes"]);
    assert_eq!(up.status.code(), Some(2), "{}", text(&up.stderr));
    for i in 0..3 {
        assert_eq!(regions.writes(i), Vec::<String>::new());
    }
    // The same pin refuses a single-profile run too.
    let single = regions.plane("up", &["--profile", "r2", "--context", "r2", "--yes"]);
    assert_eq!(single.status.code(), Some(2), "{}", text(&single.stderr));
    assert_eq!(regions.writes(1), Vec::<String>::new());
}

#[test]
fn a_fleet_without_pins_or_with_a_typo_is_refused_before_any_request() {
    let regions = Regions::start();
    regions.clear_requests();
    let typo = regions.plane("diff", &["--profiles", "r1,r4"]);
    assert_eq!(typo.status.code(), Some(2));
    assert!(
        text(&typo.stderr).contains("unknown profile `r4`"),
        "{}",
        text(&typo.stderr)
    );
    let unpinned = regions.plane("diff", &["--profiles", "r1,dev"]);
    let stderr = text(&unpinned.stderr);
    assert_eq!(unpinned.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("profile dev pins no cluster"), "{stderr}");
    let both = regions.plane("diff", &["--profiles", "r1", "--profile", "r2"]);
    assert_eq!(both.status.code(), Some(2));
    let bad_fleet = regions.fixture.root().join("bad.yaml");
    std::fs::write(&bad_fleet, "waves:\n  - profiles: [r1, r1]\n").unwrap();
    let fleet = regions.plane("up", &["--fleet", "bad.yaml", "--yes"]);
    let stderr = text(&fleet.stderr);
    assert_eq!(fleet.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("bad.yaml:2:") && stderr.contains("twice"),
        "{stderr}"
    );
    for server in &regions.servers {
        assert!(server.requests().is_empty());
    }
}

#[test]
fn a_canary_that_stops_being_ready_during_its_soak_stops_the_rollout() {
    let regions = Regions::start();
    let mut cmd = regions.fixture.cluster(
        "up",
        &regions.kubeconfig,
        &[
            "--profiles",
            "r1,r2",
            "--canary",
            "r1",
            "--soak",
            "4s",
            "--yes",
            "--timeout",
            "60s",
        ],
    );
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().expect("plane starts");
    // Once the canary converged, its web Deployment fails (another client's change).
    let deadline = std::time::Instant::now() + LIMIT;
    let ready = |server: &TestServer| {
        server
            .get_object("apps/v1", "Deployment", Some("minimal"), "web")
            .is_some_and(|d| d["status"]["readyReplicas"] == 1)
            && release_on(server).is_some()
    };
    while !ready(&regions.servers[0]) {
        assert!(
            std::time::Instant::now() < deadline,
            "the canary never converged"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    regions.servers[0]
        .patch_object(
            "someone-else",
            "apps/v1",
            "Deployment",
            Some("minimal"),
            "web",
            &serde_json::json!({"metadata": {"annotations": {
                plane_test_apiserver::FAIL_ANNOTATION: "ProgressDeadlineExceeded"
            }}}),
        )
        .expect("the patch applies");
    let out = child.wait_with_output().expect("plane ends");
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains("soak of canary failed"), "{stderr}");
    let row = |name: &str| row_of(&stdout, name);
    assert!(
        row("r1").contains("stopped being ready during the soak"),
        "{stdout}"
    );
    assert!(row("r2").contains("skipped"), "{stdout}");
    assert_eq!(regions.writes(1), Vec::<String>::new());
    assert!(release_on(&regions.servers[1]).is_none());
}
