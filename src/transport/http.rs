//! Plain HTTP answers: refusals, errors and pages.

use bytes::Bytes;

/// The standard reason phrase for the statuses the endpoint sends.
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// A complete HTTP/1.1 response that closes the connection.
pub(crate) fn response(status: u16, content_type: &str, body: &[u8], head_only: bool) -> Bytes {
    response_with(status, content_type, &[], body, head_only)
}

/// A complete HTTP/1.1 response that closes the connection, with `headers` besides
/// the usual ones.
pub(crate) fn response_with(
    status: u16,
    content_type: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    head_only: bool,
) -> Bytes {
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\ncache-control: no-store\r\n",
        reason(status),
        body.len()
    );
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("connection: close\r\n\r\n");
    let mut out = out.into_bytes();
    if !head_only {
        out.extend_from_slice(body);
    }
    Bytes::from(out)
}

/// A plain-text response.
pub(crate) fn text(status: u16, body: &str) -> Bytes {
    response(status, "text/plain; charset=utf-8", body.as_bytes(), false)
}
