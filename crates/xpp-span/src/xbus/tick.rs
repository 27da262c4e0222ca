//! The host tick (docs/reference/xpp-protocol.md §7.3) and the bus's timing: paced command
//! release, PLL drift and sync-counter resets, the PCM_WRITE round, every channel's periodic
//! work, the host's own timer while the device does not tick, and the OUT rings.

use xpp_proto::Instant;
use xpp_proto::wire::{Address, Framer, Message, PcmRound, Repr, SyncMode, SyncState, xbus_reset};

use super::{BusState, MS, OUT_QUEUE, RESET_SYNC_COUNTERS_TICKS, TICK_WATCHDOG, XbusCore};
use crate::sync::TickSample;

/// A tick interval above this is late (1000 µs + the reference's 500 µs tolerance).
const TICK_LATE_US: u64 = 1500;
/// A tick interval below this is early (1000 µs - 500 µs).
const TICK_EARLY_US: u64 = 500;

xpp_proto::timer_enum! {
    /// The bus's own deadlines, in a [`TimerTable`](xpp_proto::timer::TimerTable). Which one
    /// counts depends on who ticks: [`XbusCore::poll_timeout`] reports the watchdog while the
    /// device ticks, else the host tick (with the channels' timers).
    pub(super) enum Timer {
        /// While the device does not tick: the host's own 1 ms timer, which releases the
        /// paced commands.
        HostTick,
        /// While the device ticks: [`TICK_WATCHDOG`] after the last tick, when
        /// [`XbusCore::handle_timeout`] takes over the line and hook timers.
        Watchdog,
    }
}

/// A fixed ring of 512-byte transfers.
#[derive(Debug, Clone)]
pub(super) struct OutRing {
    bufs: Vec<[u8; 512]>,
    lens: Vec<u16>,
    head: usize,
    len: usize,
}

impl OutRing {
    pub(super) fn new() -> Self {
        Self { bufs: vec![[0; 512]; OUT_QUEUE], lens: vec![0; OUT_QUEUE], head: 0, len: 0 }
    }

    pub(super) fn push(&mut self, t: &[u8], dropped: &mut u64) {
        if self.len == OUT_QUEUE || t.len() > 512 {
            *dropped += 1;
            return;
        }
        let i = (self.head + self.len) % OUT_QUEUE;
        self.bufs[i][..t.len()].copy_from_slice(t);
        self.lens[i] = t.len() as u16;
        self.len += 1;
    }

    pub(super) fn pop(&mut self, buf: &mut [u8; 512]) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        let n = usize::from(self.lens[self.head]);
        buf[..n].copy_from_slice(&self.bufs[self.head][..n]);
        self.head = (self.head + 1) % OUT_QUEUE;
        self.len -= 1;
        Some(n)
    }

    pub(super) fn clear(&mut self) {
        self.len = 0;
    }
}

impl XbusCore {
    /// Timers due at `now`: line-model and hook-machine timers, and the host's own 1 ms
    /// command timer while the device does not tick.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state != BusState::Running {
            return;
        }
        if !self.self_ticking
            && let Some(at) = self.timers.get(Timer::HostTick)
            && at <= now
        {
            self.timers.set(Timer::HostTick, if at + MS > now { at + MS } else { now + MS });
            self.release_commands();
        }
        if self.self_ticking && self.timers.get(Timer::Watchdog).is_some_and(|at| at <= now) {
            // No tick for a while: serve the timers every ms until ticks resume.
            self.timers.set(Timer::Watchdog, now + MS);
        }
        self.service_all(now);
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

    pub(super) fn on_tick(&mut self, now: Instant) {
        self.stats.ticks += 1;
        if let Some(prev) = self.last_tick {
            let us = now.saturating_duration_since(prev).total_micros();
            self.stats.late_ticks += u64::from(us > TICK_LATE_US);
            self.stats.early_ticks += u64::from(us < TICK_EARLY_US);
            self.stats.max_tick_interval_us = self.stats.max_tick_interval_us.max(us);
        }
        self.last_tick = Some(now);
        self.timers.set(Timer::Watchdog, now + TICK_WATCHDOG);
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
        self.run_hdlc();
        self.build_round();
        self.service_all(now);
    }

    /// Every span's and every channel's periodic work, timers included.
    fn service_all(&mut self, now: Instant) {
        for si in 0..self.spans.len() {
            self.service_span(si, now, true);
        }
        for ci in 0..self.chans.len() {
            let slot = &self.slots[ci];
            // A channel without a line model and without a timer due has nothing to do: the
            // common case of a PRI's 31 channels per span. Every change to a channel
            // refreshes its slot, `due` included.
            if slot.lineless && slot.due.is_none_or(|t| t > now) {
                continue;
            }
            self.service(ci, now, true);
        }
    }

    pub(super) fn release_commands(&mut self) {
        let Self { cmds, out_cmd, scratch, stats, .. } = self;
        cmds.tick(|r| {
            if let Ok(n) = r.emit(&mut scratch[..]) {
                out_cmd.push(&scratch[..n], &mut stats.tx_dropped);
            }
        });
    }

    pub(super) fn emit_command(&mut self, r: &Repr<'_>) {
        if let Ok(n) = r.emit(&mut self.scratch[..]) {
            self.out_cmd.push(&self.scratch[..n], &mut self.stats.tx_dropped);
        }
    }

    fn build_round(&mut self) {
        debug_assert!(
            self.chans.iter().zip(&self.slots).all(|(c, s)| super::ChanSlot::of(c) == *s),
            "a channel changed without XbusCore::refresh"
        );
        debug_assert!((0..self.spans.len()).all(|si| self.runs_agree(si)), "stale chunk runs");
        let mut wanted = [0u32; 64];
        for s in &self.slots {
            if let Some((x, b)) = s.pcm
                && s.wants
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
}
