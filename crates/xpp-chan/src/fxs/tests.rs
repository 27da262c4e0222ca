//! FXS line tests: exact register writes from docs/reference/xpp-protocol.md §9.1, written out by hand.

use rstest::rstest;
use xpp_proto::wire::{Message, RegCmd, SigChanged};

use super::*;
use crate::test_util::*;

const PORT: u8 = 3;

fn quiet() -> FxsConfig {
    FxsConfig { auto_leds: false, hook_poll: None, ..FxsConfig::default() }
}

fn line(chip: ChipType, config: FxsConfig) -> FxsLine {
    FxsLine::new(ms(0), addr(), PORT, chip, config)
}

fn sent(l: &mut FxsLine) -> Vec<RegCmd> {
    drain(|| l.poll_transmit(ms(0)))
}

fn events(l: &mut FxsLine) -> Vec<Event> {
    std::iter::from_fn(|| l.poll_event()).collect()
}

/// Runs the timers up to `t` in 1 ms steps, as the run loop's ticks would.
fn run_until(l: &mut FxsLine, from: u64, to: u64) {
    for t in from..=to {
        if l.poll_timeout().is_some_and(|d| d <= ms(t)) {
            l.handle_timeout(ms(t));
        }
    }
}

/// §9.1 ring-generator table, NORMAL column, for port 3.
fn table_normal() -> Vec<RegCmd> {
    vec![
        ws(PORT, 0x1E, 0x16, 0x00, 0x00),
        ws(PORT, 0x1E, 0x15, 0x77, 0x01),
        ws(PORT, 0x1E, 0x14, 0xFD, 0x7E),
        wd(PORT, 0x22, 0x00),
        wd(PORT, 0x30, 0x00),
        wd(PORT, 0x31, 0x00),
        wd(PORT, 0x32, 0x00),
        wd(PORT, 0x33, 0x00),
        ws(PORT, 0x1E, 0x1D, 0x00, 0x36),
    ]
}

/// NEON column with the init script's 0x33 = 0x12.
fn table_neon() -> Vec<RegCmd> {
    vec![
        ws(PORT, 0x1E, 0x16, 0xE8, 0x03),
        ws(PORT, 0x1E, 0x15, 0xEF, 0x7B),
        ws(PORT, 0x1E, 0x14, 0x9F, 0x00),
        wd(PORT, 0x22, 0x19),
        wd(PORT, 0x30, 0xE0),
        wd(PORT, 0x31, 0x01),
        wd(PORT, 0x32, 0xF0),
        wd(PORT, 0x33, 0x12),
        ws(PORT, 0x1E, 0x1D, 0x00, 0x46),
    ]
}

fn table_trapez() -> Vec<RegCmd> {
    vec![
        ws(PORT, 0x1E, 0x16, 0xC8, 0x00),
        ws(PORT, 0x1E, 0x15, 0xAB, 0x5E),
        ws(PORT, 0x1E, 0x14, 0x8C, 0x01),
        wd(PORT, 0x22, 0x01),
        wd(PORT, 0x30, 0x00),
        wd(PORT, 0x31, 0x00),
        wd(PORT, 0x32, 0x00),
        wd(PORT, 0x33, 0x00),
        ws(PORT, 0x1E, 0x1D, 0x00, 0x36),
    ]
}

fn cat(parts: &[&[RegCmd]]) -> Vec<RegCmd> {
    parts.concat()
}

/// Line-feed write: type 1 reg 0x40, type 6 reg 0x1E.
fn lf(chip: ChipType, v: u8) -> RegCmd {
    match chip {
        ChipType::Type1 => wd(PORT, 0x40, v),
        ChipType::Type6 => wd(PORT, 0x1E, v),
    }
}

#[rstest]
#[case(ChipType::Type1)]
#[case(ChipType::Type6)]
fn hook_from_sig_changed(#[case] chip: ChipType) {
    let mut l = line(chip, quiet());
    assert_eq!(l.off_hook(), None);
    assert!(!l.wants_pcm());
    // Another line toggles; our bit is set but not toggled: ignored.
    l.handle_packet(ms(5), &sig(1 << PORT | 1, 1));
    assert_eq!(events(&mut l), vec![]);
    l.handle_packet(ms(10), &sig(1 << PORT, 1 << PORT));
    assert_eq!(events(&mut l), vec![Event::HookChanged { off_hook: true, at: ms(10) }]);
    assert_eq!(l.off_hook(), Some(true));
    assert!(l.wants_pcm());
    // Type 1 lowers the battery feed on every hook change.
    let expect = if chip == ChipType::Type1 { vec![wd(PORT, 0x42, 0x00)] } else { vec![] };
    assert_eq!(sent(&mut l), expect);
    // A repeated toggle with the same state is no news.
    l.handle_packet(ms(11), &sig(1 << PORT, 1 << PORT));
    assert_eq!(events(&mut l), vec![]);
    l.handle_packet(ms(20), &sig(0, 1 << PORT));
    assert_eq!(events(&mut l), vec![Event::HookChanged { off_hook: false, at: ms(20) }]);
    assert!(!l.wants_pcm());
    // Another XPD's SIG_CHANGED is not ours.
    let other = Repr::command(
        Address::new(2, 0).unwrap(),
        Message::SigChanged(SigChanged { status: 0xFF, toggles: 0xFF }),
    );
    l.handle_packet(ms(30), &other);
    assert_eq!(events(&mut l), vec![]);
}

#[rstest]
#[case(ChipType::Type1, 0x44, 0x01, Some(true))]
#[case(ChipType::Type1, 0x44, 0x00, Some(false))]
#[case(ChipType::Type1, 0x44, 0x06, Some(false))]
#[case(ChipType::Type1, 0x44, 0x09, None)] // bit 3 set: invalid
#[case(ChipType::Type1, 0x44, 0xFF, None)] // absent port
#[case(ChipType::Type6, 0x22, 0x02, Some(true))]
#[case(ChipType::Type6, 0x22, 0x0D, Some(false))]
#[case(ChipType::Type6, 0x22, 0x12, None)] // bit 4 set: invalid
#[case(ChipType::Type6, 0x22, 0xFF, None)]
#[case(ChipType::Type6, 0x44, 0x01, None)] // type 1's register means nothing on type 6
fn hook_state_read(#[case] chip: ChipType, #[case] reg: u8, #[case] value: u8, #[case] hook: Option<bool>) {
    let mut l = line(chip, quiet());
    l.read_hook_state(ms(0));
    let expect_reg = if chip == ChipType::Type1 { 0x44 } else { 0x22 };
    assert_eq!(sent(&mut l), vec![rd(PORT, expect_reg)]);
    l.handle_packet(ms(3), &reply(PORT, reg, value));
    assert_eq!(l.off_hook(), hook);
    let ev: Vec<Event> =
        hook.map(|off_hook| Event::HookChanged { off_hook, at: ms(3) }).into_iter().collect();
    assert_eq!(events(&mut l), ev);
    // The same reply for another port is not ours.
    let mut l = line(chip, quiet());
    l.handle_packet(ms(3), &reply(PORT + 1, reg, value));
    assert_eq!(l.off_hook(), None);
}

/// Issue 15, item 8: the off-hook report (SIG_CHANGED) is lost; the hook-state read every
/// HOOK_POLL finds the change within one period, once, and a read that agrees with what is
/// known raises nothing.
#[rstest]
#[case(ChipType::Type1, 0x44, 0x01, 0x00)]
#[case(ChipType::Type6, 0x22, 0x02, 0x00)]
fn a_lost_hook_change_is_found_by_the_poll(
    #[case] chip: ChipType,
    #[case] reg: u8,
    #[case] off: u8,
    #[case] on: u8,
) {
    let mut l = line(chip, FxsConfig { auto_leds: false, ..FxsConfig::default() });
    let reads = |l: &mut FxsLine| sent(l).into_iter().filter(|c| *c == rd(PORT, reg)).count();
    assert_eq!(l.poll_timeout(), Some(ms(0) + HOOK_POLL));
    // On-hook known from the first read.
    l.handle_packet(ms(5), &reply(PORT, reg, on));
    assert_eq!(events(&mut l), vec![Event::HookChanged { off_hook: false, at: ms(5) }]);
    // The phone goes off-hook at 200 ms; its SIG_CHANGED never arrives. Nothing is read
    // before the period is over.
    run_until(&mut l, 6, 999);
    assert_eq!(reads(&mut l), 0);
    run_until(&mut l, 1000, 1000);
    assert_eq!(reads(&mut l), 1);
    l.handle_packet(ms(1003), &reply(PORT, reg, off));
    assert_eq!(events(&mut l), vec![Event::HookChanged { off_hook: true, at: ms(1003) }]);
    // The next reads agree: no event.
    run_until(&mut l, 1004, 2000);
    assert_eq!(reads(&mut l), 1);
    run_until(&mut l, 2001, 3000);
    assert_eq!(reads(&mut l), 1);
    l.handle_packet(ms(3003), &reply(PORT, reg, off));
    assert_eq!(events(&mut l), vec![]);
    // A read not yet sent is not queued twice (the bus was busy for two periods).
    run_until(&mut l, 3004, 5000);
    assert_eq!(reads(&mut l), 1);
}

#[test]
fn ring_on_off_type1_exact_writes() {
    let mut l = line(ChipType::Type1, quiet());
    l.start_ringing(ms(0), Cadence::CONTINUOUS).unwrap();
    assert!(l.is_ringing());
    // Ring on: ring-generator table, high battery, line feed ringing.
    assert_eq!(sent(&mut l), cat(&[&table_normal(), &[wd(PORT, 0x42, 0x02), wd(PORT, 0x40, 0x04)]]));
    l.stop_ringing(ms(1000));
    // Ring off: line feed OHT, battery low, ring-generator table.
    assert_eq!(sent(&mut l), cat(&[&[wd(PORT, 0x40, 0x02), wd(PORT, 0x42, 0x00)], &table_normal()]));
    assert_eq!(l.state(), FxsState::Oht);
    assert!(l.wants_pcm(), "OHT lines carry PCM for caller ID");
    // OHT for 6000 ms, then back to forward active.
    run_until(&mut l, 1000, 6999);
    assert_eq!(sent(&mut l), vec![]);
    run_until(&mut l, 7000, 7000);
    assert_eq!(sent(&mut l), vec![wd(PORT, 0x40, 0x01)]);
    assert_eq!(l.state(), FxsState::Idle);
    assert!(!l.wants_pcm());
}

#[test]
fn ring_type1_trapezoid_column() {
    let cfg = FxsConfig { waveform: RingWaveform::Trapezoid, ..quiet() };
    let mut l = line(ChipType::Type1, cfg);
    l.start_ringing(ms(0), Cadence::CONTINUOUS).unwrap();
    assert_eq!(sent(&mut l), cat(&[&table_trapez(), &[wd(PORT, 0x42, 0x02), wd(PORT, 0x40, 0x04)]]));
}

#[test]
fn ring_on_off_type6_exact_writes() {
    let mut l = line(ChipType::Type6, quiet());
    l.start_ringing(ms(0), Cadence::CONTINUOUS).unwrap();
    assert_eq!(sent(&mut l), vec![wd(PORT, 0x1E, 0x04)]);
    l.stop_ringing(ms(500));
    assert_eq!(sent(&mut l), vec![wd(PORT, 0x1E, 0x02)]);
    run_until(&mut l, 500, 6499);
    assert_eq!(sent(&mut l), vec![]);
    run_until(&mut l, 6500, 6500);
    assert_eq!(sent(&mut l), vec![wd(PORT, 0x1E, 0x01)]);
}

#[rstest]
#[case(ChipType::Type1)]
#[case(ChipType::Type6)]
fn ring_cadence_steps(#[case] chip: ChipType) {
    let mut l = line(chip, quiet());
    let cadence = Cadence::from_millis(&[400, 200, 400, 2000]).unwrap();
    l.start_ringing(ms(0), cadence).unwrap();
    let on = |l: &mut FxsLine| sent(l).into_iter().filter(|c| *c == lf(chip, 0x04)).count();
    let off = |cmds: &[RegCmd]| cmds.iter().filter(|c| **c == lf(chip, 0x02)).count();
    assert_eq!(on(&mut l), 1);
    run_until(&mut l, 1, 399);
    assert_eq!(sent(&mut l), vec![]);
    run_until(&mut l, 400, 400);
    let s = sent(&mut l);
    assert_eq!(off(&s), 1, "ring off at 400 ms");
    if chip == ChipType::Type1 {
        // Every ring transition carries the battery write and the whole table.
        assert_eq!(s, cat(&[&[wd(PORT, 0x40, 0x02), wd(PORT, 0x42, 0x00)], &table_normal()]));
    }
    run_until(&mut l, 401, 600);
    assert_eq!(on(&mut l), 1, "ring on at 600 ms");
    run_until(&mut l, 601, 1000);
    assert_eq!(off(&sent(&mut l)), 1, "ring off at 1000 ms");
    run_until(&mut l, 1001, 2999);
    assert_eq!(sent(&mut l), vec![]);
    run_until(&mut l, 3000, 3000);
    assert_eq!(on(&mut l), 1, "cadence repeats at 3000 ms");
}

#[rstest]
#[case(ChipType::Type1)]
#[case(ChipType::Type6)]
fn off_hook_stops_ringing(#[case] chip: ChipType) {
    let mut l = line(chip, quiet());
    l.handle_packet(ms(0), &sig(0, 1 << PORT));
    let _ = sent(&mut l);
    l.start_ringing(ms(0), Cadence::from_millis(&[2000, 4000]).unwrap()).unwrap();
    let _ = sent(&mut l);
    l.handle_packet(ms(700), &sig(1 << PORT, 1 << PORT));
    let expect = match chip {
        // Straight to active (talk battery), battery low, table back.
        ChipType::Type1 => cat(&[&[wd(PORT, 0x40, 0x01), wd(PORT, 0x42, 0x00)], &table_normal()]),
        ChipType::Type6 => vec![wd(PORT, 0x1E, 0x01)],
    };
    assert_eq!(sent(&mut l), expect);
    assert_eq!(l.state(), FxsState::Idle);
    assert_eq!(l.poll_timeout(), if chip == ChipType::Type6 { Some(ms(30_000)) } else { None });
    assert_eq!(l.start_ringing(ms(800), Cadence::CONTINUOUS), Err(Error::OffHook));
    assert_eq!(sent(&mut l), vec![]);
}

#[rstest]
#[case(ChipType::Type1)]
#[case(ChipType::Type6)]
fn polarity_reversal(#[case] chip: ChipType) {
    let mut l = line(chip, quiet());
    l.set_reversed(ms(0), true).unwrap();
    assert_eq!(sent(&mut l), vec![lf(chip, 0x05)]);
    l.set_reversed(ms(1), true).unwrap();
    assert_eq!(sent(&mut l), vec![], "no change, no write");
    l.start_oht(ms(2)).unwrap();
    assert_eq!(sent(&mut l), vec![lf(chip, 0x06)], "reverse OHT");
    l.set_reversed(ms(3), false).unwrap();
    assert_eq!(sent(&mut l), vec![lf(chip, 0x02)], "OHT <-> reverse OHT");
    l.set_reversed(ms(4), true).unwrap();
    let _ = sent(&mut l);
    // Ringing: refused, nothing sent; ring-off goes to reverse OHT, then reverse active.
    l.start_ringing(ms(10), Cadence::CONTINUOUS).unwrap();
    let _ = sent(&mut l);
    assert_eq!(l.set_reversed(ms(11), false), Err(Error::Ringing));
    assert_eq!(sent(&mut l), vec![]);
    l.stop_ringing(ms(20));
    assert_eq!(sent(&mut l)[0], lf(chip, 0x06));
    run_until(&mut l, 20, 6020);
    assert_eq!(sent(&mut l), vec![lf(chip, 0x05)]);
    // Open: refused.
    l.set_line_open(ms(7000), true);
    assert_eq!(sent(&mut l), vec![lf(chip, 0x00)]);
    assert_eq!(l.set_reversed(ms(7001), false), Err(Error::LineOpen));
    assert_eq!(sent(&mut l), vec![]);
    assert_eq!(l.start_ringing(ms(7002), Cadence::CONTINUOUS), Err(Error::LineOpen));
    l.set_line_open(ms(7003), false);
    assert_eq!(sent(&mut l), vec![lf(chip, 0x05)]);
}

#[rstest]
#[case(ChipType::Type1)]
#[case(ChipType::Type6)]
fn oht_for_caller_id(#[case] chip: ChipType) {
    let mut l = line(chip, quiet());
    l.start_oht(ms(100)).unwrap();
    assert_eq!(sent(&mut l), vec![lf(chip, 0x02)]);
    assert!(l.wants_pcm());
    run_until(&mut l, 100, 6099);
    assert_eq!(sent(&mut l), vec![]);
    run_until(&mut l, 6100, 6100);
    assert_eq!(sent(&mut l), vec![lf(chip, 0x01)]);
    assert!(!l.wants_pcm());
    // Refused while off-hook.
    l.handle_packet(ms(7000), &sig(1 << PORT, 1 << PORT));
    let _ = sent(&mut l);
    assert_eq!(l.start_oht(ms(7001)), Err(Error::OffHook));
    assert_eq!(sent(&mut l), vec![]);
}

#[test]
fn oht_ends_on_off_hook() {
    let mut l = line(ChipType::Type6, quiet());
    l.start_oht(ms(0)).unwrap();
    let _ = sent(&mut l);
    l.handle_packet(ms(10), &sig(1 << PORT, 1 << PORT));
    assert_eq!(sent(&mut l), vec![wd(PORT, 0x1E, 0x01)]);
    assert_eq!(l.state(), FxsState::Idle);
}

#[test]
fn vmwi_type1_neon() {
    let mut l = line(ChipType::Type1, quiet());
    l.set_vmwi(ms(0), true);
    // Neon: NEON table, high battery, line feed ringing.
    assert_eq!(sent(&mut l), cat(&[&table_neon(), &[wd(PORT, 0x42, 0x02), wd(PORT, 0x40, 0x04)]]));
    assert_eq!(l.state(), FxsState::Vmwi);
    // Off-hook: lamp off (ringing table, low battery) and line feed active.
    l.handle_packet(ms(100), &sig(1 << PORT, 1 << PORT));
    assert_eq!(sent(&mut l), cat(&[&table_normal(), &[wd(PORT, 0x42, 0x00), wd(PORT, 0x40, 0x01)]]));
    // On-hook again: the lamp comes back (battery lowered first on the hook change).
    l.handle_packet(ms(200), &sig(0, 1 << PORT));
    assert_eq!(
        sent(&mut l),
        cat(&[&[wd(PORT, 0x42, 0x00)], &table_neon(), &[wd(PORT, 0x42, 0x02), wd(PORT, 0x40, 0x04)]])
    );
    // Messages read.
    l.set_vmwi(ms(300), false);
    assert_eq!(sent(&mut l), cat(&[&table_normal(), &[wd(PORT, 0x42, 0x00), wd(PORT, 0x40, 0x01)]]));
    assert_eq!(l.state(), FxsState::Idle);
}

#[test]
fn vmwi_type1_ringing_interrupts_neon() {
    let mut l = line(ChipType::Type1, quiet());
    l.set_vmwi(ms(0), true);
    let _ = sent(&mut l);
    l.start_ringing(ms(10), Cadence::CONTINUOUS).unwrap();
    // The ring-on sequence replaces the NEON generator in one go.
    assert_eq!(sent(&mut l), cat(&[&table_normal(), &[wd(PORT, 0x42, 0x02), wd(PORT, 0x40, 0x04)]]));
    l.stop_ringing(ms(20));
    let _ = sent(&mut l);
    run_until(&mut l, 20, 6020);
    // After OHT, back to the neon lamp.
    assert_eq!(sent(&mut l), cat(&[&table_neon(), &[wd(PORT, 0x42, 0x02), wd(PORT, 0x40, 0x04)]]));
}

#[test]
fn vmwi_type6_lamp_blink() {
    let consts = Vmwi6Constants { ram767_mwi: 0x1234, ram767_default: 0x0100, ram634_default: 0x0200 };
    let mut l = line(ChipType::Type6, FxsConfig { vmwi6: Some(consts), ..quiet() });
    l.set_vmwi(ms(0), true);
    let lamp_on = [wd(PORT, 0x2F, 0x00), wd(PORT, 0x42, 0x04), wd(PORT, 0x47, 0x0F)];
    assert_eq!(sent(&mut l), cat(&[&[wr(PORT, 767, 0x1234 << 3)], &lamp_on]));
    run_until(&mut l, 1, 299);
    assert_eq!(sent(&mut l), vec![]);
    run_until(&mut l, 300, 300);
    assert_eq!(sent(&mut l), vec![wd(PORT, 0x47, 0x00)]);
    run_until(&mut l, 301, 999);
    assert_eq!(sent(&mut l), vec![]);
    run_until(&mut l, 1000, 1000);
    assert_eq!(sent(&mut l), lamp_on.to_vec());
    // Off-hook: lamp off, no blinking while off-hook.
    l.handle_packet(ms(1100), &sig(1 << PORT, 1 << PORT));
    assert_eq!(sent(&mut l), vec![wd(PORT, 0x47, 0x00)]);
    run_until(&mut l, 1101, 5000);
    assert_eq!(sent(&mut l), vec![]);
    l.handle_packet(ms(5000), &sig(0, 1 << PORT));
    assert_eq!(sent(&mut l), lamp_on.to_vec());
    // MWI ends while lit: lamp off, then the exit registers and RAM defaults.
    l.set_vmwi(ms(5100), false);
    assert_eq!(
        sent(&mut l),
        vec![
            wd(PORT, 0x47, 0x00),
            wd(PORT, 0x42, 0x00),
            wd(PORT, 0x2F, 0x10),
            wr(PORT, 767, 0x0100 << 3),
            wr(PORT, 634, 0x0200 << 3),
        ]
    );
    run_until(&mut l, 5101, 9000);
    assert_eq!(sent(&mut l), vec![]);
}

#[test]
fn vmwi_type6_without_constants_writes_registers_only() {
    let mut l = line(ChipType::Type6, quiet());
    l.set_vmwi(ms(0), true);
    assert_eq!(sent(&mut l), vec![wd(PORT, 0x2F, 0x00), wd(PORT, 0x42, 0x04), wd(PORT, 0x47, 0x0F)]);
    run_until(&mut l, 1, 300);
    let _ = sent(&mut l);
    l.set_vmwi(ms(400), false);
    assert_eq!(sent(&mut l), vec![wd(PORT, 0x42, 0x00), wd(PORT, 0x2F, 0x10)]);
}

#[test]
fn leds_type1() {
    let mut l = line(ChipType::Type1, quiet());
    l.set_led(ms(0), Led::Green, true).unwrap();
    l.set_led(ms(0), Led::Green, false).unwrap();
    l.set_led(ms(0), Led::Red, true).unwrap();
    l.set_led(ms(0), Led::Red, false).unwrap();
    assert_eq!(
        sent(&mut l),
        vec![wd(PORT, 0x06, 0x7C), wd(PORT, 0x06, 0x6C), wd(PORT, 0x06, 0xAE), wd(PORT, 0x06, 0xAC)]
    );
}

#[test]
fn leds_type6_expander() {
    let mut l = line(ChipType::Type6, quiet());
    l.set_led(ms(0), Led::Green, true).unwrap();
    l.set_led(ms(0), Led::Green, false).unwrap();
    assert_eq!(sent(&mut l), vec![wx(0x12, 0x08, 0x08), wx(0x12, 0x00, 0x08)]);
    assert!(matches!(l.set_led(ms(0), Led::Red, true), Err(Error::Unsupported(_))));
    assert_eq!(sent(&mut l), vec![]);
}

#[rstest]
#[case(ChipType::Type1)]
#[case(ChipType::Type6)]
fn auto_leds_follow_hook_and_blink_while_ringing(#[case] chip: ChipType) {
    let green = |on: bool| match chip {
        ChipType::Type1 => wd(PORT, 0x06, if on { 0x7C } else { 0x6C }),
        ChipType::Type6 => wx(0x12, if on { 0x08 } else { 0x00 }, 0x08),
    };
    let leds = |cmds: Vec<RegCmd>| -> Vec<RegCmd> {
        cmds.into_iter().filter(|c| *c == green(true) || *c == green(false)).collect()
    };
    let mut l = line(chip, FxsConfig::default());
    l.handle_packet(ms(0), &sig(0, 1 << PORT));
    assert_eq!(leds(sent(&mut l)), vec![green(false)]);
    l.start_ringing(ms(0), Cadence::CONTINUOUS).unwrap();
    assert_eq!(leds(sent(&mut l)), vec![green(true)]);
    run_until(&mut l, 1, 500);
    // Toggles at 125, 250, 375, 500.
    assert_eq!(leds(sent(&mut l)), vec![green(false), green(true), green(false), green(true)]);
    l.handle_packet(ms(510), &sig(1 << PORT, 1 << PORT));
    assert_eq!(leds(sent(&mut l)), vec![], "already lit, and off-hook keeps it lit");
    run_until(&mut l, 511, 1000);
    assert_eq!(leds(sent(&mut l)), vec![], "no blinking after ringing");
    l.handle_packet(ms(1000), &sig(0, 1 << PORT));
    assert_eq!(leds(sent(&mut l)), vec![green(false)]);
}

#[rstest]
#[case(ChipType::Type1, 0x18)]
#[case(ChipType::Type6, 0x3C)]
fn dtmf_reports(#[case] chip: ChipType, #[case] reg: u8) {
    let mut l = line(chip, quiet());
    l.set_dtmf_detection(ms(0), true);
    l.set_dtmf_detection(ms(0), false);
    let expect = match chip {
        ChipType::Type1 => vec![wd(PORT, 0x17, 1), wd(PORT, 0x17, 0)],
        ChipType::Type6 => vec![wd(PORT, 0x3E, 0xE0), wd(PORT, 0x3E, 0x04)],
    };
    assert_eq!(sent(&mut l), expect);
    for (t, v) in [(1, 0x11), (2, 0x01), (3, 0x10), (4, 0x1A), (5, 0x1B), (6, 0x1C), (7, 0x1D), (8, 0x0F)] {
        l.handle_packet(ms(t), &reply(PORT, reg, v));
    }
    let got: Vec<(char, bool)> = events(&mut l)
        .into_iter()
        .map(|e| match e {
            Event::DtmfDigit { digit, down, .. } => (digit, down),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ('1', true),
            ('1', false),
            ('D', true),
            ('0', true),
            ('*', true),
            ('#', true),
            ('A', true),
            ('C', false)
        ]
    );
}

#[test]
fn overheat_check_type6() {
    let mut l = line(ChipType::Type6, quiet());
    assert_eq!(l.poll_timeout(), Some(ms(30_000)));
    run_until(&mut l, 0, 29_999);
    assert_eq!(sent(&mut l), vec![]);
    run_until(&mut l, 30_000, 30_000);
    assert_eq!(sent(&mut l), vec![rd(PORT, 0x1E)]);
    assert_eq!(sent(&mut l), vec![]);
    // Healthy: the value written.
    l.handle_packet(ms(30_002), &reply(PORT, 0x1E, 0x01));
    assert_eq!(events(&mut l), vec![]);
    assert_eq!(sent(&mut l), vec![]);
    // Overheat: 0 while forward active was written -> event + rewrite.
    l.handle_packet(ms(30_003), &reply(PORT, 0x1E, 0x00));
    assert_eq!(events(&mut l), vec![Event::Overheat { at: ms(30_003) }]);
    assert_eq!(sent(&mut l), vec![wd(PORT, 0x1E, 0x01)]);
    assert_eq!(l.poll_timeout(), Some(ms(60_000)));
    // A type 1 line has no such poll, and 0x1E is its indirect register.
    let mut l1 = line(ChipType::Type1, quiet());
    assert_eq!(l1.poll_timeout(), None);
    l1.handle_packet(ms(1), &reply(PORT, 0x1E, 0x00));
    assert_eq!(events(&mut l1), vec![]);
}

#[test]
fn overheat_poll_not_duplicated_when_not_drained() {
    let mut l = line(ChipType::Type6, quiet());
    run_until(&mut l, 30_000, 30_000);
    run_until(&mut l, 60_000, 60_000);
    assert_eq!(l.queued_commands(), 1);
}

#[test]
fn cadence_validation() {
    assert!(Cadence::from_millis(&[]).is_err());
    assert!(Cadence::from_millis(&[2000]).is_err());
    assert!(Cadence::from_millis(&[2000, 0]).is_err());
    assert!(Cadence::from_millis(&[100; 18]).is_err());
    assert_eq!(Cadence::from_millis(&[2000, 4000]).unwrap().steps(), &[dms(2000), dms(4000)]);
    assert!(Cadence::CONTINUOUS.steps().is_empty());
}

#[test]
fn vmwi_fsk_search_keeps_pcm() {
    let l = line(ChipType::Type1, FxsConfig { vmwi_fsk_search: true, ..quiet() });
    assert!(l.wants_pcm());
}

/// A take-over: the line feed is read back; a ring the previous host left on is replaced by
/// the model's forward active, a reversed polarity is adopted (nothing written), and a line
/// feed already as the model has it changes nothing.
#[test]
fn a_take_over_reconciles_the_line_feed() {
    let lf_reg = ChipType::Type1.line_feed_reg();
    for (found, written, reversed) in [(0x04, Some(0x01), false), (0x05, None, true), (0x01, None, false)] {
        let mut l = FxsLine::new(ms(0), addr(), PORT, ChipType::Type1, quiet());
        let _ = sent(&mut l);
        l.read_line_feed_state();
        assert_eq!(sent(&mut l), vec![rd(PORT, lf_reg)]);
        l.handle_packet(ms(5), &reply(PORT, lf_reg, found));
        let want: Vec<RegCmd> = written.map(|v| wd(PORT, lf_reg, v)).into_iter().collect();
        assert_eq!(sent(&mut l), want, "found 0x{found:02X}");
        // The polarity as adopted: reversing back writes forward active.
        l.set_reversed(ms(6), false).unwrap();
        let back: Vec<RegCmd> = reversed.then(|| wd(PORT, lf_reg, 0x01)).into_iter().collect();
        assert_eq!(sent(&mut l), back, "found 0x{found:02X}");
    }
}
