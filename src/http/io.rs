//! The byte streams of the `http` listener: a client connection (plain TCP, or TLS
//! terminated by tokio-rustls from the first byte) and an upstream connection (plain, or
//! TLS originated with the cluster's `tls`), behind one `AsyncRead + AsyncWrite` type so
//! the request/response logic does not care which it has.
//!
//! tokio-rustls rather than the runtime's `TlsSide`: the HTTP driver is written as plain
//! async reads and writes (one request at a time, awaiting each write, which is the
//! backpressure), and tokio-rustls gives exactly that stream over the same rustls
//! `ServerConfig`/`ClientConfig` the other listeners use. `TlsSide` fits the readiness
//! pump of `stream_proxy`, which the HTTP driver does not use.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::BytesMut;
use sluice_filters::CloseReason;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::listener::ListenerRuntime;

/// How much one read takes at most: also the most a direction buffers beyond a head.
pub const READ_CHUNK: usize = 64 * 1024;
/// The first read buffer of an upstream response: small heads and bodies need no more,
/// and a 64 KiB allocation freed per request costs the allocator (consolidation).
pub const FIRST_READ: usize = 8 * 1024;

/// Reads once into `buf`, keeping at most one read chunk of room.
pub async fn read_into<R: AsyncRead + Unpin>(io: &mut R, buf: &mut BytesMut) -> io::Result<usize> {
    if buf.capacity() - buf.len() < 4096 {
        buf.reserve(READ_CHUNK);
    }
    io.read_buf(buf).await
}

pub async fn write_flush<W: AsyncWrite + Unpin>(io: &mut W, bytes: &[u8]) -> io::Result<()> {
    io.write_all(bytes).await?;
    io.flush().await
}

/// The client's byte stream: TLS terminated when the listener has `tls` (the handshake
/// bounded by the idle timeout, at most 10 s) with `server`, and whether it is TLS.
pub async fn accept_tls(
    stream: TcpStream,
    server: Option<&std::sync::Arc<rustls::ServerConfig>>,
    runtime: &ListenerRuntime,
    idle_timeout: Duration,
) -> Result<(Conn, bool), CloseReason> {
    let Some(server) = server else { return Ok((Conn::Plain(stream), false)) };
    let accept = tokio_rustls::TlsAcceptor::from(server.clone()).accept(stream);
    match timeout(idle_timeout.min(Duration::from_secs(10)), accept).await {
        Ok(Ok(s)) => {
            let (_, session) = s.get_ref();
            let version = match session.protocol_version() {
                Some(rustls::ProtocolVersion::TLSv1_3) => "1.3",
                Some(rustls::ProtocolVersion::TLSv1_2) => "1.2",
                _ => "other",
            };
            let alpn = session.alpn_protocol().map(|p| String::from_utf8_lossy(p).into_owned()).unwrap_or_default();
            runtime.stats.tls.handshake("downstream", version, alpn);
            Ok((Conn::ServerTls(Box::new(s)), true))
        }
        Ok(Err(e)) => {
            tracing::debug!(listener = %runtime.name, error = %e, "TLS handshake failed");
            runtime.stats.tls.failure("downstream", "handshake");
            Err(CloseReason::TlsError)
        }
        Err(_) => {
            runtime.stats.tls.failure("downstream", "timeout");
            Err(CloseReason::TlsError)
        }
    }
}

/// One side's byte stream.
pub enum Conn {
    Plain(TcpStream),
    ServerTls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    ClientTls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Conn {
    /// The protocol the client chose by ALPN (TLS only).
    pub fn alpn(&self) -> Option<&[u8]> {
        match self {
            Conn::ServerTls(s) => s.get_ref().1.alpn_protocol(),
            _ => None,
        }
    }

    /// Whether an idle connection can still be used: nothing to read (no early response,
    /// no FIN, no reset). Polled once with a no-op waker, so it never waits.
    pub fn is_reusable(&mut self) -> bool {
        let mut byte = [0u8; 1];
        let mut buf = ReadBuf::new(&mut byte);
        let mut cx = Context::from_waker(Waker::noop());
        matches!(Pin::new(self).poll_read(&mut cx, &mut buf), Poll::Pending)
    }
}

impl AsyncRead for Conn {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::ServerTls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Conn::ClientTls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::ServerTls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Conn::ClientTls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Conn::ServerTls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
            Conn::ClientTls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Conn::Plain(s) => s.is_write_vectored(),
            Conn::ServerTls(s) => s.is_write_vectored(),
            Conn::ClientTls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::ServerTls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Conn::ClientTls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::ServerTls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Conn::ClientTls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// A client stream with bytes already read from it (the sniffed HTTP/2 preface) put back
/// in front, counting bytes both ways for the connection record and the listener stats.
pub struct Prefixed<T> {
    prefix: bytes::Bytes,
    inner: T,
    pub rx: std::rc::Rc<std::cell::Cell<u64>>,
    pub tx: std::rc::Rc<std::cell::Cell<u64>>,
    runtime: std::sync::Arc<ListenerRuntime>,
}

impl<T> Prefixed<T> {
    pub fn new(prefix: bytes::Bytes, inner: T, runtime: std::sync::Arc<ListenerRuntime>) -> Self {
        Prefixed { prefix, inner, rx: Default::default(), tx: Default::default(), runtime }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Prefixed<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.prefix.is_empty() {
            let n = this.prefix.len().min(buf.remaining());
            buf.put_slice(&this.prefix.split_to(n));
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        let n = (buf.filled().len() - before) as u64;
        if n > 0 {
            this.rx.set(this.rx.get() + n);
            this.runtime.stats.bytes_rx.increment(n);
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Prefixed<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = r {
            this.tx.set(this.tx.get() + n as u64);
            this.runtime.stats.bytes_tx.increment(n as u64);
        }
        r
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = r {
            this.tx.set(this.tx.get() + n as u64);
            this.runtime.stats.bytes_tx.increment(n as u64);
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
