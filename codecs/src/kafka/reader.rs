//! Primitive types of the Kafka protocol, read from a bounded slice.
//!
//! Spec: "Protocol Primitive Types" (<https://kafka.apache.org/protocol#protocol_types>) and
//! KIP-482 (<https://cwiki.apache.org/confluence/display/KAFKA/KIP-482%3A+The+Kafka+Protocol+should+Support+Optional+Tagged+Fields>)
//! for the compact (unsigned-varint length + 1) strings, bytes and arrays and the tagged
//! fields of flexible versions. Integers are big-endian; varint/varlong are zigzag
//! encoded as in protobuf; an unsigned varint is at most 5 bytes here (every Kafka use is a
//! 32-bit quantity).
//!
//! Every read is checked against the bytes left: a length or a count that the slice cannot
//! hold is an error before anything is kept, and an array count must fit `count * min`
//! bytes, where `min` is the smallest encoding of one element, so a caller collecting
//! elements never allocates by a count it has not seen the bytes for.

use super::error::KafkaError;

/// A cursor over one message body (or any bounded part of a frame).
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes read so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes left to read.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The unread bytes.
    pub fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }

    /// Fails unless every byte was read.
    pub fn finish(&self, what: &'static str) -> Result<(), KafkaError> {
        match self.remaining() {
            0 => Ok(()),
            left => Err(KafkaError::TrailingBytes { what, left }),
        }
    }

    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], KafkaError> {
        let end = self.pos.checked_add(n).ok_or(KafkaError::Truncated { what })?;
        let out = self.buf.get(self.pos..end).ok_or(KafkaError::Truncated { what })?;
        self.pos = end;
        Ok(out)
    }

    pub fn skip(&mut self, n: usize, what: &'static str) -> Result<(), KafkaError> {
        self.take(n, what).map(|_| ())
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], KafkaError> {
        self.take(N, what)?.try_into().map_err(|_| KafkaError::Truncated { what })
    }

    pub fn i8(&mut self, what: &'static str) -> Result<i8, KafkaError> {
        Ok(i8::from_be_bytes(self.array(what)?))
    }

    pub fn bool(&mut self, what: &'static str) -> Result<bool, KafkaError> {
        match self.i8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(KafkaError::Malformed { what }),
        }
    }

    pub fn i16(&mut self, what: &'static str) -> Result<i16, KafkaError> {
        Ok(i16::from_be_bytes(self.array(what)?))
    }

    pub fn i32(&mut self, what: &'static str) -> Result<i32, KafkaError> {
        Ok(i32::from_be_bytes(self.array(what)?))
    }

    pub fn u32(&mut self, what: &'static str) -> Result<u32, KafkaError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    pub fn i64(&mut self, what: &'static str) -> Result<i64, KafkaError> {
        Ok(i64::from_be_bytes(self.array(what)?))
    }

    pub fn uuid(&mut self, what: &'static str) -> Result<[u8; 16], KafkaError> {
        self.array(what)
    }

    /// An unsigned varint of at most 5 bytes (a u32).
    pub fn unsigned_varint(&mut self, what: &'static str) -> Result<u32, KafkaError> {
        let mut value: u32 = 0;
        for i in 0..5 {
            let [b] = self.array::<1>(what)?;
            let bits = u32::from(b & 0x7f);
            // The fifth byte may only carry the top 4 bits of a u32.
            if i == 4 && b > 0x0f {
                return Err(KafkaError::VarintTooLong { what });
            }
            value |= bits << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(KafkaError::VarintTooLong { what })
    }

    /// An unsigned varint of at most 10 bytes (a u64).
    pub fn unsigned_varlong(&mut self, what: &'static str) -> Result<u64, KafkaError> {
        let mut value: u64 = 0;
        for i in 0..10 {
            let [b] = self.array::<1>(what)?;
            if i == 9 && b > 0x01 {
                return Err(KafkaError::VarintTooLong { what });
            }
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(KafkaError::VarintTooLong { what })
    }

    /// A zigzag-encoded signed varint (an i32).
    pub fn varint(&mut self, what: &'static str) -> Result<i32, KafkaError> {
        let v = self.unsigned_varint(what)?;
        Ok(((v >> 1) as i32) ^ -((v & 1) as i32))
    }

    /// A zigzag-encoded signed varlong (an i64).
    pub fn varlong(&mut self, what: &'static str) -> Result<i64, KafkaError> {
        let v = self.unsigned_varlong(what)?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }

    /// A length: an i16 (strings) or i32 (bytes, arrays) where -1 is null, or in a flexible
    /// version an unsigned varint holding length + 1 where 0 is null.
    fn length(&mut self, flexible: bool, wide: bool, what: &'static str) -> Result<Option<usize>, KafkaError> {
        let len: i64 = if flexible {
            i64::from(self.unsigned_varint(what)?) - 1
        } else if wide {
            self.i32(what)?.into()
        } else {
            self.i16(what)?.into()
        };
        match len {
            -1 => Ok(None),
            n => usize::try_from(n).map(Some).map_err(|_| KafkaError::Malformed { what }),
        }
    }

    pub fn nullable_bytes(&mut self, flexible: bool, what: &'static str) -> Result<Option<&'a [u8]>, KafkaError> {
        match self.length(flexible, true, what)? {
            None => Ok(None),
            Some(n) => self.take(n, what).map(Some),
        }
    }

    pub fn bytes(&mut self, flexible: bool, what: &'static str) -> Result<&'a [u8], KafkaError> {
        self.nullable_bytes(flexible, what)?.ok_or(KafkaError::Malformed { what })
    }

    pub fn nullable_string(&mut self, flexible: bool, what: &'static str) -> Result<Option<&'a str>, KafkaError> {
        let Some(n) = self.length(flexible, false, what)? else { return Ok(None) };
        let raw = self.take(n, what)?;
        std::str::from_utf8(raw).map(Some).map_err(|_| KafkaError::InvalidUtf8 { what })
    }

    pub fn string(&mut self, flexible: bool, what: &'static str) -> Result<&'a str, KafkaError> {
        self.nullable_string(flexible, what)?.ok_or(KafkaError::Malformed { what })
    }

    /// An array's element count (`None`: a null array), checked to fit the bytes left at
    /// `min` bytes per element.
    pub fn nullable_array(
        &mut self,
        flexible: bool,
        min: usize,
        what: &'static str,
    ) -> Result<Option<usize>, KafkaError> {
        let Some(count) = self.length(flexible, true, what)? else { return Ok(None) };
        let left = self.remaining();
        if count.checked_mul(min.max(1)).is_none_or(|need| need > left) {
            return Err(KafkaError::ArrayTooLong { what, count, left });
        }
        Ok(Some(count))
    }

    /// A non-nullable array's element count, as [`Reader::nullable_array`].
    pub fn array_len(&mut self, flexible: bool, min: usize, what: &'static str) -> Result<usize, KafkaError> {
        self.nullable_array(flexible, min, what)?.ok_or(KafkaError::Malformed { what })
    }

    /// Skips an array of fixed-size elements (`[]int32` and the like).
    pub fn skip_array(&mut self, flexible: bool, elem: usize, what: &'static str) -> Result<usize, KafkaError> {
        let n = self.nullable_array(flexible, elem, what)?.unwrap_or(0);
        // Fits: nullable_array checked n * elem against the bytes left.
        self.skip(n.saturating_mul(elem), what)?;
        Ok(n)
    }

    /// Skips a tagged-field section (KIP-482): a count, then per field a tag and a size.
    /// Unknown tags are expected and skipped; tags must ascend, as the Java reader requires.
    pub fn tagged_fields(&mut self, what: &'static str) -> Result<(), KafkaError> {
        self.tagged_fields_with(what, |_, _| Ok(()))
    }

    /// Reads a tagged-field section, handing each field's tag and bytes to `f`.
    pub fn tagged_fields_with(
        &mut self,
        what: &'static str,
        mut f: impl FnMut(u32, &'a [u8]) -> Result<(), KafkaError>,
    ) -> Result<(), KafkaError> {
        let count = self.unsigned_varint(what)?;
        // Each field takes at least two bytes (tag and size).
        let left = self.remaining();
        if usize::try_from(count).map_or(true, |c| c.saturating_mul(2) > left) {
            return Err(KafkaError::ArrayTooLong { what, count: count as usize, left });
        }
        let mut last: Option<u32> = None;
        for _ in 0..count {
            let tag = self.unsigned_varint(what)?;
            if last.is_some_and(|l| tag <= l) {
                return Err(KafkaError::Malformed { what });
            }
            last = Some(tag);
            let size = self.unsigned_varint(what)?;
            let data = self.take(size as usize, what)?;
            f(tag, data)?;
        }
        Ok(())
    }

    /// Skips the tagged fields when `flexible`.
    pub fn tags_if(&mut self, flexible: bool, what: &'static str) -> Result<(), KafkaError> {
        if flexible {
            self.tagged_fields(what)
        } else {
            Ok(())
        }
    }
}
