//! Erlang's external term format (what `term_to_binary` writes and `binary_to_term`
//! reads), for the terms a token carries: atoms, integers, floats, binaries, lists,
//! tuples and maps.
//!
//! The encoder writes JSON values the way `term_to_binary` writes the same data in a
//! Phoenix app with string keys (OTP 26's default, UTF-8 atoms), byte for byte: strings
//! are binaries, `null`/`true`/`false` the atoms `nil`/`true`/`false`, integers take the
//! smallest form (bignums past 32 bits), arrays of small integers are `STRING_EXT`, map keys are binaries in
//! ascending order (Erlang's order for maps of up to 32 keys).
//!
//! The decoder never panics: every length is checked against the input, nesting is
//! capped at [`MAX_DEPTH`], and nothing is allocated ahead of the bytes that would fill
//! it. Well-formed terms that have no JSON form (pids, functions, ...) are told apart
//! from malformed input.

use super::bignum::{self, Big};
use serde_json::{Map, Number, Value};

/// The version byte every encoded term starts with.
const VERSION: u8 = 131;

const NEW_FLOAT_EXT: u8 = 70;
const BIT_BINARY_EXT: u8 = 77;
const COMPRESSED: u8 = 80;
const NEW_PID_EXT: u8 = 88;
const NEW_PORT_EXT: u8 = 89;
const NEWER_REFERENCE_EXT: u8 = 90;
const SMALL_INTEGER_EXT: u8 = 97;
const INTEGER_EXT: u8 = 98;
const FLOAT_EXT: u8 = 99;
const ATOM_EXT: u8 = 100;
const REFERENCE_EXT: u8 = 101;
const PORT_EXT: u8 = 102;
const PID_EXT: u8 = 103;
const SMALL_TUPLE_EXT: u8 = 104;
const LARGE_TUPLE_EXT: u8 = 105;
const NIL_EXT: u8 = 106;
const STRING_EXT: u8 = 107;
const LIST_EXT: u8 = 108;
const BINARY_EXT: u8 = 109;
const SMALL_BIG_EXT: u8 = 110;
const LARGE_BIG_EXT: u8 = 111;
const NEW_FUN_EXT: u8 = 112;
const EXPORT_EXT: u8 = 113;
const NEW_REFERENCE_EXT: u8 = 114;
const SMALL_ATOM_EXT: u8 = 115;
const MAP_EXT: u8 = 116;
const FUN_EXT: u8 = 117;
const ATOM_UTF8_EXT: u8 = 118;
const SMALL_ATOM_UTF8_EXT: u8 = 119;
const V4_PORT_EXT: u8 = 120;

/// How deeply lists, tuples and maps may nest in a decoded term (serde_json's own limit
/// when it parses text).
pub(super) const MAX_DEPTH: usize = 128;

/// A decoded term.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Term {
    Atom(String),
    /// An integer of up to 64 bits of magnitude, either sign.
    Int(i128),
    /// An integer beyond that.
    Big(Big),
    Float(f64),
    Binary(Vec<u8>),
    /// A proper list.
    List(Vec<Term>),
    Tuple(Vec<Term>),
    Map(Vec<(Term, Term)>),
}

/// Why bytes did not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DecodeError {
    /// Not the external term format: truncated, an unknown tag, bytes left over.
    Malformed,
    /// A well-formed term of a kind this decoder does not represent.
    Unsupported(&'static str),
}

// --- Encoding --------------------------------------------------------------------------

/// Starts an encoded term.
pub(super) fn version(out: &mut Vec<u8>) {
    out.push(VERSION);
}

/// A tuple of `arity` elements; the elements follow.
pub(super) fn tuple(out: &mut Vec<u8>, arity: u8) {
    out.extend_from_slice(&[SMALL_TUPLE_EXT, arity]);
}

/// An atom of at most 255 bytes, as `SMALL_ATOM_UTF8_EXT`.
pub(super) fn atom(out: &mut Vec<u8>, name: &str) {
    let len = u8::try_from(name.len()).expect("atoms written here are short");
    out.extend_from_slice(&[SMALL_ATOM_UTF8_EXT, len]);
    out.extend_from_slice(name.as_bytes());
}

/// An integer in its smallest form.
pub(super) fn integer(out: &mut Vec<u8>, n: i128) {
    if let Ok(small) = u8::try_from(n) {
        out.extend_from_slice(&[SMALL_INTEGER_EXT, small]);
    } else if let Ok(int) = i32::try_from(n) {
        out.push(INTEGER_EXT);
        out.extend_from_slice(&int.to_be_bytes());
    } else {
        big(out, &Big::from_i128(n));
    }
}

/// A bignum: `SMALL_BIG_EXT` up to 255 digits, `LARGE_BIG_EXT` past them.
fn big(out: &mut Vec<u8>, n: &Big) {
    let sign = u8::from(n.negative);
    match u8::try_from(n.magnitude.len()) {
        Ok(len) => out.extend_from_slice(&[SMALL_BIG_EXT, len, sign]),
        Err(_) => {
            out.push(LARGE_BIG_EXT);
            out.extend_from_slice(&len32(n.magnitude.len()).to_be_bytes());
            out.push(sign);
        }
    }
    out.extend_from_slice(&n.magnitude);
}

/// A JSON value as a Phoenix app with string keys would hold the same data.
///
/// # Panics
///
/// On a string of 4 GiB or more, which the format cannot hold.
pub(super) fn value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => atom(out, "nil"),
        Value::Bool(b) => atom(out, if *b { "true" } else { "false" }),
        Value::Number(n) => number(out, n),
        Value::String(s) => binary(out, s.as_bytes()),
        Value::Array(items) => list(out, items),
        Value::Object(map) => {
            out.push(MAP_EXT);
            out.extend_from_slice(&len32(map.len()).to_be_bytes());
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            for (key, item) in entries {
                binary(out, key.as_bytes());
                self::value(out, item);
            }
        }
    }
}

fn number(out: &mut Vec<u8>, n: &Number) {
    if let Some(u) = n.as_u64() {
        integer(out, i128::from(u));
    } else if let Some(i) = n.as_i64() {
        integer(out, i128::from(i));
    } else if let Some(n) = bignum::from_number(n) {
        big(out, &n);
    } else {
        out.push(NEW_FLOAT_EXT);
        out.extend_from_slice(&n.as_f64().unwrap_or(0.0).to_be_bytes());
    }
}

fn binary(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(BINARY_EXT);
    out.extend_from_slice(&len32(bytes.len()).to_be_bytes());
    out.extend_from_slice(bytes);
}

fn list(out: &mut Vec<u8>, items: &[Value]) {
    if items.is_empty() {
        out.push(NIL_EXT);
        return;
    }
    // Erlang writes a list of integers 0..=255 as a string of bytes.
    let bytes: Option<Vec<u8>> = items.iter().map(|i| i.as_u64().and_then(|u| u8::try_from(u).ok())).collect();
    if let Some(bytes) = bytes.filter(|b| b.len() <= usize::from(u16::MAX)) {
        out.push(STRING_EXT);
        out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
        out.extend_from_slice(&bytes);
        return;
    }
    out.push(LIST_EXT);
    out.extend_from_slice(&len32(items.len()).to_be_bytes());
    for item in items {
        value(out, item);
    }
    out.push(NIL_EXT);
}

fn len32(len: usize) -> u32 {
    u32::try_from(len).expect("the external term format holds lengths below 4 GiB")
}

// --- Decoding --------------------------------------------------------------------------

/// Decodes one complete term (`binary_to_term`). Unlike `binary_to_term`, bytes after
/// the term are an error: no encoder writes them.
pub(super) fn decode(bytes: &[u8]) -> Result<Term, DecodeError> {
    let mut input = Input { bytes, pos: 0 };
    if input.u8()? != VERSION {
        return Err(DecodeError::Malformed);
    }
    if input.bytes.get(input.pos) == Some(&COMPRESSED) {
        return Err(DecodeError::Unsupported("a compressed term"));
    }
    let term = input.term(0)?;
    if input.pos != bytes.len() {
        return Err(DecodeError::Malformed);
    }
    Ok(term)
}

struct Input<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Input<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).filter(|&end| end <= self.bytes.len()).ok_or(DecodeError::Malformed)?;
        let taken = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut array = [0; N];
        array.copy_from_slice(self.take(N)?);
        Ok(array)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<usize, DecodeError> {
        Ok(usize::from(u16::from_be_bytes(self.array()?)))
    }

    fn u32(&mut self) -> Result<usize, DecodeError> {
        usize::try_from(u32::from_be_bytes(self.array()?)).map_err(|_| DecodeError::Malformed)
    }

    /// Room for `count` items, but never more than the bytes left could fill: a length
    /// field is only a claim.
    fn capacity(&self, count: usize) -> usize {
        count.min(self.bytes.len() - self.pos)
    }

    fn term(&mut self, depth: usize) -> Result<Term, DecodeError> {
        match self.u8()? {
            SMALL_INTEGER_EXT => Ok(Term::Int(self.u8()?.into())),
            INTEGER_EXT => Ok(Term::Int(i32::from_be_bytes(self.array()?).into())),
            SMALL_BIG_EXT => {
                let n = usize::from(self.u8()?);
                self.big(n)
            }
            LARGE_BIG_EXT => {
                let n = self.u32()?;
                self.big(n)
            }
            NEW_FLOAT_EXT => finite(f64::from_be_bytes(self.array()?)),
            FLOAT_EXT => {
                // The old form: a C-formatted number in 31 bytes, zero-padded.
                let text = self.take(31)?;
                let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
                let text = std::str::from_utf8(&text[..end]).map_err(|_| DecodeError::Malformed)?;
                finite(text.trim().parse().map_err(|_| DecodeError::Malformed)?)
            }
            ATOM_EXT => {
                let len = self.u16()?;
                Ok(Term::Atom(self.take(len)?.iter().map(|&b| char::from(b)).collect()))
            }
            SMALL_ATOM_EXT => {
                let len = usize::from(self.u8()?);
                Ok(Term::Atom(self.take(len)?.iter().map(|&b| char::from(b)).collect()))
            }
            ATOM_UTF8_EXT => {
                let len = self.u16()?;
                self.utf8_atom(len)
            }
            SMALL_ATOM_UTF8_EXT => {
                let len = usize::from(self.u8()?);
                self.utf8_atom(len)
            }
            BINARY_EXT => {
                let len = self.u32()?;
                Ok(Term::Binary(self.take(len)?.to_vec()))
            }
            STRING_EXT => {
                let len = self.u16()?;
                Ok(Term::List(self.take(len)?.iter().map(|&b| Term::Int(b.into())).collect()))
            }
            NIL_EXT => Ok(Term::List(Vec::new())),
            LIST_EXT => {
                let len = self.u32()?;
                let mut items = self.terms(len, depth)?;
                match self.nested(depth)? {
                    // `[a | [b]]` is the list `[a, b]`.
                    Term::List(tail) => items.extend(tail),
                    _ => return Err(DecodeError::Unsupported("an improper list")),
                }
                Ok(Term::List(items))
            }
            SMALL_TUPLE_EXT => {
                let arity = usize::from(self.u8()?);
                Ok(Term::Tuple(self.terms(arity, depth)?))
            }
            LARGE_TUPLE_EXT => {
                let arity = self.u32()?;
                Ok(Term::Tuple(self.terms(arity, depth)?))
            }
            MAP_EXT => {
                let arity = self.u32()?;
                let mut pairs = Vec::with_capacity(self.capacity(arity));
                for _ in 0..arity {
                    pairs.push((self.nested(depth)?, self.nested(depth)?));
                }
                Ok(Term::Map(pairs))
            }
            BIT_BINARY_EXT => Err(DecodeError::Unsupported("a bitstring")),
            PID_EXT | NEW_PID_EXT | PORT_EXT | NEW_PORT_EXT | V4_PORT_EXT | REFERENCE_EXT | NEW_REFERENCE_EXT
            | NEWER_REFERENCE_EXT => Err(DecodeError::Unsupported("a pid, port or reference")),
            NEW_FUN_EXT | EXPORT_EXT | FUN_EXT => Err(DecodeError::Unsupported("a function")),
            _ => Err(DecodeError::Malformed),
        }
    }

    /// A term inside a list, tuple or map at `depth`.
    fn nested(&mut self, depth: usize) -> Result<Term, DecodeError> {
        if depth >= MAX_DEPTH {
            return Err(DecodeError::Unsupported("terms nested more than 128 deep"));
        }
        self.term(depth + 1)
    }

    fn terms(&mut self, count: usize, depth: usize) -> Result<Vec<Term>, DecodeError> {
        let mut items = Vec::with_capacity(self.capacity(count));
        for _ in 0..count {
            items.push(self.nested(depth)?);
        }
        Ok(items)
    }

    /// A bignum's sign byte and `n` little-endian digits.
    fn big(&mut self, n: usize) -> Result<Term, DecodeError> {
        let negative = match self.u8()? {
            0 => false,
            1 => true,
            _ => return Err(DecodeError::Malformed),
        };
        let digits = self.take(n)?;
        if digits.iter().skip(8).any(|&d| d != 0) {
            return Ok(Term::Big(Big::new(negative, digits)));
        }
        let magnitude = digits.iter().take(8).rev().fold(0i128, |acc, &d| acc << 8 | i128::from(d));
        Ok(Term::Int(if negative { -magnitude } else { magnitude }))
    }

    fn utf8_atom(&mut self, len: usize) -> Result<Term, DecodeError> {
        let name = std::str::from_utf8(self.take(len)?).map_err(|_| DecodeError::Malformed)?;
        Ok(Term::Atom(name.to_owned()))
    }
}

/// Erlang has no NaN or infinity; `binary_to_term` refuses them too.
fn finite(f: f64) -> Result<Term, DecodeError> {
    if f.is_finite() { Ok(Term::Float(f)) } else { Err(DecodeError::Malformed) }
}

// --- Terms to JSON ---------------------------------------------------------------------

/// The JSON form of a term, as `Jason.encode` would give it: binaries are strings, the
/// atoms `nil`/`true`/`false` are `null`/`true`/`false`, other atoms are strings, map
/// keys are binaries or atoms, integers past `i64`/`u64` are exact numbers (feature
/// `exact-numbers`). `Err` names the first part with no JSON form: a tuple, a binary
/// that is not UTF-8, another kind of map key, an integer past 64 bits without
/// `exact-numbers`.
pub(super) fn to_json(term: Term) -> Result<Value, &'static str> {
    Ok(match term {
        Term::Atom(name) => match name.as_str() {
            "nil" => Value::Null,
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::String(name),
        },
        Term::Int(n) => {
            if let Ok(i) = i64::try_from(n) {
                Value::from(i)
            } else if let Ok(u) = u64::try_from(n) {
                Value::from(u)
            } else {
                Value::Number(bignum::to_number(&Big::from_i128(n))?)
            }
        }
        Term::Big(n) => Value::Number(bignum::to_number(&n)?),
        Term::Float(f) => Value::Number(Number::from_f64(f).ok_or("a float that is not finite")?),
        Term::Binary(bytes) => Value::String(String::from_utf8(bytes).map_err(|_| "a binary that is not UTF-8")?),
        Term::List(items) => Value::Array(items.into_iter().map(to_json).collect::<Result<_, _>>()?),
        Term::Tuple(_) => return Err("a tuple"),
        Term::Map(pairs) => {
            let mut map = Map::new();
            for (key, item) in pairs {
                let key = match key {
                    Term::Binary(bytes) => String::from_utf8(bytes).map_err(|_| "a binary that is not UTF-8")?,
                    Term::Atom(name) => name,
                    _ => return Err("a map key that is not a binary or an atom"),
                };
                map.insert(key, to_json(item)?);
            }
            Value::Object(map)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::collection::{btree_map, vec};
    use proptest::prelude::*;
    use serde_json::json;

    fn encode(v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        version(&mut out);
        value(&mut out, v);
        out
    }

    fn round_trip(v: &Value) -> Value {
        to_json(decode(&encode(v)).expect("decodes")).expect("has a JSON form")
    }

    /// Bytes `term_to_binary` wrote for the same data (OTP 25, with `{minor_version, 2}`
    /// where atoms appear).
    #[test]
    fn encodes_as_term_to_binary_does() {
        let cases: [(Value, &[u8]); 12] = [
            (json!("a"), &[131, 109, 0, 0, 0, 1, 97]),
            (json!(86400), &[131, 98, 0, 1, 81, 128]),
            (json!(7), &[131, 97, 7]),
            (json!(-1), &[131, 98, 255, 255, 255, 255]),
            (json!(2147483648u64), &[131, 110, 4, 0, 0, 0, 0, 128]),
            (json!(-2147483649i64), &[131, 110, 4, 1, 1, 0, 0, 128]),
            (json!(u64::MAX), &[131, 110, 8, 0, 255, 255, 255, 255, 255, 255, 255, 255]),
            (json!(1.5), &[131, 70, 63, 248, 0, 0, 0, 0, 0, 0]),
            (json!(null), &[131, 119, 3, b'n', b'i', b'l']),
            (json!([1, 2, 3]), &[131, 107, 0, 3, 1, 2, 3]),
            (json!([1, 256]), &[131, 108, 0, 0, 0, 2, 97, 1, 98, 0, 0, 1, 0, 106]),
            (
                json!({"b": 1, "a": 2, "aa": 3}),
                &[
                    131, 116, 0, 0, 0, 3, 109, 0, 0, 0, 1, 97, 97, 2, 109, 0, 0, 0, 2, 97, 97, 97, 3, 109, 0, 0, 0, 1,
                    98, 97, 1,
                ],
            ),
        ];
        for (v, bytes) in cases {
            assert_eq!(encode(&v), bytes, "{v}");
            assert_eq!(round_trip(&v), v);
        }
    }

    #[test]
    fn decodes_the_older_forms() {
        // ATOM_EXT and SMALL_ATOM_EXT (latin-1), as OTP 25 and older write atoms.
        assert_eq!(decode(&[131, 100, 0, 3, b'n', b'i', b'l']), Ok(Term::Atom("nil".into())));
        assert_eq!(decode(&[131, 115, 2, b'o', 0xe9]), Ok(Term::Atom("oé".into())));
        assert_eq!(decode(&[131, 118, 0, 2, 0xc3, 0xa9]), Ok(Term::Atom("é".into())));
        // FLOAT_EXT, from before NEW_FLOAT_EXT.
        let mut old_float = vec![131, 99];
        old_float.extend_from_slice(b"1.50000000000000000000e+00");
        old_float.resize(2 + 31, 0);
        assert_eq!(decode(&old_float), Ok(Term::Float(1.5)));
        // LARGE_TUPLE_EXT, LARGE_BIG_EXT, and a bignum with high zero digits.
        assert_eq!(decode(&[131, 105, 0, 0, 0, 1, 97, 1]), Ok(Term::Tuple(vec![Term::Int(1)])));
        assert_eq!(decode(&[131, 111, 0, 0, 0, 1, 1, 5]), Ok(Term::Int(-5)));
        assert_eq!(decode(&[131, 110, 10, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]), Ok(Term::Int(1)));
        // A list whose tail is a list.
        assert_eq!(
            decode(&[131, 108, 0, 0, 0, 1, 97, 1, 107, 0, 1, 2]),
            Ok(Term::List(vec![Term::Int(1), Term::Int(2)]))
        );
    }

    #[test]
    fn json_forms_of_erlang_only_terms() {
        let atom_keys = Term::Map(vec![(Term::Atom("role".into()), Term::Atom("admin".into()))]);
        assert_eq!(to_json(atom_keys), Ok(json!({"role": "admin"})));
        assert_eq!(to_json(Term::Int(-(1 << 63))), Ok(json!(i64::MIN)));
        assert_eq!(to_json(Term::Tuple(vec![])), Err("a tuple"));
        assert_eq!(to_json(Term::Binary(vec![0xff])), Err("a binary that is not UTF-8"));
        assert_eq!(
            to_json(Term::Map(vec![(Term::Int(1), Term::Int(1))])),
            Err("a map key that is not a binary or an atom")
        );
    }

    #[test]
    fn tells_malformed_from_unsupported() {
        use DecodeError::{Malformed, Unsupported};
        let malformed: [&[u8]; 10] = [
            &[],
            &[130, 97, 1],
            &[131],
            &[131, 97],
            &[131, 97, 1, 0],
            &[131, 109, 0, 0, 0, 5, 1],
            &[131, 70, 0x7f, 0xf0, 0, 0, 0, 0, 0, 0],
            &[131, 119, 1, 0xff],
            &[131, 110, 1, 2, 1],
            &[131, 200],
        ];
        for bytes in malformed {
            assert_eq!(decode(bytes), Err(Malformed), "{bytes:?}");
        }
        let unsupported: [&[u8]; 5] = [
            &[131, 80, 0, 0, 0, 1, 0],
            &[131, 77, 0, 0, 0, 1, 3, 0xe0],
            &[131, 108, 0, 0, 0, 1, 97, 1, 97, 2],
            &[131, 88],
            &[131, 113],
        ];
        for bytes in unsupported {
            assert!(matches!(decode(bytes), Err(Unsupported(_))), "{bytes:?}");
        }
    }

    /// 2^64 and -123456789012345678901234567890 as `term_to_binary` writes them, and
    /// 2^2048 (257 digits), which takes `LARGE_BIG_EXT`.
    fn bignums() -> [(&'static str, Vec<u8>); 3] {
        let mut large = vec![131, 111, 0, 0, 1, 1, 0];
        large.extend([0; 256]);
        large.push(1);
        [
            ("18446744073709551616", vec![131, 110, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
            (
                "-123456789012345678901234567890",
                vec![131, 110, 13, 1, 0xd2, 0x0a, 0x3f, 0x4e, 0xee, 0xe0, 0x73, 0xc3, 0xf6, 0x0f, 0xe9, 0x8e, 0x01],
            ),
            (
                "32317006071311007300714876688669951960444102669715484032130345427524655138867890893197201411522913463688717960921898019494119559150490921095088152386448283120630877367300996091750197750389652106796057638384067568276792218642619756161838094338476170470581645852036305042887575891541065808607552399123930385521914333389668342420684974786564569494856176035326322058077805659331026192708460314150258592864177116725943603718461857357598351152301645904403697613233287231227125684710820209725157101726931323469678542580656697935045997268352998638215525166389437335543602135433229604645318478604952148193555853611059596230656",
                large,
            ),
        ]
    }

    #[test]
    fn bignums_decode_whole_and_encode_as_term_to_binary_does() {
        for (text, bytes) in bignums() {
            let Ok(Term::Big(n)) = decode(&bytes) else { panic!("{text} decodes to a bignum") };
            assert_eq!(n.negative, text.starts_with('-'));
            #[cfg(feature = "exact-numbers")]
            {
                let number: Value = serde_json::from_str(text).unwrap();
                assert_eq!(to_json(Term::Big(n)).unwrap().to_string(), text);
                assert_eq!(encode(&number), bytes, "{text}");
            }
            #[cfg(not(feature = "exact-numbers"))]
            assert!(to_json(Term::Big(n)).unwrap_err().contains("`exact-numbers`"), "{text}");
        }
        // Just past i64 and u64: eight digits, still no JSON integer without the feature.
        let past_i64 = to_json(Term::Int(-(1 << 63) - 1));
        #[cfg(feature = "exact-numbers")]
        assert_eq!(past_i64.unwrap().to_string(), "-9223372036854775809");
        #[cfg(not(feature = "exact-numbers"))]
        assert!(past_i64.unwrap_err().contains("`exact-numbers`"));
    }

    #[test]
    fn nesting_is_capped() {
        let nested = |depth: usize| {
            let mut bytes = vec![131];
            bytes.extend(std::iter::repeat_n([104, 1], depth).flatten());
            bytes.push(106);
            bytes
        };
        assert!(decode(&nested(MAX_DEPTH)).is_ok());
        assert_eq!(decode(&nested(MAX_DEPTH + 1)), Err(DecodeError::Unsupported("terms nested more than 128 deep")));
        // Far past the cap: refused without going deeper.
        assert!(decode(&nested(1_000_000)).is_err());
    }

    #[test]
    fn length_claims_do_not_allocate() {
        // Each claims four billion elements and ends at once.
        for tag in [LIST_EXT, MAP_EXT, LARGE_TUPLE_EXT, BINARY_EXT, LARGE_BIG_EXT] {
            assert_eq!(decode(&[131, tag, 0xff, 0xff, 0xff, 0xff]), Err(DecodeError::Malformed));
        }
    }

    #[test]
    fn every_prefix_of_a_term_is_refused() {
        let whole = encode(&json!({"a": [1, -70000, 1e10, "x", null, {"b": [300, 2]}], "c": 99999999999i64}));
        for len in 0..whole.len() {
            assert!(decode(&whole[..len]).is_err(), "prefix of {len} bytes");
        }
        assert!(decode(&whole).is_ok());
    }

    fn text() -> impl Strategy<Value = String> {
        vec(any::<char>(), 0..8).prop_map(String::from_iter)
    }

    /// Integers of up to 40 digits, past 64 bits where JSON numbers keep them exactly.
    #[cfg(feature = "exact-numbers")]
    fn big_integer() -> impl Strategy<Value = Value> {
        "-?[1-9][0-9]{0,39}".prop_map(|text| serde_json::from_str(&text).unwrap())
    }

    #[cfg(not(feature = "exact-numbers"))]
    fn big_integer() -> impl Strategy<Value = Value> {
        any::<i64>().prop_map(Value::from)
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            (0u8..=255).prop_map(Value::from),
            any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
            text().prop_map(Value::String),
            big_integer(),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                vec(inner.clone(), 0..8).prop_map(Value::Array),
                btree_map(text(), inner, 0..8).prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn json_round_trips(v in json_value()) {
            prop_assert_eq!(round_trip(&v), v);
        }

        #[test]
        fn arbitrary_bytes_never_panic(tail in vec(any::<u8>(), 0..64)) {
            let mut bytes = vec![131];
            bytes.extend(tail);
            if let Ok(term) = decode(&bytes) {
                let _ = to_json(term);
            }
        }

        #[test]
        fn damaged_terms_never_panic(v in json_value(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
            let mut bytes = encode(&v);
            let at = at.index(bytes.len());
            bytes[at] = byte;
            if let Ok(term) = decode(&bytes) {
                let _ = to_json(term);
            }
        }
    }
}
