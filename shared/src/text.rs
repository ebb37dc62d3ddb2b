//! People's words: the confidential text type and the one normaliser every input goes through.
//!
//! Topic text, takeaways, action items and display names are what the group said; they must never
//! reach a log. [`Private`] holds such text and its `Debug` shows only its length, so deriving
//! `Debug` on any type that holds it is safe.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::Deref;

/// Text written by a person. Serialises as a plain JSON string; `Debug` never shows it.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Private(String);

impl Private {
    pub fn new(text: impl Into<String>) -> Private {
        Private(text.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl Deref for Private {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Private {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<redacted {} chars>", self.0.chars().count())
    }
}

/// Why a piece of text was refused.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TextProblem {
    Empty,
    TooLong { max_chars: usize },
}

/// Whether the text may span lines (takeaways) or must be one line (names, topics, titles).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Lines {
    One,
    Many,
}

/// Cleans text typed by a person and checks its length.
///
/// Bidirectional overrides and isolates are removed (they can make text display differently from
/// what it says); other control characters become spaces, except newlines where `Lines::Many`
/// allows them; runs of spaces collapse; leading and trailing whitespace go. The length limit is
/// counted in characters after cleaning.
pub fn normalize(raw: &str, lines: Lines, max_chars: usize) -> Result<Private, TextProblem> {
    let mut out = String::with_capacity(raw.len().min(max_chars * 4));
    let mut pending_space = false;
    for c in raw.chars() {
        if is_bidi_control(c) || c == '\u{feff}' {
            continue;
        }
        let c = match c {
            '\n' if lines == Lines::Many => '\n',
            '\r' if lines == Lines::Many => continue,
            c if c.is_control() || c.is_whitespace() => ' ',
            c => c,
        };
        if c == ' ' {
            pending_space = true;
            continue;
        }
        if c == '\n' {
            // Keep line breaks but drop the spaces around them.
            pending_space = false;
            while out.ends_with(' ') {
                out.pop();
            }
            if !out.ends_with("\n\n") {
                out.push('\n');
            }
            continue;
        }
        if pending_space && !out.is_empty() && !out.ends_with('\n') {
            out.push(' ');
        }
        pending_space = false;
        out.push(c);
    }
    let trimmed = out.trim();
    if trimmed.is_empty() {
        return Err(TextProblem::Empty);
    }
    if trimmed.chars().count() > max_chars {
        return Err(TextProblem::TooLong { max_chars });
    }
    Ok(Private(trimmed.to_owned()))
}

/// The Unicode bidirectional formatting characters (embeddings, overrides, isolates and marks).
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_text() {
        let t = Private::new("my boss said");
        assert_eq!(format!("{t:?}"), "<redacted 12 chars>");
    }

    #[test]
    fn one_line_text_is_cleaned() {
        let t = normalize("  hello\u{202e}\n\tworld\u{0007}  ", Lines::One, 50).unwrap();
        assert_eq!(t.as_str(), "hello world");
    }

    #[test]
    fn many_lines_keep_line_breaks_but_not_blank_runs() {
        let t = normalize("a  \r\n\n\n\n  b", Lines::Many, 50).unwrap();
        assert_eq!(t.as_str(), "a\n\nb");
    }

    #[test]
    fn empty_and_too_long_are_refused() {
        assert_eq!(normalize(" \u{2066} \n", Lines::One, 5), Err(TextProblem::Empty));
        assert_eq!(normalize("abcdef", Lines::One, 5), Err(TextProblem::TooLong { max_chars: 5 }));
        assert!(normalize("ééééé", Lines::One, 5).is_ok(), "limit counts characters, not bytes");
    }
}
