//! The demo's call (`examples/demo.rs`) on the emulator's virtual clock with the driver in
//! lockstep: deterministic, fast, and every check of the demo must pass.

#[path = "../examples/demo.rs"]
#[allow(dead_code)]
mod demo;

use xpp::emu::config::Stage;

fn run(stage: Stage) -> Vec<String> {
    run_with(demo::Options::new(stage, true))
}

fn run_with(opts: demo::Options) -> Vec<String> {
    let mut lines = Vec::new();
    let checks = demo::run(&opts, &mut |l| lines.push(l)).unwrap_or_else(|e| panic!("{e}"));
    for l in &lines {
        println!("{l}");
    }
    assert_eq!(checks.len(), if opts.pri { 18 } else { 13 }, "{checks:?}");
    assert!(checks.iter().all(|c| c.pass), "{checks:?}");
    lines
}

/// The call's lines without the bring-up (their timestamps are relative to the call start)
/// and without the failover part (real time, never the same twice).
fn call_lines(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .skip_while(|l| !l.starts_with("== call"))
        .take_while(|l| !l.starts_with("== failover"))
        .cloned()
        .collect()
}

#[test]
fn demo_call_from_cold_passes_every_check() {
    let lines = run(Stage::Cold);
    for phase in ["UsbFirmware", "Fpga", "Pic", "CardInit(0)", "CardInit(1)", "Ready"] {
        assert!(lines.iter().any(|l| l.contains(phase)), "bring-up phase {phase} printed");
    }
    let call = call_lines(&lines);
    let want = [
        "phone on FXS 1: off-hook",
        "PBX: channel 1 event RINGOFFHOOK",
        "PSTN line 1: Idle -> DialTone",
        "PSTN line 1: DialTone -> Connected",
        "audio check: PSTN far party hears 1 kHz",
        "audio check: phone hears 2 kHz",
        "PBX: channel 1 event ONHOOK",
        "call over",
    ];
    let mut at = 0;
    for w in want {
        let i = call[at..].iter().position(|l| l.contains(w)).unwrap_or_else(|| panic!("{w:?} in order"));
        at += i + 1;
    }
}

#[test]
fn demo_failover_keeps_the_call_and_prints_its_timelines() {
    let lines = run(Stage::Running);
    let failover: Vec<&String> = lines.iter().skip_while(|l| !l.starts_with("== failover")).collect();
    for w in [
        "host A: call up",
        "host A: PBX hangs",
        "host B: audio phone -> PSTN (1 kHz",
        "host B: audio PSTN -> phone (2 kHz",
        "timeline, host A:",
        "detect",
        "hand-over",
        "timeline, host B:",
        "take-over",
        "first-audio",
        "total:",
    ] {
        assert!(failover.iter().any(|l| l.contains(w)), "{w:?} in {failover:#?}");
    }
}

/// `--crash`: host A's run loop stops instead; the watchdog moves the device, the call's
/// audio is checked on B, B's timeline and the total from the crash are printed.
#[test]
fn demo_crash_failover_keeps_the_call() {
    let lines = run_with(demo::Options { crash: true, ..demo::Options::new(Stage::Running, true) });
    let failover: Vec<&String> = lines.iter().skip_while(|l| !l.starts_with("== failover")).collect();
    for w in ["host A: crashes", "host B: audio phone -> PSTN (1 kHz", "timeline, host B:", "total:"] {
        assert!(failover.iter().any(|l| l.contains(w)), "{w:?} in {failover:#?}");
    }
    assert!(failover.iter().any(|l| l.contains("from the crash")), "{failover:#?}");
    assert!(!failover.iter().any(|l| l.contains("timeline, host A:")), "A had no failover of its own");
}

#[test]
fn demo_call_is_reproducible_on_the_virtual_clock() {
    let a = call_lines(&run(Stage::Running));
    let b = call_lines(&run(Stage::Running));
    assert_eq!(a, b);
}

/// `--pri`: an E1 span comes up, becomes the timing master, its D-channel's Q.921 link is
/// established, and an unplugged far end is a RED alarm that clears.
#[test]
fn demo_pri_brings_the_d_channel_up() {
    let lines = run_with(demo::Options { pri: true, ..demo::Options::new(Stage::Running, true) });
    let pri: Vec<&String> = lines.iter().skip_while(|l| !l.starts_with("== PRI")).collect();
    for w in [
        "(DigitalE1), channels 15-45, D-channel 30",
        "E1 layer 1 up and timing master: PASS",
        "D-channel Q.921 link established: PASS",
        "I-frame acknowledged: PASS",
        "LOS is a RED alarm: PASS",
        "the alarm clears: PASS",
    ] {
        assert!(pri.iter().any(|l| l.contains(w)), "{w:?} in {pri:#?}");
    }
}
