//! Reading usbmon pcap files.

use std::time::Duration;

use super::usbmon::{
    ByteOrder, FILE_HEADER_LEN, HEADER_LEN, HEADER_LEN_189, ISO_DESC_LEN, LINKTYPE_USB_LINUX,
    LINKTYPE_USB_LINUX_MMAPPED, MAGIC_NSEC, MAGIC_USEC, RECORD_HEADER_LEN, UrbHeader, XferType,
};

/// Why a capture could not be read. Every variant names the structure and the byte offset
/// (from the start of the file) where reading stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum PcapError {
    /// The file ends inside a structure.
    #[error("truncated {what} at byte {offset}")]
    Truncated {
        /// The structure being read.
        what: &'static str,
        /// Where it starts.
        offset: usize,
    },
    /// The first four bytes are no classic pcap magic (pcapng is not supported).
    #[error("not a classic pcap file: magic {magic:#010x} at byte 0")]
    BadMagic {
        /// The value read (little-endian).
        magic: u32,
    },
    /// A link type other than usbmon (220, or 189).
    #[error("link type {link_type} at byte 20 is not usbmon (220 or 189)")]
    LinkType {
        /// The declared link type.
        link_type: u32,
    },
    /// A field whose value is impossible.
    #[error("invalid {what} at byte {offset}")]
    Invalid {
        /// The field.
        what: &'static str,
        /// Where the record holding it starts.
        offset: usize,
    },
}

/// One usbmon event of a capture, borrowing its data from the file bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// Byte offset of the record (its pcap record header) in the file.
    pub offset: usize,
    /// Timestamp from the pcap record header, since the Unix epoch.
    pub timestamp: Duration,
    /// The usbmon header.
    pub header: UrbHeader,
    /// Captured transfer data (at most `header.len_cap` bytes; fewer if the capture's
    /// snapshot length cut the record).
    pub data: &'a [u8],
}

/// A parser over the bytes of a whole usbmon pcap file: checks the file header in
/// [`PcapReader::new`], then yields one [`Record`] per event and stops after the first
/// error.
///
/// Accepts both byte orders (magic `a1b2c3d4` read either way), microsecond and nanosecond
/// (`a1b23c4d`) timestamps, link types 220 and 189. Never panics and allocates nothing:
/// records borrow from the input, so memory use is the file's size whatever its length
/// fields say.
#[derive(Debug, Clone)]
pub struct PcapReader<'a> {
    data: &'a [u8],
    pos: usize,
    order: ByteOrder,
    nanos: bool,
    snaplen: u32,
    link_type: u32,
    done: bool,
}

impl<'a> PcapReader<'a> {
    /// Checks the file header of `data`.
    pub fn new(data: &'a [u8]) -> Result<Self, PcapError> {
        let h = data
            .get(..FILE_HEADER_LEN)
            .ok_or(PcapError::Truncated { what: "pcap file header", offset: 0 })?;
        let raw = [h[0], h[1], h[2], h[3]];
        let (order, nanos) = match (u32::from_le_bytes(raw), u32::from_be_bytes(raw)) {
            (MAGIC_USEC, _) => (ByteOrder::Little, false),
            (MAGIC_NSEC, _) => (ByteOrder::Little, true),
            (_, MAGIC_USEC) => (ByteOrder::Big, false),
            (_, MAGIC_NSEC) => (ByteOrder::Big, true),
            (magic, _) => return Err(PcapError::BadMagic { magic }),
        };
        let major = order.u16([h[4], h[5]]);
        if major != 2 {
            return Err(PcapError::Invalid { what: "pcap version (want 2.x)", offset: 4 });
        }
        let snaplen = order.u32([h[16], h[17], h[18], h[19]]);
        let link_type = order.u32([h[20], h[21], h[22], h[23]]) & 0x0fff_ffff;
        if link_type != LINKTYPE_USB_LINUX_MMAPPED && link_type != LINKTYPE_USB_LINUX {
            return Err(PcapError::LinkType { link_type });
        }
        Ok(Self { data, pos: FILE_HEADER_LEN, order, nanos, snaplen, link_type, done: false })
    }

    /// Byte order of the capture.
    pub const fn byte_order(&self) -> ByteOrder {
        self.order
    }

    /// Whether timestamps are in nanoseconds (magic `a1b23c4d`).
    pub const fn nanosecond_timestamps(&self) -> bool {
        self.nanos
    }

    /// The declared snapshot length.
    pub const fn snaplen(&self) -> u32 {
        self.snaplen
    }

    /// The link type (220 or 189).
    pub const fn link_type(&self) -> u32 {
        self.link_type
    }

    fn header_len(&self) -> usize {
        if self.link_type == LINKTYPE_USB_LINUX { HEADER_LEN_189 } else { HEADER_LEN }
    }

    fn step(&mut self) -> Result<Record<'a>, PcapError> {
        let offset = self.pos;
        let o = self.order;
        let rh = self
            .data
            .get(offset..offset + RECORD_HEADER_LEN)
            .ok_or(PcapError::Truncated { what: "pcap record header", offset })?;
        let word = |i: usize| o.u32([rh[i], rh[i + 1], rh[i + 2], rh[i + 3]]);
        let (ts_sec, ts_frac, incl_len, orig_len) = (word(0), word(4), word(8), word(12));
        let frac_limit = if self.nanos { 1_000_000_000 } else { 1_000_000 };
        if ts_frac >= frac_limit {
            return Err(PcapError::Invalid { what: "pcap record timestamp fraction", offset });
        }
        if orig_len < incl_len {
            return Err(PcapError::Invalid { what: "pcap record orig_len < incl_len", offset });
        }
        let body_start = offset + RECORD_HEADER_LEN;
        let body = usize::try_from(incl_len)
            .ok()
            .and_then(|n| self.data.get(body_start..body_start.checked_add(n)?))
            .ok_or(PcapError::Truncated { what: "pcap record data", offset })?;
        let header_len = self.header_len();
        let header = UrbHeader::parse(body, o, header_len)
            .ok_or(PcapError::Truncated { what: "usbmon header", offset })?;
        let mut rest = &body[header_len..];
        if header.xfer_type == XferType::Isochronous && header_len == HEADER_LEN {
            let desc = (header.ndesc as usize).checked_mul(ISO_DESC_LEN).filter(|&n| n <= rest.len());
            let desc = desc.ok_or(PcapError::Invalid { what: "usbmon ndesc", offset })?;
            rest = &rest[desc..];
        }
        let cut_by_snaplen = orig_len > incl_len;
        let len_cap = header.len_cap as usize;
        if len_cap > rest.len() && !cut_by_snaplen {
            return Err(PcapError::Invalid { what: "usbmon len_cap beyond the record", offset });
        }
        let data = &rest[..len_cap.min(rest.len())];
        let timestamp = Duration::from_secs(u64::from(ts_sec))
            + if self.nanos {
                Duration::from_nanos(u64::from(ts_frac))
            } else {
                Duration::from_micros(u64::from(ts_frac))
            };
        self.pos = body_start + body.len();
        Ok(Record { offset, timestamp, header, data })
    }
}

impl<'a> Iterator for PcapReader<'a> {
    type Item = Result<Record<'a>, PcapError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.pos >= self.data.len() {
            return None;
        }
        let r = self.step();
        self.done = r.is_err();
        Some(r)
    }
}

impl core::iter::FusedIterator for PcapReader<'_> {}
