//! A socket of `mode: pool`, plain or through TLS: the client's side when the listener
//! has `tls` (terminated from the client's first byte, as `redis-cli --tls` starts), a
//! server's side when the cluster has `tls` (originated, verified as the cluster says).
//!
//! The pool's connections are driven by readiness (wait for the socket, then read or
//! write what it takes now, in one task with both directions in flight), so TLS goes
//! through the same sans-I/O rustls session as the stream driver's (`TlsSide`): records
//! read are decrypted into the caller's plaintext buffer, plaintext queued is encrypted
//! straight into the socket. A plain wire is the socket itself, with nothing in between.

use std::io;

use bytes::BytesMut;
use sluice_filters::WriteQueue;
use tokio::net::TcpStream;

use crate::socket_io::{read_once, write_once};
use crate::tls_stream::{TlsFailure, TlsSide};

const READ_CHUNK: usize = 16 * 1024;
const MAX_IOV: usize = 64;

pub struct Wire {
    socket: TcpStream,
    tls: Option<Box<TlsSide>>,
    /// TLS records read from the socket, decrypted at once (empty between reads).
    raw: BytesMut,
    /// Plaintext that arrived while the handshake was being driven by a write: handed
    /// out by the next read.
    early: BytesMut,
    /// Room made in a read buffer before a read.
    chunk: usize,
}

/// What one read brought.
pub enum Read {
    /// This much plaintext (none, when the records read were handshake or alerts).
    Bytes(usize),
    /// Nothing to read now.
    Nothing,
    /// The peer closed (FIN, or TLS close_notify).
    Closed,
}

/// Why a wire failed.
pub enum WireError {
    Io(io::Error),
    /// The TLS session failed; its alert has been sent, as far as the socket took it.
    Tls(TlsFailure),
}

impl From<io::Error> for WireError {
    fn from(e: io::Error) -> Self {
        WireError::Io(e)
    }
}

impl Wire {
    pub fn plain(socket: TcpStream) -> Wire {
        Wire { socket, tls: None, raw: BytesMut::new(), early: BytesMut::new(), chunk: READ_CHUNK }
    }

    pub fn tls(socket: TcpStream, side: TlsSide) -> Wire {
        let raw = BytesMut::with_capacity(READ_CHUNK);
        Wire { socket, tls: Some(Box::new(side)), raw, early: BytesMut::new(), chunk: READ_CHUNK }
    }

    /// Reads in chunks of `chunk` bytes (a pooled server connection reads many clients'
    /// replies at once).
    pub fn read_chunk(mut self, chunk: usize) -> Wire {
        self.chunk = chunk;
        self
    }

    /// The socket, to wait for its readiness.
    pub fn socket(&self) -> &TcpStream {
        &self.socket
    }

    /// Once, when a TLS handshake has ended: the version and the application protocol.
    pub fn handshake_finished(&mut self) -> Option<(&'static str, String)> {
        self.tls.as_mut()?.handshake_finished()
    }

    /// Reads what the socket has now, appending the plaintext to `plain`.
    pub fn read_now(&mut self, plain: &mut BytesMut) -> Result<Read, WireError> {
        if !self.early.is_empty() {
            let n = self.early.len();
            plain.extend_from_slice(&self.early.split());
            return Ok(Read::Bytes(n));
        }
        let Some(tls) = self.tls.as_mut() else {
            if plain.capacity() - plain.len() < self.chunk / 4 {
                plain.reserve(self.chunk);
            }
            return Ok(match read_once(&self.socket, plain)? {
                Some(0) => Read::Closed,
                Some(n) => Read::Bytes(n),
                None => Read::Nothing,
            });
        };
        if self.raw.capacity() - self.raw.len() < self.chunk / 4 {
            self.raw.reserve(self.chunk);
        }
        match read_once(&self.socket, &mut self.raw)? {
            Some(0) => return Ok(Read::Closed),
            None => return Ok(Read::Nothing),
            Some(_) => {}
        }
        let before = plain.len();
        let received = tls.receive(&self.raw, plain);
        self.raw.clear();
        match received {
            Ok(true) => Ok(Read::Closed),
            Ok(false) => Ok(Read::Bytes(plain.len() - before)),
            Err(failure) => {
                // The alert rustls queued goes out if the socket takes it now.
                let _ = tls.write_to(&self.socket, &mut WriteQueue::default());
                Err(WireError::Tls(failure))
            }
        }
    }

    /// Whether there is something to write: plaintext in `queue`, or records of the
    /// TLS session's own (handshake, alerts).
    pub fn wants_write(&self, queue: &WriteQueue) -> bool {
        match &self.tls {
            None => !queue.is_empty(),
            Some(tls) => tls.has_output(queue),
        }
    }

    /// Writes what the socket takes now; returns how much of `queue` went.
    pub fn write_now(&mut self, queue: &mut WriteQueue) -> io::Result<usize> {
        let before = queue.len();
        match self.tls.as_mut() {
            Some(tls) => {
                tls.write_to(&self.socket, queue)?;
            }
            None => {
                while !queue.is_empty() {
                    let (written, wanted) = {
                        let mut slices = [io::IoSlice::new(&[]); MAX_IOV];
                        let count = queue.io_slices(&mut slices);
                        let slices = &slices[..count];
                        (write_once(&self.socket, slices)?, slices.iter().map(|s| s.len()).sum::<usize>())
                    };
                    queue.advance(written);
                    if written < wanted {
                        break;
                    }
                }
            }
        }
        Ok(before - queue.len())
    }

    /// Drives a TLS handshake to its end (a plain wire has none).
    pub async fn handshake(&mut self) -> Result<(), WireError> {
        while self.tls.as_ref().is_some_and(|t| t.handshaking()) {
            let mut none = WriteQueue::default();
            if self.wants_write(&none) {
                self.socket.writable().await?;
                self.write_now(&mut none)?;
            } else {
                self.read_early().await?;
            }
        }
        Ok(())
    }

    /// Writes all of `queue`, driving a TLS handshake as far as that needs.
    pub async fn write_all(&mut self, queue: &mut WriteQueue) -> Result<(), WireError> {
        loop {
            let records_owed = self.tls.as_ref().is_some_and(|t| t.has_output(&WriteQueue::default()));
            if queue.is_empty() && !records_owed {
                return Ok(());
            }
            if self.wants_write(queue) {
                self.socket.writable().await?;
                self.write_now(queue)?;
            } else {
                // Plaintext waits for the handshake, which waits for the peer.
                self.read_early().await?;
            }
        }
    }

    /// Reads while a write waits for the handshake: any plaintext is kept for the next
    /// read; the peer closing is an error.
    async fn read_early(&mut self) -> Result<(), WireError> {
        self.socket.readable().await?;
        let mut early = std::mem::take(&mut self.early);
        let read = self.read_now(&mut early);
        self.early = early;
        match read? {
            Read::Closed => Err(WireError::Io(io::ErrorKind::UnexpectedEof.into())),
            _ => Ok(()),
        }
    }

    /// Waits for plaintext and appends it to `plain`; 0 when the peer closed.
    pub async fn read_some(&mut self, plain: &mut BytesMut) -> Result<usize, WireError> {
        loop {
            // A TLS session may owe the peer records (a key update) before it can read.
            if self.tls.as_ref().is_some_and(|t| t.has_output(&WriteQueue::default())) {
                self.socket.writable().await?;
                self.write_now(&mut WriteQueue::default())?;
            }
            if self.early.is_empty() {
                self.socket.readable().await?;
            }
            match self.read_now(plain)? {
                Read::Bytes(0) | Read::Nothing => continue,
                Read::Bytes(n) => return Ok(n),
                Read::Closed => return Ok(0),
            }
        }
    }
}
