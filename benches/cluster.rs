//! Cluster benchmark: plane against `kubectl --server-side` on the same rendered YAML, for the
//! operations a user waits for: an install that waits until everything is ready (`plane up` /
//! `kubectl apply`, retried until the CRDs it creates are served, then `kubectl wait` for the
//! Deployments and the RayCluster), a no-op `up` / `apply`, `diff`, and `down` /
//! `kubectl delete` (both keep the CRDs), each at 0 ms and at 50 ms of added latency per request;
//! then `ls`, `ls -A` and `status` with 1 and with 100 team instances (`cluster/reads.rs`).
//!
//! Backends:
//! - the test API server (`plane-test-apiserver`), latency from a latency rule
//!   (`FaultRule::latency`); request counts and the longest chain of requests that waited on
//!   each other (`critical_path`) come from its request log;
//! - a real API server when `PLANE_BENCH_KUBECONFIG` names an admin kubeconfig (for example
//!   `$HOME/k8s-real/admin.kubeconfig` of `shared/realcluster`), latency from a TCP proxy on
//!   127.0.0.1 that holds every byte from client to server for 50 ms. The bench installs and
//!   removes datalayer-ray (`--profile local`) there, so use a cluster where that is harmless.
//!
//! Run: `cargo bench --bench cluster` (`CLUSTER_BENCH_RUNS=N` cycles per backend, default 5;
//! `CLUSTER_BENCH_SYNTHETIC=1` adds a 500-object bundle on the test server at 0 ms).
//! Every figure is the wall-clock time of the whole process (start-up, kubeconfig, discovery, the
//! requests and exit), median of N cycles. plane keeps discovery on disk for a few minutes, as
//! kubectl does (each tool has its own cache folder here). "rt" is the latency's cost in round
//! trips: (time at 50 ms − time at 0 ms) / 50 ms (plus TLS handshakes through the proxy). The
//! bench fails if a no-op `plane up` sends more than objects + 10 requests on the test server.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a harness-less benchmark reports on the terminal"
)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use plane_test_apiserver::{Config, FaultRule, RequestRecord, TestServer, critical_path};

/// Cycles (install, no-op, diff, down) per backend and tool.
const DEFAULT_RUNS: usize = 5;
/// Requests a no-op `plane up` may send beyond one per object.
const REQUEST_SLACK: usize = 10;
/// The latency of the slow backends, per request.
const LATENCY_MS: u64 = 50;

const KUBECTL: &str = "/usr/bin/kubectl";
const KUBECTL_MANAGER: &str = "kubectl-bench";

/// The four operations, in cycle order.
const OPERATIONS: [&str; 4] = ["install + wait", "no-op up", "diff", "down"];

fn main() {
    let runs = std::env::var("CLUSTER_BENCH_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or(DEFAULT_RUNS);
    let work = tempfile::tempdir().expect("temp dir");
    let synthetic_root = work.path().join("synthetic");
    write_synthetic_bundle(&synthetic_root);
    let datalayer = Case {
        label: "datalayer-ray (local)",
        addon: "datalayer-ray",
        args: vec!["--profile".into(), "local".into()],
    };
    let synthetic = Case {
        label: "synthetic-500",
        addon: "synthetic",
        args: vec![
            "--addons-dir".into(),
            synthetic_root.join("addons").display().to_string(),
        ],
    };

    println!("cluster benchmark: {runs} cycles per backend (median, min-max), wall clock");
    let started = Instant::now();
    let mut tables = Vec::new();
    for latency in [0, LATENCY_MS] {
        tables.push(bench(
            &datalayer,
            &Backend::TestServer { latency },
            work.path(),
            runs,
        ));
    }
    if std::env::var_os("CLUSTER_BENCH_SYNTHETIC").is_some() {
        // kubectl takes minutes to delete 500 objects one by one with --wait.
        tables.push(bench(
            &synthetic,
            &Backend::TestServer { latency: 0 },
            work.path(),
            runs.min(3),
        ));
    }
    if let Some(kubeconfig) = std::env::var_os("PLANE_BENCH_KUBECONFIG").map(PathBuf::from) {
        for latency in [0, LATENCY_MS] {
            let backend = Backend::Live {
                kubeconfig: kubeconfig.clone(),
                latency,
            };
            tables.push(bench(&datalayer, &backend, work.path(), runs));
        }
    } else {
        eprintln!("PLANE_BENCH_KUBECONFIG is not set: no real API server in this run");
    }
    report(&tables);
    reads::bench(runs);
    println!("total bench time {:.1}s", started.elapsed().as_secs_f64());

    let over: Vec<&Table> = tables
        .iter()
        .filter(|t| {
            t.noop_requests()
                .is_some_and(|n| n > t.objects + REQUEST_SLACK)
        })
        .collect();
    if !over.is_empty() {
        for t in over {
            eprintln!(
                "FAIL {} on {}: a no-op plane up sent {} requests for {} objects (bound: objects + {REQUEST_SLACK})",
                t.case,
                t.backend,
                t.noop_requests().unwrap_or_default(),
                t.objects
            );
        }
        std::process::exit(1);
    }
}

/// One bundle to benchmark: how to name it to `plane template|up|diff`.
struct Case {
    label: &'static str,
    addon: &'static str,
    args: Vec<String>,
}

/// Where the commands run.
enum Backend {
    /// A fresh test API server per cycle and tool, slowed by a latency rule.
    TestServer { latency: u64 },
    /// A real API server, through a delaying proxy when `latency` > 0.
    Live { kubeconfig: PathBuf, latency: u64 },
}

impl Backend {
    fn label(&self) -> String {
        match self {
            Self::TestServer { latency } => format!("test server, {latency} ms"),
            Self::Live { latency, .. } => format!("real API server, {latency} ms"),
        }
    }

    fn latency(&self) -> u64 {
        match self {
            Self::TestServer { latency } | Self::Live { latency, .. } => *latency,
        }
    }
}

/// A kubeconfig to run one cycle against, and what keeps its cluster alive and counted.
struct Session {
    kubeconfig: PathBuf,
    server: Option<TestServer>,
    _proxy: Option<proxy::Proxy>,
}

impl Session {
    fn open(backend: &Backend, dir: &Path) -> Self {
        match backend {
            Backend::TestServer { latency } => {
                let server = TestServer::start(Config::default());
                if *latency > 0 {
                    server.add_fault(FaultRule::latency("*", *latency, 0));
                }
                Self {
                    kubeconfig: server.kubeconfig_path().to_path_buf(),
                    server: Some(server),
                    _proxy: None,
                }
            }
            Backend::Live {
                kubeconfig,
                latency,
            } => {
                if *latency == 0 {
                    return Self {
                        kubeconfig: kubeconfig.clone(),
                        server: None,
                        _proxy: None,
                    };
                }
                let (proxied, proxy) =
                    proxy::through(kubeconfig, dir, Duration::from_millis(*latency));
                Self {
                    kubeconfig: proxied,
                    server: None,
                    _proxy: Some(proxy),
                }
            }
        }
    }

    fn clear(&self) {
        if let Some(server) = &self.server {
            server.clear_requests();
        }
    }

    fn counts(&self) -> Option<Counts> {
        self.server.as_ref().map(|s| Counts::of(&s.requests()))
    }

    fn groups(&self) -> BTreeMap<String, usize> {
        self.server
            .as_ref()
            .map(|s| group(&s.requests()))
            .unwrap_or_default()
    }
}

/// The figures of one bundle on one backend.
struct Table {
    case: &'static str,
    backend: String,
    latency: u64,
    objects: usize,
    /// Per operation: plane's timing and requests, kubectl's timing and requests.
    rows: Vec<Row>,
    noop_groups: BTreeMap<String, usize>,
}

struct Row {
    operation: &'static str,
    plane: Timing,
    kubectl: Timing,
    plane_requests: Option<Counts>,
    kubectl_requests: Option<Counts>,
}

impl Table {
    fn noop_requests(&self) -> Option<usize> {
        self.rows
            .iter()
            .find(|r| r.operation == "no-op up")
            .and_then(|r| r.plane_requests)
            .map(|c| c.total)
    }
}

fn bench(case: &Case, backend: &Backend, work: &Path, runs: usize) -> Table {
    let dir = work.join(format!(
        "{}-{}",
        case.addon,
        backend.label().replace([' ', ','], "")
    ));
    std::fs::create_dir_all(&dir).expect("case dir");
    let out = check(
        plane(&["template", case.addon])
            .args(&case.args)
            .output()
            .expect("run plane template"),
        "plane template",
    );
    let rendered = String::from_utf8_lossy(&out.stdout).into_owned();
    let rendered_path = dir.join("rendered.yaml");
    std::fs::write(&rendered_path, &rendered).expect("write rendered YAML");
    // kubectl deletes what plane's down deletes: everything but the CRDs.
    let without_crds_path = dir.join("without-crds.yaml");
    std::fs::write(&without_crds_path, without_crds(&rendered)).expect("write YAML");
    eprintln!("[{} | {}] {} cycles", case.label, backend.label(), runs);

    if let Backend::Live { kubeconfig, .. } = backend {
        // A clean start: no release left by an earlier run.
        let _ = plane(&["down", case.addon, "--yes", "--kubeconfig"])
            .arg(kubeconfig)
            .output();
    }
    let mut plane_times: Vec<Vec<Duration>> = vec![Vec::new(); OPERATIONS.len()];
    let mut kubectl_times: Vec<Vec<Duration>> = vec![Vec::new(); OPERATIONS.len()];
    let mut plane_counts = vec![None; OPERATIONS.len()];
    let mut kubectl_counts = vec![None; OPERATIONS.len()];
    let mut noop_groups = BTreeMap::new();
    let mut objects = count_objects(&rendered);
    for cycle in 0..runs {
        let session = Session::open(backend, &dir);
        let kc = session.kubeconfig.display().to_string();
        let cluster_args = |verb: &str| -> Vec<String> {
            let mut args = vec![
                verb.to_owned(),
                case.addon.to_owned(),
                "--kubeconfig".into(),
                kc.clone(),
            ];
            args.extend(case.args.iter().cloned());
            args
        };
        let steps: [(&str, Vec<String>); 4] = [
            (
                "plane up",
                [cluster_args("up"), vec!["--timeout".into(), "300s".into()]].concat(),
            ),
            (
                "no-op plane up",
                [cluster_args("up"), vec!["--timeout".into(), "300s".into()]].concat(),
            ),
            (
                "plane diff --exit-code",
                [cluster_args("diff"), vec!["--exit-code".into()]].concat(),
            ),
            (
                "plane down --yes",
                vec![
                    "down".into(),
                    case.addon.into(),
                    "--yes".into(),
                    "--kubeconfig".into(),
                    kc.clone(),
                ],
            ),
        ];
        for (i, (what, args)) in steps.iter().enumerate() {
            session.clear();
            let t = Instant::now();
            check(plane_cmd(args).output().expect("run plane"), what);
            plane_times[i].push(t.elapsed());
            if cycle == 0 {
                plane_counts[i] = session.counts();
                if i == 1 {
                    noop_groups = session.groups();
                    if let Some(server) = &session.server {
                        objects = managed_objects(server, objects);
                    }
                }
            }
        }
        drop(session);

        let session = Session::open(backend, &dir);
        let cache = dir.join(format!("kubectl-cache-{cycle}"));
        let kubectl = |verb: &str, file: &Path| {
            let mut cmd = Command::new(KUBECTL);
            cmd.env_remove("KUBECONFIG")
                .env("KUBECTL_EXTERNAL_DIFF", "diff -u -N")
                .arg(verb)
                .arg("--kubeconfig")
                .arg(&session.kubeconfig)
                .arg("--cache-dir")
                .arg(&cache)
                .arg("-f")
                .arg(file);
            if verb == "delete" {
                // Namespaces come first in the file and take their objects with them.
                cmd.arg("--ignore-not-found");
            } else {
                cmd.arg("--server-side");
            }
            if verb == "apply" {
                cmd.arg(format!("--field-manager={KUBECTL_MANAGER}"))
                    .arg("--force-conflicts");
            }
            cmd.output().expect("run kubectl")
        };
        // First install: custom resources fail until their CRD is served, so a user retries.
        session.clear();
        let t = Instant::now();
        let mut attempts = 0;
        while !kubectl("apply", &rendered_path).status.success() {
            attempts += 1;
            assert!(attempts < 100, "the first kubectl apply keeps failing");
            std::thread::sleep(Duration::from_millis(200));
        }
        // Then wait as plane does: the Deployments available, the RayCluster ready.
        for condition in [
            &["--for=condition=Available", "deployment"][..],
            &["--for=jsonpath={.status.state}=ready", "raycluster"][..],
        ] {
            if case.addon != "datalayer-ray" {
                break;
            }
            let out = Command::new(KUBECTL)
                .env_remove("KUBECONFIG")
                .args(["wait", "--all", "--all-namespaces", "--timeout=300s"])
                .args(condition)
                .arg("--kubeconfig")
                .arg(&session.kubeconfig)
                .arg("--cache-dir")
                .arg(&cache)
                .output()
                .expect("run kubectl wait");
            check(out, "kubectl wait");
        }
        kubectl_times[0].push(t.elapsed());
        if cycle == 0 {
            kubectl_counts[0] = session.counts();
        }
        let ops: [(&str, &Path); 3] = [
            ("apply", &rendered_path),
            ("diff", &rendered_path),
            ("delete", &without_crds_path),
        ];
        for (i, (verb, file)) in ops.into_iter().enumerate() {
            session.clear();
            let t = Instant::now();
            let out = kubectl(verb, file);
            kubectl_times[i + 1].push(t.elapsed());
            let ok = if verb == "diff" {
                matches!(out.status.code(), Some(0 | 1))
            } else {
                out.status.success()
            };
            assert!(
                ok,
                "kubectl {verb} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            if cycle == 0 {
                kubectl_counts[i + 1] = session.counts();
            }
        }
    }
    let rows = OPERATIONS
        .iter()
        .enumerate()
        .map(|(i, operation)| Row {
            operation,
            plane: Timing::of(&plane_times[i]),
            kubectl: Timing::of(&kubectl_times[i]),
            plane_requests: plane_counts[i],
            kubectl_requests: kubectl_counts[i],
        })
        .collect();
    Table {
        case: case.label,
        backend: backend.label(),
        latency: backend.latency(),
        objects,
        rows,
        noop_groups,
    }
}

/// `plane` with these arguments (no progress bars).
fn plane_cmd(args: &[String]) -> Command {
    let mut cmd = plane(&[]);
    cmd.args(args);
    cmd
}

/// The documents of a YAML stream that are not CustomResourceDefinitions.
fn without_crds(yaml: &str) -> String {
    yaml.split("\n---")
        .filter(|doc| !doc.lines().any(|l| l == "kind: CustomResourceDefinition"))
        .collect::<Vec<_>>()
        .join("\n---")
}

#[derive(Clone, Copy)]
struct Timing {
    median: Duration,
    min: Duration,
    max: Duration,
}

impl Timing {
    fn of(samples: &[Duration]) -> Self {
        let mut samples = samples.to_vec();
        samples.sort();
        Self {
            median: samples[samples.len() / 2],
            min: samples[0],
            max: samples[samples.len() - 1],
        }
    }

    fn show(self) -> String {
        format!(
            "{:>6.0} ({:.0}-{:.0})",
            ms(self.median),
            ms(self.min),
            ms(self.max)
        )
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn report(tables: &[Table]) {
    let mut out = String::new();
    out.push_str("\ntimes in ms: median (min-max); kubectl/plane > 1 means plane is faster\n");
    for t in tables {
        let _ = writeln!(out, "\n{} on {} ({} objects)", t.case, t.backend, t.objects);
        let _ = writeln!(
            out,
            "  {:<14} {:>20} {:>20} {:>13} {:>9} {:>9} {:>8} {:>8} {:>6} {:>6}",
            "operation",
            "plane",
            "kubectl",
            "kubectl/plane",
            "req plane",
            "req kctl",
            "chain pl",
            "chain kc",
            "rt pl",
            "rt kc"
        );
        for row in &t.rows {
            let ratio = row.kubectl.median.as_secs_f64() / row.plane.median.as_secs_f64();
            let requests =
                |c: Option<Counts>| c.map_or_else(|| "-".to_owned(), |c| c.total.to_string());
            let chain =
                |c: Option<Counts>| c.map_or_else(|| "-".to_owned(), |c| c.chain.to_string());
            let (rt_plane, rt_kubectl) = round_trips(tables, t, row);
            let _ = writeln!(
                out,
                "  {:<14} {:>20} {:>20} {:>12.1}x {:>9} {:>9} {:>8} {:>8} {:>6} {:>6}",
                row.operation,
                row.plane.show(),
                row.kubectl.show(),
                ratio,
                requests(row.plane_requests),
                requests(row.kubectl_requests),
                chain(row.plane_requests),
                chain(row.kubectl_requests),
                rt_plane,
                rt_kubectl,
            );
        }
        for row in &t.rows {
            if let (Some(p), Some(k)) = (row.plane_requests, row.kubectl_requests) {
                let _ = writeln!(out, "  {:<14} plane:   {}", row.operation, p.show());
                let _ = writeln!(out, "  {:<14} kubectl: {}", "", k.show());
            }
        }
        if !t.noop_groups.is_empty() {
            let _ = writeln!(
                out,
                "  requests of a no-op plane up (class, method, resource: count)"
            );
            for (what, n) in &t.noop_groups {
                let _ = writeln!(out, "    {what:<60} {n:>4}");
            }
        }
    }
    print!("{out}");
}

/// The latency's cost in round trips for one row of a slow table: its time minus the same
/// bundle's and backend's time at 0 ms, over the latency. "-" on a 0 ms table.
fn round_trips(tables: &[Table], table: &Table, row: &Row) -> (String, String) {
    if table.latency == 0 {
        return ("-".into(), "-".into());
    }
    let base_backend = table
        .backend
        .replace(&format!("{} ms", table.latency), "0 ms");
    let Some(base) = tables
        .iter()
        .find(|t| t.case == table.case && t.backend == base_backend)
        .and_then(|t| t.rows.iter().find(|r| r.operation == row.operation))
    else {
        return ("?".into(), "?".into());
    };
    let trips = |slow: Timing, fast: Timing| {
        let extra = slow.median.as_secs_f64() - fast.median.as_secs_f64();
        format!(
            "{:.0}",
            (extra / Duration::from_millis(table.latency).as_secs_f64()).max(0.0)
        )
    };
    (
        trips(row.plane, base.plane),
        trips(row.kubectl, base.kubectl),
    )
}

#[path = "cluster/reads.rs"]
mod reads;

/// The environment the tests run plane with (`tests/common/clean_env.rs`).
#[path = "../tests/common/clean_env.rs"]
mod clean_env;

/// The plane binary with the tests' clean environment: no inputs or sources leak in from the shell.
fn plane(args: &[&str]) -> Command {
    let mut cmd = clean_env::clean(Command::new(env!("CARGO_BIN_EXE_plane")));
    cmd.arg("--no-progress").args(args);
    cmd
}

fn check(out: Output, what: &str) -> Output {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        head(&String::from_utf8_lossy(&out.stdout), 40),
        head(&String::from_utf8_lossy(&out.stderr), 40)
    );
    out
}

fn head(text: &str, lines: usize) -> String {
    text.lines().take(lines).collect::<Vec<_>>().join("\n")
}

/// Top-level objects in a multi-document YAML stream (a `kind:` key at column 0).
fn count_objects(yaml: &str) -> usize {
    yaml.lines().filter(|l| l.starts_with("kind:")).count()
}

/// Objects plane manages: the rendered ones, plus what `up` generates (e.g. Secrets with
/// `plane.datalayer.io/generate`), counted from the store by plane's managed-by label.
fn managed_objects(srv: &TestServer, rendered: usize) -> usize {
    let generated = srv
        .list_objects("v1", "Secret", None)
        .iter()
        .filter(|s| {
            s.pointer("/metadata/annotations/plane.datalayer.io~1generate")
                .is_some()
        })
        .count();
    rendered + generated
}

/// The request log of one operation, by kind of request.
#[derive(Default, Clone, Copy)]
struct Counts {
    total: usize,
    /// The longest chain of requests that waited on each other (`critical_path`).
    chain: usize,
    discovery: usize,
    gets: usize,
    lists: usize,
    watches: usize,
    dry_run: usize,
    writes: usize,
    reviews: usize,
    other: usize,
}

impl Counts {
    fn of(log: &[RequestRecord]) -> Self {
        let mut c = Self {
            total: log.len(),
            chain: critical_path(log),
            ..Self::default()
        };
        for r in log {
            match classify(r) {
                Class::Discovery => c.discovery += 1,
                Class::Get => c.gets += 1,
                Class::List => c.lists += 1,
                Class::Watch => c.watches += 1,
                Class::DryRun => c.dry_run += 1,
                Class::Write => c.writes += 1,
                Class::Review => c.reviews += 1,
                Class::Other => c.other += 1,
            }
        }
        c
    }

    fn show(self) -> String {
        format!(
            "{} (disc {}, get {}, list {}, watch {}, dry {}, write {}{}{})",
            self.total,
            self.discovery,
            self.gets,
            self.lists,
            self.watches,
            self.dry_run,
            self.writes,
            if self.reviews > 0 {
                format!(", review {}", self.reviews)
            } else {
                String::new()
            },
            if self.other > 0 {
                format!(", other {}", self.other)
            } else {
                String::new()
            }
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Discovery,
    Get,
    List,
    Watch,
    DryRun,
    Write,
    Review,
    Other,
}

impl Class {
    fn name(self) -> &'static str {
        match self {
            Self::Discovery => "discovery",
            Self::Get => "get",
            Self::List => "list",
            Self::Watch => "watch",
            Self::DryRun => "dry-run",
            Self::Write => "write",
            Self::Review => "review",
            Self::Other => "other",
        }
    }
}

/// A request path taken apart: `(resource, name)` of `/api/v1/namespaces/x/configmaps/y`,
/// `None` for discovery and other non-resource paths.
fn resource_of(path: &str) -> Option<(String, Option<String>)> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (["api", _, rest @ ..] | ["apis", _, _, rest @ ..]) = segs.as_slice() else {
        return None;
    };
    match rest {
        [] => None,
        ["namespaces", _ns, resource, tail @ ..] => {
            let name = tail.first().map(|n| (*n).to_owned());
            let resource = match tail.get(1) {
                Some(sub) => format!("{resource}/{sub}"),
                None => (*resource).to_owned(),
            };
            Some((resource, name))
        }
        [resource, tail @ ..] => {
            let name = tail.first().map(|n| (*n).to_owned());
            let resource = match tail.get(1) {
                Some(sub) => format!("{resource}/{sub}"),
                None => (*resource).to_owned(),
            };
            Some((resource, name))
        }
    }
}

fn classify(r: &RequestRecord) -> Class {
    let resource = resource_of(&r.path);
    match r.method.as_str() {
        "GET" => match resource {
            None => Class::Discovery,
            Some(_) if matches!(r.query_param("watch").as_deref(), Some("true" | "1")) => {
                Class::Watch
            }
            Some((_, Some(_))) => Class::Get,
            Some((_, None)) => Class::List,
        },
        "POST" if r.path.contains("/selfsubject") => Class::Review,
        "POST" | "PUT" | "PATCH" | "DELETE" if r.dry_run => Class::DryRun,
        "POST" | "PUT" | "PATCH" | "DELETE" => Class::Write,
        _ => Class::Other,
    }
}

/// Requests grouped as `class METHOD resource`, for the request pattern of a no-op `up`.
fn group(log: &[RequestRecord]) -> BTreeMap<String, usize> {
    let mut groups = BTreeMap::new();
    for r in log {
        let class = classify(r);
        let what = match (class, resource_of(&r.path)) {
            (Class::Discovery, _) | (_, None) => r.path.clone(),
            (_, Some((resource, _))) => resource,
        };
        *groups
            .entry(format!("{:<9} {:<6} {what}", class.name(), r.method))
            .or_insert(0) += 1;
    }
    groups
}

/// A plane bundle of exactly 500 objects: 5 namespaces, 445 config maps, 25 services and 25
/// deployments, in three components (namespaces gate the other two).
fn write_synthetic_bundle(root: &Path) {
    let addon = root.join("addons/synthetic");
    let files: [(&str, &str); 6] = [
        (
            "addon.yaml",
            "name: synthetic\n\
             version: 0.1.0\n\
             description: 500 generated objects for the cluster benchmark\n\
             namespaces: [synth-0, synth-1, synth-2, synth-3, synth-4]\n\
             components:\n  \
               - name: base\n  \
               - name: config\n    depends_on: [base]\n  \
               - name: apps\n    depends_on: [base]\n",
        ),
        (
            "values.yaml",
            "namespaces: 5\nconfigmaps: 445\napps: 25\nimage: registry.example/synthetic:1.0.0\n",
        ),
        (
            "values.schema.json",
            r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "additionalProperties": false,
  "required": ["namespaces", "configmaps", "apps", "image"],
  "properties": {
    "namespaces": {"type": "integer", "minimum": 1},
    "configmaps": {"type": "integer", "minimum": 0},
    "apps": {"type": "integer", "minimum": 0},
    "image": {"type": "string"}
  }
}
"#,
        ),
        (
            "components/base/namespaces.yaml.tera",
            "{% for n in range(end=values.namespaces) %}---\n\
             apiVersion: v1\n\
             kind: Namespace\n\
             metadata:\n  name: synth-{{ n }}\n\
             {% endfor %}",
        ),
        (
            "components/config/configmaps.yaml.tera",
            "{% for i in range(end=values.configmaps) %}---\n\
             apiVersion: v1\n\
             kind: ConfigMap\n\
             metadata:\n  name: config-{{ i }}\n  namespace: synth-{{ i % values.namespaces }}\n\
             data:\n  index: \"{{ i }}\"\n  settings.yaml: |\n    key: value-{{ i }}\n    \
             enabled: true\n    replicas: 3\n\
             {% endfor %}",
        ),
        (
            "components/apps/apps.yaml.tera",
            "{% for i in range(end=values.apps) %}---\n\
             apiVersion: v1\n\
             kind: Service\n\
             metadata:\n  name: app-{{ i }}\n  namespace: synth-{{ i % values.namespaces }}\n\
             spec:\n  selector: {app: app-{{ i }}}\n  ports: [{name: http, port: 80, targetPort: 8080}]\n\
             ---\n\
             apiVersion: apps/v1\n\
             kind: Deployment\n\
             metadata:\n  name: app-{{ i }}\n  namespace: synth-{{ i % values.namespaces }}\n\
             spec:\n  replicas: 1\n  selector:\n    matchLabels: {app: app-{{ i }}}\n  \
             template:\n    metadata:\n      labels: {app: app-{{ i }}}\n    spec:\n      \
             containers:\n        - name: app\n          image: {{ values.image | json_encode() }}\n          \
             ports: [{name: http, containerPort: 8080}]\n          \
             resources: {requests: {cpu: 10m, memory: 16Mi}}\n\
             {% endfor %}",
        ),
    ];
    for (rel, text) in files {
        let path: PathBuf = addon.join(rel);
        std::fs::create_dir_all(path.parent().expect("has a parent")).expect("bundle dir");
        std::fs::write(&path, text).expect("write bundle file");
    }
}

/// A TCP proxy on 127.0.0.1 that holds every byte from client to server for a fixed delay: each
/// request (and each TLS handshake) waits that long more for its answer, as over a long link.
mod proxy {
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::mpsc;
    use tokio::time::Instant;

    /// A running proxy; dropping it stops it.
    pub struct Proxy {
        _runtime: tokio::runtime::Runtime,
    }

    /// A copy of `kubeconfig` whose clusters go through a new proxy, and the proxy.
    pub fn through(kubeconfig: &Path, dir: &Path, delay: Duration) -> (PathBuf, Proxy) {
        let text = std::fs::read_to_string(kubeconfig).expect("read kubeconfig");
        let mut doc: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(&text).expect("kubeconfig YAML");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("proxy runtime");
        let clusters = doc
            .get_mut("clusters")
            .and_then(serde_yaml_ng::Value::as_sequence_mut)
            .expect("kubeconfig clusters");
        for cluster in clusters {
            let server = cluster
                .get_mut("cluster")
                .and_then(|c| c.get_mut("server"))
                .expect("cluster server");
            let url = server.as_str().expect("server URL").to_owned();
            let upstream = url
                .strip_prefix("https://")
                .expect("an https server")
                .trim_end_matches('/')
                .to_owned();
            assert!(
                upstream.starts_with("127.0.0.1:"),
                "the bench only talks to 127.0.0.1, not {upstream}"
            );
            let listener = runtime
                .block_on(TcpListener::bind("127.0.0.1:0"))
                .expect("bind the proxy");
            let port = listener.local_addr().expect("proxy address").port();
            runtime.spawn(serve(listener, upstream, delay));
            *server = serde_yaml_ng::Value::String(format!("https://127.0.0.1:{port}"));
        }
        let path = dir.join(format!("proxied-{}.kubeconfig", std::process::id()));
        std::fs::write(
            &path,
            serde_yaml_ng::to_string(&doc).expect("kubeconfig YAML"),
        )
        .expect("write kubeconfig");
        (path, Proxy { _runtime: runtime })
    }

    async fn serve(listener: TcpListener, upstream: String, delay: Duration) {
        while let Ok((client, _)) = listener.accept().await {
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    return;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                tokio::spawn(delayed(client_read, server_write, delay));
                tokio::spawn(copy(server_read, client_write));
            });
        }
    }

    /// Forwards each chunk `delay` after it arrived, in order, without holding back the next.
    async fn delayed(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, delay: Duration) {
        let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
        let writer = tokio::spawn(async move {
            while let Some((due, bytes)) = rx.recv().await {
                tokio::time::sleep_until(due).await;
                if to.write_all(&bytes).await.is_err() {
                    break;
                }
            }
            let _ = to.shutdown().await;
        });
        let mut buf = vec![0; 64 * 1024];
        while let Ok(n) = from.read(&mut buf).await {
            if n == 0
                || tx
                    .send((Instant::now() + delay, buf[..n].to_vec()))
                    .is_err()
            {
                break;
            }
        }
        drop(tx);
        let _ = writer.await;
    }

    async fn copy(mut from: OwnedReadHalf, mut to: OwnedWriteHalf) {
        let _ = tokio::io::copy(&mut from, &mut to).await;
        let _ = to.shutdown().await;
    }
}
