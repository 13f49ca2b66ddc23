//! plane.yaml, the app file: the arguments of `template`, `diff` and `up` kept in a file, so that
//! one file drives the command line and the engines that render plane's bundles (Argo CD, Flux).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::Problem;
use crate::values::{LineMap, ValuesPath};

/// The file Argo CD's plugin discovers an application by.
pub const FILE_NAME: &str = "plane.yaml";

/// What plane.yaml holds, as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppFile {
    /// The bundle (`plane template ADDON`).
    pub addon: String,
    /// `--profile`: a profile's name, or a path relative to this file.
    #[serde(default)]
    pub profile: Option<String>,
    /// `--release`.
    #[serde(default)]
    pub release: Option<String>,
    /// `-n`: a team instance in this namespace.
    #[serde(default)]
    pub namespace: Option<String>,
    /// `-f`: values files, relative to this file, in order.
    #[serde(default)]
    pub values: Vec<String>,
    /// `--set PATH=VALUE`, in order.
    #[serde(default)]
    pub set: Vec<String>,
    /// Secrets the bundle generates (`plane up` creates them) that something else provides when
    /// an engine runs the bundle: `NAMESPACE/NAME: external | sops | plane-up`.
    #[serde(default)]
    pub secrets: BTreeMap<String, Provider>,
}

/// What provides a generated Secret when an engine runs the bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Provider {
    /// External Secrets, or any controller that writes it.
    External,
    /// SOPS-encrypted beside the app file, decrypted by the engine.
    Sops,
    /// Created once by `plane up` before the engine took over; never rendered again.
    PlaneUp,
}

/// An app file, loaded: what it says, with its paths resolved against its folder.
#[derive(Debug, Clone)]
pub struct App {
    pub file: AppFile,
    /// How it is shown in messages.
    pub shown: String,
    /// The folder its relative paths are read from.
    pub folder: PathBuf,
}

impl App {
    /// Reads and checks `path`.
    ///
    /// # Errors
    /// Every problem of the file, each at `file:line:col`, with a hint.
    pub fn load(path: &Path) -> Result<Self, Vec<Problem>> {
        let shown = path.display().to_string();
        let text = crate::files::read_text(path, crate::files::INPUT_FILE_MAX).map_err(|why| {
            vec![
                Problem::new("cannot read the app file")
                    .at(format!("--app-file {shown}"))
                    .because(why.to_string()),
            ]
        })?;
        if let Some(duplicate) = LineMap::duplicate_keys(&text, &shown).into_iter().next() {
            return Err(vec![duplicate]);
        }
        let file: AppFile = serde_yaml_ng::from_str(&text).map_err(|err| {
            vec![crate::values::yaml_problem(
                &err,
                &shown,
                "invalid app file",
            )]
        })?;
        let problems = check(&file, &shown, &text);
        if !problems.is_empty() {
            return Err(problems);
        }
        let folder = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        Ok(Self {
            file,
            shown,
            folder,
        })
    }

    /// A path the file names, relative to its folder.
    pub fn resolve(&self, relative: &str) -> PathBuf {
        let path = Path::new(relative);
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.folder.join(path)
        }
    }

    /// The profile argument: a name as written, a path resolved against the file's folder.
    pub fn profile(&self) -> Option<String> {
        let profile = self.file.profile.as_ref()?;
        let is_path = profile.contains('/')
            || Path::new(profile)
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("yaml"));
        Some(if is_path {
            self.resolve(profile).display().to_string()
        } else {
            profile.clone()
        })
    }
}

/// What serde cannot check, at `file:line:col`: names as plane takes them on the command line,
/// `set` entries that parse, and Secrets named `NAMESPACE/NAME`.
fn check(file: &AppFile, shown: &str, text: &str) -> Vec<Problem> {
    let lines = LineMap::of(text);
    let at = |path: &ValuesPath| lines.at(shown, path);
    let root = ValuesPath::root();
    let mut problems = Vec::new();
    let named = [
        ("addon", Some(&file.addon)),
        ("release", file.release.as_ref()),
        ("namespace", file.namespace.as_ref()),
    ];
    for (key, value) in named {
        if let Some(value) = value
            && let Err(why) = crate::k8s_validation::plane_name(value)
        {
            problems.push(
                Problem::new(format!("{key} `{value}` is not a valid name"))
                    .at(at(&root.key(key)))
                    .because(why),
            );
        }
    }
    for (i, raw) in file.set.iter().enumerate() {
        if let Err(problem) = crate::values::SetArg::parse(raw) {
            problems.push(
                Problem::new(format!("set entry `{raw}` is malformed"))
                    .at(at(&root.key("set").index(i)))
                    .because(problem.to_string())
                    .hint("write PATH=VALUE, as --set takes it, e.g. api.replicas=2"),
            );
        }
    }
    for name in file.secrets.keys() {
        let valid = name.split_once('/').is_some_and(|(ns, n)| {
            crate::k8s_validation::dns1123_label(ns).is_ok()
                && crate::k8s_validation::dns1123_subdomain(n).is_ok()
        });
        if !valid {
            problems.push(
                Problem::new(format!("secrets: `{name}` does not name a Secret"))
                    .at(at(&root.key("secrets").key(name)))
                    .hint("write NAMESPACE/NAME, e.g. monitoring/grafana-admin"),
            );
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<App, Vec<Problem>> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plane.yaml");
        std::fs::write(&path, text).unwrap();
        App::load(&path)
    }

    #[test]
    fn an_app_file_says_what_the_flags_say() {
        let app = load(
            "addon: shop\nprofile: regions/eu.yaml\nnamespace: team-a\nvalues: [more.yaml]\nset: [web.replicas=2]\nsecrets: {shop/admin: external}\n",
        )
        .unwrap();
        assert_eq!(app.file.addon, "shop");
        assert!(app.profile().unwrap().ends_with("regions/eu.yaml"));
        assert!(app.resolve("more.yaml").ends_with("more.yaml"));
        assert_eq!(app.file.secrets["shop/admin"], Provider::External);
    }

    #[test]
    fn mistakes_are_named_at_their_line() {
        let problems =
            load("addon: shop\nset:\n  - web.replicas\nsecrets: {admin: sops}\n").unwrap_err();
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert!(
            text[0].contains("plane.yaml:3:5") && text[0].contains("malformed"),
            "{text:?}"
        );
        assert!(text[1].contains("does not name a Secret"), "{text:?}");
        let unknown = load("addon: shop\nprofle: eu\n").unwrap_err();
        assert!(
            unknown[0].to_string().contains("plane.yaml:2"),
            "{unknown:?}"
        );
        let bad = load("addon: Shop\n").unwrap_err();
        assert!(bad[0].to_string().contains("not a valid name"), "{bad:?}");
    }
}
