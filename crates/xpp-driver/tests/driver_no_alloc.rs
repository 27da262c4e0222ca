//! Proves that the driver's run loop allocates nothing per tick in steady state: an FXS + FXO
//! Astribank on the emulator (two phones off-hook, an FXO line off-hook: PCM both ways),
//! the run loop free-running on the auto-advancing virtual clock for 2000 device ms.
//!
//! Only the loop thread runs during the measured window (the emulator has no thread of its
//! own in `AutoAdvance`, the main thread is blocked on a channel), so the global allocation
//! count over the window is the loop's plus the emulator's; the emulator's part is measured
//! around every transport call (the device model runs inside them) and subtracted. Window
//! boundaries are transport-call entries, so the attribution is exact. Without the libtest
//! harness (`harness = false`): its threads allocate now and then.

use std::alloc::System;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use xpp_bringup::{BringUpConfig, RunOptions, read_firmware_dir};
use xpp_driver::{Driver, DriverOptions};
use xpp_emu::config::Stage;
use xpp_emu::{ClockMode, DeviceConfig, EmulatedTransport, Emulator};
use xpp_proto::{Duration, Instant};
use xpp_span::hook::HookMode;
use xpp_usb::{Completion, ControlSetup, DeviceInfo, TransferError, Transport};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn count() -> u64 {
    let s = GLOBAL.stats();
    (s.allocations + s.reallocations) as u64
}

/// The measured window, in device time, and what was counted.
#[derive(Debug, Default)]
struct Window {
    from: Instant,
    to: Instant,
    start: Option<u64>,
    end: Option<u64>,
    /// Allocations inside transport calls within the window (the emulator's).
    excluded: u64,
    ticks_at_start: u64,
}

static CALLS: AtomicU64 = AtomicU64::new(0);

/// The emulated transport, with the window bookkeeping around each call.
struct Measured {
    inner: EmulatedTransport,
    emu: Emulator,
    window: Arc<Mutex<Window>>,
    done: std::sync::mpsc::Sender<()>,
}

impl Measured {
    fn around<R>(&mut self, f: impl FnOnce(&mut EmulatedTransport) -> R) -> R {
        let entry = count();
        let now = self.emu.now();
        let inside = {
            let mut w = self.window.lock().unwrap();
            if w.start.is_none() && now >= w.from {
                w.start = Some(entry);
            }
            if w.start.is_some() && w.end.is_none() && now >= w.to {
                w.end = Some(entry);
                let _ = self.done.send(());
            }
            w.start.is_some() && w.end.is_none()
        };
        // The lock above may allocate nothing; measure from here.
        let before = count();
        let r = f(&mut self.inner);
        CALLS.fetch_add(1, Ordering::Relaxed);
        if inside {
            let after = count();
            let mut w = self.window.lock().unwrap();
            w.excluded += after - before;
            // The bookkeeping itself (lock, clock) is also not the loop's.
            w.excluded += before - entry;
        }
        r
    }
}

impl Transport for Measured {
    fn info(&self) -> &DeviceInfo {
        self.inner.info()
    }
    fn submit(&mut self, endpoint: u8, buffer: Vec<u8>) -> Result<(), TransferError> {
        self.around(|t| t.submit(endpoint, buffer))
    }
    fn pending(&self, endpoint: u8) -> usize {
        self.inner.pending(endpoint)
    }
    fn wait_next_complete(&mut self, endpoint: u8, timeout: StdDuration) -> Option<Completion> {
        self.around(|t| t.wait_next_complete(endpoint, timeout))
    }
    fn cancel_all(&mut self, endpoint: u8) {
        self.inner.cancel_all(endpoint);
    }
    fn control_out(
        &mut self,
        setup: ControlSetup,
        data: &[u8],
        timeout: StdDuration,
    ) -> Result<usize, TransferError> {
        self.inner.control_out(setup, data, timeout)
    }
    fn control_in(
        &mut self,
        setup: ControlSetup,
        buf: &mut [u8],
        timeout: StdDuration,
    ) -> Result<usize, TransferError> {
        self.inner.control_in(setup, buf, timeout)
    }
    fn reset(&mut self) -> Result<(), TransferError> {
        self.inner.reset()
    }
}

fn main() {
    let emu =
        Emulator::with_mode(DeviceConfig::default().with_start_stage(Stage::Running), ClockMode::AutoAdvance);
    let fw =
        read_firmware_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/firmware")).unwrap();
    let window = Arc::new(Mutex::new(Window {
        from: Instant::from_secs(3600),
        to: Instant::from_secs(3600),
        ..Default::default()
    }));
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let drv = Driver::new(emu.clone(), DriverOptions::default());
    let (e2, w2) = (emu.clone(), window.clone());
    let open = move || {
        e2.transport(0).map(|inner| Measured {
            inner,
            emu: e2.clone(),
            window: w2.clone(),
            done: done_tx.clone(),
        })
    };
    let id = drv.open(open, BringUpConfig::default(), fw, RunOptions::default()).unwrap();
    // Two phones and one FXO line off-hook: PCM both ways on three channels.
    emu.with_device(|d| {
        let now = d.now();
        for port in [0, 5] {
            d.data_mut().phone_mut(0, port).unwrap().off_hook(now);
        }
    });
    // The FXO seize is refused until the port has read its line voltage: retried.
    let mut tries = 0;
    while drv.set_hook(16, xpp_span::HookCmd::OffHook, HookMode::Blocking).is_err() {
        tries += 1;
        assert!(tries < 1000, "the FXO port never saw battery");
        std::thread::sleep(StdDuration::from_millis(2));
    }
    // Warm up 3 s of device time (every periodic poll runs a few times), then 2 s measured.
    {
        let now = emu.now();
        let mut w = window.lock().unwrap();
        w.from = now + Duration::from_secs(3);
        w.to = w.from + Duration::from_secs(2);
        w.ticks_at_start = drv.tick_count(id).unwrap();
    }
    let events = drv.events();
    // Block (no allocation) until the window closed; the loop thread runs alone meanwhile.
    done_rx.recv_timeout(StdDuration::from_secs(60)).expect("window closed");
    let w = window.lock().unwrap();
    let (start, end) = (w.start.unwrap(), w.end.unwrap());
    let ticks = drv.tick_count(id).unwrap() - w.ticks_at_start;
    let loop_allocs = (end - start).saturating_sub(w.excluded);
    drop(w);
    drv.close();
    drop(events);
    assert!(ticks >= 4000, "the loop ticked through warm-up and window: {ticks}");
    assert!(CALLS.load(Ordering::Relaxed) > 4000);
    assert_eq!(loop_allocs, 0, "heap allocations of the run loop in 2000 steady-state ticks");
    println!("driver_no_alloc: 2000 steady-state run-loop ticks: 0 heap allocations ({ticks} ticks in all)");
}
