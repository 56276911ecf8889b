//! The command line: clap definitions, one file per command.

pub mod base;
pub mod build;
pub mod check;
pub mod deploy;
pub mod docs;
pub mod function;
pub mod image_function;
pub mod invoke;
pub mod outcome;
pub mod serve;
pub mod zip;

use clap::{Parser, Subcommand};

use crate::credentials::Credential;
use crate::credentials::parse_creds;
use crate::error::{Error, Result};
use crate::registry::SessionOptions;

/// What `--version` prints after the program name: the package version, the commit built from
/// (`-dirty` when tracked files had changes; `unknown` outside git) and the enabled optional
/// features (`deploy,ecr`, or `none`), e.g. `0.1.0 (commit 04a357c, features: deploy,ecr)`. Made by `build.rs`.
pub const VERSION: &str = env!("LAMBDA_IMAGE_VERSION");

/// What `--version` prints, the same for every command (`lambda-image build --version` too, where
/// clap would say `lambda-image-build`): `lambda-image 0.1.0 (commit 04a357c, features: deploy,ecr)\n`.
pub fn version_line() -> String {
    format!("lambda-image {VERSION}\n")
}

/// Build AWS Lambda container images from a compiled `bootstrap`, without Docker.
#[derive(Debug, Parser)]
#[command(name = "lambda-image", version = VERSION, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once per run: the size of the largest command's flags does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Put bootstrap executables on a Lambda base image and write the result.
    Build(build::BuildArgs),
    /// The catalog of Lambda bases, and base kits for builds without internet.
    Base(base::BaseArgs),
    /// Lint an image for what Lambda would reject, and check bootstraps against a base.
    Check(check::CheckArgs),
    /// Deploy an ECR image (by its architecture's digest) or a .zip to a Lambda function.
    Deploy(deploy::DeployArgs),
    /// Write the .zip deployment package for the provided.al2023 / provided.al2 runtimes.
    Zip(zip::ZipArgs),
    /// Run a bootstrap once on a local Lambda Runtime API and print its answer to one event.
    Invoke(invoke::InvokeArgs),
    /// Serve a bootstrap (or an external runtime) like the Lambda Runtime Interface Emulator.
    Serve(serve::ServeArgs),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish) on stdout.
    Completions(docs::CompletionsArgs),
    /// Print the manual page lambda-image(1) as roff, or write one page per command with --dir.
    Man(docs::ManArgs),
}

impl Command {
    /// Whether `--json` was given: the report, or the error, as one JSON object on stdout.
    pub fn json(&self) -> bool {
        match self {
            Command::Build(args) => args.json,
            Command::Check(args) => args.json,
            Command::Zip(args) => args.json,
            Command::Deploy(args) => args.json,
            Command::Invoke(args) => args.json,
            Command::Base(args) => args.json(),
            Command::Serve(_) | Command::Completions(_) | Command::Man(_) => false,
        }
    }
}

/// `--skip-checks` of `build` and `check --bootstrap`, which run every check of
/// [`crate::bootstrap::checks::CheckName::ALL`] (`libraries` when the base's files are on this
/// machine), so take each name; clap refuses any other (exit 2, listing them). `zip` runs fewer
/// and has [`PackageSkipChecks`]. `check IMAGE` without `--bootstrap` runs none and refuses the
/// flag (usage error); `invoke` and `serve` only refuse a bootstrap for the wrong architecture,
/// which cannot be skipped, and have no such flag.
#[derive(Debug, clap::Args)]
pub struct SkipChecks {
    /// Skip a named bootstrap check (repeatable or comma-separated); reported as skipped.
    #[arg(
        long = "skip-checks",
        value_name = "CHECK",
        value_parser = check_names(&crate::bootstrap::checks::CheckName::ALL),
        value_delimiter = ','
    )]
    pub skip_checks: Vec<crate::bootstrap::checks::CheckName>,
}

/// `--skip-checks` of `zip`: the checks of
/// [`crate::bootstrap::checks::CheckName::WITHOUT_BASE_FILES`], the ones a `.zip`'s runtime
/// (a catalog entry, whose files are not here) can run; any other name, `libraries` included,
/// is a usage error (exit 2) listing them.
#[derive(Debug, clap::Args)]
pub struct PackageSkipChecks {
    /// Skip a named bootstrap check (repeatable or comma-separated); reported as skipped.
    #[arg(
        long = "skip-checks",
        value_name = "CHECK",
        value_parser = check_names(&crate::bootstrap::checks::CheckName::WITHOUT_BASE_FILES),
        value_delimiter = ','
    )]
    pub skip_checks: Vec<crate::bootstrap::checks::CheckName>,
}

/// A parser taking exactly the names of `checks` (so `--help` and completions list those).
fn check_names(
    checks: &'static [crate::bootstrap::checks::CheckName],
) -> impl clap::builder::TypedValueParser<Value = crate::bootstrap::checks::CheckName> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(checks.iter().map(|check| check.name())).map(|name| {
        crate::bootstrap::checks::CheckName::ALL
            .into_iter()
            .find(|check| check.name() == name)
            .expect("a possible value is a check name")
    })
}

/// The flags every command that talks to registries shares.
#[derive(Debug, clap::Args)]
pub struct RegistryFlags {
    /// Allow plain HTTP to this registry host[:port] (repeatable). Loopback hosts always may.
    #[arg(long = "insecure-registry", value_name = "HOST", value_parser = crate::reference::registry::parse_registry_host)]
    pub insecure_registries: Vec<String>,

    /// Where pulled blobs are cached [default: $XDG_CACHE_HOME/lambda-image or ~/.cache/lambda-image].
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<std::path::PathBuf>,

    /// No progress output on stderr.
    #[arg(long, short = 'q')]
    pub quiet: bool,

    /// The AWS region: of ECR credentials [default: the ECR host's]; for deploy, the
    /// function's [default: a function ARN's, AWS_REGION or the profile's, else the image's].
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
}

/// `--username NAME --password-stdin`: the credential `--creds USER:PASS` gives, with the
/// password read from stdin so that it is never on the command line (where `ps` and shell
/// history show it), as in `aws ecr get-login-password | docker login --username AWS
/// --password-stdin`. Both flags or neither; not with `--creds` (clap: usage error, exit 2).
#[derive(Debug, clap::Args)]
pub struct PasswordStdin {
    /// The user name for --password-stdin (instead of --creds).
    #[arg(
        long,
        value_name = "NAME",
        requires = "password_stdin",
        conflicts_with = "creds"
    )]
    pub username: Option<String>,

    /// Read the password for --username from stdin, e.g. piped from `aws ecr get-login-password`.
    #[arg(long, requires = "username", conflicts_with = "creds")]
    pub password_stdin: bool,
}

impl PasswordStdin {
    /// The credential of `--creds` (named `flag` in errors, never quoted), or of `--username`
    /// with the password read from stdin, with the flag that gave it (for messages). Errors
    /// (usage): a malformed `--creds`, an empty user name, stdin unreadable, not UTF-8, or
    /// empty.
    pub fn credential(
        &self,
        flag: &'static str,
        creds: Option<&str>,
    ) -> Result<Option<(Credential, &'static str)>> {
        let Some(username) = &self.username else {
            return Ok(credential_flag(flag, creds)?.map(|credential| (credential, flag)));
        };
        if username.is_empty() {
            return Err(Error::usage("--username must not be empty"));
        }
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes).map_err(|error| {
            Error::usage(format!("--password-stdin: cannot read stdin: {error}"))
        })?;
        let password = password_from_stdin(bytes).map_err(|why| {
            Error::usage(format!("--password-stdin: {why}"))
                .hint("pipe the password in, e.g. `aws ecr get-login-password | lambda-image ... --username AWS --password-stdin`")
        })?;
        Ok(Some((
            Credential::Basic {
                username: username.clone(),
                password,
            },
            "--username/--password-stdin",
        )))
    }
}

/// The password in what was read from stdin: one trailing `\n` or `\r\n` removed (what `echo`
/// or a here-string adds), nothing else. Errors: not UTF-8, or empty. Never quotes the bytes.
fn password_from_stdin(bytes: Vec<u8>) -> std::result::Result<String, &'static str> {
    let mut text = String::from_utf8(bytes).map_err(|_| "the password read is not UTF-8")?;
    if text.ends_with("\r\n") {
        text.truncate(text.len() - 2);
    } else if text.ends_with('\n') {
        text.truncate(text.len() - 1);
    }
    if text.is_empty() {
        return Err("the password read from stdin is empty (nothing was piped in?)");
    }
    Ok(text)
}

impl RegistryFlags {
    /// The registry session that reads the image `reference` names (`check IMAGE`,
    /// `invoke --image`, `serve --image`), with `creds` for its registry; none for a local
    /// image. Errors: the session's (kind `registry`, exit 6; `usage` for a bad mirror).
    pub fn image_session(
        &self,
        reference: &crate::catalog::BaseReference,
        creds: Option<(Credential, &'static str)>,
    ) -> Result<Option<crate::registry::Session>> {
        match reference {
            crate::catalog::BaseReference::Registry(registry_reference) => {
                Ok(Some(crate::registry::Session::connect(
                    Some(registry_reference),
                    &[],
                    SessionOptions {
                        base_creds: creds,
                        creds: None,
                        read_role: crate::credentials::HostRole::Checked,
                        ..self.session_options()
                    },
                )?))
            }
            crate::catalog::BaseReference::Local(_) | crate::catalog::BaseReference::Scratch => {
                Ok(None)
            }
        }
    }

    /// The ECR tokens of this run, asked in `--region` (else each ECR host's own region).
    pub fn ecr_tokens(&self) -> std::sync::Arc<crate::credentials::ecr::TokenCache> {
        std::sync::Arc::new(crate::credentials::ecr::TokenCache::for_run(
            self.region.clone(),
        ))
    }

    /// Session options from these flags, with no credentials.
    pub fn session_options(&self) -> SessionOptions {
        SessionOptions {
            creds: None,
            base_creds: None,
            insecure_registries: self.insecure_registries.clone(),
            cache_dir: self.cache_dir.clone(),
            quiet: self.quiet,
            ecr_tokens: self.ecr_tokens(),
            read_role: Default::default(),
            read_credential_flag: Default::default(),
        }
    }
}

/// Parses a `USER:PASS` flag; the error never quotes the value.
fn credential_flag(flag: &str, value: Option<&str>) -> Result<Option<Credential>> {
    value
        .map(|text| parse_creds(text).map_err(|error| Error::usage(format!("{flag}: {error}"))))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// The `--skip-checks` names `--help` and completions show for a subcommand.
    fn skip_check_names(path: &[&str]) -> Vec<String> {
        let mut command = Cli::command();
        for name in path {
            command = command.find_subcommand(name).unwrap().clone();
        }
        let argument = command
            .get_arguments()
            .find(|argument| argument.get_long() == Some("skip-checks"))
            .unwrap();
        argument
            .get_possible_values()
            .iter()
            .map(|value| value.get_name().to_owned())
            .collect()
    }

    #[test]
    fn each_command_lists_and_takes_only_the_checks_it_runs() {
        let all = ["architecture", "glibc", "interpreter", "libraries"];
        assert_eq!(skip_check_names(&["build"]), all);
        assert_eq!(skip_check_names(&["check"]), all);
        assert_eq!(skip_check_names(&["zip"]), all[..3]);
        let zip = |name: &str| {
            Cli::try_parse_from([
                "lambda-image",
                "zip",
                "--bootstrap",
                "b",
                "-o",
                "z.zip",
                "--skip-checks",
                name,
            ])
        };
        let refused = zip("libraries").unwrap_err();
        assert_eq!(refused.kind(), clap::error::ErrorKind::InvalidValue);
        let text = refused.to_string();
        assert!(
            text.contains("[possible values: architecture, glibc, interpreter]"),
            "{text}"
        );
        let Command::Zip(args) = zip("glibc,interpreter").unwrap().command else {
            panic!("not zip")
        };
        assert_eq!(
            args.checks.skip_checks,
            [
                crate::bootstrap::checks::CheckName::Glibc,
                crate::bootstrap::checks::CheckName::Interpreter
            ]
        );
    }

    #[test]
    fn password_from_stdin_removes_one_trailing_newline_only() {
        let read = |bytes: &[u8]| password_from_stdin(bytes.to_vec());
        assert_eq!(read(b"s3cret\n"), Ok("s3cret".to_owned()));
        assert_eq!(read(b"s3cret\r\n"), Ok("s3cret".to_owned()));
        assert_eq!(read(b"s3cret"), Ok("s3cret".to_owned()));
        assert_eq!(read(b"s3cret\n\n"), Ok("s3cret\n".to_owned()));
        assert_eq!(read(b"s3cret\r"), Ok("s3cret\r".to_owned()));
        assert_eq!(read(b" pass word \n"), Ok(" pass word ".to_owned()));
        assert_eq!(read(b"a"), Ok("a".to_owned()));
        for empty in [&b""[..], b"\n", b"\r\n"] {
            assert!(read(empty).unwrap_err().contains("empty"), "{empty:?}");
        }
        assert!(read(b"\xff\xfe\n").unwrap_err().contains("UTF-8"));
    }
}
