//! DAHDI event sequences, with their timings, end to end through `XbusCore` on the emulated
//! Astribank (virtual clock): FXS pulse dialing and the on-hook length rules (pulse / flash /
//! hang-up), FXO polarity reversal, battery loss and return, ring cadence and answer, far-end
//! disconnect. Complements `xbus_emu.rs` (FXS off-hook/hang-up/flash, FXS ring, FXO ring).
//!
//! Timings come from the reference (`docs/reference/dahdi-span-model.md` §5-§6, `hook::fixed`), the FXO line
//! model (`xpp_chan::fxo`: VBAT poll 500 ms, 4 low polls = battery off, ring debounce 50 ms,
//! polarity follow-up 40 ms, power denial 80 + 2500 ms) and the emulated equipment's defaults
//! (`EquipmentTimings`: pulses 60 ms break / 40 ms make, 700 ms between digits). Equipment edges
//! reach the chip within 1 ms and replies the core within a tick, hence the few ms of slack.

mod common;

use common::{FXS_FXO, Rig};
use xpp_emu::data::{CallState, DataConfig};
use xpp_proto::Duration;
use xpp_span::hook::{HookMode, fixed};
use xpp_span::xbus::Numbering;
use xpp_span::{Alarms, Event, HookCmd};

/// FXS on unit 0 (channels 1..14), FXO on unit 1 (15..22).
const FXS1: u32 = 1;
const FXO1: u32 = 15;

/// Asserts `got` is `want` event for event, each at `want`'s ms (after the start) plus at
/// most `slack` ms.
#[track_caller]
fn assert_seq(got: &[(u64, Event)], want: &[(u64, Event)], slack: u64) {
    let events = |v: &[(u64, Event)]| v.iter().map(|e| e.1).collect::<Vec<_>>();
    assert_eq!(events(got), events(want), "got {got:?}");
    for (g, w) in got.iter().zip(want) {
        assert!(
            (w.0..=w.0 + slack).contains(&g.0),
            "{:?} at {} ms, want {}..={}: {got:?}",
            g.1,
            g.0,
            w.0,
            w.0 + slack
        );
    }
}

/// A rig with the FXS phone on port 0 off hook (RINGOFFHOOK seen and cleared).
fn fxs_off_hook() -> Rig {
    let mut rig = Rig::new(FXS_FXO);
    rig.dev.phone_mut(0, 0).unwrap().off_hook(rig.now);
    rig.run_ms(50);
    assert_eq!(rig.chan_events(FXS1, rig.now - Duration::from_millis(50)).len(), 1);
    rig.events.clear();
    rig
}

/// A rig whose FXO VBAT polls have seen the battery.
fn fxo_ready(data: DataConfig) -> Rig {
    let mut rig = Rig::with(FXS_FXO, data, 0, &mut Numbering::new());
    rig.run_ms(1200);
    assert_eq!(rig.core.channel(FXO1).unwrap().fxo_line().unwrap().battery(), Some(true));
    rig.events.clear();
    rig
}

#[test]
fn fxs_pulse_dialing_reports_pulse_start_and_pulsedigit() {
    let mut rig = fxs_off_hook();
    let t0 = rig.now;
    // "3": breaks at 0/100/200 ms, makes at 60/160/260; 700 ms pause; "0": ten pulses from
    // 1000 ms, first make at 1060, last at 1960.
    rig.dev.phone_mut(0, 0).unwrap().dial_pulse(t0, "30");
    rig.run_ms(3000);
    let ev = rig.chan_events(FXS1, t0);
    // PULSE_START at the first pulse of each digit (its make edge ends a 15..=200 ms on-hook);
    // PULSEDIGIT|digit 250 ms after the digit's last pulse; 10 pulses = '0'. No ONHOOK,
    // WINKFLASH or RINGOFFHOOK in between.
    let d = fixed::PULSE_DIGIT_TIMEOUT_MS;
    assert_seq(
        &ev,
        &[
            (60, Event::PULSE_START),
            (260 + d, Event::pulse_digit(b'3')),
            (1060, Event::PULSE_START),
            (1960 + d, Event::pulse_digit(b'0')),
        ],
        2,
    );
    // The numeric encoding the PBX reads: DAHDI_EVENT_PULSEDIGIT (1 << 16) | ASCII digit.
    assert_eq!(ev[1].1.raw(), (1 << 16) | i32::from(b'3'));
    assert_eq!(ev[3].1.raw(), 0x1_0030);
    assert_eq!((ev[0].1.raw(), ev[3].1.as_pulse_digit()), (14, Some(b'0')));
    assert!(rig.dev.phone(0, 0).unwrap().is_off_hook());
}

#[test]
fn fxs_on_hook_length_decides_ignored_pulse_flash_or_hang_up() {
    let mut rig = fxs_off_hook();
    let digit = fixed::PULSE_DIGIT_TIMEOUT_MS;
    // (on-hook ms, expected events at ms after the on-hook edge). Boundaries (§5): < 15 ms
    // ignored, 15..=200 ms a dial pulse, > 200 ms a hook flash, on-hook for rxflashtime
    // (1250 ms) a hang-up; a later off-hook is then a new RINGOFFHOOK.
    let cases: [(u32, &[(u64, Event)]); 7] = [
        (8, &[]),
        (20, &[(20, Event::PULSE_START), (20 + digit, Event::pulse_digit(b'1'))]),
        (190, &[(190, Event::PULSE_START), (190 + digit, Event::pulse_digit(b'1'))]),
        (215, &[(215, Event::WINKFLASH)]),
        (600, &[(600, Event::WINKFLASH)]),
        (1200, &[(1200, Event::WINKFLASH)]),
        (1300, &[(1250, Event::ONHOOK), (1300, Event::RINGOFFHOOK)]),
    ];
    for (on_hook, want) in cases {
        let t0 = rig.now;
        rig.dev.phone_mut(0, 0).unwrap().flash_for(t0, on_hook);
        rig.run_ms(2000);
        let ev = rig.chan_events(FXS1, t0);
        assert!(ev.len() == want.len(), "on-hook {on_hook} ms: {ev:?}");
        assert_seq(&ev, want, 2);
    }
}

#[test]
fn fxo_polarity_reversal_reports_polarity() {
    let mut rig = fxo_ready(DataConfig::default());
    // One reversal: the firmware's interrupt-source reply, reported after the 40 ms follow-up
    // window; again on the way back.
    for _ in 0..2 {
        let t0 = rig.now;
        rig.dev.pstn_mut(1, 0).unwrap().reverse_polarity(t0);
        rig.run_ms(500);
        assert_seq(&rig.chan_events(FXO1, t0), &[(40, Event::POLARITY)], 3);
    }
    // Two reversals 20 ms apart: the second replaces the first, one POLARITY 40 ms after it.
    let t0 = rig.now;
    rig.dev.pstn_mut(1, 0).unwrap().reverse_polarity(t0);
    rig.run_ms(20);
    rig.dev.pstn_mut(1, 0).unwrap().reverse_polarity(rig.now);
    rig.run_ms(500);
    assert_seq(&rig.chan_events(FXO1, t0), &[(60, Event::POLARITY)], 3);
    assert_eq!(rig.core.channel(FXO1).unwrap().chan().alarms(), Alarms::EMPTY);
}

#[test]
fn fxo_battery_loss_and_return_raise_and_clear_the_channel_alarm() {
    let mut rig = fxo_ready(DataConfig::default());
    // On hook (fxsks, tx on-hook): battery loss is only the channel's RED alarm (§7), no
    // ONHOOK (§5: fxsks acts on rx ONHOOK only while tx is off-hook). Four low VBAT polls
    // 500 ms apart: reported 1500..2000 ms after the drop.
    let t0 = rig.now;
    rig.dev.pstn_mut(1, 0).unwrap().set_battery(t0, false);
    rig.run_ms(2500);
    let ev = rig.chan_events(FXO1, t0);
    assert_eq!(ev.iter().map(|e| e.1).collect::<Vec<_>>(), [Event::ALARM], "{ev:?}");
    assert!((1500..=2003).contains(&ev[0].0), "{ev:?}");
    let ch = rig.core.channel(FXO1).unwrap();
    assert_eq!((ch.chan().alarms(), ch.fxo_line().unwrap().battery()), (Alarms::RED, Some(false)));
    assert_eq!(rig.core.channel(FXO1 + 1).unwrap().chan().alarms(), Alarms::EMPTY, "per channel");
    // Battery back: NOALARM at the next VBAT poll.
    let t1 = rig.now;
    rig.dev.pstn_mut(1, 0).unwrap().set_battery(t1, true);
    rig.run_ms(1000);
    let ev = rig.chan_events(FXO1, t1);
    assert_eq!(ev.iter().map(|e| e.1).collect::<Vec<_>>(), [Event::NOALARM], "{ev:?}");
    assert!(ev[0].0 <= 503, "{ev:?}");
    assert_eq!(rig.core.channel(FXO1).unwrap().chan().alarms(), Alarms::EMPTY);

    // Off hook (answered call): battery loss is the far end gone, ONHOOK then ALARM, in the
    // same ms.
    rig.dev.pstn_mut(1, 0).unwrap().ring(rig.now);
    rig.run_ms(100);
    let _ = rig.core.set_hook(rig.now, FXO1, HookCmd::OffHook, HookMode::Blocking).unwrap();
    rig.run_ms(1000);
    assert_eq!(rig.dev.pstn(1, 0).unwrap().state(), CallState::Connected);
    let t2 = rig.now;
    rig.dev.pstn_mut(1, 0).unwrap().set_battery(t2, false);
    rig.run_ms(2500);
    let ev = rig.chan_events(FXO1, t2);
    assert_eq!(ev.iter().map(|e| e.1).collect::<Vec<_>>(), [Event::ONHOOK, Event::ALARM], "{ev:?}");
    assert!((1500..=2003).contains(&ev[0].0) && ev[1].0 == ev[0].0, "{ev:?}");
}

#[test]
fn fxo_ring_cadence_gives_ringbegin_and_ringoffhook_per_burst_then_answer() {
    let mut rig = fxo_ready(DataConfig::default());
    // 1000 ms on / 500 ms off, three bursts. Each burst: RINGBEGIN after the 50 ms ring
    // debounce; RINGOFFHOOK ("ring received") 50 ms debounce + 50 ms trailer after it ends.
    let t0 = rig.now;
    rig.dev.pstn_mut(1, 0).unwrap().ring_with(t0, 1000, 500, Some(3));
    rig.run_ms(6000);
    let mut want = Vec::new();
    for k in 0..3 {
        want.push((k * 1500 + 50, Event::RINGBEGIN));
        want.push((k * 1500 + 1000 + 50 + fixed::RING_TRAILER_MS, Event::RINGOFFHOOK));
    }
    assert_seq(&rig.chan_events(FXO1, t0), &want, 3);
    assert_eq!(rig.dev.pstn(1, 0).unwrap().state(), CallState::Idle);

    // A new call, answered in its first burst: the ring stops at the answer (then the
    // trailer), the line is connected, nothing more is reported.
    let t1 = rig.now;
    rig.dev.pstn_mut(1, 0).unwrap().ring(t1);
    rig.run_ms(500);
    let _ = rig.core.set_hook(rig.now, FXO1, HookCmd::OffHook, HookMode::Blocking).unwrap();
    rig.run_ms(7000);
    // Answer at 500 ms: the burst ends there, + 50 ms ring debounce + 50 ms trailer.
    let answer = 500 + 50 + fixed::RING_TRAILER_MS;
    assert_seq(&rig.chan_events(FXO1, t1), &[(50, Event::RINGBEGIN), (answer, Event::RINGOFFHOOK)], 3);
    assert_eq!(rig.dev.pstn(1, 0).unwrap().state(), CallState::Connected);
    assert!(rig.core.channel(FXO1).unwrap().fxo_line().unwrap().wants_pcm());
}

#[test]
fn fxo_far_end_disconnect_with_the_emulator_defaults_is_onhook() {
    // No unsolicited loop-current reports (MODEL FXO-5): the line's 500 ms loop-current poll
    // sees the far end's disconnect supervision (battery off 800 ms).
    let mut rig = fxo_ready(DataConfig::default());
    rig.dev.pstn_mut(1, 0).unwrap().ring(rig.now);
    rig.run_ms(100);
    let _ = rig.core.set_hook(rig.now, FXO1, HookCmd::OffHook, HookMode::Blocking).unwrap();
    rig.run_ms(1000);
    assert_eq!(rig.dev.pstn(1, 0).unwrap().state(), CallState::Connected);
    let t0 = rig.now;
    rig.dev.pstn_mut(1, 0).unwrap().hang_up(t0);
    rig.run_ms(5000);
    // Loss seen at the next poll (<= 500 ms + pacing), re-read 40 ms later, then 80 ms
    // minimum and 2500 ms without ring: ONHOOK.
    assert_seq(&rig.chan_events(FXO1, t0), &[(80 + 2500, Event::ONHOOK)], 520);
    assert_eq!(rig.core.channel(FXO1).unwrap().chan().alarms(), Alarms::EMPTY);
}

#[test]
fn fxo_far_end_disconnect_is_onhook_after_power_denial() {
    // The emulator reports FXO loop current every 10 ms (off by default) so the far end's
    // disconnect supervision (battery off 800 ms) shows as loss of loop current.
    let mut data = DataConfig::default();
    data.fxo_loop_current_report_ms = Some(10);
    let mut rig = fxo_ready(data);
    rig.dev.pstn_mut(1, 0).unwrap().ring(rig.now);
    rig.run_ms(100);
    let _ = rig.core.set_hook(rig.now, FXO1, HookCmd::OffHook, HookMode::Blocking).unwrap();
    rig.run_ms(1000);
    assert_eq!(rig.dev.pstn(1, 0).unwrap().state(), CallState::Connected);
    let t0 = rig.now;
    rig.dev.pstn_mut(1, 0).unwrap().hang_up(t0);
    rig.run_ms(5000);
    // Loss seen at the next report (<= 10 ms), held 80 ms, confirmed 2500 ms without ring:
    // power denial, rx ONHOOK while tx off-hook => ONHOOK (§5). The short battery drop is no
    // alarm (fewer than four low VBAT polls).
    assert_seq(&rig.chan_events(FXO1, t0), &[(80 + 2500, Event::ONHOOK)], 13);
    assert_eq!(rig.core.channel(FXO1).unwrap().chan().alarms(), Alarms::EMPTY);
}
