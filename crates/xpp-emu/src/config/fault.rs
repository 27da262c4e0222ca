//! What fault injection is configured with (MODEL.md FAULT rows): the transfer
//! [`FaultRule`]s and the [`ScheduledFault`]s of [`CoreConfig`](super::CoreConfig). The engine
//! that applies them is [`fault`](crate::fault).

use xpp_proto::{Duration, Instant};

/// Which transfers a rule looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FaultEndpoint {
    /// One endpoint address (e.g. 0x86).
    Ep(u8),
    /// Every IN endpoint.
    In,
    /// Every OUT endpoint.
    Out,
    /// Every bulk endpoint.
    Any,
}

impl FaultEndpoint {
    /// Whether endpoint address `ep` is one of those selected.
    pub(crate) fn matches(self, ep: u8) -> bool {
        match self {
            Self::Ep(e) => e == ep,
            Self::In => ep & 0x80 != 0,
            Self::Out => ep & 0x80 == 0,
            Self::Any => true,
        }
    }
}

/// When a matching transfer is hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FaultTrigger {
    /// Every matching transfer.
    Always,
    /// The n-th, 2n-th, … matching transfer (n ≥ 1; 0 never fires).
    EveryNth(u32),
    /// Each matching transfer with probability `p / 1_000_000`.
    PerMillion(u32),
}

/// What a rule does to a transfer it hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FaultAction {
    /// FAULT-2: OUT: the host sees success, the device never sees it. IN: discarded before
    /// the host sees it.
    Drop,
    /// FAULT-3: flip this many random bits.
    FlipBits(u8),
    /// FAULT-3: set the byte at `offset` (if present) to `value`.
    SetByte {
        /// Byte offset in the transfer.
        offset: u16,
        /// New value.
        value: u8,
    },
    /// FAULT-4: keep at most this many bytes.
    Truncate(u16),
    /// FAULT-4: remove this many bytes from the end.
    TruncateBy(u16),
    /// FAULT-5: deliver later by this much; later transfers on the endpoint wait behind it.
    Delay(Duration),
    /// FAULT-6: deliver twice.
    Duplicate,
    /// FAULT-7: halt the endpoint (the transfer is lost) until CLEAR_FEATURE(ENDPOINT_HALT)
    /// or the end of the rule's window.
    Stall,
}

/// One transfer fault rule (FAULT-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FaultRule {
    /// USB port, or every port.
    pub port: Option<u8>,
    /// Endpoint selection.
    pub endpoint: FaultEndpoint,
    /// Active in `[from, until)` only, if set.
    pub window: Option<(Instant, Instant)>,
    /// Only transfers whose opcode is this: byte 4 on the MPP endpoints (0x04, 0x88), byte 2
    /// (the first packet's opcode) on the data endpoints.
    pub opcode: Option<u8>,
    /// When it fires.
    pub trigger: FaultTrigger,
    /// What it does.
    pub action: FaultAction,
}

impl FaultRule {
    /// A rule that always applies `action` to every transfer on `endpoint` of every port.
    pub const fn new(endpoint: FaultEndpoint, action: FaultAction) -> Self {
        Self { port: None, endpoint, window: None, opcode: None, trigger: FaultTrigger::Always, action }
    }

    /// Restricts the rule to `port`.
    #[must_use]
    pub const fn on_port(mut self, port: u8) -> Self {
        self.port = Some(port);
        self
    }

    /// Sets the trigger.
    #[must_use]
    pub const fn when(mut self, trigger: FaultTrigger) -> Self {
        self.trigger = trigger;
        self
    }

    /// Restricts the rule to `[from, until)`.
    #[must_use]
    pub const fn during(mut self, from: Instant, until: Instant) -> Self {
        self.window = Some((from, until));
        self
    }

    /// Restricts the rule to transfers carrying `opcode`.
    #[must_use]
    pub const fn with_opcode(mut self, opcode: u8) -> Self {
        self.opcode = Some(opcode);
        self
    }
}

/// A fault at a given time (FAULT-8..10, FAULT-12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ScheduledFault {
    /// FAULT-8: pull port `port`'s cable at `at` and plug it back after `duration`.
    Unplug {
        /// The port.
        port: u8,
        /// When.
        at: Instant,
        /// For how long.
        duration: Duration,
    },
    /// FAULT-9: power the host of port `port` off at `at`, on again after `duration`.
    PowerOff {
        /// The port.
        port: u8,
        /// When.
        at: Instant,
        /// For how long.
        duration: Duration,
    },
    /// FAULT-10: device power off at `at`, on after `off_for` (LOAD-13).
    PowerCycle {
        /// When.
        at: Instant,
        /// For how long.
        off_for: Duration,
    },
    /// FAULT-10: a device reset at `at`, as the MPP RESET command (LOAD-11).
    DeviceReset {
        /// When.
        at: Instant,
    },
    /// A USB bus reset of port `port` at `at` (USB-15).
    BusReset {
        /// The port.
        port: u8,
        /// When.
        at: Instant,
    },
    /// FAULT-12: a spontaneous renumeration at `at` (USB-17, same stage).
    Renumerate {
        /// When.
        at: Instant,
    },
    // Decision: the bytes of an odd-sized IN transfer are 0x00: a zero `len` field is what a
    // host deframer must reject, and a fixed filler keeps the fault free of random draws.
    /// FAULT-12: an IN transfer of `len` bytes on endpoint 0x86 of the active port at `at`
    /// (0 = a zero-length packet; over 512 = more than the host's buffer), in a running
    /// session only. The bytes are 0x00.
    InTransfer {
        /// When.
        at: Instant,
        /// Its length in bytes.
        len: u16,
    },
    /// FAULT-11, FAULT-12: a data-interface fault at `at` (ignored outside stage 11x2).
    Data {
        /// When.
        at: Instant,
        /// Which.
        fault: DataFault,
    },
}

/// A fault of the data interface (FAULT-11 line faults, FAULT-12 protocol faults), scheduled
/// with [`ScheduledFault::Data`] or applied at once with
/// [`DataInterface::inject`](crate::data::DataInterface::inject).
///
/// Random choices (jitter, bounce durations) come from [`SplitMix64`](crate::fault::SplitMix64) streams derived from
/// `DeviceConfig::seed` and the fault's time or port, so a seed replays them exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DataFault {
    // Decision: ERROR_CODE/NULL_REPLY use address 0 and the copy is the last command packet:
    // the reference leaves the address and the "offending packet" unspecified (XP §6.7, §13.7).
    /// FAULT-12: an ERROR_CODE packet (address 0) in its own IN transfer, carrying a copy of
    /// the last command packet the host sent (at most 32 bytes; none before the first).
    ErrorCode {
        /// `category_code`.
        category: u8,
        /// `errorbits`.
        errorbits: u8,
    },
    /// FAULT-12: a NULL_REPLY packet (address 0) in its own IN transfer.
    NullReply,
    /// FAULT-12: the next SYNC_REPLY is not sent (the SYNC_SOURCE still takes effect).
    OmitSyncReply,
    /// FAULT-12: the next `ticks` ticks emit no PCM round (the device still runs them).
    SkipPcm {
        /// How many.
        ticks: u32,
    },
    /// FAULT-12: the next `ticks` ticks happen up to `max_us` µs early or late (uniform,
    /// seeded; clamped to 499 µs so ticks stay in order); the tick grid itself does not move.
    TickJitter {
        /// Largest offset in µs.
        max_us: u32,
        /// How many ticks.
        ticks: u32,
    },
    /// FAULT-11: from now on every hook edge of the phone on FXS port (`unit`, `port`)
    /// bounces: the contact flips back and forth `bounces` times, each contact state lasting
    /// 1–5 ms (seeded), before it settles. 0 turns bouncing off.
    HookBounce {
        /// The FXS unit.
        unit: u8,
        /// The port.
        port: u8,
        /// Bounces per edge.
        bounces: u8,
    },
    /// FAULT-11: the next D-channel frame the far end of BRI port (`unit`, `port`) sends
    /// toward the host arrives damaged: aborted (status 0xFF) or with a bad FCS (the FCS
    /// inverted, status 0x01).
    BriBadFrame {
        /// The BRI unit.
        unit: u8,
        /// The port.
        port: u8,
        /// Abort (0xFF) rather than bad FCS (0x01).
        abort: bool,
    },
}

impl ScheduledFault {
    /// When it starts.
    pub const fn at(&self) -> Instant {
        match *self {
            Self::Unplug { at, .. }
            | Self::PowerOff { at, .. }
            | Self::PowerCycle { at, .. }
            | Self::DeviceReset { at }
            | Self::BusReset { at, .. }
            | Self::Renumerate { at }
            | Self::InTransfer { at, .. }
            | Self::Data { at, .. } => at,
        }
    }
}
