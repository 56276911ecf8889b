//! The extensions rule of `check IMAGE`: every entry of `/opt/extensions` that is not a
//! directory is started by Lambda before the runtime (as the Runtime Interface Emulator's
//! `ListExternalAgentPaths` lists them: directories skipped, links kept), so each must lead to a
//! file a non-root user can execute, an ELF for the image's architecture or a `#!` script whose
//! interpreter is in the image; one that cannot start fails the function's init with
//! `Extension.LaunchError` (aws-samples/aws-lambda-extensions#38, "permission denied"; #54, a
//! Windows line ending). The file rules are [`super::executable`]'s, shared with the entrypoint.
//!
//! `build` checks the extensions it adds before writing anything
//! ([`crate::bootstrap::extensions`]); this rule sees the image as it is, whoever made it.

use serde_json::Value;

use super::executable::{Checker, Role};
use crate::findings::{Finding, Level};
use crate::image::filesystem::{Filesystem, Node};
use crate::platform::Architecture;

/// Where Lambda looks for extensions.
pub const EXTENSIONS_DIRECTORY: &str = "/opt/extensions";

/// Checks each extension in `filesystem` (the image's file tree) as Lambda would start it.
pub fn check(filesystem: &Filesystem, architecture: Architecture, config: &Value) -> Vec<Finding> {
    let mut checker = Checker::new(filesystem, architecture, config);
    let names = filesystem.children(EXTENSIONS_DIRECTORY);
    let mut started = 0;
    for name in &names {
        let path = format!("{EXTENSIONS_DIRECTORY}/{name}");
        // As `lstat` sees it: a link to a directory is started (and fails), a directory is not.
        if filesystem.node(&path) == Some(&Node::Directory) {
            continue;
        }
        started += 1;
        checker.check_executable(Role::Extension, &path, 0);
    }
    if started > 0 {
        checker.findings.push(Finding::new(
            "extension",
            Some(architecture),
            Level::Info,
            format!(
                "{started} extension{} in {EXTENSIONS_DIRECTORY}, started by Lambda before the runtime",
                if started == 1 { "" } else { "s" }
            ),
        ));
    }
    checker.findings
}
