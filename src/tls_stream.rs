//! One side of a connection that speaks TLS through sluice: the client's side when sluice
//! terminates TLS (the client asked with a MySQL or PostgreSQL SSLRequest and the
//! handshake follows on the same socket), the upstream side when the cluster originates
//! TLS. rustls's sans-I/O connection (RFC 8446, RFC 5246), server or client, sits between
//! the socket and the driver's buffers.
//!
//! TLS records read from the socket go in with `read_tls`; the plaintext they carry is
//! appended to the side's input buffer, which the filter then reads as it reads a plain
//! connection. Plaintext the filter queues for the side goes in through `writer()`, and
//! the records come out with `write_tls` straight into the socket. rustls caps the records
//! it holds unsent (64 KiB by default), so a slow peer still pushes back: what rustls
//! does not take stays in the driver's write queue, which stops the reads that fill it.
//! Plain connections never come here; their zero-copy path is untouched.

use std::io::{self, IoSlice, Read, Write};
use std::sync::Arc;

use bytes::BytesMut;
use rustls::{ClientConnection, Connection, ServerConfig, ServerConnection};
use sluice_filters::WriteQueue;
use tokio::net::TcpStream;

use crate::socket_io::write_once;

/// Slices handed to rustls per call.
const MAX_IOV: usize = 64;

/// A TLS session on one side's socket.
pub struct TlsSide {
    conn: Connection,
    /// Our close_notify has been queued.
    closing: bool,
    /// The end of the handshake has been reported ([`TlsSide::handshake_finished`]).
    reported: bool,
}

/// The TLS session failed: a handshake the peer and sluice could not agree on, a
/// certificate that does not verify, a corrupt or forged record, or a fatal alert.
#[derive(Debug)]
pub struct TlsFailure(pub Option<rustls::Error>);

impl TlsSide {
    /// Terminates the client's TLS with the listener's settings.
    pub fn server(config: Arc<ServerConfig>) -> Result<Self, TlsFailure> {
        let conn = ServerConnection::new(config).map_err(|e| TlsFailure(Some(e)))?;
        Ok(TlsSide { conn: conn.into(), closing: false, reported: false })
    }

    /// Terminates the client's TLS from its first byte.
    pub fn accepting(conn: ServerConnection) -> Self {
        TlsSide { conn: conn.into(), closing: false, reported: false }
    }

    /// Originates TLS to the server; its ClientHello is the first thing to write.
    pub fn client(conn: ClientConnection) -> Self {
        TlsSide { conn: conn.into(), closing: false, reported: false }
    }

    /// Whether the handshake is still going on.
    pub fn handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Once, when the handshake has ended: the negotiated version (`1.2`, `1.3`) and
    /// application protocol (empty when none was agreed).
    pub fn handshake_finished(&mut self) -> Option<(&'static str, String)> {
        if self.reported || self.conn.is_handshaking() {
            return None;
        }
        self.reported = true;
        let version = match self.conn.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "1.3",
            Some(rustls::ProtocolVersion::TLSv1_2) => "1.2",
            _ => "other",
        };
        let alpn = self.conn.alpn_protocol().map(|p| String::from_utf8_lossy(p).into_owned()).unwrap_or_default();
        Some((version, alpn))
    }

    /// Takes TLS bytes read from the peer and appends the plaintext they carry to
    /// `plain`. Returns true once the peer has closed its TLS session (close_notify),
    /// which ends its stream like a FIN. On failure rustls has queued an alert for the
    /// peer, which [`TlsSide::write_to`] still sends.
    pub fn receive(&mut self, mut tls: &[u8], plain: &mut BytesMut) -> Result<bool, TlsFailure> {
        let mut closed = false;
        while !tls.is_empty() {
            // rustls takes what fits its record buffer; the loop feeds the rest after
            // each batch is processed and its plaintext drained.
            let n = self.conn.read_tls(&mut tls).map_err(|_| TlsFailure(None))?;
            let state = self.conn.process_new_packets().map_err(|e| TlsFailure(Some(e)))?;
            let ready = state.plaintext_bytes_to_read();
            if ready > 0 {
                let start = plain.len();
                plain.resize(start + ready, 0);
                self.conn.reader().read_exact(&mut plain[start..]).map_err(|_| TlsFailure(None))?;
            }
            closed |= state.peer_has_closed();
            if n == 0 {
                break;
            }
        }
        Ok(closed)
    }

    /// Moves as much of `queue` as rustls takes into TLS records.
    fn encrypt(&mut self, queue: &mut WriteQueue) {
        while !queue.is_empty() {
            let taken = {
                let mut slices = [IoSlice::new(&[]); MAX_IOV];
                let count = queue.io_slices(&mut slices);
                self.conn.writer().write_vectored(&slices[..count]).unwrap_or(0)
            };
            if taken == 0 {
                break;
            }
            queue.advance(taken);
        }
    }

    /// Whether there is something to write: records, or plaintext rustls can take now.
    pub fn has_output(&self, queue: &WriteQueue) -> bool {
        self.conn.wants_write() || (!queue.is_empty() && !self.conn.is_handshaking())
    }

    /// Encrypts what it can of `queue` and writes records to `socket` until it would
    /// block; returns the TLS bytes written.
    pub fn write_to(&mut self, socket: &TcpStream, queue: &mut WriteQueue) -> io::Result<usize> {
        let mut total = 0;
        loop {
            self.encrypt(queue);
            if !self.conn.wants_write() {
                return Ok(total);
            }
            match self.conn.write_tls(&mut SocketWriter(socket)) {
                Ok(0) => return Ok(total),
                Ok(n) => total += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(total),
                Err(e) => return Err(e),
            }
        }
    }

    /// Queues our close_notify, once: the TLS way of passing a FIN on.
    pub fn close(&mut self) {
        if !self.closing {
            self.closing = true;
            self.conn.send_close_notify();
        }
    }
}

impl TlsFailure {
    /// A bounded name for why a handshake failed, for the failures counter.
    pub fn reason(&self) -> &'static str {
        use rustls::Error;
        match &self.0 {
            None => "malformed_record",
            Some(Error::InvalidCertificate(_)) => "bad_certificate",
            Some(Error::NoCertificatesPresented) => "no_client_certificate",
            Some(Error::PeerIncompatible(_)) => "incompatible",
            Some(Error::NoApplicationProtocol) => "no_application_protocol",
            Some(Error::AlertReceived(_)) => "alert_received",
            Some(Error::InvalidMessage(_) | Error::PeerMisbehaved(_) | Error::InappropriateHandshakeMessage { .. }) => {
                "protocol_violation"
            }
            Some(Error::DecryptError) => "decrypt_error",
            Some(_) => "other",
        }
    }
}

/// `io::Write` over the nonblocking socket for `write_tls`: a full send buffer is
/// `WouldBlock` (and clears write readiness, as every driver write does).
struct SocketWriter<'a>(&'a TcpStream);

impl Write for SocketWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match write_once(self.0, bufs)? {
            0 if bufs.iter().any(|b| !b.is_empty()) => Err(io::ErrorKind::WouldBlock.into()),
            n => Ok(n),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
