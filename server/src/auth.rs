//! Identity: capability keys in links, and signed session tokens.
//!
//! Creating a board makes three random 128-bit keys, one per link (facilitator, participant,
//! projector). Only their SHA-256 hashes are stored. Joining with a key and a display name yields
//! a session token (a JWT, HS256 only) naming the board, the person and the role; the WebSocket
//! checks it on every connect.

use crate::config::Secret;
use anyhow::Context;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use minim_shared::api::{Grant, LinkKey};
use minim_shared::{BoardId, PersonId, UnixMillis};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::Path;

/// How long a session token lasts by default: a meeting and then some.
pub const TOKEN_TTL_SECS: u64 = 24 * 60 * 60;
/// Clock skew tolerated between nodes when checking expiry.
const LEEWAY_SECS: u64 = 30;
const ISSUER: &str = "minim";
const AUDIENCE: &str = "minim-board";

/// The claims inside a session token.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// The board.
    pub sub: String,
    /// The person, absent for the projector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person: Option<PersonId>,
    pub grant: Grant,
    pub iat: u64,
    pub exp: u64,
}

/// Signs and checks session tokens.
#[derive(Clone)]
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl_secs: u64,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Tokens(<redacted>)")
    }
}

/// A session token was refused. The reason is for logs and metrics; clients get one message.
#[derive(Debug, thiserror::Error)]
#[error("session token refused: {0}")]
pub struct TokenRefused(String);

impl Tokens {
    pub fn new(secret: &[u8]) -> Tokens {
        // Pinning the algorithm means `none` and every other algorithm in a token's header are refused.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        Tokens {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl_secs: TOKEN_TTL_SECS,
        }
    }

    /// Issues tokens that last `ttl` (at least a second).
    pub fn with_ttl(self, ttl: std::time::Duration) -> Tokens {
        Tokens { ttl_secs: ttl.as_secs().max(1), ..self }
    }

    /// The configured secret, or the one kept in the data directory (made on first start).
    pub fn load_or_create(secret: Option<&Secret>, data_dir: &Path) -> anyhow::Result<Tokens> {
        if let Some(secret) = secret {
            return Ok(Tokens::new(secret.0.as_bytes()));
        }
        let path = data_dir.join("secret.key");
        match std::fs::read_to_string(&path) {
            Ok(hex_secret) => {
                let bytes = hex::decode(hex_secret.trim()).context("while reading the signing secret (not hex)")?;
                anyhow::ensure!(bytes.len() >= 32, "the signing secret in {} is too short", path.display());
                Ok(Tokens::new(&bytes))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let bytes = random_bytes::<32>()?;
                match publish_private_file(&path, hex::encode(bytes).as_bytes()) {
                    Ok(()) => {
                        tracing::info!(path = %path.display(), "generated a new signing secret");
                        Ok(Tokens::new(&bytes))
                    }
                    // Another node sharing this directory generated it first: use theirs.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Tokens::load_or_create(None, data_dir),
                    Err(e) => {
                        Err(e).with_context(|| format!("while writing a new signing secret to {}", path.display()))
                    }
                }
            }
            Err(e) => Err(e).with_context(|| format!("while reading {}", path.display())),
        }
    }

    pub fn issue(&self, board: &BoardId, person: Option<PersonId>, grant: Grant, now: UnixMillis) -> (String, u64) {
        let iat = now.0 / 1000;
        let claims = Claims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: board.0.clone(),
            person,
            grant,
            iat,
            exp: iat + self.ttl_secs,
        };
        // HMAC signing of a serialisable struct cannot fail.
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing of plain claims never fails");
        (token, claims.exp)
    }

    /// Checks signature, algorithm, expiry, issuer and audience, and that the token is for `board`.
    pub fn verify(&self, token: &str, board: &BoardId) -> Result<Claims, TokenRefused> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| TokenRefused(format!("{:?}", e.kind())))?;
        let claims = data.claims;
        if claims.sub != board.0 {
            return Err(TokenRefused("token is for another board".into()));
        }
        if claims.person.is_none() != (claims.grant == Grant::Projector) {
            return Err(TokenRefused("person and grant disagree".into()));
        }
        Ok(claims)
    }
}

/// A fresh random link key: 128 bits, hex.
pub fn new_link_key() -> anyhow::Result<LinkKey> {
    Ok(LinkKey(hex::encode(random_bytes::<16>()?)))
}

/// What is stored instead of a link key.
pub fn key_hash(key: &LinkKey) -> String {
    hex::encode(Sha256::digest(key.0.as_bytes()))
}

pub fn random_bytes<const N: usize>() -> anyhow::Result<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("the system random source failed: {e}"))?;
    Ok(bytes)
}

/// A new random board id: 128 bits, hex.
pub fn new_board_id() -> anyhow::Result<BoardId> {
    Ok(BoardId(hex::encode(random_bytes::<16>()?)))
}

/// Board ids are 32 lowercase hex digits; anything else never reaches the store (or a path).
pub fn is_board_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Writes a file readable only by this user, whole or not at all: it is written under a
/// temporary name and then linked into place, which fails with `AlreadyExists` if another process
/// (a node sharing the directory) got there first. Readers never see it half-written.
fn publish_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let nonce = random_bytes::<8>().map_err(std::io::Error::other)?;
    let tmp = path.with_extension(format!("tmp.{}", hex::encode(nonce)));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options.open(&tmp).and_then(|mut file| {
        file.write_all(contents)?;
        file.sync_all()
    });
    let linked = written.and_then(|()| std::fs::hard_link(&tmp, path));
    let _ = std::fs::remove_file(&tmp);
    linked
}

#[cfg(test)]
mod tests {
    use super::*;

    fn board() -> BoardId {
        BoardId("0123456789abcdef0123456789abcdef".into())
    }

    #[test]
    fn a_token_round_trips_for_its_board_only() {
        let tokens = Tokens::new(&[7; 32]);
        let (token, _) = tokens.issue(&board(), Some(PersonId(3)), Grant::Participant, crate::clock::now());
        let claims = tokens.verify(&token, &board()).unwrap();
        assert_eq!((claims.person, claims.grant), (Some(PersonId(3)), Grant::Participant));
        assert!(tokens.verify(&token, &BoardId("f".repeat(32))).is_err());
        assert!(Tokens::new(&[8; 32]).verify(&token, &board()).is_err(), "another secret must not verify");
    }

    #[test]
    fn expired_tokens_are_refused() {
        let tokens = Tokens::new(&[7; 32]);
        let long_ago = UnixMillis(crate::clock::now().0 - (TOKEN_TTL_SECS + 120) * 1000);
        let (token, _) = tokens.issue(&board(), Some(PersonId(3)), Grant::Participant, long_ago);
        assert!(tokens.verify(&token, &board()).is_err());
    }

    #[test]
    fn nodes_sharing_a_data_directory_generate_one_secret_between_them() {
        let dir = tempfile::tempdir().unwrap();
        let nodes: Vec<Tokens> = std::thread::scope(|scope| {
            let starts: Vec<_> =
                (0..8).map(|_| scope.spawn(|| Tokens::load_or_create(None, dir.path()).unwrap())).collect();
            starts.into_iter().map(|s| s.join().unwrap()).collect()
        });
        let (token, _) = nodes[0].issue(&board(), Some(PersonId(1)), Grant::Participant, crate::clock::now());
        for node in &nodes {
            assert!(node.verify(&token, &board()).is_ok(), "every node verifies every other's tokens");
        }
        let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(files, vec!["secret.key"], "no temporary files are left behind");
    }

    #[test]
    fn board_ids_are_hex_and_nothing_else() {
        assert!(is_board_id(&new_board_id().unwrap().0));
        assert!(!is_board_id("../../etc/passwd"));
    }
}
