//! A resolved base image: for each requested architecture, its manifest, raw config and layer
//! descriptors, plus where each layer's bytes can be read (and verified) when a sink copies them.
//!
//! Resolution reads and verifies only the small documents. Layer blobs are not touched here; they
//! stream, verified, straight from the source into the output.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::path::PathBuf;

use oci_spec::image::Descriptor;

use super::tree::TreeReader;
use super::{docker_archive, oci};
use crate::digest::{Sha256Digest, VerifyingReader};
use crate::error::{Error, Result};
use crate::image::ImageFormat;
use crate::image::config::BaseConfigFacts;
use crate::image::manifest::Document;
use crate::platform::Architecture;
use crate::reference::ImageLocation;

/// Largest manifest or index accepted (the limit registries use).
pub const MANIFEST_LIMIT: u64 = 4 << 20;
/// Largest image config accepted.
pub const CONFIG_LIMIT: u64 = 8 << 20;

/// Where a layer's bytes come from.
#[derive(Clone, Debug)]
pub enum BlobSource {
    /// A file in the source tree, checked against the descriptor as it is read.
    Tree(String),
    /// A file this run made (the new layer, or a base layer that had to be compressed).
    LocalFile(PathBuf),
    /// A blob of the registry repository the base was pulled from, fetched (or read from the
    /// cache) only if a sink needs its bytes.
    Registry,
}

/// A layer: its descriptor as it will appear in the manifest, and where its bytes are.
#[derive(Clone, Debug)]
pub struct LayerBlob {
    pub descriptor: Descriptor,
    pub source: BlobSource,
}

impl LayerBlob {
    pub fn digest(&self) -> Sha256Digest {
        self.descriptor
            .digest()
            .to_string()
            .parse()
            .expect("layer descriptors are checked to hold sha256 digests")
    }
}

/// One architecture of the base.
pub struct BaseImage {
    /// The manifest's digest; a docker-archive has no manifests.
    pub manifest_digest: Option<Sha256Digest>,
    /// The manifest as the source holds it (byte for byte); a docker-archive has none.
    pub manifest: Option<Document>,
    pub config_raw: Vec<u8>,
    pub config: BaseConfigFacts,
    pub layers: Vec<LayerBlob>,
}

/// Where the base's layers can be read.
pub enum BaseBlobs {
    /// A directory or tar file.
    Tree(Box<dyn TreeReader>),
    /// A registry repository.
    Remote(Box<dyn RemoteBlobs>),
}

/// Layers that live in a registry repository.
pub trait RemoteBlobs: Send + Sync {
    /// Opens a layer for reading; the bytes are verified against the descriptor as they are read.
    fn open(&self, descriptor: &Descriptor) -> io::Result<Box<dyn Read + Send>>;
    /// The registry (`host[:port]`) and repository the layers are in, so a push to another
    /// repository of the same registry can mount them instead of uploading.
    fn origin(&self) -> (&str, &str);
}

/// The base image, resolved for the requested architectures.
pub struct ResolvedBase {
    /// The location as the user wrote it.
    pub reference: String,
    /// The base as a fully-qualified registry reference (`public.ecr.aws/lambda/provided:al2023`),
    /// written as the `org.opencontainers.image.base.name` annotation: the reference itself for
    /// a registry base; for an OCI layout, the `io.containerd.image.name` of the entry read
    /// (a kit from `base pull` records it); else none, since a local path is no image reference.
    pub name: Option<String>,
    /// Digest of the top-level document the reference names (index or manifest; for a
    /// docker-archive, which has no manifest, the image ID).
    pub digest: Sha256Digest,
    /// The media-type family of the base's manifests; the default for the output.
    pub format: ImageFormat,
    pub images: BTreeMap<Architecture, BaseImage>,
    /// Whether the reference names an index (Lambda deploys only single manifests).
    pub is_index: bool,
    /// That index as the source holds it, when it is one (and the source has it: not a
    /// docker-archive).
    pub index: Option<Document>,
    pub blobs: BaseBlobs,
    /// Keeps files made while resolving (compressed docker-archive layers) alive.
    pub(crate) _scratch: Option<tempfile::TempDir>,
}

impl ResolvedBase {
    /// Opens a layer for copying; bytes from the source are verified against the descriptor.
    pub fn open_layer(&self, layer: &LayerBlob) -> io::Result<Box<dyn Read + Send>> {
        match (&layer.source, &self.blobs) {
            (BlobSource::Tree(path), BaseBlobs::Tree(tree)) => {
                let (reader, _) = tree.open(path).map_err(|error| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("base blob {} cannot be read: {error}", layer.digest()),
                    )
                })?;
                Ok(Box::new(VerifyingReader::new(
                    reader,
                    layer.digest(),
                    layer.descriptor.size(),
                )))
            }
            (BlobSource::LocalFile(path), _) => Ok(Box::new(std::fs::File::open(path)?)),
            (BlobSource::Registry, BaseBlobs::Remote(remote)) => remote.open(&layer.descriptor),
            _ => unreachable!("layer sources always match the base they were resolved from"),
        }
    }

    /// The registry and repository the base was pulled from, if it came from a registry.
    pub fn registry_origin(&self) -> Option<(&str, &str)> {
        match &self.blobs {
            BaseBlobs::Remote(remote) => Some(remote.origin()),
            BaseBlobs::Tree(_) => None,
        }
    }
}

/// What a local image is to the command that opens it, for its error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageRole {
    /// `--base` of `build` and of `check`.
    Base,
    /// The BASE `base pull` copies (named without a flag).
    PullSource,
    /// The IMAGE `check` lints.
    Image,
    /// A kit `base verify` checks.
    Kit,
}

impl ImageRole {
    fn noun(self) -> &'static str {
        match self {
            ImageRole::Base | ImageRole::PullSource => "base",
            ImageRole::Image => "image",
            ImageRole::Kit => "kit",
        }
    }

    /// What to do when the image at `location` cannot be opened or read: for a base or a kit,
    /// the command that makes it there (named by the user's own location); for `check`'s image,
    /// the kinds of location it takes.
    fn hint(self, location: &ImageLocation) -> String {
        let kit = match location {
            ImageLocation::DockerArchive { .. } => None,
            _ => Some(location.with_tag(None)),
        };
        match (self, kit) {
            (ImageRole::Base | ImageRole::PullSource, Some(kit)) => format!(
                "make it where there is network with `lambda-image base pull provided.al2023 \
                 --output {kit}` (or the base you mean), or name an existing OCI layout \
                 (oci:DIR[:TAG]), oci-archive or docker-archive"
            ),
            (ImageRole::Base | ImageRole::PullSource, None) | (ImageRole::Image, _) => {
                "name an existing OCI layout (oci:DIR[:TAG]), oci-archive or docker-archive"
                    .to_owned()
            }
            (ImageRole::Kit, kit) => format!(
                "make the kit where there is network with `lambda-image base pull BASE --output {}`",
                kit.map_or_else(|| "oci-archive:FILE".to_owned(), |kit| kit.to_string())
            ),
        }
    }
}

/// Opens the base at `location` and resolves the requested architectures.
pub fn open_base(location: &ImageLocation, wanted: &[Architecture]) -> Result<ResolvedBase> {
    open_local(location, wanted, ImageRole::Base)
}

/// Opens a local image (layout or archive) and resolves the requested architectures (all of
/// them when none is asked for); messages name it by its role.
pub fn open_local(
    location: &ImageLocation,
    wanted: &[Architecture],
    role: ImageRole,
) -> Result<ResolvedBase> {
    let in_context = |error: Error| {
        Error::new(
            error.kind(),
            format!("{} {location}: {}", role.noun(), error.message()),
        )
        .hint(
            error
                .hint_text()
                .map_or_else(|| role.hint(location), str::to_owned),
        )
    };
    let resolved = match location {
        ImageLocation::OciLayout { directory, tag } => {
            if !directory.is_dir() {
                return Err(missing_image(location, "is not a directory", role));
            }
            let tree = Box::new(super::tree::DirectoryTree::new(directory.clone()));
            resolve_layout(tree, location, tag.as_deref(), wanted, role)
        }
        ImageLocation::OciArchive { file, tag } => {
            let tree = open_tar(location, file, role)?;
            resolve_layout(Box::new(tree), location, tag.as_deref(), wanted, role)
        }
        ImageLocation::DockerArchive { file, selector } => {
            let tree = open_tar(location, file, role)?;
            docker_archive::resolve(Box::new(tree), selector.as_ref(), wanted)
        }
    };
    let mut resolved = resolved.map_err(in_context)?;
    resolved.reference = location.to_string();
    Ok(resolved)
}

/// Resolves the entry of a layout (directory or archive) that `tag` names, or, without one, its
/// only image ([`oci::choose_entry`]). Several images without a tag is a usage error (the command
/// line must name one); a tag the layout lacks is a base error. The hints of both name the
/// layout's own images as this command takes them (`--base oci:DIR:al2023`, ...).
fn resolve_layout(
    tree: Box<dyn TreeReader>,
    location: &ImageLocation,
    tag: Option<&str>,
    wanted: &[Architecture],
    role: ImageRole,
) -> Result<ResolvedBase> {
    let as_argument = |location: &ImageLocation| match role {
        ImageRole::Base => format!("--base {location}"),
        ImageRole::PullSource | ImageRole::Image | ImageRole::Kit => location.to_string(),
    };
    let untagged_location = location.with_tag(None);
    let name_each = |images: &oci::LayoutImages| -> Vec<String> {
        images
            .tagged()
            .map(|image| as_argument(&location.with_tag(Some(&image.tags[0]))))
            .collect()
    };
    match oci::choose_entry(tree.as_ref(), tag)? {
        oci::LayoutChoice::Entry(top) => oci::resolve(tree, *top, wanted),
        oci::LayoutChoice::NoSuchTag { tag, tags, images } => {
            let error = Error::base(format!(
                "has no image tagged `{tag}`; its tags: {}",
                oci::list_or_none(&tags)
            ));
            let named = name_each(&images);
            Err(match (images.0.len(), named.as_slice()) {
                (1, []) => error.hint(format!(
                    "it holds one image, with no tag: leave the tag out ({})",
                    as_argument(&untagged_location)
                )),
                (1, [one]) => error.hint(format!(
                    "it holds one image: {one}, or leave the tag out ({})",
                    as_argument(&untagged_location)
                )),
                (_, []) => error,
                (_, named) => error.hint(format!("name one of its images: {}", named.join(" or "))),
            })
        }
        oci::LayoutChoice::Ambiguous(images) => {
            let described: Vec<String> = images
                .tagged()
                .filter_map(oci::LayoutImage::describe)
                .collect();
            let untagged = match images.untagged() {
                0 => None,
                1 => Some("1 untagged image".to_owned()),
                n => Some(format!("{n} untagged images")),
            };
            if described.is_empty() {
                return Err(Error::usage(format!(
                    "holds {} images and none of them has a tag (org.opencontainers.image.ref.name) \
                     to name it by",
                    images.0.len()
                ))
                .hint("write the image you mean into a layout of its own, e.g. with `skopeo copy`"));
            }
            let listing = match untagged {
                Some(untagged) => format!("{}; and {untagged}", described.join(", ")),
                None => described.join(", "),
            };
            let mut hint = format!("name one: {}", name_each(&images).join(" or "));
            if images.untagged() > 0 {
                hint.push_str(
                    "; an untagged image cannot be named: tag it, or write it into a layout of \
                     its own",
                );
            }
            Err(Error::usage(format!(
                "holds {} images and no tag says which one is meant (its images: {listing})",
                images.0.len()
            ))
            .hint(hint))
        }
    }
}

/// The tag a local base is read under: the one named (`oci:DIR:TAG`), or, named without one,
/// the tag of the entry chosen for its one image ([`oci::choose_entry`]); `None` when it has
/// none, for a docker-archive, or when the layout cannot be read (opening it says why).
pub fn local_base_tag(location: &ImageLocation) -> Option<String> {
    let tree: Box<dyn TreeReader> = match location {
        ImageLocation::OciLayout { tag: Some(tag), .. }
        | ImageLocation::OciArchive { tag: Some(tag), .. } => return Some(tag.clone()),
        ImageLocation::OciLayout { directory, .. } => {
            Box::new(super::tree::DirectoryTree::new(directory.clone()))
        }
        ImageLocation::OciArchive { file, .. } => Box::new(super::tree::TarTree::open(file).ok()?),
        ImageLocation::DockerArchive { .. } => return None,
    };
    match oci::choose_entry(tree.as_ref(), None).ok()? {
        oci::LayoutChoice::Entry(entry) => oci::tag_of(&entry),
        _ => None,
    }
}

/// The tags (`org.opencontainers.image.ref.name`) of an OCI layout or oci-archive, in order.
pub fn layout_tags(location: &ImageLocation) -> Result<Vec<String>> {
    let tree: Box<dyn TreeReader> = match location {
        ImageLocation::OciLayout { directory, .. } => {
            if !directory.is_dir() {
                return Err(missing_image(
                    location,
                    "is not a directory",
                    ImageRole::Kit,
                ));
            }
            Box::new(super::tree::DirectoryTree::new(directory.clone()))
        }
        ImageLocation::OciArchive { file, .. } => {
            Box::new(open_tar(location, file, ImageRole::Kit)?)
        }
        ImageLocation::DockerArchive { .. } => {
            return Err(Error::usage(format!(
                "{location} is a docker-archive; kits are OCI layouts or oci-archives"
            )));
        }
    };
    let index = oci::read_layout_index(tree.as_ref()).map_err(|error| {
        Error::base(format!("kit {location}: {}", error.message()))
            .hint(ImageRole::Kit.hint(location))
    })?;
    Ok(index
        .manifests()
        .iter()
        .filter_map(|entry| entry.annotations().as_ref()?.get(oci::REF_NAME).cloned())
        .collect())
}

fn open_tar(
    location: &ImageLocation,
    file: &std::path::Path,
    role: ImageRole,
) -> Result<super::tree::TarTree> {
    if !file.is_file() {
        return Err(missing_image(
            location,
            "does not exist or is not a file",
            role,
        ));
    }
    super::tree::TarTree::open(file).map_err(|error| {
        Error::base(format!(
            "{} {location}: cannot read the archive: {error}",
            role.noun()
        ))
    })
}

fn missing_image(location: &ImageLocation, why: &str, role: ImageRole) -> Error {
    Error::base(format!("{} {location} {why}", role.noun())).hint(role.hint(location))
}

/// The error for an architecture the base does not have.
/// The hint names the Lambda architectures it does have.
pub fn missing_architecture(wanted: Architecture, available: &[String]) -> Error {
    let usable: Vec<&str> = available
        .iter()
        .filter_map(|platform| Architecture::parse(platform.strip_prefix("linux/")?))
        .map(Architecture::oci_name)
        .collect();
    let listed = if available.is_empty() {
        "none".to_owned()
    } else {
        available.join(", ")
    };
    let error = Error::base(format!("has no image for linux/{wanted}; it has: {listed}"));
    if usable.is_empty() {
        return error.hint(format!("use a base that includes linux/{wanted}"));
    }
    error.hint(format!(
        "use a base that includes linux/{wanted}, or ask only for the architectures it has ({})",
        usable.join(", ")
    ))
}
