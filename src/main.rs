//! lambda-image: build AWS Lambda container images from a compiled `bootstrap`, without Docker.
//!
//! This file only parses the command line, dispatches, and hands every command's result to
//! [`outcome::finish`], the one mapping to stdout, stderr and the exit code.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind as ClapErrorKind;

use lambda_image::cli;
use lambda_image::cli::outcome::{self, Finished};
use lambda_image::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return command_line_error(error),
    };
    let result = match &cli.command {
        Command::Build(args) => cli::build::run(args)
            .map(|report| Finished::success(report.to_text(), report.to_json())),
        Command::Check(args) => cli::check::run(args).map(|report| report.finished()),
        Command::Zip(args) => {
            cli::zip::run(args).map(|report| Finished::success(report.to_text(), report.to_json()))
        }
        Command::Base(args) => cli::base::run(args),
        Command::Invoke(args) => cli::invoke::run(args),
        Command::Serve(args) => cli::serve::run(args).map(|()| Finished::nothing()),
        Command::Completions(args) => cli::docs::completions(args).map(Finished::text),
        Command::Man(args) => cli::docs::man(args).map(Finished::text),
    };
    let exit = outcome::finish(result, cli.command.json());
    if let Some(line) = &exit.stderr {
        lambda_image::emulator::log::write_line(line);
    }
    // A closed stdout (e.g. `| head`) is not worth a panic.
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(&exit.stdout);
    let _ = stdout.flush();
    ExitCode::from(exit.code)
}

/// clap's error: as clap prints it (exit 2; `--help` and `--version` exit 0; `--version` as
/// [`cli::version_line`] for every command), and, when the
/// command line asks for `--json`, also as the JSON error object on stdout.
fn command_line_error(error: clap::Error) -> ExitCode {
    // Every command's `--version` names the program, not `lambda-image-build`.
    if error.kind() == ClapErrorKind::DisplayVersion {
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(cli::version_line().as_bytes());
        let _ = stdout.flush();
        return ExitCode::SUCCESS;
    }
    let informational = matches!(
        error.kind(),
        ClapErrorKind::DisplayHelp
            | ClapErrorKind::DisplayVersion
            | ClapErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    );
    if informational || !outcome::json_requested(std::env::args_os().skip(1)) {
        error.exit();
    }
    let _ = error.print();
    let usage = outcome::clap_error(&error);
    let _ = writeln!(std::io::stdout(), "{}", usage.to_json());
    ExitCode::from(usage.kind().exit_code())
}
