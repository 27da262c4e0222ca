//! The `blink` example on emulated Astribanks: the LEDs of FXS, FXO, PRI and BRI modules go
//! on and off as asked, a whole device or one unit or port, and usage errors send nothing.

#[path = "../examples/blink.rs"]
#[allow(dead_code)]
mod blink;

use xpp::emu::config::{ModuleConfig, Stage};
use xpp::emu::data::EventKind;
use xpp::emu::{ClockMode, DeviceConfig, Emulator};

fn device(slots: [Option<ModuleConfig>; 4]) -> Emulator {
    Emulator::with_mode(
        DeviceConfig::default().with_slots(slots).with_start_stage(Stage::Running),
        ClockMode::AutoAdvance,
    )
}

/// Runs the tool on `emu`: (exit status, stdout, stderr).
fn run(emu: &Emulator, argv: &[&str]) -> (u8, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = blink::run(argv, &mut out, &mut err, Some(emu));
    (code, String::from_utf8(out).unwrap(), String::from_utf8(err).unwrap())
}

fn fxs_green(emu: &Emulator, port: u8) -> bool {
    emu.with_device(|d| d.data().fxs_state(0, port).unwrap().green)
}

fn fxo_green(emu: &Emulator, port: u8) -> bool {
    emu.with_device(|d| d.data().fxo_state(1, port).unwrap().green)
}

#[test]
fn on_and_off_set_the_analog_leds() {
    let emu = device([Some(ModuleConfig::FXS), Some(ModuleConfig::FXO), None, None]);
    let (code, _, err) = run(&emu, &["on", "--emulator"]);
    assert_eq!(code, 0, "{err}");
    assert!((0..8).all(|p| fxs_green(&emu, p) && fxo_green(&emu, p)), "every green LED on");
    let (code, _, err) = run(&emu, &["off", "--emulator"]);
    assert_eq!(code, 0, "{err}");
    assert!((0..8).all(|p| !fxs_green(&emu, p) && !fxo_green(&emu, p)), "every green LED off");
    // One port of one unit only.
    let (code, out, err) = run(&emu, &["on", "--emulator", "--unit", "1", "--port", "3", "--json"]);
    assert_eq!(code, 0, "{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).expect("one JSON document");
    assert_eq!(doc["units"][0]["unit"], 1);
    assert_eq!(doc["packets"], 1);
    assert!(fxo_green(&emu, 3));
    assert!(!fxo_green(&emu, 2) && !fxs_green(&emu, 3));
}

#[test]
fn blink_toggles_the_digital_leds_and_leaves_them_off() {
    let emu = device([Some(ModuleConfig::PRI_E1), Some(ModuleConfig::BRI), None, None]);
    let (code, _, err) = run(&emu, &["--emulator", "--seconds", "0.1", "--period", "20"]);
    assert_eq!(code, 0, "{err}");
    let leds: Vec<(u8, u8, bool)> = emu.with_device(|d| {
        d.data()
            .events()
            .filter_map(|e| match (e.port, &e.kind) {
                (Some(p), EventKind::Led { led, on }) => Some((p.unit, *led, *on)),
                _ => None,
            })
            .collect()
    });
    // 5 toggles (on, off, on, off, on) then off: the PRI top green LED went on 3 times and off 3.
    let top_green = |unit: u8, on: bool| leds.iter().filter(|&&l| l == (unit, 3, on)).count();
    assert_eq!((top_green(0, true), top_green(0, false)), (3, 3), "{leds:?}");
    // Each of the 4 BRI ports' green LED (select 0) likewise.
    let bri_green_on = leds.iter().filter(|&&l| l == (1, 0, true)).count();
    assert_eq!(bri_green_on, 3 * 4, "{leds:?}");
    assert_eq!(emu.with_device(|d| d.data().pri_state(0, 0).unwrap().leds), [false; 4]);
}

#[test]
fn bad_arguments_exit_2_and_light_nothing() {
    let emu = device([Some(ModuleConfig::FXS), None, None, None]);
    for argv in [
        &["sparkle", "--emulator"][..],
        &["--emulator", "--port", "1"],
        &["--emulator", "--period", "0"],
        &["--emulator", "-D", "1-1"],
    ] {
        let (code, out, err) = run(&emu, argv);
        assert_eq!((code, out.as_str()), (2, ""), "{argv:?}: {err}");
    }
    assert_eq!(emu.with_device(|d| d.counters().mpp_requests), 0, "nothing sent");
    // A unit the device does not have: 2 after bring-up, and no LED touched.
    let (code, _, err) = run(&emu, &["on", "--emulator", "--unit", "2"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("unit 2: no module with LEDs"), "{err}");
    assert!((0..8).all(|p| !fxs_green(&emu, p)));
}
