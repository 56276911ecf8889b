//! Forward proxies from the environment, chosen per request as the Go-based container tools
//! (docker, skopeo, podman, crane) choose them, and errors that say when the proxy is what failed.
//!
//! The rules are those of Go's `golang.org/x/net/http/httpproxy` (`FromEnvironment` and
//! `ProxyFunc`), which `net/http.ProxyFromEnvironment` uses:
//! - `HTTPS_PROXY` (else `https_proxy`) for `https://` requests, `HTTP_PROXY` (else `http_proxy`)
//!   for `http://` ones; an empty value counts as unset. `ALL_PROXY` is not read (Go does not).
//! - A value without a scheme (`proxy:3128`) means `http://proxy:3128`. `user:pass@` in it is sent
//!   as `Proxy-Authorization: Basic` (on `CONNECT` for HTTPS, on each request for plain HTTP).
//! - `localhost` and loopback addresses (`127.0.0.0/8`, `::1`) are never proxied.
//! - `NO_PROXY` (else `no_proxy`): see [`NoProxy`].
//!
//! Supported proxy schemes are `http://`, `https://`, `socks5://` and `socks5h://` (Go's set).
//! Both SOCKS forms let the proxy resolve the host name, as Go's SOCKS5 dialer does (so
//! `socks5://` means what `socks5h://` means to curl); `user:pass@` is then the SOCKS5
//! user/password. Any other scheme (`socks4://`, ...) is refused with an error when the client is
//! built, rather than silently going direct.
//!
//! Not here: choosing HTTPS or plain HTTP for a registry ([`super::client`]), retries
//! ([`super::retry`]). Credentials in a proxy URL never appear in a message: proxies are shown as
//! `scheme://host:port` only.

use std::fmt;
use std::net::IpAddr;
use std::sync::OnceLock;

use ipnet::IpNet;
use reqwest::Url;

use crate::error::{Error, Result};

/// A proxy named by an environment variable.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyServer {
    /// The proxy URL, credentials included (for reqwest only; never shown).
    pub(super) url: Url,
    /// The variable that set it, e.g. `HTTPS_PROXY` or `https_proxy`.
    pub(super) variable: &'static str,
}

impl ProxyServer {
    /// The variable that named this proxy, e.g. `HTTPS_PROXY`.
    pub fn variable(&self) -> &'static str {
        self.variable
    }

    /// Whether the proxy URL carries a user name or password.
    pub fn has_credentials(&self) -> bool {
        !self.url.username().is_empty() || self.url.password().is_some()
    }

    /// `scheme://host:port`, without any credentials: the form used in messages.
    pub fn display(&self) -> String {
        format!("{}://{}", self.url.scheme(), self.address())
    }

    /// `host:port` (the default port of the scheme when the URL has none: 80, 443, 1080).
    pub(super) fn address(&self) -> String {
        let host = self.url.host_str().unwrap_or_default();
        let port = match self.url.scheme() {
            "socks5" | "socks5h" => Some(self.url.port().unwrap_or(SOCKS_PORT)),
            _ => self.url.port_or_known_default(),
        };
        match port {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        }
    }

    /// The URL reqwest connects through: `socks5://` becomes `socks5h://` (the proxy resolves
    /// names, as with Go).
    fn target(&self) -> Url {
        let mut url = self.url.clone();
        if url.scheme() == "socks5" {
            // Both are non-special schemes, between which `set_scheme` cannot fail.
            let _ = url.set_scheme("socks5h");
        }
        url
    }
}

/// The SOCKS port when a `socks5://` URL names none.
const SOCKS_PORT: u16 = 1080;

/// Never shows the credentials.
impl fmt::Debug for ProxyServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (from {})", self.display(), self.variable)
    }
}

/// The `NO_PROXY` list: which request hosts go direct. Matching follows Go's `httpproxy`:
/// entries are separated by commas, trimmed and lower-cased; empty ones are skipped.
/// - `*` (anywhere in the list): nothing is proxied.
/// - `10.0.0.0/8`, `fd00::/8`: an IP request host inside that CIDR range (any port).
/// - `10.1.2.3`, `::1`, `[::1]`, `10.1.2.3:5000`, `[fd00::1]:5000`: that IP, any port or that port.
/// - `example.com`: that host and every subdomain; `.example.com` and `*.example.com`:
///   subdomains only. With `:PORT`, only requests to that port (the scheme's default port when
///   the URL has none: `host:443` matches `https://host/`). Domain entries never match an IP host.
///
/// One leniency over Go: a bracketed IPv6 address without a port (`[fd00::1]`) is read as that
/// address (Go reads it as a host name that never matches). Non-ASCII entries are compared as
/// written (Go converts them to punycode first).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NoProxy {
    /// `*` was in the list.
    all: bool,
    ip_rules: Vec<IpRule>,
    domain_rules: Vec<DomainRule>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum IpRule {
    Range(IpNet),
    Address { ip: IpAddr, port: Option<String> },
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct DomainRule {
    /// Always starts with `.`.
    suffix: String,
    /// The entry had no leading `.` or `*.`: the name itself matches too.
    matches_itself: bool,
    port: Option<String>,
}

impl NoProxy {
    /// Parses a `NO_PROXY` value; malformed entries are ignored, as Go does.
    pub fn parse(list: &str) -> NoProxy {
        let mut no_proxy = NoProxy::default();
        for entry in list.split(',') {
            let entry = entry.trim().to_ascii_lowercase();
            if entry.is_empty() {
                continue;
            }
            if entry == "*" {
                return NoProxy {
                    all: true,
                    ..NoProxy::default()
                };
            }
            if let Ok(range) = entry.parse::<IpNet>() {
                no_proxy.ip_rules.push(IpRule::Range(range));
                continue;
            }
            let (host, port) = split_host_port(&entry);
            if host.is_empty() {
                continue;
            }
            if let Ok(ip) = host.parse::<IpAddr>() {
                no_proxy.ip_rules.push(IpRule::Address { ip, port });
                continue;
            }
            let host = if host.starts_with("*.") {
                &host[1..]
            } else {
                host
            };
            let (suffix, matches_itself) = match host.strip_prefix('.') {
                Some(_) => (host.to_owned(), false),
                None => (format!(".{host}"), true),
            };
            no_proxy.domain_rules.push(DomainRule {
                suffix,
                matches_itself,
                port,
            });
        }
        no_proxy
    }

    /// Whether a request to `host` (lower-case; an IP without brackets) on `port` goes direct.
    fn matches(&self, host: &str, port: &str) -> bool {
        if self.all {
            return true;
        }
        let port_matches =
            |rule_port: &Option<String>| rule_port.as_deref().is_none_or(|p| p == port);
        if let Ok(ip) = host.parse::<IpAddr>() {
            let ip = ip.to_canonical();
            return self.ip_rules.iter().any(|rule| match rule {
                IpRule::Range(range) => range.contains(&ip),
                IpRule::Address {
                    ip: rule_ip,
                    port: rule_port,
                } => rule_ip.to_canonical() == ip && port_matches(rule_port),
            });
        }
        self.domain_rules.iter().any(|rule| {
            (host.ends_with(&rule.suffix) || (rule.matches_itself && host == &rule.suffix[1..]))
                && port_matches(&rule.port)
        })
    }
}

/// `(host, port)` of a `NO_PROXY` entry, as Go's `net.SplitHostPort` splits it, the entry itself
/// as host when it has no port (`example.com`, a bare IPv6 address). Brackets are removed.
fn split_host_port(entry: &str) -> (&str, Option<String>) {
    if let Some(rest) = entry.strip_prefix('[')
        && let Some((ip, after)) = rest.split_once(']')
    {
        return match after.strip_prefix(':') {
            Some(port) => (ip, non_empty(port)),
            None if after.is_empty() => (ip, None),
            None => (entry, None),
        };
    }
    match entry.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => (host, non_empty(port)),
        _ => (entry, None),
    }
}

fn non_empty(port: &str) -> Option<String> {
    (!port.is_empty()).then(|| port.to_owned())
}

/// The proxies the environment names, and the hosts that bypass them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProxySettings {
    http: Option<ProxyServer>,
    https: Option<ProxyServer>,
    no_proxy: NoProxy,
    /// The `NO_PROXY` text and the variable it came from, for hints.
    no_proxy_text: Option<(&'static str, String)>,
}

impl ProxySettings {
    /// The settings of this process's environment, read once and kept for the whole run.
    ///
    /// Errors (exit 2) when a proxy variable cannot be used: not a URL, or a scheme other than
    /// `http`/`https`.
    pub fn global() -> Result<&'static ProxySettings> {
        static SETTINGS: OnceLock<std::result::Result<ProxySettings, (String, String)>> =
            OnceLock::new();
        let settings = SETTINGS.get_or_init(|| {
            ProxySettings::from_lookup(|name| std::env::var(name).ok()).map_err(|error| {
                (
                    error.message().to_owned(),
                    error.hint_text().unwrap_or_default().to_owned(),
                )
            })
        });
        settings
            .as_ref()
            .map_err(|(message, hint)| Error::usage(message.clone()).hint(hint.clone()))
    }

    /// The settings that `lookup` (an environment variable by name) gives, by Go's precedence:
    /// the upper-case name first, then the lower-case one; an empty value is unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<ProxySettings> {
        let read = |upper: &'static str, lower: &'static str| {
            [upper, lower].into_iter().find_map(|name| {
                lookup(name)
                    .filter(|value| !value.is_empty())
                    .map(|value| (name, value))
            })
        };
        let server = |(variable, value): (&'static str, String)| parse_proxy(variable, &value);
        let no_proxy_text = read("NO_PROXY", "no_proxy");
        Ok(ProxySettings {
            http: read("HTTP_PROXY", "http_proxy").map(server).transpose()?,
            https: read("HTTPS_PROXY", "https_proxy").map(server).transpose()?,
            no_proxy: no_proxy_text
                .as_ref()
                .map_or_else(NoProxy::default, |(_, text)| NoProxy::parse(text)),
            no_proxy_text,
        })
    }

    /// Whether no proxy is set at all.
    pub fn is_empty(&self) -> bool {
        self.http.is_none() && self.https.is_none()
    }

    /// The proxy a request to `url` goes through, if any.
    pub fn proxy_for(&self, url: &Url) -> Option<&ProxyServer> {
        let proxy = match url.scheme() {
            "https" => self.https.as_ref(),
            "http" => self.http.as_ref(),
            _ => None,
        }?;
        let host = request_host(url)?;
        let port = url
            .port_or_known_default()
            .map(|p| p.to_string())
            .unwrap_or_default();
        if super::scheme::is_loopback_name(&host) || self.no_proxy.matches(&host, &port) {
            return None;
        }
        Some(proxy)
    }

    /// The `NO_PROXY=...` setting that would let `host` bypass the proxy.
    pub(super) fn bypass_example(&self, host: &str) -> String {
        match &self.no_proxy_text {
            Some((variable, text)) => format!("{variable}={text},{host}"),
            None => format!("NO_PROXY={host}"),
        }
    }

    /// The reqwest proxy that applies these settings to every request of a client: registry,
    /// token service and redirected downloads alike.
    pub fn reqwest_proxy(&'static self) -> reqwest::Proxy {
        reqwest::Proxy::custom(move |url| self.proxy_for(url).map(ProxyServer::target))
    }
}

/// The host of `url` as `NO_PROXY` rules see it: lower-case, IPv6 without brackets.
fn request_host(url: &Url) -> Option<String> {
    let host = url.host_str()?;
    Some(
        host.strip_prefix('[')
            .and_then(|ip| ip.strip_suffix(']'))
            .unwrap_or(host)
            .to_ascii_lowercase(),
    )
}

/// A proxy variable's value as Go's `parseProxy` reads it: a URL, or `host[:port]` meaning
/// `http://host[:port]`.
fn parse_proxy(variable: &'static str, value: &str) -> Result<ProxyServer> {
    let parsed = if value.contains("://") {
        Url::parse(value)
    } else {
        Url::parse(&format!("http://{value}"))
    };
    let invalid = |why: String| {
        Error::usage(format!(
            "{variable} is not a proxy URL ({why}): {}",
            redact(value)
        ))
        .hint(format!(
            "set {variable} to http://HOST:PORT (or http://USER:PASS@HOST:PORT), or unset it"
        ))
    };
    let url = match parsed {
        Ok(url) if url.has_host() => url,
        Ok(_) => return Err(invalid("no host".to_owned())),
        Err(error) => return Err(invalid(error.to_string())),
    };
    match url.scheme() {
        "http" | "https" | "socks5" | "socks5h" => Ok(ProxyServer { url, variable }),
        scheme => Err(Error::usage(format!(
            "{variable} names a {scheme}:// proxy ({}), which lambda-image does not support",
            ProxyServer {
                url: url.clone(),
                variable
            }
            .display()
        ))
        .hint(format!(
            "use an HTTP or SOCKS5 proxy ({variable}=http://HOST:PORT or socks5://HOST:PORT), \
             or unset {variable}"
        ))),
    }
}

/// A proxy value with anything before its last `@` (credentials) hidden.
fn redact(value: &str) -> String {
    match value.rsplit_once('@') {
        Some((_, rest)) => format!("***@{rest}"),
        None => value.to_owned(),
    }
}

#[cfg(test)]
#[path = "proxy_tests.rs"]
mod tests;
