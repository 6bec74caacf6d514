//! Signed tokens, compatible with Phoenix's `Phoenix.Token` (`sign/4` and `verify/4`).
//!
//! A Phoenix app hands its clients a token, typically with the id of the user, and the
//! client sends it back as a connect param; the socket's `connect` verifies it. A token
//! signed by a Phoenix app verifies here when both sides share the secret key base and
//! the salt, and a token signed here verifies in the Phoenix app.
//!
//! ```
//! use phx_channels::token::{MaxAge, TokenError, TokenKey};
//! use serde_json::json;
//!
//! // The Phoenix app's `secret_key_base`, and a salt that names the token's purpose.
//! let secret_key_base = "hUUWRn8Tn2LNYC7mbtTs9xZ1vfMHjXxOk1dyYzfw2v6hC0lIzE1ZT3bbzI4lkqHu";
//! let key = TokenKey::new(secret_key_base, "user socket");
//!
//! let token = key.sign(&json!(42));
//! assert_eq!(key.verify(&token, Some(MaxAge::Seconds(86_400))), Ok(json!(42)));
//!
//! // A token for another purpose does not verify.
//! let other = TokenKey::new(secret_key_base, "password reset");
//! assert_eq!(other.verify(&token, None), Err(TokenError::Invalid));
//! ```
//!
//! # The format
//!
//! The same as Plug.Crypto's, which `Phoenix.Token` uses:
//!
//! - The key is PBKDF2 with HMAC-SHA256 of the secret key base, salted with the salt,
//!   1000 iterations, 32 bytes. [`TokenKey`] derives it once.
//! - The message is the Erlang external term format of the tuple
//!   `{data, signed_at_in_milliseconds, max_age_in_seconds}`; `max_age` may be the atom
//!   `infinity`.
//! - The token is `SFMyNTY.<message>.<signature>`: `SFMyNTY` is `HS256` in base64, the
//!   message and the signature are base64 with the URL alphabet and no padding, and the
//!   signature is HMAC-SHA256 with the key of the text before the second dot.
//!
//! Verifying also accepts what Plug.Crypto accepts besides: tokens with the HS384 and
//! HS512 headers, and the two older message forms, `{data, signed_at}` and the map
//! `%{data: data, signed: signed_at}`, which count as signed with a max age of one day.
//!
//! # Data
//!
//! The data is JSON on this side. Signing writes it as a Phoenix app with string keys
//! holds it: strings are binaries, `null` is `nil`, object keys are binaries. Verifying
//! takes strings, integers, floats, booleans, `nil`, lists and maps; map keys that are
//! atoms become strings, as do atoms other than `nil`, `true` and `false` (as Phoenix's
//! JSON encoder writes them). Integers of any size come back exact and sign back as the
//! same Erlang integers, with the default feature `exact-numbers`; without it an
//! integer past 64 bits is [`TokenError::Unsupported`], saying so. Data with no JSON
//! form (a tuple, a pid, a binary that is not UTF-8, lists and maps nested more than
//! 128 deep) is [`TokenError::Unsupported`].
//!
//! ```
//! # #[cfg(feature = "exact-numbers")] {
//! use phx_channels::token::{MaxAge, TokenKey};
//!
//! let key = TokenKey::new("secret key base", "user socket");
//! let huge: serde_json::Value = serde_json::from_str("123456789012345678901234567890")?;
//! let token = key.sign(&huge);
//! assert_eq!(key.verify(&token, Some(MaxAge::Seconds(60)))?.to_string(), "123456789012345678901234567890");
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod bignum;
mod etf;

use crate::base64url;
use etf::{DecodeError, Term};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::{Sha256, Sha384, Sha512};
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// The header of a token signed with HMAC-SHA256, the only kind Phoenix signs.
const HS256: &str = "SFMyNTY";
/// The headers of HMAC-SHA384 and HMAC-SHA512 tokens, which verify too.
const HS384: &str = "SFMzODQ";
const HS512: &str = "SFM1MTI";

/// PBKDF2 iterations and key length, Plug.Crypto's defaults.
const KEY_ITERATIONS: u32 = 1000;
const KEY_LENGTH: usize = 32;

/// How long a token stays valid after it was signed.
///
/// ```
/// use phx_channels::token::MaxAge;
///
/// assert_eq!(MaxAge::default(), MaxAge::Seconds(86_400));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MaxAge {
    /// This many seconds. Zero means the token is already expired.
    Seconds(u64),
    /// Forever (Phoenix's `:infinity`).
    Infinity,
}

impl Default for MaxAge {
    /// One day, Phoenix's default.
    fn default() -> Self {
        MaxAge::Seconds(86_400)
    }
}

/// Why a token did not verify. The first three are Phoenix's `:missing`, `:invalid` and
/// `:expired`.
///
/// ```
/// use phx_channels::token::{self, TokenError};
///
/// let err = token::verify("secret key base", "salt", "", None).unwrap_err();
/// assert_eq!(err, TokenError::Missing);
/// assert_eq!(err.to_string(), "missing token");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenError {
    /// The token is empty. Phoenix says `:missing` for a `nil` token (and `:invalid` for
    /// an empty string); here both are missing.
    Missing,
    /// Not a token signed with this key: malformed, tampered with, signed with another
    /// secret key base or another salt. Also a token signed in the future (by a clock
    /// ahead of this one), as in Phoenix.
    Invalid,
    /// The token is older than its max age.
    Expired,
    /// The token is genuine and current, but its data has no JSON form. Says what: a
    /// tuple, a pid, a binary that is not UTF-8, an integer beyond 64 bits without the
    /// `exact-numbers` feature, ...
    Unsupported(&'static str),
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenError::Missing => f.write_str("missing token"),
            TokenError::Invalid => f.write_str("invalid token"),
            TokenError::Expired => f.write_str("expired token"),
            TokenError::Unsupported(what) => write!(f, "the token's data has no JSON form: it holds {what}"),
        }
    }
}

impl std::error::Error for TokenError {}

/// The key for one secret key base and one salt, derived once (the derivation takes
/// 1000 rounds of HMAC, about a millisecond). Keep it and share it: it is cheap to clone
/// and `Send + Sync`.
///
/// ```
/// use phx_channels::token::{MaxAge, TokenKey};
/// use serde_json::json;
///
/// let key = TokenKey::new("secret key base", "user socket");
/// let token = key.sign(&json!({"user_id": 7}));
/// assert!(token.starts_with("SFMyNTY."));
/// assert_eq!(key.verify(&token, Some(MaxAge::Seconds(60)))?, json!({"user_id": 7}));
/// # Ok::<(), phx_channels::token::TokenError>(())
/// ```
#[derive(Clone)]
pub struct TokenKey {
    key: [u8; KEY_LENGTH],
}

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

impl TokenKey {
    /// Derives the key for `secret_key_base` (the Phoenix app's `secret_key_base`, used
    /// as it is, not decoded) and `salt` (the same string the Phoenix app passes to
    /// `Phoenix.Token.sign/4` and `verify/4`).
    pub fn new(secret_key_base: impl AsRef<[u8]>, salt: impl AsRef<[u8]>) -> TokenKey {
        let mut key = [0; KEY_LENGTH];
        pbkdf2::pbkdf2_hmac::<Sha256>(secret_key_base.as_ref(), salt.as_ref(), KEY_ITERATIONS, &mut key);
        TokenKey { key }
    }

    /// Signs `data` now, with the default max age of one day: `Phoenix.Token.sign/3`.
    /// Panics as [`Signer::sign`] does.
    pub fn sign(&self, data: &Value) -> String {
        self.signer().sign(data)
    }

    /// A signer with options: the signing time and the max age written in the token.
    ///
    /// ```
    /// use phx_channels::token::{MaxAge, TokenKey};
    /// use serde_json::json;
    /// use std::time::{Duration, UNIX_EPOCH};
    ///
    /// let key = TokenKey::new("secret key base", "user socket");
    /// let token = key
    ///     .signer()
    ///     .signed_at(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
    ///     .max_age(MaxAge::Infinity)
    ///     .sign(&json!("user:1"));
    /// // Signed long ago, but it never expires.
    /// assert_eq!(key.verify(&token, None), Ok(json!("user:1")));
    /// ```
    pub fn signer(&self) -> Signer<'_> {
        Signer { key: self, signed_at: None, max_age: MaxAge::default() }
    }

    /// Verifies `token` and returns its data: `Phoenix.Token.verify/4`.
    ///
    /// `max_age` is the oldest the token may be; `None` takes the max age written in
    /// the token when it was signed (Phoenix's default too, but Phoenix recommends
    /// always giving one). An empty token is [`TokenError::Missing`].
    ///
    /// ```
    /// use phx_channels::token::{MaxAge, TokenError, TokenKey};
    /// use serde_json::json;
    /// use std::time::{Duration, SystemTime};
    ///
    /// let key = TokenKey::new("secret key base", "user socket");
    /// let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
    /// let token = key.signer().signed_at(an_hour_ago).sign(&json!(1));
    ///
    /// assert_eq!(key.verify(&token, Some(MaxAge::Seconds(7200))), Ok(json!(1)));
    /// assert_eq!(key.verify(&token, Some(MaxAge::Seconds(60))), Err(TokenError::Expired));
    /// assert_eq!(key.verify(&token, None), Ok(json!(1)), "signed with a max age of a day");
    /// ```
    pub fn verify(&self, token: &str, max_age: Option<MaxAge>) -> Result<Value, TokenError> {
        self.verify_at(token, max_age, now_ms())
    }

    fn verify_at(&self, token: &str, max_age: Option<MaxAge>, now_ms: i128) -> Result<Value, TokenError> {
        if token.is_empty() {
            return Err(TokenError::Missing);
        }
        let message = self.open(token).ok_or(TokenError::Invalid)?;
        let (data, signed_ms, signed_max_age) = match etf::decode(&message) {
            Ok(term) => envelope(term).ok_or(TokenError::Invalid)?,
            Err(DecodeError::Malformed) => return Err(TokenError::Invalid),
            Err(DecodeError::Unsupported(what)) => return Err(TokenError::Unsupported(what)),
        };
        let limit = match max_age {
            Some(MaxAge::Seconds(s)) => Limit::Millis { positive: s > 0, ms: i128::from(s) * 1000 },
            Some(MaxAge::Infinity) => Limit::Infinity,
            None => signed_max_age,
        };
        limit.check(signed_ms, now_ms)?;
        etf::to_json(data).map_err(TokenError::Unsupported)
    }

    /// The message inside `token` if its signature is this key's.
    fn open(&self, token: &str) -> Option<Vec<u8>> {
        let mut parts = token.split('.');
        let (header, payload, signature) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let signing_input = &token[..header.len() + 1 + payload.len()];
        let message = base64url::decode(payload)?;
        let signature = base64url::decode(signature)?;
        let genuine = match header {
            HS256 => self.mac_matches::<Hmac<Sha256>>(signing_input, &signature),
            HS384 => self.mac_matches::<Hmac<Sha384>>(signing_input, &signature),
            HS512 => self.mac_matches::<Hmac<Sha512>>(signing_input, &signature),
            _ => false,
        };
        genuine.then_some(message)
    }

    /// Compares in constant time.
    fn mac_matches<M: Mac + KeyInit>(&self, signing_input: &str, signature: &[u8]) -> bool {
        self.mac::<M>(signing_input).verify_slice(signature).is_ok()
    }

    fn mac<M: Mac + KeyInit>(&self, signing_input: &str) -> M {
        let mut mac = <M as KeyInit>::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(signing_input.as_bytes());
        mac
    }

    /// The HS256 token for an encoded message.
    fn seal(&self, message: &[u8]) -> String {
        let mut token = String::from(HS256);
        token.push('.');
        base64url::encode_into(message, &mut token);
        let signature = self.mac::<Hmac<Sha256>>(&token).finalize().into_bytes();
        token.push('.');
        base64url::encode_into(&signature, &mut token);
        token
    }
}

/// Signs with options; from [`TokenKey::signer`]. Without options, it signs as
/// [`TokenKey::sign`] does.
#[derive(Clone, Debug)]
#[must_use = "a signer does nothing until `sign` is called"]
pub struct Signer<'k> {
    key: &'k TokenKey,
    signed_at: Option<SystemTime>,
    max_age: MaxAge,
}

impl Signer<'_> {
    /// The signing time written in the token, instead of now (Phoenix's `:signed_at`,
    /// kept to the millisecond).
    pub fn signed_at(mut self, at: SystemTime) -> Self {
        self.signed_at = Some(at);
        self
    }

    /// The max age written in the token, which [`TokenKey::verify`] applies when it is
    /// given none (Phoenix's `:max_age` option of `sign/4`). One day unless set.
    pub fn max_age(mut self, max_age: MaxAge) -> Self {
        self.max_age = max_age;
        self
    }

    /// The token for `data`.
    ///
    /// # Panics
    ///
    /// If a string in `data` is 4 GiB or longer, which the term format cannot hold.
    pub fn sign(&self, data: &Value) -> String {
        let signed_ms = self.signed_at.map_or_else(now_ms, unix_ms);
        let mut message = Vec::new();
        etf::version(&mut message);
        etf::tuple(&mut message, 3);
        etf::value(&mut message, data);
        etf::integer(&mut message, signed_ms);
        match self.max_age {
            MaxAge::Seconds(s) => etf::integer(&mut message, s.into()),
            MaxAge::Infinity => etf::atom(&mut message, "infinity"),
        }
        self.key.seal(&message)
    }
}

/// Signs `data` now, with the default max age of one day: `Phoenix.Token.sign/3` with
/// the app's secret key base. Derives the key on every call; keep a [`TokenKey`] to
/// sign or verify often. Panics as [`Signer::sign`] does.
///
/// ```
/// use phx_channels::token;
/// use serde_json::json;
///
/// let token = token::sign("secret key base", "user socket", &json!(42));
/// assert_eq!(token::verify("secret key base", "user socket", &token, None), Ok(json!(42)));
/// ```
pub fn sign(secret_key_base: impl AsRef<[u8]>, salt: impl AsRef<[u8]>, data: &Value) -> String {
    TokenKey::new(secret_key_base, salt).sign(data)
}

/// Verifies `token` and returns its data: `Phoenix.Token.verify/4` with the app's
/// secret key base. `max_age` as in [`TokenKey::verify`]. Derives the key on every
/// call; keep a [`TokenKey`] to sign or verify often.
///
/// ```
/// use phx_channels::token::{self, MaxAge, TokenError};
///
/// let result = token::verify("secret key base", "user socket", "SFMyNTY.bm90.aXQ", Some(MaxAge::Seconds(60)));
/// assert_eq!(result, Err(TokenError::Invalid));
/// ```
pub fn verify(
    secret_key_base: impl AsRef<[u8]>,
    salt: impl AsRef<[u8]>,
    token: &str,
    max_age: Option<MaxAge>,
) -> Result<Value, TokenError> {
    TokenKey::new(secret_key_base, salt).verify(token, max_age)
}

/// A max age in the form the expiry rule needs it.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Limit {
    Infinity,
    /// Whether the max age in seconds is above zero, and the max age in whole
    /// milliseconds (a fractional max age from Phoenix, `1.5`, is 1500).
    Millis {
        positive: bool,
        ms: i128,
    },
}

impl Limit {
    /// Plug.Crypto's rule: no limit passes; a max age of zero or less has expired; a
    /// token signed after now is invalid; past its max age, expired.
    fn check(self, signed_ms: i128, now_ms: i128) -> Result<(), TokenError> {
        let Limit::Millis { positive, ms } = self else { return Ok(()) };
        if !positive {
            Err(TokenError::Expired)
        } else if signed_ms > now_ms {
            Err(TokenError::Invalid)
        } else if signed_ms.saturating_add(ms) < now_ms {
            Err(TokenError::Expired)
        } else {
            Ok(())
        }
    }

    /// The max age term a token carries.
    fn from_term(term: &Term) -> Option<Limit> {
        match term {
            Term::Atom(name) if name == "infinity" => Some(Limit::Infinity),
            Term::Int(s) => Some(Limit::Millis { positive: *s > 0, ms: s * 1000 }),
            // `as` truncates toward zero, as Erlang's `trunc` does.
            Term::Float(s) => Some(Limit::Millis { positive: *s > 0.0, ms: (s * 1000.0) as i128 }),
            _ => None,
        }
    }
}

/// The data, signing time and max age of a message, in any of its three forms.
fn envelope(term: Term) -> Option<(Term, i128, Limit)> {
    let one_day = Limit::Millis { positive: true, ms: 86_400_000 };
    match term {
        Term::Tuple(items) => {
            let mut items = items.into_iter();
            let (data, signed, max_age) = (items.next()?, items.next()?, items.next());
            let Term::Int(signed) = signed else { return None };
            let limit = match &max_age {
                Some(term) => Limit::from_term(term)?,
                None => one_day,
            };
            (items.next().is_none()).then_some((data, signed, limit))
        }
        Term::Map(pairs) => {
            let (mut data, mut signed) = (None, None);
            for (key, item) in pairs {
                match (key, item) {
                    (Term::Atom(key), item) if key == "data" => data = Some(item),
                    (Term::Atom(key), Term::Int(at)) if key == "signed" => signed = Some(at),
                    _ => {}
                }
            }
            Some((data?, signed?, one_day))
        }
        _ => None,
    }
}

fn now_ms() -> i128 {
    unix_ms(SystemTime::now())
}

/// Milliseconds since the Unix epoch, truncated toward zero.
fn unix_ms(at: SystemTime) -> i128 {
    match at.duration_since(UNIX_EPOCH) {
        Ok(after) => after.as_millis() as i128,
        Err(before) => -(before.duration().as_millis() as i128),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    const SECRET: &str = "d1YyTzVmZ2VuZXJhdGVkX3NlY3JldF9rZXlfYmFzZV9vZl82NF9ieXRlcw_zz";
    const SIGNED_MS: i128 = 1_700_000_000_000;

    fn key() -> TokenKey {
        TokenKey::new(SECRET, "user socket")
    }

    fn at(ms: i128) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(ms as u64)
    }

    fn signed(data: &Value, max_age: MaxAge) -> String {
        key().signer().signed_at(at(SIGNED_MS)).max_age(max_age).sign(data)
    }

    /// A token with the same key over any message bytes.
    fn token_of(message: &[u8]) -> String {
        key().seal(message)
    }

    #[test]
    fn key_is_pbkdf2_hmac_sha256_of_the_secret_and_salt() {
        // Plug.Crypto's parameters, computed by Erlang's
        // crypto:pbkdf2_hmac(sha256, <<"secret">>, <<"salt">>, 1000, 32).
        let key = TokenKey::new("secret", "salt");
        let hex: String = key.key.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "a8df899f3c4f204d967e0ad63c092987c10055ebb017b3d9d28add218d4f7aad");
    }

    #[test]
    fn signs_the_tuple_phoenix_signs() {
        let token = signed(&json!(1), MaxAge::Seconds(86_400));
        let payload = token.split('.').nth(1).unwrap();
        // {1, 1700000000000, 86400}
        let expected = [131, 104, 3, 97, 1, 110, 6, 0, 0, 104, 229, 207, 139, 1, 98, 0, 1, 81, 128];
        assert_eq!(base64url::decode(payload).unwrap(), expected);
    }

    #[test]
    fn data_of_every_kind_round_trips() {
        let data = json!({
            "string": "héllo", "int": -3, "big": 5_000_000_000u64, "float": 2.5, "true": true,
            "false": false, "nil": null, "bytes": [1, 2, 255], "list": [1, "two", [3.5], {}],
            "map": {"nested": {"deeper": []}}
        });
        let token = signed(&data, MaxAge::Infinity);
        assert_eq!(key().verify_at(&token, None, SIGNED_MS), Ok(data));
    }

    #[test]
    fn expiry_follows_plug_crypto() {
        let token = signed(&json!(1), MaxAge::Seconds(60));
        let verify = |max_age, now| key().verify_at(&token, max_age, now);
        // The max age written in the token, to the millisecond, both ends included.
        assert_eq!(verify(None, SIGNED_MS), Ok(json!(1)));
        assert_eq!(verify(None, SIGNED_MS + 60_000), Ok(json!(1)));
        assert_eq!(verify(None, SIGNED_MS + 60_001), Err(TokenError::Expired));
        // A max age given to verify wins over the token's.
        assert_eq!(verify(Some(MaxAge::Seconds(120)), SIGNED_MS + 60_001), Ok(json!(1)));
        assert_eq!(verify(Some(MaxAge::Seconds(1)), SIGNED_MS + 1_001), Err(TokenError::Expired));
        assert_eq!(verify(Some(MaxAge::Infinity), SIGNED_MS + 10_000_000_000), Ok(json!(1)));
        // Zero has expired at once; a token from the future is invalid.
        assert_eq!(verify(Some(MaxAge::Seconds(0)), SIGNED_MS), Err(TokenError::Expired));
        assert_eq!(verify(None, SIGNED_MS - 1), Err(TokenError::Invalid));
        assert_eq!(verify(Some(MaxAge::Infinity), SIGNED_MS - 1), Ok(json!(1)));
        // Signed with no limit.
        let forever = signed(&json!(1), MaxAge::Infinity);
        assert_eq!(key().verify_at(&forever, None, SIGNED_MS + 10_000_000_000), Ok(json!(1)));
    }

    #[test]
    fn default_max_age_is_a_day() {
        let token = key().signer().signed_at(at(SIGNED_MS)).sign(&json!(1));
        assert_eq!(key().verify_at(&token, None, SIGNED_MS + 86_400_000), Ok(json!(1)));
        assert_eq!(key().verify_at(&token, None, SIGNED_MS + 86_400_001), Err(TokenError::Expired));
    }

    #[test]
    fn the_older_message_forms_verify() {
        // {data, signed} and %{data: data, signed: signed}: a day's max age.
        let two_tuple = [131, 104, 2, 97, 7, 110, 6, 0, 0, 104, 229, 207, 139, 1];
        let map = [
            131, 116, 0, 0, 0, 2, 119, 4, b'd', b'a', b't', b'a', 97, 7, 119, 6, b's', b'i', b'g', b'n', b'e', b'd',
            110, 6, 0, 0, 104, 229, 207, 139, 1,
        ];
        for message in [&two_tuple[..], &map[..]] {
            let token = token_of(message);
            assert_eq!(key().verify_at(&token, None, SIGNED_MS + 86_400_000), Ok(json!(7)));
            assert_eq!(key().verify_at(&token, None, SIGNED_MS + 86_400_001), Err(TokenError::Expired));
        }
        // A fractional max age counts to the millisecond.
        let float_age = [131, 104, 3, 97, 7, 110, 6, 0, 0, 104, 229, 207, 139, 1, 70, 63, 248, 0, 0, 0, 0, 0, 0];
        assert_eq!(key().verify_at(&token_of(&float_age), None, SIGNED_MS + 1_500), Ok(json!(7)));
        assert_eq!(key().verify_at(&token_of(&float_age), None, SIGNED_MS + 1_501), Err(TokenError::Expired));
    }

    #[test]
    fn tampered_tokens_are_invalid() {
        let good = signed(&json!({"user_id": 1}), MaxAge::Infinity);
        assert!(key().verify_at(&good, None, SIGNED_MS).is_ok());
        // Every single-character change anywhere in the token.
        for i in 0..good.len() {
            for replacement in ['A', 'x', '-', '.', '='] {
                let mut bad = good.clone().into_bytes();
                if bad[i] == replacement as u8 {
                    continue;
                }
                bad[i] = replacement as u8;
                let bad = String::from_utf8(bad).unwrap();
                assert_eq!(key().verify_at(&bad, None, SIGNED_MS), Err(TokenError::Invalid), "{bad}");
            }
        }
        let (header, rest) = good.split_once('.').unwrap();
        let (payload, signature) = rest.split_once('.').unwrap();
        let invalid = [
            format!("{header}.{payload}"),
            format!("{header}.{payload}.{signature}."),
            format!("{header}.{payload}.{signature}.{signature}"),
            format!("{header}.{payload}.{}", &signature[..signature.len() - 1]),
            format!("{header}.{payload}."),
            format!("SFMzODQ.{payload}.{signature}"),
            format!("HS256.{payload}.{signature}"),
            ".".into(),
            "..".into(),
            "not a token".into(),
        ];
        for bad in invalid {
            assert_eq!(key().verify_at(&bad, None, SIGNED_MS), Err(TokenError::Invalid), "{bad}");
        }
    }

    #[test]
    fn wrong_salt_or_secret_is_invalid() {
        let token = signed(&json!(1), MaxAge::Infinity);
        assert_eq!(TokenKey::new(SECRET, "user sockets").verify(&token, None), Err(TokenError::Invalid));
        assert_eq!(TokenKey::new(&SECRET[1..], "user socket").verify(&token, None), Err(TokenError::Invalid));
        assert_eq!(TokenKey::new(SECRET, "user socket").verify(&token, None), Ok(json!(1)));
    }

    #[test]
    fn empty_token_is_missing() {
        assert_eq!(key().verify("", None), Err(TokenError::Missing));
        assert_eq!(key().verify(" ", None), Err(TokenError::Invalid));
    }

    #[test]
    fn genuine_tokens_with_other_data_are_unsupported_or_invalid() {
        // {{1}, signed, infinity}: a tuple has no JSON form.
        let tuple_data = [131, 104, 3, 104, 1, 97, 1, 110, 6, 0, 0, 104, 229, 207, 139, 1, 119, 8];
        let mut tuple_data = tuple_data.to_vec();
        tuple_data.extend_from_slice(b"infinity");
        assert_eq!(key().verify_at(&token_of(&tuple_data), None, SIGNED_MS), Err(TokenError::Unsupported("a tuple")));
        // An expired token says so before its data is looked at.
        let expired = [131, 104, 3, 104, 1, 97, 1, 110, 6, 0, 0, 104, 229, 207, 139, 1, 97, 0];
        assert_eq!(key().verify_at(&token_of(&expired), None, SIGNED_MS), Err(TokenError::Expired));
        // Messages that are not one of the three forms, or not terms at all.
        let not_envelopes: [&[u8]; 6] = [
            &[131, 97, 1],
            &[131, 104, 1, 97, 1],
            &[131, 104, 2, 97, 1, 119, 1, b'x'],
            &[131, 104, 3, 97, 1, 97, 1, 119, 1, b'x'],
            &[131, 104, 4, 97, 1, 97, 1, 97, 1, 97, 1],
            &[1, 2, 3],
        ];
        for message in not_envelopes {
            assert_eq!(key().verify_at(&token_of(message), None, SIGNED_MS), Err(TokenError::Invalid), "{message:?}");
        }
    }

    #[test]
    fn data_may_nest_128_deep() {
        let nested = |levels: usize| (1..levels).fold(json!([]), |inner, _| json!([inner]));
        let token = signed(&nested(128), MaxAge::Infinity);
        assert_eq!(key().verify_at(&token, None, SIGNED_MS), Ok(nested(128)));
        let token = signed(&nested(129), MaxAge::Infinity);
        assert_eq!(
            key().verify_at(&token, None, SIGNED_MS),
            Err(TokenError::Unsupported("terms nested more than 128 deep"))
        );
    }

    #[test]
    fn signing_times_before_the_epoch_are_negative() {
        assert_eq!(unix_ms(UNIX_EPOCH - Duration::from_micros(1500)), -1);
        assert_eq!(unix_ms(UNIX_EPOCH + Duration::from_micros(1500)), 1);
    }

    #[test]
    fn errors_display_and_keys_hide() {
        assert_eq!(TokenError::Invalid.to_string(), "invalid token");
        assert_eq!(TokenError::Expired.to_string(), "expired token");
        assert_eq!(
            TokenError::Unsupported("a tuple").to_string(),
            "the token's data has no JSON form: it holds a tuple"
        );
        assert_eq!(format!("{:?}", key()), "TokenKey(..)");
    }
}
