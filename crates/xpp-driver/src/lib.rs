//! # xpp-driver: the IO edge of the host stack
//!
//! The driver: devices brought up, one run-loop thread per device, and the PBX-facing API.
//! This is the one crate above the transports that reads the clock, blocks and spawns
//! threads (the quinn side of the quinn-proto / quinn split): the sans-IO cores below it are
//! `xpp-bringup` (bring-up) and `xpp-span` (the spans, channels and the per-bus core).
//!
//! [`Driver`] owns the devices. [`Driver::open`] runs the bring-up ([`xpp_bringup`]) on a
//! device and [`Driver::attach`] takes a device that is already up; either builds the
//! device's [`XbusCore`](xpp_span::xbus::XbusCore) (spans and channels numbered across devices) and starts its run loop:
//!
//! - it keeps [`DriverOptions::in_transfers`] bulk IN transfers queued on the data endpoint;
//! - each IN completion goes to [`XbusCore::handle_in_transfer`](xpp_span::xbus::XbusCore::handle_in_transfer) (decode, route, and on a
//!   tick-bearing frame the host tick: PCM_WRITE round and paced commands);
//! - when no IN arrives before [`XbusCore::poll_timeout`](xpp_span::xbus::XbusCore::poll_timeout), [`XbusCore::handle_timeout`](xpp_span::xbus::XbusCore::handle_timeout) runs;
//! - after each input, every OUT transfer of [`XbusCore::poll_transmit`](xpp_span::xbus::XbusCore::poll_transmit) is submitted on the
//!   OUT endpoint (buffers are recycled from OUT completions, IN buffers are resubmitted), and
//!   the bus events go to the [`DriverEvent`] channel (a crossbeam channel, [`Driver::events`]);
//! - a transfer that fails with [`TransferError::Disconnected`](xpp_usb::TransferError) is a
//!   surprise removal: REMOVED to every channel, [`DriverEvent::DeviceRemoved`], the thread
//!   exits without waiting for anything; [`Driver::close`] is the orderly stop (SYNC_SOURCE
//!   NONE goes out, then the thread is joined).
//!
//! The PBX side takes `&self` from any thread: [`Driver::spans`], [`Driver::channels`],
//! [`Driver::configure_chan`], [`Driver::set_hook`], [`Driver::read_chunk`] /
//! [`Driver::write_chunk`] (non-blocking), [`Driver::read_chunk_blocking`] and
//! [`Driver::wait_tick`] (block until the device's next tick, on a condition variable),
//! [`Driver::alarms`]. Each device's core sits behind its own mutex, held only for the core
//! call itself (never across a transport call or a channel send).
//!
//! # Time
//!
//! One [`Clock`] per driver, given to [`Driver::new`]: bring-up ([`Driver::open`]), the run
//! loops and the PBX calls all read it, so they share one epoch. On hardware it is the
//! [`SystemClock`] (the one place where wall time becomes an [`Instant`](xpp_proto::Instant)); tests and
//! simulations hand in an emulator (`xpp_emu::Emulator` is a [`Clock`] over its virtual time).
//!
//! # Timing master
//!
//! The driver runs the master-timing election of docs/reference/xpp-protocol.md §7.4 over its devices
//! ([`xpp_span::sync::SyncElection`]) whenever a device is attached, removed or closed and
//! after [`Driver::apply_system_conf`] / [`Driver::set_timing_priority`]: the elected device
//! ([`Driver::sync_master`]) gets SYNC_SOURCE(AB), every other one its default (PLL, or AB
//! with a PRI/BRI unit), and each PLL device's drift loop is fed, every tick, the master's
//! latest tick ([`XbusCore::set_sync_reference`](xpp_span::xbus::XbusCore::set_sync_reference)).
//!
//! # Pacing
//!
//! [`Pacing::FreeRunning`] (real devices): the loop follows the device and never waits for
//! the PBX. [`Pacing::Lockstep`] (virtual-clock simulations): after each tick the loop waits
//! until a PBX thread has finished with it, i.e. calls one of the blocking methods
//! ([`Driver::wait_tick`], [`Driver::read_chunk_blocking`]); with an emulator in
//! `ClockMode::AutoAdvance` (whose clock moves only while the loop waits for a transfer) a
//! tick-driven PBX then sees every tick, at a reproducible virtual time.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

// Modules in dependency order: each uses only those above it.
#[cfg(unix)]
pub mod control;
mod driver;
mod election;
mod error;
mod event;
mod info;
mod mgmt;
mod options;
mod run_loop;
mod shared;
mod supervisor;
mod target;
mod twinstar;

#[cfg(unix)]
pub use control::ControlSocket;
/// crossbeam-channel, whose [`Receiver`] [`Driver::events`] returns (for `select!` and the
/// error types).
pub use crossbeam_channel as channel;
pub use driver::{Driver, bus_setup};
pub use error::{DriverError, ErrorCode};
pub use event::{DeviceId, DriverEvent, Receiver};
pub use info::{ChanInfo, DeviceStats, SpanInfo};
pub use options::{DriverOptions, HOOK_WAIT, Pacing};
pub use supervisor::{Supervisor, SupervisorOptions, SupervisorStatus};
pub use target::Target;
pub use twinstar::{Hooks, TwinStarHost, TwinStarOptions, TwinStarStatus, layout_file};
/// The TwinStar controller that [`TwinStarHost`] runs (sans-IO, `xpp-twinstar`).
pub use xpp_twinstar as tws;
/// The clock a driver runs on (the stack's one clock, from `xpp-usb`).
pub use xpp_usb::{Clock, SystemClock};
