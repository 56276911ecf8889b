//! Registry interop: proxies (see tests/it/registry_interop/mod.rs).
//!
//! `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY` as the Go-based container tools read them, through
//! real proxies (tinyproxy, [`ForwardProxy`]; microsocks, [`SocksProxy`]) and the real registry.
//! A registry reached by a non-loopback name is given one through a private `/etc/hosts` (the
//! proxy, and `lambda-image` when it must go direct, run with it). tinyproxy's request log says
//! what went through it.
//!
//! Not here: the `NO_PROXY` matcher form by form (unit tests in src/registry/http/proxy_tests.rs).

use std::path::Path;
use std::process::Output;

use super::common::assert_exit;
use crate::support::forward_proxy::{
    ForwardProxy, ForwardProxyOptions, SocksProxy, hosts_file, with_hosts,
};
use crate::support::registry::{RegistryOptions, TestRegistry, free_port};
use crate::support::scratch::Scratch;
use crate::support::*;

/// The name the registry is reached by (`.test` is reserved for testing, RFC 2606).
const NAME: &str = "registry.interop.test";
const PROXY_USER: &str = "builder";
/// tinyproxy's `BasicAuth` takes only `[-a-z0-9._]` in a password.
const PROXY_PASSWORD: &str = "pr0xy-secret.42";
/// Every variable that could route a request through a proxy, removed before each run.
const PROXY_VARIABLES: [&str; 8] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// `lambda-image build` of the fixture base and bootstraps, pushed to `target`, with `env` as
/// its only proxy settings and `/etc/hosts` = `hosts`.
fn push(
    scratch: &Scratch,
    hosts: &Path,
    target: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Output {
    let bootstraps = both_bootstrap_args();
    let base = base_reference();
    let mut args: Vec<&str> = bootstraps.iter().map(String::as_str).collect();
    args.extend(["--base", &base, "--tag", target]);
    args.extend_from_slice(extra);
    let mut command = scratch.build(&args);
    for variable in PROXY_VARIABLES {
        command.env_remove(variable);
    }
    for (variable, value) in env {
        command.env(variable, value);
    }
    run_unchecked(&mut with_hosts(&command, hosts))
}

/// The proxy password appears nowhere, plain or in a Basic header.
fn assert_no_proxy_secret(output: &Output) {
    use base64::Engine;
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{PROXY_USER}:{PROXY_PASSWORD}"));
    for stream in [&output.stdout, &output.stderr] {
        let text = String::from_utf8_lossy(stream);
        assert!(
            !text.contains(PROXY_PASSWORD),
            "the proxy password leaked:\n{text}"
        );
        assert!(
            !text.contains(&encoded),
            "the proxy password leaked:\n{text}"
        );
        assert!(!text.contains(&format!("{PROXY_USER}:")), "{text}");
    }
}

/// `http://127.0.0.1:PORT` where nothing listens.
fn dead_proxy() -> String {
    format!("http://127.0.0.1:{}", free_port())
}

/// A registry on 127.0.0.1 or `localhost` is reached directly even with proxies set, as Go's
/// httpproxy does: before, it was sent to the proxy (moby/moby#12405: a local registry push
/// failing because the daemon's proxy got it; with a dead proxy: `502 Bad Gateway`).
#[test]
fn loopback_registries_never_go_through_the_proxy() {
    let registry = TestRegistry::start(RegistryOptions::default());
    let proxy = ForwardProxy::start(ForwardProxyOptions::default());
    let scratch = Scratch::new();
    let hosts = hosts_file(&scratch.path(""), &[]);
    let live = proxy.url();
    let dead = dead_proxy();
    let port = registry.port();
    let targets = [
        (format!("127.0.0.1:{port}/fn:v1"), &live),
        (format!("localhost:{port}/fn:v2"), &live),
        (format!("127.0.0.1:{port}/fn:v3"), &dead),
    ];
    for (target, proxy_url) in &targets {
        let env = [
            ("HTTPS_PROXY", proxy_url.as_str()),
            ("HTTP_PROXY", proxy_url.as_str()),
        ];
        let output = push(&scratch, &hosts, target, &[], &env);
        assert_exit(&output, 0, &[]);
    }
    assert!(
        proxy.requests().is_empty(),
        "the proxy saw: {:?}",
        proxy.requests()
    );
    let tags = registry.tags("fn", None);
    for tag in ["v1", "v2", "v3"] {
        assert!(tags.contains(&tag.to_owned()), "{tags:?}");
    }
}

/// A registry reached by a name goes through the proxy (plain-HTTP forwarding for an
/// `--insecure-registry` that speaks plain HTTP, with no `CONNECT` for an HTTPS try before it:
/// tests/it/round_trips.rs), with a proxy value that has no scheme
/// (docker/for-mac#5844 sets `https_proxy=proxy.example.com:81`). `NO_PROXY` in each of its
/// forms lets it go direct, which works even with a dead proxy (docker/for-mac#5844 and
/// moby/moby#37318: a registry in `NO_PROXY` still sent to the proxy); forms that do not match the
/// name keep it on the (dead) proxy: another port, subdomains only, and IP entries, which never
/// match a name (kubernetes-sigs/kind#1304 expected `172.17.0.0/16` to cover `registry:5000`; Go
/// does not, nor do we).
#[test]
fn a_named_registry_goes_through_the_proxy_unless_no_proxy_names_it() {
    let registry = TestRegistry::start(RegistryOptions::default());
    let proxy = ForwardProxy::start(ForwardProxyOptions {
        host_names: vec![NAME.to_owned()],
        ..ForwardProxyOptions::default()
    });
    let scratch = Scratch::new();
    let hosts = hosts_file(&scratch.path(""), &[NAME]);
    let host = format!("{NAME}:{}", registry.port());
    let insecure = ["--insecure-registry", host.as_str()];

    let output = push(
        &scratch,
        &hosts,
        &format!("{host}/fn:proxied"),
        &insecure,
        &[
            ("HTTPS_PROXY", &proxy.address()),
            ("HTTP_PROXY", &proxy.url()),
        ],
    );
    assert_exit(&output, 0, &[]);
    let requests = proxy.requests();
    assert!(
        !requests.iter().any(|r| r.starts_with("CONNECT")),
        "{requests:?}"
    );
    assert!(
        requests.contains(&format!("GET http://{host}/v2/ HTTP/1.1")),
        "{requests:?}"
    );
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with(&format!("PUT http://{host}/v2/fn/manifests/proxied"))),
        "{requests:?}"
    );
    assert!(registry.tags("fn", None).contains(&"proxied".to_owned()));

    let dead = dead_proxy();
    let port_entry = host.clone();
    let bypassing = [
        ("NO_PROXY", NAME),
        ("NO_PROXY", ".interop.test"),
        ("NO_PROXY", "interop.test"),
        ("NO_PROXY", "*.interop.test"),
        ("NO_PROXY", port_entry.as_str()),
        ("NO_PROXY", "*"),
        ("no_proxy", " other.test, REGISTRY.Interop.Test ,"),
    ];
    let seen_before = proxy.requests().len();
    for (index, (variable, list)) in bypassing.iter().enumerate() {
        let tag = format!("direct{index}");
        let output = push(
            &scratch,
            &hosts,
            &format!("{host}/fn:{tag}"),
            &insecure,
            &[
                ("HTTPS_PROXY", &dead),
                ("HTTP_PROXY", &dead),
                (variable, list),
            ],
        );
        assert_exit(&output, 0, &[]);
        assert!(
            registry.tags("fn", None).contains(&tag),
            "{variable}={list}"
        );
    }
    assert_eq!(proxy.requests().len(), seen_before);

    let other_port = format!("{NAME}:1");
    for list in [other_port.as_str(), ".registry.interop.test", "127.0.0.0/8"] {
        let output = push(
            &scratch,
            &hosts,
            &format!("{host}/fn:never"),
            &insecure,
            &[
                ("HTTPS_PROXY", &dead),
                ("HTTP_PROXY", &dead),
                ("NO_PROXY", list),
            ],
        );
        assert_exit(&output, 6, &["cannot reach the proxy"]);
    }
    assert!(!registry.tags("fn", None).contains(&"never".to_owned()));
}

/// A proxy that is down or cannot be resolved is named, with the variable that set it and how
/// to bypass it, never with its credentials; before, it read as the registry being down.
#[test]
fn a_dead_or_unknown_proxy_is_named_with_its_variable_and_a_bypass() {
    let registry = TestRegistry::start(RegistryOptions::default());
    let scratch = Scratch::new();
    let hosts = hosts_file(&scratch.path(""), &[NAME]);
    let host = format!("{NAME}:{}", registry.port());
    let target = format!("{host}/fn:v1");

    // HTTPS (no --insecure-registry): the CONNECT never happens.
    let port = free_port();
    let with_credentials = format!("http://{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:{port}");
    let output = push(
        &scratch,
        &hosts,
        &target,
        &[],
        &[("HTTPS_PROXY", &with_credentials)],
    );
    assert_exit(
        &output,
        6,
        &[
            &format!(
                "registry {host}: connect failed: cannot reach the proxy http://127.0.0.1:{port} (from HTTPS_PROXY)"
            ),
            &format!("NO_PROXY={NAME}"),
        ],
    );
    assert_no_proxy_secret(&output);

    // Plain HTTP, lower-case variables, a proxy name that does not resolve, and a NO_PROXY
    // list the hint extends.
    let insecure = ["--insecure-registry", host.as_str()];
    let output = push(
        &scratch,
        &hosts,
        &target,
        &insecure,
        &[
            ("https_proxy", "proxy.invalid:3128"),
            ("http_proxy", "proxy.invalid:3128"),
            ("no_proxy", "other.test"),
        ],
    );
    assert_exit(
        &output,
        6,
        &[
            "cannot reach the proxy http://proxy.invalid:3128 (from http_proxy)",
            &format!("no_proxy=other.test,{NAME}"),
        ],
    );
    assert!(registry.tags("fn", None).is_empty());
}

/// A proxy that wants credentials (tinyproxy `BasicAuth`) gets them from `user:pass@` in the
/// proxy URL, on the CONNECT and on forwarded plain-HTTP requests alike (rancher/rancher#937:
/// `http_proxy=http://USER:PASS@HOST:PORT`). Without them, or with wrong ones, the error says
/// the proxy wants (or may refuse) credentials and where they go, and never shows them.
#[test]
fn a_proxy_that_wants_credentials_gets_them_from_the_proxy_url() {
    let registry = TestRegistry::start(RegistryOptions::default());
    let proxy = ForwardProxy::start(ForwardProxyOptions {
        basic_auth: Some((PROXY_USER.to_owned(), PROXY_PASSWORD.to_owned())),
        host_names: vec![NAME.to_owned()],
        ..ForwardProxyOptions::default()
    });
    let scratch = Scratch::new();
    let hosts = hosts_file(&scratch.path(""), &[NAME]);
    let host = format!("{NAME}:{}", registry.port());
    let target = format!("{host}/fn:v1");
    let insecure = ["--insecure-registry", host.as_str()];
    let address = proxy.address();

    // No credentials: HTTPS (the CONNECT is refused), then plain HTTP (the GET is).
    let output = push(
        &scratch,
        &hosts,
        &target,
        &[],
        &[("HTTPS_PROXY", &proxy.url())],
    );
    assert_exit(
        &output,
        6,
        &[
            &format!("the proxy http://{address} (from HTTPS_PROXY) wants credentials"),
            &format!("HTTPS_PROXY=http://USER:PASS@{address}"),
        ],
    );
    // Asking the proxy again with the same URL cannot help: one try, not four.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("tries"), "a 407 was retried:\n{stderr}");
    let output = push(
        &scratch,
        &hosts,
        &target,
        &insecure,
        &[("HTTPS_PROXY", &proxy.url()), ("HTTP_PROXY", &proxy.url())],
    );
    assert_exit(
        &output,
        6,
        &[
            &format!("the proxy http://{address} (from HTTP_PROXY) wants credentials"),
            "407",
        ],
    );

    // Wrong credentials. tinyproxy refuses them with a 401 (not a 407) that no client can tell
    // from a registry's, so only the CONNECT (HTTPS) case is checked here: its answer is the
    // proxy's by construction.
    let wrong = format!("http://{PROXY_USER}:{PROXY_PASSWORD}x@{address}");
    let output = push(&scratch, &hosts, &target, &[], &[("HTTPS_PROXY", &wrong)]);
    assert_exit(
        &output,
        6,
        &[
            &format!("the proxy http://{address} (from HTTPS_PROXY)"),
            "refuse the credentials in HTTPS_PROXY",
        ],
    );
    assert_no_proxy_secret(&output);
    assert!(registry.tags("fn", None).is_empty());

    // The right ones.
    let right = format!("http://{PROXY_USER}:{PROXY_PASSWORD}@{address}");
    let output = push(
        &scratch,
        &hosts,
        &target,
        &insecure,
        &[("HTTPS_PROXY", &right), ("HTTP_PROXY", &right)],
    );
    assert_exit(&output, 0, &[]);
    assert_no_proxy_secret(&output);
    assert_eq!(registry.tags("fn", None), ["v1", "v1-amd64", "v1-arm64"]);
}

/// A proxy that refuses the CONNECT (tinyproxy allowing it only to port 443, as its Debian
/// configuration does), or cannot reach the registry for a plain-HTTP request, is named as the
/// one that failed; docker/for-linux#744 shows docker saying only `Service Unavailable` when it
/// was the proxy answering.
#[test]
fn a_proxy_that_cannot_or_will_not_reach_the_registry_is_named() {
    let registry = TestRegistry::start(RegistryOptions::default());
    let proxy = ForwardProxy::start(ForwardProxyOptions {
        connect_ports: vec![443],
        host_names: vec![NAME.to_owned()],
        ..ForwardProxyOptions::default()
    });
    let scratch = Scratch::new();
    let hosts = hosts_file(&scratch.path(""), &[NAME]);
    let host = format!("{NAME}:{}", registry.port());

    let output = push(
        &scratch,
        &hosts,
        &format!("{host}/fn:v1"),
        &[],
        &[("HTTPS_PROXY", &proxy.url())],
    );
    assert_exit(
        &output,
        6,
        &[
            &format!(
                "the proxy {} (from HTTPS_PROXY) could not or would not connect to {host}",
                proxy.url()
            ),
            "port 443",
            &format!("NO_PROXY={NAME}"),
        ],
    );
    assert!(
        proxy
            .requests()
            .contains(&format!("CONNECT {host} HTTP/1.1")),
        "{:?}",
        proxy.requests()
    );

    // Plain HTTP to a port where nothing listens: the proxy answers with an error of its own.
    let nowhere = format!("{NAME}:{}", free_port());
    let output = push(
        &scratch,
        &hosts,
        &format!("{nowhere}/fn:v1"),
        &["--insecure-registry", &nowhere],
        &[("HTTP_PROXY", &proxy.url()), ("HTTPS_PROXY", &proxy.url())],
    );
    assert_exit(
        &output,
        6,
        &[
            &format!(
                "answered through the proxy {} (from HTTP_PROXY), which may be unable to reach {nowhere}",
                proxy.url()
            ),
            &format!("NO_PROXY={NAME}"),
        ],
    );
    assert!(registry.tags("fn", None).is_empty());
}

/// A `socks5://` proxy (microsocks, with a user and password) carries every request, and
/// resolves the registry's name itself as Go's SOCKS5 dialer lets it: `lambda-image` runs
/// where the name does not resolve at all. Without credentials, or with wrong ones, the error
/// names the proxy and where credentials go, never showing them.
#[test]
fn a_socks5_proxy_carries_the_requests_and_resolves_the_name() {
    let registry = TestRegistry::start(RegistryOptions::default());
    let socks = SocksProxy::start(Some((PROXY_USER, PROXY_PASSWORD)), &[NAME]);
    let scratch = Scratch::new();
    // lambda-image's own /etc/hosts does not know NAME.
    let hosts = hosts_file(&scratch.path(""), &[]);
    let host = format!("{NAME}:{}", registry.port());
    let target = format!("{host}/fn:v1");
    let insecure = ["--insecure-registry", host.as_str()];
    let address = socks.address();

    let right = format!("socks5://{PROXY_USER}:{PROXY_PASSWORD}@{address}");
    let output = push(
        &scratch,
        &hosts,
        &target,
        &insecure,
        &[("HTTPS_PROXY", &right), ("HTTP_PROXY", &right)],
    );
    assert_exit(&output, 0, &[]);
    assert_no_proxy_secret(&output);
    assert_eq!(registry.tags("fn", None), ["v1", "v1-amd64", "v1-arm64"]);

    let bare = format!("socks5://{address}");
    let output = push(&scratch, &hosts, &target, &[], &[("HTTPS_PROXY", &bare)]);
    assert_exit(
        &output,
        6,
        &[
            &format!("the proxy socks5://{address} (from HTTPS_PROXY) wants credentials"),
            &format!("HTTPS_PROXY=socks5://USER:PASS@{address}"),
        ],
    );

    let wrong = format!("socks5://{PROXY_USER}:{PROXY_PASSWORD}x@{address}");
    let output = push(&scratch, &hosts, &target, &[], &[("HTTPS_PROXY", &wrong)]);
    assert_exit(
        &output,
        6,
        &[
            "refused the credentials in HTTPS_PROXY",
            &format!("NO_PROXY={NAME}"),
        ],
    );
    assert_no_proxy_secret(&output);
}
