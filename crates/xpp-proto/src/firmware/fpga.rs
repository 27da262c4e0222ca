//! Stage 2: the FPGA (or EEPROM) image sent over MPP (docs/reference/mpp-twinstar-firmware.md §5.4).
//!
//! `DEV_SEND_START { dest, version }`, then one `DEV_SEND_SEG { offset, data }` per data record
//! in file order, then `DEV_SEND_END`. The caller sends each request through the management
//! session and stops at the first reply that is not ACK OK; the host never reads back.
//!
//! Decision (open question §10.6, segment offsets): `offset` is the record's 16-bit address
//! field, as the reference tool sends it; extended address records (types 02–05) are not sent,
//! so offsets wrap every 64 KiB. Because the device may instead append segments sequentially,
//! an FPGA image is refused unless its data records are in ascending address order without
//! gaps or overlaps (absolute addresses): for such an image both readings load the same bytes.
//! All shipped FPGA images satisfy this.
//!
//! Decision (open question §10.7, EEPROM): the EEPROM burn is the same sequence with
//! `dest = EEPROM`. What the "special EEPROM burning" file holds is unknown, so EEPROM images
//! get only the record limit check and are sent exactly as the file orders them.

use super::{FirmwareError, HexFile, Record, RecordType};
use crate::mgmt::{DevDest, Request};

/// Record limit for FPGA/EEPROM loads (§5.2).
pub const MAX_MPP_RECORDS: usize = super::MAX_RECORDS;

/// A validated DEV_SEND sequence of one image.
///
/// ```
/// use xpp_proto::firmware::{HexFile, MppLoad};
/// use xpp_proto::mgmt::{DevDest, Request};
/// let hex = HexFile::parse(b"# $Id: FPGA_X.hex 9732 $\n:020000040000FA\n:020000001234B8\n:00000001FF\n")?;
/// let reqs: Vec<_> = MppLoad::fpga(&hex)?.requests().collect();
/// assert_eq!(reqs, [
///     Request::DevSendStart { dest: DevDest::Fpga, version: *b"9732\0\0" },
///     Request::DevSendSeg { offset: 0, data: &[0x12, 0x34] },
///     Request::DevSendEnd,
/// ]);
/// # Ok::<(), xpp_proto::firmware::FirmwareError>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct MppLoad<'a> {
    hex: &'a HexFile,
    dest: DevDest,
    version: [u8; 6],
    segments: usize,
}

impl<'a> MppLoad<'a> {
    /// The FPGA load (`dest = FPGA`); checks the record limit and the address order.
    pub fn fpga(hex: &'a HexFile) -> Result<Self, FirmwareError> {
        let load = Self::new(hex, DevDest::Fpga)?;
        let mut next: Option<u64> = None;
        for r in hex.data_records() {
            if next.is_some_and(|n| n != u64::from(r.absolute)) {
                return Err(FirmwareError::Record {
                    line: r.line,
                    reason: "FPGA data record does not continue the previous one \
                             (segments must be in ascending address order without gaps)",
                });
            }
            next = Some(r.absolute_end());
        }
        Ok(load)
    }

    /// The EEPROM burn (`dest = EEPROM`); checks the record limit.
    pub fn eeprom(hex: &'a HexFile) -> Result<Self, FirmwareError> {
        Self::new(hex, DevDest::Eeprom)
    }

    fn new(hex: &'a HexFile, dest: DevDest) -> Result<Self, FirmwareError> {
        if let Some(r) = hex.record(MAX_MPP_RECORDS) {
            return Err(FirmwareError::TooManyRecords { line: r.line, limit: MAX_MPP_RECORDS });
        }
        let mut version = [0u8; 6];
        if let Some(v) = hex.version() {
            for (out, b) in version.iter_mut().zip(v.bytes()) {
                *out = b;
            }
        }
        Ok(Self { hex, dest, version, segments: hex.counts().data })
    }

    /// Where the data goes.
    pub const fn dest(&self) -> DevDest {
        self.dest
    }

    /// The `ihex_version` field: the first 6 bytes of the version string, NUL padded (all NUL
    /// if the file has no `$Id:` version).
    pub const fn version(&self) -> [u8; 6] {
        self.version
    }

    /// Number of DEV_SEND_SEG requests.
    pub const fn segment_count(&self) -> usize {
        self.segments
    }

    /// START, one SEG per data record, END.
    pub fn requests(&self) -> MppRequests<'a> {
        MppRequests { load: *self, started: false, records: Some(self.hex.records()) }
    }
}

/// Iterator over the requests of an [`MppLoad`].
#[derive(Debug, Clone)]
pub struct MppRequests<'a> {
    load: MppLoad<'a>,
    started: bool,
    /// `None` once END has been yielded.
    records: Option<super::Records<'a>>,
}

impl<'a> Iterator for MppRequests<'a> {
    type Item = Request<'a>;

    fn next(&mut self) -> Option<Request<'a>> {
        if !self.started {
            self.started = true;
            return Some(Request::DevSendStart { dest: self.load.dest, version: self.load.version });
        }
        let records = self.records.as_mut()?;
        match records.find(|r: &Record<'a>| r.kind == RecordType::Data) {
            Some(r) => Some(Request::DevSendSeg { offset: r.address, data: r.data }),
            None => {
                self.records = None;
                Some(Request::DevSendEnd)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_16_bit_offsets_and_skips_address_records() {
        let text = "# $Id: FPGA_TEST.hex 1234567 $\n:020000040000FA\n:02FFFE00AABB9C\n\
                    :020000040001F9\n:020000000102FB\n:00000001FF\n";
        let hex = HexFile::parse(text.as_bytes()).unwrap();
        let load = MppLoad::fpga(&hex).unwrap();
        assert_eq!(load.segment_count(), 2);
        assert_eq!(load.version(), *b"123456");
        let reqs: Vec<_> = load.requests().collect();
        assert_eq!(
            reqs,
            [
                Request::DevSendStart { dest: DevDest::Fpga, version: *b"123456" },
                Request::DevSendSeg { offset: 0xFFFE, data: &[0xAA, 0xBB] },
                Request::DevSendSeg { offset: 0x0000, data: &[0x01, 0x02] },
                Request::DevSendEnd,
            ]
        );
        let e: Vec<_> = MppLoad::eeprom(&hex).unwrap().requests().collect();
        assert_eq!(e[0], Request::DevSendStart { dest: DevDest::Eeprom, version: *b"123456" });
        assert_eq!(e.len(), 4);
    }

    #[test]
    fn no_version_is_all_nul() {
        let hex = HexFile::parse(b":00000001FF\n").unwrap();
        let reqs: Vec<_> = MppLoad::fpga(&hex).unwrap().requests().collect();
        assert_eq!(
            reqs,
            [Request::DevSendStart { dest: DevDest::Fpga, version: [0; 6] }, Request::DevSendEnd]
        );
    }

    #[test]
    fn fpga_refuses_gaps_and_reordering_eeprom_does_not() {
        let gap = ":0100000001FE\n#\n:0100020002FB\n:00000001FF\n";
        let back = ":0100010001FD\n:0100000002FD\n:00000001FF\n";
        for text in [gap, back] {
            let hex = HexFile::parse(text.as_bytes()).unwrap();
            let want_line = if text == gap { 3 } else { 2 };
            assert!(
                matches!(MppLoad::fpga(&hex), Err(FirmwareError::Record { line, .. }) if line == want_line)
            );
            assert!(MppLoad::eeprom(&hex).is_ok());
        }
    }

    #[test]
    fn record_limit() {
        let mut text = String::new();
        for _ in 0..MAX_MPP_RECORDS {
            text.push_str(":00000000");
            text.push_str("00\n");
        }
        text.push_str(":00000001FF\n");
        // 64 001 records: the parser's limit must be raised to even get here.
        let hex = HexFile::parse_with_limit(text.as_bytes(), MAX_MPP_RECORDS + 1).unwrap();
        assert_eq!(
            MppLoad::eeprom(&hex).unwrap_err(),
            FirmwareError::TooManyRecords { line: MAX_MPP_RECORDS + 1, limit: MAX_MPP_RECORDS }
        );
    }
}
