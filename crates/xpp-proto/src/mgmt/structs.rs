//! Fixed-size structures shared by several MPP commands (§3.2): the EEPROM table, the
//! capabilities block, the licence key and the firmware version strings.

use core::fmt;

use super::MgmtError;
use super::display::{Ascii, DisplayFn};
use crate::codec::{Reader, Truncated};

/// Writes `bytes` into the start of `buf`, or reports [`MgmtError::NoRoom`].
fn put(buf: &mut [u8], bytes: &[u8], what: &'static str) -> Result<usize, MgmtError> {
    let Some(out) = buf.get_mut(..bytes.len()) else {
        return Err(MgmtError::NoRoom { what, needed: bytes.len(), available: buf.len() });
    };
    out.copy_from_slice(bytes);
    Ok(bytes.len())
}

/// The 16-byte EEPROM table (§3.2).
///
/// ```text
/// off 0 source | 1-2 vendor LE | 3-4 product LE | 5-6 release LE | 7 config | 8-15 label
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct EepromTable {
    /// 0xC0 small EEPROM, 0xC2 large EEPROM.
    pub source: u8,
    /// USB vendor ID (0xE4E4).
    pub vendor: u16,
    /// The cold product ID (e.g. 0x1160).
    pub product: u16,
    /// BCD release, high byte major, low byte minor.
    pub release: u16,
    /// Must be 0.
    pub config: u8,
    /// 8-character label (= USB serial string), not NUL terminated.
    pub label: [u8; 8],
}

impl EepromTable {
    /// Size on the wire.
    pub const LEN: usize = 16;

    pub(super) fn read(r: &mut Reader<'_>) -> Result<Self, Truncated> {
        let mut r = r.sub(Self::LEN, "eeprom_table")?;
        Ok(Self {
            source: r.u8("eeprom_table source")?,
            vendor: r.u16_le("eeprom_table vendor")?,
            product: r.u16_le("eeprom_table product")?,
            release: r.u16_le("eeprom_table release")?,
            config: r.u8("eeprom_table config_byte")?,
            label: r.array("eeprom_table label")?,
        })
    }

    /// Decodes the table from the first 16 bytes of `data`.
    pub fn parse(data: &[u8]) -> Result<Self, MgmtError> {
        Ok(Self::read(&mut Reader::new(data))?)
    }

    /// Decodes the table from exactly 16 bytes.
    pub fn from_bytes(b: &[u8; Self::LEN]) -> Self {
        let u16_at = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        let mut label = [0u8; 8];
        label.copy_from_slice(&b[8..16]);
        Self { source: b[0], vendor: u16_at(1), product: u16_at(3), release: u16_at(5), config: b[7], label }
    }

    /// Encodes the table.
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[0] = self.source;
        b[1..3].copy_from_slice(&self.vendor.to_le_bytes());
        b[3..5].copy_from_slice(&self.product.to_le_bytes());
        b[5..7].copy_from_slice(&self.release.to_le_bytes());
        b[7] = self.config;
        b[8..16].copy_from_slice(&self.label);
        b
    }

    /// Writes the 16 bytes into the start of `buf`; returns 16.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, MgmtError> {
        put(buf, &self.to_bytes(), "eeprom_table")
    }

    /// Release major number (high byte).
    pub const fn release_major(&self) -> u8 {
        (self.release >> 8) as u8
    }

    /// Release minor number (low byte).
    pub const fn release_minor(&self) -> u8 {
        self.release as u8
    }

    /// The release as the tools show it: `major.minor`, each byte in decimal (`1.1` for 0x0101).
    pub fn release_display(&self) -> impl fmt::Display + use<> {
        let (major, minor) = (self.release_major(), self.release_minor());
        DisplayFn(move |f| write!(f, "{major}.{minor}"))
    }

    /// The label bytes up to the first NUL (at most 8), as the tools print them.
    pub fn label_bytes(&self) -> &[u8] {
        let end = self.label.iter().position(|&b| b == 0).unwrap_or(self.label.len());
        &self.label[..end]
    }

    /// The label up to the first NUL, if it is valid UTF-8 (it is ASCII on real devices).
    pub fn label_str(&self) -> Option<&str> {
        core::str::from_utf8(self.label_bytes()).ok()
    }
}

impl fmt::Display for EepromTable {
    /// `source=0xc0 vendor=0xe4e4 product=0x1160 release=1.1 config=0x00 label='00000123'`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "source=0x{:02x} vendor=0x{:04x} product=0x{:04x} release={} config=0x{:02x} label='{}'",
            self.source,
            self.vendor,
            self.product,
            self.release_display(),
            self.config,
            Ascii(&self.label)
        )
    }
}

/// The 12-byte capabilities block (§3.2).
///
/// ```text
/// off 0 fxs | 1 fxo | 2 bri | 3 pri | 4 extra_features | 5 echo | 6-7 reserved | 8-11 timestamp LE
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Capabilities {
    /// Licensed FXS ports.
    pub ports_fxs: u8,
    /// Licensed FXO ports.
    pub ports_fxo: u8,
    /// Licensed BRI ports.
    pub ports_bri: u8,
    /// Licensed PRI ports.
    pub ports_pri: u8,
    /// Bit 0: TwinStar licensed.
    pub extra_features: u8,
    /// Licensed echo-canceller channels.
    pub ports_echo: u8,
    /// Reserved bytes, kept as received.
    pub reserved: [u8; 2],
    /// Licence timestamp.
    pub timestamp: u32,
}

/// `extra_features` bit 0: TwinStar licensed.
const EXTRA_TWINSTAR: u8 = 0x01;

impl Capabilities {
    /// Size on the wire.
    pub const LEN: usize = 12;

    pub(super) fn read(r: &mut Reader<'_>) -> Result<Self, Truncated> {
        let mut r = r.sub(Self::LEN, "capabilities")?;
        Ok(Self {
            ports_fxs: r.u8("capabilities ports_fxs")?,
            ports_fxo: r.u8("capabilities ports_fxo")?,
            ports_bri: r.u8("capabilities ports_bri")?,
            ports_pri: r.u8("capabilities ports_pri")?,
            extra_features: r.u8("capabilities extra_features")?,
            ports_echo: r.u8("capabilities ports_echo")?,
            reserved: r.array("capabilities reserved")?,
            timestamp: r.u32_le("capabilities timestamp")?,
        })
    }

    /// Decodes the block from the first 12 bytes of `data`.
    pub fn parse(data: &[u8]) -> Result<Self, MgmtError> {
        Ok(Self::read(&mut Reader::new(data))?)
    }

    /// Encodes the block.
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[..6].copy_from_slice(&[
            self.ports_fxs,
            self.ports_fxo,
            self.ports_bri,
            self.ports_pri,
            self.extra_features,
            self.ports_echo,
        ]);
        b[6..8].copy_from_slice(&self.reserved);
        b[8..12].copy_from_slice(&self.timestamp.to_le_bytes());
        b
    }

    /// Writes the 12 bytes into the start of `buf`; returns 12.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, MgmtError> {
        put(buf, &self.to_bytes(), "capabilities")
    }

    /// Whether TwinStar is licensed (`extra_features` bit 0).
    pub const fn twinstar(&self) -> bool {
        self.extra_features & EXTRA_TWINSTAR != 0
    }
}

impl fmt::Display for Capabilities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "fxs={} fxo={} bri={} pri={} echo={} twinstar={} extra=0x{:02x} timestamp={}",
            self.ports_fxs,
            self.ports_fxo,
            self.ports_bri,
            self.ports_pri,
            self.ports_echo,
            if self.twinstar() { "yes" } else { "no" },
            self.extra_features,
            self.timestamp
        )
    }
}

/// The opaque 16-byte licence key (§3.2); only the device can check it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct CapKey(pub [u8; 16]);

impl CapKey {
    /// Size on the wire.
    pub const LEN: usize = 16;

    pub(super) fn read(r: &mut Reader<'_>) -> Result<Self, Truncated> {
        Ok(Self(r.array("capkey")?))
    }

    /// Decodes the key from the first 16 bytes of `data`.
    pub fn parse(data: &[u8]) -> Result<Self, MgmtError> {
        Ok(Self::read(&mut Reader::new(data))?)
    }

    /// Writes the 16 bytes into the start of `buf`; returns 16.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, MgmtError> {
        put(buf, &self.0, "capkey")
    }
}

impl fmt::Display for CapKey {
    /// Lowercase hex, 32 characters.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// EEPROM type reported in bits 4..3 of STATUS_GET_REPLY `i2cs_data` (§3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum EepromType {
    /// 0: no EEPROM.
    None,
    /// 1: small EEPROM.
    Small,
    /// 2: large EEPROM (capabilities and TwinStar are available).
    Large,
    /// 3: unused.
    Unused,
}

impl EepromType {
    /// Decodes the 2-bit field `(i2cs_data >> 3) & 3`.
    pub const fn from_i2cs(i2cs_data: u8) -> Self {
        match (i2cs_data >> 3) & 3 {
            0 => Self::None,
            1 => Self::Small,
            2 => Self::Large,
            _ => Self::Unused,
        }
    }

    /// The name the tools print (`NONE`, `SMALL`, `LARGE`, `UNUSED`).
    pub const fn name(self) -> &'static str {
        match self {
            Self::None => "NONE",
            Self::Small => "SMALL",
            Self::Large => "LARGE",
            Self::Unused => "UNUSED",
        }
    }
}

impl fmt::Display for EepromType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The 18-byte firmware_versions block of STATUS_GET_REPLY (§3.2): three ASCII strings,
/// NUL padded, not necessarily terminated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct FirmwareVersions {
    /// USB firmware version (format undocumented, §10.11).
    pub usb: [u8; 6],
    /// FPGA firmware version (the tools print this one).
    pub fpga: [u8; 6],
    /// EEPROM version (format undocumented, §10.11).
    pub eeprom: [u8; 6],
}

impl FirmwareVersions {
    /// Size on the wire.
    pub const LEN: usize = 18;

    pub(super) fn read(r: &mut Reader<'_>) -> Result<Self, Truncated> {
        let mut r = r.sub(Self::LEN, "firmware_versions")?;
        Ok(Self {
            usb: r.array("firmware_versions usb")?,
            fpga: r.array("firmware_versions fpga")?,
            eeprom: r.array("firmware_versions eeprom")?,
        })
    }

    pub(super) fn write(&self, out: &mut [u8]) {
        out[..6].copy_from_slice(&self.usb);
        out[6..12].copy_from_slice(&self.fpga);
        out[12..18].copy_from_slice(&self.eeprom);
    }

    /// A version string up to its first NUL.
    pub fn trimmed(field: &[u8; 6]) -> &[u8] {
        let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
        &field[..end]
    }
}

/// The TwinStar prerequisites of §4.1 that the device data shows: a large EEPROM, the TwinStar
/// capability bit, and an EEPROM product in the 116x family (`product & 0xFFF0 == 0x1160`).
///
/// (The remaining prerequisite, a 116x USB product ID, is the caller's to check.)
pub fn twinstar_capable(eeprom: EepromType, table: &EepromTable, caps: &Capabilities) -> bool {
    eeprom == EepromType::Large && caps.twinstar() && table.product & 0xFFF0 == 0x1160
}

#[cfg(test)]
mod tests {
    use super::*;

    // §7.1 sample: source 0xC0, vendor E4E4, product 1160, release 1.1, config 0, label 00000123.
    static SAMPLE_TABLE: [u8; 16] =
        [0xC0, 0xE4, 0xE4, 0x60, 0x11, 0x01, 0x01, 0x00, b'0', b'0', b'0', b'0', b'0', b'1', b'2', b'3'];
    // 8 FXS, 0 FXO, 0 BRI, 4 PRI, TwinStar, 128 echo, reserved 0, timestamp 0x12345678.
    static SAMPLE_CAPS: [u8; 12] = [8, 0, 0, 4, 0x01, 128, 0, 0, 0x78, 0x56, 0x34, 0x12];

    fn sample_table() -> EepromTable {
        EepromTable {
            source: 0xC0,
            vendor: 0xE4E4,
            product: 0x1160,
            release: 0x0101,
            config: 0,
            label: *b"00000123",
        }
    }

    fn sample_caps() -> Capabilities {
        Capabilities {
            ports_fxs: 8,
            ports_fxo: 0,
            ports_bri: 0,
            ports_pri: 4,
            extra_features: 1,
            ports_echo: 128,
            reserved: [0; 2],
            timestamp: 0x1234_5678,
        }
    }

    #[test]
    fn eeprom_table_quartet() {
        // deconstruct / parse
        let t = EepromTable::parse(&SAMPLE_TABLE).unwrap();
        assert_eq!(t, sample_table());
        assert_eq!(EepromTable::from_bytes(&SAMPLE_TABLE), t);
        assert_eq!(t.release_display().to_string(), "1.1");
        assert_eq!(t.label_str(), Some("00000123"));
        // construct / emit
        assert_eq!(t.to_bytes(), SAMPLE_TABLE);
        let mut out = [0u8; 16];
        assert_eq!(t.emit(&mut out), Ok(16));
        assert_eq!(out, SAMPLE_TABLE);
        assert!(t.emit(&mut out[..15]).is_err());
        assert_eq!(
            t.to_string(),
            "source=0xc0 vendor=0xe4e4 product=0x1160 release=1.1 config=0x00 label='00000123'"
        );
    }

    #[test]
    fn release_is_decimal_per_byte_and_label_stops_at_nul() {
        let t = EepromTable { release: 0x0210, label: *b"AB\0CDEFG", ..sample_table() };
        assert_eq!(t.release_display().to_string(), "2.16");
        assert_eq!(t.label_str(), Some("AB"));
    }

    #[test]
    fn capabilities_quartet() {
        let c = Capabilities::parse(&SAMPLE_CAPS).unwrap();
        assert_eq!(c, sample_caps());
        assert!(c.twinstar());
        assert_eq!(c.to_bytes(), SAMPLE_CAPS);
        let mut out = [0u8; 12];
        assert_eq!(c.emit(&mut out), Ok(12));
        assert_eq!(out, SAMPLE_CAPS);
    }

    #[test]
    fn capkey_roundtrip() {
        let raw: [u8; 16] = [0xA5; 16];
        let k = CapKey::parse(&raw).unwrap();
        assert_eq!(k, CapKey([0xA5; 16]));
        assert_eq!(k.to_string(), "a5".repeat(16));
        let mut out = [0u8; 16];
        assert_eq!(k.emit(&mut out), Ok(16));
        assert_eq!(out, raw);
    }

    #[test]
    fn truncated_structures_name_themselves() {
        for n in 0..16 {
            assert!(matches!(
                EepromTable::parse(&SAMPLE_TABLE[..n]),
                Err(MgmtError::Truncated { what: "eeprom_table", offset: 0, needed: 16 })
            ));
            assert!(CapKey::parse(&SAMPLE_TABLE[..n]).is_err());
        }
        for n in 0..12 {
            assert!(Capabilities::parse(&SAMPLE_CAPS[..n]).is_err());
        }
    }

    #[test]
    fn eeprom_type_bits() {
        assert_eq!(EepromType::from_i2cs(0x00), EepromType::None);
        assert_eq!(EepromType::from_i2cs(0x08), EepromType::Small);
        assert_eq!(EepromType::from_i2cs(0x10), EepromType::Large);
        assert_eq!(EepromType::from_i2cs(0x18), EepromType::Unused);
        assert_eq!(EepromType::from_i2cs(0xE7), EepromType::None);
    }

    #[test]
    fn twinstar_rule() {
        let (t, c) = (sample_table(), sample_caps());
        assert!(twinstar_capable(EepromType::Large, &t, &c));
        assert!(twinstar_capable(EepromType::Large, &EepromTable { product: 0x1163, ..t }, &c));
        assert!(!twinstar_capable(EepromType::Small, &t, &c));
        assert!(!twinstar_capable(EepromType::Large, &EepromTable { product: 0x1150, ..t }, &c));
        assert!(!twinstar_capable(EepromType::Large, &t, &Capabilities { extra_features: 0x02, ..c }));
    }
}
