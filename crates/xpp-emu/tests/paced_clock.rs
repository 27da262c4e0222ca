//! The paced real-time clock (`Emulator::paced`, MODEL.md TIME-21): a host that stops
//! reading holds the device clock instead of overflowing the `0x86` FIFO; a host that reads
//! gets the device running again, with no burst of held-back rounds; a host that answers
//! ticks late is waited for, tick by tick. Real time, so every
//! bound is loose and every wait bounded.

use std::time::{Duration as StdDuration, Instant as StdInstant};

use xpp_emu::config::Stage;
use xpp_emu::transport::ROUND_WAIT;
use xpp_emu::{ClockMode, DeviceConfig, Emulator};
use xpp_proto::Duration;
use xpp_proto::wire::{Address, Message, Pcm, Repr, parse_transfer};
use xpp_usb::{Transport, ep};

/// The bound under test.
const BOUND: usize = 8;
/// SYNC_SOURCE mode AB to XPD 0/0: the device starts ticking (TIME-4).
const SYNC_AB: [u8; 6] = [0x06, 0x00, 0x19, 0x00, 0x01, 0x00];

fn running() -> DeviceConfig {
    DeviceConfig::default().with_start_stage(Stage::Running)
}

fn ticks(emu: &Emulator) -> u64 {
    emu.with_device(|d| d.data().stats().ticks)
}

fn queued_and_overflow(emu: &Emulator) -> (usize, u64) {
    emu.with_device(|d| (d.in_queued(0, ep::DATA_IN), d.counters().in_overflow))
}

#[test]
fn a_host_that_does_not_read_holds_the_clock_without_overflow() {
    let (emu, runner) = Emulator::paced(running(), BOUND);
    assert_eq!(emu.mode(), ClockMode::Paced);
    let mut t = emu.transport(0).expect("running stage enumerated");
    let c = t.transfer_blocking(ep::DATA_OUT, SYNC_AB.to_vec(), StdDuration::from_secs(1));
    assert_eq!(c.status, Ok(()));
    // Nobody reads 0x86 for 300 ms of wall time (a real device would overflow after 64).
    std::thread::sleep(StdDuration::from_millis(300));
    let (queued, overflow) = queued_and_overflow(&emu);
    assert_eq!(overflow, 0, "no IN transfer discarded");
    // The bound, plus the SYNC_REPLY and at most one round past the check.
    assert!(queued > BOUND && queued <= BOUND + 3, "backlog {queued} held at the bound {BOUND}");
    let held = ticks(&emu);
    assert!(held <= BOUND as u64 + 2, "{held} ticks while nobody read");
    let lag = emu.pace_lag();
    assert!(lag >= Duration::from_millis(200), "the clock slipped behind the wall clock: {lag:?}");
    let frozen = emu.now();
    let frozen_wall = StdInstant::now();
    std::thread::sleep(StdDuration::from_millis(20));
    assert_eq!(emu.now(), frozen, "held: device time stands still");

    // The host reads (10 queued, as the driver does): the device runs again.
    for _ in 0..10 {
        t.submit(ep::DATA_IN, vec![0; 512]).unwrap();
    }
    let start = StdInstant::now();
    let mut got = 0u64;
    while start.elapsed() < StdDuration::from_millis(300) {
        if let Some(c) = t.wait_next_complete(ep::DATA_IN, StdDuration::from_millis(50)) {
            assert_eq!(c.status, Ok(()));
            got += 1;
            let mut b = c.buffer;
            b.resize(512, 0);
            t.submit(ep::DATA_IN, b).unwrap();
        }
    }
    let (queued, overflow) = queued_and_overflow(&emu);
    assert_eq!(overflow, 0);
    assert!(queued <= BOUND + 3, "backlog {queued}");
    // Loose: a loaded CI machine may run this thread slowly; the device follows it.
    assert!(got > 20, "{got} IN transfers in 300 ms of reading");
    assert!(ticks(&emu) > held + 20, "the device ticks again");
    // The held time was not caught up: the device moved no further than the wall clock did.
    let wall = Duration::from(frozen_wall.elapsed()) + Duration::from_millis(2);
    assert!(emu.now() <= frozen + wall, "no catch-up burst: {:?} in {wall:?}", emu.now() - frozen);
    // Advancing by hand has no effect: the runner owns the clock.
    let before = emu.now();
    emu.advance(Duration::from_secs(10));
    assert!(emu.now() < before + Duration::from_secs(1));
    drop(runner);
}

#[test]
fn the_plain_real_time_clock_overflows_for_the_same_host() {
    // The contrast: the same silent host against the unpaced clock loses transfers (USB-12).
    let (emu, runner) = Emulator::real_time(running());
    let mut t = emu.transport(0).unwrap();
    let c = t.transfer_blocking(ep::DATA_OUT, SYNC_AB.to_vec(), StdDuration::from_secs(1));
    assert_eq!(c.status, Ok(()));
    let end = StdInstant::now() + StdDuration::from_secs(5);
    while queued_and_overflow(&emu).1 == 0 {
        assert!(StdInstant::now() < end, "overflow within 5 s");
        std::thread::sleep(StdDuration::from_millis(20));
    }
    assert_eq!(emu.pace_lag(), Duration::ZERO);
    drop(runner);
}

/// One PCM_WRITE round with no lines for XPD 0/0 (TIME-14: a round begins).
fn empty_round() -> Vec<u8> {
    let pcm = Pcm::new(0, &[]).unwrap();
    let repr = Repr { addr: Address::new(0, 0).unwrap(), sync: true, message: Message::PcmWrite(pcm) };
    let mut buf = [0u8; 512];
    let n = repr.emit(&mut buf).unwrap();
    buf[..n].to_vec()
}

fn missed_extra(emu: &Emulator) -> (u64, u64, u64) {
    emu.with_device(|d| {
        let s = d.data().stats();
        (s.ticks, s.missed_rounds, s.extra_rounds)
    })
}

#[test]
fn a_host_that_answers_late_is_waited_for_tick_by_tick() {
    let (emu, runner) = Emulator::paced(running(), BOUND);
    let mut t = emu.transport(0).unwrap();
    let c = t.transfer_blocking(ep::DATA_OUT, SYNC_AB.to_vec(), StdDuration::from_secs(1));
    assert_eq!(c.status, Ok(()));
    for _ in 0..10 {
        t.submit(ep::DATA_IN, vec![0; 512]).unwrap();
    }
    // A slow host: every tick answered with a round, 5 ms after it arrived.
    // Counted from the 10th answer on: the first ticks go out before the host answered any
    // (nothing engages the wait yet), so they are missed rounds.
    let start = StdInstant::now();
    let mut before = None;
    let mut answered = 0u64;
    while start.elapsed() < StdDuration::from_millis(400) {
        if answered == 10 && before.is_none() {
            before = Some(missed_extra(&emu));
        }
        let Some(c) = t.wait_next_complete(ep::DATA_IN, StdDuration::from_millis(100)) else { continue };
        assert_eq!(c.status, Ok(()));
        let tick =
            parse_transfer(&c.buffer).any(|r| r.is_ok_and(|(_, r)| matches!(r.message, Message::PcmRead(_))));
        let mut b = c.buffer;
        b.resize(512, 0);
        t.submit(ep::DATA_IN, b).unwrap();
        if tick {
            std::thread::sleep(StdDuration::from_millis(5));
            let c = t.transfer_blocking(ep::DATA_OUT, empty_round(), StdDuration::from_secs(1));
            assert_eq!(c.status, Ok(()));
            answered += 1;
        }
    }
    let after = missed_extra(&emu);
    let before = before.expect("10 ticks answered");
    let answered = answered - 10;
    let (ticks, missed, extra) = (after.0 - before.0, after.1 - before.1, after.2 - before.2);
    // Unpaced, 400 ms would be 400 ticks and most intervals without a round.
    assert!(ticks <= answered + 2, "{ticks} ticks for {answered} rounds: the device waited for each");
    assert!(missed <= 2 && extra <= 2, "missed {missed}, extra {extra} in {ticks} ticks");
    assert!(emu.pace_lag() >= Duration::from_millis(100), "held {:?}", emu.pace_lag());

    // The host stops answering: one wait of ROUND_WAIT, then the device ticks on freely.
    let (t0, _, _) = missed_extra(&emu);
    let end = StdInstant::now() + ROUND_WAIT + StdDuration::from_millis(300);
    while StdInstant::now() < end {
        if let Some(c) = t.wait_next_complete(ep::DATA_IN, StdDuration::from_millis(20)) {
            let mut b = c.buffer;
            b.resize(512, 0);
            t.submit(ep::DATA_IN, b).unwrap();
        }
    }
    let (t1, _, _) = missed_extra(&emu);
    assert!(t1 - t0 > 50, "only {} ticks after the host stopped answering", t1 - t0);
    drop(runner);
}
