//! Middleware: transports that wrap any [`Transport`](crate::Transport) and are themselves
//! transports (smoltcp's `phy::Tracer`, `FaultInjector`, `PcapWriter`).
//!
//! - [`Tracer`]: logs every transfer at `trace` level with its packets decoded.
//! - [`FaultInjector`]: seeded drop, corrupt, delay, stall and disconnect.
//! - [`PcapWriter`]: records every transfer as a Linux usbmon pcap file (link type 220) that
//!   Wireshark and `tshark` open; [`PcapReader`] parses such files (also `tshark -i usbmonN`
//!   captures of real hardware);
//!   [`usbmon`] is the sans-IO record codec they share.

mod fault_injector;
mod pcap_reader;
mod pcap_writer;
mod tracer;
pub mod usbmon;

pub use fault_injector::{FaultInjector, FaultStats, Faults};
pub use pcap_reader::{PcapError, PcapReader, Record};
pub use pcap_writer::{Clock, PcapWriter, system_clock};
pub use tracer::{Decoded, TRACE_TARGET, Tracer};
