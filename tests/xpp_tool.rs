//! The `xpp-tool` example (dahdi-tools' `astribank_tool`) against emulated Astribanks: the
//! `-Q` text of docs/reference/mpp-twinstar-firmware.md §7.1 line by line for each module kind
//! and with and without TwinStar, the device line, `--json`, the actions (`-n`, `-r`, `-w`,
//! `-p`) and their exit codes, and usage errors that send nothing.

#[path = "../examples/xpp-tool.rs"]
#[allow(dead_code)]
mod xpp_tool;

use xpp::emu::config::{ModuleConfig, Stage};
use xpp::emu::{ClockMode, DeviceConfig, Emulator};

fn device(slots: [Option<ModuleConfig>; 4], twinstar: bool) -> Emulator {
    Emulator::with_mode(
        DeviceConfig::default().with_slots(slots).with_twinstar(twinstar).with_start_stage(Stage::Running),
        ClockMode::AutoAdvance,
    )
}

/// Runs the tool on `emu`: (exit status, stdout, stderr).
fn run(emu: &Emulator, argv: &[&str]) -> (u8, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = xpp_tool::run(argv, &mut out, &mut err, Some(emu));
    (code, String::from_utf8(out).unwrap(), String::from_utf8(err).unwrap())
}

/// The §7.1 `-Q` lines of a running emulated device (label 00000001, release 1.1, FPGA
/// loaded) with `fxs`/`fxo`/`bri`/`pri` licensed ports and these CARD lines.
fn expected(ports: [u8; 4], cards: [&str; 5], twinstar: bool) -> String {
    let [fxs, fxo, bri, pri] = ports;
    let mut s = format!(
        "EEPROM: Source         : 0xC0\n\
         EEPROM: Vendor         : 0xE4E4\n\
         EEPROM: Product        : 0x1160\n\
         EEPROM: Release        : 1.1\n\
         EEPROM: Config         : 0x00\n\
         EEPROM: Label          : '00000001'\n\
         Astribank: EEPROM      : LARGE\n\
         Astribank: FPGA status : Loaded\n\
         Astribank: FPGA version: {FPGA_VERSION}\n\
         Capabilities: FXS ports: {fxs:2}\n\
         Capabilities: FXO ports: {fxo:2}\n\
         Capabilities: BRI ports: {bri:2}\n\
         Capabilities: PRI ports: {pri:2}\n\
         Capabilities: ECHO ports:  0\n\
         Capabilities: TwinStar : {}\n",
        if twinstar { "Yes" } else { "No" }
    );
    for (unit, card) in cards.iter().enumerate() {
        s += &format!("CARD {unit}: {card}\n");
    }
    s += "FPGA: Configuration num: 3\n\
          FPGA: Watchdog Timer   : ready\n\
          FPGA: XPD Alive        : no\n\
          Extrainfo:             : ''\n";
    if twinstar {
        s += "TwinStar: Connected to : USB-0\n\
              TwinStar: Watchdog     : off-guard\n\
              TwinStar: USB-0 POWER  : ON\n\
              TwinStar: USB-1 POWER  : ON\n";
    }
    s
}

const FPGA_VERSION: &str = "9732";
/// Slots, licensed ports (FXS, FXO, BRI, PRI), CARD lines of units 0..4.
type Case = ([Option<ModuleConfig>; 4], [u8; 4], [&'static str; 5]);

const NONE: &str = "type=7.0 NOPIC";

#[test]
fn query_prints_the_astribank_tool_lines_for_every_module_kind() {
    use ModuleConfig as M;
    let cases: [Case; 5] = [
        ([Some(M::FXS), None, None, None], [8, 0, 0, 0], ["type=1.0 PIC", NONE, NONE, NONE, NONE]),
        ([Some(M::FXO), None, None, None], [0, 8, 0, 0], ["type=2.0 PIC", NONE, NONE, NONE, NONE]),
        ([Some(M::BRI), None, None, None], [0, 0, 4, 0], ["type=3.0 PIC", NONE, NONE, NONE, NONE]),
        ([Some(M::PRI_E1), None, None, None], [0, 0, 0, 1], ["type=4.0 PIC", NONE, NONE, NONE, NONE]),
        (
            [Some(M::PRI_E1), Some(M::FXS), Some(M::FXO), Some(M::BRI)],
            [8, 8, 4, 1],
            ["type=4.0 PIC", "type=1.0 PIC", "type=2.0 PIC", "type=3.0 PIC", NONE],
        ),
    ];
    for twinstar in [false, true] {
        for (slots, ports, cards) in cases {
            let emu = device(slots, twinstar);
            let (code, out, err) = run(&emu, &["--emulator", "-Q"]);
            assert_eq!(code, 0, "{err}");
            let want = expected(ports, cards, twinstar);
            for (n, (got, want)) in out.lines().zip(want.lines()).enumerate() {
                assert_eq!(got, want, "line {} of -Q, {slots:?} twinstar {twinstar}", n + 1);
            }
            assert_eq!(out.lines().count(), want.lines().count(), "{out}");
            // The device line goes to stderr at the default verbosity.
            assert_eq!(err, "INFO: emulator:0: [E4E4:1162] [Xorcom LTD / Astribank / 00000001]\n");
        }
    }
}

#[test]
fn verbose_puts_the_usb_lines_on_stdout_and_json_is_one_document() {
    let emu = device([Some(ModuleConfig::FXS), None, None, None], true);
    let (code, out, err) = run(&emu, &["--emulator", "-v", "-Q"]);
    assert_eq!((code, err.as_str()), (0, ""));
    let head: Vec<&str> = out.lines().take(6).collect();
    assert_eq!(
        head,
        [
            "USB    Bus/Device:    [emulator:0]",
            "USB    Firmware Type: [running]",
            "USB    iSerialNumber: [00000001]",
            "USB    iManufacturer: [Xorcom LTD]",
            "USB    iProduct:      [Astribank]",
            "EEPROM: Source         : 0xC0",
        ]
    );
    let (code, out, err) = run(&emu, &["--emulator", "--json", "-Q"]);
    assert_eq!((code, err.as_str()), (0, ""));
    let doc: serde_json::Value = serde_json::from_str(&out).expect("one JSON document");
    assert_eq!(doc["device"], "emulator:0");
    assert_eq!(doc["usb"]["product_id"], "1162");
    assert_eq!(doc["query"]["eeprom"]["label"], "00000001");
    assert_eq!(doc["query"]["capabilities"]["fxs"], 8);
    assert_eq!(doc["query"]["cards"][0]["type"], 1);
    assert_eq!(doc["query"]["twinstar"]["port"], 0);
    assert!(doc.get("error").is_none(), "{doc}");
}

#[test]
fn actions_reach_the_device() {
    let emu = device([Some(ModuleConfig::FXS), None, None, None], true);
    let (code, out, _) = run(&emu, &["--emulator", "-w", "1"]);
    assert_eq!((code, out.as_str()), (0, ""));
    assert!(emu.with_device(|d| d.watchdog_armed()));
    assert_eq!(run(&emu, &["--emulator", "-w", "0"]).0, 0);
    assert!(!emu.with_device(|d| d.watchdog_armed()));
    // -p 1: the device jumps to USB-1.
    assert_eq!(run(&emu, &["--emulator", "-p", "1"]).0, 0);
    assert!(emu.run_until(xpp::proto::Duration::from_secs(2), |d| d.active_port() == 1));
    // -n: a running device renumerates.
    let emu = device([Some(ModuleConfig::FXS), None, None, None], false);
    let before = emu.with_device(|d| d.counters().renumerations);
    assert_eq!(run(&emu, &["--emulator", "-n"]).0, 0);
    assert_eq!(emu.with_device(|d| d.counters().renumerations), before + 1);
    // -r full: nothing printed, not even the device line.
    let emu = device([Some(ModuleConfig::FXS), None, None, None], false);
    let (code, out, err) = run(&emu, &["--emulator", "-r", "FULL"]);
    assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""));
}

#[test]
fn exit_codes_follow_astribank_tool() {
    // A device that cannot be opened: 1.
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = xpp_tool::run(&["-D", "usbip:127.0.0.1:1/1-1", "-Q"], &mut out, &mut err, None);
    let err = String::from_utf8(err).unwrap();
    assert_eq!(code, 1, "{err}");
    assert!(err.starts_with("xpp-tool: usbip:127.0.0.1:1/1-1: "), "{err}");
    assert!(out.is_empty());
    // A query that fails (a cold device has no management interface): printed, but 0 (§7.1).
    let emu =
        Emulator::with_mode(DeviceConfig::default().with_start_stage(Stage::Cold), ClockMode::AutoAdvance);
    let (code, out, err) = run(&emu, &["--emulator", "-Q"]);
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
    assert!(err.lines().any(|l| l.starts_with("xpp-tool: emulator:0: ")), "{err}");
}

#[test]
fn bad_arguments_exit_2_and_send_nothing() {
    for argv in [
        &["--emulator", "-r", "sideways"][..],
        &["--emulator", "-p", "2"],
        &["--emulator", "-D", "1-1"],
        &["--emulator", "--explode"],
        &[
            "--emulator",
            "--module",
            "fxs",
            "--module",
            "fxs",
            "--module",
            "fxs",
            "--module",
            "fxs",
            "--module",
            "fxs",
        ],
        &["-D", "not a device", "-Q"],
    ] {
        let emu = device([Some(ModuleConfig::FXS), None, None, None], false);
        let (code, out, err) = run(&emu, argv);
        assert_eq!((code, out.as_str()), (2, ""), "{argv:?}: {err}");
        assert!(!err.is_empty(), "{argv:?}");
        assert_eq!(emu.with_device(|d| d.counters().mpp_requests), 0, "{argv:?}: nothing sent");
    }
    let emu = device([None; 4], false);
    let (code, out, _) = run(&emu, &["--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("-Q") && out.contains("--usbip"), "{out}");
}
