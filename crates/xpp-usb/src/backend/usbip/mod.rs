//! USB/IP: the protocol codec ([`codec`], sans-IO, both directions) and a client
//! [`Transport`](crate::Transport) over TCP ([`UsbIpTransport`]).
//!
//! The codec is our own rather than the `usbip` crate's: that crate is a server-side device
//! simulator with its own device model and handler trait, handles one URB at a time per
//! connection, cannot keep an IN URB pending, and pulls in rusb and nusb unconditionally;
//! xpp needs a client, and a server (in `xpp-emu`) that keeps IN URBs queued and really
//! cancels on UNLINK. A sans-IO codec serves both.

pub mod client;
pub mod codec;
pub(crate) mod descriptors;

pub use client::{DEFAULT_DEADLINE, UsbIpTransport, list_devices, list_devices_within, map_status};
pub use codec::CodecError;
pub use descriptors::parse_configuration;

#[cfg(test)]
mod hostile;
#[cfg(test)]
mod tests;
