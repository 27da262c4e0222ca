//! Issue 15, item 8: a lost SIG_CHANGED used to lose the hook change for good. Here every
//! SIG_CHANGED the device sends is dropped on the way, so only the FXS lines' periodic
//! hook-state read (`xpp_chan::fxs::HOOK_POLL`, 1 s) can tell the driver; each change is
//! reported once, within that period and the command pacing (an on-hook, as always, only
//! after DAHDI's 1250 ms flash window), on the virtual clock.

use xpp_driver::{Driver, DriverEvent, DriverOptions};
use xpp_emu::config::Stage;
use xpp_emu::fault::{FaultAction, FaultEndpoint, FaultRule};
use xpp_emu::{ClockMode, DeviceConfig, Emulator};
use xpp_proto::wire::Opcode;
use xpp_proto::{Duration, Instant};
use xpp_span::Event;
use xpp_usb::ep;

mod common;
use common::{open, until, within};

/// The hook poll period, plus the pacing of a queued read and its reply.
const BOUND: Duration = Duration::from_millis(1_100);
/// An on-hook is reported once it has lasted DAHDI's rxflashtime (1250 ms; shorter is a
/// flash): that much later again.
const ON_BOUND: Duration = Duration::from_millis(1_100 + 1_250);

/// Acts on the phone on FXS port 0 (channel 1) at the device's time; returns that time.
fn phone(emu: &Emulator, off_hook: bool) -> Instant {
    emu.with_device(|d| {
        let now = d.now();
        let p = d.data_mut().phone_mut(0, 0).expect("phone");
        if off_hook {
            p.off_hook(now);
        } else {
            p.on_hook(now);
        }
        now
    })
}

/// Waits for `event` on channel 1; when it came (device time) and the events seen.
fn wait_for(rx: &xpp_driver::Receiver<DriverEvent>, event: Event) -> (Instant, Vec<DriverEvent>) {
    let seen = until(rx, |e| matches!(e, DriverEvent::Chan { channo: 1, event: ev, .. } if *ev == event));
    let Some(DriverEvent::Chan { at, .. }) = seen.last() else { unreachable!() };
    (*at, seen)
}

#[test]
fn hook_changes_whose_reports_are_lost_are_found_by_the_poll() {
    within(120, || {
        let mut cfg = DeviceConfig::default().with_start_stage(Stage::Running);
        cfg.core.faults = vec![
            FaultRule::new(FaultEndpoint::Ep(ep::DATA_IN), FaultAction::Drop)
                .with_opcode(u8::from(Opcode::SigChanged)),
        ];
        let emu = Emulator::with_mode(cfg, ClockMode::AutoAdvance);
        let drv = Driver::new(emu.clone(), DriverOptions::default());
        let rx = drv.events();
        let _id = open(&drv, &emu);
        until(&rx, |e| matches!(e, DriverEvent::DeviceReady { .. }));
        // Let the first reads settle.
        let start = emu.now();
        while emu.now() < start + Duration::from_secs(2) {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        // (What the first reads told, before the change.)
        let before: Vec<_> =
            rx.try_iter().filter(|e| matches!(e, DriverEvent::Chan { channo: 1, .. })).collect();
        println!("channel 1 before the change: {before:?}");
        let t0 = phone(&emu, true);
        let (seen_at, seen) = wait_for(&rx, Event::RINGOFFHOOK);
        let late = seen_at.saturating_duration_since(t0);
        println!("off-hook seen {} ms after the change, its SIG_CHANGED lost", late.total_millis());
        assert!(late <= BOUND, "off-hook seen {late:?} after the change");
        assert!(!seen.iter().any(|e| matches!(e, DriverEvent::Chan { channo: 1, event: Event::ONHOOK, .. })));
        let t1 = phone(&emu, false);
        let (seen_at, seen) = wait_for(&rx, Event::ONHOOK);
        let late = seen_at.saturating_duration_since(t1);
        println!("on-hook seen {} ms after the change", late.total_millis());
        assert!(late <= ON_BOUND, "on-hook seen {late:?} after the change");
        // Exactly one report per change: no second RINGOFFHOOK in between.
        let offs = seen
            .iter()
            .filter(|e| matches!(e, DriverEvent::Chan { channo: 1, event: Event::RINGOFFHOOK, .. }))
            .count();
        assert_eq!(offs, 0, "{seen:?}");
        // Quiet afterwards: three more polls find nothing new.
        let t2 = emu.now();
        while emu.now() < t2 + Duration::from_secs(3) {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let later: Vec<_> =
            rx.try_iter().filter(|e| matches!(e, DriverEvent::Chan { channo: 1, .. })).collect();
        assert!(later.is_empty(), "{later:?}");
        drv.close();
    });
}
