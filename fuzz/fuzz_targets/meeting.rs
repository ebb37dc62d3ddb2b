//! A meeting driven by arbitrary commands from arbitrary actors at arbitrary times: `decide` and
//! `apply` never panic, a refused command changes nothing, and replaying the events that were
//! accepted rebuilds the same board.
//!
//! Input: lines of `<actor byte><time byte><command JSON>`. The first line's command is replaced by
//! the board's creation, so every run has a board to work on.

#![no_main]

use libfuzzer_sys::fuzz_target;
use minim_shared::{Actor, Board, Command, PersonId, Private, Role, Sequenced, Settings, UnixMillis, decide};

fn actor(byte: u8) -> Actor {
    match byte % 8 {
        0 => Actor::System,
        1 => Actor::Projector,
        n => Actor::Person(PersonId(u32::from(n - 1))),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut board = Board::default();
    let mut history: Vec<Sequenced> = Vec::new();
    let mut now = UnixMillis(1_700_000_000_000);
    let setup = [
        Command::CreateBoard { title: Private::new("Fuzz"), settings: Settings::default() },
        Command::Join { name: Private::new("F"), role: Role::Facilitator },
        Command::Join { name: Private::new("A"), role: Role::Participant },
        Command::Join { name: Private::new("B"), role: Role::Participant },
    ];
    let lines = data.split(|b| *b == b'\n').filter_map(|line| {
        let (&who, rest) = line.split_first()?;
        let (&when, json) = rest.split_first()?;
        Some((actor(who), u64::from(when) * 997, serde_json::from_slice::<Command>(json).ok()?))
    });
    let steps = setup.into_iter().map(|c| (Actor::System, 0, c)).chain(lines).take(400);
    for (who, advance, command) in steps {
        now = UnixMillis(now.0 + advance);
        let before = board.clone();
        match decide(&board, who, &command, now) {
            Ok(events) => {
                for e in board.sequence(events) {
                    board.apply(&e);
                    history.push(e);
                }
            }
            Err(_) => assert_eq!(board, before, "a refused command changed the board"),
        }
    }
    assert_eq!(Board::replay(&history), board, "replaying the accepted events rebuilds the board");
});
