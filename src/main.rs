//! lambda-image: build AWS Lambda container images from a compiled `bootstrap`, without Docker.
//!
//! This file only parses the command line, dispatches, and turns errors into exit codes.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use lambda_image::cli;
use lambda_image::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Each command gives the text for stdout and the exit status.
    let outcome = match &cli.command {
        Command::Build(args) => cli::build::run(args).map(|report| {
            let text = if args.json {
                report.to_json() + "\n"
            } else {
                report.to_text()
            };
            (text, 0)
        }),
        Command::Check(args) => {
            cli::check::run(args).map(|report| (report.render(args.json), report.exit_code()))
        }
        Command::Zip(args) => cli::zip::run(args).map(|report| {
            let text = if args.json {
                report.to_json() + "\n"
            } else {
                report.to_text()
            };
            (text, 0)
        }),
        Command::Base(args) => cli::base::run(args).map(|text| (text, 0)),
        Command::Invoke(args) => return cli::invoke::run(args),
        Command::Serve(args) => cli::serve::run(args).map(|()| (String::new(), 0)),
        Command::Completions(args) => cli::docs::completions(args).map(|text| (text, 0)),
        Command::Man(args) => cli::docs::man(args).map(|text| (text, 0)),
    };
    match outcome {
        Ok((text, status)) => {
            // A closed stdout (e.g. `| head`) is not worth a panic.
            let _ = std::io::stdout().write_all(text.as_bytes());
            ExitCode::from(status)
        }
        Err(error) => {
            eprintln!("lambda-image: error: {error}");
            ExitCode::from(error.kind().exit_code())
        }
    }
}
