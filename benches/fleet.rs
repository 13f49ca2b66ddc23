//! Fleet benchmark: `plane diff --profiles r1,...,r8` over eight regions against eight separate
//! `plane diff --profile rN` runs one after the other, each region a test API server behind
//! 50 ms of latency per request, datalayer-ray with the `local` profile's values pinned to the
//! region's context. The fleet runs its regions at once (up to 8 for reads), so its time should
//! stay near one region's, far from eight.
//!
//! Run: `cargo bench --bench fleet` (`FLEET_BENCH_RUNS=N`, default 3; the median is shown).
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a harness-less benchmark reports on the terminal"
)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use plane_test_apiserver::{Config, FaultRule, TestServer, merged_kubeconfig};

const REGIONS: usize = 8;
const LATENCY_MS: u64 = 50;

fn main() {
    let runs = std::env::var("FLEET_BENCH_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or(3);
    let work = tempfile::tempdir().expect("temp dir");
    let servers: Vec<TestServer> = (0..REGIONS)
        .map(|_| {
            let server = TestServer::start(Config::default());
            server.add_fault(FaultRule::latency("*", LATENCY_MS, 0));
            server
        })
        .collect();
    let names: Vec<String> = (1..=REGIONS).map(|i| format!("r{i}")).collect();
    let kubeconfig = work.path().join("kubeconfig");
    let contexts: Vec<(&str, &Path)> = names
        .iter()
        .map(String::as_str)
        .zip(servers.iter().map(TestServer::kubeconfig_path))
        .collect();
    std::fs::write(&kubeconfig, merged_kubeconfig(&contexts)).expect("kubeconfig");
    let profiles = work.path().join("profiles");
    std::fs::create_dir_all(&profiles).expect("profiles");
    let local =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles/local.yaml"))
            .expect("profiles/local.yaml");
    for name in &names {
        std::fs::write(
            profiles.join(format!("{name}.yaml")),
            format!("{local}\ncluster: {{context: {name}}}\n"),
        )
        .expect("a profile");
    }
    let plane = env!("CARGO_BIN_EXE_plane");
    let base = |cmd: &mut Command| {
        cmd.args(["diff", "datalayer-ray", "--kubeconfig"])
            .arg(&kubeconfig)
            .arg("--profiles-dir")
            .arg(&profiles)
            .env_remove("KUBECONFIG")
            .env_remove("DATALAYER_RUN_URL");
    };
    let one = |name: &str| {
        let mut cmd = Command::new(plane);
        base(&mut cmd);
        cmd.args(["--profile", name, "--context", name]);
        timed(cmd)
    };
    let fleet = || {
        let mut cmd = Command::new(plane);
        base(&mut cmd);
        cmd.args(["--profiles", &names.join(",")]);
        timed(cmd)
    };
    let mut single = Vec::new();
    let mut sequential = Vec::new();
    let mut fleets = Vec::new();
    for _ in 0..runs {
        let each: Vec<Duration> = names.iter().map(|n| one(n)).collect();
        single.push(each[0]);
        sequential.push(each.iter().sum());
        fleets.push(fleet());
    }
    let (one_region, eight_in_a_row, fleet) = (
        median(&mut single),
        median(&mut sequential),
        median(&mut fleets),
    );
    println!(
        "plane diff datalayer-ray, {REGIONS} regions at {LATENCY_MS} ms per request (median of {runs}):"
    );
    println!(
        "  one region (--profile r1):          {:>7.2} s",
        one_region.as_secs_f64()
    );
    println!(
        "  {REGIONS} regions one after the other:     {:>7.2} s",
        eight_in_a_row.as_secs_f64()
    );
    println!(
        "  {REGIONS} regions as a fleet (--profiles): {:>7.2} s = {:.1} × one region",
        fleet.as_secs_f64(),
        fleet.as_secs_f64() / one_region.as_secs_f64()
    );
}

/// Runs `cmd` to its end; its wall-clock time. A failed diff fails the bench.
fn timed(mut cmd: Command) -> Duration {
    let start = Instant::now();
    let out = cmd.output().expect("plane runs");
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "{:?}: {}",
        cmd,
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}
