//! `plane rollback` and what the record keeps for it, on the test server: a dry run that writes
//! nothing and says what the rollback then does, Secrets that keep their live values and never
//! reach the record, bad input refused before any write, an operator older than the CRDs
//! refused, another owner's object a conflict, and the record's size budget.

mod common;

use std::time::Duration;

use base64::Engine as _;
use common::{Fixture, LOCAL, builtin, text, within};
use plane_test_apiserver::{Config, TestServer};
use serde_json::{Value, json};

const RELEASE: &str = "datalayer-ray";
/// A Secret whose value comes from the bundle, not from plane: the record must never hold it.
const TOKEN: &str = "rollback-test-token-4242";

fn secret_fixture() -> Fixture {
    builtin(RELEASE).with_file(
        "components/api/token.yaml.tera",
        &format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: api-token\n  namespace: {{{{ values.api.namespace | json_encode() }}}}\nstringData:\n  token: {TOKEN}\n"
        ),
    )
}

fn run(fixture: &Fixture, srv: &TestServer, command: &str, args: &[&str]) -> std::process::Output {
    within(
        fixture.cluster(command, srv.kubeconfig_path(), args),
        Duration::from_secs(120),
    )
}

/// `plane <command> RELEASE` (rollback, history), which take a release rather than a bundle.
fn on_release(srv: &TestServer, command: &str, args: &[&str]) -> std::process::Output {
    within(
        common::on_release(command, srv.kubeconfig_path(), RELEASE, args),
        Duration::from_secs(120),
    )
}

fn writes(srv: &TestServer) -> usize {
    srv.requests().iter().filter(|r| r.is_mutating()).count()
}

/// Everything the record holds, decoded.
fn record_text(srv: &TestServer) -> String {
    common::record_text(
        &srv.get_object(
            "v1",
            "Secret",
            Some("plane-system"),
            &format!("plane-release-{RELEASE}"),
        )
        .expect("the record"),
    )
}

/// What the record's data weighs, as the API server counts a Secret's size.
fn record_size(srv: &TestServer) -> usize {
    let secret = srv
        .get_object(
            "v1",
            "Secret",
            Some("plane-system"),
            &format!("plane-release-{RELEASE}"),
        )
        .expect("the record");
    secret["data"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| {
            base64::engine::general_purpose::STANDARD
                .decode(v.as_str().unwrap())
                .unwrap()
                .len()
        })
        .sum()
}

fn history(srv: &TestServer) -> Vec<Value> {
    common::history_revisions(srv.kubeconfig_path())
}

#[test]
fn rollback_restores_a_revision_and_its_dry_run_says_what_it_then_does() {
    let srv = TestServer::start(Config::default());
    let fixture = secret_fixture();
    let out = run(&fixture, &srv, "up", &[LOCAL, &["--no-wait"]].concat());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let bad = [
        "--no-wait",
        "--yes",
        "--set",
        "api.replicas=2",
        "--set",
        "observability.enabled=false",
    ];
    let out = run(&fixture, &srv, "up", &[LOCAL, &bad].concat());
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Someone rotates the token after revision 2: a rollback keeps the live value.
    let rotated = base64::engine::general_purpose::STANDARD.encode("rotated-value-777");
    srv.patch_object(
        "rotator",
        "v1",
        "Secret",
        Some("datalayer-api"),
        "api-token",
        &json!({"data": {"token": rotated}}),
    )
    .unwrap();

    let before = writes(&srv);
    let dry = on_release(&srv, "rollback", &["--dry-run"]);
    let dry_err = text(&dry.stderr);
    assert!(dry.status.success(), "{dry_err}");
    assert_eq!(writes(&srv), before, "rollback --dry-run wrote");
    assert!(dry_err.contains("to revision 1"), "{dry_err}");
    let dry_out = text(&dry.stdout);
    assert!(
        dry_out
            .contains("skip CustomResourceDefinition/rayclusters.ray.io (CRDs only move forward"),
        "{dry_out}"
    );
    let planned = common::summary_counts(dry_out.lines().last().unwrap());

    let out = on_release(&srv, "rollback", &["--yes", "--timeout", "60s"]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("Secret/datalayer-api/api-token keeps its live values"),
        "{stderr}"
    );
    let done = stderr
        .lines()
        .find_map(|l| l.split_once("(a rollback to revision 1) deployed in "))
        .and_then(|(_, rest)| rest.split_once(": "))
        .map_or_else(|| panic!("no summary in {stderr}"), |(_, s)| s.to_owned());
    assert_eq!(
        common::summary_counts(&done),
        planned,
        "dry run: {planned:?}, done: {done}"
    );

    // Revision 1 again: one API replica, the observability component back (the CRDs are checked
    // in the cluster tier).
    let api = srv
        .get_object(
            "apps/v1",
            "Deployment",
            Some("datalayer-api"),
            "datalayer-ray",
        )
        .unwrap();
    assert_eq!(api["spec"]["replicas"], 1);
    assert!(
        srv.get_object(
            "apps/v1",
            "Deployment",
            Some("ray-observability"),
            "grafana"
        )
        .is_some()
    );
    let token = srv
        .get_object("v1", "Secret", Some("datalayer-api"), "api-token")
        .unwrap();
    assert_eq!(token["data"]["token"], rotated.as_str());
    // Revision 1's inputs plan nothing but the token's value, which the rollback kept.
    let diff = run(&fixture, &srv, "diff", &[LOCAL, &["-o", "json"]].concat());
    let plan: Value = serde_json::from_slice(&diff.stdout).unwrap();
    let changed: Vec<&Value> = plan["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["action"] != "unchanged")
        .collect();
    assert_eq!(changed.len(), 1, "{changed:#?}");
    assert_eq!(changed[0]["name"], "api-token");

    let rows = history(&srv);
    assert_eq!(rows[0]["revision"], 3);
    assert_eq!(rows[0]["rollbackOf"], 1);
    assert_eq!(rows[0]["values"], rows[2]["values"]);
    assert!(rows.iter().all(|r| r["restorable"] == true), "{rows:?}");
    let table = text(&on_release(&srv, "history", &[]).stdout);
    let encoded = base64::engine::general_purpose::STANDARD.encode(TOKEN);
    let record = record_text(&srv);
    for secret in [TOKEN, &encoded, "rotated-value-777", &rotated] {
        assert!(!record.contains(secret), "the record holds {secret}");
        assert!(!table.contains(secret), "history shows {secret}");
    }
    // Nor the values plane generated.
    let admin = srv
        .get_object("v1", "Secret", Some("ray-observability"), "grafana-admin")
        .unwrap();
    for value in admin["data"].as_object().unwrap().values() {
        assert!(!record.contains(value.as_str().unwrap()));
    }
}

#[test]
fn bad_rollbacks_are_refused_before_any_write() {
    let srv = TestServer::start(Config::default());
    let fixture = builtin(RELEASE);
    let missing = on_release(&srv, "rollback", &[]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(text(&missing.stderr).contains("release datalayer-ray not found"));

    let out = run(&fixture, &srv, "up", &[LOCAL, &["--no-wait"]].concat());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let before = writes(&srv);
    let only_one = on_release(&srv, "rollback", &[]);
    assert_eq!(only_one.status.code(), Some(2));
    assert!(
        text(&only_one.stderr).contains("no earlier deployed revision"),
        "{}",
        text(&only_one.stderr)
    );
    let unknown = on_release(&srv, "rollback", &["7"]);
    assert_eq!(unknown.status.code(), Some(2));
    let stderr = text(&unknown.stderr);
    assert!(stderr.contains("has no revision 7"), "{stderr}");
    assert!(stderr.contains("keeps revisions 1"), "{stderr}");
    assert_eq!(writes(&srv), before);

    // A record of a plane version that kept no objects: metadata-only revisions.
    let out = run(
        &fixture,
        &srv,
        "up",
        &[LOCAL, &["--no-wait", "--set", "api.replicas=2"]].concat(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    srv.patch_object(
        "older-plane",
        "v1",
        "Secret",
        Some("plane-system"),
        "plane-release-datalayer-ray",
        &json!({"data": {"revisions.json.gz": null}}),
    )
    .unwrap();
    let before = writes(&srv);
    let lost = on_release(&srv, "rollback", &["1"]);
    assert_eq!(lost.status.code(), Some(2));
    let stderr = text(&lost.stderr);
    assert!(
        stderr.contains("revision 1 of release datalayer-ray cannot be restored"),
        "{stderr}"
    );
    assert_eq!(writes(&srv), before);
    let rows = history(&srv);
    assert!(rows.iter().all(|r| r["restorable"] == false), "{rows:?}");
    let table = text(&on_release(&srv, "history", &[]).stdout);
    assert!(
        table.contains("not restorable (objects not kept): revision 2, 1"),
        "{table}"
    );
}

#[test]
fn a_rollback_to_an_operator_older_than_the_crds_is_refused() {
    let srv = TestServer::start(Config::default());
    let fixture = builtin(RELEASE);
    let older = [LOCAL, &["--no-wait", "--set", "kuberay.image.tag=v1.6.0"]].concat();
    let out = run(&fixture, &srv, "up", &older);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(&fixture, &srv, "up", &[LOCAL, &["--no-wait"]].concat());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let before = writes(&srv);
    let out = on_release(&srv, "rollback", &["1", "--yes"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("kuberay-operator v1.6.0"), "{stderr}");
    assert!(stderr.contains("kuberay-operator v1.7.0"), "{stderr}");
    assert_eq!(writes(&srv), before);
}

#[test]
fn a_rollback_never_takes_back_what_another_owner_holds_now() {
    let srv = TestServer::start(Config::default());
    let fixture = builtin(RELEASE);
    let out = run(&fixture, &srv, "up", &[LOCAL, &["--no-wait"]].concat());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let off = [
        LOCAL,
        &["--no-wait", "--yes", "--set", "observability.enabled=false"],
    ]
    .concat();
    let out = run(&fixture, &srv, "up", &off);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Another tool installs its own Grafana where revision 1 had plane's.
    srv.create_object(
        "helm",
        &json!({
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {
                "name": "prometheus",
                "namespace": "ray-observability",
                "labels": {"app.kubernetes.io/managed-by": "Helm"},
                "annotations": {"meta.helm.sh/release-name": "monitoring"},
            },
        }),
    )
    .unwrap();
    let before = writes(&srv);
    let out = on_release(&srv, "rollback", &["1", "--yes"]);
    let stderr = text(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("ServiceAccount/ray-observability/prometheus"),
        "{stderr}"
    );
    assert!(stderr.contains("belong to other owners"), "{stderr}");
    assert_eq!(writes(&srv), before);
}

#[test]
fn ten_revisions_cost_little_more_than_one_and_a_huge_render_degrades() {
    let srv = TestServer::start(Config::default());
    let fixture = builtin(RELEASE);
    let out = run(&fixture, &srv, "up", &[LOCAL, &["--no-wait"]].concat());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let one = record_size(&srv);
    for replicas in 2..=10 {
        let set = format!("api.replicas={replicas}");
        let out = run(
            &fixture,
            &srv,
            "up",
            &[LOCAL, &["--no-wait", "--set", &set]].concat(),
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let ten = record_size(&srv);
    #[allow(clippy::print_stderr, reason = "the figures for the closing note")]
    {
        eprintln!("record: {one} bytes with one revision, {ten} with ten");
    }
    #[allow(clippy::cast_precision_loss, reason = "sizes far below 2^52")]
    let ratio = ten as f64 / one as f64;
    assert!(ratio < 1.3, "{ten} bytes for ten revisions, {one} for one");
    let rows = history(&srv);
    assert_eq!(rows.len(), 10);
    assert!(rows.iter().all(|r| r["restorable"] == true), "{rows:?}");

    // A render of about 5 MB that hardly compresses: its objects cannot be kept, its metadata
    // is, and no request is ever over what a Secret may hold.
    let srv = TestServer::start(Config::default());
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut noise = |n: usize| -> String {
        const SYMBOLS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                char::from(SYMBOLS[usize::try_from(x % 62).unwrap()])
            })
            .collect()
    };
    let mut big = String::new();
    for i in 0..6 {
        big.push_str(&format!(
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: blob-{i}\n  namespace: ray-observability\ndata:\n  blob: {}\n",
            noise(850 * 1024)
        ));
    }
    let fixture = builtin(RELEASE).with_file("components/observability/blobs.yaml.tera", &big);
    let out = run(&fixture, &srv, "up", &[LOCAL, &["--no-wait"]].concat());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let largest = srv
        .requests()
        .iter()
        .filter(|r| r.path.contains("/secrets/plane-release-"))
        .map(|r| r.body_bytes)
        .max()
        .unwrap();
    assert!(largest < 1024 * 1024, "a record write of {largest} bytes");
    assert!(record_size(&srv) < 512 * 1024);
    let rows = history(&srv);
    assert_eq!(rows[0]["restorable"], false, "{rows:?}");
    let refused = on_release(&srv, "rollback", &["1"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        text(&refused.stderr).contains("given up to keep the record under its 512 KiB budget"),
        "{}",
        text(&refused.stderr)
    );
}

#[test]
fn a_team_instance_rolls_back_in_its_own_namespace() {
    let (srv, fixture) = common::deployed(&[]);
    srv.create_object(
        "admin",
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}}),
    )
    .unwrap();
    let team = [LOCAL, &["-n", "team-a", "--no-wait"]].concat();
    let out = run(&fixture, &srv, "up", &team);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(
        &fixture,
        &srv,
        "up",
        &[team.as_slice(), &["--set", "api.replicas=3"]].concat(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = on_release(&srv, "rollback", &["-n", "team-a", "--yes"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let api = srv
        .get_object("apps/v1", "Deployment", Some("team-a"), "datalayer-ray")
        .unwrap();
    assert_eq!(api["spec"]["replicas"], 1);
    let out = on_release(&srv, "history", &["-n", "team-a", "-o", "json"]);
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows[0]["rollbackOf"], 1, "{rows:#}");
    // The platform's release is another record: untouched.
    assert_eq!(history(&srv).len(), 1);
}
