//! `plane completion SHELL`: a completion script, with the names of the bundles and profiles
//! plane embeds offered where a command takes one.

use clap::CommandFactory;
use clap::builder::PossibleValuesParser;

use crate::bundle::{self, Sources, profile};
use crate::cli::{Cli, CompletionArgs, Shell};
use crate::error::ExitStatus;
use crate::ui::Printer;

/// The commands that take a bundle and `--profile`, and those that take `--profiles`.
const RENDERING: &[&str] = &["template", "diff", "up", "images"];
const FLEET: &[&str] = &["diff", "up", "ls", "status"];

pub fn run(args: &CompletionArgs, printer: &Printer) -> ExitStatus {
    let sources = Sources::embedded();
    let addons = bundle::names(&sources);
    let mut profiles = profile::names(&sources.profiles);
    profiles.sort();
    let mut command = Cli::command();
    for name in RENDERING {
        command = command.mut_subcommand(*name, |sub| {
            sub.mut_arg("addon", |arg| {
                arg.value_parser(PossibleValuesParser::new(addons.clone()))
            })
            .mut_arg("profile", |arg| {
                arg.value_parser(PossibleValuesParser::new(profiles.clone()))
            })
        });
    }
    for name in FLEET {
        command = command.mut_subcommand(*name, |sub| {
            sub.mut_arg("profiles", |arg| {
                arg.value_parser(PossibleValuesParser::new(profiles.clone()))
            })
        });
    }
    let mut script = Vec::new();
    match args.shell {
        Shell::Bash => {
            clap_complete::generate(
                clap_complete::Shell::Bash,
                &mut command,
                "plane",
                &mut script,
            );
        }
        Shell::Zsh => {
            clap_complete::generate(
                clap_complete::Shell::Zsh,
                &mut command,
                "plane",
                &mut script,
            );
        }
        Shell::Fish => {
            clap_complete::generate(
                clap_complete::Shell::Fish,
                &mut command,
                "plane",
                &mut script,
            );
        }
    }
    let mut text = String::from_utf8_lossy(&script).into_owned();
    if args.shell == Shell::Fish {
        // clap's fish script completes options only: the bundle, a positional, is added here.
        for name in RENDERING {
            text.push_str(&format!(
                "complete -c plane -n \"__fish_plane_using_subcommand {name}\" -f -a \"{}\"\n",
                addons.join(" ")
            ));
        }
    }
    printer.data(&text);
    ExitStatus::Success
}
