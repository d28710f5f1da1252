//! In-place edits of the connection-phase packets a proxy forwards: the capability flags
//! of the server's greeting (Protocol::HandshakeV10) and of the client's login
//! (Protocol::HandshakeResponse41), for a proxy that changes what the two ends may
//! negotiate (hides TLS and compression, or answers TLS itself). The packet keeps its
//! length; nothing else in it changes.
//!
//! Spec: <https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_connection_phase_packets_protocol_handshake_v10.html>
//! and `..._protocol_handshake_response.html`.

use super::flags::Capabilities;
use super::packet::HEADER_LEN;

/// Clears `clear` and sets `set` among the 32 protocol capability bits of a whole wire
/// greeting (header included). The greeting keeps them in two 16-bit halves: after the
/// protocol version, the NUL-terminated server version, the connection id (4), the first
/// auth data part (8) and a filler byte comes the low half; after the charset (1) and the
/// status flags (2), the high half. A packet too short for a half is left as it is there.
pub fn edit_greeting_capabilities(packet: &mut [u8], clear: Capabilities, set: Capabilities) {
    let Some(version_end) = packet.iter().skip(HEADER_LEN + 1).position(|&b| b == 0) else { return };
    let low = HEADER_LEN + 1 + version_end + 1 + 4 + 8 + 1;
    let high = low + 2 + 1 + 2;
    for (at, shift) in [(low, 0), (high, 16)] {
        let Some(field) = packet.get_mut(at..at + 2) else { continue };
        let half = |caps: Capabilities| (caps.0 >> shift) as u16;
        let value = u16::from_le_bytes([field[0], field[1]]) & !half(clear) | half(set);
        field.copy_from_slice(&value.to_le_bytes());
    }
}

/// Clears `clear` among the protocol capability bits of a whole wire login
/// (HandshakeResponse41 or SSLRequest: the first four payload bytes).
pub fn clear_login_capabilities(packet: &mut [u8], clear: Capabilities) {
    if let Some(field) = packet.get_mut(HEADER_LEN..HEADER_LEN + 4) {
        let value = u32::from_le_bytes([field[0], field[1], field[2], field[3]]) & !(clear.0 as u32);
        field.copy_from_slice(&value.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mysql::Handshake;

    /// A greeting: version "8.0", connection id, auth data, low caps 0xF7FF, charset,
    /// status, high caps 0x0481.
    fn greeting() -> Vec<u8> {
        let mut payload = vec![10];
        payload.extend_from_slice(b"8.0\0");
        payload.extend_from_slice(&7u32.to_le_bytes());
        payload.extend_from_slice(b"abcdefgh\0");
        payload.extend_from_slice(&0xF7FFu16.to_le_bytes());
        payload.push(33);
        payload.extend_from_slice(&2u16.to_le_bytes());
        payload.extend_from_slice(&0x0481u16.to_le_bytes());
        payload.push(21);
        payload.extend_from_slice(&[0; 10]);
        payload.extend_from_slice(b"ijklmnopqrst\0mysql_native_password\0");
        let mut packet = (payload.len() as u32).to_le_bytes()[..3].to_vec();
        packet.push(0);
        packet.extend_from_slice(&payload);
        packet
    }

    #[test]
    fn greeting_bits_change_in_both_halves_and_nothing_else() {
        let before = greeting();
        let mut after = before.clone();
        let clear = Capabilities::CLIENT_COMPRESS.union(Capabilities::CLIENT_ZSTD_COMPRESSION_ALGORITHM);
        edit_greeting_capabilities(&mut after, clear, Capabilities::CLIENT_SSL);
        let caps = |p: &[u8]| Handshake::parse(&p[HEADER_LEN..]).unwrap().capabilities;
        let (old, new) = (caps(&before), caps(&after));
        assert!(
            old.contains(Capabilities::CLIENT_COMPRESS)
                && old.contains(Capabilities::CLIENT_ZSTD_COMPRESSION_ALGORITHM)
        );
        assert!(!new.contains(Capabilities::CLIENT_COMPRESS));
        assert!(!new.contains(Capabilities::CLIENT_ZSTD_COMPRESSION_ALGORITHM));
        assert!(new.contains(Capabilities::CLIENT_SSL));
        assert_eq!(old.0 & !(clear.0 | Capabilities::CLIENT_SSL.0), new.0 & !(clear.0 | Capabilities::CLIENT_SSL.0));
        assert_eq!(before.len(), after.len());
    }

    #[test]
    fn login_bits_are_cleared() {
        let mut login = vec![32, 0, 0, 2];
        login.extend_from_slice(&(Capabilities::CLIENT_SSL.0 as u32 | 0x0200).to_le_bytes());
        login.extend_from_slice(&[0; 28]);
        clear_login_capabilities(&mut login, Capabilities::CLIENT_SSL);
        assert_eq!(u32::from_le_bytes([login[4], login[5], login[6], login[7]]), 0x0200);
        clear_login_capabilities(&mut [0u8; 5], Capabilities::CLIENT_SSL);
    }
}
