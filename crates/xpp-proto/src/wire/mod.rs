//! The XPP data interface (interface 0): packets, transfers and typed messages.
//!
//! See xpp-protocol.md §3–§9.
// SKELETON: header and errors are in place; messages, deframer and framer are filled in by the
// wire work.

mod error;
mod header;

pub use error::WireError;
pub use header::{Address, HEADER_LEN, Header, MAX_PACKET_LEN, Opcode, Packet};

pub(crate) fn fuzz_transfer(data: &[u8]) {
    if let Ok(p) = Packet::new_checked(data) {
        let _ = Header::parse(&p);
    }
}
