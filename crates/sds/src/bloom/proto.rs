//! The minimal protobuf subset nim-sds's nested bloom message needs.

use super::BloomError;

pub(crate) const WT_VARINT: u8 = 0;
pub(crate) const WT_I64: u8 = 1;
pub(crate) const WT_LEN: u8 = 2;
pub(crate) const WT_I32: u8 = 5;

/// Appends `v` as a base-128 varint.
#[inline]
pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Length of `v` as a varint.
#[inline]
pub(crate) fn varint_len(v: u64) -> usize {
    // 1 byte per started group of 7 bits, at least 1.
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// One field's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Value<'a> {
    Varint(u64),
    Len(&'a [u8]),
    /// A fixed-width value (wire type 1 or 5), skipped; only its wire type is kept.
    Fixed(u8),
}

impl Value<'_> {
    pub(crate) fn wire_type(&self) -> u8 {
        match self {
            Value::Varint(_) => WT_VARINT,
            Value::Len(_) => WT_LEN,
            Value::Fixed(wire_type) => *wire_type,
        }
    }
}

/// A strict, bounds-checked field reader over a byte slice.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn varint(&mut self) -> Result<u64, BloomError> {
        let start = self.pos;
        let mut v: u64 = 0;
        for i in 0..10 {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(BloomError::TruncatedVarint { offset: start });
            };
            self.pos += 1;
            if i == 9 && b > 1 {
                return Err(BloomError::VarintOverflow { offset: start });
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(BloomError::VarintOverflow { offset: start })
    }

    fn take(&mut self, len: u64) -> Result<&'a [u8], BloomError> {
        let remaining = self.buf.len() - self.pos;
        match usize::try_from(len) {
            Ok(n) if n <= remaining => {
                let s = &self.buf[self.pos..self.pos + n];
                self.pos += n;
                Ok(s)
            }
            _ => Err(BloomError::Overrun {
                offset: self.pos,
                len,
                remaining,
            }),
        }
    }

    /// The next `(field number, value)`, or `None` at the end of the input.
    pub(crate) fn next_field(&mut self) -> Result<Option<(u64, Value<'a>)>, BloomError> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let offset = self.pos;
        let tag = self.varint()?;
        let field = tag >> 3;
        if field == 0 {
            return Err(BloomError::InvalidTag { tag, offset });
        }
        let value = match (tag & 7) as u8 {
            WT_VARINT => Value::Varint(self.varint()?),
            WT_I64 => {
                self.take(8)?;
                Value::Fixed(WT_I64)
            }
            WT_LEN => {
                let len = self.varint()?;
                Value::Len(self.take(len)?)
            }
            WT_I32 => {
                self.take(4)?;
                Value::Fixed(WT_I32)
            }
            _ => return Err(BloomError::InvalidTag { tag, offset }),
        };
        Ok(Some((field, value)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_lengths() {
        for v in [0u64, 1, 127, 128, 16383, 16384, 150_000, u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v), "{v}");
            let mut r = Reader::new(&out);
            assert_eq!(r.varint().unwrap(), v);
        }
    }

    #[test]
    fn varint_errors() {
        assert_eq!(
            Reader::new(&[0x80]).varint(),
            Err(BloomError::TruncatedVarint { offset: 0 })
        );
        let mut over = [0xffu8; 10];
        over[9] = 0x02;
        assert_eq!(
            Reader::new(&over).varint(),
            Err(BloomError::VarintOverflow { offset: 0 })
        );
        assert_eq!(
            Reader::new(&[0xff; 11]).varint(),
            Err(BloomError::VarintOverflow { offset: 0 })
        );
    }
}
