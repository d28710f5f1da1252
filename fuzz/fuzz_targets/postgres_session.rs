//! The PostgreSQL session with arbitrary traffic in both directions, cut into arbitrary
//! reads and framed the way a proxy filter would (each side buffered; `peek` in the
//! session's current phase for that side, then feed the message and forward it): it never
//! panics; the checks of `sluice_fuzz::postgres` hold on every feed and framing step;
//! forwarded byte ranges are contiguous and, with what is still buffered, cover each
//! direction's input exactly; once the session stops (an error, encryption, close)
//! everything is forwarded raw; nothing allocates more than the input can justify.
//!
//! Input: the first byte picks the limits (bit 0: small ones) and the start (bit 1: a
//! running session after a trust login instead of a fresh one); then records of one
//! header byte (top bit: from the server; low 7 bits: length) followed by that many bytes.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use sluice_codecs::postgres::{Direction, State};
use sluice_fuzz::alloc::{assert_bounded_by, reset_largest, LargestAlloc};
use sluice_fuzz::postgres::{frame, limits, trust_login, Checked};

#[global_allocator]
static ALLOC: LargestAlloc = LargestAlloc;

#[derive(Default)]
struct Side {
    buf: BytesMut,
    received: usize,
    /// Bytes forwarded so far; every forwarded range must start here.
    forwarded: usize,
}

impl Side {
    fn forward(&mut self, start: usize, len: usize) {
        assert_eq!(start, self.forwarded, "forwarded ranges are contiguous");
        self.forwarded += len;
    }
}

struct Run {
    checked: Checked,
    stopped: bool,
}

impl Run {
    /// Feeds every whole message buffered on `side`, forwarding each; once stopped,
    /// forwards the rest raw.
    fn pump(&mut self, dir: Direction, side: &mut Side) {
        loop {
            if self.stopped {
                let start = side.received - side.buf.len();
                side.forward(start, side.buf.len());
                side.buf.clear();
                return;
            }
            let phase = self.checked.session.phase(dir);
            let n = match frame(&side.buf, phase, &self.checked.limits) {
                Ok(Some(n)) => n,
                Ok(None) => return,
                Err(_) => {
                    self.stopped = true;
                    continue;
                }
            };
            let start = side.received - side.buf.len();
            let message = side.buf.split_to(n).freeze();
            self.checked.feed(dir, &message);
            if matches!(self.checked.session.state(), State::Failed | State::Closed | State::Opaque) {
                self.stopped = true;
            }
            side.forward(start, n);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, mut input)) = data.split_first() else { return };
    let limits = limits(mode & 1 == 1);
    let mut checked = Checked::new(limits);
    if mode & 2 != 0 {
        trust_login(&mut checked);
    }
    let mut run = Run { checked, stopped: false };
    let (mut client, mut server) = (Side::default(), Side::default());
    reset_largest();
    while let Some((&header, rest)) = input.split_first() {
        let len = usize::from(header & 0x7F).min(rest.len());
        let (chunk, rest) = rest.split_at(len);
        input = rest;
        let (dir, side, other_dir, other) = if header & 0x80 != 0 {
            (Direction::Backend, &mut server, Direction::Frontend, &mut client)
        } else {
            (Direction::Frontend, &mut client, Direction::Backend, &mut server)
        };
        side.received += chunk.len();
        side.buf.extend_from_slice(chunk);
        run.pump(dir, side);
        // What this side's message changed (the phase, a stop) may let the other side go on.
        run.pump(other_dir, other);
    }
    assert_bounded_by(data.len());
    for side in [&client, &server] {
        assert_eq!(side.forwarded + side.buf.len(), side.received, "forwarded + buffered = received");
    }
    run.checked.check_stopped();
});
