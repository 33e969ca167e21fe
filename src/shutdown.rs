//! `Shutdown`: the one signal that tells every long-lived task and open stream to finish.
//!
//! axum/hyper graceful shutdown waits for responses to end, and an SSE body never ends by itself,
//! so every event stream, ingest body and source loop selects on this signal and stops on its own.

use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// A cloneable shutdown signal. A clone here is a shallow clone: triggering any clone triggers all.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    token: CancellationToken,
}

impl Shutdown {
    /// Creates a signal that has not fired yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fires the signal. Idempotent.
    pub fn trigger(&self) {
        self.token.cancel();
    }

    /// Completes when the signal fires (at once if it already has).
    pub async fn wait(&self) {
        self.token.cancelled().await;
    }

    /// Like [`Shutdown::wait`], but owns its signal so it can live inside a `'static` stream.
    pub fn wait_owned(&self) -> WaitForCancellationFutureOwned {
        self.token.clone().cancelled_owned()
    }
}
