//! Any bytes, read as each kind of message the protocol has: decoding never panics, and whatever
//! decodes writes back to JSON that decodes to the same value (the browser's streaming reader and
//! the server's both see only what the other wrote).

#![no_main]

use libfuzzer_sys::fuzz_target;
use minim_shared::wire::{ClientMessage, ServerMessage};
use minim_shared::{Board, Command, Event, Sequenced};
use serde::Serialize;
use serde::de::DeserializeOwned;

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(data: &[u8]) {
    if let Ok(value) = serde_json::from_slice::<T>(data) {
        let text = serde_json::to_string(&value).expect("a decoded value writes back");
        let again: T = serde_json::from_str(&text).expect("what was written reads back");
        assert_eq!(again, value, "{text}");
    }
}

fuzz_target!(|data: &[u8]| {
    round_trip::<ClientMessage>(data);
    round_trip::<ServerMessage>(data);
    round_trip::<Command>(data);
    round_trip::<Event>(data);
    round_trip::<Sequenced>(data);
    round_trip::<Board>(data);
});
