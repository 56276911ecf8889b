//! Real forward proxies for the tests: Debian's `tinyproxy` ([`ForwardProxy`]: plain-HTTP
//! forwarding, `CONNECT` tunnels, Basic proxy authentication, a `CONNECT` port allow-list), with
//! its request log readable by the test, and `microsocks` ([`SocksProxy`]: SOCKS5, optionally
//! with a user and password). Each runs in the foreground on a free loopback port; killed on
//! drop.
//!
//! Host names: [`hosts_file`] writes an `/etc/hosts` that maps names to 127.0.0.1, and
//! [`with_hosts`] runs a command in a private mount namespace (`unshare -m`, as root) where that
//! file is `/etc/hosts`. The proxy is started that way, so it resolves the names the test gives
//! a loopback registry; `lambda-image` is run that way when it must reach one directly.
//!
//! Not here: the misbehaving reverse proxy in front of a registry ([`super::proxy`]).

use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};

use super::registry::free_port;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long tinyproxy may take to accept connections.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);

/// How [`ForwardProxy::start`] configures tinyproxy. `Default`: no authentication, `CONNECT`
/// to any port, no extra host names.
#[derive(Debug, Clone, Default)]
pub struct ForwardProxyOptions {
    /// `(user, password)` the proxy requires (`BasicAuth`): 407 without them.
    pub basic_auth: Option<(String, String)>,
    /// The only ports `CONNECT` may reach (`ConnectPort`); empty: any. Others get 403.
    pub connect_ports: Vec<u16>,
    /// Names the proxy resolves to 127.0.0.1.
    pub host_names: Vec<String>,
}

/// A running tinyproxy (see the module docs).
pub struct ForwardProxy {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl ForwardProxy {
    /// Starts tinyproxy on a free 127.0.0.1 port and waits until it accepts connections.
    /// Panics (with its log) if it does not, or if tinyproxy is not installed.
    pub fn start(options: ForwardProxyOptions) -> ForwardProxy {
        let dir = tempfile::Builder::new()
            .prefix("forward-proxy-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap();
        let names: Vec<&str> = options.host_names.iter().map(String::as_str).collect();
        let hosts = hosts_file(dir.path(), &names);
        for _attempt in 0..5 {
            let port = free_port();
            let config = dir.path().join("tinyproxy.conf");
            fs::write(&config, config_text(dir.path(), port, &options)).unwrap();
            let mut command = Command::new("tinyproxy");
            command.arg("-d").arg("-c").arg(&config);
            let stderr = fs::File::create(dir.path().join("stderr")).unwrap();
            if let Some(child) = spawn_listening(&command, &hosts, stderr.into(), port) {
                return ForwardProxy { child, dir, port };
            }
        }
        panic!(
            "tinyproxy did not start (is it installed? `bash tests/run.sh` installs it)\n\
             --- stderr ---\n{}\n--- log ---\n{}",
            fs::read_to_string(dir.path().join("stderr")).unwrap_or_default(),
            fs::read_to_string(dir.path().join("tinyproxy.log")).unwrap_or_default()
        )
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:PORT`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The request lines the proxy received, in order, e.g. `CONNECT host:5000 HTTP/1.1` or
    /// `GET http://host:5000/v2/ HTTP/1.1` (including ones it refused).
    pub fn requests(&self) -> Vec<String> {
        fs::read_to_string(self.dir.path().join("tinyproxy.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(|line| line.split_once("Request (file descriptor "))
            .filter_map(|(_, rest)| rest.split_once("): "))
            .map(|(_, request)| request.trim().to_owned())
            .collect()
    }
}

impl Drop for ForwardProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config_text(dir: &Path, port: u16, options: &ForwardProxyOptions) -> String {
    let mut text = format!(
        "Port {port}\nListen 127.0.0.1\nTimeout 60\nMaxClients 64\nAllow 127.0.0.1\n\
         LogLevel Connect\nLogFile \"{}\"\nDisableViaHeader Yes\n",
        dir.join("tinyproxy.log").display()
    );
    if let Some((user, password)) = &options.basic_auth {
        text.push_str(&format!("BasicAuth {user} {password}\n"));
    }
    for port in &options.connect_ports {
        text.push_str(&format!("ConnectPort {port}\n"));
    }
    text
}

/// Writes `dir/hosts`, mapping `localhost` and each of `names` to 127.0.0.1.
pub fn hosts_file(dir: &Path, names: &[&str]) -> PathBuf {
    let path = dir.join("hosts");
    let mut lines = String::from("127.0.0.1 localhost\n::1 localhost\n");
    for name in names {
        lines.push_str(&format!("127.0.0.1 {name}\n"));
    }
    fs::write(&path, lines).unwrap();
    path
}

/// `command` (program, arguments, environment changes and directory) run in a private mount
/// namespace whose `/etc/hosts` is `hosts`.
pub fn with_hosts(command: &Command, hosts: &Path) -> Command {
    let mut wrapped = Command::new("unshare");
    wrapped
        .arg("--mount")
        .arg("sh")
        .arg("-c")
        .arg("mount --bind \"$0\" /etc/hosts && exec \"$@\"")
        .arg(hosts)
        .arg(command.get_program())
        .args(command.get_args());
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => wrapped.env(key, value),
            None => wrapped.env_remove(key),
        };
    }
    if let Some(dir) = command.get_current_dir() {
        wrapped.current_dir(dir);
    }
    wrapped
}

/// A running SOCKS5 proxy: Debian's `microsocks`, on a free 127.0.0.1 port, resolving names
/// through a private `/etc/hosts` (see the module docs). It keeps no log: a test proves that a
/// request went through it by naming a host only the proxy can resolve. Killed on drop.
pub struct SocksProxy {
    child: Child,
    _dir: tempfile::TempDir,
    port: u16,
}

impl SocksProxy {
    /// Starts microsocks, requiring `user_password` when given; `host_names` resolve to
    /// 127.0.0.1 for it. Panics if it does not accept connections.
    pub fn start(user_password: Option<(&str, &str)>, host_names: &[&str]) -> SocksProxy {
        let dir = tempfile::Builder::new()
            .prefix("socks-proxy-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap();
        let hosts = hosts_file(dir.path(), host_names);
        for _attempt in 0..5 {
            let port = free_port();
            let mut command = Command::new("microsocks");
            command.args(["-i", "127.0.0.1", "-p", &port.to_string()]);
            if let Some((user, password)) = user_password {
                command.args(["-u", user, "-P", password]);
            }
            if let Some(child) = spawn_listening(&command, &hosts, Stdio::null(), port) {
                return SocksProxy {
                    child,
                    _dir: dir,
                    port,
                };
            }
        }
        panic!("microsocks did not start (is it installed? `bash tests/run.sh` installs it)")
    }

    /// `127.0.0.1:PORT`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// Runs `command` with `hosts` as `/etc/hosts` ([`with_hosts`]) and stderr to `stderr`, and
/// waits until it accepts connections on 127.0.0.1:`port`; None (the child reaped) if it exits
/// or does not within [`STARTUP_TIMEOUT`], e.g. because another process took the port.
fn spawn_listening(command: &Command, hosts: &Path, stderr: Stdio, port: u16) -> Option<Child> {
    let program = command.get_program().to_string_lossy().into_owned();
    let mut child = with_hosts(command, hosts)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap_or_else(|e| {
            panic!("running {program} in a mount namespace (unshare, as root): {e}")
        });
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let started = Instant::now();
    while started.elapsed() < STARTUP_TIMEOUT {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
            return Some(child);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

impl Drop for SocksProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
