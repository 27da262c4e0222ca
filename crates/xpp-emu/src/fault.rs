//! Fault injection between the device model and each port's host side (MODEL.md FAULT rows).
//!
//! Two kinds of faults:
//!
//! - [`FaultRule`]s act on bulk transfers as they cross the cable (FAULT-1..7): drop, corrupt,
//!   truncate, delay, duplicate, stall. A rule matches by port, endpoint, time window and
//!   opcode, and fires always, every n-th match, or with a probability.
//! - [`ScheduledFault`]s happen at a given time (FAULT-8..12): unplug, host power off, device
//!   power cycle, device reset, bus reset, renumeration, an odd-sized IN transfer, and the
//!   data-interface faults of [`DataFault`] (protocol and line faults), which the device core
//!   hands to the data interface when they are due.
//!
//! Reproducibility (FAULT-1): each rule owns a [`SplitMix64`] stream seeded from
//! (`DeviceConfig::seed`, rule index) and draws exactly one number per candidate transfer, in
//! transfer order. Equal seed and equal inputs give identical outcomes, and adding a rule does
//! not change the draws of the others.
// Decision: the generator is SplitMix64 written out here (the published constants of Steele,
// Lea and Flood 2014), not a PRNG crate: MODEL.md FAULT-1 fixes the algorithm so that a seed in
// a bug report replays the same faults forever, which a dependency's generator upgrade could
// silently break; the whole generator is five lines.

use xpp_proto::{Duration, Instant};

/// The SplitMix64 generator (FAULT-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator starting from `seed`.
    pub const fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The stream of rule `index` under device seed `seed`.
    pub const fn for_rule(seed: u64, index: usize) -> Self {
        let mut g = Self::new(seed ^ (index as u64).wrapping_mul(0xD1B5_4A32_D192_ED03));
        g.next_u64();
        g
    }

    /// The next 64 random bits.
    pub const fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

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
    fn matches(self, ep: u8) -> bool {
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
/// Random choices (jitter, bounce durations) come from [`SplitMix64`] streams derived from
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

/// What happened to one transfer.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    /// Copies to deliver (none = dropped, two = duplicated), with their delay.
    pub(crate) deliveries: Vec<(Vec<u8>, Duration)>,
    /// The endpoint is to be halted; `Some(until)` when the rule's window ends.
    pub(crate) stall: Option<Option<Instant>>,
    /// The rules that fired: (rule index, action).
    pub(crate) applied: Vec<(usize, FaultAction)>,
}

/// The rules of one device with their random streams and match counters.
#[derive(Debug, Clone)]
pub(crate) struct FaultEngine {
    rules: Vec<(FaultRule, SplitMix64, u64)>,
}

impl FaultEngine {
    pub(crate) fn new(rules: &[FaultRule], seed: u64) -> Self {
        Self {
            rules: rules.iter().enumerate().map(|(i, r)| (*r, SplitMix64::for_rule(seed, i), 0)).collect(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Runs `data` (a transfer on `ep` of `port` at `now`) through every rule in order.
    pub(crate) fn apply(&mut self, now: Instant, port: u8, ep: u8, data: Vec<u8>) -> Outcome {
        let mut out = Outcome::default();
        let mut data = data;
        let mut delay = Duration::ZERO;
        let mut copies = 1usize;
        for (index, (rule, rng, count)) in self.rules.iter_mut().enumerate() {
            if rule.port.is_some_and(|p| p != port) || !rule.endpoint.matches(ep) {
                continue;
            }
            if rule.window.is_some_and(|(from, until)| now < from || now >= until) {
                continue;
            }
            if let Some(op) = rule.opcode {
                let at = if ep & 0x7F == 0x04 || ep == 0x88 { 4 } else { 2 };
                if data.get(at) != Some(&op) {
                    continue;
                }
            }
            // FAULT-1: one draw per candidate transfer, fired or not.
            let draw = rng.next_u64();
            *count += 1;
            let fire = match rule.trigger {
                FaultTrigger::Always => true,
                FaultTrigger::EveryNth(n) => n != 0 && *count % u64::from(n) == 0,
                FaultTrigger::PerMillion(p) => draw % 1_000_000 < u64::from(p),
            };
            if !fire {
                continue;
            }
            out.applied.push((index, rule.action));
            let mut sub = SplitMix64::new(draw);
            match rule.action {
                FaultAction::Drop => {
                    copies = 0;
                    break;
                }
                FaultAction::FlipBits(k) => {
                    let bits = data.len() as u64 * 8;
                    if bits != 0 {
                        for _ in 0..k {
                            let b = sub.next_u64() % bits;
                            data[(b / 8) as usize] ^= 1 << (b % 8);
                        }
                    }
                }
                FaultAction::SetByte { offset, value } => {
                    if let Some(b) = data.get_mut(usize::from(offset)) {
                        *b = value;
                    }
                }
                FaultAction::Truncate(n) => data.truncate(usize::from(n)),
                FaultAction::TruncateBy(n) => data.truncate(data.len().saturating_sub(usize::from(n))),
                FaultAction::Delay(d) => delay += d,
                FaultAction::Duplicate => copies = copies.saturating_mul(2).min(16),
                FaultAction::Stall => {
                    out.stall = Some(rule.window.map(|(_, until)| until));
                    copies = 0;
                    break;
                }
            }
        }
        for _ in 0..copies {
            out.deliveries.push((data.clone(), delay));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_reference_values() {
        // The well-known first outputs for seed 0 (Vigna's splitmix64.c).
        let mut g = SplitMix64::new(0);
        assert_eq!(g.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(g.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn same_seed_same_outcome_and_rules_are_independent() {
        let flip = FaultRule::new(FaultEndpoint::Any, FaultAction::FlipBits(3));
        let drop = FaultRule::new(FaultEndpoint::Ep(0x99), FaultAction::Drop)
            .when(FaultTrigger::PerMillion(500_000));
        let run = |rules: &[FaultRule], seed| {
            let mut e = FaultEngine::new(rules, seed);
            (0..20).map(|i| e.apply(Instant::ZERO, 0, 0x02, vec![i; 8]).deliveries).collect::<Vec<_>>()
        };
        assert_eq!(run(&[flip], 1), run(&[flip], 1));
        assert_ne!(run(&[flip], 1), run(&[flip], 2));
        // A later rule that never matches changes nothing for the first.
        assert_eq!(run(&[flip], 7), run(&[flip, drop], 7));
    }

    #[test]
    fn actions() {
        let t0 = Instant::ZERO;
        let mut e = FaultEngine::new(
            &[
                FaultRule::new(FaultEndpoint::Out, FaultAction::Truncate(3)),
                FaultRule::new(FaultEndpoint::Ep(0x02), FaultAction::Duplicate)
                    .when(FaultTrigger::EveryNth(2)),
                FaultRule::new(FaultEndpoint::In, FaultAction::Drop).with_opcode(0x91),
            ],
            0,
        );
        assert_eq!(e.apply(t0, 0, 0x02, vec![1, 2, 3, 4]).deliveries.len(), 1);
        let o = e.apply(t0, 0, 0x02, vec![1, 2, 3, 4]);
        assert_eq!(o.deliveries, vec![(vec![1, 2, 3], Duration::ZERO); 2]);
        assert!(e.apply(t0, 0, 0x88, vec![0, 0, 0, 0, 0x91]).deliveries.is_empty());
        assert_eq!(e.apply(t0, 0, 0x88, vec![0, 0, 0, 0, 0x80]).deliveries.len(), 1);
    }
}
