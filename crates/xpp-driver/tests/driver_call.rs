//! A call through the driver in lockstep on the emulator's auto-advancing virtual clock: a
//! tick-driven PBX thread bridges FXS 1 and FXO 1 chunk by chunk, tones pass both ways, with
//! exact event timings; and two devices in one driver.

use std::time::Duration as StdDuration;

use xpp_bringup::{BringUpConfig, RunOptions, bring_up};
use xpp_driver::{DeviceId, Driver, DriverEvent, DriverOptions, Pacing};
use xpp_emu::config::Stage;
use xpp_emu::data::g711::{Source, has_tone};
use xpp_emu::data::{CallState, Phone, PstnLine};
use xpp_emu::{ClockMode, DeviceConfig, Emulator};
use xpp_proto::Instant;
use xpp_span::hook::HookMode;
use xpp_span::{Event, HookCmd};

mod common;
use common::{firmware, open};

const FXS1: u32 = 1;
const FXO1: u32 = 15;
const T: StdDuration = StdDuration::from_secs(5);

fn emulator() -> Emulator {
    Emulator::with_mode(DeviceConfig::default().with_start_stage(Stage::Running), ClockMode::AutoAdvance)
}

fn phone<R>(emu: &Emulator, f: impl FnOnce(&mut Phone, Instant) -> R) -> R {
    emu.with_device(|d| {
        let now = d.now();
        f(d.data_mut().phone_mut(0, 0).unwrap(), now)
    })
}

fn pstn<R>(emu: &Emulator, f: impl FnOnce(&mut PstnLine, Instant) -> R) -> R {
    emu.with_device(|d| {
        let now = d.now();
        f(d.data_mut().pstn_mut(1, 0).unwrap(), now)
    })
}

/// Runs `ticks` ticks of the bridge (FXS 1 <-> FXO 1); the channel events seen, with the
/// tick they were seen at.
fn bridge(drv: &Driver, id: DeviceId, ticks: u32, events: &mut Vec<(u64, u32, Event)>) {
    let rx = drv.events();
    let (mut a, mut b) = ([0u8; 8], [0u8; 8]);
    for _ in 0..ticks {
        let tick = drv.wait_tick(id, T).unwrap();
        while let Ok(e) = rx.try_recv() {
            if let DriverEvent::Chan { channo, event, .. } = e {
                events.push((tick, channo, event));
            }
        }
        drv.read_chunk(FXS1, &mut a).unwrap();
        drv.read_chunk(FXO1, &mut b).unwrap();
        drv.write_chunk(FXO1, &a).unwrap();
        drv.write_chunk(FXS1, &b).unwrap();
    }
}

#[test]
fn lockstep_call_with_audio_both_ways() {
    let emu = emulator();
    let drv = Driver::new(emu.clone(), DriverOptions::default().with_pacing(Pacing::Lockstep));
    let id = open(&drv, &emu);
    let mut ev = Vec::new();
    bridge(&drv, id, 5, &mut ev);
    // Off-hook: RINGOFFHOOK within 3 ticks.
    let t0 = drv.tick_count(id).unwrap();
    phone(&emu, |p, now| p.off_hook(now));
    ev.clear();
    bridge(&drv, id, 20, &mut ev);
    let off = ev.iter().find(|e| (e.1, e.2) == (FXS1, Event::RINGOFFHOOK)).expect("RINGOFFHOOK");
    assert!(off.0 - t0 <= 3, "RINGOFFHOOK after {} ticks", off.0 - t0);
    // The PBX seizes the line; the far party answers.
    let _ = drv.set_hook(FXO1, HookCmd::OffHook, HookMode::Blocking).unwrap();
    bridge(&drv, id, 10, &mut ev);
    assert_eq!(pstn(&emu, |l, _| l.state()), CallState::DialTone);
    pstn(&emu, |l, now| l.answer(now));
    bridge(&drv, id, 10, &mut ev);
    assert_eq!(pstn(&emu, |l, _| l.state()), CallState::Connected);
    // Phone -> line.
    phone(&emu, |p, _| p.play(Source::tone_1k()));
    pstn(&emu, |l, _| l.take_heard());
    bridge(&drv, id, 300, &mut ev);
    let heard = pstn(&emu, |l, _| l.take_heard());
    assert!(heard.len() >= 2000 && has_tone(&heard[heard.len() - 2000..], 1000.0), "far party hears 1 kHz");
    // Line -> phone.
    phone(&emu, |p, _| {
        p.play(Source::Silence);
        p.take_heard();
    });
    pstn(&emu, |l, _| l.play(Source::Tone { freq_hz: 2000, amplitude: 16000 }));
    bridge(&drv, id, 300, &mut ev);
    let heard = phone(&emu, |p, _| p.take_heard());
    assert!(heard.len() >= 2000 && has_tone(&heard[heard.len() - 2000..], 2000.0), "phone hears 2 kHz");
    // Hang-up: ONHOOK after the 1250 ms flash window (lockstep: exactly, give or take 3 ticks).
    let t1 = drv.tick_count(id).unwrap();
    phone(&emu, |p, now| p.on_hook(now));
    ev.clear();
    bridge(&drv, id, 1400, &mut ev);
    let on = ev.iter().find(|e| (e.1, e.2) == (FXS1, Event::ONHOOK)).expect("ONHOOK");
    assert!((1250..=1254).contains(&(on.0 - t1)), "ONHOOK after {} ticks", on.0 - t1);
    let _ = drv.set_hook(FXO1, HookCmd::OnHook, HookMode::Blocking).unwrap();
    bridge(&drv, id, 400, &mut ev);
    assert_eq!(pstn(&emu, |l, _| l.state()), CallState::Idle);
    drv.close();
}

#[test]
fn two_devices_number_consecutively() {
    let (a, b) = (emulator(), emulator());
    // The driver's clock is device A's. Two emulators are two virtual clocks, so B is
    // brought up on its own (bring_up on B's clock, then attach); its loop then runs on B's
    // clock while its core reads A's time — fine for numbering and events, which is what
    // this checks. (Real devices share the wall clock and all go through Driver::open.)
    let drv = Driver::new(a.clone(), DriverOptions::default());
    let rx = drv.events();
    let ia = open(&drv, &a);
    let b2 = b.clone();
    let ready = bring_up(
        move || b2.transport(0),
        &b,
        BringUpConfig::default(),
        firmware(),
        RunOptions::default(),
        |_| {},
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let ib = drv.attach(ready).unwrap();
    assert_eq!((ia, ib), (DeviceId(0), DeviceId(1)));
    let spans: Vec<_> =
        drv.spans().iter().map(|s| (s.device, s.spanno, s.name.clone(), s.basechan)).collect();
    assert_eq!(
        spans,
        [
            (ia, 1, "XBUS-00/XPD-00".to_owned(), 1),
            (ia, 2, "XBUS-00/XPD-10".to_owned(), 15),
            (ib, 3, "XBUS-01/XPD-00".to_owned(), 23),
            (ib, 4, "XBUS-01/XPD-10".to_owned(), 37),
        ]
    );
    assert_eq!(drv.channels().len(), 44);
    // B's phone goes off-hook: the event names B and channel 23.
    b.with_device(|d| {
        let now = d.now();
        d.data_mut().phone_mut(0, 0).unwrap().off_hook(now);
    });
    let deadline = std::time::Instant::now() + T;
    let mut found = false;
    while !found && std::time::Instant::now() < deadline {
        if let Ok(DriverEvent::Chan { device, channo, event, .. }) = rx.recv_timeout(T) {
            found = (device, channo, event) == (ib, 23, Event::RINGOFFHOOK);
        }
    }
    assert!(found, "RINGOFFHOOK on channel 23 of device 1");
    drv.close();
}

#[test]
fn blocking_writes_are_paced_one_chunk_per_tick() {
    let emu = emulator();
    let drv = Driver::new(emu.clone(), DriverOptions::default().with_pacing(Pacing::Lockstep));
    let id = open(&drv, &emu);
    phone(&emu, |p, now| p.off_hook(now));
    for _ in 0..50 {
        drv.wait_tick(id, T).unwrap();
    }
    phone(&emu, |p, _| p.take_heard());
    // A 2 kHz tone in 16-bit linear, companded by the driver, one chunk per blocking write.
    let t0 = drv.tick_count(id).unwrap();
    let mut n = 0u32;
    for _ in 0..400 {
        let mut chunk = [0u8; 8];
        for s in &mut chunk {
            let x = (f64::from(n) * 2.0 * std::f64::consts::PI * 2000.0 / 8000.0).sin() * 8000.0;
            *s = xpp_span::g711::linear_to_ulaw(x as i16);
            n += 1;
        }
        drv.write_chunk_blocking(FXS1, &chunk, T).unwrap();
    }
    let ticks = drv.tick_count(id).unwrap() - t0;
    assert!((400..=401).contains(&ticks), "{ticks} ticks for 400 blocking writes");
    drv.wait_tick(id, T).unwrap();
    let heard = phone(&emu, |p, _| p.take_heard());
    assert!(heard.len() >= 3000 && has_tone(&heard[heard.len() - 3000..], 2000.0), "the phone hears 2 kHz");
    drv.close();
}
