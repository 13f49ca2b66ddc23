//! `ls`, `ls -A` and `status` on the test server at 50 ms per request: requests, the longest
//! chain of requests that waited on each other, and wall time, with one team instance beside the
//! platform and with a hundred. The chains should not grow with the number of instances.

use std::time::{Duration, Instant};

use plane_test_apiserver::{Config, FaultRule, TestServer, critical_path};
use serde_json::json;

use super::{LATENCY_MS, Timing, check, plane};

/// Team instances beside the platform.
const TEAMS: [usize; 2] = [1, 100];
/// The commands that read releases.
const COMMANDS: [&[&str]; 3] = [&["ls"], &["ls", "-A"], &["status"]];

/// Measures and prints the table.
pub fn bench(runs: usize) {
    let mut out = format!(
        "\nreads on the test server at {LATENCY_MS} ms per request (median of {runs})\n\
         | command | team instances | requests | longest chain | ms |\n|---|---|---|---|---|\n"
    );
    for teams in TEAMS {
        let server = install(teams);
        let kubeconfig = server.kubeconfig_path().to_path_buf();
        server.add_fault(FaultRule::latency("*", LATENCY_MS, 0));
        for command in COMMANDS {
            let mut times = Vec::new();
            let mut counted = None;
            for _ in 0..runs {
                server.clear_requests();
                let started = Instant::now();
                let output = plane(command)
                    .args(["-o", "json", "--kubeconfig"])
                    .arg(&kubeconfig)
                    .output()
                    .expect("run plane");
                times.push(started.elapsed());
                check(output, &format!("plane {}", command.join(" ")));
                let requests = server.requests();
                counted.get_or_insert((requests.len(), critical_path(&requests)));
            }
            let (requests, chain) = counted.unwrap_or_default();
            let median: Duration = Timing::of(&times).median;
            out.push_str(&format!(
                "| `{}` | {teams} | {requests} | {chain} | {:.0} |\n",
                command.join(" "),
                median.as_secs_f64() * 1e3
            ));
        }
    }
    print!("{out}");
}

/// A test server with datalayer-ray installed and `teams` team instances beside it.
fn install(teams: usize) -> TestServer {
    let server = TestServer::start(Config::default());
    let kubeconfig = server.kubeconfig_path().to_path_buf();
    let up = |extra: &[&str]| {
        let output = plane(&["up", "datalayer-ray", "--profile", "local", "--no-wait"])
            .args(extra)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .output()
            .expect("run plane up");
        check(output, "plane up");
    };
    up(&[]);
    for i in 1..=teams {
        let namespace = format!("team-{i}");
        server
            .create_object(
                "bench",
                &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}),
            )
            .expect("a team namespace");
        up(&["-n", &namespace]);
    }
    server
}
