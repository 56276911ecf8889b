//! Whether this machine can execute a bootstrap: ELF executables for its own architecture, or
//! for another one when binfmt_misc has a qemu-user handler for it; `#!` scripts always (their
//! interpreter is this machine's). And whether it can run an image of an architecture: inside
//! the image's root the handler's interpreter is not on any path, so it must be registered with
//! the `F` (fix binary) flag, which opens the interpreter at registration (Linux
//! Documentation/admin-guide/binfmt-misc.rst); Debian's qemu-user-static registers it so.

use std::path::Path;

use crate::bootstrap::{Bootstrap, BootstrapKind};
use crate::error::{Error, Result};
use crate::platform::Architecture;

/// Refuses a bootstrap this machine cannot execute, saying why and what would help.
pub fn check_runs_here(bootstrap: &Bootstrap) -> Result<()> {
    // What the machine executes is the ELF's own architecture, whatever it was given as.
    let BootstrapKind::Elf(elf) = &bootstrap.kind else {
        return Ok(());
    };
    let wanted = elf.architecture;
    let host = Architecture::parse(std::env::consts::ARCH);
    if host == Some(wanted) || emulated_by_binfmt(wanted) {
        return Ok(());
    }
    let host_name = host.map_or(std::env::consts::ARCH.to_owned(), |host| {
        format!("{} ({host})", host.lambda_name())
    });
    let build_hint = host.map_or(String::new(), |host| {
        format!(", or build the function for {}", host.lambda_name())
    });
    Err(Error::bootstrap(format!(
        "bootstrap {} is an ELF executable for {} ({wanted}), but this machine is {host_name}: it cannot run here",
        bootstrap.path.display(),
        wanted.lambda_name(),
    ))
    .hint(format!(
        "run it on a {} machine, or let this one emulate it: install qemu-user-static and register \
         {} with binfmt_misc (e.g. apt-get install qemu-user-static binfmt-support){build_hint}",
        wanted.lambda_name(),
        binfmt_handler_name(wanted)
    )))
}

/// Refuses to run an image of `architecture` (named `image` in messages) that this machine
/// cannot execute: not its own architecture, and no enabled binfmt_misc handler with the `F`
/// flag for it. Kind `bootstrap` (exit 3), as for a bootstrap that cannot run here.
pub fn check_image_runs_here(architecture: Architecture, image: &str) -> Result<()> {
    let host = Architecture::parse(std::env::consts::ARCH);
    let entry = Path::new("/proc/sys/fs/binfmt_misc").join(binfmt_handler_name(architecture));
    let state = std::fs::read_to_string(&entry).unwrap_or_default();
    image_runs_on(architecture, host, &state, image)
}

/// [`check_image_runs_here`] for a machine of architecture `host` whose binfmt_misc entry for
/// `architecture`'s handler reads `binfmt_entry` (empty: none).
fn image_runs_on(
    architecture: Architecture,
    host: Option<Architecture>,
    binfmt_entry: &str,
    image: &str,
) -> Result<()> {
    if host == Some(architecture) {
        return Ok(());
    }
    let handler = binfmt_handler_name(architecture);
    let problem = match binfmt_state(binfmt_entry) {
        BinfmtState::Usable => return Ok(()),
        BinfmtState::Missing => format!("binfmt_misc has no {handler} handler"),
        BinfmtState::Disabled => format!("binfmt_misc's {handler} handler is disabled"),
        BinfmtState::NotFixed => format!(
            "binfmt_misc's {handler} handler is registered without the F flag, so its \
             interpreter cannot be found inside the image's root"
        ),
    };
    let host_name = host.map_or(std::env::consts::ARCH.to_owned(), |host| {
        format!("{} ({host})", host.lambda_name())
    });
    let choose_host = host.map_or(String::new(), |host| {
        format!("; or, when the image also has linux/{host}, run that with --arch {host}")
    });
    Err(Error::bootstrap(format!(
        "{image} is an image for linux/{architecture} and this machine is {host_name}: {problem}"
    ))
    .hint(format!(
        "install qemu-user-static (e.g. apt-get install qemu-user-static binfmt-support), which \
         registers {handler} with the F flag; where it is installed but /proc/sys/fs/binfmt_misc \
         is empty (a container, a chroot), mount it (mount -t binfmt_misc binfmt_misc \
         /proc/sys/fs/binfmt_misc) and enable the handler (update-binfmts --enable \
         {handler}){choose_host}"
    )))
}

/// What a binfmt_misc entry's text (`/proc/sys/fs/binfmt_misc/NAME`) says about running a
/// foreign executable inside another root.
#[derive(Debug, PartialEq, Eq)]
enum BinfmtState {
    Usable,
    Missing,
    Disabled,
    NotFixed,
}

fn binfmt_state(entry: &str) -> BinfmtState {
    let mut lines = entry.lines();
    match lines.next() {
        None => BinfmtState::Missing,
        Some("enabled") => {
            let fixed = entry
                .lines()
                .find_map(|line| line.strip_prefix("flags:"))
                .is_some_and(|flags| flags.contains('F'));
            if fixed {
                BinfmtState::Usable
            } else {
                BinfmtState::NotFixed
            }
        }
        Some(_) => BinfmtState::Disabled,
    }
}

/// The name Debian's qemu-user-static registers for `architecture` in binfmt_misc.
fn binfmt_handler_name(architecture: Architecture) -> &'static str {
    match architecture {
        Architecture::Amd64 => "qemu-x86_64",
        Architecture::Arm64 => "qemu-aarch64",
    }
}

fn emulated_by_binfmt(architecture: Architecture) -> bool {
    let entry = Path::new("/proc/sys/fs/binfmt_misc").join(binfmt_handler_name(architecture));
    std::fs::read_to_string(entry).is_ok_and(|state| state.starts_with("enabled"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elf(architecture: Architecture) -> Bootstrap {
        Bootstrap {
            path: "/x/bootstrap".into(),
            architecture,
            kind: BootstrapKind::Elf(crate::bootstrap::elf::ElfFacts {
                architecture,
                linkage: crate::bootstrap::elf::Linkage::Static,
            }),
            size: 1,
            executable_on_disk: true,
            shown_as: None,
        }
    }

    #[test]
    fn a_binfmt_handler_runs_images_only_enabled_and_with_the_fix_binary_flag() {
        let entry = |first: &str, flags: &str| {
            format!(
                "{first}\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: {flags}\noffset 0\n"
            )
        };
        assert_eq!(binfmt_state(&entry("enabled", "POF")), BinfmtState::Usable);
        assert_eq!(binfmt_state(&entry("enabled", "F")), BinfmtState::Usable);
        assert_eq!(binfmt_state(&entry("enabled", "PO")), BinfmtState::NotFixed);
        assert_eq!(binfmt_state(&entry("enabled", "")), BinfmtState::NotFixed);
        assert_eq!(
            binfmt_state(&entry("disabled", "POF")),
            BinfmtState::Disabled
        );
        assert_eq!(binfmt_state(""), BinfmtState::Missing);
        let host = Architecture::parse(std::env::consts::ARCH).unwrap();
        assert!(check_image_runs_here(host, "oci:x").is_ok());

        let (amd64, arm64) = (Architecture::Amd64, Architecture::Arm64);
        assert!(
            image_runs_on(amd64, Some(amd64), "", "oci:x").is_ok(),
            "its own, no handler"
        );
        assert!(image_runs_on(arm64, Some(amd64), &entry("enabled", "POF"), "oci:x").is_ok());
        for (state, says) in [
            (String::new(), "no qemu-aarch64 handler"),
            (entry("disabled", "POF"), "is disabled"),
            (entry("enabled", "PO"), "without the F flag"),
        ] {
            let refused = image_runs_on(arm64, Some(amd64), &state, "oci:x").unwrap_err();
            assert_eq!(refused.kind(), crate::error::ErrorKind::Bootstrap);
            let message = refused.to_string();
            assert!(message.contains(says), "{message}");
            assert!(
                message.contains(
                    "oci:x is an image for linux/arm64 and this machine is x86_64 (amd64)"
                ),
                "{message}"
            );
            let hint = refused.hint_text().unwrap();
            assert!(hint.contains("--arch amd64"), "{refused:?}");
            // qemu-user-static installed in a container whose binfmt_misc is not mounted.
            assert!(
                hint.contains("mount -t binfmt_misc")
                    && hint.contains("update-binfmts --enable qemu-aarch64"),
                "{hint}"
            );
        }
    }

    #[test]
    fn own_architecture_and_scripts_run_and_a_foreign_elf_is_explained() {
        let host =
            Architecture::parse(std::env::consts::ARCH).expect("tests run on amd64 or arm64");
        let foreign = match host {
            Architecture::Amd64 => Architecture::Arm64,
            Architecture::Arm64 => Architecture::Amd64,
        };
        assert!(check_runs_here(&elf(host)).is_ok());
        let script = Bootstrap {
            kind: BootstrapKind::Script {
                shebang: crate::bootstrap::shebang::Shebang {
                    interpreter: "/bin/sh".into(),
                    argument: None,
                },
            },
            ..elf(foreign)
        };
        assert!(check_runs_here(&script).is_ok());
        if !emulated_by_binfmt(foreign) {
            let message = check_runs_here(&elf(foreign)).unwrap_err().to_string();
            assert!(message.contains("cannot run here"), "{message}");
            assert!(message.contains("qemu-user-static"), "{message}");
        }
    }
}
