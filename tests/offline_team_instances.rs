//! Team instances at render (`-n NAMESPACE`): only namespaced objects in the instance's own
//! namespace, a route of its own, and a bundle whose instances would collide refused before
//! anything is sent.

mod common;

use common::{Fixture, LOCAL, builtin, text};
use serde_json::Value;

const TEAM: &[&str] = &["-n", "team-a"];

/// `template ... -o json` of the fixture, as the objects it prints, with its exit code and stderr.
fn render(fixture: &Fixture, args: &[&str]) -> (Option<i32>, Vec<Value>, String) {
    let out = fixture
        .template(&[LOCAL, args, &["-o", "json"]].concat())
        .output()
        .expect("plane runs");
    let items = serde_json::from_slice::<Value>(&out.stdout)
        .ok()
        .and_then(|list| list["items"].as_array().cloned())
        .unwrap_or_default();
    (out.status.code(), items, text(&out.stderr))
}

#[test]
fn a_team_instance_renders_only_namespaced_objects_in_its_namespace() {
    let (code, objects, stderr) = render(&builtin("datalayer-ray"), TEAM);
    assert_eq!(code, Some(0), "{stderr}");
    let kinds: Vec<&str> = objects
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    for object in &objects {
        assert_eq!(object["metadata"]["namespace"], "team-a", "{object}");
    }
    for kind in [
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "Deployment",
        "Service",
        "Ingress",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    for platform_kind in [
        "Namespace",
        "ClusterRole",
        "CustomResourceDefinition",
        "RayCluster",
    ] {
        assert!(
            !kinds.contains(&platform_kind),
            "{platform_kind} in {kinds:?}"
        );
    }
    let role = objects.iter().find(|o| o["kind"] == "Role").unwrap();
    let ray_rule = role["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["apiGroups"][0] == "ray.io")
        .unwrap();
    assert_eq!(
        ray_rule["resources"],
        serde_json::json!(["rayclusters", "rayjobs"])
    );
    let ingress = objects.iter().find(|o| o["kind"] == "Ingress").unwrap();
    assert_eq!(
        ingress["spec"]["rules"][0]["host"],
        "team-a.ray.localtest.me"
    );
    // The bootstrap RayCluster is the team's to ask for, in its own namespace.
    let (code, objects, stderr) = render(
        &builtin("datalayer-ray"),
        &[TEAM, &["--set", "bootstrapRayCluster.enabled=true"]].concat(),
    );
    assert_eq!(code, Some(0), "{stderr}");
    let cluster = objects.iter().find(|o| o["kind"] == "RayCluster").unwrap();
    assert_eq!(cluster["metadata"]["namespace"], "team-a");
}

#[test]
fn a_team_instance_outside_its_namespace_is_refused_naming_each_object() {
    let (code, _, stderr) = render(
        &builtin("datalayer-ray"),
        &[TEAM, &["--set", "api.namespace=elsewhere"]].concat(),
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "Deployment/elsewhere/datalayer-ray does not belong in a team instance of namespace team-a"
        ),
        "{stderr}"
    );
    // The value that put it there, with where it came from.
    assert!(
        stderr.contains("api.namespace is `elsewhere` (--set api.namespace=elsewhere)"),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was sent to a cluster"), "{stderr}");
}

#[test]
fn a_platform_namespace_or_a_bundle_without_instances_cannot_take_minus_n() {
    let (code, _, stderr) = render(&builtin("datalayer-ray"), &["-n", "ray-system"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("-n ray-system names a namespace of the platform release"),
        "{stderr}"
    );
    let minimal = Fixture::addon("minimal");
    let out = minimal
        .template(&["--profile", "dev", "-n", "team-a"])
        .env("RUN_URL", "https://minimal.example")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("bundle minimal has no team instance"),
        "{}",
        text(&out.stderr)
    );
}

/// The check holds the bundle, not one render: a team component with a hard-coded
/// cluster-scoped name is refused even when the platform is rendered, before any team tries.
#[test]
fn a_bundle_whose_team_instances_would_share_a_cluster_scoped_object_is_refused() {
    let fixture = builtin("datalayer-ray").with_file(
        "components/api/shared.yaml.tera",
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: datalayer-ray-shared\nrules: []\n",
    );
    for args in [&[][..], TEAM] {
        let (code, objects, stderr) = render(&fixture, args);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(objects.is_empty());
        assert!(
            stderr.contains("ClusterRole/datalayer-ray-shared does not belong in a team instance"),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn a_bundle_whose_team_instances_would_serve_one_route_is_refused() {
    let fixture = builtin("datalayer-ray").patch_file(
        "components/api/ingress.yaml.tera",
        "{% set host = instance.namespace ~ \".\" ~ values.global.runHost %}",
        "{% set host = values.global.runHost %}",
    );
    for args in [&[][..], TEAM] {
        let (code, _, stderr) = render(&fixture, args);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("two team instances of datalayer-ray would serve the same route ray.localtest.me/api/ray"),
            "{args:?}: {stderr}"
        );
    }
    // The bundle as shipped gives each instance its own host.
    assert_eq!(render(&builtin("datalayer-ray"), TEAM).0, Some(0));
}

/// `plane <command> -n <namespace>`, with `--kubeconfig` for the commands that connect.
fn run(command: &[&str], namespace: &str, kubeconfig: &str) -> std::process::Output {
    let mut cmd = common::plane();
    cmd.args(command).arg(format!("--namespace={namespace}"));
    if command[0] != "template" {
        cmd.args(["--kubeconfig", kubeconfig]);
    }
    cmd.output().unwrap()
}

/// `-n` is checked the same way by every command that takes it, before any request: an
/// invalid or empty name is exit 2 (the kubeconfig names a closed port, so a request would
/// have failed with exit 1), and a team instance never names Kubernetes' own namespaces or the
/// state namespace.
#[test]
fn every_command_checks_its_namespace_before_any_request() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:1'}\ncontexts:\n- name: c\n  context: {cluster: c, user: u}\nusers:\n- name: u\n  user: {token: t}\n",
    )
    .unwrap();
    let kubeconfig = kubeconfig.to_str().unwrap();
    let commands: [&[&str]; 8] = [
        &["template", "datalayer-ray", "--profile", "local"],
        &["diff", "datalayer-ray", "--profile", "local"],
        &["up", "datalayer-ray", "--profile", "local"],
        &["down", "datalayer-ray"],
        &["history", "datalayer-ray"],
        &["rollback", "datalayer-ray"],
        &["status"],
        &["ls"],
    ];
    let long = "n".repeat(54);
    for command in commands {
        for (namespace, why) in [
            ("", "it is empty"),
            ("Team_A", "not a DNS-1123 label"),
            ("-team", "not a DNS-1123 label"),
            (long.as_str(), "more than 53"),
        ] {
            let out = run(command, namespace, kubeconfig);
            let stderr = text(&out.stderr);
            assert_eq!(
                out.status.code(),
                Some(2),
                "{command:?} -n {namespace:?}: {stderr}"
            );
            assert!(
                stderr.contains("for '--namespace <NAMESPACE>'") && stderr.contains(why),
                "{command:?} -n {namespace:?}: {stderr}"
            );
        }
    }
    // What no team instance may name, refused by every command that renders or changes one
    // (`history`, `status` and `ls` only read).
    for command in commands
        .iter()
        .filter(|c| !matches!(c[0], "history" | "status" | "ls"))
    {
        for namespace in [
            "kube-system",
            "kube-public",
            "kube-node-lease",
            "plane-system",
        ] {
            let out = run(command, namespace, kubeconfig);
            let stderr = text(&out.stderr);
            assert_eq!(
                out.status.code(),
                Some(2),
                "{command:?} -n {namespace}: {stderr}"
            );
            assert!(
                stderr.contains(&format!(
                    "a team instance may not go into namespace {namespace}; nothing was sent to the cluster"
                )),
                "{command:?} -n {namespace}: {stderr}"
            );
        }
    }
}
