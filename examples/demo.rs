//! `demo`: an emulated Astribank (FXS + FXO), the xpp driver, and a tiny PBX making a call.
//!
//! ```text
//! cargo run --example demo -- [--stage cold|running] [--virtual]
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

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use clap::Parser;
use xpp::bringup::{BringUpConfig, RunOptions, find_firmware_dir, read_firmware_dir};
use xpp::driver::{Clock, DeviceId, Driver, DriverEvent, DriverOptions, Pacing, SystemClock};
use xpp::emu::config::Stage;
use xpp::emu::data::g711::{Source, has_tone, level_db};
use xpp::emu::data::{CallState, Phone, PstnLine};
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
    /// Power-on stage of the emulated device: cold or running.
    #[arg(long, default_value = "cold")]
    stage: String,
    /// Run on the emulator's virtual clock (fast, deterministic) instead of real time.
    #[arg(long = "virtual")]
    virtual_clock: bool,
}

/// What the demo runs.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) stage: Stage,
    pub(crate) virtual_clock: bool,
    pub(crate) firmware: Result<PathBuf, String>,
}

impl Options {
    /// Cold start, real time, the default firmware folder.
    pub(crate) fn new(stage: Stage, virtual_clock: bool) -> Self {
        Self { stage, virtual_clock, firmware: default_firmware_dir() }
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

const fn verdict(pass: bool) -> &'static str {
    if pass { "PASS" } else { "FAIL" }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let stage = match args.stage.as_str() {
        "cold" => Stage::Cold,
        "running" => Stage::Running,
        other => {
            eprintln!("demo: unknown stage {other:?} (cold or running)");
            return ExitCode::from(2);
        }
    };
    let opts = Options::new(stage, args.virtual_clock);
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
