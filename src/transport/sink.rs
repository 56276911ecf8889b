//! Writing the built images to an OCI layout, an oci-archive or a docker-archive.
//!
//! Every output appears whole or not at all: archives and new layout directories are built under
//! a temporary name beside the destination and renamed into place; when adding to an existing
//! layout, each blob is renamed into place and `index.json` is replaced last.

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use super::docker_archive::{self, ArchiveImage, DEFAULT_NAME};
use super::layout_index::{self, LayoutEntry};
use super::source::damaged_base_hint;
use super::tree::{
    DirectoryWriter, TarWriter, TreeWriter, output_temporary_directory, output_temporary_file,
};
use crate::digest::Sha256Digest;
use crate::error::{Error, ErrorKind, IoContext, Result};
use crate::image::manifest::Document;
use crate::image::set::{ImageSet, ManifestImage};
use crate::image::store::blob_failure;
use crate::platform::Architecture;
use crate::reference::{DockerArchiveSelector, ImageLocation, is_valid_tag};

/// Where each written image can be found, for the report: every name the output gives it, the
/// main one first.
pub struct Written {
    pub images: Vec<(Architecture, Sha256Digest, Vec<String>)>,
    pub index: Option<(Sha256Digest, String)>,
}

/// A checked output: the location, the tag of each architecture, and for a docker-archive the
/// repository name. Made before any work, so a bad output fails fast.
pub struct OutputPlan {
    location: ImageLocation,
    names: Names,
    docker_repository: Option<String>,
}

/// Checks that `location` can take images of `architectures` (sorted, as built).
pub fn plan_output(location: &ImageLocation, architectures: &[Architecture]) -> Result<OutputPlan> {
    let (tag, docker_repository) = match location {
        ImageLocation::OciLayout { directory, tag } => {
            parent_directory(directory)?;
            layout_index::existing_layout_index(directory)?;
            (tag.clone().unwrap_or_else(|| "latest".to_owned()), None)
        }
        ImageLocation::OciArchive { file, tag } => {
            check_archive_path(location, file)?;
            (tag.clone().unwrap_or_else(|| "latest".to_owned()), None)
        }
        ImageLocation::DockerArchive { file, selector } => {
            let name = match selector {
                None => DEFAULT_NAME.to_owned(),
                Some(DockerArchiveSelector::Name(name)) => name.clone(),
                Some(DockerArchiveSelector::Index(_)) => {
                    return Err(Error::usage(format!(
                        "--output {location}: @INDEX selects an image when reading; to write, name it: docker-archive:FILE:NAME:TAG"
                    )));
                }
            };
            check_archive_path(location, file)?;
            let (repository, tag) = name
                .rsplit_once(':')
                .expect("docker-archive names always carry a tag");
            (tag.to_owned(), Some(repository.to_owned()))
        }
    };
    Ok(OutputPlan {
        location: location.clone(),
        names: Names::new(architectures, &tag)?,
        docker_repository,
    })
}

impl OutputPlan {
    /// The directory the output is written in, where temporary files can go.
    pub fn directory(&self) -> Result<PathBuf> {
        let path = match &self.location {
            ImageLocation::OciLayout { directory, .. } => directory,
            ImageLocation::OciArchive { file, .. } | ImageLocation::DockerArchive { file, .. } => {
                file
            }
        };
        parent_directory(path)
    }
}

/// Writes `images` (built on `base`, or `base` itself) as planned. A base blob found missing or
/// corrupt while copying gets a hint that names this base ([`damaged_base_hint`]).
pub fn write_output(plan: &OutputPlan, images: &ImageSet, base: &ImageSet) -> Result<Written> {
    write_planned(plan, images).map_err(|error| {
        if error.kind() == ErrorKind::Base && error.hint_text().is_none() {
            let hint = damaged_base_hint(base);
            error.hint(hint)
        } else {
            error
        }
    })
}

fn write_planned(plan: &OutputPlan, set: &ImageSet) -> Result<Written> {
    let assembled = &Manifested {
        images: set.manifests()?,
        index: set.index.as_ref(),
        name: set.name.clone(),
    };
    let location = &plan.location;
    let names = &plan.names;
    match location {
        ImageLocation::OciLayout { directory, .. } => {
            let existing = layout_index::existing_layout_index(directory)?;
            if existing.is_some() {
                let mut writer = DirectoryWriter::new(directory.clone());
                write_layout(&mut writer, set, assembled, names, existing)
                    .map_err(|e| write_failed(location, e))?;
            } else {
                let staging = output_temporary_directory(&parent_directory(directory)?)
                    .path_context(
                        ErrorKind::Output,
                        "create a temporary directory beside",
                        directory,
                    )?;
                let mut writer = DirectoryWriter::new(staging.path().to_owned());
                write_layout(&mut writer, set, assembled, names, None)
                    .map_err(|e| write_failed(location, e))?;
                std::fs::rename(staging.path(), directory).path_context(
                    ErrorKind::Output,
                    "create",
                    directory,
                )?;
                // Renamed into place: the temporary directory must no longer be deleted.
                let _ = staging.keep();
            }
            Ok(names.written(assembled, true, |name| {
                format!("oci:{}:{name}", directory.display())
            }))
        }
        ImageLocation::OciArchive { file, .. } => {
            write_archive(location, file, |writer| {
                write_layout(writer, set, assembled, names, None)
            })?;
            Ok(names.written(assembled, true, |name| {
                format!("oci-archive:{}:{name}", file.display())
            }))
        }
        ImageLocation::DockerArchive { file, .. } => {
            let repository = plan
                .docker_repository
                .as_deref()
                .expect("planned with a repository");
            let images: Vec<ArchiveImage> = assembled
                .images
                .iter()
                .zip(&names.per_architecture)
                .map(|(each, tag)| ArchiveImage {
                    config: &each.image.config,
                    layers: &each.image.layers,
                    repo_tag: format!("{repository}:{tag}"),
                })
                .collect();
            write_archive(location, file, |writer| {
                docker_archive::write(writer, &images, set.blobs.as_ref())
            })?;
            let mut written = names.written(assembled, false, |name| {
                format!("docker-archive:{}:{repository}:{name}", file.display())
            });
            // A docker-archive holds no manifests and no index: what identifies each image in it
            // (and in `docker images`) is its image ID, the config digest.
            for ((_, digest, _), each) in written.images.iter_mut().zip(&assembled.images) {
                *digest = each.image.config.digest.clone();
            }
            written.index = None;
            Ok(written)
        }
    }
}

/// A set's images with their manifests, its index and its registry name: what a layout or
/// archive records.
struct Manifested<'a> {
    images: Vec<ManifestImage<'a>>,
    index: Option<&'a Document>,
    name: Option<String>,
}

/// The tag of the whole build and of each architecture.
struct Names {
    top: String,
    per_architecture: Vec<String>,
}

impl Names {
    fn new(architectures: &[Architecture], tag: &str) -> Result<Self> {
        let per_architecture: Vec<String> = if architectures.len() == 1 {
            vec![tag.to_owned()]
        } else {
            architectures
                .iter()
                .map(|architecture| architecture.tag(tag))
                .collect()
        };
        if let Some(bad) = per_architecture.iter().find(|name| !is_valid_tag(name)) {
            return Err(Error::usage(format!(
                "tag `{bad}` would be over 128 characters; use a shorter tag"
            )));
        }
        Ok(Self {
            top: tag.to_owned(),
            per_architecture,
        })
    }

    /// The names a layout gives each image, the main one first: its per-architecture tag and,
    /// with one architecture (no index), `TAG-ARCH` too, so scripts can rely on that name;
    /// unless `TAG` already ends in `-ARCH` (a kit pulled from `oci:KIT:al2023-arm64`), which
    /// would give `al2023-arm64-arm64`.
    fn layout_names(&self, assembled: &Manifested) -> Vec<Vec<String>> {
        assembled
            .images
            .iter()
            .zip(&self.per_architecture)
            .map(|(image, name)| {
                let mut names = vec![name.clone()];
                let suffix = format!("-{}", image.architecture);
                if assembled.index.is_none() && !self.top.ends_with(&suffix) {
                    names.push(image.architecture.tag(&self.top));
                }
                names
            })
            .collect()
    }

    /// What was written, each name made a reference by `reference`; `layout` for an OCI layout
    /// or oci-archive (see [`Names::layout_names`]), else one name per image.
    fn written(
        &self,
        assembled: &Manifested,
        layout: bool,
        reference: impl Fn(&str) -> String,
    ) -> Written {
        let names = if layout {
            self.layout_names(assembled)
        } else {
            self.per_architecture
                .iter()
                .map(|name| vec![name.clone()])
                .collect()
        };
        Written {
            images: assembled
                .images
                .iter()
                .zip(names)
                .map(|(each, names)| {
                    (
                        each.architecture,
                        each.manifest.digest.clone(),
                        names.iter().map(|name| reference(name)).collect(),
                    )
                })
                .collect(),
            index: assembled
                .index
                .as_ref()
                .map(|index| (index.digest.clone(), reference(&self.top))),
        }
    }
}

/// Writes blobs, then `index.json` naming the top image (or index) and each architecture.
fn write_layout(
    writer: &mut dyn TreeWriter,
    set: &ImageSet,
    assembled: &Manifested,
    names: &Names,
    existing: Option<oci_spec::image::ImageIndex>,
) -> io::Result<()> {
    let mut entries = Vec::new();
    for each in &assembled.images {
        for layer in &each.image.layers {
            let path = layer.digest().layout_path();
            if !writer.contains(&path) {
                writer.write(&path, layer.descriptor.size(), &mut set.open_layer(layer)?)?;
            }
        }
        write_document(writer, &each.image.config)?;
        write_document(writer, each.manifest)?;
    }
    if let Some(index) = &assembled.index {
        write_document(writer, index)?;
        entries.push(LayoutEntry {
            descriptor: index.descriptor(),
            name: names.top.clone(),
            image_name: assembled.name.clone(),
        });
    }
    for (each, image_names) in assembled.images.iter().zip(names.layout_names(assembled)) {
        let mut descriptor = each.manifest.descriptor();
        descriptor.set_platform(Some(each.image.platform.clone()));
        for (position, name) in image_names.into_iter().enumerate() {
            entries.push(LayoutEntry {
                descriptor: descriptor.clone(),
                name,
                // With one architecture the first entry is the tagged image itself.
                image_name: (position == 0 && assembled.index.is_none())
                    .then(|| assembled.name.clone())
                    .flatten(),
            });
        }
    }
    layout_index::write_layout_index(writer, existing, entries)
}

fn write_document(writer: &mut dyn TreeWriter, document: &Document) -> io::Result<()> {
    let path = document.digest.layout_path();
    if writer.contains(&path) {
        return Ok(());
    }
    writer.write(&path, document.size(), &mut &document.bytes[..])
}

fn check_archive_path(location: &ImageLocation, file: &Path) -> Result<()> {
    if file.is_dir() {
        return Err(Error::output(format!(
            "--output {location}: {} is a directory",
            file.display()
        )));
    }
    parent_directory(file).map(drop)
}

/// Writes a tar archive through `fill` into a temporary file, renamed to `file` when complete.
fn write_archive(
    location: &ImageLocation,
    file: &Path,
    fill: impl FnOnce(&mut TarWriter<BufWriter<&mut std::fs::File>>) -> io::Result<()>,
) -> Result<()> {
    if file.is_dir() {
        return Err(Error::output(format!(
            "--output {location}: {} is a directory",
            file.display()
        )));
    }
    let mut temporary = output_temporary_file(&parent_directory(file)?).path_context(
        ErrorKind::Output,
        "create a temporary file beside",
        file,
    )?;
    {
        let mut writer = TarWriter::new(BufWriter::with_capacity(1 << 20, temporary.as_file_mut()));
        fill(&mut writer).map_err(|error| write_failed(location, error))?;
        writer
            .finish()
            .and_then(|mut buffered| buffered.flush())
            .map_err(|error| write_failed(location, error))?;
    }
    temporary
        .persist(file)
        .map_err(|error| error.error)
        .path_context(ErrorKind::Output, "write", file)?;
    Ok(())
}

pub(crate) use crate::temporary::parent_directory;

/// Corrupt base content is the base's fault, a download that failed the registry's; anything
/// else is a failure to write the output.
fn write_failed(location: &ImageLocation, error: io::Error) -> Error {
    if let Some(typed) = blob_failure(&error) {
        return typed;
    }
    if error.kind() == io::ErrorKind::InvalidData {
        Error::base(format!(
            "a base blob is missing or corrupt, so the build stopped and {location} was not written: {error}"
        ))
    } else {
        Error::output(format!("cannot write {location}: {error}"))
    }
}
