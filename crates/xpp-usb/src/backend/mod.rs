//! The USB backends: one folder each, every one a [`Transport`](crate::Transport).
//!
//! - [`nusb`] (feature `nusb`, the default): usbfs through the pure-Rust nusb crate, plus
//!   listing Astribanks and the hotplug stream;
//! - `rusb` (feature `rusb`): libusb's asynchronous API through rusb;
//! - [`usbip`]: a USB/IP client over TCP, and the sans-IO protocol codec the emulator's
//!   server shares.
//!
//! Backends depend on the crate's shared modules (the transport trait, device info, the
//! error, [`discovery`](crate::discovery)) and never on each other. Outside `backend`, only
//! the crate root's re-exports and the crate [`Error`](crate::Error), which carries the USB/IP
//! codec's [`CodecError`](usbip::CodecError), name a backend.

#[cfg(feature = "nusb")]
pub mod nusb;
#[cfg(feature = "rusb")]
pub mod rusb;
pub mod usbip;
