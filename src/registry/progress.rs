//! Telling the user about blob transfers, on stderr: a progress bar per blob on a terminal
//! (indicatif), one line per finished blob otherwise (`pushed`, `mounted`, `exists`, `fetched`,
//! with its size), nothing with `--quiet`.

use std::io::{IsTerminal, Read};
use std::sync::Arc;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::digest::Sha256Digest;

/// How transfers are shown.
#[derive(Clone)]
pub enum Progress {
    Bars(MultiProgress),
    Lines,
    Quiet,
}

impl Progress {
    /// Bars when stderr is a terminal, lines otherwise, nothing when `quiet`.
    pub fn for_stderr(quiet: bool) -> Arc<Progress> {
        Arc::new(if quiet {
            Progress::Quiet
        } else if std::io::stderr().is_terminal() {
            Progress::Bars(MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
        } else {
            Progress::Lines
        })
    }

    /// Starts tracking one blob of `size` bytes going to or from `place`.
    pub fn blob(&self, digest: &Sha256Digest, size: u64, place: &str) -> BlobProgress {
        self.tracker(
            || ProgressBar::new(size),
            "{prefix} {wide_bar} {bytes}/{total_bytes} {bytes_per_sec}",
            short(digest),
            size,
            place,
        )
    }

    /// The progress of a blob whose digest and size are not known yet (a new layer streamed as
    /// it is compressed), shown as `label` until [`BlobProgress::identify`] names it.
    pub fn stream(&self, label: &str, place: &str) -> BlobProgress {
        self.tracker(
            ProgressBar::no_length,
            "{prefix} {bytes} {bytes_per_sec}",
            label.to_owned(),
            0,
            place,
        )
    }

    /// A tracker named `name`, with a bar (made by `bar`, drawn with `template`) on a terminal.
    fn tracker(
        &self,
        bar: impl FnOnce() -> ProgressBar,
        template: &str,
        name: String,
        size: u64,
        place: &str,
    ) -> BlobProgress {
        let bar = match self {
            Progress::Bars(bars) => {
                let bar = bars.add(bar());
                bar.set_style(
                    ProgressStyle::with_template(template).expect("the template is valid"),
                );
                bar.set_prefix(name.clone());
                Some(bar)
            }
            _ => None,
        };
        BlobProgress {
            lines: matches!(self, Progress::Lines),
            bar,
            digest: name,
            size,
            place: place.to_owned(),
        }
    }

    /// A one-off message (e.g. a pushed tag), printed above any bars.
    pub fn note(&self, message: &str) {
        match self {
            Progress::Bars(bars) => {
                let _ = bars.println(message);
            }
            Progress::Lines => eprintln!("{message}"),
            Progress::Quiet => {}
        }
    }
}

/// One blob's transfer.
pub struct BlobProgress {
    lines: bool,
    bar: Option<ProgressBar>,
    digest: String,
    size: u64,
    place: String,
}

impl BlobProgress {
    /// Counts bytes as they are read through `inner`.
    pub fn track<R: Read + Send + 'static>(&self, inner: R) -> Box<dyn Read + Send> {
        match &self.bar {
            Some(bar) => {
                bar.reset();
                Box::new(bar.wrap_read(inner))
            }
            None => Box::new(inner),
        }
    }

    /// The blob is done: `outcome` is `pushed`, `mounted`, `exists` or `fetched`.
    /// Names a streamed blob once its digest and size (bytes) are known.
    pub fn identify(&mut self, digest: &Sha256Digest, size: u64) {
        self.digest = short(digest);
        self.size = size;
    }

    pub fn finish(self, outcome: &str) {
        let line = format!(
            "{outcome:<8} {}  {:>9}  {}",
            self.digest,
            human_size(self.size),
            self.place
        );
        match &self.bar {
            Some(bar) => {
                bar.set_style(
                    ProgressStyle::with_template("{msg}").expect("the template is valid"),
                );
                bar.finish_with_message(line);
            }
            None if self.lines => eprintln!("{line}"),
            None => {}
        }
    }
}

impl Drop for BlobProgress {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar
            && !bar.is_finished()
        {
            bar.abandon();
        }
    }
}

/// `sha256:` and the first 12 hex digits.
fn short(digest: &Sha256Digest) -> String {
    format!("sha256:{}", &digest.hex()[..12])
}

/// `512 B`, `20.1 MB`: decimal units, as registries and docker show sizes.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["kB", "MB", "GB", "TB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_human() {
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(20_100_000), "20.1 MB");
        assert_eq!(human_size(1_500), "1.5 kB");
    }
}
