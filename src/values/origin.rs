//! Where a value came from, so every error can name it.

use std::fmt;

/// The origin of one value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A YAML file: the bundle's values.yaml or a `-f` file, at a line and column.
    File {
        file: String,
        line: usize,
        col: usize,
    },
    /// A profile file.
    Profile {
        name: String,
        file: String,
        line: usize,
        col: usize,
    },
    /// A `--set` argument.
    Set { arg: String },
    /// An environment variable named by one of the bundle's inputs.
    Env { var: String },
    /// The default of a declared input.
    InputDefault { var: String },
    /// Computed by plane from another value.
    Derived { from: String },
    /// The team-instance values of addon.yaml, for `-n NAMESPACE`.
    Instance { namespace: String },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File { file, line, col } => write!(f, "{file}:{line}:{col}"),
            Self::Profile {
                name,
                file,
                line,
                col,
            } => write!(f, "profile {name} ({file}:{line}:{col})"),
            Self::Set { arg } => write!(f, "--set {arg}"),
            Self::Env { var } => write!(f, "environment variable {var}"),
            Self::InputDefault { var } => write!(f, "the default of input {var} in addon.yaml"),
            Self::Derived { from } => write!(f, "derived from {from}"),
            Self::Instance { namespace } => {
                write!(f, "the instance values of addon.yaml (-n {namespace})")
            }
        }
    }
}
