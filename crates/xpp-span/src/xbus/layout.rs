//! What a bus is built from ([`BusSetup`]), where its numbers start ([`Numbering`]), and the
//! construction of [`XbusCore`] from them: spans, channels, PCM sources.

use std::collections::VecDeque;

use xpp_chan::{FxoConfig, FxoLine, FxsConfig, FxsLine};
use xpp_proto::Instant;
use xpp_proto::wire::pri::PriProtocol;
use xpp_proto::wire::{ALAW_SILENCE, Address, SILENCE_FILL, SyncMode, SyncState, ULAW_SILENCE};

use super::lines::{Line, SpanLine};
use super::tick::OutRing;
use super::{BUS_EVENTS, BusState, Channel, MS, SetupError, TICK_WATCHDOG, XbusCore, XbusStats};
use crate::chan::Chan;
use crate::dahdi::{Law, MAX_CHANNELS, MAX_SPANS, SigCap};
use crate::pace::CommandQueue;
use crate::pcm::PcmXpd;
use crate::span::{ChanKind, Span, UnitSetup, XpdKind, plan};
use crate::sync::DriftLoop;

/// Everything the bring-up hands over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusSetup {
    /// The validated units, in descriptor order.
    pub units: Vec<UnitSetup>,
    /// The sync state the device last reported in SYNC_REPLY (NONE: not ticking yet).
    pub sync: SyncState,
}

impl BusSetup {
    /// A setup from units, device not ticking yet.
    pub fn new(units: Vec<UnitSetup>) -> Self {
        Self { units, sync: SyncState { mode: SyncMode::None, drift: 0 } }
    }
}

/// Where a bus's DAHDI span and channel numbers start (docs/reference/dahdi-span-model.md §1, §2): its spans
/// are numbered consecutively from [`next_span`](Self::next_span), its channels from
/// [`next_chan`](Self::next_chan); [`XbusCore::new`] advances both past the bus.
///
/// [`Numbering::first_fit`] is DAHDI's automatic assignment ("first free span number and
/// first contiguous free channel range"), so a device that is unplugged and plugged back in,
/// or that comes back after a TwinStar jump, gets its old numbers again and `system.conf`
/// still fits it.
// Decision: one device's spans and channels are kept consecutive (DAHDI assigns span by
// span; an Astribank's spans registered together come out consecutive unless a gap splits
// them, and one range per device keeps channel lookup simple). The range chosen is the first
// gap between the devices in use that holds all of them without breaking DAHDI's ordering
// rule (span numbers and channel ranges ascend together).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Numbering {
    next_span: u32,
    next_chan: u32,
}

impl Default for Numbering {
    fn default() -> Self {
        Self::new()
    }
}

impl Numbering {
    /// Span 1, channel 1 next.
    pub const fn new() -> Self {
        Self { next_span: 1, next_chan: 1 }
    }

    /// The next span number to be handed out.
    pub const fn next_span(&self) -> u32 {
        self.next_span
    }

    /// The next channel number to be handed out.
    pub const fn next_chan(&self) -> u32 {
        self.next_chan
    }

    /// Where a bus of `spans` spans and `chans` channels starts, given the span and channel
    /// ranges of the buses in use (in any order; they must not overlap): the lowest gap that
    /// holds both, keeping span numbers and channel ranges in the same order. `None` when
    /// the numbers would exceed DAHDI's limits.
    pub fn first_fit(
        spans: u32,
        chans: u32,
        taken: &[(core::ops::RangeInclusive<u32>, core::ops::RangeInclusive<u32>)],
    ) -> Option<Self> {
        let mut used: Vec<(u32, u32, u32, u32)> =
            taken.iter().map(|(s, c)| (*s.start(), *s.end(), *c.start(), *c.end())).collect();
        used.sort_unstable();
        let (mut span, mut chan) = (1u32, 1u32);
        for &(s_lo, s_hi, c_lo, c_hi) in &used {
            if span.checked_add(spans)? <= s_lo && chan.checked_add(chans)? <= c_lo {
                break;
            }
            span = span.max(s_hi.checked_add(1)?);
            chan = chan.max(c_hi.checked_add(1)?);
        }
        let fits = span + spans - 1 <= MAX_SPANS && chan + chans - 1 <= MAX_CHANNELS;
        (spans > 0 && chans > 0 && fits).then_some(Self { next_span: span, next_chan: chan })
    }
}

impl XbusCore {
    fn plans(setup: &BusSetup) -> Result<Vec<crate::span::XpdPlan>, SetupError> {
        let mut plans = plan(&setup.units);
        plans.sort_by_key(|p| p.addr.xpd_index());
        if plans.is_empty() {
            return Err(SetupError::NoSpans);
        }
        Ok(plans)
    }

    /// How many spans and channels a bus built from `setup` registers (for
    /// [`Numbering::first_fit`]).
    pub fn numbers_needed(setup: &BusSetup) -> Result<(u32, u32), SetupError> {
        let plans = Self::plans(setup)?;
        Ok((plans.len() as u32, plans.iter().map(|p| p.chans.len() as u32).sum()))
    }

    /// Builds bus `busno` (used in names: `XBUS-nn`) from the bring-up's result, registering
    /// its spans and channels with `numbering`. FXS lines start with a hook-state read
    /// (off-hook ports are re-reported after registration).
    pub fn new(
        now: Instant,
        busno: u8,
        setup: &BusSetup,
        numbering: &mut Numbering,
    ) -> Result<Self, SetupError> {
        let plans = Self::plans(setup)?;
        let nchans: usize = plans.iter().map(|p| p.chans.len()).sum();
        if numbering.next_span + plans.len() as u32 - 1 > MAX_SPANS
            || numbering.next_chan + nchans as u32 - 1 > MAX_CHANNELS
        {
            return Err(SetupError::TooMany);
        }
        let mut core = Self {
            busno,
            name: format!("XBUS-{busno:02}"),
            state: BusState::Running,
            spans: Vec::with_capacity(plans.len()),
            chans: Vec::with_capacity(nchans),
            first_chan: numbering.next_chan,
            pcm: Vec::new(),
            span_of: [None; 64],
            pcm_of: [None; 64],
            cmds: CommandQueue::new(),
            out_pcm: OutRing::new(),
            out_cmd: OutRing::new(),
            scratch: Box::new([0; 512]),
            sync: setup.sync,
            self_ticking: matches!(setup.sync.mode, SyncMode::Ab | SyncMode::Pll),
            has_digital: false,
            drift: DriftLoop::new(),
            reference: None,
            last_tick: None,
            host_timer: Some(now + MS),
            watchdog: now + TICK_WATCHDOG,
            events: VecDeque::with_capacity(BUS_EVENTS),
            chan_cursor: 0,
            stats: XbusStats::default(),
        };
        for p in &plans {
            let spanno = numbering.next_span;
            numbering.next_span += 1;
            let basechan = numbering.next_chan;
            let (unit, sub) = (p.addr.unit(), p.addr.subunit());
            let xpd_name = format!("XPD-{unit}{sub}");
            let (card, silence) = match p.kind {
                XpdKind::Fxs(_) => ("FXS", SILENCE_FILL),
                XpdKind::Fxo => ("FXO", SILENCE_FILL),
                XpdKind::Bri { .. } => ("BRI", SILENCE_FILL),
                XpdKind::Pri(m) if m.protocol() == PriProtocol::T1 => ("PRI", ULAW_SILENCE),
                XpdKind::Pri(_) => ("PRI", ALAW_SILENCE),
            };
            core.has_digital |= matches!(p.kind, XpdKind::Pri(_) | XpdKind::Bri { .. });
            let span_index = core.spans.len();
            core.span_of[usize::from(p.addr.xpd_index())] = Some(span_index as u8);
            // PCM packet owner: the XPD itself, or subunit 0 of a BRI unit.
            let pcm_addr = match p.kind {
                XpdKind::Bri { .. } => Address::new(unit, 0).unwrap_or(p.addr),
                _ => p.addr,
            };
            let pcm_index = match core.pcm_of[usize::from(pcm_addr.xpd_index())] {
                Some(i) => usize::from(i),
                None => {
                    let dummy = p
                        .chans
                        .iter()
                        .find_map(|(k, _)| match *k {
                            ChanKind::Bearer { bit } | ChanKind::PriDchan { bit } => Some(bit),
                            _ => None,
                        })
                        .unwrap_or(0);
                    core.pcm.push(PcmXpd::new(pcm_addr, silence, dummy));
                    let i = core.pcm.len() - 1;
                    core.pcm_of[usize::from(pcm_addr.xpd_index())] = Some(i as u8);
                    i
                }
            };
            for (i, &(kind, present)) in p.chans.iter().enumerate() {
                let channo = numbering.next_chan;
                numbering.next_chan += 1;
                let chanpos = i as u32 + 1;
                let mut sigcap = kind.sigcap();
                if !present {
                    sigcap |= SigCap::BROKEN;
                }
                let (line, bit) = match kind {
                    ChanKind::FxsPort { port } if present => {
                        let chip = match p.kind {
                            XpdKind::Fxs(c) => c,
                            _ => xpp_chan::ChipType::Type1,
                        };
                        let mut l = FxsLine::new(now, p.addr, port, chip, FxsConfig::default());
                        l.read_hook_state(now);
                        (Line::Fxs(l), Some(port))
                    }
                    ChanKind::FxoPort { port } if present => {
                        (Line::Fxo(FxoLine::new(now, p.addr, port, FxoConfig::default())), Some(port))
                    }
                    ChanKind::FxsPort { port } | ChanKind::FxoPort { port } => (Line::None, Some(port)),
                    ChanKind::Bearer { bit } | ChanKind::PriDchan { bit } => (Line::None, Some(bit)),
                    _ => (Line::None, None),
                };
                let pcm = bit.filter(|&b| b < 32).map(|b| (pcm_index as u8, b));
                if let Some((x, b)) = pcm {
                    core.pcm[usize::from(x)].bits |= 1 << b;
                }
                core.chans.push(Channel {
                    chan: Chan::new(channo, chanpos, sigcap),
                    name: format!("XPP_{card}/{busno:02}/{unit}{sub}/{i}"),
                    kind,
                    spanno,
                    span: span_index,
                    line,
                    pcm,
                    always_pcm: matches!(p.kind, XpdKind::Pri(_)),
                    native: Law::Default,
                    law: Law::Default,
                });
            }
            core.spans.push(Span {
                spanno,
                name: format!("{}/{xpd_name}", core.name),
                desc: format!("Astribank {}/{xpd_name} {card}", core.name),
                addr: p.addr,
                kind: p.kind,
                basechan,
                channels: p.chans.len() as u32,
                alarms: crate::alarm::SpanAlarms::new(),
                timing_priority: 0,
                first: core.chans.len() - p.chans.len(),
                line: SpanLine::None,
            });
            if let Some((first, deflaw)) = core.spans.last().map(|s| (s.first, s.deflaw())) {
                for ch in &mut core.chans[first..] {
                    ch.native = deflaw;
                    ch.law = deflaw;
                }
            }
        }
        core.pcm.sort_by_key(|x| x.addr.xpd_index());
        for (i, x) in core.pcm.iter().enumerate() {
            core.pcm_of[usize::from(x.addr.xpd_index())] = Some(i as u8);
        }
        // Re-map channel PCM slots after sorting.
        let pcm_of = core.pcm_of;
        let addrs: Vec<Address> = core.spans.iter().map(|s| s.addr).collect();
        for ch in &mut core.chans {
            if let Some((_, b)) = ch.pcm {
                let a = addrs[ch.span];
                let owner = match core.spans[ch.span].kind {
                    XpdKind::Bri { .. } => Address::new(a.unit(), 0).unwrap_or(a),
                    _ => a,
                };
                ch.pcm = pcm_of[usize::from(owner.xpd_index())].map(|x| (x, b));
            }
        }
        for ci in 0..core.chans.len() {
            core.service(ci, now, false);
        }
        log::info!("{}: {} spans, {} channels", core.name, core.spans.len(), core.chans.len());
        Ok(core)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fit(
        spans: u32,
        chans: u32,
        taken: &[(RangeInclusive<u32>, RangeInclusive<u32>)],
    ) -> Option<(u32, u32)> {
        Numbering::first_fit(spans, chans, taken).map(|n| (n.next_span(), n.next_chan()))
    }

    use core::ops::RangeInclusive;

    use xpp_proto::wire::{CardType, UnitDescriptor};

    use crate::dahdi::Law;

    fn unit(unit: u8, ty: CardType, chips: u8, ppc: u8, dir: u8) -> UnitSetup {
        let mut d = UnitDescriptor::new(Address::new(unit, 0).unwrap(), ty, 0, chips, ppc);
        d.port_dir = dir;
        UnitSetup::new(d)
    }

    #[test]
    fn layout_of_a_mixed_bus() {
        // Descriptors out of order; a T1 PRI unit with two ports, a BRI unit with four, an FXO
        // port that did not answer chip detection.
        let mut t1 = unit(2, CardType::Pri, 1, 2, 0);
        t1.pri_protocol = Some(PriProtocol::T1);
        let mut fxo = unit(1, CardType::Fxo, 8, 1, 0);
        fxo.present = !0b100;
        let bri = unit(3, CardType::Bri, 1, 4, 0b0010);
        let setup = BusSetup::new(vec![bri, t1, fxo, unit(0, CardType::Fxs, 8, 1, 1)]);
        let core = XbusCore::new(Instant::from_millis(1), 7, &setup, &mut Numbering::new()).unwrap();

        // PCM sources in XPD order; a BRI unit's ports share subunit 0's packets.
        let pcm: Vec<_> = core.pcm.iter().map(|x| (x.addr.xpd_index(), x.bits, x.silence, x.dummy)).collect();
        assert_eq!(
            pcm,
            [
                (0, 0xff, SILENCE_FILL, Some(0)),
                (8, 0xff, SILENCE_FILL, None),
                (16, 0xeeee_eeee, ULAW_SILENCE, None),
                (17, 0xeeee_eeee, ULAW_SILENCE, None),
                (24, 0x3333, SILENCE_FILL, None),
            ]
        );
        let spans: Vec<_> = core.spans.iter().map(|s| (s.spanno, s.first, s.channels)).collect();
        assert_eq!(
            spans,
            [
                (1, 0, 14),
                (2, 14, 8),
                (3, 22, 24),
                (4, 46, 24),
                (5, 70, 3),
                (6, 73, 3),
                (7, 76, 3),
                (8, 79, 3)
            ]
        );
        let ch = |channo: u32| core.channel(channo).unwrap();
        let slot = |channo: u32| (ch(channo).pcm, ch(channo).law());
        assert_eq!(slot(4), (Some((0, 3)), Law::Mulaw), "FXS port 3");
        assert_eq!(slot(9), (None, Law::Mulaw), "digital output");
        assert_eq!(slot(17), (Some((1, 2)), Law::Mulaw), "absent FXO port");
        assert!(matches!(ch(17).line, Line::None) && ch(17).chan().sigcap().contains(SigCap::BROKEN));
        assert_eq!(slot(70), (Some((3, 31)), Law::Mulaw), "T1 D-channel of the second PRI port");
        assert_eq!(slot(75), (Some((4, 5)), Law::Alaw), "BRI port 1, B2");
        assert_eq!(slot(82), (None, Law::Alaw), "BRI D-channel");
        assert_eq!(ch(75).name(), "XPP_BRI/07/31/1");
        // Every FXS line starts with a hook-state read.
        assert_eq!(core.queued_commands(), 8);
    }

    #[test]
    fn first_fit_reuses_the_first_gap_that_holds_both_ranges() {
        assert_eq!(fit(2, 22, &[]), Some((1, 1)));
        // After the others.
        assert_eq!(fit(2, 22, &[(1..=2, 1..=22)]), Some((3, 23)));
        // The first device went away: its numbers come back (a re-plug, a TwinStar jump).
        assert_eq!(fit(2, 22, &[(3..=4, 23..=44)]), Some((1, 1)));
        // A smaller device fits the gap too; a larger one does not (channels or spans), and
        // goes after the last device, never breaking the ordering of span and channel numbers.
        assert_eq!(fit(1, 8, &[(3..=4, 23..=44)]), Some((1, 1)));
        assert_eq!(fit(2, 30, &[(3..=4, 23..=44)]), Some((5, 45)));
        assert_eq!(fit(3, 10, &[(3..=4, 23..=44)]), Some((5, 45)));
        // A gap in the middle; order of `taken` does not matter.
        let taken = [(5..=5, 40..=47), (1..=2, 1..=22)];
        assert_eq!(fit(2, 16, &taken), Some((3, 23)));
        assert_eq!(fit(2, 18, &taken), Some((6, 48)));
        // Limits.
        assert_eq!(fit(1, MAX_CHANNELS, &[]), Some((1, 1)));
        assert_eq!(fit(1, MAX_CHANNELS + 1, &[]), None);
        assert_eq!(fit(1, 1, &[(1..=MAX_SPANS, 1..=10)]), None);
        assert_eq!(fit(0, 0, &[]), None);
    }
}
