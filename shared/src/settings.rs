//! A board's settings and the limits that keep boards small and inputs sane.

use serde::{Deserialize, Serialize};

/// Most characters in a topic.
pub const MAX_TOPIC_CHARS: usize = 280;
/// Most characters in a takeaway.
pub const MAX_TAKEAWAY_CHARS: usize = 1_000;
/// Most characters in an action item.
pub const MAX_ACTION_ITEM_CHARS: usize = 280;
/// Most characters in a display name.
pub const MAX_NAME_CHARS: usize = 40;
/// Most characters in a board title.
pub const MAX_TITLE_CHARS: usize = 100;
/// Most topics one person may have on a board at once.
pub const MAX_TOPICS_PER_PERSON: usize = 10;
/// Most topics on a board at once.
pub const MAX_TOPICS: usize = 200;
/// Most action items on a board.
pub const MAX_ACTION_ITEMS: usize = 200;
/// Most people who may join one board (an all-hands board is large; a Mini-M is eight).
pub const MAX_PEOPLE: usize = 5_000;
/// Most votes a board may give each person.
pub const MAX_VOTES_PER_PERSON: u32 = 20;
/// Longest timebox or extension, in milliseconds (one hour).
pub const MAX_TIMEBOX_MS: u64 = 60 * 60 * 1000;
/// Shortest timebox or extension, in milliseconds (one second: short enough for a demo or a test,
/// and harmless in a real meeting).
pub const MIN_TIMEBOX_MS: u64 = 1000;

/// How one board runs its meeting.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Votes each person may place in all.
    pub votes_per_person: u32,
    /// Most votes one person may place on one topic.
    pub max_votes_per_topic: u32,
    /// Length of a timebox, in milliseconds.
    pub timebox_ms: u64,
    /// Length of an extension, in milliseconds; `None` means "one more timebox".
    pub extension_ms: Option<u64>,
    /// Topics stay hidden from everyone but their author until the facilitator reveals them.
    pub hide_topics_until_revealed: bool,
    /// Vote totals stay hidden until voting closes; each person still sees their own votes.
    pub hide_totals_until_voting_closes: bool,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            votes_per_person: 3,
            max_votes_per_topic: 3,
            timebox_ms: 5 * 60 * 1000,
            extension_ms: None,
            hide_topics_until_revealed: false,
            hide_totals_until_voting_closes: true,
        }
    }
}

impl Settings {
    pub fn extension_ms(&self) -> u64 {
        self.extension_ms.unwrap_or(self.timebox_ms)
    }

    /// Why these settings cannot be used, in words for the person who chose them.
    pub fn problem(&self) -> Option<String> {
        if self.votes_per_person == 0 || self.votes_per_person > MAX_VOTES_PER_PERSON {
            return Some(format!("Votes per person must be between 1 and {MAX_VOTES_PER_PERSON}."));
        }
        if self.max_votes_per_topic == 0 || self.max_votes_per_topic > self.votes_per_person {
            return Some("Votes per topic must be between 1 and the votes per person.".into());
        }
        let range = MIN_TIMEBOX_MS..=MAX_TIMEBOX_MS;
        if !range.contains(&self.timebox_ms) || !range.contains(&self.extension_ms()) {
            return Some("Timeboxes and extensions must be between 1 second and 60 minutes.".into());
        }
        None
    }
}
