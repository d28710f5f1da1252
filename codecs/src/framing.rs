//! The decode contract shared by every protocol codec, and the one check every codec makes
//! before trusting a length prefix.

use bytes::BytesMut;

/// Size and depth caps for one codec instance; each protocol picks its own defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The largest frame (envelope included) the codec will buffer.
    pub max_frame: usize,
    /// The deepest nesting of containers (RESP arrays, BSON documents) it will follow.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_frame: 64 * 1024 * 1024, max_depth: 32 }
    }
}

/// Errors every codec can raise besides its protocol-specific ones.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("frame of {claimed} bytes exceeds the limit of {limit} bytes")]
    TooLarge { claimed: usize, limit: usize },
    #[error("nesting deeper than {limit} levels")]
    TooDeep { limit: usize },
}

/// A sans-I/O decoder: the tokio-util `Decoder` shape, without tokio.
pub trait Decode {
    type Frame;
    type Error;

    /// Cuts the next complete frame off the front of `buf`, or returns `Ok(None)` (leaving
    /// `buf` untouched) when more bytes are needed.
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Self::Frame>, Self::Error>;
}

/// Checks a frame length announced by a prefix against the limit before the codec waits
/// for (or reserves room for) that many bytes.
pub fn check_frame_len(claimed: usize, limits: &Limits) -> Result<(), FrameError> {
    if claimed > limits.max_frame {
        Err(FrameError::TooLarge { claimed, limit: limits.max_frame })
    } else {
        Ok(())
    }
}

/// Reserves room for the rest of a frame of `frame_len` bytes, capped by what the
/// connection is allowed to buffer, so a lying length prefix costs nothing up front.
pub fn reserve_for_frame(buf: &mut BytesMut, frame_len: usize, limits: &Limits) {
    let wanted = frame_len.min(limits.max_frame).saturating_sub(buf.len());
    // Grow in steps no larger than 64 KiB: the bytes have to arrive before more is kept.
    buf.reserve(wanted.min(64 * 1024));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_over_the_limit_are_refused() {
        let limits = Limits { max_frame: 16, max_depth: 4 };
        assert_eq!(check_frame_len(16, &limits), Ok(()));
        assert_eq!(check_frame_len(17, &limits), Err(FrameError::TooLarge { claimed: 17, limit: 16 }));
    }

    #[test]
    fn reservation_is_capped_by_what_can_arrive() {
        let limits = Limits::default();
        let mut buf = BytesMut::new();
        reserve_for_frame(&mut buf, usize::MAX, &limits);
        assert!(buf.capacity() <= 128 * 1024, "{}", buf.capacity());
        assert!(buf.capacity() >= 64 * 1024);
    }
}
