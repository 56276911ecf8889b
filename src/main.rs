//! lambda-image: build AWS Lambda container images from a compiled `bootstrap`, without Docker.
//!
//! This file only parses the command line, dispatches, and hands every command's result to
//! [`outcome::finish`], the one mapping to stdout, stderr and the exit code.

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind as ClapErrorKind;

use lambda_image::cli;
use lambda_image::cli::base::BaseCommand;
use lambda_image::cli::outcome::{self, Finished};
use lambda_image::cli::{Cli, Command};

/// Records whether descriptor 1 was closed at start (`>&-`), before Rust's start-up opens
/// `/dev/null` in its place, which would make every write to stdout succeed unseen.
#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array")]
static RECORD_CLOSED_STDOUT: extern "C" fn() = record_closed_stdout;

#[cfg(target_os = "linux")]
extern "C" fn record_closed_stdout() {
    // SAFETY: F_GETFD only reads the descriptor's flags; it fails (EBADF) for a closed one.
    if unsafe { libc::fcntl(1, libc::F_GETFD) } == -1 {
        outcome::STDOUT_WAS_CLOSED.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

fn main() -> ExitCode {
    lambda_image::sandbox::run_helper_if_asked();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return command_line_error(error),
    };
    // A long command stopped by SIGINT or SIGTERM ends as `interrupted` (128 + the signal),
    // reported like any error; `serve` stops cleanly on them itself.
    let writes_outputs = match &cli.command {
        Command::Build(_) | Command::Zip(_) => Some(true),
        Command::Base(args) => Some(matches!(args.command, BaseCommand::Pull(_))),
        Command::Check(_) | Command::Invoke(_) | Command::Deploy(_) => Some(false),
        Command::Serve(_) | Command::Completions(_) | Command::Man(_) => None,
    };
    if let Some(outputs) = writes_outputs {
        let json = cli.command.json();
        let watching = lambda_image::emulator::signals::exit_on_termination(move |signal| {
            outcome::interrupted(signal, outputs, json)
        });
        if let Err(error) = watching {
            let exit = outcome::finish(Err(error), json);
            return ExitCode::from(outcome::emit(&exit));
        }
    }
    let result = match &cli.command {
        Command::Build(args) => cli::build::run(args),
        Command::Check(args) => cli::check::run(args).map(|report| report.finished()),
        Command::Zip(args) => {
            cli::zip::run(args).map(|report| Finished::success(report.to_text(), report.to_json()))
        }
        Command::Deploy(args) => cli::deploy::run(args)
            .map(|report| Finished::success(report.to_text(), report.to_json())),
        Command::Base(args) => cli::base::run(args),
        Command::Invoke(args) => cli::invoke::run(args),
        Command::Serve(args) => cli::serve::run(args).map(|()| Finished::nothing()),
        Command::Completions(args) => cli::docs::completions(args).map(Finished::text),
        Command::Man(args) => cli::docs::man(args).map(Finished::text),
    };
    let exit = outcome::finish(result, cli.command.json());
    ExitCode::from(outcome::emit(&exit))
}

/// clap's error: as clap prints it (exit 2; `--help` and `--version` exit 0; `--version` as
/// [`cli::version_line`] for every command), and, when the
/// command line asks for `--json`, also as the JSON error object on stdout.
fn command_line_error(error: clap::Error) -> ExitCode {
    let error = outcome::without_credentials(error);
    // Every command's `--version` names the program, not `lambda-image-build`.
    if error.kind() == ClapErrorKind::DisplayVersion {
        let written = outcome::write_stdout(cli::version_line().as_bytes());
        return ExitCode::from(outcome::after_writing_stdout(written, 0));
    }
    let informational = matches!(
        error.kind(),
        ClapErrorKind::DisplayHelp | ClapErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    );
    if informational && !error.use_stderr() {
        // `--help`: clap's text on stdout, which must be writable.
        let written = outcome::stdout_is_open()
            .and_then(|()| error.print())
            .and_then(|()| std::io::Write::flush(&mut std::io::stdout()));
        return ExitCode::from(outcome::after_writing_stdout(written, 0));
    }
    if informational || !outcome::json_requested(std::env::args_os().skip(1)) {
        error.exit();
    }
    let _ = error.print();
    let usage = outcome::clap_error(&error);
    let exit = outcome::Exit {
        stdout: format!("{}\n", usage.to_json()).into_bytes(),
        stderr: None,
        code: usage.kind().exit_code(),
    };
    ExitCode::from(outcome::emit(&exit))
}
