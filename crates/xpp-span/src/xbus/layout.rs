//! What a bus is built from ([`BusSetup`]), where its numbers start ([`Numbering`]), and the
//! construction of [`XbusCore`] from them: spans, channels, PCM sources.

use std::collections::VecDeque;

use xpp_proto::Instant;
use xpp_proto::timer::TimerTable;
use xpp_proto::wire::pri::PriProtocol;
use xpp_proto::wire::{ALAW_SILENCE, Address, SILENCE_FILL, SyncMode, SyncState, ULAW_SILENCE};

use super::lines::{Line, SpanLine};
use super::tick::{OutRing, Timer};
use super::{BUS_EVENTS, BusState, ChanSlot, Channel, MS, SetupError, TICK_WATCHDOG, XbusCore, XbusStats};
use crate::chan::Chan;
use crate::dahdi::{MAX_CHANNELS, MAX_SPANS, SigCap};
use crate::pace::CommandQueue;
use crate::pcm::PcmXpd;
use crate::span::{ChanKind, Span, UnitSetup, XpdKind, XpdPlan, plan};
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
    fn plans(setup: &BusSetup) -> Result<Vec<XpdPlan>, SetupError> {
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
        let mut core = Self::empty(now, busno, setup, plans.len(), nchans, numbering.next_chan);
        core.add_pcm_sources(&plans);
        for p in &plans {
            core.add_span(now, p, numbering);
        }
        core.pending = super::PendingSet::with_len(core.chans.len());
        core.rebuild_runs();
        // The lines' first register commands (FXS hook-state reads), in channel order.
        for ci in 0..core.chans.len() {
            core.service(ci, now, false);
        }
        log::info!("{}: {} spans, {} channels", core.name, core.spans.len(), core.chans.len());
        Ok(core)
    }

    /// A bus in warm standby (a TwinStar backup host): built from `setup` (the layout the
    /// device had when this host last saw it) and numbered like [`new`](Self::new), its spans
    /// in RED alarm, nothing to send. Channels take configuration (CHANCONFIG, SETLAW, timing
    /// priorities, `system.conf`), so the PBX can open and configure them before the device
    /// is here; audio and hook commands answer [`ChanError::Standby`](super::ChanError).
    /// [`activate`](Self::activate) makes it run when the device arrives.
    pub fn new_standby(
        now: Instant,
        busno: u8,
        setup: &BusSetup,
        numbering: &mut Numbering,
    ) -> Result<Self, SetupError> {
        let mut core = Self::new(now, busno, setup, numbering)?;
        core.enter_standby(now);
        Ok(core)
    }

    /// The device left this host but its bus stays registered (TwinStar: it jumped to the
    /// other host and may come back): calls end (each configured channel hangs up, as on a
    /// CHANCONFIG), the spans go to RED alarm (ALARM on their channels), nothing more is sent.
    /// A bus that is not running is left as it is.
    pub fn handle_left(&mut self, now: Instant) {
        if self.state != BusState::Running {
            return;
        }
        self.enter_standby(now);
    }

    fn enter_standby(&mut self, now: Instant) {
        self.cmds.clear();
        self.out_pcm.clear();
        self.out_cmd.clear();
        self.state = BusState::Standby;
        self.reference = None;
        self.last_tick = None;
        for ch in &mut self.chans {
            let sig = ch.chan.sig();
            if sig != crate::dahdi::Sig::None {
                // Accepted before, so accepted again.
                let _ = ch.chan.configure(now, sig);
            }
        }
        self.refresh_range(0..self.chans.len());
        for si in 0..self.spans.len() {
            self.apply_span_alarms(si, crate::dahdi::Alarms::RED);
        }
    }

    /// Take-over: the device this standby bus stands for arrived, with `setup`. The bus runs
    /// from now on with fresh line models (as [`new`](Self::new) builds them: the lines'
    /// first reads go out with the next ticks) and keeps everything the PBX side holds: the
    /// numbers, each channel's signalling, law, hook state and pending events, the spans'
    /// timing priorities. The spans leave their RED alarm (NOALARM on their channels).
    ///
    /// [`SetupError::LayoutChanged`] if `setup` builds other spans or channels than the
    /// standby was registered with (the bus stays in standby; the caller registers the
    /// device afresh), [`SetupError::NotStandby`] if the bus is not in standby.
    pub fn activate(&mut self, now: Instant, setup: &BusSetup, verified: bool) -> Result<(), SetupError> {
        if self.state != BusState::Standby {
            return Err(SetupError::NotStandby);
        }
        let first_span = self.spans.first().map_or(1, |s| s.spanno);
        let mut numbering = Numbering { next_span: first_span, next_chan: self.first_chan };
        let mut fresh = Self::new(now, self.busno, setup, &mut numbering)?;
        let same_spans = fresh.spans.len() == self.spans.len()
            && fresh.spans.iter().zip(&self.spans).all(|(a, b)| {
                (a.spanno, a.addr, a.kind, a.channels) == (b.spanno, b.addr, b.kind, b.channels)
            });
        let same_chans = fresh.chans.len() == self.chans.len()
            && fresh.chans.iter().zip(&self.chans).all(|(a, b)| {
                (a.chan.channo(), a.kind, a.native, a.chan.sigcap())
                    == (b.chan.channo(), b.kind, b.native, b.chan.sigcap())
            });
        if !(same_spans && same_chans) {
            return Err(SetupError::LayoutChanged);
        }
        for (new, old) in fresh.chans.iter_mut().zip(&mut self.chans) {
            core::mem::swap(&mut new.chan, &mut old.chan);
            new.law = old.law;
            new.hdlc = old.hdlc.take();
            new.hdlc_rate = old.hdlc_rate;
        }
        let bri_started: Vec<bool> =
            self.spans.iter().map(|s| s.line.bri().is_some_and(|b| b.started)).collect();
        for (new, old) in fresh.spans.iter_mut().zip(&mut self.spans) {
            new.alarms = old.alarms;
            new.timing_priority = old.timing_priority;
            // A PRI span keeps its line configuration; its layer 1 is read afresh.
            if let Some(pri) = old.line.pri_mut() {
                pri.line.forget_status();
                pri.clock_source = false;
                core::mem::swap(&mut new.line, &mut old.line);
            }
        }
        fresh.slots = fresh.chans.iter().map(ChanSlot::of).collect();
        fresh.pending.mark_all();
        fresh.rebuild_runs();
        fresh.events = core::mem::take(&mut self.events);
        fresh.stats = self.stats;
        *self = fresh;
        for si in 0..self.spans.len() {
            self.apply_span_alarms(si, crate::dahdi::Alarms::EMPTY);
        }
        // The carried channels' tx state goes to the fresh lines.
        for ci in 0..self.chans.len() {
            self.service(ci, now, false);
        }
        // A device that was not verified had its cards initialised afresh: the started PRI
        // spans are programmed and started again; a verified one kept the framer's setting.
        if !verified {
            let started: Vec<(u32, u8)> = self
                .spans
                .iter()
                .filter(|s| s.line.pri().is_some_and(|p| p.started))
                .map(|s| (s.spanno, s.timing_priority))
                .collect();
            for (spanno, prio) in started {
                if let Err(e) =
                    self.configure_span(spanno, None, prio).and_then(|()| self.start_span(now, spanno))
                {
                    log::warn!("{}: span {spanno}: {e}", self.name);
                }
            }
        }
        for (si, started) in bri_started.into_iter().enumerate() {
            if let Some(pri) = self.spans[si].line.pri_mut() {
                pri.line.poll_from(now);
            }
            // A BRI port: its D-channel open as configured, layer 1 requested again if the
            // standby span was started (a fresh port model reads its layer 1 anew).
            let (first, n) = (self.spans[si].first, self.spans[si].channels as usize);
            let open = self.chans[first..first + n]
                .iter()
                .any(|c| matches!(c.kind, ChanKind::BriDchan) && c.chan.sig() == crate::dahdi::Sig::HardHdlc);
            if let Some(bri) = self.spans[si].line.bri_mut() {
                bri.line.set_dchan_open(open);
                if started {
                    bri.line.start(now);
                    bri.started = true;
                }
            }
        }
        log::info!("{}: standby taken over", self.name);
        Ok(())
    }

    /// A running bus with room for `spans` spans and `chans` channels, none added yet.
    fn empty(now: Instant, busno: u8, setup: &BusSetup, spans: usize, chans: usize, first_chan: u32) -> Self {
        let mut core = Self {
            busno,
            name: format!("XBUS-{busno:02}"),
            state: BusState::Running,
            spans: Vec::with_capacity(spans),
            chans: Vec::with_capacity(chans),
            slots: Vec::with_capacity(chans),
            pending: super::PendingSet::default(),
            runs: Vec::new(),
            first_chan,
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
            timers: TimerTable::new(),
            events: VecDeque::with_capacity(BUS_EVENTS),
            chan_cursor: 0,
            stats: XbusStats::default(),
        };
        core.timers.set(Timer::HostTick, now + MS);
        core.timers.set(Timer::Watchdog, now + TICK_WATCHDOG);
        core
    }

    /// The PCM packet sources and sinks, in XPD order (the order of the PCM_WRITE round): one
    /// per [`pcm_owner`]. The first plan of each gives its silence byte and its unit-0 dummy
    /// line.
    fn add_pcm_sources(&mut self, plans: &[XpdPlan]) {
        let mut first: [Option<&XpdPlan>; 64] = [None; 64];
        for p in plans {
            first[usize::from(pcm_owner(p).xpd_index())].get_or_insert(p);
        }
        for (xpd, p) in first.iter().enumerate() {
            if let Some(p) = p {
                self.pcm_of[xpd] = Some(self.pcm.len() as u8);
                self.pcm.push(PcmXpd::new(pcm_owner(p), card(p.kind).1, dummy_bit(p)));
            }
        }
    }

    /// Registers the span of `p` and its channels with the next numbers of `numbering`.
    fn add_span(&mut self, now: Instant, p: &XpdPlan, numbering: &mut Numbering) {
        let spanno = numbering.next_span;
        numbering.next_span += 1;
        let (unit, sub) = (p.addr.unit(), p.addr.subunit());
        let xpd_name = format!("XPD-{unit}{sub}");
        let (card, _) = card(p.kind);
        self.has_digital |= matches!(p.kind, XpdKind::Pri(_) | XpdKind::Bri { .. });
        let span_index = self.spans.len();
        self.span_of[usize::from(p.addr.xpd_index())] = Some(span_index as u8);
        let span = Span {
            spanno,
            name: format!("{}/{xpd_name}", self.name),
            desc: format!("Astribank {}/{xpd_name} {card}", self.name),
            addr: p.addr,
            kind: p.kind,
            basechan: numbering.next_chan,
            channels: p.chans.len() as u32,
            alarms: crate::alarm::SpanAlarms::new(),
            // The card init gives a PRI port timing priority 1 (first-choice slave).
            timing_priority: u8::from(matches!(p.kind, XpdKind::Pri(_))),
            first: self.chans.len(),
            line: SpanLine::new(now, p.addr, p.kind),
        };
        let deflaw = span.deflaw();
        let pcm_index = self.pcm_of[usize::from(pcm_owner(p).xpd_index())];
        for (i, &(kind, present)) in p.chans.iter().enumerate() {
            let channo = numbering.next_chan;
            numbering.next_chan += 1;
            let mut sigcap = kind.sigcap();
            if !present {
                sigcap |= SigCap::BROKEN;
            }
            let pcm = pcm_index.zip(pcm_bit(kind).filter(|&b| b < 32));
            if let Some((x, b)) = pcm {
                self.pcm[usize::from(x)].bits |= 1 << b;
            }
            self.chans.push(Channel {
                chan: Chan::new(channo, i as u32 + 1, sigcap),
                name: format!("XPP_{card}/{:02}/{unit}{sub}/{i}", self.busno),
                kind,
                spanno,
                line: Line::new(now, p.addr, p.kind, kind, present),
                pcm,
                always_pcm: matches!(p.kind, XpdKind::Pri(_)),
                hdlc: None,
                hdlc_rate: xpp_chan::hdlc::HdlcRate::Kbps64,
                native: deflaw,
                law: deflaw,
            });
            let slot = ChanSlot::of(self.chans.last().expect("just pushed"));
            self.slots.push(slot);
        }
        self.spans.push(span);
    }
}

/// The XPD whose PCM packets carry the channels of `p`: the XPD itself, or subunit 0 of a
/// BRI unit.
fn pcm_owner(p: &XpdPlan) -> Address {
    match p.kind {
        XpdKind::Bri { .. } => Address::new(p.addr.unit(), 0).unwrap_or(p.addr),
        _ => p.addr,
    }
}

/// The card's name (in span and channel names) and its PCM silence byte.
fn card(kind: XpdKind) -> (&'static str, u8) {
    match kind {
        XpdKind::Fxs(_) => ("FXS", SILENCE_FILL),
        XpdKind::Fxo => ("FXO", SILENCE_FILL),
        XpdKind::Bri { .. } => ("BRI", SILENCE_FILL),
        XpdKind::Pri(m) if m.protocol() == PriProtocol::T1 => ("PRI", ULAW_SILENCE),
        XpdKind::Pri(_) => ("PRI", ALAW_SILENCE),
    }
}

/// The unit-0 dummy line of a PCM source: the first PRI/BRI timeslot of `p`, or line 0.
fn dummy_bit(p: &XpdPlan) -> u8 {
    p.chans
        .iter()
        .find_map(|(k, _)| match *k {
            ChanKind::Bearer { bit } | ChanKind::PriDchan { bit } => Some(bit),
            _ => None,
        })
        .unwrap_or(0)
}

/// The `lines` bit of a channel in its XPD's PCM packets, if it is carried in PCM.
fn pcm_bit(kind: ChanKind) -> Option<u8> {
    match kind {
        ChanKind::FxsPort { port } | ChanKind::FxoPort { port } => Some(port),
        ChanKind::Bearer { bit } | ChanKind::PriDchan { bit } => Some(bit),
        _ => None,
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
