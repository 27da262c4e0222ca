//! TwinStar: two hosts on the two ports of one device, one virtual clock (MODEL.md TWS rows).

mod common;

use common::{T, ack, mpp};
use xpp_emu::config::{CoreConfig, LineStateOnJump, Stage};
use xpp_emu::{DeviceConfig, DeviceEvent, EmulatedTransport, Emulator, JumpReason};
use xpp_proto::mgmt::{AckStatus, FpgaStat, OwnedReply, Request, SerAnswer, SerCommand};
use xpp_proto::{Duration, Instant};
use xpp_usb::{TransferError, Transport, ep};

/// XBUS_RESET mask 0x00: one well-formed XPP packet that the device does not answer (TWS-9,
/// XPP-12), so nothing lands in the IN queue.
const FEED: [u8; 5] = [0x05, 0x00, 0x23, 0x00, 0x00];

fn twinstar(core: CoreConfig) -> Emulator {
    Emulator::new(
        DeviceConfig::default().with_twinstar(true).with_start_stage(Stage::Running).with_core(core),
    )
}

fn core(f: impl FnOnce(&mut CoreConfig)) -> CoreConfig {
    let mut c = CoreConfig::default();
    f(&mut c);
    c
}

fn feed(t: &mut EmulatedTransport) {
    assert_eq!(t.transfer_blocking(ep::DATA_OUT, FEED.to_vec(), T).status, Ok(()));
}

fn stat(t: &mut EmulatedTransport) -> FpgaStat {
    let (b, n) = SerCommand::StatGet.to_bytes();
    let Some(OwnedReply::SerRecv { data }) = mpp(t, 1, Request::SerSend { data: &b[..n] }) else { panic!() };
    match SerAnswer::parse(data.as_slice()) {
        Ok(SerAnswer::FpgaStat(s)) => s,
        other => panic!("{other:?}"),
    }
}

#[test]
fn silent_host_a_fails_over_to_host_b_within_the_timeout() {
    let emu = twinstar(CoreConfig::default());
    assert!(emu.transport(1).is_none(), "TWS-2: the standby port shows nothing");
    let mut a = emu.transport(0).unwrap();
    assert!(matches!(mpp(&mut a, 1, Request::TwsPwrGet), Some(OwnedReply::TwsPwrGetReply(p)) if p.0 == 3));
    assert_eq!(ack(&mut a, Request::TwsWdModeSet { armed: true }), AckStatus::Ok);
    // Fed every 500 ms for 10 s: no jump, XPD alive.
    for _ in 0..20 {
        feed(&mut a);
        emu.advance(Duration::from_millis(500));
    }
    assert_eq!(emu.with_device(|d| d.active_port()), 0);
    assert_eq!(stat(&mut a), FpgaStat { configuration: 3, watchdog_ready: true, xpd_alive: true });
    // A pending IN on host A's data interface.
    a.submit(ep::DATA_IN, vec![0; 512]).unwrap();
    feed(&mut a);
    let last_feed = emu.now();
    assert!(emu.run_until(Duration::from_secs(5), |d| d.active_port() == 1));
    let jumped_at = emu.now();
    assert!(jumped_at - last_feed <= Duration::from_millis(2000), "jump after {:?}", jumped_at - last_feed);
    assert!(jumped_at - last_feed >= Duration::from_millis(1999));
    // USB-16: host A's pending transfer completes Disconnected, later calls fail.
    let c = a.wait_next_complete(ep::DATA_IN, T).unwrap();
    assert_eq!(c.status, Err(TransferError::Disconnected));
    assert_eq!(a.submit(ep::MGMT_OUT, vec![5, 0, 1, 0, 0x11]), Err(TransferError::Disconnected));
    // TWS-12: after jump_delay, host B sees the device in the same stage, watchdog disarmed.
    emu.advance(Duration::from_millis(499));
    assert!(emu.transport(1).is_none());
    emu.advance(Duration::from_millis(1));
    let mut b = emu.transport(1).unwrap();
    assert_eq!(b.info().product_id, 0x1162);
    assert!(matches!(mpp(&mut b, 1, Request::TwsPortGet), Some(OwnedReply::TwsPortGetReply { port: 1 })));
    assert!(matches!(
        mpp(&mut b, 1, Request::TwsWdModeGet),
        Some(OwnedReply::TwsWdModeGetReply { wd_active: 0 })
    ));
    let jumps: Vec<_> = emu.with_device(|d| std::iter::from_fn(|| d.poll_event()).collect::<Vec<_>>());
    assert!(
        jumps
            .iter()
            .any(|e| matches!(e, DeviceEvent::Jumped { from: 0, to: 1, reason: JumpReason::Watchdog, .. }))
    );
}

#[test]
fn no_jump_without_power_on_the_other_port_until_it_comes() {
    let emu = twinstar(core(|c| c.watchdog_timeout = Duration::from_millis(100)));
    let mut a = emu.transport(0).unwrap();
    emu.with_device(|d| d.set_power(d.now(), 1, false));
    assert!(matches!(mpp(&mut a, 1, Request::TwsPwrGet), Some(OwnedReply::TwsPwrGetReply(p)) if p.0 == 1));
    assert_eq!(ack(&mut a, Request::TwsWdModeSet { armed: true }), AckStatus::Ok);
    emu.advance(Duration::from_secs(2));
    assert_eq!(emu.with_device(|d| (d.active_port(), d.watchdog_expired())), (0, true));
    // TWS-11: STAT_GET reports expired, the device is still on port 0.
    assert_eq!(stat(&mut a), FpgaStat { configuration: 3, watchdog_ready: false, xpd_alive: false });
    // A feed makes it ready again; silence expires it again.
    feed(&mut a);
    assert!(stat(&mut a).watchdog_ready);
    emu.advance(Duration::from_millis(150));
    // Power on port 1: the pending jump happens at once.
    emu.with_device(|d| d.set_power(d.now(), 1, true));
    assert_eq!(emu.with_device(|d| d.active_port()), 1);
    assert!(a.is_disconnected() || a.submit(ep::MGMT_OUT, vec![5, 0, 1, 0, 0x11]).is_err());
}

#[test]
fn tws_port_set_jumps_only_to_a_powered_port() {
    let emu = twinstar(CoreConfig::default());
    let mut a = emu.transport(0).unwrap();
    emu.with_device(|d| d.set_power(d.now(), 1, false));
    assert!(mpp(&mut a, 1, Request::TwsPortSet { port: 1 }).is_none());
    emu.advance(Duration::from_secs(1));
    assert_eq!(emu.with_device(|d| d.active_port()), 0);
    emu.with_device(|d| d.set_power(d.now(), 1, true));
    assert!(mpp(&mut a, 1, Request::TwsPortSet { port: 0 }).is_none());
    assert_eq!(emu.with_device(|d| d.active_port()), 0);
    // TWS-8: a jump whether or not the watchdog is armed.
    assert!(mpp(&mut a, 1, Request::TwsPortSet { port: 1 }).is_none());
    assert!(a.is_disconnected());
    emu.advance(Duration::from_millis(500));
    let mut b = emu.transport(1).unwrap();
    // And back.
    assert!(mpp(&mut b, 1, Request::TwsPortSet { port: 0 }).is_none());
    emu.advance(Duration::from_millis(500));
    assert_eq!(emu.transport(0).unwrap().info().product_id, 0x1162);
    assert_eq!(emu.with_device(|d| d.counters().jumps), 2);
}

#[test]
fn active_port_power_loss_and_return() {
    // TWS-14: no jump by itself when disarmed; re-enumerates on VBUS return.
    let emu = twinstar(CoreConfig::default());
    let a = emu.transport(0).unwrap();
    emu.with_device(|d| d.set_power(d.now(), 0, false));
    assert!(emu.transport(0).is_none());
    emu.advance(Duration::from_secs(10));
    assert_eq!(emu.with_device(|d| d.active_port()), 0);
    emu.with_device(|d| d.set_power(d.now(), 0, true));
    emu.advance(Duration::from_millis(100));
    let again = emu.transport(0).unwrap();
    assert_eq!(again.info().product_id, 0x1162);
    assert_ne!(again.info().location, a.info().location);
    // Armed: the lost feed expires the watchdog and the device jumps.
    let mut a = again;
    assert_eq!(ack(&mut a, Request::TwsWdModeSet { armed: true }), AckStatus::Ok);
    emu.with_device(|d| d.unplug(d.now(), 0));
    assert!(emu.run_until(Duration::from_secs(3), |d| d.active_port() == 1));
}

#[test]
fn line_state_switch_is_configurable() {
    for policy in [LineStateOnJump::Keep, LineStateOnJump::Reset] {
        let emu = twinstar(core(|c| c.line_state_on_jump = policy));
        let mut a = emu.transport(0).unwrap();
        assert!(mpp(&mut a, 1, Request::TwsPortSet { port: 1 }).is_none());
        emu.advance(Duration::from_millis(500));
        assert!(emu.transport(1).is_some());
    }
    let _ = Instant::ZERO;
}

#[test]
fn monitor_1163_on_the_standby_port() {
    use xpp_emu::config::StandbyPresence;
    use xpp_usb::ControlSetup;
    let emu = twinstar(core(|c| c.standby_presence = StandbyPresence::Monitor1163));
    // Built powered: the device at once on port 0, the monitor after the attach debounce.
    assert!(emu.transport(1).is_none());
    emu.advance(Duration::from_millis(100));
    let mut m = emu.transport(1).expect("TWS-2: monitor enumerated");
    assert_eq!((m.info().vendor_id, m.info().product_id), (0xE4E4, 0x1163));
    // Cold: EP0 only, descriptors answer, FX2 RAM access stalls.
    assert_eq!(m.submit(ep::MGMT_OUT, vec![0; 5]), Err(TransferError::InvalidArgument));
    let desc = ControlSetup { request_type: 0x80, request: 6, value: 0x0100, index: 0 };
    assert_eq!(m.control_in(desc, &mut [0; 18], T), Ok(18));
    let cpucs = ControlSetup { request_type: 0x40, request: 0xA0, value: 0xE600, index: 0 };
    assert_eq!(m.control_out(cpucs, &[1], T), Err(TransferError::Stall));
    // The standby host loses VBUS: the monitor leaves; back: it returns.
    emu.with_device(|d| d.set_power(d.now(), 1, false));
    assert_eq!(m.submit(ep::MGMT_IN, vec![0; 512]), Err(TransferError::Disconnected));
    emu.with_device(|d| d.set_power(d.now(), 1, true));
    emu.advance(Duration::from_millis(100));
    assert_eq!(emu.transport(1).unwrap().info().product_id, 0x1163);
    // A jump: the device moves to port 1 (the monitor leaves it), the monitor to port 0.
    let mut a = emu.transport(0).unwrap();
    assert!(mpp(&mut a, 1, Request::TwsPortSet { port: 1 }).is_none());
    emu.advance(Duration::from_millis(600));
    assert_eq!(emu.with_device(|d| d.active_port()), 1);
    assert_eq!(emu.transport(1).unwrap().info().product_id, 0x1162);
    assert_eq!(emu.transport(0).unwrap().info().product_id, 0x1163);
    // Default: nothing on the standby port.
    let plain = twinstar(CoreConfig::default());
    plain.advance(Duration::from_millis(1000));
    assert!(plain.transport(1).is_none());
}
