//! FaultInjector: determinism and each fault kind.

mod middleware_support;

use std::time::Duration;

use middleware_support::{Loopback, XPP_REG_WRITE};
use xpp_usb::middleware::{FaultInjector, Faults};
use xpp_usb::{ControlSetup, TransferError, Transport, ep};

const T: Duration = Duration::ZERO;

/// Drives `n` OUT+IN round trips through the injector, returning what the host saw per
/// round: the IN completion (status, data) or `None` if nothing came within a few polls.
fn drive(inj: &mut FaultInjector<Loopback>, n: u8) -> Vec<String> {
    let mut seen = Vec::new();
    for i in 0..n {
        let mut msg = XPP_REG_WRITE.to_vec();
        msg[8] = i;
        match inj.submit(ep::DATA_OUT, msg) {
            Ok(()) => {}
            Err(e) => {
                seen.push(format!("submit out: {e:?}"));
                continue;
            }
        }
        if let Err(e) = inj.submit(ep::DATA_IN, vec![0; 512]) {
            seen.push(format!("submit in: {e:?}"));
            continue;
        }
        let out = (0..3).find_map(|_| inj.wait_next_complete(ep::DATA_OUT, T));
        let inn = (0..5).find_map(|_| inj.wait_next_complete(ep::DATA_IN, T));
        seen.push(format!(
            "out={:?} in={:?}",
            out.map(|c| (c.status, c.buffer)),
            inn.map(|c| (c.status, c.buffer))
        ));
    }
    seen
}

fn noisy(seed: u64) -> FaultInjector<Loopback> {
    let f = Faults { drop: 0.1, corrupt: 0.2, delay: 0.2, max_delay_polls: 3, stall: 0.0 };
    FaultInjector::new(Loopback::new(), seed).with_default_faults(f)
}

#[test]
fn same_seed_same_faults() {
    let (mut a, mut b, mut c) = (noisy(7), noisy(7), noisy(8));
    let (ra, rb, rc) = (drive(&mut a, 60), drive(&mut b, 60), drive(&mut c, 60));
    assert_eq!(ra, rb);
    assert_eq!(a.stats(), b.stats());
    assert_ne!(ra, rc, "a different seed should give different faults");
    let s = a.stats();
    assert!(s.dropped > 0 && s.corrupted > 0 && s.delayed > 0, "{s:?}");
}

#[test]
fn no_faults_is_transparent() {
    let mut inj = FaultInjector::new(Loopback::new(), 1);
    let seen = drive(&mut inj, 3);
    assert!(seen.iter().all(|s| s.contains("in=Some((Ok(()),")), "{seen:?}");
    assert_eq!(inj.stats(), Default::default());
}

#[test]
fn corrupt_flips_exactly_one_bit_of_in_data() {
    let mut inj = FaultInjector::new(Loopback::new(), 3);
    inj.set_faults(ep::DATA_IN, Faults { corrupt: 1.0, ..Faults::NONE });
    inj.submit(ep::DATA_OUT, XPP_REG_WRITE.to_vec()).unwrap();
    inj.submit(ep::DATA_IN, vec![0; 512]).unwrap();
    let c = inj.wait_next_complete(ep::DATA_IN, T).unwrap();
    let flipped: u32 = c.buffer.iter().zip(XPP_REG_WRITE).map(|(a, b)| (a ^ b).count_ones()).sum();
    assert_eq!(flipped, 1);
}

#[test]
fn corrupt_out_reaches_the_device_but_the_host_buffer_comes_back_intact() {
    let mut inj = FaultInjector::new(Loopback::new(), 3);
    inj.set_faults(ep::DATA_OUT, Faults { corrupt: 1.0, ..Faults::NONE });
    inj.submit(ep::DATA_OUT, XPP_REG_WRITE.to_vec()).unwrap();
    inj.submit(ep::DATA_IN, vec![0; 512]).unwrap();
    assert_eq!(inj.wait_next_complete(ep::DATA_OUT, T).unwrap().buffer, XPP_REG_WRITE);
    let echoed = inj.wait_next_complete(ep::DATA_IN, T).unwrap().buffer;
    let flipped: u32 = echoed.iter().zip(XPP_REG_WRITE).map(|(a, b)| (a ^ b).count_ones()).sum();
    assert_eq!(flipped, 1);
}

#[test]
fn dropped_in_data_is_lost_and_the_next_fills_the_buffer() {
    let mut inj = FaultInjector::new(Loopback::new(), 5);
    // Drop the first IN completion only: probability 1, then switch it off.
    inj.set_faults(ep::DATA_IN, Faults { drop: 1.0, ..Faults::NONE });
    let first = XPP_REG_WRITE.to_vec();
    let mut second = XPP_REG_WRITE.to_vec();
    second[8] = 0x02;
    inj.submit(ep::DATA_IN, vec![0; 512]).unwrap();
    inj.submit(ep::DATA_OUT, first).unwrap();
    assert!(inj.wait_next_complete(ep::DATA_IN, T).is_none());
    assert_eq!(inj.pending(ep::DATA_IN), 1);
    inj.set_faults(ep::DATA_IN, Faults::NONE);
    inj.submit(ep::DATA_OUT, second.clone()).unwrap();
    let c = inj.wait_next_complete(ep::DATA_IN, T).unwrap();
    assert_eq!((c.status, c.buffer), (Ok(()), second));
    assert_eq!(inj.stats().dropped, 1);
}

#[test]
fn dropped_out_never_reaches_the_device() {
    let mut inj = FaultInjector::new(Loopback::new(), 5);
    inj.set_faults(ep::DATA_OUT, Faults { drop: 1.0, ..Faults::NONE });
    inj.submit(ep::DATA_OUT, XPP_REG_WRITE.to_vec()).unwrap();
    inj.submit(ep::DATA_IN, vec![0; 512]).unwrap();
    let c = inj.wait_next_complete(ep::DATA_OUT, T).unwrap();
    assert_eq!((c.status, c.actual_len), (Ok(()), XPP_REG_WRITE.len()));
    assert!(inj.wait_next_complete(ep::DATA_IN, T).is_none());
    inj.cancel_all(ep::DATA_IN);
    assert_eq!(inj.wait_next_complete(ep::DATA_IN, T).unwrap().status, Err(TransferError::Cancelled));
}

#[test]
fn delay_holds_a_completion_back_and_keeps_order() {
    let mut inj = FaultInjector::new(Loopback::new(), 9);
    inj.set_faults(ep::DATA_OUT, Faults { delay: 1.0, max_delay_polls: 1, ..Faults::NONE });
    inj.submit(ep::DATA_OUT, vec![1]).unwrap();
    inj.submit(ep::DATA_OUT, vec![2]).unwrap();
    assert!(inj.wait_next_complete(ep::DATA_OUT, T).is_none());
    assert_eq!(inj.wait_next_complete(ep::DATA_OUT, T).unwrap().buffer, vec![1]);
    assert!(inj.wait_next_complete(ep::DATA_OUT, T).is_none());
    assert_eq!(inj.wait_next_complete(ep::DATA_OUT, T).unwrap().buffer, vec![2]);
    assert_eq!(inj.stats().delayed, 2);
}

#[test]
fn stall_sticks_until_cleared_or_reset() {
    let mut inj = FaultInjector::new(Loopback::new(), 11);
    inj.stall(ep::DATA_OUT);
    for _ in 0..2 {
        inj.submit(ep::DATA_OUT, vec![1]).unwrap();
        assert_eq!(inj.wait_next_complete(ep::DATA_OUT, T).unwrap().status, Err(TransferError::Stall));
    }
    inj.clear_stall(ep::DATA_OUT);
    inj.submit(ep::DATA_OUT, vec![1]).unwrap();
    assert_eq!(inj.wait_next_complete(ep::DATA_OUT, T).unwrap().status, Ok(()));
    inj.set_faults(ep::DATA_OUT, Faults { stall: 1.0, ..Faults::NONE });
    inj.submit(ep::DATA_OUT, vec![1]).unwrap();
    inj.set_faults(ep::DATA_OUT, Faults::NONE);
    inj.submit(ep::DATA_OUT, vec![1]).unwrap();
    assert_eq!(inj.wait_next_complete(ep::DATA_OUT, T).unwrap().status, Err(TransferError::Stall));
    assert_eq!(inj.wait_next_complete(ep::DATA_OUT, T).unwrap().status, Err(TransferError::Stall));
    inj.reset().unwrap();
    inj.submit(ep::DATA_OUT, vec![1]).unwrap();
    assert_eq!(inj.wait_next_complete(ep::DATA_OUT, T).unwrap().status, Ok(()));
    // CLEAR_FEATURE(ENDPOINT_HALT) through the trait clears the injected halt too, and
    // reaches the device below.
    inj.stall(ep::DATA_OUT);
    inj.submit(ep::DATA_OUT, vec![1]).unwrap();
    assert_eq!(inj.wait_next_complete(ep::DATA_OUT, T).unwrap().status, Err(TransferError::Stall));
    inj.clear_halt(ep::DATA_OUT).unwrap();
    inj.submit(ep::DATA_OUT, vec![1]).unwrap();
    assert_eq!(inj.wait_next_complete(ep::DATA_OUT, T).unwrap().status, Ok(()));
    // A control stall is a one-off protocol stall.
    inj.set_faults(0, Faults { stall: 1.0, ..Faults::NONE });
    let s = ControlSetup { request_type: 0x40, request: 1, value: 0, index: 0 };
    assert_eq!(inj.control_out(s, &[1], T), Err(TransferError::Stall));
    inj.set_faults(0, Faults::NONE);
    assert_eq!(inj.control_out(s, &[1], T), Ok(1));
    let log = inj.into_inner().control_log;
    assert!(log.iter().any(|(s, _)| *s == ControlSetup::clear_halt(ep::DATA_OUT)), "{log:?}");
}

#[test]
fn disconnect_completes_pending_and_fails_everything_after() {
    let mut inj = FaultInjector::new(Loopback::new(), 13);
    inj.disconnect_after(3);
    inj.submit(ep::DATA_IN, vec![0; 512]).unwrap();
    inj.submit(ep::DATA_IN, vec![0; 512]).unwrap();
    assert_eq!(inj.submit(ep::DATA_OUT, vec![1]), Err(TransferError::Disconnected));
    for _ in 0..2 {
        let c = inj.wait_next_complete(ep::DATA_IN, T).unwrap();
        assert_eq!((c.status, c.actual_len), (Err(TransferError::Disconnected), 0));
    }
    assert_eq!(inj.pending(ep::DATA_IN), 0);
    assert!(inj.wait_next_complete(ep::DATA_IN, T).is_none());
    let s = ControlSetup { request_type: 0xC0, request: 1, value: 0, index: 0 };
    assert_eq!(inj.control_in(s, &mut [0; 4], T), Err(TransferError::Disconnected));
    assert_eq!(inj.reset(), Err(TransferError::Disconnected));
    assert!(inj.stats().disconnected);
}

#[test]
fn random_disconnect_is_reproducible() {
    let run = |seed| {
        let mut inj = FaultInjector::new(Loopback::new(), seed);
        inj.set_disconnect(0.05);
        let seen = drive(&mut inj, 100);
        seen.iter().position(|s| s.contains("Disconnected"))
    };
    assert_eq!(run(42), run(42));
    assert!(run(42).is_some());
}
