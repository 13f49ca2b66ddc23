//! Turns command-line arguments into checked settings; `Args` travel no further than here.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::app_file::{App, Provider};
use crate::bundle::{self, Profile, RenderBudget, Sources};
use crate::cli::STATE_NAMESPACE;
use crate::cli::{
    ClusterArgs, DataFormat, DiffArgs, DownArgs, Engine, HistoryArgs, ListArgs, LsArgs, PlanFormat,
    ReleaseArgs, RenderArgs, RollbackArgs, SourceArgs, StateArgs, StatusArgs, TableFormat,
    TemplateArgs, UpArgs,
};
use crate::error::{Error, Problem, Problems};
use crate::kube::{ConnectOptions, RemovalOptions};
use crate::values::SetArg;

/// A release: its name and the namespace that holds its record and its lock.
#[derive(Debug, Clone)]
pub struct ReleaseSettings {
    pub name: String,
    pub state_namespace: String,
    /// A team instance's (`-n`): its record is in its own namespace.
    pub team: bool,
}

impl ReleaseSettings {
    /// The release's identity: its record's namespace and its name.
    pub fn id(&self) -> crate::bundle::ReleaseId {
        crate::bundle::ReleaseId::new(&self.state_namespace, &self.name)
    }

    /// The release an installed-release command names, and where its record is.
    fn from_args(args: &ReleaseArgs) -> Self {
        Self {
            name: args.release.clone(),
            state_namespace: state_namespace(&args.state, args.namespace.as_ref()),
            team: args.namespace.is_some(),
        }
    }
}

/// Everything a render needs, read and checked.
#[derive(Debug)]
pub struct RenderSettings {
    pub addon: String,
    /// The release the render is for (`--release`, else the bundle's name).
    pub release: ReleaseSettings,
    pub sources: Sources,
    pub profile: Option<Profile>,
    /// `-f` files as (path, text).
    pub value_files: Vec<(String, String)>,
    pub sets: Vec<SetArg>,
    /// Every `--set` as given, parsed or not (what they give a secret input is masked).
    pub raw_sets: Vec<String>,
    /// The namespace of a team instance (`-n`): its record and lock live there too.
    pub instance: Option<String>,
    /// What the render may use.
    pub budget: RenderBudget,
    /// What was wrong with the arguments, reported by the render together with its own problems.
    pub problems: Problems,
    /// The engine the render is for (`template --for`), which also names the inputs it reads.
    pub engine: Option<Engine>,
    /// The generated Secrets something else provides when an engine runs the bundle (the app
    /// file's `secrets`).
    pub provided: BTreeMap<String, Provider>,
    /// Every component switch on (`plane images --all-variants`), so no optional image escapes.
    pub all_variants: bool,
}

/// `plane template`.
#[derive(Debug)]
pub struct TemplateSettings {
    pub render: RenderSettings,
    pub output: DataFormat,
}

/// `plane addons` and `plane profiles`.
#[derive(Debug)]
pub struct ListSettings {
    pub sources: Sources,
    pub output: TableFormat,
}

/// `plane diff`.
#[derive(Debug)]
pub struct DiffSettings {
    pub render: RenderSettings,
    pub cluster: ConnectOptions,
    /// Exit with code 3 when anything would change.
    pub exit_code: bool,
    pub output: PlanFormat,
}

/// `plane up`.
#[derive(Debug)]
pub struct UpSettings {
    pub render: RenderSettings,
    pub cluster: ConnectOptions,
    pub deploy: DeploySettings,
}

/// How a render is deployed, by `up` or `rollback`.
#[derive(Debug, Clone, Copy)]
pub struct DeploySettings {
    /// Show the plan and change nothing.
    pub dry_run: bool,
    /// Prune without asking.
    pub yes: bool,
    /// Adopt what another owner holds (`up --take-ownership`; a rollback never does).
    pub take_ownership: bool,
    /// How long to wait for readiness.
    pub timeout: Duration,
    /// Apply and record without waiting (`up --no-wait`; a rollback always waits).
    pub no_wait: bool,
    /// How long to wait for another run's lock; `None` refuses at once.
    pub wait_for_lock: Option<Duration>,
}

/// `plane down`.
#[derive(Debug)]
pub struct DownSettings {
    pub release: ReleaseSettings,
    pub cluster: ConnectOptions,
    /// Where to look for the profile the release was installed with (its cluster pin).
    pub sources: Sources,
    /// Delete without asking.
    pub yes: bool,
    pub dry_run: bool,
    pub removal: RemovalOptions,
    /// How long to wait for each stage's objects to be gone.
    pub timeout: Duration,
    pub wait_for_lock: Option<Duration>,
}

/// `plane history`.
#[derive(Debug)]
pub struct HistorySettings {
    pub release: ReleaseSettings,
    pub cluster: ConnectOptions,
    pub output: TableFormat,
}

impl HistorySettings {
    pub fn from_args(args: &HistoryArgs) -> Self {
        Self {
            release: ReleaseSettings::from_args(&args.target),
            cluster: connect_options(&args.target.cluster),
            output: args.output,
        }
    }
}

/// `plane rollback`.
#[derive(Debug)]
pub struct RollbackSettings {
    pub release: ReleaseSettings,
    /// The revision to restore; `None`: the previous deployed one.
    pub revision: Option<u64>,
    pub cluster: ConnectOptions,
    /// Where to look for the profile the revision was installed with (its cluster pin).
    pub sources: Sources,
    pub deploy: DeploySettings,
}

impl RollbackSettings {
    pub fn from_args(args: &RollbackArgs) -> Result<Self, Error> {
        check_team_target(&args.target)?;
        Ok(Self {
            release: ReleaseSettings::from_args(&args.target),
            revision: args.revision,
            cluster: connect_options(&args.target.cluster),
            // As `down`: a release records the name of its profile, not where it was loaded from.
            sources: Sources::embedded(),
            deploy: DeploySettings {
                dry_run: args.dry_run,
                yes: args.yes,
                // What another owner holds now is a conflict: a rollback never takes it back.
                take_ownership: false,
                timeout: args.timeout,
                no_wait: false,
                wait_for_lock: args.lock.wait_for_lock,
            },
        })
    }
}

/// `plane ls`.
#[derive(Debug)]
pub struct LsSettings {
    pub cluster: ConnectOptions,
    /// Where to list releases: one namespace, or `None` for every namespace (`-A`).
    pub namespace: Option<String>,
    pub output: TableFormat,
    /// Exit 3 when any release drifted.
    pub exit_code: bool,
}

/// `plane status`.
#[derive(Debug)]
pub struct StatusSettings {
    /// One release, or every release.
    pub release: Option<String>,
    pub cluster: ConnectOptions,
    pub state_namespace: String,
    /// The platform's view (no `-n`): its releases and every team instance.
    pub with_teams: bool,
    pub output: TableFormat,
}

/// A team instance (`-n`) never goes into Kubernetes' own namespaces, nor into the namespace
/// that holds the platform releases' records: refused before any request. (Where the platform
/// keeps its objects is read from its record, once connected.)
fn team_namespace_problem(namespace: &str) -> Option<Problem> {
    let why = if crate::kube::SYSTEM_NAMESPACES.contains(&namespace) {
        format!("{namespace} is one of Kubernetes' own namespaces")
    } else if namespace == STATE_NAMESPACE {
        format!("{namespace} holds the records of the platform releases (the state namespace)")
    } else {
        return None;
    };
    Some(
        Problem::new(format!(
            "a team instance may not go into namespace {namespace}; nothing was sent to the cluster"
        ))
        .at(format!("-n {namespace}"))
        .because(why)
        .hint(format!(
            "give the team a namespace of its own (`kubectl create namespace team-a`); -n never \
             names {}, {STATE_NAMESPACE} or a namespace the platform installs into; to act on the \
             platform release, leave -n out",
            crate::kube::SYSTEM_NAMESPACES.join(", ")
        )),
    )
}

/// A command that acts on a team instance (`down -n`, `rollback -n`) refuses the namespaces no
/// team instance may be in.
fn check_team_target(args: &ReleaseArgs) -> Result<(), Error> {
    match args.namespace.as_deref().and_then(team_namespace_problem) {
        Some(problem) => Err(Error::input(problem)),
        None => Ok(()),
    }
}

/// The bundle and profile sources the flags select.
/// Where bundles and profiles come from.
pub fn sources(args: &SourceArgs) -> Sources {
    Sources::resolve(args.addons_dir.as_deref(), args.profiles_dir.as_deref())
}

/// Where a release's record and lock live: a team instance's namespace (`-n`), else the state
/// namespace.
fn state_namespace(state: &StateArgs, namespace: Option<&String>) -> String {
    namespace.unwrap_or(&state.state_namespace).clone()
}

/// How to find the cluster; a zero request timeout waits forever.
fn connect_options(args: &ClusterArgs) -> ConnectOptions {
    ConnectOptions {
        kubeconfig: args.kubeconfig.clone(),
        context: args.context.clone(),
        request_timeout: Some(args.request_timeout).filter(|t| !t.is_zero()),
    }
}

/// The arguments with the app file's in them: the bundle, profile, release and namespace from
/// the file unless the command line gives them (the same twice is fine, two different ones a
/// problem), its values files and `--set` pairs before the command line's.
fn with_app_file(args: &RenderArgs, app: Option<&App>, problems: &mut Problems) -> RenderArgs {
    let Some(app) = app else {
        return args.clone();
    };
    let mut merged = args.clone();
    let mut one = |what: &str, flag: &mut Option<String>, from_file: Option<String>| match (
        flag.as_ref(),
        from_file,
    ) {
        (Some(given), Some(file)) if *given != file => problems.push(
            Problem::new(format!("the {what} is given twice: `{given}` and `{file}`"))
                .at(app.shown.clone())
                .hint(format!(
                    "leave the {what} out of the command line or of the app file"
                )),
        ),
        (None, Some(file)) => *flag = Some(file),
        _ => {}
    };
    one("bundle", &mut merged.addon, Some(app.file.addon.clone()));
    one("profile", &mut merged.profile, app.profile());
    one("release", &mut merged.release, app.file.release.clone());
    one(
        "namespace",
        &mut merged.namespace,
        app.file.namespace.clone(),
    );
    merged.values = app
        .file
        .values
        .iter()
        .map(|v| app.resolve(v))
        .chain(args.values.iter().cloned())
        .collect();
    merged.set = app.file.set.iter().chain(&args.set).cloned().collect();
    merged
}

impl RenderSettings {
    /// Reads the profile and values files and parses `--set`. Problems are collected, not
    /// returned, so that the render pipeline can list them together with its own.
    pub fn from_args(args: &RenderArgs) -> Self {
        let mut problems = Problems::default();
        let app = args
            .app_file
            .as_deref()
            .and_then(|path| App::load(path).map_err(|found| problems.extend(found)).ok());
        let args = &with_app_file(args, app.as_ref(), &mut problems);
        let mut budget = RenderBudget::default();
        for arg in &args.budget {
            if let Err(why) = budget.set(arg) {
                problems.push(
                    Problem::new("malformed --budget argument")
                        .at(format!("--budget {arg}"))
                        .because(why),
                );
            }
        }
        let mut sources = sources(&args.sources);
        sources.file_max = budget.file;
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
            match crate::files::read_text(path, crate::files::INPUT_FILE_MAX) {
                Ok(text) => value_files.push((shown, text)),
                Err(why) => problems.push(
                    Problem::new("cannot read values file")
                        .at(format!("-f {shown}"))
                        .because(why.to_string())
                        .maybe_hint(bundle::profile::refusal_hint(&why)),
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
        let addon = args.addon.clone().unwrap_or_default();
        let release = args.release.clone().unwrap_or_else(|| addon.clone());
        // `--release` and `-n` were checked by the command line; the bundle's name becomes the
        // release name only when it is one.
        if args.release.is_none()
            && let Err(why) = crate::k8s_validation::plane_name(&release)
        {
            problems.push(
                Problem::new(format!("bundle name `{release}` cannot name a release"))
                    .because(why)
                    .hint("pass --release NAME"),
            );
        }
        // A team instance keeps its record and lock in its own namespace.
        let state_namespace = state_namespace(&args.state, args.namespace.as_ref());
        if let Some(namespace) = &args.namespace {
            problems.extend(team_namespace_problem(namespace));
        }
        Self {
            addon,
            release: ReleaseSettings {
                name: release,
                state_namespace,
                team: args.namespace.is_some(),
            },
            sources,
            profile,
            value_files,
            sets,
            raw_sets: args.set.clone(),
            instance: args.namespace.clone(),
            budget,
            problems,
            engine: None,
            provided: app.map(|app| app.file.secrets).unwrap_or_default(),
            all_variants: false,
        }
    }
}

impl TemplateSettings {
    pub fn from_args(args: &TemplateArgs) -> Self {
        let mut render = RenderSettings::from_args(&args.render);
        render.engine = args.engine;
        Self {
            render,
            output: args.output,
        }
    }
}

impl ListSettings {
    pub fn from_args(args: &ListArgs) -> Self {
        Self {
            sources: sources(&args.sources),
            output: args.output,
        }
    }
}

impl DiffSettings {
    pub fn from_args(args: &DiffArgs) -> Self {
        Self {
            render: RenderSettings::from_args(&args.render),
            cluster: connect_options(&args.cluster),
            exit_code: args.exit_code,
            output: args.output,
        }
    }
}

impl UpSettings {
    pub fn from_args(args: &UpArgs) -> Self {
        Self {
            render: RenderSettings::from_args(&args.render),
            cluster: connect_options(&args.cluster),
            deploy: DeploySettings {
                dry_run: args.dry_run,
                yes: args.yes,
                take_ownership: args.take_ownership,
                timeout: args.timeout,
                no_wait: args.no_wait,
                wait_for_lock: args.lock.wait_for_lock,
            },
        }
    }
}

impl DownSettings {
    pub fn from_args(args: &DownArgs) -> Result<Self, Error> {
        check_team_target(&args.target)?;
        Ok(Self {
            release: ReleaseSettings::from_args(&args.target),
            cluster: connect_options(&args.target.cluster),
            // The built-in profiles: a release records the name of its profile, not where it
            // was loaded from.
            sources: Sources::embedded(),
            yes: args.yes,
            dry_run: args.dry_run,
            removal: RemovalOptions {
                include_crds: args.include_crds,
                include_volumes: args.include_volumes,
                include_adopted: args.include_adopted,
            },
            timeout: args.timeout,
            wait_for_lock: args.lock.wait_for_lock,
        })
    }
}

impl LsSettings {
    pub fn from_args(args: &LsArgs) -> Self {
        let namespace =
            (!args.all_namespaces).then(|| state_namespace(&args.state, args.namespace.as_ref()));
        Self {
            cluster: connect_options(&args.cluster),
            namespace,
            output: args.output,
            exit_code: args.exit_code,
        }
    }
}

impl StatusSettings {
    pub fn from_args(args: &StatusArgs) -> Self {
        Self {
            release: args.release.clone(),
            cluster: connect_options(&args.cluster),
            state_namespace: state_namespace(&args.state, args.namespace.as_ref()),
            with_teams: args.namespace.is_none(),
            output: args.output,
        }
    }
}
