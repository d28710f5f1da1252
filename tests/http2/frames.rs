//! A minimal blocking HTTP/2 client made of hand-built frames (RFC 9113 §4, §6) and
//! literal HPACK fields (RFC 7541 §6.2.2, no Huffman), for tests that need frames no
//! well-behaved client sends.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const WINDOW_UPDATE: u8 = 0x8;
pub const CONTINUATION: u8 = 0x9;

pub const END_STREAM: u8 = 0x1;
pub const ACK: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;

pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    f.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An HPACK integer with an `n`-bit prefix whose high bits are `first`.
fn integer(out: &mut Vec<u8>, first: u8, n: u32, mut value: usize) {
    let max = (1usize << n) - 1;
    if value < max {
        out.push(first | value as u8);
        return;
    }
    out.push(first | max as u8);
    value -= max;
    while value >= 128 {
        out.push((value % 128) as u8 | 0x80);
        value /= 128;
    }
    out.push(value as u8);
}

fn string(out: &mut Vec<u8>, s: &[u8]) {
    integer(out, 0, 7, s.len());
    out.extend_from_slice(s);
}

/// A literal field without indexing, new name.
pub fn literal(name: &str, value: &str) -> Vec<u8> {
    let mut out = vec![0];
    string(&mut out, name.as_bytes());
    string(&mut out, value.as_bytes());
    out
}

/// A literal field without indexing, the name from static table entry `index`.
pub fn literal_indexed(index: usize, value: &str) -> Vec<u8> {
    let mut out = Vec::new();
    integer(&mut out, 0, 4, index);
    string(&mut out, value.as_bytes());
    out
}

/// The header block of a request for `path` on `sluice.test`.
pub fn request_block(method: &str, path: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut b = match method {
        "GET" => vec![0x82],
        "POST" => vec![0x83],
        m => literal_indexed(2, m),
    };
    b.push(0x86); // :scheme http
    b.extend(literal_indexed(4, path));
    b.extend(literal_indexed(1, "sluice.test"));
    for (n, v) in extra {
        b.extend(literal(n, v));
    }
    b
}

pub struct Frame {
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
    pub payload: Vec<u8>,
}

#[derive(Debug, Default)]
pub struct Response {
    /// HEADERS frames received on the stream (2 when trailers followed).
    pub header_blocks: usize,
    /// The first byte of the first header block (0x88 is `:status: 200` from the static table).
    pub first_byte: Option<u8>,
    pub data: Vec<u8>,
    pub ended: bool,
    pub reset: Option<u32>,
    pub goaway: Option<u32>,
}

pub struct H2Conn {
    pub stream: TcpStream,
    next_id: u32,
    /// SETTINGS the server sent: (identifier, value).
    pub settings: Vec<(u16, u32)>,
    pub goaway: Option<(u32, u32)>,
}

impl H2Conn {
    pub fn connect(addr: SocketAddr) -> H2Conn {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        stream.set_nodelay(true).unwrap();
        let mut c = H2Conn { stream, next_id: 1, settings: Vec::new(), goaway: None };
        let mut hello = PREFACE.to_vec();
        hello.extend(frame(SETTINGS, 0, 0, &[]));
        // A large connection window so responses never wait on it.
        hello.extend(frame(WINDOW_UPDATE, 0, 0, &(1u32 << 30).to_be_bytes()));
        c.send(&hello);
        c
    }

    /// A second handle on the same socket, to read while this one writes.
    pub fn reader(&self) -> H2Conn {
        H2Conn { stream: self.stream.try_clone().unwrap(), next_id: 1, settings: Vec::new(), goaway: None }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    pub fn try_send(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).is_ok()
    }

    pub fn next_stream(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id += 2;
        id
    }

    /// Opens a stream with a request; `end` ends it with the headers.
    pub fn request(&mut self, method: &str, path: &str, extra: &[(&str, &str)], end: bool) -> u32 {
        let id = self.next_stream();
        let flags = END_HEADERS | if end { END_STREAM } else { 0 };
        let f = frame(HEADERS, flags, id, &request_block(method, path, extra));
        self.send(&f);
        id
    }

    /// The next frame, answering SETTINGS and PING; `None` at EOF or a read error.
    pub fn read_frame(&mut self) -> Option<Frame> {
        let mut head = [0u8; 9];
        self.stream.read_exact(&mut head).ok()?;
        let len = (usize::from(head[0]) << 16) | (usize::from(head[1]) << 8) | usize::from(head[2]);
        let mut payload = vec![0u8; len];
        self.stream.read_exact(&mut payload).ok()?;
        let f = Frame {
            kind: head[3],
            flags: head[4],
            stream: u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff,
            payload,
        };
        match f.kind {
            SETTINGS if f.flags & ACK == 0 => {
                for s in f.payload.chunks_exact(6) {
                    self.settings
                        .push((u16::from_be_bytes([s[0], s[1]]), u32::from_be_bytes([s[2], s[3], s[4], s[5]])));
                }
                let _ = self.stream.write_all(&frame(SETTINGS, ACK, 0, &[]));
            }
            PING if f.flags & ACK == 0 => {
                let _ = self.stream.write_all(&frame(PING, ACK, 0, &f.payload));
            }
            GOAWAY if f.payload.len() >= 8 => {
                let last = u32::from_be_bytes([f.payload[0], f.payload[1], f.payload[2], f.payload[3]]) & 0x7fff_ffff;
                let code = u32::from_be_bytes([f.payload[4], f.payload[5], f.payload[6], f.payload[7]]);
                self.goaway = Some((last, code));
            }
            _ => {}
        }
        Some(f)
    }

    /// Reads until stream `id` ends, is reset, or the connection goes away.
    pub fn response(&mut self, id: u32) -> Response {
        let mut r = Response::default();
        while let Some(f) = self.read_frame() {
            if f.kind == GOAWAY {
                r.goaway = self.goaway.map(|g| g.1);
                // In-flight streams may still finish after a graceful GOAWAY.
                if self.goaway.is_some_and(|(last, _)| last < id) {
                    break;
                }
                continue;
            }
            if f.stream != id {
                continue;
            }
            match f.kind {
                HEADERS => {
                    r.header_blocks += 1;
                    r.first_byte = r.first_byte.or(f.payload.first().copied());
                }
                DATA => {
                    r.data.extend_from_slice(&f.payload);
                    if !f.payload.is_empty() {
                        let n = (f.payload.len() as u32).to_be_bytes();
                        let _ = self.stream.write_all(&frame(WINDOW_UPDATE, 0, id, &n));
                    }
                }
                RST_STREAM => {
                    r.reset = Some(u32::from_be_bytes([f.payload[0], f.payload[1], f.payload[2], f.payload[3]]));
                    break;
                }
                _ => {}
            }
            if f.flags & END_STREAM != 0 && matches!(f.kind, HEADERS | DATA) {
                r.ended = true;
                break;
            }
        }
        r
    }

    /// Reads until a GOAWAY arrives or the connection closes; the GOAWAY's error code.
    pub fn until_goaway_or_close(&mut self) -> Option<u32> {
        while let Some(f) = self.read_frame() {
            if f.kind == GOAWAY {
                return self.goaway.map(|g| g.1);
            }
        }
        self.goaway.map(|g| g.1)
    }
}
