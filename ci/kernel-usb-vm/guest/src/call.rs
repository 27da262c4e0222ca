//! The data-interface checks on the running device (FXS unit 0 + FXO unit 1, on the paced
//! real-time emulator): the raw IN rate a backend achieves, and a whole call through the
//! driver (`xpp_driver::Driver`) over that backend.
//!
//! # Why the device is paced
//!
//! Under TCG the guest cannot always take 1000 IN transfers/s while it also emulates the
//! kernel: a plain real-time device then overflows its `0x86` FIFO and the call loses audio
//! and events by luck of the load. The device here is an `Emulator::paced` one (MODEL.md
//! TIME-21, a test aid): it runs in real time while the host keeps up and holds its clock
//! while more than [`PACE_BACKLOG`] transfers wait undelivered, so the checks test the
//! backend and the driver, not the CI machine's load. The detail lines report how much it
//! held back (`held`), so a slow run stays visible.

use std::path::Path;
use std::time::{Duration, Instant};

use xpp_bringup::{BringUpConfig, RunOptions, read_firmware_dir};
use xpp_driver::{DeviceId, Driver, DriverEvent, DriverOptions, Pacing, Receiver};
use xpp_emu::Emulator;
use xpp_emu::data::g711::{Source, has_tone, level_db};
use xpp_emu::data::{CallState, Phone, PstnLine};
use xpp_proto::Instant as DevInstant;
use xpp_span::hook::HookMode;
use xpp_span::span::ChanKind;
use xpp_span::{Event, HookCmd};
use xpp_usb::SystemClock;
use xpp_usb::{Transport, ep};

use crate::backend::{Backend, Found};

/// Undelivered `0x86` transfers above which the paced device holds its clock.
// Decision: 16 — 16 ms of rounds (more than the driver's 10 queued reads ever leave
// behind while it keeps up, so a host that keeps up never meets the bound and sees a
// real-time device), and far below the FIFO depth (64), so replies queued behind a
// held-back backlog still fit and the FIFO never overflows.
pub(crate) const PACE_BACKLOG: usize = 16;

/// IN transfers kept queued for the rate measurement (the driver's default).
const RATE_QUEUED: usize = 10;
/// How long the rate is measured.
const RATE_FOR: Duration = Duration::from_secs(2);
/// SYNC_SOURCE to XPD 0/0, mode AB (start ticking) and NONE (stop).
const SYNC_AB: [u8; 6] = [0x06, 0x00, 0x19, 0x00, 0x01, 0x00];
const SYNC_NONE: [u8; 6] = [0x06, 0x00, 0x19, 0x00, 0x00, 0x00];
/// One transfer's timeout.
const XFER: Duration = Duration::from_secs(5);

/// The phone's channel (FXS unit 0, port 0) and the line's (FXO unit 1, port 0).
const FXS1: u32 = 1;
const FXO1: u32 = 15;
/// Ticks each tone plays before it is checked (its last 2000 samples: 250 ms, after 50 ms
/// for the bridge to fill).
const TONE_TICKS: u64 = 300;
/// One `wait_tick`'s timeout (the lockstep loop moves on after 1 s without the PBX anyway).
const TICK_WAIT: Duration = Duration::from_secs(5);
/// The whole call, off-hook to both sides idle, in wall time.
// Decision: 90 s — the call is about 1000 ticks (plus the 1.25 s wall-clock flash window of
// the hang-up); the slowest backend measured (rusb, synchronous) took about 40 s for 1900
// ticks in a loaded guest; the check's own hang guard (120 s) stays above it.
const CALL_LIMIT: Duration = Duration::from_secs(90);

type Check = Result<String, String>;

fn ensure(cond: bool, msg: impl FnOnce() -> String) -> Result<(), String> {
    if cond { Ok(()) } else { Err(msg()) }
}

/// What the emulated device counted: (ticks, missed rounds, extra rounds, IN overflow).
fn device_counts(emu: &Emulator) -> (u64, u64, u64, u64) {
    emu.with_device(|d| {
        let s = d.data().stats();
        (s.ticks, s.missed_rounds, s.extra_rounds, d.counters().in_overflow)
    })
}

/// How much more the paced clock has held back since it had held `lag0`.
fn held_since(emu: &Emulator, lag0: xpp_proto::Duration) -> xpp_proto::Duration {
    xpp_proto::Duration::from_micros(emu.pace_lag().total_micros().saturating_sub(lag0.total_micros()))
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn dev_ms(d: xpp_proto::Duration) -> String {
    format!("{} ms", d.total_millis())
}

/// Reads `0x86` (10 queued) until nothing came for 200 ms (at most 5 s), so a stopped
/// device leaves no backlog that would hold its paced clock; how many were read.
fn drain(t: &mut dyn Transport) -> Result<usize, String> {
    while t.pending(ep::DATA_IN) < RATE_QUEUED {
        t.submit(ep::DATA_IN, vec![0; 512]).map_err(|e| format!("drain: queue IN: {e}"))?;
    }
    let end = Instant::now() + Duration::from_secs(5);
    let mut n = 0;
    while Instant::now() < end {
        let Some(c) = t.wait_next_complete(ep::DATA_IN, Duration::from_millis(200)) else { break };
        c.status.map_err(|e| format!("drain: IN: {e}"))?;
        n += 1;
        let mut b = c.buffer;
        b.resize(512, 0);
        t.submit(ep::DATA_IN, b).map_err(|e| format!("drain: requeue IN: {e}"))?;
    }
    t.cancel_all(ep::DATA_IN);
    while t.wait_next_complete(ep::DATA_IN, XFER).is_some() {}
    Ok(n)
}

/// `<backend>.in-rate`: IN transfers per second on `0x86` of the ticking device with
/// [`RATE_QUEUED`] queued, over [`RATE_FOR`]; PASS if at least `floor`/s and nothing was
/// lost.
pub(crate) fn in_rate(backend: &dyn Backend, f: &Found, emu: &Emulator, floor: u32) -> Check {
    let mut t = backend.open(f)?;
    let c = t.transfer_blocking(ep::DATA_OUT, SYNC_AB.to_vec(), XFER);
    ensure(c.status.is_ok(), || format!("SYNC_SOURCE AB: {c:?}"))?;
    for _ in 0..RATE_QUEUED {
        t.submit(ep::DATA_IN, vec![0; 512]).map_err(|e| format!("queue IN: {e}"))?;
    }
    let (ticks0, _, _, over0) = device_counts(emu);
    let (lag0, dev0) = (emu.pace_lag(), emu.now());
    let start = Instant::now();
    let (mut n, mut bytes, mut last, mut max_gap) = (0u64, 0u64, start, Duration::ZERO);
    while start.elapsed() < RATE_FOR {
        let Some(c) = t.wait_next_complete(ep::DATA_IN, Duration::from_millis(500)) else { continue };
        c.status.map_err(|e| format!("IN after {n}: {e}"))?;
        let now = Instant::now();
        max_gap = max_gap.max(now - last);
        last = now;
        n += 1;
        bytes += c.actual_len as u64;
        let mut b = c.buffer;
        b.resize(512, 0);
        t.submit(ep::DATA_IN, b).map_err(|e| format!("requeue IN: {e}"))?;
    }
    let elapsed = start.elapsed();
    let (ticks1, _, _, over1) = device_counts(emu);
    let (held, dev) = (held_since(emu, lag0), emu.now().saturating_duration_since(dev0));
    let c = t.transfer_blocking(ep::DATA_OUT, SYNC_NONE.to_vec(), XFER);
    ensure(c.status.is_ok(), || format!("SYNC_SOURCE NONE: {c:?}"))?;
    let drained = drain(t.as_mut())?;
    let rate = n as f64 / elapsed.as_secs_f64();
    let detail = format!(
        "{rate:.0} IN/s on 0x86 ({n} transfers, {bytes} bytes in {}, {RATE_QUEUED} queued, longest gap {}); \
         device: {} ticks in {} device time, held {} (paced, bound {PACE_BACKLOG}), overflow {}; \
         {drained} drained after SYNC_SOURCE NONE; floor {floor}/s",
        ms(elapsed),
        ms(max_gap),
        ticks1 - ticks0,
        dev_ms(dev),
        dev_ms(held),
        over1 - over0,
    );
    ensure(over1 == over0, || format!("IN transfers lost in the device FIFO: {detail}"))?;
    ensure(rate >= f64::from(floor), || format!("below the floor: {detail}"))?;
    Ok(detail)
}

fn phone<R>(emu: &Emulator, f: impl FnOnce(&mut Phone, DevInstant) -> R) -> Result<R, String> {
    emu.with_device(|d| {
        let now = d.now();
        d.data_mut().phone_mut(0, 0).map(|p| f(p, now))
    })
    .ok_or_else(|| "no phone on FXS unit 0 port 0".to_owned())
}

fn pstn<R>(emu: &Emulator, f: impl FnOnce(&mut PstnLine, DevInstant) -> R) -> Result<R, String> {
    emu.with_device(|d| {
        let now = d.now();
        d.data_mut().pstn_mut(1, 0).map(|l| f(l, now))
    })
    .ok_or_else(|| "no PSTN line on FXO unit 1 port 0".to_owned())
}

/// Receives driver events until `pred` matches one (at most `within`).
fn until(rx: &Receiver<DriverEvent>, within: Duration, pred: impl Fn(&DriverEvent) -> bool) -> bool {
    let end = Instant::now() + within;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(e) if pred(&e) => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
}

/// Where the call is (the people's script and the PBX's state in one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    /// Ticks before the phone goes off-hook.
    Start,
    /// Phone off-hook; waiting for RINGOFFHOOK at the PBX.
    OffHook,
    /// FXO seized and bridged; waiting for the far party to answer.
    Seized,
    /// Connected; a few ticks before the first tone.
    Connected,
    /// 1 kHz phone -> line.
    ToneUp,
    /// 2 kHz line -> phone.
    ToneDown,
    /// Both hung up; waiting for ONHOOK at the PBX.
    HungUp,
    /// FXO released; waiting for the line to go idle.
    Released,
    /// Over.
    Done,
}

/// The milestones of a call: (what, tick, wall time since the call started).
struct Timeline {
    start: Instant,
    t0: u64,
    marks: Vec<(String, u64, Duration)>,
    /// The tones heard, with their levels.
    tones: Vec<String>,
}

impl Timeline {
    fn mark(&mut self, what: impl Into<String>, tick: u64) {
        self.marks.push((what.into(), tick - self.t0, self.start.elapsed()));
    }

    fn tick_of(&self, what: &str) -> Option<u64> {
        self.marks.iter().find(|m| m.0 == what).map(|m| m.1)
    }

    fn render(&self) -> String {
        let marks: Vec<String> =
            self.marks.iter().map(|(w, t, d)| format!("{w} @{t} ({})", ms(*d))).collect();
        format!("{} [tones: {}]", marks.join(", "), self.tones.join(", "))
    }
}

/// `<backend>.driver-call`: the driver brings the running device up through `backend`,
/// then a PBX on the driver's API (lockstep: it sees every tick) runs a call FXS 1 <-> FXO 1
/// with a tone each way, both hang up, and the driver closes in order.
pub(crate) fn driver_call(backend: &dyn Backend, f: &Found, emu: &Emulator, firmware: &Path) -> Check {
    let fw = read_firmware_dir(firmware).map_err(|e| format!("firmware {}: {e}", firmware.display()))?;
    // Decision: lockstep — the PBX thread sees every tick, so the audio checks do not depend
    // on how the guest's scheduler treats one thread under TCG; the paced device waits for
    // the loop rather than losing rounds, so lockstep costs no lost data. The driver's time
    // is the wall clock (SystemClock), as in production: its timeouts are real-time ones.
    let drv = Driver::new(SystemClock::new(), DriverOptions::default().with_pacing(Pacing::Lockstep));
    let rx = drv.events();
    let (c0, lag0) = (device_counts(emu), emu.pace_lag());
    let up_start = Instant::now();
    let mut opens = 0;
    let id = drv
        .open(
            || {
                opens += 1;
                backend.open(f).ok()
            },
            BringUpConfig::default(),
            fw,
            RunOptions::default(),
        )
        .map_err(|e| format!("bring-up through {}: {e}", backend.name()))?;
    let bring_up = up_start.elapsed();
    let result = drv.bring_up_result(id).map_err(|e| e.to_string())?;
    let phases: xpp_proto::Duration =
        result.timeline.iter().fold(xpp_proto::Duration::ZERO, |a, t| a + t.duration);
    ensure(until(&rx, TICK_WAIT, |e| matches!(e, DriverEvent::DeviceReady { .. })), || {
        "no DeviceReady".into()
    })?;
    let kinds = (drv.channel(FXS1).map(|c| c.kind), drv.channel(FXO1).map(|c| c.kind));
    ensure(matches!(kinds, (Ok(ChanKind::FxsPort { port: 0 }), Ok(ChanKind::FxoPort { port: 0 }))), || {
        format!("channel {FXS1} / {FXO1} are not FXS / FXO port 0: {kinds:?}")
    })?;
    let chans = drv.channels().len();

    let (outcome, tl) = call(&drv, id, emu, &rx);
    let call_wall = tl.start.elapsed();
    let ticks = drv.tick_count(id).map_err(|e| e.to_string())?;
    let stats = drv.stats(id).map_err(|e| e.to_string())?;
    let closing = Instant::now();
    drv.close_device(id).map_err(|e| e.to_string())?;
    let closed = until(&rx, TICK_WAIT, |e| matches!(e, DriverEvent::DeviceClosed { .. }));
    let close_time = closing.elapsed();
    let running = drv.is_running(id).unwrap_or(true);
    drv.close();
    let (c1, held) = (device_counts(emu), held_since(emu, lag0));
    // The device stopped ticking at close (SYNC_SOURCE NONE): take what it still holds.
    let drained = backend.open(f).and_then(|mut t| drain(t.as_mut()));
    let detail = format!(
        "bring-up {} (phases {}, {} open(s), {chans} channels); call {} wall, {ticks} ticks: {}; close {}; \
         device: {} ticks, {} missed rounds, {} extra rounds, IN overflow {}, held {} (paced, bound {PACE_BACKLOG}); \
         driver: {} IN transfers, {} rx errors, {} tx dropped; leftover IN drained: {}",
        ms(bring_up),
        dev_ms(phases),
        opens,
        ms(call_wall),
        tl.render(),
        ms(close_time),
        c1.0 - c0.0,
        c1.1 - c0.1,
        c1.2 - c0.2,
        c1.3 - c0.3,
        dev_ms(held),
        stats.rx_transfers,
        stats.rx_errors,
        stats.tx_dropped,
        drained.as_ref().map_or_else(|e| e.clone(), usize::to_string),
    );
    outcome.map_err(|e| format!("{e}; {detail}"))?;
    ensure(closed, || format!("no DeviceClosed within {TICK_WAIT:?}; {detail}"))?;
    ensure(!running, || format!("run loop still running after close; {detail}"))?;
    ensure(c1.3 == c0.3, || format!("IN transfers lost in the device FIFO; {detail}"))?;
    ensure(stats.rx_errors == 0, || format!("decode errors; {detail}"))?;
    drained.map_err(|e| format!("{e}; {detail}"))?;
    Ok(detail)
}

/// The PBX and the people, one iteration per tick; the timeline either way.
fn call(
    drv: &Driver,
    id: DeviceId,
    emu: &Emulator,
    rx: &Receiver<DriverEvent>,
) -> (Result<(), String>, Timeline) {
    let t0 = drv.tick_count(id).unwrap_or(0);
    let mut tl = Timeline { start: Instant::now(), t0, marks: Vec::new(), tones: Vec::new() };
    let r = run_call(drv, id, emu, rx, &mut tl);
    (r, tl)
}

fn run_call(
    drv: &Driver,
    id: DeviceId,
    emu: &Emulator,
    rx: &Receiver<DriverEvent>,
    tl: &mut Timeline,
) -> Result<(), String> {
    let mut step = Step::Start;
    let mut since = tl.t0;
    let mut line = CallState::Idle;
    let (mut a, mut b) = ([0u8; 8], [0u8; 8]);
    while step != Step::Done {
        let tick = drv.wait_tick(id, TICK_WAIT).map_err(|e| format!("at {step:?}: wait_tick: {e}"))?;
        ensure(tl.start.elapsed() < CALL_LIMIT, || {
            format!("call not over after {CALL_LIMIT:?}: stuck at {step:?}")
        })?;
        let elapsed = tick.saturating_sub(since);
        // The PBX: events, then the bridge.
        while let Ok(e) = rx.try_recv() {
            let DriverEvent::Chan { channo, event, .. } = e else { continue };
            match (channo, event, step) {
                (FXS1, Event::RINGOFFHOOK, Step::OffHook) => {
                    tl.mark("RINGOFFHOOK", tick);
                    let _outcome = drv
                        .set_hook(FXO1, HookCmd::OffHook, HookMode::Blocking)
                        .map_err(|e| format!("set_hook FXO off-hook: {e}"))?;
                    tl.mark("FXO seized", tick);
                    (step, since) = (Step::Seized, tick);
                }
                (FXS1, Event::ONHOOK, Step::HungUp) => {
                    tl.mark("ONHOOK", tick);
                    let _outcome = drv
                        .set_hook(FXO1, HookCmd::OnHook, HookMode::Blocking)
                        .map_err(|e| format!("set_hook FXO on-hook: {e}"))?;
                    (step, since) = (Step::Released, tick);
                }
                _ => {}
            }
        }
        if (Step::Seized..Step::HungUp).contains(&step) {
            drv.read_chunk(FXS1, &mut a).map_err(|e| format!("read_chunk FXS: {e}"))?;
            drv.read_chunk(FXO1, &mut b).map_err(|e| format!("read_chunk FXO: {e}"))?;
            drv.write_chunk(FXO1, &a).map_err(|e| format!("write_chunk FXO: {e}"))?;
            drv.write_chunk(FXS1, &b).map_err(|e| format!("write_chunk FXS: {e}"))?;
        }
        // The people.
        let st = pstn(emu, |l, _| l.state())?;
        if st != line {
            line = st;
            if st == CallState::DialTone && step < Step::HungUp {
                pstn(emu, |l, t| l.answer(t))?;
            }
        }
        match step {
            Step::Start if elapsed >= 50 => {
                phone(emu, |p, t| p.off_hook(t))?;
                tl.mark("off-hook", tick);
                (step, since) = (Step::OffHook, tick);
            }
            Step::Seized if line == CallState::Connected => {
                tl.mark("connected", tick);
                (step, since) = (Step::Connected, tick);
            }
            Step::Connected if elapsed >= 50 => {
                phone(emu, |p, _| p.play(Source::tone_1k()))?;
                pstn(emu, |l, _| l.take_heard())?;
                (step, since) = (Step::ToneUp, tick);
            }
            Step::ToneUp if elapsed >= TONE_TICKS => {
                let heard = pstn(emu, |l, _| l.take_heard())?;
                let tail = &heard[heard.len().saturating_sub(2000)..];
                ensure(tail.len() == 2000 && has_tone(tail, 1000.0), || {
                    format!(
                        "far party does not hear 1 kHz ({} samples, {:.1} dB)",
                        heard.len(),
                        level_db(tail)
                    )
                })?;
                tl.tones.push(format!("1 kHz phone->line {:.1} dB", level_db(tail)));
                tl.mark("1 kHz heard", tick);
                phone(emu, |p, _| {
                    p.play(Source::Silence);
                    p.take_heard()
                })?;
                pstn(emu, |l, _| l.play(Source::Tone { freq_hz: 2000, amplitude: 16000 }))?;
                (step, since) = (Step::ToneDown, tick);
            }
            Step::ToneDown if elapsed >= TONE_TICKS => {
                let heard = phone(emu, |p, _| p.take_heard())?;
                let tail = &heard[heard.len().saturating_sub(2000)..];
                ensure(tail.len() == 2000 && has_tone(tail, 2000.0), || {
                    format!("phone does not hear 2 kHz ({} samples, {:.1} dB)", heard.len(), level_db(tail))
                })?;
                tl.tones.push(format!("2 kHz line->phone {:.1} dB", level_db(tail)));
                tl.mark("2 kHz heard", tick);
                pstn(emu, |l, _| l.play(Source::Silence))?;
                // The phone hangs up; the PBX then releases the line (the far party stays
                // on, so the line goes idle when the FXO goes on-hook, without the far end's
                // disconnect supervision time).
                phone(emu, |p, t| p.on_hook(t))?;
                tl.mark("hang-up", tick);
                (step, since) = (Step::HungUp, tick);
            }
            Step::Released if line == CallState::Idle => {
                tl.mark("line idle", tick);
                step = Step::Done;
            }
            _ => {}
        }
    }
    let off = tl.tick_of("off-hook").unwrap_or(0);
    let seen = tl.tick_of("RINGOFFHOOK").unwrap_or(u64::MAX);
    ensure(seen.saturating_sub(off) <= 50, || {
        format!("RINGOFFHOOK {} ticks after the off-hook", seen - off)
    })?;
    Ok(())
}
