//! Finding Astribanks: which USB identities belong to the family, what stage each is in,
//! and where it sits. Pure: no IO and no backend; listing and the hotplug stream are the
//! nusb backend's (`backend::nusb::list`, `backend::nusb::Hotplug`), which apply these
//! tables to what the OS reports.
//!
//! The identities (docs/reference/mpp-twinstar-firmware.md §1.1, docs/reference/xpp-protocol.md §2.1): vendor `0xE4E4`,
//! product `0x11FS` where `F` is the model family and `S` the firmware stage, plus the
//! TwinStar monitor `1163`, the EEPROM burner `1164`, and the bare Cypress FX2 `04b4:8613`
//! an Astribank shows when its EEPROM source byte is corrupt. [`classify`] is the pure
//! mapping.
//!
//! Devices are addressed by a [`Locator`]: a kernel bus path (`1-1.2`), the dahdi-tools
//! `BBB/DDD` form (bus and device number, as in `/dev/bus/usb/001/010`), or a serial
//! (`serial:00000123`, or the kernel label form `usb:00000123`).

use std::fmt;
use std::str::FromStr;

use crate::error::Error;
use crate::info::Speed;

/// Xorcom's USB vendor ID, shared by every Astribank stage.
pub const XORCOM_VENDOR_ID: u16 = 0xE4E4;
/// Cypress's vendor ID, seen with product [`FX2_RECOVERY_PRODUCT_ID`].
pub const CYPRESS_VENDOR_ID: u16 = 0x04B4;
/// The bare EZ-USB FX2 product ID (Astribank with a corrupt EEPROM source byte).
pub const FX2_RECOVERY_PRODUCT_ID: u16 = 0x8613;

/// Model family, from the third hex digit of the product ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Family {
    /// `113x`: the old FXS-only Astribank-8/16.
    Astribank8_16,
    /// `114x`: Astribank-BRI.
    Bri,
    /// `115x`: Astribank-multi.
    Multi,
    /// `116x`: Astribank-modular, the current family (licensing, echo canceller, TwinStar).
    Modular,
    /// `04b4:8613`: a bare FX2; the family cannot be told until recovery firmware runs.
    Unknown,
}

impl Family {
    /// The description string dahdi-tools prints.
    pub const fn description(self) -> &'static str {
        match self {
            Self::Astribank8_16 => "Astribank-8/16",
            Self::Bri => "Astribank-BRI",
            Self::Multi => "Astribank-multi",
            Self::Modular => "Astribank-modular",
            Self::Unknown => "Cypress FX2 (unknown Astribank)",
        }
    }
}

/// Firmware stage, from the last hex digit of the product ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Stage {
    /// `11x0`: no firmware; needs the USB firmware pushed with an FX2 `0xA0` download.
    Cold,
    /// `11x1`: USB firmware runs (management interface alive), FPGA empty.
    UsbFirmware,
    /// `11x2`: FPGA loaded, the data interface runs (what the kernel `xpp_usb` binds).
    Running,
    /// `1163`: TwinStar monitor; loaded like a cold device.
    TwinStarMonitor,
    /// `1164`: EEPROM burner.
    EepromBurner,
    /// `04b4:8613`: corrupt EEPROM; needs the recovery USB firmware.
    Recovery,
}

impl Stage {
    /// A short lower-case name for listings and JSON.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Cold => "cold",
            Self::UsbFirmware => "usb-firmware",
            Self::Running => "running",
            Self::TwinStarMonitor => "twinstar-monitor",
            Self::EepromBurner => "eeprom-burner",
            Self::Recovery => "recovery",
        }
    }

    /// Whether the USB firmware must be downloaded (FX2 vendor request `0xA0`) before
    /// anything else talks to the device.
    pub const fn needs_usb_firmware(self) -> bool {
        matches!(self, Self::Cold | Self::TwinStarMonitor | Self::Recovery)
    }
}

/// Family and stage of an Astribank-family USB identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Model {
    /// Model family.
    pub family: Family,
    /// Firmware stage.
    pub stage: Stage,
}

/// Classifies a USB identity; `None` if it is not an Astribank in any stage (including
/// Xorcom's other xtalk devices such as `1191` or the legacy `1112` "USB-BURN").
pub const fn classify(vendor_id: u16, product_id: u16) -> Option<Model> {
    const fn m(family: Family, stage: Stage) -> Option<Model> {
        Some(Model { family, stage })
    }
    match (vendor_id, product_id) {
        (CYPRESS_VENDOR_ID, FX2_RECOVERY_PRODUCT_ID) => m(Family::Unknown, Stage::Recovery),
        (XORCOM_VENDOR_ID, 0x1163) => m(Family::Modular, Stage::TwinStarMonitor),
        (XORCOM_VENDOR_ID, 0x1164) => m(Family::Modular, Stage::EepromBurner),
        (XORCOM_VENDOR_ID, p) => {
            let family = match p & 0xFFF0 {
                0x1130 => Family::Astribank8_16,
                0x1140 => Family::Bri,
                0x1150 => Family::Multi,
                0x1160 => Family::Modular,
                _ => return None,
            };
            let stage = match p & 0x000F {
                0 => Stage::Cold,
                1 => Stage::UsbFirmware,
                2 => Stage::Running,
                _ => return None,
            };
            m(family, stage)
        }
        _ => None,
    }
}

/// The bcdDevice as the loader and udev print it: hex without leading zeros (`0x0101` → `101`).
pub fn bcd_string(bcd_device: u16) -> String {
    format!("{bcd_device:x}")
}

/// One Astribank-family device as the OS lists it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Astribank {
    /// Family and stage.
    pub model: Model,
    /// `idVendor`.
    pub vendor_id: u16,
    /// `idProduct`.
    pub product_id: u16,
    /// `bcdDevice`: hardware revision (`0x0101`, `0x0201`...).
    pub bcd_device: u16,
    /// Bus number.
    pub bus: u8,
    /// Device address on the bus (changes at every re-enumeration).
    pub address: u8,
    /// Hub port chain from the root hub (empty for a root hub itself).
    pub ports: Vec<u8>,
    /// Serial number string (the 8-character label), if the OS had it cached.
    pub serial: Option<String>,
    /// Bus speed.
    pub speed: Speed,
}

impl Astribank {
    /// The kernel bus path, `BUS-PORT[.PORT...]` (e.g. `1-1.2`), stable across
    /// re-enumeration as long as the cable stays in the same port.
    pub fn bus_path(&self) -> String {
        bus_path(self.bus, &self.ports)
    }

    /// The dahdi-tools address `BBB/DDD` (e.g. `001/010`).
    pub fn dev_path(&self) -> String {
        format!("{:03}/{:03}", self.bus, self.address)
    }

    /// Whether `locator` designates this device.
    pub fn matches(&self, locator: &Locator) -> bool {
        locator.matches(self.bus, self.address, &self.ports, self.serial.as_deref())
    }
}

/// `BUS-PORT.PORT...`.
pub(crate) fn bus_path(bus: u8, ports: &[u8]) -> String {
    let mut s = format!("{bus}-");
    for (i, p) in ports.iter().enumerate() {
        if i > 0 {
            s.push('.');
        }
        s.push_str(&p.to_string());
    }
    s
}

/// How a user names one device.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Locator {
    /// Kernel bus path `BUS-PORT[.PORT...]` (`1-1.2`); also accepted with a `usb-` prefix.
    BusPath {
        /// Bus number.
        bus: u8,
        /// Port chain, 1 to 7 hops.
        ports: Vec<u8>,
    },
    /// dahdi-tools `BBB/DDD`: any string ending in two zero-padded 3-digit numbers
    /// (`001/010`, `/dev/bus/usb/001/010`).
    BusAddress {
        /// Bus number.
        bus: u8,
        /// Device address.
        address: u8,
    },
    /// `serial:LABEL` or `usb:LABEL`: the serial number string.
    Serial(String),
}

impl Locator {
    /// Whether a device at (`bus`, `address`, `ports`) with `serial` matches.
    pub fn matches(&self, bus: u8, address: u8, ports: &[u8], serial: Option<&str>) -> bool {
        match self {
            Self::BusPath { bus: b, ports: p } => *b == bus && p.as_slice() == ports,
            Self::BusAddress { bus: b, address: a } => *b == bus && *a == address,
            Self::Serial(s) => serial == Some(s.as_str()),
        }
    }
}

impl fmt::Display for Locator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BusPath { bus, ports } => f.write_str(&bus_path(*bus, ports)),
            Self::BusAddress { bus, address } => write!(f, "{bus:03}/{address:03}"),
            Self::Serial(s) => write!(f, "serial:{s}"),
        }
    }
}

impl FromStr for Locator {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = || Error::InvalidLocator(s.to_owned());
        if let Some(serial) = s.strip_prefix("serial:").or_else(|| s.strip_prefix("usb:")) {
            if serial.is_empty() || serial.len() > 126 {
                return Err(bad());
            }
            return Ok(Self::Serial(serial.to_owned()));
        }
        // dahdi-tools: the string must *end with* BBB/DDD, both exactly 3 digits.
        let b = s.as_bytes();
        if b.len() >= 7 && b[b.len() - 4] == b'/' {
            let (bbb, ddd) = (&s[b.len() - 7..b.len() - 4], &s[b.len() - 3..]);
            let three_digits = |x: &str| x.len() == 3 && x.bytes().all(|c| c.is_ascii_digit());
            let before_ok = b.len() == 7 || b[b.len() - 8] == b'/';
            if three_digits(bbb) && three_digits(ddd) && before_ok {
                let bus = bbb.parse::<u8>().map_err(|_| bad())?;
                let address = ddd.parse::<u8>().map_err(|_| bad())?;
                return Ok(Self::BusAddress { bus, address });
            }
            return Err(bad());
        }
        let path = s.strip_prefix("usb-").unwrap_or(s);
        let (bus, rest) = path.split_once('-').ok_or_else(bad)?;
        let number = |x: &str| -> Result<u8, Error> {
            if x.is_empty() || x.len() > 3 || !x.bytes().all(|c| c.is_ascii_digit()) {
                return Err(bad());
            }
            match x.parse::<u8>() {
                Ok(n) if n != 0 => Ok(n),
                _ => Err(bad()),
            }
        };
        let bus = number(bus)?;
        let ports = rest.split('.').map(number).collect::<Result<Vec<u8>, Error>>()?;
        if ports.len() > 7 {
            return Err(bad());
        }
        Ok(Self::BusPath { bus, ports })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every (vendor, product) pair the references name, with its expected model.
    const TABLE: &[(u16, u16, Family, Stage)] = &[
        (0xE4E4, 0x1130, Family::Astribank8_16, Stage::Cold),
        (0xE4E4, 0x1131, Family::Astribank8_16, Stage::UsbFirmware),
        (0xE4E4, 0x1132, Family::Astribank8_16, Stage::Running),
        (0xE4E4, 0x1140, Family::Bri, Stage::Cold),
        (0xE4E4, 0x1141, Family::Bri, Stage::UsbFirmware),
        (0xE4E4, 0x1142, Family::Bri, Stage::Running),
        (0xE4E4, 0x1150, Family::Multi, Stage::Cold),
        (0xE4E4, 0x1151, Family::Multi, Stage::UsbFirmware),
        (0xE4E4, 0x1152, Family::Multi, Stage::Running),
        (0xE4E4, 0x1160, Family::Modular, Stage::Cold),
        (0xE4E4, 0x1161, Family::Modular, Stage::UsbFirmware),
        (0xE4E4, 0x1162, Family::Modular, Stage::Running),
        (0xE4E4, 0x1163, Family::Modular, Stage::TwinStarMonitor),
        (0xE4E4, 0x1164, Family::Modular, Stage::EepromBurner),
        (0x04B4, 0x8613, Family::Unknown, Stage::Recovery),
    ];

    #[test]
    fn classify_every_documented_identity() {
        for &(v, p, family, stage) in TABLE {
            assert_eq!(classify(v, p), Some(Model { family, stage }), "{v:04x}:{p:04x}");
        }
    }

    #[test]
    fn classify_nothing_else_in_the_whole_id_space_of_both_vendors() {
        for v in [0xE4E4u16, 0x04B4] {
            for p in 0..=u16::MAX {
                let listed = TABLE.iter().any(|&(tv, tp, ..)| (tv, tp) == (v, p));
                assert_eq!(classify(v, p).is_some(), listed, "{v:04x}:{p:04x}");
            }
        }
        // Xorcom's other xtalk devices and the legacy USB-BURN are not Astribanks.
        for p in [0x1112, 0x1191, 0x1183, 0x11a3, 0xbb01, 0x1165, 0x1133, 0x1120, 0x1170] {
            assert_eq!(classify(0xE4E4, p), None, "{p:04x}");
        }
        // Other vendors, including Cypress's other IDs and 8613 under another vendor.
        for v in [0x0000, 0x1d6b, 0x04b5, 0xE4E5, 0xFFFF] {
            assert_eq!(classify(v, 0x1162), None);
            assert_eq!(classify(v, 0x8613), None);
        }
    }

    #[test]
    fn stage_properties_and_names() {
        for &(_, _, family, stage) in TABLE {
            assert!(!family.description().is_empty());
            assert!(!stage.name().is_empty());
            let needs = matches!(stage, Stage::Cold | Stage::TwinStarMonitor | Stage::Recovery);
            assert_eq!(stage.needs_usb_firmware(), needs);
        }
        assert_eq!(bcd_string(0x0101), "101");
        assert_eq!(bcd_string(0x0201), "201");
        assert_eq!(bcd_string(0x0000), "0");
    }

    fn loc(s: &str) -> Result<Locator, Error> {
        s.parse()
    }

    #[test]
    fn locator_parses_bus_paths() {
        assert_eq!(loc("1-1").unwrap(), Locator::BusPath { bus: 1, ports: vec![1] });
        assert_eq!(loc("3-1.2.4").unwrap(), Locator::BusPath { bus: 3, ports: vec![1, 2, 4] });
        assert_eq!(loc("usb-2-7").unwrap(), Locator::BusPath { bus: 2, ports: vec![7] });
        assert_eq!(loc("1-1.2").unwrap().to_string(), "1-1.2");
        for bad in ["", "1", "1-", "-1", "0-1", "1-0", "1-1..2", "1-a", "256-1", "1-1.2.3.4.5.6.7.8", "1-1 "]
        {
            assert!(matches!(loc(bad), Err(Error::InvalidLocator(_))), "{bad:?}");
        }
    }

    #[test]
    fn locator_parses_dahdi_tools_paths() {
        let want = Locator::BusAddress { bus: 1, address: 10 };
        assert_eq!(loc("001/010").unwrap(), want);
        assert_eq!(loc("/dev/bus/usb/001/010").unwrap(), want);
        assert_eq!(loc("/proc/bus/usb/001/010").unwrap(), want);
        assert_eq!(want.to_string(), "001/010");
        // Unpadded forms are refused, as dahdi-tools refuses them.
        for bad in ["1/10", "001/10", "01/010", "x001/010", "001/0a0", "999/001"] {
            assert!(matches!(loc(bad), Err(Error::InvalidLocator(_))), "{bad:?}");
        }
    }

    #[test]
    fn locator_parses_serials_and_matches() {
        assert_eq!(loc("serial:00000123").unwrap(), Locator::Serial("00000123".into()));
        assert_eq!(loc("usb:00000123").unwrap(), Locator::Serial("00000123".into()));
        assert!(loc("serial:").is_err());
        let a = Astribank {
            model: classify(0xE4E4, 0x1162).unwrap(),
            vendor_id: 0xE4E4,
            product_id: 0x1162,
            bcd_device: 0x0101,
            bus: 1,
            address: 10,
            ports: vec![1, 2],
            serial: Some("00000123".into()),
            speed: Speed::High,
        };
        assert_eq!((a.bus_path().as_str(), a.dev_path().as_str()), ("1-1.2", "001/010"));
        for yes in ["1-1.2", "usb-1-1.2", "001/010", "serial:00000123", "usb:00000123"] {
            assert!(a.matches(&loc(yes).unwrap()), "{yes}");
        }
        for no in ["1-1", "1-1.2.1", "2-1.2", "001/011", "serial:00000124"] {
            assert!(!a.matches(&loc(no).unwrap()), "{no}");
        }
        let no_serial = Astribank { serial: None, ..a };
        assert!(!no_serial.matches(&loc("serial:00000123").unwrap()));
    }
}
