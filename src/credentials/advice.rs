//! The words about credentials: what a registry host is to the run ([`HostRole`]), the flag
//! that gives credentials for it ([`CredentialFlag`]), and the hints for a registry that wants
//! credentials or refused them.
//!
//! Pure text from facts already known; no I/O. Not here: hints about reaching a registry or
//! what its answers mean (`registry::http::advice`).

/// What a registry host is to this run, from `registry::Session::connect`. A host that is both
/// the base's and a push target is a [`HostRole::Target`]: the push needs it whatever the base.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HostRole {
    /// The registry the base (`build --base`, `base pull`) is pulled from.
    #[default]
    Base,
    /// The registry of the image `check IMAGE` reads, or `invoke --image` and `serve --image`
    /// run.
    Checked,
    /// A registry pushed to (`--tag`).
    Target,
}

impl HostRole {
    /// The role of a host that is a push target (`is_target`), else `read` (what the run
    /// reads from it: [`HostRole::Base`] or [`HostRole::Checked`]).
    pub fn of(is_target: bool, read: HostRole) -> HostRole {
        if is_target { HostRole::Target } else { read }
    }

    /// What the image read from a host of this role is called in messages: `base` or `image`.
    pub fn noun(self) -> &'static str {
        match self {
            HostRole::Checked => "image",
            HostRole::Base | HostRole::Target => "base",
        }
    }

    /// The hint for a reference to the image read from a host of this role that does not
    /// resolve.
    pub fn check_reference(self) -> &'static str {
        match self {
            HostRole::Checked => "check the image reference",
            HostRole::Base | HostRole::Target => "check the --base reference",
        }
    }
}

/// The flag that gives credentials for a host: what hints tell the user to pass. Each flag's
/// secret goes only to the hosts it is for (`registry::Session::connect`), so a hint naming the
/// wrong one would send the user round in a loop.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CredentialFlag {
    /// `--creds USER:PASS` (or `--username NAME --password-stdin`): for the registries `build`
    /// pushes to, and for the image `check` reads and the base `base pull` copies.
    #[default]
    Creds,
    /// `--base-creds USER:PASS`: for the registry `build` pulls its base from (when it is not
    /// also pushed to).
    BaseCreds,
}

impl CredentialFlag {
    /// The flag that gives credentials for a host of `role`, in a command whose reading role
    /// (the base, or the image `check` reads) takes `read_flag`.
    pub fn of(role: HostRole, read_flag: CredentialFlag) -> CredentialFlag {
        match role {
            HostRole::Target => CredentialFlag::Creds,
            HostRole::Base | HostRole::Checked => read_flag,
        }
    }

    /// How the hints of a failed credential lookup (a helper, an auth file) name it.
    pub fn in_lookup_hints(self) -> &'static str {
        match self {
            CredentialFlag::Creds => "--creds USER:PASSWORD",
            CredentialFlag::BaseCreds => "--base-creds USER:PASS",
        }
    }

    /// How to give credentials with it, for hints.
    pub fn usage(self) -> &'static str {
        match self {
            CredentialFlag::Creds => "--creds USER:PASS (or --username NAME --password-stdin)",
            CredentialFlag::BaseCreds => "--base-creds USER:PASS",
        }
    }
}

/// What to do when registry `host` wants credentials it did not get: the flag for it
/// (`flag`), or a login saved where lambda-image looks, naming `host` itself.
pub fn login_hint(flag: CredentialFlag, host: &str) -> String {
    format!(
        "give credentials with {}, or log in so that ~/.docker/config.json (or \
         $REGISTRY_AUTH_FILE) has them, e.g. `docker login {host}`, or a credHelpers entry such \
         as ecr-login for ECR",
        flag.usage()
    )
}

/// What to do when registry `host` (or its token service) refused the credentials it was
/// given: check them, log in again, or give others with `flag`.
pub fn refused_hint(flag: CredentialFlag, host: &str) -> String {
    format!(
        "check the user name and password; for a saved login, log in again (`docker login \
         {host}`, `podman login {host}`); or give others with {}",
        flag.usage()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_of_a_host_that_is_pushed_to_is_target() {
        assert_eq!(HostRole::of(true, HostRole::Base), HostRole::Target);
        assert_eq!(HostRole::of(true, HostRole::Checked), HostRole::Target);
        assert_eq!(HostRole::of(false, HostRole::Base), HostRole::Base);
        assert_eq!(HostRole::of(false, HostRole::Checked), HostRole::Checked);
        assert_eq!(HostRole::Checked.noun(), "image");
        assert_eq!(HostRole::Base.noun(), "base");
    }

    #[test]
    fn credential_hints_name_the_flag_for_the_hosts_role_and_the_host() {
        let build = CredentialFlag::BaseCreds;
        let base = CredentialFlag::of(HostRole::Base, build);
        let target = CredentialFlag::of(HostRole::Target, build);
        for hint in [
            login_hint(base, "127.0.0.1:5056"),
            refused_hint(base, "127.0.0.1:5056"),
        ] {
            assert!(hint.contains("--base-creds USER:PASS"), "{hint}");
            assert!(!hint.contains("--creds"), "{hint}");
            assert!(!hint.contains("--username"), "{hint}");
            assert!(hint.contains("docker login 127.0.0.1:5056"), "{hint}");
        }
        // check IMAGE and base pull read with --creds.
        for flag in [
            target,
            CredentialFlag::of(HostRole::Checked, CredentialFlag::Creds),
            CredentialFlag::of(HostRole::Base, CredentialFlag::Creds),
        ] {
            let hint = login_hint(flag, "r.example");
            assert!(hint.contains("--creds USER:PASS"), "{hint}");
            assert!(!hint.contains("--base-creds"), "{hint}");
            assert!(hint.contains("docker login r.example"), "{hint}");
        }
        assert_eq!(
            format!("fix it, or pass {}", base.in_lookup_hints()),
            "fix it, or pass --base-creds USER:PASS"
        );
    }
}
