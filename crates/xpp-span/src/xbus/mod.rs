//! The run-time core of one Astribank's spans, sans-IO: [`XbusCore`].
//!
//! Built from the unit descriptors the bring-up validated ([`BusSetup`]), it owns the bus's
//! spans (one per XPD) and channels (DAHDI numbering, [`Numbering`]), one [`Chan`] per
//! channel (hook machine, event queue, alarms) and, for analog ports, the matching `xpp-chan`
//! line model. It decodes the device's IN transfers, runs one host tick per tick-bearing PCM
//! frame and produces the OUT transfers.
//!
//! Method kinds (quinn-proto style, `STYLE.md` §2):
//! - device inputs: [`handle_in_transfer`](XbusCore::handle_in_transfer),
//!   [`handle_timeout`](XbusCore::handle_timeout), [`handle_removed`](XbusCore::handle_removed);
//! - PBX commands: [`configure_chan`](XbusCore::configure_chan),
//!   [`set_hook`](XbusCore::set_hook), [`write_chunk`](XbusCore::write_chunk),
//!   [`read_chunk`](XbusCore::read_chunk), [`poll_chan_event`](XbusCore::poll_chan_event),
//!   [`set_span_alarms`](XbusCore::set_span_alarms), [`shutdown`](XbusCore::shutdown);
//! - timing: [`set_sync_source`](XbusCore::set_sync_source),
//!   [`apply_election`](XbusCore::apply_election),
//!   [`set_sync_reference`](XbusCore::set_sync_reference);
//! - outputs: [`poll_transmit`](XbusCore::poll_transmit) (PCM transfers first, then paced
//!   commands), [`poll_event`](XbusCore::poll_event), [`poll_timeout`](XbusCore::poll_timeout).
//!
//! Polling order after every input: drain `poll_transmit` to the OUT endpoint, drain
//! `poll_event`, re-arm the timer with `poll_timeout`. Between two ticks the PBX reads each
//! channel's received chunk and writes the chunk to send; a tick consumes the written chunks
//! (an unwritten channel sends silence).
//!
//! One host tick (docs/reference/xpp-protocol.md §7.3), run when a PCM frame whose first packet carries the
//! sync bit arrives (its packets are routed first): release paced commands (§7.5); PLL
//! bookkeeping (§7.4) and XBUS_RESET 0x10 every 1000 ticks; build the PCM_WRITE round (wanted
//! masks of §7.1 with the unit-0 dummy line, PRI/BRI bit mapping); then every channel's
//! periodic work (line-model and hook-machine timers, line facts to DAHDI events, tx hook
//! signals to line commands). In steady state nothing here allocates.

use std::collections::VecDeque;

use xpp_chan::{FxoConfig, FxoLine, FxsConfig, FxsLine};
use xpp_proto::wire::pri::PriProtocol;
use xpp_proto::wire::{ALAW_SILENCE, ULAW_SILENCE};
use xpp_proto::wire::{
    Address, Framer, Message, PcmRound, Repr, SILENCE_FILL, SyncMode, SyncState, parse_transfer, xbus_reset,
};
use xpp_proto::{Duration, Instant};

use crate::alarm::AlarmNotify;
use crate::chan::{Chan, LineCommand, LineFact};
use crate::dahdi::{Alarms, Event, HookCmd, Law, MAX_CHANNELS, MAX_SPANS, RxSig, Sig, SigCap};
use crate::g711;
use crate::hook::{HookMode, HookOutcome};
use crate::pace::CommandQueue;
use crate::pcm::{Chunk, LinearChunk, PcmXpd};
use crate::span::{ChanKind, Span, UnitSetup, XpdKind, plan};
use crate::sync::{Candidate, DriftLoop, TickSample};

/// Host ticks between two XBUS_RESET 0x10 ("reset sync counters").
pub const RESET_SYNC_COUNTERS_TICKS: u64 = 1000;
/// OUT transfers kept for [`XbusCore::poll_transmit`] per class (PCM, commands).
pub const OUT_QUEUE: usize = 32;
/// Bus-level events kept for [`XbusCore::poll_event`]; older ones are dropped first.
pub const BUS_EVENTS: usize = 64;
/// While self-ticking, [`XbusCore::poll_timeout`] asks for a call this long after the last tick.
pub const TICK_WATCHDOG: Duration = Duration::from_millis(5);
const MS: Duration = Duration::from_millis(1);

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

/// Why a channel operation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChanError {
    /// No such channel on this bus.
    #[error("no channel {0} on this bus")]
    NoSuchChannel(u32),
    /// The device is gone (ENODEV).
    #[error("channel removed")]
    Removed,
    /// The channel carries no audio (digital I/O, BRI D-channel).
    #[error("channel carries no audio")]
    NoAudio,
    /// Not a law DAHDI knows (SETLAW takes 0, 1 or 2).
    #[error("no such law {0}")]
    BadLaw(u32),
}

impl ChanError {
    /// The errno DAHDI returns.
    pub const fn errno(self) -> i32 {
        match self {
            Self::NoSuchChannel(_) => 6,           // ENXIO
            Self::Removed => 19,                   // ENODEV
            Self::NoAudio | Self::BadLaw(_) => 22, // EINVAL
        }
    }
}

/// Why a bus could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// Registering would exceed DAHDI's 128 spans or 1024 channels.
    #[error("too many spans or channels")]
    TooMany,
    /// The units describe no span at all.
    #[error("no span on this bus")]
    NoSpans,
}

/// A bus-level output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum XbusEvent {
    /// A DAHDI event of a channel (popped from its queue, as GETEVENT would).
    Chan {
        /// Global channel number.
        channo: u32,
        /// The event.
        event: Event,
    },
    /// A span's alarm word changed between "no alarm" and "some alarm".
    SpanAlarms {
        /// Span number.
        spanno: u32,
        /// The new word.
        alarms: Alarms,
    },
    /// The device reported its sync mode and drift (SYNC_REPLY).
    SyncReply(SyncState),
    /// The bus went away (surprise removal or orderly shutdown); every channel got REMOVED.
    Removed,
}

/// Counters of one bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct XbusStats {
    /// Host ticks run.
    pub ticks: u64,
    /// IN transfers handled.
    pub rx_transfers: u64,
    /// Transfers cut short by a decode error (bad length, frame class...).
    pub rx_errors: u64,
    /// Packets rejected (unknown XPD, unexpected opcode); the rest of their frame is dropped.
    pub rx_rejected: u64,
    /// PCM frames dropped while the bus is not self-ticking.
    pub pcm_not_ticking: u64,
    /// ERROR_CODE packets from the device.
    pub device_errors: u64,
    /// SYNC_REPLY with a mode the host does not know.
    pub bad_sync_replies: u64,
    /// REGISTER_REPLYs for PRI/BRI XPDs (no digital line model yet).
    pub digital_replies: u64,
    /// Line commands a line model refused (e.g. FXO off-hook without battery).
    pub line_refusals: u64,
    /// FXS chip overheat reports.
    pub overheats: u64,
    /// OUT transfers dropped because the caller did not poll them.
    pub tx_dropped: u64,
    /// Commands refused because the paced queue was full.
    pub cmd_dropped: u64,
    /// Drift commands sent (SYNC_SOURCE PLL with a new value).
    pub drift_commands: u64,
    /// Tick intervals longer than 1.5 ms (docs/reference/xpp-protocol.md §7.3: expected 1000 µs, tolerance
    /// 500 µs; statistics only): lost tick-bearing frames, a stalled device or a late host.
    pub late_ticks: u64,
    /// Tick intervals shorter than 0.5 ms (frames delivered in a burst).
    pub early_ticks: u64,
    /// The longest tick interval seen, µs.
    pub max_tick_interval_us: u64,
}

/// A tick interval above this is late (1000 µs + the reference's 500 µs tolerance).
const TICK_LATE_US: u64 = 1500;
/// A tick interval below this is early (1000 µs - 500 µs).
const TICK_EARLY_US: u64 = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BusState {
    Running,
    Stopped,
    Removed,
}

/// A fixed ring of 512-byte transfers.
#[derive(Debug, Clone)]
struct OutRing {
    bufs: Vec<[u8; 512]>,
    lens: Vec<u16>,
    head: usize,
    len: usize,
}

impl OutRing {
    fn new() -> Self {
        Self { bufs: vec![[0; 512]; OUT_QUEUE], lens: vec![0; OUT_QUEUE], head: 0, len: 0 }
    }

    fn push(&mut self, t: &[u8], dropped: &mut u64) {
        if self.len == OUT_QUEUE || t.len() > 512 {
            *dropped += 1;
            return;
        }
        let i = (self.head + self.len) % OUT_QUEUE;
        self.bufs[i][..t.len()].copy_from_slice(t);
        self.lens[i] = t.len() as u16;
        self.len += 1;
    }

    fn pop(&mut self, buf: &mut [u8; 512]) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        let n = usize::from(self.lens[self.head]);
        buf[..n].copy_from_slice(&self.bufs[self.head][..n]);
        self.head = (self.head + 1) % OUT_QUEUE;
        self.len -= 1;
        Some(n)
    }

    fn clear(&mut self) {
        self.len = 0;
    }
}

#[derive(Debug, Clone)]
enum Line {
    None,
    Fxs(FxsLine),
    Fxo(FxoLine),
}

/// One channel: DAHDI's channel fields, its [`Chan`] and its line model.
#[derive(Debug, Clone)]
pub struct Channel {
    chan: Chan,
    name: String,
    kind: ChanKind,
    spanno: u32,
    span: usize,
    line: Line,
    pcm: Option<(u8, u8)>,
    always_pcm: bool,
    /// The span's (the hardware's) law.
    native: Law,
    /// The law the PBX reads and writes (SETLAW / `alaw=` / `mulaw=`; default: `native`).
    law: Law,
}

impl Channel {
    /// The law of this channel's chunks ([`XbusCore::set_law`]; the span's `deflaw`
    /// unless set).
    pub fn law(&self) -> Law {
        self.law
    }

    /// Global channel number.
    pub fn channo(&self) -> u32 {
        self.chan.channo()
    }

    /// 1-based position in its span.
    pub fn chanpos(&self) -> u32 {
        self.chan.chanpos()
    }

    /// `XPP_FXS/00/00/3` style name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What the channel is.
    pub fn kind(&self) -> ChanKind {
        self.kind
    }

    /// Its span number.
    pub fn spanno(&self) -> u32 {
        self.spanno
    }

    /// The signalling core (hook machine, event queue, alarms).
    pub fn chan(&self) -> &Chan {
        &self.chan
    }

    /// The FXS line model, for FXS ports.
    pub fn fxs_line(&self) -> Option<&FxsLine> {
        match &self.line {
            Line::Fxs(l) => Some(l),
            _ => None,
        }
    }

    /// The FXO line model, for FXO ports.
    pub fn fxo_line(&self) -> Option<&FxoLine> {
        match &self.line {
            Line::Fxo(l) => Some(l),
            _ => None,
        }
    }

    fn wants_pcm(&self) -> bool {
        match &self.line {
            Line::Fxs(l) => l.wants_pcm(),
            Line::Fxo(l) => l.wants_pcm(),
            // Decision: PRI channels are always in PCM (all marked off-hook from protocol
            // selection, §7.1); BRI B-channels while configured (stands in for "opening the
            // D-channel marks both" until the digital line model exists).
            Line::None => self.always_pcm || (self.pcm.is_some() && self.chan.sig() != Sig::None),
        }
    }
}

/// The sans-IO run-time core of one Astribank. See the module doc.
#[derive(Debug)]
pub struct XbusCore {
    busno: u8,
    name: String,
    state: BusState,
    spans: Vec<Span>,
    chans: Vec<Channel>,
    first_chan: u32,
    pcm: Vec<PcmXpd>,
    span_of: [Option<u8>; 64],
    pcm_of: [Option<u8>; 64],
    cmds: CommandQueue,
    out_pcm: OutRing,
    out_cmd: OutRing,
    scratch: Box<[u8; 512]>,
    sync: SyncState,
    self_ticking: bool,
    has_digital: bool,
    drift: DriftLoop,
    reference: Option<TickSample>,
    last_tick: Option<Instant>,
    host_timer: Option<Instant>,
    watchdog: Instant,
    events: VecDeque<XbusEvent>,
    chan_cursor: usize,
    stats: XbusStats,
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

    // ----- getters -----

    /// The bus number.
    pub fn busno(&self) -> u8 {
        self.busno
    }

    /// `XBUS-nn`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The spans, in span-number order.
    pub fn spans(&self) -> &[Span] {
        &self.spans
    }

    /// The span numbered `spanno`, if on this bus.
    pub fn span(&self, spanno: u32) -> Option<&Span> {
        self.spans.iter().find(|s| s.spanno == spanno)
    }

    /// The channels, in channel-number order.
    pub fn channels(&self) -> &[Channel] {
        &self.chans
    }

    /// The channel numbered `channo`, if on this bus.
    pub fn channel(&self, channo: u32) -> Option<&Channel> {
        self.index(channo).ok().map(|i| &self.chans[i])
    }

    /// Counters.
    pub fn stats(&self) -> XbusStats {
        let mut s = self.stats;
        s.cmd_dropped = self.cmds.dropped();
        s
    }

    /// The drift loop (its counters and last offset).
    pub fn drift_loop(&self) -> &DriftLoop {
        &self.drift
    }

    /// The sync state the device last reported.
    pub fn sync_state(&self) -> SyncState {
        self.sync
    }

    /// Whether the device drives the host's ticks (SYNC_REPLY AB or PLL seen).
    pub fn is_self_ticking(&self) -> bool {
        self.self_ticking
    }

    /// Whether the bus is running (not shut down, not removed).
    pub fn is_running(&self) -> bool {
        self.state == BusState::Running
    }

    /// This bus's last tick, for other buses' drift loops.
    pub fn tick_sample(&self) -> Option<TickSample> {
        self.last_tick.map(|at| TickSample { count: self.stats.ticks, at })
    }

    /// What the sync election needs to know about this bus.
    pub fn sync_candidate(&self) -> Candidate {
        let timing_priority = self
            .spans
            .iter()
            .filter(|s| s.is_digital() && !s.alarms.in_alarm() && s.timing_priority > 0)
            .map(|s| s.timing_priority)
            .min();
        Candidate { ready: self.is_running(), timing_priority, has_digital: self.has_digital }
    }

    /// Commands waiting in the paced queue.
    pub fn queued_commands(&self) -> usize {
        self.cmds.len()
    }

    fn index(&self, channo: u32) -> Result<usize, ChanError> {
        let i = channo.checked_sub(self.first_chan).map(|i| i as usize);
        match i {
            Some(i) if i < self.chans.len() => Ok(i),
            _ => Err(ChanError::NoSuchChannel(channo)),
        }
    }

    fn running_index(&self, channo: u32) -> Result<usize, ChanError> {
        let i = self.index(channo)?;
        if self.state != BusState::Running {
            return Err(ChanError::Removed);
        }
        Ok(i)
    }

    // ----- device inputs -----

    /// One bulk IN transfer from the device. Malformed input is counted, never a panic.
    pub fn handle_in_transfer(&mut self, now: Instant, transfer: &[u8]) {
        if self.state != BusState::Running {
            return;
        }
        self.stats.rx_transfers += 1;
        let mut first = true;
        let mut tick = false;
        for item in parse_transfer(transfer) {
            let repr = match item {
                Ok((_, r)) => r,
                Err(e) => {
                    log::debug!("{}: bad transfer: {e}", self.name);
                    self.stats.rx_errors += 1;
                    break;
                }
            };
            if first {
                first = false;
                if repr.message.is_pcm() {
                    if !self.self_ticking {
                        self.stats.pcm_not_ticking += 1;
                        return;
                    }
                    tick = repr.sync;
                }
            }
            if !self.handle_repr(now, &repr) {
                self.stats.rx_rejected += 1;
                break;
            }
        }
        // Decision: a tick-bearing frame ticks even if a later packet of it was bad (the
        // packets before the error are kept, §10).
        if tick {
            self.on_tick(now);
        }
    }

    /// Routes one packet; `false` = rejected (the rest of the frame is dropped).
    fn handle_repr(&mut self, now: Instant, repr: &Repr<'_>) -> bool {
        let xpd = usize::from(repr.addr.xpd_index());
        match repr.message {
            Message::PcmRead(p) => match self.pcm_of[xpd] {
                Some(i) => {
                    self.pcm[usize::from(i)].receive(p.lines(), p.samples());
                    true
                }
                None => false,
            },
            Message::SigChanged(s) => {
                let Some(si) = self.span_of[xpd] else { return false };
                let span = &self.spans[usize::from(si)];
                if !matches!(span.kind, XpdKind::Fxs(_) | XpdKind::Fxo) {
                    return false;
                }
                let (first, n) = (span.first, span.channels as usize);
                let mut toggles = s.toggles;
                while toggles != 0 {
                    let port = toggles.trailing_zeros() as usize;
                    toggles &= toggles - 1;
                    if port < n {
                        self.line_packet(first + port, now, repr);
                    }
                }
                true
            }
            Message::RegisterReply(cmd) => {
                if let Some(si) = self.span_of[xpd]
                    && matches!(self.spans[usize::from(si)].kind, XpdKind::Fxs(_) | XpdKind::Fxo)
                {
                    let span = &self.spans[usize::from(si)];
                    let port = usize::from(cmd.port());
                    if port < span.channels as usize {
                        let ci = span.first + port;
                        self.line_packet(ci, now, repr);
                    }
                    return true;
                }
                // PRI/BRI: the target XPD is (unit, reply portnum).
                let target = Address::new(repr.addr.unit(), cmd.port()).map(|a| usize::from(a.xpd_index()));
                if target.and_then(|t| self.span_of[t]).is_some() {
                    self.stats.digital_replies += 1;
                    true
                } else {
                    false
                }
            }
            Message::SyncReply(st) => {
                self.handle_sync_reply(now, st);
                true
            }
            Message::ErrorCode(e) => {
                log::debug!("{}: device error {:#04x}/{:#04x}", self.name, e.category, e.errorbits);
                self.stats.device_errors += 1;
                true
            }
            Message::NullReply | Message::EchoSetReply(_) => true,
            _ => false,
        }
    }

    fn line_packet(&mut self, ci: usize, now: Instant, repr: &Repr<'_>) {
        match &mut self.chans[ci].line {
            Line::Fxs(l) => l.handle_packet(now, repr),
            Line::Fxo(l) => l.handle_packet(now, repr),
            Line::None => return,
        }
        self.service(ci, now, false);
    }

    fn handle_sync_reply(&mut self, now: Instant, st: SyncState) {
        match st.mode {
            SyncMode::Ab | SyncMode::Pll => {
                self.self_ticking = true;
                self.host_timer = None;
                self.watchdog = now + TICK_WATCHDOG;
            }
            SyncMode::None => {
                self.self_ticking = false;
                self.host_timer = Some(now + MS);
            }
            SyncMode::Query => return,
            _ => {
                self.stats.bad_sync_replies += 1;
                return;
            }
        }
        if st.mode != self.sync.mode {
            self.drift.reset();
        }
        self.sync = st;
        self.push_event(XbusEvent::SyncReply(st));
    }

    /// Timers due at `now`: line-model and hook-machine timers, and the host's own 1 ms
    /// command timer while the device does not tick.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state != BusState::Running {
            return;
        }
        if !self.self_ticking
            && let Some(at) = self.host_timer
            && at <= now
        {
            self.host_timer = Some(if at + MS > now { at + MS } else { now + MS });
            self.release_commands();
        }
        if self.self_ticking && self.watchdog <= now {
            // No tick for a while: serve the timers every ms until ticks resume.
            self.watchdog = now + MS;
        }
        for ci in 0..self.chans.len() {
            self.service(ci, now, true);
        }
    }

    /// Surprise removal: span alarms NOTOPEN, REMOVED to every channel, nothing more is sent
    /// and nothing is waited for (docs/reference/dahdi-span-model.md §2 step 8, docs/reference/xpp-protocol.md §8.5).
    pub fn handle_removed(&mut self) {
        if self.state == BusState::Removed {
            return;
        }
        self.cmds.clear();
        self.out_pcm.clear();
        self.out_cmd.clear();
        self.teardown();
        self.state = BusState::Removed;
    }

    /// Orderly stop: the unsent command queue is discarded, SYNC_SOURCE(NONE) is queued as the
    /// last OUT transfer, then the spans go away as on removal (NOTOPEN, REMOVED).
    pub fn shutdown(&mut self) {
        if self.state != BusState::Running {
            return;
        }
        self.cmds.clear();
        self.out_pcm.clear();
        // Decision: unlike the reference (which may discard it with the queue), the final
        // SYNC_SOURCE(NONE) always goes out, so the device stops ticking.
        let none =
            Repr::command(Address::ZERO, Message::SyncSource(SyncState { mode: SyncMode::None, drift: 0 }));
        self.emit_command(&none);
        self.teardown();
        self.state = BusState::Stopped;
    }

    fn teardown(&mut self) {
        for si in 0..self.spans.len() {
            let span = &mut self.spans[si];
            let (first, n, spanno) = (span.first, span.channels as usize, span.spanno);
            let notify = span.alarms.set_removed();
            for ch in &mut self.chans[first..first + n] {
                ch.chan.mark_removed();
                if let AlarmNotify::Propagate { word } = notify {
                    ch.chan.apply_span_alarms(word);
                }
            }
            if let AlarmNotify::Propagate { word } = notify {
                self.push_event(XbusEvent::SpanAlarms { spanno, alarms: word });
            }
        }
        self.push_event(XbusEvent::Removed);
    }

    // ----- timing -----

    /// Queues SYNC_SOURCE(`mode`, `drift`) (paced, cost 0).
    pub fn set_sync_source(&mut self, mode: SyncMode, drift: i8) {
        self.queue(Repr::command(Address::ZERO, Message::SyncSource(SyncState { mode, drift })));
    }

    /// Applies an election result: the master gets AB, any other bus its default mode
    /// (PLL, or AB with a PRI/BRI unit). Sends SYNC_SOURCE only when the mode differs from
    /// the one the device reported.
    pub fn apply_election(&mut self, is_master: bool) {
        let mode = if is_master { SyncMode::Ab } else { self.sync_candidate().default_mode() };
        if is_master {
            self.reference = None;
        }
        if mode != self.sync.mode {
            self.set_sync_source(mode, 0);
        }
    }

    /// The reference tick for the drift loop (the master bus's latest
    /// [`tick_sample`](Self::tick_sample)); `None` when there is no other master.
    pub fn set_sync_reference(&mut self, reference: Option<TickSample>) {
        if reference.is_none() && self.reference.is_some() {
            self.drift.reset();
        }
        self.reference = reference;
    }

    /// Queues a command through the paced queue (for bring-up leftovers, LEDs, ...).
    pub fn queue(&mut self, cmd: Repr<'static>) {
        if !self.cmds.push(cmd) {
            log::warn!("{}: command queue full", self.name);
        }
    }

    // ----- the tick -----

    fn on_tick(&mut self, now: Instant) {
        self.stats.ticks += 1;
        if let Some(prev) = self.last_tick {
            let us = now.saturating_duration_since(prev).total_micros();
            self.stats.late_ticks += u64::from(us > TICK_LATE_US);
            self.stats.early_ticks += u64::from(us < TICK_EARLY_US);
            self.stats.max_tick_interval_us = self.stats.max_tick_interval_us.max(us);
        }
        self.last_tick = Some(now);
        self.watchdog = now + TICK_WATCHDOG;
        self.release_commands();
        if self.sync.mode == SyncMode::Pll
            && let Some(reference) = self.reference
        {
            let this = TickSample { count: self.stats.ticks, at: now };
            if let Some(d) = self.drift.step(this, reference, self.sync.drift) {
                self.stats.drift_commands += 1;
                self.set_sync_source(SyncMode::Pll, d);
            }
        }
        if self.stats.ticks.is_multiple_of(RESET_SYNC_COUNTERS_TICKS) {
            self.queue(Repr::command(
                Address::ZERO,
                Message::XbusReset { mask: xbus_reset::RESET_SYNC_COUNTERS },
            ));
        }
        self.build_round();
        for ci in 0..self.chans.len() {
            self.service(ci, now, true);
        }
    }

    fn release_commands(&mut self) {
        let Self { cmds, out_cmd, scratch, stats, .. } = self;
        cmds.tick(|r| {
            if let Ok(n) = r.emit(&mut scratch[..]) {
                out_cmd.push(&scratch[..n], &mut stats.tx_dropped);
            }
        });
    }

    fn emit_command(&mut self, r: &Repr<'_>) {
        if let Ok(n) = r.emit(&mut self.scratch[..]) {
            self.out_cmd.push(&self.scratch[..n], &mut self.stats.tx_dropped);
        }
    }

    fn build_round(&mut self) {
        let mut wanted = [0u32; 64];
        for ch in &self.chans {
            if let Some((x, b)) = ch.pcm
                && ch.wants_pcm()
            {
                wanted[usize::from(x)] |= 1 << b;
            }
        }
        let Self { pcm, out_pcm, scratch, stats, .. } = self;
        let mut framer = Framer::new(&mut scratch[..]);
        let mut round: PcmRound<'_, '_> = framer.pcm_round();
        for (x, w) in pcm.iter_mut().zip(wanted) {
            x.set_wanted(w);
            if x.transmit(&mut round, |t: &[u8]| out_pcm.push(t, &mut stats.tx_dropped)).is_err() {
                stats.tx_dropped += 1;
            }
        }
        round.finish(|t: &[u8]| out_pcm.push(t, &mut stats.tx_dropped));
    }

    /// A channel's periodic work: due timers (with `timers`), line facts to DAHDI events, tx
    /// hook signals to line commands, line register commands to the paced queue.
    fn service(&mut self, ci: usize, now: Instant, timers: bool) {
        let Self { chans, cmds, stats, .. } = self;
        let ch = &mut chans[ci];
        if timers && ch.chan.poll_timeout().is_some_and(|t| t <= now) {
            ch.chan.handle_timeout(now);
        }
        match &mut ch.line {
            Line::Fxs(l) => {
                if timers && l.poll_timeout().is_some_and(|t| t <= now) {
                    l.handle_timeout(now);
                }
            }
            Line::Fxo(l) => {
                if timers && l.poll_timeout().is_some_and(|t| t <= now) {
                    l.handle_timeout(now);
                }
            }
            Line::None => {}
        }
        // Facts and commands feed each other (ring stops on off-hook...); a few rounds settle.
        for _ in 0..4 {
            let mut busy = false;
            loop {
                let ev = match &mut ch.line {
                    Line::Fxs(l) => l.poll_event(),
                    Line::Fxo(l) => l.poll_event(),
                    Line::None => None,
                };
                let Some(ev) = ev else { break };
                busy = true;
                apply_fact(&mut ch.chan, ev, stats);
            }
            while let Some((_, cmd)) = ch.chan.poll_line_command() {
                busy = true;
                if let Some(cmd) = cmd
                    && !apply_line_command(&mut ch.line, now, cmd)
                {
                    stats.line_refusals += 1;
                }
            }
            if !busy {
                break;
            }
        }
        loop {
            let cmd = match &mut ch.line {
                Line::Fxs(l) => l.poll_transmit(now),
                Line::Fxo(l) => l.poll_transmit(now),
                Line::None => None,
            };
            let Some(cmd) = cmd else { break };
            cmds.push(cmd);
        }
    }

    fn push_event(&mut self, e: XbusEvent) {
        if self.events.len() >= BUS_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(e);
    }

    // ----- outputs -----

    /// The next OUT transfer (PCM first, then commands), written into `buf`; its length.
    pub fn poll_transmit(&mut self, buf: &mut [u8; 512]) -> Option<usize> {
        self.out_pcm.pop(buf).or_else(|| self.out_cmd.pop(buf))
    }

    /// The next bus-level event, then pending channel events (popped from the channels'
    /// queues: use either this or [`poll_chan_event`](Self::poll_chan_event) per channel).
    pub fn poll_event(&mut self) -> Option<XbusEvent> {
        if let Some(e) = self.events.pop_front() {
            return Some(e);
        }
        let n = self.chans.len();
        for k in 0..n {
            let ci = (self.chan_cursor + k) % n;
            let ch = &mut self.chans[ci];
            if ch.chan.events().is_pending() {
                self.chan_cursor = ci;
                return Some(XbusEvent::Chan { channo: ch.chan.channo(), event: ch.chan.get_event() });
            }
        }
        None
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state != BusState::Running {
            return None;
        }
        // Decision: while the device ticks, every tick serves the line and hook timers (1 ms
        // granularity, like the reference's per-tick periodic work), so only a watchdog is
        // reported: if ticks stop, handle_timeout takes over the timers. O(1) per call.
        if self.self_ticking {
            return Some(self.watchdog);
        }
        let host = self.host_timer;
        self.chans
            .iter()
            .flat_map(|ch| {
                let line = match &ch.line {
                    Line::Fxs(l) => l.poll_timeout(),
                    Line::Fxo(l) => l.poll_timeout(),
                    Line::None => None,
                };
                [ch.chan.poll_timeout(), line]
            })
            .chain([host])
            .flatten()
            .min()
    }

    // ----- PBX side -----

    /// CHANCONFIG: signalling `sig` (checked against the sigcap), then hang-up and rx
    /// INITIAL; the line's known state is reported again.
    pub fn configure_chan(&mut self, now: Instant, channo: u32, sig: Sig) -> Result<(), crate::Error> {
        let ci = self.running_index(channo)?;
        let ch = &mut self.chans[ci];
        ch.chan.configure(now, sig)?;
        match &ch.line {
            Line::Fxs(l) => {
                if let Some(off) = l.off_hook() {
                    ch.chan.handle_fact(now, if off { LineFact::HookOff } else { LineFact::HookOn });
                }
            }
            Line::Fxo(l) => match l.battery() {
                Some(true) => ch.chan.handle_fact(now, LineFact::BatteryRestored),
                Some(false) => ch.chan.handle_fact(now, LineFact::BatteryLost),
                None => {}
            },
            Line::None => {}
        }
        self.service(ci, now, false);
        Ok(())
    }

    /// Configures every channel with its natural signalling: FXS ports `fxoks`, FXO ports
    /// `fxsks`, bearer channels `clear`, PRI D-channels `hdlcfcs`, BRI D-channels
    /// `hardhdlc`; digital I/O and broken ports stay unconfigured.
    pub fn configure_defaults(&mut self, now: Instant) {
        for ci in 0..self.chans.len() {
            let ch = &self.chans[ci];
            if ch.chan.sigcap().contains(SigCap::BROKEN) {
                continue;
            }
            let sig = match ch.kind {
                ChanKind::FxsPort { .. } => Sig::Fxoks,
                ChanKind::FxoPort { .. } => Sig::Fxsks,
                ChanKind::Bearer { .. } => Sig::Clear,
                ChanKind::PriDchan { .. } => Sig::HdlcFcs,
                ChanKind::BriDchan => Sig::HardHdlc,
                _ => continue,
            };
            let channo = ch.chan.channo();
            if let Err(e) = self.configure_chan(now, channo, sig) {
                log::warn!("{}: channel {channo}: {e}", self.name);
            }
        }
    }

    /// DAHDI_HOOK on channel `channo`; the resulting tx signal goes to the line at once.
    // Decision: the PBX gives DAHDI's hook commands (ONHOOK, OFFHOOK, RING, FLASH...); the
    // hook machine turns them into tx signals (TxSig) and those into line commands.
    pub fn set_hook(
        &mut self,
        now: Instant,
        channo: u32,
        cmd: HookCmd,
        mode: HookMode,
    ) -> Result<HookOutcome, crate::Error> {
        let ci = self.running_index(channo)?;
        let r = self.chans[ci].chan.set_hook(now, cmd, mode)?;
        self.service(ci, now, false);
        Ok(r)
    }

    /// Where `channo`'s audio sits (XPD index, line bit) and its span's and its own law.
    fn audio(&self, channo: u32) -> Result<(usize, usize, Law, Law), ChanError> {
        let ch = &self.chans[self.running_index(channo)?];
        let (x, b) = ch.pcm.ok_or(ChanError::NoAudio)?;
        Ok((usize::from(x), usize::from(b), ch.native, ch.law))
    }

    /// The chunk received for `channel` in the last tick (silence when it is not in PCM).
    pub fn read_chunk(&self, channo: u32, buf: &mut Chunk) -> Result<(), ChanError> {
        let (x, b, native, law) = self.audio(channo)?;
        *buf = self.pcm[x].rx[b];
        if let Some(t) = g711::law_table(native, law) {
            buf.iter_mut().for_each(|s| *s = t[usize::from(*s)]);
        }
        Ok(())
    }

    /// The chunk to send on `channel` in the next tick, in the channel's law.
    pub fn write_chunk(&mut self, channo: u32, chunk: &Chunk) -> Result<(), ChanError> {
        let (x, b, native, law) = self.audio(channo)?;
        let tx = &mut self.pcm[x].tx[b];
        match g711::law_table(law, native) {
            Some(t) => tx.iter_mut().zip(chunk).for_each(|(d, s)| *d = t[usize::from(*s)]),
            None => *tx = *chunk,
        }
        Ok(())
    }

    /// The last received chunk of `channo` as 16-bit linear samples (DAHDI's SETLINEAR).
    pub fn read_linear(&self, channo: u32, buf: &mut LinearChunk) -> Result<(), ChanError> {
        let (x, b, native, _) = self.audio(channo)?;
        buf.iter_mut().zip(&self.pcm[x].rx[b]).for_each(|(d, s)| *d = g711::to_linear(native, *s));
        Ok(())
    }

    /// The chunk to send on `channo` in the next tick, from 16-bit linear samples.
    pub fn write_linear(&mut self, channo: u32, samples: &LinearChunk) -> Result<(), ChanError> {
        let (x, b, native, _) = self.audio(channo)?;
        self.pcm[x].tx[b].iter_mut().zip(samples).for_each(|(d, s)| *d = g711::from_linear(native, *s));
        Ok(())
    }

    /// Sets the law of `channo`'s chunks (DAHDI's SETLAW; `system.conf` `alaw=`/`mulaw=`/
    /// `deflaw=`): [`Law::Default`] is the span's `deflaw`. Chunks are converted between it and
    /// the span's law on [`read_chunk`](Self::read_chunk)/[`write_chunk`](Self::write_chunk).
    pub fn set_law(&mut self, channo: u32, law: Law) -> Result<(), ChanError> {
        let ci = self.index(channo)?;
        let law = match law {
            Law::Mulaw | Law::Alaw => law,
            Law::Default => self.chans[ci].native,
            _ => return Err(ChanError::BadLaw(law.raw())),
        };
        self.chans[ci].law = law;
        Ok(())
    }

    /// GETEVENT on `channo` (REMOVED forever after removal).
    pub fn poll_chan_event(&mut self, channo: u32) -> Result<Event, ChanError> {
        let ci = self.index(channo)?;
        Ok(self.chans[ci].chan.get_event())
    }

    /// The driver's alarm-notify for span `spanno` (digital layer 1); channels get
    /// ALARM/NOALARM on in/out transitions.
    pub fn set_span_alarms(&mut self, spanno: u32, alarms: Alarms) -> bool {
        let Some(si) = self.spans.iter().position(|s| s.spanno == spanno) else { return false };
        let span = &mut self.spans[si];
        let (first, n) = (span.first, span.channels as usize);
        if let AlarmNotify::Propagate { word } = span.alarms.set_alarms(alarms) {
            for ch in &mut self.chans[first..first + n] {
                ch.chan.apply_span_alarms(word);
            }
            self.push_event(XbusEvent::SpanAlarms { spanno, alarms: word });
        }
        true
    }

    /// Sets a digital span's timing priority (`span=` second field).
    pub fn set_timing_priority(&mut self, spanno: u32, priority: u8) -> bool {
        match self.spans.iter_mut().find(|s| s.spanno == spanno) {
            Some(s) => {
                s.timing_priority = priority;
                true
            }
            None => false,
        }
    }

    /// The PCM_WRITE `lines` of the last round for the XPD at `addr` (for status views).
    pub fn pcm_lines_sent(&self, addr: Address) -> Option<u32> {
        let i = self.pcm_of[usize::from(addr.xpd_index())]?;
        Some(self.pcm[usize::from(i)].sent)
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
        _ => {}
    }
}

/// A tx hook signal's line command, applied to the line model; `false` if refused.
fn apply_line_command(line: &mut Line, now: Instant, cmd: LineCommand) -> bool {
    match (line, cmd) {
        (Line::Fxs(l), LineCommand::RingOn) => {
            l.set_line_open(now, false);
            l.start_ringing(now, xpp_chan::Cadence::CONTINUOUS).is_ok()
        }
        (Line::Fxs(l), LineCommand::Idle | LineCommand::Active) => {
            // Ring gaps and hang-up: the line leaves ringing through on-hook transmission.
            l.stop_ringing(now);
            l.set_line_open(now, false);
            true
        }
        (Line::Fxs(l), LineCommand::DropBattery) => {
            l.set_line_open(now, true);
            true
        }
        (Line::Fxo(l), LineCommand::CloseLoop) => l.off_hook(now).is_ok(),
        (Line::Fxo(l), LineCommand::OpenLoop) => {
            l.on_hook(now);
            true
        }
        (Line::None, _) => true,
        // Ground start on an Astribank FXO port, or a command for the other port type.
        _ => false,
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
