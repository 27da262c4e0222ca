//! A stalled data IN endpoint (issue 15, item 2) on the emulator's auto-advancing virtual
//! clock: the run loop clears the halt, backs off on the driver's clock instead of
//! resubmitting at once, and gives a device that keeps stalling up as failed.
//!
//! Every transport call goes through [`Watched`], which counts the calls and the most made at
//! one virtual instant. On this clock time moves only while the loop waits, so a loop that
//! resubmits without waiting makes unbounded calls at one instant: past [`SPIN_LIMIT`] the
//! wrapper reports the device gone, which ends such a loop instead of hanging the test.

use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use xpp_bringup::{BringUpConfig, RunOptions};
use xpp_driver::{DeviceId, DeviceStats, Driver, DriverEvent, DriverOptions};
use xpp_emu::config::{CoreConfig, Stage};
use xpp_emu::fault::{FaultAction, FaultEndpoint, FaultRule, FaultTrigger};
use xpp_emu::{ClockMode, DeviceConfig, EmulatedTransport, Emulator};
use xpp_proto::{Duration, Instant};
use xpp_usb::{Completion, ControlSetup, DeviceInfo, TransferError, Transport, ep};

mod common;
use common::{WAIT, firmware, until, within};

/// Transport calls at one virtual instant that count as a busy loop.
const SPIN_LIMIT: u64 = 10_000;

#[derive(Debug, Default, Clone)]
struct Watch {
    /// Every transport call (the run loop's, after bring-up too).
    calls: u64,
    /// The virtual instant of the latest call and the calls made at it.
    at: Instant,
    calls_at: u64,
    /// The most calls made at one virtual instant.
    max_at_instant: u64,
    /// A busy loop was seen (and the device reported gone).
    spun: bool,
    /// The first data IN completion with `Stall`: when, and the call count then.
    first_stall: Option<(Instant, u64)>,
    /// The first successful data IN completion after it: when, and the call count then.
    resumed: Option<(Instant, u64)>,
    /// CLEAR_FEATURE(ENDPOINT_HALT) requests for the data IN endpoint.
    clear_halts: u64,
}

/// The emulated transport, watched.
struct Watched {
    inner: EmulatedTransport,
    emu: Emulator,
    watch: Arc<Mutex<Watch>>,
}

impl Watched {
    /// Counts one call; `false` once the loop was seen spinning.
    fn call(&self) -> bool {
        let now = self.emu.now();
        let mut w = self.watch.lock().unwrap();
        w.calls += 1;
        if w.at == now {
            w.calls_at += 1;
        } else {
            w.at = now;
            w.calls_at = 1;
        }
        w.max_at_instant = w.max_at_instant.max(w.calls_at);
        if w.calls_at > SPIN_LIMIT {
            w.spun = true;
        }
        !w.spun
    }
}

impl Transport for Watched {
    fn info(&self) -> &DeviceInfo {
        self.inner.info()
    }
    fn submit(&mut self, endpoint: u8, buffer: Vec<u8>) -> Result<(), TransferError> {
        if !self.call() {
            return Err(TransferError::Disconnected);
        }
        self.inner.submit(endpoint, buffer)
    }
    fn pending(&self, endpoint: u8) -> usize {
        self.inner.pending(endpoint)
    }
    fn wait_next_complete(&mut self, endpoint: u8, timeout: StdDuration) -> Option<Completion> {
        if !self.call() {
            // Ends a loop that only polls: the device is "gone".
            let status = Err(TransferError::Disconnected);
            return Some(Completion { endpoint, buffer: Vec::new(), actual_len: 0, status });
        }
        let c = self.inner.wait_next_complete(endpoint, timeout)?;
        if endpoint == ep::DATA_IN {
            let now = self.emu.now();
            let mut w = self.watch.lock().unwrap();
            let calls = w.calls;
            match c.status {
                Err(TransferError::Stall) if w.first_stall.is_none() => w.first_stall = Some((now, calls)),
                Ok(()) if w.first_stall.is_some() && w.resumed.is_none() => w.resumed = Some((now, calls)),
                _ => {}
            }
        }
        Some(c)
    }
    fn cancel_all(&mut self, endpoint: u8) {
        self.call();
        self.inner.cancel_all(endpoint);
    }
    fn control_out(
        &mut self,
        setup: ControlSetup,
        data: &[u8],
        timeout: StdDuration,
    ) -> Result<usize, TransferError> {
        self.call();
        self.inner.control_out(setup, data, timeout)
    }
    fn control_in(
        &mut self,
        setup: ControlSetup,
        buf: &mut [u8],
        timeout: StdDuration,
    ) -> Result<usize, TransferError> {
        self.call();
        self.inner.control_in(setup, buf, timeout)
    }
    fn reset(&mut self) -> Result<(), TransferError> {
        self.call();
        self.inner.reset()
    }
    fn clear_halt(&mut self, endpoint: u8) -> Result<(), TransferError> {
        self.call();
        if endpoint == ep::DATA_IN {
            self.watch.lock().unwrap().clear_halts += 1;
        }
        self.inner.clear_halt(endpoint)
    }
}

/// A running-stage FXS + FXO device whose data IN endpoint `rule` stalls, on the
/// auto-advancing virtual clock, opened through a driver on that clock.
fn open_stalling(rule: FaultRule) -> (Emulator, Driver, DeviceId, Arc<Mutex<Watch>>) {
    let mut core = CoreConfig::default();
    core.faults.push(rule);
    let cfg = DeviceConfig::default().with_start_stage(Stage::Running).with_core(core);
    let emu = Emulator::with_mode(cfg, ClockMode::AutoAdvance);
    let drv = Driver::new(emu.clone(), DriverOptions::default());
    let watch = Arc::new(Mutex::new(Watch::default()));
    let (e, w) = (emu.clone(), watch.clone());
    let open = move || e.transport(0).map(|inner| Watched { inner, emu: e.clone(), watch: w.clone() });
    let id = drv
        .open(open, BringUpConfig::default(), firmware(), RunOptions::default())
        .unwrap_or_else(|e| panic!("bring-up: {e}"));
    (emu, drv, id, watch)
}

/// Waits (real time, bounded) until `device` has run `ticks` ticks or its loop ended.
fn run_to_tick(drv: &Driver, device: DeviceId, ticks: u64) -> u64 {
    let end = std::time::Instant::now() + 6 * WAIT;
    loop {
        let n = drv.tick_count(device).unwrap();
        if n >= ticks || !drv.is_running(device).unwrap() || std::time::Instant::now() > end {
            return n;
        }
        std::thread::sleep(StdDuration::from_millis(5));
    }
}

#[test]
fn a_stalled_data_in_endpoint_is_cleared_and_ticks_resume_without_a_busy_loop() {
    within(120, || {
        // One stall, at the 1500th data IN transfer of the device (some 1.5 s in), that lasts
        // until the host clears it: no window, so only CLEAR_FEATURE ends it.
        let rule = FaultRule::new(FaultEndpoint::Ep(ep::DATA_IN), FaultAction::Stall)
            .when(FaultTrigger::EveryNth(1500));
        let (_emu, drv, id, watch) = open_stalling(rule);
        let ticks = run_to_tick(&drv, id, 2500);
        let w = watch.lock().unwrap().clone();
        assert!(!w.spun, "busy loop: more than {SPIN_LIMIT} transport calls at one virtual instant");
        assert!(drv.is_running(id).unwrap(), "the device is still running");
        assert!(ticks >= 2500, "ticks resumed after the stall: {ticks}");
        let (stalled_at, calls_then) = w.first_stall.expect("the endpoint stalled");
        let (resumed_at, calls_now) = w.resumed.expect("data IN resumed");
        let stats: DeviceStats = drv.device_stats(id).unwrap();
        assert_eq!(stats.halts_cleared, 1, "{stats:?}");
        assert_eq!(w.clear_halts, 1);
        assert!(stats.in_stalls >= 1 && stats.backoffs == 1, "{stats:?}");
        assert_eq!(stats.consecutive_failures, 0, "{stats:?}");
        // No busy loop: a bounded number of transport calls from the stall to the recovery,
        // and never more than a handful at one virtual instant.
        let calls = calls_now - calls_then;
        assert!(calls <= 100, "{calls} transport calls between the stall and the recovery");
        assert!(w.max_at_instant <= 100, "{} calls at one virtual instant", w.max_at_instant);
        let recovery = resumed_at.saturating_duration_since(stalled_at);
        assert!(recovery >= Duration::from_millis(1), "backed off first: {recovery:?}");
        println!(
            "stall at {stalled_at:?}, data IN again after {} µs (virtual), {calls} transport calls",
            recovery.total_micros()
        );
        drv.close();
    });
}

#[test]
fn a_permanent_stall_ends_in_a_removal_after_the_retries() {
    within(120, || {
        // From 5 s (virtual: after the bring-up) every data IN transfer stalls, for an hour.
        let from = Instant::from_secs(5);
        let rule = FaultRule::new(FaultEndpoint::Ep(ep::DATA_IN), FaultAction::Stall)
            .during(from, from + Duration::from_secs(3600));
        let (emu, drv, id, watch) = open_stalling(rule);
        assert!(emu.now() < from, "bring-up ended before the stall window: {:?}", emu.now());
        let rx = drv.events();
        let seen = until(&rx, |e| matches!(e, DriverEvent::DeviceRemoved { device } if *device == id));
        let w = watch.lock().unwrap().clone();
        assert!(!w.spun, "busy loop: more than {SPIN_LIMIT} transport calls at one virtual instant");
        assert!(
            seen.iter().any(|e| matches!(e,
                DriverEvent::DeviceFailed { device, error: TransferError::Stall } if *device == id)),
            "DeviceFailed before DeviceRemoved: {seen:?}"
        );
        assert!(!drv.is_running(id).unwrap());
        let stats = drv.device_stats(id).unwrap();
        // Ten failures in a row: nine cleared halts and backoffs (1 + 2 + ... + 100 ms), the
        // tenth gives up.
        assert_eq!(
            (stats.consecutive_failures, stats.halts_cleared, stats.backoffs),
            (10, 9, 9),
            "{stats:?}"
        );
        let (stalled_at, calls_then) = w.first_stall.expect("the endpoint stalled");
        let gave_up = emu.now().saturating_duration_since(stalled_at);
        assert!(gave_up >= Duration::from_millis(327), "retried for the whole backoff: {gave_up:?}");
        let calls = w.calls - calls_then;
        assert!(calls <= 1000, "{calls} transport calls from the stall to the removal");
        println!(
            "permanent stall: removed {} ms (virtual) after it began, {calls} transport calls",
            gave_up.total_millis()
        );
        drv.close();
    });
}
