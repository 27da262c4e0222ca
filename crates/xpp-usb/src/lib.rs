//! # xpp-usb: how xpp reaches an Astribank
//!
//! Everything above this crate talks to a device through one small trait, [`Transport`]:
//! queue IN and OUT buffers on bulk endpoints (several in flight), collect their completions,
//! do control transfers, reset, and see a disconnect. Backends implement it: the emulator
//! (`xpp-emu`, in process), nusb and rusb over usbfs, and a USB/IP client. Middleware (tracer,
//! fault injector, pcap writer) wraps any transport and is itself a transport.
//!
//! The trait follows nusb's endpoint queue: buffers are owned `Vec<u8>`s that travel to the
//! backend on submit and come back in a [`Completion`], so a run loop recycles a fixed set of
//! buffers and allocates nothing per transfer.
//!
//! ## Modules
//!
//! Shared by everything, none of them depending on a backend:
//!
//! - the crate root: [`Transport`] with its transfer types ([`Completion`], [`ControlSetup`],
//!   [`TransferError`]), the device description ([`DeviceInfo`], [`Direction`] and the other
//!   descriptor types; a leaf the trait builds on), the crate [`Error`], and the Astribank
//!   endpoint addresses in [`ep`]; the host stack's one [`Clock`] ([`SystemClock`] on
//!   hardware, [`StepClock`] for capture replays; the emulator is one too);
//! - [`discovery`]: pure identity logic: the Astribank family and stage of a USB ID
//!   ([`discovery::classify`]), device addresses ([`discovery::Locator`]), the listed
//!   [`discovery::Astribank`]; no IO.
//!
//! One folder per backend under [`backend`], each a [`Transport`]:
//!
//! - [`backend::nusb`] (feature `nusb`, the default): [`NusbTransport`] over usbfs, and nusb's
//!   listing of Astribanks ([`backend::nusb::list`]) and hotplug stream
//!   ([`backend::nusb::Hotplug`]);
//! - `backend::rusb` (feature `rusb`): `RusbTransport` over libusb;
//! - [`backend::usbip`], also at [`usbip`]: [`UsbIpTransport`], a USB/IP client, and the
//!   sans-IO protocol codec the emulator's server shares.
//!
//! [`middleware`] wraps any transport: tracer, fault injector, usbmon pcap writer and replay.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod backend;
mod clock;
pub mod discovery;
mod error;
mod info;
mod mgmt_call;
pub mod middleware;
#[cfg(all(test, any(feature = "nusb", feature = "rusb")))]
mod tests_hw;
mod transport;

#[cfg(feature = "nusb")]
pub use backend::nusb::NusbTransport;
#[cfg(feature = "rusb")]
pub use backend::rusb::RusbTransport;
pub use backend::usbip;
pub use backend::usbip::UsbIpTransport;
pub use clock::{Clock, StepClock, SystemClock};
pub use error::Error;
pub use info::{DeviceInfo, Direction, EndpointInfo, InterfaceInfo, Speed, TransferType, endpoint_direction};
pub use mgmt_call::{MgmtCallError, mgmt_request};
pub use transport::{Completion, ControlSetup, TransferError, Transport};

/// Endpoint addresses of the Astribank (docs/reference/mpp-twinstar-firmware.md §1.3, docs/reference/xpp-protocol.md §2.2).
pub mod ep {
    /// Data interface (0), bulk OUT: XPP commands and PCM_WRITE.
    pub const DATA_OUT: u8 = 0x02;
    /// Data interface (0), bulk IN: XPP replies and PCM_READ.
    pub const DATA_IN: u8 = 0x86;
    /// Management interface (1), bulk OUT: MPP requests.
    pub const MGMT_OUT: u8 = 0x04;
    /// Management interface (1), bulk IN: MPP replies.
    pub const MGMT_IN: u8 = 0x88;
    /// Interface number of the data (XPP) interface.
    pub const DATA_INTERFACE: u8 = 0;
    /// Interface number of the management (MPP) interface.
    pub const MGMT_INTERFACE: u8 = 1;
}
