//! What both TCP connection drivers (the plain byte pump in `tcp_proxy` and the protocol
//! driver in `stream_proxy`) do to their sockets: which side failed, one read and one
//! write that clear readiness on a short transfer, and passing a FIN on.

use std::io::{self, IoSlice};
use std::net::Shutdown;

use bytes::BytesMut;
use sluice_filters::CloseReason;
use tokio::io::Interest;
use tokio::net::TcpStream;

/// Idle checks per idle timeout: a connection closes between 1 and 1.25 timeouts after
/// its last byte, and moving bytes costs no clock read.
pub const IDLE_TICKS: u32 = 4;

/// One of a connection's two sockets.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Downstream,
    Upstream,
}

impl Side {
    /// Why the connection ends when this side's socket fails.
    /// The `side` label of per-side metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Downstream => "downstream",
            Side::Upstream => "upstream",
        }
    }

    pub fn error(self) -> CloseReason {
        match self {
            Side::Downstream => CloseReason::DownstreamError,
            Side::Upstream => CloseReason::UpstreamError,
        }
    }

    /// Why the connection ends when this side's TLS session fails.
    pub fn tls_error(self) -> CloseReason {
        match self {
            Side::Downstream => CloseReason::TlsError,
            Side::Upstream => CloseReason::UpstreamTlsError,
        }
    }

    pub fn other(self) -> Side {
        match self {
            Side::Downstream => Side::Upstream,
            Side::Upstream => Side::Downstream,
        }
    }
}

/// Reads once into `buf`'s spare room; `None` when there is nothing to read.
///
/// A short read means the socket's receive queue is drained, so read readiness is
/// cleared right there, as nginx does, instead of by one more read that could only
/// return EAGAIN: one syscall less per wakeup. New data raises a new edge-triggered
/// event, and tokio keeps a FIN's read-closed state however readiness is cleared.
pub fn read_once(source: &TcpStream, buf: &mut BytesMut) -> io::Result<Option<usize>> {
    let room = buf.capacity() - buf.len();
    let mut read = None;
    let result = source.try_io(Interest::READABLE, || {
        let n = source.try_read_buf(buf)?;
        read = Some(n);
        if n > 0 && n < room {
            Err(io::ErrorKind::WouldBlock.into())
        } else {
            Ok(())
        }
    });
    match (read, result) {
        (Some(n), _) => Ok(Some(n)),
        (None, Err(e)) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => Ok(None),
        (None, Err(e)) => Err(e),
        (None, Ok(())) => Ok(None),
    }
}

/// Writes what the socket takes now of `slices` (possibly nothing). One slice goes by
/// send(2), which costs the kernel less than writev(2) and its iovec import. A short write
/// means the send buffer is full, so write readiness is cleared at once, like a short read.
pub fn write_once(sink: &TcpStream, slices: &[IoSlice<'_>]) -> io::Result<usize> {
    let wanted: usize = slices.iter().map(|s| s.len()).sum();
    let mut written = 0;
    let result = sink.try_io(Interest::WRITABLE, || {
        written = match slices {
            [one] => sink.try_write(one)?,
            _ => sink.try_write_vectored(slices)?,
        };
        if written < wanted {
            Err(io::ErrorKind::WouldBlock.into())
        } else {
            Ok(())
        }
    });
    match result {
        Ok(()) => Ok(written),
        Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => Ok(written),
        Err(e) => Err(e),
    }
}

/// Passes a FIN on: shuts down writing to `sink`. A peer that already closed is fine.
pub fn shutdown_write(sink: &TcpStream) -> io::Result<()> {
    match socket2::SockRef::from(sink).shutdown(Shutdown::Write) {
        Err(e) if e.kind() != io::ErrorKind::NotConnected => Err(e),
        _ => Ok(()),
    }
}
