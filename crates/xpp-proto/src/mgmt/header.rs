//! The 5-byte xtalk header (§2.1).
//!
//! ```text
//!  byte 0    byte 1    byte 2    byte 3    byte 4    byte 5 ..
//! +---------+---------+---------+---------+---------+-----------------+
//! | len (u16 LE)      | seq (u16 LE)      | op      | payload         |
//! | incl. header      | echoed by reply   | b7=reply| len - 5 bytes   |
//! +---------+---------+---------+---------+---------+-----------------+
//! ```
//!
//! One xtalk packet is one USB bulk transfer. Contract (smoltcp style): once
//! [`Packet::new_checked`] has succeeded no accessor panics; [`Header::emit`] never panics on a
//! buffer of at least [`HEADER_LEN`] bytes.

use super::{MgmtError, Op};

/// Size of the xtalk header.
pub const HEADER_LEN: usize = 5;

/// Largest xtalk packet: the hosts read at most one 512-byte high-speed bulk packet (§1.3, §2.4
/// rule 3), so nothing longer is ever produced or accepted.
pub const MAX_PACKET_LEN: usize = 512;

mod field {
    use core::ops::Range;
    pub(super) const LEN: Range<usize> = 0..2;
    pub(super) const SEQ: Range<usize> = 2..4;
    pub(super) const OP: usize = 4;
}

/// A zero-copy view of one xtalk packet: header plus payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it; for emitting into a buffer of known size.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps a buffer after [`Packet::check_len`].
    pub fn new_checked(buffer: T) -> Result<Self, MgmtError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks that the buffer holds a header and that `len` is at least the header and at most
    /// the buffer. After this, no accessor panics.
    ///
    /// This does not check rule 3 of §2.4 (`len` equals the transfer length); the message
    /// decoders ([`super::Request::parse`], [`super::Reply::parse`]) do.
    pub fn check_len(&self) -> Result<(), MgmtError> {
        let data = self.buffer.as_ref();
        if data.len() < HEADER_LEN {
            return Err(MgmtError::Truncated { what: "xtalk header", offset: 0, needed: HEADER_LEN });
        }
        let len = self.len();
        if usize::from(len) < HEADER_LEN || usize::from(len) > data.len() {
            return Err(MgmtError::LengthMismatch { len, actual: data.len() });
        }
        Ok(())
    }

    /// Returns the underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Total packet length including the header.
    pub fn len(&self) -> u16 {
        let d = self.buffer.as_ref();
        u16::from_le_bytes([d[field::LEN.start], d[field::LEN.start + 1]])
    }

    /// Whether `len` is zero (never true for a checked packet).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The sequence number.
    pub fn seq(&self) -> u16 {
        let d = self.buffer.as_ref();
        u16::from_le_bytes([d[field::SEQ.start], d[field::SEQ.start + 1]])
    }

    /// The opcode.
    pub fn op(&self) -> Op {
        Op::from(self.buffer.as_ref()[field::OP])
    }

    /// The payload: bytes after the header up to `len`.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.len())]
    }

    /// The whole packet, `len` bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buffer.as_ref()[..usize::from(self.len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets `len`.
    pub fn set_len(&mut self, len: u16) {
        self.buffer.as_mut()[field::LEN].copy_from_slice(&len.to_le_bytes());
    }

    /// Sets `seq`.
    pub fn set_seq(&mut self, seq: u16) {
        self.buffer.as_mut()[field::SEQ].copy_from_slice(&seq.to_le_bytes());
    }

    /// Sets the opcode.
    pub fn set_op(&mut self, op: Op) {
        self.buffer.as_mut()[field::OP] = op.into();
    }

    /// The payload, mutable (bytes after the header up to `len`).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let len = usize::from(self.len());
        &mut self.buffer.as_mut()[HEADER_LEN..len]
    }
}

/// The decoded xtalk header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Header {
    /// Total packet length including these 5 bytes.
    pub len: u16,
    /// Host sequence number (a reply echoes it).
    pub seq: u16,
    /// Opcode; bit 7 set on replies.
    pub op: Op,
}

impl Header {
    /// Reads the header of a checked packet.
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Self {
        Self { len: p.len(), seq: p.seq(), op: p.op() }
    }

    /// Writes the header into the first [`HEADER_LEN`] bytes of `buf`.
    ///
    /// # Panics
    /// If `buf` is shorter than [`HEADER_LEN`].
    pub fn emit(&self, buf: &mut [u8]) {
        let mut p = Packet::new_unchecked(&mut buf[..HEADER_LEN]);
        p.set_len(self.len);
        p.set_seq(self.seq);
        p.set_op(self.op);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // STATUS_GET, seq 1 (§2.1, §3.1: len 5, op 0x11).
    static STATUS_GET_SEQ1: [u8; 5] = [0x05, 0x00, 0x01, 0x00, 0x11];
    // ACK OK, seq 0x0102 (§2.2: len 6, op 0x80, stat 0).
    static ACK_SEQ258: [u8; 6] = [0x06, 0x00, 0x02, 0x01, 0x80, 0x00];

    #[test]
    fn test_deconstruct() {
        let p = Packet::new_checked(&STATUS_GET_SEQ1[..]).unwrap();
        assert_eq!(p.len(), 5);
        assert_eq!(p.seq(), 1);
        assert_eq!(p.op(), Op::StatusGet);
        assert!(p.payload().is_empty());

        let p = Packet::new_checked(&ACK_SEQ258[..]).unwrap();
        assert_eq!(p.len(), 6);
        assert_eq!(p.seq(), 0x0102);
        assert_eq!(p.op(), Op::Ack);
        assert_eq!(p.payload(), &[0x00]);
        assert_eq!(p.as_bytes(), &ACK_SEQ258);
    }

    #[test]
    fn test_construct() {
        let mut buf = [0xFFu8; 6];
        let mut p = Packet::new_unchecked(&mut buf[..]);
        p.set_len(6);
        p.set_seq(0x0102);
        p.set_op(Op::Ack);
        p.payload_mut()[0] = 0;
        assert_eq!(buf, ACK_SEQ258);
    }

    #[test]
    fn test_parse() {
        let h = Header::parse(&Packet::new_checked(&STATUS_GET_SEQ1[..]).unwrap());
        assert_eq!(h, Header { len: 5, seq: 1, op: Op::StatusGet });
    }

    #[test]
    fn test_emit() {
        let mut out = [0xAAu8; 5];
        Header { len: 5, seq: 1, op: Op::StatusGet }.emit(&mut out);
        assert_eq!(out, STATUS_GET_SEQ1);
    }

    #[test]
    fn check_len_rejects_bad_lengths() {
        for n in 0..HEADER_LEN {
            assert!(Packet::new_checked(&STATUS_GET_SEQ1[..n]).is_err());
        }
        // len 4 (< header) and len 9 (> buffer).
        assert!(Packet::new_checked(&[0x04u8, 0, 1, 0, 0x11][..]).is_err());
        assert_eq!(
            Packet::new_checked(&[0x09u8, 0, 1, 0, 0x11][..]),
            Err(MgmtError::LengthMismatch { len: 9, actual: 5 })
        );
    }
}
