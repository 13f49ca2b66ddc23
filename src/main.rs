//! The `plane` binary: parse the command line, run the command, map the result to an exit code.

use std::process::ExitCode;

use clap::Parser;
use plane::{cli, commands, ui};

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    if let Some(code) = commands::render_child(&cli) {
        return code;
    }
    let printer = ui::Printer::new(&cli.global);
    match commands::run(cli, &printer) {
        Ok(status) => status.exit_code(),
        Err(err) => {
            printer.error(&err);
            err.exit_code()
        }
    }
}
