//! Logical messages: a whole 0xFFFFFF continuation chain cut as one frame.
//!
//! Spec: "Sending More Than 16Mb" in
//! <https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_basic_packets.html>.
//!
//! For a proxy that would rather see one frame per message than one per wire packet.
//! [`MessageFramer`] waits until every part of a chain is buffered (refusing, at the first
//! header that would pass it, a chain longer than [`MysqlLimits::max_payload`]) and cuts the
//! parts as one `Bytes` holding the original wire bytes, headers included, so forwarding
//! stays byte-exact. [`Message`] exposes the first part's payload and the total length;
//! a contiguous payload is only built by [`Message::reassemble`], on request and capped.

use std::borrow::Cow;

use bytes::{Bytes, BytesMut};

use super::error::MysqlError;
use super::packet::{MysqlLimits, PacketHeader, HEADER_LEN};
use crate::framing::{reserve_for_frame, Decode, Limits};

/// Where the message at the start of a buffer ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageSpan {
    /// Bytes the whole chain spans on the wire, headers included.
    pub wire_len: usize,
    /// The logical payload's length (sum of the parts' payloads).
    pub payload_len: usize,
    /// Wire packets in the chain (1 for an ordinary packet).
    pub parts: u32,
}

/// Finds the message at the start of `buf` without consuming it: `Ok(None)` until all its
/// parts are present. Every header is checked against the limits as soon as it is seen.
pub fn peek_message(buf: &[u8], limits: &MysqlLimits) -> Result<Option<MessageSpan>, MysqlError> {
    let mut at = 0usize;
    let mut payload_len = 0usize;
    let mut parts = 0u32;
    loop {
        let Some(header) = PacketHeader::parse(&buf[at..]) else { return Ok(None) };
        if header.payload_len > limits.max_packet {
            return Err(MysqlError::PacketTooLarge { len: header.payload_len, limit: limits.max_packet });
        }
        payload_len = payload_len.saturating_add(header.payload_len);
        if payload_len > limits.max_payload {
            return Err(MysqlError::PayloadTooLarge { len: payload_len, limit: limits.max_payload });
        }
        parts += 1;
        at += header.wire_len();
        if buf.len() < at {
            return Ok(None);
        }
        if !header.is_continued() {
            return Ok(Some(MessageSpan { wire_len: at, payload_len, parts }));
        }
    }
}

/// One logical message: all the wire packets of a chain, exactly as received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    wire: Bytes,
    payload_len: usize,
    parts: u32,
}

impl Message {
    /// The wire bytes of every part, headers included.
    pub fn wire(&self) -> &Bytes {
        &self.wire
    }

    pub fn into_wire(self) -> Bytes {
        self.wire
    }

    /// The first part's sequence id.
    pub fn seq(&self) -> u8 {
        self.wire[3]
    }

    /// The logical payload's total length.
    pub fn payload_len(&self) -> usize {
        self.payload_len
    }

    pub fn parts(&self) -> u32 {
        self.parts
    }

    /// The first part's payload: the whole payload unless [`Message::parts`] > 1.
    pub fn first_payload(&self) -> &[u8] {
        let first = PacketHeader::parse(&self.wire).map_or(0, |h| h.payload_len);
        &self.wire[HEADER_LEN..HEADER_LEN + first]
    }

    /// Each part as one wire packet (header included), in order: what a
    /// [`super::Session`] is fed.
    pub fn packets(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let mut rest: &[u8] = &self.wire;
        std::iter::from_fn(move || {
            let header = PacketHeader::parse(rest)?;
            let (packet, tail) = rest.split_at(header.wire_len().min(rest.len()));
            rest = tail;
            Some(packet)
        })
    }

    /// The logical payload in one piece: borrowed when there is one part, copied otherwise.
    /// Refuses (before allocating) a payload longer than `limit`.
    pub fn reassemble(&self, limit: usize) -> Result<Cow<'_, [u8]>, MysqlError> {
        if self.payload_len > limit {
            return Err(MysqlError::ReassemblyTooLarge { len: self.payload_len, limit });
        }
        if self.parts == 1 {
            return Ok(Cow::Borrowed(self.first_payload()));
        }
        let mut out = Vec::with_capacity(self.payload_len);
        for packet in self.packets() {
            out.extend_from_slice(&packet[HEADER_LEN..]);
        }
        Ok(Cow::Owned(out))
    }
}

/// Cuts whole messages (continuation chains joined) off one direction's read buffer.
#[derive(Clone, Debug)]
pub struct MessageFramer {
    limits: MysqlLimits,
}

impl MessageFramer {
    pub fn new(limits: MysqlLimits) -> Self {
        MessageFramer { limits }
    }
}

impl Decode for MessageFramer {
    type Frame = Message;
    type Error = MysqlError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Message>, MysqlError> {
        match peek_message(buf, &self.limits)? {
            Some(span) => Ok(Some(Message {
                wire: buf.split_to(span.wire_len).freeze(),
                payload_len: span.payload_len,
                parts: span.parts,
            })),
            None => {
                // Room for the next read, in the same capped steps as every codec (the
                // bytes have to arrive before more is kept).
                let limits = Limits { max_frame: usize::MAX, max_depth: 0 };
                reserve_for_frame(buf, buf.len().saturating_add(64 * 1024), &limits);
                Ok(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mysql::MAX_PACKET_PAYLOAD;

    fn part(len: usize, seq: u8, fill: u8) -> Vec<u8> {
        let mut v = vec![len as u8, (len >> 8) as u8, (len >> 16) as u8, seq];
        v.resize(HEADER_LEN + len, fill);
        v
    }

    #[test]
    fn a_chain_is_one_message_and_reassembles_on_request() {
        let mut wire = part(MAX_PACKET_PAYLOAD, 0, b'a');
        wire.extend(part(10, 1, b'b'));
        wire.extend(part(3, 0, b'c'));
        let limits = MysqlLimits::default();
        for n in 0..MAX_PACKET_PAYLOAD + 14 {
            // Any prefix short of the whole chain is "need more".
            if n % 4099 == 0 || n > MAX_PACKET_PAYLOAD {
                assert_eq!(peek_message(&wire[..n], &limits), Ok(None), "{n}");
            }
        }
        let mut buf = BytesMut::from(&wire[..]);
        let mut framer = MessageFramer::new(limits);
        let m = framer.decode(&mut buf).unwrap().unwrap();
        assert_eq!((m.parts(), m.payload_len(), m.seq()), (2, MAX_PACKET_PAYLOAD + 10, 0));
        assert_eq!(m.first_payload().len(), MAX_PACKET_PAYLOAD);
        assert_eq!(m.packets().count(), 2);
        assert_eq!(m.reassemble(100), Err(MysqlError::ReassemblyTooLarge { len: MAX_PACKET_PAYLOAD + 10, limit: 100 }));
        let whole = m.reassemble(usize::MAX).unwrap();
        assert_eq!(whole.len(), MAX_PACKET_PAYLOAD + 10);
        assert_eq!(&whole[MAX_PACKET_PAYLOAD - 1..MAX_PACKET_PAYLOAD + 1], b"ab");
        let next = framer.decode(&mut buf).unwrap().unwrap();
        assert!(matches!(next.reassemble(3), Ok(Cow::Borrowed(b"ccc"))));
        assert!(buf.is_empty());
    }

    #[test]
    fn chains_over_the_limit_are_refused_at_the_header() {
        let limits = MysqlLimits { max_payload: MAX_PACKET_PAYLOAD + 5, ..MysqlLimits::default() };
        let mut wire = part(MAX_PACKET_PAYLOAD, 0, 0);
        wire.extend(&part(6, 1, 0)[..HEADER_LEN]);
        assert_eq!(
            peek_message(&wire, &limits),
            Err(MysqlError::PayloadTooLarge { len: MAX_PACKET_PAYLOAD + 6, limit: MAX_PACKET_PAYLOAD + 5 })
        );
    }
}
