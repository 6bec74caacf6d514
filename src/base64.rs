//! Standard base64 (the `+` and `/` alphabet), as a browser's `btoa` writes it: the
//! auth token in `Sec-WebSocket-Protocol` (with its `=` padding removed) and the binary
//! frames of a long-poll batch (padded) are both decoded here.

/// The bytes `text` encodes; padding is optional. `None` when it is not base64.
pub(crate) fn decode(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let text = text.strip_suffix("==").or_else(|| text.strip_suffix('=')).unwrap_or(text).as_bytes();
    if text.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for chunk in text.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= value(c)? << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_btoa_output_with_or_without_padding() {
        assert_eq!(decode("aGVsbG8").as_deref(), Some(&b"hello"[..]));
        assert_eq!(decode("aGVsbG8=").as_deref(), Some(&b"hello"[..]));
        assert_eq!(decode("AAE=").as_deref(), Some(&[0, 1][..]));
        assert_eq!(decode("+/8").as_deref(), Some(&[0xfb, 0xff][..]));
        assert_eq!(decode("").as_deref(), Some(&[][..]));
    }

    #[test]
    fn refuses_what_is_not_base64() {
        assert_eq!(decode("a"), None);
        assert_eq!(decode("a-b_"), None);
        assert_eq!(decode("[\"1\"]"), None);
        assert_eq!(decode("aGVs=bG8"), None);
        assert_eq!(decode("aGVsbG8==="), None);
    }
}
