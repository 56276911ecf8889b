//! A layer file that can be read while it is still being written: the compressor appends to it,
//! and any number of readers ([`Follower`]) read what is there so far, waiting for more, until
//! the writer says how it ended. This is how a new layer goes up to a registry while it is
//! compressed, without holding it in memory and without the compressor ever waiting for the
//! network: the file absorbs the difference in speed.
//!
//! Readers use positioned reads (`pread`) on a duplicate of the writer's descriptor, so they
//! keep working after the file is renamed into the cache, and the writer's offset is never moved.
//!
//! Not here: what is written ([`super::writer`]), or the upload ([`crate::registry::stream`]).

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use super::writer::LayerDigests;

/// The shared view of a file being written: how many bytes are in it, and how it ended.
#[derive(Clone)]
pub struct GrowingFile {
    shared: Arc<Shared>,
}

struct Shared {
    file: File,
    state: Mutex<Growth>,
    changed: Condvar,
    /// Set by a reader that wants the writer to stop (the build is ending on an error).
    cancelled: AtomicBool,
}

#[derive(Default)]
struct Growth {
    /// Bytes written to the file so far.
    written: u64,
    /// `None` while the writer is at work; then its digests, or why it failed.
    end: Option<Result<LayerDigests, String>>,
}

impl GrowingFile {
    /// Starts following `file`, which is empty and about to be written through
    /// [`GrowingFile::writer`]. Errors: the descriptor cannot be duplicated.
    pub fn new(file: &File) -> io::Result<GrowingFile> {
        Ok(GrowingFile {
            shared: Arc::new(Shared {
                file: file.try_clone()?,
                state: Mutex::new(Growth::default()),
                changed: Condvar::new(),
                cancelled: AtomicBool::new(false),
            }),
        })
    }

    /// Wraps the writer's own handle on the file: every byte written through it becomes
    /// readable by the followers. Writes fail once [`GrowingFile::cancel`] was called.
    pub fn writer<W: Write>(&self, inner: W) -> GrowingWriter<W> {
        GrowingWriter {
            inner,
            growing: self.clone(),
        }
    }

    /// A reader of the whole file from its first byte; it ends (`Ok(0)`) when the writer has
    /// [`finished`](GrowingFile::finish) and everything was read, and fails if the writer failed.
    pub fn follow(&self) -> Follower {
        Follower {
            growing: self.clone(),
            position: 0,
        }
    }

    /// The writer is done: `Ok(digests)` of the complete layer, or why it failed. Wakes every
    /// follower. Only the first call counts.
    pub fn finish(&self, end: Result<LayerDigests, String>) {
        let mut state = self.shared.state.lock().expect("growth state");
        if state.end.is_none() {
            state.end = Some(end);
        }
        self.shared.changed.notify_all();
    }

    /// Waits for the writer to finish; its digests, or None if it failed.
    pub fn wait_end(&self) -> Option<LayerDigests> {
        let mut state = self.shared.state.lock().expect("growth state");
        loop {
            match &state.end {
                Some(end) => return end.as_ref().ok().cloned(),
                None => state = self.shared.changed.wait(state).expect("growth state"),
            }
        }
    }

    /// Asks the writer to stop: its next write fails.
    pub fn cancel(&self) {
        self.shared.cancelled.store(true, Ordering::Relaxed);
    }

    fn grew(&self, by: usize) {
        let mut state = self.shared.state.lock().expect("growth state");
        state.written += by as u64;
        self.shared.changed.notify_all();
    }
}

/// The writing side of a [`GrowingFile`] (over the writer's handle on the same file).
pub struct GrowingWriter<W> {
    inner: W,
    growing: GrowingFile,
}

impl<W: Write> Write for GrowingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.growing.shared.cancelled.load(Ordering::Relaxed) {
            // Not `Interrupted`, which `write_all` would retry.
            return Err(io::Error::other(
                "the build stopped before the layer was complete",
            ));
        }
        let written = self.inner.write(buf)?;
        self.growing.grew(written);
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Reads a [`GrowingFile`] from the start, waiting at the end of what is written so far.
pub struct Follower {
    growing: GrowingFile,
    position: u64,
}

impl io::Read for Follower {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let shared = &self.growing.shared;
        let available = {
            let mut state = shared.state.lock().expect("growth state");
            loop {
                if state.written > self.position {
                    break state.written - self.position;
                }
                match &state.end {
                    Some(Ok(_)) => return Ok(0),
                    Some(Err(why)) => return Err(io::Error::other(why.clone())),
                    None => state = shared.changed.wait(state).expect("growth state"),
                }
            }
        };
        let wanted = buf
            .len()
            .min(usize::try_from(available).unwrap_or(usize::MAX));
        let read = shared.file.read_at(&mut buf[..wanted], self.position)?;
        if read == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the layer file is shorter than what was written to it",
            ));
        }
        self.position += read as u64;
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Sha256Digest;
    use std::io::Read;
    use std::time::Duration;

    fn digests() -> LayerDigests {
        let digest = Sha256Digest::of(b"x");
        LayerDigests {
            diff_id: digest.clone(),
            digest,
            size: 1,
            uncompressed_size: 1,
        }
    }

    #[test]
    fn a_follower_reads_what_is_written_as_it_is_written_then_ends() {
        let file = tempfile::tempfile().unwrap();
        let growing = GrowingFile::new(&file).unwrap();
        let mut follower = growing.follow();
        let writer_side = growing.clone();
        let writer = std::thread::spawn(move || {
            let mut writer = writer_side.writer(file);
            for chunk in [&b"first "[..], b"second ", b"third"] {
                std::thread::sleep(Duration::from_millis(20));
                writer.write_all(chunk).unwrap();
            }
            writer_side.finish(Ok(digests()));
        });
        let mut text = String::new();
        follower.read_to_string(&mut text).unwrap();
        writer.join().unwrap();
        assert_eq!(text, "first second third");
        assert_eq!(growing.wait_end(), Some(digests()));
        // A follower that starts late reads everything from the start.
        let mut late = String::new();
        growing.follow().read_to_string(&mut late).unwrap();
        assert_eq!(late, "first second third");
    }

    #[test]
    fn a_failed_writer_fails_its_followers_and_cancel_stops_the_writer() {
        let file = tempfile::tempfile().unwrap();
        let growing = GrowingFile::new(&file).unwrap();
        let mut writer = growing.writer(file);
        writer.write_all(b"part").unwrap();
        growing.cancel();
        assert!(writer.write_all(b"more").is_err());
        growing.finish(Err("cannot read the bootstrap".into()));
        let mut follower = growing.follow();
        let mut buffer = [0; 4];
        follower.read_exact(&mut buffer).unwrap();
        assert_eq!(&buffer, b"part");
        let error = follower.read(&mut buffer).unwrap_err();
        assert!(error.to_string().contains("cannot read the bootstrap"));
        assert_eq!(growing.wait_end(), None);
    }
}
