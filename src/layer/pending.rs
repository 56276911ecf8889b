//! One architecture's new layer while a build makes it, as the pushes see it: first looked up
//! in the layer cache, then (on a miss) compressed into a [`GrowingFile`] that an upload may read
//! as it grows, then finished: its digests and the file that holds it, or nothing if it failed
//! (the build reports why).
//!
//! Not here: making the layer ([`crate::build`]), or pushing it ([`crate::registry::stream`]).

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};

use super::growing::GrowingFile;
use super::writer::LayerDigests;
use crate::platform::Architecture;

/// A handle on one new layer being made; clones share it.
#[derive(Clone)]
pub struct PendingLayer {
    pub architecture: Architecture,
    shared: Arc<(Mutex<Stage>, Condvar)>,
}

/// A finished layer: its digests and the file holding its bytes.
#[derive(Clone, Debug)]
pub struct FinishedLayer {
    pub digests: LayerDigests,
    pub file: PathBuf,
}

enum Stage {
    /// Looking in the layer cache.
    Looking,
    Compressing(GrowingFile),
    /// Done: the layer, or `None` if making it failed or was cancelled.
    Finished(Option<FinishedLayer>),
    Cancelled,
}

impl PendingLayer {
    pub fn new(architecture: Architecture) -> PendingLayer {
        PendingLayer {
            architecture,
            shared: Arc::new((Mutex::new(Stage::Looking), Condvar::new())),
        }
    }

    /// The layer was not in the cache: it is being compressed into `growing`.
    pub fn compressing(&self, growing: &GrowingFile) {
        self.set(|stage| match stage {
            Stage::Cancelled => {
                growing.cancel();
                Stage::Cancelled
            }
            _ => Stage::Compressing(growing.clone()),
        });
    }

    /// The layer is made (`Some`), or could not be (`None`).
    pub fn finish(&self, layer: Option<FinishedLayer>) {
        self.set(|stage| match stage {
            Stage::Cancelled => Stage::Cancelled,
            _ => Stage::Finished(layer),
        });
    }

    /// Asks whoever makes the layer to stop: a compression under way fails at its next write. A
    /// finished layer stays finished.
    pub fn cancel(&self) {
        self.set(|stage| match stage {
            Stage::Finished(layer) => Stage::Finished(layer),
            Stage::Compressing(growing) => {
                growing.cancel();
                Stage::Cancelled
            }
            _ => Stage::Cancelled,
        });
    }

    /// Whether [`PendingLayer::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        matches!(
            *self.shared.0.lock().expect("layer stage"),
            Stage::Cancelled
        )
    }

    /// Waits for the cache lookup: the file being compressed, or `None` when the layer came from
    /// the cache, is already finished, or failed.
    pub fn wait_stream(&self) -> Option<GrowingFile> {
        let (lock, changed) = &*self.shared;
        let mut stage = lock.lock().expect("layer stage");
        loop {
            match &*stage {
                Stage::Looking => stage = changed.wait(stage).expect("layer stage"),
                Stage::Compressing(growing) => return Some(growing.clone()),
                Stage::Finished(_) | Stage::Cancelled => return None,
            }
        }
    }

    /// Waits for the layer to be finished; `None` if it failed or was cancelled.
    pub fn wait_finished(&self) -> Option<FinishedLayer> {
        let (lock, changed) = &*self.shared;
        let mut stage = lock.lock().expect("layer stage");
        loop {
            match &*stage {
                Stage::Looking | Stage::Compressing(_) => {
                    stage = changed.wait(stage).expect("layer stage")
                }
                Stage::Finished(layer) => return layer.clone(),
                Stage::Cancelled => return None,
            }
        }
    }

    fn set(&self, next: impl FnOnce(Stage) -> Stage) {
        let (lock, changed) = &*self.shared;
        let mut stage = lock.lock().expect("layer stage");
        let current = std::mem::replace(&mut *stage, Stage::Looking);
        *stage = next(current);
        changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Sha256Digest;

    fn finished() -> FinishedLayer {
        let digest = Sha256Digest::of(b"layer");
        FinishedLayer {
            digests: LayerDigests {
                diff_id: digest.clone(),
                digest,
                size: 5,
                uncompressed_size: 5,
            },
            file: PathBuf::from("/layer"),
        }
    }

    #[test]
    fn a_cached_layer_offers_no_stream_and_a_compressed_one_does() {
        let cached = PendingLayer::new(Architecture::Amd64);
        let waiter = {
            let cached = cached.clone();
            std::thread::spawn(move || cached.wait_stream().is_some())
        };
        cached.finish(Some(finished()));
        assert!(!waiter.join().unwrap());
        assert_eq!(cached.wait_finished().unwrap().file, finished().file);

        let compressed = PendingLayer::new(Architecture::Arm64);
        let file = tempfile::tempfile().unwrap();
        let growing = GrowingFile::new(&file).unwrap();
        compressed.compressing(&growing);
        assert!(compressed.wait_stream().is_some());
        compressed.finish(None);
        assert!(compressed.wait_stream().is_none());
        assert!(compressed.wait_finished().is_none());
    }

    #[test]
    fn cancelling_stops_a_compression_and_wakes_the_waiters() {
        let layer = PendingLayer::new(Architecture::Amd64);
        let file = tempfile::tempfile().unwrap();
        let growing = GrowingFile::new(&file).unwrap();
        let mut writer = growing.writer(&file);
        layer.compressing(&growing);
        layer.cancel();
        assert!(std::io::Write::write_all(&mut writer, b"more").is_err());
        assert!(layer.is_cancelled());
        assert!(layer.wait_finished().is_none());
        layer.finish(Some(finished()));
        assert!(
            layer.wait_finished().is_none(),
            "a cancelled layer stays so"
        );

        let done = PendingLayer::new(Architecture::Arm64);
        done.finish(Some(finished()));
        done.cancel();
        assert!(done.wait_finished().is_some(), "a finished layer stays so");
    }
}
