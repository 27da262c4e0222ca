//! The line models of a bus's channels and their dispatch: a channel's periodic work, line
//! facts to its [`Chan`], tx hook signals to line commands.

use xpp_chan::bri::{BriEvent, BriLine};
use xpp_chan::pri::{PriConfig, PriEvent, PriLine, Protocol};
use xpp_chan::{ChipType, FxoConfig, FxoLine, FxsConfig, FxsLine};
use xpp_proto::Instant;
use xpp_proto::wire::{Address, Repr};

use super::{XbusCore, XbusStats};
use crate::chan::{Chan, LineCommand, LineFact};
use crate::dahdi::{Alarms, RxSig};
use crate::span::{ChanKind, XpdKind};

/// The line model of one channel. Each method matches the variants once for every call site
/// (smoltcp's `Socket::poll_at`): the bus core calls these methods and never matches on the
/// variants, so a new per-channel model touches only this enum and its impl. Span-wide models
/// (PRI, BRI) belong in [`SpanLine`].
///
/// Method kinds follow the `xpp-chan` lines: inputs [`handle_packet`](Self::handle_packet),
/// [`handle_timeout`](Self::handle_timeout), [`apply_command`](Self::apply_command); outputs
/// [`poll_transmit`](Self::poll_transmit), [`poll_event`](Self::poll_event),
/// [`poll_timeout`](Self::poll_timeout), [`wants_pcm`](Self::wants_pcm),
/// [`known_state`](Self::known_state).
#[derive(Debug, Clone)]
pub(super) enum Line {
    /// No per-channel model: an absent port, a digital I/O channel, a PRI/BRI channel.
    None,
    /// An FXS port (a phone).
    Fxs(FxsLine),
    /// An FXO port (a line from the exchange).
    Fxo(FxoLine),
}

impl Line {
    /// The model of channel `kind` of the XPD at `addr`: FXS and FXO ports that answered chip
    /// detection get one (an FXS line starts with a hook-state read); other channels none.
    pub(super) fn new(now: Instant, addr: Address, xpd: XpdKind, kind: ChanKind, present: bool) -> Self {
        match kind {
            ChanKind::FxsPort { port } if present => {
                let chip = match xpd {
                    XpdKind::Fxs(c) => c,
                    _ => ChipType::Type1,
                };
                let mut l = FxsLine::new(now, addr, port, chip, FxsConfig::default());
                l.read_hook_state(now);
                Self::Fxs(l)
            }
            ChanKind::FxoPort { port } if present => {
                Self::Fxo(FxoLine::new(now, addr, port, FxoConfig::default()))
            }
            _ => Self::None,
        }
    }

    /// A packet from the device for this channel's port; `false` when there is no model to
    /// take it (and so nothing to service afterwards).
    pub(super) fn handle_packet(&mut self, now: Instant, repr: &Repr<'_>) -> bool {
        match self {
            Self::Fxs(l) => l.handle_packet(now, repr),
            Self::Fxo(l) => l.handle_packet(now, repr),
            Self::None => return false,
        }
        true
    }

    /// Runs the model's timers due at `now`.
    pub(super) fn handle_timeout(&mut self, now: Instant) {
        match self {
            Self::Fxs(l) => l.handle_timeout(now),
            Self::Fxo(l) => l.handle_timeout(now),
            Self::None => {}
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next run.
    #[must_use]
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        match self {
            Self::Fxs(l) => l.poll_timeout(),
            Self::Fxo(l) => l.poll_timeout(),
            Self::None => None,
        }
    }

    /// The next raw line fact.
    #[must_use]
    pub(super) fn poll_event(&mut self) -> Option<xpp_chan::Event> {
        match self {
            Self::Fxs(l) => l.poll_event(),
            Self::Fxo(l) => l.poll_event(),
            Self::None => None,
        }
    }

    /// The next register command for the paced queue.
    #[must_use]
    pub(super) fn poll_transmit(&mut self, now: Instant) -> Option<Repr<'static>> {
        match self {
            Self::Fxs(l) => l.poll_transmit(now),
            Self::Fxo(l) => l.poll_transmit(now),
            Self::None => None,
        }
    }

    /// Whether the model wants the channel in PCM; `None` without a model (then the
    /// channel's fixed rule decides).
    pub(super) fn wants_pcm(&self) -> Option<bool> {
        match self {
            Self::Fxs(l) => Some(l.wants_pcm()),
            Self::Fxo(l) => Some(l.wants_pcm()),
            Self::None => None,
        }
    }

    /// What the model knows of the line now (FXS hook state, FXO battery), reported again
    /// to a freshly configured channel.
    pub(super) fn known_state(&self) -> Option<LineFact> {
        match self {
            Self::Fxs(l) => l.off_hook().map(|off| if off { LineFact::HookOff } else { LineFact::HookOn }),
            Self::Fxo(l) => {
                l.battery().map(|on| if on { LineFact::BatteryRestored } else { LineFact::BatteryLost })
            }
            Self::None => None,
        }
    }

    /// Reads the state a previous host left on the chip instead of assuming the card init's
    /// (FXO: the hook register; FXS: the line feed).
    pub(super) fn adopt_state(&mut self) {
        match self {
            Self::Fxo(l) => l.read_hook_state(),
            Self::Fxs(l) => l.read_line_feed_state(),
            Self::None => {}
        }
    }

    /// A tx hook signal's line command, applied to the model; `false` if refused.
    pub(super) fn apply_command(&mut self, now: Instant, cmd: LineCommand) -> bool {
        match (self, cmd) {
            (Self::Fxs(l), LineCommand::RingOn) => {
                l.set_line_open(now, false);
                l.start_ringing(now, xpp_chan::Cadence::CONTINUOUS).is_ok()
            }
            (Self::Fxs(l), LineCommand::Idle | LineCommand::Active) => {
                // Ring gaps and hang-up: the line leaves ringing through on-hook transmission.
                l.stop_ringing(now);
                l.set_line_open(now, false);
                true
            }
            (Self::Fxs(l), LineCommand::DropBattery) => {
                l.set_line_open(now, true);
                true
            }
            (Self::Fxo(l), LineCommand::CloseLoop) => l.off_hook(now).is_ok(),
            (Self::Fxo(l), LineCommand::OpenLoop) => {
                l.on_hook(now);
                true
            }
            (Self::None, _) => true,
            // Ground start on an Astribank FXO port, or a command for the other port type.
            _ => false,
        }
    }
}

/// The line model of a whole span, beside its channels' [`Line`]s: a PRI framer or a BRI port
/// is one per span (layer 1, alarms, D-channel), not one per channel. The bus core dispatches
/// to it at the same points as to a channel's line: packets addressed to the span's XPD that
/// no channel's line takes, timers, register commands, and its facts (alarm words, received
/// CAS bits).
#[derive(Debug, Clone)]
pub(crate) enum SpanLine {
    /// No span-wide model: an analog span (its line models are per channel).
    None,
    /// A PRI port (docs/reference/xpp-protocol.md §9.3): line configuration, span start, FRS0
    /// layer-1 polling every 500 ms, CAS.
    Pri(Box<PriSpan>),
    /// A BRI S/T port (docs/reference/xpp-protocol.md §9.4): layer-1 polling and activation, the
    /// D-channel in multibyte register commands.
    Bri(Box<BriSpan>),
}

/// A BRI span's port model and what the span core keeps beside it.
#[derive(Debug, Clone)]
pub(crate) struct BriSpan {
    pub(crate) line: BriLine,
    /// Started (layer-1 activation requested).
    pub(crate) started: bool,
    /// The D-channel's liveness (LEDs), from its frame count both ways.
    pub(crate) dchan: DchanLiveness,
}

/// A PRI span's framer model and what the span core keeps beside it.
#[derive(Debug, Clone)]
pub(crate) struct PriSpan {
    pub(crate) line: PriLine,
    /// This port recovers the unit's clock (PC2..PC4 point at it).
    pub(crate) clock_source: bool,
    /// A line configuration was programmed and the span started.
    pub(crate) started: bool,
    /// The D-channel's liveness (LEDs), from its received-frame count.
    pub(crate) dchan: DchanLiveness,
}

/// How long a D-channel counts as alive after a frame: 15 s of ticks.
const DCHAN_ALIVE_TICKS: u64 = 15_000;

/// Whether a port's D-channel is alive, for its LEDs. Decision: alive for 15 s after its
/// frame count last moved (the reference's D-channel liveness window, §9.4; Q.921 keeps an
/// idle link polled).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct DchanLiveness {
    /// The frame count as last seen.
    seen: u64,
    /// The tick until which the D-channel counts as alive.
    until: u64,
}

impl DchanLiveness {
    /// Whether the D-channel is alive at `tick`, its frame count being `frames` now.
    fn alive(&mut self, tick: u64, frames: u64) -> bool {
        if frames != self.seen {
            self.seen = frames;
            self.until = tick + DCHAN_ALIVE_TICKS;
        }
        tick < self.until
    }
}

/// A span model's fact, for the span core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SpanFact {
    /// The layer-1 alarm word changed.
    Alarms(Alarms),
    /// Received CAS bits of the span's channel `channel` (0-based) changed.
    Cas { channel: usize, abcd: u8 },
    /// A D-channel receive error (BADFCS, ABORT, OVERRUN) for the span's D-channel.
    DchanError(crate::dahdi::Event),
}

impl SpanLine {
    /// The model of a span of `kind` at `addr`: a PRI port polls FRS0 from `now`; other spans
    /// have none.
    pub(super) fn new(now: Instant, addr: Address, kind: XpdKind) -> Self {
        match kind {
            XpdKind::Pri(map) => {
                let protocol = match map.protocol() {
                    xpp_proto::wire::pri::PriProtocol::T1 => Protocol::T1,
                    _ => Protocol::E1,
                };
                // The card init gives every port timing priority 1 (first-choice slave).
                let config =
                    PriConfig { protocol, cas: None, timing_priority: 1, local_loop: false, idle_bits: 0 };
                let mut line = PriLine::new(addr, addr.subunit(), config);
                line.poll_from(now);
                Self::Pri(Box::new(PriSpan {
                    line,
                    clock_source: false,
                    started: false,
                    dchan: DchanLiveness::default(),
                }))
            }
            XpdKind::Bri { nt } => {
                let mut line = BriLine::new(addr, addr.subunit(), nt);
                line.poll_from(now);
                Self::Bri(Box::new(BriSpan { line, started: false, dchan: DchanLiveness::default() }))
            }
            _ => Self::None,
        }
    }

    /// The BRI model, if this is a BRI span.
    pub(super) fn bri_mut(&mut self) -> Option<&mut BriSpan> {
        match self {
            Self::Bri(b) => Some(b),
            _ => None,
        }
    }

    /// The BRI model, if this is a BRI span.
    pub(crate) fn bri(&self) -> Option<&BriSpan> {
        match self {
            Self::Bri(b) => Some(b),
            _ => None,
        }
    }

    /// Once per tick: a BRI port starts its next D-channel frame.
    pub(super) fn tick(&mut self) {
        if let Self::Bri(b) = self {
            b.line.tick();
        }
    }

    /// The PRI model, if this is a PRI span.
    pub(super) fn pri_mut(&mut self) -> Option<&mut PriSpan> {
        match self {
            Self::Pri(p) => Some(p),
            _ => None,
        }
    }

    /// The PRI model, if this is a PRI span.
    pub(crate) fn pri(&self) -> Option<&PriSpan> {
        match self {
            Self::Pri(p) => Some(p),
            _ => None,
        }
    }

    /// Whether layer 1 is known to be up: a PRI port once an FRS0 poll said so; spans without
    /// a model count as up (their alarms say otherwise).
    pub(super) fn layer1_up(&self) -> bool {
        match self {
            Self::Pri(p) => p.line.status().is_some_and(|s| s.is_up()),
            Self::Bri(b) => b.line.layer1_up() == Some(true),
            Self::None => true,
        }
    }

    /// A packet for the span's XPD (a PRI/BRI register reply); `false` when no model takes
    /// it.
    pub(super) fn handle_packet(&mut self, now: Instant, repr: &Repr<'_>) -> bool {
        match self {
            Self::Pri(p) => {
                p.line.handle_packet(now, repr);
                true
            }
            Self::Bri(b) => {
                b.line.handle_packet(now, repr);
                true
            }
            Self::None => false,
        }
    }

    /// Runs the model's timers due at `now`.
    pub(super) fn handle_timeout(&mut self, now: Instant) {
        match self {
            Self::Pri(p) => p.line.handle_timeout(now),
            Self::Bri(b) => b.line.handle_timeout(now),
            Self::None => {}
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next run.
    #[must_use]
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        match self {
            Self::Pri(p) => p.line.poll_timeout(),
            Self::Bri(b) => b.line.poll_timeout(),
            Self::None => None,
        }
    }

    /// The model's next fact.
    #[must_use]
    pub(super) fn poll_event(&mut self) -> Option<SpanFact> {
        match self {
            Self::Pri(p) => p.line.poll_event().map(|e| match e {
                PriEvent::Status { status, .. } => {
                    let mut alarms = Alarms::EMPTY;
                    if status.los {
                        alarms |= Alarms::RED;
                    }
                    if status.ais {
                        alarms |= Alarms::BLUE;
                    }
                    if status.rai {
                        alarms |= Alarms::YELLOW;
                    }
                    SpanFact::Alarms(alarms)
                }
                PriEvent::Cas { channel, abcd, .. } => SpanFact::Cas { channel, abcd },
            }),
            Self::Bri(b) => b.line.poll_event().map(|e| match e {
                BriEvent::Layer1 { up, .. } => SpanFact::Alarms(if up { Alarms::EMPTY } else { Alarms::RED }),
                BriEvent::BadFcs => SpanFact::DchanError(crate::dahdi::Event::BADFCS),
                BriEvent::Abort => SpanFact::DchanError(crate::dahdi::Event::ABORT),
                BriEvent::Overrun => SpanFact::DchanError(crate::dahdi::Event::OVERRUN),
            }),
            Self::None => None,
        }
    }

    /// The next register command for the paced queue.
    #[must_use]
    pub(super) fn poll_transmit(&mut self, now: Instant) -> Option<Repr<'static>> {
        match self {
            Self::Pri(p) => p.line.poll_transmit(now),
            Self::Bri(b) => b.line.poll_transmit(now),
            Self::None => None,
        }
    }
}

impl XbusCore {
    /// A channel's periodic work: due timers (with `timers`), line facts to DAHDI events, tx
    /// hook signals to line commands, line register commands to the paced queue.
    pub(super) fn service(&mut self, ci: usize, now: Instant, timers: bool) {
        let Self { chans, cmds, stats, .. } = self;
        let ch = &mut chans[ci];
        // Whether the channel may have changed, so its slot needs a refresh: always off the
        // tick (a packet or a PBX call changed it); on the tick only when a timer fired,
        // facts and commands had something to settle, or the line sent something. Otherwise
        // it is as it was (the debug check in `build_round` would see it if not).
        let mut changed = !timers;
        if timers && ch.chan.poll_timeout().is_some_and(|t| t <= now) {
            ch.chan.handle_timeout(now);
            changed = true;
        }
        if matches!(ch.line, Line::None) {
            // No line model (a bearer or D-channel, a digital I/O pin, an absent port): its
            // tx signals have nowhere to go. Its next timer is cached so the tick can pass it
            // by without touching the channel ([`service_all`](Self::service_all)).
            while ch.chan.poll_line_command().is_some() {}
            self.refresh_serviced(ci);
            return;
        }
        if timers && ch.line.poll_timeout().is_some_and(|t| t <= now) {
            ch.line.handle_timeout(now);
            changed = true;
        }
        // Facts and commands feed each other (ring stops on off-hook...); a few rounds settle.
        for _ in 0..4 {
            let mut busy = false;
            while let Some(ev) = ch.line.poll_event() {
                busy = true;
                apply_fact(&mut ch.chan, ev, stats);
            }
            while let Some((_, cmd)) = ch.chan.poll_line_command() {
                busy = true;
                if let Some(cmd) = cmd
                    && !ch.line.apply_command(now, cmd)
                {
                    stats.line_refusals += 1;
                }
            }
            if !busy {
                break;
            }
            changed = true;
        }
        while let Some(cmd) = ch.line.poll_transmit(now) {
            cmds.push(cmd);
            changed = true;
        }
        if changed {
            self.refresh_serviced(ci);
        }
    }

    /// A span's periodic work, as [`service`](Self::service) for a channel: due timers (with
    /// `timers`), register commands to the paced queue, alarm words to the span's channels.
    pub(super) fn service_span(&mut self, si: usize, now: Instant, timers: bool) {
        let line = &mut self.spans[si].line;
        if timers && line.poll_timeout().is_some_and(|t| t <= now) {
            line.handle_timeout(now);
        }
        if timers {
            line.tick();
            if self.spans[si].line.pri().is_some() {
                // The D-channel is alive while its receiver sees the far end's flags.
                let span = &self.spans[si];
                let (first, n) = (span.first, span.channels as usize);
                // The dense audio slots find the HDLC channel without touching the others.
                let rx = self.slots[first..first + n]
                    .iter()
                    .position(|a| a.hdlc)
                    .and_then(|i| self.chans[first + i].hdlc.as_ref())
                    .map(|h| h.stats().rx_frames);
                let tick = self.stats.ticks;
                if let Some(p) = self.spans[si].line.pri_mut() {
                    // Frames received count (no soft-HDLC channel: never alive).
                    let alive = rx.is_some_and(|rx| p.dchan.alive(tick, rx));
                    p.line.tick_leds(tick, alive);
                }
            } else if let Some(b) = self.spans[si].line.bri_mut() {
                // Frames either way count (the reference's BRI heuristic, §9.4).
                let tick = self.stats.ticks;
                let alive = b.dchan.alive(tick, b.line.dchan_frames());
                b.line.tick_leds(tick, alive);
            }
        }
        while let Some(cmd) = self.spans[si].line.poll_transmit(now) {
            self.cmds.push(cmd);
        }
        let mut alarms_changed = false;
        while let Some(fact) = self.spans[si].line.poll_event() {
            match fact {
                SpanFact::Alarms(alarms) => {
                    self.apply_span_alarms(si, alarms);
                    alarms_changed = true;
                }
                SpanFact::DchanError(event) => {
                    let span = &self.spans[si];
                    // Not reported while the span is in alarm (DAHDI's rule for HDLC errors).
                    if !span.alarms.in_alarm() {
                        let (first, n) = (span.first, span.channels as usize);
                        if let Some(i) = self.chans[first..first + n]
                            .iter()
                            .position(|c| matches!(c.kind, ChanKind::BriDchan))
                        {
                            self.chans[first + i].chan.events_mut().push(event);
                            self.refresh(first + i);
                        }
                    }
                }
                SpanFact::Cas { channel, .. } => {
                    let span = &self.spans[si];
                    if channel < span.channels as usize {
                        let ci = span.first + channel;
                        let ch = &mut self.chans[ci];
                        // Raw CAS channels see the new bits as an event (GETRXBITS reads them).
                        if ch.chan.sig() == crate::dahdi::Sig::Cas {
                            ch.chan.events_mut().push(crate::dahdi::Event::BITSCHANGED);
                            self.refresh(ci);
                        }
                    }
                }
            }
        }
        if alarms_changed {
            self.select_pri_clocks();
            self.push_event(super::XbusEvent::TimingChanged);
        }
        while let Some(cmd) = self.spans[si].line.poll_transmit(now) {
            self.cmds.push(cmd);
        }
    }
}

/// A line model's raw fact, as the span core sees it.
fn apply_fact(chan: &mut Chan, ev: xpp_chan::Event, stats: &mut XbusStats) {
    use xpp_chan::Event as E;
    match ev {
        E::HookChanged { off_hook, at } => {
            chan.handle_fact(at, if off_hook { LineFact::HookOff } else { LineFact::HookOn });
        }
        E::RingDetected { on, at } => {
            chan.handle_fact(at, if on { LineFact::RingBegin } else { LineFact::RingEnd });
        }
        E::Battery { present, at } => {
            chan.handle_fact(at, if present { LineFact::BatteryRestored } else { LineFact::BatteryLost });
        }
        E::PolarityReversed { at } => chan.handle_fact(at, LineFact::PolarityReversal),
        // The reference reports power denial to DAHDI as on-hook.
        E::PowerDenial { at } => chan.handle_rxsig(at, RxSig::OnHook),
        E::DtmfDigit { digit, down, at } => {
            let d = u8::try_from(digit).unwrap_or(b'?');
            chan.handle_fact(at, if down { LineFact::DtmfDown(d) } else { LineFact::DtmfUp(d) });
        }
        E::Overheat { .. } => stats.overheats += 1,
        E::LoopFoundClosed { .. } => chan.hook_mut().adopt_line_offhook(),
        _ => {}
    }
}
