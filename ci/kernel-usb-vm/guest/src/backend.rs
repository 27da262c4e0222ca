//! The two backends under test behind one small interface: list Astribank-family devices as
//! the backend's own library enumerates them, and open one as a [`Transport`].

use xpp_usb::Transport;
use xpp_usb::discovery::{Locator, Model};

/// The `nusb.in-rate` floor (IN transfers/s).
// Decision: 200/s. Measured in the TCG guest on the 2-core CI machine: 488-997/s depending on
// the load of the host machine (the paced device follows the guest; the real-time device's
// 1000/s is the ceiling). A backend that keeps only one transfer in flight manages about one
// per USB/IP round trip (14-50 ms measured for an MPP exchange here: 20-70/s), so 200/s
// still tells a pipelined backend from a serialised one, with a margin of more than 2 on
// both sides; a tighter floor would fail on load, not on a bug.
const NUSB_IN_FLOOR: u32 = 200;
/// The `rusb.in-rate` floor (IN transfers/s): nusb's, since the rusb backend keeps its
/// transfers in flight with libusb's asynchronous API.
// Decision: the same floor as nusb (the synchronous rusb backend, one transfer in flight per
// endpoint, measured 148-376/s here; the asynchronous one 880-1000/s).
#[cfg(feature = "rusb")]
const RUSB_IN_FLOOR: u32 = NUSB_IN_FLOOR;

/// A device as a backend lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Found {
    /// `idVendor`.
    pub(crate) vendor_id: u16,
    /// `idProduct`.
    pub(crate) product_id: u16,
    /// Family and stage.
    pub(crate) model: Model,
    /// Bus number.
    pub(crate) bus: u8,
    /// Device address.
    pub(crate) address: u8,
    /// Kernel bus path (`1-1`).
    pub(crate) bus_path: String,
}

/// nusb or rusb.
pub(crate) trait Backend {
    /// `nusb` or `rusb`.
    fn name(&self) -> &'static str;
    /// Every Astribank-family device the backend sees now.
    fn list(&self) -> Result<Vec<Found>, String>;
    /// Opens the device `loc` names (claiming interfaces 0 and, if present, 1), as a
    /// user's opener does (`xpp_usb::NusbTransport::open` / `RusbTransport::open`).
    fn open_locator(&self, loc: &Locator) -> Result<Box<dyn Transport>, String>;
    /// Opens `f` by its bus number and address.
    fn open(&self, f: &Found) -> Result<Box<dyn Transport>, String> {
        self.open_locator(&Locator::BusAddress { bus: f.bus, address: f.address })
    }
    /// The least IN transfers/s on `0x86` (10 queued) the `in-rate` check accepts.
    fn in_rate_floor(&self) -> u32;
}

/// The nusb backend, listing through its own `xpp_usb::backend::nusb::list`.
pub(crate) struct Nusb;

impl Backend for Nusb {
    fn name(&self) -> &'static str {
        "nusb"
    }

    fn list(&self) -> Result<Vec<Found>, String> {
        let found = xpp_usb::backend::nusb::list().map_err(|e| e.to_string())?;
        Ok(found
            .into_iter()
            .map(|a| Found {
                vendor_id: a.vendor_id,
                product_id: a.product_id,
                model: a.model,
                bus: a.bus,
                address: a.address,
                bus_path: a.bus_path(),
            })
            .collect())
    }

    fn open_locator(&self, loc: &Locator) -> Result<Box<dyn Transport>, String> {
        Ok(Box::new(xpp_usb::NusbTransport::open(loc).map_err(|e| e.to_string())?))
    }

    fn in_rate_floor(&self) -> u32 {
        NUSB_IN_FLOOR
    }
}

/// The rusb (libusb) backend, listing through libusb itself.
#[cfg(feature = "rusb")]
pub(crate) struct Rusb;

#[cfg(feature = "rusb")]
impl Backend for Rusb {
    fn name(&self) -> &'static str {
        "rusb"
    }

    fn list(&self) -> Result<Vec<Found>, String> {
        use rusb::UsbContext;
        let ctx = xpp_usb::RusbTransport::context().map_err(|e| e.to_string())?;
        let devices = ctx.devices().map_err(|e| e.to_string())?;
        let mut found = Vec::new();
        for d in devices.iter() {
            let Ok(desc) = d.device_descriptor() else { continue };
            let Some(model) = xpp_usb::discovery::classify(desc.vendor_id(), desc.product_id()) else {
                continue;
            };
            let ports = d.port_numbers().unwrap_or_default();
            let path: Vec<String> = ports.iter().map(u8::to_string).collect();
            found.push(Found {
                vendor_id: desc.vendor_id(),
                product_id: desc.product_id(),
                model,
                bus: d.bus_number(),
                address: d.address(),
                bus_path: format!("{}-{}", d.bus_number(), path.join(".")),
            });
        }
        found.sort_by(|a, b| a.bus_path.cmp(&b.bus_path));
        Ok(found)
    }

    fn open_locator(&self, loc: &Locator) -> Result<Box<dyn Transport>, String> {
        Ok(Box::new(xpp_usb::RusbTransport::open(loc).map_err(|e| e.to_string())?))
    }

    fn in_rate_floor(&self) -> u32 {
        RUSB_IN_FLOOR
    }
}
