//! Helpers for the table-driven error tests (`build_errors.rs`, `hostile_input.rs`): running
//! every case of a table a few at a time, and copying a fixture tree before a case spoils it.

use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Runs `run` on every case, `workers` at a time; returns the reports (`Some`: what went
/// wrong) of the cases that failed, in table order.
pub fn run_cases<C: Sync>(
    cases: &[C],
    workers: usize,
    run: impl Fn(&C) -> Option<String> + Sync,
) -> Vec<String> {
    let next = AtomicUsize::new(0);
    let mut reports: Vec<Option<String>> = cases.iter().map(|_| None).collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers.max(1))
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        let Some(case) = cases.get(index) else {
                            return done;
                        };
                        done.push((index, run(case)));
                    }
                })
            })
            .collect();
        for handle in handles {
            for (index, report) in handle.join().expect("a case runner panicked") {
                reports[index] = report;
            }
        }
    });
    reports.into_iter().flatten().collect()
}

/// Copies the directory tree `from` to `to` (created), regular files and directories only.
pub fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap_or_else(|e| panic!("creating {}: {e}", to.display()));
    for item in fs::read_dir(from).unwrap() {
        let item = item.unwrap();
        let target = to.join(item.file_name());
        if item.file_type().unwrap().is_dir() {
            copy_tree(&item.path(), &target);
        } else {
            fs::copy(item.path(), &target)
                .unwrap_or_else(|e| panic!("copying {}: {e}", item.path().display()));
        }
    }
}
