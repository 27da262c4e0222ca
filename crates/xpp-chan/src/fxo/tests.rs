//! FXO line tests: timings and register writes from docs/reference/xpp-protocol.md §9.2, written out by hand.

use xpp_proto::wire::RegCmd;

use super::*;
use crate::test_util::*;

const PORT: u8 = 5;

fn quiet() -> FxoConfig {
    FxoConfig { auto_leds: false, ..FxoConfig::default() }
}

fn sent(l: &mut FxoLine) -> Vec<RegCmd> {
    drain(|| l.poll_transmit(ms(0)))
}

fn events(l: &mut FxoLine) -> Vec<Event> {
    std::iter::from_fn(|| l.poll_event()).collect()
}

fn run_until(l: &mut FxoLine, from: u64, to: u64) {
    for t in from..=to {
        if l.poll_timeout().is_some_and(|d| d <= ms(t)) {
            l.handle_timeout(ms(t));
        }
    }
}

fn vbat(l: &mut FxoLine, t: u64, v: i8) {
    l.handle_packet(ms(t), &reply(PORT, 0x1D, v as u8));
}

/// A line that has seen battery (+48 V) at t = 0, queues drained.
fn with_battery(config: FxoConfig) -> FxoLine {
    let mut l = FxoLine::new(ms(0), addr(), PORT, config);
    l.handle_timeout(ms(0));
    vbat(&mut l, 0, 48);
    let _ = sent(&mut l);
    let _ = events(&mut l);
    l
}

#[test]
fn off_hook_refused_without_battery() {
    let mut l = FxoLine::new(ms(0), addr(), PORT, quiet());
    assert_eq!(l.off_hook(ms(0)), Err(Error::NoBattery));
    l.handle_timeout(ms(0));
    assert_eq!(sent(&mut l), vec![rd(PORT, 0x1D)], "first VBAT poll at start");
    vbat(&mut l, 2, 2); // below threshold: still no battery
    assert_eq!(l.off_hook(ms(3)), Err(Error::NoBattery));
    assert_eq!(sent(&mut l), vec![]);
    vbat(&mut l, 4, 3);
    assert_eq!(events(&mut l), vec![Event::Battery { present: true, at: ms(4) }]);
    l.off_hook(ms(5)).unwrap();
    assert_eq!(sent(&mut l), vec![wd(PORT, 0x05, 0x09)]);
    assert!(l.wants_pcm());
    l.on_hook(ms(6));
    assert_eq!(sent(&mut l), vec![wd(PORT, 0x05, 0x08)]);
    assert!(!l.wants_pcm());
}

#[test]
fn vbat_polled_every_500ms() {
    let mut l = FxoLine::new(ms(100), addr(), PORT, quiet());
    assert_eq!(l.poll_timeout(), Some(ms(100)));
    let mut reads = Vec::new();
    for t in 100..=1700 {
        if l.poll_timeout().is_some_and(|d| d <= ms(t)) {
            l.handle_timeout(ms(t));
        }
        for c in sent(&mut l) {
            assert_eq!(c, rd(PORT, 0x1D));
            reads.push(t);
        }
    }
    assert_eq!(reads, vec![100, 600, 1100, 1600]);
    // A poll still queued is not queued twice.
    run_until(&mut l, 1701, 3000);
    assert_eq!(l.queued_commands(), 1);
}

#[test]
fn battery_on_immediately_off_after_four_low_polls() {
    let mut l = FxoLine::new(ms(0), addr(), PORT, quiet());
    vbat(&mut l, 0, -48);
    assert_eq!(events(&mut l), vec![Event::Battery { present: true, at: ms(0) }]);
    assert_eq!(l.battery(), Some(true));
    // Three low polls, then a good one: still on.
    for (i, v) in [0i8, 2, -2].into_iter().enumerate() {
        vbat(&mut l, 500 * (i as u64 + 1), v);
    }
    vbat(&mut l, 2000, -47);
    assert_eq!(events(&mut l), vec![]);
    assert_eq!(l.battery(), Some(true));
    // Four consecutive low polls: off at the fourth.
    for i in 1..=3 {
        vbat(&mut l, 2000 + 500 * i, 1);
        assert_eq!(events(&mut l), vec![], "poll {i}");
    }
    vbat(&mut l, 4000, 0);
    assert_eq!(events(&mut l), vec![Event::Battery { present: false, at: ms(4000) }]);
    assert_eq!(l.off_hook(ms(4001)), Err(Error::NoBattery));
    // Back on at the first good reading.
    vbat(&mut l, 4500, 5);
    assert_eq!(events(&mut l), vec![Event::Battery { present: true, at: ms(4500) }]);
}

#[test]
fn polarity_from_vbat_sign_needs_two_polls() {
    let mut l = with_battery(FxoConfig { firmware_polarity: false, ..quiet() });
    assert_eq!(l.polarity_negative(), Some(false));
    // One opposite reading is not enough.
    vbat(&mut l, 500, -48);
    vbat(&mut l, 1000, 48);
    assert_eq!(events(&mut l), vec![]);
    // A low reading breaks the run.
    vbat(&mut l, 1500, -48);
    vbat(&mut l, 2000, 1);
    vbat(&mut l, 2500, -48);
    assert_eq!(events(&mut l), vec![]);
    // Two consecutive.
    vbat(&mut l, 3000, -48);
    assert_eq!(events(&mut l), vec![Event::PolarityReversed { at: ms(3000) }]);
    assert_eq!(l.polarity_negative(), Some(true));
    vbat(&mut l, 3500, -48);
    assert_eq!(events(&mut l), vec![]);
}

#[test]
fn vbat_polarity_not_reported_with_firmware_option() {
    let mut l = with_battery(quiet());
    vbat(&mut l, 500, -48);
    vbat(&mut l, 1000, -48);
    assert_eq!(events(&mut l), vec![]);
    assert_eq!(l.polarity_negative(), Some(true), "tracked all the same");
}

#[test]
fn ring_debounce_50ms() {
    let mut l = with_battery(quiet());
    let bit = 1 << PORT;
    // A 30 ms blip: ignored.
    l.handle_packet(ms(100), &sig(bit, bit));
    run_until(&mut l, 100, 129);
    l.handle_packet(ms(130), &sig(0, bit));
    run_until(&mut l, 130, 300);
    assert_eq!(events(&mut l), vec![]);
    // A 60 ms ring: on reported 50 ms after it started, off 50 ms after it stopped.
    l.handle_packet(ms(1000), &sig(bit, bit));
    run_until(&mut l, 1000, 1049);
    assert_eq!(events(&mut l), vec![]);
    run_until(&mut l, 1050, 1050);
    assert_eq!(events(&mut l), vec![Event::RingDetected { on: true, at: ms(1050) }]);
    assert!(l.ringing());
    l.handle_packet(ms(1060), &sig(0, bit));
    run_until(&mut l, 1060, 1109);
    assert_eq!(events(&mut l), vec![]);
    run_until(&mut l, 1110, 1110);
    assert_eq!(events(&mut l), vec![Event::RingDetected { on: false, at: ms(1110) }]);
    // Other lines' bits do not count.
    l.handle_packet(ms(2000), &sig(0xFF & !bit, 0xFF & !bit));
    run_until(&mut l, 2000, 2100);
    assert_eq!(events(&mut l), vec![]);
}

#[test]
fn ring_ignored_without_battery() {
    let mut l = FxoLine::new(ms(0), addr(), PORT, quiet());
    l.handle_packet(ms(10), &sig(1 << PORT, 1 << PORT));
    run_until(&mut l, 0, 200);
    assert!(events(&mut l).iter().all(|e| !matches!(e, Event::RingDetected { .. })));
}

/// A ring that starts before the first line-voltage reply is reported once battery is seen,
/// 50 ms later (the device reports a ring only when it starts; dropping it lost the ring).
#[test]
fn ring_before_the_first_vbat_reply_is_kept() {
    let mut l = FxoLine::new(ms(0), addr(), PORT, quiet());
    l.handle_packet(ms(3), &sig(1 << PORT, 1 << PORT));
    run_until(&mut l, 0, 19);
    assert!(events(&mut l).iter().all(|e| !matches!(e, Event::RingDetected { .. })));
    vbat(&mut l, 20, 90);
    run_until(&mut l, 20, 70);
    assert_eq!(
        events(&mut l),
        vec![Event::Battery { present: true, at: ms(20) }, Event::RingDetected { on: true, at: ms(70) }]
    );
    // A ring that ended before battery was seen is not reported.
    let mut l = FxoLine::new(ms(0), addr(), PORT, quiet());
    l.handle_packet(ms(3), &sig(1 << PORT, 1 << PORT));
    l.handle_packet(ms(9), &sig(0, 1 << PORT));
    vbat(&mut l, 20, 48);
    run_until(&mut l, 0, 200);
    assert_eq!(events(&mut l), vec![Event::Battery { present: true, at: ms(20) }]);
}

#[test]
fn vbat_ignored_during_ring() {
    let mut l = with_battery(quiet());
    l.handle_packet(ms(100), &sig(1 << PORT, 1 << PORT));
    // Readings while ring is present do not count towards battery off.
    for i in 1..=6 {
        vbat(&mut l, 100 + 10 * i, 0);
    }
    run_until(&mut l, 100, 150);
    assert_eq!(events(&mut l), vec![Event::RingDetected { on: true, at: ms(150) }]);
    assert_eq!(l.battery(), Some(true));
}

#[test]
fn firmware_reversal_40ms_rule() {
    let mut l = with_battery(quiet());
    l.handle_packet(ms(1000), &reply(PORT, 0x04, 0x01));
    run_until(&mut l, 1000, 1039);
    assert_eq!(events(&mut l), vec![]);
    run_until(&mut l, 1040, 1040);
    assert_eq!(events(&mut l), vec![Event::PolarityReversed { at: ms(1040) }]);
    // A second reversal 20 ms after the first: only the last one is reported, 40 ms after it.
    l.handle_packet(ms(2000), &reply(PORT, 0x04, 0x01));
    run_until(&mut l, 2000, 2019);
    l.handle_packet(ms(2020), &reply(PORT, 0x04, 0x01));
    run_until(&mut l, 2020, 2100);
    assert_eq!(events(&mut l), vec![Event::PolarityReversed { at: ms(2060) }]);
    // Interrupts without bit 0, or with the ring bit: nothing.
    l.handle_packet(ms(3000), &reply(PORT, 0x04, 0x80));
    l.handle_packet(ms(3001), &reply(PORT, 0x04, 0x81));
    run_until(&mut l, 3000, 3100);
    assert_eq!(events(&mut l), vec![]);
}

#[test]
fn firmware_reversal_not_reported_during_ring() {
    let mut l = with_battery(quiet());
    l.handle_packet(ms(1000), &sig(1 << PORT, 1 << PORT));
    l.handle_packet(ms(1010), &reply(PORT, 0x04, 0x01));
    run_until(&mut l, 1000, 1100);
    assert_eq!(events(&mut l), vec![Event::RingDetected { on: true, at: ms(1050) }]);
    // Ring starts inside the 40 ms window: not reported either.
    let mut l = with_battery(quiet());
    l.handle_packet(ms(1000), &reply(PORT, 0x04, 0x01));
    l.handle_packet(ms(1020), &sig(1 << PORT, 1 << PORT));
    run_until(&mut l, 1000, 1060);
    assert_eq!(events(&mut l), vec![]);
}

#[test]
fn firmware_reversal_ignored_when_option_off() {
    let mut l = with_battery(FxoConfig { firmware_polarity: false, ..quiet() });
    l.handle_packet(ms(1000), &reply(PORT, 0x04, 0x01));
    run_until(&mut l, 1000, 1100);
    assert_eq!(events(&mut l), vec![]);
}

/// Off-hook at 1000 with battery, loop current on at the 650 ms read.
fn off_hook_with_power() -> FxoLine {
    let mut l = with_battery(quiet());
    l.off_hook(ms(1000)).unwrap();
    assert_eq!(sent(&mut l), vec![wd(PORT, 0x05, 0x09)]);
    run_until(&mut l, 1000, 1649);
    assert!(!sent(&mut l).contains(&rd(PORT, 0x1C)));
    run_until(&mut l, 1650, 1650);
    assert_eq!(sent(&mut l), vec![rd(PORT, 0x1C)], "loop current read 650 ms after off-hook");
    l.handle_packet(ms(1652), &reply(PORT, 0x1C, 0x20));
    assert_eq!(l.power(), Some(true));
    l
}

#[test]
fn power_denial_timeline() {
    let mut l = off_hook_with_power();
    l.handle_packet(ms(5000), &reply(PORT, 0x1C, 0x02));
    assert_eq!(l.power(), Some(false));
    // 80 ms minimum, then a 2500 ms window without ring: reported at 7580.
    run_until(&mut l, 5000, 7579);
    assert_eq!(events(&mut l), vec![]);
    run_until(&mut l, 7580, 7580);
    assert_eq!(events(&mut l), vec![Event::PowerDenial { at: ms(7580) }]);
    assert!(l.wants_pcm(), "the line stays off-hook; the span core decides");
}

#[test]
fn power_back_within_80ms_is_no_denial() {
    let mut l = off_hook_with_power();
    l.handle_packet(ms(5000), &reply(PORT, 0x1C, 0x00));
    run_until(&mut l, 5000, 5050);
    l.handle_packet(ms(5050), &reply(PORT, 0x1C, 0x10));
    run_until(&mut l, 5050, 9000);
    assert!(events(&mut l).is_empty());
}

#[test]
fn power_denial_cancelled_by_ring() {
    let mut l = off_hook_with_power();
    l.handle_packet(ms(5000), &reply(PORT, 0x1C, 0x00));
    run_until(&mut l, 5000, 6000);
    l.handle_packet(ms(6000), &sig(1 << PORT, 1 << PORT));
    run_until(&mut l, 6000, 9000);
    assert_eq!(events(&mut l), vec![Event::RingDetected { on: true, at: ms(6050) }]);
}

#[test]
fn power_needs_power_on_first_and_off_hook() {
    let mut l = with_battery(quiet());
    // On-hook: loop-current replies are ignored.
    l.handle_packet(ms(10), &reply(PORT, 0x1C, 0x20));
    assert_eq!(l.power(), None);
    l.off_hook(ms(100)).unwrap();
    // Low before any "power on": not a loss.
    l.handle_packet(ms(200), &reply(PORT, 0x1C, 0x00));
    run_until(&mut l, 100, 5000);
    assert!(events(&mut l).is_empty());
    // On-hook cancels a pending denial.
    l.handle_packet(ms(5000), &reply(PORT, 0x1C, 0x20));
    l.handle_packet(ms(5100), &reply(PORT, 0x1C, 0x00));
    l.on_hook(ms(5200));
    run_until(&mut l, 5000, 9000);
    assert!(events(&mut l).is_empty());
}

/// The loop-current reads `l` queued between `from` and `to` (inclusive), with their times.
fn loop_reads(l: &mut FxoLine, from: u64, to: u64) -> Vec<u64> {
    let mut at = Vec::new();
    for t in from..=to {
        run_until(l, t, t);
        if sent(l).contains(&rd(PORT, 0x1C)) {
            at.push(t);
        }
    }
    at
}

#[test]
fn loop_current_polled_while_off_hook_only() {
    let mut l = off_hook_with_power();
    assert_eq!(loop_reads(&mut l, 1651, 3200), [2150, 2650, 3150], "every 500 ms after the first read");
    l.on_hook(ms(3201));
    let _ = sent(&mut l);
    assert_eq!(loop_reads(&mut l, 3201, 5000), [0u64; 0], "no reads on-hook");
    // The reference behaviour: one read 650 ms after off-hook, none after.
    let mut once = with_battery(FxoConfig { loop_current_poll: None, ..quiet() });
    once.off_hook(ms(1000)).unwrap();
    assert_eq!(loop_reads(&mut once, 1000, 4000), [1650]);
}

#[test]
fn polled_loss_is_rechecked_and_a_short_one_forgiven() {
    let mut l = off_hook_with_power();
    let _ = loop_reads(&mut l, 1651, 2150);
    // The 2150 poll reads low: re-read 40 ms later; power is back by then: no denial.
    l.handle_packet(ms(2152), &reply(PORT, 0x1C, 0x00));
    assert_eq!(l.power(), Some(false));
    assert_eq!(loop_reads(&mut l, 2153, 2192), [2192], "re-read 40 ms after the low reading");
    l.handle_packet(ms(2194), &reply(PORT, 0x1C, 0x20));
    assert_eq!(l.power(), Some(true));
    assert_eq!(loop_reads(&mut l, 2195, 2700), [2692], "back to the 500 ms period");
    run_until(&mut l, 2700, 9000);
    assert!(events(&mut l).is_empty());
}

#[test]
fn polled_far_end_disconnect_is_power_denial() {
    let mut l = off_hook_with_power();
    let _ = loop_reads(&mut l, 1651, 2150);
    l.handle_packet(ms(2152), &reply(PORT, 0x1C, 0x00));
    let _ = loop_reads(&mut l, 2153, 2192);
    l.handle_packet(ms(2194), &reply(PORT, 0x1C, 0x01));
    // Lost at 2152: 80 ms minimum, 2500 ms confirmation window without ring.
    run_until(&mut l, 2195, 4731);
    assert_eq!(events(&mut l), vec![]);
    run_until(&mut l, 4732, 4732);
    assert_eq!(events(&mut l), vec![Event::PowerDenial { at: ms(4732) }]);
}

#[test]
fn leds() {
    let mut l = with_battery(quiet());
    for (led, on) in [(Led::Green, true), (Led::Green, false), (Led::Red, true), (Led::Red, false)] {
        l.set_led(ms(0), led, on).unwrap();
    }
    assert_eq!(
        sent(&mut l),
        vec![wd(PORT, 0x20, 0x63), wd(PORT, 0x20, 0x60), wd(PORT, 0x20, 0xA3), wd(PORT, 0x20, 0xA0)]
    );
    let mut l = with_battery(FxoConfig::default());
    l.off_hook(ms(1)).unwrap();
    assert_eq!(sent(&mut l), vec![wd(PORT, 0x05, 0x09), wd(PORT, 0x20, 0x63)]);
    l.on_hook(ms(2));
    assert_eq!(sent(&mut l), vec![wd(PORT, 0x05, 0x08), wd(PORT, 0x20, 0x60)]);
}

/// A take-over: the model reads the hook register instead of assuming the card init's
/// on-hook; a closed loop (0x09) is adopted silently (no write, one `LoopFoundClosed`), and
/// the PBX's on-hook then opens it. An open loop (0x08) changes nothing, and a later 0x05
/// reply that was not asked for is ignored.
#[test]
fn a_take_over_adopts_a_closed_loop() {
    let mut l = with_battery(quiet());
    l.read_hook_state();
    assert_eq!(sent(&mut l), vec![rd(PORT, 0x05)]);
    l.handle_packet(ms(10), &reply(PORT, 0x05, 0x09));
    assert_eq!(l.state(), FxoState::OffHook);
    assert_eq!(sent(&mut l), vec![], "nothing written");
    assert_eq!(events(&mut l), vec![Event::LoopFoundClosed { at: ms(10) }]);
    assert!(l.wants_pcm());
    l.on_hook(ms(20));
    assert_eq!(sent(&mut l), vec![wd(PORT, 0x05, 0x08)]);

    let mut open = with_battery(quiet());
    open.read_hook_state();
    let _ = sent(&mut open);
    open.handle_packet(ms(10), &reply(PORT, 0x05, 0x08));
    assert_eq!(open.state(), FxoState::OnHook);
    assert_eq!(events(&mut open), vec![]);
    open.handle_packet(ms(11), &reply(PORT, 0x05, 0x09));
    assert_eq!(open.state(), FxoState::OnHook, "an unasked reply is ignored");
}
