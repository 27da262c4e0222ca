//! The `twinstar` example against an emulated TwinStar Astribank: the dahdi-tools output of
//! `status` and `ports`, `--json`, the watchdog verbs, a jump (and its refusal when the other
//! port has no power), usage errors that send nothing.

#[path = "../examples/twinstar.rs"]
#[allow(dead_code)]
mod twinstar;

use xpp::emu::config::Stage;
use xpp::emu::{DeviceConfig, Emulator};
use xpp::proto::Duration;

fn device() -> Emulator {
    Emulator::with_mode(
        DeviceConfig::default().with_twinstar(true).with_start_stage(Stage::Running),
        xpp::emu::ClockMode::AutoAdvance,
    )
}

/// Runs the tool on `emu`: (exit status, stdout, stderr).
fn run(emu: &Emulator, argv: &[&str]) -> (u8, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = twinstar::run(argv, &mut out, &mut err, Some(emu));
    (code, String::from_utf8(out).unwrap(), String::from_utf8(err).unwrap())
}

#[test]
fn status_prints_the_dahdi_tools_table() {
    let emu = device();
    let (code, out, err) = run(&emu, &["--emulator", "status"]);
    assert_eq!((code, err.as_str()), (0, ""));
    let want = "DEVICE          PORT       WATCHDOG        POWER0     POWER1    \n\
                emulator:0      0          off             yes        yes       \n";
    assert_eq!(out, want);
    let (code, out, _) = run(&emu, &["--emulator", "ports"]);
    assert_eq!((code, out.as_str()), (0, "0\n"));
    let (code, out, _) = run(&emu, &["--emulator", "--json", "status"]);
    assert_eq!(code, 0);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let devices = doc["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 1, "{out}");
    let v = &devices[0];
    assert_eq!(v["device"], "emulator:0");
    assert_eq!(v["port"], 0);
    assert_eq!(v["watchdog"], "off");
    assert_eq!((v["power0"].as_bool(), v["power1"].as_bool()), (Some(true), Some(true)));
}

#[test]
fn watchdog_verbs_arm_and_disarm() {
    let emu = device();
    assert_eq!(run(&emu, &["--emulator", "enable-wd"]).0, 0);
    let (_, out, _) = run(&emu, &["--emulator", "status"]);
    assert!(out.lines().nth(1).unwrap().contains(" on "), "{out}");
    assert_eq!(run(&emu, &["--emulator", "disable-wd"]).0, 0);
    let (_, out, _) = run(&emu, &["--emulator", "status"]);
    assert!(out.lines().nth(1).unwrap().contains(" off "), "{out}");
}

#[test]
fn jump_moves_the_device_and_refuses_an_unpowered_port() {
    let emu = device();
    // No power on USB-1: refused, nothing sent, the device stays.
    emu.with_device(|d| {
        let now = d.now();
        d.set_power(now, 1, false);
    });
    let (code, _, err) = run(&emu, &["--emulator", "jump"]);
    assert_eq!(code, 1);
    assert!(err.contains("no power on USB-1"), "{err}");
    assert_eq!(emu.with_device(|d| d.active_port()), 0);
    // Powered: the device jumps to port 1 and shows up there after the jump delay.
    emu.with_device(|d| {
        let now = d.now();
        d.set_power(now, 1, true);
    });
    let (code, _, err) = run(&emu, &["--emulator", "jump"]);
    assert_eq!((code, err.as_str()), (0, ""));
    assert!(emu.run_until(Duration::from_secs(2), |d| d.active_port() == 1));
    emu.advance(Duration::from_secs(1));
    let (code, out, _) = run(&emu, &["--emulator", "ports"]);
    assert_eq!((code, out.as_str()), (0, "1\n"));
}

#[test]
fn bad_arguments_are_usage_errors() {
    let emu = device();
    let (code, out, err) = run(&emu, &["--emulator", "explode"]);
    assert_eq!((code, out.as_str()), (2, ""));
    assert!(err.contains("unknown verb"), "{err}");
    assert_eq!(run(&emu, &["--emulator", "--usbip", "127.0.0.1:1", "status"]).0, 2);
    let (code, _, err) = run(&emu, &["status", "not a device"]);
    assert_eq!(code, 2);
    assert!(err.contains("not a device"), "{err}");
}

#[test]
fn status_over_usbip_lists_every_exported_astribank() {
    let cfg = DeviceConfig::default().with_twinstar(true).with_start_stage(Stage::Running);
    let (emu, _runner) = Emulator::real_time(cfg);
    let server = xpp::emu::usbip_server::UsbIpServer::bind_loopback(emu.clone(), 0).unwrap();
    let addr = server.local_addr().to_string();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = twinstar::run(&["--usbip", &addr, "status"], &mut out, &mut err, None);
    let (out, err) = (String::from_utf8(out).unwrap(), String::from_utf8(err).unwrap());
    assert_eq!((code, err.as_str()), (0, ""));
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("DEVICE          PORT       WATCHDOG"), "{out}");
    assert_eq!(lines.len(), 2, "one device (port 1 shows nothing while port 0 is active): {out}");
    assert!(lines[1].starts_with(&format!("usbip:{addr}/1-1 ")), "{out}");
    server.shutdown();
}

#[test]
fn socket_verbs_reach_a_running_driver() {
    use std::sync::Arc;
    use xpp::driver::tws::Role;
    use xpp::driver::{ControlSocket, Driver, DriverOptions, TwinStarHost, TwinStarOptions};

    let cfg = DeviceConfig::default().with_twinstar(true).with_start_stage(Stage::Running);
    let (emu, _runner) = Emulator::real_time(cfg);
    let server = xpp::emu::usbip_server::UsbIpServer::bind_loopback(emu.clone(), 0).unwrap();
    let target = format!("usbip:{}/1-1", server.local_addr()).parse().unwrap();
    let fw = xpp::read_firmware_dir(&xpp::bringup::find_firmware_dir().unwrap()).unwrap();
    let drv = Arc::new(Driver::new(xpp::SystemClock::new(), DriverOptions::default()));
    let host = Arc::new(
        TwinStarHost::start(drv.clone(), vec![target], Role::Master, || true, TwinStarOptions::new(fw))
            .unwrap(),
    );
    let path = std::env::temp_dir().join(format!("xpp-cli-{}.sock", std::process::id()));
    let socket = ControlSocket::bind(&path, host.clone()).unwrap();
    let p = path.to_str().unwrap();
    let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let status = loop {
        let (code, out, _) = run(&emu, &["--socket", p, "status"]);
        assert_eq!(code, 0);
        let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        if v["role"] == "master" || std::time::Instant::now() > end {
            break v;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(status["role"], "master", "{status}");
    let (code, out, _) = run(&emu, &["--socket", p, "disable-wd"]);
    assert_eq!((code, out.trim()), (0, r#"{"ok":true}"#));
    let (code, _, err) = run(&emu, &["--socket", p, "ports"]);
    assert_eq!(code, 2, "{err}");
    socket.shutdown();
    let (code, _, _) = run(&emu, &["--socket", p, "status"]);
    assert_eq!(code, 1, "no driver there any more");
    Arc::try_unwrap(host).unwrap().stop(std::time::Duration::from_secs(5));
    Arc::try_unwrap(drv).unwrap().close();
    server.shutdown();
}
