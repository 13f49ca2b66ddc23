//! `plane-test-apiserver`: runs the test server until killed, for manual use.

use plane_test_apiserver::{Config, TestServer};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "usage: plane-test-apiserver --kubeconfig FILE [--port N] [--token T] \
[--controller-step-ms N] [--crd-establish-ms N] [--request-log FILE]

Serves a Kubernetes-API-compatible test server on 127.0.0.1 (a free port unless --port is
given), writes FILE once it is ready to serve, and runs until it is killed. With --request-log,
appends a line per request it answered (`METHOD path?query STATUS`), within 100 ms.";

/// Why the command line could not be used.
#[derive(Debug, thiserror::Error)]
enum ArgsError {
    #[error("missing --kubeconfig FILE")]
    MissingKubeconfig,
    #[error("{flag} needs a value")]
    MissingValue { flag: String },
    #[error("{flag}: not a number: {value}")]
    NotANumber { flag: String, value: String },
    #[error("unknown argument {arg}")]
    Unknown { arg: String },
    #[error("help requested")]
    Help,
}

fn parse(args: impl Iterator<Item = String>) -> Result<(Config, Option<PathBuf>), ArgsError> {
    let mut config = Config::default();
    let mut request_log = None;
    let mut kubeconfig = None;
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| {
            args.next().ok_or_else(|| ArgsError::MissingValue {
                flag: flag.to_owned(),
            })
        };
        let number = |flag: &str, v: String| {
            v.parse::<u64>().map_err(|_| ArgsError::NotANumber {
                flag: flag.to_owned(),
                value: v,
            })
        };
        match arg.as_str() {
            "--kubeconfig" => kubeconfig = Some(PathBuf::from(value("--kubeconfig")?)),
            "--port" => {
                let v = value("--port")?;
                let n = v.parse::<u16>().map_err(|_| ArgsError::NotANumber {
                    flag: arg.clone(),
                    value: v,
                })?;
                config.port = Some(n);
            }
            "--token" => config.token = value("--token")?,
            "--controller-step-ms" => {
                config.controller_step = Duration::from_millis(number(&arg, value(&arg)?)?);
            }
            "--crd-establish-ms" => {
                config.crd_establish_delay = Duration::from_millis(number(&arg, value(&arg)?)?);
            }
            "--request-log" => request_log = Some(PathBuf::from(value("--request-log")?)),
            "-h" | "--help" => return Err(ArgsError::Help),
            _ => return Err(ArgsError::Unknown { arg }),
        }
    }
    config.kubeconfig = Some(kubeconfig.ok_or(ArgsError::MissingKubeconfig)?);
    Ok((config, request_log))
}

#[allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "the binary's only output: its address or why it cannot start"
)]
fn main() -> ExitCode {
    let (config, request_log) = match parse(std::env::args().skip(1)) {
        Ok(c) => c,
        Err(ArgsError::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("error: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let server = match TestServer::try_start(config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    println!(
        "plane-test-apiserver serving {} (kubeconfig {})",
        server.url(),
        server.kubeconfig_path().display()
    );
    let Some(path) = request_log else {
        loop {
            std::thread::park();
        }
    };
    let mut written = 0;
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let requests = server.requests();
        let mut lines = String::new();
        for r in &requests[written.min(requests.len())..] {
            let query = if r.query.is_empty() {
                String::new()
            } else {
                format!("?{}", r.query)
            };
            let _ = writeln!(lines, "{} {}{query} {}", r.method, r.path, r.status);
        }
        written = requests.len();
        if !lines.is_empty() {
            let appended = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .and_then(|mut file| std::io::Write::write_all(&mut file, lines.as_bytes()));
            if let Err(e) = appended {
                eprintln!("error: cannot write {}: {e}", path.display());
                return ExitCode::from(1);
            }
        }
    }
}
