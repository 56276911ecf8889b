//! Whether this machine can execute a bootstrap: ELF executables for its own architecture, or
//! for another one when binfmt_misc has a qemu-user handler for it; `#!` scripts always (their
//! interpreter is this machine's).

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
