//! The driver over USB/IP (loopback only): a real-time emulated device (FXS + FXO, running
//! stage) served by the emulator's USB/IP server, opened with `UsbIpTransport`; a phone off
//! hook reaches the PBX as RINGOFFHOOK, and the driver closes cleanly. Every wait is bounded.

use xpp_bringup::{BringUpConfig, RunOptions};
use xpp_driver::{Driver, DriverEvent, DriverOptions, ErrorCode, Target};
use xpp_emu::config::Stage as EmuStage;
use xpp_emu::usbip_server::{UsbIpServer, busid};
use xpp_emu::{DeviceConfig, Emulator};
use xpp_span::Event;
use xpp_usb::SystemClock;
use xpp_usb::UsbIpTransport;

mod common;
use common::{WAIT, firmware, until, within};

const FXS1: u32 = 1;

/// A real-time emulated FXS + FXO device powered on in `stage`, served over USB/IP on
/// loopback.
fn serve(stage: EmuStage) -> (Emulator, xpp_emu::RealTimeRunner, UsbIpServer) {
    let (emu, runner) = Emulator::real_time(DeviceConfig::default().with_start_stage(stage));
    let server = UsbIpServer::bind_loopback(emu.clone(), 0).expect("bind 127.0.0.1:0");
    assert!(server.local_addr().ip().is_loopback());
    (emu, runner, server)
}

#[test]
fn off_hook_over_usbip_reaches_the_pbx() {
    within(60, || {
        let (emu, _runner, server) = serve(EmuStage::Running);
        let addr = server.local_addr();
        let fw = firmware();
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
        let (emu, _runner, server) = serve(EmuStage::Cold);
        let target: Target = format!("usbip:{}/{}", server.local_addr(), busid(0)).parse().unwrap();
        let fw = firmware();
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
