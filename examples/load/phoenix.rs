//! Phoenix V2 frames, read without a JSON parser: the head of a frame, whether it is
//! an ok reply, and a number inside its payload.

use crate::ws::find;

/// The first four fields of a V2 array, and the payload's bytes. Strings with escapes
/// are not needed by the load tool and make the parse fail.
pub(crate) struct Head<'a> {
    pub(crate) msg_ref: Option<&'a [u8]>,
    pub(crate) topic: &'a [u8],
    pub(crate) event: &'a [u8],
    pub(crate) payload: &'a [u8],
}

pub(crate) fn parse_head(data: &[u8]) -> Option<Head<'_>> {
    let mut pos = 0;
    let skip_ws = |pos: &mut usize| {
        while data.get(*pos).is_some_and(|b| b.is_ascii_whitespace()) {
            *pos += 1;
        }
    };
    let field = |pos: &mut usize| -> Option<Option<&[u8]>> {
        skip_ws(pos);
        if data[*pos..].starts_with(b"null") {
            *pos += 4;
        } else {
            if data.get(*pos) != Some(&b'"') {
                return None;
            }
            let start = *pos + 1;
            let len = data[start..].iter().position(|&b| b == b'"' || b == b'\\')?;
            if data[start + len] == b'\\' {
                return None;
            }
            *pos = start + len + 1;
            return Some(Some(&data[start..start + len]));
        }
        Some(None)
    };
    let comma = |pos: &mut usize| -> Option<()> {
        skip_ws(pos);
        (data.get(*pos) == Some(&b',')).then(|| *pos += 1)
    };
    skip_ws(&mut pos);
    if data.get(pos) != Some(&b'[') {
        return None;
    }
    pos += 1;
    let _join_ref = field(&mut pos)?;
    comma(&mut pos)?;
    let msg_ref = field(&mut pos)?;
    comma(&mut pos)?;
    let topic = field(&mut pos)??;
    comma(&mut pos)?;
    let event = field(&mut pos)??;
    comma(&mut pos)?;
    let end = data.iter().rposition(|&b| b == b']')?;
    Some(Head { msg_ref, topic, event, payload: data.get(pos..end)? })
}

pub(crate) fn reply_ok(head: &Head<'_>) -> bool {
    head.event == b"phx_reply" && find(head.payload, br#""status":"ok""#).is_some()
}

/// The unsigned integer right after `key` (for example `"seq":`).
pub(crate) fn number_after(haystack: &[u8], key: &[u8]) -> Option<u64> {
    let at = find(haystack, key)? + key.len();
    let digits = haystack[at..].iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&haystack[at..at + digits]).ok()?.parse().ok()
}
