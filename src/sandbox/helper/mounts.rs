//! PID 1's mounts: the tree bound read-only as `/` (`pivot_root`), a `/tmp` tmpfs of the
//! ephemeral storage size, a fresh `/proc`, a minimal `/dev` of harmless host devices, and the
//! host's `/etc/resolv.conf` and `/etc/hosts` bound read-only; then the hostname. Not for the
//! namespaces (made by the helper before PID 1 starts) nor for the function's process.
//! Every failure is a [`Failure`] with [`SETUP_FAILED`].

use std::ffi::CString;
use std::path::Path;

use rustix::fs::{StatVfsMountFlags, statvfs};
use rustix::mount::{MountFlags, MountPropagationFlags, UnmountFlags};
use rustix::process::{Signal, set_parent_process_death_signal};

use super::{Failure, Step};
use crate::sandbox::{SETUP_FAILED, SandboxSpec};

/// The size of `/dev`'s tmpfs: a few device files and symlinks.
const DEV_TMPFS_OPTIONS: &str = "size=64k,mode=0755";
/// The device files bound from the host's `/dev` (what Lambda's `/dev` offers, without `shm`).
const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];
/// Symlinks of `/dev`, as container runtimes make them.
const DEV_LINKS: [(&str, &str); 4] = [
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
];
/// The host files bound read-only into the tree when it has them: name resolution as on the
/// host (Lambda's own resolver configuration is not the host's, but it resolves names).
const HOST_FILES: [&str; 2] = ["/etc/resolv.conf", "/etc/hosts"];

/// PID 1's mounts (see `pivot_root(2)` for the `pivot_root(".", ".")` idiom), then the hostname.
pub(super) fn prepare_root(spec: &SandboxSpec) -> Step<()> {
    // Dies with the helper; then the kernel kills the whole namespace.
    set_parent_process_death_signal(Some(Signal::KILL))
        .map_err(|error| Failure::setup("ask PID 1 to die with the helper", error))?;
    rustix::mount::mount_change(
        "/",
        MountPropagationFlags::REC | MountPropagationFlags::PRIVATE,
    )
    .map_err(|error| Failure::setup("make the mounts private", error))?;
    let root = spec.root.as_path();
    rustix::mount::mount_bind(root, root).map_err(|error| {
        Failure::setup(&format!("bind-mount the root {}", root.display()), error)
    })?;

    let tmp = root.join("tmp");
    let tmp_options = format!("size={}m,mode=1777", spec.tmp_size_mb);
    mount_filesystem(
        "tmpfs",
        &tmp,
        MountFlags::NOSUID | MountFlags::NODEV,
        &tmp_options,
    )?;
    mount_filesystem(
        "proc",
        &root.join("proc"),
        MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
        "",
    )?;
    populate_dev(&root.join("dev"))?;
    bind_host_files(root)?;

    rustix::process::chdir(root).map_err(|error| Failure::setup("enter the root", error))?;
    rustix::process::pivot_root(".", ".")
        .map_err(|error| Failure::setup("make the tree the root (pivot_root)", error))?;
    rustix::mount::unmount(".", UnmountFlags::DETACH)
        .map_err(|error| Failure::setup("detach the host's root", error))?;
    rustix::process::chdir("/").map_err(|error| Failure::setup("enter /", error))?;
    remount_read_only(Path::new("/"), MountFlags::NOSUID | MountFlags::NODEV)?;
    rustix::system::sethostname(spec.hostname.as_bytes())
        .map_err(|error| Failure::setup("set the hostname", error))
}

fn mount_filesystem(kind: &str, target: &Path, flags: MountFlags, options: &str) -> Step<()> {
    let options = CString::new(options).map_err(|_| Failure {
        code: SETUP_FAILED,
        message: format!("the {kind} options hold a NUL byte"),
    })?;
    rustix::mount::mount(kind, target, kind, flags, Some(options.as_c_str())).map_err(|error| {
        Failure::setup(
            &format!(
                "mount {kind} on {} (the tree needs that directory)",
                target.display()
            ),
            error,
        )
    })
}

/// `/dev`: a small tmpfs with the host's harmless devices bound in, the usual symlinks, then
/// read-only (the device files stay writable: they are mounts of their own).
fn populate_dev(dev: &Path) -> Step<()> {
    mount_filesystem(
        "tmpfs",
        dev,
        MountFlags::NOSUID | MountFlags::NOEXEC,
        DEV_TMPFS_OPTIONS,
    )?;
    for device in DEVICES {
        let target = dev.join(device);
        std::fs::File::create(&target)
            .map_err(|error| Failure::setup(&format!("create /dev/{device}"), error))?;
        let source = Path::new("/dev").join(device);
        rustix::mount::mount_bind(&source, &target)
            .map_err(|error| Failure::setup(&format!("bind the host's /dev/{device}"), error))?;
        remount(&target, MountFlags::NOSUID | MountFlags::NOEXEC)?;
    }
    for (name, target) in DEV_LINKS {
        std::os::unix::fs::symlink(target, dev.join(name))
            .map_err(|error| Failure::setup(&format!("link /dev/{name}"), error))?;
    }
    remount_read_only(dev, MountFlags::NOSUID | MountFlags::NOEXEC)
}

/// Binds the host's `/etc/resolv.conf` and `/etc/hosts` read-only onto the tree's, where both
/// exist as files (the tree is never written to make a mount point).
fn bind_host_files(root: &Path) -> Step<()> {
    for file in HOST_FILES {
        let source = Path::new(file);
        let target = root.join(file.trim_start_matches('/'));
        let is_file = |path: &Path| {
            std::fs::symlink_metadata(path).is_ok_and(|metadata| metadata.file_type().is_file())
        };
        // The tree's `etc` must be a directory, not a symlink: one to an absolute path would
        // be followed on the host's side here, out of the tree.
        let in_directory = target.parent().is_some_and(|parent| {
            std::fs::symlink_metadata(parent).is_ok_and(|metadata| metadata.is_dir())
        });
        // The host's may be a symlink (systemd-resolved's): bound through it.
        if !source.metadata().is_ok_and(|metadata| metadata.is_file())
            || !in_directory
            || !is_file(&target)
        {
            continue;
        }
        rustix::mount::mount_bind(source, &target)
            .map_err(|error| Failure::setup(&format!("bind the host's {file}"), error))?;
        remount_read_only(
            &target,
            MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
        )?;
    }
    Ok(())
}

/// Remounts the mount at `target` read-only with `flags`: see [`remount`].
fn remount_read_only(target: &Path, flags: MountFlags) -> Step<()> {
    remount(target, flags | MountFlags::RDONLY)
}

/// Changes the flags of the mount at `target` (MS_BIND | MS_REMOUNT: that mount only) to
/// `flags`, keeping the flags the kernel locks in a user namespace (nosuid, nodev, noexec and
/// the atime ones; `mount(2)`, EPERM for MS_REMOUNT) as `statvfs` reports them.
fn remount(target: &Path, flags: MountFlags) -> Step<()> {
    let current = statvfs(target)
        .map_err(|error| {
            Failure::setup(
                &format!("read the mount flags of {}", target.display()),
                error,
            )
        })?
        .f_flag;
    let mut flags = flags | MountFlags::BIND;
    for (reported, flag) in [
        (StatVfsMountFlags::NOSUID, MountFlags::NOSUID),
        (StatVfsMountFlags::NODEV, MountFlags::NODEV),
        (StatVfsMountFlags::NOEXEC, MountFlags::NOEXEC),
        (StatVfsMountFlags::NOATIME, MountFlags::NOATIME),
        (StatVfsMountFlags::NODIRATIME, MountFlags::NODIRATIME),
        (StatVfsMountFlags::RELATIME, MountFlags::RELATIME),
    ] {
        if current.contains(reported) {
            flags |= flag;
        }
    }
    rustix::mount::mount_remount(target, flags, "").map_err(|error| {
        Failure::setup(
            &format!("set the mount flags of {}", target.display()),
            error,
        )
    })
}
