//! The data interface (interface 0) in stage 11x2: XPP protocol, ticks and PCM, the module
//! chips and the equipment on their ports (MODEL.md XPP, REG, TIME, FXS, FXO, PRI, BRI, ECHO,
//! EQ, PATCH rows).
//!
//! [`DataInterface`] is a sans-IO core. Its methods, by kind:
//!
//! - inputs: [`handle_out`](DataInterface::handle_out) (one bulk OUT transfer on EP 0x02),
//!   [`handle_timeout`](DataInterface::handle_timeout), session changes
//!   ([`start_session`](DataInterface::start_session),
//!   [`stop_session`](DataInterface::stop_session),
//!   [`power_on_reset`](DataInterface::power_on_reset)), and equipment actions through
//!   [`phone_mut`](DataInterface::phone_mut), [`pstn_mut`](DataInterface::pstn_mut),
//!   [`pri_far_end_mut`](DataInterface::pri_far_end_mut),
//!   [`bri_far_end_mut`](DataInterface::bri_far_end_mut) and [`patch`](DataInterface::patch);
//! - outputs: [`poll_in`](DataInterface::poll_in) (the next bulk IN transfer for EP 0x86),
//!   [`poll_timeout`](DataInterface::poll_timeout), [`poll_event`](DataInterface::poll_event)
//!   and the observers (`*_state`, [`stats`](DataInterface::stats)).
//!
//! Polling order: after any input, call `handle_timeout` when `poll_timeout` is due, then drain
//! `poll_in` and `poll_event`. Everything happens on the caller's [`Instant`]: while a session is
//! up the device runs a 1 ms scan (its internal clock, TIME-1) that advances equipment, reports
//! hook/ring/DTMF/CAS changes and, while ticking, emits one PCM round.

mod bri;
pub mod callerid;
mod echo;
mod equipment;
mod event;
mod faults;
mod fxo;
mod fxs;
pub mod g711;
mod hdlc;
mod link;
mod patch;
mod pri;
pub mod q921;
mod regs;
mod tick;
mod xpp;

use std::collections::VecDeque;

use xpp_proto::Instant;
use xpp_proto::wire::{Address, MAX_TRANSFER, Repr, UnitDescriptor};

pub use bri::BriPortState;
pub use equipment::{BriFarEnd, CallState, LineFeed, Phone, PriFarEnd, PstnLine};
pub use event::{Event, EventKind, PortRef};
pub use fxo::FxoPortState;
pub use fxs::FxsPortState;
pub use g711::{Law, Source};
pub use link::{CrossLink, LinkSide};
pub use patch::{AudioChannel, PatchError};
pub use pri::PriPortState;

pub use crate::config::{DataConfig, EquipmentTimings, PcmReadMask};
use crate::config::{DataFault, DeviceConfig};

/// µ-law silence.
pub(crate) const SILENCE_U: u8 = 0xFF;

/// Counters in the window that XBUS_RESET 0x10 restarts (MODEL: TIME-17).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct WindowStats {
    /// Ticks emitted.
    pub ticks: u64,
    /// PCM_WRITE rounds begun.
    pub rounds: u64,
    /// Tick intervals without a round.
    pub missed_rounds: u64,
    /// Extra rounds in one interval.
    pub extra_rounds: u64,
}

/// Counters of the data interface (totals reset only at power-on, MODEL: TIME-17).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Stats {
    /// Ticks emitted (PCM rounds sent).
    pub ticks: u64,
    /// PCM_WRITE rounds begun.
    pub rounds: u64,
    /// Tick intervals without a PCM_WRITE round.
    pub missed_rounds: u64,
    /// Second rounds in one tick interval.
    pub extra_rounds: u64,
    /// PCM frames dropped for a bad packet (TIME-16).
    pub pcm_malformed: u64,
    /// PCM frames dropped while not ticking (TIME-18).
    pub pcm_dropped_not_ticking: u64,
    /// Transfers cut short by a bad packet length (XPP-2).
    pub xpp_malformed: u64,
    /// Packets ignored: unknown opcode, wrong card, bad length, bad reg_cmd (XPP-4, REG-2).
    pub ignored: u64,
    /// XBUS_RESET bits other than 0x04 / 0x10 (XPP-12).
    pub xbus_reset_other: u64,
    /// IN transfers dropped because `max_queued_in` were waiting.
    pub in_dropped: u64,
    /// OUT transfers received outside a session.
    pub out_not_in_session: u64,
    /// BRI D-channel frames from the host discarded (layer 1 down, too long; BRI-8).
    pub dchannel_tx_discarded: u64,
    /// BRI D-channel frames toward the host discarded (delivery off; BRI-9).
    pub dchannel_rx_discarded: u64,
    /// Data-interface faults applied (FAULT-11, FAULT-12).
    pub faults_injected: u64,
    /// Ticks that emitted no PCM round because of a `SkipPcm` fault (FAULT-12).
    pub pcm_rounds_skipped: u64,
    /// SYNC_REPLYs not sent because of an `OmitSyncReply` fault (FAULT-12).
    pub sync_replies_omitted: u64,
    /// Counters since the last XBUS_RESET 0x10.
    pub window: WindowStats,
}

/// IN transfers waiting for the host, with recycled buffers.
#[derive(Debug, Default)]
pub(crate) struct OutQueue {
    q: VecDeque<Vec<u8>>,
    free: Vec<Vec<u8>>,
    limit: usize,
    pub(crate) dropped: u64,
}

impl OutQueue {
    fn new(limit: usize) -> Self {
        Self { q: VecDeque::new(), free: Vec::new(), limit, dropped: 0 }
    }

    pub(crate) fn buffer(&mut self) -> Vec<u8> {
        let mut b = self.free.pop().unwrap_or_else(|| Vec::with_capacity(MAX_TRANSFER));
        b.clear();
        b
    }

    pub(crate) fn len(&self) -> usize {
        self.q.len()
    }

    pub(crate) fn push(&mut self, b: Vec<u8>) {
        if b.is_empty() {
            self.free.push(b);
        } else if self.q.len() >= self.limit {
            self.dropped += 1;
            self.free.push(b);
        } else {
            self.q.push_back(b);
        }
    }

    pub(crate) fn insert(&mut self, at: usize, b: Vec<u8>) {
        if self.q.len() >= self.limit {
            self.dropped += 1;
            self.free.push(b);
        } else {
            self.q.insert(at.min(self.q.len()), b);
        }
    }

    /// Emits `repr` as its own transfer; returns it for patching (REG-3 echo).
    pub(crate) fn push_repr(&mut self, repr: &Repr<'_>) -> Option<&mut Vec<u8>> {
        let mut b = self.buffer();
        b.resize(repr.buffer_len(), 0);
        if repr.emit(&mut b).is_err() {
            self.free.push(b);
            return None;
        }
        let before = self.q.len();
        self.push(b);
        if self.q.len() > before { self.q.back_mut() } else { None }
    }

    /// Several packets packed back to back into as few transfers as fit.
    pub(crate) fn batch(&mut self) -> Batch<'_> {
        let cur = self.buffer();
        Batch { q: self, cur }
    }

    fn pop(&mut self) -> Option<Vec<u8>> {
        self.q.pop_front()
    }

    fn recycle(&mut self, b: Vec<u8>) {
        if self.free.len() < 64 {
            self.free.push(b);
        }
    }

    fn clear(&mut self) {
        while let Some(b) = self.q.pop_front() {
            self.recycle(b);
        }
    }
}

/// See [`OutQueue::batch`]; the last transfer is queued on drop.
pub(crate) struct Batch<'q> {
    q: &'q mut OutQueue,
    cur: Vec<u8>,
}

impl Batch<'_> {
    pub(crate) fn push(&mut self, repr: &Repr<'_>) {
        let len = repr.buffer_len();
        if self.cur.len() + len > MAX_TRANSFER {
            let full = core::mem::replace(&mut self.cur, self.q.buffer());
            self.q.push(full);
        }
        let start = self.cur.len();
        self.cur.resize(start + len, 0);
        if repr.emit(&mut self.cur[start..]).is_err() {
            self.cur.truncate(start);
        }
    }
}

impl Drop for Batch<'_> {
    fn drop(&mut self) {
        let last = core::mem::take(&mut self.cur);
        self.q.push(last);
    }
}

/// A module in a unit.
#[derive(Debug, Clone)]
pub(crate) enum Card {
    Fxs(Box<fxs::FxsUnit>),
    Fxo(Box<fxo::FxoUnit>),
    Pri(Box<pri::PriUnit>),
    Bri(Box<bri::BriUnit>),
    Echo(Box<echo::EchoUnit>),
}

/// Sync mode in effect (MODEL: TIME-2..6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Sync {
    #[default]
    None,
    Ab,
    Pll,
}

/// Interface 0 of a running (11x2) device and everything behind it.
#[derive(Debug)]
pub struct DataInterface {
    cfg: DataConfig,
    device: DeviceConfig,
    units: [Option<Card>; 5],
    descriptors: Vec<UnitDescriptor>,
    pcm: Vec<tick::XpdPcm>,
    pcm_pos: [Option<u8>; 64],
    clock: tick::Clock,
    sync: Sync,
    adjustment: i8,
    session: bool,
    ticked_once: bool,
    round_since_tick: bool,
    bri_delivery: bool,
    out: OutQueue,
    events: event::EventLog,
    stats: Stats,
    patches: Vec<patch::Patch>,
    bridges: Vec<(AudioChannel, AudioChannel)>,
    remote: Vec<(AudioChannel, CrossLink, LinkSide)>,
    remote_lines: Vec<(PortRef, CrossLink, LinkSide)>,
    faults: faults::DataFaults,
}

impl DataInterface {
    /// Modules and equipment at power-on, from the configuration.
    pub fn new(config: &DeviceConfig) -> Self {
        let cfg = config.data.clone();
        let mut d = Self {
            out: OutQueue::new(cfg.max_queued_in.max(1)),
            events: event::EventLog::new(cfg.event_log_limit),
            clock: tick::Clock::new(cfg.crystal_ppm),
            cfg,
            device: config.clone(),
            units: [None, None, None, None, None],
            descriptors: Vec::new(),
            pcm: Vec::new(),
            pcm_pos: [None; 64],
            sync: Sync::None,
            adjustment: 0,
            session: false,
            ticked_once: false,
            round_since_tick: false,
            bri_delivery: true,
            stats: Stats::default(),
            patches: Vec::new(),
            bridges: Vec::new(),
            remote: Vec::new(),
            remote_lines: Vec::new(),
            faults: faults::DataFaults::default(),
        };
        d.build();
        d
    }

    /// The data-interface tunables in use.
    pub fn config(&self) -> &DataConfig {
        &self.cfg
    }

    /// Counters (MODEL: TIME-17).
    pub fn stats(&self) -> Stats {
        let mut s = self.stats;
        s.in_dropped = self.out.dropped;
        s
    }

    /// IN transfers waiting for [`DataInterface::poll_in`].
    pub fn queued_in(&self) -> usize {
        self.out.len()
    }

    /// The next equipment/line event, oldest first (MODEL: EQ-9).
    #[must_use = "the event is taken off the queue"]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop()
    }

    /// The events not yet polled.
    pub fn events(&self) -> impl Iterator<Item = &Event> {
        self.events.iter()
    }

    /// The sync mode in effect and the PLL adjustment (MODEL: TIME-3..7).
    pub fn sync_state(&self) -> xpp_proto::wire::SyncState {
        xpp_proto::wire::SyncState { mode: self.sync_mode(), drift: self.adjustment }
    }

    /// Whether the device emits a PCM round every ms (AB or PLL, in a session).
    pub fn is_ticking(&self) -> bool {
        self.session && self.sync != Sync::None
    }

    /// Whether BRI D-channel delivery toward the host is on (MODEL: BRI-10).
    pub fn bri_delivery(&self) -> bool {
        self.bri_delivery
    }

    fn unit(&self, unit: u8) -> Option<&Card> {
        self.units.get(usize::from(unit)).and_then(Option::as_ref)
    }

    fn unit_mut(&mut self, unit: u8) -> Option<&mut Card> {
        self.units.get_mut(usize::from(unit)).and_then(Option::as_mut)
    }

    /// The phone on FXS port (`unit`, `port`).
    pub fn phone(&self, unit: u8, port: u8) -> Option<&Phone> {
        match self.unit(unit)? {
            Card::Fxs(u) => u.ports.get(usize::from(port)).map(|p| &p.phone),
            _ => None,
        }
    }

    /// The phone on FXS port (`unit`, `port`), to act on it (MODEL: EQ-1).
    pub fn phone_mut(&mut self, unit: u8, port: u8) -> Option<&mut Phone> {
        match self.unit_mut(unit)? {
            Card::Fxs(u) => u.ports.get_mut(usize::from(port)).map(|p| &mut p.phone),
            _ => None,
        }
    }

    /// The PSTN line on FXO port (`unit`, `port`).
    pub fn pstn(&self, unit: u8, port: u8) -> Option<&PstnLine> {
        match self.unit(unit)? {
            Card::Fxo(u) => u.ports.get(usize::from(port)).map(|p| &p.line),
            _ => None,
        }
    }

    /// The PSTN line on FXO port (`unit`, `port`), to act on it (MODEL: EQ-3..6).
    pub fn pstn_mut(&mut self, unit: u8, port: u8) -> Option<&mut PstnLine> {
        match self.unit_mut(unit)? {
            Card::Fxo(u) => u.ports.get_mut(usize::from(port)).map(|p| &mut p.line),
            _ => None,
        }
    }

    /// The far end of PRI port (`unit`, `port`) (MODEL: EQ-7).
    pub fn pri_far_end_mut(&mut self, unit: u8, port: u8) -> Option<&mut PriFarEnd> {
        match self.unit_mut(unit)? {
            Card::Pri(u) if port < u.nports => u.ports.get_mut(usize::from(port)).map(|p| &mut p.far),
            _ => None,
        }
    }

    /// The far end of BRI port (`unit`, `port`) (MODEL: EQ-8).
    pub fn bri_far_end_mut(&mut self, unit: u8, port: u8) -> Option<&mut BriFarEnd> {
        match self.unit_mut(unit)? {
            Card::Bri(u) => u.ports.get_mut(usize::from(port)).map(|p| &mut p.far),
            _ => None,
        }
    }

    /// Observable state of FXS port (`unit`, `port`).
    pub fn fxs_state(&self, unit: u8, port: u8) -> Option<FxsPortState> {
        match self.unit(unit)? {
            Card::Fxs(u) => u.state(port),
            _ => None,
        }
    }

    /// Observable state of FXO port (`unit`, `port`).
    pub fn fxo_state(&self, unit: u8, port: u8) -> Option<FxoPortState> {
        match self.unit(unit)? {
            Card::Fxo(u) => u.state(port),
            _ => None,
        }
    }

    /// Observable state of PRI port (`unit`, `port`).
    pub fn pri_state(&self, unit: u8, port: u8) -> Option<PriPortState> {
        match self.unit(unit)? {
            Card::Pri(u) => u.state(port),
            _ => None,
        }
    }

    /// Observable state of BRI port (`unit`, `port`).
    pub fn bri_state(&self, unit: u8, port: u8) -> Option<BriPortState> {
        match self.unit(unit)? {
            Card::Bri(u) => u.state(port),
            _ => None,
        }
    }

    /// The last echo-canceller timeslot map (MODEL: ECHO-2).
    pub fn echo_map(&self) -> Option<&[u8; 128]> {
        match self.unit(4)? {
            Card::Echo(e) => Some(&e.map),
            _ => None,
        }
    }

    /// Sets FXS digital input `input` (0..3) of `unit` active or idle (MODEL: FXS-16, FXS-18).
    pub fn set_digital_input(&mut self, unit: u8, input: u8, active: bool) {
        if let Some(Card::Fxs(u)) = self.unit_mut(unit)
            && let Some(i) = u.inputs.get_mut(usize::from(input))
        {
            *i = active;
        }
    }

    /// Fault: FXS overheat on (`unit`, `port`) (MODEL: FXS-22).
    pub fn inject_overheat(&mut self, unit: u8, port: u8) {
        if let Some(Card::Fxs(u)) = self.unit_mut(unit) {
            u.inject_overheat(port);
        }
    }

    fn pcm_of(&self, unit: u8, sub: u8) -> Option<&tick::XpdPcm> {
        let i = Address::new(unit, sub)?.xpd_index();
        self.pcm.get(usize::from(self.pcm_pos.get(usize::from(i)).copied().flatten()?))
    }

    /// The next bulk IN transfer for endpoint 0x86, written into `buf`; its length.
    #[must_use = "the transfer is taken off the queue; its length is the only way to read `buf`"]
    pub fn poll_in(&mut self, _now: Instant, buf: &mut [u8; 512]) -> Option<usize> {
        let b = self.out.pop()?;
        let n = b.len().min(MAX_TRANSFER);
        buf[..n].copy_from_slice(&b[..n]);
        self.out.recycle(b);
        Some(n)
    }

    /// Runs timers due at `now` (ticks, ring cadences, equipment).
    pub fn handle_timeout(&mut self, now: Instant) {
        if !self.session {
            return;
        }
        let mut steps = 0u32;
        while now >= self.next_tick() {
            // Decision: a caller that falls more than 60 s behind skips the missed ms (the
            // clock re-phases) instead of replaying them.
            if steps >= 60_000 {
                self.clock.catch_up(now);
                break;
            }
            let at = self.next_tick();
            self.step(at);
            self.clock.advance();
            self.faults.tick_done();
            steps += 1;
        }
    }

    /// When [`DataInterface::handle_timeout`] must next run.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.session.then(|| self.next_tick())
    }

    /// The next internal ms boundary, moved by any tick jitter fault (FAULT-12).
    fn next_tick(&self) -> Instant {
        faults::shift(self.clock.next_instant(), self.faults.jitter_us())
    }

    /// Applies a data-interface fault now (MODEL: FAULT-11, FAULT-12); see
    /// [`DataFault`]. Faults that emit packets do so only in a session.
    pub fn inject(&mut self, now: Instant, fault: DataFault) {
        self.stats.faults_injected += 1;
        let seed = self.device.seed;
        match fault {
            DataFault::ErrorCode { category, errorbits } => {
                if self.session {
                    let copy = &self.faults.last_cmd[..self.faults.last_cmd_len];
                    let e = xpp_proto::wire::ErrorCode { category, errorbits, copy };
                    let repr = Repr::command(Address::ZERO, xpp_proto::wire::Message::ErrorCode(e));
                    self.out.push_repr(&repr);
                }
            }
            DataFault::NullReply => {
                if self.session {
                    self.out.push_repr(&Repr::command(Address::ZERO, xpp_proto::wire::Message::NullReply));
                }
            }
            DataFault::OmitSyncReply => self.faults.omit_sync = self.faults.omit_sync.saturating_add(1),
            DataFault::SkipPcm { ticks } => self.faults.skip_pcm = self.faults.skip_pcm.saturating_add(ticks),
            DataFault::TickJitter { max_us, ticks } => self.faults.start_jitter(seed, now, max_us, ticks),
            DataFault::HookBounce { unit, port, bounces } => {
                let rng = faults::DataFaults::stream(
                    seed,
                    Instant::ZERO,
                    0xB0_0CE0 + u64::from(unit) * 8 + u64::from(port),
                );
                if let Some(Card::Fxs(u)) = self.unit_mut(unit) {
                    u.set_bounce(port, bounces, rng);
                }
            }
            DataFault::BriBadFrame { unit, port, abort } => {
                if let Some(f) = self.bri_far_end_mut(unit, port) {
                    f.damage_next(abort);
                }
            }
        }
    }

    /// A host session starts (entry into 11x2 on the active port): sync NONE, queues empty.
    pub fn start_session(&mut self, now: Instant) {
        // MODEL: TIME-2, TIME-20
        self.session = true;
        self.reset_session();
        self.clock.catch_up(now);
    }

    /// The host session ends (renumeration, detach, jump, power-off): stop ticking, drop
    /// queued IN transfers.
    pub fn stop_session(&mut self) {
        self.session = false;
        self.reset_session();
    }

    fn reset_session(&mut self) {
        self.sync = Sync::None;
        self.out.clear();
        self.ticked_once = false;
        self.round_since_tick = false;
        for x in &mut self.pcm {
            x.read_mask = 0;
            x.silence_tx();
        }
        self.apply_mask_policy();
    }

    /// Module chips back to power-on state; with `equipment`, lines and equipment too.
    pub fn power_on_reset(&mut self, equipment: bool) {
        if equipment {
            self.patches.clear();
            self.bridges.clear();
            self.remote.clear();
            self.remote_lines.clear();
            self.stats = Stats::default();
            self.adjustment = 0;
            self.bri_delivery = true;
            self.build();
        } else {
            self.reset_chips();
        }
        self.sync = Sync::None;
        self.clock.set_period(self.cfg.crystal_ppm, self.adjustment, self.cfg.pll_step_ppm);
    }
}
