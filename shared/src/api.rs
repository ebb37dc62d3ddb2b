//! The HTTP API's request and answer bodies, shared by the server, the browser app and the tests,
//! so that no side writes these JSON shapes by hand.
//!
//! | route | request | answer |
//! |---|---|---|
//! | `POST /api/boards` | [`CreateBoard`] | [`Created`] |
//! | `POST /api/boards/{board}/link` | [`LinkQuery`] | [`LinkGrant`] |
//! | `POST /api/boards/{board}/join` | [`Join`] | [`Joined`] |
//!
//! Errors answer `{code, message}` with a [`crate::wire::ErrorCode`].

use crate::event::Role;
use crate::ids::{BoardId, PersonId};
use crate::settings::Settings;
use crate::text::Private;
use crate::wire::SessionToken;
use serde::{Deserialize, Serialize};
use std::fmt;

/// What a link lets its holder be.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Grant {
    Facilitator,
    Participant,
    Projector,
}

impl Grant {
    /// The role of a person admitted with this grant; the projector is not a person.
    pub fn role(self) -> Option<Role> {
        match self {
            Grant::Facilitator => Some(Role::Facilitator),
            Grant::Participant => Some(Role::Participant),
            Grant::Projector => None,
        }
    }
}

/// The capability key in a link (after `#k=`). `Debug` never shows it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LinkKey(pub String);

impl fmt::Debug for LinkKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LinkKey(<redacted>)")
    }
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBoard {
    pub title: Private,
    #[serde(default)]
    pub settings: Settings,
}

/// A new board's three links. They are capabilities, so `Debug` never shows them.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Links {
    pub facilitator: String,
    pub participant: String,
    pub projector: String,
}

impl fmt::Debug for Links {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Links(<redacted>)")
    }
}

impl Links {
    /// The key in one of these links.
    pub fn key(link: &str) -> Option<LinkKey> {
        link.split_once("#k=").map(|(_, k)| LinkKey(k.to_owned()))
    }
}

/// The facilitator asks for a new participant link, with their session.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct NewParticipantLink {
    pub token: crate::wire::SessionToken,
}

/// The new participant link (the old one no longer works). A capability: `Debug` hides it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantLink {
    pub participant: String,
}

impl fmt::Debug for ParticipantLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ParticipantLink(<redacted>)")
    }
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Created {
    pub board: BoardId,
    pub links: Links,
}

/// Asks what a key grants, without joining.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkQuery {
    pub key: LinkKey,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct LinkGrant {
    pub grant: Grant,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Join {
    pub key: LinkKey,
    /// Required for people; ignored for the projector link.
    #[serde(default)]
    pub name: Option<Private>,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Joined {
    pub token: SessionToken,
    pub board: BoardId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person: Option<PersonId>,
    pub grant: Grant,
    /// Seconds since the Unix epoch.
    pub expires_at: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_links_and_tokens_never_show_in_debug() {
        let links = Links { facilitator: "f#k=1".into(), participant: "p#k=2".into(), projector: "s#k=3".into() };
        let joined = Joined {
            token: SessionToken("eyJ.secret".into()),
            board: BoardId("b".into()),
            person: None,
            grant: Grant::Projector,
            expires_at: 0,
        };
        let debug = format!("{links:?} {joined:?} {:?}", Join { key: LinkKey("k3y".into()), name: None });
        for secret in ["#k=", "eyJ.secret", "k3y"] {
            assert!(!debug.contains(secret), "{debug}");
        }
        assert_eq!(Links::key("http://x/b/1#k=abc"), Some(LinkKey("abc".into())));
    }
}
