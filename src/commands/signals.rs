//! Ctrl-C and SIGTERM during a deploy: the first stops new work (writes in flight finish within
//! seconds or are abandoned, and what landed is recorded); a later one, more than a moment
//! after the first, asks the run to release its lock and quit at once.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::cancel::Cancel;
use crate::cloud::bucket::Bucket;
use crate::commands::lease::Lease;
use crate::error::{code, Error};
use crate::output::progress::Reporter;

/// A second signal within this long of the first is the same Ctrl-C delivered twice (by the
/// terminal and again by the npm launcher), not a second request.
const ECHO: Duration = Duration::from_millis(500);

/// The signal watch of one run; it stops watching when dropped.
pub struct Signals {
    pub cancel: Arc<Cancel>,
    quit: Arc<Notify>,
    task: JoinHandle<()>,
}

impl Signals {
    pub fn watch(reporter: &Arc<Reporter>) -> Signals {
        let cancel = Arc::new(Cancel::default());
        let quit = Arc::new(Notify::new());
        let task = tokio::spawn(watch(
            Arc::clone(&cancel),
            Arc::clone(&quit),
            Arc::clone(reporter),
        ));
        Signals { cancel, quit, task }
    }

    /// Runs `work` to its end unless a second signal asks to quit: then the lock is released
    /// (best effort, briefly) and the run ends with the signal's exit code.
    pub async fn unless_quit<T, B: Bucket>(
        &self,
        work: impl Future<Output = Result<T, Error>>,
        lease: &Lease<'_, B>,
    ) -> Result<T, Error> {
        tokio::select! {
            done = work => done,
            () = self.quit.notified() => {
                lease.release(Duration::from_secs(2)).await;
                Err(Error::Interrupted(self.cancel.exit_code().unwrap_or(code::SIGINT)))
            }
        }
    }

    /// Stops watching: a Ctrl-C from here on ends the process the ordinary way.
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Watches for signals until aborted. `quit` is notified on the second one; if the run does not
/// exit within a few seconds of it, this exits the process.
async fn watch(cancel: Arc<Cancel>, quit: Arc<Notify>, reporter: Arc<Reporter>) {
    let first = next_signal().await;
    let at = Instant::now();
    cancel.cancel(first);
    reporter.always(
        "stopping: no new uploads start; those in flight finish or are abandoned, and what landed is recorded (press Ctrl-C again to quit now)",
    );
    loop {
        let again = next_signal().await;
        if at.elapsed() > ECHO {
            reporter.always("quitting: releasing the deploy lock");
            quit.notify_waiters();
            // The run releases its lock (within 2 s) and returns; this is the backstop.
            tokio::time::sleep(Duration::from_secs(3)).await;
            std::process::exit(i32::from(again));
        }
    }
}

#[cfg(unix)]
async fn next_signal() -> u8 {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => tokio::select! {
            _ = tokio::signal::ctrl_c() => code::SIGINT,
            _ = term.recv() => code::SIGTERM,
        },
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            code::SIGINT
        }
    }
}

#[cfg(not(unix))]
async fn next_signal() -> u8 {
    let _ = tokio::signal::ctrl_c().await;
    code::SIGINT
}
