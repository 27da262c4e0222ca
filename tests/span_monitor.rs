//! The `span-monitor` example on emulated Astribanks: hook state, ringing and audio level of
//! each channel of the watched span, `--count`, one JSON document, usage errors.

#[path = "../examples/span-monitor.rs"]
#[allow(dead_code)]
mod span_monitor;

use xpp::emu::config::Stage;
use xpp::emu::{ClockMode, DeviceConfig, Emulator};

fn device() -> Emulator {
    Emulator::with_mode(DeviceConfig::default().with_start_stage(Stage::Running), ClockMode::AutoAdvance)
}

/// Runs the tool on `emu`: (exit status, stdout, stderr).
fn run(emu: &Emulator, argv: &[&str]) -> (u8, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = span_monitor::run(argv, &mut out, &mut err, Some(emu));
    (code, String::from_utf8(out).unwrap(), String::from_utf8(err).unwrap())
}

#[test]
fn an_off_hook_phone_with_audio_and_an_idle_one() {
    let emu = device();
    emu.with_device(|d| {
        let now = d.now();
        let phone = d.data_mut().phone_mut(0, 0).unwrap();
        phone.off_hook(now);
        phone.play(xpp::emu::data::g711::Source::tone_1k());
    });
    let (code, out, err) = run(&emu, &["--emulator", "--count", "2", "--interval", "0.3", "--json"]);
    assert_eq!(code, 0, "{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).expect("one JSON document");
    assert_eq!(doc["span"]["spanno"], 1);
    let refreshes = doc["refreshes"].as_array().unwrap();
    assert_eq!(refreshes.len(), 2);
    let last = &refreshes[1]["channels"];
    assert_eq!(last.as_array().unwrap().len(), 14);
    assert_eq!(last[0]["hook"], "offhook", "{doc}");
    assert!(last[0]["peak_dbfs"].as_f64().expect("audio on channel 1") > -30.0, "{doc}");
    assert_eq!(last[1]["hook"], "onhook", "{doc}");
    assert!(last[1]["peak_dbfs"].is_null(), "channel 2 is silent: {doc}");
    assert_eq!(last[0]["ringing"], false);
}

#[test]
fn a_ringing_pstn_line_shows_on_the_fxo_span() {
    let emu = device();
    // The exchange rings line 1 once the monitor is up (bring-up takes well under a second of
    // wall time on the virtual clock).
    let e2 = emu.clone();
    let ringer = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(300));
        e2.with_device(|d| {
            let now = d.now();
            d.data_mut().pstn_mut(1, 0).unwrap().ring(now);
        });
    });
    let (code, out, err) = run(&emu, &["--emulator", "2", "--count", "3", "--interval", "0.5"]);
    ringer.join().unwrap();
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("span 2 XBUS-00/XPD-10 (FXO) alarms OK, refresh 1"), "{out}");
    assert_eq!(lines[1], "chan  hook     ring     level");
    assert_eq!(lines.iter().filter(|l| l.starts_with("span 2 ")).count(), 3, "{out}");
    // Line 1 rang in some refresh (where depends on how fast the virtual clock runs), line 2
    // never did.
    assert!(lines.iter().any(|l| l.starts_with("  15  ") && l.contains(" ringing ")), "{out}");
    assert!(lines.iter().filter(|l| l.starts_with("  16  ")).all(|l| !l.contains("ringing")), "{out}");
}

#[test]
fn bad_arguments_exit_2() {
    let emu = device();
    for argv in [
        &["--emulator", "--json"][..],
        &["--emulator", "--interval", "0", "--count", "1"],
        &["--emulator", "-D", "1-1"],
        &["--emulator", "nine"],
    ] {
        let (code, out, err) = run(&emu, argv);
        assert_eq!((code, out.as_str()), (2, ""), "{argv:?}: {err}");
    }
    assert_eq!(emu.with_device(|d| d.counters().mpp_requests), 0, "nothing sent");
    // A span the device does not have: 2, after bring-up.
    let (code, out, err) = run(&emu, &["--emulator", "9", "--count", "1"]);
    assert_eq!((code, out.as_str()), (2, ""), "{err}");
    assert!(err.contains("no span 9 (spans: 1, 2)"), "{err}");
}
