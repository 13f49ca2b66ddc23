//! The one gateway to the terminal: data on stdout, status and errors on stderr.
//!
//! Nothing here uses `eprintln!`, which panics when stderr is closed: every line goes through
//! [`to_stderr`].

pub mod diff;
mod fleet;
mod format;
mod progress;
pub mod releases;
pub mod status;
mod table;

use std::io::{IsTerminal, Write};

use anstyle::{AnsiColor, Style};

pub use fleet::{FleetLines, ProfileLine};
pub use format::to_format;
pub use progress::Progress;
pub use table::Table;

use crate::cli::{ColorChoice, GlobalArgs};
use crate::error::Error;

/// Prints for every command, built once from the global flags and the terminal.
#[derive(Debug, Clone)]
pub struct Printer {
    quiet: bool,
    verbose: bool,
    color: bool,
    color_stdout: bool,
    no_progress: bool,
}

impl Printer {
    pub fn new(global: &GlobalArgs) -> Self {
        let color = match global.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
            }
        };
        let color_stdout = match global.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
            }
        };
        Self {
            quiet: global.quiet,
            verbose: global.verbose,
            color,
            color_stdout,
            no_progress: global.no_progress,
        }
    }

    /// Whether data on stdout may be coloured (a terminal, or --color always).
    pub fn color_stdout(&self) -> bool {
        self.color_stdout
    }

    /// Whether stdin and stderr are a terminal, so a question can be asked.
    pub fn interactive(&self) -> bool {
        std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
    }

    /// A progress reporter: bars on a terminal, plain timestamped lines otherwise.
    pub fn progress(&self) -> Progress {
        Progress::new(self.fancy(), self.quiet)
    }

    /// Whether progress may redraw lines: a terminal, without --no-progress or --verbose.
    fn fancy(&self) -> bool {
        !self.no_progress && !self.verbose && std::io::stderr().is_terminal()
    }

    /// A fleet's progress: a line per running profile on a terminal, prefixed lines otherwise.
    pub fn fleet(&self, profiles: &[String]) -> FleetLines {
        FleetLines::new(self.fancy(), self.quiet, profiles)
    }

    /// Asks a yes/no question on the terminal; `false` unless the user says yes.
    pub fn confirm(&self, question: &str) -> bool {
        dialoguer::Confirm::new()
            .with_prompt(crate::redact::mask(question))
            .default(false)
            .interact()
            .unwrap_or(false)
    }

    /// Writes data to stdout, secrets masked. A closed pipe (`plane template | head`) is not an
    /// error.
    pub fn data(&self, text: &str) {
        let text = crate::redact::mask(text);
        let mut out = std::io::stdout().lock();
        let result = out.write_all(text.as_bytes()).and_then(|()| out.flush());
        if let Err(err) = result
            && err.kind() != std::io::ErrorKind::BrokenPipe
        {
            to_stderr(&format!("error: cannot write to stdout: {err}\n"));
        }
    }

    /// A status line on stderr, unless `--quiet`.
    pub fn status(&self, text: &str) {
        if !self.quiet {
            to_stderr(&format!("{text}\n"));
        }
    }

    /// A warning on stderr, unless `--quiet`.
    pub fn warn(&self, text: &str) {
        if !self.quiet {
            to_stderr(&format!(
                "{}: {text}\n",
                self.paint("warning", AnsiColor::Yellow)
            ));
        }
    }

    /// Renders an error: each problem as `error: what`, `--> where`, its causes and a hint.
    pub fn error(&self, err: &Error) {
        let problems = err.problems();
        let mut out = String::new();
        for problem in problems.iter().map(crate::error::Problem::parts) {
            out.push_str(&format!(
                "{}: {}\n",
                self.paint("error", AnsiColor::Red),
                problem.what
            ));
            if let Some(location) = &problem.location {
                out.push_str(&format!(
                    "  {} {location}\n",
                    self.paint("-->", AnsiColor::Blue)
                ));
            }
            for cause in &problem.causes {
                for (i, line) in cause.trim_end().lines().enumerate() {
                    let lead = if i == 0 { "  = " } else { "    " };
                    out.push_str(&format!("{lead}{line}\n"));
                }
            }
            if let Some(hint) = &problem.hint {
                out.push_str(&format!(
                    "  {}: {hint}\n",
                    self.paint("hint", AnsiColor::Cyan)
                ));
            }
        }
        if matches!(err, Error::Input { .. }) && problems.len() > 1 {
            out.push_str(&format!(
                "{} problems found; nothing was sent to a cluster\n",
                problems.len()
            ));
        }
        to_stderr(&out);
    }

    fn paint(&self, text: &str, color: AnsiColor) -> String {
        if self.color {
            let style = Style::new().fg_color(Some(color.into())).bold();
            format!("{style}{text}{style:#}")
        } else {
            text.to_owned()
        }
    }
}

/// Writes a line of the render child's protocol to stdout, for its parent process (plane
/// itself) and nobody else: unmasked, because it carries the rendered objects the parent applies.
/// A closed pipe ends the child's work, which the parent reports.
pub fn child_protocol(line: &[u8]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(line)?;
    out.write_all(b"\n")?;
    out.flush()
}

/// Writes to stderr, ignoring failure: a closed stderr (a pipe to `head` that went away, a CI log
/// that closed) must not turn a run into a panic. The exit code still says how it went.
///
/// Every line on stderr passes here, so secrets are masked here, once.
pub(crate) fn to_stderr(text: &str) {
    let text = crate::redact::mask(text);
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_bytes()).and_then(|()| err.flush());
}
