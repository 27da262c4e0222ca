//! The paced real-time clock (`Emulator::paced`, MODEL.md TIME-21): a host that stops
//! reading holds the device clock instead of overflowing the `0x86` FIFO; a host that reads
//! gets the device running again, with no burst of held-back rounds. Real time, so every
//! bound is loose and every wait bounded.

use std::time::{Duration as StdDuration, Instant as StdInstant};

use xpp_emu::config::Stage;
use xpp_emu::{ClockMode, DeviceConfig, Emulator};
use xpp_proto::Duration;
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
