//! Hostile and careless bundles (a folder of addon.yaml, values, schema and Tera templates, as
//! `--addons-dir` or a GitOps engine gives plane): each is refused with exit 2 and its cause named,
//! within a bounded time and memory (peak RSS measured by GNU time over plane and its render
//! process), and no byte of a file outside the bundle or of the process's environment reaches
//! stdout or stderr.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Fixture, text, within};

/// Planted outside every bundle, and in the environment: must never be printed.
const OUTSIDE: &str = "hostile-outside-content-8a1f";
const ENV_SECRET: &str = "hostile-env-token-3c9d";
/// The most memory a refused render may take, plane and its render process together.
const RSS_MAX_KIB: u64 = 600 * 1024;

/// What a case runs and expects.
struct Case {
    name: &'static str,
    /// Arguments after `plane` (the fixture's `--addons-dir` is added for template/diff).
    args: Vec<String>,
    /// Texts stderr must hold.
    expect: Vec<&'static str>,
}

/// The `minimal` fixture with `RUN_URL` given, and a file outside it with planted content.
struct Bundle {
    fixture: Fixture,
    outside: tempfile::TempDir,
}

impl Bundle {
    fn new() -> Self {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.txt"), OUTSIDE).unwrap();
        std::fs::create_dir(outside.path().join("dir")).unwrap();
        std::fs::write(
            outside.path().join("dir/leak.yaml.tera"),
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: leak, namespace: minimal}}\ndata: {{x: {OUTSIDE}}}\n"),
        )
        .unwrap();
        Self {
            fixture: Fixture::addon("minimal"),
            outside,
        }
    }

    fn dir(&self) -> std::path::PathBuf {
        self.fixture.addon_dir()
    }

    fn write(&self, rel: &str, text: &str) {
        let path = self.dir().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn link(&self, rel: &str, target: &Path) {
        let path = self.dir().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let _ = std::fs::remove_file(&path);
        std::os::unix::fs::symlink(target, path).unwrap();
    }

    fn template(&self, name: &str, text: &str) {
        self.write(&format!("components/web/{name}.yaml.tera"), text);
    }

    /// Runs `case` under GNU time; returns (exit code, stdout, stderr, peak RSS in KiB).
    fn run(&self, args: &[String]) -> (Option<i32>, String, String, u64) {
        let rss = self.fixture.root().join("rss");
        let mut cmd = common::clean(Command::new("/usr/bin/time"));
        cmd.current_dir(self.fixture.root())
            .args(["-f", "%M", "-o"])
            .arg(&rss)
            .arg(env!("CARGO_BIN_EXE_plane"))
            .args(args)
            .env("RUN_URL", "https://dev.example.com")
            .env("HOSTILE_TOKEN", ENV_SECRET);
        let out = within(cmd, Duration::from_secs(90));
        let peak = std::fs::read_to_string(&rss)
            .unwrap_or_default()
            .lines()
            .last()
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or(0);
        (
            out.status.code(),
            text(&out.stdout),
            text(&out.stderr),
            peak,
        )
    }

    fn template_args(&self, extra: &[&str]) -> Vec<String> {
        let mut args = vec![
            "template".to_owned(),
            "minimal".to_owned(),
            "--addons-dir".to_owned(),
            self.fixture.root().join("addons").display().to_string(),
        ];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        args
    }
}

/// Runs each case against a fresh copy, collecting every failure.
fn check(cases: Vec<(Bundle, Case)>) {
    let mut failures = Vec::new();
    for (bundle, case) in cases {
        let started = Instant::now();
        let (code, stdout, stderr, rss) = bundle.run(&case.args);
        let took = started.elapsed();
        let mut fail =
            |why: String| failures.push(format!("{}: {why}\nstderr:\n{stderr}", case.name));
        if code != Some(2) {
            fail(format!("exit {code:?}, not 2"));
            continue;
        }
        for needle in &case.expect {
            if !stderr.contains(needle) {
                fail(format!("stderr lacks {needle:?}"));
            }
        }
        for planted in [OUTSIDE, ENV_SECRET] {
            if stdout.contains(planted) || stderr.contains(planted) {
                fail(format!("{planted} reached the output"));
            }
        }
        if rss == 0 || rss > RSS_MAX_KIB {
            fail(format!("peak RSS {rss} KiB (bound {RSS_MAX_KIB})"));
        }
        report(case.name, took, rss);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[allow(
    clippy::print_stderr,
    reason = "each case's time and memory, for the record"
)]
fn report(name: &str, took: Duration, rss: u64) {
    eprintln!(
        "{name}: refused in {} ms, peak RSS {} MiB",
        took.as_millis(),
        rss / 1024
    );
}

fn case(name: &'static str, bundle: &Bundle, extra: &[&str], expect: &[&'static str]) -> Case {
    Case {
        name,
        args: bundle.template_args(extra),
        expect: expect.to_vec(),
    }
}

fn mkfifo(path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let _ = std::fs::remove_file(path);
    assert!(Command::new("mkfifo").arg(path).status().unwrap().success());
}

#[test]
fn a_bundle_reads_nothing_outside_its_folder() {
    let mut cases = Vec::new();
    let b = Bundle::new();
    b.link(
        "components/web/leak.yaml.tera",
        &b.outside.path().join("secret.txt"),
    );
    cases.push((b, ()));
    let b = Bundle::new();
    b.link("files/motd.txt", &b.outside.path().join("secret.txt"));
    cases.push((b, ()));
    let b = Bundle::new();
    std::fs::remove_dir_all(b.dir().join("components/web")).unwrap();
    b.link("components/web", &b.outside.path().join("dir"));
    cases.push((b, ()));
    let b = Bundle::new();
    b.link("values.yaml", &b.outside.path().join("secret.txt"));
    cases.push((b, ()));
    let names = [
        "a template",
        "a files/ entry",
        "a component folder",
        "values.yaml",
    ];
    let cases = cases
        .into_iter()
        .zip(names)
        .map(|((b, ()), name)| {
            let c = case(name, &b, &[], &["outside the bundle's folder"]);
            (b, c)
        })
        .collect::<Vec<_>>();
    // The component folder is a link to a folder: refused as such.
    let mut cases = cases;
    cases[2].1.expect = vec!["cannot read the folder components/web of bundle minimal"];
    let b = Bundle::new();
    b.template("env", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: env, namespace: minimal}\ndata: {x: \"{{ get_env(name='HOSTILE_TOKEN') }}\"}\n");
    let c = case("get_env", &b, &[], &["get_env() is not available"]);
    cases.push((b, c));
    check(cases);
}

#[test]
fn nothing_a_bundle_holds_makes_a_render_hang() {
    let mut cases = Vec::new();
    let b = Bundle::new();
    mkfifo(&b.dir().join("components/web/pipe.yaml.tera"));
    let c = case(
        "a FIFO as a template",
        &b,
        &[],
        &["a FIFO (named pipe), not a regular file"],
    );
    cases.push((b, c));
    let b = Bundle::new();
    mkfifo(&b.dir().join("files/pipe.txt"));
    let c = case("a FIFO under files/", &b, &[], &["a FIFO (named pipe)"]);
    cases.push((b, c));
    let b = Bundle::new();
    mkfifo(&b.fixture.root().join("profiles/piped.yaml"));
    let c = case(
        "a FIFO as a profile",
        &b,
        &["--profile", "piped"],
        &["a FIFO (named pipe)"],
    );
    cases.push((b, c));
    let b = Bundle::new();
    mkfifo(&b.fixture.root().join("addons/other/addon.yaml"));
    let c = Case {
        name: "a FIFO as another bundle's addon.yaml",
        args: vec![
            "template".into(),
            "minimall".into(),
            "--addons-dir".into(),
            b.fixture.root().join("addons").display().to_string(),
        ],
        expect: vec!["unknown addon `minimall`", "did you mean `minimal`?"],
    };
    cases.push((b, c));
    let b = Bundle::new();
    std::fs::create_dir_all(b.dir().join("files/loop")).unwrap();
    b.link("files/loop/here", Path::new("."));
    b.link("files/loop/up", Path::new(".."));
    let c = case(
        "links to `.` and `..`",
        &b,
        &[],
        &["a link to a folder, which plane does not follow"],
    );
    cases.push((b, c));
    check(cases);
}

#[test]
fn no_template_expression_crashes_or_exhausts_the_render() {
    let object = |name: &str, body: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}, namespace: minimal}}\ndata: {{x: \"{body}\"}}\n"
        )
    };
    let mut cases = Vec::new();
    let b = Bundle::new();
    b.template(
        "rec",
        "{% macro r(n) %}{{ self::r(n=n+1) }}{% endmacro r %}{{ self::r(n=0) }}\n",
    );
    let c = case(
        "a macro that calls itself",
        &b,
        &[],
        &["went over its stack budget", "rec.yaml.tera"],
    );
    cases.push((b, c));
    let b = Bundle::new();
    b.template("self", "{% include \"components/web/self.yaml.tera\" %}\n");
    let c = case(
        "a template that includes itself",
        &b,
        &[],
        &["self.yaml.tera"],
    );
    cases.push((b, c));
    let b = Bundle::new();
    b.template("mod", &object("m", "{{ -9223372036854775808 % -1 }}"));
    let c = case(
        "i64::MIN % -1",
        &b,
        &[],
        &["the template broke the renderer", "overflow"],
    );
    cases.push((b, c));
    let b = Bundle::new();
    b.template("div", &object("d", "{{ 1 % 0 }}"));
    let c = case(
        "a remainder by zero",
        &b,
        &[],
        &["modulo by zero", "div.yaml.tera"],
    );
    cases.push((b, c));
    let b = Bundle::new();
    b.template(
        "range",
        &object("r", "{% for i in range(end=100000000) %}{% endfor %}"),
    );
    let c = case(
        "range(end=100000000)",
        &b,
        &[],
        &["over the range budget of 100000"],
    );
    cases.push((b, c));
    let b = Bundle::new();
    b.template(
        "step",
        &object("s", "{% for i in range(end=10, step_by=0) %}{% endfor %}"),
    );
    let c = case("range(step_by=0)", &b, &[], &["step_by of at least 1"]);
    cases.push((b, c));
    let b = Bundle::new();
    b.template(
        "huge",
        "{% set s = \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\" %}{% for i in range(end=100000) %}{% for j in range(end=100000) %}{{ s }}{% endfor %}{% endfor %}\n",
    );
    let c = case(
        "a 256 MB string",
        &b,
        &["--budget", "memory=400MiB"],
        &["went over its memory budget", "huge.yaml.tera"],
    );
    cases.push((b, c));
    let b = Bundle::new();
    b.template(
        "many",
        "{% for i in range(end=100000) %}---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: \"c{{ i }}\", namespace: minimal}\n{% endfor %}",
    );
    let c = case(
        "100,000 objects",
        &b,
        &[],
        &["went over its objects budget", "more than 5000 objects"],
    );
    cases.push((b, c));
    let b = Bundle::new();
    b.template(
        "slow",
        &object("slow", "{% for i in range(end=100000) %}{% for j in range(end=100000) %}{% endfor %}{% endfor %}"),
    );
    let c = case(
        "a render that runs for ever",
        &b,
        &["--budget", "time=3s"],
        &["went over its time budget"],
    );
    cases.push((b, c));
    check(cases);
}

#[test]
fn files_over_their_budget_are_not_read() {
    let mut cases = Vec::new();
    let b = Bundle::new();
    let big = std::fs::File::create(b.dir().join("values.schema.json")).unwrap();
    big.set_len(100 << 20).unwrap();
    let c = case(
        "a 100 MB schema",
        &b,
        &[],
        &["values.schema.json", "over the limit of 16 MiB"],
    );
    cases.push((b, c));
    let b = Bundle::new();
    let value = "v".repeat(50 << 20);
    std::fs::write(
        b.fixture.root().join("profiles/fat.yaml"),
        format!("env: {{RUN_URL: {value}}}\n"),
    )
    .unwrap();
    let c = case(
        "a 50 MB profile value",
        &b,
        &["--profile", "fat"],
        &["over the limit of 4 MiB"],
    );
    cases.push((b, c));
    check(cases);
}

#[test]
fn a_team_instance_cannot_escape_its_namespace() {
    let team = |template: &str| {
        let b = Bundle::new();
        b.write(
            "addon.yaml",
            &std::fs::read_to_string(b.dir().join("addon.yaml"))
                .unwrap()
                .replace(
                    "components:\n",
                    "instance:\n  components: [web]\n  values: {}\ncomponents:\n",
                ),
        );
        std::fs::remove_dir_all(b.dir().join("components/web")).unwrap();
        b.template("team", template);
        b
    };
    let mut cases = Vec::new();
    let b = team(
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: rbac.authorization.k8s.io/v1\n  kind: ClusterRoleBinding\n  metadata: {name: pwn}\n  roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\n  subjects: [{kind: ServiceAccount, name: default, namespace: team-a}]\n",
    );
    let c = case(
        "a List wrapping a ClusterRoleBinding",
        &b,
        &["-n", "team-a"],
        &["ClusterRoleBinding/pwn does not belong in a team instance"],
    );
    cases.push((b, c));
    let b = team(
        "apiVersion: flowcontrol.apiserver.k8s.io/v1\nkind: FlowSchema\nmetadata: {name: f, namespace: team-a}\nspec: {priorityLevelConfiguration: {name: exempt}}\n",
    );
    let c = case(
        "a FlowSchema in the team's namespace",
        &b,
        &["-n", "team-a"],
        &["FlowSchema/f"],
    );
    cases.push((b, c));
    let b = team(
        "apiVersion: certificates.k8s.io/v1\nkind: CertificateSigningRequest\nmetadata: {name: c, namespace: team-a}\nspec: {signerName: kubernetes.io/kube-apiserver-client, request: eA==, usages: [client auth]}\n",
    );
    let c = case(
        "a CertificateSigningRequest in the team's namespace",
        &b,
        &["-n", "team-a"],
        &["CertificateSigningRequest/c"],
    );
    cases.push((b, c));
    let b =
        team("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w, namespace: team-a}\n");
    let c = case(
        "an unknown kind",
        &b,
        &["-n", "team-a"],
        &[
            "plane cannot tell whether Widget/team-a/w is namespaced",
            "scope: Namespaced",
        ],
    );
    cases.push((b, c));
    check(cases);
}

#[test]
fn a_bundle_can_neither_forge_plane_state_nor_render_what_the_api_server_refuses() {
    let mut cases = Vec::new();
    let b = Bundle::new();
    b.template("forge", "apiVersion: v1\nkind: Secret\nmetadata:\n  name: plane-release-minimal\n  namespace: plane-system\n  labels: {plane.datalayer.io/inventory: \"true\", plane.datalayer.io/inventory-of: minimal}\ntype: plane.datalayer.io/release\n");
    let c = case(
        "a forged release record",
        &b,
        &[],
        &["imitates plane's own state"],
    );
    cases.push((b, c));
    let b = Bundle::new();
    b.template("lease", "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata: {name: plane-lock-minimal, namespace: minimal}\n");
    let c = case("a forged lock", &b, &[], &["imitates plane's own state"]);
    cases.push((b, c));
    let b = Bundle::new();
    b.template("owned", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: owned\n  namespace: minimal\n  ownerReferences: [{apiVersion: v1, kind: Namespace, name: kube-system, uid: x}]\n");
    let c = case("ownerReferences", &b, &[], &["sets ownerReferences"]);
    cases.push((b, c));
    let b = Bundle::new();
    b.template("b64", "apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: minimal}\ndata: {k: \"not base64!\"}\n");
    let c = case(
        "Secret data that is not base64",
        &b,
        &[],
        &["data.k that is not base64"],
    );
    cases.push((b, c));
    let b = Bundle::new();
    b.template("big", &format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: big, namespace: minimal}}\ndata: {{k: {}}}\n", "x".repeat(1_100_000)));
    let c = case(
        "a ConfigMap over 1 MiB",
        &b,
        &[],
        &["over the 1 MiB a ConfigMap or Secret may hold"],
    );
    cases.push((b, c));
    let b = Bundle::new();
    b.template("dup", "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: minimal}\nspec:\n  containers:\n  - name: c\n    image: x:1\n    securityContext:\n      privileged: false\n      privileged: true\n");
    let c = case(
        "a key set twice",
        &b,
        &[],
        &[
            "dup.yaml.tera (rendered output):10:7",
            "duplicate key `privileged`",
        ],
    );
    cases.push((b, c));
    check(cases);
}

#[test]
fn careless_bundles_are_refused_when_they_load() {
    let mut cases = Vec::new();
    let b = Bundle::new();
    let name = <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(b"bad-\xff.yaml.tera");
    let path = b.dir().join("components/web").join(name);
    std::fs::write(path, "x: 1\n").unwrap();
    let c = case(
        "a file name that is not UTF-8",
        &b,
        &[],
        &["its name is not UTF-8"],
    );
    cases.push((b, c));
    let manifest = |b: &Bundle, from: &str, to: &str| {
        let text = std::fs::read_to_string(b.dir().join("addon.yaml")).unwrap();
        assert!(text.contains(from), "{text}");
        b.write("addon.yaml", &text.replacen(from, to, 1));
    };
    let b = Bundle::new();
    manifest(
        &b,
        "components:\n",
        "instance:\n  components: [web, wbe]\ncomponents:\n",
    );
    let c = case(
        "an unknown component in instance",
        &b,
        &[],
        &[
            "unknown component `wbe`",
            "addon.yaml:19:",
            "did you mean `web`?",
        ],
    );
    cases.push((b, c));
    let b = Bundle::new();
    manifest(&b, "enabled: web.enabled", "enabled: web..enabled");
    let c = case(
        "a malformed enabled path",
        &b,
        &[],
        &["is not a values path", "addon.yaml:"],
    );
    cases.push((b, c));
    let b = Bundle::new();
    manifest(
        &b,
        "    depends_on: [base]\n",
        "    depends_on: [base]\n    existing:\n      what: a web\n      detect:\n        - {apiVersion: apps/v1, kind: Deployment, selector: \"app in (web\"}\n",
    );
    // `diff` with a kubeconfig nobody answers: refused before any connection.
    let kubeconfig = b.fixture.root().join("kubeconfig");
    std::fs::write(&kubeconfig, "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\nusers: [{name: u, user: {token: t}}]\n").unwrap();
    let mut args = b.template_args(&["--kubeconfig", kubeconfig.to_str().unwrap()]);
    args[0] = "diff".into();
    let c = Case {
        name: "an invalid existing selector",
        args,
        expect: vec![
            "invalid label selector",
            "addon.yaml:",
            "a `(` is not closed",
        ],
    };
    cases.push((b, c));
    check(cases);
}
