//! Starting the distribution registry of [`super::registry`]: its `config.yml` and htpasswd file,
//! the wait until it answers, free loopback ports, and the clean-up of registries left running
//! by test processes that died without dropping theirs. Not here: the certificates it serves
//! ([`crate::support::fixtures::certificates`]).

use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use super::registry::{DIR_PREFIX, PID_FILE, PROBE_USER_AGENT, REALM, STARTUP_TIMEOUT};
use super::token::{TOKEN_ISSUER, TOKEN_SERVICE};
use crate::support::certificates::Tls;
use crate::support::run_unchecked;

#[derive(Debug)]
pub(super) enum Startup {
    PortTaken,
    Exited(String),
    Timeout,
}

impl std::fmt::Display for Startup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Startup::PortTaken => write!(f, "its port was taken"),
            Startup::Exited(status) => write!(f, "it exited: {status}"),
            Startup::Timeout => write!(f, "no answer within {STARTUP_TIMEOUT:?}"),
        }
    }
}

/// Waits until the registry logged that it listens on `port` and then answers there:
/// `GET /v2/` gives 200 or 401 over plain HTTP; with TLS, a TCP connection is accepted.
pub(super) fn wait_until_ready(
    child: &mut Child,
    port: u16,
    tls: bool,
    log: &Path,
) -> Result<(), Startup> {
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    // The "listening on" line (", tls" follows it with TLS) also tells that the port is held
    // by our registry rather than by whoever took it between free_port() and now.
    let listening = format!("listening on 127.0.0.1:{port}");
    loop {
        if let Some(status) = child.try_wait().expect("waiting for docker-registry") {
            return Err(if read_lossy(log).contains("address already in use") {
                Startup::PortTaken
            } else {
                Startup::Exited(status.to_string())
            });
        }
        if read_lossy(log).contains(&listening) {
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            let ready = if tls {
                TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
            } else {
                matches!(probe_http(addr), Some(200 | 401))
            };
            if ready {
                return Ok(());
            }
        }
        if Instant::now() >= deadline {
            return Err(Startup::Timeout);
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Status code of a raw HTTP/1.1 `GET /v2/` to `addr`, or `None` without an answer.
pub(super) fn probe_http(addr: SocketAddr) -> Option<u16> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    stream
        .set_write_timeout(Some(Duration::from_secs(1)))
        .ok()?;
    write!(
        stream,
        "GET /v2/ HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: {PROBE_USER_AGENT}\r\n\
         Connection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = Vec::new();
    let mut buf = [0u8; 512];
    while !response.contains(&b'\n') {
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        response.extend_from_slice(&buf[..n]);
    }
    // "HTTP/1.1 401 Unauthorized"
    let response = String::from_utf8_lossy(&response);
    let mut status_line = response.lines().next()?.split(' ');
    status_line.next().filter(|v| v.starts_with("HTTP/"))?;
    status_line.next()?.parse().ok()
}

/// A port on 127.0.0.1 that was free a moment ago (the OS picks it for a listener on port 0);
/// nothing listens on it once this returns.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("binding 127.0.0.1:0");
    listener.local_addr().unwrap().port()
}

/// The `auth:` section of the registry's config.
pub(super) enum AuthConfig {
    None,
    Htpasswd(PathBuf),
    Token {
        realm: String,
        root_cert_bundle: PathBuf,
    },
}

pub(super) fn config_yml(base: &Path, port: u16, auth: &AuthConfig, tls: Option<&Tls>) -> String {
    // Paths are written as YAML double-quoted strings; JSON string syntax is a subset.
    let quote = |path: &Path| {
        serde_json::to_string(path.to_str().expect("registry paths must be UTF-8")).unwrap()
    };
    let mut config = format!(
        "version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:{port}
  secret: lambda-image-test-registry-secret
",
        storage = quote(&base.join("storage")),
    );
    if let Some(tls) = tls {
        config.push_str(&format!(
            "  tls:\n    certificate: {}\n    key: {}\n",
            quote(&tls.server_cert),
            quote(&tls.server_key)
        ));
        if !tls.client_cas.is_empty() {
            config.push_str("    clientcas:\n");
            for ca in &tls.client_cas {
                config.push_str(&format!("      - {}\n", quote(ca)));
            }
        }
    }
    match auth {
        AuthConfig::None => {}
        AuthConfig::Htpasswd(htpasswd) => config.push_str(&format!(
            "auth:\n  htpasswd:\n    realm: {REALM}\n    path: {}\n",
            quote(htpasswd)
        )),
        AuthConfig::Token {
            realm,
            root_cert_bundle,
        } => config.push_str(&format!(
            "auth:\n  token:\n    realm: {}\n    service: {TOKEN_SERVICE}\n    \
             issuer: {TOKEN_ISSUER}\n    rootcertbundle: {}\n",
            serde_json::to_string(realm).unwrap(),
            quote(root_cert_bundle)
        )),
    }
    config
}

/// Writes `base/htpasswd` with a bcrypt entry for `user` (`htpasswd -Bbn`, apache2-utils).
pub(super) fn write_htpasswd(base: &Path, user: &str, password: &str) -> PathBuf {
    let output = run_unchecked(Command::new("htpasswd").args(["-Bbn", user, password]));
    if !output.status.success() {
        panic!(
            "htpasswd -Bbn failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let path = base.join("htpasswd");
    fs::write(&path, &output.stdout).unwrap();
    path
}

/// Kills the registries of test processes that are gone (they died without dropping
/// their [`TestRegistry`]) and removes their directories.
pub(super) fn kill_stale_registries(root: &Path) {
    let Ok(entries) = fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(owner) = name
            .to_str()
            .and_then(|n| n.strip_prefix(DIR_PREFIX))
            .and_then(|n| n.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if owner == std::process::id() || Path::new("/proc").join(owner.to_string()).exists() {
            continue;
        }
        let dir = entry.path();
        if let Some(pid) = fs::read_to_string(dir.join(PID_FILE))
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok())
        {
            // Only if that process still is a registry serving this directory's config.
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let config = dir.join("config.yml");
            if String::from_utf8_lossy(&cmdline).contains(config.to_str().unwrap_or("\0")) {
                // SAFETY: kill(2) with a plain pid and signal has no memory-safety concerns.
                unsafe {
                    kill(pid, SIGKILL);
                }
            }
        }
        let _ = fs::remove_dir_all(&dir);
    }
}

const SIGKILL: i32 = 9;

unsafe extern "C" {
    /// kill(2) from the C library that std already links.
    fn kill(pid: i32, signal: i32) -> i32;
}

pub(super) fn read_lossy(path: &Path) -> String {
    String::from_utf8_lossy(&fs::read(path).unwrap_or_default()).into_owned()
}
