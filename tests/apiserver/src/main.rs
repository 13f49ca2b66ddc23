//! `plane-test-apiserver`: runs the test server until killed, for manual use.

use plane_test_apiserver::{Config, TestServer};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "usage: plane-test-apiserver --kubeconfig FILE [--port N] [--token T] \
[--controller-step-ms N] [--crd-establish-ms N]

Serves a Kubernetes-API-compatible test server on 127.0.0.1 (a free port unless --port is
given), writes FILE once it is ready to serve, and runs until it is killed.";

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

fn parse(args: impl Iterator<Item = String>) -> Result<Config, ArgsError> {
    let mut config = Config::default();
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
            "-h" | "--help" => return Err(ArgsError::Help),
            _ => return Err(ArgsError::Unknown { arg }),
        }
    }
    config.kubeconfig = Some(kubeconfig.ok_or(ArgsError::MissingKubeconfig)?);
    Ok(config)
}

#[allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "the binary's only output: its address or why it cannot start"
)]
fn main() -> ExitCode {
    let config = match parse(std::env::args().skip(1)) {
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
    loop {
        std::thread::park();
    }
}
