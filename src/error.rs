//! The error type every command returns, its problems, and the one mapping to exit codes.

use std::fmt;
use std::process::ExitCode;

/// One thing that is wrong, said the way a user can act on it: what, where, why and what next.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Problem {
    /// A lower-case phrase: what is wrong.
    pub what: String,
    /// Where: `file:line:col`, a values path with its origin, an environment variable, or an object.
    pub location: Option<String>,
    /// The cause chain, outermost first.
    pub causes: Vec<String>,
    /// What to do about it, when there is something to say.
    pub hint: Option<String>,
}

impl Problem {
    pub fn new(what: impl Into<String>) -> Self {
        Self {
            what: what.into(),
            location: None,
            causes: Vec::new(),
            hint: None,
        }
    }

    #[must_use]
    pub fn at(mut self, location: impl Into<String>) -> Self {
        self.location = Some(location.into());
        self
    }

    #[must_use]
    pub fn because(mut self, cause: impl Into<String>) -> Self {
        self.causes.push(cause.into());
        self
    }

    #[must_use]
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Adds a hint only when there is one.
    #[must_use]
    pub fn maybe_hint(mut self, hint: Option<String>) -> Self {
        if hint.is_some() {
            self.hint = hint;
        }
        self
    }
}

impl fmt::Display for Problem {
    /// One line: what (where): causes, with secrets masked and long values elided — the one
    /// way a problem becomes text, as [`Problem::parts`] is for the terminal.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = self.what.clone();
        if let Some(location) = &self.location {
            text.push_str(&format!(" ({location})"));
        }
        for cause in &self.causes {
            text.push_str(&format!(": {cause}"));
        }
        f.write_str(&shown(&text))
    }
}

impl Problem {
    /// What, where, each cause and the hint, each as it may be shown: secrets masked
    /// ([`crate::redact`]) and texts longer than [`SHOWN_MAX`] elided.
    pub fn parts(&self) -> ShownProblem {
        ShownProblem {
            what: shown(&self.what),
            location: self.location.as_deref().map(shown),
            causes: self.causes.iter().map(|c| shown(c)).collect(),
            hint: self.hint.as_deref().map(shown),
        }
    }
}

/// A [`Problem`] as it may be shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShownProblem {
    pub what: String,
    pub location: Option<String>,
    pub causes: Vec<String>,
    pub hint: Option<String>,
}

/// The longest text of a problem that is shown whole: a value a user passed can be megabytes
/// long, and its error must stay readable (and bounded) all the same.
pub const SHOWN_MAX: usize = 2048;

/// `text` as a message may show it: secrets masked, and when longer than [`SHOWN_MAX`] bytes,
/// its start and end with how much was left out.
pub fn shown(text: &str) -> String {
    let masked = crate::redact::mask(text);
    if masked.len() <= SHOWN_MAX {
        return masked.into_owned();
    }
    let head = floor_char_boundary(&masked, SHOWN_MAX * 3 / 4);
    let tail = ceil_char_boundary(&masked, masked.len() - SHOWN_MAX / 8);
    format!(
        "{}… ({} bytes left out) …{}",
        &masked[..head],
        tail - head,
        &masked[tail..]
    )
}

fn floor_char_boundary(text: &str, mut at: usize) -> usize {
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn ceil_char_boundary(text: &str, mut at: usize) -> usize {
    while !text.is_char_boundary(at) {
        at += 1;
    }
    at
}

/// Why a command did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input — flags, addon, profile, values, template, schema. Nothing was sent to a cluster.
    #[error("{} problem(s) in the input", problems.len())]
    Input { problems: Vec<Problem> },
    /// The operation itself failed.
    #[error("{problem}")]
    Failed { problem: Problem },
    /// Ctrl-C: new writes stopped, the release's phase was recorded.
    #[error("interrupted")]
    Interrupted { problem: Problem },
}

impl Error {
    pub fn input(problem: Problem) -> Self {
        Self::Input {
            problems: vec![problem],
        }
    }

    /// The operation failed: `what`, because of `why`.
    pub fn failed(what: impl Into<String>, why: &dyn std::fmt::Display) -> Self {
        Self::Failed {
            problem: Problem::new(what).because(why.to_string()),
        }
    }

    pub fn problems(&self) -> &[Problem] {
        match self {
            Self::Input { problems } => problems,
            Self::Failed { problem } | Self::Interrupted { problem } => {
                std::slice::from_ref(problem)
            }
        }
    }

    /// The only place an error becomes an exit code (README, "Exit codes").
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Self::Input { .. } => ExitCode::from(2),
            Self::Failed { .. } => ExitCode::from(1),
            Self::Interrupted { .. } => ExitCode::from(130),
        }
    }
}

/// How a command that did its job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Success,
    /// `diff --exit-code` found changes.
    Changes,
}

impl ExitStatus {
    pub fn exit_code(self) -> ExitCode {
        match self {
            Self::Success => ExitCode::SUCCESS,
            Self::Changes => ExitCode::from(3),
        }
    }
}

/// Collects problems so that a step can report all of them at once instead of the first.
#[derive(Debug, Clone, Default)]
pub struct Problems(Vec<Problem>);

impl Problems {
    pub fn push(&mut self, problem: Problem) {
        self.0.push(problem);
    }

    pub fn extend(&mut self, problems: impl IntoIterator<Item = Problem>) {
        self.0.extend(problems);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(())` when nothing was collected, otherwise an input error carrying every problem.
    pub fn into_result(self) -> Result<(), Error> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Error::Input { problems: self.0 })
        }
    }
}

/// The innermost message of an error's source chain: the cause itself, where libraries that wrap
/// errors (Tera, hyper) keep the useful text.
pub fn innermost(err: &dyn std::error::Error) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        message = inner.to_string();
        source = inner.source();
    }
    message
}

/// Suggests the closest of `candidates` to a misspelt `name`, if one is close enough.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    let best = candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(name, c), c))
        .min_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)))?;
    let limit = (name.chars().count() / 3).max(2);
    (best.0 <= limit).then(|| format!("did you mean `{}`?", best.1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(
            did_you_mean("r-eastsu", ["r-eastus", "prod1", "local"]).as_deref(),
            Some("did you mean `r-eastus`?")
        );
        assert_eq!(did_you_mean("zzzzzz", ["r-eastus", "prod1"]), None);
    }

    #[test]
    fn long_texts_are_elided_and_secrets_masked() {
        let long = format!("value `{}` is too long", "x".repeat(50_000_000 / 1000));
        let text = shown(&long);
        assert!(text.len() < SHOWN_MAX + 100, "{}", text.len());
        assert!(text.starts_with("value `xxx") && text.ends_with("` is too long"));
        assert!(text.contains("bytes left out"));
        let problem = Problem::new("bad URL").because("\"https://u:p4ss@h\": no");
        assert_eq!(problem.to_string(), "bad URL: \"https://***@h\": no");
        assert_eq!(problem.parts().causes, ["\"https://***@h\": no"]);
    }

    #[test]
    fn exit_codes_follow_the_documented_table() {
        assert_eq!(
            Error::input(Problem::new("x")).exit_code(),
            ExitCode::from(2)
        );
        assert_eq!(
            Error::Failed {
                problem: Problem::new("x")
            }
            .exit_code(),
            ExitCode::from(1)
        );
        assert_eq!(ExitStatus::Changes.exit_code(), ExitCode::from(3));
        assert_eq!(ExitStatus::Success.exit_code(), ExitCode::SUCCESS);
    }
}
