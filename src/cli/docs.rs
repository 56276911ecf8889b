//! `lambda-image completions SHELL` and `lambda-image man`: the shell completion scripts
//! (clap_complete) and the manual pages (clap_mangen), both made from the clap definitions, so
//! they always name the flags this build has.
//!
//! `man` prints lambda-image(1) on stdout; `man --dir DIR` writes it as `DIR/lambda-image.1`
//! with one page per command beside it (`lambda-image-build.1`, `lambda-image-base-pull.1`, ...),
//! each written to a temporary name and renamed into place.

use std::path::{Path, PathBuf};

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use crate::error::{Error, ErrorKind, IoContext, Result};

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write lambda-image.1 and one page per command (lambda-image-build.1, ...) into this
    /// directory (which must exist) instead of printing lambda-image(1).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// The completion script for `args.shell`, as the shell sources it.
pub fn completions(args: &CompletionsArgs) -> Result<String> {
    let mut command = super::Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "lambda-image", &mut script);
    let script = String::from_utf8(script).map_err(|_| {
        Error::failure("the completion script is not UTF-8 (a bug in lambda-image)")
    })?;
    Ok(match args.shell {
        Shell::Bash => fix_bash_states(&script),
        _ => script,
    })
}

/// clap_complete (up to 4.6.12 at least) spells the bash script's states two ways for a program
/// whose name has a hyphen: the loop that walks the words reaches `lambda__image__subcmd__build`,
/// the `case` arms test `lambda__subcmd__image__subcmd__build`, so no subcommand's flags or
/// values ever complete (clap-rs/clap#6421). The arms are respelled the way the loop spells them;
/// once clap_complete agrees with itself this changes nothing.
fn fix_bash_states(script: &str) -> String {
    script.replace("lambda__subcmd__image", "lambda__image")
}

/// lambda-image(1) as roff; with `--dir`, the pages written there, one path a line.
pub fn man(args: &ManArgs) -> Result<String> {
    // Built, the commands know their display names (`lambda-image-base-pull`) and command lines
    // (`lambda-image base pull`), which the pages are named and titled by. `help` is no command
    // worth a page (each page is the help).
    let mut command = super::Cli::command().disable_help_subcommand(true);
    command.build();
    match &args.dir {
        None => render(&command),
        Some(dir) => {
            let mut written = Vec::new();
            write_pages(dir, &command, &mut written)?;
            Ok(written
                .iter()
                .map(|path| format!("{}\n", path.display()))
                .collect())
        }
    }
}

/// The page of `command` (named as its full command line joined with `-`). Its `.TH` line is
/// `.TH NAME 1 "" "lambda-image VERSION"`: no date (a build date would make the page differ
/// between builds of the same source; man leaves the field blank), the program and its package
/// version as the source (footer), for every command's page. lambda-image(1) also has the
/// EXIT STATUS and ENVIRONMENT sections (see [`top_level_sections`]), before VERSION.
fn render(command: &clap::Command) -> Result<String> {
    let mut page = Vec::new();
    clap_mangen::Man::new(command.clone())
        // clap_mangen writes `.TH` arguments unquoted unless they hold a space, so an empty date
        // would vanish and the source move into its place: `""` is roff's empty argument.
        .date("\"\"")
        .source(format!("lambda-image {}", env!("CARGO_PKG_VERSION")))
        .render(&mut page)
        .map_err(|error| Error::failure(format!("cannot render the manual page: {error}")))?;
    let mut page = String::from_utf8(page)
        .map_err(|_| Error::failure("the manual page is not UTF-8 (a bug in lambda-image)"))?;
    if command.get_name() == "lambda-image" {
        let sections = top_level_sections();
        match page.find("\n.SH VERSION\n") {
            Some(at) => page.insert_str(at + 1, &sections),
            None => page.push_str(&sections),
        }
    }
    Ok(page)
}

/// The environment variables lambda-image reads, with what each does (docs/ name each where it
/// is used): `(names, meaning)`.
const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "LAMBDA_IMAGE_BASE_MIRROR",
        "HOST[:PORT]/PATH that stands for public.ecr.aws/lambda: catalog bases are pulled from \
         this mirror (build, check, base pull, base list).",
    ),
    (
        "SOURCE_DATE_EPOCH",
        "Seconds since 1970 for the created time of images and the file times in a .zip; \
         without it a fixed time, so the same inputs give the same digests.",
    ),
    (
        "XDG_CACHE_HOME, HOME",
        "The default --cache-dir: $XDG_CACHE_HOME/lambda-image, else ~/.cache/lambda-image.",
    ),
    (
        "DOCKER_CONFIG, REGISTRY_AUTH_FILE, XDG_RUNTIME_DIR, XDG_CONFIG_HOME",
        "Where registry credentials are looked up, as docker, podman and skopeo keep them: \
         $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json, \
         $XDG_CONFIG_HOME/containers/auth.json, $DOCKER_CONFIG/config.json (else \
         ~/.docker/config.json), with their credHelpers and credsStore (found on PATH).",
    ),
    (
        "HTTPS_PROXY, HTTP_PROXY, NO_PROXY",
        "The proxy for registry traffic, and the hosts that bypass it (lower-case names too).",
    ),
    (
        "SSL_CERT_FILE, SSL_CERT_DIR",
        "Certificate authorities trusted besides the system's (and \
         /etc/docker/certs.d/HOST:PORT/ca.crt).",
    ),
    (
        "LAMBDA_IMAGE_BLOB_IDLE_TIMEOUT_SECS",
        "How long a blob transfer may go without moving a byte (whole seconds; default 60).",
    ),
    (
        "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_PROFILE, AWS_ROLE_ARN, \
         AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ENDPOINT_URL_ECR, AWS_ENDPOINT_URL_LAMBDA, \
         AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL",
        "For an ECR registry with no other credential, and for deploy: the AWS SDK's \
         credential chain and endpoints (GetAuthorizationToken with the ecr feature; Lambda \
         and S3 with the deploy feature). ECR's region is the registry host's, or --region.",
    ),
    (
        "AWS_REGION, AWS_DEFAULT_REGION",
        "deploy: the function's region when neither --region nor a function ARN names one. \
         invoke and serve give the function AWS_REGION and AWS_DEFAULT_REGION from these \
         (else us-east-1).",
    ),
];

/// lambda-image(1)'s EXIT STATUS (made from [`ErrorKind::ALL`]: code, `error.kind`, meaning)
/// and ENVIRONMENT sections, as roff.
fn top_level_sections() -> String {
    let mut roff = String::from(".SH \"EXIT STATUS\"\n");
    roff.push_str("Every command uses one table; with \\fB\\-\\-json\\fR a failure is the object \\fB{\"error\":{\"kind\",\"message\",\"hint\",\"exit_code\"}}\\fR on stdout, its kind named below.\n");
    roff.push_str(".TP\n\\fB0\\fR\nsuccess\n");
    for kind in ErrorKind::ALL {
        roff.push_str(&format!(
            ".TP\n\\fB{}\\fR (\\fI{}\\fR)\n{}\n",
            kind.exit_code(),
            roff_text(kind.name()),
            roff_text(kind.meaning())
        ));
    }
    roff.push_str(".SH ENVIRONMENT\n");
    for (names, meaning) in ENVIRONMENT {
        roff.push_str(&format!(
            ".TP\n\\fB{}\\fR\n{}\n",
            roff_text(names),
            roff_text(meaning)
        ));
    }
    roff
}

/// `text` for a roff text line: backslashes, hyphens and apostrophes (typeset straight)
/// escaped, no leading control character.
fn roff_text(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('-', "\\-")
        .replace('\'', "\\(aq");
    if escaped.starts_with(['.', '\'']) {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

/// Writes the page of `command` into `dir` (named by its whole command line, as
/// `clap_mangen::generate_to` names them: `lambda-image-base-pull.1`), then those of its
/// subcommands.
fn write_pages(dir: &Path, command: &clap::Command, written: &mut Vec<PathBuf>) -> Result<()> {
    let path = dir.join(clap_mangen::Man::new(command.clone()).get_filename());
    let page = render(command)?;
    let mut file = tempfile::Builder::new()
        .prefix(".lambda-image-man-")
        .tempfile_in(dir)
        .path_context(ErrorKind::Output, "create a temporary file in", dir)
        .map_err(|error| {
            error.hint("give an existing, writable directory (e.g. mkdir -p DIR first)")
        })?;
    std::io::Write::write_all(&mut file, page.as_bytes()).path_context(
        ErrorKind::Output,
        "write",
        file.path(),
    )?;
    file.persist(&path).map_err(|error| {
        Error::output(format!("cannot write {}: {}", path.display(), error.error))
    })?;
    written.push(path);
    for sub in command.get_subcommands().filter(|sub| !sub.is_hide_set()) {
        write_pages(dir, sub, written)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bash_script_spells_each_state_one_way() {
        let script = completions(&CompletionsArgs { shell: Shell::Bash }).unwrap();
        assert!(!script.contains("lambda__subcmd__image"), "{script}");
        // The loop reaches this state and an arm handles it.
        assert!(script.contains("cmd=\"lambda__image__subcmd__build\""));
        assert!(script.contains("lambda__image__subcmd__build)"));
    }

    #[test]
    fn every_page_has_an_empty_date_and_the_program_as_source() {
        let version = env!("CARGO_PKG_VERSION");
        let title = |page: &str| {
            page.lines()
                .find(|line| line.starts_with(".TH "))
                .unwrap()
                .trim_end()
                .to_owned()
        };
        let page = man(&ManArgs { dir: None }).unwrap();
        assert_eq!(
            title(&page),
            format!(".TH lambda-image 1 \"\" \"lambda-image {version}\"")
        );
        let mut command = super::super::Cli::command();
        command.build();
        let build = render(command.find_subcommand("build").unwrap()).unwrap();
        assert_eq!(
            title(&build),
            format!(".TH lambda-image-build 1 \"\" \"lambda-image {version}\"")
        );
    }

    #[test]
    fn the_main_page_has_exit_status_from_the_kinds_and_environment() {
        let page = man(&ManArgs { dir: None }).unwrap();
        let exit = page.find(".SH \"EXIT STATUS\"").expect("EXIT STATUS");
        let environment = page.find(".SH ENVIRONMENT").expect("ENVIRONMENT");
        let version = page.find(".SH VERSION").expect("VERSION");
        assert!(exit < environment && environment < version, "{page}");
        for kind in ErrorKind::ALL {
            let entry = format!(
                ".TP\n\\fB{}\\fR (\\fI{}\\fR)\n{}\n",
                kind.exit_code(),
                roff_text(kind.name()),
                roff_text(kind.meaning())
            );
            assert!(page.contains(&entry), "{entry}\n{page}");
        }
        for variable in [
            "LAMBDA_IMAGE_BASE_MIRROR",
            "SOURCE_DATE_EPOCH",
            "DOCKER_CONFIG",
        ] {
            assert!(
                page[environment..].contains(&roff_text(variable)),
                "{variable}"
            );
        }
        // Only lambda-image(1) has them.
        let mut command = super::super::Cli::command();
        command.build();
        let build = render(command.find_subcommand("build").unwrap()).unwrap();
        assert!(!build.contains("EXIT STATUS"), "{build}");
    }

    #[test]
    fn the_printed_page_lists_no_help_command() {
        let page = man(&ManArgs { dir: None }).unwrap();
        assert!(page.contains("lambda\\-image\\-build(1)"), "{page}");
        assert!(!page.contains("lambda\\-image\\-help(1)"), "{page}");
    }
}
