//! # xpp-span: DAHDI-compatible spans and channels, sans-IO
//!
//! What PBX software sees of an Astribank, as pure state machines: no clock reads, no threads,
//! no IO except [`sysconf::parse_file`]. Callers hand in [`Instant`]s and bytes and take out
//! bytes, events and deadlines; the driver (`xpp-driver`) owns the transports, the threads and
//! the clock, and drives these types. A crate-local `clippy.toml` (`disallowed-methods`) keeps
//! wall-clock reads, sleeps and thread spawns out.
//!
//! - [`dahdi`]: DAHDI's numeric vocabulary (signalling types, hook signals and commands,
//!   events, alarms, line configuration, laws), every number pinned to the reference.
//! - [`hook`]: the per-channel hook state machines the DAHDI core runs (debounce, flash vs
//!   hang-up, pulse-digit decoding, ring cadence, wink/flash/start, kewl) as a sans-IO
//!   [`hook::HookMachine`].
//! - [`events`]: the 64-deep per-channel event queue and its semantics.
//! - [`alarm`]: span alarms and how they reach channels.
//! - [`chan`]: one channel's signalling core: hook machine + event queue + alarm word.
//! - [`sysconf`]: a parser and validator for DAHDI's `system.conf`.
//! - [`xbus`]: the run-time core of one Astribank's spans ([`xbus::XbusCore`]): spans and
//!   channels laid out from the unit descriptors ([`span`]), IN transfers decoded and routed,
//!   one host tick per device tick with the paced command queue ([`pace`]) and the PCM_WRITE
//!   round ([`pcm`]), surprise removal and shutdown.
//! - [`sync`]: the master-timing election across several buses and the PLL drift loop.
//! - [`timing`]: tick regularity measured the way `dahdi_test` does (accuracy per pass, worst
//!   interval, missed ticks, a histogram), from tick arrival instants.
//! - [`g711`]: A-law / mu-law conversion for the linear chunk accessors.
//!
//! Section numbers (§n) in the docs refer to `docs/reference/dahdi-span-model.md`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod macros;

pub mod alarm;
pub mod chan;
pub mod dahdi;
pub mod events;
pub mod fuzzing;
pub mod g711;
pub mod hook;
pub mod pace;
pub mod pcm;
pub mod span;
pub mod sync;
pub mod sysconf;
pub mod timing;
pub mod xbus;

pub use dahdi::{Alarms, Event, HookCmd, Law, LineConfig, RxSig, Sig, SigCap, SpanType, TxSig};
pub use xpp_proto::{Duration, Instant};

/// Any error of this crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// DAHDI_HOOK refused.
    #[error(transparent)]
    Hook(#[from] hook::HookError),
    /// DAHDI_SETCADENCE refused.
    #[error(transparent)]
    Cadence(#[from] hook::CadenceError),
    /// `system.conf` errors.
    #[error(transparent)]
    Conf(#[from] sysconf::ConfErrors),
    /// A channel operation refused by the bus core.
    #[error(transparent)]
    Chan(#[from] xbus::ChanError),
    /// A span operation refused by the bus core.
    #[error(transparent)]
    Span(#[from] xbus::SpanError),
}
