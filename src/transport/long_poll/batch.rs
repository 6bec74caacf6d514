//! The frames of a long-poll `POST`: the whole body is one text frame, or, for an
//! `application/x-ndjson` body, each line is a frame: a line that starts with `[` is a
//! text frame (V2 JSON), any other a binary frame in base64. Only the first
//! [`MAX_BATCH`] lines are taken, as Phoenix does since CVE-2026-32689; empty lines
//! count but carry nothing.

use crate::serializer::RawFrame;

/// The most lines of a batch that are handled.
pub(crate) const MAX_BATCH: usize = 100;

/// One frame of a body.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum BodyFrame<'a> {
    Text(&'a [u8]),
    Binary(Vec<u8>),
}

impl BodyFrame<'_> {
    pub(crate) fn raw(&self) -> RawFrame<'_> {
        match self {
            BodyFrame::Text(text) => RawFrame::Text(text),
            BodyFrame::Binary(bytes) => RawFrame::Binary(bytes),
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            BodyFrame::Text(text) => text.len(),
            BodyFrame::Binary(bytes) => bytes.len(),
        }
    }
}

/// A line of a batch that is neither JSON nor base64.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct NotBase64;

/// The frames of `body`, in order; a line that is not base64 ends them with an error.
pub(crate) fn frames(body: &[u8], batch: bool) -> Box<dyn Iterator<Item = Result<BodyFrame<'_>, NotBase64>> + '_> {
    if !batch {
        return Box::new(std::iter::once(Ok(BodyFrame::Text(body))));
    }
    let lines = body.split(|&b| b == b'\n').take(MAX_BATCH);
    Box::new(lines.map(|line| line.strip_suffix(b"\r").unwrap_or(line)).filter(|line| !line.is_empty()).map(|line| {
        if line.starts_with(b"[") {
            return Ok(BodyFrame::Text(line));
        }
        let text = std::str::from_utf8(line).map_err(|_| NotBase64)?;
        crate::base64::decode(text).map(BodyFrame::Binary).ok_or(NotBase64)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(body: &[u8], batch: bool) -> Vec<Result<BodyFrame<'_>, NotBase64>> {
        frames(body, batch).collect()
    }

    #[test]
    fn a_plain_body_is_one_text_frame() {
        assert_eq!(all(b"{\"topic\":\"t\"}\n[1]", false), [Ok(BodyFrame::Text(b"{\"topic\":\"t\"}\n[1]"))]);
    }

    #[test]
    fn a_batch_has_text_and_binary_lines() {
        let body = b"[\"1\"]\r\nAAE=\n\n[2]\n";
        assert_eq!(
            all(body, true),
            [Ok(BodyFrame::Text(b"[\"1\"]")), Ok(BodyFrame::Binary(vec![0, 1])), Ok(BodyFrame::Text(b"[2]"))]
        );
    }

    #[test]
    fn only_the_first_hundred_lines_count() {
        let body = vec!["[]"; 150].join("\n");
        assert_eq!(all(body.as_bytes(), true).len(), MAX_BATCH);
        let body = format!("{}\n[]", vec![""; MAX_BATCH].join("\n"));
        assert_eq!(all(body.as_bytes(), true).len(), 0, "empty lines count toward the hundred");
    }

    #[test]
    fn a_line_that_is_not_base64_is_an_error() {
        assert_eq!(all(b"[1]\n{\"v1\":true}\n[2]", true)[1], Err(NotBase64));
    }
}
