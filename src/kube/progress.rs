//! What the cluster work tells the user as it happens: events in plane's one vocabulary of
//! actions, and the reporter the terminal layer implements.

use serde::Serialize;

/// Something the cluster work wants the user to know, as it happens.
#[derive(Debug, Clone)]
pub enum Event {
    /// A stage begins, named with its verb: `applying operator`, `pruning`, `deleting workloads`.
    Stage { name: String, objects: usize },
    /// One object was written or deleted with this action.
    Done { subject: String, action: Action },
    /// Waiting on an object, with what it last said.
    Waiting { subject: String, status: String },
    /// An object became ready.
    Ready {
        subject: String,
        ready: usize,
        total: usize,
    },
    /// Something worth a line that is not an error.
    Note(String),
}

/// Receives progress; the terminal layer implements it (indicatif or plain lines).
pub trait Reporter: Send + Sync {
    fn report(&self, event: Event);
}

/// What happens to one object. One vocabulary everywhere: diff, up, down, JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Configure,
    Unchanged,
    Prune,
    Delete,
    /// Left alone on purpose (e.g. a Namespace no longer rendered, which is never pruned).
    Skip,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Configure => "configure",
            Self::Unchanged => "unchanged",
            Self::Prune => "prune",
            Self::Delete => "delete",
            Self::Skip => "skip",
        }
    }

    /// Whether the action writes to the cluster.
    pub fn writes(self) -> bool {
        matches!(
            self,
            Self::Create | Self::Configure | Self::Prune | Self::Delete
        )
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
