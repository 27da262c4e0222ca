//! Astribank firmware images: the Intel-HEX variant and the load sequences.
//!
//! See docs/reference/mpp-twinstar-firmware.md §5. Nothing here does IO: a caller reads a file into memory,
//! [`HexFile::parse`]s it, builds the load sequence for its target and sends what the sequence
//! yields through its own transport.
//!
//! - [`HexFile`]: the parsed, checked image (§5.2), with re-emission of its records.
//! - [`Fx2Load`]: stage 1, the USB firmware written into EZ-USB FX2 RAM (§5.3).
//! - [`MppLoad`]: stage 2, the FPGA (or EEPROM) image sent as MPP DEV_SEND requests (§5.4).
//! - [`PicImage`] / [`PicLoad`]: the module micro-controllers over the data interface (§5.5).
//! - [`echo`]: echo-canceller SPI packets and their batching (§5.6).
//! - [`select_images`], [`LoadTarget`], [`Summary`]: which files a device needs (§5.1) and
//!   what a file is for.
//!
//! Hard rule: every load sequence validates the whole image in its constructor, so a file that
//! fails validation yields nothing at all, never a partial load.

mod fpga;
mod fx2;
mod hex;
mod pic;
mod select;

pub mod echo;

pub use fpga::{MAX_MPP_RECORDS, MppLoad, MppRequests};
pub use fx2::{
    ControlRequest, FX2_CPUCS, FX2_FIRMWARE_LOAD, FX2_MAX_CHUNK, FX2_REQUEST_TYPE, Fx2Load, Fx2Requests,
};
pub use hex::{
    HexFile, MAX_HEX_FILE_LEN, MAX_PIC_RECORDS, MAX_RECORD_DATA, MAX_RECORDS, Record, RecordCounts,
    RecordType, Records, write_record,
};
pub use pic::{PIC_HEADER_LEN, PicFlags, PicImage, PicLoad, PicPacket, PicReply, PicStep, pic_card_type};
pub use select::{
    ImageSelection, LoadTarget, PRODUCT_FX2, Summary, VENDOR_CYPRESS, VENDOR_XORCOM, select_images,
};

/// Why a firmware file could not be parsed or loaded.
///
/// Every variant tied to the file names its 1-based line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FirmwareError {
    /// A line is malformed.
    #[error("line {line}: {reason} (column {column})")]
    Syntax {
        /// 1-based line number.
        line: usize,
        /// 1-based column of the offending character or field.
        column: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// A record's checksum byte does not make its bytes sum to zero.
    #[error("line {line}: bad checksum (expected 0x{expected:02X}, found 0x{found:02X})")]
    BadChecksum {
        /// 1-based line number.
        line: usize,
        /// The checksum the record's other bytes call for.
        expected: u8,
        /// The checksum in the file.
        found: u8,
    },
    /// A well-formed line that is not allowed where it is (after EOF, or by a load sequence).
    #[error("line {line}: {reason}")]
    Record {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// More records than the limit for this kind of file.
    #[error("line {line}: more than {limit} records")]
    TooManyRecords {
        /// Line of the first record over the limit.
        line: usize,
        /// The limit.
        limit: usize,
    },
    /// The file ends without an EOF record.
    #[error("line {line}: file ends without an EOF record")]
    MissingEof {
        /// The line after the last one.
        line: usize,
    },
    /// The file name does not say what the image is for (e.g. not `PIC_TYPE_<n>.hex`).
    #[error("file name: {reason}")]
    FileName {
        /// What is wrong.
        reason: &'static str,
    },
    /// The device's reply says the load failed.
    #[error("device rejected the load: {reason}")]
    Rejected {
        /// What the device reported.
        reason: &'static str,
    },
}

impl FirmwareError {
    /// The 1-based line the error refers to, if it refers to one.
    pub const fn line(&self) -> Option<usize> {
        match *self {
            Self::Syntax { line, .. }
            | Self::BadChecksum { line, .. }
            | Self::Record { line, .. }
            | Self::TooManyRecords { line, .. }
            | Self::MissingEof { line } => Some(line),
            Self::FileName { .. } | Self::Rejected { .. } => None,
        }
    }
}

/// Fuzz entry point: parse; on success re-emit and re-parse, and walk every load sequence.
pub(crate) fn fuzz_hex(data: &[u8]) {
    let Ok(hex) = HexFile::parse(data) else {
        return;
    };
    let again = HexFile::parse(hex.to_hex_records().as_bytes()).expect("re-emitted records parse");
    assert_eq!(hex.record_count(), again.record_count());
    for (a, b) in hex.records().zip(again.records()) {
        assert_eq!((a.kind, a.address, a.absolute, a.data), (b.kind, b.address, b.absolute, b.data));
    }
    assert_eq!(hex.address_ranges(), again.address_ranges());

    if let Ok(load) = Fx2Load::new(&hex) {
        let n = load.requests().count();
        assert_eq!(n, load.request_count());
    }
    for load in [MppLoad::fpga(&hex), MppLoad::eeprom(&hex)].into_iter().flatten() {
        assert_eq!(load.requests().count(), load.segment_count() + 2);
    }
    if let Ok(image) = PicImage::with_card_type(1, &hex) {
        let images = [image];
        let mut buf = [0u8; 16];
        for step in PicLoad::new(&images).steps() {
            let n = step.packet.emit(&mut buf).expect("PIC packet fits 16 bytes");
            assert_eq!(PicPacket::parse(&buf[..n]), Ok(step.packet));
        }
    }
    for name in ["USB_FW.hex", "FPGA_1161.hex", "PIC_TYPE_2.hex", "OTHER.hex"] {
        let _ = Summary::new(name, &hex);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fuzz_entry_on_valid_and_invalid_input() {
        fuzz_hex(b":0300000001020301\n:00000001FF\n\x1A\n");
        fuzz_hex(b":020000040001F9\n:03FFFF00010203FA\n:00000001FF\n");
        fuzz_hex(b"");
        fuzz_hex(b":0\n");
    }

    #[test]
    fn error_lines() {
        assert_eq!(FirmwareError::MissingEof { line: 4 }.line(), Some(4));
        assert_eq!(FirmwareError::FileName { reason: "x" }.line(), None);
        assert_eq!(
            FirmwareError::Syntax { line: 3, column: 5, reason: "bad hex digit" }.to_string(),
            "line 3: bad hex digit (column 5)"
        );
    }
}
