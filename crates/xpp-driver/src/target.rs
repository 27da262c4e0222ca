//! Where a device is, as one value: what [`Driver::open_target`](crate::Driver::open_target)
//! opens without generics (the C ABI's and the command-line tools' way in).

use std::fmt;
use std::str::FromStr;

use xpp_usb::discovery::Locator;
use xpp_usb::{DeviceInfo, Error, Transport};

/// A device to open: a USB device on this machine (by bus path, `BBB/DDD` or serial, as
/// `lsastribank` prints them), through nusb or libusb, or a device exported by a USB/IP
/// server.
///
/// Its text form (for configuration files, command lines and C callers) is what [`FromStr`]
/// takes and [`Display`](fmt::Display) prints:
///
/// | Text | Target |
/// |---|---|
/// | `1-1.2`, `usb-1-1.2`, `001/010`, `serial:XR0042` | [`Target::Usb`] (nusb) |
/// | `libusb:1-1.2` (any of the forms above after `libusb:`) | [`Target::Libusb`] |
/// | `usbip:127.0.0.1:3240/1-1` | [`Target::UsbIp`] |
///
/// ```
/// use xpp_driver::Target;
/// let t: Target = "usbip:127.0.0.1:3240/1-1".parse().unwrap();
/// assert_eq!(t, Target::UsbIp { server: "127.0.0.1:3240".into(), busid: "1-1".into() });
/// assert_eq!(t.to_string(), "usbip:127.0.0.1:3240/1-1");
/// assert!("libusb:001/010".parse::<Target>().is_ok());
/// assert!("usbip:127.0.0.1:3240".parse::<Target>().is_err()); // no bus id
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Target {
    /// A USB device on this machine, through the nusb backend (usbfs; feature `nusb`).
    Usb(Locator),
    /// A USB device on this machine, through the rusb (libusb) backend (feature `rusb`).
    Libusb(Locator),
    /// A device exported by a USB/IP server.
    UsbIp {
        /// `host:port` of the server (`127.0.0.1:3240`).
        server: String,
        /// The exported device's bus id (`1-1`).
        busid: String,
    },
}

impl Target {
    /// Opens the device once.
    pub fn open(&self) -> Result<Box<dyn Transport>, Error> {
        match self {
            Self::Usb(locator) => open_nusb(locator),
            Self::Libusb(locator) => open_rusb(locator),
            Self::UsbIp { server, busid } => {
                Ok(Box::new(xpp_usb::UsbIpTransport::connect(server.as_str(), busid)?))
            }
        }
    }

    /// Whether the device is there now, without opening it: on this machine's USB buses (a
    /// listing), or in the USB/IP server's device list. For [`Target::Libusb`] without the
    /// nusb backend compiled in, a short open (released at once) is the test.
    pub fn is_present(&self) -> Result<bool, Error> {
        match self {
            Self::UsbIp { server, busid } => {
                Ok(xpp_usb::usbip::list_devices(server.as_str())?.iter().any(|d| d.device.busid == *busid))
            }
            Self::Usb(locator) => listed(locator),
            Self::Libusb(locator) => {
                if cfg!(feature = "nusb") {
                    listed(locator)
                } else {
                    Ok(self.open().is_ok())
                }
            }
        }
    }

    /// The target as a file name (for per-device files such as the TwinStar host's layouts):
    /// its text with every character other than an ASCII letter or digit, `.`, `-` or `_`
    /// as `_` (`usbip:127.0.0.1:3240/1-1` is `usbip_127.0.0.1_3240_1-1`).
    pub fn file_stem(&self) -> String {
        self.to_string()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' })
            .collect()
    }

    /// The same device, named so that it is found again after a re-enumeration: a USB
    /// device by the bus path it was found at (its address changes when its firmware
    /// renumerates it, its physical port does not; a cold device may have no serial yet).
    /// A USB/IP target keeps its bus id, which the server keeps across renumerations.
    pub fn pinned(&self, opened: &DeviceInfo) -> Self {
        let by_path = || opened.location.parse::<Locator>().ok();
        match self {
            Self::Usb(l) => Self::Usb(by_path().unwrap_or_else(|| l.clone())),
            Self::Libusb(l) => Self::Libusb(by_path().unwrap_or_else(|| l.clone())),
            Self::UsbIp { .. } => self.clone(),
        }
    }
}

#[cfg(feature = "nusb")]
fn listed(locator: &Locator) -> Result<bool, Error> {
    Ok(xpp_usb::backend::nusb::list()?
        .iter()
        .any(|a| locator.matches(a.bus, a.address, &a.ports, a.serial.as_deref())))
}

#[cfg(not(feature = "nusb"))]
fn listed(_: &Locator) -> Result<bool, Error> {
    Err(Error::Unavailable("xpp-driver was built without the nusb backend (feature `nusb`)".into()))
}

#[cfg(feature = "nusb")]
fn open_nusb(locator: &Locator) -> Result<Box<dyn Transport>, Error> {
    Ok(Box::new(xpp_usb::NusbTransport::open(locator)?))
}

#[cfg(not(feature = "nusb"))]
fn open_nusb(_: &Locator) -> Result<Box<dyn Transport>, Error> {
    Err(Error::Unavailable("xpp-driver was built without the nusb backend (feature `nusb`)".into()))
}

#[cfg(feature = "rusb")]
fn open_rusb(locator: &Locator) -> Result<Box<dyn Transport>, Error> {
    Ok(Box::new(xpp_usb::RusbTransport::open(locator)?))
}

#[cfg(not(feature = "rusb"))]
fn open_rusb(_: &Locator) -> Result<Box<dyn Transport>, Error> {
    Err(Error::Unavailable("xpp-driver was built without the libusb backend (feature `rusb`)".into()))
}

impl FromStr for Target {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        if let Some(rest) = s.strip_prefix("usbip:") {
            let (server, busid) = rest.rsplit_once('/').ok_or_else(|| Error::InvalidLocator(s.to_owned()))?;
            if server.is_empty() || busid.is_empty() {
                return Err(Error::InvalidLocator(s.to_owned()));
            }
            return Ok(Self::UsbIp { server: server.to_owned(), busid: busid.to_owned() });
        }
        if let Some(rest) = s.strip_prefix("libusb:") {
            return Ok(Self::Libusb(rest.parse()?));
        }
        Ok(Self::Usb(s.parse()?))
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Usb(l) => write!(f, "{l}"),
            Self::Libusb(l) => write!(f, "libusb:{l}"),
            Self::UsbIp { server, busid } => write!(f, "usbip:{server}/{busid}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_forms_round_trip() {
        for s in ["1-1.2", "001/010", "serial:XR0042", "libusb:2-3", "usbip:localhost:3240/1-1"] {
            let t: Target = s.parse().unwrap();
            assert_eq!(t.to_string().parse::<Target>().unwrap(), t, "{s}");
        }
        assert_eq!("usb-1-1.2".parse::<Target>().unwrap().to_string(), "1-1.2");
        for bad in ["", "usbip:", "usbip:/1-1", "usbip:host:1/", "libusb:", "libusb:x", "1-"] {
            assert!(matches!(bad.parse::<Target>(), Err(Error::InvalidLocator(_))), "{bad:?}");
        }
    }

    #[test]
    fn file_stems_are_plain_file_names() {
        let stem = |s: &str| s.parse::<Target>().unwrap().file_stem();
        assert_eq!(stem("usbip:127.0.0.1:3240/1-1"), "usbip_127.0.0.1_3240_1-1");
        assert_eq!(stem("serial:XR0042"), "serial_XR0042");
        assert_eq!(stem("001/010"), "001_010");
        assert_eq!(stem("1-1.2"), "1-1.2");
    }

    #[test]
    fn pinned_follows_the_bus_path() {
        let info = |location: &str| DeviceInfo {
            vendor_id: 0xE4E4,
            product_id: 0x1162,
            bcd_device: 0x0101,
            manufacturer: None,
            product: None,
            serial: None,
            speed: xpp_usb::Speed::High,
            location: location.into(),
            interfaces: Vec::new(),
        };
        let by_address: Target = "001/010".parse().unwrap();
        assert_eq!(by_address.pinned(&info("usb-1-1.2")), "1-1.2".parse().unwrap());
        let rusb: Target = "libusb:serial:X".parse().unwrap();
        assert_eq!(rusb.pinned(&info("usb-2-4")), "libusb:2-4".parse().unwrap());
        // A location that is no bus path keeps the locator as given.
        assert_eq!(by_address.pinned(&info("test")), by_address);
        let usbip: Target = "usbip:127.0.0.1:3240/1-1".parse().unwrap();
        assert_eq!(usbip.pinned(&info("usbip:127.0.0.1:3240/1-1")), usbip);
    }
}
