//! Packet framing: the 4-byte header (3-byte little-endian payload length + sequence id),
//! cutting wire packets off a read buffer, and the limits every MySQL codec piece takes.
//!
//! Spec: "MySQL Packets" (<https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_basic_packets.html>,
//! <https://mariadb.com/kb/en/0-packet/>). A payload of 2^24-1 bytes or more is sent as a
//! chain: every part but the last carries exactly 0xFFFFFF bytes, each part has the next
//! sequence id, and a payload that is an exact multiple of 0xFFFFFF ends with an empty part.
//!
//! [`PacketFramer`] cuts one wire packet (header + payload) at a time with
//! `split_to(n).freeze()`, so the proxy can forward exactly the bytes it received and never
//! has to hold a whole 16 MiB+ chain; it marks chain parts and enforces the logical payload
//! limit across the chain as the headers arrive. [`peek`] answers the same question without
//! consuming anything, for a filter that scans its buffer and forwards ranges.

use std::fmt;

use bytes::{Bytes, BytesMut};

use super::error::MysqlError;
use crate::framing::{reserve_for_frame, Decode, Limits};

/// Header bytes in front of every payload.
pub const HEADER_LEN: usize = 4;
/// The largest payload one wire packet carries; a payload this long continues in the next.
pub const MAX_PACKET_PAYLOAD: usize = 0xFF_FFFF;

/// Which peer sent a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Client → server.
    Client,
    /// Server → client.
    Server,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Client => "client",
            Direction::Server => "server",
        })
    }
}

/// Size limits for one connection. Every length field is checked against these before the
/// codec waits for (or reserves room for) the bytes it announces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MysqlLimits {
    /// Largest payload of one wire packet (at most [`MAX_PACKET_PAYLOAD`] is ever needed).
    pub max_packet: usize,
    /// Largest logical payload: the sum over a continuation chain (the server's
    /// `max_allowed_packet` plays this role; MariaDB's default is 16 MiB, MySQL 8's 64 MiB).
    pub max_payload: usize,
    /// Largest greeting, login or auth-exchange payload (connection attributes are the
    /// big part; servers cap them at 64 KiB).
    pub max_handshake: usize,
    /// Most columns a result set may announce.
    pub max_columns: u64,
    /// Most commands a client may pipeline before their responses start.
    pub max_pipelined: usize,
}

impl Default for MysqlLimits {
    fn default() -> Self {
        MysqlLimits {
            max_packet: MAX_PACKET_PAYLOAD,
            max_payload: 64 * 1024 * 1024,
            max_handshake: 128 * 1024,
            max_columns: 65_535,
            max_pipelined: 1024,
        }
    }
}

/// A packet header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketHeader {
    pub payload_len: usize,
    pub seq: u8,
}

impl PacketHeader {
    /// Reads the header at the start of `buf`, if four bytes are there.
    pub fn parse(buf: &[u8]) -> Option<PacketHeader> {
        match buf {
            [a, b, c, seq, ..] => Some(PacketHeader {
                payload_len: usize::from(*a) | usize::from(*b) << 8 | usize::from(*c) << 16,
                seq: *seq,
            }),
            _ => None,
        }
    }

    /// Header plus payload.
    pub fn wire_len(&self) -> usize {
        HEADER_LEN + self.payload_len
    }

    /// This payload continues in the next packet of the same direction.
    pub fn is_continued(&self) -> bool {
        self.payload_len == MAX_PACKET_PAYLOAD
    }
}

/// How many bytes the packet at the start of `buf` spans (header included), once all of
/// them are in `buf`; `Ok(None)` while they are not. Consumes nothing, allocates nothing.
pub fn peek(buf: &[u8], limits: &MysqlLimits) -> Result<Option<usize>, MysqlError> {
    let Some(header) = PacketHeader::parse(buf) else { return Ok(None) };
    check_packet_len(header.payload_len, limits)?;
    Ok((buf.len() >= header.wire_len()).then_some(header.wire_len()))
}

fn check_packet_len(len: usize, limits: &MysqlLimits) -> Result<(), MysqlError> {
    if len > limits.max_packet {
        Err(MysqlError::PacketTooLarge { len, limit: limits.max_packet })
    } else {
        Ok(())
    }
}

/// One wire packet: its header and payload bytes exactly as received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    wire: Bytes,
    continuation: bool,
}

impl Packet {
    /// Wraps one wire packet. `continuation` says whether it continues the previous
    /// packet's payload (the framer knows; a caller building packets by hand must say).
    /// Returns `None` unless `wire` is exactly one packet.
    pub fn from_wire(wire: Bytes, continuation: bool) -> Option<Packet> {
        let header = PacketHeader::parse(&wire)?;
        (header.wire_len() == wire.len()).then_some(Packet { wire, continuation })
    }

    /// The header and payload, as received.
    pub fn wire(&self) -> &Bytes {
        &self.wire
    }

    pub fn into_wire(self) -> Bytes {
        self.wire
    }

    pub fn seq(&self) -> u8 {
        self.wire[3]
    }

    pub fn payload(&self) -> &[u8] {
        &self.wire[HEADER_LEN..]
    }

    /// The payload as a zero-copy `Bytes`.
    pub fn payload_bytes(&self) -> Bytes {
        self.wire.slice(HEADER_LEN..)
    }

    /// The payload continues in the next packet (this one carries 0xFFFFFF bytes).
    pub fn is_continued(&self) -> bool {
        self.wire.len() - HEADER_LEN == MAX_PACKET_PAYLOAD
    }

    /// This packet is a later part of a chain, not the start of a message.
    pub fn is_continuation(&self) -> bool {
        self.continuation
    }
}

/// Cuts wire packets off one direction's read buffer (one framer per direction).
#[derive(Clone, Debug)]
pub struct PacketFramer {
    limits: MysqlLimits,
    /// Payload bytes of the chain so far, while inside one.
    chain: Option<usize>,
}

impl PacketFramer {
    pub fn new(limits: MysqlLimits) -> Self {
        PacketFramer { limits, chain: None }
    }

    /// Whether the next packet continues a chain.
    pub fn in_chain(&self) -> bool {
        self.chain.is_some()
    }
}

impl Decode for PacketFramer {
    type Frame = Packet;
    type Error = MysqlError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Packet>, MysqlError> {
        let Some(header) = PacketHeader::parse(buf) else { return Ok(None) };
        check_packet_len(header.payload_len, &self.limits)?;
        // The chain's total is checked as each header shows up, before its bytes are awaited.
        let total = self.chain.unwrap_or(0).saturating_add(header.payload_len);
        if total > self.limits.max_payload {
            return Err(MysqlError::PayloadTooLarge { len: total, limit: self.limits.max_payload });
        }
        let wire_len = header.wire_len();
        if buf.len() < wire_len {
            let frame_limits = Limits { max_frame: self.limits.max_packet + HEADER_LEN, max_depth: 0 };
            reserve_for_frame(buf, wire_len, &frame_limits);
            return Ok(None);
        }
        let continuation = self.chain.is_some();
        self.chain = header.is_continued().then_some(total);
        Ok(Some(Packet { wire: buf.split_to(wire_len).freeze(), continuation }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(len: usize, seq: u8) -> Vec<u8> {
        let mut v = vec![len as u8, (len >> 8) as u8, (len >> 16) as u8, seq];
        v.resize(HEADER_LEN + len, b'x');
        v
    }

    #[test]
    fn peek_waits_for_the_whole_packet() {
        let limits = MysqlLimits::default();
        let p = wire(5, 0);
        for n in 0..p.len() {
            assert_eq!(peek(&p[..n], &limits), Ok(None), "{n}");
        }
        assert_eq!(peek(&p, &limits), Ok(Some(9)));
        let small = MysqlLimits { max_packet: 4, ..limits };
        assert_eq!(peek(&p[..4], &small), Err(MysqlError::PacketTooLarge { len: 5, limit: 4 }));
    }

    #[test]
    fn framer_marks_chain_parts_and_caps_the_chain() {
        let limits = MysqlLimits { max_payload: 2 * MAX_PACKET_PAYLOAD, ..MysqlLimits::default() };
        let mut framer = PacketFramer::new(limits);
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&wire(MAX_PACKET_PAYLOAD, 0));
        buf.extend_from_slice(&wire(MAX_PACKET_PAYLOAD, 1));
        buf.extend_from_slice(&wire(0, 2));
        let first = framer.decode(&mut buf).unwrap().unwrap();
        assert!(first.is_continued() && !first.is_continuation());
        let second = framer.decode(&mut buf).unwrap().unwrap();
        assert!(second.is_continued() && second.is_continuation());
        let last = framer.decode(&mut buf).unwrap().unwrap();
        assert!(!last.is_continued() && last.is_continuation() && last.payload().is_empty());
        assert!(buf.is_empty() && !framer.in_chain());

        // A third full part would pass the logical limit: refused at its header.
        let mut framer = PacketFramer::new(limits);
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&wire(MAX_PACKET_PAYLOAD, 0));
        buf.extend_from_slice(&wire(MAX_PACKET_PAYLOAD, 1));
        buf.extend_from_slice(&wire(MAX_PACKET_PAYLOAD, 2)[..4]);
        framer.decode(&mut buf).unwrap().unwrap();
        framer.decode(&mut buf).unwrap().unwrap();
        assert_eq!(
            framer.decode(&mut buf),
            Err(MysqlError::PayloadTooLarge { len: 3 * MAX_PACKET_PAYLOAD, limit: 2 * MAX_PACKET_PAYLOAD })
        );
    }

    #[test]
    fn a_lying_header_reserves_little() {
        let mut framer = PacketFramer::new(MysqlLimits::default());
        let mut buf = BytesMut::from(&[0xFF, 0xFF, 0xFE, 0][..]);
        assert_eq!(framer.decode(&mut buf), Ok(None));
        assert!(buf.capacity() <= 128 * 1024, "{}", buf.capacity());
    }
}
