//! A bounds-checked byte reader for nested, length-prefixed structures (rustls `codec::Reader`).
//!
//! Every read either succeeds or returns an error naming the structure being read and the
//! absolute byte offset where data ran out; a [`Reader::sub`] reader cannot overrun its parent.

/// What a [`Reader`] reports when the input ends early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Truncated {
    /// The structure or field being read (`"AB_DESCRIPTION unit descriptor"`).
    pub what: &'static str,
    /// Absolute byte offset (from the start of the outermost buffer) where the read started.
    pub offset: usize,
    /// How many bytes were needed from `offset`.
    pub needed: usize,
}

/// A cursor over a byte slice that knows its absolute offset in the outermost buffer.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `buf`, whose first byte is at absolute offset 0.
    pub const fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0, base: 0 }
    }

    /// A reader over `buf`, whose first byte is at absolute offset `base`.
    pub const fn with_base(buf: &'a [u8], base: usize) -> Self {
        Self { buf, pos: 0, base }
    }

    /// Absolute offset of the next byte.
    pub const fn offset(&self) -> usize {
        self.base + self.pos
    }

    /// Bytes not yet read.
    pub const fn left(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Whether every byte has been read.
    pub const fn is_empty(&self) -> bool {
        self.left() == 0
    }

    /// The unread bytes, without consuming them.
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    /// Takes `n` bytes.
    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], Truncated> {
        if self.left() < n {
            return Err(Truncated { what, offset: self.offset(), needed: n });
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// Takes every unread byte.
    pub fn take_rest(&mut self) -> &'a [u8] {
        let out = &self.buf[self.pos..];
        self.pos = self.buf.len();
        out
    }

    /// Takes a fixed-size array.
    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], Truncated> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    /// Takes one byte.
    pub fn u8(&mut self, what: &'static str) -> Result<u8, Truncated> {
        Ok(self.array::<1>(what)?[0])
    }

    /// Takes a little-endian `u16`.
    pub fn u16_le(&mut self, what: &'static str) -> Result<u16, Truncated> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    /// Takes a little-endian `u32`.
    pub fn u32_le(&mut self, what: &'static str) -> Result<u32, Truncated> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    /// Splits off a reader over the next `n` bytes; it cannot read past them.
    pub fn sub(&mut self, n: usize, what: &'static str) -> Result<Self, Truncated> {
        let base = self.offset();
        let buf = self.take(n, what)?;
        Ok(Self { buf, pos: 0, base })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_reports_offsets() {
        let data = [1u8, 0x34, 0x12, 0x78, 0x56, 0x34, 0x12, 9];
        let mut r = Reader::with_base(&data, 100);
        assert_eq!(r.u8("a"), Ok(1));
        assert_eq!(r.u16_le("b"), Ok(0x1234));
        assert_eq!(r.u32_le("c"), Ok(0x1234_5678));
        assert_eq!(r.offset(), 107);
        assert_eq!(r.u16_le("d"), Err(Truncated { what: "d", offset: 107, needed: 2 }));
        assert_eq!(r.rest(), &[9]);
    }

    #[test]
    fn sub_reader_cannot_overrun_parent() {
        let data = [1u8, 2, 3, 4];
        let mut r = Reader::new(&data);
        let mut s = r.sub(2, "sub").unwrap();
        assert_eq!(s.take(3, "x"), Err(Truncated { what: "x", offset: 0, needed: 3 }));
        assert_eq!(s.take(2, "x"), Ok(&[1u8, 2][..]));
        assert_eq!(r.offset(), 2);
        assert!(r.sub(3, "sub").is_err());
    }
}
