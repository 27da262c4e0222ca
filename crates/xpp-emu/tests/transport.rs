//! EmulatedTransport semantics (USB-12..16), the clock modes, fault injection (FAULT rows),
//! and a proptest that arbitrary host bytes never panic the model.

mod common;

use common::{T, ack, mpp};
use proptest::prelude::*;
use xpp_emu::config::{CoreConfig, Stage};
use xpp_emu::fault::{FaultAction, FaultEndpoint, FaultRule, FaultTrigger, ScheduledFault};
use xpp_emu::{ClockMode, Device, DeviceConfig, Emulator};
use xpp_proto::mgmt::{AckStatus, OwnedReply, Reply, Request};
use xpp_proto::{Duration, Instant};
use xpp_usb::{ControlSetup, TransferError, Transport, ep};

fn running() -> DeviceConfig {
    DeviceConfig::default().with_start_stage(Stage::Running)
}

fn with_core(cfg: DeviceConfig, f: impl FnOnce(&mut CoreConfig)) -> DeviceConfig {
    let mut c = cfg.core.clone();
    f(&mut c);
    cfg.with_core(c)
}

#[test]
fn pending_transfers_complete_disconnected_on_unplug() {
    let emu = Emulator::new(running());
    let mut t = emu.transport(0).unwrap();
    for _ in 0..4 {
        t.submit(ep::DATA_IN, vec![0; 512]).unwrap();
        t.submit(ep::MGMT_IN, vec![0; 512]).unwrap();
    }
    assert_eq!(t.pending(ep::DATA_IN), 4);
    assert!(t.wait_next_complete(ep::DATA_IN, T).is_none(), "manual clock: nothing ready, no block");
    emu.with_device(|d| d.unplug(d.now(), 0));
    for e in [ep::DATA_IN, ep::MGMT_IN] {
        for _ in 0..4 {
            assert_eq!(t.wait_next_complete(e, T).unwrap().status, Err(TransferError::Disconnected));
        }
        assert_eq!(t.pending(e), 0);
    }
    assert_eq!(t.submit(ep::DATA_OUT, vec![1, 2, 3, 4]), Err(TransferError::Disconnected));
    let setup = ControlSetup { request_type: 0x80, request: 6, value: 0x0100, index: 0 };
    assert_eq!(t.control_in(setup, &mut [0; 18], T), Err(TransferError::Disconnected));
    assert_eq!(t.reset(), Err(TransferError::Disconnected));
    // Replugging makes a new device; the old handle stays dead.
    emu.with_device(|d| d.plug(d.now(), 0));
    emu.advance(Duration::from_millis(100));
    assert!(emu.transport(0).is_some());
    assert_eq!(t.submit(ep::MGMT_IN, vec![0; 512]), Err(TransferError::Disconnected));
}

#[test]
fn bus_reset_cancels_but_keeps_the_device() {
    let emu = Emulator::new(running());
    let mut t = emu.transport(0).unwrap();
    t.submit(ep::MGMT_IN, vec![0; 512]).unwrap();
    t.reset().unwrap();
    assert_eq!(t.wait_next_complete(ep::MGMT_IN, T).unwrap().status, Err(TransferError::Cancelled));
    assert!(matches!(mpp(&mut t, 1, Request::TwsPortGet), Some(OwnedReply::TwsPortGetReply { port: 0 })));
    t.submit(ep::MGMT_IN, vec![0; 512]).unwrap();
    t.cancel_all(ep::MGMT_IN);
    assert_eq!(t.wait_next_complete(ep::MGMT_IN, T).unwrap().status, Err(TransferError::Cancelled));
}

#[test]
fn several_in_flight_complete_in_order_and_short_buffers_fault() {
    let emu = Emulator::new(running());
    let mut t = emu.transport(0).unwrap();
    for seq in 1..=3u16 {
        let mut b = [0u8; 5];
        Request::TwsPortGet.emit(seq, &mut b).unwrap();
        t.submit(ep::MGMT_OUT, b.to_vec()).unwrap();
    }
    t.submit(ep::MGMT_IN, vec![0; 512]).unwrap();
    t.submit(ep::MGMT_IN, vec![0; 3]).unwrap();
    t.submit(ep::MGMT_IN, vec![0; 512]).unwrap();
    for _ in 0..3 {
        assert_eq!(t.wait_next_complete(ep::MGMT_OUT, T).unwrap().status, Ok(()));
    }
    let c1 = t.wait_next_complete(ep::MGMT_IN, T).unwrap();
    assert_eq!(Reply::parse(&c1.buffer).unwrap().0, 1);
    // USB-13: a short buffer faults and consumes the device transfer.
    assert_eq!(t.wait_next_complete(ep::MGMT_IN, T).unwrap().status, Err(TransferError::Fault));
    let c3 = t.wait_next_complete(ep::MGMT_IN, T).unwrap();
    assert_eq!(Reply::parse(&c3.buffer).unwrap().0, 3);
    // USB-12: at most 8 queued on 0x88, the newest discarded.
    for seq in 0..10u16 {
        let mut b = [0u8; 5];
        Request::TwsPortGet.emit(seq, &mut b).unwrap();
        t.submit(ep::MGMT_OUT, b.to_vec()).unwrap();
    }
    assert_eq!(emu.with_device(|d| (d.in_queued(0, ep::MGMT_IN), d.counters().in_overflow)), (8, 2));
}

#[test]
fn auto_advance_waits_in_virtual_time_and_times_out() {
    let cfg = with_core(running(), |c| c.mpp_latency = Duration::from_millis(30));
    let emu = Emulator::with_mode(cfg, ClockMode::AutoAdvance);
    let mut t = emu.transport(0).unwrap();
    let mut b = [0u8; 5];
    Request::StatusGet.emit(1, &mut b).unwrap();
    t.submit(ep::MGMT_OUT, b.to_vec()).unwrap();
    t.submit(ep::MGMT_IN, vec![0; 512]).unwrap();
    assert!(t.wait_next_complete(ep::MGMT_IN, std::time::Duration::from_millis(10)).is_none());
    assert_eq!(emu.now(), Instant::from_millis(10));
    let c = t.wait_next_complete(ep::MGMT_IN, std::time::Duration::from_millis(100)).unwrap();
    assert_eq!(c.status, Ok(()));
    assert_eq!(emu.now(), Instant::from_millis(30), "stops at the completion");
    // A transfer that never completes is bounded by its timeout.
    t.submit(ep::DATA_IN, vec![0; 512]).unwrap();
    assert!(t.wait_next_complete(ep::DATA_IN, std::time::Duration::from_secs(3)).is_none());
    assert_eq!(emu.now(), Instant::from_millis(3030));
}

#[test]
fn real_time_runner_waits_are_bounded_and_shut_down_cleanly() {
    let (emu, runner) = Emulator::real_time(running());
    let mut t = emu.transport(0).unwrap();
    assert_eq!(ack(&mut t, Request::TwsWdModeSet { armed: false }), AckStatus::Ok);
    t.submit(ep::DATA_IN, vec![0; 512]).unwrap();
    let start = std::time::Instant::now();
    assert!(t.wait_next_complete(ep::DATA_IN, std::time::Duration::from_millis(30)).is_none());
    let waited = start.elapsed();
    assert!(waited >= std::time::Duration::from_millis(30) && waited < std::time::Duration::from_secs(5));
    // A renumeration driven by the runner's clock.
    assert!(mpp(&mut t, 1, Request::Renum).is_none());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while emu.transport(0).is_none() {
        assert!(std::time::Instant::now() < deadline, "re-enumerated within 5 s of real time");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(t.wait_next_complete(ep::DATA_IN, T).unwrap().status, Err(TransferError::Disconnected));
    drop(runner);
}

#[test]
fn two_hosts_on_one_clock_from_two_threads_do_not_hang() {
    let emu = Emulator::new(running().with_twinstar(true));
    let mut a = emu.transport(0).unwrap();
    a.submit(ep::DATA_IN, vec![0; 512]).unwrap();
    let h = std::thread::spawn(move || {
        loop {
            if let Some(c) = a.wait_next_complete(ep::DATA_IN, T) {
                return c.status;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    });
    std::thread::sleep(std::time::Duration::from_millis(5));
    emu.with_device(|d| d.set_power(d.now(), 0, false));
    assert_eq!(h.join().unwrap(), Err(TransferError::Disconnected));
}

/// The reply pattern of 64 STATUS_GETs through a 30 % drop rule on 0x88.
fn drop_pattern(seed: u64) -> Vec<bool> {
    let rule = FaultRule::new(FaultEndpoint::Ep(ep::MGMT_IN), FaultAction::Drop)
        .when(FaultTrigger::PerMillion(300_000));
    let cfg = with_core(running().with_seed(seed), |c| c.faults = vec![rule]);
    let emu = Emulator::new(cfg);
    let mut t = emu.transport(0).unwrap();
    (0..64).map(|s| mpp(&mut t, s, Request::StatusGet).is_some()).collect()
}

#[test]
fn faults_are_reproducible_from_the_seed() {
    let a = drop_pattern(42);
    assert_eq!(a, drop_pattern(42));
    assert_ne!(a, drop_pattern(43));
    let dropped = a.iter().filter(|r| !**r).count();
    assert!((5..40).contains(&dropped), "{dropped} of 64 dropped");
}

#[test]
fn corrupt_stall_and_scheduled_faults() {
    let rules = vec![
        FaultRule::new(FaultEndpoint::Ep(ep::MGMT_IN), FaultAction::SetByte { offset: 5, value: 0x01 })
            .with_opcode(0xB5),
        FaultRule::new(FaultEndpoint::Ep(ep::MGMT_OUT), FaultAction::Stall).with_opcode(0x36),
    ];
    let cfg = with_core(running().with_twinstar(true), |c| {
        c.faults = rules;
        c.scheduled_faults = vec![ScheduledFault::Unplug {
            port: 0,
            at: Instant::from_secs(1),
            duration: Duration::from_secs(1),
        }];
    });
    let emu = Emulator::new(cfg);
    let mut t = emu.transport(0).unwrap();
    assert!(matches!(mpp(&mut t, 1, Request::TwsPortGet), Some(OwnedReply::TwsPortGetReply { port: 1 })));
    let mut b = [0u8; 5];
    Request::TwsPwrGet.emit(1, &mut b).unwrap();
    assert_eq!(t.transfer_blocking(ep::MGMT_OUT, b.to_vec(), T).status, Err(TransferError::Stall));
    assert_eq!(t.transfer_blocking(ep::MGMT_OUT, b.to_vec(), T).status, Err(TransferError::Stall));
    let clear = ControlSetup { request_type: 0x02, request: 1, value: 0, index: u16::from(ep::MGMT_OUT) };
    assert_eq!(t.control_out(clear, &[], T), Ok(0));
    assert_eq!(ack(&mut t, Request::TwsWdModeSet { armed: false }), AckStatus::Ok);
    emu.advance(Duration::from_secs(1));
    assert!(t.is_disconnected() || t.submit(ep::MGMT_IN, vec![0; 8]).is_err());
    emu.advance(Duration::from_millis(1100));
    assert!(emu.transport(0).is_some());
    assert_eq!(emu.with_device(|d| d.counters().faults_applied), 2);
    let events: Vec<_> = emu.with_device(|d| std::iter::from_fn(|| d.poll_event()).collect());
    assert!(events.iter().any(|e| matches!(e, xpp_emu::DeviceEvent::ScheduledFault { .. })));
    assert!(events.iter().any(|e| matches!(e, xpp_emu::DeviceEvent::FaultApplied { rule: 1, .. })));
}

fn arb_setup() -> impl Strategy<Value = ControlSetup> {
    (any::<u8>(), any::<u8>(), any::<u16>(), any::<u16>()).prop_map(
        |(request_type, request, value, index)| ControlSetup { request_type, request, value, index },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_host_bytes_never_panic(
        stage in prop_oneof![Just(Stage::Cold), Just(Stage::UsbLoaded), Just(Stage::FpgaLoaded), Just(Stage::Running)],
        twin in any::<bool>(),
        ops in proptest::collection::vec(
            (0u8..5, proptest::collection::vec(any::<u8>(), 0..600), arb_setup(), 0u64..400_000),
            1..24,
        ),
    ) {
        let mut d = Device::new(DeviceConfig::default().with_start_stage(stage).with_twinstar(twin).with_echo(true));
        let mut now = Instant::ZERO;
        let mut buf = [0u8; 600];
        for (kind, bytes, setup, dt) in ops {
            now += Duration::from_micros(dt);
            let port = d.active_port();
            match kind {
                0 => { let _ = d.bulk_out(now, port, ep::MGMT_OUT, &bytes); }
                1 => { let _ = d.bulk_out(now, port, ep::DATA_OUT, &bytes); }
                2 => { let _ = d.control_out(now, port, setup, &bytes); }
                3 => { let _ = d.control_in(now, port, setup, &mut buf[..bytes.len()]); }
                _ => d.handle_timeout(now),
            }
            while let Some(r) = d.bulk_in(now, port, ep::MGMT_IN, &mut buf) {
                if let Ok(n) = r {
                    // MPP-2 / USB-11: every reply parses and is at most 512 bytes.
                    prop_assert!(n <= 512 && n > 0);
                    prop_assert!(Reply::parse(&buf[..n]).is_ok(), "{:02x?}", &buf[..n]);
                } else {
                    break;
                }
            }
            while let Some(Ok(n)) = d.bulk_in(now, port, ep::DATA_IN, &mut buf) {
                prop_assert!(n <= 512);
            }
            while d.poll_event().is_some() {}
        }
    }
}

/// The emulator as the host stack's one clock: on the virtual clock sleeping moves time (and
/// runs the device's timers on the way); in real time it waits for the runner, and returns
/// once the runner has stopped instead of waiting for ever.
#[test]
fn emulator_is_the_host_clock() {
    use xpp_usb::Clock;

    let emu = Emulator::new(running());
    let clock: &dyn Clock = &emu;
    let t0 = clock.now();
    clock.sleep_until(t0 + Duration::from_millis(25));
    assert_eq!(clock.now(), t0 + Duration::from_millis(25));
    assert_eq!(emu.now(), t0 + Duration::from_millis(25));
    // Never backwards.
    clock.sleep_until(t0);
    assert_eq!(clock.now(), t0 + Duration::from_millis(25));

    let (rt, runner) = Emulator::real_time(running());
    let start = Clock::now(&rt);
    rt.sleep_until(start + Duration::from_millis(5));
    assert!(Clock::now(&rt) >= start + Duration::from_millis(5));
    drop(runner);
    let wall = std::time::Instant::now();
    rt.sleep_until(Clock::now(&rt) + Duration::from_secs(3600));
    assert!(wall.elapsed() < std::time::Duration::from_secs(60), "a stopped runner ends the wait");
}
