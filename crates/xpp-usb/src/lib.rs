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
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod discovery;
mod error;
mod info;
pub mod middleware;
#[cfg(feature = "nusb")]
#[path = "backend/nusb/mod.rs"]
pub mod nusb_backend;
#[cfg(feature = "rusb")]
#[path = "backend/rusb/mod.rs"]
pub mod rusb_backend;
#[cfg(all(test, any(feature = "nusb", feature = "rusb")))]
mod tests_hw;
mod transport;
#[path = "backend/usbip/mod.rs"]
pub mod usbip;

pub use error::Error;
pub use info::{DeviceInfo, EndpointInfo, InterfaceInfo, Speed, TransferType};
#[cfg(feature = "nusb")]
pub use nusb_backend::NusbTransport;
#[cfg(feature = "rusb")]
pub use rusb_backend::RusbTransport;
pub use transport::{Completion, ControlSetup, Direction, TransferError, Transport, endpoint_direction};
pub use usbip::UsbIpTransport;

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
