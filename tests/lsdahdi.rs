//! The `lsdahdi` example on emulated Astribanks brought up by the xpp driver: the span and
//! channel listing for analog and digital modules, system.conf applied first, `--json`, and
//! usage errors.

#[path = "../examples/lsdahdi.rs"]
#[allow(dead_code)]
mod lsdahdi;

use xpp::emu::config::{ModuleConfig, Stage};
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
    let code = lsdahdi::run(argv, &mut out, &mut err, Some(emu));
    (code, String::from_utf8(out).unwrap(), String::from_utf8(err).unwrap())
}

#[test]
fn analog_spans_and_channels() {
    let emu = device([Some(ModuleConfig::FXS), Some(ModuleConfig::FXO), None, None]);
    // The phone on FXS port 1 is off hook when the driver comes up.
    emu.with_device(|d| {
        let now = d.now();
        d.data_mut().phone_mut(0, 0).unwrap().off_hook(now);
    });
    let (code, out, err) = run(&emu, &["--emulator"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    // 14 FXS channels (8 ports, 6 digital I/O) and 8 FXO channels, under two span headers.
    assert_eq!(lines.len(), 2 + 14 + 8, "{out}");
    assert!(lines[0].starts_with("### Span  1: XBUS-00/XPD-00 \""), "{out}");
    assert!(lines[0].ends_with("\" OK"), "{out}");
    assert_eq!(lines[1], "  1 FXS    FXOKS      offhook", "{out}");
    assert_eq!(lines[2], "  2 FXS    FXOKS      onhook", "{out}");
    assert!(lines.iter().any(|l| l.starts_with(" 10 Output ")), "{out}");
    assert!(lines.iter().any(|l| l.starts_with(" 14 Input  ")), "{out}");
    assert!(lines[15].starts_with("### Span  2: XBUS-00/XPD-10 \""), "{out}");
    // An FXO line with battery reports off hook (DAHDI's FXO rxsig).
    assert_eq!(lines[16], " 15 FXO    FXSKS      offhook", "{out}");
    for l in lines.iter().filter(|l| !l.starts_with("###")) {
        let hook = l.rsplit(' ').next().unwrap();
        assert!(["onhook", "offhook", "ring", "start", "-"].contains(&hook), "{l}");
    }
}

#[test]
fn digital_spans_are_listed_with_their_channels() {
    let emu = device([Some(ModuleConfig::PRI_E1), Some(ModuleConfig::BRI), None, None]);
    let (code, out, err) = run(&emu, &["--emulator", "--json"]);
    assert_eq!(code, 0, "{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).expect("one JSON document");
    let spans = doc["spans"].as_array().unwrap();
    assert_eq!(spans.len(), 5, "one E1 span and 4 BRI spans: {doc}");
    assert_eq!(spans[0]["type"], "E1");
    assert_eq!(spans[0]["line"], "HDB3/CCS/CRC4");
    assert_eq!(spans[0]["lbo"], 0);
    assert_eq!(spans[0]["lbo_name"], "0 db (CSU)/0-133 feet (DSX-1)");
    assert_eq!(spans[0]["timing_priority"], 1);
    assert!(spans[1].get("line").is_none(), "a BRI span has no PRI line configuration");
    let (code, out, err) = run(&emu, &["--emulator"]);
    assert_eq!(code, 0, "{err}");
    let header = out.lines().next().unwrap();
    assert!(header.starts_with("### Span  1: XBUS-00/XPD-00 \""), "{out}");
    assert!(header.ends_with("\" HDB3/CCS/CRC4 OK") || header.contains("\" HDB3/CCS/CRC4 RED"), "{out}");
    assert_eq!(spans[0]["channels"].as_array().unwrap().len(), 31);
    assert_eq!(spans[0]["channels"][0]["type"], "PRI");
    assert_eq!(spans[1]["channels"].as_array().unwrap().len(), 3);
    assert_eq!(spans[1]["channels"][0]["type"], "BRI");
}

#[test]
fn system_conf_is_applied_before_listing() {
    let dir = std::env::temp_dir().join(format!("xpp-lsdahdi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("system.conf");
    std::fs::write(&good, "fxols=1-2\n").unwrap();
    let emu = device([Some(ModuleConfig::FXS), None, None, None]);
    let (code, out, err) = run(&emu, &["--emulator", "--system-conf", good.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.lines().nth(1).unwrap().starts_with("  1 FXS    FXOLS "), "{out}");
    assert!(out.lines().nth(3).unwrap().starts_with("  3 FXS    FXOKS "), "{out}");
    let bad = dir.join("bad.conf");
    std::fs::write(&bad, "fxsks=1\n").unwrap();
    let emu = device([Some(ModuleConfig::FXS), None, None, None]);
    let (code, out, err) = run(&emu, &["--emulator", "--system-conf", bad.to_str().unwrap()]);
    assert_eq!((code, out.as_str()), (1, ""), "an FXS port has no FXS signalling: {err}");
    assert!(err.contains("bad.conf"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_arguments_exit_2() {
    let emu = device([Some(ModuleConfig::FXS), None, None, None]);
    for argv in [&["--emulator", "-D", "1-1"][..], &["--bogus"], &["-D", "not a device"]] {
        let (code, out, err) = run(&emu, argv);
        assert_eq!((code, out.as_str()), (2, ""), "{argv:?}: {err}");
    }
    assert_eq!(emu.with_device(|d| d.counters().mpp_requests), 0, "nothing sent");
}
