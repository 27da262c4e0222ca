//! One device's run-loop thread.

use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use crossbeam_channel::Sender;
use xpp_proto::{Duration, Instant};
use xpp_usb::{Clock, Completion, TransferError, Transport, ep};

use xpp_span::xbus::{OUT_QUEUE, XbusEvent};

use crate::election::{Timing, reelect_all};
use crate::event::{DeviceId, DriverEvent};
use crate::options::{DriverOptions, Pacing};
use crate::shared::{DevState, DeviceEnd, DeviceShared, Devices};

/// Size of every bulk transfer buffer.
const XFER: usize = 512;

/// The backoff after the first failed data IN transfer; doubled per consecutive failure.
const BACKOFF_MIN: Duration = Duration::from_millis(1);
/// The longest backoff.
// Decision: 100 ms. Long enough that a device failing for good costs next to no CPU, short
// enough that a transient failure (one stall, a burst of bus errors) costs a few ticks only.
const BACKOFF_MAX: Duration = Duration::from_millis(100);
/// Consecutive failed data IN transfers (each after a backoff) that end the device as failed:
/// 1 + 2 + 4 + ... + 64 + 100 + 100 ms = 327 ms of retrying.
const MAX_FAILURES: u32 = 10;
/// How long the IN queue is waited for after a cancel, before a halt is cleared.
const CANCEL_WAIT: std::time::Duration = std::time::Duration::from_millis(100);

/// The backoff after the `n`-th consecutive failure (`n` >= 1).
fn backoff(n: u32) -> Duration {
    let shift = n.saturating_sub(1).min(16);
    BACKOFF_MIN.saturating_mul(1 << shift).min(BACKOFF_MAX)
}

/// What a run loop shares with the other devices: the device list and the timing election.
pub(crate) struct Coord {
    pub(crate) devices: Devices,
    pub(crate) timing: Arc<Timing>,
}

pub(crate) fn spawn<T: Transport + 'static>(
    transport: T,
    dev: Arc<DeviceShared>,
    clock: Arc<dyn Clock>,
    tx: Sender<DriverEvent>,
    options: DriverOptions,
    coord: Coord,
) -> std::io::Result<JoinHandle<()>> {
    let name = format!("xpp-bus-{:02}", dev.id.0);
    std::thread::Builder::new().name(name).spawn(move || {
        let n = options.in_transfers.max(1);
        let mut lp = Loop {
            t: transport,
            dev,
            clock,
            tx,
            options,
            coord,
            spare_out: Vec::with_capacity(OUT_QUEUE),
            staged: Vec::with_capacity(OUT_QUEUE),
            events: Vec::with_capacity(xpp_span::xbus::BUS_EVENTS),
            buf: Box::new([0; XFER]),
            spare_in: Vec::with_capacity(n),
            mgmt_buf: Box::new([0; XFER]),
            mgmt_in: None,
            failures: 0,
            retry_at: None,
        };
        lp.run();
    })
}

/// The driver event a bus event of `device` becomes, if it is forwarded.
pub(crate) fn forward(device: DeviceId, at: Instant, e: XbusEvent) -> Option<DriverEvent> {
    Some(match e {
        XbusEvent::Chan { channo, event } => DriverEvent::Chan { device, channo, event, at },
        XbusEvent::SpanAlarms { spanno, alarms } => DriverEvent::SpanAlarms { device, spanno, alarms },
        XbusEvent::SyncReply(state) => DriverEvent::Sync { device, state },
        // The loop re-runs the election for it.
        XbusEvent::TimingChanged => return None,
        // The loop reports DeviceRemoved / DeviceClosed itself, after the channels.
        XbusEvent::Removed => return None,
        // A bus event this driver version does not forward (the enum is open).
        other => {
            log::debug!("{device}: bus event not forwarded: {other:?}");
            return None;
        }
    })
}

/// How the loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Removed,
    Closed,
    /// The data IN endpoint failed [`MAX_FAILURES`] times in a row.
    Failed(TransferError),
}

struct Loop<T> {
    t: T,
    dev: Arc<DeviceShared>,
    clock: Arc<dyn Clock>,
    tx: Sender<DriverEvent>,
    options: DriverOptions,
    coord: Coord,
    /// OUT buffers back from their completions.
    spare_out: Vec<Vec<u8>>,
    /// OUT transfers taken from the core, submitted once its lock is released.
    staged: Vec<Vec<u8>>,
    /// Bus events taken from the core, sent once its lock is released.
    events: Vec<XbusEvent>,
    buf: Box<[u8; XFER]>,
    /// IN buffers whose completion failed (kept for resubmission).
    spare_in: Vec<Vec<u8>>,
    /// The management request being sent (one at a time: the session waits for each reply).
    mgmt_buf: Box<[u8; XFER]>,
    /// The management IN buffer, between its completion and the next request.
    mgmt_in: Option<Vec<u8>>,
    /// Consecutive failed data IN transfers (each one after the backoff of the previous).
    failures: u32,
    /// While backing off after a failed data IN transfer: when reads are queued again.
    retry_at: Option<Instant>,
}

impl<T: Transport> Loop<T> {
    fn lock(&self) -> MutexGuard<'_, DevState> {
        self.dev.lock()
    }

    fn run(&mut self) {
        let end = self.serve();
        let standby = match end {
            End::Removed => self.removed(),
            End::Closed => {
                self.close();
                false
            }
            End::Failed(error) => {
                log::warn!(
                    "{}: data IN failed {MAX_FAILURES} times in a row ({error}); giving up",
                    self.dev.id
                );
                let _ = self.tx.send(DriverEvent::DeviceFailed { device: self.dev.id, error });
                self.removed()
            }
        };
        if !standby {
            // Only the record of the device stays in the table; its core goes with the last
            // reference (this loop's, or a PBX call still holding it).
            let how = if end == End::Closed { DeviceEnd::Closed } else { DeviceEnd::Removed };
            self.coord.devices.write().unwrap_or_else(PoisonError::into_inner).retire(self.dev.id, how);
        }
        self.dev.cond.notify_all();
        // This device no longer runs: another one may have to take the timing over.
        reelect_all(&self.coord.devices, &self.coord.timing);
    }

    /// The steady state; returns when the device is gone or a close was asked for.
    fn serve(&mut self) -> End {
        loop {
            if self.dev.stop.load(Ordering::SeqCst) {
                return End::Closed;
            }
            let now = self.clock.now();
            if self.retry_at.is_some_and(|t| t <= now) {
                self.retry_at = None;
            }
            if self.retry_at.is_none() && !self.keep_reads() {
                return End::Removed;
            }
            let wait = {
                let st = self.lock();
                let max = self.options.max_wait;
                let wait = st.core.poll_timeout().map_or(max, |t| t.saturating_duration_since(now).min(max));
                self.retry_at.map_or(wait, |t| wait.min(t.saturating_duration_since(now)))
            };
            if self.t.pending(ep::DATA_IN) == 0 {
                // Nothing queued (backing off, or a transient refusal): wait on the driver's
                // clock (a virtual one moves there), never spin.
                self.clock.sleep_until(now + wait);
                self.input(None);
                continue;
            }
            let ticked = match self.t.wait_next_complete(ep::DATA_IN, wait.into()) {
                Some(c) => match c.status {
                    Ok(()) => {
                        if self.failures != 0 {
                            self.failures = 0;
                            self.lock().link.consecutive_failures = 0;
                        }
                        let ticked = self.input(Some(&c));
                        self.recycle_in(c);
                        ticked
                    }
                    Err(TransferError::Disconnected) => return End::Removed,
                    Err(e) => {
                        if let Err(end) = self.in_failed(c.buffer, e) {
                            return end;
                        }
                        self.input(None)
                    }
                },
                None => self.input(None),
            };
            match ticked {
                Some(true) => self.lockstep_wait(),
                Some(false) => {}
                None => return End::Removed,
            }
        }
    }

    /// Keeps the IN queue full; `false` if the device is gone.
    fn keep_reads(&mut self) -> bool {
        let want = self.options.in_transfers.max(1);
        while self.t.pending(ep::DATA_IN) < want {
            let mut b = self.spare_in.pop().unwrap_or_default();
            b.resize(XFER, 0);
            match self.t.submit(ep::DATA_IN, b) {
                Ok(()) => {}
                Err(TransferError::Disconnected) => return false,
                Err(e) => {
                    log::debug!("{}: IN submit refused: {e}", self.dev.id);
                    break;
                }
            }
        }
        true
    }

    /// A data IN transfer failed with `e` (not a disconnect). The first failure after a
    /// backoff (or after a success) counts: the halt of a stalled endpoint is cleared (with
    /// nothing pending on it, as USB wants), and reads are queued again only after a backoff
    /// that doubles per consecutive failure. Failures while backing off are the same failure
    /// seen on the other queued transfers. `Err` when the device is gone or failed for good.
    fn in_failed(&mut self, buffer: Vec<u8>, e: TransferError) -> Result<(), End> {
        log::debug!("{}: IN transfer failed: {e}", self.dev.id);
        self.spare_in.push(buffer);
        {
            let mut st = self.lock();
            if e == TransferError::Stall {
                st.link.in_stalls += 1;
            } else {
                st.link.in_errors += 1;
            }
        }
        if self.retry_at.is_some() {
            return Ok(());
        }
        self.failures += 1;
        self.lock().link.consecutive_failures = self.failures;
        if self.failures >= MAX_FAILURES {
            return Err(End::Failed(e));
        }
        if e == TransferError::Stall {
            self.t.cancel_all(ep::DATA_IN);
            while self.t.pending(ep::DATA_IN) > 0 {
                let Some(c) = self.t.wait_next_complete(ep::DATA_IN, CANCEL_WAIT) else { break };
                if c.status == Err(TransferError::Disconnected) {
                    return Err(End::Removed);
                }
                // Decision: data that made it in before the cancel is dropped with the rest;
                // the stall has already cost this tick.
                self.spare_in.push(c.buffer);
            }
            match self.t.clear_halt(ep::DATA_IN) {
                Ok(()) => self.lock().link.halts_cleared += 1,
                Err(TransferError::Disconnected) => return Err(End::Removed),
                Err(e) => {
                    log::debug!("{}: clearing the IN halt failed: {e}", self.dev.id);
                    self.lock().link.clear_halt_errors += 1;
                }
            }
        }
        self.retry_at = Some(self.clock.now() + backoff(self.failures));
        self.lock().link.backoffs += 1;
        Ok(())
    }

    fn recycle_in(&mut self, c: Completion) {
        // Decision: completed IN buffers go back into the queue (resized in place: no
        // allocation, the capacity is kept).
        let mut b = c.buffer;
        b.resize(XFER, 0);
        if self.t.submit(ep::DATA_IN, b).is_err() {
            // Dropped with the error; keep_reads allocates a replacement (rare path).
        }
    }

    /// Feeds one IN transfer (or only the timers), pumps OUT and events. `Some(ticked)`,
    /// `None` if the device is gone.
    fn input(&mut self, c: Option<&Completion>) -> Option<bool> {
        let now = self.clock.now();
        // The master's latest tick for this device's PLL drift loop (taken before the core
        // lock: the two locks are never nested).
        let id = self.dev.id;
        let timing = &self.coord.timing;
        let is_master = timing.is_master(id);
        let reference = if is_master { None } else { timing.reference_for(id, now) };
        let mut st = self.dev.state.lock().unwrap_or_else(PoisonError::into_inner);
        let before = st.core.stats().ticks;
        if !is_master {
            st.core.set_sync_reference(reference);
        }
        if let Some(c) = c {
            st.core.handle_in_transfer(now, c.buffer.get(..c.actual_len).unwrap_or(&c.buffer));
        }
        if st.core.poll_timeout().is_some_and(|t| t <= now) {
            st.core.handle_timeout(now);
        }
        while let Some(n) = st.core.poll_transmit(&mut self.buf) {
            let mut v = self.spare_out.pop().unwrap_or_else(|| Vec::with_capacity(XFER));
            v.clear();
            v.extend_from_slice(&self.buf[..n]);
            self.staged.push(v);
        }
        while let Some(e) = st.core.poll_event() {
            self.events.push(e);
        }
        let ticks = st.core.stats().ticks;
        let sample = if is_master && ticks > before { st.core.tick_sample() } else { None };
        let mgmt_busy = self.dev.has_mgmt() && !st.mgmt.is_idle();
        drop(st);
        if let Some(s) = sample {
            timing.publish(id, s);
        }
        let ok = self.submit_staged() && (!mgmt_busy || self.pump_mgmt(now));
        self.send_events();
        self.reap_out();
        let ticked = ticks > before;
        // Decision: a tick is published to blocking callers only after its OUT transfers
        // were submitted and its events sent, so a PBX woken by it sees the tick's events.
        if ticked {
            // Published after the tick's events were sent: a PBX woken by the tick finds them.
            self.lock().tick = ticks;
            self.dev.cond.notify_all();
        }
        ok.then_some(ticked)
    }

    /// Submits the staged OUT transfers; `false` if the device is gone.
    fn submit_staged(&mut self) -> bool {
        let mut ok = true;
        for v in self.staged.drain(..) {
            match self.t.submit(ep::DATA_OUT, v) {
                Ok(()) => {}
                Err(TransferError::Disconnected) => ok = false,
                Err(e) => log::debug!("{}: OUT submit refused: {e}", self.dev.id),
            }
        }
        ok
    }

    /// The management lane's pass, run only while it has work: replies in, the reply timer,
    /// the next request out (with a read queued for its reply first), finished requests
    /// handed to their callers. `false` if the device is gone.
    fn pump_mgmt(&mut self, now: Instant) -> bool {
        let zero = std::time::Duration::ZERO;
        while let Some(c) = self.t.wait_next_complete(ep::MGMT_IN, zero) {
            match c.status {
                Ok(()) => {
                    let data = c.buffer.get(..c.actual_len).unwrap_or(&c.buffer);
                    self.lock().mgmt.session.handle_input(now, data);
                }
                Err(TransferError::Disconnected) => return false,
                Err(e) => log::debug!("{}: management IN failed: {e}", self.dev.id),
            }
            self.mgmt_in = Some(c.buffer);
        }
        while let Some(c) = self.t.wait_next_complete(ep::MGMT_OUT, zero) {
            match c.status {
                Ok(()) => {}
                Err(TransferError::Disconnected) => return false,
                Err(e) => log::debug!("{}: management OUT failed: {e}", self.dev.id),
            }
        }
        let (out, finished) = {
            let mut st = self.dev.lock();
            st.mgmt.handle_timeout(now);
            let out = st.mgmt.session.poll_transmit(now, &mut self.mgmt_buf[..]);
            (out, st.mgmt.collect())
        };
        if let Some(n) = out {
            if self.t.pending(ep::MGMT_IN) == 0 {
                let mut b = self.mgmt_in.take().unwrap_or_default();
                b.resize(XFER, 0);
                if let Err(e) = self.t.submit(ep::MGMT_IN, b) {
                    log::debug!("{}: management IN submit refused: {e}", self.dev.id);
                }
            }
            match self.t.submit(ep::MGMT_OUT, self.mgmt_buf[..n].to_vec()) {
                Ok(()) => {}
                Err(TransferError::Disconnected) => return false,
                // The reply timer fails the request.
                Err(e) => log::debug!("{}: management OUT submit refused: {e}", self.dev.id),
            }
        }
        if finished {
            self.dev.cond.notify_all();
        }
        true
    }

    /// Takes finished OUT transfers back for reuse.
    fn reap_out(&mut self) {
        while let Some(c) = self.t.wait_next_complete(ep::DATA_OUT, std::time::Duration::ZERO) {
            if let Err(e) = c.status {
                log::debug!("{}: OUT transfer failed: {e}", self.dev.id);
            }
            if self.spare_out.len() < OUT_QUEUE {
                self.spare_out.push(c.buffer);
            }
        }
    }

    fn send_events(&mut self) {
        let device = self.dev.id;
        let at = self.clock.now();
        let mut reelect = false;
        for e in self.events.drain(..) {
            // A span's alarms or layer 1 changed: the timing master may change (§12).
            reelect |= matches!(e, XbusEvent::SpanAlarms { .. } | XbusEvent::TimingChanged);
            if let Some(ev) = forward(device, at, e) {
                // A dropped receiver only means nobody listens.
                let _ = self.tx.send(ev);
            }
        }
        if reelect {
            reelect_all(&self.coord.devices, &self.coord.timing);
        }
    }

    /// Lockstep: waits until a blocking PBX call finished with the tick just published.
    fn lockstep_wait(&self) {
        if self.options.pacing != Pacing::Lockstep {
            return;
        }
        let st = self.lock();
        let tick = st.tick;
        let (st, r) = self
            .dev
            .cond
            .wait_timeout_while(st, self.options.lockstep_guard, |s| {
                s.acked < tick && !self.dev.stop.load(Ordering::SeqCst)
            })
            .unwrap_or_else(PoisonError::into_inner);
        drop(st);
        if r.timed_out() {
            log::warn!("{}: lockstep: no PBX call for tick {tick}, moving on", self.dev.id);
        }
    }

    /// Surprise removal: REMOVED everywhere, nothing sent, nothing waited for; or, for a
    /// device that keeps its standby registration, back to standby (spans in RED alarm, the
    /// channels stay). Whether it went back to standby.
    fn removed(&mut self) -> bool {
        let dev = Arc::clone(&self.dev);
        let mut st = dev.state.lock().unwrap_or_else(PoisonError::into_inner);
        let standby = st.keep_standby;
        if standby {
            st.core.handle_left(self.clock.now());
            st.standby = true;
        } else {
            st.core.handle_removed();
        }
        st.alive = false;
        st.mgmt.disconnect();
        while let Some(e) = st.core.poll_event() {
            self.events.push(e);
        }
        drop(st);
        self.send_events();
        let device = self.dev.id;
        if standby {
            log::info!("{device}: left this host; its spans stay registered (standby)");
            let (spans, channels) = (self.dev.spans.clone(), self.dev.channels.clone());
            let _ = self.tx.send(DriverEvent::DeviceStandby { device, spans, channels });
        } else {
            log::info!("{device}: removed");
            let _ = self.tx.send(DriverEvent::DeviceRemoved { device });
        }
        standby
    }

    /// Orderly close: SYNC_SOURCE NONE out (waited for, bounded), IN cancelled.
    fn close(&mut self) {
        let dev = Arc::clone(&self.dev);
        let mut st = dev.state.lock().unwrap_or_else(PoisonError::into_inner);
        st.core.shutdown();
        st.alive = false;
        st.mgmt.disconnect();
        while let Some(n) = st.core.poll_transmit(&mut self.buf) {
            self.staged.push(self.buf[..n].to_vec());
        }
        while let Some(e) = st.core.poll_event() {
            self.events.push(e);
        }
        drop(st);
        self.submit_staged();
        let deadline = std::time::Instant::now() + self.options.close_timeout;
        while self.t.pending(ep::DATA_OUT) > 0 {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break;
            }
            let _ = self.t.wait_next_complete(ep::DATA_OUT, left.min(Duration::from_millis(10).into()));
        }
        self.t.cancel_all(ep::DATA_IN);
        while self.t.wait_next_complete(ep::DATA_IN, std::time::Duration::ZERO).is_some() {}
        if self.dev.has_mgmt() {
            self.t.cancel_all(ep::MGMT_IN);
            while self.t.wait_next_complete(ep::MGMT_IN, std::time::Duration::ZERO).is_some() {}
        }
        self.send_events();
        log::info!("{}: closed", self.dev.id);
        let _ = self.tx.send(DriverEvent::DeviceClosed { device: self.dev.id });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_1_ms_to_100_ms() {
        let ms: Vec<u64> = (1..=MAX_FAILURES).map(|n| backoff(n).total_millis()).collect();
        assert_eq!(ms, [1, 2, 4, 8, 16, 32, 64, 100, 100, 100]);
        assert_eq!(backoff(u32::MAX), BACKOFF_MAX);
    }
}
