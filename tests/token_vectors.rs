//! `phx_channels::token` against tokens Phoenix minted: `tests/fixtures/phoenix-token-vectors.json`
//! holds 35 tokens that `Phoenix.Token.sign/4` (Phoenix 1.7.24, plug_crypto 2.1.1, OTP 25)
//! signed with a known secret, each with its data (as JSON) and the Erlang term it signed.
//! Every one verifies to its exact data, integers beyond 64 bits included, and signing the
//! data back gives the same term, byte for byte, where OTP 25 and this crate write terms
//! alike (see [`ours_as_otp_25_writes_it`]).

use phx_channels::token::{MaxAge, TokenKey};
use serde_json::Value;
use std::time::{Duration, UNIX_EPOCH};

struct Vector {
    name: String,
    data: Value,
    token: String,
    etf: Vec<u8>,
}

struct Vectors {
    key: TokenKey,
    signed_at_ms: u64,
    max_age_s: u64,
    vectors: Vec<Vector>,
}

fn vectors() -> Vectors {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/phoenix-token-vectors.json");
    let file: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let text = |v: &Value, field: &str| v[field].as_str().unwrap().to_owned();
    let vectors = file["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| Vector {
            name: text(v, "name"),
            data: v["data"].clone(),
            token: text(v, "token"),
            etf: hex(&text(v, "etf_hex")),
        })
        .collect();
    Vectors {
        key: TokenKey::new(text(&file, "secret_key_base"), text(&file, "salt")),
        signed_at_ms: file["signed_at_ms"].as_u64().unwrap(),
        max_age_s: file["max_age_s"].as_u64().unwrap(),
        vectors,
    }
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
}

/// The term a token signed: its middle part, URL-safe base64 without padding.
fn message(token: &str) -> Vec<u8> {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let part = token.split('.').nth(1).unwrap();
    let (mut bits, mut count, mut out) = (0u32, 0, Vec::new());
    for c in part.bytes() {
        bits = bits << 6 | alphabet.iter().position(|&a| a == c).unwrap() as u32;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    out
}

/// Our term as OTP 25 writes it by default: atoms as `ATOM_EXT` (tag 100, two length
/// bytes) where this crate writes `SMALL_ATOM_UTF8_EXT` (tag 119), as OTP 26 does.
fn ours_as_otp_25_writes_it(term: &[u8]) -> Vec<u8> {
    let mut out = term.to_vec();
    for atom in [&b"nil"[..], b"true", b"false"] {
        let mut utf8 = vec![119, atom.len() as u8];
        utf8.extend_from_slice(atom);
        let mut latin1 = vec![100, 0, atom.len() as u8];
        latin1.extend_from_slice(atom);
        let mut replaced = Vec::new();
        let mut rest = &out[..];
        while let Some(at) = rest.windows(utf8.len()).position(|w| w == utf8) {
            replaced.extend_from_slice(&rest[..at]);
            replaced.extend_from_slice(&latin1);
            rest = &rest[at + utf8.len()..];
        }
        replaced.extend_from_slice(rest);
        out = replaced;
    }
    out
}

/// Whether two JSON values hold the same data: integers digit for digit, floats as the
/// same `f64` (the fixture writes floats as Elixir does, `1.0e300`; serde_json `1e300`).
fn same_data(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let is_float = |n: &serde_json::Number| n.to_string().contains(['.', 'e', 'E']);
            if is_float(x) || is_float(y) { x.as_f64() == y.as_f64() } else { x.to_string() == y.to_string() }
        }
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_data(x, y)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, x)| y.get(k).is_some_and(|y| same_data(x, y)))
        }
        _ => a == b,
    }
}

/// The vectors with integers beyond 64 bits.
const BIGNUMS: [&str; 2] = ["int_2_pow_64", "int_big_negative"];

#[test]
fn the_fixture_is_the_35_tokens_phoenix_minted() {
    let vectors = vectors();
    assert_eq!(vectors.vectors.len(), 35);
    for v in &vectors.vectors {
        assert_eq!(message(&v.token), v.etf, "{}: the token signs its term", v.name);
    }
}

#[test]
#[cfg(feature = "exact-numbers")]
fn every_token_phoenix_minted_verifies_to_its_exact_data() {
    let vectors = vectors();
    for v in &vectors.vectors {
        let data = vectors.key.verify(&v.token, Some(MaxAge::Infinity)).unwrap();
        assert!(same_data(&data, &v.data), "{}: {data} is not {}", v.name, v.data);
    }
    let big: Vec<String> = BIGNUMS
        .iter()
        .map(|name| {
            let v = vectors.vectors.iter().find(|v| v.name == *name).unwrap();
            vectors.key.verify(&v.token, Some(MaxAge::Infinity)).unwrap().to_string()
        })
        .collect();
    assert_eq!(big, ["18446744073709551616", "-123456789012345678901234567890"]);
}

#[test]
#[cfg(not(feature = "exact-numbers"))]
fn without_exact_numbers_a_bignum_token_says_what_it_needs() {
    use phx_channels::token::TokenError;
    let vectors = vectors();
    for v in &vectors.vectors {
        let data = vectors.key.verify(&v.token, Some(MaxAge::Infinity));
        if BIGNUMS.contains(&v.name.as_str()) {
            let Err(err @ TokenError::Unsupported(_)) = data else { panic!("{}: {data:?}", v.name) };
            assert!(err.to_string().contains("beyond 64 bits"), "{err}");
            assert!(err.to_string().contains("`exact-numbers` feature"), "{err}");
        } else {
            assert!(same_data(&data.unwrap(), &v.data), "{}", v.name);
        }
    }
}

#[test]
fn signing_the_data_back_gives_phoenixs_token() {
    let vectors = vectors();
    let signer = vectors
        .key
        .signer()
        .signed_at(UNIX_EPOCH + Duration::from_millis(vectors.signed_at_ms))
        .max_age(MaxAge::Seconds(vectors.max_age_s));
    let (mut same_token, mut same_term) = (Vec::new(), Vec::new());
    for v in &vectors.vectors {
        if !cfg!(feature = "exact-numbers") && BIGNUMS.contains(&v.name.as_str()) {
            continue; // without the feature JSON holds no such number to sign
        }
        let ours = signer.sign(&v.data);
        if ours == v.token {
            same_token.push(v.name.as_str());
            continue;
        }
        // The bytes differ only where OTP 25 writes atoms the old way, or in the order of
        // a map of more than 32 keys (Erlang's hash order; a map of that size is sorted
        // here). Either way the token verifies to the same data.
        assert!(same_data(&vectors.key.verify(&ours, Some(MaxAge::Infinity)).unwrap(), &v.data), "{}", v.name);
        if v.name == "map_33_keys" {
            let (mut a, mut b) = (message(&ours), v.etf.clone());
            assert_eq!(a.len(), b.len());
            a.sort_unstable();
            b.sort_unstable();
            assert_eq!(a, b, "the same bytes in another order");
        } else {
            assert_eq!(ours_as_otp_25_writes_it(&message(&ours)), v.etf, "{}", v.name);
            same_term.push(v.name.as_str());
        }
    }
    for name in BIGNUMS {
        assert_eq!(same_token.contains(&name), cfg!(feature = "exact-numbers"), "{name} signs back byte for byte");
    }
    assert_eq!(same_term, ["null", "true", "false", "map_nested", "list_mixed"]);
    assert_eq!(same_token.len(), if cfg!(feature = "exact-numbers") { 29 } else { 27 });
}
