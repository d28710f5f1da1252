//! Connection phase messages: the server's greeting, the client's login (or its TLS
//! request), and the auth exchange that follows.
//!
//! Spec: "Connection Phase Packets"
//! (<https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_connection_phase_packets.html>):
//! Protocol::HandshakeV10, Protocol::HandshakeResponse41 / 320, Protocol::SSLRequest,
//! Protocol::AuthSwitchRequest, Protocol::AuthMoreData; MariaDB's variants
//! (<https://mariadb.com/kb/en/connection/>), which put extended capabilities in reserved
//! bytes when `CLIENT_MYSQL` is clear. caching_sha2_password's fast-auth bytes are from
//! <https://dev.mysql.com/doc/dev/mysql-server/latest/page_caching_sha2_authentication_exchanges.html>;
//! other plugins' data (client_ed25519, parsec, sha256_password) is left opaque.

use super::error::MysqlError;
use super::flags::Capabilities;
use super::flags::StatusFlags;
use super::wire::Reader;

/// Protocol::HandshakeV10, the server's first packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Handshake<'a> {
    pub server_version: &'a [u8],
    /// The server's id for this connection (what `KILL` takes).
    pub connection_id: u32,
    /// The first 8 bytes of the auth nonce ("scramble").
    pub auth_data_1: &'a [u8],
    /// The rest of the nonce, without its trailing NUL.
    pub auth_data_2: &'a [u8],
    /// Server capabilities, MariaDB's extended ones in the high 32 bits.
    pub capabilities: Capabilities,
    pub charset: u8,
    pub status: StatusFlags,
    /// The default authentication plugin, when `CLIENT_PLUGIN_AUTH` is set.
    pub auth_plugin: Option<&'a [u8]>,
}

impl<'a> Handshake<'a> {
    pub fn parse(payload: &'a [u8]) -> Result<Self, MysqlError> {
        let mut r = Reader::new(payload);
        let version = r.u8("protocol version")?;
        if version != 10 {
            return Err(MysqlError::UnsupportedProtocol(version));
        }
        let server_version = r.nul_str("server version")?;
        let connection_id = r.u32("connection id")?;
        let auth_data_1 = r.bytes(8, "auth plugin data part 1")?;
        r.skip(1, "filler")?;
        let mut caps = u64::from(r.u16("capability flags")?);
        let mut h = Handshake {
            server_version,
            connection_id,
            auth_data_1,
            auth_data_2: &[],
            capabilities: Capabilities(caps),
            charset: 0,
            status: StatusFlags(0),
            auth_plugin: None,
        };
        if r.is_empty() {
            // Servers before 4.1 may end here.
            return Ok(h);
        }
        h.charset = r.u8("character set")?;
        h.status = StatusFlags(r.u16("status flags")?);
        caps |= u64::from(r.u16("capability flags (upper)")?) << 16;
        let auth_data_len = r.u8("auth plugin data length")?;
        r.skip(6, "reserved")?;
        let mariadb_caps = r.u32("MariaDB extended capabilities")?;
        if caps & Capabilities::CLIENT_MYSQL.0 == 0 {
            caps |= u64::from(mariadb_caps) << 32;
        }
        h.capabilities = Capabilities(caps);
        if h.capabilities.contains(Capabilities::CLIENT_SECURE_CONNECTION) {
            // max(13, len - 8): 12 more nonce bytes and a NUL for the usual 20-byte nonce.
            let len = usize::from(auth_data_len).saturating_sub(8).max(13);
            let part = r.bytes(len, "auth plugin data part 2")?;
            h.auth_data_2 = part.strip_suffix(&[0]).unwrap_or(part);
        }
        if h.capabilities.contains(Capabilities::CLIENT_PLUGIN_AUTH) {
            h.auth_plugin = Some(r.nul_str_or_rest());
        }
        Ok(h)
    }

    /// A MariaDB server (it clears `CLIENT_MYSQL` to signal extended capabilities).
    pub fn is_mariadb(&self) -> bool {
        !self.capabilities.contains(Capabilities::CLIENT_MYSQL)
    }
}

/// What the client sends after the greeting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Login<'a> {
    /// Protocol::SSLRequest: the short response with `CLIENT_SSL`; TLS starts right after it.
    SslRequest { capabilities: Capabilities, max_packet: u32, charset: u8 },
    /// Protocol::HandshakeResponse41 (or the pre-4.1 HandshakeResponse320).
    Response(HandshakeResponse<'a>),
}

/// Protocol::HandshakeResponse41 / 320.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HandshakeResponse<'a> {
    /// The client's capabilities as sent (MariaDB extended ones in the high 32 bits).
    pub capabilities: Capabilities,
    pub max_packet: u32,
    pub charset: u8,
    pub user: &'a [u8],
    pub auth_response: &'a [u8],
    /// The initial schema, when `CLIENT_CONNECT_WITH_DB` is set.
    pub database: Option<&'a [u8]>,
    pub auth_plugin: Option<&'a [u8]>,
    /// The raw connection attributes block (length-encoded key/value strings).
    pub attributes: Option<&'a [u8]>,
    /// MySQL 8's zstd compression level (`CLIENT_ZSTD_COMPRESSION_ALGORITHM`).
    pub zstd_level: Option<u8>,
}

/// Length of Protocol::SSLRequest (and of HandshakeResponse41's fixed part).
const FIXED_41: usize = 32;

impl<'a> Login<'a> {
    /// Parses the client's login. Its layout is governed by the flags the client sends.
    pub fn parse(payload: &'a [u8]) -> Result<Self, MysqlError> {
        let mut r = Reader::new(payload);
        let low = r.u16("client capability flags")?;
        if u64::from(low) & Capabilities::CLIENT_PROTOCOL_41.0 == 0 {
            return Self::parse_320(low, r);
        }
        let mut r = Reader::new(payload);
        let mut caps = u64::from(r.u32("client capability flags")?);
        let max_packet = r.u32("max packet size")?;
        let charset = r.u8("character set")?;
        r.skip(19, "filler")?;
        let mariadb_caps = r.u32("MariaDB extended capabilities")?;
        if caps & Capabilities::CLIENT_MYSQL.0 == 0 {
            caps |= u64::from(mariadb_caps) << 32;
        }
        let capabilities = Capabilities(caps);
        if payload.len() == FIXED_41 && capabilities.contains(Capabilities::CLIENT_SSL) {
            return Ok(Login::SslRequest { capabilities, max_packet, charset });
        }
        let user = r.nul_str("user name")?;
        let auth_response = if capabilities.contains(Capabilities::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA) {
            r.lenenc_bytes("auth response")?
        } else if capabilities.contains(Capabilities::CLIENT_SECURE_CONNECTION) {
            let len = r.u8("auth response length")?;
            r.bytes(usize::from(len), "auth response")?
        } else {
            r.nul_str("auth response")?
        };
        let mut resp = HandshakeResponse {
            capabilities,
            max_packet,
            charset,
            user,
            auth_response,
            database: None,
            auth_plugin: None,
            attributes: None,
            zstd_level: None,
        };
        if capabilities.contains(Capabilities::CLIENT_CONNECT_WITH_DB) {
            resp.database = Some(r.nul_str_or_rest());
        }
        if capabilities.contains(Capabilities::CLIENT_PLUGIN_AUTH) && !r.is_empty() {
            resp.auth_plugin = Some(r.nul_str_or_rest());
        }
        if capabilities.contains(Capabilities::CLIENT_CONNECT_ATTRS) && !r.is_empty() {
            resp.attributes = Some(r.lenenc_bytes("connection attributes")?);
        }
        if capabilities.contains(Capabilities::CLIENT_ZSTD_COMPRESSION_ALGORITHM) && !r.is_empty() {
            resp.zstd_level = Some(r.u8("zstd compression level")?);
        }
        Ok(Login::Response(resp))
    }

    /// Protocol::HandshakeResponse320: 2-byte flags, 3-byte max packet size.
    fn parse_320(low: u16, mut r: Reader<'a>) -> Result<Self, MysqlError> {
        let capabilities = Capabilities(u64::from(low));
        let max_packet = r.u24("max packet size")?;
        if r.is_empty() && capabilities.contains(Capabilities::CLIENT_SSL) {
            return Ok(Login::SslRequest { capabilities, max_packet, charset: 0 });
        }
        let user = r.nul_str("user name")?;
        let (auth_response, database) = if capabilities.contains(Capabilities::CLIENT_CONNECT_WITH_DB) {
            (r.nul_str("auth response")?, Some(r.nul_str_or_rest()))
        } else {
            (r.rest(), None)
        };
        Ok(Login::Response(HandshakeResponse {
            capabilities,
            max_packet,
            charset: 0,
            user,
            auth_response,
            database,
            auth_plugin: None,
            attributes: None,
            zstd_level: None,
        }))
    }
}

/// Protocol::AuthSwitchRequest (0xFE): use another plugin, with this nonce. MySQL's
/// Protocol::AuthNextFactor (0x02, multi-factor authentication) has the same layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuthSwitch<'a> {
    pub plugin: &'a [u8],
    pub data: &'a [u8],
}

impl<'a> AuthSwitch<'a> {
    pub fn parse(payload: &'a [u8]) -> Result<Self, MysqlError> {
        let mut r = Reader::new(payload);
        let header = r.u8("auth switch header")?;
        if header != 0xFE && header != 0x02 {
            return Err(MysqlError::Malformed { what: "auth switch header" });
        }
        if r.is_empty() && header == 0xFE {
            // Protocol::OldAuthSwitchRequest: a bare 0xFE asks for the pre-4.1 hash.
            return Ok(AuthSwitch { plugin: b"mysql_old_password", data: &[] });
        }
        let plugin = r.nul_str_or_rest();
        Ok(AuthSwitch { plugin, data: r.rest() })
    }
}

/// What a Protocol::AuthMoreData (0x01) packet means, where that is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMoreData<'a> {
    /// caching_sha2_password: the cached hash matched; an OK packet follows.
    FastAuthSuccess,
    /// caching_sha2_password: the client must send the password (over TLS) or ask for
    /// the server's RSA key.
    FullAuthRequired,
    /// Anything else (an RSA public key, client_ed25519 / parsec data...), left opaque.
    Data(&'a [u8]),
}

impl<'a> AuthMoreData<'a> {
    pub fn parse(payload: &'a [u8]) -> Result<Self, MysqlError> {
        match payload {
            [0x01, 0x03] => Ok(AuthMoreData::FastAuthSuccess),
            [0x01, 0x04] => Ok(AuthMoreData::FullAuthRequired),
            [0x01, data @ ..] => Ok(AuthMoreData::Data(data)),
            [] => Err(MysqlError::Truncated { what: "auth more data header" }),
            _ => Err(MysqlError::Malformed { what: "auth more data header" }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn greeting(caps: u32, ext: u32, auth_len: u8, tail: &[u8]) -> Vec<u8> {
        let mut p = vec![10];
        p.extend_from_slice(b"8.0.36\0");
        p.extend_from_slice(&7u32.to_le_bytes());
        p.extend_from_slice(b"abcdefgh\0");
        p.extend_from_slice(&(caps as u16).to_le_bytes());
        p.push(0x21);
        p.extend_from_slice(&2u16.to_le_bytes());
        p.extend_from_slice(&((caps >> 16) as u16).to_le_bytes());
        p.push(auth_len);
        p.extend_from_slice(&[0; 6]);
        p.extend_from_slice(&ext.to_le_bytes());
        p.extend_from_slice(tail);
        p
    }

    #[test]
    fn mysql_greeting() {
        let caps = (Capabilities::CLIENT_MYSQL.0
            | Capabilities::CLIENT_PROTOCOL_41.0
            | Capabilities::CLIENT_SECURE_CONNECTION.0
            | Capabilities::CLIENT_PLUGIN_AUTH.0) as u32;
        let p = greeting(caps, 0xFFFF, 21, b"ijklmnopqrst\0caching_sha2_password\0");
        let h = Handshake::parse(&p).unwrap();
        assert_eq!(h.server_version, b"8.0.36");
        assert_eq!(h.connection_id, 7);
        assert_eq!((h.auth_data_1, h.auth_data_2), (&b"abcdefgh"[..], &b"ijklmnopqrst"[..]));
        assert_eq!(h.capabilities.0, u64::from(caps), "extended bits ignored with CLIENT_MYSQL");
        assert_eq!(h.auth_plugin, Some(&b"caching_sha2_password"[..]));
        assert!(!h.is_mariadb());
    }

    #[test]
    fn greetings_claiming_more_than_they_hold() {
        let caps = (Capabilities::CLIENT_PROTOCOL_41.0 | Capabilities::CLIENT_SECURE_CONNECTION.0) as u32;
        let p = greeting(caps, 1, 255, b"short");
        assert_eq!(Handshake::parse(&p), Err(MysqlError::Truncated { what: "auth plugin data part 2" }));
        assert_eq!(Handshake::parse(&[10, b'x']), Err(MysqlError::Truncated { what: "server version" }));
        assert_eq!(Handshake::parse(&[9]), Err(MysqlError::UnsupportedProtocol(9)));
    }

    #[test]
    fn ssl_request_and_pre_41_login() {
        let mut p =
            (Capabilities::CLIENT_PROTOCOL_41.0 as u32 | Capabilities::CLIENT_SSL.0 as u32).to_le_bytes().to_vec();
        p.resize(32, 0);
        assert!(matches!(Login::parse(&p), Ok(Login::SslRequest { .. })));
        let mut p = (Capabilities::CLIENT_SSL.0 as u16).to_le_bytes().to_vec();
        p.extend_from_slice(&[0, 0, 1]);
        assert!(matches!(Login::parse(&p), Ok(Login::SslRequest { max_packet: 0x10000, .. })));
        let mut p = (Capabilities::CLIENT_CONNECT_WITH_DB.0 as u16).to_le_bytes().to_vec();
        p.extend_from_slice(b"\0\0\x01bob\0hash\0db");
        let Ok(Login::Response(r)) = Login::parse(&p) else { panic!() };
        assert_eq!((r.user, r.auth_response, r.database), (&b"bob"[..], &b"hash"[..], Some(&b"db"[..])));
    }

    #[test]
    fn auth_switch_and_more_data() {
        let s = AuthSwitch::parse(b"\xfeclient_ed25519\0nonce").unwrap();
        assert_eq!((s.plugin, s.data), (&b"client_ed25519"[..], &b"nonce"[..]));
        assert_eq!(AuthSwitch::parse(b"\xfe").unwrap().plugin, b"mysql_old_password");
        assert_eq!(AuthMoreData::parse(b"\x01\x03"), Ok(AuthMoreData::FastAuthSuccess));
        assert_eq!(AuthMoreData::parse(b"\x01\x04"), Ok(AuthMoreData::FullAuthRequired));
        assert_eq!(AuthMoreData::parse(b"\x01-----BEGIN"), Ok(AuthMoreData::Data(b"-----BEGIN")));
    }
}
