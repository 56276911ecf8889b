//! Hostile-input rows for what is read on this machine: base layers with unsafe paths or
//! symlink loops (`check IMAGE`, and `build` reading a local base for its interpreter check),
//! odd bootstraps (symlinks, devices, empty or truncated files), and broken credential sources
//! (unreadable `config.json`, bad base64, missing, failing or babbling credential helpers).
//!
//! A bootstrap that is a symlink to a file is followed (a control in `tests/it/hostile_input/mod.rs`);
//! a dangling link, a loop or a link to a directory is an error (exit 3).

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};

use serde_json::json;

use super::case::{Case, Scene, build, check_bootstrap, check_finding, zip};
use super::cases::SECRET;
use super::fake_registry::FakeRegistry;
use super::hostile_images::{RawEntry, dynamic_bootstrap, layout_with_extra_layer};
use crate::support::fixtures;

pub fn base_layers() -> Vec<Case> {
    vec![
        check_finding("base layer: `..` path, check", "{hostile}", "unsafe-paths")
            .and("../escape")
            .prepare(|s| {
                let image = layout_with_extra_layer(
                    &s.input("layout"),
                    &[RawEntry::File("../escape", b"x")],
                );
                s.set("hostile", image);
            }),
        check_finding(
            "base layer: absolute path, check",
            "{hostile}",
            "unsafe-paths",
        )
        .and("/etc/evil")
        .prepare(|s| {
            let image =
                layout_with_extra_layer(&s.input("layout"), &[RawEntry::File("/etc/evil", b"x")]);
            s.set("hostile", image);
        }),
        check_finding(
            "base layer: symlink loop around the entrypoint, check",
            "{hostile}",
            "entrypoint",
        )
        .prepare(|s| {
            let image = layout_with_extra_layer(
                &s.input("layout"),
                &[
                    RawEntry::Symlink("lambda-entrypoint.sh", "loop-a"),
                    RawEntry::Symlink("loop-a", "lambda-entrypoint.sh"),
                ],
            );
            s.set("hostile", image);
        }),
        build(
            "base layer: interpreter only at a `..` path, build",
            3,
            "/lib64/ld-linux-x86-64.so.2",
        )
        .prepare(|s| {
            dynamic_bootstrap(&s.input("dynamic"));
            let image = layout_with_extra_layer(
                &s.input("layout"),
                &[
                    RawEntry::File("../lib64/ld-linux-x86-64.so.2", b"\x7fELF"),
                    RawEntry::File("/lib64/ld-linux-x86-64.so.2", b"\x7fELF"),
                ],
            );
            s.set("hostile", image);
        })
        .bootstraps(&["{in}/dynamic"])
        .base("{hostile}"),
        build(
            "base layer: /lib64 a symlink loop, build",
            3,
            "/lib64/ld-linux-x86-64.so.2",
        )
        .prepare(|s| {
            dynamic_bootstrap(&s.input("dynamic"));
            let image = layout_with_extra_layer(
                &s.input("layout"),
                &[RawEntry::Symlink("lib64", "lib64/../lib64")],
            );
            s.set("hostile", image);
        })
        .bootstraps(&["{in}/dynamic"])
        .base("{hostile}"),
    ]
}

fn write_executable(path: &std::path::Path, bytes: &[u8]) {
    fs::write(path, bytes).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

pub fn bootstraps() -> Vec<Case> {
    vec![
        build(
            "bootstrap: dangling symlink",
            3,
            "bootstrap {in}/dangling does not exist",
        )
        .prepare(|s| symlink(s.input("nowhere"), s.input("dangling")).unwrap())
        .bootstraps(&["{in}/dangling"]),
        build(
            "bootstrap: symlink to a directory outside",
            3,
            "is a directory",
        )
        .prepare(|s| symlink("/usr", s.input("link-to-dir")).unwrap())
        .bootstraps(&["{in}/link-to-dir"]),
        build("bootstrap: symlink loop", 3, "bootstrap {in}/loop")
            .and("symbolic links")
            .and("hint: pass a path that leads")
            .prepare(|s| symlink(s.input("loop"), s.input("loop")).unwrap())
            .bootstraps(&["{in}/loop"]),
        build(
            "bootstrap: /dev/null",
            3,
            "bootstrap /dev/null is not a regular file",
        )
        .bootstraps(&["/dev/null"]),
        check_bootstrap(
            "bootstrap: /dev/zero, check",
            "/dev/zero",
            3,
            "is not a regular file",
        ),
        zip(
            "bootstrap: /dev/null, zip",
            "/dev/null",
            3,
            "is not a regular file",
        ),
        zip(
            "bootstrap: 0-byte file, zip",
            "{in}/empty",
            3,
            "is empty (0 bytes)",
        )
        .prepare(|s| write_executable(&s.input("empty"), b"")),
        check_bootstrap(
            "bootstrap: 0-byte file, check",
            "{in}/empty",
            3,
            "is empty (0 bytes)",
        )
        .prepare(|s| write_executable(&s.input("empty"), b"")),
        check_bootstrap(
            "bootstrap: truncated ELF header, check",
            "{in}/truncated",
            3,
            "truncated or malformed ELF header",
        )
        .prepare(|s| {
            let elf = fs::read(&fixtures().bootstrap_amd64).unwrap();
            write_executable(&s.input("truncated"), &elf[..40]);
        }),
        zip(
            "bootstrap: ELF cut inside its program headers, zip",
            "{in}/cut",
            3,
            "{in}/cut",
        )
        .prepare(|s| {
            let elf = fs::read(&fixtures().bootstrap_amd64).unwrap();
            write_executable(&s.input("cut"), &elf[..100]);
        }),
    ]
}

/// A fake registry asking for Basic credentials, as `{reg}`; the build pushes there.
fn basic_registry(scene: &mut Scene) {
    let registry = FakeRegistry::empty();
    registry.challenge("Basic realm=\"fake\"");
    scene.set("reg", registry.host());
    scene.keep(registry);
}

/// Writes `config.json` naming helper `NAME` for `{reg}`, and the helper script itself.
fn helper(scene: &mut Scene, script: &str) {
    basic_registry(scene);
    let bin = scene.helper_dir();
    write_executable(&bin.join("docker-credential-hostile"), script.as_bytes());
    let config = json!({"credHelpers": {scene.expand("{reg}"): "hostile"}});
    fs::write(scene.docker_config(), config.to_string()).unwrap();
}

pub fn credentials() -> Vec<Case> {
    vec![
        build(
            "credentials: config.json is a directory",
            6,
            "cannot read credentials file {home}/.docker/config.json",
        )
        .prepare(|s| {
            basic_registry(s);
            fs::create_dir(s.docker_config()).unwrap();
        })
        .tag("{reg}/fn:v1"),
        build(
            "credentials: config.json is not UTF-8",
            6,
            "{home}/.docker/config.json is not valid",
        )
        .and("contents not shown")
        .prepare(|s| {
            basic_registry(s);
            fs::write(s.docker_config(), b"{\"auths\": {\"\xff\xfe\": {}}}").unwrap();
        })
        .tag("{reg}/fn:v1"),
        build(
            "credentials: config.json is not JSON",
            6,
            "{home}/.docker/config.json is not valid",
        )
        .prepare(|s| {
            basic_registry(s);
            fs::write(s.docker_config(), format!("{{\"auths\": {{ {SECRET}")).unwrap();
        })
        .tag("{reg}/fn:v1"),
        build(
            "credentials: bad base64 in auths",
            6,
            "is not base64 of USER:PASSWORD",
        )
        .prepare(|s| {
            basic_registry(s);
            let config = json!({"auths": {s.expand("{reg}"): {"auth": format!("!!{SECRET}!!")}}});
            fs::write(s.docker_config(), config.to_string()).unwrap();
        })
        .tag("{reg}/fn:v1"),
        build(
            "credentials: helper not installed",
            6,
            "docker-credential-hostile is not installed",
        )
        .prepare(|s| {
            basic_registry(s);
            let config = json!({"credHelpers": {s.expand("{reg}"): "hostile"}});
            fs::write(s.docker_config(), config.to_string()).unwrap();
        })
        .tag("{reg}/fn:v1"),
        build(
            "credentials: helper exits non-zero",
            6,
            "credential helper docker-credential-hostile",
        )
        .and("keychain is locked")
        .prepare(|s| helper(s, "#!/bin/sh\necho 'keychain is locked' >&2\nexit 3\n"))
        .tag("{reg}/fn:v1"),
        build(
            "credentials: helper fails printing its secret as JSON",
            6,
            "failed for",
        )
        .prepare(|s| {
            helper(
                s,
                &format!(
                    "#!/bin/sh\necho '{{\"Username\":\"u\",\"Secret\":\"{SECRET}\"}}'\nexit 1\n"
                ),
            )
        })
        .tag("{reg}/fn:v1"),
        build(
            "credentials: helper prints garbage",
            6,
            "something other than JSON credentials (not shown)",
        )
        .prepare(|s| helper(s, &format!("#!/bin/sh\necho 'Username={SECRET}'\n")))
        .tag("{reg}/fn:v1"),
    ]
}
