//! Broker addresses in responses, and rewriting them in place.
//!
//! Metadata, FindCoordinator and DescribeCluster responses tell a client where brokers
//! are (`host` then `port`, adjacent in all three). A proxy that must not be bypassed
//! replaces each with an address of its own. The rewrite re-encodes only those two fields
//! and copies every other byte as it came: Kafka bodies carry no nested lengths around these
//! fields, so a longer or shorter host changes nothing else but the frame size (recomputed
//! by [`super::Response::reframe`]).
//!
//! Entries with a negative node id (FindCoordinator's "no coordinator": -1, "", -1) are
//! left alone.

use bytes::{BufMut, Bytes, BytesMut};

use super::error::KafkaError;
use super::reader::Reader;
use super::writer::put_string;

/// A broker as a response describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Broker<'a> {
    pub node_id: i32,
    pub host: &'a str,
    pub port: i32,
    /// Metadata v1+ and DescribeCluster; `None` elsewhere or when unassigned.
    pub rack: Option<&'a str>,
}

/// Where each broker's host and port sit in a body: `(start of host, end of port)`.
/// Positions are not part of a decoded value, so any two compare equal.
#[derive(Clone, Debug, Default)]
pub(crate) struct Spans(pub(crate) Vec<(usize, usize)>);

impl PartialEq for Spans {
    fn eq(&self, _: &Spans) -> bool {
        true
    }
}

impl Eq for Spans {}

/// Reads `host` and `port` at the reader's position, recording their span.
pub(crate) fn read_host_port<'a>(
    r: &mut Reader<'a>,
    flexible: bool,
    spans: &mut Spans,
    what: &'static str,
) -> Result<(&'a str, i32), KafkaError> {
    let start = r.position();
    let host = r.string(flexible, what)?;
    let port = r.i32(what)?;
    spans.0.push((start, r.position()));
    Ok((host, port))
}

/// Copies `body`, replacing the host and port at each span by what `f` answers for
/// `(node_id, host, port)`.
pub(crate) fn splice<F>(
    body: &[u8],
    entries: &[(Broker<'_>, (usize, usize))],
    flexible: bool,
    mut f: F,
) -> Result<Bytes, KafkaError>
where
    F: FnMut(i32, &str, i32) -> (String, i32),
{
    let mut out = BytesMut::with_capacity(body.len() + 64 * entries.len());
    let mut at = 0;
    for (b, (start, end)) in entries {
        if b.node_id < 0 {
            continue;
        }
        let (host, port) = f(b.node_id, b.host, b.port);
        out.put_slice(body.get(at..*start).ok_or(KafkaError::Malformed { what: "broker address span" })?);
        put_string(&mut out, &host, flexible, "broker host")?;
        out.put_i32(port);
        at = *end;
    }
    out.put_slice(body.get(at..).ok_or(KafkaError::Malformed { what: "broker address span" })?);
    Ok(out.freeze())
}
