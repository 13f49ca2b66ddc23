//! The fleet file: a fleet's profiles in waves, how many run at once, and the soak between
//! waves, kept in Git beside the profiles.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::error::{Problem, did_you_mean};
use crate::values::{LineMap, ValuesPath};

/// A fleet file as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FleetSpec {
    /// How many profiles of a wave run at once.
    #[serde(default)]
    parallel: Option<u16>,
    /// How long a converged wave must stay ready before the next starts (`5m`).
    #[serde(default)]
    soak: Option<String>,
    waves: Vec<WaveSpec>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct WaveSpec {
    /// Shown in the summary; `wave N` when left out.
    #[serde(default)]
    name: Option<String>,
    profiles: Vec<String>,
}

/// A wave of profiles: all of them converge (and soak) before the next wave starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wave {
    pub name: String,
    pub profiles: Vec<String>,
}

/// A fleet file, loaded and checked.
#[derive(Debug, Clone)]
pub struct Fleet {
    pub waves: Vec<Wave>,
    pub parallel: Option<usize>,
    pub soak: Option<Duration>,
}

impl Fleet {
    /// Reads and checks `path` against the profiles plane knows.
    ///
    /// # Errors
    /// Every problem of the file, each at `file:line:col`, with a hint.
    pub fn load(path: &Path, known: &[String]) -> Result<Self, Vec<Problem>> {
        let shown = path.display().to_string();
        let text = crate::files::read_text(path, crate::files::INPUT_FILE_MAX).map_err(|why| {
            vec![
                Problem::new("cannot read the fleet file")
                    .at(format!("--fleet {shown}"))
                    .because(why.to_string()),
            ]
        })?;
        if let Some(duplicate) = LineMap::duplicate_keys(&text, &shown).into_iter().next() {
            return Err(vec![duplicate]);
        }
        let spec: FleetSpec = serde_yaml_ng::from_str(&text).map_err(|err| {
            vec![crate::values::yaml_problem(
                &err,
                &shown,
                "invalid fleet file",
            )]
        })?;
        let lines = LineMap::of(&text);
        let at = |path: &ValuesPath| lines.at(&shown, path);
        let root = ValuesPath::root();
        let mut problems = Vec::new();
        let soak = match &spec.soak {
            None => None,
            Some(text) => match humantime::parse_duration(text) {
                Ok(soak) => Some(soak),
                Err(err) => {
                    problems.push(
                        Problem::new(format!("soak: `{text}` is not a duration"))
                            .at(at(&root.key("soak")))
                            .because(err.to_string())
                            .hint("write it as 90s, 5m or 1h"),
                    );
                    None
                }
            },
        };
        if spec.parallel == Some(0) {
            problems.push(
                Problem::new("parallel: 0 would run nothing")
                    .at(at(&root.key("parallel")))
                    .hint("write 1 to run one profile at a time"),
            );
        }
        if spec.waves.is_empty() {
            problems.push(
                Problem::new("waves: a fleet needs at least one wave")
                    .at(at(&root.key("waves")))
                    .hint("waves: [{profiles: [r-staging]}, {profiles: [r-eastus, r-westeu]}]"),
            );
        }
        let mut seen: Vec<&str> = Vec::new();
        for (w, wave) in spec.waves.iter().enumerate() {
            let wave_at = root.key("waves").index(w);
            if wave.profiles.is_empty() {
                problems.push(
                    Problem::new(format!("waves[{w}]: a wave needs at least one profile"))
                        .at(at(&wave_at.key("profiles"))),
                );
            }
            for (p, profile) in wave.profiles.iter().enumerate() {
                let here = at(&wave_at.key("profiles").index(p));
                if seen.contains(&profile.as_str()) {
                    problems.push(
                        Problem::new(format!("profile `{profile}` is in the fleet twice"))
                            .at(here)
                            .hint("each profile belongs to one wave"),
                    );
                } else if !known.iter().any(|k| k == profile) {
                    problems.push(
                        Problem::new(format!("unknown profile `{profile}`"))
                            .at(here)
                            .because(format!("known profiles: {}", known.join(", ")))
                            .maybe_hint(did_you_mean(profile, known.iter().map(String::as_str))),
                    );
                }
                seen.push(profile);
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Self {
            waves: spec
                .waves
                .into_iter()
                .enumerate()
                .map(|(w, wave)| Wave {
                    name: wave.name.unwrap_or_else(|| format!("wave {}", w + 1)),
                    profiles: wave.profiles,
                })
                .collect(),
            parallel: spec.parallel.map(usize::from),
            soak,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Fleet, Vec<Problem>> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fleet.yaml");
        std::fs::write(&path, text).unwrap();
        let known = ["a".to_owned(), "b".to_owned(), "c".to_owned()];
        Fleet::load(&path, &known)
    }

    fn messages(problems: &[Problem]) -> String {
        problems
            .iter()
            .map(|p| format!("{p:?}"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn waves_keep_their_order_and_names() {
        let fleet =
            load("parallel: 2\nsoak: 30s\nwaves:\n  - name: canary\n    profiles: [a]\n  - profiles: [b, c]\n")
                .unwrap();
        assert_eq!(fleet.parallel, Some(2));
        assert_eq!(fleet.soak, Some(Duration::from_secs(30)));
        assert_eq!(fleet.waves[0].name, "canary");
        assert_eq!(fleet.waves[1].name, "wave 2");
        assert_eq!(fleet.waves[1].profiles, ["b", "c"]);
    }

    #[test]
    fn every_problem_is_named_with_its_line() {
        let problems =
            load("soak: soon\nwaves:\n  - profiles: [a]\n  - profiles:\n      - a\n      - bb\n")
                .unwrap_err();
        let text = messages(&problems);
        assert!(text.contains("fleet.yaml:1:"), "{text}");
        assert!(
            text.contains("in the fleet twice") && text.contains("fleet.yaml:5:"),
            "{text}"
        );
        assert!(
            text.contains("unknown profile `bb`") && text.contains("fleet.yaml:6:"),
            "{text}"
        );
        let unknown_key = load("waves: [{profiles: [a]}]\nwave: 1\n").unwrap_err();
        assert!(
            messages(&unknown_key).contains("fleet.yaml:2"),
            "{unknown_key:?}"
        );
    }
}
