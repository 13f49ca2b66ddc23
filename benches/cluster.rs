//! Cluster benchmark: `plane up` (no-op) and `plane diff` against `kubectl apply --server-side`
//! and `kubectl diff --server-side` of the same rendered YAML, on the test API server
//! (`plane-test-apiserver`), for datalayer-ray (`--profile local`) and a synthetic 500-object
//! bundle. It also counts the API requests of each operation from the server's request log, and
//! checks that a no-op `plane up` sends at most one dry run per object plus a small constant.
//!
//! Run: `cargo bench --bench cluster` (`CLUSTER_BENCH_RUNS=N` changes the runs per operation,
//! default 7). Every figure is wall-clock time of the whole process (start-up, kubeconfig,
//! discovery, the requests and exit), median of N runs after one warm-up run.
//!
//! plane and kubectl each get their own fresh server: both use server-side apply with different
//! field managers, so on one server the second tool's apply would conflict with (or take over)
//! the fields of the first, and neither would measure a no-op. kubectl gets its own `--cache-dir`
//! per server (its discovery cache is keyed by host and port, and ports are reused).
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

use plane_test_apiserver::{Config, RequestRecord, TestServer};

/// Runs per measured operation, after one warm-up run.
const DEFAULT_RUNS: usize = 7;
/// "A small constant": dry runs a no-op `up` may send beyond one per object.
const DRY_RUN_SLACK: usize = 5;

const KUBECTL: &str = "/usr/bin/kubectl";
const KUBECTL_MANAGER: &str = "kubectl-bench";

fn main() {
    let runs = std::env::var("CLUSTER_BENCH_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or(DEFAULT_RUNS);
    let work = tempfile::tempdir().expect("temp dir");
    let synthetic_root = work.path().join("synthetic");
    write_synthetic_bundle(&synthetic_root);

    let cases = [
        Case {
            label: "datalayer-ray (local)",
            addon: "datalayer-ray",
            args: vec!["--profile".into(), "local".into()],
        },
        Case {
            label: "synthetic-500",
            addon: "synthetic",
            args: vec![
                "--addons-dir".into(),
                synthetic_root.join("addons").display().to_string(),
            ],
        },
    ];

    println!("cluster benchmark: {runs} runs per operation (median, min-max), wall clock");
    let started = Instant::now();
    let mut results = Vec::new();
    for case in &cases {
        results.push(bench_case(case, work.path(), runs));
    }
    report(&results);
    println!("total bench time {:.1}s", started.elapsed().as_secs_f64());

    let over: Vec<_> = results
        .iter()
        .filter(|r| !r.dry_runs_within_bound())
        .collect();
    if !over.is_empty() {
        for r in over {
            eprintln!(
                "FAIL {}: a no-op plane up sent {} dry runs for {} objects (bound: objects + {DRY_RUN_SLACK})",
                r.label, r.plane_up.dry_run, r.objects
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

/// Everything measured for one bundle.
struct CaseResult {
    label: &'static str,
    /// Objects `plane up` manages (rendered, plus generated Secrets).
    objects: usize,
    rendered: usize,
    plane_up: Counts,
    plane_diff: Counts,
    kubectl_apply: Counts,
    kubectl_diff: Counts,
    kubectl_diff_exit: Option<i32>,
    times: Vec<(&'static str, Timing, Timing)>,
    up_groups: BTreeMap<String, usize>,
}

impl CaseResult {
    fn dry_runs_within_bound(&self) -> bool {
        self.plane_up.dry_run <= self.objects + DRY_RUN_SLACK
    }
}

fn bench_case(case: &Case, work: &Path, runs: usize) -> CaseResult {
    let dir = work.join(case.addon);
    std::fs::create_dir_all(&dir).expect("case dir");
    let rendered_path = dir.join("rendered.yaml");
    let out = check(
        plane(&["template", case.addon])
            .args(&case.args)
            .output()
            .expect("run plane template"),
        "plane template",
    );
    std::fs::write(&rendered_path, &out.stdout).expect("write rendered YAML");
    let rendered = count_objects(&String::from_utf8_lossy(&out.stdout));
    eprintln!(
        "[{}] rendered {rendered} objects to {}",
        case.label,
        rendered_path.display()
    );

    let plane = plane_side(case, rendered, runs);
    let kubectl = kubectl_side(case.label, &dir, &rendered_path, runs);
    CaseResult {
        label: case.label,
        objects: plane.objects,
        rendered,
        plane_up: plane.up,
        plane_diff: plane.diff,
        kubectl_apply: kubectl.apply,
        kubectl_diff: kubectl.diff,
        kubectl_diff_exit: kubectl.diff_exit,
        times: vec![
            ("up / apply (no-op)", plane.up_time, kubectl.apply_time),
            ("diff (no changes)", plane.diff_time, kubectl.diff_time),
        ],
        up_groups: plane.up_groups,
    }
}

struct PlaneSide {
    objects: usize,
    up: Counts,
    diff: Counts,
    up_groups: BTreeMap<String, usize>,
    up_time: Timing,
    diff_time: Timing,
}

/// plane on a server of its own: install, then count and time no-op `up` and `diff`.
fn plane_side(case: &Case, rendered: usize, runs: usize) -> PlaneSide {
    let srv = TestServer::start(Config::default());
    let kc = srv.kubeconfig_path().display().to_string();
    let up = || {
        plane(&["up", case.addon, "--kubeconfig", &kc, "--timeout", "120s"])
            .args(&case.args)
            .output()
            .expect("run plane up")
    };
    let diff = || {
        plane(&["diff", case.addon, "--kubeconfig", &kc, "--exit-code"])
            .args(&case.args)
            .output()
            .expect("run plane diff")
    };
    let t = Instant::now();
    check(up(), "first plane up");
    eprintln!(
        "[{}] first plane up (install) took {:.0} ms",
        case.label,
        t.elapsed().as_secs_f64() * 1e3
    );
    let objects = managed_objects(&srv, rendered);

    // Warm-up no-op runs, counted.
    srv.clear_requests();
    check(up(), "no-op plane up");
    let up_log = srv.requests();
    let plane_up = Counts::of(&up_log);
    let up_groups = group(&up_log);
    srv.clear_requests();
    check(diff(), "plane diff (expected no changes: exit 0)");
    let plane_diff = Counts::of(&srv.requests());

    let up_time = time(runs, || check(up(), "no-op plane up"));
    srv.clear_requests();
    let diff_time = time(runs, || check(diff(), "plane diff"));
    let writes_during_timing = srv.requests().iter().filter(|r| r.is_mutating()).count();
    if writes_during_timing > 0 {
        eprintln!(
            "[{}] note: plane diff runs wrote {writes_during_timing} times",
            case.label
        );
    }

    PlaneSide {
        objects,
        up: plane_up,
        diff: plane_diff,
        up_groups,
        up_time,
        diff_time,
    }
}

struct KubectlSide {
    apply: Counts,
    diff: Counts,
    diff_exit: Option<i32>,
    apply_time: Timing,
    diff_time: Timing,
}

/// kubectl on a fresh server of its own: install, then count and time no-op `apply` and `diff`.
fn kubectl_side(label: &str, dir: &Path, rendered_path: &Path, runs: usize) -> KubectlSide {
    let ksrv = TestServer::start(Config::default());
    let cache = dir.join(format!("kubectl-cache-{}", ksrv.port()));
    let kubectl = |verb: &str| {
        let mut cmd = Command::new(KUBECTL);
        cmd.env_remove("KUBECONFIG")
            .env("KUBECTL_EXTERNAL_DIFF", "diff -u -N")
            .arg(verb)
            .arg("--server-side")
            .arg("--kubeconfig")
            .arg(ksrv.kubeconfig_path())
            .arg("--cache-dir")
            .arg(&cache)
            .arg("-f")
            .arg(rendered_path);
        if verb == "apply" {
            cmd.arg(format!("--field-manager={KUBECTL_MANAGER}"));
        }
        cmd.output().expect("run kubectl")
    };
    // First apply: custom resources fail until their CRD is Established, so retry.
    let t = Instant::now();
    let mut attempts = 0;
    loop {
        attempts += 1;
        let out = kubectl("apply");
        if out.status.success() {
            break;
        }
        assert!(
            attempts < 30,
            "first kubectl apply keeps failing:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!(
        "[{}] first kubectl apply (install) took {:.0} ms in {attempts} attempt(s)",
        label,
        t.elapsed().as_secs_f64() * 1e3
    );
    ksrv.clear_requests();
    check(kubectl("apply"), "no-op kubectl apply");
    let kubectl_apply = Counts::of(&ksrv.requests());
    ksrv.clear_requests();
    let out = kubectl("diff");
    let kubectl_diff_exit = out.status.code();
    assert!(
        matches!(kubectl_diff_exit, Some(0 | 1)),
        "kubectl diff failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    if kubectl_diff_exit == Some(1) {
        eprintln!(
            "[{}] note: kubectl diff reports differences after its own apply:\n{}",
            label,
            head(&String::from_utf8_lossy(&out.stdout), 30)
        );
    }
    let kubectl_diff = Counts::of(&ksrv.requests());
    let kapply_time = time(runs, || check(kubectl("apply"), "no-op kubectl apply"));
    let kdiff_time = time(runs, || {
        let out = kubectl("diff");
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "kubectl diff failed"
        );
        out
    });

    KubectlSide {
        apply: kubectl_apply,
        diff: kubectl_diff,
        diff_exit: kubectl_diff_exit,
        apply_time: kapply_time,
        diff_time: kdiff_time,
    }
}

/// The plane binary with a clean environment: no inputs or sources leak in from the shell.
fn plane(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_plane"));
    for var in [
        "DATALAYER_RUN_URL",
        "PLANE_ADDONS_DIR",
        "PLANE_PROFILES_DIR",
        "KUBECONFIG",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("NO_COLOR", "1").arg("--no-progress").args(args);
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

#[derive(Clone, Copy)]
struct Timing {
    median: Duration,
    min: Duration,
    max: Duration,
}

impl Timing {
    fn show(self) -> String {
        format!(
            "{:>7.1} ({:.0}-{:.0})",
            ms(self.median),
            ms(self.min),
            ms(self.max)
        )
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Times `runs` runs of `f` (the warm-up run happened before).
fn time(runs: usize, mut f: impl FnMut() -> Output) -> Timing {
    let mut samples: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    samples.sort();
    Timing {
        median: samples[samples.len() / 2],
        min: samples[0],
        max: samples[samples.len() - 1],
    }
}

/// The request log of one operation, by kind of request.
#[derive(Default, Clone, Copy)]
struct Counts {
    total: usize,
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

fn report(results: &[CaseResult]) {
    let mut out = String::new();
    out.push_str("\nrequests (one run, from the server's request log)\n");
    for r in results {
        let _ = writeln!(
            out,
            "  {:<22} plane up (no-op): {}",
            r.label,
            r.plane_up.show()
        );
        let _ = writeln!(
            out,
            "  {:<22} plane diff:       {}",
            "",
            r.plane_diff.show()
        );
        let _ = writeln!(
            out,
            "  {:<22} kubectl apply:    {}",
            "",
            r.kubectl_apply.show()
        );
        let _ = writeln!(
            out,
            "  {:<22} kubectl diff:     {} (exit {})",
            "",
            r.kubectl_diff.show(),
            r.kubectl_diff_exit
                .map_or_else(|| "signal".to_owned(), |c| c.to_string())
        );
        let other = r.plane_up.total - r.plane_up.dry_run;
        let _ = writeln!(
            out,
            "  {:<22} no-op up: objects = {} ({} rendered), dry-runs = {}, other = {} -> {}",
            "",
            r.objects,
            r.rendered,
            r.plane_up.dry_run,
            other,
            if r.dry_runs_within_bound() {
                format!("OK (<= objects + {DRY_RUN_SLACK})")
            } else {
                format!("OVER the bound objects + {DRY_RUN_SLACK}")
            }
        );
    }

    out.push_str(
        "\nrequest pattern of a no-op plane up (class, method, resource or path: count)\n",
    );
    for r in results {
        let _ = writeln!(out, "  {}", r.label);
        for (what, n) in &r.up_groups {
            let _ = writeln!(out, "    {what:<60} {n:>4}");
        }
    }

    out.push_str("\ntimes in ms: median (min-max)\n");
    let _ = writeln!(
        out,
        "  {:<22} {:<19} {:>20} {:>20} {:>14} {:>9} {:>9}",
        "bundle", "operation", "plane", "kubectl", "plane/kubectl", "req plane", "req kctl"
    );
    for r in results {
        for (i, (op, p, k)) in r.times.iter().enumerate() {
            let ratio = p.median.as_secs_f64() / k.median.as_secs_f64();
            let verdict = if ratio > 1.0 { "slower" } else { "faster" };
            let (rp, rk) = if i == 0 {
                (r.plane_up.total, r.kubectl_apply.total)
            } else {
                (r.plane_diff.total, r.kubectl_diff.total)
            };
            let _ = writeln!(
                out,
                "  {:<22} {:<19} {:>20} {:>20} {:>7.2}x {:<6} {rp:>9} {rk:>9}",
                if i == 0 { r.label } else { "" },
                op,
                p.show(),
                k.show(),
                ratio,
                verdict,
            );
        }
    }
    print!("{out}");
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
