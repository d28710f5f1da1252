//! The contract of a protocol filter: the one filter of a chain that reads the byte
//! stream frame by frame (DESIGN.md "Filters").
//!
//! Unlike the connection-level [`Filter`](crate::Filter), which sees each read and lets
//! it through, a stream filter owns the decision of what goes where. The driver keeps one
//! read buffer per direction and hands it over after every read; the filter cuts off the
//! complete frames it has decided about (`split_to(n).freeze()`: no copy) and queues them
//! for the other side, queues its own replies for the client, and leaves an incomplete
//! frame (or commands it holds back) in the buffer for the next call. Consecutive frames
//! that pass unchanged leave as one slice, so forwarding a pipeline costs one queue entry.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};

use crate::filter::FilterStatus;

/// Byte slices waiting to be written to one socket, in order.
#[derive(Default, Debug)]
pub struct WriteQueue {
    chunks: VecDeque<Bytes>,
    len: usize,
}

impl WriteQueue {
    pub fn push(&mut self, chunk: Bytes) {
        if !chunk.is_empty() {
            self.len += chunk.len();
            self.chunks.push_back(chunk);
        }
    }

    /// Slices queued (each a separate piece of one vectored write).
    pub fn chunk_count(&self) -> usize {
        self.chunks.len()
    }

    /// Bytes queued.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Fills `slices` with the first queued chunks for one vectored write; returns how
    /// many it filled.
    pub fn io_slices<'a>(&'a self, slices: &mut [IoSlice<'a>]) -> usize {
        let mut n = 0;
        for (slot, chunk) in slices.iter_mut().zip(&self.chunks) {
            *slot = IoSlice::new(chunk);
            n += 1;
        }
        n
    }

    /// Drops `written` bytes from the front, after a write took them.
    pub fn advance(&mut self, mut written: usize) {
        self.len -= written.min(self.len);
        while written > 0 {
            let Some(front) = self.chunks.front_mut() else { return };
            if written < front.len() {
                front.advance(written);
                return;
            }
            written -= front.len();
            self.chunks.pop_front();
        }
    }

    /// Copies out everything queued and empties the queue: what a test, a fuzz target or a
    /// benchmark reads instead of a socket.
    pub fn take_all(&mut self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len);
        for chunk in self.chunks.drain(..) {
            out.extend_from_slice(&chunk);
        }
        self.len = 0;
        out
    }

    /// Gives back the queue's memory once it is empty, so an idle connection holds none.
    pub fn shrink(&mut self) {
        if self.chunks.is_empty() && self.chunks.capacity() > 0 {
            self.chunks = VecDeque::new();
        }
    }
}

/// What a stream filter may touch while it handles one direction: the time of the read
/// (one clock read per wakeup, shared by every frame of it) and the two output queues.
pub struct StreamIo<'a> {
    pub now: Instant,
    /// Bytes for the upstream server.
    pub to_upstream: &'a mut WriteQueue,
    /// Bytes for the client: forwarded replies and the filter's own.
    pub to_downstream: &'a mut WriteQueue,
}

/// A protocol filter over the whole byte stream of a connection.
///
/// `input` holds everything read from that side and not yet taken; bytes only ever arrive
/// at its end. `eof` says the side has sent FIN: nothing more will arrive, and the filter
/// should pass on (or drop) any incomplete frame it is left with, because the driver passes
/// the FIN on only once `input` is empty.
pub trait StreamFilter {
    /// Bytes from the client. Also called, with nothing new, at [`StreamFilter::wake_at`].
    fn on_downstream(&mut self, input: &mut BytesMut, eof: bool, io: &mut StreamIo<'_>) -> FilterStatus;

    /// Bytes from the upstream server.
    fn on_upstream(&mut self, input: &mut BytesMut, eof: bool, io: &mut StreamIo<'_>) -> FilterStatus;

    /// When the filter holds client bytes back (a delayed command), the instant it wants
    /// `on_downstream` called again. While it holds, the driver reads no more from the
    /// client than the hold allows, so a held pipeline pushes back on the client. Like
    /// [`StreamFilter::downstream_paused`], it may change only inside `on_downstream` and
    /// `on_upstream`: the driver reads it after each of them, not on every turn.
    fn wake_at(&self) -> Option<Instant> {
        None
    }

    /// Whether the driver should stop reading from the client for now (the filter tracks
    /// as many requests in flight as it will); it reads again once this turns false.
    fn downstream_paused(&self) -> bool {
        false
    }
}

/// The stream filter of a `tcp` listener whose bytes go through TLS on either side: it
/// forwards everything as it comes (the driver does the TLS). Plain `tcp` connections do
/// not use it; they keep the driver without filters.
pub struct Passthrough;

impl StreamFilter for Passthrough {
    fn on_downstream(&mut self, input: &mut BytesMut, _eof: bool, io: &mut StreamIo<'_>) -> FilterStatus {
        io.to_upstream.push(take(input, input.len()));
        FilterStatus::Continue
    }

    fn on_upstream(&mut self, input: &mut BytesMut, _eof: bool, io: &mut StreamIo<'_>) -> FilterStatus {
        io.to_downstream.push(take(input, input.len()));
        FilterStatus::Continue
    }
}

/// Takes the first `n` bytes of `input` as one frozen slice (no copy).
pub fn take(input: &mut BytesMut, n: usize) -> Bytes {
    input.split_to(n).freeze()
}

/// Cuts off the `n`-byte frame that follows the first `run` bytes of `input`, after
/// queueing those `run` bytes (decided to pass unchanged) for `to`; `run` starts over at 0.
/// The frame comes back uncopied and mutable, for a filter that rewrites it.
pub fn take_frame(input: &mut BytesMut, run: &mut usize, n: usize, to: &mut WriteQueue) -> BytesMut {
    to.push(take(input, *run));
    *run = 0;
    input.split_to(n)
}

/// As [`take_frame`], for a frame that goes nowhere (refused, or answered here).
pub fn drop_frame(input: &mut BytesMut, run: &mut usize, n: usize, to: &mut WriteQueue) {
    to.push(take(input, *run));
    *run = 0;
    input.advance(n);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_advances_across_chunks() {
        let mut q = WriteQueue::default();
        q.push(Bytes::from_static(b"abc"));
        q.push(Bytes::new());
        q.push(Bytes::from_static(b"defg"));
        assert_eq!(q.len(), 7);
        {
            let mut slices = [IoSlice::new(&[]); 4];
            assert_eq!(q.io_slices(&mut slices), 2);
        }
        q.advance(4);
        assert_eq!(q.len(), 3);
        let mut slices = [IoSlice::new(&[]); 4];
        let n = q.io_slices(&mut slices);
        assert_eq!(&*slices[0], b"efg");
        assert_eq!(n, 1);
        q.advance(3);
        assert!(q.is_empty());
        q.shrink();
    }
}
