//! One module per command, each a short list of named steps, and the steps they share.

mod addons;
mod completion;
mod diff;
mod down;
mod gitops;
mod history;
mod images;
mod ls;
mod profiles;
mod rollback;
mod status;
mod template;
mod up;
mod version;

mod deploy;
pub mod fleet;
mod guard;
mod ownership;
mod plan;
pub mod render;
mod sandbox;
mod session;

use crate::cli::{Cli, Command, DiffArgs, LsArgs, PlanFormat, StatusArgs, TableFormat, UpArgs};
use crate::error::{Error, ExitStatus};
use crate::settings::{
    DiffSettings, DownSettings, HistorySettings, ListSettings, LsSettings, RollbackSettings,
    StatusSettings, TemplateSettings, UpSettings,
};
use crate::ui::Printer;

/// In a render child (`sandbox.rs`): renders what the command line asks for, reports it to the
/// parent and says how to exit; `None` in any other process.
pub fn render_child(cli: &Cli) -> Option<std::process::ExitCode> {
    if !sandbox::is_child() {
        return None;
    }
    let settings = match &cli.command {
        Command::Template(args) => TemplateSettings::from_args(args).render,
        Command::Diff(args) => crate::settings::RenderSettings::from_args(&args.render),
        Command::Up(args) => crate::settings::RenderSettings::from_args(&args.render),
        Command::Images(args) => images::settings(args),
        _ => return Some(std::process::ExitCode::from(2)),
    };
    Some(sandbox::child(&settings))
}

/// Resolves the settings of the command the user asked for, and runs it.
///
/// # Errors
/// Whatever the command reports; `main` maps it to an exit code.
pub fn run(cli: Cli, printer: &Printer) -> Result<ExitStatus, Error> {
    match cli.command {
        Command::Template(args) => template::run(&TemplateSettings::from_args(&args), printer),
        Command::Addons(args) => addons::run(&ListSettings::from_args(&args), printer),
        Command::Profiles(args) => profiles::run(&ListSettings::from_args(&args), printer),
        Command::Diff(args) if args.fleet.selected() => fleet::run(&fleet_diff(&args), printer),
        Command::Diff(args) => {
            fleet_only(&[("--parallel", args.fleet.parallel.is_some())])?;
            diff::run(&DiffSettings::from_args(&args), printer)
        }
        Command::Up(args) if args.fleet.selected() => fleet::run(&fleet_up(&args), printer),
        Command::Up(args) => {
            fleet_only(&[
                ("--parallel", args.fleet.parallel.is_some()),
                ("--canary", args.canary.is_some()),
                ("--soak", args.soak.is_some()),
            ])?;
            up::run(&UpSettings::from_args(&args), printer)
        }
        Command::Ls(args) if args.fleet.selected() => fleet::run(&fleet_ls(&args), printer),
        Command::Ls(args) => {
            fleet_only(&[
                ("--parallel", args.fleet.parallel.is_some()),
                ("--expect-same", args.expect_same),
            ])?;
            ls::run(&LsSettings::from_args(&args), printer)
        }
        Command::Status(args) if args.fleet.selected() => fleet::run(&fleet_status(&args), printer),
        Command::Status(args) => {
            fleet_only(&[("--parallel", args.fleet.parallel.is_some())])?;
            status::run(&StatusSettings::from_args(&args), printer)
        }
        Command::History(args) => history::run(&HistorySettings::from_args(&args), printer),
        Command::Rollback(args) => rollback::run(&RollbackSettings::from_args(&args)?, printer),
        Command::Down(args) => down::run(&DownSettings::from_args(&args)?, printer),
        Command::Gitops(args) => gitops::run(&args, printer),
        Command::Images(args) => images::run(&args, printer),
        Command::Version(args) => version::run(&args, printer),
        Command::Completion(args) => Ok(completion::run(&args, printer)),
    }
}

/// `diff` over a fleet.
fn fleet_diff(args: &DiffArgs) -> fleet::Request<'_> {
    fleet::Request {
        kind: fleet::Kind::Diff {
            exit_code: args.exit_code,
        },
        fleet: &args.fleet,
        sources: &args.render.sources,
        cluster: &args.cluster,
        profile: args.render.profile.as_deref(),
        format: (args.output == PlanFormat::Json).then_some(false),
        release: None,
    }
}

/// `up` over a fleet; its soak reads the release as `ls` finds it.
fn fleet_up(args: &UpArgs) -> fleet::Request<'_> {
    let mut ls = Vec::new();
    match &args.render.namespace {
        Some(namespace) => ls.extend(["-n".to_owned(), namespace.clone()]),
        None => ls.extend([
            "--state-namespace".to_owned(),
            args.render.state.state_namespace.clone(),
        ]),
    }
    let release = args
        .render
        .release
        .clone()
        .or_else(|| args.render.addon.clone());
    fleet::Request {
        kind: fleet::Kind::Up {
            canary: args.canary.clone(),
            soak: args.soak,
        },
        fleet: &args.fleet,
        sources: &args.render.sources,
        cluster: &args.cluster,
        profile: args.render.profile.as_deref(),
        format: None,
        release: release.map(|name| (name, ls)),
    }
}

/// `ls` over a fleet.
fn fleet_ls(args: &LsArgs) -> fleet::Request<'_> {
    let kind = fleet::Kind::Ls {
        expect_same: args.expect_same,
    };
    fleet_read(kind, &args.fleet, &args.sources, &args.cluster, args.output)
}

/// `status` over a fleet.
fn fleet_status(args: &StatusArgs) -> fleet::Request<'_> {
    let kind = fleet::Kind::Status;
    fleet_read(kind, &args.fleet, &args.sources, &args.cluster, args.output)
}

/// A read over a fleet that takes no profile of its own.
fn fleet_read<'a>(
    kind: fleet::Kind,
    fleet: &'a crate::cli::FleetArgs,
    sources: &'a crate::cli::SourceArgs,
    cluster: &'a crate::cli::ClusterArgs,
    output: TableFormat,
) -> fleet::Request<'a> {
    fleet::Request {
        kind,
        fleet,
        sources,
        cluster,
        profile: None,
        format: table_format(output),
        release: None,
    }
}

/// `None` for a table, else whether YAML.
fn table_format(format: TableFormat) -> Option<bool> {
    match format {
        TableFormat::Table => None,
        TableFormat::Json => Some(false),
        TableFormat::Yaml => Some(true),
    }
}

/// Flags that only a fleet reads are refused without one, rather than silently ignored.
fn fleet_only(flags: &[(&str, bool)]) -> Result<(), Error> {
    let given: Vec<&str> = flags
        .iter()
        .filter(|(_, given)| *given)
        .map(|(flag, _)| *flag)
        .collect();
    if given.is_empty() {
        return Ok(());
    }
    Err(Error::input(
        crate::error::Problem::new(format!("{} only applies to a fleet", given.join(", ")))
            .hint("select the profiles with --profiles, --all-profiles or --fleet FILE"),
    ))
}
