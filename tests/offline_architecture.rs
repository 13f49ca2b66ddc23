//! The dependency rules of STYLE.md's module map, checked on the source: which layer may name
//! which, so the architecture a newcomer reads from `ls src` stays true.

use std::fs;
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`, with its text stripped of comments (rules are about code).
fn sources(dir: &str) -> Vec<(PathBuf, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in fs::read_dir(dir).expect("a source folder") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    walk(&root.join(dir), &mut files);
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = fs::read_to_string(&path).expect("a readable source");
            let code: Vec<&str> = text
                .lines()
                .map(|line| line.split("//").next().unwrap_or_default())
                .collect();
            let shown = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
            (shown, code.join("\n"))
        })
        .collect()
}

/// Every place in `dir` that names one of `forbidden` (a path prefix such as `crate::ui`),
/// as `file: name`.
fn naming(dir: &str, forbidden: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for (path, code) in sources(dir) {
        for name in forbidden {
            let named = code.match_indices(name).any(|(at, _)| {
                // A whole path segment: `crate::ui` but not `crate::uix`.
                let after = code[at + name.len()..].chars().next();
                let before = code[..at].chars().next_back();
                !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
                    && !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':')
            });
            if named {
                found.push(format!("{}: {name}", path.display()));
            }
        }
    }
    found
}

#[test]
fn bundle_and_values_never_reach_the_cluster_or_the_terminal() {
    let forbidden = [
        "crate::kube",
        "crate::ui",
        "crate::commands",
        "tokio",
        "indicatif",
    ];
    let mut found = naming("src/bundle", &forbidden);
    found.extend(naming("src/values", &forbidden));
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn kube_never_reaches_the_terminal_or_the_command_line() {
    let found = naming(
        "src/kube",
        &[
            "crate::ui",
            "crate::commands",
            "crate::cli",
            "crate::settings",
            "clap",
            "dialoguer",
            "indicatif",
        ],
    );
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn the_client_knows_nothing_of_objects_releases_or_status() {
    let found = naming(
        "src/kube/client",
        &[
            "crate::kube::object",
            "crate::kube::release",
            "crate::kube::status",
        ],
    );
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn object_knowledge_does_no_io() {
    let found = naming(
        "src/kube/object",
        &[
            "crate::kube::client",
            "crate::kube::release",
            "crate::kube::status",
            "kube::api",
            "kube::Client",
            "tokio",
            "futures",
            "async fn",
        ],
    );
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn status_only_reads_and_the_lifecycle_never_needs_status() {
    let mut found = naming(
        "src/kube/status",
        &[
            "crate::kube::release::apply",
            "crate::kube::release::converge",
            "crate::kube::release::delete",
            "crate::kube::release::lock",
            "crate::kube::release::plan",
            "Patch::",
            ".delete(",
            ".patch(",
            ".create(",
            ".replace(",
        ],
    );
    found.extend(naming("src/kube/release", &["crate::kube::status"]));
    assert!(found.is_empty(), "{found:#?}");
}

/// The kube modules `code` names by path (`kube::release::` in `kube::release::plan`):
/// `kube::Item` and `crate::kube::{Item, ...}` are the facade, a lower-case segment followed
/// by `::` reaches past it.
fn reaching_into_kube(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (at, _) in code.match_indices("kube::") {
        let rest = &code[at + "kube::".len()..];
        let segment: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if segment.starts_with(|c: char| c.is_lowercase())
            && rest[segment.len()..].starts_with("::")
        {
            found.push(format!("kube::{segment}::"));
        }
    }
    found
}

#[test]
fn commands_see_only_the_kube_facade() {
    let mut found = Vec::new();
    for (path, code) in sources("src/commands") {
        for name in reaching_into_kube(&code) {
            found.push(format!("{}: {name}", path.display()));
        }
    }
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn the_kube_folder_shows_its_roles() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/kube");
    let mut entries: Vec<String> = fs::read_dir(&root)
        .expect("src/kube")
        .map(|e| {
            e.expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    entries.sort();
    assert_eq!(
        entries,
        [
            "client",
            "error.rs",
            "mod.rs",
            "object",
            "progress.rs",
            "release",
            "status"
        ]
    );
}

#[test]
fn up_reads_as_a_short_list_of_steps() {
    let up = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/commands/up.rs"))
        .expect("src/commands/up.rs");
    let lines = up.lines().count();
    assert!(lines < 200, "src/commands/up.rs has {lines} lines");
    assert!(!up.contains("too_many_arguments"));
}

#[test]
fn the_checks_catch_what_they_forbid() {
    // A rule that can never fire proves nothing: each check must see a name where it is.
    assert!(!naming("src/commands", &["crate::kube"]).is_empty());
    assert!(!naming("src/kube/release", &["crate::kube::client"]).is_empty());
    assert!(!naming("src/kube/object", &["crate::kinds"]).is_empty());
    assert_eq!(
        reaching_into_kube("use crate::kube::release::plan;\nkube::Lock::acquire(); kube::plan(x)"),
        ["kube::release::"]
    );
}

/// Where `text` names a bundle plane ships: `ray` as a word or at the start of an identifier's
/// part (`RayCluster`, `ray_`, `ray.io`, `bootstrapRayCluster`), `kuberay` anywhere, `datalayer`
/// anywhere but plane's own label domain `plane.datalayer.io`. `array`, `stray` or `ARRAY` are no
/// such name. Each finding is `line: name`.
fn bundle_names(text: &str) -> Vec<String> {
    let lower = text.to_ascii_lowercase();
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let line_of = |at: usize| text[..at].matches('\n').count() + 1;
    for (at, _) in lower.match_indices("ray") {
        let before = at.checked_sub(1).map(|i| bytes[i]);
        let starts_word = !before.is_some_and(|b| b.is_ascii_alphabetic());
        let camel = bytes[at] == b'R' && before.is_some_and(|b| b.is_ascii_lowercase());
        if starts_word || camel {
            found.push(format!(
                "{}: {}",
                line_of(at),
                &text[at..(at + 3).min(text.len())]
            ));
        }
    }
    for (at, _) in lower.match_indices("kuberay") {
        found.push(format!("{}: kuberay", line_of(at)));
    }
    for (at, _) in lower.match_indices("datalayer") {
        if !lower[at..].starts_with("datalayer.io") {
            found.push(format!("{}: datalayer", line_of(at)));
        }
    }
    found
}

/// The folder that may hold what a bundle cannot declare, behind one trait (none today).
const BUNDLE_FOLDERS: &[&str] = &[];

#[test]
fn the_engine_knows_no_bundle_by_name() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut found = Vec::new();
    let mut stack = vec![root.join("src")];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).expect("a source folder") {
            let path = entry.expect("an entry").path();
            let shown = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .display()
                .to_string();
            if BUNDLE_FOLDERS.iter().any(|f| shown.starts_with(f)) {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else if path.file_name().is_some_and(|n| n != "tests.rs") {
                // A unit-test module (tests.rs) holds the engine to the bundles plane ships; it
                // may name them.
                let text = fs::read_to_string(&path).expect("a readable source");
                for name in bundle_names(&text) {
                    found.push(format!("{shown}:{name}"));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "the engine names a bundle; declare it in the bundle's addon.yaml instead:\n{}",
        found.join("\n")
    );
}

#[test]
fn a_planted_bundle_name_is_found() {
    for planted in [
        "kind: RayCluster",
        "let ray_usage = 1;",
        "\"ray.io/cluster\"",
        "bootstrapRayCluster",
        "KubeRay operator",
        "kuberay-operator",
        "DATALAYER_RUN_URL",
        "datalayer-ray",
        "// a Ray head",
    ] {
        assert!(!bundle_names(planted).is_empty(), "{planted}");
    }
    for clean in [
        "as_array()",
        "ARRAY",
        "stray arrays",
        "plane.datalayer.io/release",
    ] {
        assert_eq!(bundle_names(clean), Vec::<String>::new(), "{clean}");
    }
}
