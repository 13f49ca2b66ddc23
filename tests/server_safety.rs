//! The test server only: down, the release lock (waited for, lost, not renewed, contended),
//! refusals that send nothing, crash recovery, Ctrl-C, transient API failures, and a soak of many
//! cycles, checked through its request log and fault rules. The held lock and Ctrl-C during `up`
//! run on any cluster, in `cluster_lifecycle.rs`.

#![allow(
    clippy::useless_conversion,
    clippy::items_after_statements,
    clippy::too_many_lines,
    reason = "test scaffolding: commands are built in one place, cases declared where used"
)]

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    Fixture, LOCAL, RELEASE_LABEL, builtin, deployed, down, inventory, inventory_subjects,
    labelled, ls_json, plane, text, within,
};
use plane_test_apiserver::{Config, FaultRule, PolicyRule, RequestRecord, TestServer};
use serde_json::Value;

fn mutating(requests: &[RequestRecord]) -> Vec<String> {
    requests
        .iter()
        .filter(|r| r.is_mutating())
        .map(|r| format!("{} {} -> {}", r.method, r.path, r.status))
        .collect()
}

/// After a full `down`: nothing labelled with the release but the CRDs it keeps, and no record.
fn assert_removed(srv: &TestServer) {
    let left = labelled(srv, "datalayer-ray");
    assert!(
        left.iter()
            .all(|s| s.starts_with("CustomResourceDefinition/")),
        "{left:?}"
    );
    assert!(inventory(srv, "datalayer-ray").is_none());
}

#[test]
fn down_removes_the_release_custom_resources_first() {
    let (srv, _fixture) = deployed(&[]);
    let kc = srv.kubeconfig_path().to_path_buf();
    let installed = labelled(&srv, "datalayer-ray");
    assert!(installed.contains("RayCluster/default/raycluster"));

    // Without --yes and without a terminal: a hint, and nothing deleted.
    srv.clear_requests();
    let out = down(&kc, "datalayer-ray", &[])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("pass --yes"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        mutating(&srv.requests()).is_empty(),
        "{:?}",
        mutating(&srv.requests())
    );
    assert_eq!(labelled(&srv, "datalayer-ray"), installed);

    // --include-crds reports how many custom resources die with each CRD, before anything goes.
    let out = down(&kc, "datalayer-ray", &["--include-crds", "--dry-run"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let plan = text(&out.stdout);
    assert!(plan.contains("CustomResourceDefinition/rayclusters.ray.io: deleting it also deletes 1 RayCluster object(s) cluster-wide: default (1)"), "{plan}");
    assert!(
        plan.contains("delete RayCluster (1): default/raycluster"),
        "{plan}"
    );
    assert!(mutating(&srv.requests()).is_empty());

    // down --yes: CRs before the operator; only the kept CRDs still carry the release label.
    srv.clear_requests();
    let out = down(&kc, "datalayer-ray", &["--yes"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let deletes: Vec<String> = srv
        .requests()
        .iter()
        .filter(|r| r.method == "DELETE")
        .map(|r| r.path.clone())
        .collect();
    let position = |needle: &str| {
        deletes
            .iter()
            .position(|p| p.ends_with(needle))
            .unwrap_or_else(|| panic!("no DELETE of {needle}: {deletes:#?}"))
    };
    assert!(
        position("/rayclusters/raycluster") < position("/deployments/kuberay-operator"),
        "{deletes:#?}"
    );
    let left = labelled(&srv, "datalayer-ray");
    assert!(
        left.iter()
            .all(|s| s.starts_with("CustomResourceDefinition/")),
        "left behind: {left:#?}"
    );
    assert_eq!(left.len(), 3, "{left:?}");
    assert!(
        inventory(&srv, "datalayer-ray").is_none(),
        "the inventory outlived the release"
    );
    assert_eq!(ls_json(&kc), Value::Array(Vec::new()));

    // A second down says the release is gone.
    let out = down(&kc, "datalayer-ray", &["--yes"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("release datalayer-ray not found"),
        "{}",
        text(&out.stderr)
    );
}

/// Runs `plane down RELEASE` on a pseudo-terminal (util-linux `script`), answers its question
/// with `answer` once it is on the screen, and returns the exit code and what the screen showed.
fn down_on_a_terminal(kc: &Path, release: &str, answer: &str) -> (Option<i32>, String) {
    use std::io::{Read, Write};
    let command = format!(
        "{} down {release} --kubeconfig {}",
        env!("CARGO_BIN_EXE_plane"),
        kc.display()
    );
    let mut child = Command::new("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("util-linux `script` is needed to give plane a terminal");
    let mut stdout = child.stdout.take().unwrap();
    let (chunks, screen_output) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || chunks.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut screen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !text(&screen).contains("[y/N]") {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(chunk) = screen_output.recv_timeout(left) else {
            child.kill().ok();
            panic!("down never asked; the screen showed:\n{}", text(&screen));
        };
        screen.extend(chunk);
    }
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(answer.as_bytes()).unwrap();
    stdin.flush().unwrap();
    while let Ok(chunk) = screen_output.recv_timeout(Duration::from_secs(60)) {
        screen.extend(chunk);
    }
    drop(stdin);
    let status = child.wait().unwrap();
    (status.code(), text(&screen))
}

#[test]
fn down_on_a_terminal_asks_first() {
    let (srv, _fixture) = deployed(&[]);
    let kc = srv.kubeconfig_path().to_path_buf();
    let before = labelled(&srv, "datalayer-ray");

    srv.clear_requests();
    let (code, screen) = down_on_a_terminal(&kc, "datalayer-ray", "n");
    assert_eq!(code, Some(1), "{screen}");
    assert!(screen.contains("not confirmed"), "{screen}");
    assert!(
        screen.contains("Deployment") && screen.contains("ray-system/kuberay-operator"),
        "the question comes after the list of what would be deleted:\n{screen}"
    );
    assert_eq!(mutating(&srv.requests()), Vec::<String>::new());
    assert_eq!(labelled(&srv, "datalayer-ray"), before);

    let (code, screen) = down_on_a_terminal(&kc, "datalayer-ray", "y");
    assert_eq!(code, Some(0), "{screen}");
    assert!(screen.contains("release datalayer-ray removed"), "{screen}");
    assert!(inventory(&srv, "datalayer-ray").is_none());
}

#[test]
fn down_leaves_other_owners_objects_and_their_namespaces_alone() {
    let (srv, _fixture) = deployed(&[]);
    let kc = srv.kubeconfig_path().to_path_buf();
    // Someone keeps their own notes in the operator's namespace, and their own RayCluster.
    let notes = serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "team-notes", "namespace": "ray-system"},
        "data": {"on-call": "alice"},
    });
    let cluster = serde_json::json!({
        "apiVersion": "ray.io/v1", "kind": "RayCluster",
        "metadata": {"name": "someone-elses", "namespace": "default"},
        "spec": {"headGroupSpec": {"rayStartParams": {}, "template": {"spec": {
            "containers": [{"name": "ray-head", "image": "rayproject/ray:2.58.0"}],
        }}}},
    });
    for object in [notes, cluster] {
        srv.create_object("another-client", &object).unwrap();
    }

    let out = down(&kc, "datalayer-ray", &["--yes"]).output().unwrap();
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("keep Namespace/ray-system")
            && stderr.contains("not part of this release: ConfigMap/team-notes"),
        "{stderr}"
    );
    // The RayCluster the release did not make stays, and down said so before deleting anything.
    assert!(
        stderr.contains(
            "note: 1 RayCluster object(s) that are not part of this release stay (default (1))"
        ),
        "{stderr}"
    );
    assert!(
        srv.get_object("ray.io/v1", "RayCluster", Some("default"), "someone-elses")
            .is_some()
    );
    // The namespace and the notes stay; the release's own objects in it and elsewhere are gone.
    let left = labelled(&srv, "datalayer-ray");
    assert!(left.contains("Namespace/ray-system"), "{left:?}");
    assert!(
        left.iter()
            .all(|s| s.starts_with("CustomResourceDefinition/") || s == "Namespace/ray-system"),
        "{left:?}"
    );
    assert!(
        srv.get_object("v1", "ConfigMap", Some("ray-system"), "team-notes")
            .is_some()
    );
    assert!(inventory(&srv, "datalayer-ray").is_none());
}

#[test]
fn down_removes_namespaces_despite_what_the_cluster_publishes_into_every_namespace() {
    // An OpenShift-derived cluster with a service mesh: three ConfigMaps in every namespace.
    let srv = TestServer::start(Config {
        published_config_maps: [
            "kube-root-ca.crt",
            "openshift-service-ca.crt",
            "istio-ca-root-cert",
        ]
        .map(str::to_owned)
        .to_vec(),
        ..Config::default()
    });
    let kc = srv.kubeconfig_path().to_path_buf();
    let fixture = builtin("datalayer-ray");
    let out = fixture.cluster("up", &kc, LOCAL).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    // A user's ConfigMap with the same name in `default` and in one of the release's namespaces
    // is theirs, not the cluster's: that namespace stays.
    for ns in ["default", "ray-observability"] {
        let notes = serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "team-notes", "namespace": ns}, "data": {"on-call": "alice"},
        });
        srv.create_object("another-client", &notes).unwrap();
    }

    let out = down(&kc, "datalayer-ray", &["--yes"]).output().unwrap();
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("keep Namespace/ray-observability")
            && stderr.contains("not part of this release: ConfigMap/team-notes"),
        "{stderr}"
    );
    assert!(
        !stderr.contains(".crt") && !stderr.contains("istio"),
        "{stderr}"
    );
    for ns in ["ray-system", "datalayer-api"] {
        assert!(
            srv.get_object("v1", "Namespace", None, ns).is_none(),
            "Namespace/{ns} was kept:\n{stderr}"
        );
    }
    assert!(inventory(&srv, "datalayer-ray").is_none());
}

#[test]
fn down_with_include_crds_removes_everything() {
    let srv = TestServer::start(Config::default());
    let kc = srv.kubeconfig_path().to_path_buf();
    let fixture = builtin("datalayer-ray");
    assert!(
        fixture
            .cluster("up", &kc, LOCAL)
            .output()
            .unwrap()
            .status
            .success()
    );
    let out = down(&kc, "datalayer-ray", &["--yes", "--include-crds"])
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let report = stderr
        .find("deleting it also deletes 1 RayCluster")
        .expect("the CR count is reported");
    let first_delete = stderr
        .find("delete RayCluster/default/raycluster")
        .expect("the CR is deleted");
    assert!(
        report < first_delete,
        "the count came after the deletion:\n{stderr}"
    );
    assert!(
        labelled(&srv, "datalayer-ray").is_empty(),
        "{:?}",
        labelled(&srv, "datalayer-ray")
    );
}

/// Every right but deleting, the lock's own Lease aside: a plan's reads and dry-runs pass, so a
/// prune's denial must come from the preflight of the plan's writes.
fn all_but_deleting() -> Vec<PolicyRule> {
    vec![
        PolicyRule::new(
            &["get", "list", "watch", "create", "patch", "update"],
            &["*"],
            &["*"],
        ),
        PolicyRule::new(&["delete"], &["coordination.k8s.io"], &["leases"]),
    ]
}

/// Writes a Lease as another machine's run would hold it, expiring after `seconds`.
fn hold_lock_for(srv: &TestServer, release: &str, seconds: u32) {
    let stamp = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S.000000Z")
        .to_string();
    let namespace = serde_json::json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "plane-system"},
    });
    let lease = serde_json::json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {
            "name": format!("plane-lock-{release}"),
            "namespace": "plane-system",
            "annotations": {"plane.datalayer.io/host": "ci-runner-7", "plane.datalayer.io/pid": "4242"},
        },
        "spec": {
            "holderIdentity": "ci@ci-runner-7 pid 4242 (beef)",
            "leaseDurationSeconds": seconds,
            "acquireTime": stamp,
            "renewTime": stamp,
        },
    });
    // The namespace may exist already (an earlier run made it).
    let _ = srv.create_object("another-client", &namespace);
    srv.create_object("another-client", &lease).unwrap();
}

/// Bad inputs and refusals: each exits with its documented code and sends no mutating request.
#[test]
fn refusals_send_nothing() {
    let srv = TestServer::start(Config::default());
    let kc = srv.kubeconfig_path().to_path_buf();
    let ray = builtin("datalayer-ray");
    let minimal = Fixture::addon("minimal").with_root_file(
        "pinned.yaml",
        "env:\n  RUN_URL: https://dev.example.com\ncluster:\n  context: aks-r-eastus\n",
    );
    // A release to refuse things about.
    assert!(
        ray.cluster("up", &kc, LOCAL)
            .output()
            .unwrap()
            .status
            .success()
    );

    struct Case {
        name: &'static str,
        cmd: Command,
        code: i32,
        expect: &'static str,
    }
    let up =
        |fixture: &Fixture, args: &[&str]| -> Command { fixture.cluster("up", &kc, args).into() };
    let all_off = [
        "--profile",
        "local",
        "--set",
        "kuberay.enabled=false",
        "--set",
        "api.enabled=false",
        "--set",
        "bootstrapRayCluster.enabled=false",
        "--set",
        "logging.enabled=false",
        "--set",
        "observability.enabled=false",
        "--set",
        "networkPolicy.enabled=false",
    ];
    let mut cases = vec![
        Case {
            name: "unknown addon",
            cmd: {
                let mut c: Command = plane().into();
                c.args(["up", "datalayer-rya", "--profile", "local", "--kubeconfig"])
                    .arg(&kc);
                c
            },
            code: 2,
            expect: "did you mean `datalayer-ray`?",
        },
        Case {
            name: "unknown profile",
            cmd: up(&ray, &["--profile", "locl"]),
            code: 2,
            expect: "unknown profile `locl`",
        },
        Case {
            name: "malformed --set",
            cmd: up(&ray, &["--profile", "local", "--set", "api.replicas"]),
            code: 2,
            expect: "malformed --set",
        },
        Case {
            name: "a renamed value",
            cmd: up(&ray, &["--profile", "local", "--set", "ray.enabled=true"]),
            code: 2,
            expect: "did you mean `bootstrapRayCluster.enabled`? (renamed)",
        },
        Case {
            name: "an Ingress host that is an IP address",
            cmd: {
                let mut cmd = up(&ray, &["--profile", "local"]);
                cmd.env("DATALAYER_RUN_URL", "https://10.0.0.1");
                cmd
            },
            code: 2,
            expect: "DATALAYER_RUN_URL",
        },
        Case {
            name: "schema violation",
            cmd: up(
                &ray,
                &[
                    "--profile",
                    "local",
                    "--set",
                    "bootstrapRayCluster.worker.minReplicas=9",
                ],
            ),
            code: 2,
            expect: "is greater than",
        },
        Case {
            name: "wrong type",
            cmd: up(&ray, &["--profile", "local", "--set", "api.port=http"]),
            code: 2,
            expect: "invalid value at `api.port`",
        },
        Case {
            name: "missing input",
            cmd: up(&ray, &[]),
            code: 2,
            expect: "DATALAYER_RUN_URL is required",
        },
        Case {
            name: "http URL",
            cmd: {
                let mut c = up(&ray, LOCAL);
                c.env("DATALAYER_RUN_URL", "http://ray.example.com");
                c
            },
            code: 2,
            expect: "scheme must be https",
        },
        Case {
            name: "bad flag value",
            cmd: up(&ray, &["--profile", "local", "--timeout", "soon"]),
            code: 2,
            expect: "invalid value",
        },
        Case {
            name: "empty render over a release",
            cmd: up(&ray, &all_off),
            code: 2,
            expect: "the render is empty but the release has objects",
        },
        Case {
            name: "wrong pinned context (up)",
            cmd: up(&minimal, &["--profile", "pinned.yaml"]),
            code: 2,
            expect: "may not touch this cluster",
        },
        Case {
            name: "wrong pinned context (diff)",
            cmd: minimal
                .cluster("diff", &kc, &["--profile", "pinned.yaml"])
                .into(),
            code: 2,
            expect: "may not touch this cluster",
        },
        Case {
            name: "missing CRD",
            cmd: up(
                &ray,
                &["--profile", "local", "--set", "observability.mode=operator"],
            ),
            code: 1,
            expect: "PodMonitor in monitoring.coreos.com/v1",
        },
        Case {
            name: "prune without --yes",
            cmd: up(
                &ray,
                &[
                    "--profile",
                    "local",
                    "--set",
                    "bootstrapRayCluster.enabled=false",
                ],
            ),
            code: 1,
            expect: "pass --yes",
        },
        Case {
            name: "down without --yes",
            cmd: down(&kc, "datalayer-ray", &[]),
            code: 1,
            expect: "pass --yes",
        },
        Case {
            name: "down of an unknown release",
            cmd: down(&kc, "nope", &["--yes"]),
            code: 1,
            expect: "release nope not found",
        },
        Case {
            name: "unreadable kubeconfig",
            cmd: {
                let mut c: Command = plane().into();
                c.args(["ls", "--kubeconfig", "/nonexistent/kubeconfig"]);
                c
            },
            code: 1,
            expect: "cannot read kubeconfig",
        },
        Case {
            name: "unknown context",
            cmd: {
                let mut c: Command = plane().into();
                c.args(["ls", "--context", "nope", "--kubeconfig"]).arg(&kc);
                c
            },
            code: 1,
            expect: "cannot connect",
        },
    ];
    for case in &mut cases {
        srv.clear_requests();
        let out = case.cmd.stdin(Stdio::null()).output().unwrap();
        let stderr = text(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(case.code),
            "{}: {stderr}",
            case.name
        );
        assert!(
            stderr.contains(case.expect),
            "{}: expected {:?} in:\n{stderr}",
            case.name,
            case.expect
        );
        assert!(
            mutating(&srv.requests()).is_empty(),
            "{} wrote: {:?}",
            case.name,
            mutating(&srv.requests())
        );
    }
    let mut count = cases.len();

    // RBAC: read-only credentials are refused up front with every denial listed.
    srv.set_token_rules(
        srv.token(),
        vec![PolicyRule::new(&["get", "list", "watch"], &["*"], &["*"])],
    );
    srv.clear_requests();
    let out = up(
        &builtin("datalayer-ray"),
        &["--profile", "local", "--set", "api.replicas=2"],
    )
    .output()
    .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("lack")
            && stderr.contains("cannot patch deployments.apps in namespace datalayer-api"),
        "{stderr}"
    );
    assert!(
        stderr.contains("cannot create poddisruptionbudgets.policy in namespace datalayer-api"),
        "{stderr}"
    );
    assert!(
        mutating(&srv.requests()).is_empty(),
        "{:?}",
        mutating(&srv.requests())
    );
    count += 1;
    srv.clear_requests();
    let out = down(&kc, "datalayer-ray", &["--yes"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("cannot delete"),
        "{}",
        text(&out.stderr)
    );
    assert!(mutating(&srv.requests()).is_empty());
    count += 1;
    assert!(count >= 20, "{count} refusals");
}

/// A rule that slows every `method` request down by `ms` milliseconds.
fn slow_every(method: &str, ms: u64) -> FaultRule {
    FaultRule {
        method: Some(method.into()),
        path: "*".into(),
        delay_ms: Some(ms),
        ..FaultRule::default()
    }
}

/// Starts `plane up` and SIGKILLs it once the server has seen `writes` writes to release objects.
fn kill_after(fixture: &Fixture, srv: &TestServer, writes: usize) {
    srv.clear_requests();
    let up = fixture.cluster("up", srv.kubeconfig_path(), LOCAL);
    signal_when(up, srv, "KILL", |srv| {
        let seen = srv
            .requests()
            .iter()
            .filter(|r| r.is_mutating() && !r.path.contains("/leases"))
            .count();
        seen >= writes
    });
}

#[test]
fn a_killed_up_is_followed_by_a_rerun_that_converges() {
    for writes in [1, 3, 12, 30] {
        let srv = TestServer::start(Config::default());
        // Slow writes down a little so the kill lands in the middle of the apply.
        srv.add_fault(slow_every("PATCH", 15));
        let fixture = builtin("datalayer-ray");
        kill_after(&fixture, &srv, writes);
        srv.clear_faults();
        let out = fixture
            .cluster("up", srv.kubeconfig_path(), LOCAL)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "rerun after {writes} writes: {}",
            text(&out.stderr)
        );
        let out = fixture
            .cluster(
                "diff",
                srv.kubeconfig_path(),
                &["--profile", "local", "--exit-code"],
            )
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "after {writes} writes: {}",
            text(&out.stdout)
        );
        recorded_covering_live(&srv, "datalayer-ray");
    }
}

/// `up` waits for the lock; meanwhile the release changes so that the new plan prunes an
/// object the credentials may not delete. The plan made under the lock gets the same checks as
/// the first: the denial is listed and nothing is written (but the lock's own Lease).
#[test]
fn a_plan_made_after_a_lock_wait_is_checked_like_the_first() {
    use base64::Engine as _;
    let srv = TestServer::start(Config::default());
    let kc = srv.kubeconfig_path().to_path_buf();
    let fixture = builtin("datalayer-ray");
    let out = fixture.cluster("up", &kc, LOCAL).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    srv.create_object(
        "plane",
        &serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "extra", "namespace": "datalayer-api",
                         "labels": {RELEASE_LABEL: "datalayer-ray"}},
        }),
    )
    .unwrap();
    hold_lock_for(&srv, "datalayer-ray", 2);
    srv.set_token_rules(srv.token(), all_but_deleting());
    srv.clear_requests();
    let child = fixture
        .cluster(
            "up",
            &kc,
            &[LOCAL, &["--yes", "--wait-for-lock=60s"]].concat(),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Once it tried the lock, its first plan (a no-op, allowed) is made: change the release.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !srv
        .requests()
        .iter()
        .any(|r| r.method == "POST" && r.path.ends_with("/leases"))
    {
        assert!(Instant::now() < deadline, "up never tried the lock");
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut record = inventory(&srv, "datalayer-ray").unwrap();
    record["objects"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap", "namespace": "datalayer-api",
            "name": "extra", "component": "api",
        }));
    record["revision"] = serde_json::json!(record["revision"].as_u64().unwrap() + 1);
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(&record).unwrap());
    srv.patch_object(
        "another-run",
        "v1",
        "Secret",
        Some("plane-system"),
        "plane-release-datalayer-ray",
        &serde_json::json!({"data": {"release.json": encoded}}),
    )
    .unwrap();

    let out = child.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot delete configmaps in namespace datalayer-api"),
        "{stderr}"
    );
    let writes: Vec<String> = mutating(&srv.requests())
        .into_iter()
        .filter(|w| !w.contains("/leases"))
        .collect();
    assert!(writes.is_empty(), "wrote: {writes:?}");
    assert!(
        srv.get_object("v1", "ConfigMap", Some("datalayer-api"), "extra")
            .is_some()
    );
}

/// A run killed once its CRDs exist but before the server serves their kinds: the rerun plans
/// the CRDs `unchanged`, and must still wait until their kinds are served before it dry-runs
/// the RayCluster. `diff` in between says the CRD is not established yet, not "no matches".
#[test]
fn a_rerun_waits_for_the_crds_an_interrupted_run_created() {
    let srv = TestServer::start(Config {
        crd_establish_delay: Duration::from_secs(3),
        ..Config::default()
    });
    let fixture = builtin("datalayer-ray");
    let ray_crds = |srv: &TestServer| {
        srv.list_objects("apiextensions.k8s.io/v1", "CustomResourceDefinition", None)
            .iter()
            .filter(|c| c["spec"]["group"] == "ray.io")
            .count()
    };
    let killed = signal_when(
        fixture.cluster("up", srv.kubeconfig_path(), LOCAL),
        &srv,
        "KILL",
        |srv| ray_crds(srv) >= 3,
    );
    assert_eq!(killed.status.code(), None, "{}", text(&killed.stderr));
    let crds = srv.list_objects("apiextensions.k8s.io/v1", "CustomResourceDefinition", None);
    assert!(
        crds.iter()
            .all(|c| c["status"]["conditions"].as_array().is_none_or(|cs| !cs
                .iter()
                .any(|c| c["type"] == "Established" && c["status"] == "True"))),
        "a CRD was established already: the scenario needs a longer delay"
    );

    let out = fixture
        .cluster("diff", srv.kubeconfig_path(), LOCAL)
        .output()
        .unwrap();
    let shown = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{shown}");
    assert!(
        shown.contains("exists but is not established yet") && !shown.contains("no matches"),
        "{shown}"
    );

    let out = fixture
        .cluster("up", srv.kubeconfig_path(), LOCAL)
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("deployed"), "{stderr}");
    let out = fixture
        .cluster(
            "diff",
            srv.kubeconfig_path(),
            &["--profile", "local", "--exit-code"],
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    recorded_covering_live(&srv, "datalayer-ray");
}

/// Starts `cmd` with its output captured, waits until `ready` holds on the server, sends the
/// process `signal` (`INT` for Ctrl-C, `KILL` for a crash) and returns its output. A run that
/// ends by itself first is not signalled; the caller's checks of its output see that.
fn signal_when(
    mut cmd: Command,
    srv: &TestServer,
    signal: &str,
    ready: impl Fn(&TestServer) -> bool,
) -> std::process::Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready(srv) {
        assert!(Instant::now() < deadline, "the moment to signal never came");
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    // It may end on its own just before the signal lands; `kill` then fails, harmlessly.
    let _ = Command::new("kill")
        .args([format!("-{signal}"), child.id().to_string()])
        .status();
    child.wait_with_output().unwrap()
}

/// The release's inventory, after checking that it lists every live object of the release.
fn recorded_covering_live(srv: &TestServer, release: &str) -> Value {
    let recorded = inventory(srv, release).expect("an inventory");
    let listed = inventory_subjects(&recorded);
    let live = labelled(srv, release);
    let orphans: Vec<&String> = live.difference(&listed).collect();
    assert!(orphans.is_empty(), "live but not recorded: {orphans:?}");
    recorded
}

fn no_lock_held(srv: &TestServer) -> bool {
    srv.list_objects("coordination.k8s.io/v1", "Lease", Some("plane-system"))
        .is_empty()
}

#[test]
fn ctrl_c_after_the_lock_but_before_any_write_changes_nothing() {
    let srv = TestServer::start(Config::default());
    // The first read of the inventory is served at once; the second, under the lock, is slow.
    srv.add_fault(FaultRule {
        method: Some("GET".into()),
        path: "*/secrets/plane-release-datalayer-ray".into(),
        times: Some(1),
        ..FaultRule::default()
    });
    srv.add_fault(FaultRule {
        method: Some("GET".into()),
        path: "*/secrets/plane-release-datalayer-ray".into(),
        delay_ms: Some(3000),
        times: Some(1),
        ..FaultRule::default()
    });
    let fixture = builtin("datalayer-ray");
    let up = fixture.cluster("up", srv.kubeconfig_path(), LOCAL);
    let out = signal_when(up, &srv, "INT", |srv| {
        if no_lock_held(srv) {
            return false;
        }
        // Well inside the slow read: the run holds the lock and has written nothing else.
        std::thread::sleep(Duration::from_millis(300));
        true
    });
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("before any write"), "{stderr}");
    let writes: Vec<String> = mutating(&srv.requests())
        .into_iter()
        .filter(|w| !w.contains("/leases") && !w.contains("/namespaces/plane-system ->"))
        .filter(|w| !w.starts_with("POST /api/v1/namespaces ->"))
        .collect();
    assert_eq!(writes, Vec::<String>::new(), "only the lock was written");
    assert!(inventory(&srv, "datalayer-ray").is_none());
    assert!(labelled(&srv, "datalayer-ray").is_empty());
    assert!(no_lock_held(&srv), "the lock was not released");
}

#[test]
fn ctrl_c_stops_down_keeps_the_record_and_a_rerun_finishes() {
    let (srv, _fixture) = deployed(&[]);
    let kc = srv.kubeconfig_path().to_path_buf();
    // Slow deletes so the signal lands in the middle of the removal.
    srv.add_fault(slow_every("DELETE", 60));
    srv.clear_requests();
    let deletes = |srv: &TestServer| {
        srv.requests()
            .iter()
            .filter(|r| r.method == "DELETE" && !r.path.contains("/leases"))
            .count()
    };
    let out = signal_when(down(&kc, "datalayer-ray", &["--yes"]), &srv, "INT", |srv| {
        deletes(srv) >= 3
    });
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");

    // The record stays (marked failed) and still covers every live object; the lock is gone.
    assert_eq!(
        recorded_covering_live(&srv, "datalayer-ray")["phase"],
        "failed"
    );
    assert!(no_lock_held(&srv), "the lock was not released");

    srv.clear_faults();
    let out = within(down(&kc, "datalayer-ray", &["--yes"]), LIMIT);
    assert!(out.status.success(), "rerun: {}", text(&out.stderr));
    assert_removed(&srv);
}

const LOCK: &str = "plane-lock-datalayer-ray";

fn lease(srv: &TestServer) -> Option<Value> {
    srv.get_object(
        "coordination.k8s.io/v1",
        "Lease",
        Some("plane-system"),
        LOCK,
    )
}

/// Starts `up` against a server whose controllers take a step every `controller_step` (so the
/// run waits for readiness that long, or two or three times that), once it holds its lock.
/// The fixture must outlive the run: it holds the bundle the run reads.
fn slow_up_holding_its_lock(
    controller_step: Duration,
) -> (TestServer, Fixture, std::process::Child) {
    let srv = TestServer::start(Config {
        controller_step,
        ..Config::default()
    });
    let fixture = builtin("datalayer-ray");
    let child = fixture
        .cluster("up", srv.kubeconfig_path(), LOCAL)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while lease(&srv).is_none() {
        assert!(Instant::now() < deadline, "up never took its lock");
        std::thread::sleep(Duration::from_millis(10));
    }
    (srv, fixture, child)
}

/// Waits for a run that must end because it lost its lock.
fn expect_lost_lock(child: std::process::Child) {
    let out = child.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("lost the lock of release datalayer-ray"),
        "{stderr}"
    );
}

#[test]
fn an_up_that_loses_its_lock_stops_and_leaves_the_release_to_the_new_holder() {
    // Slow controllers keep `up` waiting for readiness long enough to lose its lock.
    let (srv, _fixture, child) = slow_up_holding_its_lock(Duration::from_secs(8));
    // Another run takes the Lease over (as it would after a missed renewal).
    srv.patch_object(
        "another-plane",
        "coordination.k8s.io/v1",
        "Lease",
        Some("plane-system"),
        LOCK,
        &serde_json::json!({"spec": {"holderIdentity": "someone@elsewhere pid 1 (0000)"}}),
    )
    .unwrap();
    expect_lost_lock(child);
    // It neither released the new holder's lock nor wrote the release's record after losing it.
    assert_eq!(
        lease(&srv).unwrap()["spec"]["holderIdentity"],
        "someone@elsewhere pid 1 (0000)"
    );
    // The record still says the run was in progress: the failure was not written over it.
    let recorded = inventory(&srv, "datalayer-ray").expect("an inventory");
    assert!(
        ["applying", "pruning"].contains(&recorded["phase"].as_str().unwrap()),
        "{}",
        recorded["phase"]
    );
}

#[test]
fn an_up_that_cannot_renew_its_lock_stops_before_the_lock_expires() {
    // Slow controllers keep `up` waiting for readiness well past the 20s it may go unrenewed.
    let (srv, _fixture, child) = slow_up_holding_its_lock(Duration::from_secs(15));
    // From now on every renewal fails.
    srv.add_fault(FaultRule {
        method: Some("PUT".into()),
        path: format!("*/leases/{LOCK}"),
        status: Some(500),
        ..FaultRule::default()
    });
    expect_lost_lock(child);
    // It gave up at the second failed renewal (20s), before the 30s Lease could expire under it.
    let renewals = srv
        .requests()
        .iter()
        .filter(|r| r.method == "PUT" && r.path.ends_with(&format!("/leases/{LOCK}")))
        .count();
    assert_eq!(renewals, 2, "two renewals were tried");
}

#[test]
fn two_concurrent_ups_do_not_interleave() {
    let srv = TestServer::start(Config::default());
    srv.add_fault(slow_every("PATCH", 20));
    let fixture = builtin("datalayer-ray");
    let spawn = |extra: &[&str]| {
        let mut cmd: Command = fixture
            .cluster("up", srv.kubeconfig_path(), &[LOCAL, extra].concat())
            .into();
        cmd.stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let first = spawn(&[]);
    std::thread::sleep(Duration::from_millis(300));
    let second = spawn(&[]);
    let (first, second) = (
        first.wait_with_output().unwrap(),
        second.wait_with_output().unwrap(),
    );
    let outcomes = [first, second];
    let succeeded = outcomes.iter().filter(|o| o.status.success()).count();
    assert!(succeeded >= 1, "neither run succeeded");
    for out in outcomes.iter().filter(|o| !o.status.success()) {
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("is locked by another run") && stderr.contains("pid"),
            "{stderr}"
        );
    }
    // With --wait-for-lock the second waits instead and both succeed.
    let first = spawn(&["--set", "api.replicas=2"]);
    std::thread::sleep(Duration::from_millis(300));
    let second = spawn(&["--set", "api.replicas=2", "--wait-for-lock=60s"]);
    assert!(first.wait_with_output().unwrap().status.success());
    let second = second.wait_with_output().unwrap();
    assert!(second.status.success(), "{}", text(&second.stderr));
    srv.clear_faults();
    let out = fixture
        .cluster(
            "diff",
            srv.kubeconfig_path(),
            &[
                "--profile",
                "local",
                "--set",
                "api.replicas=2",
                "--exit-code",
            ],
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert_eq!(ls_json(srv.kubeconfig_path())[0]["status"], "deployed");
}

/// Runs `cmd` to the end, but kills it and fails the test if it takes longer than `limit`: a
/// request that never returns must fail this test, not stall CI.
/// Faults that each fire a few times, on every kind of request the commands send.
fn flaky_rules() -> Vec<FaultRule> {
    let dropped = |method: &str, path: &str, times| FaultRule {
        method: Some(method.into()),
        path: path.into(),
        drop_connection: true,
        times: Some(times),
        ..FaultRule::default()
    };
    vec![
        FaultRule::status("PATCH", "*/deployments/*", 500, 2),
        FaultRule::status("GET", "*/secrets/plane-release-*", 429, 2),
        FaultRule::status("GET", "/api/v1/namespaces/plane-system/secrets", 429, 2),
        FaultRule::status("PATCH", "*/configmaps/*", 503, 2),
        FaultRule::status("PUT", "*/secrets/plane-release-*", 503, 1),
        FaultRule::status("DELETE", "*/rayclusters/*", 500, 2),
        FaultRule::status("DELETE", "*/deployments/*", 502, 1),
        FaultRule::status("POST", "*/selfsubjectaccessreviews", 429, 3),
        FaultRule::status("POST", "*/leases", 503, 1),
        dropped("GET", "/apis/apps/v1", 1),
        dropped("GET", "*/deployments*", 2),
        dropped("PATCH", "*/services/*", 1),
    ]
}

fn arm(srv: &TestServer, rules: &[FaultRule]) {
    srv.clear_faults();
    for rule in rules {
        srv.add_fault(rule.clone());
    }
}

const LIMIT: Duration = Duration::from_secs(120);

#[test]
fn transient_failures_are_retried() {
    let srv = TestServer::start(Config::default());
    let kc = srv.kubeconfig_path().to_path_buf();
    let fixture = builtin("datalayer-ray");
    let rules = flaky_rules();

    arm(&srv, &rules);
    let out = within(fixture.cluster("up", &kc, LOCAL), LIMIT);
    assert!(out.status.success(), "up: {}", text(&out.stderr));

    arm(&srv, &rules);
    let diff = fixture.cluster("diff", &kc, &["--profile", "local", "--exit-code"]);
    let out = within(diff, LIMIT);
    assert_eq!(
        out.status.code(),
        Some(0),
        "diff: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );

    arm(&srv, &rules);
    assert_eq!(ls_json(&kc)[0]["status"], "deployed");

    arm(&srv, &rules);
    let out = within(down(&kc, "datalayer-ray", &["--yes"]), LIMIT);
    assert!(out.status.success(), "down: {}", text(&out.stderr));
    assert_removed(&srv);

    // Every kind of fault fired on the way: error statuses, and dropped connections (status 0).
    let statuses: BTreeSet<u16> = srv.requests().iter().map(|r| r.status).collect();
    for code in [0, 429, 500, 502, 503] {
        assert!(
            statuses.contains(&code),
            "no {code} was injected: {statuses:?}"
        );
    }
}

#[test]
fn failures_that_persist_are_reported_once_retries_run_out() {
    let srv = TestServer::start(Config::default());
    let kc = srv.kubeconfig_path().to_path_buf();
    let fixture = builtin("datalayer-ray");
    let forever = |method: &str, path: &str, status| FaultRule {
        method: Some(String::from(method)),
        path: String::from(path),
        status: Some(status),
        ..FaultRule::default()
    };
    let expect_failure = |out: &std::process::Output, needles: &[&str]| {
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        for needle in needles {
            assert!(
                stderr.contains(needle),
                "{needle:?} missing from:\n{stderr}"
            );
        }
    };

    // up: the operator's Deployment keeps failing; the objects before it were applied.
    srv.add_fault(forever("PATCH", "*/deployments/kuberay-operator", 503));
    let out = within(fixture.cluster("up", &kc, LOCAL), LIMIT);
    expect_failure(
        &out,
        &[
            "Deployment/ray-system/kuberay-operator",
            "503",
            "after 6 attempts",
            "hint:",
        ],
    );
    let failed = srv
        .requests()
        .iter()
        .filter(|r| r.status == 503 && r.path.ends_with("/kuberay-operator"))
        .count();
    assert_eq!(failed, 6, "one call, tried six times");
    srv.clear_faults();
    let out = within(fixture.cluster("up", &kc, LOCAL), LIMIT);
    assert!(out.status.success(), "rerun: {}", text(&out.stderr));

    // diff: a dry-run that keeps failing (of a changed object: an unchanged one needs none).
    srv.add_fault(forever("PATCH", "*/configmaps/prometheus-config", 500));
    let diff = fixture.cluster(
        "diff",
        &kc,
        &[
            "--profile",
            "local",
            "--set",
            "observability.prometheus.scrapeInterval=30s",
        ],
    );
    expect_failure(
        &within(diff, LIMIT),
        &[
            "ConfigMap/ray-observability/prometheus-config",
            "500",
            "attempts",
        ],
    );
    srv.clear_faults();

    // ls: the list of releases keeps being throttled.
    srv.add_fault(forever(
        "GET",
        "/api/v1/namespaces/plane-system/secrets",
        429,
    ));
    let mut ls: Command = plane().into();
    ls.args(["ls", "--kubeconfig"]).arg(&kc);
    expect_failure(
        &within(ls, LIMIT),
        &["cannot list releases", "429", "attempts"],
    );
    srv.clear_faults();

    // A server that accepts the request and never answers: bounded by --request-timeout.
    srv.add_fault(FaultRule {
        method: Some("GET".into()),
        path: "*/secrets/plane-release-*".into(),
        delay_ms: Some(60_000),
        ..FaultRule::default()
    });
    let diff = fixture.cluster(
        "diff",
        &kc,
        &["--profile", "local", "--request-timeout", "200ms"],
    );
    expect_failure(
        &within(diff, LIMIT),
        &[
            "did not answer within the request timeout",
            "--request-timeout",
        ],
    );
    srv.clear_faults();

    // down: a custom resource that cannot be deleted stops down before the operator goes, and
    // a later down finishes the job.
    srv.add_fault(forever("DELETE", "*/rayclusters/raycluster", 500));
    let out = within(down(&kc, "datalayer-ray", &["--yes"]), LIMIT);
    expect_failure(&out, &["RayCluster/default/raycluster", "500", "attempts"]);
    let live = labelled(&srv, "datalayer-ray");
    assert!(
        live.contains("Deployment/ray-system/kuberay-operator"),
        "the operator must outlive its custom resources: {live:?}"
    );
    assert!(inventory(&srv, "datalayer-ray").is_some(), "inventory kept");
    srv.clear_faults();
    let out = within(down(&kc, "datalayer-ray", &["--yes"]), LIMIT);
    assert!(out.status.success(), "second down: {}", text(&out.stderr));
    assert!(inventory(&srv, "datalayer-ray").is_none());

    // A cluster that cannot be reached is reported as such, with what to check.
    let dead = tempfile::tempdir().unwrap();
    let dead_kc = dead.path().join("kubeconfig");
    let config = std::fs::read_to_string(&kc)
        .unwrap()
        .replace(&format!("127.0.0.1:{}", srv.port()), "127.0.0.1:1");
    std::fs::write(&dead_kc, config).unwrap();
    let diff = fixture.cluster("diff", &dead_kc, LOCAL);
    expect_failure(
        &within(diff, LIMIT),
        &[
            "cannot connect to the API server",
            "hint: check that the cluster is reachable",
        ],
    );
}

/// A small deterministic random source for the soak.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

#[test]
fn soak_fifty_cycles_leave_nothing_behind() {
    let srv = TestServer::start(Config::default());
    let kc = srv.kubeconfig_path().to_path_buf();
    let fixture = Fixture::addon("minimal");
    let mut rng = Lcg(0x5eed);
    let kinds = [
        ("v1", "Namespace"),
        ("v1", "ConfigMap"),
        ("v1", "Secret"),
        ("v1", "Service"),
        ("apps/v1", "Deployment"),
    ];
    let live = |srv: &TestServer| -> BTreeSet<String> {
        kinds
            .iter()
            .flat_map(|(v, k)| {
                srv.list_objects(v, k, None)
                    .into_iter()
                    .map(move |o| (k, o))
            })
            .filter(|(_, o)| o["metadata"]["labels"][RELEASE_LABEL] == "minimal")
            .map(|(k, o)| {
                format!(
                    "{k}/{}/{}",
                    o["metadata"]["namespace"].as_str().unwrap_or("-"),
                    o["metadata"]["name"].as_str().unwrap()
                )
            })
            .collect()
    };
    for cycle in 0..50 {
        let replicas = rng.below(3) + 1;
        let web = rng.below(4) != 0;
        let token = format!("token-{}", rng.below(1000));
        let sets = [
            format!("web.replicas={replicas}"),
            format!("web.maxReplicas={}", replicas + 1),
            format!("web.enabled={web}"),
            format!("web.token={token}"),
        ];
        let mut args = vec!["--profile", "dev", "--yes", "--timeout", "30s"];
        for set in &sets {
            args.extend(["--set", set.as_str()]);
        }
        let out = fixture.cluster("up", &kc, &args).output().unwrap();
        assert!(
            out.status.success(),
            "cycle {cycle} up: {}",
            text(&out.stderr)
        );
        let diff_args: Vec<&str> = args
            .iter()
            .copied()
            .filter(|a| *a != "--yes" && *a != "--timeout" && *a != "30s")
            .chain(["--exit-code"])
            .collect();
        let out = fixture.cluster("diff", &kc, &diff_args).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "cycle {cycle}: drift after up:\n{}",
            text(&out.stdout)
        );
        let inv = inventory(&srv, "minimal").expect("inventory");
        assert!(
            inv["history"].as_array().unwrap().len() <= 10,
            "history grew: {}",
            inv["history"].as_array().unwrap().len()
        );
        let recorded: BTreeSet<String> = inventory_subjects(&inv)
            .into_iter()
            .map(|s| {
                let parts: Vec<&str> = s.split('/').collect();
                if parts.len() == 2 {
                    format!("{}/-/{}", parts[0], parts[1])
                } else {
                    s.clone()
                }
            })
            .collect();
        assert_eq!(live(&srv), recorded, "cycle {cycle}: inventory drift");
        if cycle % 10 == 9 {
            let out = down(&kc, "minimal", &["--yes"]).output().unwrap();
            assert!(
                out.status.success(),
                "cycle {cycle} down: {}",
                text(&out.stderr)
            );
            assert!(
                live(&srv).is_empty(),
                "cycle {cycle}: left behind {:?}",
                live(&srv)
            );
            assert!(inventory(&srv, "minimal").is_none());
        }
    }
}

#[test]
fn prunes_the_credentials_may_not_delete_are_refused_before_any_write() {
    let srv = TestServer::start(Config::default());
    let kc = srv.kubeconfig_path().to_path_buf();
    let fixture = builtin("datalayer-ray");
    let out = fixture.cluster("up", &kc, LOCAL).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));

    srv.set_token_rules(srv.token(), all_but_deleting());
    srv.clear_requests();
    let out = fixture
        .cluster(
            "up",
            &kc,
            &[LOCAL, &["--set", "observability.enabled=false", "--yes"]].concat(),
        )
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for denial in [
        "cannot delete configmaps in namespace ray-observability",
        "cannot delete deployments.apps in namespace ray-observability",
    ] {
        assert!(
            stderr.contains(denial),
            "{denial:?} missing from:\n{stderr}"
        );
    }
    let requests = srv.requests();
    assert!(mutating(&requests).is_empty(), "{:?}", mutating(&requests));
    assert!(
        requests
            .iter()
            .any(|r| r.path.ends_with("/selfsubjectrulesreviews")),
        "the rules of each namespace were not asked for"
    );
    assert!(
        requests.iter().any(|r| r.dry_run || r.method == "GET"),
        "the plan ran first"
    );
}

/// The cluster a profile pins is kept in the release's record: `down` and `rollback` refuse
/// another cluster by it, without the profile (here one they could not even read).
#[test]
fn the_recorded_pin_refuses_another_cluster_without_the_profile() {
    let srv = TestServer::start(Config::default());
    let kc = srv.kubeconfig_path().to_path_buf();
    let minimal = Fixture::addon("minimal").with_root_file(
        "pinned-here.yaml",
        "env:\n  RUN_URL: https://dev.example.com\ncluster:\n  context: plane-test\n",
    );
    let out = within(
        minimal.cluster(
            "up",
            &kc,
            &["--profile", "pinned-here.yaml", "--timeout", "60s"],
        ),
        Duration::from_secs(120),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The same server under another context name: another cluster as far as the pin can tell.
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = dir.path().join("kubeconfig");
    let admin = std::fs::read_to_string(&kc).unwrap();
    let token = srv.token().to_owned();
    let renamed = admin
        .replace(&token, "TOKEN")
        .replace("plane-test", "elsewhere")
        .replace("TOKEN", &token);
    std::fs::write(&elsewhere, renamed).unwrap();
    srv.clear_requests();
    for command in ["down", "rollback"] {
        let out = within(
            common::on_release(command, &elsewhere, "minimal", &["--yes"]),
            Duration::from_secs(60),
        );
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command}: {stderr}");
        assert!(
            stderr.contains("profile pinned-here of release minimal may not touch this cluster")
                && stderr.contains("context `elsewhere` is not the pinned context `plane-test`"),
            "{command}: {stderr}"
        );
    }
    assert!(
        mutating(&srv.requests()).is_empty(),
        "{:?}",
        mutating(&srv.requests())
    );
    let out = within(
        common::on_release("down", &kc, "minimal", &["--yes"]),
        Duration::from_secs(120),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
}
