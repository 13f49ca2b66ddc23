//! Turns command-line arguments into checked settings; `Args` travel no further than here.

use crate::bundle::{self, Profile, Sources};
use crate::cli::{RenderArgs, SourceArgs};
use crate::error::{Problem, Problems};
use crate::values::SetArg;

/// Everything a render needs, read and checked.
#[derive(Debug)]
pub struct RenderSettings {
    pub addon: String,
    pub release: String,
    pub state_namespace: String,
    pub sources: Sources,
    pub profile: Option<Profile>,
    /// `-f` files as (path, text).
    pub value_files: Vec<(String, String)>,
    pub sets: Vec<SetArg>,
}

/// The bundle and profile sources the flags select.
pub fn sources(args: &SourceArgs) -> Sources {
    Sources::resolve(args.addons_dir.as_deref(), args.profiles_dir.as_deref())
}

impl RenderSettings {
    /// Reads the profile and values files and parses `--set`. Problems are collected, not
    /// returned early, so that the render pipeline can list them together with its own.
    pub fn from_args(args: &RenderArgs, problems: &mut Problems) -> Self {
        let sources = sources(&args.sources);

        let profile = match &args.profile {
            Some(name) => match bundle::profile::load(&sources.profiles, name) {
                Ok(profile) => Some(profile),
                Err(problem) => {
                    problems.push(problem);
                    None
                }
            },
            None => None,
        };
        let mut value_files = Vec::new();
        for path in &args.values {
            let shown = path.display().to_string();
            match std::fs::read_to_string(path) {
                Ok(text) => value_files.push((shown, text)),
                Err(err) => problems.push(
                    Problem::new("cannot read values file")
                        .at(format!("-f {shown}"))
                        .because(err.to_string()),
                ),
            }
        }
        let mut sets = Vec::new();
        for raw in &args.set {
            match SetArg::parse(raw) {
                Ok(set) => sets.push(set),
                Err(problem) => problems.push(problem),
            }
        }
        let release = args.release.clone().unwrap_or_else(|| args.addon.clone());
        for (flag, name) in [
            ("--release", &release),
            ("--state-namespace", &args.state_namespace),
        ] {
            if let Err(why) = check_dns_label(name) {
                problems.push(Problem::new(format!("invalid {flag} `{name}`")).because(why));
            }
        }
        Self {
            addon: args.addon.clone(),
            release,
            state_namespace: args.state_namespace.clone(),
            sources,
            profile,
            value_files,
            sets,
        }
    }
}

/// Release and namespace names become label values and object names: RFC 1123 labels.
fn check_dns_label(name: &str) -> Result<(), String> {
    let valid_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if name.is_empty() || name.len() > 53 {
        return Err("it must be 1 to 53 characters long".into());
    }
    if !valid_chars || name.starts_with('-') || name.ends_with('-') {
        return Err(
            "use lower-case letters, digits and `-`, starting and ending with a letter or digit"
                .into(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_names_are_dns_labels() {
        assert!(check_dns_label("datalayer-ray").is_ok());
        for bad in ["", "Upper", "-x", "x-", "a_b", &"x".repeat(54)] {
            assert!(check_dns_label(bad).is_err(), "{bad}");
        }
    }
}
