//! Opening a local image (an OCI layout, an oci-archive or a docker-archive) as an
//! [`ImageSet`] resolved for the requested architectures, with messages that name it by its role.
//!
//! Resolution reads and verifies only the small documents. Layer blobs are not touched here; they
//! stream, verified, straight from the source into the output. Registry bases are opened by
//! `registry::pull`; the model itself is in [`crate::image::set`].

use super::tree::TreeReader;
use super::{docker_archive, oci};
use crate::error::{Error, Result};
use crate::image::set::ImageSet;
use crate::platform::Architecture;
use crate::reference::ImageLocation;

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
pub fn open_base(location: &ImageLocation, wanted: &[Architecture]) -> Result<ImageSet> {
    open_local(location, wanted, ImageRole::Base)
}

/// Opens a local image (layout or archive) and resolves the requested architectures (all of
/// them when none is asked for); messages name it by its role.
pub fn open_local(
    location: &ImageLocation,
    wanted: &[Architecture],
    role: ImageRole,
) -> Result<ImageSet> {
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
) -> Result<ImageSet> {
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

/// What to do about a base with a blob missing or not matching its digest: from a registry,
/// that registry serves it damaged; a local base (a kit) is made again at the same place with
/// the registry reference it was pulled from, when the kit records it
/// (`io.containerd.image.name`).
pub fn damaged_base_hint(base: &ImageSet) -> String {
    if let Some((registry, repository)) = base.registry_origin() {
        return format!(
            "{registry}/{repository} serves the base's content damaged (it does not match its \
             digest): try again later, or copy the base into it again"
        );
    }
    let kit = match base.reference.parse::<ImageLocation>() {
        Ok(ImageLocation::DockerArchive { .. }) | Err(_) => {
            return format!(
                "the base {} is damaged: write it again from a complete copy",
                base.reference
            );
        }
        Ok(location) => location.with_tag(None).to_string(),
    };
    let name = base.name.as_deref().unwrap_or("BASE");
    format!(
        "the kit {} is damaged: make it again with `lambda-image base pull {name} --output {kit}` \
         on a machine with network",
        base.reference
    )
}
