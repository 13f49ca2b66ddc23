//! Bad input to the flags of the fleet, `images`, `ls --exit-code`, `version` and `completion`:
//! each is refused with exit 2 before any cluster is reached (the kubeconfig names a server
//! nobody answers), on every command that takes it, and never echoes a secret it was given.

mod common;

use common::text;

/// A kubeconfig whose server would fail any request: a refusal here proves none was needed.
fn unreachable_kubeconfig(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n\
         users: [{name: u, user: {token: t}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\n\
         current-context: c\n",
    )
    .unwrap();
    path
}

const PASSWORD: &str = "hunter2-fleet";

/// Refused with the URL input carrying credentials, which plane registers as a secret (and
/// refuses in a URL): never echoed.
fn refused(args: &[&str], kubeconfig: &std::path::Path) -> String {
    refused_with(
        args,
        kubeconfig,
        &format!("https://admin:{PASSWORD}@ray.example.com"),
    )
}

fn refused_with(args: &[&str], kubeconfig: &std::path::Path, url: &str) -> String {
    let mut cmd = common::plane();
    cmd.args(args)
        .env("KUBECONFIG", kubeconfig)
        .env("DATALAYER_RUN_URL", url);
    let out = cmd.output().expect("plane runs");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(
        !stderr.contains(PASSWORD),
        "a secret was echoed: {args:?}: {stderr}"
    );
    assert!(out.stdout.is_empty(), "{args:?}");
    assert!(
        !stderr.contains("127.0.0.1:1"),
        "no connection was tried: {args:?}: {stderr}"
    );
    stderr
}

#[test]
fn fleet_flags_are_refused_when_invalid_empty_or_in_conflict_on_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let kc = unreachable_kubeconfig(dir.path());
    let commands: [&[&str]; 4] = [
        &["diff", "datalayer-ray"],
        &["up", "datalayer-ray", "--yes"],
        &["ls"],
        &["status"],
    ];
    let bad: [&[&str]; 9] = [
        &["--profiles", ""],
        &["--profiles", "Not_A_Name"],
        &["--profiles", "local,local"],
        &["--profiles", "nope"],
        &["--profiles", "local", "--all-profiles"],
        &["--all-profiles", "--fleet", "fleet.yaml"],
        &["--profiles", "local", "--parallel", "0"],
        &["--profiles", "local", "--parallel", "65"],
        &["--profiles", "local", "--context", "c"],
    ];
    for command in commands {
        for flags in bad {
            refused(&[command, flags].concat(), &kc);
        }
        // --parallel means nothing without a fleet: refused, not ignored.
        let stderr = refused(&[command, &["--parallel", "2"]].concat(), &kc);
        assert!(stderr.contains("only applies to a fleet"), "{stderr}");
    }
    for render in [
        &["diff", "datalayer-ray"][..],
        &["up", "datalayer-ray", "--yes"],
    ] {
        refused(
            &[render, &["--profiles", "local", "--profile", "prod1"]].concat(),
            &kc,
        );
    }
    // up's own: the canary, the soak, and each without a fleet.
    let up = ["up", "datalayer-ray", "--yes"];
    for flags in [
        &["--profiles", "local", "--canary", "nope"][..],
        &["--profiles", "local", "--canary", ""],
        &["--fleet", "fleet.yaml", "--canary", "local"],
        &["--profiles", "local", "--soak", "soon"],
        &["--profiles", "local", "--soak", ""],
        &["--canary", "local"],
        &["--soak", "5m"],
    ] {
        refused(&[&up[..], flags].concat(), &kc);
    }
    let stderr = refused(&["ls", "--expect-same"], &kc);
    assert!(
        stderr.contains("--expect-same only applies to a fleet"),
        "{stderr}"
    );
    refused(&["ls", "--exit-code=yes"], &kc);
}

#[test]
fn a_fleet_file_is_checked_before_any_request() {
    let dir = tempfile::tempdir().unwrap();
    let kc = unreachable_kubeconfig(dir.path());
    for (text, expected) in [
        ("", "invalid fleet file"),
        ("waves: []\n", "at least one wave"),
        ("waves: [{profiles: []}]\n", "at least one profile"),
        ("parallel: 0\nwaves: [{profiles: [local]}]\n", "parallel: 0"),
        (
            "soak: later\nwaves: [{profiles: [local]}]\n",
            "not a duration",
        ),
        ("waves: [{profiles: [nope]}]\n", "unknown profile `nope`"),
        (
            "waves: [{profiles: [local]}]\nwaves: [{profiles: [prod1]}]\n",
            "duplicate",
        ),
    ] {
        let fleet = dir.path().join("fleet.yaml");
        std::fs::write(&fleet, text).unwrap();
        let stderr = refused(
            &["diff", "datalayer-ray", "--fleet", fleet.to_str().unwrap()],
            &kc,
        );
        assert!(stderr.contains(expected), "{text:?}: {stderr}");
    }
    let missing = refused(
        &[
            "diff",
            "datalayer-ray",
            "--fleet",
            "/nonexistent/fleet.yaml",
        ],
        &kc,
    );
    assert!(missing.contains("cannot read the fleet file"), "{missing}");
}

#[test]
fn images_version_and_completion_refuse_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let kc = unreachable_kubeconfig(dir.path());
    for args in [
        &[
            "images",
            "datalayer-ray",
            "--all-profiles",
            "--profile",
            "local",
        ][..],
        &["images", "datalayer-ray", "-o", "yaml"],
        &["images", "nope"],
        &["images", "datalayer-ray", "--profile", "nope"],
        &["images"],
        &["version", "-o", "toml"],
        &["completion"],
        &["completion", "tcsh"],
        &["completion", ""],
    ] {
        refused(args, &kc);
    }
    // A mirror that is not a registry, named at its profile line.
    let profile = dir.path().join("airgap.yaml");
    std::fs::write(
        &profile,
        "env:\n  DATALAYER_RUN_URL: https://ray.example.com\nregistryMirrors:\n  docker.io: https://registry.corp/hub\n",
    )
    .unwrap();
    let plain = "https://ray.example.com";
    let stderr = refused_with(
        &[
            "images",
            "datalayer-ray",
            "--profile",
            profile.to_str().unwrap(),
        ],
        &kc,
        plain,
    );
    assert!(
        stderr.contains("is not a registry") && stderr.contains("airgap.yaml:4"),
        "{stderr}"
    );
    // requireDigests must be a boolean.
    let stderr = refused_with(
        &[
            "template",
            "datalayer-ray",
            "--profile",
            "local",
            "--set",
            "global.requireDigests=maybe",
        ],
        &kc,
        plain,
    );
    assert!(stderr.contains("global.requireDigests"), "{stderr}");
}
