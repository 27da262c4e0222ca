//! # xpp-span: DAHDI-compatible spans and channels
//!
//! The top of the host stack: what PBX software sees. This first part is pure (sans-IO):
//! no clock reads, no threads, no IO except [`sysconf::parse_file`]. Callers hand in
//! [`Instant`]s; the run loop that owns a transport comes later and drives these types.
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
//!
//! Section numbers (§n) in the docs refer to `dahdi-span-model.md`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod macros;

pub mod alarm;
pub mod chan;
pub mod dahdi;
pub mod events;
pub mod hook;
pub mod pace;
pub mod sync;
pub mod sysconf;

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
}
