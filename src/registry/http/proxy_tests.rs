//! Unit tests of [`super`] (registry/http/proxy.rs).

use reqwest::StatusCode;

use super::super::proxy_failure::*;
use super::*;

fn settings(vars: &[(&str, &str)]) -> ProxySettings {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    ProxySettings::from_lookup(|name| {
        vars.iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    })
    .unwrap()
}

/// Which proxy (as displayed) a request to `url` uses.
fn route(settings: &ProxySettings, url: &str) -> Option<String> {
    settings
        .proxy_for(&Url::parse(url).unwrap())
        .map(ProxyServer::display)
}

fn no_proxy(list: &str) -> ProxySettings {
    settings(&[
        ("HTTPS_PROXY", "http://proxy.corp:3128"),
        ("HTTP_PROXY", "http://proxy.corp:3128"),
        ("NO_PROXY", list),
    ])
}

/// Whether `url` goes direct under `NO_PROXY=list`.
fn bypasses(list: &str, url: &str) -> bool {
    route(&no_proxy(list), url).is_none()
}

#[test]
fn each_scheme_has_its_variable_upper_case_first() {
    let s = settings(&[
        ("HTTPS_PROXY", "http://upper:1"),
        ("https_proxy", "http://lower:2"),
        ("http_proxy", "http://plain:3"),
    ]);
    assert_eq!(
        route(&s, "https://r.io/v2/").as_deref(),
        Some("http://upper:1")
    );
    assert_eq!(s.https.as_ref().unwrap().variable(), "HTTPS_PROXY");
    assert_eq!(
        route(&s, "http://r.io/v2/").as_deref(),
        Some("http://plain:3")
    );
    assert_eq!(s.http.as_ref().unwrap().variable(), "http_proxy");
    // An empty upper-case value is unset: the lower-case one applies.
    let s = settings(&[("HTTPS_PROXY", ""), ("https_proxy", "http://lower:2")]);
    assert_eq!(
        route(&s, "https://r.io/").as_deref(),
        Some("http://lower:2")
    );
    assert_eq!(s.https.as_ref().unwrap().variable(), "https_proxy");
    // Only HTTPS_PROXY: plain HTTP goes direct, and ALL_PROXY is not read.
    let s = settings(&[("HTTPS_PROXY", "http://p:1"), ("ALL_PROXY", "http://all:9")]);
    assert_eq!(route(&s, "http://r.io/"), None);
    assert!(settings(&[("ALL_PROXY", "http://all:9")]).is_empty());
    assert!(!s.is_empty());
    assert!(!settings(&[("HTTP_PROXY", "http://p:1")]).is_empty());
    // Other schemes never go through a proxy.
    assert_eq!(route(&s, "ftp://r.io/"), None);
}

#[test]
fn proxy_values_without_a_scheme_mean_http() {
    for (value, shown) in [
        ("proxy.corp:3128", "http://proxy.corp:3128"),
        ("10.0.0.1:3128", "http://10.0.0.1:3128"),
        ("proxy.corp", "http://proxy.corp:80"),
        ("user:secret@proxy.corp:3128", "http://proxy.corp:3128"),
        ("https://proxy.corp", "https://proxy.corp:443"),
        ("http://[fd00::1]:3128", "http://[fd00::1]:3128"),
        ("HTTP://Proxy.Corp:8080/", "http://proxy.corp:8080"),
    ] {
        let s = settings(&[("HTTPS_PROXY", value)]);
        assert_eq!(
            route(&s, "https://r.io/").as_deref(),
            Some(shown),
            "{value}"
        );
    }
}

#[test]
fn socks5_proxies_let_the_proxy_resolve_names_as_go_does() {
    for (value, shown, target) in [
        (
            "socks5://proxy.corp",
            "socks5://proxy.corp:1080",
            "socks5h://proxy.corp",
        ),
        (
            "socks5://me:pw@proxy.corp:9050",
            "socks5://proxy.corp:9050",
            "socks5h://me:pw@proxy.corp:9050",
        ),
        (
            "socks5h://proxy.corp:9050",
            "socks5h://proxy.corp:9050",
            "socks5h://proxy.corp:9050",
        ),
    ] {
        let s = settings(&[("HTTPS_PROXY", value)]);
        let proxy = s.proxy_for(&Url::parse("https://r.io/").unwrap()).unwrap();
        assert_eq!(proxy.display(), shown, "{value}");
        assert_eq!(proxy.target().as_str(), target, "{value}");
    }
    let s = settings(&[("HTTPS_PROXY", "http://proxy.corp")]);
    assert_eq!(s.https.unwrap().target().as_str(), "http://proxy.corp/");
}

#[test]
fn proxy_credentials_are_kept_for_the_request_but_never_shown() {
    let s = settings(&[("HTTPS_PROXY", "http://me:s%40cret@proxy.corp:3128")]);
    let proxy = s.proxy_for(&Url::parse("https://r.io/").unwrap()).unwrap();
    assert!(proxy.has_credentials());
    assert_eq!(proxy.url.password(), Some("s%40cret"));
    assert!(!format!("{proxy:?}").contains("cret"));
    assert_eq!(
        format!("{proxy:?}"),
        "http://proxy.corp:3128 (from HTTPS_PROXY)"
    );
    assert!(!proxy.display().contains("me"));
    let s = settings(&[("HTTPS_PROXY", "http://me@proxy.corp:3128")]);
    assert!(s.https.as_ref().unwrap().has_credentials());
    assert!(
        !settings(&[("HTTPS_PROXY", "http://proxy.corp:3128")])
            .https
            .unwrap()
            .has_credentials()
    );
}

#[test]
fn unusable_proxy_values_are_errors_without_their_credentials() {
    let error = |value: &str| {
        ProxySettings::from_lookup(|name| (name == "HTTPS_PROXY").then(|| value.to_owned()))
            .unwrap_err()
    };
    let socks = error("socks4://me:secret@proxy.corp:1080");
    assert!(
        socks.message().contains("socks4:// proxy"),
        "{}",
        socks.message()
    );
    assert!(socks.message().contains("proxy.corp:1080"));
    assert!(socks.message().contains("HTTPS_PROXY"));
    assert!(!socks.to_string().contains("secret"));
    let bad = error("http://me:secret@proxy corp:3128");
    assert!(
        bad.message().contains("HTTPS_PROXY is not a proxy URL"),
        "{}",
        bad.message()
    );
    assert!(!bad.to_string().contains("secret"), "{bad}");
    assert!(bad.message().contains("***@proxy corp:3128"));
    assert_eq!(redact("proxy:1"), "proxy:1");
    for value in ["unix:///run/proxy.sock", "socks5:/x://y"] {
        let no_host = error(value);
        assert!(
            no_host.message().contains("is not a proxy URL (no host)"),
            "{value}: {}",
            no_host.message()
        );
    }
}

#[test]
fn loopback_is_never_proxied() {
    let s = no_proxy("");
    for url in [
        "https://localhost:5000/v2/",
        "http://localhost/v2/",
        "https://127.0.0.1:5000/",
        "https://127.8.9.1/",
        "http://[::1]:5000/",
        "http://[::ffff:127.0.0.1]:5000/",
    ] {
        assert_eq!(route(&s, url), None, "{url}");
    }
    for url in [
        "https://localhost.corp/",
        "https://mylocalhost/",
        "https://128.0.0.1/",
        "https://[::2]/",
        "https://10.0.0.1:5000/",
    ] {
        assert!(route(&s, url).is_some(), "{url}");
    }
}

#[test]
fn no_proxy_star_bypasses_everything() {
    assert!(bypasses("*", "https://registry.corp/"));
    assert!(bypasses("registry.io, *", "https://10.1.1.1:5000/"));
    assert!(!bypasses("*.", "https://registry.corp/"));
    assert!(!bypasses("**", "https://registry.corp/"));
}

#[test]
fn no_proxy_domain_names_match_themselves_and_subdomains() {
    let list = "example.com";
    assert!(bypasses(list, "https://example.com/"));
    assert!(bypasses(list, "https://registry.example.com:5000/"));
    assert!(bypasses(list, "https://a.b.example.com/"));
    assert!(!bypasses(list, "https://notexample.com/"));
    assert!(!bypasses(list, "https://example.com.evil/"));
    assert!(!bypasses(list, "https://example.co/"));
}

#[test]
fn no_proxy_leading_dot_or_star_matches_subdomains_only() {
    for list in [".example.com", "*.example.com"] {
        assert!(bypasses(list, "https://registry.example.com/"), "{list}");
        assert!(bypasses(list, "https://a.b.example.com/"), "{list}");
        assert!(!bypasses(list, "https://example.com/"), "{list}");
        assert!(!bypasses(list, "https://notexample.com/"), "{list}");
    }
}

#[test]
fn no_proxy_domains_with_a_port_match_that_port_only() {
    let list = "registry.corp:5000";
    assert!(bypasses(list, "https://registry.corp:5000/"));
    assert!(bypasses(list, "http://registry.corp:5000/"));
    assert!(bypasses(list, "https://eu.registry.corp:5000/"));
    assert!(!bypasses(list, "https://registry.corp/"));
    assert!(!bypasses(list, "https://registry.corp:5001/"));
    // The scheme's default port counts when the URL has none.
    assert!(bypasses("registry.corp:443", "https://registry.corp/"));
    assert!(!bypasses("registry.corp:443", "http://registry.corp/"));
    assert!(bypasses("registry.corp:80", "http://registry.corp/"));
    assert!(bypasses(".corp:443", "https://registry.corp/"));
    // `host:` has an empty port: any port.
    assert!(bypasses("registry.corp:", "https://registry.corp:7/"));
}

#[test]
fn no_proxy_ip_addresses_and_ports() {
    assert!(bypasses("10.1.2.3", "https://10.1.2.3:5000/"));
    assert!(bypasses("10.1.2.3", "http://10.1.2.3/"));
    assert!(!bypasses("10.1.2.3", "https://10.1.2.4/"));
    assert!(bypasses("10.1.2.3:5000", "https://10.1.2.3:5000/"));
    assert!(!bypasses("10.1.2.3:5000", "https://10.1.2.3:5001/"));
    assert!(!bypasses("10.1.2.3:5000", "https://10.1.2.3/"));
    assert!(bypasses("10.1.2.3:443", "https://10.1.2.3/"));
    // An IP entry never matches a name, and a name entry never an IP.
    assert!(!bypasses("10.1.2.3", "https://registry.corp/"));
    assert!(!bypasses("corp", "https://10.1.2.3/"));
    assert!(!bypasses("10.1.2", "https://10.1.2.3/"));
}

#[test]
fn no_proxy_ipv6_addresses_with_and_without_brackets_and_ports() {
    let url = "https://[fd00::1]:5000/";
    for list in [
        "fd00::1",
        "FD00::1",
        "[fd00::1]",
        "[fd00::1]:5000",
        "fd00:0::1",
    ] {
        assert!(bypasses(list, url), "{list}");
    }
    assert!(!bypasses("[fd00::1]:5001", url));
    assert!(!bypasses("fd00::2", url));
    assert!(!bypasses("[fd00::1]x", url));
    assert!(bypasses("fd00::/8", url));
    assert!(!bypasses("fe00::/8", url));
    // IPv4-mapped addresses are their IPv4 address.
    assert!(bypasses("10.1.2.3", "https://[::ffff:10.1.2.3]/"));
    assert!(bypasses("10.0.0.0/8", "https://[::ffff:10.1.2.3]/"));
    assert!(bypasses("::ffff:10.1.2.3", "https://10.1.2.3/"));
}

#[test]
fn no_proxy_cidr_ranges() {
    let list = "10.0.0.0/8, 192.168.1.0/24";
    assert!(bypasses(list, "https://10.200.3.4:5000/"));
    assert!(bypasses(list, "https://192.168.1.255/"));
    assert!(!bypasses(list, "https://192.168.2.1/"));
    assert!(!bypasses(list, "https://11.0.0.1/"));
    assert!(!bypasses(list, "https://registry.corp/"));
    // Host bits set: the network is what counts, as Go's ParseCIDR does.
    assert!(bypasses("10.1.2.3/8", "https://10.9.9.9/"));
    assert!(bypasses("0.0.0.0/0", "https://8.8.8.8/"));
    // Boundaries of a /31.
    assert!(bypasses("10.0.0.2/31", "https://10.0.0.3/"));
    assert!(!bypasses("10.0.0.2/31", "https://10.0.0.4/"));
    assert!(!bypasses("10.0.0.2/31", "https://10.0.0.1/"));
}

#[test]
fn no_proxy_case_whitespace_and_empty_entries() {
    let list = " ,, Registry.CORP ,\t.Example.Org\t,,";
    assert!(bypasses(list, "https://registry.corp/"));
    assert!(bypasses(list, "https://REGISTRY.corp/"));
    assert!(bypasses(list, "https://eu.example.org/"));
    assert!(!bypasses(list, "https://example.org/"));
    assert!(!bypasses(list, "https://other.corp/"));
    // Malformed entries are skipped, the rest still apply.
    assert!(bypasses(
        ":5000, [, registry.corp",
        "https://registry.corp/"
    ));
    assert!(!bypasses(":5000", "https://registry.corp:5000/"));
    assert!(!bypasses("", "https://registry.corp/"));
    assert!(!bypasses(" , ", "https://registry.corp/"));
    // Lower-case no_proxy is read when NO_PROXY is not set.
    let s = settings(&[("HTTPS_PROXY", "p:1"), ("no_proxy", "registry.corp")]);
    assert_eq!(route(&s, "https://registry.corp/"), None);
    let s = settings(&[
        ("HTTPS_PROXY", "p:1"),
        ("NO_PROXY", "other.corp"),
        ("no_proxy", "registry.corp"),
    ]);
    assert!(route(&s, "https://registry.corp/").is_some());
}

#[test]
fn split_host_port_as_go() {
    assert_eq!(split_host_port("h:1"), ("h", Some("1".to_owned())));
    assert_eq!(split_host_port("h"), ("h", None));
    assert_eq!(split_host_port("h:"), ("h", None));
    assert_eq!(split_host_port("::1"), ("::1", None));
    assert_eq!(split_host_port("[::1]"), ("::1", None));
    assert_eq!(split_host_port("[::1]:5"), ("::1", Some("5".to_owned())));
    assert_eq!(split_host_port("[::1]5"), ("[::1]5", None));
}

#[test]
fn proxy_failures_are_told_apart() {
    let tunnel = "client error (Connect): tunnel error: ";
    assert_eq!(
        classify(&format!("{tunnel}proxy authorization required"), true),
        Some(ProxyFailure::AuthenticationRequired)
    );
    assert_eq!(
        classify(&format!("{tunnel}unsuccessful"), true),
        Some(ProxyFailure::TunnelRefused)
    );
    assert_eq!(
        classify(&format!("{tunnel}unexpected end of file"), true),
        Some(ProxyFailure::TunnelRefused)
    );
    assert_eq!(
        classify("tcp connect error: Connection refused (os error 111)", true),
        Some(ProxyFailure::Unreachable)
    );
    assert_eq!(classify("connection reset by peer", false), None);
    let socks = "client error (Connect): error connecting to socks proxy: SOCKS error: ";
    assert_eq!(
        classify(&format!("{socks}credentials not accepted"), true),
        Some(ProxyFailure::AuthenticationRequired)
    );
    assert_eq!(
        classify(
            &format!("{socks}server does not support user/pass authentication"),
            true
        ),
        Some(ProxyFailure::AuthenticationRequired)
    );
    assert_eq!(
        classify(
            &format!("{socks}server implements authentication incorrectly"),
            true
        ),
        Some(ProxyFailure::AuthenticationRequired)
    );
    assert_eq!(
        classify(&format!("{socks}connection refused"), true),
        Some(ProxyFailure::TunnelRefused)
    );
    assert_eq!(
        classify(
            &format!("{socks}failed to create underlying connection: tcp connect error"),
            true
        ),
        Some(ProxyFailure::Unreachable)
    );
    assert_eq!(
        classify(
            &format!("{socks}failed to create underlying connection"),
            false
        ),
        None
    );
}

#[test]
fn proxy_answers_are_told_from_registry_answers() {
    let status = |code| StatusCode::from_u16(code).unwrap();
    assert_eq!(
        classify_status(status(407), false),
        Some(ProxyFailure::AuthenticationRequired)
    );
    assert_eq!(
        classify_status(status(407), true),
        Some(ProxyFailure::AuthenticationRequired)
    );
    for code in [500, 502, 503, 504] {
        assert_eq!(
            classify_status(status(code), false),
            Some(ProxyFailure::UpstreamError),
            "{code}"
        );
        assert_eq!(classify_status(status(code), true), None, "{code}");
    }
    for code in [200, 401, 403, 404, 501, 505] {
        assert_eq!(classify_status(status(code), false), None, "{code}");
    }
}

#[test]
fn failure_messages_name_the_proxy_and_the_bypass_never_the_credentials() {
    let s = settings(&[
        ("HTTPS_PROXY", "http://me:hunter2@proxy.corp:3128"),
        ("no_proxy", "10.0.0.0/8"),
    ]);
    let proxy = s.https.clone().unwrap();
    let url = Url::parse("https://registry.corp:5000/v2/").unwrap();
    let error = |failure| {
        failure_error(
            &s,
            &proxy,
            "registry.corp:5000",
            "connect",
            &url,
            failure,
            "detail",
        )
        .to_string()
    };
    for failure in [
        ProxyFailure::AuthenticationRequired,
        ProxyFailure::TunnelRefused,
        ProxyFailure::Unreachable,
        ProxyFailure::UpstreamError,
    ] {
        let text = error(failure);
        assert!(
            text.contains("http://proxy.corp:3128 (from HTTPS_PROXY)"),
            "{text}"
        );
        assert!(text.contains("no_proxy=10.0.0.0/8,registry.corp"), "{text}");
        assert!(!text.contains("hunter2") && !text.contains("me:"), "{text}");
        assert!(
            text.starts_with("registry registry.corp:5000: connect failed: "),
            "{text}"
        );
    }
    assert!(error(ProxyFailure::AuthenticationRequired).contains("refused the credentials"));
    let refused = error(ProxyFailure::TunnelRefused);
    assert!(
        refused.contains("connect to registry.corp:5000"),
        "{refused}"
    );
    assert!(
        refused.contains("refuse the credentials in HTTPS_PROXY"),
        "{refused}"
    );
    assert!(error(ProxyFailure::Unreachable).contains("cannot reach the proxy"));
    assert!(
        error(ProxyFailure::UpstreamError).contains("may be unable to reach registry.corp:5000")
    );

    let s = settings(&[("HTTP_PROXY", "proxy.corp:3128")]);
    let proxy = s.http.clone().unwrap();
    let url = Url::parse("http://[fd00::1]:5000/v2/").unwrap();
    let text = failure_error(
        &s,
        &proxy,
        "[fd00::1]:5000",
        "connect",
        &url,
        ProxyFailure::AuthenticationRequired,
        "407",
    )
    .to_string();
    assert!(text.contains("wants credentials"), "{text}");
    assert!(
        text.contains("HTTP_PROXY=http://USER:PASS@proxy.corp:3128"),
        "{text}"
    );
    assert!(text.contains("NO_PROXY=fd00::1"), "{text}");
}
