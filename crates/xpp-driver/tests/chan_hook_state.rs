//! `ChanInfo::rxsig` / `txsig`: the hook state of a channel as `DAHDI_GET_PARAMS` reports it
//! (`rxhooksig`, `txhooksig`), what `lsdahdi`-style listings and monitors show.

use xpp_bringup::{BringUpConfig, RunOptions};
use xpp_driver::{Driver, DriverEvent, DriverOptions};
use xpp_emu::config::Stage;
use xpp_emu::{ClockMode, DeviceConfig, Emulator};
use xpp_span::hook::HookMode;
use xpp_span::{Event, HookCmd, RxSig, TxSig};

mod common;
use common::{firmware, until, within};

#[test]
fn a_phone_off_hook_shows_in_rxsig_and_a_ring_in_txsig() {
    within(60, || {
        let cfg = DeviceConfig::default().with_start_stage(Stage::Running);
        let emu = Emulator::with_mode(cfg, ClockMode::AutoAdvance);
        let drv = Driver::new(emu.clone(), DriverOptions::default());
        let rx = drv.events();
        let e2 = emu.clone();
        drv.open(move || e2.transport(0), BringUpConfig::default(), firmware(), RunOptions::default())
            .unwrap_or_else(|e| panic!("{e}"));
        until(&rx, |e| matches!(e, DriverEvent::DeviceReady { .. }));
        // Before the line's first report the state is INITIAL (the next report counts).
        assert_ne!(drv.channel(1).unwrap().rxsig, RxSig::OffHook);
        emu.with_device(|d| {
            let now = d.now();
            d.data_mut().phone_mut(0, 0).expect("phone").off_hook(now);
        });
        until(&rx, |e| matches!(e, DriverEvent::Chan { channo: 1, event: Event::RINGOFFHOOK, .. }));
        assert_eq!(drv.channel(1).unwrap().rxsig, RxSig::OffHook);
        assert_ne!(drv.channel(2).unwrap().rxsig, RxSig::OffHook);
        let _ = drv.set_hook(2, HookCmd::Ring, HookMode::NonBlocking).unwrap();
        until(&rx, |e| matches!(e, DriverEvent::Chan { channo: 2, event: Event::RINGERON, .. }));
        assert_eq!(drv.channel(2).unwrap().txsig, TxSig::Start);
        drv.close();
    });
}
