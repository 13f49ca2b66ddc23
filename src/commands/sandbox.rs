//! The render of a bundle runs in a child process of plane with its render budgets enforced by the
//! operating system: a bundle is untrusted input, and whatever its templates do (loop for ever,
//! allocate gigabytes, recurse until the stack overflows, crash Tera) ends as a named exit 2 of
//! the command, never as a hang, an abort or a machine out of memory.
//!
//! The child is plane itself, run again with the same arguments and `PLANE_RENDER_CHILD` set: it
//! caps its address space and CPU time (setrlimit), renders on a thread with the stack budget, and
//! writes lines to its stdout — `template <name>` before each template, then `result <json>` with
//! the render (or its problems) and the secrets it learnt. The parent enforces the wall time and
//! the output size, and names the template the child was rendering when it died.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::bundle::{RenderBudget, Rendered};
use crate::error::{Error, Problem};
use crate::settings::RenderSettings;

/// Set in the child's environment: render, report, exit.
pub const CHILD: &str = "PLANE_RENDER_CHILD";

/// What the child reports at its end.
#[derive(Debug, Serialize, Deserialize)]
struct Report {
    rendered: Option<Rendered>,
    problems: Vec<Problem>,
    /// Every form of every secret the render learnt, for the parent to mask too.
    secrets: Vec<String>,
}

/// Whether this process is a render child.
pub fn is_child() -> bool {
    std::env::var_os(CHILD).is_some()
}

/// Loads the bundle, layers its values and renders it, in a child process under the render
/// budgets; for a bundle with team instances, also checks that two of them never collide.
///
/// # Errors
/// Input errors from the arguments and from every step, each naming its origin; a budget the
/// render went over; a child that died, naming the template it was rendering.
pub fn render(settings: &RenderSettings) -> Result<Rendered, Error> {
    if is_child() {
        return super::render::render_here(settings, Some(&report_template));
    }
    render_in_child(settings)
}

/// In a render child: reports each template to the parent as it starts.
fn report_template(name: &str) {
    let _ = crate::ui::child_protocol(format!("template {name}").as_bytes());
}

/// Renders in a child process under `settings`' budget.
fn render_in_child(settings: &RenderSettings) -> Result<Rendered, Error> {
    let budget = settings.budget;
    let program = std::env::current_exe()
        .map_err(|err| Error::failed("cannot find plane's own executable to render in", &err))?;
    let mut child = Command::new(program)
        .args(std::env::args_os().skip(1))
        .env(CHILD, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| Error::failed("cannot start the render process", &err))?;
    let stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    // The child's report can be larger than what templates print (it is JSON of the objects), so
    // its cap is twice the output budget and then some.
    let cap = budget.output.saturating_mul(2).saturating_add(16 << 20);
    let (lines, received) = mpsc::channel::<Line>();
    std::thread::spawn(move || read_lines(stdout, cap, &lines));
    // The child's stderr: its first 64 KiB kept (a crash's message), the rest drained so that a
    // chatty child never blocks on a full pipe.
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = (&mut stderr).take(64 * 1024).read_to_string(&mut text);
        let _ = std::io::copy(&mut stderr, &mut std::io::sink());
        text
    });
    let deadline = Instant::now() + budget.time;
    let mut template = None;
    let mut report = None;
    let ended = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match received.recv_timeout(left.max(Duration::from_millis(1))) {
            Ok(Line::Template(name)) => template = Some(name),
            Ok(Line::Result(json)) => report = Some(json),
            Ok(Line::TooLarge) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(over(
                    "output",
                    template.as_deref(),
                    format!(
                        "the render's objects came to more than {} (twice the output budget)",
                        crate::files::size(cap)
                    ),
                    &budget,
                ));
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break child.wait(),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(over(
                    "time",
                    template.as_deref(),
                    format!(
                        "the render ran for more than {}",
                        humantime::format_duration(budget.time)
                    ),
                    &budget,
                ));
            }
        }
    };
    let status = ended.map_err(|err| Error::failed("cannot wait for the render process", &err))?;
    let stderr = errors.join().unwrap_or_default();
    let Some(json) = report else {
        return Err(died(status, template.as_deref(), &stderr, &budget));
    };
    let report: Report = serde_json::from_str(&json)
        .map_err(|err| Error::failed("the render process's report is unreadable", &err))?;
    crate::redact::adopt(report.secrets);
    match report.rendered {
        Some(rendered) if report.problems.is_empty() => Ok(rendered),
        _ => Err(Error::Input {
            problems: report.problems,
        }),
    }
}

/// A line of the child's protocol.
enum Line {
    Template(String),
    Result(String),
    TooLarge,
}

/// Reads the child's lines, at most `cap` bytes in all.
fn read_lines(stdout: std::process::ChildStdout, cap: u64, lines: &mpsc::Sender<Line>) {
    let mut reader = BufReader::new(stdout.take(cap + 1));
    let mut read: u64 = 0;
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(n) => read += n as u64,
        }
        if read > cap {
            let _ = lines.send(Line::TooLarge);
            return;
        }
        let text = line.trim_end_matches('\n');
        let sent = if let Some(name) = text.strip_prefix("template ") {
            lines.send(Line::Template(name.to_owned()))
        } else if let Some(json) = text.strip_prefix("result ") {
            lines.send(Line::Result(json.to_owned()))
        } else {
            Ok(())
        };
        if sent.is_err() {
            return;
        }
    }
}

/// A budget the render went over, naming the template it was on.
fn over(name: &str, template: Option<&str>, why: String, budget: &RenderBudget) -> Error {
    let mut problem = Problem::new(format!("the render went over its {name} budget"))
        .because(why)
        .hint(format!(
            "a bundle that needs more: --budget {name}=VALUE (budgets now: {budget})"
        ));
    if let Some(template) = template {
        problem = problem.at(template.to_owned());
    }
    Error::input(problem)
}

/// A child that ended without its report: killed by a signal (its stack or address space ran
/// out), or exited early.
fn died(
    status: std::process::ExitStatus,
    template: Option<&str>,
    stderr: &str,
    budget: &RenderBudget,
) -> Error {
    use std::os::unix::process::ExitStatusExt as _;
    let why = match status.signal() {
        // SIGSEGV and SIGABRT: Rust aborts on a stack overflow; the stack budget bounds recursion.
        Some(11 | 6) if stderr.contains("stack overflow") || status.signal() == Some(11) => {
            return over(
                "stack",
                template,
                format!(
                    "the templates recursed deeper than a stack of {} holds (a macro or include \
                     that calls itself without end?)",
                    crate::files::size(budget.stack)
                ),
                budget,
            );
        }
        Some(6) if stderr.contains("memory allocation") => {
            return over(
                "memory",
                template,
                format!(
                    "the render needed more than {} of memory",
                    crate::files::size(budget.memory)
                ),
                budget,
            );
        }
        // SIGXCPU: its CPU time ran out.
        Some(24) => {
            return over(
                "time",
                template,
                "the render used up its CPU time".into(),
                budget,
            );
        }
        Some(signal) => format!("the render process was killed by signal {signal}"),
        None => format!(
            "the render process ended ({status}) without a report{}",
            stderr
                .lines()
                .next()
                .map(|l| format!(": {l}"))
                .unwrap_or_default()
        ),
    };
    let mut problem = Problem::new("the render failed").because(why);
    if let Some(template) = template {
        problem = problem.at(template.to_owned());
    }
    Error::input(problem)
}

/// The child's work: cap the process, render on a thread with the stack budget, report.
/// Returns the exit code of the child.
pub fn child(settings: &RenderSettings) -> std::process::ExitCode {
    let budget = settings.budget;
    // The address space, then the CPU time (a second more than the wall time the parent
    // allows, so the parent's deadline speaks first).
    let _ = rlimit::setrlimit(rlimit::Resource::AS, budget.memory, budget.memory);
    let cpu = budget.time.as_secs().saturating_add(1);
    let _ = rlimit::setrlimit(rlimit::Resource::CPU, cpu, cpu.saturating_add(1));
    let stack = usize::try_from(budget.stack).unwrap_or(usize::MAX);
    let rendered = std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("render".into())
            .stack_size(stack)
            .spawn_scoped(scope, || {
                super::render::render_here(settings, Some(&report_template))
            })
            .map(std::thread::ScopedJoinHandle::join)
    });
    let report = match rendered {
        Ok(Ok(Ok(rendered))) => Report {
            rendered: Some(rendered),
            problems: Vec::new(),
            secrets: crate::redact::registered(),
        },
        Ok(Ok(Err(err))) => Report {
            rendered: None,
            problems: err.problems().to_vec(),
            secrets: crate::redact::registered(),
        },
        Ok(Err(_)) | Err(_) => Report {
            rendered: None,
            problems: vec![Problem::new("the render failed").because("its thread did not finish")],
            secrets: crate::redact::registered(),
        },
    };
    let line = serde_json::to_string(&report).unwrap_or_default();
    match crate::ui::child_protocol(format!("result {line}").as_bytes()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(_) => std::process::ExitCode::from(1),
    }
}
