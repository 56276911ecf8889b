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

/// The page of `command` (named as its full command line joined with `-`).
fn render(command: &clap::Command) -> Result<String> {
    let mut page = Vec::new();
    clap_mangen::Man::new(command.clone())
        .render(&mut page)
        .map_err(|error| Error::failure(format!("cannot render the manual page: {error}")))?;
    String::from_utf8(page)
        .map_err(|_| Error::failure("the manual page is not UTF-8 (a bug in lambda-image)"))
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
    fn the_printed_page_lists_no_help_command() {
        let page = man(&ManArgs { dir: None }).unwrap();
        assert!(page.contains("lambda\\-image\\-build(1)"), "{page}");
        assert!(!page.contains("lambda\\-image\\-help(1)"), "{page}");
    }
}
