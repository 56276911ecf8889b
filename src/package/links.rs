//! Whether a symbolic link from an included directory is safe to keep in a `.zip` package: it
//! must lead to a path inside `/var/task` (where Lambda unpacks the package) without passing
//! through anything outside it, following the package's own links on the way.
//!
//! Resolution is by path only: nothing on this machine is looked at, and a link to a path the
//! package does not hold is allowed (it dangles on Lambda too). It does not decide what to do
//! with an unsafe link; `package` refuses it, unless [`runtime_place`] says it is an absolute
//! link into `/opt` or `/tmp`, which exist on Lambda and not in the package.

use std::collections::{BTreeMap, VecDeque};

/// The most links followed while resolving one, as in Linux (`MAXSYMLINKS`).
const MAX_LINKS_FOLLOWED: usize = 40;

/// The task root as path components.
const TASK_ROOT: [&str; 2] = ["var", "task"];

/// The check name of the note on a link kept into `/opt` or `/tmp`.
pub const RUNTIME_LINK_CHECK: &str = "runtime-link";

/// Where on Lambda, outside the package, an absolute link may lead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuntimePlace {
    /// `/opt`: where Lambda extracts the function's layers (AWS Lambda developer guide,
    /// "Lambda layers": layer content is extracted to `/opt`).
    Layer,
    /// `/tmp`: the function's writable ephemeral storage.
    Tmp,
}

/// The place an absolute `target` lies under (`/opt`, `/tmp` or one of them itself), read by
/// path only; `None` for a relative target, any other absolute one, or one with `..` (which
/// could climb out: `/opt/../etc/passwd`).
pub fn runtime_place(target: &str) -> Option<RuntimePlace> {
    let rest = target.strip_prefix('/')?;
    let mut parts = rest
        .split('/')
        .filter(|part| !part.is_empty() && *part != ".");
    let place = match parts.next()? {
        "opt" => RuntimePlace::Layer,
        "tmp" => RuntimePlace::Tmp,
        _ => return None,
    };
    parts.all(|part| part != "..").then_some(place)
}

/// True when the link at `link` (a relative path such as `var/task/lib/libx.so`) with target
/// `target` resolves inside `/var/task`. `links` maps the package's other links the same way.
pub fn stays_inside_task_root(link: &str, target: &str, links: &BTreeMap<&str, &str>) -> bool {
    let mut resolved: Vec<&str> = link.split('/').collect();
    let mut followed = 0;
    let mut pending: VecDeque<&str> = VecDeque::new();
    push_target(&mut resolved, &mut pending, target);
    while let Some(part) = pending.pop_front() {
        match part {
            "" | "." => continue,
            ".." => {
                if resolved.pop().is_none() {
                    return false;
                }
            }
            name => resolved.push(name),
        }
        if !on_the_way_or_inside(&resolved) {
            return false;
        }
        if let Some(next) = links.get(resolved.join("/").as_str()) {
            followed += 1;
            if followed > MAX_LINKS_FOLLOWED {
                return false;
            }
            push_target(&mut resolved, &mut pending, next);
        }
    }
    resolved.starts_with(&TASK_ROOT)
}

/// Replaces the link (the last resolved component) by its target's components.
fn push_target<'a>(resolved: &mut Vec<&'a str>, pending: &mut VecDeque<&'a str>, target: &'a str) {
    resolved.pop();
    if target.starts_with('/') {
        resolved.clear();
    }
    for part in target.split('/').rev() {
        pending.push_front(part);
    }
}

/// The root, `/var` and `/var/task` lead into the task root; anything else must be under it.
fn on_the_way_or_inside(resolved: &[&str]) -> bool {
    TASK_ROOT.starts_with(resolved) || resolved.starts_with(&TASK_ROOT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inside(link: &str, target: &str, others: &[(&str, &str)]) -> bool {
        let links: BTreeMap<&str, &str> = others.iter().copied().collect();
        stays_inside_task_root(link, target, &links)
    }

    #[test]
    fn relative_and_absolute_targets_inside_the_task_root_are_kept() {
        assert!(inside("var/task/lib/libx.so", "libx.so.1", &[]));
        assert!(inside("var/task/lib/libx.so", "../bin/x", &[]));
        assert!(inside("var/task/root", ".", &[]));
        assert!(inside("var/task/a", "/var/task/b/c", &[]));
        assert!(inside("var/task/a", "../task/b", &[]));
        assert!(inside("var/task/a", "missing/file", &[]));
    }

    #[test]
    fn targets_leaving_the_task_root_are_refused() {
        assert!(!inside("var/task/a", "/etc/passwd", &[]));
        assert!(!inside("var/task/a", "../../etc/passwd", &[]));
        assert!(!inside("var/task/a", "..", &[]));
        assert!(!inside("var/task/a", "/opt/lib/x", &[]));
        assert!(!inside("var/task/a", "../../../../..", &[]));
        // Out and back in: what is outside may itself be a link on Lambda's side.
        assert!(!inside("var/task/a", "/usr/../var/task/b", &[]));
    }

    #[test]
    fn only_absolute_targets_under_opt_or_tmp_are_runtime_places() {
        assert_eq!(
            runtime_place("/opt/nodejs/node_modules"),
            Some(RuntimePlace::Layer)
        );
        assert_eq!(runtime_place("/opt"), Some(RuntimePlace::Layer));
        assert_eq!(runtime_place("//opt/./lib/x"), Some(RuntimePlace::Layer));
        assert_eq!(runtime_place("/tmp/cache"), Some(RuntimePlace::Tmp));
        assert_eq!(runtime_place("/opt/../etc/passwd"), None);
        assert_eq!(runtime_place("/optional/x"), None);
        assert_eq!(runtime_place("/home/me/build/x"), None);
        assert_eq!(runtime_place("/usr/lib/x"), None);
        assert_eq!(runtime_place("../../opt/x"), None);
        assert_eq!(runtime_place("opt/x"), None);
    }

    #[test]
    fn the_packages_own_links_are_followed() {
        // `d` is the task root itself, so d/d/../.. is /var: outside, though it reads as inside.
        let others = [("var/task/d", ".")];
        assert!(!inside("var/task/e", "d/d/d/../..", &others));
        assert!(inside("var/task/e", "d/d/x", &others));
        // A loop is refused rather than followed for ever.
        let looping = [("var/task/p", "q"), ("var/task/q", "p")];
        assert!(!inside("var/task/e", "p/x", &looping));
        // A chain of MAX_LINKS_FOLLOWED links is followed; one more is refused, as
        // Linux gives up (ELOOP) past 40.
        let chain = |length: usize| -> Vec<(String, String)> {
            (0..length)
                .map(|at| (format!("var/task/l{at}"), format!("l{}", at + 1)))
                .collect()
        };
        for (length, kept) in [(MAX_LINKS_FOLLOWED, true), (MAX_LINKS_FOLLOWED + 1, false)] {
            let links = chain(length);
            let links: Vec<(&str, &str)> = links
                .iter()
                .map(|(link, target)| (link.as_str(), target.as_str()))
                .collect();
            assert_eq!(inside("var/task/e", "l0", &links), kept, "{length} links");
        }
    }
}
