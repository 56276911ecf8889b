//! The shaped link of the link benchmark: a network namespace joined to the host by a veth pair,
//! with a token-bucket filter (`tc ... tbf`) on the egress of both ends, and real distribution
//! registries (`docker-registry`) started inside that namespace.
//!
//! ```text
//!  host (lambda-image, buildah, curl)                namespace li-bench-PID (docker-registry)
//!  10.213.N.1  lib-PID-h  == veth, or TUN + delay line ==  lib-PID-n  10.213.N.2
//!     egress: tbf (uploads)                   egress: tbf (answers, downloads)
//! ```
//!
//! Names carry the benchmark's pid, so two runs never clash; [`Link::create`] first removes
//! what a run that died without cleaning up (SIGKILL, Ctrl-C) left behind. Dropping a [`Link`]
//! deletes the namespace and both veth ends, also while unwinding from a panic; dropping a
//! [`NsRegistry`] kills its registry. Needs root (CAP_NET_ADMIN) and iproute2.
//!
//! The kernel this was written on has `sch_tbf` but not `sch_netem`: by default there is no
//! added delay, only a rate limit (the round trip over the veth is tens of microseconds). With
//! a round trip asked for, two TUN devices and a userspace delay line (benches/link/delay.rs)
//! replace the veth pair.

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::delay::DelayLine;

/// Prefix of the namespaces this benchmark makes (`li-bench-PID`).
const NAMESPACE_PREFIX: &str = "li-bench-";
/// The kernel's timer frequency on the machine the benchmark was written on (CONFIG_HZ=250):
/// tbf's burst should hold at least one tick's worth of bytes (tc-tbf(8)).
const KERNEL_HZ: u64 = 250;
/// The smallest burst: one 64 KiB GSO packet passes tbf whole instead of being segmented.
const MIN_BURST: u64 = 64 << 10;
/// How long a packet may wait in tbf's queue before it is dropped (tc-tbf(8) `latency`).
pub const QUEUE_LATENCY_MS: u64 = 50;

/// A token-bucket rate for both directions of the link.
#[derive(Clone, Copy, Debug)]
pub struct Rate {
    /// Bits per second.
    pub bits_per_second: u64,
    /// How the table names it.
    pub label: &'static str,
}

impl Rate {
    /// tbf's bucket size in bytes: one timer tick at this rate (rate ÷ HZ), at least
    /// [`MIN_BURST`].
    pub fn burst_bytes(self) -> u64 {
        (self.bits_per_second / 8 / KERNEL_HZ).max(MIN_BURST)
    }
}

/// The namespace, the veth pair and their addresses; removed on drop.
pub struct Link {
    namespace: String,
    host_device: String,
    namespace_device: String,
    /// The host end's address, e.g. `10.213.7.1`.
    pub host_address: String,
    /// The namespace end's address (where registries listen), e.g. `10.213.7.2`.
    pub namespace_address: String,
    /// With an added round trip: what moves the packets between the two TUN devices.
    delay_line: Option<DelayLine>,
}

impl Link {
    /// Makes namespace `li-bench-PID` and a point-to-point link into it, `lib-PID-h` (host,
    /// `10.213.N.1`) to `lib-PID-n` (namespace, `10.213.N.2`), N = PID mod 256, both up, not yet
    /// shaped. Without `round_trip` the link is a veth pair; with it, two TUN devices joined by a
    /// [`DelayLine`] of half of it each way. Panics if not root, or if the host already uses an
    /// address in `10.213.0.0/16`.
    pub fn create(round_trip: Option<Duration>) -> Link {
        remove_stale_namespaces();
        let pid = std::process::id();
        let addresses = ip(&["-4", "-o", "address"]);
        assert!(
            !addresses.contains(" 10.213."),
            "the host already has an address in 10.213.0.0/16, which the link benchmark uses:\n{addresses}"
        );
        let subnet = format!("10.213.{}", pid % 256);
        let mut link = Link {
            namespace: format!("{NAMESPACE_PREFIX}{pid}"),
            host_device: format!("lib-{pid}-h"),
            namespace_device: format!("lib-{pid}-n"),
            host_address: format!("{subnet}.1"),
            namespace_address: format!("{subnet}.2"),
            delay_line: None,
        };
        ip(&["netns", "add", &link.namespace]);
        // From here on, a panic drops `link`, which removes what exists so far.
        match round_trip {
            None => {
                ip(&[
                    "link",
                    "add",
                    &link.host_device,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    &link.namespace_device,
                    "netns",
                    &link.namespace,
                ]);
            }
            Some(round_trip) => {
                link.delay_line = Some(DelayLine::start(
                    &link.host_device,
                    &link.namespace_device,
                    round_trip / 2,
                ));
                ip(&[
                    "link",
                    "set",
                    &link.namespace_device,
                    "netns",
                    &link.namespace,
                ]);
            }
        }
        ip(&[
            "address",
            "add",
            &link.host_address,
            "peer",
            &format!("{}/32", link.namespace_address),
            "dev",
            &link.host_device,
        ]);
        ip(&["link", "set", &link.host_device, "up"]);
        link.ip_in_namespace(&[
            "address",
            "add",
            &link.namespace_address,
            "peer",
            &format!("{}/32", link.host_address),
            "dev",
            &link.namespace_device,
        ]);
        link.ip_in_namespace(&["link", "set", &link.namespace_device, "up"]);
        link.ip_in_namespace(&["link", "set", "lo", "up"]);
        link
    }

    /// Shapes both directions to `rate` (`tc qdisc replace ... root tbf rate R burst B latency
    /// L` on each end's egress).
    pub fn shape(&self, rate: Rate) {
        let args = |device: &str| {
            vec![
                "qdisc".to_owned(),
                "replace".to_owned(),
                "dev".to_owned(),
                device.to_owned(),
                "root".to_owned(),
                "tbf".to_owned(),
                "rate".to_owned(),
                format!("{}bit", rate.bits_per_second),
                "burst".to_owned(),
                rate.burst_bytes().to_string(),
                "latency".to_owned(),
                format!("{QUEUE_LATENCY_MS}ms"),
            ]
        };
        run(Command::new("tc").args(args(&self.host_device)));
        run(Command::new("ip")
            .args(["netns", "exec", &self.namespace, "tc"])
            .args(args(&self.namespace_device)));
    }

    /// The `tc qdisc show` of both ends, for the log.
    pub fn describe(&self) -> String {
        let host = run(Command::new("tc").args(["qdisc", "show", "dev", &self.host_device]));
        let namespace = run(Command::new("ip").args([
            "netns",
            "exec",
            &self.namespace,
            "tc",
            "qdisc",
            "show",
            "dev",
            &self.namespace_device,
        ]));
        format!("host: {}namespace: {}", host, namespace)
    }

    fn ip_in_namespace(&self, args: &[&str]) -> String {
        run(Command::new("ip")
            .args(["netns", "exec", &self.namespace, "ip"])
            .args(args))
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        // Closing the TUN devices removes them; deleting one end of a veth pair deletes both;
        // the namespace goes with its name once no process is left in it (the registries are
        // dropped first).
        self.delay_line.take();
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_device])
            .stderr(Stdio::null())
            .status();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.namespace])
            .stderr(Stdio::null())
            .status();
    }
}

/// A `docker-registry serve` run inside the link's namespace (`ip netns exec NS ...`),
/// anonymous plain HTTP on `NAMESPACE_ADDRESS:PORT`, its storage, config and log in `dir`.
/// Killed on drop.
pub struct NsRegistry {
    child: Child,
    host: String,
    dir: PathBuf,
}

impl NsRegistry {
    /// Starts a registry in `link`'s namespace on `port`, storing into `dir` (made empty), and
    /// waits up to 10 s until `GET /v2/` answers 200 from the host side. Panics with its log if
    /// it does not.
    pub fn start(link: &Link, port: u16, dir: &Path) -> NsRegistry {
        let _ = fs::remove_dir_all(dir);
        fs::create_dir_all(dir.join("storage")).unwrap();
        let host = format!("{}:{port}", link.namespace_address);
        let config = dir.join("config.yml");
        fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: false\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n  maintenance:\n    \
                 uploadpurging:\n      enabled: false\nhttp:\n  addr: {host}\n  \
                 secret: lambda-image-link-bench\n",
                serde_json::to_string(dir.join("storage").to_str().unwrap()).unwrap()
            ),
        )
        .unwrap();
        let log = fs::File::create(dir.join("registry.log")).unwrap();
        // `ip netns exec` enters the namespace and execs the command: the child is the registry.
        let child = Command::new("ip")
            .args(["netns", "exec", &link.namespace, "docker-registry", "serve"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("running `ip netns exec ... docker-registry serve`");
        let mut registry = NsRegistry {
            child,
            host,
            dir: dir.to_owned(),
        };
        let address: SocketAddr = registry.host.parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while probe(address) != Some(200) {
            if Instant::now() >= deadline || registry.child.try_wait().unwrap().is_some() {
                panic!(
                    "the registry in the namespace did not start; its log:\n{}",
                    fs::read_to_string(registry.dir.join("registry.log")).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        registry
    }

    /// `ADDRESS:PORT`, the registry part of image references.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Its storage root (distribution's `storage.filesystem.rootdirectory`).
    pub fn storage(&self) -> PathBuf {
        self.dir.join("storage")
    }

    /// `HOST/REPOSITORY:TAG`.
    pub fn reference(&self, repository_and_tag: &str) -> String {
        format!("{}/{repository_and_tag}", self.host)
    }
}

impl Drop for NsRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Status of `GET /v2/` at `address`, or `None` without an answer.
fn probe(address: SocketAddr) -> Option<u16> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_millis(500)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    write!(
        stream,
        "GET /v2/ HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 64];
    let n = stream.read(&mut head).ok()?;
    // "HTTP/1.1 200 OK"
    String::from_utf8_lossy(&head[..n])
        .split(' ')
        .nth(1)?
        .parse()
        .ok()
}

/// Removes the namespaces (and with them their veth ends) of benchmark runs whose process is
/// gone, killing what still runs inside them.
fn remove_stale_namespaces() {
    for line in ip(&["netns", "list"]).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(pid) = name
            .strip_prefix(NAMESPACE_PREFIX)
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if Path::new("/proc").join(pid.to_string()).exists() {
            continue;
        }
        for process in ip(&["netns", "pids", name]).split_whitespace() {
            let _ = Command::new("kill").args(["-9", process]).status();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &format!("lib-{pid}-h")])
            .stderr(Stdio::null())
            .status();
        let _ = Command::new("ip").args(["netns", "del", name]).status();
    }
}

fn ip(args: &[&str]) -> String {
    run(Command::new("ip").args(args))
}

/// Runs `command`; its stdout. Panics with its stderr if it fails.
fn run(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("running {command:?}: {e} (is iproute2 installed?)"));
    assert!(
        output.status.success(),
        "{command:?} failed (the link benchmark needs root): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}
