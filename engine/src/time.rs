//! Injected time. Protocol cores never read a clock: they are handed `now` in milliseconds since the
//! node's epoch. The actors read it from a [`Clock`], which is tokio's `Instant` (virtual under the
//! simulator's paused runtime, real otherwise).

/// Milliseconds since the node's epoch.
pub type Millis = u64;

/// The clock the actors use to stamp inputs for the cores.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    epoch: tokio::time::Instant,
    unix_epoch_ms: u64,
}

impl Clock {
    /// A clock with a given zero (all nodes of one simulation share it) and the Unix time, in
    /// milliseconds, that zero stands for (signed envelopes carry Unix timestamps). A real node
    /// reads the system clock once, where it starts, and passes it here.
    pub fn with_epoch(epoch: tokio::time::Instant, unix_epoch_ms: u64) -> Self {
        Clock { epoch, unix_epoch_ms }
    }

    pub fn unix_epoch_ms(&self) -> u64 {
        self.unix_epoch_ms
    }

    pub fn now(&self) -> Millis {
        tokio::time::Instant::now().saturating_duration_since(self.epoch).as_millis() as Millis
    }

    /// The tokio instant at which `at` falls, for timers.
    pub fn instant_at(&self, at: Millis) -> tokio::time::Instant {
        self.epoch + std::time::Duration::from_millis(at)
    }
}
