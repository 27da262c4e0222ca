//! The master-timing election across the driver's devices (docs/reference/xpp-protocol.md §7.4): two
//! real-time emulated devices in one driver, one master (AB), the other PLL; unplugging the
//! master re-elects. Every wait is bounded.

use std::time::Instant as StdInstant;

use xpp_driver::{DeviceId, Driver, DriverEvent, DriverOptions, ErrorCode};
use xpp_emu::config::Stage as EmuStage;
use xpp_emu::{DeviceConfig, Emulator};
use xpp_proto::wire::SyncMode;
use xpp_usb::SystemClock;

mod common;
use common::{WAIT, eventually, open, within};

fn mode(drv: &Driver, d: usize) -> SyncMode {
    drv.sync_state(DeviceId(d)).map_or(SyncMode::None, |s| s.mode)
}

#[test]
fn two_devices_one_master_the_other_pll_and_re_election_on_unplug() {
    within(60, || {
        let cfg = DeviceConfig::default().with_start_stage(EmuStage::Running);
        // Device 1's crystal is 100 ppm slow: its drift loop must trim it.
        let mut slow = cfg.clone();
        slow.data.crystal_ppm = 100;
        let (emu_a, _run_a) = Emulator::real_time(cfg);
        let (emu_b, _run_b) = Emulator::real_time(slow);
        let drv = Driver::new(SystemClock::new(), DriverOptions::default());
        let rx = drv.events();
        for emu in [&emu_a, &emu_b] {
            open(&drv, emu);
        }
        // The first READY device is master (no digital span has a timing priority).
        assert_eq!(drv.sync_master(), Some(DeviceId(0)));
        eventually("device 0 AB, device 1 PLL", || {
            mode(&drv, 0) == SyncMode::Ab && mode(&drv, 1) == SyncMode::Pll
        });
        assert_eq!(emu_a.with_device(|d| d.data_mut().sync_state().mode), SyncMode::Ab);
        assert_eq!(emu_b.with_device(|d| d.data_mut().sync_state().mode), SyncMode::Pll);
        // Both keep ticking.
        for d in 0..2 {
            drv.wait_tick(DeviceId(d), WAIT).unwrap();
        }
        // Device 1's drift loop is fed the master's ticks and trims it (the run loops are
        // threads, so tick timestamps jitter by scheduling; the loop's pairing keeps that from
        // looking like lost ticks); the device applies the trim and reports it back.
        // Its crystal is slow, so the trims speed it up (negative: the emulator's convention,
        // MODEL TIME-9); two of them show the loop steering, not a one-off.
        eventually("device 1 trimmed twice toward faster", || {
            drv.stats(DeviceId(1)).is_ok_and(|s| s.drift_commands >= 2)
                && emu_b.with_device(|d| d.data_mut().sync_state().drift) <= -2
        });
        let pll = drv.drift_stats(DeviceId(1)).unwrap();
        assert!(pll.cycles > 0, "{pll:?}");
        let master = drv.drift_stats(DeviceId(0)).unwrap();
        assert_eq!((master.cycles, master.skipped_cycles), (0, 0), "{master:?}");
        assert_eq!(drv.stats(DeviceId(0)).unwrap().drift_commands, 0);
        // The master is unplugged: device 1 is elected and switched to AB.
        emu_a.with_device(|d| {
            let now = d.now();
            d.unplug(now, 0);
        });
        let end = StdInstant::now() + WAIT;
        loop {
            let left = end.saturating_duration_since(StdInstant::now());
            match rx.recv_timeout(left) {
                Ok(DriverEvent::DeviceRemoved { device: DeviceId(0) }) => break,
                Ok(_) => {}
                Err(e) => panic!("no DeviceRemoved: {e}"),
            }
        }
        eventually("device 1 elected", || drv.sync_master() == Some(DeviceId(1)));
        eventually("device 1 AB", || mode(&drv, 1) == SyncMode::Ab);
        assert_eq!(emu_b.with_device(|d| d.data_mut().sync_state().mode), SyncMode::Ab);
        drv.wait_tick(DeviceId(1), WAIT).unwrap();
        // Closing the last running device leaves no master.
        drv.close_device(DeviceId(1)).unwrap();
        assert_eq!(drv.sync_master(), None);
        drv.close();
    });
}

/// Opens a running-stage emulated FXS + FXO device (real time) in `drv`.
fn open_running(drv: &Driver) -> (Emulator, xpp_emu::RealTimeRunner, DeviceId) {
    let (emu, runner) = Emulator::real_time(DeviceConfig::default().with_start_stage(EmuStage::Running));
    let id = open(drv, &emu);
    (emu, runner, id)
}

#[test]
fn a_device_that_comes_back_gets_its_numbers_again() {
    within(60, || {
        let drv = Driver::new(SystemClock::new(), DriverOptions::default());
        let rx = drv.events();
        let (emu_a, _run_a, a) = open_running(&drv);
        let (_emu_b, _run_b, b) = open_running(&drv);
        let numbers = |id| {
            let spans: Vec<u32> = drv.spans().iter().filter(|s| s.device == id).map(|s| s.spanno).collect();
            let chans: Vec<u32> =
                drv.channels().iter().filter(|c| c.device == id).map(|c| c.channo).collect();
            (spans, chans.first().copied(), chans.last().copied())
        };
        assert_eq!(numbers(a), (vec![1, 2], Some(1), Some(22)));
        assert_eq!(numbers(b), (vec![3, 4], Some(23), Some(44)));
        // Device A is unplugged: its channels answer REMOVED until a device takes them.
        emu_a.with_device(|d| {
            let now = d.now();
            d.unplug(now, 0);
        });
        let end = StdInstant::now() + WAIT;
        loop {
            match rx.recv_timeout(end.saturating_duration_since(StdInstant::now())) {
                Ok(DriverEvent::DeviceRemoved { device }) if device == a => break,
                Ok(_) => {}
                Err(e) => panic!("no DeviceRemoved: {e}"),
            }
        }
        // Only its numbers remain (issue 15: its core is dropped): they answer REMOVED, and the
        // listings show the running device only.
        assert_eq!(drv.channel(1).unwrap_err().code(), ErrorCode::ChanRemoved);
        assert_eq!(drv.write_chunk(1, &[0xFF; 8]).unwrap_err().code(), ErrorCode::ChanRemoved);
        assert_eq!(numbers(a), (vec![], None, None), "a removed device is not listed");
        assert_eq!(drv.spans().len(), 2);
        assert_eq!(drv.is_running(a).ok(), Some(false));
        // It comes back (a new device as far as USB goes): the first free numbers are its old ones.
        let (_emu_c, _run_c, c) = open_running(&drv);
        assert_ne!(c, a);
        assert_eq!(numbers(c), (vec![1, 2], Some(1), Some(22)));
        assert_eq!(numbers(a), (vec![], None, None), "the removed device is no longer listed");
        assert_eq!(drv.channel(1).unwrap().device, c);
        drv.write_chunk(1, &[0xFF; 8]).unwrap();
        assert_eq!(drv.spans().len(), 4);
        // A fourth device goes after the last one in use.
        let (_emu_d, _run_d, d) = open_running(&drv);
        assert_eq!(numbers(d), (vec![5, 6], Some(45), Some(66)));
        drv.close();
    });
}

#[test]
fn a_line_timed_pri_becomes_timing_master_and_loses_it_with_its_line() {
    within(60, || {
        use xpp_emu::config::ModuleConfig;
        let drv = Driver::new(SystemClock::new(), DriverOptions::default());
        // An FXS-only device first: with no digital span it is master.
        let (_emu_a, _run_a, a) = open_running(&drv);
        assert_eq!(drv.sync_master(), Some(a));
        // A device with an E1 port (timing priority 1, the card init's): once its first FRS0
        // poll says layer 1 is up, the line-timed span takes the timing over.
        let pri = DeviceConfig::default().with_start_stage(EmuStage::Running).with_slots([
            Some(ModuleConfig::PRI_E1),
            None,
            None,
            None,
        ]);
        let (emu_b, _run_b) = Emulator::real_time(pri);
        let b = open(&drv, &emu_b);
        eventually("the PRI device elected", || drv.sync_master() == Some(b));
        eventually("device B AB, device A PLL", || {
            mode(&drv, b.0) == SyncMode::Ab && mode(&drv, a.0) == SyncMode::Pll
        });
        let span = drv.spans().into_iter().find(|s| s.device == b).expect("the E1 span");
        assert_eq!(drv.alarms(span.spanno).unwrap(), xpp_span::Alarms::EMPTY);
        // The E1 loses its signal: RED, and the timing goes back to the analog device.
        emu_b.with_device(|d| {
            let now = d.now();
            d.data_mut().pri_far_end_mut(0, 0).expect("E1 far end").set_connected(now, false);
        });
        eventually("span RED", || drv.alarms(span.spanno).is_ok_and(|al| al == xpp_span::Alarms::RED));
        eventually("device A elected again", || drv.sync_master() == Some(a));
        drv.close();
    });
}
