//! `demo`: an emulated Astribank (FXS + FXO), the xpp driver, and a tiny PBX making a call.
//!
//! ```text
//! cargo run --example demo -- [--stage cold|usb|fpga|running] [--virtual] [--crash] [--pri]
//! ```
//!
//! Starts an emulated device in real time (`--virtual`: on the emulator's auto-advancing
//! virtual clock, with the driver in lockstep, as the tests run it), brings it up with the
//! real firmware images (`XPP_FIRMWARE_DIR`, else `testdata/firmware`, else `/usr/share/dahdi`; a `cold` device
//! gets the USB firmware, the FPGA image and the PIC images), and runs a tiny PBX on the
//! driver's public API: the phone on FXS port 1 goes off-hook, the PBX seizes FXO port 1 and
//! bridges the two channels chunk by chunk every tick, the PSTN far party answers, a 1 kHz
//! tone goes from the phone to the far party and a 2 kHz tone back, each checked with a tone
//! detector, then both hang up. It prints the bring-up phases with their durations, the call
//! with timestamps, and one line per check; the exit code is 0 only if every check passed.
//!
//! Then a failover, always in real time: one TwinStar Astribank served over USB/IP on
//! loopback, two hosts (two drivers, each with its TwinStar controller) on its two USB ports.
//! A call is up on host A; A's PBX hangs (its health checks fail); A hands the device over,
//! host B takes it over warm (verified, not reset) and bridges the call, whose audio is
//! checked both ways; each host's failover timeline is printed with a total. With `--crash`,
//! host A crashes instead (its run loop stops, no more data): the device's watchdog moves it.
//!
//! With `--pri`, then a digital span, in real time: an Astribank with an E1 port whose far end
//! answers Q.921. The span starts with its line defaults, its layer 1 comes up and it becomes
//! the timing master; the PBX brings its D-channel's Q.921 link up (SABME, UA) and sends an
//! I-frame the far end acknowledges; the far end is unplugged (RED alarm) and plugged back
//! (NOALARM).

mod common;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration as StdDuration;

use clap::Parser;
use xpp::bringup::{BringUpConfig, RunOptions, find_firmware_dir, read_firmware_dir};
use xpp::driver::tws::{Config as TwsConfig, Event as TwsEvent, Role};
use xpp::driver::{
    Clock, DeviceId, Driver, DriverEvent, DriverOptions, Pacing, SystemClock, Target, TwinStarHost,
    TwinStarOptions,
};
use xpp::emu::config::{CoreConfig, Stage};
use xpp::emu::data::g711::{Source, has_tone, level_db};
use xpp::emu::data::{CallState, Phone, PstnLine};
use xpp::emu::usbip_server::{UsbIpServer, busid};
use xpp::emu::{ClockMode, DeviceConfig, Emulator};
use xpp::span::hook::HookMode;
use xpp::span::{Event, HookCmd};
use xpp::{Duration, Instant};

/// The phone's channel (FXS unit 0, port 0) and the line's (FXO unit 1, port 0).
const FXS1: u32 = 1;
const FXO1: u32 = 15;
/// How long each tone plays before it is checked.
const TONE_MS: u64 = 500;
/// The whole call must end within this much device time.
const CALL_LIMIT_MS: u64 = 20_000;

/// Run an emulated Astribank and a tiny PBX call over the xpp driver.
#[derive(Parser)]
#[command(name = "demo")]
struct Args {
    /// Power-on stage of the emulated device.
    #[arg(long, value_enum, default_value_t)]
    stage: common::StageArg,
    /// Run on the emulator's virtual clock (fast, deterministic) instead of real time.
    #[arg(long = "virtual")]
    virtual_clock: bool,
    /// Failover by a crash of host A (its data stream stops; the watchdog path) instead of a
    /// hung PBX.
    #[arg(long)]
    crash: bool,
    /// Also show an E1 PRI span coming up with its D-channel (Q.921) established.
    #[arg(long)]
    pri: bool,
}

/// What the demo runs.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) stage: Stage,
    pub(crate) virtual_clock: bool,
    pub(crate) firmware: Result<PathBuf, String>,
    /// The failover is a crash of host A, not a hung PBX.
    pub(crate) crash: bool,
    /// Also run the PRI span part.
    pub(crate) pri: bool,
}

impl Options {
    /// Cold start, real time, the default firmware folder.
    pub(crate) fn new(stage: Stage, virtual_clock: bool) -> Self {
        Self { stage, virtual_clock, firmware: default_firmware_dir(), crash: false, pri: false }
    }
}

/// The first firmware folder of the one search order (`XPP_FIRMWARE_DIR`, the repository's
/// `testdata/firmware`, `/usr/share/dahdi`); when there is none, the error names every folder
/// searched once the demo tries to read it.
pub(crate) fn default_firmware_dir() -> Result<PathBuf, String> {
    find_firmware_dir().map_err(|e| e.to_string())
}

/// One check and whether it passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Check {
    pub(crate) name: String,
    pub(crate) pass: bool,
}

/// Runs the whole demo, handing each output line to `out`; the checks made.
pub(crate) fn run(opts: &Options, out: &mut dyn FnMut(String)) -> Result<Vec<Check>, String> {
    let cfg = DeviceConfig::default().with_start_stage(opts.stage);
    let (emu, _runner) = if opts.virtual_clock {
        (Emulator::with_mode(cfg, ClockMode::AutoAdvance), None)
    } else {
        let (emu, runner) = Emulator::real_time(cfg);
        (emu, Some(runner))
    };
    // The driver's one clock (bring-up, run loop, PBX calls): the emulator's virtual time, or
    // the wall clock as in production.
    let clock: Arc<dyn Clock> =
        if opts.virtual_clock { Arc::new(emu.clone()) } else { Arc::new(SystemClock::new()) };
    // Decision: lockstep on the virtual clock (the PBX sees every tick, the run is
    // reproducible), free-running in real time (the device sets the pace, as in production).
    let pacing = if opts.virtual_clock { Pacing::Lockstep } else { Pacing::FreeRunning };
    let drv = Driver::new(clock, DriverOptions::default().with_pacing(pacing));
    let events = drv.events();

    out(format!(
        "== bring-up: emulated Astribank (FXS + FXO), stage {:?}, {} clock, firmware {}",
        opts.stage,
        if opts.virtual_clock { "virtual" } else { "real-time" },
        opts.firmware.as_ref().map_or_else(|e| e.clone(), |d| d.display().to_string())
    ));
    let dir = opts.firmware.as_ref().map_err(Clone::clone)?;
    let fw = read_firmware_dir(dir).map_err(|e| format!("firmware folder {}: {e}", dir.display()))?;
    let e2 = emu.clone();
    let id = drv
        .open(move || e2.transport(0), BringUpConfig::default(), fw, RunOptions::default())
        .map_err(|e| e.to_string())?;
    let result = drv.bring_up_result(id).map_err(|e| e.to_string())?;
    for t in &result.timeline {
        out(format!("  {t}"));
    }
    let total: Duration = result.timeline.iter().fold(Duration::ZERO, |a, t| a + t.duration);
    out(format!("  bring-up done in {:.1} ms", total.total_micros() as f64 / 1000.0));
    for s in drv.spans() {
        out(format!(
            "  span {}: {} ({:?}), channels {}-{}",
            s.spanno,
            s.name,
            s.spantype,
            s.basechan,
            s.basechan + s.channels - 1
        ));
    }

    out("== call: phone on FXS 1 -> PBX -> FXO 1 -> PSTN line 1".to_owned());
    let call_drv = Arc::new(drv);
    let d2 = call_drv.clone();
    let emu2 = emu.clone();
    let (line_tx, line_rx) = std::sync::mpsc::channel::<String>();
    let pbx = std::thread::Builder::new()
        .name("pbx".into())
        .spawn(move || call(&d2, id, &emu2, &events, &line_tx))
        .map_err(|e| e.to_string())?;
    // Print the call as it happens.
    for line in line_rx {
        out(line);
    }
    let checks = pbx.join().map_err(|_| "the PBX thread panicked".to_owned())?;
    match Arc::try_unwrap(call_drv) {
        Ok(d) => d.close(),
        Err(_) => return Err("driver still shared".into()),
    }
    out("== driver closed (SYNC_SOURCE NONE sent, run loop joined)".to_owned());
    let mut checks = checks;
    checks.extend(failover(opts, out)?);
    if opts.pri {
        checks.extend(pri(opts, out)?);
    }
    for c in &checks {
        out(format!("check: {}: {}", c.name, if c.pass { "PASS" } else { "FAIL" }));
    }
    Ok(checks)
}

/// The people at both ends of the call, scripted on the emulated equipment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Script {
    Start,
    OffHook,
    Connected,
    ToneUp,
    ToneDown,
    HungUp,
    Done,
}

/// The tiny PBX: only the driver's public API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pbx {
    Idle,
    Bridged,
    Released,
}

fn phone<R>(emu: &Emulator, f: impl FnOnce(&mut Phone, Instant) -> R) -> R {
    emu.with_device(|d| {
        let now = d.now();
        let p = d.data_mut().phone_mut(0, 0).expect("FXS unit 0 has a phone on port 0");
        f(p, now)
    })
}

fn pstn<R>(emu: &Emulator, f: impl FnOnce(&mut PstnLine, Instant) -> R) -> R {
    emu.with_device(|d| {
        let now = d.now();
        let l = d.data_mut().pstn_mut(1, 0).expect("FXO unit 1 has a PSTN line on port 0");
        f(l, now)
    })
}

/// The call: one loop per device tick running the script (the people) and the PBX.
fn call(
    drv: &Driver,
    id: DeviceId,
    emu: &Emulator,
    events: &xpp::driver::Receiver<DriverEvent>,
    out: &std::sync::mpsc::Sender<String>,
) -> Vec<Check> {
    // Start at tick 2: in lockstep the loop cannot pass tick 1 before this thread's first
    // call, so the call starts at the same virtual time on every run. What was reported
    // before (bring-up progress, the channels' initial state) is dropped.
    let mut tick = 0;
    while tick < 2 {
        match drv.wait_tick(id, StdDuration::from_secs(2)) {
            Ok(t) => tick = t,
            Err(e) => {
                let _ = out.send(format!("  driver: {e}"));
                return vec![Check { name: "device ticks".into(), pass: false }];
            }
        }
    }
    while events.try_recv().is_ok() {}
    let t0 = drv.now();
    let stamp = |now: Instant| format!("[{:>6} ms]", now.saturating_duration_since(t0).total_millis());
    let say = |now: Instant, s: &str| {
        let _ = out.send(format!("  {} {s}", stamp(now)));
    };
    let mut checks = Vec::new();
    let mut check = |name: String, pass: bool| checks.push(Check { name, pass });
    let mut script = Script::Start;
    let mut since = t0;
    let mut pbx = Pbx::Idle;
    let mut line_state = CallState::Idle;
    let (mut saw_offhook, mut saw_onhook) = (false, false);
    let mut ever_connected = false;
    let (mut a, mut b) = ([0u8; 8], [0u8; 8]);
    loop {
        if let Err(e) = drv.wait_tick(id, StdDuration::from_secs(2)) {
            say(drv.now(), &format!("driver: {e}"));
            check("device ticks through the call".into(), false);
            break;
        }
        let now = drv.now();
        // --- the PBX: events, then the bridge ---
        while let Ok(e) = events.try_recv() {
            let DriverEvent::Chan { channo, event, .. } = e else { continue };
            if channo != FXS1 && channo != FXO1 {
                continue;
            }
            say(now, &format!("PBX: channel {channo} event {event}"));
            match (channo, event, pbx) {
                (FXS1, Event::RINGOFFHOOK, Pbx::Idle) => {
                    saw_offhook = true;
                    say(now, "PBX: FXS 1 off-hook -> take FXO 1 off-hook and bridge 1 <-> 15");
                    match drv.set_hook(FXO1, HookCmd::OffHook, HookMode::Blocking) {
                        Ok(_) => pbx = Pbx::Bridged,
                        Err(e) => say(now, &format!("PBX: set_hook: {e}")),
                    }
                }
                (FXS1, Event::ONHOOK, Pbx::Bridged) => {
                    saw_onhook = true;
                    say(now, "PBX: FXS 1 hung up -> FXO 1 on-hook, bridge down");
                    let _ = drv.set_hook(FXO1, HookCmd::OnHook, HookMode::Blocking);
                    pbx = Pbx::Released;
                }
                _ => {}
            }
        }
        if pbx == Pbx::Bridged {
            // Each tick: what each side received goes to the other side's next tick.
            if drv.read_chunk(FXS1, &mut a).is_ok() && drv.read_chunk(FXO1, &mut b).is_ok() {
                let _ = drv.write_chunk(FXO1, &a);
                let _ = drv.write_chunk(FXS1, &b);
            }
        }
        // --- the people ---
        let st = pstn(emu, |l, _| l.state());
        if st != line_state {
            say(now, &format!("PSTN line 1: {line_state:?} -> {st:?}"));
            line_state = st;
            if st == CallState::DialTone && script < Script::HungUp {
                say(now, "PSTN far party: answers");
                pstn(emu, |l, t| l.answer(t));
            }
            ever_connected |= st == CallState::Connected;
        }
        let elapsed = now.saturating_duration_since(since).total_millis();
        match script {
            Script::Start if elapsed >= 200 => {
                say(now, "phone on FXS 1: off-hook");
                phone(emu, |p, t| p.off_hook(t));
                (script, since) = (Script::OffHook, now);
            }
            Script::OffHook if line_state == CallState::Connected && pbx == Pbx::Bridged => {
                (script, since) = (Script::Connected, now);
            }
            Script::Connected if elapsed >= 200 => {
                say(now, "phone on FXS 1: plays 1 kHz");
                phone(emu, |p, _| p.play(Source::tone_1k()));
                pstn(emu, |l, _| l.take_heard());
                (script, since) = (Script::ToneUp, now);
            }
            Script::ToneUp if elapsed >= TONE_MS => {
                let heard = pstn(emu, |l, _| l.take_heard());
                let tail = &heard[heard.len().saturating_sub(2000)..];
                let pass = has_tone(tail, 1000.0);
                say(
                    now,
                    &format!(
                        "audio check: PSTN far party hears 1 kHz ({:.1} dB): {}",
                        level_db(tail),
                        verdict(pass)
                    ),
                );
                check("audio phone -> PSTN (1 kHz)".into(), pass);
                phone(emu, |p, _| {
                    p.play(Source::Silence);
                    p.take_heard();
                });
                say(now, "PSTN far party: plays 2 kHz");
                pstn(emu, |l, _| l.play(Source::Tone { freq_hz: 2000, amplitude: 16000 }));
                (script, since) = (Script::ToneDown, now);
            }
            Script::ToneDown if elapsed >= TONE_MS => {
                let heard = phone(emu, |p, _| p.take_heard());
                let tail = &heard[heard.len().saturating_sub(2000)..];
                let pass = has_tone(tail, 2000.0);
                say(
                    now,
                    &format!("audio check: phone hears 2 kHz ({:.1} dB): {}", level_db(tail), verdict(pass)),
                );
                check("audio PSTN -> phone (2 kHz)".into(), pass);
                pstn(emu, |l, _| l.play(Source::Silence));
                say(now, "phone on FXS 1: hangs up; PSTN far party: hangs up");
                phone(emu, |p, t| p.on_hook(t));
                pstn(emu, |l, t| l.hang_up(t));
                (script, since) = (Script::HungUp, now);
            }
            Script::HungUp if pbx == Pbx::Released && line_state == CallState::Idle => {
                say(now, "call over: both sides on-hook, PSTN line idle");
                script = Script::Done;
            }
            _ => {}
        }
        if script == Script::Done {
            break;
        }
        if now.saturating_duration_since(t0) > Duration::from_millis(CALL_LIMIT_MS) {
            say(now, &format!("call stuck at {script:?} (PBX {pbx:?}, line {line_state:?})"));
            break;
        }
    }
    check("PBX saw FXS 1 off-hook (RINGOFFHOOK)".into(), saw_offhook);
    check("PSTN line 1 connected".into(), ever_connected);
    check("PBX saw FXS 1 hang up (ONHOOK)".into(), saw_onhook);
    check("call completed".into(), script == Script::Done);
    checks
}

/// The failover part: one TwinStar Astribank served over USB/IP on loopback, host A on USB
/// port 0 and host B on port 1, each a driver with its TwinStar controller; a call is up on
/// A, A's PBX hangs, the device moves to B, B takes the call over warm and its audio is
/// checked both ways; then each host's timeline and the total.
fn failover(opts: &Options, out: &mut dyn FnMut(String)) -> Result<Vec<Check>, String> {
    let ms = Duration::from_millis;
    let mut core = CoreConfig::default();
    // The USB attach debounce, and a short watchdog: what a production setup would choose.
    core.jump_delay = ms(100);
    core.watchdog_timeout = ms(200);
    let cfg = DeviceConfig::default().with_twinstar(true).with_start_stage(Stage::Running).with_core(core);
    let (emu, _runner) = Emulator::real_time(cfg);
    let server = UsbIpServer::bind_loopback(emu.clone(), 0).map_err(|e| format!("USB/IP server: {e}"))?;
    let target = |port: u8| -> Result<Target, String> {
        format!("usbip:{}/{}", server.local_addr(), busid(port)).parse().map_err(|e| format!("{e}"))
    };
    out(format!(
        "== failover: one TwinStar Astribank (real time, USB/IP on {}), host A on USB port 0, host B on port 1",
        server.local_addr()
    ));
    let dir = opts.firmware.as_ref().map_err(Clone::clone)?;
    let fw = read_firmware_dir(dir).map_err(|e| format!("firmware folder {}: {e}", dir.display()))?;
    let controller = TwsConfig::default().with_health(ms(100), ms(200), 3).with_anti_flap(
        Duration::ZERO,
        3,
        Duration::from_secs(600),
    );
    let options = TwinStarOptions::new(fw).with_controller(controller);
    // One wall clock for both hosts, so their timelines share an epoch.
    let clock = Arc::new(SystemClock::new());
    let drv_a = Arc::new(Driver::new(clock.clone(), DriverOptions::default()));
    let drv_b = Arc::new(Driver::new(clock.clone(), DriverOptions::default()));
    let (rx_a, rx_b) = (drv_a.events(), drv_b.events());
    let healthy_a = Arc::new(AtomicBool::new(true));
    let h = healthy_a.clone();
    let host_a = TwinStarHost::start(
        drv_a.clone(),
        vec![target(0)?],
        Role::Master,
        move || h.load(Ordering::SeqCst),
        options.clone(),
    )
    .map_err(|e| e.to_string())?;
    let host_b = TwinStarHost::start(drv_b.clone(), vec![target(1)?], Role::Backup, || true, options)
        .map_err(|e| e.to_string())?;
    let mut checks = Vec::new();
    let wait = StdDuration::from_secs(10);
    let tws =
        |rx: &xpp::driver::Receiver<DriverEvent>, want: &dyn Fn(&TwsEvent) -> bool| -> Option<TwsEvent> {
            let end = std::time::Instant::now() + wait;
            while let Ok(e) = rx.recv_timeout(end.saturating_duration_since(std::time::Instant::now())) {
                if let DriverEvent::TwinStar(t) = e
                    && want(&t)
                {
                    return Some(t);
                }
            }
            None
        };
    let armed = tws(&rx_a, &|t| matches!(t, TwsEvent::WatchdogChanged { armed: true, .. })).is_some();
    let device_a = host_a.status().devices[0];
    out(format!("  host A: master of the device, watchdog armed: {}", verdict(armed)));
    checks.push(Check { name: "host A took the device and armed its watchdog".into(), pass: armed });
    let Some(device_a) = device_a else { return Ok(checks) };

    // The call on host A: phone 1 off hook, the PBX seizes FXO 1 and bridges, the far party
    // answers.
    let line_is = |want: CallState, within: StdDuration| {
        let end = std::time::Instant::now() + within;
        while pstn(&emu, |l, _| l.state()) != want && std::time::Instant::now() < end {
            std::thread::sleep(StdDuration::from_millis(5));
        }
        pstn(&emu, |l, _| l.state()) == want
    };
    // The FXO port can seize the line once its line voltage has been read (battery present):
    // until then the driver refuses the seize, and the PBX tries again.
    let mut seized = false;
    for _ in 0..30 {
        let _ = drv_a.set_hook(FXO1, HookCmd::OffHook, HookMode::Blocking);
        if line_is(CallState::DialTone, StdDuration::from_millis(100)) {
            seized = true;
            break;
        }
    }
    phone(&emu, |p, t| p.off_hook(t));
    if seized {
        pstn(&emu, |l, t| l.answer(t));
    }
    let up = line_is(CallState::Connected, StdDuration::from_secs(3));
    let bridge_a = Bridge::start(drv_a.clone(), device_a);
    if !up {
        out(format!("  host A: PSTN line 1 is {:?}", pstn(&emu, |l, _| l.state())));
    }
    out(format!("  host A: call up, phone on FXS 1 <-> PSTN line 1 through FXO 1: {}", verdict(up)));
    checks.push(Check { name: "call up on host A".into(), pass: up });

    // Host A's PBX hangs (its health checks fail; A hands the device over), or host A
    // crashes (its data stream stops; the device's watchdog moves it).
    let fault_at = clock.now();
    let timeline_a = if opts.crash {
        out("  host A: crashes (its run loop stops: no more data on port 0)".to_owned());
        drop(bridge_a);
        let _ = drv_a.close_device(device_a);
        None
    } else {
        out("  host A: PBX hangs (health checks fail)".to_owned());
        healthy_a.store(false, Ordering::SeqCst);
        let t = tws(&rx_a, &|t| matches!(t, TwsEvent::Failover { .. }));
        drop(bridge_a);
        t
    };
    let timeline_b = tws(&rx_b, &|t| matches!(t, TwsEvent::Failover { .. }));
    let ta = match timeline_a {
        Some(TwsEvent::Failover { timeline }) => Some(timeline),
        _ => None,
    };
    let (Some(TwsEvent::Failover { timeline: tb }), true) = (timeline_b, opts.crash || ta.is_some()) else {
        checks.push(Check { name: "the device moved to host B".into(), pass: false });
        return Ok(checks);
    };
    let moved = emu.with_device(|d| d.active_port()) == 1 && host_b.status().role == Role::Master;
    checks.push(Check { name: "the device moved to host B".into(), pass: moved });
    let Some(device_b) = host_b.status().devices[0] else { return Ok(checks) };
    let warm = drv_b.bring_up_result(device_b).is_ok_and(|r| r.verified);
    checks.push(Check { name: "host B took over warm (verified, no reset)".into(), pass: warm });

    // Host B's PBX takes the call: it seizes FXO 1 (the port is still off hook on the device,
    // and B's line model has read that from the hook register; the command is accepted once
    // the model has read the line voltage, a few ms after the take-over) and the bridge
    // resumes on B.
    let seize_from = std::time::Instant::now();
    while drv_b.set_hook(FXO1, HookCmd::OffHook, HookMode::Blocking).is_err()
        && seize_from.elapsed() < StdDuration::from_secs(3)
    {
        std::thread::sleep(StdDuration::from_millis(2));
    }
    out(format!(
        "  host B: PBX seized FXO 1 again after {:.1} ms",
        seize_from.elapsed().as_secs_f64() * 1000.0
    ));
    let bridge_b = Bridge::start(drv_b.clone(), device_b);
    let still_up = pstn(&emu, |l, _| l.state()) == CallState::Connected;
    checks.push(Check { name: "the PSTN call stayed connected".into(), pass: still_up });
    let tone = |from_phone: bool| {
        if from_phone {
            pstn(&emu, |l, _| l.take_heard());
            phone(&emu, |p, _| p.play(Source::tone_1k()));
        } else {
            phone(&emu, |p, _| p.take_heard());
            pstn(&emu, |l, _| l.play(Source::Tone { freq_hz: 2000, amplitude: 16000 }));
        }
        std::thread::sleep(StdDuration::from_millis(TONE_MS));
        let heard =
            if from_phone { pstn(&emu, |l, _| l.take_heard()) } else { phone(&emu, |p, _| p.take_heard()) };
        phone(&emu, |p, _| p.play(Source::Silence));
        pstn(&emu, |l, _| l.play(Source::Silence));
        let tail = heard[heard.len().saturating_sub(2000)..].to_vec();
        (has_tone(&tail, if from_phone { 1000.0 } else { 2000.0 }), level_db(&tail))
    };
    let (up_ok, up_db) = tone(true);
    out(format!("  host B: audio phone -> PSTN (1 kHz, {up_db:.1} dB): {}", verdict(up_ok)));
    checks.push(Check { name: "after failover: audio phone -> PSTN (1 kHz)".into(), pass: up_ok });
    let (down_ok, down_db) = tone(false);
    out(format!("  host B: audio PSTN -> phone (2 kHz, {down_db:.1} dB): {}", verdict(down_ok)));
    checks.push(Check { name: "after failover: audio PSTN -> phone (2 kHz)".into(), pass: down_ok });
    drop(bridge_b);

    if let Some(ta) = &ta {
        out("  timeline, host A:".to_owned());
        for l in ta.to_string().lines() {
            out(format!("    {l}"));
        }
    }
    out("  timeline, host B:".to_owned());
    for l in tb.to_string().lines() {
        out(format!("    {l}"));
    }
    let (start, from) = match &ta {
        Some(ta) => (ta.phases().first().map(|p| p.start), "the first failed check"),
        None => (Some(fault_at), "the crash"),
    };
    let end = tb.phases().last().map(|p| p.start + p.duration);
    if let (Some(s), Some(e)) = (start, end) {
        let total = e.saturating_duration_since(s);
        out(format!(
            "  total: {:.1} ms from {from} to the first audio frame on host B",
            total.total_micros() as f64 / 1000.0
        ));
    }
    host_b.stop(StdDuration::from_secs(5));
    host_a.stop(StdDuration::from_secs(5));
    for d in [drv_a, drv_b] {
        if let Ok(d) = Arc::try_unwrap(d) {
            d.close();
        }
    }
    server.shutdown();
    out("== both hosts stopped (watchdogs disarmed first: no jump)".to_owned());
    Ok(checks)
}

/// A PBX bridge on one driver: FXS 1 <-> FXO 1, chunk by chunk every tick, on its own thread
/// until dropped.
struct Bridge {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Bridge {
    fn start(drv: Arc<Driver>, id: DeviceId) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            let (mut a, mut b) = ([0u8; 8], [0u8; 8]);
            while !s.load(Ordering::SeqCst) && drv.wait_tick(id, StdDuration::from_secs(1)).is_ok() {
                if drv.read_chunk(FXS1, &mut a).is_ok() && drv.read_chunk(FXO1, &mut b).is_ok() {
                    let _ = drv.write_chunk(FXO1, &a);
                    let _ = drv.write_chunk(FXS1, &b);
                }
            }
        });
        Self { stop, thread: Some(thread) }
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The PRI part: an E1 span up, its Q.921 link established, an alarm and its end.
fn pri(opts: &Options, out: &mut dyn FnMut(String)) -> Result<Vec<Check>, String> {
    use xpp::emu::config::ModuleConfig;
    use xpp::span::Alarms;
    // The E1 port is unit 1; its D-channel is the span's 16th channel.
    const UNIT: u8 = 1;
    let cfg = DeviceConfig::default().with_start_stage(Stage::Running).with_slots([
        Some(ModuleConfig::FXS),
        Some(ModuleConfig::PRI_E1),
        None,
        None,
    ]);
    // Real time: the D-channel's bytes go out in every tick, as on hardware.
    let (emu, _runner) = Emulator::real_time(cfg);
    let far = |f: &mut dyn FnMut(&mut xpp::emu::data::PriFarEnd, Instant)| {
        emu.with_device(|d| {
            let now = d.now();
            if let Some(p) = d.data_mut().pri_far_end_mut(UNIT, 0) {
                f(p, now);
            }
        });
    };
    far(&mut |p, _| p.set_q921(true));
    out("== PRI: an E1 port (far end answering Q.921), real time".to_owned());
    let dir = opts.firmware.as_ref().map_err(Clone::clone)?;
    let fw = read_firmware_dir(dir).map_err(|e| format!("firmware folder {}: {e}", dir.display()))?;
    let drv = Driver::new(SystemClock::new(), DriverOptions::default());
    let events = drv.events();
    let start = std::time::Instant::now();
    let ms = |t: std::time::Instant| t.duration_since(start).as_secs_f64() * 1e3;
    let e2 = emu.clone();
    let id = drv
        .open(move || e2.transport(0), BringUpConfig::default(), fw, RunOptions::default())
        .map_err(|e| e.to_string())?;
    let span = drv.spans().into_iter().find(|s| s.is_digital).ok_or("no E1 span")?;
    let dchan = span.basechan + 15;
    out(format!(
        "  span {}: {} ({:?}), channels {}-{}, D-channel {dchan}, {:?}, timing priority {}",
        span.spanno,
        span.name,
        span.spantype,
        span.basechan,
        span.basechan + span.channels - 1,
        span.line_setup.ok_or("no line setup")?,
        span.timing_priority
    ));
    let mut checks = Vec::new();
    let mut check = |name: &str, pass: bool, out: &mut dyn FnMut(String)| {
        out(format!("  {name}: {}", verdict(pass)));
        checks.push(Check { name: name.to_owned(), pass });
    };
    // Layer 1 up: the line-timed span takes the timing over.
    let end = std::time::Instant::now() + StdDuration::from_secs(5);
    while drv.sync_master() != Some(id) && std::time::Instant::now() < end {
        std::thread::sleep(StdDuration::from_millis(10));
    }
    let up = drv.alarms(span.spanno).is_ok_and(|a| a.is_empty()) && drv.sync_master() == Some(id);
    out(format!("  {:7.1} ms  layer 1 up, the E1 is the timing master", ms(std::time::Instant::now())));
    check("E1 layer 1 up and timing master", up, out);
    // Q.921: SABME until UA (T200's retransmission).
    let mut buf = [0u8; 260];
    let mut ua = false;
    for _ in 0..10 {
        drv.write_frame(dchan, &[0x02, 0x01, 0x7F, 0, 0]).map_err(|e| e.to_string())?;
        if let Ok(5) = drv.read_frame_blocking(dchan, &mut buf, StdDuration::from_millis(300))
            && buf[2] == 0x73
        {
            ua = true;
            break;
        }
    }
    let established = emu.with_device(|d| {
        d.data_mut().pri_far_end_mut(UNIT, 0).and_then(|p| p.q921()).is_some_and(|q| q.established())
    });
    out(format!("  {:7.1} ms  SABME -> UA: Q.921 multiple-frame-established", ms(std::time::Instant::now())));
    check("D-channel Q.921 link established", ua && established, out);
    // An I-frame (N(S) 0, P) and its acknowledgement (RR, N(R) 1), sent again as T200 would
    // while no acknowledgement came (a tick's PCM late on a loaded machine garbles a frame).
    let mut rr = false;
    for _ in 0..10 {
        drv.write_frame(dchan, &[0x02, 0x01, 0x00, 0x01, 0x08, 0x01, 0x00, 0x05, 0, 0])
            .map_err(|e| e.to_string())?;
        if drv
            .read_frame_blocking(dchan, &mut buf, StdDuration::from_millis(300))
            .is_ok_and(|n| buf[2..n - 2] == [0x01, 0x03])
        {
            rr = true;
            break;
        }
    }
    out(format!("  {:7.1} ms  I-frame sent, RR N(R)=1 back", ms(std::time::Instant::now())));
    check("I-frame acknowledged", rr, out);
    // The far end is unplugged, then plugged back.
    far(&mut |p, now| p.set_connected(now, false));
    let red = wait_alarm(&events, span.spanno, |a| a == Alarms::RED);
    out(format!("  {:7.1} ms  far end unplugged: span alarm RED", ms(std::time::Instant::now())));
    check("LOS is a RED alarm", red, out);
    far(&mut |p, now| p.set_connected(now, true));
    let clear = wait_alarm(&events, span.spanno, Alarms::is_empty);
    out(format!("  {:7.1} ms  plugged back: NOALARM", ms(std::time::Instant::now())));
    check("the alarm clears", clear, out);
    drv.close();
    Ok(checks)
}

/// Waits (up to 3 s) for span `spanno`'s alarm word to satisfy `want`.
fn wait_alarm(
    events: &xpp::driver::channel::Receiver<DriverEvent>,
    spanno: u32,
    want: impl Fn(xpp::span::Alarms) -> bool,
) -> bool {
    let end = std::time::Instant::now() + StdDuration::from_secs(3);
    loop {
        let left = end.saturating_duration_since(std::time::Instant::now());
        match events.recv_timeout(left) {
            Ok(DriverEvent::SpanAlarms { spanno: s, alarms, .. }) if s == spanno && want(alarms) => {
                return true;
            }
            Ok(_) => {}
            Err(_) => return false,
        }
    }
}

const fn verdict(pass: bool) -> &'static str {
    if pass { "PASS" } else { "FAIL" }
}

fn main() -> ExitCode {
    common::init();
    let args = Args::parse();
    let stage = Stage::from(args.stage);
    let opts = Options { crash: args.crash, pri: args.pri, ..Options::new(stage, args.virtual_clock) };
    match run(&opts, &mut |line| println!("{line}")) {
        Ok(checks) if !checks.is_empty() && checks.iter().all(|c| c.pass) => {
            println!("demo: all {} checks passed", checks.len());
            ExitCode::SUCCESS
        }
        Ok(checks) => {
            println!("demo: {} of {} checks failed", checks.iter().filter(|c| !c.pass).count(), checks.len());
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("demo: {e}");
            ExitCode::FAILURE
        }
    }
}
