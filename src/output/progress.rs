//! Progress on stderr, built from scan and execute events: indicatif bars for a person at a
//! terminal, one plain line per file in CI logs, nothing with `-q`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::commands::execute::{Event, Progress};
use crate::local::scan::ScanProgress;
use crate::settings::Verbosity;

pub struct Reporter {
    style: Style,
    bar: Mutex<Option<ProgressBar>>,
    /// Files uploaded and planned, for the bar's "12/31 files".
    files_done: AtomicUsize,
    files_total: AtomicUsize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    Silent,
    Plain { verbose: bool },
    Bars { verbose: bool },
}

impl Reporter {
    pub fn new(verbosity: Verbosity, interactive: bool) -> Reporter {
        let verbose = verbosity == Verbosity::Verbose;
        let style = match verbosity {
            Verbosity::Quiet => Style::Silent,
            _ if interactive => Style::Bars { verbose },
            _ => Style::Plain { verbose },
        };
        Reporter {
            style,
            bar: Mutex::new(None),
            files_done: AtomicUsize::new(0),
            files_total: AtomicUsize::new(0),
        }
    }

    /// A line for the log; printed above the bar when one is showing.
    pub fn line(&self, text: &str) {
        match self.style {
            Style::Silent => {}
            Style::Plain { .. } => eprintln!("{text}"),
            Style::Bars { .. } => match self.current() {
                Some(bar) => bar.println(text),
                None => eprintln!("{text}"),
            },
        }
    }

    /// A line shown whatever the verbosity (errors), above the bar when one is showing.
    pub fn always(&self, text: &str) {
        match self.current() {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }

    /// A line shown only with `-v`.
    pub fn detail(&self, text: &str) {
        if matches!(
            self.style,
            Style::Plain { verbose: true } | Style::Bars { verbose: true }
        ) {
            self.line(text);
        }
    }

    fn current(&self) -> Option<ProgressBar> {
        self.bar.lock().ok().and_then(|b| b.clone())
    }

    fn start_bar(&self, len: u64, template: &str) {
        if !matches!(self.style, Style::Bars { .. }) {
            return;
        }
        let style = ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr())
            .with_style(style);
        bar.enable_steady_tick(Duration::from_millis(120));
        if let Ok(mut slot) = self.bar.lock() {
            if let Some(old) = slot.replace(bar) {
                old.finish_and_clear();
            }
        }
    }

    /// Clears any bar, so the summary prints on a clean line.
    pub fn finish(&self) {
        if let Ok(mut slot) = self.bar.lock() {
            if let Some(bar) = slot.take() {
                bar.finish_and_clear();
            }
        }
    }
}

impl ScanProgress for Reporter {
    fn walked(&self, files: usize, bytes: u64) {
        self.detail(&format!("hashing {files} files ({})", HumanBytes(bytes)));
        self.start_bar(
            bytes,
            "hashing   [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
        );
    }

    fn hashed(&self, bytes: u64) {
        if let Some(bar) = self.current() {
            bar.inc(bytes);
        }
    }
}

impl Progress for Reporter {
    fn event(&self, event: Event<'_>) {
        match event {
            Event::Locked { holder } => self.detail(&format!("took the deploy lock as {holder}")),
            Event::Aborted { key } => self.line(&format!(
                "aborted an unfinished multipart upload of {key} left by an interrupted deploy"
            )),
            Event::Writing { files, bytes } => {
                self.detail(&format!("writing {files} files ({})", HumanBytes(bytes)));
                self.files_total.store(files, Ordering::Relaxed);
                self.files_done.store(0, Ordering::Relaxed);
                self.start_bar(
                    bytes,
                    "uploading [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {msg}",
                );
            }
            Event::Sent { bytes } => {
                if let Some(bar) = self.current() {
                    bar.inc(bytes);
                }
            }
            Event::Wrote { key, size, copied } => {
                let verb = if copied { "updated" } else { "uploaded" };
                let text = if copied {
                    format!("{verb} {key} (server-side copy)")
                } else {
                    format!("{verb} {key} ({})", HumanBytes(size))
                };
                match self.style {
                    Style::Plain { .. } | Style::Bars { .. } => self.line(&text),
                    Style::Silent => {}
                }
                if matches!(self.style, Style::Bars { .. }) {
                    let n = self.files_done.fetch_add(1, Ordering::Relaxed) + 1;
                    let total = self.files_total.load(Ordering::Relaxed);
                    if let Some(bar) = self.current() {
                        bar.set_message(format!("{n}/{total} files"));
                    }
                }
            }
            Event::WriteFailed { key, error } => {
                // Failures are shown even with -q: they decide the exit code.
                self.always(&format!("error: {key}: {error}"));
            }
            Event::Kept { key } => {
                self.detail(&format!("kept a copy of the old {key} for rollbacks"))
            }
            Event::Deleted { key } => self.line(&format!("deleted {key}")),
            Event::DeleteFailed { key, error } => {
                self.always(&format!("error: delete {key} failed: {error}"));
            }
            Event::Invalidating {
                distribution,
                paths,
            } => self.detail(&format!(
                "invalidating {paths} paths on CloudFront {distribution}"
            )),
            Event::Invalidated { distribution, id } => self.line(&format!(
                "CloudFront {distribution}: invalidation {id} created"
            )),
            Event::InvalidationFailed {
                distribution,
                error,
            } => self.always(&format!(
                "error: CloudFront {distribution}: invalidation failed: {error}"
            )),
            Event::Retrying { what, after } => {
                self.line(&format!("{what}: retrying in {}s", after.as_secs()))
            }
            Event::LockLost { taken } => self.always(if taken {
                "error: another deploy took the lock over: stopping before the next write"
            } else {
                "error: the lock could not be renewed: stopping before the next write"
            }),
            Event::ManifestWritten => self.detail("manifest written, lock released"),
        }
    }
}
