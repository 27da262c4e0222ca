//! Middleware: transports that wrap any [`Transport`](crate::Transport) and are themselves
//! transports (smoltcp's `phy::Tracer`, `FaultInjector`, `PcapWriter`).
//!
//! - [`Tracer`]: logs every transfer at `trace` level with its packets decoded.
//! - [`FaultInjector`]: seeded drop, corrupt, delay, stall and disconnect.
//! - [`PcapWriter`]: records every transfer as a Linux usbmon pcap file (link type 220) that
//!   Wireshark and `tshark` open; [`PcapReader`] parses such files (also `tshark -i usbmonN`
//!   captures of real hardware) and [`PcapReplay`] plays one back as a transport;
//!   [`usbmon`] is the sans-IO record codec they share.
//! - [`PcapSink`]: one capture shared by the transports of successive devices (a cold
//!   bring-up re-enumerates twice), as `usbmon` records a whole bus; [`PcapSession`] replays
//!   such a capture device after device.
//!
//! They stack: `Tracer::new(FaultInjector::new(PcapWriter::new(backend, file)?, seed))` records
//! what crossed the wire, injects faults above it, and logs what the driver saw.

mod fault_injector;
#[doc(hidden)]
pub mod fuzzing;
mod pcap_reader;
mod pcap_sink;
mod pcap_writer;
mod replay;
mod tracer;
pub mod usbmon;

pub use fault_injector::{FaultInjector, FaultStats, Faults};
pub use pcap_reader::{PcapError, PcapReader, Record};
pub use pcap_sink::PcapSink;
pub use pcap_writer::{Clock, PcapWriter, system_clock};
pub use replay::{OutCheck, PcapReplay, PcapSession, ReplayStats};
pub use tracer::{Decoded, TRACE_TARGET, Tracer};
