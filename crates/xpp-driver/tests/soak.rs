//! The fault soak of issue 15, and the re-plug memory test of its item 3.
//!
//! The driver runs an FXS + FXO Astribank on the emulator's auto-advancing virtual clock for
//! `XPP_SOAK_SECONDS` of device time (`.ci/run`: 3600, one hour; two minutes when unset, as
//! in `cargo test --workspace`) while:
//!
//! - the test's transport wrapper ([`Soaked`]) drops a seeded 0.2 % of the data IN frames
//!   (after the bring-up, so each one can be accounted for) and plays a seeded scenario of
//!   phone hook changes and FXO rings at their virtual times, on the loop's own thread;
//! - the emulator's fault rules corrupt (one flipped bit), duplicate, delay and truncate data
//!   IN transfers, drop one SIG_CHANGED transfer in 20 (hook reports: the FXS lines' hook
//!   poll must find those changes), drop, duplicate and delay data OUT transfers, stall the data IN
//!   endpoint now and then; scheduled cable pulls (one a minute, at most 20) disconnect the
//!   device.
//!
//! Asserted: nothing panics; every re-open succeeds within [`MAX_ATTEMPTS`] bring-ups; every
//! frame the wrapper dropped is missing from the driver's count of received transfers and
//! nothing else is (`rx_transfers == delivered` for every unplugged device; a device closed in
//! order may leave its last queued reads uncounted); the heap after each re-open stays within
//! [`MEMORY_BOUND`] of the first; once the faults end (one SIG_CHANGED in 20 lost, so the
//! FXS lines' hook poll has work) and again after a fault-free re-open, the hook state the
//! driver reports for each FXS port is the emulator's phone's. The figures are printed.
//!
//! Deterministic: the clock is virtual, the faults and the scenario are seeded, the wrapper's
//! drops are drawn in transfer order, and the test thread only reacts to the driver's events.
//! Without the libtest harness (`harness = false`) so the heap counts are this test's.

use std::alloc::System;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use xpp_bringup::{BringUpConfig, RunOptions, bring_up};
use xpp_driver::{DeviceId, Driver, DriverEvent, DriverOptions, Receiver};
use xpp_emu::config::{CoreConfig, Stage};
use xpp_emu::fault::{FaultAction, FaultEndpoint, FaultRule, FaultTrigger, ScheduledFault, SplitMix64};
use xpp_emu::scenario::Scenario;
use xpp_emu::{ClockMode, DeviceConfig, DeviceEvent, EmulatedTransport, Emulator};
use xpp_proto::wire::Opcode;
use xpp_proto::{Duration, Instant};
use xpp_span::Event;
use xpp_usb::{Completion, ControlSetup, DeviceInfo, TransferError, Transport, ep};

mod common;
use common::firmware;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Bytes on the heap now (stats_alloc counts a realloc's growth in `bytes_allocated` and its
/// shrinking in `bytes_deallocated` already).
fn live_bytes() -> i64 {
    let s = GLOBAL.stats();
    s.bytes_allocated as i64 - s.bytes_deallocated as i64
}

/// Bring-ups one re-open may take (a bring-up during a cable pull fails in Detect; one
/// under OUT loss may fail in a later phase).
const MAX_ATTEMPTS: u32 = 5;
/// How far the heap after a re-open may be above the heap after the first one.
// Decision: 1 MiB. What a device holds is freed when it goes (issue 15, item 3); what stays
// is the driver's record of each removed device (its id, numbers and counters, some hundred
// bytes) and buffers that reach their high-water mark once (event queues, the emulator's
// FIFOs). 400 re-plugs used to grow the heap by 80 MB (200 KB each): 20 re-plugs of that
// leak are 4 MB, far past the bound; the figures printed show the real growth.
const MEMORY_BOUND: i64 = 1 << 20;
/// How much the heap may grow per re-plug, in the re-plug test (no other faults).
const REPLUG_BOUND: i64 = 4 << 10;
/// FXS ports with a phone (unit 0), their channels 1..=8.
const FXS_PORTS: u8 = 8;
/// The longest real-time wait for one driver event.
const EVENT_WAIT: StdDuration = StdDuration::from_secs(60);

/// What the wrapper and the test share.
struct Shared {
    scenario: Scenario,
    /// The wrapper's IN drops: rate, stream.
    drop_per_million: u64,
    rng: SplitMix64,
    /// Counting data IN frames (after the bring-up of the current device).
    armed: bool,
    /// Data IN transfers that completed OK while armed, and how many of them were dropped.
    seen: u64,
    dropped: u64,
    /// Emulator fault events, by action name.
    faults: std::collections::BTreeMap<&'static str, u64>,
}

/// The emulated transport with the soak's own IN drops and the scenario.
struct Soaked {
    inner: EmulatedTransport,
    emu: Emulator,
    shared: Arc<Mutex<Shared>>,
}

impl Soaked {
    /// Applies the scenario's due events and files the emulator's fault events.
    fn service(&self) {
        let mut sh = self.shared.lock().unwrap();
        let sh = &mut *sh;
        self.emu.with_device(|d| {
            let now = d.now();
            for a in sh.scenario.apply_due(d, now) {
                assert!(a.result.is_ok(), "scenario event {a:?}");
            }
            while let Some(e) = d.poll_event() {
                if let DeviceEvent::FaultApplied { action, endpoint, .. } = e {
                    let out = endpoint & 0x80 == 0;
                    let name = match action {
                        FaultAction::Drop if out => "OUT drop",
                        FaultAction::Drop => "IN drop (SIG_CHANGED)",
                        FaultAction::FlipBits(_) => "IN corrupt",
                        FaultAction::Truncate(_) | FaultAction::TruncateBy(_) => "IN truncate",
                        FaultAction::Delay(_) if out => "OUT delay",
                        FaultAction::Delay(_) => "IN delay",
                        FaultAction::Duplicate if out => "OUT duplicate",
                        FaultAction::Duplicate => "IN duplicate",
                        FaultAction::Stall => "IN stall",
                        _ => "other",
                    };
                    *sh.faults.entry(name).or_default() += 1;
                }
            }
        });
    }
}

impl Transport for Soaked {
    fn info(&self) -> &DeviceInfo {
        self.inner.info()
    }
    fn submit(&mut self, endpoint: u8, buffer: Vec<u8>) -> Result<(), TransferError> {
        self.inner.submit(endpoint, buffer)
    }
    fn pending(&self, endpoint: u8) -> usize {
        self.inner.pending(endpoint)
    }
    fn wait_next_complete(&mut self, endpoint: u8, timeout: StdDuration) -> Option<Completion> {
        self.service();
        loop {
            let c = self.inner.wait_next_complete(endpoint, timeout)?;
            if endpoint != ep::DATA_IN || c.status.is_err() {
                return Some(c);
            }
            let mut sh = self.shared.lock().unwrap();
            if !sh.armed {
                return Some(c);
            }
            sh.seen += 1;
            if sh.rng.next_u64() % 1_000_000 >= sh.drop_per_million {
                return Some(c);
            }
            // Lost on the way: the frame never reaches the driver; its read stays queued.
            sh.dropped += 1;
            drop(sh);
            let mut buffer = c.buffer;
            buffer.resize(buffer.len().max(512), 0);
            if let Err(e) = self.inner.submit(ep::DATA_IN, buffer) {
                return Some(Completion { endpoint, buffer: Vec::new(), actual_len: 0, status: Err(e) });
            }
        }
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
    fn clear_halt(&mut self, endpoint: u8) -> Result<(), TransferError> {
        self.inner.clear_halt(endpoint)
    }
}

/// A soak bench: the emulator, the driver, the shared state, the driver's events.
struct Bench {
    emu: Emulator,
    drv: Driver,
    shared: Arc<Mutex<Shared>>,
    rx: Receiver<DriverEvent>,
    /// The hook state of each FXS port as the driver's events tell it.
    hook: [bool; FXS_PORTS as usize],
    /// Every device attached, in order.
    devices: Vec<DeviceId>,
    /// Bring-ups per re-open.
    attempts: Vec<u32>,
    /// Heap right after each attach.
    heap: Vec<i64>,
    /// Frames accounted per device: (delivered by the wrapper, counted by the driver).
    frames: Vec<(u64, u64)>,
    lost: u64,
}

impl Bench {
    fn new(cfg: DeviceConfig, scenario: Scenario, drop_per_million: u64) -> Self {
        let seed = cfg.seed;
        let emu = Emulator::with_mode(cfg, ClockMode::AutoAdvance);
        let drv = Driver::new(emu.clone(), DriverOptions::default());
        let rx = drv.events();
        let shared = Arc::new(Mutex::new(Shared {
            scenario,
            drop_per_million,
            rng: SplitMix64::new(seed ^ 0x50AC),
            armed: false,
            seen: 0,
            dropped: 0,
            faults: std::collections::BTreeMap::new(),
        }));
        Self {
            emu,
            drv,
            shared,
            rx,
            hook: [false; FXS_PORTS as usize],
            devices: Vec::new(),
            attempts: Vec::new(),
            heap: Vec::new(),
            frames: Vec::new(),
            lost: 0,
        }
    }

    /// Brings the device up and attaches it, within [`MAX_ATTEMPTS`] bring-ups.
    fn open(&mut self) -> DeviceId {
        for attempt in 1..=MAX_ATTEMPTS {
            let (e, sh) = (self.emu.clone(), self.shared.clone());
            let open =
                move || e.transport(0).map(|inner| Soaked { inner, emu: e.clone(), shared: sh.clone() });
            let clock = self.emu.clone();
            match bring_up(open, &clock, BringUpConfig::default(), firmware(), RunOptions::default(), |_| {})
            {
                Ok(ready) => {
                    {
                        let mut sh = self.shared.lock().unwrap();
                        (sh.armed, sh.seen, sh.dropped) = (true, 0, 0);
                    }
                    let id = self.drv.attach(ready).unwrap_or_else(|e| panic!("attach: {e}"));
                    self.attempts.push(attempt);
                    self.devices.push(id);
                    self.heap.push(live_bytes());
                    return id;
                }
                Err(e) => println!("  re-open attempt {attempt} at {:?}: {e}", self.emu.now()),
            }
        }
        panic!("no re-open within {MAX_ATTEMPTS} bring-ups");
    }

    /// Handles driver events until `id` is removed or the device time reaches `until`;
    /// `true` if it was removed.
    fn run(&mut self, id: DeviceId, until: Instant) -> bool {
        loop {
            if self.emu.now() >= until {
                return false;
            }
            let Ok(e) = self.rx.recv_timeout(StdDuration::from_millis(50)) else { continue };
            if matches!(e, DriverEvent::DeviceRemoved { device } if device == id) {
                self.account(id);
                return true;
            }
            self.note(&e);
        }
    }

    /// Follows the FXS ports' hook state in the driver's events.
    fn note(&mut self, e: &DriverEvent) {
        if let DriverEvent::Chan { channo, event, .. } = e
            && (1..=u32::from(FXS_PORTS)).contains(channo)
        {
            let port = (channo - 1) as usize;
            if *event == Event::RINGOFFHOOK {
                self.hook[port] = true;
            } else if *event == Event::ONHOOK || *event == Event::REMOVED {
                self.hook[port] = false;
            }
        }
    }

    /// Handles the events already sent.
    fn drain(&mut self) {
        while let Ok(e) = self.rx.try_recv() {
            self.note(&e);
        }
    }

    /// Once `id`'s loop has ended: its frames, accounted.
    fn account(&mut self, id: DeviceId) {
        let mut sh = self.shared.lock().unwrap();
        let delivered = sh.seen - sh.dropped;
        self.lost += sh.dropped;
        sh.armed = false;
        drop(sh);
        let counted = self.drv.stats(id).unwrap().rx_transfers;
        self.frames.push((delivered, counted));
    }

    /// Ends `id` in order and accounts for it.
    fn close(&mut self, id: DeviceId) {
        self.drv.close_device(id).unwrap();
        assert!(self.drv.wait_gone(id, EVENT_WAIT).unwrap());
        self.account(id);
        self.drain();
    }

    /// FXS ports whose driver hook state differs from the emulator's phone.
    fn hook_mismatches(&mut self) -> Vec<u8> {
        self.drain();
        self.emu.with_device(|d| {
            (0..FXS_PORTS)
                .filter(|&p| {
                    d.data().phone(0, p).map(|ph| ph.is_off_hook()) != Some(self.hook[usize::from(p)])
                })
                .collect()
        })
    }

    /// Lets `d` of device time pass, handling events.
    fn idle(&mut self, id: DeviceId, d: Duration) {
        let until = self.emu.now() + d;
        assert!(!self.run(id, until), "the device went away while idle");
    }
}

/// Seeded hook changes on the FXS phones and rings on the FXO lines over `[from, to)`.
/// With `last`: one more hook change per phone, 100 ms apart from `last` on (the soak loses
/// every hook report from just before then, so only the hook poll can see these).
fn scenario(seed: u64, from: Instant, to: Instant, last: Option<Instant>) -> Scenario {
    let mut rng = SplitMix64::new(seed);
    let mut events: Vec<(u64, String)> = Vec::new();
    let span_ms = to.saturating_duration_since(from).total_millis();
    for port in 0..FXS_PORTS {
        let mut t = from.total_millis() + rng.next_u64() % 20_000;
        let mut off = false;
        while t < from.total_millis() + span_ms {
            off = !off;
            events.push((t, format!("phone 0/{port} {}", if off { "offhook" } else { "onhook" })));
            t += 5_000 + rng.next_u64() % 60_000;
        }
        if let Some(last) = last {
            let t = last.total_millis() + 100 * u64::from(port);
            events.push((t, format!("phone 0/{port} {}", if off { "onhook" } else { "offhook" })));
        }
    }
    for line in 0..FXS_PORTS {
        let mut t = from.total_millis() + rng.next_u64() % 60_000;
        while t + 4_000 < from.total_millis() + span_ms {
            events.push((t, format!("line 1/{line} ring on")));
            events.push((t + 2_000 + rng.next_u64() % 2_000, format!("line 1/{line} ring off")));
            t += 30_000 + rng.next_u64() % 120_000;
        }
    }
    events.sort();
    let text: String = events.iter().map(|(t, a)| format!("{t}ms {a}\n")).collect();
    Scenario::parse(&text, Instant::ZERO).unwrap_or_else(|e| panic!("{e:?}"))
}

/// A running-stage FXS + FXO device. The emulator's own logs are kept short (the phones'
/// recorders, the event log), so that the heap figures are the driver's: at their defaults
/// they fill to some megabytes as phones stay off-hook, whatever the driver does.
fn running(seed: u64, core: CoreConfig) -> DeviceConfig {
    let mut cfg = DeviceConfig::default().with_start_stage(Stage::Running).with_seed(seed).with_core(core);
    cfg.data.timings.record_limit = 800;
    cfg.data.event_log_limit = 64;
    cfg
}

/// Issue 15, item 3: 50 cable pulls and re-opens without other faults; the heap after the
/// last re-open is within 50 × [`REPLUG_BOUND`] of the heap after the first.
fn replug_memory() {
    let mut core = CoreConfig::default();
    core.scheduled_faults = (0..50)
        .map(|i| ScheduledFault::Unplug {
            port: 0,
            at: Instant::from_secs(5 + 10 * i),
            duration: Duration::from_secs(1),
        })
        .collect();
    let mut b = Bench::new(running(7, core), scenario(7, Instant::ZERO, Instant::ZERO, None), 0);
    let mut id = b.open();
    for _ in 0..50 {
        assert!(b.run(id, Instant::from_secs(600)), "unplugged");
        id = b.open();
    }
    b.close(id);
    let growth: Vec<i64> = b.heap.iter().map(|h| h - b.heap[0]).collect();
    let (first, last) = (b.heap[0], *b.heap.last().unwrap());
    let per = (last - first) / 50;
    println!(
        "replug memory: 50 re-plugs, heap after the first open {first} B, after the last {last} B \
         ({per:+} B per re-plug); growth after 10/25/50: {}/{}/{} B",
        growth[10], growth[25], growth[50]
    );
    // What a removed device keeps is its record (id, numbers, counters: some hundred bytes);
    // 4 KiB per re-plug is ten times that and fifty times less than the 200 KB once held.
    assert!(last - first <= 50 * REPLUG_BOUND, "the heap grew by {} B over 50 re-plugs", last - first);
    assert!(b.attempts.iter().all(|&a| a == 1), "{:?}", b.attempts);
    b.drv.close();
}

/// The fault soak.
fn soak(seconds: u64) {
    let end = Instant::from_secs(seconds);
    let seed = 0x15_50AC;
    let mut rng = SplitMix64::new(seed);
    let every = |p: u32| FaultTrigger::PerMillion(p);
    let window = |r: FaultRule| r.during(Instant::ZERO, end);
    let mut core = CoreConfig::default();
    core.faults = vec![
        window(FaultRule::new(FaultEndpoint::Ep(ep::DATA_IN), FaultAction::FlipBits(1)).when(every(500))),
        window(FaultRule::new(FaultEndpoint::Ep(ep::DATA_IN), FaultAction::Duplicate).when(every(500))),
        window(FaultRule::new(FaultEndpoint::Ep(ep::DATA_IN), FaultAction::Truncate(6)).when(every(200))),
        window(
            FaultRule::new(FaultEndpoint::Ep(ep::DATA_IN), FaultAction::Delay(Duration::from_millis(5)))
                .when(every(500)),
        ),
        window(FaultRule::new(FaultEndpoint::Ep(ep::DATA_IN), FaultAction::Stall).when(every(20))),
        // One hook report in 20 lost, and all of them over the last hook changes (10 s
        // before the end): only the FXS lines' hook poll can find those changes.
        window(
            FaultRule::new(FaultEndpoint::Ep(ep::DATA_IN), FaultAction::Drop)
                .with_opcode(u8::from(Opcode::SigChanged))
                .when(every(50_000)),
        ),
        FaultRule::new(FaultEndpoint::Ep(ep::DATA_IN), FaultAction::Drop)
            .with_opcode(u8::from(Opcode::SigChanged))
            .during(end - Duration::from_millis(9_500), end),
        window(FaultRule::new(FaultEndpoint::Ep(ep::DATA_OUT), FaultAction::Drop).when(every(2_000))),
        window(FaultRule::new(FaultEndpoint::Ep(ep::DATA_OUT), FaultAction::Duplicate).when(every(500))),
        window(
            FaultRule::new(FaultEndpoint::Ep(ep::DATA_OUT), FaultAction::Delay(Duration::from_millis(3)))
                .when(every(500)),
        ),
    ];
    // 20 cable pulls of 1 to 3 s, spread over the run.
    let pulls = (seconds / 60).clamp(1, 20);
    core.scheduled_faults = (0..pulls)
        .map(|i| {
            let slot = seconds * 1000 / (pulls + 1);
            let at = Instant::from_millis(slot * (i + 1) + rng.next_u64() % (slot / 2));
            ScheduledFault::Unplug {
                port: 0,
                at,
                duration: Duration::from_millis(1_000 + rng.next_u64() % 2_000),
            }
        })
        .collect();
    let settle = Duration::from_secs(10);
    let last = end - settle + Duration::from_secs(1);
    let mut b =
        Bench::new(running(seed, core), scenario(seed, Instant::ZERO, end - settle, Some(last)), 2_000);
    let wall = std::time::Instant::now();
    let mut id = b.open();
    while b.run(id, end) {
        id = b.open();
    }
    // The faults are over; the last hook changes are 10 s back, and the hook poll (1 s) and
    // an on-hook's flash window (1.25 s) are over too.
    b.idle(id, Duration::from_secs(3));
    let before = b.hook_mismatches();
    // Reconciliation by a fault-free re-open: bring-up reads every FXS port's hook state.
    b.close(id);
    let last = b.open();
    b.idle(last, Duration::from_secs(2));
    let after = b.hook_mismatches();
    b.close(last);
    let wall = wall.elapsed();

    let sh = b.shared.lock().unwrap();
    let reopens = b.devices.len() - 1;
    let delivered: u64 = b.frames.iter().map(|f| f.0).sum();
    let counted: u64 = b.frames.iter().map(|f| f.1).sum();
    let heap_growth = b.heap.last().unwrap() - b.heap[0];
    let stats: Vec<_> = b.devices.iter().map(|&d| b.drv.stats(d).unwrap()).collect();
    let dstats: Vec<_> = b.devices.iter().map(|&d| b.drv.device_stats(d).unwrap()).collect();
    println!("soak: {seconds} s of device time in {:.1} s of wall time", wall.as_secs_f64());
    println!(
        "  re-opens: {reopens} ({pulls} cable pulls + 1 after the faults), bring-ups per re-open: {:?}",
        b.attempts
    );
    println!(
        "  data IN frames delivered {delivered}, counted by the driver {counted}, dropped on the way {} \
         (and {} SIG_CHANGED transfers dropped by the emulator)",
        b.lost,
        sh.faults.get("IN drop (SIG_CHANGED)").copied().unwrap_or(0)
    );
    println!("  emulator faults applied: {:?}", sh.faults);
    println!(
        "  driver: rx_errors {}, rx_rejected {}, late_ticks {}, early_ticks {}, in_stalls {}, halts_cleared {}, backoffs {}",
        stats.iter().map(|s| s.rx_errors).sum::<u64>(),
        stats.iter().map(|s| s.rx_rejected).sum::<u64>(),
        stats.iter().map(|s| s.late_ticks).sum::<u64>(),
        stats.iter().map(|s| s.early_ticks).sum::<u64>(),
        dstats.iter().map(|s| s.in_stalls).sum::<u64>(),
        dstats.iter().map(|s| s.halts_cleared).sum::<u64>(),
        dstats.iter().map(|s| s.backoffs).sum::<u64>(),
    );
    println!("  heap growth from the first open to the last: {heap_growth} B");
    println!("  frames per device (delivered, counted): {:?}", b.frames);
    println!(
        "  FXS hook state differing from the phones: {before:?} at the end of the faults, {after:?} after a re-open"
    );

    assert!(reopens > pulls as usize, "every cable pull ended in a re-open");
    assert!(b.attempts.iter().all(|&a| a <= MAX_ATTEMPTS));
    // Exact for every device that was unplugged; a device closed in order may see up to its
    // queued reads complete after its bus stopped (the last two), which it does not count.
    let closed = b.frames.len() - 2;
    for (i, &(delivered, counted)) in b.frames.iter().enumerate() {
        if i < closed {
            assert_eq!(
                counted, delivered,
                "device {i}: the driver counted {counted} of {delivered} frames delivered"
            );
        } else {
            let queued = DriverOptions::default().in_transfers as u64;
            assert!(
                counted <= delivered && delivered - counted <= queued,
                "device {i}: {counted} of {delivered}"
            );
        }
    }
    assert!(b.lost > 0 && sh.faults.values().all(|&n| n > 0), "every fault kind happened: {:?}", sh.faults);
    assert!(stats.iter().map(|s| s.late_ticks).sum::<u64>() > 0, "lost frames show as late ticks");
    assert!(heap_growth <= MEMORY_BOUND, "the heap grew by {heap_growth} B over {reopens} re-opens");
    assert!(before.is_empty(), "after the faults, FXS ports {before:?} differ from their phones");
    assert!(after.is_empty(), "after a fault-free re-open, FXS ports {after:?} differ from their phones");
    drop(sh);
    b.drv.close();
}

fn main() {
    // Two minutes in `cargo test`; `.ci/run` runs the hour (XPP_SOAK_SECONDS=3600).
    let seconds = std::env::var("XPP_SOAK_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(120);
    // `cargo test -- --list` and filters: this binary has two tests and runs both.
    if std::env::args().any(|a| a == "--list") {
        println!("replug_memory: test\nsoak: test");
        return;
    }
    replug_memory();
    soak(seconds);
    println!("soak: ok");
}
