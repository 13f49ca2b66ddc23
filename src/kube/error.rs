//! The error of cluster work: what failed, on which object, the server's reason, and a hint.

use crate::error::Problem;

/// How many times a call is tried in all.
pub const ATTEMPTS: u32 = 6;

/// Whether an error is worth another try.
pub fn is_transient(err: &kube::Error) -> bool {
    match err {
        kube::Error::Api(status) => matches!(status.code, 429 | 500 | 502 | 503 | 504),
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

/// A failure talking to the cluster, naming the object and the server's reason.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    #[error("{what}")]
    Api {
        what: String,
        subject: Option<String>,
        reason: String,
        code: Option<u16>,
        hint: Option<String>,
    },
    /// Something failed on this side of the API: a record that does not parse, an apiVersion
    /// that is not one, a kind the server does not serve, an aggregate of several failures.
    #[error("{what}")]
    Local {
        what: String,
        subject: Option<String>,
        reason: String,
        hint: Option<String>,
    },
    /// What the cluster shows the input to be wrong for (a team instance where the platform
    /// keeps its record): bad input, refused before any write.
    #[error("{what}")]
    Refused {
        what: String,
        subject: Option<String>,
        reasons: Vec<String>,
        hint: Option<String>,
    },
    #[error("cannot connect: {reason}")]
    Connect {
        reason: String,
        hint: Option<String>,
    },
    #[error("timed out")]
    Timeout { waiting: Vec<(String, String)> },
    #[error("{subject} failed: {reason}")]
    NotReady { subject: String, reason: String },
    #[error("{} permission(s) missing", denials.len())]
    Denied { denials: Vec<String> },
    #[error("the cluster does not serve {} kind(s)", missing.len())]
    MissingKinds { missing: Vec<String> },
    #[error("release {release} is locked")]
    LockHeld {
        release: String,
        holder: String,
        since: String,
        waited: bool,
    },
    #[error("the lock of release {release} was lost")]
    LockLost { release: String },
    #[error("{} object(s) of release {release} still exist", subjects.len())]
    Remaining {
        release: String,
        subjects: Vec<String>,
    },
}

impl KubeError {
    /// Builds an API error for an action on an object from a kube-rs error.
    ///
    /// Every call goes through `client::retry::retry`, so a transient error that arrives here has
    /// outlasted every attempt; the message says so.
    pub fn api(what: impl Into<String>, subject: Option<&str>, err: &kube::Error) -> Self {
        let hint_for = |code: u16| match code {
            401 => {
                Some("the credentials were refused: check the kubeconfig user or refresh the token")
            }
            403 => Some("the credentials lack permission for this; ask a cluster admin for RBAC"),
            429 | 500..=504 => Some("the API server is overloaded or failing; try again later"),
            _ => None,
        };
        let (mut reason, code, hint) = match err {
            kube::Error::Api(status) => (
                format!("{} ({} {})", status.message, status.code, status.reason),
                Some(status.code),
                hint_for(status.code),
            ),
            other if timed_out(other) => (
                "the API server did not answer within the request timeout".to_owned(),
                None,
                Some("check the API server's health, or allow more time with --request-timeout"),
            ),
            other if unreachable(other) => (
                format!(
                    "cannot connect to the API server: {}",
                    crate::error::innermost(other)
                ),
                None,
                Some(
                    "check that the cluster is reachable from here (VPN, proxy, firewall) and \
                     that the kubeconfig context points at it",
                ),
            ),
            other => (error_chain(other), None, None),
        };
        if is_transient(err) {
            reason.push_str(&format!(" (still failing after {ATTEMPTS} attempts)"));
        }
        let hint = hint.map(str::to_owned);
        Self::Api {
            what: what.into(),
            subject: subject.map(str::to_owned),
            reason,
            code,
            hint,
        }
    }

    /// One error for several: the only one as it is, else `what(count)` listing them all.
    pub fn combine(mut errors: Vec<Self>, what: impl FnOnce(usize) -> String) -> Self {
        if errors.len() == 1 {
            return errors.remove(0);
        }
        Self::Local {
            what: what(errors.len()),
            subject: None,
            reason: Self::listed(&errors),
            hint: None,
        }
    }

    /// Several errors, a line each: `subject: cause`.
    pub fn listed(errors: &[Self]) -> String {
        errors
            .iter()
            .map(|e| {
                let problem = e.to_problem();
                format!(
                    "{}: {}",
                    problem.location.unwrap_or(problem.what),
                    problem.causes.join(": ")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The HTTP status code the server answered with, if any.
    pub fn code(&self) -> Option<u16> {
        match self {
            Self::Api { code, .. } => *code,
            _ => None,
        }
    }

    pub fn to_problem(&self) -> Problem {
        match self {
            Self::Api {
                what,
                subject,
                reason,
                hint,
                ..
            }
            | Self::Local {
                what,
                subject,
                reason,
                hint,
            } => {
                let mut problem = Problem::new(what.clone())
                    .because(reason.clone())
                    .maybe_hint(hint.clone());
                if let Some(subject) = subject {
                    problem = problem.at(subject.clone());
                }
                problem
            }
            Self::Refused {
                what,
                subject,
                reasons,
                hint,
            } => {
                let mut problem = Problem::new(what.clone()).maybe_hint(hint.clone());
                if let Some(subject) = subject {
                    problem = problem.at(subject.clone());
                }
                for reason in reasons {
                    problem = problem.because(reason.clone());
                }
                problem
            }
            Self::Connect { reason, hint } => Problem::new("cannot connect to the cluster")
                .because(reason.clone())
                .maybe_hint(hint.clone()),
            Self::Timeout { waiting } => {
                let mut problem = Problem::new(format!(
                    "timed out waiting for {} object(s) to become ready",
                    waiting.len()
                ));
                for (subject, status) in waiting {
                    problem = problem.because(format!("{subject}: {status}"));
                }
                problem.hint("raise --timeout, or look at the objects above with kubectl describe")
            }
            Self::NotReady { subject, reason } => Problem::new(format!("{subject} failed"))
                .at(subject.clone())
                .because(reason.clone()),
            Self::Denied { denials } => {
                let mut problem = Problem::new(format!(
                    "the current credentials lack {} permission(s) this run needs; nothing was changed",
                    denials.len()
                ));
                for denial in denials {
                    problem = problem.because(format!("cannot {denial}"));
                }
                problem.hint("ask a cluster admin for these RBAC rules, or run with credentials that have them")
            }
            Self::MissingKinds { missing } => {
                let mut problem = Problem::new(
                    "the cluster does not serve kinds this bundle renders; nothing was changed",
                );
                for kind in missing {
                    problem = problem.because(kind.clone());
                }
                problem.hint("install the CRDs that define them first, or turn off the components that render them")
            }
            Self::LockHeld {
                release,
                holder,
                since,
                waited,
            } => {
                let problem = Problem::new(format!("release {release} is locked by another run"))
                    .at(format!("Lease plane-lock-{release}"))
                    .because(format!("held by {holder} since {since}"));
                if *waited {
                    problem
                        .because("the wait for it ran out")
                        .hint("try again later, or wait longer with --wait-for-lock=DURATION")
                } else {
                    problem.hint(
                        "wait for it with --wait-for-lock[=DURATION]; a crashed run's lock expires 30s after its last renewal",
                    )
                }
            }
            Self::LockLost { release } => Problem::new(format!(
                "lost the lock of release {release}; stopped before starting more writes"
            ))
            .at(format!("Lease plane-lock-{release}"))
            .because("it could not be renewed in time, or another run took it over")
            .hint("see who holds it and the release's state with `plane ls`, then run again"),
            Self::Remaining { release, subjects } => {
                let mut problem = Problem::new(format!(
                    "{} object(s) of release {release} still exist after deletion; its record is kept",
                    subjects.len()
                ));
                for subject in subjects {
                    problem = problem.because(format!("{subject} was not deleted"));
                }
                problem.hint("run `plane down` again; `plane ls` still shows the release")
            }
        }
    }
}

/// Whether a request failed because `--request-timeout` passed without an answer.
fn timed_out(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Service(inner) if inner.is::<tower::timeout::error::Elapsed>())
}

/// Whether a request failed before reaching the server: refused, unresolvable, unroutable.
fn unreachable(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Service(_) | kube::Error::HyperError(_))
        && error_chain(err).contains("client error (Connect)")
}

/// Every message of an error's source chain, joined.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        let message = inner.to_string();
        if !text.contains(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        source = inner.source();
    }
    text
}

/// A cluster failure ends a command as a failure, with the problem the error describes; a
/// refusal of the input is bad input (exit 2).
impl From<KubeError> for crate::error::Error {
    fn from(err: KubeError) -> Self {
        match err {
            KubeError::Refused { .. } => Self::input(err.to_problem()),
            _ => Self::Failed {
                problem: err.to_problem(),
            },
        }
    }
}
