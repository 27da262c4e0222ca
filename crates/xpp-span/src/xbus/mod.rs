//! The run-time core of one Astribank's spans, sans-IO: [`XbusCore`].
//!
//! Built from the unit descriptors the bring-up validated ([`BusSetup`]), it owns the bus's
//! spans (one per XPD) and channels (DAHDI numbering, [`Numbering`]), one [`Chan`] per
//! channel (hook machine, event queue, alarms) and, for analog ports, the matching `xpp-chan`
//! line model. Each span also has a slot for a span-wide line model (a PRI framer, a BRI
//! port), dispatched at the same points as the channels' lines; no such model exists yet. It
//! decodes the device's IN transfers, runs one host tick per tick-bearing PCM frame and
//! produces the OUT transfers.
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
//!
//! The code is split by concern: `layout` builds the core from a [`BusSetup`] and a
//! [`Numbering`]; `routing` decodes IN transfers and dispatches their packets; `tick` runs the
//! host tick, the PCM_WRITE round, the paced commands and the OUT rings; `lines` holds the
//! line models and their dispatch; `audio` serves the PBX's chunks. This file keeps the
//! public surface: the core, its channels, errors, events and counters.

mod audio;
mod dchan;
mod digital;
mod layout;
mod layout_text;
mod lines;
mod routing;
mod tick;

pub use dchan::{HdlcStats, MAX_FRAME, RX_FRAMES, TX_FRAMES};
pub use digital::SpanError;
pub use layout::{BusSetup, Numbering};
pub use layout_text::LayoutTextError;
/// A PRI span's line settings (SPANCONFIG), from the PRI line model.
pub use xpp_chan::hdlc::HdlcRate;
pub use xpp_chan::pri::{Framing, LineCode, LineSetup, LineSetupError};

use std::collections::VecDeque;

use xpp_chan::{FxoLine, FxsLine};
use xpp_proto::timer::TimerTable;
use xpp_proto::wire::{Address, Message, Repr, SyncMode, SyncState};
use xpp_proto::{Duration, Instant};

use crate::alarm::AlarmNotify;
use crate::chan::Chan;
use crate::dahdi::{Alarms, Event, HookCmd, Law, Sig, SigCap};
use crate::hook::{HookMode, HookOutcome};
use crate::pace::CommandQueue;
use crate::pcm::PcmXpd;
use crate::span::{ChanKind, Span};
use crate::sync::{Candidate, DriftLoop, TickSample};

use lines::Line;
pub(crate) use lines::SpanLine;
use tick::{OutRing, Timer};

/// Host ticks between two XBUS_RESET 0x10 ("reset sync counters").
pub const RESET_SYNC_COUNTERS_TICKS: u64 = 1000;
/// OUT transfers kept for [`XbusCore::poll_transmit`] per class (PCM, commands).
pub const OUT_QUEUE: usize = 32;
/// Bus-level events kept for [`XbusCore::poll_event`]; older ones are dropped first.
pub const BUS_EVENTS: usize = 64;
/// While self-ticking, [`XbusCore::poll_timeout`] asks for a call this long after the last tick.
pub const TICK_WATCHDOG: Duration = Duration::from_millis(5);
const MS: Duration = Duration::from_millis(1);

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
    /// The line refused a hook command (an FXO port without detected battery).
    #[error("channel {0}: the line refused the hook command")]
    Refused(u32),
    /// The channel's device is not on this host (warm standby: its span is registered, in
    /// RED alarm, until the device arrives).
    #[error("channel {0}: its device is not on this host (standby)")]
    Standby(u32),
    /// A frame operation on a channel that is not configured for soft HDLC (HDLCFCS,
    /// HDLCRAW).
    #[error("channel {0} is not an HDLC channel")]
    NotHdlc(u32),
    /// Every transmit slot of the HDLC channel is taken; try again after a tick.
    #[error("channel {0}: transmit queue full")]
    Full(u32),
    /// An HDLC frame too long, or in FCS mode without room for the two FCS placeholders.
    #[error("channel {0}: bad frame length")]
    BadFrame(u32),
    /// No span with this number on this bus.
    #[error("no span {0} on this bus")]
    NoSuchSpan(u32),
    /// A CAS bits operation on a channel whose span carries no CAS.
    #[error("channel {0} carries no CAS signalling")]
    NotCas(u32),
}

impl ChanError {
    /// The errno DAHDI returns.
    pub const fn errno(self) -> i32 {
        match self {
            Self::NoSuchChannel(_) | Self::NoSuchSpan(_) => 6, // ENXIO
            Self::Removed => 19,                               // ENODEV
            // Decision: EINVAL for a refused hook command, as for the other refusals.
            Self::NoAudio | Self::BadLaw(_) | Self::Refused(_) => 22, // EINVAL
            // Decision: EBUSY, "held elsewhere": ENODEV would tell the PBX to close the
            // channel, and the channel stays (its device is on the other host for now).
            Self::Standby(_) => 16,
            Self::NotHdlc(_) | Self::BadFrame(_) | Self::NotCas(_) => 22, // EINVAL
            Self::Full(_) => 11,                                          // EAGAIN
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
    /// The device that arrived for a standby bus has other units than the standby was
    /// registered with ([`XbusCore::activate`]).
    #[error("the device's units differ from the standby registration")]
    LayoutChanged,
    /// [`XbusCore::activate`] on a bus that is not in standby.
    #[error("the bus is not in standby")]
    NotStandby,
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
    /// What this bus offers the sync election may have changed: a digital span's layer 1
    /// came up or went down, or its timing priority changed ([`XbusCore::sync_candidate`]);
    /// the owner re-runs the election.
    TimingChanged,
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
    /// REGISTER_REPLYs routed to a span whose line model did not take them (a span without a
    /// model; PRI and BRI spans take their replies).
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BusState {
    Running,
    /// Warm standby: the spans are registered (in RED alarm) for a device that is not here
    /// (a TwinStar backup host); configuration is accepted, audio and hook commands are not.
    Standby,
    Stopped,
    Removed,
}

/// A channel's per-tick state, kept beside `chans` in a dense array (see [`XbusCore`]'s
/// `slots`): the tick, the PCM round and the span-wide chunk exchange read only this, never
/// the (large) channels. A copy of what the channel says, refreshed by
/// [`XbusCore::refresh`] after every change to the channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ChanSlot {
    /// XPD index and line bit in PCM; `None` without audio.
    pcm: Option<(u8, u8)>,
    /// Soft HDLC takes the timeslot: no chunks.
    hdlc: bool,
    /// Where the PBX's chunks go; `None` without audio or with soft HDLC.
    chunks: Option<ChunkPath>,
    /// The channel is in the next PCM round ([`Channel::wants_pcm`]).
    wants: bool,
    /// No line model ([`Channel::is_lineless`]): the tick passes it by unless `due`.
    lineless: bool,
    /// Without a line model: the channel's next timer.
    due: Option<Instant>,
}

impl ChanSlot {
    fn of(ch: &Channel) -> Self {
        let lineless = ch.is_lineless();
        let hdlc = ch.hdlc.is_some();
        Self {
            pcm: ch.pcm,
            hdlc,
            chunks: ch.pcm.filter(|_| !hdlc).map(|(x, b)| ChunkPath {
                x,
                b,
                rx: crate::g711::law_table(ch.native, ch.law),
                tx: crate::g711::law_table(ch.law, ch.native),
            }),
            wants: ch.wants_pcm(),
            lineless,
            due: if lineless { ch.chan.poll_timeout() } else { None },
        }
    }
}

/// Where a channel's chunks sit in PCM (the `rx` and `tx` of XPD `x`'s [`PcmXpd`] at bit
/// `b`) and the tables that compand them between the channel's law and its span's (`None`:
/// the same law).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ChunkPath {
    x: u8,
    /// Below 32 (a `lines` bit).
    b: u8,
    rx: Option<&'static [u8; 256]>,
    tx: Option<&'static [u8; 256]>,
}

/// Channels of one span whose chunks sit side by side in PCM, in the same law: the span-wide
/// chunk exchange copies them in one go. Channels `at..at + len` of the span; the first at
/// `first`, each next one bit further on the same XPD (`first.b + len` <= 32).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ChunkRun {
    at: u8,
    len: u8,
    first: ChunkPath,
}

impl ChunkRun {
    /// The path of the run's channel `k` (below `len`).
    fn path(&self, k: u8) -> ChunkPath {
        ChunkPath { b: self.first.b + k, ..self.first }
    }

    /// The bits of XPD `first.x` the run covers.
    fn bits(&self) -> core::ops::Range<usize> {
        let b = usize::from(self.first.b);
        b..b + usize::from(self.len)
    }
}

/// The channels that may have events waiting, one bit per channel index: set when a change
/// to a channel leaves events in its queue ([`XbusCore::refresh`]), cleared when a look finds
/// the queue empty. So [`XbusCore::poll_event`] looks only at channels with events, not at
/// all of them.
#[derive(Debug, Clone, Default)]
struct PendingSet {
    words: Vec<u64>,
    len: usize,
}

impl PendingSet {
    fn with_len(n: usize) -> Self {
        Self { words: vec![0; n.div_ceil(64)], len: n }
    }

    fn mark(&mut self, i: usize) {
        if i < self.len {
            self.words[i / 64] |= 1 << (i % 64);
        }
    }

    fn mark_all(&mut self) {
        for i in 0..self.len {
            self.mark(i);
        }
    }

    /// The first marked index at or after `from`, wrapping round; `pending(i)` says whether
    /// it really has something (an index found without is unmarked and the search goes on).
    fn find(&mut self, from: usize, mut pending: impl FnMut(usize) -> bool) -> Option<usize> {
        let n = self.words.len();
        if n == 0 {
            return None;
        }
        let (start, shift) = ((from / 64) % n, from % 64);
        for k in 0..=n {
            let w = (start + k) % n;
            let mut bits = self.words[w];
            if k == 0 {
                bits &= !0 << shift;
            } else if k == n {
                bits &= !(!0 << shift);
            }
            while bits != 0 {
                let b = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let i = w * 64 + b;
                if pending(i) {
                    return Some(i);
                }
                self.words[w] &= !(1 << b);
            }
        }
        None
    }
}

/// One channel: DAHDI's channel fields, its [`Chan`] and its line model.
#[derive(Debug, Clone)]
pub struct Channel {
    chan: Chan,
    name: String,
    kind: ChanKind,
    spanno: u32,
    line: Line,
    pcm: Option<(u8, u8)>,
    always_pcm: bool,
    /// Soft HDLC on the channel's timeslot (HDLCFCS / HDLCRAW).
    hdlc: Option<Box<dchan::SoftHdlc>>,
    /// HDLC_RATE ([`XbusCore::set_hdlc_rate`]), for its soft HDLC now or later.
    hdlc_rate: HdlcRate,
    /// The span's (the hardware's) law.
    native: Law,
    /// The law the PBX reads and writes (SETLAW / `alaw=` / `mulaw=`; default: `native`).
    law: Law,
}

impl Channel {
    /// Whether the channel has no line model (a bearer or D-channel, a digital I/O pin, an
    /// absent port).
    pub(super) fn is_lineless(&self) -> bool {
        matches!(self.line, Line::None)
    }

    /// The channel's HDLC_RATE ([`XbusCore::set_hdlc_rate`]; 64 kbit/s unless set).
    pub fn hdlc_rate(&self) -> HdlcRate {
        self.hdlc_rate
    }

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
        // Decision: PRI channels are always in PCM (all marked off-hook from protocol
        // selection, §7.1); BRI B-channels while configured (stands in for "opening the
        // D-channel marks both" until the digital line model exists).
        self.line
            .wants_pcm()
            .unwrap_or_else(|| self.always_pcm || (self.pcm.is_some() && self.chan.sig() != Sig::None))
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
    /// Each channel's per-tick state, beside `chans` in a dense array.
    slots: Vec<ChanSlot>,
    /// Channels that may have events waiting.
    pending: PendingSet,
    /// Each span's chunk runs ([`ChunkRun`]), from `slots`.
    runs: Vec<Vec<ChunkRun>>,
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
    timers: TimerTable<Timer, 2>,
    events: VecDeque<XbusEvent>,
    chan_cursor: usize,
    stats: XbusStats,
}

impl XbusCore {
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
            .filter(|s| s.is_digital() && s.line.layer1_up() && !s.alarms.in_alarm() && s.timing_priority > 0)
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
        match self.state {
            BusState::Running => Ok(i),
            BusState::Standby => Err(ChanError::Standby(channo)),
            BusState::Stopped | BusState::Removed => Err(ChanError::Removed),
        }
    }

    /// A channel that takes configuration: running, or in standby (the configuration is
    /// kept for the device's arrival).
    fn configurable_index(&self, channo: u32) -> Result<usize, ChanError> {
        match self.running_index(channo) {
            Err(ChanError::Standby(_)) => self.index(channo),
            r => r,
        }
    }

    /// Whether the bus is in warm standby ([`XbusCore::new_standby`],
    /// [`XbusCore::handle_left`]).
    pub fn is_standby(&self) -> bool {
        self.state == BusState::Standby
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
        if self.state == BusState::Standby {
            // Nothing to send: the device is not here. The spans go away as on removal.
            self.teardown();
            self.state = BusState::Stopped;
            return;
        }
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
            self.refresh_range(first..first + n);
            if let AlarmNotify::Propagate { word } = notify {
                self.push_event(XbusEvent::SpanAlarms { spanno, alarms: word });
            }
        }
        self.push_event(XbusEvent::Removed);
    }

    pub(super) fn push_event(&mut self, e: XbusEvent) {
        if self.events.len() >= BUS_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(e);
    }

    // ----- outputs -----

    /// The next OUT transfer (PCM first, then commands), written into `buf`; its length.
    #[must_use]
    pub fn poll_transmit(&mut self, buf: &mut [u8; 512]) -> Option<usize> {
        self.out_pcm.pop(buf).or_else(|| self.out_cmd.pop(buf))
    }

    /// The next bus-level event, then pending channel events (popped from the channels'
    /// queues: use either this or [`poll_chan_event`](Self::poll_chan_event) per channel).
    #[must_use]
    pub fn poll_event(&mut self) -> Option<XbusEvent> {
        if let Some(e) = self.events.pop_front() {
            return Some(e);
        }
        let chans = &self.chans;
        let Some(ci) = self.pending.find(self.chan_cursor, |ci| chans[ci].chan.events().is_pending()) else {
            debug_assert!(
                self.chans.iter().all(|c| !c.chan.events().is_pending()),
                "a channel changed without XbusCore::refresh"
            );
            return None;
        };
        self.chan_cursor = ci;
        let ch = &mut self.chans[ci];
        Some(XbusEvent::Chan { channo: ch.chan.channo(), event: ch.chan.get_event() })
    }

    /// After any change to channel `ci`: its dense slot is copied afresh, and if it has
    /// events [`poll_event`](Self::poll_event) will look at it.
    pub(super) fn refresh(&mut self, ci: usize) {
        let slot = ChanSlot::of(&self.chans[ci]);
        let old = core::mem::replace(&mut self.slots[ci], slot);
        self.note_events(ci);
        if old.chunks != slot.chunks
            && let Some(si) =
                self.spans.iter().position(|s| (s.first..s.first + s.channels as usize).contains(&ci))
        {
            self.runs[si] = self.chunk_runs(si);
        }
    }

    /// Every span's chunk runs afresh (after the slots were built).
    pub(super) fn rebuild_runs(&mut self) {
        self.runs = (0..self.spans.len()).map(|si| self.chunk_runs(si)).collect();
    }

    /// [`refresh`](Self::refresh) after the channel's periodic work, which changes only its
    /// hook state, timers and events (not its audio path): the cheap part.
    pub(super) fn refresh_serviced(&mut self, ci: usize) {
        let ch = &self.chans[ci];
        let slot = &mut self.slots[ci];
        slot.wants = ch.wants_pcm();
        if slot.lineless {
            slot.due = ch.chan.poll_timeout();
        }
        self.note_events(ci);
    }

    fn note_events(&mut self, ci: usize) {
        if self.chans[ci].chan.events().is_pending() {
            self.pending.mark(ci);
        }
    }

    /// [`refresh`](Self::refresh) for channels `range`.
    pub(super) fn refresh_range(&mut self, range: core::ops::Range<usize>) {
        for ci in range {
            self.refresh(ci);
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next run.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state != BusState::Running {
            return None;
        }
        // Decision: while the device ticks, every tick serves the line and hook timers (1 ms
        // granularity, like the reference's per-tick periodic work), so only a watchdog is
        // reported: if ticks stop, handle_timeout takes over the timers. O(1) per call.
        if self.self_ticking {
            return self.timers.get(Timer::Watchdog);
        }
        let host = self.timers.get(Timer::HostTick);
        self.chans
            .iter()
            .flat_map(|ch| [ch.chan.poll_timeout(), ch.line.poll_timeout()])
            .chain(self.spans.iter().map(|s| s.line.poll_timeout()))
            .chain([host])
            .flatten()
            .min()
    }

    // ----- PBX side -----

    /// CHANCONFIG: signalling `sig` (checked against the sigcap), then hang-up and rx
    /// INITIAL; the line's known state is reported again.
    pub fn configure_chan(&mut self, now: Instant, channo: u32, sig: Sig) -> Result<(), crate::Error> {
        let ci = self.configurable_index(channo)?;
        let ch = &mut self.chans[ci];
        ch.chan.configure(now, sig)?;
        if let Some(fact) = ch.line.known_state() {
            ch.chan.handle_fact(now, fact);
        }
        self.service(ci, now, false);
        self.digital_chan_configured(ci, sig);
        if self.state == BusState::Standby {
            // Nothing goes to a device that is not here; its arrival starts from fresh lines.
            self.cmds.clear();
        }
        Ok(())
    }

    /// For a device taken over running (verified, not initialised): the line models read the
    /// state the previous host left on the chips instead of assuming the card init's (FXO:
    /// the hook register, so a line seized there stays seized, and the PBX here can release
    /// it; FXS: the line feed, so a ring left on by the previous host stops and a reversed
    /// polarity is kept). The reads go out with the next paced commands.
    pub fn adopt_line_state(&mut self) {
        for ch in &mut self.chans {
            ch.line.adopt_state();
        }
        self.refresh_range(0..self.chans.len());
    }

    /// Configures every channel with its natural signalling: FXS ports `fxoks`, FXO ports
    /// `fxsks`, bearer channels `clear`, PRI D-channels `hdlcfcs`, BRI D-channels
    /// `hardhdlc`; digital I/O and broken ports stay unconfigured.
    pub fn configure_defaults(&mut self, now: Instant) {
        self.configure_default_channels(now);
        // PRI spans not started yet start with their protocol's default line configuration
        // and the timing priority they have (the card init's 1 unless configured); BRI spans
        // request layer-1 activation.
        let spans: Vec<(u32, u8)> = self
            .spans
            .iter()
            .filter(|s| s.line.pri().is_some_and(|p| !p.started) || s.line.bri().is_some_and(|b| !b.started))
            .map(|s| (s.spanno, s.timing_priority))
            .collect();
        for (spanno, prio) in spans {
            if let Err(e) =
                self.configure_span(spanno, None, prio).and_then(|()| self.start_span(now, spanno))
            {
                log::warn!("{}: span {spanno}: {e}", self.name);
            }
        }
    }

    fn configure_default_channels(&mut self, now: Instant) {
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
        let before = self.chans[ci].chan.clone();
        let refusals = self.stats.line_refusals;
        let r = self.chans[ci].chan.set_hook(now, cmd, mode)?;
        self.service(ci, now, false);
        if self.stats.line_refusals > refusals {
            // The line refused the command (an FXO seize before battery was detected,
            // docs/reference/xpp-protocol.md §9.2): the channel stays as it was and the PBX is
            // told, as the reference driver's hook call fails; a later try can succeed.
            self.chans[ci].chan = before;
            self.refresh(ci);
            return Err(ChanError::Refused(channo).into());
        }
        Ok(r)
    }

    /// GETEVENT on `channo` (REMOVED forever after removal).
    #[must_use = "the event is taken off the channel's queue"]
    pub fn poll_chan_event(&mut self, channo: u32) -> Result<Event, ChanError> {
        let ci = self.index(channo)?;
        Ok(self.chans[ci].chan.get_event())
    }

    /// The driver's alarm-notify for span `spanno` (digital layer 1); channels get
    /// ALARM/NOALARM on in/out transitions.
    pub fn set_span_alarms(&mut self, spanno: u32, alarms: Alarms) -> bool {
        let Some(si) = self.spans.iter().position(|s| s.spanno == spanno) else { return false };
        self.apply_span_alarms(si, alarms);
        true
    }

    /// A new alarm word for the span at index `si` (from the driver or the span's line).
    fn apply_span_alarms(&mut self, si: usize, alarms: Alarms) {
        let span = &mut self.spans[si];
        let (first, n, spanno) = (span.first, span.channels as usize, span.spanno);
        if let AlarmNotify::Propagate { word } = span.alarms.set_alarms(alarms) {
            for ch in &mut self.chans[first..first + n] {
                ch.chan.apply_span_alarms(word);
            }
            self.refresh_range(first..first + n);
            self.push_event(XbusEvent::SpanAlarms { spanno, alarms: word });
        }
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

#[cfg(test)]
mod tests {
    use super::PendingSet;

    /// Every marked index that `pending` accepts, in the order `find` returns them from `from`.
    fn drain(set: &mut PendingSet, from: usize, pending: &[usize]) -> Vec<usize> {
        let mut got = Vec::new();
        let mut at = from;
        while let Some(i) = set.find(at, |i| pending.contains(&i) && !got.contains(&i)) {
            got.push(i);
            at = i;
        }
        got
    }

    #[test]
    fn pending_set_finds_from_the_cursor_round_and_unmarks_the_empty() {
        let mut set = PendingSet::with_len(130);
        for i in [3, 64, 70, 129] {
            set.mark(i);
        }
        set.mark(130); // out of range: ignored
        assert_eq!(drain(&mut set, 65, &[3, 64, 70, 129]), [70, 129, 3, 64], "wraps round to the cursor");
        // Those found with nothing are unmarked: a later search does not look at them again.
        assert_eq!(set.find(0, |_| true), None, "drained: all unmarked");
        set.mark(64);
        set.mark(3);
        let mut looked = Vec::new();
        assert_eq!(
            set.find(10, |i| {
                looked.push(i);
                false
            }),
            None
        );
        assert_eq!(looked, [64, 3]);
        assert_eq!(set.find(0, |_| true), None);
        set.mark_all();
        assert_eq!(drain(&mut set, 0, &(0..130).collect::<Vec<_>>()).len(), 130);
        assert_eq!(PendingSet::with_len(0).find(0, |_| true), None);
    }
}
