//! The driver over USB/IP (loopback only): a real-time emulated device (FXS + FXO, running
//! stage) served by the emulator's USB/IP server, opened with `UsbIpTransport`; a phone off
//! hook reaches the PBX as RINGOFFHOOK, and the driver closes cleanly. Every wait is bounded.

use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant as StdInstant};

use xpp_bringup::{BringUpConfig, RunOptions};
use xpp_driver::{Driver, DriverEvent, DriverOptions, ErrorCode, Supervisor, SupervisorOptions, Target};
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

/// The supervisor outlives its device: unplugged (the run loop ends), it is looked for again
/// and, plugged back (power-cycled: a cold device), brought up from its USB firmware and
/// attached with its old span and channel numbers; closed through the driver, it is not
/// reopened.
#[test]
fn supervisor_reattaches_a_device_that_comes_back() {
    within(120, || {
        let (emu, _runner, server) = serve(EmuStage::Running);
        let target: Target = format!("usbip:{}/{}", server.local_addr(), busid(0)).parse().unwrap();
        let drv = Arc::new(Driver::new(SystemClock::new(), DriverOptions::default()));
        let rx = drv.events();
        let options = SupervisorOptions::default().with_retry_interval(StdDuration::from_millis(20));
        let sup = Supervisor::start(
            drv.clone(),
            target,
            BringUpConfig::default(),
            firmware(),
            RunOptions::default(),
            options,
        )
        .unwrap();
        let ready = |seen: &[DriverEvent]| match seen.last() {
            Some(DriverEvent::DeviceReady { device, spans, channels }) => {
                (*device, spans.clone(), channels.clone())
            }
            other => panic!("{other:?}"),
        };
        let (first, spans, channels) = ready(&until(&rx, |e| matches!(e, DriverEvent::DeviceReady { .. })));
        assert_eq!(sup.status().device, Some(first));

        emu.with_device(|d| {
            let now = d.now();
            d.unplug(now, 0);
        });
        until(&rx, |e| matches!(e, DriverEvent::DeviceRemoved { device } if *device == first));
        emu.with_device(|d| {
            let now = d.now();
            d.plug(now, 0);
        });
        let (second, spans2, channels2) =
            ready(&until(&rx, |e| matches!(e, DriverEvent::DeviceReady { .. })));
        assert_ne!(second, first);
        assert_eq!((spans2, channels2), (spans, channels), "its old numbers again");
        let status = sup.status();
        assert_eq!((status.device, status.attachments), (Some(second), 2));
        assert!(drv.wait_tick(second, WAIT).is_ok());

        // An orderly close is not a disconnect: the supervisor lets the device go.
        drv.close_device(second).unwrap();
        let end = StdInstant::now() + WAIT;
        while sup.status().device.is_some() {
            assert!(StdInstant::now() < end, "the supervisor saw the close");
            std::thread::sleep(StdDuration::from_millis(5));
        }
        assert_eq!(sup.status().attachments, 2);
        sup.stop();
        Arc::try_unwrap(drv).expect("the supervisor released the driver").close();
        server.shutdown();
    });
}
