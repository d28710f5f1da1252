//! RESP, the Redis serialization protocol: RESP2 and RESP3 frames and inline commands.
//!
//! Spec: <https://redis.io/docs/latest/develop/reference/protocol-spec/> (RESP2 types:
//! simple string `+`, error `-`, integer `:`, bulk string `$`, array `*`; RESP3 adds null
//! `_`, boolean `#`, double `,`, big number `(`, bulk error `!`, verbatim string `=`, map
//! `%`, set `~`, attribute `|` and push `>`), plus the inline command form of
//! "Sending commands to a Redis server".
//!
//! Frame first: [`FrameScanner`] finds where the next top-level frame ends, resuming where
//! it stopped so a large value arriving in many reads is scanned once, and jumping over
//! bulk payloads by their length instead of reading them. [`RespDecoder`] cuts complete
//! frames off the read buffer with `split_to(n).freeze()`; [`Command`] and [`Reply`] are
//! views over a frame's bytes that copy nothing. The scanner is hand-written rather than
//! built with nom because it must be resumable mid-frame and allocation-free; every length
//! is checked against [`RespLimits`] before it is trusted, and nesting is capped without
//! recursion.

mod decoder;
mod encode;
mod error;
mod scanner;
mod value;
mod view;

pub use decoder::RespDecoder;
pub use encode::{encode_error, encode_value};
pub use error::RespError;
pub use scanner::{FrameScanner, RespLimits, MAX_DEPTH_CAP};
pub use value::{parse_value, Value};
pub use view::{Command, Reply, ReplyKind};

#[cfg(test)]
mod tests;
