//! The driver over USB/IP (loopback only): a real-time emulated device (FXS + FXO, running
//! stage) served by the emulator's USB/IP server, opened with `UsbIpTransport`; a phone off
//! hook reaches the PBX as RINGOFFHOOK, and the driver closes cleanly. Every wait is bounded.

use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration as StdDuration, Instant as StdInstant};

use xpp_bringup::{BringUpConfig, RunOptions, read_firmware_dir};
use xpp_driver::{Driver, DriverEvent, DriverOptions, ErrorCode, Target};
use xpp_emu::config::Stage as EmuStage;
use xpp_emu::usbip_server::{UsbIpServer, busid};
use xpp_emu::{DeviceConfig, Emulator};
use xpp_span::Event;
use xpp_usb::SystemClock;
use xpp_usb::UsbIpTransport;

const FXS1: u32 = 1;
const WAIT: StdDuration = StdDuration::from_secs(10);

/// Runs `f` on its own thread; fails the test if it does not finish within `secs`.
fn within<R: Send + 'static>(secs: u64, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = mpsc::channel();
    let h = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(StdDuration::from_secs(secs)) {
        Ok(r) => r,
        Err(mpsc::RecvTimeoutError::Disconnected) => match h.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("sent nothing without panicking"),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("test timed out (hang)"),
    }
}

/// Receives events until `pred` matches one (bounded by [`WAIT`]); every event seen.
fn until(rx: &xpp_driver::Receiver<DriverEvent>, pred: impl Fn(&DriverEvent) -> bool) -> Vec<DriverEvent> {
    let end = StdInstant::now() + WAIT;
    let mut seen = Vec::new();
    loop {
        let left = end.saturating_duration_since(StdInstant::now());
        let e =
            rx.recv_timeout(left).unwrap_or_else(|_| panic!("event not seen within {WAIT:?}; got {seen:#?}"));
        let hit = pred(&e);
        seen.push(e);
        if hit {
            return seen;
        }
    }
}

#[test]
fn off_hook_over_usbip_reaches_the_pbx() {
    within(60, || {
        let cfg = DeviceConfig::default().with_start_stage(EmuStage::Running);
        let (emu, _runner) = Emulator::real_time(cfg);
        let server = UsbIpServer::bind_loopback(emu.clone(), 0).expect("bind 127.0.0.1:0");
        let addr = server.local_addr();
        assert!(addr.ip().is_loopback());
        let fw_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/firmware");
        let fw = read_firmware_dir(&fw_dir).expect("testdata/firmware");
        let drv = Driver::new(SystemClock::new(), DriverOptions::default());
        let rx = drv.events();
        let id = drv
            .open(
                move || UsbIpTransport::connect(addr, &busid(0)).ok(),
                BringUpConfig::default(),
                fw,
                RunOptions::default(),
            )
            .unwrap_or_else(|e| panic!("bring-up over USB/IP: {e}"));
        until(&rx, |e| matches!(e, DriverEvent::DeviceReady { .. }));
        let t0 = drv.wait_tick(id, WAIT).unwrap();
        // Phone 1 off hook on the emulator: RINGOFFHOOK on channel 1 at the PBX.
        emu.with_device(|d| {
            let now = d.now();
            d.data_mut().phone_mut(0, 0).expect("phone").off_hook(now);
        });
        until(&rx, |e| matches!(e, DriverEvent::Chan { channo: FXS1, event: Event::RINGOFFHOOK, .. }));
        assert!(drv.wait_tick(id, WAIT).unwrap() > t0, "the device keeps ticking");
        // Orderly close: DeviceClosed, the run loop joined, nothing hangs.
        drv.close_device(id).unwrap();
        until(&rx, |e| matches!(e, DriverEvent::DeviceClosed { .. }));
        assert!(!drv.is_running(id).unwrap());
        drv.close();
        server.shutdown();
    });
}

/// The non-generic open: a cold device (USB firmware stage 0) named by its text target
/// `usbip:ADDR/BUSID` is brought up through both of its renumerations (the opener finds it
/// again each time) and attached; a target that cannot be opened fails at once with `Open`.
#[test]
fn open_target_brings_a_cold_device_up_over_usbip() {
    within(120, || {
        let cfg = DeviceConfig::default().with_start_stage(EmuStage::Cold);
        let (emu, _runner) = Emulator::real_time(cfg);
        let server = UsbIpServer::bind_loopback(emu.clone(), 0).expect("bind 127.0.0.1:0");
        let target: Target = format!("usbip:{}/{}", server.local_addr(), busid(0)).parse().unwrap();
        let fw_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/firmware");
        let fw = read_firmware_dir(&fw_dir).expect("testdata/firmware");
        let drv = Driver::new(SystemClock::new(), DriverOptions::default());
        let rx = drv.events();

        let nobody: Target = format!("usbip:{}/9-9", server.local_addr()).parse().unwrap();
        let err = drv
            .open_target(&nobody, BringUpConfig::default(), fw.clone(), RunOptions::default())
            .expect_err("no device 9-9 on the server");
        assert_eq!(err.code(), ErrorCode::Open, "{err}");

        let id = drv
            .open_target(&target, BringUpConfig::default(), fw, RunOptions::default())
            .unwrap_or_else(|e| panic!("bring-up of {target}: {e}"));
        until(&rx, |e| matches!(e, DriverEvent::DeviceReady { .. }));
        assert!(emu.with_device(|d| d.counters().renumerations) >= 2, "cold -> USB firmware -> running");
        let t0 = drv.wait_tick(id, WAIT).unwrap();
        assert!(drv.wait_tick(id, WAIT).unwrap() > t0, "the device ticks");
        drv.close();
        server.shutdown();
    });
}
