//! PIC firmware for the module micro-controllers, over the data interface
//! (docs/reference/mpp-twinstar-firmware.md §5.5).
//!
//! ```text
//!  0      2      3      4       5           6       8
//! +------+------+------+-------+-----------+-------+--------------+
//! | len  | 0x09 | 0x00 | flags | card_type | offs  | data (0..3)  |
//! +------+------+------+-------+-----------+-------+--------------+
//!  XPP header (len = 8 + data_len)          u16 LE
//! ```
//!
//! Per file: START (no data, offs 0), one DATA packet per data record (exactly 3 bytes each,
//! offs = the record's address) while XOR-ing every data byte into a checksum, then END with
//! the checksum as its one data byte; the host then reads one reply (op 0x0A) whose byte 8 must
//! be 0. After all files: ENDS with card type 0. [`PicStep::expects_reply`] marks the END
//! packets after which the driver must read and [`PicReply::check`] a reply before going on.
//!
//! Decision (assumed, confirm on hardware): END and ENDS carry offs 0 (the reference gives no value).
//!
//! The driver also has to meet the transport conditions of §5.5 (USB packet size 512, stale IN
//! transfers drained, 500 ms timeouts); they are not this module's business.

use super::{FirmwareError, HexFile, RecordType};
use crate::macros::wire_enum;
use crate::wire::{Address, Header, Opcode, Packet, WireError};

/// Bytes of a PIC packet before its data: the XPP header plus flags, card type and offs.
pub const PIC_HEADER_LEN: usize = 8;
/// Data bytes in one PIC DATA packet (one HEX record).
const PIC_RECORD_LEN: usize = 3;
/// Length of a PIC reply up to and including the status byte.
const PIC_REPLY_LEN: usize = 9;

mod field {
    pub(super) const FLAGS: usize = 4;
    pub(super) const CARD_TYPE: usize = 5;
    pub(super) const OFFS: core::ops::Range<usize> = 6..8;
    pub(super) const STATUS: usize = 8;
}

wire_enum! {
    /// The flags byte of a PIC packet.
    pub enum PicFlags(u8) {
        /// One record of data.
        Data = 0x00 => "DATA",
        /// Start of one file.
        Start = 0x01 => "START",
        /// End of one file; carries the XOR checksum.
        End = 0x02 => "END",
        /// End of all files.
        Ends = 0x04 => "ENDS",
    }
}

/// One PIC_REQUEST packet (op 0x09, address byte 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PicPacket {
    /// What the packet is.
    pub flags: PicFlags,
    /// Module type 1..9 (0 on ENDS).
    pub card_type: u8,
    /// The HEX record's address (0 on START/END/ENDS).
    pub offset: u16,
    data: [u8; PIC_RECORD_LEN],
    data_len: u8,
}

impl PicPacket {
    /// A packet with up to 3 data bytes, or `None` if `data` is longer.
    pub fn new(flags: PicFlags, card_type: u8, offset: u16, data: &[u8]) -> Option<Self> {
        if data.len() > PIC_RECORD_LEN {
            return None;
        }
        let mut buf = [0u8; PIC_RECORD_LEN];
        buf[..data.len()].copy_from_slice(data);
        Some(Self { flags, card_type, offset, data: buf, data_len: data.len() as u8 })
    }

    /// The data bytes (0..3).
    pub fn data(&self) -> &[u8] {
        &self.data[..usize::from(self.data_len).min(PIC_RECORD_LEN)]
    }

    /// Bytes [`PicPacket::emit`] writes: 8 + data length.
    pub fn buffer_len(&self) -> usize {
        PIC_HEADER_LEN + self.data().len()
    }

    /// Writes the packet into the start of `buf`; returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        let len = self.buffer_len();
        let Some(out) = buf.get_mut(..len) else {
            return Err(WireError::NoRoom { what: "PIC packet", needed: len, available: buf.len() });
        };
        Header::command(Opcode::PicRequest, Address::ZERO, len as u16).emit(out);
        out[field::FLAGS] = self.flags.into();
        out[field::CARD_TYPE] = self.card_type;
        out[field::OFFS].copy_from_slice(&self.offset.to_le_bytes());
        out[PIC_HEADER_LEN..].copy_from_slice(self.data());
        Ok(len)
    }

    /// Decodes a PIC_REQUEST packet (the emulator's side). The address byte is not checked.
    pub fn parse(bytes: &[u8]) -> Result<Self, WireError> {
        let p = Packet::new_checked(bytes)?;
        if p.opcode() != Opcode::PicRequest {
            return Err(WireError::Invalid {
                what: "PIC packet",
                offset: 2,
                reason: "opcode is not PIC_REQUEST",
            });
        }
        let b = p.as_bytes();
        if b.len() < PIC_HEADER_LEN || b.len() > PIC_HEADER_LEN + PIC_RECORD_LEN {
            return Err(WireError::BadLength {
                offset: 0,
                len: p.packet_len(),
                reason: "PIC packet must be 8 to 11 bytes",
            });
        }
        let offset = u16::from_le_bytes([b[field::OFFS.start], b[field::OFFS.start + 1]]);
        Self::new(PicFlags::from(b[field::FLAGS]), b[field::CARD_TYPE], offset, &b[PIC_HEADER_LEN..])
            .ok_or(WireError::Invalid { what: "PIC packet", offset: 0, reason: "more than 3 data bytes" })
    }
}

/// The device's PIC_REPLY (op 0x0A), read after each END.
///
/// The host looks only at the opcode and at byte 8 (0 = checksum OK). Bytes 4..8 are kept as
/// flags, card type and offs, assumed to mirror the request **(inference)**; the host code does
/// not check them (§10.13).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PicReply {
    /// Byte 4.
    pub flags: PicFlags,
    /// Byte 5.
    pub card_type: u8,
    /// Bytes 6..8, little-endian.
    pub offset: u16,
    /// Byte 8: 0 when the device's checksum matched.
    pub status: u8,
}

impl PicReply {
    /// Decodes a reply: opcode PIC_REPLY and at least 9 bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, WireError> {
        let p = Packet::new_checked(bytes)?;
        if p.opcode() != Opcode::PicReply {
            return Err(WireError::Invalid {
                what: "PIC reply",
                offset: 2,
                reason: "opcode is not PIC_REPLY",
            });
        }
        let b = p.as_bytes();
        if b.len() < PIC_REPLY_LEN {
            return Err(WireError::BadLength {
                offset: 0,
                len: p.packet_len(),
                reason: "PIC reply must be at least 9 bytes",
            });
        }
        Ok(Self {
            flags: PicFlags::from(b[field::FLAGS]),
            card_type: b[field::CARD_TYPE],
            offset: u16::from_le_bytes([b[field::OFFS.start], b[field::OFFS.start + 1]]),
            status: b[field::STATUS],
        })
    }

    /// Writes the 9-byte reply (the emulator's side); returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        let Some(out) = buf.get_mut(..PIC_REPLY_LEN) else {
            return Err(WireError::NoRoom { what: "PIC reply", needed: PIC_REPLY_LEN, available: buf.len() });
        };
        Header::command(Opcode::PicReply, Address::ZERO, PIC_REPLY_LEN as u16).emit(out);
        out[field::FLAGS] = self.flags.into();
        out[field::CARD_TYPE] = self.card_type;
        out[field::OFFS].copy_from_slice(&self.offset.to_le_bytes());
        out[field::STATUS] = self.status;
        Ok(PIC_REPLY_LEN)
    }

    /// Whether the device accepted the checksum.
    pub const fn is_ok(&self) -> bool {
        self.status == 0
    }

    /// `Ok` if the device accepted the checksum, else [`FirmwareError::Rejected`].
    pub const fn check(&self) -> Result<(), FirmwareError> {
        if self.is_ok() {
            Ok(())
        } else {
            Err(FirmwareError::Rejected { reason: "PIC reports bad checksum" })
        }
    }
}

/// The card type a PIC file is for: `n` from a file name `PIC_TYPE_<n>.hex` (case-insensitive,
/// n = 1..9), after any directory part.
pub fn pic_card_type(file_name: &str) -> Option<u8> {
    let base = file_name.rsplit(['/', '\\']).next().unwrap_or(file_name).as_bytes();
    let [prefix @ .., n, dot, h, e, x] = base else {
        return None;
    };
    if !prefix.eq_ignore_ascii_case(b"PIC_TYPE_") || ![*dot, *h, *e, *x].eq_ignore_ascii_case(b".hex") {
        return None;
    }
    matches!(n, b'1'..=b'9').then(|| n - b'0')
}

/// One validated PIC file.
#[derive(Debug, Clone, Copy)]
pub struct PicImage<'a> {
    hex: &'a HexFile,
    card_type: u8,
    checksum: u8,
    data_records: usize,
}

impl<'a> PicImage<'a> {
    /// Validates `hex` as the PIC image named `file_name` (`PIC_TYPE_<n>.hex`).
    pub fn new(file_name: &str, hex: &'a HexFile) -> Result<Self, FirmwareError> {
        let Some(card_type) = pic_card_type(file_name) else {
            return Err(FirmwareError::FileName { reason: "PIC file name must be PIC_TYPE_<1..9>.hex" });
        };
        Self::with_card_type(card_type, hex)
    }

    /// Validates `hex` as a PIC image for `card_type` (1..9): at most 10 000 records, only data
    /// records of exactly 3 bytes besides EOF.
    pub fn with_card_type(card_type: u8, hex: &'a HexFile) -> Result<Self, FirmwareError> {
        if !(1..=9).contains(&card_type) {
            return Err(FirmwareError::FileName { reason: "PIC card type must be 1..9" });
        }
        if let Some(r) = hex.record(super::MAX_PIC_RECORDS) {
            return Err(FirmwareError::TooManyRecords { line: r.line, limit: super::MAX_PIC_RECORDS });
        }
        let mut checksum = 0u8;
        let mut data_records = 0;
        for r in hex.records() {
            match r.kind {
                RecordType::Data if r.data.len() == PIC_RECORD_LEN => {
                    checksum = r.data.iter().fold(checksum, |c, b| c ^ b);
                    data_records += 1;
                }
                RecordType::Data => {
                    return Err(FirmwareError::Record {
                        line: r.line,
                        reason: "PIC data record must hold exactly 3 bytes",
                    });
                }
                RecordType::Eof => {}
                _ => {
                    return Err(FirmwareError::Record {
                        line: r.line,
                        reason: "PIC file may hold only data and EOF records",
                    });
                }
            }
        }
        Ok(Self { hex, card_type, checksum, data_records })
    }

    /// The module type this image is for.
    pub const fn card_type(&self) -> u8 {
        self.card_type
    }

    /// XOR of all data bytes: the END packet's data.
    pub const fn checksum(&self) -> u8 {
        self.checksum
    }

    /// Number of DATA packets.
    pub const fn data_records(&self) -> usize {
        self.data_records
    }
}

/// One packet to send, and whether a reply must be read and checked right after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PicStep {
    /// The packet.
    pub packet: PicPacket,
    /// `true` after END: read one [`PicReply`] and [`PicReply::check`] it before the next step.
    pub expects_reply: bool,
}

/// The load of one or more PIC images, in the given order, ended by ENDS.
///
/// ```
/// use xpp_proto::firmware::{HexFile, PicFlags, PicImage, PicLoad};
/// let hex = HexFile::parse(b":03000000A1EA4A28\n:00000001FF\n")?;
/// let images = [PicImage::new("pic_type_2.HEX", &hex)?];
/// let steps: Vec<_> = PicLoad::new(&images).steps().collect();
/// let flags: Vec<_> = steps.iter().map(|s| (s.packet.flags, s.expects_reply)).collect();
/// assert_eq!(flags, [
///     (PicFlags::Start, false), (PicFlags::Data, false), (PicFlags::End, true), (PicFlags::Ends, false),
/// ]);
/// assert_eq!(steps[2].packet.data(), &[0xA1 ^ 0xEA ^ 0x4A]);
/// # Ok::<(), xpp_proto::firmware::FirmwareError>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct PicLoad<'a> {
    images: &'a [PicImage<'a>],
}

impl<'a> PicLoad<'a> {
    /// A load of already validated images.
    pub const fn new(images: &'a [PicImage<'a>]) -> Self {
        Self { images }
    }

    /// Every packet in order.
    pub fn steps(&self) -> PicSteps<'a> {
        PicSteps { images: self.images, image: 0, phase: PicPhase::Start }
    }

    /// How many packets [`PicLoad::steps`] yields.
    pub fn step_count(&self) -> usize {
        self.images.iter().map(|i| i.data_records + 2).sum::<usize>() + 1
    }
}

#[derive(Debug, Clone)]
enum PicPhase<'a> {
    Start,
    Data(super::Records<'a>),
    Ends,
    Done,
}

/// Iterator over the steps of a [`PicLoad`].
#[derive(Debug, Clone)]
pub struct PicSteps<'a> {
    images: &'a [PicImage<'a>],
    image: usize,
    phase: PicPhase<'a>,
}

fn step(flags: PicFlags, card_type: u8, offset: u16, data: &[u8], expects_reply: bool) -> PicStep {
    let packet = PicPacket::new(flags, card_type, offset, data).unwrap_or(PicPacket {
        flags,
        card_type,
        offset,
        data: [0; PIC_RECORD_LEN],
        data_len: 0,
    });
    PicStep { packet, expects_reply }
}

impl Iterator for PicSteps<'_> {
    type Item = PicStep;

    fn next(&mut self) -> Option<PicStep> {
        loop {
            match &mut self.phase {
                PicPhase::Start => {
                    let Some(image) = self.images.get(self.image) else {
                        self.phase = PicPhase::Ends;
                        continue;
                    };
                    self.phase = PicPhase::Data(image.hex.records());
                    return Some(step(PicFlags::Start, image.card_type, 0, &[], false));
                }
                PicPhase::Data(records) => {
                    let image = self.images.get(self.image)?;
                    if let Some(r) = records.find(|r| r.kind == RecordType::Data) {
                        return Some(step(PicFlags::Data, image.card_type, r.address, r.data, false));
                    }
                    self.image += 1;
                    self.phase = PicPhase::Start;
                    return Some(step(PicFlags::End, image.card_type, 0, &[image.checksum], true));
                }
                PicPhase::Ends => {
                    self.phase = PicPhase::Done;
                    return Some(step(PicFlags::Ends, 0, 0, &[], false));
                }
                PicPhase::Done => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Written by hand from the §5.5 table: len LE, op 0x09, addr 0, flags, card type, offs LE.
    static START_T1: [u8; 8] = [0x08, 0x00, 0x09, 0x00, 0x01, 0x01, 0x00, 0x00];
    // PIC_TYPE_1.hex line 4 `:03000000A1EA4A28`, as a DATA packet.
    static DATA_T1: [u8; 11] = [0x0B, 0x00, 0x09, 0x00, 0x00, 0x01, 0x00, 0x00, 0xA1, 0xEA, 0x4A];
    // DATA for record address 0x01E1 of type 3.
    static DATA_T3_1E1: [u8; 11] = [0x0B, 0x00, 0x09, 0x00, 0x00, 0x03, 0xE1, 0x01, 0x00, 0x0B, 0xE1];
    static END_T1: [u8; 9] = [0x09, 0x00, 0x09, 0x00, 0x02, 0x01, 0x00, 0x00, 0x5B];
    static ENDS: [u8; 8] = [0x08, 0x00, 0x09, 0x00, 0x04, 0x00, 0x00, 0x00];
    static REPLY_OK: [u8; 9] = [0x09, 0x00, 0x0A, 0x00, 0x02, 0x01, 0x00, 0x00, 0x00];
    static REPLY_BAD: [u8; 9] = [0x09, 0x00, 0x0A, 0x00, 0x02, 0x01, 0x00, 0x00, 0x01];

    fn emit(p: &PicPacket) -> Vec<u8> {
        let mut buf = [0xEEu8; 16];
        let n = p.emit(&mut buf).unwrap();
        buf[..n].to_vec()
    }

    #[test]
    fn test_construct_and_emit() {
        assert_eq!(emit(&PicPacket::new(PicFlags::Start, 1, 0, &[]).unwrap()), START_T1);
        assert_eq!(emit(&PicPacket::new(PicFlags::Data, 1, 0, &[0xA1, 0xEA, 0x4A]).unwrap()), DATA_T1);
        assert_eq!(
            emit(&PicPacket::new(PicFlags::Data, 3, 0x1E1, &[0x00, 0x0B, 0xE1]).unwrap()),
            DATA_T3_1E1
        );
        assert_eq!(emit(&PicPacket::new(PicFlags::End, 1, 0, &[0x5B]).unwrap()), END_T1);
        assert_eq!(emit(&PicPacket::new(PicFlags::Ends, 0, 0, &[]).unwrap()), ENDS);
        assert!(PicPacket::new(PicFlags::Data, 1, 0, &[1, 2, 3, 4]).is_none());
        let p = PicPacket::new(PicFlags::Data, 1, 0, &[1, 2, 3]).unwrap();
        assert_eq!(
            p.emit(&mut [0u8; 10]),
            Err(WireError::NoRoom { what: "PIC packet", needed: 11, available: 10 })
        );
    }

    #[test]
    fn test_parse_and_deconstruct() {
        for bytes in [&START_T1[..], &DATA_T1, &DATA_T3_1E1, &END_T1, &ENDS] {
            let p = PicPacket::parse(bytes).unwrap();
            assert_eq!(emit(&p), bytes);
        }
        let p = PicPacket::parse(&DATA_T3_1E1).unwrap();
        assert_eq!(
            (p.flags, p.card_type, p.offset, p.data()),
            (PicFlags::Data, 3, 0x01E1, &[0x00, 0x0B, 0xE1][..])
        );
        // Wrong opcode, too short, too long.
        assert!(PicPacket::parse(&[0x08, 0x00, 0x0A, 0x00, 0x01, 0x01, 0x00, 0x00]).is_err());
        assert!(PicPacket::parse(&[0x07, 0x00, 0x09, 0x00, 0x01, 0x01, 0x00]).is_err());
        assert!(PicPacket::parse(&[0x0C, 0x00, 0x09, 0x00, 0, 1, 0, 0, 1, 2, 3, 4]).is_err());
        for n in 0..DATA_T1.len() {
            assert!(PicPacket::parse(&DATA_T1[..n]).is_err(), "prefix {n}");
        }
    }

    #[test]
    fn reply() {
        let ok = PicReply::parse(&REPLY_OK).unwrap();
        assert_eq!(ok, PicReply { flags: PicFlags::End, card_type: 1, offset: 0, status: 0 });
        assert!(ok.is_ok());
        assert_eq!(ok.check(), Ok(()));
        let bad = PicReply::parse(&REPLY_BAD).unwrap();
        assert_eq!(bad.check(), Err(FirmwareError::Rejected { reason: "PIC reports bad checksum" }));
        let mut buf = [0u8; 9];
        assert_eq!(ok.emit(&mut buf), Ok(9));
        assert_eq!(buf, REPLY_OK);
        assert!(PicReply::parse(&START_T1).is_err());
        for n in 0..REPLY_OK.len() {
            assert!(PicReply::parse(&REPLY_OK[..n]).is_err(), "prefix {n}");
        }
        // A shorter packet_len than 9 is refused even in a longer buffer.
        assert!(PicReply::parse(&[0x08, 0x00, 0x0A, 0x00, 0, 0, 0, 0, 0]).is_err());
    }

    #[test]
    fn card_type_from_file_name() {
        assert_eq!(pic_card_type("PIC_TYPE_1.hex"), Some(1));
        assert_eq!(pic_card_type("/usr/share/dahdi/pic_type_6.HEX"), Some(6));
        assert_eq!(pic_card_type("C:\\fw\\Pic_Type_9.Hex"), Some(9));
        for bad in
            ["PIC_TYPE_0.hex", "PIC_TYPE_10.hex", "PIC_TYPE_A.hex", "PIC_TYPE_1.bin", "FPGA_1161.hex", ""]
        {
            assert_eq!(pic_card_type(bad), None, "{bad}");
        }
    }

    #[test]
    fn validation() {
        let hex = HexFile::parse(b":03000000A1EA4A28\n:020001000102FA\n:00000001FF\n").unwrap();
        assert_eq!(
            PicImage::new("PIC_TYPE_1.hex", &hex).unwrap_err(),
            FirmwareError::Record { line: 2, reason: "PIC data record must hold exactly 3 bytes" }
        );
        let hex = HexFile::parse(b":020000040000FA\n:00000001FF\n").unwrap();
        assert!(matches!(PicImage::new("PIC_TYPE_1.hex", &hex), Err(FirmwareError::Record { line: 1, .. })));
        let hex = HexFile::parse(b":00000001FF\n").unwrap();
        assert!(matches!(PicImage::new("PIC_1.hex", &hex), Err(FirmwareError::FileName { .. })));
        assert!(PicImage::with_card_type(0, &hex).is_err());
        let mut text = String::new();
        for _ in 0..super::super::MAX_PIC_RECORDS {
            text.push_str(":03000000A1EA4A28\n");
        }
        text.push_str(":00000001FF\n");
        let hex = HexFile::parse(text.as_bytes()).unwrap();
        assert_eq!(
            PicImage::new("PIC_TYPE_1.hex", &hex).unwrap_err(),
            FirmwareError::TooManyRecords { line: 10_001, limit: 10_000 }
        );
    }

    #[test]
    fn two_files_then_ends() {
        let a = HexFile::parse(b":03000000010203F7\n:03000100040506ED\n:00000001FF\n").unwrap();
        let b = HexFile::parse(b":00000001FF\n").unwrap();
        let images =
            [PicImage::new("PIC_TYPE_2.hex", &a).unwrap(), PicImage::new("PIC_TYPE_4.hex", &b).unwrap()];
        let load = PicLoad::new(&images);
        let steps: Vec<_> = load.steps().collect();
        assert_eq!(steps.len(), load.step_count());
        let summary: Vec<_> = steps
            .iter()
            .map(|s| {
                (
                    s.packet.flags,
                    s.packet.card_type,
                    s.packet.offset,
                    s.packet.data().to_vec(),
                    s.expects_reply,
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (PicFlags::Start, 2, 0, vec![], false),
                (PicFlags::Data, 2, 0, vec![1, 2, 3], false),
                (PicFlags::Data, 2, 1, vec![4, 5, 6], false),
                (PicFlags::End, 2, 0, vec![0x07] /* 1^2^3^4^5^6 */, true),
                (PicFlags::Start, 4, 0, vec![], false),
                (PicFlags::End, 4, 0, vec![0], true),
                (PicFlags::Ends, 0, 0, vec![], false),
            ]
        );
        assert_eq!(PicLoad::new(&[]).steps().map(|s| s.packet.flags).collect::<Vec<_>>(), [PicFlags::Ends]);
    }
}
