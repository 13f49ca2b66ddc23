//! Two regions, each a cluster of its own: `up --all-profiles` converges both, `ls --expect-same`
//! holds, and after one region is upgraded alone it reports the skew (exit 3).
//!
//! Live when `PLANE_E2E_KUBECONFIG` and `PLANE_E2E_KUBECONFIG_2` name two real control planes
//! (`shared/realcluster/start.sh` twice, with another `REALCLUSTER_ROOT` and ports); on two test
//! API servers otherwise.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::cluster::skipped;
use common::{Fixture, text, within};
use plane_test_apiserver::{Config, TestServer, merged_kubeconfig};

const LIMIT: Duration = Duration::from_secs(300);
const REGIONS: [&str; 2] = ["east", "west"];

/// The two clusters' kubeconfigs: the live pair, or two test servers kept alive with them.
fn clusters() -> (Vec<PathBuf>, Vec<TestServer>) {
    let live = [
        std::env::var_os("PLANE_E2E_KUBECONFIG"),
        std::env::var_os("PLANE_E2E_KUBECONFIG_2"),
    ];
    if let [Some(one), Some(two)] = &live
        && !one.is_empty()
        && !two.is_empty()
    {
        return (vec![PathBuf::from(one), PathBuf::from(two)], Vec::new());
    }
    if live[0].is_some() {
        skipped(
            "fleet",
            "the two-region journey on real control planes (PLANE_E2E_KUBECONFIG_2 is not set)",
        );
    }
    let servers: Vec<TestServer> = (0..2)
        .map(|_| TestServer::start(Config::default()))
        .collect();
    (
        servers
            .iter()
            .map(|s| s.kubeconfig_path().to_path_buf())
            .collect(),
        servers,
    )
}

fn plane(root: &Path, kubeconfig: &Path, args: &[&str]) -> std::process::Output {
    let mut cmd = common::plane();
    cmd.current_dir(root)
        .args(args)
        .arg("--kubeconfig")
        .arg(kubeconfig);
    within(cmd, LIMIT)
}

#[test]
fn two_regions_converge_and_a_lone_upgrade_shows_as_skew() {
    let (kubeconfigs, _servers) = clusters();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let contexts: Vec<(&str, &Path)> = REGIONS
        .iter()
        .copied()
        .zip(kubeconfigs.iter().map(PathBuf::as_path))
        .collect();
    std::fs::write(&kubeconfig, merged_kubeconfig(&contexts)).unwrap();
    let mut fixture = Fixture::addon("minimal");
    for name in REGIONS {
        fixture = fixture.with_root_file(
            &format!("regions/{name}.yaml"),
            &format!(
                "env:\n  RUN_URL: https://{name}.example.com\nvalues:\n  minimal:\n    web:\n      \
                 replicas: 1\ncluster: {{context: {name}}}\n"
            ),
        );
    }
    let root = fixture.root().to_path_buf();
    let addons = root.join("addons");
    let addons = addons.to_str().unwrap();
    // A profiles folder with the two regions alone, so that --all-profiles means both.
    let regions = root.join("regions");
    let regions = regions.to_str().unwrap();
    let release = ["--release", "fleet-minimal"];
    let up = |args: &[&str]| {
        let mut all = vec![
            "up",
            "minimal",
            "--addons-dir",
            addons,
            "--profiles-dir",
            regions,
            "--yes",
            "--timeout",
            "240s",
        ];
        all.extend(release);
        all.extend(args);
        plane(&root, &kubeconfig, &all)
    };
    let ls = || {
        plane(
            &root,
            &kubeconfig,
            &[
                "ls",
                "--all-profiles",
                "--profiles-dir",
                regions,
                "--expect-same",
            ],
        )
    };

    let both = up(&["--all-profiles"]);
    assert!(
        both.status.success(),
        "{}\n{}",
        text(&both.stdout),
        text(&both.stderr)
    );
    let summary = text(&both.stdout);
    assert_eq!(summary.matches("revision 1").count(), 2, "{summary}");

    let same = ls();
    assert_eq!(same.status.code(), Some(0), "{}", text(&same.stderr));
    assert_eq!(
        text(&same.stdout).matches(" 1.2.3 ").count(),
        2,
        "{}",
        text(&same.stdout)
    );

    // West alone moves to the bundle's next version.
    let manifest = fixture.addon_dir().join("addon.yaml");
    let bumped = std::fs::read_to_string(&manifest)
        .unwrap()
        .replace("version: 1.2.3", "version: 1.2.4");
    std::fs::write(&manifest, bumped).unwrap();
    let west = up(&["--profile", "west", "--context", "west"]);
    assert!(west.status.success(), "{}", text(&west.stderr));
    let skew = ls();
    let stderr = text(&skew.stderr);
    assert_eq!(
        skew.status.code(),
        Some(3),
        "{}\n{stderr}",
        text(&skew.stdout)
    );
    assert!(
        stderr.contains("1.2.3 in east") && stderr.contains("1.2.4 in west"),
        "{stderr}"
    );

    for name in REGIONS {
        let down = plane(
            &root,
            &kubeconfig,
            &["down", "fleet-minimal", "--context", name, "--yes"],
        );
        assert!(down.status.success(), "{name}: {}", text(&down.stderr));
    }
}
