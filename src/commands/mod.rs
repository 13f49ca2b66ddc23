//! One module per command; each is a short list of named steps.

mod addons;
mod cluster;
mod diff;
mod down;
mod ls;
mod owners;
mod profiles;
mod status;
pub mod template;
mod up;
mod yaml;

use crate::cli::{Cli, Command};
use crate::error::{Error, Status};
use crate::ui::Printer;

/// Runs the command the user asked for.
///
/// # Errors
/// Whatever the command reports; `main` maps it to an exit code.
pub fn run(cli: Cli, printer: &Printer) -> Result<Status, Error> {
    match cli.command {
        Command::Template(args) => template::run(&args, printer),
        Command::Addons(args) => addons::run(&args, printer),
        Command::Profiles(args) => profiles::run(&args, printer),
        Command::Diff(args) => diff::run(&args, printer),
        Command::Up(args) => up::run(&args, printer),
        Command::Ls(args) => ls::run(&args, printer),
        Command::Status(args) => status::run(&args, printer),
        Command::Down(args) => down::run(&args, printer),
    }
}

/// Serializes for `-o json` / `-o yaml` outputs.
fn to_format(value: &serde_json::Value, yaml: bool) -> Result<String, Error> {
    let text = if yaml {
        yaml::to_string(value).map_err(|err| failed("cannot write YAML", &err))?
    } else {
        let mut text =
            serde_json::to_string_pretty(value).map_err(|err| failed("cannot write JSON", &err))?;
        text.push('\n');
        text
    };
    Ok(text)
}

fn failed(what: &str, err: &dyn std::fmt::Display) -> Error {
    Error::Failed {
        problem: crate::error::Problem::new(what).because(err.to_string()),
    }
}
