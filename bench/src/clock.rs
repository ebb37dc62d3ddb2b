//! One clock for the whole run: microseconds since the generator started. Every send and every
//! delivery is stamped with it, in one process, so latencies need no clock agreement.

use std::sync::OnceLock;
use std::time::Instant;

/// Microseconds since the generator started (a u64 lasts longer than any run).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Default)]
pub struct Micros(pub u64);

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

pub fn now() -> Micros {
    Micros(epoch().elapsed().as_micros() as u64)
}

impl Micros {
    pub fn instant(self) -> Instant {
        epoch() + std::time::Duration::from_micros(self.0)
    }

    pub fn plus(self, d: std::time::Duration) -> Micros {
        Micros(self.0 + d.as_micros() as u64)
    }

    pub fn since(self, earlier: Micros) -> std::time::Duration {
        std::time::Duration::from_micros(self.0.saturating_sub(earlier.0))
    }
}
