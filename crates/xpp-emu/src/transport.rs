//! The in-process front-end: an [`Emulator`] (one device and its clock, shared) and one
//! [`EmulatedTransport`] per USB port implementing [`xpp_usb::Transport`].
//!
//! # Clock modes
//!
//! - [`ClockMode::Manual`] (virtual): time moves only by [`Emulator::advance`] /
//!   [`Emulator::advance_to`], which run every due timer in time order.
//!   `wait_next_complete` returns what is ready and never blocks or moves time. Fully
//!   deterministic, for any number of host threads.
//! - [`ClockMode::AutoAdvance`] (virtual): `wait_next_complete` moves the virtual clock forward,
//!   timer by timer, up to its `timeout` (read as virtual time) until a completion is ready.
//!   Deterministic for one host thread; with several host threads the interleaving decides who
//!   advances the clock.
//! - [`ClockMode::RealTime`]: [`Emulator::real_time`] starts a [`RealTimeRunner`] thread that
//!   runs the model on the wall clock every 1 ms; waits block on a condition variable up to
//!   their real `timeout`. Dropping the runner stops and joins the thread.
//! - [`ClockMode::Paced`] (a test aid for slow hosts): [`Emulator::paced`] starts a
//!   [`RealTimeRunner`] that moves the clock with the wall clock, timer by timer, but holds it
//!   while more than a bound of device IN transfers wait undelivered on `0x86`, and, while the
//!   host answers ticks with PCM_WRITE rounds, until the host's round for the last tick has
//!   begun (at most [`ROUND_WAIT`]); the time held is never caught up (the device clock slips
//!   behind the wall clock, see [`Emulator::pace_lag`]). A host that keeps up sees real time;
//!   a host that falls behind (a TCG-emulated guest, a loaded CI machine) sees a device that
//!   waits for it instead of overflowing its FIFO or counting its late rounds as missed. A
//!   real device never waits (MODEL.md USB-12, TIME-17, TIME-21).
//!
//! A device departure (renumeration, jump, unplug, power-off) completes every pending transfer
//! of a transport with [`TransferError::Disconnected`] and fails every later call with it; a
//! bus reset completes transfers submitted before it with [`TransferError::Cancelled`]. Nothing
//! blocks past its timeout and nothing panics.
//!
//! ```
//! use xpp_emu::{DeviceConfig, transport::Emulator};
//! use xpp_usb::Transport;
//! use xpp_proto::mgmt::{Reply, Request};
//! use std::time::Duration;
//!
//! let emu = Emulator::new(DeviceConfig::default().with_start_stage(xpp_emu::config::Stage::UsbLoaded));
//! let mut t = emu.transport(0).expect("enumerated at power-on");
//! assert_eq!(t.info().product_id, 0x1161);
//! let mut req = vec![0u8; 5];
//! Request::StatusGet.emit(1, &mut req).unwrap();
//! t.submit(0x04, req).unwrap();
//! let c = t.transfer_blocking(0x88, vec![0; 512], Duration::from_millis(10));
//! let (seq, reply) = Reply::parse(&c.buffer).unwrap();
//! assert!(matches!(reply, Reply::StatusGetReply(_)) && seq == 1);
//! ```

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use xpp_proto::{Duration, Instant};
use xpp_usb::{Completion, ControlSetup, DeviceInfo, TransferError, Transport};

use crate::config::DeviceConfig;
use crate::device::Device;

/// How time moves (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ClockMode {
    /// Virtual; only `advance` moves time.
    Manual,
    /// Virtual; waits advance time up to their timeout.
    AutoAdvance,
    /// Wall clock, driven by a [`RealTimeRunner`].
    RealTime,
    /// Wall clock held back while the host does not keep up (a test aid), driven by a
    /// [`RealTimeRunner`] from [`Emulator::paced`].
    Paced,
}

impl ClockMode {
    /// Whether a [`RealTimeRunner`] thread moves the clock (the caller cannot).
    const fn runner_driven(self) -> bool {
        matches!(self, Self::RealTime | Self::Paced)
    }
}

/// [`ClockMode::Paced`]: the longest the clock waits for the host's PCM_WRITE round after a
/// tick; then it ticks anyway (a missed round, TIME-17) and waits no more until the host
/// answers a tick again.
// Decision: 200 ms — far above a host round trip under TCG (gaps of about 50 ms seen), short
// enough that a host that stops sending PCM without stopping the ticks costs one pause.
pub const ROUND_WAIT: std::time::Duration = std::time::Duration::from_millis(200);

/// Consecutive timer firings that do not move time before the clock gives up on an instant
/// (protects against a model timer that never clears).
const STUCK_LIMIT: usize = 10_000;

#[derive(Debug)]
struct State {
    device: Device,
    now: Instant,
    mode: ClockMode,
    stop: bool,
    /// [`ClockMode::Paced`]: undelivered `0x86` transfers above which the clock holds.
    pace_bound: usize,
    /// [`ClockMode::Paced`]: how far the device clock has slipped behind the wall clock.
    lag: Duration,
    /// [`ClockMode::Paced`]: the host's rounds versus the device's ticks.
    rounds: RoundWait,
}

/// [`ClockMode::Paced`]: whether the host's PCM_WRITE round for the last tick is still
/// awaited (see [`ROUND_WAIT`]).
#[derive(Debug, Default)]
struct RoundWait {
    /// The device's tick count when last looked at.
    ticks: u64,
    /// The host's rounds begun by then.
    rounds: u64,
    /// A round began in the tick interval before that tick: the host answers ticks.
    engaged: bool,
    /// When the wait for this tick's round started (wall clock).
    since: Option<std::time::Instant>,
}

impl RoundWait {
    /// Whether to hold the clock for the host's round (device counters `ticks`, `rounds`).
    fn hold(&mut self, ticks: u64, rounds: u64) -> bool {
        if ticks != self.ticks {
            // A tick went out since the last look: did the host answer the one before?
            self.engaged = rounds != self.rounds;
            (self.ticks, self.rounds, self.since) = (ticks, rounds, None);
        }
        if !self.engaged || rounds != self.rounds {
            return false;
        }
        let since = *self.since.get_or_insert_with(std::time::Instant::now);
        if since.elapsed() < ROUND_WAIT {
            true
        } else {
            // The host stopped answering: tick on freely until it answers again.
            self.engaged = false;
            false
        }
    }
}

impl State {
    fn advance_to(&mut self, t: Instant) {
        self.advance_unless(t, |_| false);
    }

    /// Runs every timer due up to `t` in order, then moves the clock to `t`, unless `held`
    /// says, before a timer (or before the final step), that time must stand still: then it
    /// stops there and returns `true`.
    fn advance_unless(&mut self, t: Instant, mut held: impl FnMut(&mut Self) -> bool) -> bool {
        let mut stuck = 0;
        loop {
            if held(self) {
                return true;
            }
            let Some(next) = self.device.poll_timeout().filter(|&n| n <= t) else { break };
            if next <= self.now {
                stuck += 1;
                if stuck > STUCK_LIMIT {
                    break;
                }
            } else {
                stuck = 0;
            }
            self.now = self.now.max(next);
            self.device.handle_timeout(self.now);
        }
        self.now = self.now.max(t);
        self.device.handle_timeout(self.now);
        false
    }

    /// Device IN transfers waiting on `0x86`, every port.
    fn backlog(&self) -> usize {
        (0..self.device.port_count()).map(|p| self.device.in_queued(p, xpp_usb::ep::DATA_IN)).sum()
    }

    /// [`ClockMode::Paced`]: like [`State::advance_to`], but stands still (before the next
    /// timer) while the `0x86` backlog is above the bound or, while ticking, the host's round
    /// for the last tick is awaited ([`RoundWait`]); whether it stopped short of `t`.
    fn advance_paced(&mut self, t: Instant) -> bool {
        self.advance_unless(t, |s| {
            let data = s.device.data();
            let (st, ticking) = (data.stats(), data.is_ticking());
            s.backlog() > s.pace_bound || (ticking && s.rounds.hold(st.ticks, st.rounds))
        })
    }
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    cond: Condvar,
    epoch: std::time::Instant,
}

/// One emulated device and its clock, shared by its transports (cheap to clone).
#[derive(Debug, Clone)]
pub struct Emulator {
    shared: Arc<Shared>,
}

impl Emulator {
    /// A device on a manual virtual clock starting at zero.
    pub fn new(cfg: DeviceConfig) -> Self {
        Self::with_mode(cfg, ClockMode::Manual)
    }

    /// A device on a virtual clock in `mode` ([`ClockMode::RealTime`] and [`ClockMode::Paced`]
    /// need a runner: use [`Emulator::real_time`] or [`Emulator::paced`]).
    pub fn with_mode(cfg: DeviceConfig, mode: ClockMode) -> Self {
        let state = State {
            device: Device::new(cfg),
            now: Instant::ZERO,
            mode,
            stop: false,
            pace_bound: usize::MAX,
            lag: Duration::ZERO,
            rounds: RoundWait::default(),
        };
        Self {
            shared: Arc::new(Shared {
                state: Mutex::new(state),
                cond: Condvar::new(),
                epoch: std::time::Instant::now(),
            }),
        }
    }

    /// A device on the wall clock with its runner thread (stopped when the runner drops).
    pub fn real_time(cfg: DeviceConfig) -> (Self, RealTimeRunner) {
        let emu = Self::with_mode(cfg, ClockMode::RealTime);
        let runner_emu = emu.clone();
        let handle = std::thread::Builder::new()
            .name("xpp-emu-runner".into())
            .spawn(move || runner_emu.run_real_time())
            .ok();
        (emu.clone(), RealTimeRunner { emu, handle })
    }

    /// A device on the wall clock, held back while more than `max_backlog` device IN
    /// transfers wait undelivered on `0x86` ([`ClockMode::Paced`], a test aid for hosts too slow
    /// for 1000 transfers/s), with its runner thread (stopped when the runner drops).
    ///
    /// While the host answers the device's ticks with PCM_WRITE rounds (it answered the tick
    /// before), the clock also waits after each tick until the host's round for it has begun,
    /// at most [`ROUND_WAIT`], so a host whose answers come late does not see them counted as
    /// missed (TIME-17) and its audio cut. A host that sends no PCM (a rate measurement, a
    /// bring-up) is not waited for.
    ///
    /// Keep `max_backlog` well below the FIFO depth (`CoreConfig::data_in_depth`, 64) so that
    /// replies queued behind a held-back backlog still fit: the FIFO then never overflows.
    /// While no host reads `0x86` at all, a ticking device's clock stands still after
    /// `max_backlog` transfers (its timers too: watchdog, renumeration delays, line timers).
    // Decision: hold the clock on the host's backlog rather than run it at a fixed fraction of
    // real time: a fraction is either too slow for a fast host or too fast for a loaded one,
    // and can still overflow when the host stalls; holding adapts to whatever the host
    // achieves at each moment, never loses a transfer, and costs nothing while the host keeps
    // up (the device then runs in real time, as in `RealTime`). Waiting for the host's round
    // as well: measured in the TCG guest, a runner that wakes every few ms emits ticks in
    // bursts and the host answers in bursts, so most tick intervals got no round or two
    // (missed + extra, TIME-17) and a 2 kHz tone did not survive the bridge; waiting for each
    // round makes the device follow the host's loop one tick at a time. The held time is not caught
    // up afterwards (no burst of rounds), so the device stays a steady 1 ms source for the
    // host, only slower on average; device time (and so every device-side duration: ring
    // cadence, hook debounce, watchdog) stays self-consistent.
    pub fn paced(cfg: DeviceConfig, max_backlog: usize) -> (Self, RealTimeRunner) {
        let emu = Self::with_mode(cfg, ClockMode::Paced);
        emu.lock().pace_bound = max_backlog;
        let runner_emu = emu.clone();
        let handle = std::thread::Builder::new()
            .name("xpp-emu-paced".into())
            .spawn(move || runner_emu.run_paced())
            .ok();
        (emu.clone(), RealTimeRunner { emu, handle })
    }

    /// [`ClockMode::Paced`]: how far the device clock has fallen behind the wall clock (the
    /// time held back so far); zero in the other modes.
    pub fn pace_lag(&self) -> Duration {
        self.lock().lag
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn wall_now(&self) -> Instant {
        Instant::from_micros(self.shared.epoch.elapsed().as_micros().min(u128::from(u64::MAX)) as u64)
    }

    /// The clock mode.
    pub fn mode(&self) -> ClockMode {
        self.lock().mode
    }

    /// The current device time.
    pub fn now(&self) -> Instant {
        let s = self.lock();
        if s.mode == ClockMode::RealTime { self.wall_now().max(s.now) } else { s.now }
    }

    /// Advances the virtual clock by `d`, running every due timer in order. No effect in
    /// real-time and paced modes.
    pub fn advance(&self, d: Duration) {
        let t = self.now() + d;
        self.advance_to(t);
    }

    /// Advances the virtual clock to `t` (never backwards). No effect in real-time and paced
    /// modes.
    pub fn advance_to(&self, t: Instant) {
        let mut s = self.lock();
        if !s.mode.runner_driven() {
            s.advance_to(t);
        }
        drop(s);
        self.shared.cond.notify_all();
    }

    /// Advances the virtual clock timer by timer until `done(device)` holds or `limit` has
    /// passed; whether it held.
    pub fn run_until(&self, limit: Duration, mut done: impl FnMut(&Device) -> bool) -> bool {
        let mut s = self.lock();
        let end = s.now + limit;
        loop {
            if done(&s.device) {
                return true;
            }
            if s.now >= end || s.mode.runner_driven() {
                return false;
            }
            let next = s.device.poll_timeout().filter(|&n| n > s.now).map_or(end, |n| n.min(end));
            s.advance_to(next);
            self.shared.cond.notify_all();
        }
    }

    /// Runs `f` on the device (its methods take [`Device::now`] or [`Emulator::now`]).
    pub fn with_device<R>(&self, f: impl FnOnce(&mut Device) -> R) -> R {
        let mut s = self.lock();
        if s.mode == ClockMode::RealTime {
            let now = self.wall_now();
            s.now = s.now.max(now);
            let t = s.now;
            s.device.handle_timeout(t);
        }
        let r = f(&mut s.device);
        drop(s);
        self.shared.cond.notify_all();
        r
    }

    /// Opens whatever is enumerated on `port` now, or `None`.
    pub fn transport(&self, port: u8) -> Option<EmulatedTransport> {
        let s = self.lock();
        let generation = s.device.generation(port)?;
        let info = s.device.port_info(port)?;
        Some(EmulatedTransport {
            emu: self.clone(),
            port,
            generation,
            info,
            queues: Default::default(),
            gone: false,
        })
    }

    /// The paced runner: the wall clock minus the time held so far is the target; held
    /// time is added to the lag (see [`Emulator::paced`]).
    fn run_paced(&self) {
        loop {
            let mut s = self.lock();
            if s.stop {
                return;
            }
            let wall = self.wall_now();
            let target = Instant::from_micros(wall.total_micros().saturating_sub(s.lag.total_micros()));
            let held = s.advance_paced(target);
            if held {
                s.lag = wall.saturating_duration_since(s.now);
            }
            self.shared.cond.notify_all();
            if held {
                // Woken early by the host's next transfer (every transport call notifies).
                drop(
                    self.shared
                        .cond
                        .wait_timeout(s, std::time::Duration::from_millis(1))
                        .unwrap_or_else(std::sync::PoisonError::into_inner),
                );
            } else {
                drop(s);
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
    }

    fn run_real_time(&self) {
        loop {
            let mut s = self.lock();
            if s.stop {
                return;
            }
            let now = self.wall_now();
            s.advance_to(now);
            drop(s);
            self.shared.cond.notify_all();
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
}

/// The emulator's clock as the host stack's one clock, so that a driver, its bring-up and its
/// PBX calls run on the device's time: in the virtual modes sleeping moves the clock (every
/// due device timer runs on the way); in the real-time and paced modes, where the runner
/// moves it, sleeping waits until it has got there (or the runner stopped).
impl xpp_usb::Clock for Emulator {
    fn now(&self) -> Instant {
        Self::now(self)
    }

    fn sleep_until(&self, deadline: Instant) {
        let mut s = self.lock();
        if !s.mode.runner_driven() {
            drop(s);
            self.advance_to(deadline);
            return;
        }
        loop {
            let now = if s.mode == ClockMode::RealTime { self.wall_now().max(s.now) } else { s.now };
            if now >= deadline || s.stop {
                return;
            }
            let left = std::time::Duration::from(deadline - now).min(std::time::Duration::from_millis(1));
            s = self.shared.cond.wait_timeout(s, left).unwrap_or_else(std::sync::PoisonError::into_inner).0;
        }
    }
}

/// The thread that drives a real-time [`Emulator`]; dropping it stops and joins the thread.
#[derive(Debug)]
pub struct RealTimeRunner {
    emu: Emulator,
    handle: Option<JoinHandle<()>>,
}

impl Drop for RealTimeRunner {
    fn drop(&mut self) {
        self.emu.lock().stop = true;
        self.emu.shared.cond.notify_all();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

#[derive(Debug)]
struct Pending {
    buffer: Vec<u8>,
    epoch: u64,
    done: Option<(usize, Result<(), TransferError>)>,
}

const ENDPOINTS: [u8; 4] =
    [xpp_usb::ep::DATA_OUT, xpp_usb::ep::DATA_IN, xpp_usb::ep::MGMT_OUT, xpp_usb::ep::MGMT_IN];

fn ep_index(ep: u8) -> Option<usize> {
    ENDPOINTS.iter().position(|&e| e == ep)
}

/// A host's handle on what was enumerated on one port of an [`Emulator`] (one enumeration
/// generation; after a departure open a new one).
#[derive(Debug)]
pub struct EmulatedTransport {
    emu: Emulator,
    port: u8,
    generation: u64,
    info: DeviceInfo,
    queues: [VecDeque<Pending>; 4],
    gone: bool,
}

impl EmulatedTransport {
    /// The port this transport is attached to.
    pub const fn port(&self) -> u8 {
        self.port
    }

    /// The emulator behind it.
    pub const fn emulator(&self) -> &Emulator {
        &self.emu
    }

    /// Whether the device has left (every call now fails with `Disconnected`).
    pub const fn is_disconnected(&self) -> bool {
        self.gone
    }

    fn now_of(&self, s: &State) -> Instant {
        if s.mode == ClockMode::RealTime { self.emu.wall_now().max(s.now) } else { s.now }
    }

    /// Marks the transport gone (completing everything pending) if its generation is over.
    fn check_gone(&mut self, s: &State) -> bool {
        if !self.gone && s.device.generation(self.port) != Some(self.generation) {
            self.gone = true;
        }
        if self.gone {
            for p in self.queues.iter_mut().flatten().filter(|p| p.done.is_none()) {
                p.done = Some((0, Err(TransferError::Disconnected)));
            }
        }
        self.gone
    }

    /// Completes pending IN transfers from the device's FIFOs, in order.
    fn progress(&mut self, s: &mut State) {
        let now = self.now_of(s);
        let epoch = s.device.reset_epoch(self.port);
        for (i, q) in self.queues.iter_mut().enumerate() {
            let ep = ENDPOINTS[i];
            for p in q.iter_mut().filter(|p| p.done.is_none()) {
                if p.epoch != epoch {
                    p.done = Some((0, Err(TransferError::Cancelled)));
                    continue;
                }
                if ep & 0x80 == 0 {
                    continue;
                }
                match s.device.bulk_in(now, self.port, ep, &mut p.buffer) {
                    Some(Ok(n)) => p.done = Some((n, Ok(()))),
                    Some(Err(e)) => p.done = Some((0, Err(e))),
                    None => break,
                }
            }
        }
    }

    fn take_done(&mut self, ep: u8) -> Option<Completion> {
        let q = &mut self.queues[ep_index(ep)?];
        q.front()?.done.as_ref()?;
        let p = q.pop_front()?;
        let (n, status) = p.done.unwrap_or((0, Err(TransferError::Unknown(0))));
        let mut buffer = p.buffer;
        if ep & 0x80 != 0 {
            buffer.truncate(n);
        }
        Some(Completion { endpoint: ep, buffer, actual_len: n, status })
    }
}

impl Transport for EmulatedTransport {
    fn info(&self) -> &DeviceInfo {
        &self.info
    }

    fn submit(&mut self, endpoint: u8, buffer: Vec<u8>) -> Result<(), TransferError> {
        let emu = self.emu.clone();
        let mut s = emu.lock();
        if self.check_gone(&s) {
            return Err(TransferError::Disconnected);
        }
        let Some(i) = ep_index(endpoint).filter(|_| self.info.endpoint(endpoint).is_some()) else {
            return Err(TransferError::InvalidArgument);
        };
        let epoch = s.device.reset_epoch(self.port);
        if endpoint & 0x80 == 0 {
            let now = self.now_of(&s);
            let r = s.device.bulk_out(now, self.port, endpoint, &buffer);
            let n = if r.is_ok() { buffer.len() } else { 0 };
            self.queues[i].push_back(Pending { buffer, epoch, done: Some((n, r)) });
        } else {
            self.queues[i].push_back(Pending { buffer, epoch, done: None });
        }
        self.check_gone(&s);
        self.progress(&mut s);
        drop(s);
        emu.shared.cond.notify_all();
        Ok(())
    }

    fn pending(&self, endpoint: u8) -> usize {
        ep_index(endpoint).map_or(0, |i| self.queues[i].len())
    }

    fn wait_next_complete(&mut self, endpoint: u8, timeout: std::time::Duration) -> Option<Completion> {
        let emu = self.emu.clone();
        let i = ep_index(endpoint)?;
        let real_deadline = std::time::Instant::now() + timeout;
        let mut s = emu.lock();
        let virtual_end = s.now + Duration::from(timeout);
        loop {
            if !self.check_gone(&s) {
                self.progress(&mut s);
                self.check_gone(&s);
            }
            if let Some(c) = self.take_done(endpoint) {
                return Some(c);
            }
            if self.queues[i].is_empty() {
                return None;
            }
            match s.mode {
                ClockMode::Manual => return None,
                ClockMode::AutoAdvance => {
                    if s.now >= virtual_end {
                        return None;
                    }
                    let next = s
                        .device
                        .poll_timeout()
                        .filter(|&n| n > s.now)
                        .map_or(virtual_end, |n| n.min(virtual_end));
                    s.advance_to(next);
                    emu.shared.cond.notify_all();
                }
                ClockMode::RealTime | ClockMode::Paced => {
                    let left = real_deadline.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        return None;
                    }
                    s = emu
                        .shared
                        .cond
                        .wait_timeout(s, left.min(std::time::Duration::from_millis(5)))
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .0;
                }
            }
        }
    }

    fn cancel_all(&mut self, endpoint: u8) {
        if let Some(i) = ep_index(endpoint) {
            for p in self.queues[i].iter_mut().filter(|p| p.done.is_none()) {
                p.done = Some((0, Err(TransferError::Cancelled)));
            }
        }
    }

    fn control_out(
        &mut self,
        setup: ControlSetup,
        data: &[u8],
        _timeout: std::time::Duration,
    ) -> Result<usize, TransferError> {
        let emu = self.emu.clone();
        let mut s = emu.lock();
        if self.check_gone(&s) {
            return Err(TransferError::Disconnected);
        }
        let now = self.now_of(&s);
        let r = s.device.control_out(now, self.port, setup, data);
        self.check_gone(&s);
        drop(s);
        emu.shared.cond.notify_all();
        r
    }

    fn control_in(
        &mut self,
        setup: ControlSetup,
        buf: &mut [u8],
        _timeout: std::time::Duration,
    ) -> Result<usize, TransferError> {
        let emu = self.emu.clone();
        let mut s = emu.lock();
        if self.check_gone(&s) {
            return Err(TransferError::Disconnected);
        }
        let now = self.now_of(&s);
        s.device.control_in(now, self.port, setup, buf)
    }

    fn reset(&mut self) -> Result<(), TransferError> {
        let emu = self.emu.clone();
        let mut s = emu.lock();
        if self.check_gone(&s) {
            return Err(TransferError::Disconnected);
        }
        let now = self.now_of(&s);
        s.device.usb_reset(now, self.port);
        self.progress(&mut s);
        drop(s);
        emu.shared.cond.notify_all();
        Ok(())
    }

    fn clear_halt(&mut self, endpoint: u8) -> Result<(), TransferError> {
        // The emulated host keeps no endpoint state of its own: the standard request is the
        // whole operation, and the device model clears its halt on it (MODEL.md USB-10).
        self.control_out(ControlSetup::clear_halt(endpoint), &[], std::time::Duration::ZERO).map(|_| ())
    }
}
