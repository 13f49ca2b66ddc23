//! One profile's work in a child process of plane itself: today's command, unchanged, on the
//! profile's cluster, with its own connection, lock and record; its output kept whole, its
//! stderr shown line by line, and what it came to reported back in a file.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Stdio;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

use crate::error::{Error, Problem};
use crate::ui::ProfileLine;

/// The variable that tells a command run by a fleet where to write what it came to.
const REPORT: &str = "PLANE_FLEET_REPORT";

/// How a profile's run ended.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Its exit code; `None` when a signal ended it.
    pub code: Option<i32>,
    /// What it printed on stdout, whole.
    pub stdout: String,
    /// Its first error line (`error: ...`), if any.
    pub error: Option<String>,
    /// What the command reported through [`report`].
    pub report: Option<Value>,
}

impl Outcome {
    pub fn succeeded(&self) -> bool {
        matches!(self.code, Some(0 | 3))
    }
}

/// Runs plane with `args` and the fleet's report file, stdin closed (a profile never asks a
/// question), its stderr lines passed to `line` as they come.
///
/// # Errors
/// Plane cannot be started again (its own executable is gone).
pub async fn run(args: &[OsString], line: &ProfileLine) -> Result<Outcome, Error> {
    let exe = std::env::current_exe()
        .map_err(|err| Error::failed("cannot find plane's own executable", &err))?;
    let report_path = report_file()?;
    let mut child = tokio::process::Command::new(exe)
        .args(args)
        .env(REPORT, &report_path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(false)
        .spawn()
        .map_err(|err| Error::failed("cannot start plane for a profile", &err))?;
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    let read_out = async {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text).await;
        text
    };
    let read_err = async {
        let mut lines = BufReader::new(stderr).lines();
        let mut error = None;
        let mut in_error = false;
        while let Ok(Some(text)) = lines.next_line().await {
            let starts_error = text.starts_with("error:");
            // An error's `-->`, `=` and hint lines follow it, indented.
            in_error = starts_error || (in_error && text.starts_with("  "));
            if starts_error && error.is_none() {
                error = Some(text.trim_start_matches("error:").trim().to_owned());
            }
            line.line(&text, in_error || text.starts_with("warning:"));
        }
        error
    };
    let (stdout, error, status) = tokio::join!(read_out, read_err, child.wait());
    let status = status.map_err(|err| Error::failed("cannot wait for a profile's plane", &err))?;
    let report = std::fs::read(&report_path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    let _ = std::fs::remove_file(&report_path);
    Ok(Outcome {
        code: status.code(),
        stdout,
        error,
        report,
    })
}

/// A new, empty file of this process's own for a child's report: created here, never one that
/// was already there (another user's link in the temporary folder).
fn report_file() -> Result<PathBuf, Error> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut last = None;
    for _ in 0..8 {
        let mut random = [0u8; 8];
        let _ = getrandom::fill(&mut random);
        let path = std::env::temp_dir().join(format!(
            "plane-fleet-{}-{}-{:016x}.json",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            u64::from_le_bytes(random)
        ));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(_) => return Ok(path),
            Err(err) => last = Some(err),
        }
    }
    Err(Error::failed(
        "cannot create a file for a profile's report",
        &last.map_or_else(|| "no attempt".to_owned(), |e| e.to_string()),
    ))
}

/// In a command a fleet runs, writes what it came to for the fleet to read (nothing otherwise).
pub fn report(value: &Value) {
    let Some(path) = std::env::var_os(REPORT) else {
        return;
    };
    // The fleet reads a missing report as "nothing reported"; a failed write is just that.
    let _ = std::fs::write(path, value.to_string());
}

/// The child's command line: the parent's own arguments without the fleet's selection (and
/// without the flags `drop_output` names), then `extra`.
pub fn child_args(own: &[OsString], drop_output: bool, extra: &[String]) -> Vec<OsString> {
    /// Fleet flags that take a value.
    const WITH_VALUE: &[&str] = &["--profiles", "--fleet", "--parallel", "--canary", "--soak"];
    /// Fleet flags alone.
    const ALONE: &[&str] = &["--all-profiles", "--expect-same"];
    let mut args = Vec::new();
    let mut skip_next = false;
    let mut positional_only = false;
    for arg in own {
        if skip_next {
            skip_next = false;
            continue;
        }
        let text = arg.to_string_lossy();
        if positional_only {
            args.push(arg.clone());
            continue;
        }
        if text == "--" {
            positional_only = true;
            args.push(arg.clone());
            continue;
        }
        let flag = text.split('=').next().unwrap_or_default();
        let drops_value =
            WITH_VALUE.contains(&flag) || (drop_output && (flag == "--output" || text == "-o"));
        if drops_value {
            skip_next = !text.contains('=');
            continue;
        }
        if ALONE.contains(&text.as_ref())
            || (drop_output && text.starts_with("-o") && !text.starts_with("--"))
        {
            continue;
        }
        args.push(arg.clone());
    }
    // Flags go before a `--`, whose arguments are positional.
    let at = args.iter().position(|a| a == "--").unwrap_or(args.len());
    for (i, extra) in extra.iter().enumerate() {
        args.insert(at + i, OsString::from(extra));
    }
    args
}

/// A profile's run could not start: said as its failure.
pub fn not_started(err: &Error) -> Outcome {
    Outcome {
        code: Some(1),
        error: err
            .problems()
            .first()
            .map(|p| p.parts().what.clone())
            .or_else(|| Some(Problem::new("cannot start").parts().what.clone())),
        ..Outcome::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &[&str]) -> Vec<OsString> {
        text.iter().map(OsString::from).collect()
    }

    #[test]
    fn the_fleet_s_own_flags_are_taken_out() {
        let own = args(&[
            "diff",
            "addon-a",
            "--profiles",
            "a,b",
            "--parallel=2",
            "--exit-code",
            "--all-profiles",
            "--profiles-dir",
            "p",
            "-o",
            "json",
        ]);
        assert_eq!(
            child_args(&own, false, &["--profile".into(), "a".into()]),
            args(&[
                "diff",
                "addon-a",
                "--exit-code",
                "--profiles-dir",
                "p",
                "-o",
                "json",
                "--profile",
                "a"
            ])
        );
        assert_eq!(
            child_args(&own, true, &[]),
            args(&["diff", "addon-a", "--exit-code", "--profiles-dir", "p"])
        );
        let dashed = args(&["up", "x", "--fleet", "f.yaml", "--", "--soak"]);
        assert_eq!(
            child_args(&dashed, false, &["--context".into(), "c".into()]),
            args(&["up", "x", "--context", "c", "--", "--soak"])
        );
    }
}
