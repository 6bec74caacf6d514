//! Frames waiting to be written to one socket, written with vectored writes: many
//! frames per system call (a lone frame with a plain write).

use bytes::Bytes;
use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};

/// Most frames handed to one `writev`.
const MAX_SLICES: usize = 64;

struct Entry {
    bytes: Bytes,
    /// Whether the frame counts against the connection's outbound limits.
    counted: bool,
    /// The rest of a frame whose start is already on the wire: it is never discarded.
    started: bool,
}

#[derive(Default)]
pub(crate) struct WriteQueue {
    entries: VecDeque<Entry>,
    /// Bytes of the first entry already written.
    offset: usize,
}

/// What one flush wrote.
#[derive(Default, Debug, PartialEq, Eq)]
pub(crate) struct Written {
    /// Bytes written to the socket.
    pub(crate) bytes: usize,
    /// Frames completed.
    pub(crate) frames: usize,
    /// Counted frames completed, and their bytes.
    pub(crate) counted_frames: usize,
    pub(crate) counted_bytes: usize,
}

impl WriteQueue {
    /// Queues a frame that counts against the outbound limits.
    pub(crate) fn push_counted(&mut self, bytes: Bytes) {
        self.entries.push_back(Entry { bytes, counted: true, started: false });
    }

    /// Queues a frame of the connection's own (a reply to a heartbeat, a close frame).
    pub(crate) fn push(&mut self, bytes: Bytes) {
        self.entries.push_back(Entry { bytes, counted: false, started: false });
    }

    /// Puts the rest of a frame another thread began writing ahead of everything. Only
    /// while nothing here is started: the socket had no other writer then.
    pub(crate) fn push_front_rest(&mut self, bytes: Bytes) {
        debug_assert!(self.offset == 0 && !self.entries.front().is_some_and(|e| e.started));
        self.entries.push_front(Entry { bytes, counted: false, started: true });
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Takes every queued frame, in order, with whether it counts against the outbound
    /// limits: for a transport that does not write frames to a socket (long-poll).
    pub(crate) fn take_frames(&mut self) -> impl Iterator<Item = (Bytes, bool)> + '_ {
        debug_assert!(self.offset == 0, "nothing of a taken frame is written");
        self.entries.drain(..).map(|entry| (entry.bytes, entry.counted))
    }

    /// Drops every frame not yet started; returns the counted frames and bytes dropped.
    pub(crate) fn discard_unstarted(&mut self) -> (usize, usize) {
        let keep = usize::from(self.offset > 0 || self.entries.front().is_some_and(|e| e.started));
        let (mut frames, mut bytes) = (0, 0);
        for entry in self.entries.drain(keep..) {
            if entry.counted {
                frames += 1;
                bytes += entry.bytes.len();
            }
        }
        (frames, bytes)
    }

    /// Writes as much as the socket takes. Stops at `WouldBlock` (returning what was
    /// written); other errors are returned.
    pub(crate) fn flush(&mut self, out: &mut impl Write) -> io::Result<Written> {
        let mut written = Written::default();
        while !self.entries.is_empty() {
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let mut count = 0;
            for (i, entry) in self.entries.iter().take(MAX_SLICES).enumerate() {
                let start = if i == 0 { self.offset } else { 0 };
                slices[i] = IoSlice::new(&entry.bytes[start..]);
                count += 1;
            }
            // One frame goes out with `write` (a plain `send` on a socket), which takes a
            // shorter path through the kernel than `writev`.
            let result = if count == 1 { out.write(&slices[0]) } else { out.write_vectored(&slices[..count]) };
            match result {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    written.bytes += n;
                    self.advance(n, &mut written);
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(err),
            }
        }
        Ok(written)
    }

    fn advance(&mut self, mut n: usize, written: &mut Written) {
        while n > 0 {
            let Some(first) = self.entries.front() else { return };
            let left = first.bytes.len() - self.offset;
            if n < left {
                self.offset += n;
                return;
            }
            n -= left;
            self.offset = 0;
            let entry = self.entries.pop_front().expect("front exists");
            written.frames += 1;
            if entry.counted {
                written.counted_frames += 1;
                written.counted_bytes += entry.bytes.len();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that takes at most `room` bytes in total, then blocks.
    struct Throttled {
        data: Vec<u8>,
        room: usize,
        calls: usize,
    }

    impl Write for Throttled {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.write_vectored(&[IoSlice::new(buf)])
        }

        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            self.calls += 1;
            if self.room == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let mut n = 0;
            for buf in bufs {
                let take = buf.len().min(self.room - n);
                self.data.extend_from_slice(&buf[..take]);
                n += take;
            }
            self.room -= n;
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn many_frames_go_out_in_one_call() {
        let mut queue = WriteQueue::default();
        for i in 0..10u8 {
            queue.push_counted(Bytes::from(vec![i; 3]));
        }
        let mut out = Throttled { data: Vec::new(), room: 1000, calls: 0 };
        let written = queue.flush(&mut out).unwrap();
        assert_eq!(out.calls, 1);
        assert_eq!(written, Written { bytes: 30, frames: 10, counted_frames: 10, counted_bytes: 30 });
        assert!(queue.is_empty());
    }

    #[test]
    fn a_partial_write_resumes_mid_frame() {
        let mut queue = WriteQueue::default();
        queue.push_counted(Bytes::from_static(b"hello"));
        queue.push(Bytes::from_static(b"world"));
        let mut out = Throttled { data: Vec::new(), room: 7, calls: 0 };
        let written = queue.flush(&mut out).unwrap();
        assert_eq!((written.frames, written.counted_frames), (1, 1));
        out.room = 100;
        let written = queue.flush(&mut out).unwrap();
        assert_eq!((written.frames, written.counted_frames), (1, 0));
        assert_eq!(out.data, b"helloworld");
    }

    #[test]
    fn the_rest_of_a_frame_begun_elsewhere_goes_first_and_is_never_discarded() {
        let mut queue = WriteQueue::default();
        queue.push(Bytes::from_static(b"pong"));
        queue.push_counted(Bytes::from_static(b"next"));
        queue.push_front_rest(Bytes::from_static(b"-rest"));
        assert_eq!(queue.discard_unstarted(), (1, 4));
        let mut out = Throttled { data: Vec::new(), room: 100, calls: 0 };
        queue.flush(&mut out).unwrap();
        assert_eq!(out.data, b"-rest");
    }

    #[test]
    fn discarding_keeps_a_frame_already_started() {
        let mut queue = WriteQueue::default();
        queue.push_counted(Bytes::from_static(b"hello"));
        queue.push_counted(Bytes::from_static(b"world"));
        let mut out = Throttled { data: Vec::new(), room: 2, calls: 0 };
        queue.flush(&mut out).unwrap();
        assert_eq!(queue.discard_unstarted(), (1, 5));
        out.room = 100;
        queue.flush(&mut out).unwrap();
        assert_eq!(out.data, b"hello");
    }
}
