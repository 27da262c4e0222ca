//! # xpp-chan: FXS and FXO line models, sans-IO
//!
//! One state machine per analog port of an Astribank FXS or FXO module ([`FxsLine`],
//! [`FxoLine`]). A line turns the device's messages for its port (SIG_CHANGED bits, register
//! replies) into **raw line facts** ([`Event`]: hook went off at instant *t*, ring signal
//! present, battery lost, polarity reversed, DTMF key down, ...) and turns commands from the
//! span layer (ring with a cadence, reverse polarity, go off-hook, LEDs, message-waiting lamp,
//! on-hook transmission for caller ID) into the register writes of docs/reference/xpp-protocol.md §9.1/§9.2.
//!
//! What a line does **not** do: the DAHDI hook state machines (hook debounce, flash versus
//! hang-up, pulse-digit decoding, DAHDI ring cadences and events) belong to the span core
//! (docs/reference/dahdi-span-model.md §4–§5). A line only applies the chip-level debounces the reference
//! driver applies itself (FXO ring 50 ms, battery and polarity poll confirmation, polarity
//! reversal 40 ms, power denial windows).
//!
//! Contract (quinn-proto style, `STYLE.md` §2): no IO, no clock, no threads. Every input and
//! command takes the caller's [`Instant`]; [`FxsLine::poll_timeout`] / [`FxoLine::poll_timeout`]
//! say when the line next needs [`handle_timeout`](FxsLine::handle_timeout); register commands
//! come out of `poll_transmit` as ready-to-emit [`Repr`](xpp_proto::wire::Repr)s, which the
//! caller paces (docs/reference/xpp-protocol.md §7.5). Device input never panics the line: messages for other
//! addresses or ports, malformed or unexpected replies are ignored.
//!
//! ```
//! use xpp_chan::{ChipType, Event, FxsConfig, FxsLine};
//! use xpp_proto::Instant;
//! use xpp_proto::wire::{Address, Message, Repr, SigChanged};
//!
//! let addr = Address::new(0, 0).unwrap();
//! let t0 = Instant::from_millis(0);
//! let mut line = FxsLine::new(t0, addr, 2, ChipType::Type1, FxsConfig::default());
//! // The phone on port 2 goes off-hook.
//! let sig = SigChanged { status: 1 << 2, toggles: 1 << 2 };
//! line.handle_packet(t0, &Repr::command(addr, Message::SigChanged(sig)));
//! assert_eq!(line.poll_event(), Some(Event::HookChanged { off_hook: true, at: t0 }));
//! assert!(line.wants_pcm());
//! while let Some(cmd) = line.poll_transmit(t0) {
//!     // hand `cmd` to the command queue of the bus
//!     let _ = cmd;
//! }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod bri;
mod common;
pub mod fxo;
pub mod fxs;
pub mod hdlc;
pub mod pri;
#[cfg(test)]
mod test_util;

pub use fxo::{FxoConfig, FxoLine, FxoState};
pub use fxs::{Cadence, ChipType, FxsConfig, FxsLine, FxsState, LineFeed, RingWaveform, Vmwi6Constants};

use xpp_proto::Instant;

/// A raw line fact, for the span core to turn into DAHDI events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Event {
    /// FXS: the phone's hook state changed (SIG_CHANGED or the hook-state read). The first
    /// state the line learns is reported too.
    HookChanged {
        /// `true` = off-hook.
        off_hook: bool,
        /// When the device reported it.
        at: Instant,
    },
    /// FXO: ring signal present / absent, after the 50 ms persistence debounce.
    RingDetected {
        /// `true` = ring signal present.
        on: bool,
        /// When the debounce confirmed it.
        at: Instant,
    },
    /// FXO: battery (line voltage) detected or lost, from the VBAT polls.
    Battery {
        /// `true` = battery present.
        present: bool,
        /// When the poll reply confirmed it.
        at: Instant,
    },
    /// FXO: the line's polarity reversed (firmware interrupt, or the VBAT sign when the
    /// firmware option is off).
    PolarityReversed {
        /// When the reversal was confirmed.
        at: Instant,
    },
    /// FXO: loop current lost while off-hook and confirmed (power denial: the far end
    /// disconnected). The line stays off-hook; the span core decides.
    PowerDenial {
        /// When the confirmation window ended.
        at: Instant,
    },
    /// FXS: a DTMF key reported by the chip's detector.
    DtmfDigit {
        /// One of `0123456789*#ABCD`.
        digit: char,
        /// `true` = key down, `false` = key up.
        down: bool,
        /// When the device reported it.
        at: Instant,
    },
    /// FXS type 6: the chip dropped the line feed to open (overheat); the line feed was
    /// written again.
    Overheat {
        /// When the line-feed read showed it.
        at: Instant,
    },
    /// FXO: the hook-register read of a take-over ([`FxoLine::read_hook_state`]) found the
    /// loop closed by the previous host: the model is off hook now, and so must the
    /// channel's tx state be (nothing was written to the line).
    LoopFoundClosed {
        /// When the read answered.
        at: Instant,
    },
}

impl Event {
    /// When the fact was established.
    pub const fn at(&self) -> Instant {
        match *self {
            Self::HookChanged { at, .. }
            | Self::RingDetected { at, .. }
            | Self::Battery { at, .. }
            | Self::PolarityReversed { at }
            | Self::PowerDenial { at }
            | Self::DtmfDigit { at, .. }
            | Self::Overheat { at }
            | Self::LoopFoundClosed { at } => at,
        }
    }
}

/// A front-panel LED of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Led {
    /// The green LED (every chip type).
    Green,
    /// The red LED (FXS type 1 and FXO only).
    Red,
}

/// Why a command was refused. Nothing is sent for a refused command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// FXO off-hook before the VBAT polls have seen battery (docs/reference/xpp-protocol.md §9.2).
    #[error("off-hook refused: no battery detected on the line")]
    NoBattery,
    /// FXS: the command is not allowed while the line is ringing.
    #[error("refused while the line is ringing")]
    Ringing,
    /// FXS: the command is not allowed while the line feed is open.
    #[error("refused while the line feed is open")]
    LineOpen,
    /// FXS: the command is not allowed while the phone is off-hook.
    #[error("refused while the phone is off-hook")]
    OffHook,
    /// A ring cadence that cannot be played.
    #[error("invalid ring cadence: {0}")]
    InvalidCadence(&'static str),
    /// The chip type has no such function.
    #[error("not supported by this chip: {0}")]
    Unsupported(&'static str),
}
