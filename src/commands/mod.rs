//! One module per command, each a short list of named steps, and the steps they share.

mod addons;
mod diff;
mod down;
mod gitops;
mod history;
mod ls;
mod profiles;
mod rollback;
mod status;
mod template;
mod up;

mod deploy;
mod guard;
mod ownership;
mod plan;
pub mod render;
mod sandbox;
mod session;

use crate::cli::{Cli, Command};
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
        Command::Diff(args) => diff::run(&DiffSettings::from_args(&args), printer),
        Command::Up(args) => up::run(&UpSettings::from_args(&args), printer),
        Command::Ls(args) => ls::run(&LsSettings::from_args(&args), printer),
        Command::Status(args) => status::run(&StatusSettings::from_args(&args), printer),
        Command::History(args) => history::run(&HistorySettings::from_args(&args), printer),
        Command::Rollback(args) => rollback::run(&RollbackSettings::from_args(&args)?, printer),
        Command::Down(args) => down::run(&DownSettings::from_args(&args)?, printer),
        Command::Gitops(args) => gitops::run(&args, printer),
    }
}
