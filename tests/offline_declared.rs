//! What a bundle declares of its kinds is checked when it loads: a CEL expression that does not
//! compile, nests too deep or is too long, a `let` cycle, a Kubernetes kind declared, a status
//! view that names what does not exist — each an error at addon.yaml's line, before anything is
//! sent; and README's example of `kinds` and `status` is valid.

mod common;

use common::{Fixture, text};

fn template(fixture: &Fixture) -> std::process::Output {
    common::within(fixture.template(&[]), std::time::Duration::from_secs(60))
}

/// The widgets fixture with `from` replaced by `to` in its addon.yaml.
fn widgets(from: &str, to: &str) -> Fixture {
    Fixture::addon("widgets").patch_addon(from, to)
}

trait Patch {
    fn patch_addon(self, from: &str, to: &str) -> Self;
}

impl Patch for Fixture {
    fn patch_addon(self, from: &str, to: &str) -> Self {
        let path = self.addon_dir().join("addon.yaml");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "addon.yaml does not contain {from:?}");
        std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
        self
    }
}

fn refused(fixture: &Fixture) -> String {
    let out = template(fixture);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    stderr
}

#[test]
fn the_widgets_bundle_renders() {
    let out = template(&Fixture::addon("widgets"));
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn a_cel_typo_is_an_error_at_its_line() {
    let stderr = refused(&widgets(
        "failed: phase == 'Failed'",
        "failed: phase == 'Failed' &&",
    ));
    assert!(
        stderr.contains("invalid CEL `phase == 'Failed' &&`") && stderr.contains("addon.yaml:37:"),
        "{stderr}"
    );
}

#[test]
fn hostile_expressions_are_refused_at_load() {
    let deep = "failed: \"[1].exists(a, [1].exists(b, [1].exists(c, true)))\"";
    let stderr = refused(&widgets("failed: phase == 'Failed'", deep));
    assert!(stderr.contains("nests comprehensions 3 deep"), "{stderr}");
    let long = format!("failed: \"{}true\"", "true && ".repeat(2000));
    let stderr = refused(&widgets("failed: phase == 'Failed'", &long));
    assert!(stderr.contains("at most 8192 are allowed"), "{stderr}");
    let stderr = refused(&widgets(
        "ready: status.?readyReplicas.orValue(0)",
        "ready: phase + ready",
    ));
    assert!(stderr.contains("cycle"), "{stderr}");
}

#[test]
fn kubernetes_kinds_and_unknown_view_parts_are_refused() {
    let stderr = refused(&widgets(
        "  - apiVersion: example.com/v1\n    kind: Widget\n    let:",
        "  - apiVersion: apps/v1\n    kind: Deployment\n    let:",
    ));
    assert!(
        stderr.contains("kinds: Deployment in apps/v1 is a Kubernetes kind")
            && stderr.contains("addon.yaml:"),
        "{stderr}"
    );
    let stderr = refused(&widgets(
        "  name: widgets\n  kinds:",
        "  name: usage\n  kinds:",
    ));
    assert!(
        stderr.contains("cannot be a key of `status -o json`"),
        "{stderr}"
    );
    let stderr = refused(&widgets(
        "    roles: [member]\n",
        "    roles: [member]\n  usage: {part: operator, labels: [namespace, widget], cpu: x, memory: y, gpu: z}\n",
    ));
    assert!(stderr.contains("which is not a Service part"), "{stderr}");
    let stderr = refused(&widgets(
        "watchNamespaces: {flag: --namespaces, values: operator.namespaces}",
        "watchNamespaces: {flag: --namespaces, values: 'operator..namespaces'}",
    ));
    assert!(stderr.contains("watchNamespaces"), "{stderr}");
}

#[test]
fn the_readmes_example_is_valid() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme
        .split("### `kinds` and `status`: what plane knows of a bundle")
        .nth(1)
        .expect("the README section");
    let block = section
        .split("```yaml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("its example");
    let declared: plane::bundle::Declared = serde_yaml_ng::from_str(block).expect("valid YAML");
    let problems = declared.check("README.md", block);
    assert!(problems.is_empty(), "{problems:?}");
    assert!(declared.status.is_some() && !declared.kinds.is_empty());
}
