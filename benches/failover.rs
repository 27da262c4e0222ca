//! TwinStar failover in real time (issue 10's benchmark): one emulated TwinStar Astribank
//! served over USB/IP on loopback (watchdog 200 ms, jump delay 100 ms: USB's attach
//! debounce), host A (port 0, master) and host B (port 1, backup) each a driver with its
//! TwinStar host, a phone off hook (a call) on A. Each iteration builds that set-up, then
//! measures from the fault to B's first audio:
//!
//! - `failover/crash`: A's data stream stops (its run loop closed, as in a crash); the
//!   device's watchdog moves it to B;
//! - `failover/hung_pbx`: A's PBX stops answering its health check (every 100 ms, 200 ms
//!   timeout, 3 failures); A hands the device over;
//! - `failover/crash_standby`: the crash, with B's spans registered in standby before it
//!   (B started with the layout A wrote, `TwinStarOptions::layout_dir`): the take-over runs
//!   in that registration.
//!
//! Criterion reports the total per failover; after the runs, the phases of every run are
//! printed as p50 / p95 / max: detect (fault → decision: the watchdog's timeout, or the hung
//! PBX's failed checks until TWS_PORT_SET), when A sees the device leave (after the
//! decision), jump + enumerate (decision → B asks for the take-over: the device's jump delay
//! plus B's listing period), B's take-over (verify) and first audio, and the host's own share
//! (total minus detection and jump delay). Targets: host share p95 <= 100 ms, total p95 <=
//! 500 ms (crash, 200 ms watchdog).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant as StdInstant};

use criterion::{Criterion, SamplingMode};
use xpp::bringup::{FirmwareSet, find_firmware_dir, read_firmware_dir};
use xpp::driver::tws::{Config, Event as TwsEvent, Phase, Role};
use xpp::driver::{Driver, DriverEvent, DriverOptions, Target, TwinStarHost, TwinStarOptions, layout_file};
use xpp::emu::config::{CoreConfig, Stage};
use xpp::emu::usbip_server::{UsbIpServer, busid};
use xpp::emu::{DeviceConfig, Emulator};
use xpp::proto::Duration;
use xpp::span::Event;
use xpp::usb::SystemClock;

const JUMP_DELAY_MS: u64 = 100;
const WATCHDOG_MS: u64 = 200;
const WAIT: StdDuration = StdDuration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Crash,
    HungPbx,
    /// A crash, B in warm standby with its spans registered.
    CrashStandby,
}

/// One run's phases, in ms.
#[derive(Debug, Default, Clone)]
struct Run {
    detect: f64,
    hand_over: f64,
    device_move: f64,
    take_over: f64,
    first_audio: f64,
    host_share: f64,
    total: f64,
}

fn ms(d: StdDuration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn phase_ms(t: &xpp::driver::tws::Timeline, p: Phase) -> f64 {
    t.duration(p).map_or(0.0, |d| d.total_micros() as f64 / 1e3)
}

/// Waits for an event matching `pred` on `rx`, returning when it came.
fn until(
    rx: &xpp::driver::channel::Receiver<DriverEvent>,
    mut pred: impl FnMut(&DriverEvent) -> bool,
) -> (StdInstant, DriverEvent) {
    let end = StdInstant::now() + WAIT;
    loop {
        let left = end.saturating_duration_since(StdInstant::now());
        let e = rx.recv_timeout(left).expect("event within 30 s");
        if pred(&e) {
            return (StdInstant::now(), e);
        }
    }
}

fn tws(e: &DriverEvent, pred: impl Fn(&TwsEvent) -> bool) -> bool {
    matches!(e, DriverEvent::TwinStar(t) if pred(t))
}

/// One failover from a fresh set-up; the phases.
fn failover(fault: Fault, firmware: &FirmwareSet) -> Run {
    let mut core = CoreConfig::default();
    core.jump_delay = Duration::from_millis(JUMP_DELAY_MS);
    core.watchdog_timeout = Duration::from_millis(WATCHDOG_MS);
    let cfg = DeviceConfig::default().with_twinstar(true).with_start_stage(Stage::Running).with_core(core);
    let (emu, _runner) = Emulator::real_time(cfg);
    let server = UsbIpServer::bind_loopback(emu.clone(), 0).expect("bind 127.0.0.1:0");
    let addr = server.local_addr();
    let target = |port: u8| -> Target { format!("usbip:{addr}/{}", busid(port)).parse().expect("target") };
    let ms_ = Duration::from_millis;
    let controller = Config::default().with_health(ms_(100), ms_(200), 3).with_anti_flap(
        Duration::ZERO,
        3,
        Duration::from_secs(600),
    );
    let options = TwinStarOptions::new(firmware.clone()).with_controller(controller);
    let layouts = std::env::temp_dir().join(format!("xpp-bench-layouts-{}", std::process::id()));
    let (dir_a, dir_b) = (layouts.join("a"), layouts.join("b"));
    let drv_a = Arc::new(Driver::new(SystemClock::new(), DriverOptions::default()));
    let drv_b = Arc::new(Driver::new(SystemClock::new(), DriverOptions::default()));
    let (rx_a, rx_b) = (drv_a.events(), drv_b.events());
    let healthy = Arc::new(AtomicBool::new(true));
    let h = Arc::clone(&healthy);
    let host_a = TwinStarHost::start(
        Arc::clone(&drv_a),
        vec![target(0)],
        Role::Master,
        move || h.load(Ordering::SeqCst),
        options.clone().with_layout_dir(&dir_a),
    )
    .expect("host A");
    until(&rx_a, |e| tws(e, |t| matches!(t, TwsEvent::WatchdogChanged { armed: true, .. })));
    let options_b = if fault == Fault::CrashStandby {
        // B gets the layout A wrote (as an integrator copies it), so it starts in standby.
        let layout = std::fs::read(layout_file(&dir_a, &target(0))).expect("A's layout");
        std::fs::create_dir_all(&dir_b).expect("layout folder");
        std::fs::write(layout_file(&dir_b, &target(1)), layout).expect("B's layout");
        options.with_layout_dir(&dir_b)
    } else {
        options
    };
    let host_b = TwinStarHost::start(Arc::clone(&drv_b), vec![target(1)], Role::Backup, || true, options_b)
        .expect("host B");
    if fault == Fault::CrashStandby {
        until(&rx_b, |e| matches!(e, DriverEvent::DeviceStandby { .. }));
    }
    emu.with_device(|d| {
        let now = d.now();
        d.data_mut().phone_mut(0, 0).expect("phone").off_hook(now);
    });
    until(&rx_a, |e| matches!(e, DriverEvent::Chan { event: Event::RINGOFFHOOK, .. }));

    let fault_at = StdInstant::now();
    let fault_now = drv_a.now();
    match fault {
        Fault::Crash | Fault::CrashStandby => {
            let id = host_a.status().devices[0].expect("A holds the device");
            drv_a.close_device(id).expect("close");
        }
        Fault::HungPbx => healthy.store(false, Ordering::SeqCst),
    }
    // A loses the device (the jump), B takes it over, first audio.
    let (left_a, _) = match fault {
        Fault::Crash | Fault::CrashStandby => {
            until(&rx_a, |e| tws(e, |t| *t == TwsEvent::RoleChanged { role: Role::Backup }))
        }
        Fault::HungPbx => until(&rx_a, |e| tws(e, |t| matches!(t, TwsEvent::Failover { .. }))),
    };
    let a_timeline = host_a.status().last_failover;
    let (audio_at, last) = until(&rx_b, |e| tws(e, |t| matches!(t, TwsEvent::Failover { .. })));
    let DriverEvent::TwinStar(TwsEvent::Failover { timeline: b }) = last else { unreachable!() };
    let total = ms(audio_at - fault_at);
    let take_over = phase_ms(&b, Phase::TakeOver) + phase_ms(&b, Phase::FullInit);
    let first_audio = phase_ms(&b, Phase::FirstAudio);
    let b_start = ms(audio_at - fault_at) - take_over - first_audio;
    let (detect, hand_over) = match (fault, &a_timeline) {
        // From the hang to the hand-over's start (the health checks' own timing), then the
        // hand-over until the device left A.
        (Fault::HungPbx, Some(a)) => {
            let start = a.phases().iter().find(|p| p.phase == Phase::HandOver).map(|p| p.start);
            let detect =
                start.map_or(0.0, |s| s.saturating_duration_since(fault_now).total_micros() as f64 / 1e3);
            (detect, phase_ms(a, Phase::HandOver))
        }
        // The device's watchdog decides; A sees the device leave when it jumps.
        _ => (WATCHDOG_MS as f64, ms(left_a - fault_at) - WATCHDOG_MS as f64),
    };
    // From the decision (TWS_PORT_SET sent, or the watchdog's expiry) until B asks for the
    // take-over: the device's jump delay, then B's listing period.
    let device_move = (b_start - detect).max(0.0);
    // Everything but the detection (configuration: watchdog timeout, health checks) and the
    // device's jump delay.
    let host_share = total - detect - JUMP_DELAY_MS as f64;
    host_b.stop(StdDuration::from_secs(10));
    host_a.stop(StdDuration::from_secs(10));
    for d in [drv_a, drv_b] {
        if let Ok(d) = Arc::try_unwrap(d) {
            d.close();
        }
    }
    server.shutdown();
    let _ = std::fs::remove_dir_all(&layouts);
    Run { detect, hand_over, device_move, take_over, first_audio, host_share, total }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn report(name: &str, runs: &[Run]) {
    if runs.is_empty() {
        return;
    }
    println!("\n{name}: {} runs (ms)        p50      p95      max", runs.len());
    let col = |label: &str, f: fn(&Run) -> f64| {
        let mut v: Vec<f64> = runs.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        println!(
            "  {label:<22} {:>8.1} {:>8.1} {:>8.1}",
            percentile(&v, 0.5),
            percentile(&v, 0.95),
            v[v.len() - 1]
        );
    };
    col("detect", |r| r.detect);
    col("A sees it leave", |r| r.hand_over);
    col("jump + enumerate", |r| r.device_move);
    col("take-over (verify)", |r| r.take_over);
    col("first audio", |r| r.first_audio);
    col("host share", |r| r.host_share);
    col("total", |r| r.total);
}

fn main() {
    let dir = find_firmware_dir().unwrap_or_else(|e| panic!("{e}"));
    let firmware = read_firmware_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut c = Criterion::default().configure_from_args();
    let faults =
        [(Fault::Crash, "crash"), (Fault::HungPbx, "hung_pbx"), (Fault::CrashStandby, "crash_standby")];
    let results: Vec<(&str, Arc<Mutex<Vec<Run>>>)> = faults
        .into_iter()
        .map(|(fault, name)| {
            let runs = Arc::new(Mutex::new(Vec::new()));
            let mut group = c.benchmark_group("failover");
            group
                .sampling_mode(SamplingMode::Flat)
                .sample_size(20)
                .warm_up_time(StdDuration::from_millis(1))
                .measurement_time(StdDuration::from_secs(1));
            let r = Arc::clone(&runs);
            let fw = firmware.clone();
            group.bench_function(name, move |b| {
                b.iter_custom(|iters| {
                    let mut total = StdDuration::ZERO;
                    for _ in 0..iters {
                        let run = failover(fault, &fw);
                        total += StdDuration::from_secs_f64(run.total / 1e3);
                        r.lock().expect("runs").push(run);
                    }
                    total
                });
            });
            group.finish();
            (name, runs)
        })
        .collect();
    for (name, runs) in &results {
        report(&format!("failover/{name}"), &runs.lock().expect("runs"));
    }
    c.final_summary();
}
