//! # xpp-proto: the bytes that cross the Astribank's USB cable
//!
//! This crate turns bytes into typed messages and back, for both USB interfaces of a Xorcom
//! Astribank, and reads firmware images. It does no IO, reads no clock and starts no threads:
//! callers hand in byte slices and [`time::Instant`]s (the one reader, [`input::read_capped`],
//! reads a caller's [`std::io::Read`] with a size cap and opens nothing).
//!
//! - [`wire`]: the XPP data interface (interface 0): packet header, deframing of one USB
//!   transfer, every global and card opcode, PCM rounds, framing into 512-byte transfers.
//! - [`mgmt`]: the management interface (interface 1): xtalk framing, every MPP command and reply,
//!   status codes, and a sans-IO request/reply [`mgmt::Session`].
//! - [`firmware`]: the Intel-HEX variant of Astribank firmware files, and the load sequences
//!   (EZ-USB FX2 RAM download, FPGA over MPP, PIC and echo canceller over the data interface).
//! - [`time`]: microsecond [`time::Instant`]/[`time::Duration`] for sans-IO code.
//! - [`timer`]: [`timer::TimerTable`], the deadlines of a sans-IO core indexed by its own timer
//!   enum ([`timer_enum!`]).
//! - [`input`]: [`input::read_capped`], the workspace's bounded whole-input reader for files,
//!   pipes and standard input.
//!
//! Contract: every decoder accepts arbitrary bytes and returns an error naming the structure
//! and the byte offset (or HEX line) instead of panicking; nothing allocates in proportion to
//! untrusted length fields. Wire facts come from `docs/reference/xpp-protocol.md` and
//! `docs/reference/mpp-twinstar-firmware.md`; section numbers in the docs refer to those references.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod macros;

pub mod codec;
pub mod firmware;
#[doc(hidden)]
pub mod fuzzing;
pub mod input;
pub mod mgmt;
pub mod time;
pub mod timer;
pub mod wire;

pub use time::{Duration, Instant};

/// Any error of this crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Data-interface decoding or encoding.
    #[error(transparent)]
    Wire(#[from] wire::WireError),
    /// Management-interface decoding, encoding or exchange.
    #[error(transparent)]
    Mgmt(#[from] mgmt::MgmtError),
    /// Firmware file parsing or loading.
    #[error(transparent)]
    Firmware(#[from] firmware::FirmwareError),
}
