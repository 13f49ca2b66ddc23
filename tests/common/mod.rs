//! Test vocabulary: fixture bundles copied into a temporary folder, and the real binary.
#![allow(
    dead_code,
    reason = "each test crate uses a different part of this module"
)]

pub mod cluster;
pub mod netpol;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use std::process::Command;

use base64::Engine as _;

/// The release's inventory as stored in the cluster.
pub fn inventory(
    srv: &plane_test_apiserver::TestServer,
    release: &str,
) -> Option<serde_json::Value> {
    record_of(&srv.get_object(
        "v1",
        "Secret",
        Some("plane-system"),
        &format!("plane-release-{release}"),
    )?)
}

/// The release record (`release.json`) an inventory Secret holds.
pub fn record_of(secret: &serde_json::Value) -> Option<serde_json::Value> {
    let encoded = secret["data"]["release.json"].as_str()?;
    serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()?,
    )
    .ok()
}

/// Everything a release's inventory Secret holds, decoded: `release.json` and the revisions'
/// objects (un-gzipped), to look for what must never be there.
pub fn record_text(secret: &serde_json::Value) -> String {
    use std::io::Read as _;
    let mut out = String::new();
    for (key, encoded) in secret["data"].as_object().unwrap() {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().unwrap())
            .unwrap();
        if key == "revisions.json.gz" {
            flate2::read::GzDecoder::new(bytes.as_slice())
                .read_to_string(&mut out)
                .unwrap();
        } else {
            out.push_str(&String::from_utf8(bytes).unwrap());
        }
    }
    out
}

/// The counts of a plan's or a run's summary (`3 to create, …` / `3 created, …`), by action, so
/// that what a dry run said and what the run did compare.
pub fn summary_counts(line: &str) -> Vec<(String, u64)> {
    line.split(", ")
        .map(|part| {
            let (n, what) = part.split_once(' ').unwrap();
            let what = match what.trim() {
                "to create" | "created" => "create",
                "to change" | "configured" => "change",
                "to prune" | "pruned" => "prune",
                "unchanged" => "unchanged",
                "kept" => "kept",
                other => panic!("unknown count {other:?} in {line:?}"),
            };
            (what.to_owned(), n.parse().unwrap())
        })
        .collect()
}

/// Runs `cmd` to its end, reading its output as it comes (a diff can outgrow a pipe's buffer),
/// and fails the test if it is still running after `limit`.
pub fn within(mut cmd: std::process::Command, limit: std::time::Duration) -> std::process::Output {
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(child.wait_with_output());
    });
    if let Ok(out) = receiver.recv_timeout(limit) {
        return out.unwrap();
    }
    let _ = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status();
    let out = receiver.recv().unwrap().unwrap();
    panic!(
        "still running after {limit:?}; stderr so far:\n{}",
        text(&out.stderr)
    );
}

/// Runs `cmd` to its end with the standard streams it was given, and fails the test if it is
/// still running after `limit`.
pub fn status_within(
    mut cmd: std::process::Command,
    limit: std::time::Duration,
) -> std::process::ExitStatus {
    let mut child = cmd.spawn().unwrap();
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("still running after {limit:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The fixtures folder (tests/fixtures), which has addons/, templates/ and profiles/.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// What the pinned KubeRay release's operator role grants, as recorded in
/// `tests/fixtures/kuberay/operator-role.tsv`: (api group, resource, verb), the core group "".
pub fn upstream_operator_role() -> Vec<(String, String, String)> {
    let facts = std::fs::read_to_string(fixtures().join("kuberay/operator-role.tsv"))
        .expect("the recorded operator role");
    facts
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|line| {
            let cells: Vec<&str> = line.split('\t').collect();
            let [group, resource, verb] = cells[..] else {
                panic!("not three cells: {line:?}");
            };
            let group = if group == "\"\"" { "" } else { group };
            (group.to_owned(), resource.to_owned(), verb.to_owned())
        })
        .collect()
}

mod clean_env;
#[allow(
    unused_imports,
    reason = "each test crate uses a different part of this module"
)]
pub use clean_env::clean;

/// The real `plane` binary with a clean environment: no inputs leak in from the developer's shell.
pub fn plane() -> Command {
    clean_env::clean(Command::new(env!("CARGO_BIN_EXE_plane")))
}

/// The local profile, which turns the bootstrap RayCluster on.
pub const LOCAL: &[&str] = &["--profile", "local"];

/// The label plane puts on every object of a release, with the release's name.
pub const RELEASE_LABEL: &str = "plane.datalayer.io/release";

/// How plane names an object: `Kind/namespace/name`, or `Kind/name` when cluster-scoped.
pub fn subject(kind: &str, namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{kind}/{ns}/{name}"),
        None => format!("{kind}/{name}"),
    }
}

/// The subject of a Kubernetes object given as JSON.
pub fn subject_of(object: &serde_json::Value) -> String {
    subject(
        object["kind"].as_str().unwrap(),
        object["metadata"]["namespace"].as_str(),
        object["metadata"]["name"].as_str().unwrap(),
    )
}

/// The apiVersion of a kind plane knows (`plane::kinds`).
pub fn api_version_of(kind: &str) -> &'static str {
    plane::kinds::lookup(kind)
        .unwrap_or_else(|| panic!("{kind} is not in plane::kinds::KINDS"))
        .api_version
}

/// Subjects of the test server's objects (of the kinds of [`kinds`]) that carry `release`'s
/// label, read from its store without a request.
pub fn labelled(srv: &plane_test_apiserver::TestServer, release: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (api_version, kind) in kinds() {
        for object in srv.list_objects(api_version, kind, None) {
            if object["metadata"]["labels"][RELEASE_LABEL] == release {
                out.insert(subject(
                    kind,
                    object["metadata"]["namespace"].as_str(),
                    object["metadata"]["name"].as_str().unwrap(),
                ));
            }
        }
    }
    out
}

/// A test server with datalayer-ray deployed by `up --profile local` plus `set` values (each a
/// `--set`); the fixture holds the bundle and must outlive the runs that read it.
pub fn deployed(set: &[&str]) -> (plane_test_apiserver::TestServer, Fixture) {
    let srv = plane_test_apiserver::TestServer::start(plane_test_apiserver::Config::default());
    let fixture = builtin("datalayer-ray");
    let mut args: Vec<&str> = LOCAL.to_vec();
    for value in set {
        args.extend(["--set", value]);
    }
    args.extend(["--timeout", "60s"]);
    let out = within(
        fixture.cluster("up", srv.kubeconfig_path(), &args),
        std::time::Duration::from_secs(120),
    );
    assert!(out.status.success(), "up: {}", text(&out.stderr));
    (srv, fixture)
}

/// The revisions `plane history datalayer-ray -o json` lists, newest first.
pub fn history_revisions(kubeconfig: &Path) -> Vec<serde_json::Value> {
    let out = within(
        on_release("history", kubeconfig, "datalayer-ray", &["-o", "json"]),
        std::time::Duration::from_secs(120),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let revisions: serde_json::Value = serde_json::from_slice(&out.stdout).expect("history JSON");
    revisions.as_array().expect("a list of revisions").clone()
}

/// `plane <command> <release> --kubeconfig <kc>` plus `args`, to run: the commands that take an
/// installed release (down, history, rollback).
pub fn on_release(command: &str, kubeconfig: &Path, release: &str, args: &[&str]) -> Command {
    let mut cmd = plane();
    cmd.args([command, release, "--kubeconfig"])
        .arg(kubeconfig)
        .args(args);
    cmd
}

/// `plane down <release> --kubeconfig <kc>` plus `args`, to run.
pub fn down(kubeconfig: &Path, release: &str, args: &[&str]) -> Command {
    on_release("down", kubeconfig, release, args)
}

/// `plane ls -o json`: the releases, after checking that it succeeded (within a minute).
pub fn ls_json(kubeconfig: &Path) -> serde_json::Value {
    let mut cmd = plane();
    cmd.args(["ls", "-o", "json", "--kubeconfig"])
        .arg(kubeconfig);
    let out = within(cmd, std::time::Duration::from_secs(60));
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `plane status` plus `args`, run to its end within a minute.
pub fn status(kubeconfig: &Path, args: &[&str]) -> std::process::Output {
    let mut cmd = plane();
    cmd.arg("status")
        .args(args)
        .arg("--kubeconfig")
        .arg(kubeconfig);
    within(cmd, std::time::Duration::from_secs(60))
}

/// A copy of a fixture bundle that a test may change without touching the others.
pub struct Fixture {
    dir: tempfile::TempDir,
    addon: String,
}

impl Fixture {
    /// Copies tests/fixtures (all bundles, templates and profiles) and selects bundle `addon`.
    pub fn addon(addon: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        copy_tree(&fixtures(), dir.path());
        Self {
            dir,
            addon: addon.to_owned(),
        }
    }

    /// Writes (or replaces) a file inside the selected bundle.
    #[must_use]
    pub fn with_file(self, rel: &str, text: &str) -> Self {
        let path = self.addon_dir().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
        self
    }

    /// Writes a file anywhere in the fixture root (e.g. `profiles/x.yaml`).
    #[must_use]
    pub fn with_root_file(self, rel: &str, text: &str) -> Self {
        let path = self.dir.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
        self
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn addon_dir(&self) -> PathBuf {
        self.dir.path().join("addons").join(&self.addon)
    }

    /// `plane template <addon> --addons-dir <copy>/addons` plus `args`, run in the fixture root.
    pub fn template(&self, args: &[&str]) -> Command {
        let mut cmd = plane();
        cmd.current_dir(self.root())
            .arg("template")
            .arg(&self.addon)
            .arg("--addons-dir")
            .arg(self.root().join("addons"));
        cmd.args(args);
        cmd
    }
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A copy of the repository's own bundles, templates and profiles, for tests that change them.
pub fn builtin(addon: &str) -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for folder in ["addons", "templates", "profiles"] {
        copy_tree(&root.join(folder), &dir.path().join(folder));
    }
    Fixture {
        dir,
        addon: addon.to_owned(),
    }
}

impl Fixture {
    /// Replaces `from` with `to` in a file of the bundle; the text must be there.
    #[must_use]
    pub fn patch_file(self, rel: &str, from: &str, to: &str) -> Self {
        let path = self.addon_dir().join(rel);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{rel} does not contain {from:?}");
        std::fs::write(path, text.replacen(from, to, 1)).unwrap();
        self
    }

    /// `plane <command> <addon> --addons-dir ... --kubeconfig <kc>` plus `args`.
    pub fn cluster(&self, command: &str, kubeconfig: &Path, args: &[&str]) -> Command {
        let mut cmd = plane();
        cmd.current_dir(self.root())
            .arg(command)
            .arg(&self.addon)
            .arg("--addons-dir")
            .arg(self.root().join("addons"))
            .arg("--kubeconfig")
            .arg(kubeconfig);
        cmd.args(args);
        cmd
    }
}

/// Every kind plane knows (`plane::kinds`) and the custom kinds datalayer-ray declares, as
/// (apiVersion, kind), but the Pods and ReplicaSets a release's controllers make: they carry the
/// release's label without being plane's objects.
pub fn kinds() -> Vec<(&'static str, &'static str)> {
    plane::kinds::KINDS
        .iter()
        .filter(|k| !matches!(k.kind, "Pod" | "ReplicaSet"))
        .map(|k| (k.api_version, k.kind))
        .chain([
            ("ray.io/v1", "RayCluster"),
            ("ray.io/v1", "RayJob"),
            ("ray.io/v1", "RayService"),
        ])
        .collect()
}

/// Asserts a run succeeded (printing both streams if not) and returns its stderr.
pub fn succeeded(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stderr)
}

/// `plane <command> <addon> ...` of `fixture` on the cluster of `kubeconfig` plus `args`, run to
/// its end within four minutes.
pub fn run_on(
    fixture: &Fixture,
    kubeconfig: &Path,
    command: &str,
    args: &[&str],
) -> std::process::Output {
    within(
        fixture.cluster(command, kubeconfig, args),
        std::time::Duration::from_secs(240),
    )
}

/// A command's output as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The subjects a JSON plan (`plane diff -o json`) gives one action.
pub fn planned(plan: &serde_json::Value, action: &str) -> BTreeSet<String> {
    plan["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["action"] == action)
        .map(|o| o["subject"].as_str().unwrap().to_owned())
        .collect()
}

/// The subjects a release record (`release.json`) lists.
pub fn inventory_subjects(inventory: &serde_json::Value) -> BTreeSet<String> {
    inventory["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            subject(
                o["kind"].as_str().unwrap(),
                o["namespace"].as_str(),
                o["name"].as_str().unwrap(),
            )
        })
        .collect()
}
