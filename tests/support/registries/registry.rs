//! A real container registry for integration tests: Debian's `docker-registry` package
//! (the CNCF distribution registry, v2.8), run as a child process on a free `127.0.0.1`
//! port with its storage, config and log in a fresh temporary directory.
//!
//! ```ignore
//! let registry = TestRegistry::start(RegistryOptions::default());
//! registry.skopeo_copy_to("oci:/path/to/layout:al2023", "lambda/base:al2023");
//! let index = registry.skopeo_inspect_raw("lambda/base:al2023");
//! assert_eq!(registry.count_requests("PUT", "/blobs/uploads/"), 7);
//! ```
//!
//! Options are orthogonal: [`RegistryAuth::Basic`] (an htpasswd file made with
//! `htpasswd -Bbn`) and [`RegistryAuth::Token`] work over plain HTTP as well as over TLS,
//! because distribution only *recommends* TLS for them, it does not enforce it. With
//! `tls: true` the registry serves HTTPS with a server certificate for `127.0.0.1` and `localhost` (SAN) signed by a
//! throw-away CA made with the `openssl` CLI; [`TestRegistry::ca_cert`] is that CA and
//! [`TestRegistry::cert_dir`] a directory holding only it (what skopeo's `--cert-dir`
//! wants: there `*.crt` are CAs and `*.cert`/`*.key` client certificates).
//!
//! # Token auth
//!
//! [`RegistryAuth::Token`] configures distribution's `auth: token:` (realm, service
//! [`TOKEN_SERVICE`], issuer, rootcertbundle) and starts an in-process token server
//! ([`super::token`], plain HTTP on its own free `127.0.0.1` port, also when the registry
//! serves TLS) that signs ES256 JWTs with a throw-away key and certificate made with the
//! openssl CLI. With the right Basic credentials it grants every scope asked for; anonymous
//! tokens grant nothing (a private registry), or `pull` only with
//! [`RegistryOptions::anonymous_pull`]. Tokens live [`RegistryOptions::token_ttl`]
//! (default [`DEFAULT_TOKEN_TTL`]) *at the registry*: the server offsets distribution's 60 s
//! leeway, so a short TTL makes tokens really expire (2 s or more is safe for a client
//! that uses a token as soon as it has it). Every token request is recorded
//! ([`TestRegistry::token_requests`]). skopeo asks for `repository:REPO:pull,push` to push,
//! `repository:REPO:pull` to pull, and both `repository:TARGET:pull,push` and
//! `repository:SOURCE:pull` in one request to mount a blob from another repository. It
//! keeps a token for at least 60 s whatever `expires_in` says, so token expiry is best
//! checked with a client of one's own.
//!
//!
//! ```ignore
//! let registry = TestRegistry::start(RegistryOptions {
//!     auth: RegistryAuth::token("lambda", "s3cret"),
//!     tls: true,
//!     ..RegistryOptions::default()
//! });
//! registry.skopeo_copy_to(&source, "fn:v1");
//! assert!(registry.token_requests().iter().any(|t| t.authenticated
//!     && t.scopes.contains(&"repository:fn:pull,push".to_string())));
//! ```
//!
//! # Access log
//!
//! distribution writes one Apache "combined" line per request to **stdout** (its own
//! logrus messages, `time="…" level=… msg="…"`, go to stderr); both are captured into
//! `registry.log` in the temporary directory ([`TestRegistry::log`]). A line looks like
//!
//! ```text
//! 127.0.0.1 - - [21/Nov/2026:06:44:47 +0000] "PUT /v2/fn/blobs/uploads/<uuid>?_state=…&digest=sha256%3A<hex> HTTP/1.1" 201 0 "" "skopeo/1.9.3"
//! ```
//!
//! (the user field stays `-` even for authenticated requests). The request-URI is logged
//! exactly as sent, query string included and percent-encoded (`sha256%3A<hex>`), so match
//! digests by their hex. The line is written when the handler returns, before the server
//! flushes the response, so once a client has seen a response its line is in the log:
//! counting right after a push finished is not racy.
//!
//! What a push looks like in that log:
//!
//! * blob already there: `HEAD /v2/<repo>/blobs/sha256:<hex>` → 200, nothing else;
//! * blob uploaded: `HEAD …` → 404, `POST /v2/<repo>/blobs/uploads/` → 202,
//!   `PATCH /v2/<repo>/blobs/uploads/<uuid>?_state=…` → 202, then
//!   `PUT /v2/<repo>/blobs/uploads/<uuid>?_state=…&digest=…` → 201. So
//!   `count_requests("PUT", "/blobs/uploads/")` is the number of blobs uploaded;
//! * blob mounted from another repository of the same registry:
//!   `POST /v2/<repo>/blobs/uploads/?mount=sha256%3A<hex>&from=<other>` → 201 (a 202
//!   means the mount did not happen and an upload session was opened instead; use
//!   [`TestRegistry::requests`] to look at statuses);
//! * manifests: `PUT /v2/<repo>/manifests/<digest or tag>` → 201.
//!
//! The readiness probe that [`TestRegistry::start`] sends (`GET /v2/` with user agent
//! [`PROBE_USER_AGENT`]) is left out of [`TestRegistry::requests`] and
//! [`TestRegistry::count_requests`].
//!
//! Registries left running by a test process that died without dropping them (Ctrl-C,
//! SIGKILL) are killed, and their directories removed, by the next [`TestRegistry::start`].

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use super::registry_setup::{
    AuthConfig, Startup, config_yml, kill_stale_registries, read_lossy, wait_until_ready,
    write_htpasswd,
};
use super::token::{TokenRequest, TokenServer, TokenServerConfig};
use crate::support::certificates::{Tls, generate_tls, generate_token_signer};
use crate::support::{run, run_unchecked, skopeo};

pub use super::registry_setup::free_port;
pub use super::token::{DEFAULT_TOKEN_TTL, NamespaceUser, TOKEN_ISSUER, TOKEN_SERVICE};

/// How long [`TestRegistry::start`] waits for the registry to answer.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);
/// User agent of the readiness probe; its requests are not counted.
pub const PROBE_USER_AGENT: &str = "lambda-image-test-registry-probe";
/// Name of the registry's log file (stdout and stderr) in [`TestRegistry::dir`].
pub const LOG_FILE: &str = "registry.log";

pub(super) const DIR_PREFIX: &str = "registry-";
pub(super) const PID_FILE: &str = "registry.pid";
pub(super) const REALM: &str = "lambda-image-test";
/// How many fresh ports to try when the chosen one was taken before the registry bound it.
const PORT_ATTEMPTS: usize = 5;

/// Authentication the registry requires.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RegistryAuth {
    /// Anonymous pull and push.
    #[default]
    None,
    /// HTTP basic auth (htpasswd, bcrypt) for every request, including pulls.
    Basic { user: String, password: String },
    /// Bearer tokens from the harness's token server, which gives them for these Basic
    /// credentials (see the module docs); every request needs one, pulls included, unless
    /// [`RegistryOptions::anonymous_pull`].
    Token { user: String, password: String },
}

impl RegistryAuth {
    /// `RegistryAuth::Basic` with the given user and password.
    pub fn basic(user: &str, password: &str) -> Self {
        RegistryAuth::Basic {
            user: user.to_string(),
            password: password.to_string(),
        }
    }

    /// `RegistryAuth::Token` with the given user and password.
    pub fn token(user: &str, password: &str) -> Self {
        RegistryAuth::Token {
            user: user.to_string(),
            password: password.to_string(),
        }
    }
}

/// How [`TestRegistry::start`] configures the registry. `Default` is anonymous plain HTTP.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RegistryOptions {
    pub auth: RegistryAuth,
    /// Serve HTTPS with a certificate signed by a throw-away CA ([`TestRegistry::ca_cert`]).
    pub tls: bool,
    /// [`RegistryAuth::Token`] only: how long tokens are accepted by the registry
    /// (`None`: [`DEFAULT_TOKEN_TTL`]); whole seconds, rounded up.
    pub token_ttl: Option<Duration>,
    /// [`RegistryAuth::Token`] only: anonymous tokens grant `pull` instead of nothing.
    pub anonymous_pull: bool,
    /// distribution's `http.relativeurls: true`: `Location` headers (upload sessions) are
    /// relative (`/v2/<repo>/blobs/uploads/<uuid>?_state=…`) instead of absolute.
    pub relative_urls: bool,
    /// Serve HTTPS with these files instead of the harness's own CA and certificate (then
    /// `tls` is not needed, and [`TestRegistry::ca_cert`] is `None`).
    pub tls_files: Option<TlsFiles>,
    /// [`RegistryAuth::Token`] only: the token service grants only the first scope of a
    /// request (Harbor-like).
    pub first_scope_only: bool,
    /// [`RegistryAuth::Token`] only: more users, each limited to one namespace.
    pub namespace_users: Vec<NamespaceUser>,
}

/// A server certificate and key (PEM) for the registry to serve, made by the test as users make
/// them; with `client_cas`, the registry requires a client certificate signed by one of those
/// CAs (distribution's `http.tls.clientcas`, Go's `RequireAndVerifyClientCert`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub certificate: PathBuf,
    pub key: PathBuf,
    pub client_cas: Vec<PathBuf>,
}

/// One line of the registry's access log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLogEntry {
    /// `GET`, `HEAD`, `POST`, `PATCH`, `PUT`, `DELETE`.
    pub method: String,
    /// The request-URI as sent: path and query, percent-encoded.
    pub uri: String,
    /// The response status.
    pub status: u16,
    /// The `User-Agent` header.
    pub user_agent: String,
}

/// A running `docker-registry serve`; killed (and its directory removed) on drop.
pub struct TestRegistry {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
    options: RegistryOptions,
    ca_cert: Option<PathBuf>,
    token_server: Option<TokenServer>,
}

impl TestRegistry {
    /// Starts a registry on a free `127.0.0.1` port and waits (up to [`STARTUP_TIMEOUT`])
    /// until it answers. Panics, with the registry's log, if it does not.
    pub fn start(options: RegistryOptions) -> TestRegistry {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR"));
        kill_stale_registries(root);
        let dir = tempfile::Builder::new()
            .prefix(&format!("{DIR_PREFIX}{}-", std::process::id()))
            .tempdir_in(root)
            .unwrap_or_else(|e| panic!("creating a registry directory in {}: {e}", root.display()));
        let base = dir.path();
        fs::create_dir(base.join("storage")).unwrap();

        let (auth, token_server) = match &options.auth {
            RegistryAuth::None => (AuthConfig::None, None),
            RegistryAuth::Basic { user, password } => (
                AuthConfig::Htpasswd(write_htpasswd(base, user, password)),
                None,
            ),
            RegistryAuth::Token { user, password } => {
                let (signer, root_cert_bundle) = generate_token_signer(base);
                let server = TokenServer::start(
                    TokenServerConfig {
                        user: user.clone(),
                        password: password.clone(),
                        ttl: options.token_ttl.unwrap_or(DEFAULT_TOKEN_TTL),
                        anonymous_pull: options.anonymous_pull,
                        first_scope_only: options.first_scope_only,
                        namespace_users: options.namespace_users.clone(),
                    },
                    &signer,
                );
                let auth = AuthConfig::Token {
                    realm: server.realm(),
                    root_cert_bundle,
                };
                (auth, Some(server))
            }
        };
        let tls = match &options.tls_files {
            Some(files) => Some(Tls {
                ca_cert: None,
                server_cert: files.certificate.clone(),
                server_key: files.key.clone(),
                client_cas: files.client_cas.clone(),
            }),
            None => options.tls.then(|| generate_tls(base)),
        };
        let log_path = base.join(LOG_FILE);

        for attempt in 1..=PORT_ATTEMPTS {
            let port = free_port();
            let config = base.join("config.yml");
            let mut text = config_yml(base, port, &auth, tls.as_ref());
            if options.relative_urls {
                text = text.replacen("\nhttp:\n", "\nhttp:\n  relativeurls: true\n", 1);
            }
            fs::write(&config, text).unwrap();
            // A fresh log per attempt: readiness is judged from it.
            let log = fs::File::create(&log_path)
                .unwrap_or_else(|e| panic!("creating {}: {e}", log_path.display()));
            let mut cmd = Command::new("docker-registry");
            cmd.arg("serve")
                .arg(&config)
                .current_dir(base)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log);
            let mut child = match cmd.spawn() {
                Ok(child) => child,
                Err(e) if e.kind() == io::ErrorKind::NotFound => panic!(
                    "`docker-registry` not found ({e}): run `bash tests/run.sh`, which \
                     installs the docker-registry package"
                ),
                Err(e) => panic!("could not run {cmd:?}: {e}"),
            };
            fs::write(base.join(PID_FILE), child.id().to_string()).unwrap();
            match wait_until_ready(&mut child, port, tls.is_some(), &log_path) {
                Ok(()) => {
                    return TestRegistry {
                        child,
                        dir,
                        port,
                        options,
                        ca_cert: tls.and_then(|t| t.ca_cert),
                        token_server,
                    };
                }
                // The port was taken between our probe bind and the registry's bind.
                Err(Startup::PortTaken) if attempt < PORT_ATTEMPTS => {
                    let _ = child.kill();
                    let _ = child.wait();
                }
                Err(failure) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "the test registry did not start ({failure}); its config:\n{}\n\
                         --- its log ---\n{}",
                        fs::read_to_string(&config).unwrap_or_default(),
                        read_lossy(&log_path),
                    );
                }
            }
        }
        unreachable!("the last attempt either returns or panics")
    }

    /// `127.0.0.1:PORT`, the registry part of image references.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The port the registry listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        let tls = self.options.tls || self.options.tls_files.is_some();
        let scheme = if tls { "https" } else { "http" };
        format!("{scheme}://{}", self.host())
    }

    /// `HOST/REPOSITORY:TAG` (or `HOST/REPOSITORY@DIGEST`) for `repository_and_tag`.
    pub fn reference(&self, repository_and_tag: &str) -> String {
        format!("{}/{repository_and_tag}", self.host())
    }

    /// `(user, password)` when the registry requires basic auth, or when its token server
    /// gives tokens for them.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        match &self.options.auth {
            RegistryAuth::None => None,
            RegistryAuth::Basic { user, password } | RegistryAuth::Token { user, password } => {
                Some((user, password))
            }
        }
    }

    /// The token server ([`RegistryAuth::Token`] only), e.g. to make it fail.
    pub fn token_server(&self) -> Option<&TokenServer> {
        self.token_server.as_ref()
    }

    /// The token server's realm, `http://127.0.0.1:PORT/token` ([`RegistryAuth::Token`]
    /// only).
    pub fn token_realm(&self) -> Option<String> {
        self.token_server.as_ref().map(TokenServer::realm)
    }

    /// Every request the token server got so far, oldest first. Panics unless the registry
    /// uses [`RegistryAuth::Token`].
    pub fn token_requests(&self) -> Vec<TokenRequest> {
        self.token_server
            .as_ref()
            .unwrap_or_else(|| {
                panic!(
                    "token_requests(): the registry at {} uses {:?}, not token auth",
                    self.host(),
                    self.options.auth
                )
            })
            .requests()
    }

    /// The PEM CA certificate that signed the registry's server certificate (TLS only).
    pub fn ca_cert(&self) -> Option<&Path> {
        self.ca_cert.as_deref()
    }

    /// A directory holding only [`Self::ca_cert`], as `ca.crt` (TLS only), for skopeo's
    /// `--cert-dir` / `--dest-cert-dir` / `--src-cert-dir`.
    pub fn cert_dir(&self) -> Option<&Path> {
        self.ca_cert.as_deref().and_then(Path::parent)
    }

    /// The registry's temporary directory (config, storage, log, certificates).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The registry's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the registry has logged so far: the access log (its stdout) interleaved
    /// with its own messages (stderr).
    pub fn log(&self) -> String {
        read_lossy(&self.dir.path().join(LOG_FILE))
    }

    /// The access-log entries so far, oldest first, without the readiness probes.
    pub fn requests(&self) -> Vec<AccessLogEntry> {
        self.log()
            .lines()
            .filter_map(parse_access_log_line)
            .filter(|entry| entry.user_agent != PROBE_USER_AGENT)
            .collect()
    }

    /// How many requests so far had method `method` (exactly, e.g. `"PUT"`) and a
    /// request-URI (path and percent-encoded query) containing `path_contains`.
    /// `count_requests("PUT", "/blobs/uploads/")` counts blob uploads.
    pub fn count_requests(&self, method: &str, path_contains: &str) -> usize {
        self.requests()
            .iter()
            .filter(|entry| entry.method == method && entry.uri.contains(path_contains))
            .count()
    }

    /// `skopeo --insecure-policy copy --all --preserve-digests SOURCE docker://HOST/REPO:TAG`
    /// with the registry's TLS and credential flags. Panics if skopeo fails.
    pub fn skopeo_copy_to(&self, source: &str, repository_and_tag: &str) {
        let mut cmd = self.skopeo_copy_to_command(source, repository_and_tag, self.credentials());
        run(&mut cmd);
    }

    /// Like [`Self::skopeo_copy_to`], but authenticating with `creds` (`None`: anonymous)
    /// instead of the registry's credentials, and returning skopeo's output whatever its
    /// exit status.
    pub fn skopeo_copy_to_with_creds(
        &self,
        source: &str,
        repository_and_tag: &str,
        creds: Option<(&str, &str)>,
    ) -> Output {
        run_unchecked(&mut self.skopeo_copy_to_command(source, repository_and_tag, creds))
    }

    /// `skopeo --insecure-policy copy --all --preserve-digests docker://HOST/REPO:TAG DEST`
    /// with the registry's TLS and credential flags. Panics if skopeo fails.
    pub fn skopeo_copy_from(&self, repository_and_tag: &str, destination: &str) {
        let mut args = strings(&["copy", "--all", "--preserve-digests"]);
        args.extend(self.skopeo_flags("src-", self.credentials()));
        args.push(format!("docker://{}", self.reference(repository_and_tag)));
        args.push(destination.to_string());
        skopeo(&str_refs(&args));
    }

    /// `skopeo inspect --raw docker://HOST/REPO:TAG` (a tag, or `REPO@DIGEST`) with the
    /// registry's TLS and credential flags: the manifest or index exactly as stored (its
    /// sha256 is its digest). Panics if skopeo fails.
    pub fn skopeo_inspect_raw(&self, repository_and_tag: &str) -> String {
        let mut args = strings(&["inspect", "--raw"]);
        args.extend(self.skopeo_flags("", self.credentials()));
        args.push(format!("docker://{}", self.reference(repository_and_tag)));
        skopeo(&str_refs(&args))
    }

    /// skopeo's TLS and credential flags for this registry; `prefix` is `"dest-"`,
    /// `"src-"` or `""` (inspect). `creds: None` gives `--…no-creds`, which keeps skopeo
    /// from using credentials from an `auth.json` on the machine.
    pub fn skopeo_flags(&self, prefix: &str, creds: Option<(&str, &str)>) -> Vec<String> {
        let mut flags = Vec::new();
        match self.cert_dir() {
            Some(dir) => flags.push(format!("--{prefix}cert-dir={}", dir.display())),
            None => flags.push(format!("--{prefix}tls-verify=false")),
        }
        match creds {
            Some((user, password)) => flags.push(format!("--{prefix}creds={user}:{password}")),
            None => flags.push(format!("--{prefix}no-creds")),
        }
        flags
    }

    /// The sorted tags of `repository`, listed by skopeo with `creds` (`None`: anonymous) and
    /// without any proxy variable; empty when the repository does not exist or cannot be listed.
    pub fn tags(&self, repository: &str, creds: Option<(&str, &str)>) -> Vec<String> {
        let mut command = Command::new("skopeo");
        command
            .args(["--insecure-policy", "list-tags"])
            .args(self.skopeo_flags("", creds))
            .arg(format!("docker://{}", self.reference(repository)));
        for variable in [
            "HTTPS_PROXY",
            "https_proxy",
            "HTTP_PROXY",
            "http_proxy",
            "ALL_PROXY",
            "all_proxy",
        ] {
            command.env_remove(variable);
        }
        let output = run_unchecked(&mut command);
        if !output.status.success() {
            return Vec::new();
        }
        let listing: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        let mut tags: Vec<String> = listing["Tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|tag| tag.as_str().unwrap().to_owned())
            .collect();
        tags.sort();
        tags
    }

    fn skopeo_copy_to_command(
        &self,
        source: &str,
        repository_and_tag: &str,
        creds: Option<(&str, &str)>,
    ) -> Command {
        let mut cmd = Command::new("skopeo");
        cmd.args(["--insecure-policy", "copy", "--all", "--preserve-digests"])
            .args(self.skopeo_flags("dest-", creds))
            .arg(source)
            .arg(format!("docker://{}", self.reference(repository_and_tag)));
        cmd
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = self.log();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(100)..];
            eprintln!(
                "--- last {} lines of the log of the test registry at {} ---\n{}",
                tail.len(),
                self.host(),
                tail.join("\n")
            );
            if let Some(server) = &self.token_server {
                eprintln!(
                    "--- requests to its token server at {} ---\n{:#?}",
                    server.realm(),
                    server.requests()
                );
            }
        }
    }
}

/// Parses one access-log line (Apache combined format, see the module docs); `None` for
/// anything else, such as the registry's own `time="…" level=…` messages.
pub fn parse_access_log_line(line: &str) -> Option<AccessLogEntry> {
    // HOST - USER [TIME] "METHOD URI PROTO" STATUS SIZE "REFERER" "USER-AGENT"
    let (_, rest) = line.split_once(" [")?;
    let (_, rest) = rest.split_once("] \"")?;
    let (request, rest) = rest.split_once("\" ")?;
    let mut request = request.split(' ');
    let method = request.next()?;
    let uri = request.next()?;
    let protocol = request.next()?;
    if !protocol.starts_with("HTTP/") || request.next().is_some() {
        return None;
    }
    let mut fields = rest.splitn(3, ' ');
    let status = fields.next()?.parse().ok()?;
    let _size = fields.next()?;
    let quoted = fields.next()?;
    // "REFERER" "USER-AGENT": the user agent is the last quoted string.
    let user_agent = quoted.strip_suffix('"')?.rsplit_once(" \"")?.1;
    Some(AccessLogEntry {
        method: method.to_string(),
        uri: uri.to_string(),
        status,
        user_agent: user_agent.to_string(),
    })
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

fn str_refs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}
