//! # xpp: a userspace driver for Xorcom Astribank USB telephony channel banks
//!
//! This is the facade crate: it re-exports the public API of the workspace crates.
//!
//! - [`proto`]: the wire formats (data interface, management interface, firmware files).
//! - [`usb`]: the [`usb::Transport`] trait every backend implements.
//! - [`emu`]: the emulated Astribank (device model, in-process transport, scenarios).
//! - [`span`]: DAHDI-compatible spans and channels, bring-up, and the driver
//!   ([`driver::Driver`]): run loops and the PBX-facing API.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub use xpp_bringup as bringup;
pub use xpp_driver as driver;
#[cfg(feature = "emulator")]
pub use xpp_emu as emu;
pub use xpp_proto as proto;
pub use xpp_proto::{Duration, Instant};
pub use xpp_span as span;
pub use xpp_usb as usb;
