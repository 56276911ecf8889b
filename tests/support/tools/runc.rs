//! Running a built image the way a container runtime does, with umoci and runc (as root).
//!
//! [`unpack_bundle`] turns an image from an OCI layout into a runtime bundle whose process is
//! the image's own `Entrypoint` + `Cmd` (umoci derives them from the config) with extra
//! environment variables, on the host's network (so it reaches a Runtime API on 127.0.0.1),
//! without a terminal. [`Container`] runs it with `runc run` and removes it when dropped.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::support::{read_json, run_unchecked, umoci};

/// Why runc tests cannot run here, if they cannot (they need root).
pub fn cannot_run_containers() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    (unsafe { libc::geteuid() } != 0)
        .then(|| "runc and umoci (non-rootless) need root; run the tests as root".to_owned())
}

/// Unpacks `image` (`DIR:TAG`, the tag naming a manifest) into `bundle` with `umoci unpack`,
/// then edits its `config.json`: `env` added, no network namespace, no terminal, uid 0.
/// Returns the edited config.
pub fn unpack_bundle(image: &str, bundle: &Path, env: &[(String, String)]) -> Value {
    umoci(&["unpack", "--image", image, bundle.to_str().unwrap()]);
    let config_path = bundle.join("config.json");
    let mut config = read_json(&config_path);
    let process = &mut config["process"];
    process["terminal"] = Value::Bool(false);
    process["user"] = serde_json::json!({"uid": 0, "gid": 0});
    let variables = process["env"]
        .as_array_mut()
        .expect("config has process.env");
    variables.extend(
        env.iter()
            .map(|(key, value)| Value::from(format!("{key}={value}"))),
    );
    config["linux"]["namespaces"]
        .as_array_mut()
        .expect("config has linux.namespaces")
        .retain(|namespace| namespace["type"] != "network");
    fs::write(&config_path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    config
}

/// A container started with `runc run`, killed and deleted when dropped.
pub struct Container {
    id: String,
    state_root: PathBuf,
    child: Option<Child>,
    log: PathBuf,
}

impl Container {
    /// `runc --root STATE run --bundle BUNDLE ID` in the background; its stdout and stderr go
    /// to `bundle/../ID.log`.
    pub fn start(bundle: &Path, id: &str) -> Container {
        let parent = bundle.parent().unwrap();
        let state_root = parent.join(format!("{id}-runc-state"));
        let log = parent.join(format!("{id}.log"));
        let log_file = fs::File::create(&log).unwrap();
        let child = Command::new("runc")
            .arg("--root")
            .arg(&state_root)
            .arg("run")
            .arg("--bundle")
            .arg(bundle)
            .arg(id)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .expect("starting runc (installed by tests/run.sh)");
        Container {
            id: id.to_owned(),
            state_root,
            child: Some(child),
            log,
        }
    }

    /// What the container printed so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let runc = |args: &[&str]| {
            run_unchecked(
                Command::new("runc")
                    .arg("--root")
                    .arg(&self.state_root)
                    .args(args),
            )
        };
        runc(&["kill", &self.id, "KILL"]);
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
        let deleted = runc(&["delete", "--force", &self.id]);
        if !deleted.status.success() && !std::thread::panicking() {
            // Already gone is fine; anything else is worth seeing.
            let stderr = String::from_utf8_lossy(&deleted.stderr);
            assert!(stderr.contains("does not exist"), "runc delete: {stderr}");
        }
    }
}

/// Makes sure binfmt_misc runs aarch64 executables through qemu-user-static, also inside
/// containers (the `F` flag: the interpreter is opened when registered). Mounts binfmt_misc
/// and registers Debian's `/usr/lib/binfmt.d/qemu-aarch64.conf` when needed, as systemd-binfmt
/// would at boot. Returns why it cannot, if it cannot.
pub fn qemu_aarch64_binfmt() -> Result<(), String> {
    let binfmt = Path::new("/proc/sys/fs/binfmt_misc");
    if !binfmt.join("register").exists() {
        let mounted = run_unchecked(
            Command::new("mount")
                .args(["-t", "binfmt_misc", "binfmt_misc"])
                .arg(binfmt),
        );
        if !mounted.status.success() {
            return Err(format!(
                "binfmt_misc is not mounted and cannot be: {}",
                String::from_utf8_lossy(&mounted.stderr).trim()
            ));
        }
    }
    let entry = binfmt.join("qemu-aarch64");
    if !entry.exists() {
        let conf = Path::new("/usr/lib/binfmt.d/qemu-aarch64.conf");
        let line = fs::read_to_string(conf).map_err(|error| {
            format!(
                "no qemu-aarch64 handler and no {} ({error}): install qemu-user-static",
                conf.display()
            )
        })?;
        fs::write(binfmt.join("register"), line.trim()).map_err(|error| {
            format!(
                "registering {} with binfmt_misc failed: {error}",
                conf.display()
            )
        })?;
    }
    let state = fs::read_to_string(&entry)
        .map_err(|error| format!("reading {}: {error}", entry.display()))?;
    let flags = state
        .lines()
        .find_map(|line| line.strip_prefix("flags: "))
        .unwrap_or_default();
    if !state.starts_with("enabled") || !flags.contains('F') {
        return Err(format!(
            "qemu-aarch64 is registered but not usable in containers (needs enabled and flag F): {state}"
        ));
    }
    Ok(())
}
