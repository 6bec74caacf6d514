//! Integers beyond 64 bits (Erlang's bignums, which Phoenix signs as readily as any
//! integer) and their JSON form.
//!
//! With the `exact-numbers` feature a JSON number keeps its text, so a bignum becomes
//! the number with its exact decimal digits, and such a number is signed back as the
//! bignum it was. Without the feature JSON has no integers past 64 bits: such a token's
//! data is refused with a message that names the feature. Both choices live here.

use serde_json::Number;

/// An integer as the external term format holds a bignum: a sign, and little-endian
/// base-256 digits without high zeros.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Big {
    pub(super) negative: bool,
    pub(super) magnitude: Vec<u8>,
}

impl Big {
    /// `digits` may end in zeros; they are dropped.
    pub(super) fn new(negative: bool, digits: &[u8]) -> Big {
        let len = digits.iter().rposition(|&d| d != 0).map_or(0, |last| last + 1);
        Big { negative: negative && len > 0, magnitude: digits[..len].to_vec() }
    }

    pub(super) fn from_i128(n: i128) -> Big {
        Big::new(n < 0, &n.unsigned_abs().to_le_bytes())
    }
}

/// Why a bignum has no JSON form without the `exact-numbers` feature.
#[cfg(not(feature = "exact-numbers"))]
const NEEDS_EXACT_NUMBERS: &str =
    "an integer beyond 64 bits, which the `exact-numbers` feature (on by default) keeps exactly";

/// The JSON number of `big`, digit for digit.
#[cfg(feature = "exact-numbers")]
pub(super) fn to_number(big: &Big) -> Result<Number, &'static str> {
    serde_json::from_str(&decimal::to_text(big)).map_err(|_| "an integer serde_json cannot hold")
}

/// Refused: JSON numbers here hold 64 bits at most.
#[cfg(not(feature = "exact-numbers"))]
pub(super) fn to_number(_big: &Big) -> Result<Number, &'static str> {
    Err(NEEDS_EXACT_NUMBERS)
}

/// The bignum a JSON integer holds, when its text is an integer (digits, maybe a minus
/// sign); `None` for a float.
#[cfg(feature = "exact-numbers")]
pub(super) fn from_number(n: &Number) -> Option<Big> {
    decimal::from_text(&n.to_string())
}

/// Never: without `exact-numbers` a number that is not an `i64` or `u64` is a float.
#[cfg(not(feature = "exact-numbers"))]
pub(super) fn from_number(_n: &Number) -> Option<Big> {
    None
}

/// Decimal text and base-256 digits, through base-10^9 limbs.
#[cfg(feature = "exact-numbers")]
mod decimal {
    use super::Big;

    /// The largest power of ten in a `u32`, and its number of digits.
    const LIMB: u64 = 1_000_000_000;
    const LIMB_DIGITS: usize = 9;

    /// `-` and the digits, without leading zeros (`0` for zero).
    pub(super) fn to_text(big: &Big) -> String {
        // Base 2^32 words, most significant first, divided by 10^9 until nothing is left.
        let mut words: Vec<u32> = big
            .magnitude
            .chunks(4)
            .rev()
            .map(|chunk| chunk.iter().rev().fold(0u32, |word, &d| word << 8 | u32::from(d)))
            .collect();
        let mut limbs = Vec::new(); // least significant first
        while words.iter().any(|&w| w != 0) {
            let mut remainder = 0u64;
            for word in &mut words {
                let value = remainder << 32 | u64::from(*word);
                *word = (value / LIMB) as u32;
                remainder = value % LIMB;
            }
            limbs.push(remainder);
            let leading = words.iter().take_while(|&&w| w == 0).count();
            words.drain(..leading);
        }
        let mut text = String::from(if big.negative { "-" } else { "" });
        match limbs.split_last() {
            None => text.push('0'),
            Some((top, rest)) => {
                text.push_str(&top.to_string());
                for limb in rest.iter().rev() {
                    text.push_str(&format!("{limb:0LIMB_DIGITS$}"));
                }
            }
        }
        text
    }

    /// The integer `text` holds: an optional `-`, then one or more ASCII digits.
    pub(super) fn from_text(text: &str) -> Option<Big> {
        let (negative, digits) = match text.strip_prefix('-') {
            Some(digits) => (true, digits),
            None => (false, text),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // Base 2^32 words, least significant first: times 10^k plus the next k digits,
        // nine at a time after a first chunk of the remainder.
        let mut words: Vec<u32> = Vec::new();
        let mut start = 0;
        let mut end = match digits.len() % LIMB_DIGITS {
            0 => LIMB_DIGITS,
            first => first,
        };
        while start < digits.len() {
            let chunk = &digits[start..end];
            let scale = 10u64.pow(chunk.len() as u32);
            let mut carry: u64 = chunk.parse().ok()?;
            for word in &mut words {
                let value = u64::from(*word) * scale + carry;
                *word = value as u32;
                carry = value >> 32;
            }
            if carry != 0 {
                words.push(carry as u32);
            }
            (start, end) = (end, end + LIMB_DIGITS);
        }
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        Some(Big::new(negative, &bytes))
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use proptest::collection::vec;
        use proptest::prelude::*;

        #[test]
        fn known_numbers() {
            let cases: [(&str, Big); 5] = [
                ("0", Big::new(false, &[])),
                ("18446744073709551616", Big::new(false, &[0, 0, 0, 0, 0, 0, 0, 0, 1])),
                (
                    "-123456789012345678901234567890",
                    Big::new(true, &[0xd2, 0x0a, 0x3f, 0x4e, 0xee, 0xe0, 0x73, 0xc3, 0xf6, 0x0f, 0xe9, 0x8e, 0x01]),
                ),
                ("1000000000", Big::from_i128(1_000_000_000)),
                ("-1000000000000000000000000000000000000", Big::from_i128(-(10i128.pow(36)))),
            ];
            for (text, big) in cases {
                assert_eq!(to_text(&big), text);
                assert_eq!(from_text(text), Some(big), "{text}");
            }
            assert_eq!(from_text("-0"), Some(Big::new(false, &[])));
            assert_eq!(from_text("007"), Some(Big::from_i128(7)));
            for not_integer in ["", "-", "1.0", "1e5", "+1", " 1", "１"] {
                assert_eq!(from_text(not_integer), None, "{not_integer:?}");
            }
        }

        proptest! {
            #[test]
            fn text_matches_rusts_own_for_128_bits(n in any::<i128>()) {
                let big = Big::from_i128(n);
                prop_assert_eq!(to_text(&big), n.to_string());
                prop_assert_eq!(from_text(&n.to_string()), Some(big));
            }

            #[test]
            fn digits_round_trip_through_text(negative in any::<bool>(), digits in vec(any::<u8>(), 0..300)) {
                let big = Big::new(negative, &digits);
                prop_assert_eq!(from_text(&to_text(&big)), Some(big));
            }

            #[test]
            fn text_round_trips_through_digits(negative in any::<bool>(), text in "[1-9][0-9]{0,700}") {
                let text = if negative { format!("-{text}") } else { text };
                prop_assert_eq!(to_text(&from_text(&text).unwrap()), text);
            }
        }
    }
}
