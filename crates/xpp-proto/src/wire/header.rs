//! The 4-byte XPP packet header, the unit/subunit address byte and the opcode space.
//!
//! ```text
//!  byte 0          byte 1                      byte 2    byte 3
//! +---------------+---+---+---+---------------+---------+-----+---------+-----+-----------+
//! | packet_len    |len| r |pcm| pcmslot       | opcode  |sync | unit    |  r  | subunit   |
//! |   [7:0]       |9:8| 0 |   |  (4 bits)     |         | b7  | b6..b4  | b3  | b2..b0    |
//! +---------------+---+---+---+---------------+---------+-----+---------+-----+-----------+
//!                  b0-1 b2  b3   b4-b7
//! ```
//!
//! `packet_len` (10 bits) counts the whole packet **including** this header
//! (docs/reference/xpp-protocol.md §4). Multi-byte fields are little-endian.
//!
//! Contract (smoltcp style): once [`Packet::new_checked`] has succeeded no accessor panics;
//! [`Header::emit`] never panics on a buffer of at least [`HEADER_LEN`] bytes.

use super::WireError;
use crate::macros::wire_enum;

/// Size of the packet header.
pub const HEADER_LEN: usize = 4;
/// Largest value the 10-bit `packet_len` field can hold.
pub const MAX_PACKET_LEN: usize = 1023;

mod field {
    pub(super) const LEN_LO: usize = 0;
    pub(super) const FLAGS: usize = 1;
    pub(super) const OPCODE: usize = 2;
    pub(super) const ADDR: usize = 3;
}

/// Bits of header byte 1.
const LEN_HI_MASK: u8 = 0x03;
const IS_PCM: u8 = 0x08;
const PCMSLOT_SHIFT: u8 = 4;
/// Bits of the address byte (header byte 3, and unit descriptors).
const SUBUNIT_MASK: u8 = 0x07;
const UNIT_SHIFT: u8 = 4;
const UNIT_MASK: u8 = 0x07;
const SYNC_MASTER: u8 = 0x80;

wire_enum! {
    /// Packet opcode (header byte 2), docs/reference/xpp-protocol.md §5 and docs/reference/mpp-twinstar-firmware.md §5.5–5.6.
    ///
    /// Card opcodes share the space with global ones; which card an opcode belongs to follows
    /// from the addressed unit's type, not from the value.
    pub enum Opcode(u8) {
        /// FXS/FXO hook or ring change, D->H.
        SigChanged = 0x06 => "SIG_CHANGED",
        /// Ask the device to describe its units, H->D.
        AbRequest = 0x07 => "AB_REQUEST",
        /// The device's unit descriptors, D->H.
        AbDescription = 0x08 => "AB_DESCRIPTION",
        /// PIC firmware load request (USB-firmware stage only), H->D.
        PicRequest = 0x09 => "PIC_REQUEST",
        /// PIC firmware load reply, D->H.
        PicReply = 0x0A => "PIC_REPLY",
        /// Chip register access, H->D.
        RegisterRequest = 0x0F => "REGISTER_REQUEST",
        /// Chip register answer (or unsolicited report), D->H.
        RegisterReply = 0x10 => "REGISTER_REPLY",
        /// Host audio for one tick, H->D.
        PcmWrite = 0x11 => "PCM_WRITE",
        /// Device audio for one tick, D->H.
        PcmRead = 0x12 => "PCM_READ",
        /// Select the device's timing mode, H->D.
        SyncSource = 0x19 => "SYNC_SOURCE",
        /// The device's timing mode, D->H.
        SyncReply = 0x1A => "SYNC_REPLY",
        /// The device reports an error, D->H.
        ErrorCode = 0x22 => "ERROR_CODE",
        /// Toggle device reset lines, H->D.
        XbusReset = 0x23 => "XBUS_RESET",
        /// PRI/BRI LED control, H->D.
        SetLed = 0x33 => "SET_LED",
        /// Echo-canceller loader test request (USB-firmware stage only), H->D.
        EchoTest = 0x35 => "ECHO_TEST",
        /// Echo-canceller loader test reply, D->H.
        EchoTestReply = 0x36 => "ECHO_TEST_REPLY",
        /// Echo-canceller timeslot map, H->D.
        EchoSet = 0x39 => "ECHO_SET",
        /// Echo-canceller map acknowledgement, D->H.
        EchoSetReply = 0x3A => "ECHO_SET_REPLY",
        /// Empty reply, D->H.
        NullReply = 0xFE => "NULL_REPLY",
    }
}

/// An XPD address: module `unit` (0..7) and `subunit` (0..7) inside it.
///
/// On the wire it is one byte: bits 0-2 subunit, bits 4-6 unit (bit 3 reserved, bit 7 is the
/// header's `sync_master` flag and not part of the address).
#[doc(alias = "xpd_addr")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Address {
    unit: u8,
    subunit: u8,
}

impl Address {
    /// Unit 0, subunit 0: where AB_REQUEST and SYNC_SOURCE go.
    pub const ZERO: Self = Self { unit: 0, subunit: 0 };
    /// Largest unit number the 3-bit field carries.
    pub const MAX_UNIT: u8 = 7;
    /// Largest subunit number the 3-bit field carries.
    pub const MAX_SUBUNIT: u8 = 7;

    /// The address of `subunit` in `unit`, or `None` if either is above 7.
    pub const fn new(unit: u8, subunit: u8) -> Option<Self> {
        if unit > Self::MAX_UNIT || subunit > Self::MAX_SUBUNIT { None } else { Some(Self { unit, subunit }) }
    }

    /// Decodes an address byte; the reserved bit 3 and the sync bit 7 are ignored.
    pub const fn from_byte(b: u8) -> Self {
        Self { unit: (b >> UNIT_SHIFT) & UNIT_MASK, subunit: b & SUBUNIT_MASK }
    }

    /// Encodes as an address byte with the reserved and sync bits clear.
    pub const fn to_byte(self) -> u8 {
        (self.unit << UNIT_SHIFT) | self.subunit
    }

    /// Module number 0..7.
    pub const fn unit(self) -> u8 {
        self.unit
    }

    /// Sub-address 0..7 inside the module.
    pub const fn subunit(self) -> u8 {
        self.subunit
    }

    /// The driver's XPD index, `unit * 8 + subunit` (0..63).
    pub const fn xpd_index(self) -> u8 {
        self.unit * 8 + self.subunit
    }
}

impl core::fmt::Display for Address {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}/{}", self.unit, self.subunit)
    }
}

/// A zero-copy view of one packet: header plus payload.
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
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks that the buffer holds a header and that `packet_len` is at least the header and
    /// at most the buffer. After this, no accessor panics.
    pub fn check_len(&self) -> Result<(), WireError> {
        let data = self.buffer.as_ref();
        if data.len() < HEADER_LEN {
            return Err(WireError::Truncated { what: "packet header", offset: 0, needed: HEADER_LEN });
        }
        let len = self.packet_len();
        if usize::from(len) < HEADER_LEN {
            return Err(WireError::BadLength { offset: 0, len, reason: "shorter than the 4-byte header" });
        }
        if usize::from(len) > data.len() {
            return Err(WireError::BadLength { offset: 0, len, reason: "runs past the end of the buffer" });
        }
        Ok(())
    }

    /// Returns the underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Total packet length including the header (10-bit field).
    pub fn packet_len(&self) -> u16 {
        let d = self.buffer.as_ref();
        u16::from(d[field::LEN_LO]) | (u16::from(d[field::FLAGS] & LEN_HI_MASK) << 8)
    }

    /// The `is_pcm` flag: set on PCM_WRITE / PCM_READ.
    pub fn is_pcm(&self) -> bool {
        self.buffer.as_ref()[field::FLAGS] & IS_PCM != 0
    }

    /// The 4-bit `pcmslot` field (hosts write 0; meaning unknown, §13.4).
    pub fn pcmslot(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS] >> PCMSLOT_SHIFT
    }

    /// The opcode byte.
    pub fn opcode(&self) -> Opcode {
        Opcode::from(self.buffer.as_ref()[field::OPCODE])
    }

    /// The XPD address.
    pub fn address(&self) -> Address {
        Address::from_byte(self.buffer.as_ref()[field::ADDR])
    }

    /// The `sync_master` flag: on PCM, marks the first packet of a tick.
    #[doc(alias = "sync_master")]
    pub fn sync(&self) -> bool {
        self.buffer.as_ref()[field::ADDR] & SYNC_MASTER != 0
    }

    /// The payload: bytes after the header up to `packet_len`.
    pub fn payload(&self) -> &[u8] {
        let len = usize::from(self.packet_len());
        &self.buffer.as_ref()[HEADER_LEN..len]
    }

    /// The whole packet: header and payload, `packet_len` bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buffer.as_ref()[..usize::from(self.packet_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets `packet_len` (only its low 10 bits are stored).
    pub fn set_packet_len(&mut self, len: u16) {
        let d = self.buffer.as_mut();
        d[field::LEN_LO] = len as u8;
        d[field::FLAGS] = (d[field::FLAGS] & !LEN_HI_MASK) | ((len >> 8) as u8 & LEN_HI_MASK);
    }

    /// Sets or clears `is_pcm`.
    pub fn set_is_pcm(&mut self, v: bool) {
        let d = self.buffer.as_mut();
        d[field::FLAGS] = (d[field::FLAGS] & !IS_PCM) | if v { IS_PCM } else { 0 };
    }

    /// Sets the 4-bit `pcmslot`.
    pub fn set_pcmslot(&mut self, v: u8) {
        let d = self.buffer.as_mut();
        d[field::FLAGS] = (d[field::FLAGS] & 0x0F) | (v << PCMSLOT_SHIFT);
    }

    /// Sets the opcode.
    pub fn set_opcode(&mut self, op: Opcode) {
        self.buffer.as_mut()[field::OPCODE] = op.into();
    }

    /// Sets the address, keeping the sync bit.
    pub fn set_address(&mut self, a: Address) {
        let d = self.buffer.as_mut();
        d[field::ADDR] = (d[field::ADDR] & SYNC_MASTER) | a.to_byte();
    }

    /// Sets or clears the `sync_master` flag.
    pub fn set_sync(&mut self, v: bool) {
        let d = self.buffer.as_mut();
        d[field::ADDR] = (d[field::ADDR] & !SYNC_MASTER) | if v { SYNC_MASTER } else { 0 };
    }

    /// The payload, mutable (bytes after the header up to `packet_len`).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let len = usize::from(self.packet_len());
        &mut self.buffer.as_mut()[HEADER_LEN..len]
    }
}

/// The decoded header of one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Header {
    /// `packet_len`: the whole packet including these 4 bytes.
    pub len: u16,
    /// PCM packet flag.
    pub is_pcm: bool,
    /// `pcmslot` (hosts write 0).
    pub pcmslot: u8,
    /// The opcode.
    pub opcode: Opcode,
    /// Target or source XPD.
    pub addr: Address,
    /// `sync_master`: first PCM packet of a tick.
    pub sync: bool,
}

impl Header {
    /// A command header: not PCM, pcmslot 0, no sync bit.
    pub const fn command(opcode: Opcode, addr: Address, len: u16) -> Self {
        Self { len, is_pcm: false, pcmslot: 0, opcode, addr, sync: false }
    }

    /// A PCM header: `is_pcm` set, pcmslot 0.
    pub const fn pcm(opcode: Opcode, addr: Address, len: u16, sync: bool) -> Self {
        Self { len, is_pcm: true, pcmslot: 0, opcode, addr, sync }
    }

    /// Reads the header of a checked packet.
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Self {
        Self {
            len: p.packet_len(),
            is_pcm: p.is_pcm(),
            pcmslot: p.pcmslot(),
            opcode: p.opcode(),
            addr: p.address(),
            sync: p.sync(),
        }
    }

    /// Writes the header into the first [`HEADER_LEN`] bytes of `buf`, reserved bits zero.
    ///
    /// # Panics
    /// If `buf` is shorter than [`HEADER_LEN`].
    pub fn emit(&self, buf: &mut [u8]) {
        let b = &mut buf[..HEADER_LEN];
        b[field::LEN_LO] = self.len as u8;
        b[field::FLAGS] = ((self.len >> 8) as u8 & LEN_HI_MASK)
            | if self.is_pcm { IS_PCM } else { 0 }
            | ((self.pcmslot & 0x0F) << PCMSLOT_SHIFT);
        b[field::OPCODE] = self.opcode.into();
        b[field::ADDR] = self.addr.to_byte() | if self.sync { SYNC_MASTER } else { 0 };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // PCM_WRITE with 32 lines, XPD 0/0, no sync bit (docs/reference/xpp-protocol.md §11): length 0x108.
    static PCM32_HEADER: [u8; 4] = [0x08, 0x09, 0x11, 0x00];
    // PCM_READ, XPD 0/0, lines 0 and 2, tick start (§11).
    static PCM_READ_HEADER: [u8; 4] = [0x18, 0x08, 0x12, 0x80];
    // Write FXS line-feed, unit 1 / sub 0 (§11).
    static REG_HEADER: [u8; 4] = [0x0A, 0x00, 0x0F, 0x10];

    #[test]
    fn test_deconstruct() {
        let mut buf = [0u8; 264];
        buf[..4].copy_from_slice(&PCM32_HEADER);
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.packet_len(), 0x108);
        assert!(p.is_pcm());
        assert_eq!(p.pcmslot(), 0);
        assert_eq!(p.opcode(), Opcode::PcmWrite);
        assert_eq!(p.address(), Address::ZERO);
        assert!(!p.sync());
        assert_eq!(p.payload().len(), 260);

        let mut buf = [0u8; 24];
        buf[..4].copy_from_slice(&PCM_READ_HEADER);
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.opcode(), Opcode::PcmRead);
        assert!(p.sync());
        assert_eq!(p.packet_len(), 24);

        let mut buf = [0u8; 10];
        buf[..4].copy_from_slice(&REG_HEADER);
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert!(!p.is_pcm());
        assert_eq!(p.address(), Address::new(1, 0).unwrap());
        assert_eq!(p.opcode(), Opcode::RegisterRequest);
    }

    #[test]
    fn test_construct() {
        let mut buf = [0xFFu8; 264];
        let mut p = Packet::new_unchecked(&mut buf[..]);
        p.set_packet_len(0x108);
        p.set_is_pcm(true);
        p.set_pcmslot(0);
        p.set_opcode(Opcode::PcmWrite);
        p.set_address(Address::ZERO);
        p.set_sync(false);
        // Byte 1 bit 2 (reserved) was 1 in the buffer and is kept by the setters; the
        // repr emitter below clears it.
        assert_eq!(&buf[..4], &[0x08, 0x0D, 0x11, 0x00]);
    }

    #[test]
    fn test_parse_and_emit() {
        let mut buf = [0u8; 24];
        buf[..4].copy_from_slice(&PCM_READ_HEADER);
        let h = Header::parse(&Packet::new_checked(&buf[..]).unwrap());
        assert_eq!(h, Header::pcm(Opcode::PcmRead, Address::ZERO, 24, true));
        let mut out = [0xFFu8; 4];
        h.emit(&mut out);
        assert_eq!(out, PCM_READ_HEADER);

        let mut out = [0xFFu8; 4];
        Header::command(Opcode::RegisterRequest, Address::new(1, 0).unwrap(), 10).emit(&mut out);
        assert_eq!(out, REG_HEADER);
        Header::pcm(Opcode::PcmWrite, Address::ZERO, 0x108, false).emit(&mut out);
        assert_eq!(out, PCM32_HEADER);
    }

    #[test]
    fn address_byte() {
        // PRI SET_LED to XPD 2/1 uses address byte 0x21 (§11).
        let a = Address::from_byte(0x21);
        assert_eq!((a.unit(), a.subunit()), (2, 1));
        assert_eq!(a.to_byte(), 0x21);
        assert_eq!(a.xpd_index(), 17);
        // Reserved bit 3 and sync bit 7 are not part of the address.
        assert_eq!(Address::from_byte(0xF9), Address::new(7, 1).unwrap());
        assert_eq!(Address::new(8, 0), None);
        assert_eq!(Address::new(0, 8), None);
        assert_eq!(Address::new(7, 7).unwrap().to_string(), "7/7");
    }

    #[test]
    fn check_len_rejects() {
        assert!(matches!(Packet::new_checked(&[0x0Au8, 0, 0x0F][..]), Err(WireError::Truncated { .. })));
        assert!(matches!(
            Packet::new_checked(&[0x03u8, 0, 0x0F, 0][..]),
            Err(WireError::BadLength { len: 3, .. })
        ));
        assert!(matches!(
            Packet::new_checked(&[0x00u8, 0, 0x0F, 0][..]),
            Err(WireError::BadLength { len: 0, .. })
        ));
        assert!(matches!(
            Packet::new_checked(&[0x05u8, 0, 0x23, 0][..]),
            Err(WireError::BadLength { len: 5, .. })
        ));
        assert!(Packet::new_checked(&[0x05u8, 0, 0x23, 0, 4][..]).is_ok());
    }

    #[test]
    fn truncation_sweep() {
        let full = [0x05u8, 0x00, 0x23, 0x00, 0x04];
        for n in 0..full.len() {
            assert!(Packet::new_checked(&full[..n]).is_err(), "prefix {n}");
        }
    }

    #[test]
    fn opcode_keeps_unknown() {
        assert_eq!(Opcode::from(0x42), Opcode::Unknown(0x42));
        assert_eq!(u8::from(Opcode::Unknown(0x42)), 0x42);
        assert_eq!(Opcode::from(0xFE).name(), "NULL_REPLY");
        assert_eq!(Opcode::Unknown(0x42).to_string(), "UNKNOWN(0x42)");
        for v in 0..=255u8 {
            assert_eq!(u8::from(Opcode::from(v)), v);
        }
    }
}
