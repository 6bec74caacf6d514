//! Session tokens: the name of a long-poll session that its client sends with every
//! request. A token is a `Phoenix.Token` signed with the endpoint's secret key base,
//! so no client can make one that names a session it was not given.
//!
//! The token names the node that holds the session (in a cluster, a request for it may
//! arrive at any node, which sends it on), the reactor there, the session's serial on
//! that reactor and the mount it was opened on, and carries the node's instance id:
//! serials start over when the process restarts, and a token from before a restart with
//! the same secret must not name a new session.

use crate::token::{MaxAge, TokenKey};
use serde_json::{Value, json};
use std::fmt::Write;
use std::io;

/// The salt of session tokens: they are good for nothing else.
const SALT: &str = "phx-channels long-poll session";
/// The first element of a token's data, for the format to change later.
const FORMAT: &str = "lp2";

/// What a session token names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SessionId {
    /// The index of the reactor that holds the session.
    pub(crate) reactor: usize,
    /// The session's serial on that reactor.
    pub(crate) serial: u64,
    /// The index of the mount the session was opened on.
    pub(crate) mount: usize,
}

/// Where the session a valid token names lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum SessionAt {
    /// In this process.
    Here(SessionId),
    /// On another node of the cluster, by name.
    Node(String),
}

/// Signs and verifies the endpoint's session tokens.
pub(crate) struct SessionTokens {
    key: TokenKey,
    /// This node's name in a cluster.
    node: String,
    /// Random, drawn at start: tokens of another process (or of this program before a
    /// restart) do not verify as this one's.
    instance: String,
}

impl SessionTokens {
    /// The tokens of node `node`, with `secret_key_base`; derives the key (about a
    /// millisecond) and draws the instance id.
    pub(crate) fn new(secret_key_base: &str, node: &str) -> io::Result<SessionTokens> {
        let mut random = [0u8; 8];
        getrandom::fill(&mut random).map_err(io::Error::other)?;
        let instance = random.iter().fold(String::new(), |mut hex, b| {
            let _ = write!(hex, "{b:02x}");
            hex
        });
        Ok(SessionTokens { key: TokenKey::new(secret_key_base, SALT), node: node.to_owned(), instance })
    }

    /// The token for session `id`, good for `max_age`.
    pub(crate) fn sign(&self, id: SessionId, max_age: MaxAge) -> String {
        let data = json!([FORMAT, self.node, self.instance, id.reactor, id.serial, id.mount]);
        self.key.signer().max_age(max_age).sign(&data)
    }

    /// Where the session `token` names lives, if the token is valid (signed with this
    /// secret, unexpired by `max_age`, or by the age it was signed with when `None`) and
    /// names no earlier run of this node.
    pub(crate) fn verify(&self, token: &str, max_age: Option<MaxAge>) -> Option<SessionAt> {
        let data = self.key.verify(token, max_age).ok()?;
        let Value::Array(parts) = data else { return None };
        let [format, node, instance, reactor, serial, mount] = parts.as_slice() else { return None };
        let node = node.as_str()?;
        if format.as_str() != Some(FORMAT) {
            return None;
        }
        if node != self.node {
            return Some(SessionAt::Node(node.to_owned()));
        }
        if instance.as_str() != Some(self.instance.as_str()) {
            return None;
        }
        Some(SessionAt::Here(SessionId {
            reactor: usize::try_from(reactor.as_u64()?).ok()?,
            serial: serial.as_u64()?,
            mount: usize::try_from(mount.as_u64()?).ok()?,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: SessionId = SessionId { reactor: 1, serial: 42, mount: 3 };

    #[test]
    fn a_token_names_its_session() {
        let tokens = SessionTokens::new("secret", "a").unwrap();
        let token = tokens.sign(ID, MaxAge::Seconds(60));
        assert_eq!(tokens.verify(&token, Some(MaxAge::Seconds(60))), Some(SessionAt::Here(ID)));
    }

    #[test]
    fn a_token_of_another_node_with_the_same_secret_names_that_node() {
        let (a, b) = (SessionTokens::new("secret", "a").unwrap(), SessionTokens::new("secret", "b").unwrap());
        let token = a.sign(ID, MaxAge::Seconds(60));
        assert_eq!(b.verify(&token, Some(MaxAge::Seconds(60))), Some(SessionAt::Node("a".into())));
        let other_secret = SessionTokens::new("other secret", "b").unwrap();
        assert_eq!(other_secret.verify(&token, Some(MaxAge::Seconds(60))), None);
    }

    #[test]
    fn another_process_or_secret_or_a_tampered_token_names_nothing() {
        let tokens = SessionTokens::new("secret", "a").unwrap();
        let token = tokens.sign(ID, MaxAge::Seconds(60));
        let restarted = SessionTokens::new("secret", "a").unwrap();
        assert_eq!(restarted.verify(&token, Some(MaxAge::Seconds(60))), None, "same secret and node, another instance");
        let other = SessionTokens {
            key: TokenKey::new("other secret", SALT),
            node: "a".into(),
            instance: tokens.instance.clone(),
        };
        assert_eq!(other.verify(&token, Some(MaxAge::Seconds(60))), None);
        let mut tampered = token.clone();
        tampered.insert(10, 'x');
        assert_eq!(tokens.verify(&tampered, Some(MaxAge::Seconds(60))), None);
        assert_eq!(tokens.verify("", Some(MaxAge::Seconds(60))), None);
    }

    #[test]
    fn an_expired_token_names_nothing() {
        let tokens = SessionTokens::new("secret", "a").unwrap();
        let token = tokens.sign(ID, MaxAge::Seconds(60));
        assert_eq!(tokens.verify(&token, Some(MaxAge::Seconds(0))), None);
    }
}
