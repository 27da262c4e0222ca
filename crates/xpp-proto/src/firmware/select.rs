//! Which image files a device needs (docs/reference/mpp-twinstar-firmware.md §5.1, §1.1) and what a file is
//! for.

use core::fmt;
use core::ops::Range;

use super::{FirmwareError, Fx2Load, HexFile, MppLoad, PicImage, RecordCounts, pic_card_type};
use crate::mgmt::DevDest;

/// USB vendor ID of every Astribank stage.
pub const VENDOR_XORCOM: u16 = 0xE4E4;
/// Generic Cypress vendor ID (a device with a corrupted EEPROM source byte).
pub const VENDOR_CYPRESS: u16 = 0x04B4;
/// Generic Cypress FX2 product ID.
pub const PRODUCT_FX2: u16 = 0x8613;

/// The image files for one device identity; `None` where that stage loads nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ImageSelection {
    /// Stage-1 USB firmware for FX2 RAM.
    pub usb: Option<&'static str>,
    /// Stage-2 FPGA image for MPP DEV_SEND.
    pub fpga: Option<&'static str>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Revision {
    /// bcdDevice 0x101: the original hardware.
    Original,
    /// bcdDevice 0x201..=0x203: newer 116x hardware.
    New,
}

/// The §5.1 selection table for `vendor:product` with `bcdDevice`.
///
/// Decision: "20x" is read as bcdDevice 0x201, 0x202 and 0x203 (the revisions the reference
/// names; 202 and 203 use the 201 images, installed as symlinks upstream). Any other revision,
/// like any identity not in the table, selects nothing. 04b4:8613 gets the recovery image
/// whatever its revision.
///
/// ```
/// use xpp_proto::firmware::select_images;
/// assert_eq!(select_images(0xE4E4, 0x1160, 0x0202).usb, Some("USB_FW.201.hex"));
/// assert_eq!(select_images(0xE4E4, 0x1161, 0x0101).fpga, Some("FPGA_1161.hex"));
/// ```
pub const fn select_images(vendor: u16, product: u16, bcd_device: u16) -> ImageSelection {
    let none = ImageSelection { usb: None, fpga: None };
    if vendor == VENDOR_CYPRESS && product == PRODUCT_FX2 {
        return ImageSelection { usb: Some("USB_RECOV.hex"), fpga: None };
    }
    if vendor != VENDOR_XORCOM {
        return none;
    }
    let rev = match bcd_device {
        0x0101 => Revision::Original,
        0x0201..=0x0203 => Revision::New,
        _ => return none,
    };
    let usb = match (product, rev) {
        (0x1130 | 0x1140 | 0x1150 | 0x1160 | 0x1163, Revision::Original) => Some("USB_FW.hex"),
        (0x1160 | 0x1163, Revision::New) => Some("USB_FW.201.hex"),
        _ => None,
    };
    let fpga = match (product, rev) {
        (0x1131, Revision::Original) => Some("FPGA_FXS.hex"),
        (0x1141, Revision::Original) => Some("FPGA_1141.hex"),
        (0x1151, Revision::Original) => Some("FPGA_1151.hex"),
        (0x1161, Revision::Original) => Some("FPGA_1161.hex"),
        (0x1161, Revision::New) => Some("FPGA_1161.201.hex"),
        _ => None,
    };
    ImageSelection { usb, fpga }
}

/// What an image file is loaded into, judged from its file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub enum LoadTarget {
    /// `USB_FW*.hex`, `USB_RECOV*.hex`: EZ-USB FX2 RAM ([`Fx2Load`]).
    Fx2Ram,
    /// `FPGA_*.hex`: MPP DEV_SEND to this destination ([`MppLoad`]).
    Mpp(DevDest),
    /// `PIC_TYPE_<n>.hex`: PIC micro-controllers of module type n ([`PicImage`]).
    Pic(u8),
    /// Any other name (EEPROM burning files have no fixed name).
    Unknown,
}

impl LoadTarget {
    /// Classifies a file name (case-insensitive; any directory part is ignored).
    pub fn from_file_name(file_name: &str) -> Self {
        let base = file_name.rsplit(['/', '\\']).next().unwrap_or(file_name).to_ascii_uppercase();
        if !base.ends_with(".HEX") {
            return Self::Unknown;
        }
        if base.starts_with("USB_FW") || base.starts_with("USB_RECOV") {
            Self::Fx2Ram
        } else if base.starts_with("FPGA_") {
            Self::Mpp(DevDest::Fpga)
        } else if let Some(n) = pic_card_type(&base) {
            Self::Pic(n)
        } else {
            Self::Unknown
        }
    }

    /// Validates `hex` for this target and describes the load, e.g.
    /// `FPGA via MPP DEV_SEND (dest=FPGA), 1061 segments`.
    pub fn describe(self, hex: &HexFile) -> Result<String, FirmwareError> {
        Ok(match self {
            Self::Fx2Ram => {
                let n = Fx2Load::new(hex)?.request_count().saturating_sub(2);
                format!("EZ-USB FX2 RAM via vendor request 0xA0, {n} writes between CPUCS reset and release")
            }
            Self::Mpp(dest) => {
                let load = if dest == DevDest::Eeprom { MppLoad::eeprom(hex)? } else { MppLoad::fpga(hex)? };
                format!("{dest} via MPP DEV_SEND (dest={dest}), {} segments", load.segment_count())
            }
            Self::Pic(n) => {
                let image = PicImage::with_card_type(n, hex)?;
                format!("PIC type {n} via data-interface PIC_REQUEST, {} data packets", image.data_records())
            }
            Self::Unknown => "unknown (the file name matches no known image)".to_owned(),
        })
    }
}

/// What `fwinfo` prints about one file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Summary {
    /// The file name as given.
    pub file: String,
    /// Version string from the `$Id:` comment.
    pub version: Option<String>,
    /// The `$Id:` comment line.
    pub id_line: Option<String>,
    /// Records per type.
    pub records: RecordCounts,
    /// Data bytes in data records.
    pub data_bytes: usize,
    /// Merged absolute address ranges of the data (end exclusive). Printed and serialized
    /// as the first and the last address (both included): `0x0000-0x0050` in the text,
    /// `{"first":0,"last":80}` in JSON, so both say the same thing.
    #[cfg_attr(feature = "serde", serde(serialize_with = "serialize_inclusive"))]
    pub address_ranges: Vec<Range<u64>>,
    /// What the file name says the image is for.
    pub target: LoadTarget,
    /// The load it implies ([`LoadTarget::describe`]).
    pub load: String,
}

/// `[{"first": a, "last": b}]`, both included, as the text shows them.
#[cfg(feature = "serde")]
fn serialize_inclusive<S: serde::Serializer>(ranges: &[Range<u64>], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::{SerializeSeq, SerializeStruct};
    struct Inclusive<'a>(&'a Range<u64>);
    impl serde::Serialize for Inclusive<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut st = s.serialize_struct("AddressRange", 2)?;
            st.serialize_field("first", &self.0.start)?;
            st.serialize_field("last", &self.0.end.saturating_sub(1))?;
            st.end()
        }
    }
    let mut seq = s.serialize_seq(Some(ranges.len()))?;
    for r in ranges {
        seq.serialize_element(&Inclusive(r))?;
    }
    seq.end()
}

impl Summary {
    /// Summarises `hex`, read from `file_name`; fails if the implied load refuses the image.
    pub fn new(file_name: &str, hex: &HexFile) -> Result<Self, FirmwareError> {
        let target = LoadTarget::from_file_name(file_name);
        Ok(Self {
            file: file_name.to_owned(),
            version: hex.version().map(str::to_owned),
            id_line: hex.id_line().map(str::to_owned),
            records: hex.counts(),
            data_bytes: hex.data_len(),
            address_ranges: hex.address_ranges(),
            target,
            load: target.describe(hex)?,
        })
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "file:     {}", self.file)?;
        writeln!(f, "version:  {}", self.version.as_deref().unwrap_or("-"))?;
        writeln!(f, "id:       {}", self.id_line.as_deref().unwrap_or("-"))?;
        writeln!(f, "records:  {}", self.records)?;
        writeln!(f, "data:     {} bytes", self.data_bytes)?;
        f.write_str("ranges:   ")?;
        if self.address_ranges.is_empty() {
            f.write_str("-")?;
        }
        for (i, r) in self.address_ranges.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            write!(f, "{sep}0x{:08X}-0x{:08X}", r.start, r.end.saturating_sub(1))?;
        }
        writeln!(f)?;
        writeln!(f, "load:     {}", self.load)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_table() {
        let s = |p, b| select_images(0xE4E4, p, b);
        for p in [0x1130, 0x1140, 0x1150, 0x1160, 0x1163] {
            assert_eq!(s(p, 0x101), ImageSelection { usb: Some("USB_FW.hex"), fpga: None });
        }
        for b in [0x201, 0x202, 0x203] {
            assert_eq!(s(0x1160, b).usb, Some("USB_FW.201.hex"));
            assert_eq!(s(0x1163, b).usb, Some("USB_FW.201.hex"));
            assert_eq!(s(0x1161, b).fpga, Some("FPGA_1161.201.hex"));
        }
        assert_eq!(s(0x1130, 0x201), ImageSelection::default());
        assert_eq!(s(0x1131, 0x101).fpga, Some("FPGA_FXS.hex"));
        assert_eq!(s(0x1141, 0x101).fpga, Some("FPGA_1141.hex"));
        assert_eq!(s(0x1151, 0x101).fpga, Some("FPGA_1151.hex"));
        assert_eq!(s(0x1161, 0x101), ImageSelection { usb: None, fpga: Some("FPGA_1161.hex") });
        assert_eq!(s(0x1162, 0x101), ImageSelection::default());
        assert_eq!(s(0x1161, 0x204), ImageSelection::default());
        assert_eq!(s(0x1164, 0x101), ImageSelection::default());
        assert_eq!(select_images(0x04B4, 0x8613, 0xA001).usb, Some("USB_RECOV.hex"));
        assert_eq!(select_images(0x04B4, 0x1160, 0x101), ImageSelection::default());
    }

    #[test]
    fn targets_from_names() {
        assert_eq!(LoadTarget::from_file_name("USB_FW.hex"), LoadTarget::Fx2Ram);
        assert_eq!(LoadTarget::from_file_name("/x/usb_fw.201.hex"), LoadTarget::Fx2Ram);
        assert_eq!(LoadTarget::from_file_name("USB_RECOV.hex"), LoadTarget::Fx2Ram);
        assert_eq!(LoadTarget::from_file_name("FPGA_1161.201.hex"), LoadTarget::Mpp(DevDest::Fpga));
        assert_eq!(LoadTarget::from_file_name("FPGA_FXS.HEX"), LoadTarget::Mpp(DevDest::Fpga));
        assert_eq!(LoadTarget::from_file_name("PIC_TYPE_3.hex"), LoadTarget::Pic(3));
        assert_eq!(LoadTarget::from_file_name("pic_type_6.hex"), LoadTarget::Pic(6));
        assert_eq!(LoadTarget::from_file_name("OCT6104E-256D.ima"), LoadTarget::Unknown);
        assert_eq!(LoadTarget::from_file_name("FPGA_1161.bin"), LoadTarget::Unknown);
        assert_eq!(LoadTarget::from_file_name("eeprom.hex"), LoadTarget::Unknown);
    }

    #[test]
    fn summary_text() {
        let hex = HexFile::parse(b"# $Id: FPGA_T.hex 77 x $\n:020000040001F9\n:0100000001FE\n:00000001FF\n")
            .unwrap();
        let s = Summary::new("FPGA_T.hex", &hex).unwrap();
        assert_eq!(
            s.to_string(),
            "file:     FPGA_T.hex\n\
             version:  77\n\
             id:       # $Id: FPGA_T.hex 77 x $\n\
             records:  1 data, 1 EOF, 1 extended linear address\n\
             data:     1 bytes\n\
             ranges:   0x00010000-0x00010000\n\
             load:     FPGA via MPP DEV_SEND (dest=FPGA), 1 segments\n"
        );
        // The same image is refused as FX2 firmware (above 64 KiB) and as a PIC file.
        assert!(matches!(Summary::new("USB_FW.hex", &hex), Err(FirmwareError::Record { line: 3, .. })));
        assert!(matches!(Summary::new("PIC_TYPE_1.hex", &hex), Err(FirmwareError::Record { line: 2, .. })));
        let s = Summary::new("other.hex", &hex).unwrap();
        assert_eq!(s.target, LoadTarget::Unknown);
    }
}
