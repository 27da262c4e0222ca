//! The `hexload` example (dahdi-tools' `astribank_hexload`) against emulated Astribanks: FPGA
//! and PIC loads that the device accepts, the echo canceller's version, and files that do not
//! parse: a message naming the file and its line, exit status 1, and nothing sent.

#[path = "../examples/hexload.rs"]
#[allow(dead_code)]
mod hexload;

use std::path::PathBuf;

use xpp::emu::config::Stage;
use xpp::emu::{ClockMode, DeviceConfig, DeviceEvent, Emulator, FirmwareKind};

fn firmware(name: &str) -> String {
    let dir = std::env::var_os("XPP_FIRMWARE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/firmware"));
    dir.join(name).display().to_string()
}

fn device(stage: Stage) -> Emulator {
    Emulator::with_mode(DeviceConfig::default().with_start_stage(stage), ClockMode::AutoAdvance)
}

/// Runs the tool on `emu`: (exit status, stdout, stderr).
fn run(emu: &Emulator, argv: &[&str]) -> (u8, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = hexload::run(argv, &mut out, &mut err, Some(emu));
    (code, String::from_utf8(out).unwrap(), String::from_utf8(err).unwrap())
}

/// Everything the device logged that a host's traffic causes, and its request counters.
fn untouched(emu: &Emulator) -> bool {
    emu.with_device(|d| {
        let events: Vec<DeviceEvent> = std::iter::from_fn(|| d.poll_event()).collect();
        let quiet = events.iter().all(|e| matches!(e, DeviceEvent::Attached { .. }));
        quiet && d.counters().mpp_requests == 0 && d.counters().out_discarded == 0 && !d.fpga_loaded()
    })
}

fn temp_file(name: &str, text: &str) -> (PathBuf, String) {
    let dir = std::env::temp_dir().join(format!("xpp-hexload-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    let s = path.display().to_string();
    (dir, s)
}

#[test]
fn fpga_image_loads_and_the_device_takes_it() {
    let emu = device(Stage::UsbLoaded);
    let fw = firmware("FPGA_1161.hex");
    let (code, out, err) = run(&emu, &["--emulator", "-F", &fw]);
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert!(
        lines[0].starts_with("INFO: emulator:0: [E4E4:1161] [Xorcom LTD / Astribank / 00000001]"),
        "{err}"
    );
    assert_eq!(lines[1], format!("INFO: emulator:0 [00000001]: Loading FPGA Firmware: {fw} (version 9732)"));
    assert!(emu.with_device(|d| d.fpga_loaded()));
    let loaded = emu.with_device(|d| {
        std::iter::from_fn(|| d.poll_event())
            .any(|e| matches!(e, DeviceEvent::FirmwareLoaded { kind: FirmwareKind::Fpga, .. }))
    });
    assert!(loaded);
}

#[test]
fn pic_images_load_and_json_is_one_document() {
    let cfg = DeviceConfig::default().with_start_stage(Stage::FpgaLoaded).with_pic_burned(0, false);
    let emu = Emulator::with_mode(cfg, ClockMode::AutoAdvance);
    assert!(!emu.with_device(|d| d.pic_burned(0)));
    let (p1, p2) = (firmware("PIC_TYPE_1.hex"), firmware("PIC_TYPE_2.hex"));
    let (code, out, err) = run(&emu, &["--emulator", "--json", "-p", &p1, &p2]);
    assert_eq!(code, 0, "{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).expect("one JSON document");
    assert_eq!(doc["device"], "emulator:0");
    assert!(doc.get("error").is_none(), "{doc}");
    assert_eq!(doc["loads"][0]["kind"], "pic");
    assert!(doc["loads"][2]["sent"].as_u64().unwrap() > 2, "{doc}");
    assert!(emu.with_device(|d| d.pic_burned(0)), "the FXS module's PIC was burned");
}

#[test]
fn octasic_version_alone() {
    let cfg = DeviceConfig::default().with_start_stage(Stage::FpgaLoaded).with_echo(true);
    let emu = Emulator::with_mode(cfg, ClockMode::AutoAdvance);
    let (code, _, err) = run(&emu, &["--emulator", "-o"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.lines().any(|l| l.starts_with("INFO: Octasic version: 0x")), "{err}");
}

#[test]
fn a_bad_file_names_its_line_and_nothing_is_sent() {
    // Line 3's checksum is wrong (0x00 instead of 0xFA).
    let text = "# $Id: FPGA_1161.hex 9732 2011-08-24 19:13:55Z dima $\n\
                :020000040000FA\n\
                :0300000001020300\n\
                :00000001FF\n";
    let (dir, path) = temp_file("FPGA_bad.hex", text);
    for flag in ["-F", "-E", "-p"] {
        let emu = device(Stage::UsbLoaded);
        let (code, out, err) = run(&emu, &["--emulator", flag, &path]);
        assert_eq!((code, out.as_str()), (1, ""), "{flag}: {err}");
        assert!(err.starts_with(&format!("hexload: {path}: line 3: bad checksum")), "{flag}: {err}");
        assert!(!err.contains("INFO"), "{flag}: the device was not even opened: {err}");
        assert!(untouched(&emu), "{flag}: the emulator received nothing");
    }
    // A PIC file whose name does not say its card type, a file that is not there.
    let (dir2, pic) = temp_file("PIC.hex", ":03000000010203F7\n:00000001FF\n");
    let emu = device(Stage::UsbLoaded);
    let (code, _, err) = run(&emu, &["--emulator", "-p", &pic]);
    assert_eq!(code, 1);
    assert!(err.contains("PIC_TYPE_"), "{err}");
    let (code, _, err) = run(&emu, &["--emulator", "-F", "/nonexistent/FPGA.hex"]);
    assert_eq!(code, 1);
    assert!(err.starts_with("hexload: /nonexistent/FPGA.hex: "), "{err}");
    assert!(untouched(&emu));
    // --json: still one document, with the error.
    let (code, out, _) = run(&emu, &["--emulator", "--json", "-F", &path]);
    assert_eq!(code, 1);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(doc["error"].as_str().unwrap().contains("line 3"), "{doc}");
    std::fs::remove_dir_all(dir).unwrap();
    std::fs::remove_dir_all(dir2).unwrap();
}

#[test]
fn bad_arguments_exit_2_and_send_nothing() {
    let fw = firmware("FPGA_1161.hex");
    for argv in [
        &["--emulator"][..],
        &["--emulator", "-F", &fw, "-E", &fw],
        &["--emulator", "-F", &fw, "-p", &fw],
        &["--emulator", "-D", "1-1", "-F", &fw],
        &["--emulator", "--stage", "warm", "-F", &fw],
    ] {
        let emu = device(Stage::UsbLoaded);
        let (code, out, err) = run(&emu, argv);
        assert_eq!((code, out.as_str()), (2, ""), "{argv:?}: {err}");
        assert!(untouched(&emu), "{argv:?}");
    }
}
