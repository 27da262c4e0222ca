//! Fault injection between the device model and each port's host side (MODEL.md FAULT rows).
//!
//! The fault types are plain configuration, defined in [`config`](crate::config) and
//! re-exported here; this module applies them. Two kinds of faults:
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

pub use crate::config::{DataFault, FaultAction, FaultEndpoint, FaultRule, FaultTrigger, ScheduledFault};

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
