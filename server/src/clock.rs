//! The server's wall clock, the only source of `now` handed to the board rules.

use minim_shared::UnixMillis;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub fn now() -> UnixMillis {
    // A clock before 1970 is a broken machine; treat it as the epoch rather than panic.
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    UnixMillis(since_epoch.as_millis() as u64)
}

/// How long from now until `deadline` (zero if it has passed).
pub fn until(deadline: UnixMillis) -> Duration {
    Duration::from_millis(now().until(deadline))
}
