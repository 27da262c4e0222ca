//! Warm standby through the driver: spans registered from a layout before the device is on
//! this host (RED alarm, configuration taken, audio and hook calls refused as EBUSY), the
//! device taken over under the same id and numbers with that configuration, its leaving
//! (back to standby: ALARM, never REMOVED), its return, a device with other units, and a
//! standby closed. On the emulator (`ClockMode::AutoAdvance`), every wait bounded.

use crossbeam_channel::Receiver;
use xpp_bringup::{BringUpConfig, Ready, RunOptions};
use xpp_driver::{DeviceId, Driver, DriverError, DriverEvent, DriverOptions, ErrorCode, bus_setup};
use xpp_emu::config::{ModuleConfig, Stage as EmuStage};
use xpp_emu::transport::EmulatedTransport;
use xpp_emu::{ClockMode, DeviceConfig, Emulator};
use xpp_span::hook::HookMode;
use xpp_span::sysconf::parse_str;
use xpp_span::xbus::BusSetup;
use xpp_span::{Alarms, Event, HookCmd, Sig};

mod common;
use common::{WAIT, firmware, open, until, within};

const FXS1: u32 = 1;
const FXO1: u32 = 15;
const CHANNELS: u32 = 22;

fn emulator(cfg: DeviceConfig) -> Emulator {
    Emulator::with_mode(cfg.with_start_stage(EmuStage::Running), ClockMode::AutoAdvance)
}

/// The layout text another host wrote when it last had `emu`'s device: a bring-up on a
/// driver of its own, written as text, the driver closed again.
fn layout_from_another_host(emu: &Emulator) -> String {
    let other = Driver::new(emu.clone(), DriverOptions::default());
    let id = open(&other, emu);
    let text = bus_setup(&other.bring_up_result(id).unwrap()).to_text();
    other.close();
    text
}

/// A bring-up of the device on `emu`'s port 0 (a device found running is verified, as a
/// TwinStar take-over does, when `verify`; else reset and initialised).
fn bring_up_with(emu: &Emulator, verify: bool) -> Ready<EmulatedTransport> {
    let e = emu.clone();
    let on_running = if verify { xpp_bringup::OnRunning::Verify } else { xpp_bringup::OnRunning::Reset };
    let config = BringUpConfig::default().with_on_running(on_running);
    xpp_bringup::bring_up(move || e.transport(0), emu, config, firmware(), RunOptions::default(), |_| {})
        .unwrap_or_else(|e| panic!("bring-up: {e}"))
}

fn bring_up(emu: &Emulator) -> Ready<EmulatedTransport> {
    bring_up_with(emu, true)
}

fn chan_event(e: &DriverEvent, ch: u32, ev: Event) -> bool {
    matches!(e, DriverEvent::Chan { channo, event, .. } if *channo == ch && *event == ev)
}

fn drain(rx: &Receiver<DriverEvent>) -> Vec<DriverEvent> {
    rx.try_iter().collect()
}

fn code<T: std::fmt::Debug>(r: Result<T, DriverError>) -> ErrorCode {
    r.expect_err("refused").code()
}

#[test]
fn a_standby_registration_is_taken_over_left_and_taken_over_again() {
    within(120, || {
        let emu = emulator(DeviceConfig::default());
        let layout = layout_from_another_host(&emu);
        let setup = BusSetup::from_text(&layout).unwrap();
        let drv = Driver::new(emu.clone(), DriverOptions::default());
        let rx = drv.events();

        // Registered before the device is here: numbered, listed, in RED alarm.
        let id = drv.register_standby(&setup).unwrap();
        let seen = drain(&rx);
        assert_eq!(seen[0], DriverEvent::DeviceStandby { device: id, spans: 1..=2, channels: 1..=CHANNELS });
        for spanno in [1, 2] {
            let red = DriverEvent::SpanAlarms { device: id, spanno, alarms: Alarms::RED };
            assert!(seen.contains(&red), "{seen:#?}");
            assert_eq!(drv.alarms(spanno).unwrap(), Alarms::RED);
        }
        assert_eq!(drv.spans().len(), 2);
        assert_eq!(drv.channels().len(), CHANNELS as usize);
        assert!(!drv.is_running(id).unwrap());
        // The PBX configures it (dahdi_cfg on the backup host)...
        let conf = parse_str("system.conf", "fxoks=1-8\nfxsks=15-22\nalaw=1\n").unwrap();
        drv.apply_system_conf("system.conf", &conf).unwrap();
        assert_eq!(drv.channel(FXS1).unwrap().sig, Sig::Fxoks);
        // ... but cannot use it yet: EBUSY, not ENODEV (the PBX keeps the channel open).
        let mut chunk = [0u8; 8];
        assert_eq!(code(drv.read_chunk(FXS1, &mut chunk)), ErrorCode::Standby);
        assert_eq!(drv.read_chunk(FXS1, &mut chunk).unwrap_err().errno(), 16);
        assert_eq!(drv.set_hook(FXS1, HookCmd::Ring, HookMode::NonBlocking).unwrap_err().errno(), 16);
        assert_eq!(code(drv.set_hook(FXS1, HookCmd::Ring, HookMode::NonBlocking)), ErrorCode::Standby);
        assert_eq!(code(drv.bring_up_result(id)), ErrorCode::Standby);
        let blocking = drv.read_chunk_blocking(FXS1, &mut chunk, std::time::Duration::from_millis(20));
        assert!(matches!(blocking, Err(DriverError::Timeout)), "{blocking:?}");

        // The device arrives: same id, same numbers, the configuration kept, NOALARM.
        assert_eq!(drv.attach_standby(id, bring_up(&emu)).unwrap(), id);
        let seen = until(&rx, |e| matches!(e, DriverEvent::DeviceReady { .. }));
        assert_eq!(
            seen.last(),
            Some(&DriverEvent::DeviceReady { device: id, spans: 1..=2, channels: 1..=CHANNELS })
        );
        let seen = until(&rx, |e| chan_event(e, FXO1, Event::NOALARM));
        assert!(seen.iter().any(|e| chan_event(e, FXS1, Event::NOALARM)), "{seen:#?}");
        assert_eq!(drv.alarms(1).unwrap(), Alarms::EMPTY);
        assert!(drv.is_running(id).unwrap());
        assert_eq!(drv.channel(FXS1).unwrap().sig, Sig::Fxoks);
        assert_eq!(drv.channel(FXO1).unwrap().sig, Sig::Fxsks);
        assert!(drv.bring_up_result(id).unwrap().verified, "found running and verified");
        emu.with_device(|d| {
            let now = d.now();
            d.data_mut().phone_mut(0, 0).unwrap().off_hook(now);
        });
        until(&rx, |e| chan_event(e, FXS1, Event::RINGOFFHOOK));
        drv.read_chunk_blocking(FXS1, &mut chunk, WAIT).unwrap();

        // It leaves (a jump to the other host): back to standby, the channels stay.
        emu.with_device(|d| {
            let now = d.now();
            d.unplug(now, 0);
        });
        let seen = until(&rx, |e| matches!(e, DriverEvent::DeviceStandby { .. }));
        assert_eq!(
            seen.last(),
            Some(&DriverEvent::DeviceStandby { device: id, spans: 1..=2, channels: 1..=CHANNELS })
        );
        assert!(seen.iter().any(|e| chan_event(e, FXS1, Event::ALARM)), "{seen:#?}");
        assert!(!seen.iter().any(|e| chan_event(e, FXS1, Event::REMOVED)), "{seen:#?}");
        assert!(!seen.iter().any(|e| matches!(e, DriverEvent::DeviceRemoved { .. })), "{seen:#?}");
        assert_eq!(drv.alarms(1).unwrap(), Alarms::RED);
        assert_eq!(drv.channels().len(), CHANNELS as usize);
        assert_eq!(code(drv.read_chunk(FXS1, &mut chunk)), ErrorCode::Standby);
        assert!(drv.wait_gone(id, WAIT).unwrap(), "its run loop ended");

        // And comes back.
        emu.with_device(|d| {
            let now = d.now();
            d.plug(now, 0);
        });
        assert_eq!(drv.attach_standby(id, bring_up(&emu)).unwrap(), id);
        until(&rx, |e| matches!(e, DriverEvent::DeviceReady { device, .. } if *device == id));
        until(&rx, |e| chan_event(e, FXS1, Event::NOALARM));
        assert_eq!(drv.channel(FXS1).unwrap().sig, Sig::Fxoks);
        drv.read_chunk_blocking(FXS1, &mut chunk, WAIT).unwrap();
        // An orderly close ends it for good (no standby after a close).
        drv.close_device(id).unwrap();
        until(&rx, |e| matches!(e, DriverEvent::DeviceClosed { .. }));
        assert_eq!(drv.alarms(1).unwrap(), Alarms::NOTOPEN);
        assert!(drv.channels().is_empty());
        drv.close();
    });
}

#[test]
fn standby_numbers_are_reserved_and_a_closed_standby_frees_them() {
    within(60, || {
        let emu = emulator(DeviceConfig::default());
        let setup = BusSetup::from_text(&layout_from_another_host(&emu)).unwrap();
        let drv = Driver::new(emu.clone(), DriverOptions::default());
        let rx = drv.events();
        let standby = drv.register_standby(&setup).unwrap();
        // Another device attached meanwhile gets the numbers after the standby's.
        let other = open(&drv, &emu);
        let seen = until(&rx, |e| matches!(e, DriverEvent::DeviceReady { .. }));
        assert_eq!(
            seen.last(),
            Some(&DriverEvent::DeviceReady { device: other, spans: 3..=4, channels: 23..=44 })
        );
        // Closing the standby unregisters it: REMOVED on its channels, its numbers free.
        drv.close_device(standby).unwrap();
        let seen =
            until(&rx, |e| matches!(e, DriverEvent::DeviceClosed { device, .. } if *device == standby));
        assert!(seen.iter().any(|e| chan_event(e, FXS1, Event::REMOVED)), "{seen:#?}");
        assert_eq!(drv.alarms(1).unwrap(), Alarms::NOTOPEN);
        assert_eq!(drv.channels().len(), CHANNELS as usize);
        assert!(drv.is_running(other).unwrap());
        drv.close();
    });
}

#[test]
fn a_device_with_other_units_replaces_its_standby_registration() {
    within(60, || {
        // The standby was registered for FXS + FXO; the device now has an FXS module only.
        let two = emulator(DeviceConfig::default());
        let setup = BusSetup::from_text(&layout_from_another_host(&two)).unwrap();
        let emu = emulator(DeviceConfig::default().with_slots([Some(ModuleConfig::FXS), None, None, None]));
        let drv = Driver::new(emu.clone(), DriverOptions::default());
        let rx = drv.events();
        let standby: DeviceId = drv.register_standby(&setup).unwrap();
        let id = drv.attach_standby(standby, bring_up_with(&emu, false)).unwrap();
        assert_ne!(id, standby, "registered anew");
        let seen = until(&rx, |e| matches!(e, DriverEvent::DeviceReady { .. }));
        assert!(seen.iter().any(|e| matches!(e, DriverEvent::DeviceClosed { device } if *device == standby)));
        assert!(seen.iter().any(|e| chan_event(e, FXO1, Event::REMOVED)), "the FXO channels went");
        assert_eq!(
            seen.last(),
            Some(&DriverEvent::DeviceReady { device: id, spans: 1..=1, channels: 1..=14 })
        );
        assert_eq!(drv.alarms(1).unwrap(), Alarms::EMPTY);
        drv.close();
    });
}
