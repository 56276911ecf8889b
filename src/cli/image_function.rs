//! `invoke --image` and `serve --image`: the function as its image, run the way Lambda runs it.
//!
//! The image (a registry reference, `oci:`, `oci-archive:` or `docker-archive:`) is opened as
//! `check` opens it, one architecture is chosen, its layers are unpacked into a root filesystem
//! ([`crate::rootfs`], cached by the layers' ChainID), and its config's `Entrypoint` + `Cmd`,
//! `WorkingDir` and `Env` become what the sandbox ([`crate::sandbox`]) runs: read-only root,
//! a tmpfs `/tmp` of `--ephemeral-storage` MB, uid and gid 993. Lambda reads only these four
//! fields of an image config (AWS Lambda Developer Guide, images-create.html). An image whose
//! layers Lambda's unpacker refuses (hard links, missing parent directories) is refused as
//! Lambda refuses it, before anything runs. Not here: the namespaces themselves (`sandbox`),
//! unpacking (`rootfs`), the Runtime API (`emulator`).

use clap::Args;

use crate::build::open_image;
use crate::cache::blobs::BlobCache;
use crate::catalog::BaseReference;
use crate::emulator::host_architecture::check_image_runs_here;
use crate::emulator::log::log_line;
use crate::error::{Error, ErrorKind, Result};
use crate::image::set::{Image, ImageSet};
use crate::platform::Architecture;
use crate::registry::progress::Progress;
use crate::rootfs::{Ownership, RootFilesystem};
use crate::sandbox::Isolation;
use crate::transport::source::ImageRole;

/// Lambda's default ephemeral storage (`/tmp`), in MB; it takes 512 to 10,240 MB (Lambda
/// quotas page, "Function configuration, deployment, and execution").
const DEFAULT_EPHEMERAL_STORAGE_MB: u64 = 512;

/// The hostname the function sees. `localhost` resolves through the host's `/etc/hosts`, which
/// the sandbox binds, so a runtime that looks its own name up (Java's
/// `InetAddress.getLocalHost()`) works.
const HOSTNAME: &str = "localhost";

/// The flags of `invoke` and `serve` that name an image to run instead of a bootstrap.
#[derive(Debug, Args)]
pub struct ImageArgs {
    /// Run this image, the way Lambda runs it, instead of a bootstrap: HOST/REPO:TAG,
    /// HOST/REPO@sha256:..., oci:DIR[:TAG], oci-archive:FILE[:TAG] or
    /// docker-archive:FILE[:NAME:TAG]. Linux only.
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<BaseReference>,

    /// The architecture to run from an image with several [default: this machine's, else the
    /// image's only one]. Another machine's runs under qemu-user (binfmt_misc).
    #[arg(long, value_name = "amd64|arm64", value_parser = parse_architecture)]
    pub arch: Option<Architecture>,

    /// The size of the image's writable /tmp, in MB (Lambda's ephemeral storage, 512 to 10240)
    /// [default: 512].
    #[arg(long, value_name = "MB", value_parser = clap::value_parser!(u64).range(512..=10_240))]
    pub ephemeral_storage: Option<u64>,

    /// Credentials for the image's registry.
    #[arg(long, value_name = "USER:PASS")]
    pub creds: Option<String>,

    #[command(flatten)]
    pub password_stdin: super::PasswordStdin,

    #[command(flatten)]
    pub registry: super::RegistryFlags,
}

impl ImageArgs {
    /// Refuses the flags that mean something only with `--image` when it is not given (usage,
    /// exit 2): with a bootstrap they would be silently ignored.
    pub fn refuse_without_image(&self) -> Result<()> {
        if self.image.is_some() {
            return Ok(());
        }
        let given: Vec<&str> = [
            (self.arch.is_some(), "--arch"),
            (self.ephemeral_storage.is_some(), "--ephemeral-storage"),
            (self.creds.is_some(), "--creds"),
            (self.password_stdin.username.is_some(), "--username"),
            (self.registry.cache_dir.is_some(), "--cache-dir"),
            (
                !self.registry.insecure_registries.is_empty(),
                "--insecure-registry",
            ),
            (self.registry.region.is_some(), "--region"),
        ]
        .into_iter()
        .filter_map(|(given, flag)| given.then_some(flag))
        .collect();
        match given.first() {
            None => Ok(()),
            Some(flag) => Err(Error::usage(format!(
                "{flag} is about the image to run, and there is no --image"
            ))
            .hint(
                "give --image IMAGE, or leave it out: a bootstrap runs on this machine as it is \
                 (its architecture is its own)",
            )),
        }
    }
}

fn parse_architecture(text: &str) -> std::result::Result<Architecture, String> {
    Architecture::parse(text).ok_or_else(|| format!("`{text}` is not amd64 or arm64"))
}

/// An image ready to run: its tree, and what its config says to run in it.
pub struct PreparedImage {
    /// The reference as given, for messages.
    pub reference: String,
    pub architecture: Architecture,
    pub rootfs: RootFilesystem,
    pub isolation: Isolation,
    /// `Entrypoint` + `Cmd` (the `Cmd` replaced by `[HANDLER]` with `--handler`).
    pub args: Vec<String>,
    /// The config's `Env`, as `KEY=VALUE` strings.
    pub env: Vec<String>,
    /// `WorkingDir`, `/` when the config has none.
    pub working_dir: String,
    /// The size of `/tmp`, in MiB.
    pub tmp_size_mb: u64,
}

impl PreparedImage {
    /// What the sandbox runs, with `env` as the whole environment.
    pub fn sandbox_spec(&self, env: Vec<(String, String)>) -> crate::sandbox::SandboxSpec {
        crate::sandbox::SandboxSpec {
            root: self.rootfs.path.clone(),
            args: self.args.clone(),
            env,
            working_dir: self.working_dir.clone(),
            tmp_size_mb: self.tmp_size_mb,
            hostname: HOSTNAME.to_owned(),
        }
    }
}

/// Opens the image `reference`, chooses its architecture and unpacks it. The sandbox is
/// probed first, so a machine that cannot run it says so before anything is downloaded.
/// Errors: kind `usage` (2) for `scratch`, which is a base; `bootstrap` (3) for an
/// architecture this machine cannot run; `base` (4) for an image that cannot be read, lacks
/// the architecture, or has a layer that does not match its config; `image_rejected` (7) for
/// a layer Lambda's unpacker refuses (a hard link, an entry whose parent directory is missing:
/// `crate::rootfs::unsupported`) or a config with nothing to run; `registry` (6) for a registry that cannot be read; `failure`
/// (1) when the kernel refuses the namespaces.
pub fn prepare(
    args: &ImageArgs,
    reference: &BaseReference,
    handler: Option<&str>,
) -> Result<PreparedImage> {
    let isolation = crate::sandbox::probe()?;
    if matches!(reference, BaseReference::Scratch) {
        return Err(Error::usage(
            "--image scratch: scratch is the empty base `build --base scratch` starts from, not an image to run",
        )
        .hint("build the function on it first (lambda-image build --base scratch --output oci:DIR:TAG), then --image oci:DIR:TAG"));
    }
    let creds = args
        .password_stdin
        .credential("--creds", args.creds.as_deref())?;
    let session = args.registry.image_session(reference, creds)?;
    let set = open_image(reference, &[], session.as_ref(), ImageRole::Image)?;
    let architecture = choose_architecture(&set, args.arch)?;
    let image = &set.images[&architecture];
    check_image_runs_here(architecture, &set.reference)?;
    // Before anything is unpacked: a config with nothing to run needs no root filesystem.
    let run = RunConfig::read(image, handler).map_err(|message| {
        Error::new(
            ErrorKind::ImageRejected,
            format!("image {}: {message}", set.reference),
        )
    })?;

    let opened_cache;
    let cache = match session.as_ref().and_then(|session| session.cache.as_ref()) {
        Some(cache) => Some(cache),
        None => {
            opened_cache = BlobCache::open(args.registry.cache_dir.as_deref())?;
            opened_cache.as_ref()
        }
    };
    let ownership = match isolation {
        Isolation::Root => Ownership::Preserved,
        Isolation::UserNamespace => Ownership::CurrentUser,
    };
    let progress = session.as_ref().map_or_else(
        || Progress::for_stderr(args.registry.quiet),
        |session| session.progress.clone(),
    );
    let rootfs = match crate::rootfs::prepare(&set, image, cache, ownership, &progress) {
        // A cache this user cannot write under (one shared with root, say): the tree is
        // unpacked for this run only, as without a cache.
        Err(error) if cache.is_some() && error.kind() == ErrorKind::Output => {
            log_line!(
                "lambda-image: warning: cannot keep the image's root filesystem in the cache ({}); \
                 unpacking it into a temporary directory for this run",
                error.message()
            );
            crate::rootfs::prepare(&set, image, None, ownership, &progress)?
        }
        prepared => prepared?,
    };
    if !args.registry.quiet {
        let how = if rootfs.reused { "cached" } else { "unpacked" };
        log_line!(
            "lambda-image: image {} ({architecture}), {} layer{} {how} in {}",
            set.reference,
            image.layers.len(),
            if image.layers.len() == 1 { "" } else { "s" },
            rootfs.path.display()
        );
    }
    // Lambda refuses such an image when the function is created, before anything runs.
    if let Some(refused) =
        crate::rootfs::unsupported::refusal(&set.reference, image, &rootfs.unsupported_layers)
    {
        return Err(refused);
    }
    Ok(PreparedImage {
        reference: set.reference.clone(),
        architecture,
        rootfs,
        isolation,
        args: run.args,
        env: run.env,
        working_dir: run.working_dir,
        tmp_size_mb: args
            .ephemeral_storage
            .unwrap_or(DEFAULT_EPHEMERAL_STORAGE_MB),
    })
}

/// `--arch`, else this machine's architecture when the image has it, else the image's only
/// one. An image with several and none of them this machine's needs `--arch` (usage, exit 2).
fn choose_architecture(set: &ImageSet, wanted: Option<Architecture>) -> Result<Architecture> {
    let available: Vec<Architecture> = set.images.keys().copied().collect();
    let host = Architecture::parse(std::env::consts::ARCH);
    pick_architecture(&available, wanted, host, &set.reference)
}

/// [`choose_architecture`] over the architectures an image has (`available`), for a machine
/// of architecture `host`; `image` names it in messages.
fn pick_architecture(
    available: &[Architecture],
    wanted: Option<Architecture>,
    host: Option<Architecture>,
    image: &str,
) -> Result<Architecture> {
    let listed = || {
        available
            .iter()
            .map(|architecture| architecture.oci_name())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(wanted) = wanted {
        return if available.contains(&wanted) {
            Ok(wanted)
        } else {
            Err(Error::base(format!(
                "image {image} has no linux/{wanted} image; it has: {}",
                if available.is_empty() {
                    "none".to_owned()
                } else {
                    listed()
                }
            ))
            .hint("choose one it has with --arch, or build the image for that architecture"))
        };
    }
    match (host, available) {
        (Some(host), _) if available.contains(&host) => Ok(host),
        (_, [only]) => Ok(*only),
        (_, []) => Err(Error::base(format!(
            "image {image} has no linux/amd64 or linux/arm64 image; Lambda runs only those"
        ))),
        _ => Err(Error::usage(format!(
            "image {image} has several architectures ({}) and none is this machine's; choose one with --arch",
            listed()
        ))),
    }
}

/// What an image config says to run: the four fields Lambda reads.
#[derive(Debug, PartialEq, Eq)]
struct RunConfig {
    args: Vec<String>,
    env: Vec<String>,
    working_dir: String,
}

impl RunConfig {
    /// Reads `image`'s config; `handler` replaces its `Cmd` (as a function's
    /// `ImageConfig.Command` does on Lambda; `build --handler` writes `Cmd ["NAME"]`). Err is
    /// the reason when there is nothing to run.
    fn read(image: &Image, handler: Option<&str>) -> std::result::Result<Self, String> {
        let value: serde_json::Value = serde_json::from_slice(&image.config.bytes)
            .map_err(|error| format!("its config is not JSON: {error}"))?;
        Self::from_config(&value, handler)
    }

    fn from_config(
        config: &serde_json::Value,
        handler: Option<&str>,
    ) -> std::result::Result<Self, String> {
        let section = config.get("config");
        let strings = |name: &str| -> Vec<String> {
            section
                .and_then(|section| section.get(name))
                .and_then(serde_json::Value::as_array)
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|item| item.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut args = strings("Entrypoint");
        match handler {
            Some(handler) => args.push(handler.to_owned()),
            None => args.extend(strings("Cmd")),
        }
        if args.is_empty() {
            return Err(
                "its config has neither Entrypoint nor Cmd: there is nothing to run (Lambda \
                 fails such an image at its first invocation with Runtime.InvalidEntrypoint)"
                    .to_owned(),
            );
        }
        let working_dir = section
            .and_then(|section| section.get("WorkingDir"))
            .and_then(serde_json::Value::as_str)
            .filter(|directory| !directory.is_empty())
            .unwrap_or("/")
            .to_owned();
        Ok(Self {
            args,
            env: strings("Env"),
            working_dir,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn entrypoint_and_cmd_make_the_arguments_and_a_handler_replaces_the_cmd() {
        let config = json!({"config": {
            "Entrypoint": ["/lambda-entrypoint.sh"],
            "Cmd": ["bootstrap"],
            "Env": ["PATH=/usr/bin", "LANG=C"],
            "WorkingDir": "/var/task",
        }});
        let run = RunConfig::from_config(&config, None).unwrap();
        assert_eq!(run.args, ["/lambda-entrypoint.sh", "bootstrap"]);
        assert_eq!(run.env, ["PATH=/usr/bin", "LANG=C"]);
        assert_eq!(run.working_dir, "/var/task");
        let run = RunConfig::from_config(&config, Some("other.handler")).unwrap();
        assert_eq!(run.args, ["/lambda-entrypoint.sh", "other.handler"]);

        let cmd_only = json!({"config": {"Cmd": ["/bootstrap", "x"]}});
        let run = RunConfig::from_config(&cmd_only, None).unwrap();
        assert_eq!(run.args, ["/bootstrap", "x"]);
        assert_eq!(run.working_dir, "/", "Docker's default");
        assert!(run.env.is_empty());
    }

    #[test]
    fn the_architecture_is_the_one_asked_else_this_machines_else_the_only_one() {
        use Architecture::{Amd64, Arm64};
        let pick = |available: &[Architecture], wanted, host| {
            pick_architecture(available, wanted, host, "oci:x:fn")
        };
        assert_eq!(
            pick(&[Amd64, Arm64], Some(Arm64), Some(Amd64)).unwrap(),
            Arm64
        );
        assert_eq!(pick(&[Amd64, Arm64], None, Some(Arm64)).unwrap(), Arm64);
        assert_eq!(pick(&[Amd64, Arm64], None, Some(Amd64)).unwrap(), Amd64);
        assert_eq!(
            pick(&[Arm64], None, Some(Amd64)).unwrap(),
            Arm64,
            "the only one, under qemu"
        );
        assert_eq!(pick(&[Amd64], None, None).unwrap(), Amd64);

        let missing = pick(&[Amd64], Some(Arm64), Some(Amd64)).unwrap_err();
        assert_eq!(missing.kind(), ErrorKind::Base);
        assert!(
            missing
                .to_string()
                .contains("no linux/arm64 image; it has: amd64"),
            "{missing}"
        );
        let none = pick(&[], Some(Arm64), Some(Amd64)).unwrap_err();
        assert!(none.to_string().contains("it has: none"), "{none}");
        let empty = pick(&[], None, Some(Amd64)).unwrap_err();
        assert_eq!(empty.kind(), ErrorKind::Base);
        let several = pick(&[Amd64, Arm64], None, None).unwrap_err();
        assert_eq!(several.kind(), ErrorKind::Usage);
        assert!(several.to_string().contains("amd64, arm64"), "{several}");
    }

    #[test]
    fn image_flags_without_an_image_are_refused_naming_the_flag() {
        #[derive(clap::Parser)]
        struct Flags {
            #[command(flatten)]
            image: ImageArgs,
        }
        let parse = |args: &[&str]| {
            <Flags as clap::Parser>::try_parse_from(
                std::iter::once("x").chain(args.iter().copied()),
            )
            .unwrap()
            .image
        };
        assert!(parse(&[]).refuse_without_image().is_ok());
        assert!(
            parse(&["--image", "oci:x:fn", "--arch", "arm64"])
                .refuse_without_image()
                .is_ok()
        );
        for (flags, named) in [
            (&["--arch", "arm64"][..], "--arch"),
            (&["--ephemeral-storage", "1024"][..], "--ephemeral-storage"),
            (&["--creds", "a:b"][..], "--creds"),
            (&["--username", "u", "--password-stdin"][..], "--username"),
            (&["--cache-dir", "/tmp/c"][..], "--cache-dir"),
            (
                &["--insecure-registry", "r.example"][..],
                "--insecure-registry",
            ),
            (&["--region", "eu-west-1"][..], "--region"),
        ] {
            let refused = parse(flags).refuse_without_image().unwrap_err();
            assert_eq!(refused.kind(), ErrorKind::Usage);
            assert!(refused.to_string().starts_with(named), "{refused}");
        }
    }

    #[test]
    fn a_config_with_nothing_to_run_is_refused() {
        for config in [
            json!({}),
            json!({"config": {}}),
            json!({"config": {"Entrypoint": [], "Cmd": null}}),
        ] {
            let refused = RunConfig::from_config(&config, None).unwrap_err();
            assert!(refused.contains("neither Entrypoint nor Cmd"), "{refused}");
        }
    }
}
