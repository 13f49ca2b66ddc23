//! The test server only: a wait that runs out, secret values kept out of the output, an image
//! pull failure (a fault only the test server injects), a profile pinned to another cluster
//! refused before any request, and a closed stderr; the lifecycle and the RayCluster's fail-fast
//! run on any cluster, in `cluster_lifecycle.rs`.

mod common;

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::{Fixture, LOCAL, builtin, status_within, text, within};
use plane_test_apiserver::{Config, FAIL_ANNOTATION, TestServer};

/// How long one plane run may take before the test fails instead of hanging.
const LIMIT: Duration = Duration::from_secs(120);

#[test]
fn a_wait_that_runs_out_lists_every_object_not_ready() {
    // Controllers that take a minute per step: nothing becomes ready within the timeout.
    let srv = TestServer::start(Config {
        controller_step: Duration::from_secs(60),
        ..Config::default()
    });
    let kc = srv.kubeconfig_path().to_path_buf();
    let fixture = Fixture::addon("minimal");
    let out = within(
        fixture.cluster("up", &kc, &["--profile", "dev", "--timeout", "2s"]),
        LIMIT,
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("timed out waiting for 1 object(s)"),
        "{stderr}"
    );
    assert!(stderr.contains("Deployment/minimal/web:"), "{stderr}");
}

#[test]
fn secret_values_never_appear_in_output() {
    let srv = TestServer::start(Config::default());
    let kc = srv.kubeconfig_path().to_path_buf();
    let fixture = Fixture::addon("minimal");
    let first = "first-secret-value-4f1c";
    let second = "second-secret-value-9d2e";
    let out = within(
        fixture.cluster(
            "up",
            &kc,
            &[
                "--profile",
                "dev",
                "-v",
                "--set",
                &format!("web.token={first}"),
            ],
        ),
        LIMIT,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let generated = srv
        .get_object("v1", "Secret", Some("minimal"), "generated")
        .expect("generated secret created");
    let password = generated["data"]["password"]
        .as_str()
        .expect("a generated password")
        .to_owned();

    let mut seen = String::new();
    for args in [
        vec!["diff", "--set"],
        vec!["diff", "-o", "json", "--set"],
        vec!["up", "-v", "--set"],
    ] {
        let (command, rest) = args.split_first().unwrap();
        let set = format!("web.token={second}");
        let all: Vec<&str> = [&["--profile", "dev"], rest, &[set.as_str()]].concat();
        let out = within(fixture.cluster(command, &kc, &all), LIMIT);
        assert!(out.status.success(), "{command}: {}", text(&out.stderr));
        seen.push_str(&text(&out.stdout));
        seen.push_str(&text(&out.stderr));
    }
    assert!(
        seen.contains("*** (before)") && seen.contains("*** (after)"),
        "the change is not shown masked:\n{seen}"
    );
    assert!(
        seen.contains("configure Secret/minimal/web-token"),
        "{seen}"
    );
    for secret in [first, second, password.as_str()] {
        assert!(!seen.contains(secret), "secret value printed:\n{seen}");
    }
    let decoded = String::from_utf8(STANDARD.decode(&password).expect("base64")).unwrap();
    assert!(!seen.contains(&decoded));
    // The generated secret keeps its value across runs.
    let again = srv
        .get_object("v1", "Secret", Some("minimal"), "generated")
        .unwrap();
    assert_eq!(again["data"]["password"], password.as_str());
}

#[test]
fn an_image_pull_failure_fails_fast_naming_the_pod() {
    let srv = TestServer::start(Config::default());
    let kc = srv.kubeconfig_path().to_path_buf();
    let fixture = builtin("datalayer-ray").patch_file(
        "components/api/deployment.yaml.tera",
        "  labels: {{ lbl }}\nspec:\n  replicas:",
        &format!(
            "  labels: {{{{ lbl }}}}\n  annotations: {{{FAIL_ANNOTATION}: ImagePullBackOff}}\nspec:\n  replicas:"
        ),
    );
    let started = Instant::now();
    let out = within(
        fixture.cluster("up", &kc, &[LOCAL, &["--timeout", "5m"]].concat()),
        LIMIT,
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(60), "not fail-fast");
    assert!(
        stderr.contains("Deployment/datalayer-api/datalayer-ray failed")
            && stderr.contains("ImagePullBackOff"),
        "{stderr}"
    );
}

#[test]
fn a_profile_pinned_to_another_cluster_is_refused_before_any_request() {
    let srv = TestServer::start(Config::default());
    let kc = srv.kubeconfig_path().to_path_buf();
    let fixture = Fixture::addon("minimal").with_root_file(
        "pinned.yaml",
        "description: pinned\nenv:\n  RUN_URL: https://dev.example.com\ncluster:\n  context: aks-r-eastus\n",
    );
    for command in ["diff", "up"] {
        let out = within(
            fixture.cluster(command, &kc, &["--profile", "pinned.yaml"]),
            LIMIT,
        );
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command}: {stderr}");
        assert!(
            stderr.contains("profile pinned may not touch this cluster")
                && stderr.contains("aks-r-eastus"),
            "{stderr}"
        );
    }
    assert!(
        srv.requests().is_empty(),
        "requests were sent: {:?}",
        srv.requests()
    );
}

/// A closed stderr (a pipe to `head` that went away, a CI log that closed) never panics: plane
/// ends with its normal exit code, for a run that succeeds and for one that fails.
#[test]
fn a_closed_stderr_never_panics() {
    let srv = TestServer::start(Config::default());
    let kc = srv.kubeconfig_path().to_path_buf();
    let fixture = builtin("datalayer-ray");
    let closed = || {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        writer
    };
    let cases: [(&str, std::process::Command, i32); 4] = [
        ("up", fixture.cluster("up", &kc, LOCAL), 0),
        ("no-op up", fixture.cluster("up", &kc, LOCAL), 0),
        (
            "diff with changes",
            fixture.cluster(
                "diff",
                &kc,
                &[LOCAL, &["--set", "api.replicas=3", "--exit-code"]].concat(),
            ),
            3,
        ),
        (
            "a bad value",
            fixture.template(&["--profile", "local", "--set", "api.replicas=many"]),
            2,
        ),
    ];
    for (name, mut cmd, code) in cases {
        cmd.stdout(std::process::Stdio::null()).stderr(closed());
        let status = status_within(cmd, LIMIT);
        assert_eq!(status.code(), Some(code), "{name}");
    }
    assert_eq!(
        srv.get_object("v1", "Namespace", None, "datalayer-api")
            .map(|_| ()),
        Some(()),
        "the up with a closed stderr did its work"
    );
}
