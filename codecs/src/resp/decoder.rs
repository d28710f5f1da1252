//! The RESP decoder: cuts complete frames off a connection's read buffer.

use bytes::{Bytes, BytesMut};

use super::error::RespError;
use super::scanner::{FrameScanner, RespLimits};
use crate::framing::Decode;

pub struct RespDecoder {
    scanner: FrameScanner,
}

impl RespDecoder {
    pub fn new(limits: RespLimits) -> Self {
        RespDecoder { scanner: FrameScanner::new(limits) }
    }
}

impl Decode for RespDecoder {
    type Frame = Bytes;
    type Error = RespError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, RespError> {
        Ok(self.scanner.scan(buf)?.map(|len| buf.split_to(len).freeze()))
    }
}
