//! The MySQL session state machine with arbitrary traffic in both directions, cut into
//! arbitrary reads and framed the way a proxy filter would (`peek`, then feed the packet
//! and forward it): it never panics; forwarded byte ranges are contiguous and, with what is
//! still buffered, cover each direction's input exactly; once the session stops (an error,
//! TLS, compression) everything is forwarded raw; `PacketFramer` cuts the same packets as
//! `peek`; and every `CommandFinished` answers a `CommandStarted` in order (a command
//! without a response finishes in the same packet that starts it).
//!
//! Input: the first byte picks the limits (bit 0: small ones, so limit errors are reached);
//! then records of one header byte (top bit: from the server; low 7 bits: length) followed
//! by that many bytes.

#![no_main]

use std::collections::VecDeque;

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use sluice_codecs::framing::Decode;
use sluice_codecs::mysql::{peek, CommandKind, Direction, Event, MysqlLimits, Outcome, PacketFramer, Session};

#[derive(Default)]
struct Side {
    buf: BytesMut,
    received: Vec<u8>,
    /// Wire lengths of the packets fed to the session, in order.
    packets: Vec<usize>,
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
    session: Session,
    limits: MysqlLimits,
    stopped: bool,
    in_flight: VecDeque<CommandKind>,
}

impl Run {
    fn check(&mut self, events: &[Event<'_>]) {
        let mut started_here: Option<CommandKind> = None;
        for event in events {
            match event {
                Event::CommandStarted { command, .. } => {
                    started_here = Some(command.kind());
                    if command.kind().has_response() {
                        self.in_flight.push_back(command.kind());
                    }
                }
                Event::CommandFinished { command, outcome: Outcome::NoResponse, .. } => {
                    assert_eq!(started_here, Some(*command), "a command without response finishes as it starts");
                    assert!(!command.has_response());
                }
                Event::CommandFinished { command, .. } => {
                    assert_eq!(self.in_flight.pop_front(), Some(*command), "responses finish in order");
                }
                _ => {}
            }
        }
    }

    /// Feeds every complete packet buffered on `side`, forwarding each; once stopped,
    /// forwards the rest raw.
    fn pump(&mut self, dir: Direction, side: &mut Side) {
        loop {
            if self.stopped {
                let start = side.received.len() - side.buf.len();
                side.forward(start, side.buf.len());
                side.buf.clear();
                return;
            }
            let n = match peek(&side.buf, &self.limits) {
                Ok(Some(n)) => n,
                Ok(None) => return,
                Err(_) => {
                    self.stopped = true;
                    continue;
                }
            };
            let start = side.received.len() - side.buf.len();
            let packet = side.buf.split_to(n).freeze();
            side.packets.push(n);
            match self.session.feed(dir, &packet) {
                Ok(events) => {
                    let events: Vec<Event<'_>> = events.into_iter().collect();
                    self.check(&events);
                }
                Err(_) => self.stopped = true,
            }
            let _ = (self.session.state(), self.session.waiting_for(), self.session.commands_in_flight());
            if self.session.opaque().is_some() {
                self.stopped = true;
            }
            side.forward(start, n);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, mut input)) = data.split_first() else { return };
    let limits = if mode & 1 == 1 {
        MysqlLimits { max_packet: 4096, max_payload: 8192, max_handshake: 512, max_columns: 16, max_pipelined: 4 }
    } else {
        MysqlLimits::default()
    };
    let mut run = Run { session: Session::new(limits), limits, stopped: false, in_flight: VecDeque::new() };
    let (mut client, mut server) = (Side::default(), Side::default());
    while let Some((&header, rest)) = input.split_first() {
        let len = usize::from(header & 0x7F).min(rest.len());
        let (chunk, rest) = rest.split_at(len);
        input = rest;
        let (dir, side) =
            if header & 0x80 != 0 { (Direction::Server, &mut server) } else { (Direction::Client, &mut client) };
        side.received.extend_from_slice(chunk);
        side.buf.extend_from_slice(chunk);
        run.pump(dir, side);
        if run.stopped {
            // The other side's buffered bytes go out raw too.
            let (other_dir, other) = if dir == Direction::Server {
                (Direction::Client, &mut client)
            } else {
                (Direction::Server, &mut server)
            };
            run.pump(other_dir, other);
        }
    }
    for side in [&client, &server] {
        assert_eq!(side.forwarded + side.buf.len(), side.received.len(), "forwarded + buffered = received");
        // The framer cuts the same packets as peek (as far as peek went).
        let mut framer = PacketFramer::new(MysqlLimits { max_payload: usize::MAX, ..limits });
        let mut buf = BytesMut::from(&side.received[..]);
        for &n in &side.packets {
            let packet = framer.decode(&mut buf).expect("peek accepted this packet").expect("complete");
            assert_eq!(packet.wire().len(), n);
        }
    }
});
