//! The Intel-HEX variant of Astribank firmware files (docs/reference/mpp-twinstar-firmware.md §5.2).
//!
//! ```text
//! # $Id: FPGA_1161.hex 9732 2011-08-24 19:13:55Z dima $     comment; the token after the file
//! :020000040000FA                                           name is the version string
//! :LLAAAATT<data>CC                                         record: LL data bytes at AAAA,
//! :00000001FF                                               type TT, checksum CC
//! ```
//!
//! Accepted input, line by line:
//! - `#` starts a comment. The first comment containing `$Id:` is the RCS keyword line; the
//!   token after the file name in it is the version string ([`HexFile::version`]).
//! - `:` starts a record `:LLAAAATT<data>CC`; the sum of all decoded bytes including `CC` must
//!   be 0 mod 256. Types 00 (data), 01 (EOF: LL 0, address 0), 02 and 04 (extended segment /
//!   linear address: LL 2, address 0), 03 and 05 (start segment / linear address: LL 4,
//!   address 0). Any other type is an error.
//! - Nothing may follow the EOF record, not even a comment, except one line holding only the
//!   DOS end-of-file character 0x1A, which must be the last line. A file without an EOF record
//!   is an error.
//! - Any other line, including an empty one, is an error.
//!
//! Decision: lines end with LF or CRLF (each line may choose; one CR directly before the LF is
//! dropped). A lone CR is not a line end and makes a record line invalid. The last line may
//! lack its line end. Hex digits may be upper or lower case; [`HexFile::write_records`] emits
//! upper case, as all shipped images use.
//!
//! Decision: the record limit counts record lines (`:` lines, the EOF record included), not
//! comment lines: [`MAX_RECORDS`] (64 000, FPGA/EEPROM) unless the caller passes another limit
//! ([`MAX_PIC_RECORDS`], 10 000, for PIC files).
//!
//! Memory: one data buffer holding every record's bytes back to back (at most half the file
//! size) and one fixed-size table entry per record; nothing is allocated per record.

use core::fmt;
use core::ops::Range;

use super::FirmwareError;

/// Record limit for FPGA and EEPROM images (§5.2), and the default of [`HexFile::parse`].
pub const MAX_RECORDS: usize = 64_000;
/// Record limit for PIC images (§5.2).
pub const MAX_PIC_RECORDS: usize = 10_000;
/// Most data bytes one record can carry (the `LL` field is one byte).
pub const MAX_RECORD_DATA: usize = 255;
/// Largest firmware HEX file read (32 MiB), for readers of files ([`crate::input::read_capped`]).
// Decision: [`MAX_RECORDS`] records of the longest kind (`:` + 2 x 260 digits + CRLF, 523
// bytes) are 33.5 MB, just under 32 MiB; the shipped images are at most 284 KB.
pub const MAX_HEX_FILE_LEN: usize = 32 << 20;

/// Bytes of a record besides its data: LL, address (2), type, checksum.
const RECORD_OVERHEAD: usize = 5;
/// Longest decoded record.
const MAX_RECORD_BYTES: usize = RECORD_OVERHEAD + MAX_RECORD_DATA;
/// The DOS end-of-file character tolerated as the very last line.
const DOS_EOF: u8 = 0x1A;

/// The type field of a record (`TT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub enum RecordType {
    /// 00: data bytes at the record's address.
    Data,
    /// 01: end of file; LL 0, address 0.
    Eof,
    /// 02: extended segment address (base = value × 16); LL 2, address 0.
    ExtendedSegmentAddress,
    /// 03: start segment address (CS:IP); LL 4, address 0.
    StartSegmentAddress,
    /// 04: extended linear address (base = value × 65536); LL 2, address 0.
    ExtendedLinearAddress,
    /// 05: start linear address (EIP); LL 4, address 0.
    StartLinearAddress,
}

impl RecordType {
    /// Every type, in code order.
    pub const ALL: [Self; 6] = [
        Self::Data,
        Self::Eof,
        Self::ExtendedSegmentAddress,
        Self::StartSegmentAddress,
        Self::ExtendedLinearAddress,
        Self::StartLinearAddress,
    ];

    /// The type for a `TT` value, or `None` for a type this variant does not accept.
    pub const fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => Self::Data,
            1 => Self::Eof,
            2 => Self::ExtendedSegmentAddress,
            3 => Self::StartSegmentAddress,
            4 => Self::ExtendedLinearAddress,
            5 => Self::StartLinearAddress,
            _ => return None,
        })
    }

    /// The `TT` value.
    pub const fn code(self) -> u8 {
        match self {
            Self::Data => 0,
            Self::Eof => 1,
            Self::ExtendedSegmentAddress => 2,
            Self::StartSegmentAddress => 3,
            Self::ExtendedLinearAddress => 4,
            Self::StartLinearAddress => 5,
        }
    }

    /// A short human-readable name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Data => "data",
            Self::Eof => "EOF",
            Self::ExtendedSegmentAddress => "extended segment address",
            Self::StartSegmentAddress => "start segment address",
            Self::ExtendedLinearAddress => "extended linear address",
            Self::StartLinearAddress => "start linear address",
        }
    }

    /// The only `LL` this type allows (`None`: any).
    const fn required_len(self) -> Option<u8> {
        match self {
            Self::Data => None,
            Self::Eof => Some(0),
            Self::ExtendedSegmentAddress | Self::ExtendedLinearAddress => Some(2),
            Self::StartSegmentAddress | Self::StartLinearAddress => Some(4),
        }
    }

    const fn wrong_len_reason(self) -> &'static str {
        match self {
            Self::Data => "",
            Self::Eof => "EOF record must have length 0",
            Self::ExtendedSegmentAddress => "extended segment address record must have length 2",
            Self::ExtendedLinearAddress => "extended linear address record must have length 2",
            Self::StartSegmentAddress => "start segment address record must have length 4",
            Self::StartLinearAddress => "start linear address record must have length 4",
        }
    }
}

impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How many records of each type a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct RecordCounts {
    /// Type 00.
    pub data: usize,
    /// Type 01.
    pub eof: usize,
    /// Type 02.
    pub extended_segment_address: usize,
    /// Type 03.
    pub start_segment_address: usize,
    /// Type 04.
    pub extended_linear_address: usize,
    /// Type 05.
    pub start_linear_address: usize,
}

impl RecordCounts {
    /// The count for one type.
    pub const fn get(&self, kind: RecordType) -> usize {
        match kind {
            RecordType::Data => self.data,
            RecordType::Eof => self.eof,
            RecordType::ExtendedSegmentAddress => self.extended_segment_address,
            RecordType::StartSegmentAddress => self.start_segment_address,
            RecordType::ExtendedLinearAddress => self.extended_linear_address,
            RecordType::StartLinearAddress => self.start_linear_address,
        }
    }

    /// All records.
    pub const fn total(&self) -> usize {
        self.data
            + self.eof
            + self.extended_segment_address
            + self.start_segment_address
            + self.extended_linear_address
            + self.start_linear_address
    }

    const fn slot(&mut self, kind: RecordType) -> &mut usize {
        match kind {
            RecordType::Data => &mut self.data,
            RecordType::Eof => &mut self.eof,
            RecordType::ExtendedSegmentAddress => &mut self.extended_segment_address,
            RecordType::StartSegmentAddress => &mut self.start_segment_address,
            RecordType::ExtendedLinearAddress => &mut self.extended_linear_address,
            RecordType::StartLinearAddress => &mut self.start_linear_address,
        }
    }
}

impl fmt::Display for RecordCounts {
    /// `1061 data, 1 EOF, 3 extended linear address` (types with a zero count are left out).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for kind in RecordType::ALL {
            let n = self.get(kind);
            if n == 0 {
                continue;
            }
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            write!(f, "{n} {kind}")?;
        }
        if first {
            f.write_str("none")?;
        }
        Ok(())
    }
}

/// One record of a parsed file, borrowing its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// 1-based line number in the file.
    pub line: usize,
    /// Record type.
    pub kind: RecordType,
    /// The 16-bit address field `AAAA`.
    pub address: u16,
    /// For data records: the address plus the base set by the last extended segment or linear
    /// address record before it (0 if none). For other records: that base.
    pub absolute: u32,
    /// The data bytes (`LL` of them).
    pub data: &'a [u8],
    /// Where `data` starts in the file's data buffer.
    pub(crate) start: usize,
}

impl Record<'_> {
    /// Writes the record as one HEX line, `:LLAAAATT<data>CC`, upper case, without line end.
    pub fn write<W: fmt::Write>(&self, w: &mut W) -> fmt::Result {
        write_record(w, self.kind, self.address, self.data)
    }

    /// The 32-bit value of an extended/start address record's data (big-endian, as in the
    /// file), or `None` for data and EOF records.
    pub fn address_value(&self) -> Option<u32> {
        match (self.kind, self.data) {
            (RecordType::ExtendedSegmentAddress | RecordType::ExtendedLinearAddress, &[a, b]) => {
                Some(u32::from(u16::from_be_bytes([a, b])))
            }
            (RecordType::StartSegmentAddress | RecordType::StartLinearAddress, &[a, b, c, d]) => {
                Some(u32::from_be_bytes([a, b, c, d]))
            }
            _ => None,
        }
    }

    /// End of the data in absolute addresses (exclusive); 64 bits so it never overflows.
    pub fn absolute_end(&self) -> u64 {
        u64::from(self.absolute) + self.data.len() as u64
    }
}

impl fmt::Display for Record<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f)
    }
}

/// Writes one record as a HEX line `:LLAAAATT<data>CC` (upper case, no line end).
///
/// Returns `Err(fmt::Error)` without writing anything if `data` is longer than
/// [`MAX_RECORD_DATA`] bytes.
pub fn write_record<W: fmt::Write>(w: &mut W, kind: RecordType, address: u16, data: &[u8]) -> fmt::Result {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let Ok(len) = u8::try_from(data.len()) else {
        return Err(fmt::Error);
    };
    let [ah, al] = address.to_be_bytes();
    let head = [len, ah, al, kind.code()];
    let sum = head.iter().chain(data).fold(0u8, |s, b| s.wrapping_add(*b));
    let checksum = sum.wrapping_neg();
    let mut line = [0u8; 1 + 2 * MAX_RECORD_BYTES];
    line[0] = b':';
    let mut n = 1;
    for &b in head.iter().chain(data).chain(core::iter::once(&checksum)) {
        line[n] = DIGITS[usize::from(b >> 4)];
        line[n + 1] = DIGITS[usize::from(b & 0x0F)];
        n += 2;
    }
    w.write_str(core::str::from_utf8(&line[..n]).map_err(|_| fmt::Error)?)
}

/// Table entry of one record; the data lives in [`HexFile`]'s buffer.
#[derive(Debug, Clone, Copy)]
struct Entry {
    line: usize,
    start: usize,
    len: u8,
    kind: RecordType,
    address: u16,
    absolute: u32,
}

/// A parsed, checked Intel-HEX firmware file.
///
/// ```
/// use xpp_proto::firmware::{HexFile, RecordType};
/// let hex = HexFile::parse(b"# $Id: TEST.hex 42 2024-01-01 x $\n:03001000010203E7\n:00000001FF\n")?;
/// assert_eq!(hex.version(), Some("42"));
/// let r = hex.records().next().unwrap();
/// assert_eq!((r.kind, r.address, r.data), (RecordType::Data, 0x0010, &[1u8, 2, 3][..]));
/// assert_eq!(hex.to_hex_records(), ":03001000010203E7\n:00000001FF\n");
/// # Ok::<(), xpp_proto::firmware::FirmwareError>(())
/// ```
#[derive(Debug, Clone)]
pub struct HexFile {
    data: Vec<u8>,
    records: Vec<Entry>,
    id_line: Option<String>,
    version: Option<String>,
    counts: RecordCounts,
    lines: usize,
}

/// Decoded value of an ASCII hex digit, 0xFF if not one.
const HEX_VALUE: [u8; 256] = {
    let mut t = [0xFFu8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'A' as usize + i] = 10 + i as u8;
        t[b'a' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

fn syntax(line: usize, column: usize, reason: &'static str) -> FirmwareError {
    FirmwareError::Syntax { line, column, reason }
}

fn record_err(line: usize, reason: &'static str) -> FirmwareError {
    FirmwareError::Record { line, reason }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

impl HexFile {
    /// Parses a whole file with the FPGA/EEPROM record limit [`MAX_RECORDS`].
    pub fn parse(bytes: &[u8]) -> Result<Self, FirmwareError> {
        Self::parse_with_limit(bytes, MAX_RECORDS)
    }

    /// Parses a whole file, allowing at most `max_records` records (`:` lines).
    pub fn parse_with_limit(bytes: &[u8], max_records: usize) -> Result<Self, FirmwareError> {
        let mut file = Self {
            // Bounded by the input: each data byte takes two characters.
            data: Vec::with_capacity(bytes.len() / 2),
            records: Vec::new(),
            id_line: None,
            version: None,
            counts: RecordCounts::default(),
            lines: 0,
        };
        let mut base: u32 = 0;
        let mut seen_eof = false;
        let mut pos = 0;
        let mut line_no = 0;
        while pos < bytes.len() {
            line_no += 1;
            let rest = &bytes[pos..];
            let (raw, next) = match rest.iter().position(|&b| b == b'\n') {
                Some(i) => (&rest[..i], pos + i + 1),
                None => (rest, bytes.len()),
            };
            pos = next;
            let line = raw.strip_suffix(b"\r").unwrap_or(raw);
            if line == [DOS_EOF] {
                if pos < bytes.len() {
                    return Err(record_err(
                        line_no,
                        "DOS end-of-file character (0x1A) is allowed only on the last line",
                    ));
                }
                continue;
            }
            if seen_eof {
                return Err(record_err(line_no, "nothing may follow the EOF record"));
            }
            match line.first() {
                None => return Err(syntax(line_no, 1, "empty line")),
                Some(b'#') => file.comment(line),
                Some(b':') => {
                    if file.records.len() >= max_records {
                        return Err(FirmwareError::TooManyRecords { line: line_no, limit: max_records });
                    }
                    let kind = file.parse_record(line, line_no, &mut base)?;
                    seen_eof = kind == RecordType::Eof;
                }
                Some(_) => return Err(syntax(line_no, 1, "line starts with neither ':' nor '#'")),
            }
        }
        if !seen_eof {
            return Err(FirmwareError::MissingEof { line: line_no + 1 });
        }
        file.lines = line_no;
        Ok(file)
    }

    fn comment(&mut self, line: &[u8]) {
        if self.id_line.is_some() {
            return;
        }
        let Some(at) = find(line, b"$Id:") else {
            return;
        };
        self.id_line = Some(String::from_utf8_lossy(line).into_owned());
        let mut tokens = line[at + 4..].split(u8::is_ascii_whitespace).filter(|t| !t.is_empty());
        let _file_name = tokens.next();
        if let Some(token) = tokens.next() {
            let token = token.split(|&b| b == b'$').next().unwrap_or_default();
            if !token.is_empty() {
                self.version = Some(String::from_utf8_lossy(token).into_owned());
            }
        }
    }

    /// Parses one `:` line; returns its type.
    fn parse_record(
        &mut self,
        line: &[u8],
        line_no: usize,
        base: &mut u32,
    ) -> Result<RecordType, FirmwareError> {
        let digits = &line[1..];
        if let Some(i) = digits.iter().position(|&c| HEX_VALUE[usize::from(c)] == 0xFF) {
            return Err(syntax(line_no, i + 2, "bad hex digit"));
        }
        if !digits.len().is_multiple_of(2) {
            return Err(syntax(line_no, line.len(), "odd number of hex digits"));
        }
        if digits.len() < 2 * RECORD_OVERHEAD {
            return Err(syntax(line_no, line.len(), "record shorter than 5 bytes"));
        }
        if digits.len() > 2 * MAX_RECORD_BYTES {
            return Err(syntax(line_no, 2, "record longer than 255 data bytes"));
        }
        let mut buf = [0u8; MAX_RECORD_BYTES];
        let n = digits.len() / 2;
        for (out, pair) in buf.iter_mut().zip(digits.chunks_exact(2)) {
            *out = (HEX_VALUE[usize::from(pair[0])] << 4) | HEX_VALUE[usize::from(pair[1])];
        }
        let rec = &buf[..n];
        let len = rec[0];
        if usize::from(len) + RECORD_OVERHEAD != n {
            return Err(syntax(line_no, 2, "length field does not match the number of data bytes"));
        }
        let found = rec[n - 1];
        let sum = rec[..n - 1].iter().fold(0u8, |s, b| s.wrapping_add(*b));
        let expected = sum.wrapping_neg();
        if expected != found {
            return Err(FirmwareError::BadChecksum { line: line_no, expected, found });
        }
        let Some(kind) = RecordType::from_code(rec[3]) else {
            return Err(syntax(line_no, 8, "unknown record type"));
        };
        let address = u16::from_be_bytes([rec[1], rec[2]]);
        if let Some(required) = kind.required_len() {
            if len != required {
                return Err(syntax(line_no, 2, kind.wrong_len_reason()));
            }
            if address != 0 {
                return Err(syntax(line_no, 4, "address field must be 0 for this record type"));
            }
        }
        let data = &rec[4..n - 1];
        match kind {
            RecordType::ExtendedSegmentAddress => {
                *base = u32::from(u16::from_be_bytes([data[0], data[1]])) << 4;
            }
            RecordType::ExtendedLinearAddress => {
                *base = u32::from(u16::from_be_bytes([data[0], data[1]])) << 16;
            }
            _ => {}
        }
        let absolute = if kind == RecordType::Data { base.wrapping_add(u32::from(address)) } else { *base };
        let start = self.data.len();
        self.data.extend_from_slice(data);
        self.records.push(Entry { line: line_no, start, len, kind, address, absolute });
        *self.counts.slot(kind) += 1;
        Ok(kind)
    }

    /// The version string: the token after the file name in the `$Id:` comment.
    pub fn version(&self) -> Option<&str> {
        self.version.as_deref()
    }

    /// The first comment line containing `$Id:`, as written (invalid UTF-8 replaced).
    pub fn id_line(&self) -> Option<&str> {
        self.id_line.as_deref()
    }

    /// Number of lines in the file (the line of a trailing 0x1A included).
    pub const fn line_count(&self) -> usize {
        self.lines
    }

    /// Number of records (all types).
    pub fn record_count(&self) -> usize {
        self.records.len()
    }

    /// Records per type.
    pub const fn counts(&self) -> RecordCounts {
        self.counts
    }

    /// Total data bytes in data records.
    pub fn data_len(&self) -> usize {
        self.records.iter().filter(|e| e.kind == RecordType::Data).map(|e| usize::from(e.len)).sum()
    }

    /// The record at `index` (file order), if any.
    pub fn record(&self, index: usize) -> Option<Record<'_>> {
        self.records.get(index).map(|e| self.view(e))
    }

    /// Every record in file order, the EOF record included.
    pub fn records(&self) -> Records<'_> {
        Records { file: self, inner: self.records.iter() }
    }

    /// The data records in file order.
    pub fn data_records(&self) -> impl Iterator<Item = Record<'_>> + '_ {
        self.records().filter(|r| r.kind == RecordType::Data)
    }

    /// The start address from a type 03 or 05 record (the last one if several).
    pub fn start_address(&self) -> Option<u32> {
        self.records()
            .filter(|r| matches!(r.kind, RecordType::StartSegmentAddress | RecordType::StartLinearAddress))
            .last()
            .and_then(|r| r.address_value())
    }

    /// Absolute address ranges covered by data, sorted, with touching or overlapping ranges
    /// merged.
    pub fn address_ranges(&self) -> Vec<Range<u64>> {
        let mut spans: Vec<Range<u64>> = self
            .data_records()
            .filter(|r| !r.data.is_empty())
            .map(|r| u64::from(r.absolute)..r.absolute_end())
            .collect();
        spans.sort_unstable_by_key(|r| r.start);
        let mut merged: Vec<Range<u64>> = Vec::new();
        for span in spans {
            match merged.last_mut() {
                Some(last) if span.start <= last.end => last.end = last.end.max(span.end),
                _ => merged.push(span),
            }
        }
        merged
    }

    /// Writes every record as a HEX line (see [`write_record`]), each followed by LF; comments
    /// and a trailing 0x1A are not reproduced.
    pub fn write_records<W: fmt::Write>(&self, w: &mut W) -> fmt::Result {
        for r in self.records() {
            r.write(w)?;
            w.write_char('\n')?;
        }
        Ok(())
    }

    /// [`HexFile::write_records`] into a new string.
    pub fn to_hex_records(&self) -> String {
        let mut s = String::with_capacity(self.data.len() * 2 + self.records.len() * 12);
        // Writing to a String cannot fail, and every record holds at most 255 bytes.
        let _ = self.write_records(&mut s);
        s
    }

    /// All records' data bytes back to back, in file order.
    pub(crate) fn raw_data(&self) -> &[u8] {
        &self.data
    }

    fn view(&self, e: &Entry) -> Record<'_> {
        let data = self.data.get(e.start..e.start + usize::from(e.len)).unwrap_or_default();
        Record { line: e.line, kind: e.kind, address: e.address, absolute: e.absolute, data, start: e.start }
    }
}

/// Iterator over the records of a [`HexFile`] in file order.
#[derive(Debug, Clone)]
pub struct Records<'a> {
    file: &'a HexFile,
    inner: core::slice::Iter<'a, Entry>,
}

impl<'a> Iterator for Records<'a> {
    type Item = Record<'a>;

    fn next(&mut self) -> Option<Record<'a>> {
        self.inner.next().map(|e| self.file.view(e))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl ExactSizeIterator for Records<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: &str = "# comment\n\
                         # $Id: SMALL.hex 123 2024-01-01 00:00:00Z someone $\n\
                         :020000040001F9\n\
                         :0400100001020304E2\n\
                         :02001400AABB85\n\
                         :00000001FF\n";

    fn err(text: &str) -> FirmwareError {
        HexFile::parse(text.as_bytes()).unwrap_err()
    }

    #[test]
    fn parses_small_file() {
        let hex = HexFile::parse(SMALL.as_bytes()).unwrap();
        assert_eq!(hex.version(), Some("123"));
        assert_eq!(hex.id_line(), Some("# $Id: SMALL.hex 123 2024-01-01 00:00:00Z someone $"));
        assert_eq!(hex.record_count(), 4);
        assert_eq!(hex.data_len(), 6);
        assert_eq!(hex.line_count(), 6);
        let c = hex.counts();
        assert_eq!((c.data, c.eof, c.extended_linear_address, c.total()), (2, 1, 1, 4));
        assert_eq!(c.to_string(), "2 data, 1 EOF, 1 extended linear address");
        let recs: Vec<_> = hex.records().collect();
        assert_eq!(recs[0].kind, RecordType::ExtendedLinearAddress);
        assert_eq!(recs[0].address_value(), Some(1));
        assert_eq!(recs[1].line, 4);
        assert_eq!(recs[1].address, 0x0010);
        assert_eq!(recs[1].absolute, 0x0001_0010);
        assert_eq!(recs[1].data, &[1, 2, 3, 4]);
        assert_eq!(recs[2].absolute, 0x0001_0014);
        assert_eq!(hex.address_ranges(), vec![0x1_0010..0x1_0016]);
        assert_eq!(hex.start_address(), None);
        let emitted = hex.to_hex_records();
        let expected: String =
            SMALL.lines().filter(|l| l.starts_with(':')).map(|l| format!("{l}\n")).collect();
        assert_eq!(emitted, expected);
    }

    #[test]
    fn crlf_lowercase_missing_final_newline_and_dos_eof() {
        let text = "#x\r\n:0400100001020304e2\r\n:00000001FF\r\n\x1A";
        let hex = HexFile::parse(text.as_bytes()).unwrap();
        assert_eq!(hex.record_count(), 2);
        assert_eq!(hex.to_hex_records(), ":0400100001020304E2\n:00000001FF\n");
        assert!(HexFile::parse(b":00000001FF").is_ok());
        assert!(HexFile::parse(b":00000001FF\n\x1A\r\n").is_ok());
    }

    #[test]
    fn segment_and_start_records() {
        let text = ":020000021000EC\n:0100040055A6\n:0400000300001234B3\n:04000005000123458E\n:00000001FF\n";
        let hex = HexFile::parse(text.as_bytes()).unwrap();
        let r = hex.record(1).unwrap();
        assert_eq!(r.absolute, 0x10004);
        assert_eq!(hex.start_address(), Some(0x0001_2345));
        assert_eq!(hex.counts().start_segment_address, 1);
        assert_eq!(hex.to_hex_records(), text);
    }

    #[test]
    fn overlapping_and_touching_ranges_merge() {
        let text = ":0200100001FFEE\n:02000000AABB99\n:02000200CCDD53\n:020011000102EA\n:00000001FF\n";
        let hex = HexFile::parse(text.as_bytes()).unwrap();
        assert_eq!(hex.address_ranges(), vec![0..4, 0x10..0x13]);
    }

    #[test]
    fn errors_name_the_line() {
        let cases: &[(&str, FirmwareError)] = &[
            (
                "#\n:0400100001020304E3\n:00000001FF\n",
                FirmwareError::BadChecksum { line: 2, expected: 0xE2, found: 0xE3 },
            ),
            (
                "#\n#\n:04001000010G0304E2\n:00000001FF\n",
                FirmwareError::Syntax { line: 3, column: 13, reason: "bad hex digit" },
            ),
            (
                ":0400100001020304E\n",
                FirmwareError::Syntax { line: 1, column: 18, reason: "odd number of hex digits" },
            ),
            (
                ":0500100001020304E1\n:00000001FF\n",
                FirmwareError::Syntax {
                    line: 1,
                    column: 2,
                    reason: "length field does not match the number of data bytes",
                },
            ),
            (":00000006FA\n", FirmwareError::Syntax { line: 1, column: 8, reason: "unknown record type" }),
            (
                ":00000001FF\n:00000001FF\n",
                FirmwareError::Record { line: 2, reason: "nothing may follow the EOF record" },
            ),
            (
                ":00000001FF\n# late comment\n",
                FirmwareError::Record { line: 2, reason: "nothing may follow the EOF record" },
            ),
            ("#\n:0400100001020304E2\n", FirmwareError::MissingEof { line: 3 }),
            ("", FirmwareError::MissingEof { line: 1 }),
            ("#\n\n:00000001FF\n", FirmwareError::Syntax { line: 2, column: 1, reason: "empty line" }),
            (
                ":00000001FF\n\n",
                FirmwareError::Record { line: 2, reason: "nothing may follow the EOF record" },
            ),
            (
                "#\n\x1A\n:00000001FF\n",
                FirmwareError::Record {
                    line: 2,
                    reason: "DOS end-of-file character (0x1A) is allowed only on the last line",
                },
            ),
            (
                ":00000001FF\n\x1A\n\x1A\n",
                FirmwareError::Record {
                    line: 2,
                    reason: "DOS end-of-file character (0x1A) is allowed only on the last line",
                },
            ),
            (
                "x\n",
                FirmwareError::Syntax { line: 1, column: 1, reason: "line starts with neither ':' nor '#'" },
            ),
            (
                ":00000001\n",
                FirmwareError::Syntax { line: 1, column: 9, reason: "record shorter than 5 bytes" },
            ),
            (":\n", FirmwareError::Syntax { line: 1, column: 1, reason: "record shorter than 5 bytes" }),
            (
                ":01000001AA54\n",
                FirmwareError::Syntax { line: 1, column: 2, reason: "EOF record must have length 0" },
            ),
            (
                ":02000104000FEA\n",
                FirmwareError::Syntax {
                    line: 1,
                    column: 4,
                    reason: "address field must be 0 for this record type",
                },
            ),
            (
                ":03000004000001F8\n",
                FirmwareError::Syntax {
                    line: 1,
                    column: 2,
                    reason: "extended linear address record must have length 2",
                },
            ),
            (":00000001FF\r\r\n", FirmwareError::Syntax { line: 1, column: 12, reason: "bad hex digit" }),
        ];
        for (text, expected) in cases {
            assert_eq!(&err(text), expected, "input {text:?}");
        }
        assert_eq!(
            err("#\n:0400100001020304E3\n").to_string(),
            "line 2: bad checksum (expected 0xE2, found 0xE3)"
        );
    }

    #[test]
    fn record_limit() {
        let text = ":0100000001FE\n:0100010002FC\n:00000001FF\n";
        assert!(HexFile::parse_with_limit(text.as_bytes(), 3).is_ok());
        assert_eq!(
            HexFile::parse_with_limit(text.as_bytes(), 2).unwrap_err(),
            FirmwareError::TooManyRecords { line: 3, limit: 2 }
        );
        let text = format!("#\n{}", ":0100000001FE\n".repeat(MAX_PIC_RECORDS + 1));
        assert_eq!(
            HexFile::parse_with_limit(text.as_bytes(), MAX_PIC_RECORDS).unwrap_err(),
            FirmwareError::TooManyRecords { line: MAX_PIC_RECORDS + 2, limit: MAX_PIC_RECORDS }
        );
    }

    #[test]
    fn long_record() {
        let mut line = String::from(":FF000000");
        line.push_str(&"00".repeat(255));
        line.push_str("01\n:00000001FF\n");
        let hex = HexFile::parse(line.as_bytes()).unwrap();
        assert_eq!(hex.data_len(), 255);
        assert_eq!(hex.to_hex_records(), line);
        let too_long = format!(":FF000000{}0001\n", "00".repeat(256));
        assert_eq!(
            err(&too_long),
            FirmwareError::Syntax { line: 1, column: 2, reason: "record longer than 255 data bytes" }
        );
        assert_eq!(write_record(&mut String::new(), RecordType::Data, 0, &[0; 256]), Err(fmt::Error));
    }

    #[test]
    fn version_token_edge_cases() {
        let v = |text: &str| HexFile::parse(text.as_bytes()).unwrap().version().map(str::to_owned);
        assert_eq!(v("# $Id: x 1$\n:00000001FF\n"), Some("1".into()));
        assert_eq!(v("# $Id: x $\n:00000001FF\n"), None);
        assert_eq!(v("# $Id:\n# $Id: y 2 $\n:00000001FF\n"), None);
        assert_eq!(v("#$Id: FPGA_1131.hex 7107 2009 $\n:00000001FF\n"), Some("7107".into()));
        assert_eq!(v(":00000001FF\n"), None);
    }

    #[test]
    fn truncation_sweep() {
        for n in 0..=SMALL.len() {
            let r = HexFile::parse(&SMALL.as_bytes()[..n]);
            // Only prefixes that end inside or right after the EOF line are complete.
            if n + 1 < SMALL.len() {
                assert!(r.is_err(), "prefix {n}");
            } else {
                assert!(r.is_ok(), "prefix {n}");
            }
        }
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        fn arb_record() -> impl Strategy<Value = (RecordType, u16, Vec<u8>)> {
            prop_oneof![
                6 => (any::<u16>(), proptest::collection::vec(any::<u8>(), 0..=255))
                    .prop_map(|(a, d)| (RecordType::Data, a, d)),
                1 => any::<[u8; 2]>().prop_map(|d| (RecordType::ExtendedSegmentAddress, 0, d.to_vec())),
                1 => any::<[u8; 2]>().prop_map(|d| (RecordType::ExtendedLinearAddress, 0, d.to_vec())),
                1 => any::<[u8; 4]>().prop_map(|d| (RecordType::StartSegmentAddress, 0, d.to_vec())),
                1 => any::<[u8; 4]>().prop_map(|d| (RecordType::StartLinearAddress, 0, d.to_vec())),
            ]
        }

        proptest! {
            #[test]
            fn emit_parse_round_trip(records in proptest::collection::vec(arb_record(), 0..40), crlf: bool) {
                let end = if crlf { "\r\n" } else { "\n" };
                let mut text = String::from("# $Id: P.hex 7 $");
                text.push_str(end);
                for (kind, address, data) in &records {
                    write_record(&mut text, *kind, *address, data).unwrap();
                    text.push_str(end);
                }
                text.push_str(":00000001FF");
                text.push_str(end);
                let hex = HexFile::parse(text.as_bytes()).unwrap();
                prop_assert_eq!(hex.record_count(), records.len() + 1);
                for (r, (kind, address, data)) in hex.records().zip(&records) {
                    prop_assert_eq!(r.kind, *kind);
                    prop_assert_eq!(r.address, *address);
                    prop_assert_eq!(r.data, &data[..]);
                }
                let again = HexFile::parse(hex.to_hex_records().as_bytes()).unwrap();
                prop_assert_eq!(again.to_hex_records(), hex.to_hex_records());
            }

            #[test]
            fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
                let _ = HexFile::parse(&data);
                crate::firmware::fuzz_hex(&data);
            }

            #[test]
            fn arbitrary_hexish_text_never_panics(text in "([:#0-9A-F\r\n\x1A]{0,40}\n){0,8}") {
                crate::firmware::fuzz_hex(text.as_bytes());
            }
        }
    }
}
