//! The command line: global flags and one Args struct per command.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::k8s_validation::plane_name;

/// Provision Kubernetes addon bundles declaratively.
#[derive(Debug, Parser)]
#[command(name = "plane", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Print only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Print every step of the cluster work as a timestamped line on stderr (no progress bars).
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// When to colour output.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Plain timestamped lines instead of progress bars.
    #[arg(long, global = true)]
    pub no_progress: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Render a bundle offline and print its objects (no cluster access at all).
    #[command(after_help = TEMPLATE_EXAMPLES)]
    Template(TemplateArgs),
    /// List the bundles plane knows, with their version and description.
    #[command(after_help = ADDONS_EXAMPLES)]
    Addons(ListArgs),
    /// List the profiles plane knows, with their region URL.
    #[command(after_help = PROFILES_EXAMPLES)]
    Profiles(ListArgs),
    /// Show what `up` would change in the cluster (server-side dry-run; writes nothing).
    #[command(after_help = DIFF_EXAMPLES)]
    Diff(DiffArgs),
    /// Apply a bundle, prune what it no longer renders, wait until healthy, record the release.
    #[command(after_help = UP_EXAMPLES)]
    Up(UpArgs),
    /// List the releases on the cluster with their live health.
    #[command(after_help = LS_EXAMPLES)]
    Ls(LsArgs),
    /// Show releases and what their bundles run: where each part is, the custom resources each
    /// bundle's status view lists by state, what they request, and usage from its Prometheus.
    #[command(after_help = STATUS_EXAMPLES)]
    Status(StatusArgs),
    /// Show a release's revisions, newest first: when, by whom, with which inputs, what changed.
    #[command(after_help = HISTORY_EXAMPLES)]
    History(HistoryArgs),
    /// Apply a revision the release's record kept again (default: the previous deployed one),
    /// through the same plan, checks, lock, prune and waits as `up`. CRDs only move forward.
    #[command(after_help = ROLLBACK_EXAMPLES)]
    Rollback(RollbackArgs),
    /// Remove a release: custom resources first, then workloads, services, RBAC, namespaces.
    #[command(after_help = DOWN_EXAMPLES)]
    Down(DownArgs),
    /// What Argo CD and Flux need beside `template --for` to run a bundle as `up` does.
    #[command(after_help = GITOPS_EXAMPLES)]
    Gitops(GitopsArgs),
    /// List every image a bundle runs and the images its operators start, with the values that
    /// set each: what to copy into an air-gapped registry (offline, no cluster access).
    #[command(after_help = IMAGES_EXAMPLES)]
    Images(ImagesArgs),
    /// Print plane's version, the commit it was built from, and each embedded bundle's version
    /// and digest.
    Version(VersionArgs),
    /// Print a shell completion script (bash, zsh, fish); addon and profile names complete from
    /// what plane embeds.
    #[command(after_help = COMPLETION_EXAMPLES)]
    Completion(CompletionArgs),
}

#[derive(Debug, Args)]
pub struct VersionArgs {
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = TableFormat::Table)]
    pub output: TableFormat,
}

#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: Shell,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Args)]
pub struct ImagesArgs {
    #[command(flatten)]
    pub render: RenderArgs,
    /// Every profile plane knows, one render each (their images together, with the profiles
    /// that use each).
    #[arg(long, conflicts_with = "profile")]
    pub all_profiles: bool,
    /// Every component switched on, so that no optional image escapes the list.
    #[arg(long)]
    pub all_variants: bool,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = ImagesFormat::Table)]
    pub output: ImagesFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ImagesFormat {
    Table,
    Json,
}

/// Which cluster, like kubectl.
#[derive(Debug, Clone, Args)]
pub struct ClusterArgs {
    /// The kubeconfig file (default: KUBECONFIG, then ~/.kube/config, then in-cluster).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context (default: its current context).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// How long one API request may wait for an answer before it is retried; 0 waits forever.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    pub request_timeout: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    #[command(flatten)]
    pub render: RenderArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Exit with code 3 when anything would change.
    #[arg(long)]
    pub exit_code: bool,
    /// Output format: a readable diff, or the plan as JSON.
    #[arg(short, long, value_enum, default_value_t = PlanFormat::Diff)]
    pub output: PlanFormat,
    #[command(flatten)]
    pub fleet: FleetArgs,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub render: RenderArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Show what would change, like `plane diff`, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask before pruning.
    #[arg(short, long)]
    pub yes: bool,
    /// Take over existing objects that are not this release's (another plane release's, a Helm
    /// release's, another tool's, nobody's); they are recorded as adopted and `down` keeps them.
    /// Another plane release's record forgets what is taken from it.
    #[arg(long)]
    pub take_ownership: bool,
    /// How long to wait for everything to become ready (e.g. 90s, 10m).
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    pub timeout: std::time::Duration,
    /// Apply and record without waiting for readiness.
    #[arg(long)]
    pub no_wait: bool,
    #[command(flatten)]
    pub lock: LockArgs,
    #[command(flatten)]
    pub fleet: FleetArgs,
    /// Fleet: this profile's `up` runs alone first, and the rest only once it converged.
    #[arg(long, value_name = "PROFILE", conflicts_with = "fleet")]
    pub canary: Option<String>,
    /// Fleet: after a wave converged, watch it this long (e.g. 5m) before the next starts; a
    /// release that stops being ready in that time stops the rollout.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub soak: Option<std::time::Duration>,
}

/// How a command that writes meets another run's lock on the release.
#[derive(Debug, Clone, Args)]
pub struct LockArgs {
    /// If another run holds the release's lock, wait for it (default 10m) instead of failing.
    #[arg(long, value_name = "DURATION", num_args = 0..=1, default_missing_value = "10m", value_parser = humantime::parse_duration)]
    pub wait_for_lock: Option<std::time::Duration>,
}

/// An installed release, for the commands that act on one (`history`, `rollback`, `down`).
#[derive(Debug, Args)]
pub struct ReleaseArgs {
    /// The release (see `plane ls`).
    #[arg(value_parser = plane_name)]
    pub release: String,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    #[command(flatten)]
    pub state: StateArgs,
    /// The team instance of this namespace (`up -n`) instead of the platform's release.
    #[arg(
        short = 'n',
        long,
        value_name = "NAMESPACE",
        value_parser = plane_name,
        conflicts_with = "state_namespace"
    )]
    pub namespace: Option<String>,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    #[command(flatten)]
    pub target: ReleaseArgs,
    /// The revision to restore (see `plane history`); default: the previous deployed one.
    pub revision: Option<u64>,
    /// Show what the rollback would change, like `plane diff`, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask before pruning.
    #[arg(short, long)]
    pub yes: bool,
    /// How long to wait for everything to become ready (e.g. 90s, 10m).
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    pub timeout: std::time::Duration,
    #[command(flatten)]
    pub lock: LockArgs,
}

#[derive(Debug, Args)]
pub struct DownArgs {
    #[command(flatten)]
    pub target: ReleaseArgs,
    /// Do not ask before deleting.
    #[arg(short, long)]
    pub yes: bool,
    /// Show what would be deleted and delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Also delete the release's CustomResourceDefinitions, and with them every custom resource
    /// of their kinds in the whole cluster.
    #[arg(long)]
    pub include_crds: bool,
    /// Also delete the release's PersistentVolumeClaims, and with them their data.
    #[arg(long)]
    pub include_volumes: bool,
    /// Also delete objects the release took over with `up --take-ownership` (Namespaces and CRDs
    /// that predate the release always stay).
    #[arg(long)]
    pub include_adopted: bool,
    /// How long to wait for each stage's objects to be gone.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    pub timeout: std::time::Duration,
    #[command(flatten)]
    pub lock: LockArgs,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    #[command(flatten)]
    pub target: ReleaseArgs,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = TableFormat::Table)]
    pub output: TableFormat,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    #[command(flatten)]
    pub state: StateArgs,
    /// The team instances of this namespace (`up -n`) instead of the platform's releases.
    #[arg(short = 'n', long, value_name = "NAMESPACE", value_parser = plane_name, conflicts_with_all = ["state_namespace", "all_namespaces"])]
    pub namespace: Option<String>,
    /// Every release of every namespace, platform and team instances, with a TIER column.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = TableFormat::Table)]
    pub output: TableFormat,
    #[command(flatten)]
    pub fleet: FleetArgs,
    /// Fleet: exit 3 when the regions run a release at different bundle versions (skew).
    #[arg(long)]
    pub expect_same: bool,
    /// Exit with code 3 when any release drifted (an object another manager changed or
    /// deleted).
    #[arg(long)]
    pub exit_code: bool,
    #[command(flatten)]
    pub sources: SourceArgs,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The release to show (see `plane ls`); all releases when left out. What its bundle's status
    /// view lists is shown for the whole cluster either way.
    #[arg(value_parser = plane_name)]
    pub release: Option<String>,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    #[command(flatten)]
    pub state: StateArgs,
    /// The team instances of this namespace (`up -n`) instead of the platform's releases.
    #[arg(
        short = 'n',
        long,
        value_name = "NAMESPACE",
        value_parser = plane_name,
        conflicts_with = "state_namespace"
    )]
    pub namespace: Option<String>,
    /// Output format (the JSON fields are described in the README, "plane status").
    #[arg(short, long, value_enum, default_value_t = TableFormat::Table)]
    pub output: TableFormat,
    #[command(flatten)]
    pub fleet: FleetArgs,
    #[command(flatten)]
    pub sources: SourceArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    Diff,
    Json,
}

/// The namespace that holds the platform releases' records unless `--state-namespace` says
/// otherwise; never a team instance's.
pub const STATE_NAMESPACE: &str = "plane-system";

/// Where plane keeps its release records.
#[derive(Debug, Clone, Args)]
pub struct StateArgs {
    /// The namespace that holds plane's release records.
    #[arg(long, default_value = STATE_NAMESPACE, value_name = "NAMESPACE", value_parser = plane_name)]
    pub state_namespace: String,
}

/// Which profiles (regions) one command runs over, each on the cluster its profile pins; none
/// given: the command's own profile and cluster, as always.
#[derive(Debug, Clone, Default, Args)]
pub struct FleetArgs {
    /// Run for each of these profiles (comma-separated, in this order), each on the cluster its
    /// profile pins.
    #[arg(long, value_name = "PROFILE,...", value_delimiter = ',', value_parser = plane_name, conflicts_with = "all_profiles")]
    pub profiles: Vec<String>,
    /// Run for every profile plane knows (see `plane profiles`).
    #[arg(long, conflicts_with = "fleet")]
    pub all_profiles: bool,
    /// A fleet file: the profiles in waves, how many run at once, the soak time (README,
    /// "Fleet"). With --profiles, only those of its profiles run.
    #[arg(long, value_name = "FILE")]
    pub fleet: Option<PathBuf>,
    /// How many profiles run at once (default: 8 for reads, 4 for `up`, or the fleet file's).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallel: Option<u16>,
}

impl FleetArgs {
    /// Whether the command runs over several profiles.
    pub fn selected(&self) -> bool {
        !self.profiles.is_empty() || self.all_profiles || self.fleet.is_some()
    }
}

/// Where bundles and profiles come from.
#[derive(Debug, Clone, Args)]
pub struct SourceArgs {
    /// Load bundles from this folder instead of the ones built in (its sibling templates/ and
    /// profiles/ folders are used when present).
    #[arg(long, env = "PLANE_ADDONS_DIR", value_name = "DIR")]
    pub addons_dir: Option<PathBuf>,
    /// Load profiles from this folder.
    #[arg(long, env = "PLANE_PROFILES_DIR", value_name = "DIR")]
    pub profiles_dir: Option<PathBuf>,
}

/// What decides a render: the bundle, the profile and values.
#[derive(Debug, Clone, Args)]
pub struct RenderArgs {
    /// The bundle to render (see `plane addons`); from the app file when one is given.
    #[arg(required_unless_present = "app_file")]
    pub addon: Option<String>,
    /// An app file (plane.yaml) with the bundle, profile, namespace, values files and `--set`
    /// pairs; flags given beside it add values files and `--set` pairs after its own.
    #[arg(long, value_name = "FILE")]
    pub app_file: Option<PathBuf>,
    /// The environment profile (see `plane profiles`), or a path to a profile file.
    #[arg(short, long, value_name = "PROFILE")]
    pub profile: Option<String>,
    /// A values file; repeatable, the right-most wins.
    #[arg(short = 'f', long = "values", value_name = "FILE")]
    pub values: Vec<PathBuf>,
    /// Set one value: PATH=VALUE with a YAML-typed value; repeatable, the right-most wins.
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub set: Vec<String>,
    /// The release name (defaults to the bundle name; unique per namespace).
    #[arg(long, value_parser = plane_name)]
    pub release: Option<String>,
    /// Install a team instance into this existing namespace, beside the platform release: only
    /// the bundle's instance components, nothing cluster-scoped; its record and lock live there.
    #[arg(
        short = 'n',
        long,
        value_name = "NAMESPACE",
        value_parser = plane_name,
        conflicts_with = "state_namespace"
    )]
    pub namespace: Option<String>,
    #[command(flatten)]
    pub state: StateArgs,
    #[command(flatten)]
    pub sources: SourceArgs,
    /// Raise (or lower) a render budget: NAME=VALUE with NAME one of time (60s), memory (2GiB),
    /// stack (64MiB), output (64MiB), objects (5000), range (100000), file (16MiB); repeatable.
    #[arg(long = "budget", value_name = "NAME=VALUE")]
    pub budget: Vec<String>,
}

#[derive(Debug, Args)]
pub struct TemplateArgs {
    #[command(flatten)]
    pub render: RenderArgs,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = DataFormat::Yaml)]
    pub output: DataFormat,
    /// Render for an engine that runs the bundle continuously, keeping plane's guarantees: stage
    /// order, no prune of CRDs, namespaces and volumes, no generated Secret (each must be declared
    /// as provided in the app file), and a refusal of an empty render or a missing input.
    #[arg(long = "for", value_enum, value_name = "ENGINE")]
    pub engine: Option<Engine>,
}

/// An engine that renders plane's bundles and applies them continuously.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Engine {
    /// Argo CD, through plane's config-management plugin.
    Argocd,
    /// Flux's kustomize-controller, from a Git path or an OCI artifact.
    Flux,
}

impl Engine {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Argocd => "argocd",
            Self::Flux => "flux",
        }
    }
}

#[derive(Debug, Args)]
pub struct GitopsArgs {
    #[command(subcommand)]
    pub command: GitopsCommand,
}

#[derive(Debug, Subcommand)]
pub enum GitopsCommand {
    /// Print the argocd-cm entries (`resource.customizations.health.*`) that give Argo CD the
    /// readiness the bundle declares for its custom kinds, as Lua.
    ArgocdHealth(GitopsBundleArgs),
    /// Print a Flux Kustomization for the bundle's render: prune, wait, and `healthCheckExprs`
    /// from the readiness the bundle declares.
    FluxKustomization(FluxArgs),
    /// Print the bundle's inputs as Argo CD plugin parameters (JSON): what plane's plugin shows
    /// in Argo CD's UI, handed back to `template --for argocd` as `PARAM_<NAME>`.
    ArgocdParameters(GitopsBundleArgs),
}

/// Which bundle, by name or by app file.
#[derive(Debug, Args)]
pub struct GitopsBundleArgs {
    /// The bundle; from the app file when one is given.
    #[arg(required_unless_present = "app_file")]
    pub addon: Option<String>,
    /// An app file (plane.yaml).
    #[arg(long, value_name = "FILE")]
    pub app_file: Option<PathBuf>,
    #[command(flatten)]
    pub sources: SourceArgs,
}

#[derive(Debug, Args)]
pub struct FluxArgs {
    #[command(flatten)]
    pub bundle: GitopsBundleArgs,
    /// The Flux source holding the render: KIND/NAME (GitRepository, OCIRepository, Bucket).
    #[arg(long, value_name = "KIND/NAME")]
    pub source: String,
    /// The path of the render inside the source.
    #[arg(long, default_value = "./")]
    pub path: String,
    /// The Kustomization's name (default: the release's).
    #[arg(long, value_parser = plane_name)]
    pub name: Option<String>,
    /// The namespace of the Kustomization and of its source.
    #[arg(long, default_value = "flux-system", value_parser = plane_name)]
    pub namespace: String,
    /// How often Flux reconciles it (e.g. 10m).
    #[arg(long, default_value = "10m")]
    pub interval: String,
    /// How long Flux waits for everything to be ready (e.g. 10m).
    #[arg(long, default_value = "10m")]
    pub timeout: String,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = TableFormat::Table)]
    pub output: TableFormat,
    #[command(flatten)]
    pub sources: SourceArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DataFormat {
    Yaml,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TableFormat {
    Table,
    Json,
    Yaml,
}

// Each command's examples are in docs/cli-examples/: they name the bundle plane ships, which the
// engine itself does not know.
const HISTORY_EXAMPLES: &str = include_str!("../docs/cli-examples/history.txt");
const IMAGES_EXAMPLES: &str = include_str!("../docs/cli-examples/images.txt");
const COMPLETION_EXAMPLES: &str = include_str!("../docs/cli-examples/completion.txt");

const ROLLBACK_EXAMPLES: &str = include_str!("../docs/cli-examples/rollback.txt");

const TEMPLATE_EXAMPLES: &str = include_str!("../docs/cli-examples/template.txt");

const ADDONS_EXAMPLES: &str = include_str!("../docs/cli-examples/addons.txt");

const DIFF_EXAMPLES: &str = include_str!("../docs/cli-examples/diff.txt");

const UP_EXAMPLES: &str = include_str!("../docs/cli-examples/up.txt");

const LS_EXAMPLES: &str = include_str!("../docs/cli-examples/ls.txt");

const STATUS_EXAMPLES: &str = include_str!("../docs/cli-examples/status.txt");

const DOWN_EXAMPLES: &str = include_str!("../docs/cli-examples/down.txt");

const GITOPS_EXAMPLES: &str = include_str!("../docs/cli-examples/gitops.txt");
const PROFILES_EXAMPLES: &str = include_str!("../docs/cli-examples/profiles.txt");
