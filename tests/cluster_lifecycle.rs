//! The cluster tier: plane's lifecycle, lock, Ctrl-C, preflight and fail-fast paths on the
//! cluster named by `PLANE_E2E_KUBECONFIG` (kind, k3d, or `shared/realcluster`), and on a test API
//! server when it is not set. What any Kubernetes API shows is checked on both; on the test
//! server, its request log is checked too (what was written, how many requests).
//!
//! The real cluster's simulated kubelet and KubeRay fail what carries `sim.k8s-real/fail`
//! ([`SIM_FAIL_ANNOTATION`]), and so does the test server.

#![allow(
    clippy::too_many_lines,
    reason = "a lifecycle reads as one story, step by step"
)]
#![allow(
    clippy::print_stderr,
    reason = "the live tier reports its timings for the closing figures"
)]

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::{
    Fixture, LOCAL, RELEASE_LABEL, api_version_of, builtin, inventory_subjects, kinds, ls_json,
    plane, planned, subject_of, text, within,
};
use plane_test_apiserver::{FaultRule, SIM_FAIL_ANNOTATION, TestServer};
use serde_json::{Value, json};

const RELEASE: &str = "datalayer-ray";
const NAMESPACES: &[&str] = &["ray-system", "datalayer-api", "ray-observability"];
/// The release record and the lock's Leases, as the test server's request log names them.
const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/plane-system/leases";

/// Runs a plane command against the cluster under test, with a guard against hangs.
fn run(fixture: &Fixture, cluster: &Cluster, command: &str, args: &[&str]) -> Output {
    let cmd = fixture.cluster(command, cluster.kubeconfig(), args);
    within(cmd, Duration::from_secs(240))
}

/// `plane diff --exit-code` with the local profile finds nothing to do: it exits 0 and its
/// summary counts nothing to create, change or prune. The plan is printed to the test's output
/// to read on failure.
fn quiet_diff(fixture: &Fixture, cluster: &Cluster) {
    let out = run(
        fixture,
        cluster,
        "diff",
        &[LOCAL, &["--exit-code"]].concat(),
    );
    let stdout = text(&out.stdout);
    eprintln!("{stdout}{}", text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout
            .trim_end()
            .lines()
            .last()
            .is_some_and(|l| l.starts_with("0 to create, 0 to change, 0 to prune, ")),
        "{stdout}"
    );
}

fn succeeded(out: &Output) -> String {
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{}\n{stderr}", text(&out.stdout));
    stderr
}

fn diff_json(fixture: &Fixture, cluster: &Cluster, args: &[&str]) -> Value {
    let out = run(fixture, cluster, "diff", &[args, &["-o", "json"]].concat());
    succeeded(&out);
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `plane down datalayer-ray` plus `args` on the cluster under test, with a guard against hangs.
fn down(cluster: &Cluster, args: &[&str]) -> Output {
    within(
        common::down(cluster.kubeconfig(), RELEASE, args),
        Duration::from_secs(240),
    )
}

/// The test server's log of mutating requests, as `METHOD path -> status`.
fn writes(srv: &TestServer) -> Vec<String> {
    srv.requests()
        .iter()
        .filter(|r| r.is_mutating())
        .map(|r| format!("{} {} -> {}", r.method, r.path, r.status))
        .collect()
}

/// Objects of the release still in the cluster, CRDs aside (`down` keeps them).
fn left_over(cluster: &Cluster) -> Vec<String> {
    cluster
        .labelled(&kinds(), RELEASE_LABEL, RELEASE)
        .into_iter()
        .filter(|s| !s.starts_with("CustomResourceDefinition/"))
        .collect()
}

/// Starts from a cluster without the release: removes one an earlier run left. Its CRDs stay
/// (as `down` leaves them): realcluster's simulated KubeRay loses track of RayClusters whose CRD
/// is deleted and created again under it.
fn clean_slate(cluster: &Cluster) {
    // What a failed test may have left: a lock, a Helm-installed KubeRay, a hand-made namespace.
    cluster.delete(
        "coordination.k8s.io/v1",
        "Lease",
        Some("plane-system"),
        &format!("plane-lock-{RELEASE}"),
    );
    remove_helm_kuberay(cluster);
    if cluster.inventory(RELEASE).is_none() {
        cluster.delete("v1", "Namespace", None, "datalayer-api");
    }
    if cluster.inventory(RELEASE).is_some() {
        let out = down(cluster, &["--yes"]);
        assert!(out.status.success(), "cleanup: {}", text(&out.stderr));
    }
    assert!(
        left_over(cluster).is_empty(),
        "objects of an earlier release remain: {:?}",
        left_over(cluster)
    );
}

/// A cluster under test with datalayer-ray installed from a clean slate by
/// `up --profile local --no-wait`, and the bundle it came from.
fn installed(test: &str) -> (Cluster, Fixture) {
    let cluster = Cluster::under_test(test);
    clean_slate(&cluster);
    let fixture = builtin(RELEASE);
    succeeded(&run(
        &fixture,
        &cluster,
        "up",
        &[LOCAL, &["--no-wait"]].concat(),
    ));
    (cluster, fixture)
}

/// `down --yes` removes every object of the release but its CRDs, namespaces through their
/// termination, and then the record.
fn down_completely(cluster: &Cluster) {
    let started = Instant::now();
    let stderr = succeeded(&down(cluster, &["--yes"]));
    eprintln!("down took {:.1}s", started.elapsed().as_secs_f64());
    assert!(stderr.contains("removed"), "{stderr}");
    assert!(left_over(cluster).is_empty(), "{:?}", left_over(cluster));
    for ns in NAMESPACES {
        assert!(
            cluster.get("v1", "Namespace", None, ns).is_none(),
            "Namespace/{ns} is still there"
        );
    }
    assert!(cluster.inventory(RELEASE).is_none(), "the record remains");
}

/// The rendered objects of one component, as subjects.
fn component_subjects(fixture: &Fixture, component: &str) -> BTreeSet<String> {
    let out = within(
        fixture.template(&[LOCAL, &["-o", "json"]].concat()),
        Duration::from_secs(60),
    );
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["metadata"]["labels"]["plane.datalayer.io/component"] == component)
        .map(subject_of)
        .collect()
}

/// One release from install to removal: diff, up with its waits, a no-op up, drift by another
/// field manager, one changed value, a component turned off (refused without `--yes`, then
/// pruned), ls, and down. On the test server, the request log shows that diff and the refused
/// prune write nothing, and that a no-op up writes only the record and its lock, dry-runs
/// nothing, and sends at most one request per object plus ten.
#[test]
fn lifecycle_up_diff_configure_prune_ls_down() {
    let cluster = Cluster::under_test("lifecycle");
    clean_slate(&cluster);
    let fixture = builtin(RELEASE);

    // diff on a cluster without the release: creates only, and --exit-code says so.
    if let Some(srv) = cluster.test_server() {
        srv.clear_requests();
    }
    let out = run(
        &fixture,
        &cluster,
        "diff",
        &[LOCAL, &["--exit-code"]].concat(),
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let plan = diff_json(&fixture, &cluster, LOCAL);
    let creates = planned(&plan, "create");
    let objects = plan["objects"].as_array().unwrap().len();
    // CRDs an earlier release left (down keeps them) are all that may exist already.
    let unchanged = planned(&plan, "unchanged");
    let kept_crds: BTreeSet<String> = &unchanged | &planned(&plan, "configure");
    assert!(
        kept_crds
            .iter()
            .all(|s| s.starts_with("CustomResourceDefinition/")),
        "{kept_crds:?}"
    );
    assert_eq!(creates.len() + kept_crds.len(), objects, "{plan:#}");
    if let Some(srv) = cluster.test_server() {
        // A new server has no CRDs either: every line of the plan is a create.
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
        assert_eq!(
            writes(srv),
            Vec::<String>::new(),
            "diff wrote to the cluster"
        );
    }

    // up waits until everything is ready, then records the release.
    let started = Instant::now();
    let stderr = succeeded(&run(
        &fixture,
        &cluster,
        "up",
        &[LOCAL, &["--timeout", "120s"]].concat(),
    ));
    eprintln!("first up took {:.1}s", started.elapsed().as_secs_f64());
    for subject in [
        "CustomResourceDefinition/rayclusters.ray.io",
        "Deployment/ray-system/kuberay-operator",
        "Deployment/datalayer-api/datalayer-ray",
        "RayCluster/default/raycluster",
    ] {
        assert!(
            stderr
                .lines()
                .any(|l| l.contains("ready") && l.contains(subject)),
            "{subject} not awaited:\n{stderr}"
        );
    }
    assert!(stderr.contains("revision 1 deployed"), "{stderr}");
    assert!(
        stderr.contains(&format!("{} created", creates.len())),
        "{stderr}"
    );
    let raycluster = cluster
        .get("ray.io/v1", "RayCluster", Some("default"), "raycluster")
        .expect("RayCluster created");
    assert_eq!(raycluster["status"]["state"], "ready", "{raycluster:#}");

    // Right after: nothing to do, and a second up changes nothing. It takes no lock and writes
    // no revision: plane's own fields prove every object unchanged and the plan read it ready, so
    // it sends no dry-run, no write at all, and at most one request per object plus ten.
    quiet_diff(&fixture, &cluster);
    if let Some(srv) = cluster.test_server() {
        srv.clear_requests();
    }
    let history_before = cluster.inventory(RELEASE).unwrap()["revision"].clone();
    let started = Instant::now();
    let stderr = succeeded(&run(&fixture, &cluster, "up", LOCAL));
    eprintln!("no-op up took {:.1}s", started.elapsed().as_secs_f64());
    assert!(stderr.contains("no changes: revision 1 stays"), "{stderr}");
    assert_eq!(
        cluster.inventory(RELEASE).unwrap()["revision"],
        history_before,
        "a no-op records no revision"
    );
    if let Some(srv) = cluster.test_server() {
        let requests = srv.requests();
        let written: Vec<String> = requests
            .iter()
            .filter(|r| r.is_mutating())
            .map(|r| format!("{} {}", r.method, r.path))
            .collect();
        assert!(
            written.is_empty(),
            "a no-op up writes nothing: {written:#?}"
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
        let recorded = inventory_subjects(&cluster.inventory(RELEASE).unwrap()).len();
        let sent: Vec<String> = requests
            .iter()
            .map(|r| format!("{} {}?{}", r.method, r.path, r.query))
            .collect();
        assert!(
            requests.len() <= recorded + 10,
            "a no-op up of {recorded} objects sent {} requests (bound: objects + 10):\n{}",
            requests.len(),
            sent.join("\n")
        );
    }

    // Drift: someone else changes a field plane set. The no-op shortcut (plane's own fields
    // prove an object unchanged) must not hide it: diff shows exactly that object, and up puts
    // the field back.
    cluster.merge_patch(
        "v1",
        "Service",
        Some("ray-observability"),
        "prometheus",
        &json!({"metadata": {"labels": {"app.kubernetes.io/version": "edited-by-hand"}}}),
    );
    // ls shows it as drift, from the reads it makes for health; --exit-code says so with 3.
    let drift = |cluster: &Cluster| {
        ls_json(cluster.kubeconfig())
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == RELEASE)
            .expect("the release is listed")["drift"]
            .clone()
    };
    let drifted = drift(&cluster);
    assert_eq!(drifted.as_array().map(Vec::len), Some(1), "{drifted}");
    assert!(
        drifted[0]
            .as_str()
            .unwrap()
            .starts_with("Service/ray-observability/prometheus: changed by "),
        "{drifted}"
    );
    let mut ls = plane();
    ls.args(["ls", "--exit-code", "--kubeconfig"])
        .arg(cluster.kubeconfig());
    assert_eq!(within(ls, Duration::from_secs(60)).status.code(), Some(3));
    let plan = diff_json(&fixture, &cluster, LOCAL);
    assert_eq!(
        planned(&plan, "configure"),
        BTreeSet::from(["Service/ray-observability/prometheus".to_owned()]),
        "{plan:#}"
    );
    let stderr = succeeded(&run(&fixture, &cluster, "up", LOCAL));
    assert!(stderr.contains("1 configured"), "{stderr}");
    assert_eq!(drift(&cluster), json!([]), "up undid the drift");
    // Someone scales the API by hand and deletes a ConfigMap: both are drift, and up undoes both.
    cluster.merge_patch(
        "apps/v1",
        "Deployment",
        Some("datalayer-api"),
        "datalayer-ray",
        &json!({"spec": {"replicas": 2}}),
    );
    cluster.delete(
        "v1",
        "ConfigMap",
        Some("ray-observability"),
        "grafana-datasources",
    );
    let drifted = drift(&cluster).to_string();
    assert!(
        drifted.contains("Deployment/datalayer-api/datalayer-ray: changed by")
            && drifted.contains("ConfigMap/ray-observability/grafana-datasources: deleted"),
        "{drifted}"
    );
    succeeded(&run(&fixture, &cluster, "up", LOCAL));
    assert_eq!(drift(&cluster), json!([]), "up undid the drift");
    let service = cluster
        .get("v1", "Service", Some("ray-observability"), "prometheus")
        .unwrap();
    assert_ne!(
        service["metadata"]["labels"]["app.kubernetes.io/version"], "edited-by-hand",
        "up did not undo the drift"
    );
    // A value the server rewrites is no drift: a real API server keeps a CPU of 0.5 as 500m,
    // and the field is still plane's.
    let rewritten = [LOCAL, &["--set", "kuberay.resources.limits.cpu=0.5"]].concat();
    succeeded(&run(&fixture, &cluster, "up", &rewritten));
    assert_eq!(
        drift(&cluster),
        json!([]),
        "a rewritten value was taken for drift"
    );
    // Back to the profile's value (the test server keeps 0.5 as it was sent).
    succeeded(&run(&fixture, &cluster, "up", LOCAL));
    // The Ray autoscaler sets a worker group's replicas with a JSON patch of its own; in the
    // atomic workerGroupSpecs it takes the whole list, but the replicas are declared the
    // controller's: no drift, and nothing for diff to do.
    let raycluster = cluster
        .get("ray.io/v1", "RayCluster", Some("default"), "raycluster")
        .unwrap();
    let max = raycluster["spec"]["workerGroupSpecs"][0]["maxReplicas"].clone();
    assert_ne!(max, raycluster["spec"]["workerGroupSpecs"][0]["replicas"]);
    cluster.json_patch_as(
        "autoscaler",
        "ray.io/v1",
        "RayCluster",
        Some("default"),
        "raycluster",
        &json!([{"op": "replace", "path": "/spec/workerGroupSpecs/0/replicas", "value": max}]),
    );
    assert_eq!(
        drift(&cluster),
        json!([]),
        "the autoscaler's replicas were taken for drift"
    );
    quiet_diff(&fixture, &cluster);

    // ls: deployed and fully healthy.
    let rows = ls_json(cluster.kubeconfig());
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == RELEASE)
        .expect("the release is listed");
    assert_eq!(row["status"], "deployed", "{row}");
    assert_eq!(row["health"]["ready"], row["health"]["total"], "{row}");

    // One value changes exactly the object it feeds.
    let configured = [LOCAL, &["--set", "kuberay.reconcileConcurrency=2"]].concat();
    let plan = diff_json(&fixture, &cluster, &configured);
    assert_eq!(
        planned(&plan, "configure"),
        BTreeSet::from(["Deployment/ray-system/kuberay-operator".to_owned()]),
        "{plan:#}"
    );
    assert!(planned(&plan, "create").is_empty() && planned(&plan, "prune").is_empty());
    let stderr = succeeded(&run(&fixture, &cluster, "up", &configured));
    assert!(
        stderr.contains("configure Deployment/ray-system/kuberay-operator")
            && stderr.contains("1 configured"),
        "{stderr}"
    );
    let operator = cluster
        .get(
            "apps/v1",
            "Deployment",
            Some("ray-system"),
            "kuberay-operator",
        )
        .unwrap();
    assert!(
        operator.to_string().contains("-reconcile-concurrency=2")
            || operator.to_string().contains("reconcile-concurrency\",\"2"),
        "the new value did not reach the Deployment"
    );

    // An autoscaling change to the running RayCluster is shown with what it takes to apply it.
    let out = run(
        &fixture,
        &cluster,
        "diff",
        &[
            configured.as_slice(),
            &[
                "--set",
                "bootstrapRayCluster.autoscaling.idleTimeoutSeconds=120",
            ],
        ]
        .concat(),
    );
    let stderr = succeeded(&out);
    assert!(
        stderr.contains("RayCluster/default/raycluster: changes spec.autoscalerOptions")
            && stderr.contains("kubectl delete raycluster -n default raycluster"),
        "{stderr}"
    );

    // Turning a component off prunes exactly its objects (its Namespace is kept); without --yes
    // and a terminal, up refuses and changes nothing.
    let off = [
        configured.as_slice(),
        &["--set", "observability.enabled=false"],
    ]
    .concat();
    let before: BTreeSet<String> = cluster
        .labelled(&kinds(), RELEASE_LABEL, RELEASE)
        .into_iter()
        .collect();
    if let Some(srv) = cluster.test_server() {
        srv.clear_requests();
    }
    let mut refused = fixture.cluster("up", cluster.kubeconfig(), &off);
    refused.stdin(Stdio::null());
    let out = within(refused, Duration::from_secs(240));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--yes"), "{stderr}");
    if let Some(srv) = cluster.test_server() {
        assert_eq!(
            writes(srv),
            Vec::<String>::new(),
            "a refused prune wrote to the cluster"
        );
    }
    let after: BTreeSet<String> = cluster
        .labelled(&kinds(), RELEASE_LABEL, RELEASE)
        .into_iter()
        .collect();
    assert_eq!(after, before, "a refused prune changed the release");

    let mut observability = component_subjects(&fixture, "observability");
    // `template` never prints the generated Grafana admin Secret, but it is the component's too.
    observability.insert("Secret/ray-observability/grafana-admin".to_owned());
    let plan = diff_json(&fixture, &cluster, &off);
    let pruned = planned(&plan, "prune");
    assert!(!pruned.is_empty(), "{plan:#}");
    assert!(
        pruned
            .iter()
            .all(|s| s.contains("/ray-observability/") || s.contains("prometheus")),
        "{pruned:?}"
    );
    let kept = planned(&plan, "skip");
    assert_eq!(
        kept,
        BTreeSet::from(["Namespace/ray-observability".to_owned()])
    );
    assert_eq!(
        &pruned | &kept,
        observability,
        "prune set differs from the component's objects"
    );
    let stderr = succeeded(&run(
        &fixture,
        &cluster,
        "up",
        &[off.as_slice(), &["--yes"]].concat(),
    ));
    assert!(
        stderr.contains(&format!("{} pruned", pruned.len())),
        "{stderr}"
    );
    let labelled: BTreeSet<String> = cluster
        .labelled(&kinds(), RELEASE_LABEL, RELEASE)
        .into_iter()
        .collect();
    let survivors: Vec<&String> = pruned.intersection(&labelled).collect();
    assert!(survivors.is_empty(), "survived the prune: {survivors:?}");
    for subject in &pruned {
        let parts: Vec<&str> = subject.split('/').collect();
        let (kind, namespace, name) = match parts[..] {
            [kind, ns, name] => (kind, Some(ns), name),
            [kind, name] => (kind, None, name),
            _ => panic!("not a subject: {subject}"),
        };
        assert!(
            cluster
                .get(api_version_of(kind), kind, namespace, name)
                .is_none(),
            "{subject} survived the prune"
        );
    }
    assert!(
        cluster
            .get(
                "apps/v1",
                "Deployment",
                Some("ray-system"),
                "kuberay-operator"
            )
            .is_some(),
        "the prune removed another component's object"
    );
    let out = run(
        &fixture,
        &cluster,
        "diff",
        &[off.as_slice(), &["--exit-code"]].concat(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));

    // ls shows the release, its revision (install, drift, drift, a rewritten value and back,
    // value, prune; the no-op recorded none) and a healthy status, in JSON and in a table.
    let rows = ls_json(cluster.kubeconfig());
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == RELEASE)
        .expect("the release is listed");
    assert_eq!(row["revision"], 7, "{row}");
    assert_eq!(row["status"], "deployed", "{row}");
    assert_eq!(row["health"]["ready"], row["health"]["total"], "{row}");
    let mut ls = plane();
    ls.args(["ls", "--kubeconfig"]).arg(cluster.kubeconfig());
    let out = within(ls, Duration::from_secs(60));
    let table = text(&out.stdout);
    assert!(
        table.starts_with("NAME") && table.contains("HEALTH") && table.contains(RELEASE),
        "{table}"
    );

    down_completely(&cluster);
}

/// Writes the release's Lease as a run on another machine holds it, for an hour.
fn hold_lock(cluster: &Cluster) {
    cluster.apply_as(
        "e2e",
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "plane-system"}}),
    );
    // A Lease's times are MicroTime: microseconds, not nanoseconds.
    let now = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string();
    cluster.apply_as(
        "e2e",
        &json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": format!("plane-lock-{RELEASE}"), "namespace": "plane-system",
                         "annotations": {"plane.datalayer.io/host": "ci-runner-7", "plane.datalayer.io/pid": "4242"}},
            "spec": {"holderIdentity": "ci@ci-runner-7 pid 4242 (beef)", "leaseDurationSeconds": 3600,
                     "acquireTime": now, "renewTime": now}
        }),
    );
}

fn release_lock(cluster: &Cluster) {
    cluster.delete(
        "coordination.k8s.io/v1",
        "Lease",
        Some("plane-system"),
        &format!("plane-lock-{RELEASE}"),
    );
}

/// A run refused by the held lock: exit 1, the holder named with the way to wait for it, and on
/// the test server no write but the refused create of the Lease (409).
fn refused_by_the_lock(cluster: &Cluster, what: &str, cmd: Command) {
    if let Some(srv) = cluster.test_server() {
        srv.clear_requests();
    }
    let out = within(cmd, Duration::from_secs(240));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{what}: {stderr}");
    assert!(
        stderr.contains("is locked by another run")
            && stderr.contains("ci@ci-runner-7 pid 4242")
            && stderr.contains("--wait-for-lock"),
        "{what}: {stderr}"
    );
    if let Some(srv) = cluster.test_server() {
        let written: Vec<String> = writes(srv)
            .into_iter()
            .filter(|w| *w != format!("POST {LEASES} -> 409"))
            .collect();
        assert!(written.is_empty(), "{what} wrote: {written:?}");
    }
}

/// The lock held by a run on another machine: a first up, and then over a release up and down,
/// refuse naming the holder and change nothing; `--wait-for-lock` waits, then gives up.
#[test]
fn a_held_lock_refuses_up_and_down_naming_its_holder() {
    let cluster = Cluster::under_test("lock");
    clean_slate(&cluster);
    let fixture = builtin(RELEASE);

    // Before any release: nothing is created.
    hold_lock(&cluster);
    refused_by_the_lock(
        &cluster,
        "up, lock held",
        fixture.cluster("up", cluster.kubeconfig(), LOCAL),
    );
    assert!(left_over(&cluster).is_empty(), "{:?}", left_over(&cluster));
    assert!(cluster.inventory(RELEASE).is_none());
    release_lock(&cluster);

    // Over a release: up and down leave its objects and its record as they were.
    succeeded(&run(
        &fixture,
        &cluster,
        "up",
        &[LOCAL, &["--no-wait"]].concat(),
    ));
    let objects = left_over(&cluster);
    let record = cluster.inventory(RELEASE).expect("a record");
    hold_lock(&cluster);
    refused_by_the_lock(
        &cluster,
        "up, lock held",
        fixture.cluster(
            "up",
            cluster.kubeconfig(),
            &[LOCAL, &["--set", "api.replicas=2"]].concat(),
        ),
    );
    refused_by_the_lock(
        &cluster,
        "down, lock held",
        common::down(cluster.kubeconfig(), RELEASE, &["--yes"]),
    );
    assert_eq!(left_over(&cluster), objects);
    assert_eq!(cluster.inventory(RELEASE).as_ref(), Some(&record));

    let started = Instant::now();
    let out = run(
        &fixture,
        &cluster,
        "up",
        &[LOCAL, &["--wait-for-lock=2s"]].concat(),
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(started.elapsed() >= Duration::from_secs(2), "did not wait");
    assert!(
        text(&out.stderr).contains("the wait for it ran out"),
        "{}",
        text(&out.stderr)
    );
    release_lock(&cluster);
    down_completely(&cluster);
}

#[test]
fn ctrl_c_during_up_records_the_phase_and_a_rerun_converges() {
    let cluster = Cluster::under_test("ctrl-c");
    clean_slate(&cluster);
    let fixture = builtin(RELEASE);
    if let Some(srv) = cluster.test_server() {
        // Slow writes, so that the signal lands in the middle of the apply.
        srv.add_fault(FaultRule {
            method: Some("PATCH".into()),
            path: "*".into(),
            delay_ms: Some(40),
            ..FaultRule::default()
        });
    }
    // Interrupt at the first object written.
    let mut child = fixture
        .cluster("up", cluster.kubeconfig(), LOCAL)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let mut signalled = false;
    // Read to the end: a closed pipe would fail plane's own writes.
    for line in stderr.lines() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if !signalled && line.contains(" create ") {
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            signalled = true;
        }
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{seen}");
    assert!(seen.contains("interrupted"), "{seen}");
    if let Some(srv) = cluster.test_server() {
        let written = srv
            .requests()
            .iter()
            .filter(|r| r.is_mutating() && !r.dry_run && r.method == "PATCH")
            .count();
        assert!(
            written < 33,
            "up went on writing after Ctrl-C: {written} writes"
        );
        srv.clear_faults();
    }

    // The record covers every object that exists, and says the run did not finish.
    let record = cluster.inventory(RELEASE).expect("a record");
    assert_eq!(record["phase"], "failed", "{record:#}");
    let recorded = inventory_subjects(&record);
    let live: BTreeSet<String> = cluster
        .labelled(&kinds(), RELEASE_LABEL, RELEASE)
        .into_iter()
        .collect();
    let orphans: Vec<&String> = live.difference(&recorded).collect();
    assert!(orphans.is_empty(), "live but not recorded: {orphans:?}");
    assert!(
        cluster
            .get(
                "coordination.k8s.io/v1",
                "Lease",
                Some("plane-system"),
                &format!("plane-lock-{RELEASE}")
            )
            .is_none(),
        "the lock was not released"
    );
    rerun_converges(&fixture, &cluster);
}

/// After an interrupted `up`: running it again deploys, a diff is quiet, `ls` says deployed, and
/// `down` removes it.
fn rerun_converges(fixture: &Fixture, cluster: &Cluster) {
    let stderr = succeeded(&run(
        fixture,
        cluster,
        "up",
        &[LOCAL, &["--timeout", "120s"]].concat(),
    ));
    assert!(stderr.contains("deployed"), "{stderr}");
    quiet_diff(fixture, cluster);
    let rows = ls_json(cluster.kubeconfig());
    assert_eq!(rows[0]["status"], "deployed", "{rows:#}");
    down_completely(cluster);
}

/// Kills `child` (`kill -9`) as soon as `reached` (`what`, within two minutes), or once it has
/// ended.
fn kill_once(mut child: std::process::Child, what: &str, reached: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !reached() {
        assert!(Instant::now() < deadline, "{what} never appeared");
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let _ = Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

/// A run killed (`kill -9`) as soon as its CRDs and first namespace exist; the rerun waits until
/// the kinds are served, whatever its plan says of the CRDs, and converges. (On a cluster that
/// kept the CRDs from an earlier test they are established already; on the test server they are
/// new, and the rerun meets them before they are served.)
#[test]
fn a_rerun_after_a_kill_once_the_crds_exist_converges() {
    let cluster = Cluster::under_test("kill-after-crds");
    clean_slate(&cluster);
    let fixture = builtin(RELEASE);
    let child = fixture
        .cluster("up", cluster.kubeconfig(), LOCAL)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let crd = |name: &str| {
        cluster
            .get(
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                None,
                name,
            )
            .is_some()
    };
    kill_once(child, "the CRDs", || {
        crd("rayclusters.ray.io") && cluster.get("v1", "Namespace", None, "ray-system").is_some()
    });
    // The killed run's Lease stays; a rerun on the same host takes it over.
    rerun_converges(&fixture, &cluster);
}

#[test]
fn a_user_without_rights_is_refused_before_any_write() {
    let cluster = Cluster::under_test("preflight");
    // A live tier without a user to refuse would leave the preflight unchecked: that fails.
    let limited = cluster.limited_kubeconfig().unwrap_or_else(|| {
        panic!(
            "no kubeconfig of a user without rights: set {}, or put limited.kubeconfig beside {}",
            common::cluster::LIMITED_VAR,
            cluster.kubeconfig().display()
        )
    });
    clean_slate(&cluster);
    let fixture = builtin(RELEASE);
    let out = within(
        fixture.cluster("up", limited, LOCAL),
        Duration::from_secs(120),
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("permission(s)") && stderr.contains("nothing was changed"),
        "{stderr}"
    );
    assert!(stderr.contains("cannot create"), "{stderr}");
    assert!(left_over(&cluster).is_empty(), "{:?}", left_over(&cluster));
    assert!(cluster.inventory(RELEASE).is_none());
}

/// Runs `up` of a bundle whose `file` gets `annotation` after `anchor`, and expects it to fail
/// fast naming `subject`; then removes the release. Returns what `up` said.
fn fails_fast(
    cluster: &Cluster,
    file: &str,
    anchor: &str,
    annotated: &str,
    subject: &str,
) -> String {
    clean_slate(cluster);
    let fixture = builtin(RELEASE).patch_file(file, anchor, annotated);
    let started = Instant::now();
    let out = run(
        &fixture,
        cluster,
        "up",
        &[LOCAL, &["--timeout", "180s"]].concat(),
    );
    let took = started.elapsed();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("{subject} failed")), "{stderr}");
    // Fail-fast: well before the deadline, without a timeout report.
    assert!(!stderr.contains("timed out"), "{stderr}");
    eprintln!("failed fast in {:.1}s", took.as_secs_f64());
    if cluster.test_server().is_some() {
        // Its controllers are quick: a wait for the failure itself would take far longer.
        assert!(
            took < Duration::from_secs(60),
            "took {took:?}: not fail-fast"
        );
    }
    let rows = ls_json(cluster.kubeconfig());
    assert_eq!(rows[0]["status"], "failed", "{rows:#}");
    down_completely(cluster);
    stderr
}

#[test]
fn a_raycluster_with_replica_failure_fails_fast() {
    let cluster = Cluster::under_test("raycluster-failure");
    let stderr = fails_fast(
        &cluster,
        "components/ray/raycluster.yaml.tera",
        "  annotations:\n",
        &format!("  annotations:\n    {SIM_FAIL_ANNOTATION}: \"quota exceeded (simulated)\"\n"),
        "RayCluster/default/raycluster",
    );
    assert!(stderr.contains("ReplicaFailure"), "{stderr}");
}

#[test]
fn crash_looping_pods_fail_fast() {
    let cluster = Cluster::under_test("crashloop");
    // The simulated kubelet gives the annotation's text as the last termination message.
    let stderr = fails_fast(
        &cluster,
        "components/api/deployment.yaml.tera",
        "  template:\n    metadata:\n",
        &format!(
            "  template:\n    metadata:\n      annotations: {{{SIM_FAIL_ANNOTATION}: \"forbidden to list widgets (simulated)\"}}\n"
        ),
        "Deployment/datalayer-api/datalayer-ray",
    );
    assert!(
        stderr.contains("CrashLoopBackOff")
            && stderr.contains("it last exited with: forbidden to list widgets (simulated)"),
        "{stderr}"
    );
}

#[test]
fn a_no_op_up_still_reports_a_release_that_turned_unhealthy() {
    let cluster = Cluster::under_test("unhealthy-no-op");
    clean_slate(&cluster);
    let fixture = builtin(RELEASE);
    succeeded(&run(&fixture, &cluster, "up", LOCAL));
    // The RayCluster fails after the install, without a change to anything plane set: the plan
    // proves every object unchanged, and must still not take the release for healthy.
    cluster.merge_patch(
        "ray.io/v1",
        "RayCluster",
        Some("default"),
        "raycluster",
        &json!({"metadata": {"annotations": {SIM_FAIL_ANNOTATION: "quota exceeded (simulated)"}}}),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let failing = |rc: &Value| {
        rc["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "ReplicaFailure" && c["status"] == "True")
    };
    while !cluster
        .get("ray.io/v1", "RayCluster", Some("default"), "raycluster")
        .is_some_and(|rc| failing(&rc))
    {
        assert!(Instant::now() < deadline, "the RayCluster did not fail");
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = run(
        &fixture,
        &cluster,
        "up",
        &[LOCAL, &["--timeout", "60s"]].concat(),
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("0 to create, 0 to change"), "{stderr}");
    assert!(
        stderr.contains("RayCluster/default/raycluster failed"),
        "{stderr}"
    );
    assert_eq!(ls_json(cluster.kubeconfig())[0]["status"], "failed");
    down_completely(&cluster);
}

/// An object someone else installed, with what it looked like then: its generation (bumped by
/// any spec change), labels, annotations and field managers (plane would add itself). Its
/// resourceVersion would not do: the operator's Deployment gets status updates on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Installed {
    api_version: &'static str,
    kind: &'static str,
    namespace: Option<&'static str>,
    name: String,
    version: String,
}

impl Installed {
    /// The same object as it is now.
    fn now(&self, cluster: &Cluster) -> Self {
        let live = cluster
            .get(self.api_version, self.kind, self.namespace, &self.name)
            .unwrap_or_else(|| panic!("{}/{} is gone", self.kind, self.name));
        let metadata = &live["metadata"];
        let managers: BTreeSet<&str> = metadata["managedFields"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["manager"].as_str())
            .collect();
        Self {
            version: format!(
                "generation {} labels {} annotations {} managers {managers:?}",
                metadata["generation"], metadata["labels"], metadata["annotations"]
            ),
            ..self.clone()
        }
    }
}

fn unchanged(cluster: &Cluster, installed: &[Installed]) {
    let now: Vec<Installed> = installed.iter().map(|i| i.now(cluster)).collect();
    assert_eq!(now, installed, "someone else's objects were changed");
}

/// The bundle's CRDs as KubeRay's Helm chart would have installed them, and its operator running
/// in namespace `kuberay`, applied by the field manager `helm`.
fn install_kuberay_with_helm(cluster: &Cluster, fixture: &Fixture) -> Vec<Installed> {
    let out = fixture
        .template(&["--profile", "local", "-o", "json"])
        .output()
        .unwrap();
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    let helm_labels = json!({"app.kubernetes.io/managed-by": "Helm", "app.kubernetes.io/name": "kuberay-operator", "helm.sh/chart": "kuberay-operator-1.7.0"});
    let helm_annotations = json!({"meta.helm.sh/release-name": "kuberay-operator", "meta.helm.sh/release-namespace": "kuberay"});
    let mut installed = Vec::new();
    for crd in list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["kind"] == "CustomResourceDefinition")
    {
        let name = crd["metadata"]["name"].as_str().unwrap().to_owned();
        // CRDs an earlier release left become Helm's (see `clean_slate` for why not recreated).
        relabel_crd(
            cluster,
            &name,
            &json!({"labels": {
                RELEASE_LABEL: null, "plane.datalayer.io/addon": null,
                "plane.datalayer.io/component": null, "app.kubernetes.io/managed-by": null,
            }}),
        );
        let mut crd = crd.clone();
        crd["metadata"]["labels"] = helm_labels.clone();
        crd["metadata"]["annotations"] = helm_annotations.clone();
        cluster.apply_as("helm", &crd);
        installed.push(Installed {
            api_version: "apiextensions.k8s.io/v1",
            kind: "CustomResourceDefinition",
            namespace: None,
            name,
            version: String::new(),
        });
    }
    cluster.apply_as(
        "helm",
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kuberay"}}),
    );
    // The operator's RBAC as the Helm chart installs it: the upstream operator role (the facts
    // recorded from the pinned release), so the real cluster's simulated KubeRay finds it healthy.
    let rbac = "rbac.authorization.k8s.io/v1";
    for (api_version, kind, namespace, rest) in [
        ("v1", "ServiceAccount", Some("kuberay"), json!({})),
        (
            rbac,
            "ClusterRole",
            None,
            json!({"rules": upstream_operator_rules()}),
        ),
        (
            rbac,
            "ClusterRoleBinding",
            None,
            json!({"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "kuberay-operator"},
                   "subjects": [{"kind": "ServiceAccount", "name": "kuberay-operator", "namespace": "kuberay"}]}),
        ),
    ] {
        let mut object = json!({"apiVersion": api_version, "kind": kind,
                                "metadata": {"name": "kuberay-operator", "labels": helm_labels, "annotations": helm_annotations}});
        if let Some(ns) = namespace {
            object["metadata"]["namespace"] = json!(ns);
        }
        object
            .as_object_mut()
            .unwrap()
            .extend(rest.as_object().unwrap().clone());
        cluster.apply_as("helm", &object);
        installed.push(Installed {
            api_version,
            kind,
            namespace,
            name: "kuberay-operator".to_owned(),
            version: String::new(),
        });
    }
    cluster.apply_as(
        "helm",
        &json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "kuberay-operator", "namespace": "kuberay",
                         "labels": helm_labels, "annotations": helm_annotations},
            "spec": {"replicas": 1,
                "selector": {"matchLabels": {"app.kubernetes.io/name": "kuberay-operator", "app.kubernetes.io/instance": "kuberay-operator"}},
                "template": {"metadata": {"labels": {"app.kubernetes.io/name": "kuberay-operator", "app.kubernetes.io/instance": "kuberay-operator"}},
                    "spec": {"serviceAccountName": "kuberay-operator",
                             "containers": [{"name": "kuberay-operator", "image": "quay.io/kuberay/operator:v1.7.0"}]}}}
        }),
    );
    installed.push(Installed {
        api_version: "apps/v1",
        kind: "Deployment",
        namespace: Some("kuberay"),
        name: "kuberay-operator".to_owned(),
        version: String::new(),
    });
    // As after a Helm install: the CRDs are established and the operator is rolled out.
    let deadline = Instant::now() + Duration::from_secs(60);
    let settled = || {
        crds_served(cluster)
            && cluster
                .get("apps/v1", "Deployment", Some("kuberay"), "kuberay-operator")
                .is_some_and(|d| d["status"]["readyReplicas"] == 1)
    };
    while !settled() {
        assert!(
            Instant::now() < deadline,
            "the Helm-installed KubeRay never settled"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    installed.iter().map(|i| i.now(cluster)).collect()
}

fn crds_served(cluster: &Cluster) -> bool {
    cluster
        .get(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            None,
            "rayclusters.ray.io",
        )
        .is_some_and(|crd| {
            crd["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Established" && c["status"] == "True")
        })
}

/// Changes a CRD's metadata by hand, if it exists.
fn relabel_crd(cluster: &Cluster, name: &str, metadata: &Value) {
    if cluster
        .get(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            None,
            name,
        )
        .is_some()
    {
        cluster.merge_patch(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            None,
            name,
            &json!({ "metadata": metadata }),
        );
    }
}

/// The rules of the pinned KubeRay release's operator role, from the recorded facts: one rule
/// per (group, resource) with its verbs.
fn upstream_operator_rules() -> Vec<Value> {
    let mut rules: std::collections::BTreeMap<(String, String), Vec<String>> =
        std::collections::BTreeMap::new();
    for (group, resource, verb) in common::upstream_operator_role() {
        rules.entry((group, resource)).or_default().push(verb);
    }
    rules
        .into_iter()
        .map(|((group, resource), verbs)| {
            json!({"apiGroups": [group], "resources": [resource], "verbs": verbs})
        })
        .collect()
}

/// Removes the Helm-installed operator, and hands its CRDs back to the release, as `down`
/// leaves them for the next test.
fn remove_helm_kuberay(cluster: &Cluster) {
    cluster.delete("apps/v1", "Deployment", Some("kuberay"), "kuberay-operator");
    // Only Helm's: the release's own ClusterRole of the same name stays.
    for kind in ["ClusterRoleBinding", "ClusterRole"] {
        let helms = cluster
            .get(
                "rbac.authorization.k8s.io/v1",
                kind,
                None,
                "kuberay-operator",
            )
            .is_some_and(|o| o["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm");
        if helms {
            cluster.delete(
                "rbac.authorization.k8s.io/v1",
                kind,
                None,
                "kuberay-operator",
            );
        }
    }
    cluster.delete("v1", "Namespace", None, "kuberay");
    for crd in ["rayclusters.ray.io", "rayjobs.ray.io", "rayservices.ray.io"] {
        relabel_crd(
            cluster,
            crd,
            &json!({
                "labels": {
                    "app.kubernetes.io/managed-by": "plane", RELEASE_LABEL: RELEASE,
                    "plane.datalayer.io/addon": RELEASE, "plane.datalayer.io/component": "kuberay",
                    "helm.sh/chart": null, "app.kubernetes.io/name": null,
                },
                "annotations": {"meta.helm.sh/release-name": null, "meta.helm.sh/release-namespace": null},
            }),
        );
    }
}

#[test]
fn beside_a_helm_installed_kuberay_up_refuses_then_installs_the_rest() {
    let cluster = Cluster::under_test("existing-kuberay");
    clean_slate(&cluster);
    remove_helm_kuberay(&cluster);
    let fixture = builtin(RELEASE);
    let installed = install_kuberay_with_helm(&cluster, &fixture);

    // diff lists who owns what; up refuses, names every owner, changes nothing.
    let out = run(&fixture, &cluster, "diff", LOCAL);
    let stderr = succeeded(&out);
    assert!(
        stderr.contains("belongs to Helm release kuberay-operator (namespace kuberay)"),
        "{stderr}"
    );
    let out = run(&fixture, &cluster, "up", LOCAL);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for expected in [
        "CustomResourceDefinition/rayclusters.ray.io belongs to Helm release kuberay-operator",
        "KubeRay operator already runs: Deployment/kuberay/kuberay-operator",
        "--set kuberay.enabled=false",
        "nothing was changed",
    ] {
        assert!(stderr.contains(expected), "{expected:?} missing:\n{stderr}");
    }
    assert!(left_over(&cluster).is_empty(), "{:?}", left_over(&cluster));
    assert!(cluster.inventory(RELEASE).is_none());
    unchanged(&cluster, &installed);

    // Keeping the existing operator: the rest installs and the RayCluster gets ready through it.
    let keep = [
        LOCAL,
        &["--set", "kuberay.enabled=false", "--timeout", "120s"],
    ]
    .concat();
    let stderr = succeeded(&run(&fixture, &cluster, "up", &keep));
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("ready") && l.contains("RayCluster/default/raycluster")),
        "{stderr}"
    );
    unchanged(&cluster, &installed);
    let record = cluster.inventory(RELEASE).unwrap();
    assert!(
        !record.to_string().contains("CustomResourceDefinition"),
        "the existing CRDs were recorded: {record:#}"
    );
    down_completely(&cluster);
    unchanged(&cluster, &installed);
    remove_helm_kuberay(&cluster);
}

#[test]
fn objects_of_nobody_are_adopted_only_when_asked_and_down_keeps_them() {
    let cluster = Cluster::under_test("take-ownership");
    clean_slate(&cluster);
    let fixture = builtin(RELEASE);
    // Someone created the API's namespace and service account by hand, with a label (an object
    // without any field of its own keeps no field manager, and then belongs to nobody).
    cluster.apply_as(
        "kubectl-create",
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "datalayer-api", "labels": {"team": "api"}}}),
    );
    cluster.apply_as(
        "kubectl-create",
        &json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "datalayer-ray", "namespace": "datalayer-api", "labels": {"team": "api"}}}),
    );
    let out = run(&fixture, &cluster, "up", LOCAL);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "ServiceAccount/datalayer-api/datalayer-ray belongs to field managers kubectl-create"
        ) && stderr.contains("Namespace/datalayer-api belongs to field managers kubectl-create")
            && stderr.contains("--take-ownership"),
        "{stderr}"
    );
    assert!(cluster.inventory(RELEASE).is_none());

    let stderr = succeeded(&run(
        &fixture,
        &cluster,
        "up",
        &[LOCAL, &["--take-ownership", "--timeout", "120s"]].concat(),
    ));
    assert!(
        stderr.contains("adopt ServiceAccount/datalayer-api/datalayer-ray"),
        "{stderr}"
    );
    let record = cluster.inventory(RELEASE).unwrap();
    let adopted: BTreeSet<String> = record["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["adopted"] == true)
        .map(|o| o["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        adopted,
        BTreeSet::from(["datalayer-api".to_owned(), "datalayer-ray".to_owned()])
    );

    let stderr = succeeded(&down(&cluster, &["--yes"]));
    assert!(
        stderr.contains("keep ServiceAccount/datalayer-api/datalayer-ray (it existed before this release took it over"),
        "{stderr}"
    );
    assert!(cluster.inventory(RELEASE).is_none());
    assert!(
        cluster
            .get(
                "v1",
                "ServiceAccount",
                Some("datalayer-api"),
                "datalayer-ray"
            )
            .is_some()
    );
    assert!(
        cluster
            .get("v1", "Namespace", None, "datalayer-api")
            .is_some()
    );
    assert!(
        cluster
            .get(
                "apps/v1",
                "Deployment",
                Some("datalayer-api"),
                "datalayer-ray"
            )
            .is_none()
    );
    cluster.delete("v1", "Namespace", None, "datalayer-api");
}

#[test]
fn two_releases_never_share_an_object() {
    let (cluster, fixture) = installed("two-releases");
    let out = run(
        &fixture,
        &cluster,
        "up",
        &[LOCAL, &["--release", "second"]].concat(),
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "ClusterRole/kuberay-operator belongs to plane release datalayer-ray (namespace plane-system)"
        ) && stderr.contains("two plane releases never share an object"),
        "{stderr}"
    );
    assert!(cluster.inventory("second").is_none());
    down_completely(&cluster);
}

#[test]
fn a_first_install_the_server_rejects_stops_after_namespaces_and_crds() {
    let cluster = Cluster::under_test("rejected-first-install");
    clean_slate(&cluster);
    // A Deployment whose selector does not match its pods: the server refuses it, and only the
    // server can tell (plane renders it), once its namespace exists.
    let fixture = builtin(RELEASE).patch_file(
        "components/api/deployment.yaml.tera",
        "    matchLabels: {{ m::selector(name=\"datalayer-ray\", release=release.name) }}",
        "    matchLabels: {app: nothing-matches}",
    );
    let out = run(&fixture, &cluster, "up", LOCAL);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("rejected 1 object(s) on dry-run")
            && stderr.contains("Deployment/datalayer-api/datalayer-ray"),
        "{stderr}"
    );
    let written = left_over(&cluster);
    assert!(
        written.iter().all(|s| s.starts_with("Namespace/")),
        "written before the rejection: {written:?}"
    );
    // A rerun with the bundle fixed converges; down clears everything.
    let stderr = succeeded(&run(
        &builtin(RELEASE),
        &cluster,
        "up",
        &[LOCAL, &["--timeout", "120s"]].concat(),
    ));
    assert!(stderr.contains("deployed"), "{stderr}");
    down_completely(&cluster);
}

/// Where the RayCluster, RayJob, RayService and RayCronJob samples of the pinned KubeRay release
/// are: `PLANE_KUBERAY_SAMPLES`, or `kuberay-samples/v1.7.0` under realcluster's root, where the
/// README's one-line command extracts them. They are not committed.
fn samples_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PLANE_KUBERAY_SAMPLES") {
        return PathBuf::from(dir);
    }
    let root = std::env::var_os("REALCLUSTER_ROOT").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join("k8s-real"),
        PathBuf::from,
    );
    root.join("kuberay-samples/v1.7.0")
}

/// Every `ray.io` object of the YAML files under `dir`, with the file it came from.
fn ray_samples(dir: &std::path::Path) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
                continue;
            }
            if !path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for document in serde_yaml_ng::Deserializer::from_str(&text) {
                let Ok(object) = <Value as serde::Deserialize>::deserialize(document) else {
                    continue;
                };
                if object["apiVersion"]
                    .as_str()
                    .is_some_and(|v| v.starts_with("ray.io/"))
                {
                    let file = path
                        .strip_prefix(dir)
                        .unwrap_or(&path)
                        .display()
                        .to_string();
                    out.push((file, object));
                }
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The JSON pointers of every non-null leaf (and empty map or list) of `value`; a pointer's
/// `/` separates keys, so dotted keys (`nvidia.com/gpu`, escaped `nvidia.com~1gpu`) stay whole.
fn leaf_pointers(value: &Value, at: &str, out: &mut Vec<String>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, child) in map {
                let key = key.replace('~', "~0").replace('/', "~1");
                leaf_pointers(child, &format!("{at}/{key}"), out);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for (i, child) in items.iter().enumerate() {
                leaf_pointers(child, &format!("{at}/{i}"), out);
            }
        }
        Value::Null => {}
        _ => out.push(at.to_owned()),
    }
}

/// The fields of `sample`'s spec that a server-side dry-run of it comes back without, or the
/// server's refusal.
fn lost_fields(cluster: &Cluster, sample: &Value) -> Result<Vec<String>, String> {
    let stored = cluster.dry_run_apply("plane-samples", sample)?;
    let mut pointers = Vec::new();
    leaf_pointers(&sample["spec"], "/spec", &mut pointers);
    pointers.retain(|pointer| stored.pointer(pointer).is_none());
    Ok(pointers)
}

/// Upstream's own samples, server-side dry-run against the CRDs the bundle installs (every CRD,
/// so with the RayCronJob gate on): none refused, none coming back without a field it set.
#[test]
fn upstream_samples_dry_run_against_the_bundles_crds() {
    const TEST: &str = "upstream_samples_dry_run_against_the_bundles_crds";
    let cluster = Cluster::under_test("kuberay-samples");
    if !cluster.is_live() {
        common::cluster::skipped(TEST, "the samples are checked on a real API server only");
        return;
    }
    let dir = samples_dir();
    if !dir.is_dir() {
        common::cluster::skipped(
            TEST,
            &format!(
                "no KubeRay samples at {} (README, \"The live tier\", says how to extract them)",
                dir.display()
            ),
        );
        return;
    }
    let samples = ray_samples(&dir);
    assert!(
        !samples.is_empty(),
        "no ray.io object under {}",
        dir.display()
    );
    clean_slate(&cluster);
    let fixture = builtin(RELEASE);
    succeeded(&run(
        &fixture,
        &cluster,
        "up",
        &[
            LOCAL,
            &["--set", "kuberay.featureGates.RayCronJob=true", "--no-wait"],
        ]
        .concat(),
    ));
    let mut kinds: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    let mut refused = Vec::new();
    let mut lost = Vec::new();
    for (file, mut sample) in samples.clone() {
        sample["metadata"]["namespace"] = json!("default");
        // An apply needs a name: a sample that asks the server for one gets a made-up one.
        if sample["metadata"]["name"].is_null() {
            let stem = sample["metadata"]["generateName"]
                .as_str()
                .unwrap_or("sample-");
            sample["metadata"]["name"] = json!(format!("{stem}sample"));
        }
        let kind = sample["kind"].as_str().unwrap_or("?").to_owned();
        *kinds.entry(kind.clone()).or_default() += 1;
        match lost_fields(&cluster, &sample) {
            Err(err) => refused.push(format!("{file} ({kind}): {err}")),
            Ok(missing) => lost.extend(
                missing
                    .into_iter()
                    .map(|pointer| format!("{file} ({kind}): {pointer}")),
            ),
        }
    }
    // The check itself can fail: a field no schema has is refused (a real API server answers a
    // server-side apply with "field not declared in schema") or comes back missing.
    let mut control = samples[0].1.clone();
    control["metadata"]["namespace"] = json!("default");
    control["metadata"]["name"] = json!("plane-control");
    control["spec"]["notAField"] = json!(1);
    let reported = match lost_fields(&cluster, &control) {
        Err(err) => err.contains("notAField"),
        Ok(missing) => missing == ["/spec/notAField"],
    };
    assert!(
        reported,
        "the control sample's unknown field was not reported"
    );
    eprintln!(
        "samples: {} checked ({}), {} refused, {} field(s) lost",
        samples.len(),
        kinds
            .iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect::<Vec<_>>()
            .join(", "),
        refused.len(),
        lost.len()
    );
    assert!(
        refused.is_empty() && lost.is_empty(),
        "refused:\n{}\nlost:\n{}",
        refused.join("\n"),
        lost.join("\n")
    );
    down_completely(&cluster);
    // `down` keeps CRDs; the other tests render none for RayCronJob, so it goes.
    cluster.delete(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        None,
        "raycronjobs.ray.io",
    );
}

/// The fields and defaults the bundle's RayService CRD must keep as the official one does: a
/// Kueue-managed, suspended RayService using incremental upgrade without `maxSurgePercent` keeps
/// `managedBy` and `suspend` and gets the default 100, which KubeRay dereferences.
#[test]
fn a_rayservice_keeps_managed_by_and_suspend_and_gets_the_max_surge_default() {
    let (cluster, _fixture) = installed("rayservice-fields");
    let service = json!({
        "apiVersion": "ray.io/v1", "kind": "RayService",
        "metadata": {"name": "fields-kept", "namespace": "default"},
        "spec": {
            "managedBy": "kueue.x-k8s.io/multikueue",
            "suspend": true,
            "upgradeStrategy": {
                "type": "NewClusterWithIncrementalUpgrade",
                "clusterUpgradeOptions": {"gatewayClassName": "istio", "stepSizePercent": 25, "intervalSeconds": 30},
            },
            "rayClusterConfig": {
                "headGroupSpec": {"rayStartParams": {}, "template": {"spec": {"containers": [
                    {"name": "ray-head", "image": "rayproject/ray:2.58.0"}]}}},
            },
        },
    });
    let stored = cluster
        .dry_run_apply("plane-test", &service)
        .unwrap_or_else(|err| panic!("refused: {err}"));
    let spec = &stored["spec"];
    assert_eq!(spec["managedBy"], "kueue.x-k8s.io/multikueue", "{spec:#}");
    assert_eq!(spec["suspend"], true, "{spec:#}");
    assert_eq!(
        spec["upgradeStrategy"]["clusterUpgradeOptions"]["maxSurgePercent"], 100,
        "{spec:#}"
    );
    eprintln!("RayService dry-run: managedBy and suspend kept, maxSurgePercent defaulted to 100");
    down_completely(&cluster);
}

/// `plane rollback RELEASE` plus `args` on the cluster under test (it takes a release, not a
/// bundle).
fn rollback(cluster: &Cluster, args: &[&str]) -> Command {
    common::on_release("rollback", cluster.kubeconfig(), RELEASE, args)
}

/// Everything the release's record holds, decoded.
fn record_text(cluster: &Cluster) -> String {
    common::record_text(
        &cluster
            .get(
                "v1",
                "Secret",
                Some("plane-system"),
                &format!("plane-release-{RELEASE}"),
            )
            .expect("the record"),
    )
}

fn crd_versions(cluster: &Cluster) -> Vec<String> {
    ["rayclusters.ray.io", "rayjobs.ray.io", "rayservices.ray.io"]
        .iter()
        .map(|name| {
            cluster
                .get(
                    "apiextensions.k8s.io/v1",
                    "CustomResourceDefinition",
                    None,
                    name,
                )
                .unwrap()["metadata"]["resourceVersion"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

/// A bad upgrade undone: revision 1 (`--profile local`), revision 2 with two API replicas and
/// no observability, then `rollback datalayer-ray 1`: one replica and the observability
/// component again, a quiet diff with revision 1's inputs, the CRDs untouched, revision 3 a
/// rollback of 1, and no Secret value in `history` or in the record. Its dry run says what it
/// then does, and on the test server writes nothing.
#[test]
fn a_rollback_undoes_a_bad_upgrade() {
    let (cluster, fixture) = installed("rollback");
    let crds_before = crd_versions(&cluster);
    let bad = [
        "--yes",
        "--timeout",
        "180s",
        "--set",
        "api.replicas=2",
        "--set",
        "observability.enabled=false",
    ];
    succeeded(&run(&fixture, &cluster, "up", &[LOCAL, &bad].concat()));
    let api = || {
        cluster
            .get(
                "apps/v1",
                "Deployment",
                Some("datalayer-api"),
                "datalayer-ray",
            )
            .unwrap()
    };
    assert_eq!(api()["spec"]["replicas"], 2);
    let grafana = || {
        cluster
            .get(
                "apps/v1",
                "Deployment",
                Some("ray-observability"),
                "grafana",
            )
            .is_some()
    };
    assert!(!grafana());

    let writes_before = cluster.test_server().map(writes);
    let dry = within(
        rollback(&cluster, &["1", "--dry-run"]),
        Duration::from_secs(120),
    );
    succeeded(&dry);
    if let Some(srv) = cluster.test_server() {
        assert_eq!(Some(writes(srv)), writes_before, "rollback --dry-run wrote");
    }
    let dry_out = text(&dry.stdout);
    let planned = common::summary_counts(dry_out.trim_end().lines().last().unwrap());
    let started = Instant::now();
    let stderr = succeeded(&within(
        rollback(&cluster, &["1", "--yes", "--timeout", "180s"]),
        Duration::from_secs(240),
    ));
    eprintln!("rollback took {:.1}s", started.elapsed().as_secs_f64());
    let done = stderr
        .lines()
        .find_map(|l| l.split_once("(a rollback to revision 1) deployed in "))
        .and_then(|(_, rest)| rest.split_once(": "))
        .map_or_else(|| panic!("no summary in {stderr}"), |(_, s)| s.to_owned());
    assert_eq!(common::summary_counts(&done), planned, "{dry_out}");

    assert_eq!(api()["spec"]["replicas"], 1);
    assert!(grafana());
    assert_eq!(
        crd_versions(&cluster),
        crds_before,
        "a rollback changed a CRD"
    );
    quiet_diff(&fixture, &cluster);

    let out = within(
        common::on_release("history", cluster.kubeconfig(), RELEASE, &["-o", "json"]),
        Duration::from_secs(60),
    );
    succeeded(&out);
    let history_out = text(&out.stdout);
    let rows: Value = serde_json::from_str(&history_out).unwrap();
    assert_eq!(rows[0]["revision"], 3, "{rows:#}");
    assert_eq!(rows[0]["rollbackOf"], 1, "{rows:#}");
    assert_eq!(rows[0]["phase"], "deployed", "{rows:#}");
    assert_eq!(rows[0]["values"], rows[2]["values"], "{rows:#}");
    // The one Secret with values: Grafana's generated admin password.
    let record = record_text(&cluster);
    let admin = cluster
        .get("v1", "Secret", Some("ray-observability"), "grafana-admin")
        .expect("the Grafana admin Secret");
    for value in admin["data"].as_object().unwrap().values() {
        let value = value.as_str().unwrap();
        assert!(!record.contains(value), "the record holds a Secret value");
        assert!(!history_out.contains(value), "history shows a Secret value");
    }
    down_completely(&cluster);
}

/// A rollback killed (`kill -9`) once it has started writing, then run again: it converges, as
/// `up` does.
#[test]
fn a_rerun_after_a_kill_during_a_rollback_converges() {
    let (cluster, fixture) = installed("kill-during-rollback");
    let off = ["--yes", "--no-wait", "--set", "observability.enabled=false"];
    succeeded(&run(&fixture, &cluster, "up", &[LOCAL, &off].concat()));
    let child = rollback(&cluster, &["1", "--yes"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    kill_once(child, "the rollback's first object", || {
        cluster
            .get(
                "v1",
                "ServiceAccount",
                Some("ray-observability"),
                "prometheus",
            )
            .is_some()
    });
    // The killed run's Lease stays; a rerun on the same host takes it over.
    let stderr = succeeded(&within(
        rollback(&cluster, &["1", "--yes", "--timeout", "120s"]),
        Duration::from_secs(240),
    ));
    assert!(
        stderr.contains("(a rollback to revision 1) deployed"),
        "{stderr}"
    );
    quiet_diff(&fixture, &cluster);
    let rows = ls_json(cluster.kubeconfig());
    assert_eq!(rows[0]["status"], "deployed", "{rows:#}");
    down_completely(&cluster);
}
