//! Echo-canceller (Octasic OCT6104E) access over the data interface
//! (docs/reference/mpp-twinstar-firmware.md §5.6): SPI packets, the loader's test packet, the 16-bit chip
//! access sequences, and the batching of packets into USB transfers.
//!
//! ```text
//! SPI send  (len 10): | 0A 00 | 0F | 40 | 05 | flags | reg lo | reg hi | data lo | data hi |
//! SPI reply (op 0x10): value = byte 9 << 8 | byte 8
//! Test send (len 6):  | 06 00 | 35 | 00 | 28 | 00 |
//! Test reply (op 0x36): value = byte 4 << 8 | byte 5
//! ```
//!
//! SPI flags: 0x30 always, +0x40 when a reply is wanted (read), +0x01 for the CPLD version
//! query. The address byte 0x40 is unit 4, subunit 0: the echo-canceller slot.
//!
//! Out of scope: opening the chip itself. The Octasic API chip open (clocks, DDR, TDM streams,
//! channel setup) runs the proprietary `OCT6104E-256D.ima` image through Octasic's third-party
//! API library, which this crate neither contains nor re-implements. A driver that links such a
//! library uses [`chip_write`]/[`chip_read`] and [`batch`] as its register transport.

use crate::time::Duration;
use crate::wire::{Address, Header, Opcode, Packet, WireError};

/// Length of an SPI packet.
pub const SPI_PACKET_LEN: usize = 10;
/// Length of the test packet.
pub const TEST_PACKET_LEN: usize = 6;
/// Largest batched transfer: the USB high-speed bulk packet size.
pub const MAX_TRANSFER: usize = 512;
/// Largest echo-canceller image file read (`OCT6104E-256D.ima`), 8 MiB.
// Decision: the image is Octasic's proprietary firmware, well under a megabyte; 8 MiB leaves
// room for other releases and bounds what a folder scan reads.
pub const MAX_IMAGE_LEN: usize = 8 << 20;
/// CPLD version meaning "test hardware instead of an echo canceller" (the loader stops, success).
pub const CPLD_TEST_HARDWARE: u16 = 0xABCD;

/// SPI flag bits always set.
pub const SPI_FLAGS_BASE: u8 = 0x30;
/// SPI flag: reply requested (read).
pub const SPI_FLAG_READ: u8 = 0x40;
/// SPI flag: CPLD version query.
pub const SPI_FLAG_VERSION: u8 = 0x01;

/// Byte 4 of an SPI packet.
const SPI_SUBCOMMAND: u8 = 0x05;
/// Test id and sub-id of the test packet.
const TEST_ID: u8 = 0x28;
const TEST_SUB_ID: u8 = 0x00;

/// The echo-canceller slot: unit 4, subunit 0 (address byte 0x40).
const EC_ADDRESS: Address = match Address::new(4, 0) {
    Some(a) => a,
    None => Address::ZERO,
};

/// Chip registers used by the 16-bit access sequences.
mod reg {
    pub(super) const CONTROL: u16 = 0x0000;
    pub(super) const DATA: u16 = 0x0004;
    pub(super) const ADDRESS_HIGH: u16 = 0x0008;
    pub(super) const ADDRESS_LOW: u16 = 0x000A;
}

/// One SPI send packet (op REGISTER_REQUEST to the echo-canceller slot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SpiPacket {
    /// Flags byte: [`SPI_FLAGS_BASE`] plus [`SPI_FLAG_READ`] / [`SPI_FLAG_VERSION`].
    pub flags: u8,
    /// SPI register address.
    pub reg: u16,
    /// Data written (0 for reads).
    pub data: u16,
}

impl SpiPacket {
    /// Write `data` to SPI register `reg`.
    pub const fn write(reg: u16, data: u16) -> Self {
        Self { flags: SPI_FLAGS_BASE, reg, data }
    }

    /// Read SPI register `reg` (a reply follows).
    pub const fn read(reg: u16) -> Self {
        Self { flags: SPI_FLAGS_BASE | SPI_FLAG_READ, reg, data: 0 }
    }

    /// The CPLD version query: register 0, data 0, read + version flags.
    pub const fn version_query() -> Self {
        Self { flags: SPI_FLAGS_BASE | SPI_FLAG_READ | SPI_FLAG_VERSION, reg: 0, data: 0 }
    }

    /// Whether the device answers this packet.
    pub const fn expects_reply(&self) -> bool {
        self.flags & SPI_FLAG_READ != 0
    }

    /// Writes the 10-byte packet into the start of `buf`; returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        let Some(out) = buf.get_mut(..SPI_PACKET_LEN) else {
            return Err(WireError::NoRoom {
                what: "SPI packet",
                needed: SPI_PACKET_LEN,
                available: buf.len(),
            });
        };
        Header::command(Opcode::RegisterRequest, EC_ADDRESS, SPI_PACKET_LEN as u16).emit(out);
        out[4] = SPI_SUBCOMMAND;
        out[5] = self.flags;
        out[6..8].copy_from_slice(&self.reg.to_le_bytes());
        out[8..10].copy_from_slice(&self.data.to_le_bytes());
        Ok(SPI_PACKET_LEN)
    }

    /// Decodes an SPI send packet (the emulator's side): op 0x0F, byte 4 = 0x05, 10 bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, WireError> {
        let b = checked(bytes, Opcode::RegisterRequest, SPI_PACKET_LEN, "SPI packet")?;
        if b.len() != SPI_PACKET_LEN {
            return Err(WireError::Invalid { what: "SPI packet", offset: 0, reason: "length is not 10" });
        }
        if b[4] != SPI_SUBCOMMAND {
            return Err(WireError::Invalid { what: "SPI packet", offset: 4, reason: "byte 4 is not 0x05" });
        }
        Ok(Self {
            flags: b[5],
            reg: u16::from_le_bytes([b[6], b[7]]),
            data: u16::from_le_bytes([b[8], b[9]]),
        })
    }
}

/// Checks header, opcode and minimum length; returns the packet's bytes.
fn checked<'a>(bytes: &'a [u8], op: Opcode, min: usize, what: &'static str) -> Result<&'a [u8], WireError> {
    let p = Packet::new_checked(bytes)?;
    if p.opcode() != op {
        return Err(WireError::Invalid { what, offset: 2, reason: "unexpected opcode" });
    }
    let b = bytes.get(..usize::from(p.packet_len())).unwrap_or_default();
    if b.len() < min {
        return Err(WireError::Truncated { what, offset: 0, needed: min });
    }
    Ok(b)
}

/// The value of an SPI reply (op REGISTER_REPLY 0x10): `byte 9 << 8 | byte 8`.
pub fn parse_spi_reply(bytes: &[u8]) -> Result<u16, WireError> {
    let b = checked(bytes, Opcode::RegisterReply, SPI_PACKET_LEN, "SPI reply")?;
    Ok(u16::from_le_bytes([b[8], b[9]]))
}

/// The value of a test reply (op ECHO_TEST_REPLY 0x36): `byte 4 << 8 | byte 5`.
pub fn parse_test_reply(bytes: &[u8]) -> Result<u16, WireError> {
    let b = checked(bytes, Opcode::EchoTestReply, TEST_PACKET_LEN, "echo test reply")?;
    Ok(u16::from_be_bytes([b[4], b[5]]))
}

/// A packet the echo loader sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EchoPacket {
    /// An SPI access.
    Spi(SpiPacket),
    /// The loader's test packet (op 0x35, test id 0x28); always answered.
    Test,
}

impl EchoPacket {
    /// Bytes on the wire.
    pub const fn len(&self) -> usize {
        match self {
            Self::Spi(_) => SPI_PACKET_LEN,
            Self::Test => TEST_PACKET_LEN,
        }
    }

    /// Never empty; present for the `len`/`is_empty` convention.
    pub const fn is_empty(&self) -> bool {
        false
    }

    /// Whether the device answers this packet.
    pub const fn expects_reply(&self) -> bool {
        match self {
            Self::Spi(p) => p.expects_reply(),
            Self::Test => true,
        }
    }

    /// Writes the packet into the start of `buf`; returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        match self {
            Self::Spi(p) => p.emit(buf),
            Self::Test => {
                let Some(out) = buf.get_mut(..TEST_PACKET_LEN) else {
                    return Err(WireError::NoRoom {
                        what: "echo test packet",
                        needed: TEST_PACKET_LEN,
                        available: buf.len(),
                    });
                };
                Header::command(Opcode::EchoTest, Address::ZERO, TEST_PACKET_LEN as u16).emit(out);
                out[4] = TEST_ID;
                out[5] = TEST_SUB_ID;
                Ok(TEST_PACKET_LEN)
            }
        }
    }
}

impl From<SpiPacket> for EchoPacket {
    fn from(p: SpiPacket) -> Self {
        Self::Spi(p)
    }
}

/// The SPI control word that starts a 16-bit chip access.
const fn control(address: u32, base: u16) -> u16 {
    base | ((((address >> 1) & 7) as u16) << 9)
}

/// The four SPI writes that store 16-bit `data` at chip address `address`.
pub const fn chip_write(address: u32, data: u16) -> [SpiPacket; 4] {
    [
        SpiPacket::write(reg::ADDRESS_HIGH, (address >> 20) as u16),
        SpiPacket::write(reg::ADDRESS_LOW, ((address >> 4) & 0xFFFF) as u16),
        SpiPacket::write(reg::DATA, data),
        SpiPacket::write(reg::CONTROL, control(address, 0x3101)),
    ]
}

/// The three SPI writes and the SPI read (last, answered) that fetch the 16-bit word at chip
/// address `address`.
pub const fn chip_read(address: u32) -> [SpiPacket; 4] {
    [
        SpiPacket::write(reg::ADDRESS_HIGH, (address >> 20) as u16),
        SpiPacket::write(reg::ADDRESS_LOW, ((address >> 4) & 0xFFFF) as u16),
        SpiPacket::write(reg::CONTROL, control(address, 0x0101)),
        SpiPacket::read(reg::DATA),
    ]
}

/// How long the host pauses after sending `bytes` in one transfer: `(2 × bytes − 150)` µs,
/// at least zero.
pub const fn pause_after(bytes: usize) -> Duration {
    Duration::from_micros((2 * bytes as u64).saturating_sub(150))
}

/// One batched bulk OUT transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    buf: [u8; MAX_TRANSFER],
    len: usize,
    packets: usize,
    /// The last packet is answered: read its reply before sending the next transfer.
    pub expects_reply: bool,
    /// Pause after sending, before the next transfer ([`pause_after`]).
    pub pause: Duration,
}

impl Transfer {
    /// The bytes to send.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len.min(MAX_TRANSFER)]
    }

    /// Number of packets in the transfer.
    pub const fn packet_count(&self) -> usize {
        self.packets
    }
}

/// Concatenates packets into transfers of at most [`MAX_TRANSFER`] bytes; a transfer ends when
/// the next packet would not fit or when its last packet expects a reply.
///
/// ```
/// use xpp_proto::firmware::echo::{batch, chip_read, EchoPacket};
/// let transfers: Vec<_> = batch(chip_read(0x1000).map(EchoPacket::from)).collect();
/// assert_eq!(transfers.len(), 1);
/// assert_eq!(transfers[0].as_bytes().len(), 40);
/// assert!(transfers[0].expects_reply);
/// assert_eq!(transfers[0].pause.total_micros(), 0); // 2 × 40 − 150 < 0
/// ```
pub fn batch<I: IntoIterator<Item = EchoPacket>>(packets: I) -> Batches<I::IntoIter> {
    Batches { packets: packets.into_iter(), pending: None }
}

/// Iterator returned by [`batch`].
#[derive(Debug, Clone)]
pub struct Batches<I> {
    packets: I,
    pending: Option<EchoPacket>,
}

impl<I: Iterator<Item = EchoPacket>> Iterator for Batches<I> {
    type Item = Transfer;

    fn next(&mut self) -> Option<Transfer> {
        let mut t = Transfer {
            buf: [0; MAX_TRANSFER],
            len: 0,
            packets: 0,
            expects_reply: false,
            pause: Duration::ZERO,
        };
        while let Some(p) = self.pending.take().or_else(|| self.packets.next()) {
            let Some(room) = t.buf.get_mut(t.len..) else { break };
            let Ok(n) = p.emit(room) else {
                self.pending = Some(p);
                break;
            };
            t.len += n;
            t.packets += 1;
            if p.expects_reply() {
                t.expects_reply = true;
                break;
            }
        }
        if t.packets == 0 {
            return None;
        }
        t.pause = pause_after(t.len);
        Some(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Written by hand from the §5.6 table.
    static SPI_WRITE_8_0123: [u8; 10] = [0x0A, 0x00, 0x0F, 0x40, 0x05, 0x30, 0x08, 0x00, 0x23, 0x01];
    static SPI_VERSION_QUERY: [u8; 10] = [0x0A, 0x00, 0x0F, 0x40, 0x05, 0x71, 0x00, 0x00, 0x00, 0x00];
    static SPI_READ_4: [u8; 10] = [0x0A, 0x00, 0x0F, 0x40, 0x05, 0x70, 0x04, 0x00, 0x00, 0x00];
    static TEST: [u8; 6] = [0x06, 0x00, 0x35, 0x00, 0x28, 0x00];
    static SPI_REPLY_ABCD: [u8; 10] = [0x0A, 0x00, 0x10, 0x40, 0x05, 0x71, 0x00, 0x00, 0xCD, 0xAB];
    static TEST_REPLY_1234: [u8; 6] = [0x06, 0x00, 0x36, 0x00, 0x12, 0x34];

    fn bytes(p: impl Into<EchoPacket>) -> Vec<u8> {
        let mut buf = [0u8; 16];
        let n = p.into().emit(&mut buf).unwrap();
        buf[..n].to_vec()
    }

    #[test]
    fn test_emit() {
        assert_eq!(bytes(SpiPacket::write(8, 0x0123)), SPI_WRITE_8_0123);
        assert_eq!(bytes(SpiPacket::version_query()), SPI_VERSION_QUERY);
        assert_eq!(bytes(SpiPacket::read(4)), SPI_READ_4);
        assert_eq!(bytes(EchoPacket::Test), TEST);
        assert!(SpiPacket::write(0, 0).emit(&mut [0u8; 9]).is_err());
        assert!(EchoPacket::Test.emit(&mut [0u8; 5]).is_err());
    }

    #[test]
    fn test_parse() {
        assert_eq!(SpiPacket::parse(&SPI_WRITE_8_0123), Ok(SpiPacket { flags: 0x30, reg: 8, data: 0x0123 }));
        assert_eq!(SpiPacket::parse(&SPI_VERSION_QUERY), Ok(SpiPacket::version_query()));
        assert!(SpiPacket::version_query().expects_reply());
        assert!(!SpiPacket::write(0, 0).expects_reply());
        assert!(SpiPacket::parse(&TEST).is_err());
        assert_eq!(parse_spi_reply(&SPI_REPLY_ABCD), Ok(CPLD_TEST_HARDWARE));
        assert_eq!(parse_test_reply(&TEST_REPLY_1234), Ok(0x1234));
        assert!(parse_spi_reply(&TEST_REPLY_1234).is_err());
        assert!(parse_test_reply(&SPI_REPLY_ABCD).is_err());
        for n in 0..SPI_REPLY_ABCD.len() {
            assert!(parse_spi_reply(&SPI_REPLY_ABCD[..n]).is_err(), "prefix {n}");
        }
        for n in 0..TEST_REPLY_1234.len() {
            assert!(parse_test_reply(&TEST_REPLY_1234[..n]).is_err(), "prefix {n}");
        }
        // packet_len 6 for an SPI reply: too short even in a longer buffer.
        let mut short = SPI_REPLY_ABCD;
        short[0] = 6;
        assert!(parse_spi_reply(&short).is_err());
    }

    #[test]
    fn chip_access_sequences() {
        // A = 0x12345678: A>>20 = 0x123, (A>>4)&0xFFFF = 0x4567, (A>>1)&7 = 4.
        let w = chip_write(0x1234_5678, 0xBEEF);
        assert_eq!(
            w,
            [
                SpiPacket { flags: 0x30, reg: 0x0008, data: 0x0123 },
                SpiPacket { flags: 0x30, reg: 0x000A, data: 0x4567 },
                SpiPacket { flags: 0x30, reg: 0x0004, data: 0xBEEF },
                SpiPacket { flags: 0x30, reg: 0x0000, data: 0x3901 },
            ]
        );
        assert_eq!(bytes(w[3]), [0x0A, 0x00, 0x0F, 0x40, 0x05, 0x30, 0x00, 0x00, 0x01, 0x39]);
        let r = chip_read(0x0000_000E);
        assert_eq!(
            r,
            [
                SpiPacket { flags: 0x30, reg: 0x0008, data: 0 },
                SpiPacket { flags: 0x30, reg: 0x000A, data: 0 },
                SpiPacket { flags: 0x30, reg: 0x0000, data: 0x0F01 },
                SpiPacket { flags: 0x70, reg: 0x0004, data: 0 },
            ]
        );
    }

    #[test]
    fn pause() {
        assert_eq!(pause_after(0), Duration::ZERO);
        assert_eq!(pause_after(75), Duration::ZERO);
        assert_eq!(pause_after(76), Duration::from_micros(2));
        assert_eq!(pause_after(512), Duration::from_micros(874));
    }

    #[test]
    fn batching() {
        // 60 writes (600 bytes) then one read: 51 writes fill 510 bytes; 9 writes + the read.
        let mut packets: Vec<EchoPacket> = (0..60).map(|i| SpiPacket::write(i, i).into()).collect();
        packets.push(SpiPacket::read(4).into());
        packets.push(EchoPacket::Test);
        packets.push(SpiPacket::write(1, 1).into());
        let t: Vec<_> = batch(packets).collect();
        let shape: Vec<_> =
            t.iter().map(|t| (t.as_bytes().len(), t.packet_count(), t.expects_reply)).collect();
        assert_eq!(shape, [(510, 51, false), (100, 10, true), (6, 1, true), (10, 1, false)]);
        assert_eq!(t[0].pause, Duration::from_micros(870));
        assert_eq!(t[1].pause, Duration::from_micros(50));
        assert_eq!(t[2].pause, Duration::ZERO);
        assert_eq!(&t[1].as_bytes()[90..], SPI_READ_4);
        assert_eq!(&t[0].as_bytes()[..10], bytes(SpiPacket::write(0, 0)));
        assert_eq!(batch(core::iter::empty()).count(), 0);
    }
}
