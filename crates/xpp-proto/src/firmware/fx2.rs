//! Stage 1: the USB firmware written into EZ-USB FX2 RAM (docs/reference/mpp-twinstar-firmware.md §5.3).
//!
//! The sequence is what `fxload -t fx2` does: hold the 8051 in reset (CPUCS ← 0x01), write the
//! image with vendor request 0xA0 (bmRequestType 0x40, wValue = address, wIndex = 0), release
//! reset (CPUCS ← 0x00). The device then renumerates as 11x1.
//!
//! Decision: request 0xA0 reaches only on-chip memory, taken here as the 16 KiB main RAM
//! `0x0000..0x4000` and the 512-byte scratch RAM `0xE000..0xE200` (the "0xE000 block" of the
//! reference). An image with data anywhere else (including above 64 KiB through an extended
//! address record, or over CPUCS itself) is refused before anything is sent; both shipped
//! images lie entirely below 0x4000.
//!
//! Decision: data records are written in file order; a record is merged into the request
//! before it when it directly continues that request both in address and in the file (the
//! next record), up to [`FX2_MAX_CHUNK`] bytes, as fxload does. Records with no data are
//! skipped.

use super::{FirmwareError, HexFile, RecordType};

/// Address of the FX2 CPUCS register (8051 reset control).
pub const FX2_CPUCS: u16 = 0xE600;
/// The EZ-USB "firmware load" vendor request.
pub const FX2_FIRMWARE_LOAD: u8 = 0xA0;
/// bmRequestType of the firmware load request: vendor, device, host-to-device.
pub const FX2_REQUEST_TYPE: u8 = 0x40;
/// Largest data stage of one merged write request.
///
/// Decision: 1023 bytes, fxload's merge limit, which also stays below every host stack's
/// control-transfer limit.
pub const FX2_MAX_CHUNK: usize = 1023;

/// On-chip memory reachable by request 0xA0.
const WRITABLE: [core::ops::Range<u64>; 2] = [0x0000..0x4000, 0xE000..0xE200];

static CPUCS_RESET: [u8; 1] = [0x01];
static CPUCS_RUN: [u8; 1] = [0x00];

/// One USB control request (setup packet fields plus the OUT data stage).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlRequest<'a> {
    /// bmRequestType.
    #[doc(alias = "bmRequestType")]
    pub request_type: u8,
    /// bRequest.
    #[doc(alias = "bRequest")]
    pub request: u8,
    /// wValue: the target address.
    #[doc(alias = "wValue")]
    pub value: u16,
    /// wIndex.
    #[doc(alias = "wIndex")]
    pub index: u16,
    /// The data stage.
    pub data: &'a [u8],
}

impl<'a> ControlRequest<'a> {
    /// A firmware-load write of `data` at `address`.
    pub const fn write(address: u16, data: &'a [u8]) -> Self {
        Self { request_type: FX2_REQUEST_TYPE, request: FX2_FIRMWARE_LOAD, value: address, index: 0, data }
    }
}

/// A validated FX2 RAM download of one image.
///
/// ```
/// use xpp_proto::firmware::{Fx2Load, HexFile, FX2_CPUCS};
/// let hex = HexFile::parse(b":03000000021F00DC\n:00000001FF\n")?;
/// let reqs: Vec<_> = Fx2Load::new(&hex)?.requests().collect();
/// assert_eq!(reqs.len(), 3);
/// assert_eq!((reqs[0].value, reqs[0].data), (FX2_CPUCS, &[1u8][..]));
/// assert_eq!((reqs[1].value, reqs[1].data), (0x0000, &[0x02u8, 0x1F, 0x00][..]));
/// assert_eq!((reqs[2].value, reqs[2].data), (FX2_CPUCS, &[0u8][..]));
/// # Ok::<(), xpp_proto::firmware::FirmwareError>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Fx2Load<'a> {
    hex: &'a HexFile,
}

impl<'a> Fx2Load<'a> {
    /// Checks that every data record lies in on-chip RAM.
    pub fn new(hex: &'a HexFile) -> Result<Self, FirmwareError> {
        for r in hex.data_records().filter(|r| !r.data.is_empty()) {
            let start = u64::from(r.absolute);
            let end = r.absolute_end();
            if !WRITABLE.iter().any(|w| w.start <= start && end <= w.end) {
                return Err(FirmwareError::Record {
                    line: r.line,
                    reason: "data outside the FX2 on-chip RAM that request 0xA0 reaches \
                             (0x0000-0x3FFF, 0xE000-0xE1FF)",
                });
            }
        }
        Ok(Self { hex })
    }

    /// The control requests, in order: CPUCS ← 1, the data writes, CPUCS ← 0.
    pub fn requests(&self) -> Fx2Requests<'a> {
        Fx2Requests { hex: self.hex, phase: Phase::Reset, next: 0 }
    }

    /// How many requests [`Fx2Load::requests`] yields (2 CPUCS writes included).
    pub fn request_count(&self) -> usize {
        self.requests().count()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Reset,
    Data,
    Done,
}

/// Iterator over the control requests of an [`Fx2Load`].
#[derive(Debug, Clone)]
pub struct Fx2Requests<'a> {
    hex: &'a HexFile,
    phase: Phase,
    /// Index of the next record to look at.
    next: usize,
}

impl<'a> Iterator for Fx2Requests<'a> {
    type Item = ControlRequest<'a>;

    fn next(&mut self) -> Option<ControlRequest<'a>> {
        match self.phase {
            Phase::Reset => {
                self.phase = Phase::Data;
                Some(ControlRequest::write(FX2_CPUCS, &CPUCS_RESET))
            }
            Phase::Data => {
                let Some(chunk) = self.next_chunk() else {
                    self.phase = Phase::Done;
                    return Some(ControlRequest::write(FX2_CPUCS, &CPUCS_RUN));
                };
                Some(chunk)
            }
            Phase::Done => None,
        }
    }
}

impl<'a> Fx2Requests<'a> {
    fn next_chunk(&mut self) -> Option<ControlRequest<'a>> {
        let raw = self.hex.raw_data();
        let first = loop {
            let r = self.hex.record(self.next)?;
            self.next += 1;
            if r.kind == RecordType::Data && !r.data.is_empty() {
                break r;
            }
        };
        let (start, mut end, mut abs_end) =
            (first.start, first.start + first.data.len(), first.absolute_end());
        while let Some(r) = self.hex.record(self.next) {
            let continues = r.kind == RecordType::Data
                && r.start == end
                && u64::from(r.absolute) == abs_end
                && end - start + r.data.len() <= FX2_MAX_CHUNK;
            if !continues {
                break;
            }
            self.next += 1;
            end += r.data.len();
            abs_end = r.absolute_end();
        }
        // Validated in `Fx2Load::new`: every address is below 0xE200.
        let address = u16::try_from(first.absolute).unwrap_or(u16::MAX);
        Some(ControlRequest::write(address, raw.get(start..end).unwrap_or_default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn requests(text: &str) -> Result<Vec<(u16, Vec<u8>)>, FirmwareError> {
        let hex = HexFile::parse(text.as_bytes()).unwrap();
        let load = Fx2Load::new(&hex)?;
        let reqs: Vec<_> = load.requests().collect();
        assert_eq!(reqs.len(), load.request_count());
        for r in &reqs {
            assert_eq!((r.request_type, r.request, r.index), (0x40, 0xA0, 0));
        }
        Ok(reqs.iter().map(|r| (r.value, r.data.to_vec())).collect())
    }

    #[test]
    fn merges_adjacent_records_only() {
        // 0x0000: 2 bytes, 0x0002: 1 byte (adjacent), 0x0010: 1 byte (gap), 0x0011: after an
        // extended linear record of 0 (not adjacent in the file), 0xE000 scratch RAM.
        let text = ":020000000102FB\n:0100020003FA\n:0100100004EB\n:020000040000FA\n:0100110005E9\n\
                    :00001200EE\n:01E00000AA75\n:00000001FF\n";
        assert_eq!(
            requests(text).unwrap(),
            vec![
                (0xE600, vec![1]),
                (0x0000, vec![1, 2, 3]),
                (0x0010, vec![4]),
                (0x0011, vec![5]),
                (0xE000, vec![0xAA]),
                (0xE600, vec![0]),
            ]
        );
    }

    #[test]
    fn chunks_stop_at_the_limit() {
        let mut text = String::new();
        for i in 0..20u16 {
            super::super::write_record(&mut text, RecordType::Data, i * 100, &[i as u8; 100]).unwrap();
            text.push('\n');
        }
        text.push_str(":00000001FF\n");
        let reqs = requests(&text).unwrap();
        let sizes: Vec<usize> = reqs.iter().map(|(_, d)| d.len()).collect();
        assert_eq!(sizes, vec![1, 1000, 1000, 1]);
        assert_eq!(reqs[2].0, 1000);
    }

    #[test]
    fn refuses_data_outside_on_chip_ram() {
        for (text, line) in [
            ("#\n:024000000102BB\n:00000001FF\n", 2),
            (":023FFF000102BD\n:00000001FF\n", 1),
            (":01E600000118\n:00000001FF\n", 1),
            (":020000040001F9\n:0100000001FE\n:00000001FF\n", 2),
        ] {
            let hex = HexFile::parse(text.as_bytes()).unwrap();
            assert!(
                matches!(Fx2Load::new(&hex), Err(FirmwareError::Record { line: l, .. }) if l == line),
                "{text:?}"
            );
        }
        // The last byte of scratch RAM is still writable.
        assert!(requests(":01E1FF00011E\n:00000001FF\n").is_ok());
    }

    #[test]
    fn empty_image_only_toggles_reset() {
        assert_eq!(requests(":00000001FF\n").unwrap(), vec![(0xE600, vec![1]), (0xE600, vec![0])]);
    }
}
