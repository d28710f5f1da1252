//! Encoding the packets sluice writes itself: the ERR packet that refuses a command or a
//! login, an OK for commands answered locally, and the framing around any payload.
//!
//! Spec: "ERR_Packet" and "OK_Packet" in
//! <https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_basic_response_packets.html>.
//! The sequence id is the caller's: the next one of the exchange being answered (1 for a
//! reply to a command, 2 for a reply to a login, 0 instead of a greeting).

use bytes::{BufMut, BytesMut};

use super::flags::StatusFlags;
use super::packet::MAX_PACKET_PAYLOAD;
use super::response::{ERR_HEADER, OK_HEADER};

/// The longest error message written. libmysqlclient and libmariadb keep 512 bytes
/// (MYSQL_ERRMSG_SIZE) and truncate the rest themselves; staying under that keeps the
/// message whole in every client.
pub const MAX_ERROR_MESSAGE: usize = 511;

/// Appends a length-encoded integer.
pub fn put_lenenc_int(out: &mut BytesMut, v: u64) {
    match v {
        0..=0xFA => out.put_u8(v as u8),
        0xFB..=0xFFFF => {
            out.put_u8(0xFC);
            out.put_u16_le(v as u16);
        }
        0x1_0000..=0xFF_FFFF => {
            out.put_u8(0xFD);
            out.put_slice(&(v as u32).to_le_bytes()[..3]);
        }
        _ => {
            out.put_u8(0xFE);
            out.put_u64_le(v);
        }
    }
}

/// Appends `payload` as one packet with sequence id `seq`, or as a continuation chain with
/// consecutive ids when it is 0xFFFFFF bytes or longer. Returns the sequence id of the last
/// packet written.
pub fn encode_packet(out: &mut BytesMut, seq: u8, payload: &[u8]) -> u8 {
    out.reserve(payload.len() + 4 * (1 + payload.len() / MAX_PACKET_PAYLOAD));
    let mut seq = seq;
    let mut rest = payload;
    loop {
        let n = rest.len().min(MAX_PACKET_PAYLOAD);
        out.put_slice(&(n as u32).to_le_bytes()[..3]);
        out.put_u8(seq);
        out.put_slice(&rest[..n]);
        rest = &rest[n..];
        if n < MAX_PACKET_PAYLOAD {
            return seq;
        }
        seq = seq.wrapping_add(1);
    }
}

/// Appends an ERR packet. `sqlstate` is written after a `#` marker (what 4.1+ clients
/// expect; pass `None` only before a greeting, where clients do not look for it). The
/// message is cut at [`MAX_ERROR_MESSAGE`] bytes.
pub fn encode_err(out: &mut BytesMut, seq: u8, code: u16, sqlstate: Option<&[u8; 5]>, message: &[u8]) {
    let message = &message[..message.len().min(MAX_ERROR_MESSAGE)];
    let len = 3 + sqlstate.map_or(0, |_| 6) + message.len();
    out.reserve(4 + len);
    out.put_slice(&(len as u32).to_le_bytes()[..3]);
    out.put_u8(seq);
    out.put_u8(ERR_HEADER);
    out.put_u16_le(code);
    if let Some(state) = sqlstate {
        out.put_u8(b'#');
        out.put_slice(state);
    }
    out.put_slice(message);
}

/// Appends an OK packet (protocol 4.1 layout, no info string).
pub fn encode_ok(
    out: &mut BytesMut,
    seq: u8,
    affected_rows: u64,
    last_insert_id: u64,
    status: StatusFlags,
    warnings: u16,
) {
    let mut payload = BytesMut::with_capacity(24);
    payload.put_u8(OK_HEADER);
    put_lenenc_int(&mut payload, affected_rows);
    put_lenenc_int(&mut payload, last_insert_id);
    payload.put_u16_le(status.bits());
    payload.put_u16_le(warnings);
    encode_packet(out, seq, &payload);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mysql::{read_lenenc_int, Capabilities, OkPacket, ServerError};

    #[test]
    fn lenenc_round_trip() {
        for v in [0, 1, 250, 251, 0xFFFF, 0x1_0000, 0xFF_FFFF, 0x100_0000, u64::MAX] {
            let mut out = BytesMut::new();
            put_lenenc_int(&mut out, v);
            assert_eq!(read_lenenc_int(&out), Ok((v, out.len())), "{v}");
        }
    }

    #[test]
    fn err_and_ok_parse_back() {
        let mut out = BytesMut::new();
        encode_err(&mut out, 1, 1142, Some(b"42000"), b"SELECT denied by sluice policy");
        assert_eq!(&out[..4], &[out.len() as u8 - 4, 0, 0, 1]);
        let e = ServerError::parse(&out[4..]).unwrap();
        assert_eq!(
            (e.code, e.sqlstate_str(), e.message),
            (1142, Some("42000"), &b"SELECT denied by sluice policy"[..])
        );

        let mut out = BytesMut::new();
        encode_err(&mut out, 0, 1040, None, &[b'x'; 2000]);
        let e = ServerError::parse(&out[4..]).unwrap();
        assert_eq!((e.code, e.sqlstate, e.message.len()), (1040, None, MAX_ERROR_MESSAGE));

        let mut out = BytesMut::new();
        encode_ok(&mut out, 1, 300, 7, StatusFlags::SERVER_STATUS_AUTOCOMMIT, 2);
        let ok = OkPacket::parse(&out[4..], Capabilities::CLIENT_PROTOCOL_41).unwrap();
        assert_eq!((ok.affected_rows, ok.last_insert_id, ok.status, ok.warnings), (300, 7, StatusFlags(2), 2));
    }

    #[test]
    fn long_payloads_become_chains() {
        let mut out = BytesMut::new();
        let last = encode_packet(&mut out, 255, &vec![7u8; MAX_PACKET_PAYLOAD]);
        assert_eq!(last, 0, "the ids wrap");
        assert_eq!(out.len(), 2 * 4 + MAX_PACKET_PAYLOAD, "an exact multiple ends with an empty packet");
        assert_eq!(&out[out.len() - 4..], &[0, 0, 0, 0]);
    }
}
