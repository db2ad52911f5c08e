//! Cooperative stopping, shared by the executor and the adapters: a signal handler (or a lost
//! lock) sets it once; work that has not started is not started, and work in flight that can be
//! abandoned safely (an upload in parts) is abandoned.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use tokio::sync::Notify;

#[derive(Debug, Default)]
pub struct Cancel {
    flag: AtomicBool,
    code: AtomicU8,
    notify: Notify,
}

impl Cancel {
    /// Stops the run with this exit code; the first call decides the code.
    pub fn cancel(&self, exit_code: u8) {
        if !self.flag.swap(true, Ordering::SeqCst) {
            self.code.store(exit_code, Ordering::SeqCst);
        }
        self.notify.notify_waiters();
    }

    pub fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    pub fn exit_code(&self) -> Option<u8> {
        self.is_cancelled()
            .then(|| self.code.load(Ordering::SeqCst))
    }

    /// Resolves once the run is stopped.
    pub async fn cancelled(&self) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            // Registered before the flag is read, so a cancel in between is not missed.
            notified.as_mut().enable();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_code_wins_and_waiters_wake() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let c = std::sync::Arc::new(Cancel::default());
            let waiter = tokio::spawn({
                let c = std::sync::Arc::clone(&c);
                async move { c.cancelled().await }
            });
            tokio::task::yield_now().await;
            c.cancel(130);
            c.cancel(143);
            waiter.await.expect("woken");
            assert_eq!(c.exit_code(), Some(130));
            // Already cancelled: returns at once.
            c.cancelled().await;
        });
    }
}
