//! permessage-deflate's sending side: one message's payload compressed on its own.
//!
//! The server never carries its compressor's window from one message to the next (it
//! negotiates `server_no_context_takeover` with every client), so a compressed frame
//! depends on nothing but its payload: a broadcast is deflated once and the same bytes
//! go to every connection that negotiated compression.

use flate2::{Compress, Compression, FlushCompress};
use parking_lot::Mutex;

/// Payloads shorter than this go out plain (RFC 7692 lets the sender choose per
/// message): a Phoenix message this short, compressed without earlier context, saves a
/// few bytes at most and often grows (BENCHMARKS.md, "Compression").
pub(crate) const MIN_PAYLOAD: usize = 128;

/// zlib's level 1: most of level 6's saving on JSON at a fraction of its CPU
/// (BENCHMARKS.md, "Compression").
const LEVEL: u32 = 1;

/// The empty stored block a sync flush ends with; RFC 7692 has the sender drop it.
const SYNC_TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Compressors kept for the next message: building one allocates about 300 KiB and
/// takes longer than compressing a short message. Shared by every thread (a channel
/// thread each keeping its own would cost that much per channel), and only as many as
/// compressed at once, at most `POOL_MAX`.
static POOL: Mutex<Vec<Compress>> = Mutex::new(Vec::new());
const POOL_MAX: usize = 16;

/// Appends `payload` compressed as one permessage-deflate message to `out`. Returns
/// false, with `out` as it was, when the result would not be shorter than `payload`.
pub(crate) fn compress(payload: &[u8], out: &mut Vec<u8>) -> bool {
    let start = out.len();
    // Room for the payload's own length only: a result that does not fit gains nothing.
    out.reserve(payload.len());
    let taken = POOL.lock().pop();
    let mut compressor = taken.unwrap_or_else(|| Compress::new(Compression::new(LEVEL), false));
    let ok = compressor.compress_vec(payload, out, FlushCompress::Sync).is_ok();
    let done =
        ok && compressor.total_in() == payload.len() as u64 && out.len() < out.capacity() && out.ends_with(&SYNC_TAIL);
    // Each message is compressed on its own: no window is carried to the next.
    compressor.reset();
    let mut pool = POOL.lock();
    if pool.len() < POOL_MAX {
        pool.push(compressor);
    }
    drop(pool);
    // Done, the result ends with the sync tail, so it is at least that long.
    if done && out.len() - start - SYNC_TAIL.len() < payload.len() {
        out.truncate(out.len() - SYNC_TAIL.len());
        true
    } else {
        out.truncate(start);
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Decompress, FlushDecompress};

    fn inflate(compressed: &[u8]) -> Vec<u8> {
        let mut input = compressed.to_vec();
        input.extend_from_slice(&SYNC_TAIL);
        let mut out = Vec::with_capacity(1 << 20);
        Decompress::new(false).decompress_vec(&input, &mut out, FlushDecompress::Sync).unwrap();
        out
    }

    #[test]
    fn a_compressible_payload_comes_back_whole() {
        let payload = br#"{"body":"hello hello hello hello hello hello hello hello hello hello"}"#.repeat(20);
        let mut out = b"head".to_vec();
        assert!(compress(&payload, &mut out));
        assert!(out.len() - 4 < payload.len() / 4);
        assert_eq!(&out[..4], b"head");
        assert_eq!(inflate(&out[4..]), payload);
    }

    #[test]
    fn each_message_is_compressed_without_the_ones_before() {
        let payload = b"the same text, again and again, the same text, again and again".repeat(4);
        let (mut first, mut second) = (Vec::new(), Vec::new());
        assert!(compress(&payload, &mut first));
        assert!(compress(&payload, &mut second));
        assert_eq!(first, second, "no context is carried over");
    }

    #[test]
    fn an_incompressible_payload_is_left_alone() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let mut out = b"head".to_vec();
        assert!(!compress(&noise, &mut out));
        assert_eq!(out, b"head");
    }
}
