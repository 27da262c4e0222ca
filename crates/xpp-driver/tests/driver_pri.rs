//! A PRI span through the driver's PBX API, on the emulator (`ClockMode::AutoAdvance`): the
//! span's line configuration from `system.conf`, its alarms as events, CAS bits, and a Q.921
//! link over the D-channel with the emulated far end's peer. Every wait is bounded.

use xpp_driver::{Driver, DriverEvent, DriverOptions};
use xpp_emu::config::{ModuleConfig, Stage as EmuStage};
use xpp_emu::{ClockMode, DeviceConfig, Emulator};
use xpp_span::xbus::{ChanError, Framing, LineCode, LineSetup};
use xpp_span::{Alarms, Event, Sig};

mod common;
use common::{eventually, open, until, within};

/// One E1 port: span 1, channels 1..31, the D-channel channel 16.
const DCHAN: u32 = 16;

fn e1() -> (Emulator, Driver) {
    let cfg = DeviceConfig::default().with_start_stage(EmuStage::Running).with_slots([
        Some(ModuleConfig::PRI_E1),
        None,
        None,
        None,
    ]);
    let emu = Emulator::with_mode(cfg, ClockMode::AutoAdvance);
    let drv = Driver::new(emu.clone(), DriverOptions::default());
    open(&drv, &emu);
    (emu, drv)
}

fn far(emu: &Emulator, f: impl FnOnce(&mut xpp_emu::data::PriFarEnd, xpp_proto::Instant)) {
    emu.with_device(|d| {
        let now = d.now();
        f(d.data_mut().pri_far_end_mut(0, 0).expect("E1 far end"), now);
    });
}

#[test]
fn system_conf_configures_and_starts_the_span() {
    within(60, || {
        let (_emu, drv) = e1();
        let span = &drv.spans()[0];
        // The defaults started it: CCS, HDB3, CRC-4, first-choice slave.
        assert_eq!(span.started, Some(true));
        assert_eq!(
            span.line_setup,
            Some(LineSetup { framing: Framing::Ccs, code: LineCode::Hdb3, crc4: true, lbo: 0 })
        );
        assert_eq!(span.timing_priority, 1);
        let conf =
            xpp_span::sysconf::parse_str("system.conf", "span=1,0,0,cas,ami\ncas=1-15,17-31:1101\n").unwrap();
        let applied = drv.apply_system_conf("system.conf", &conf).unwrap();
        assert_eq!(applied.spans, [1]);
        let span = &drv.spans()[0];
        assert_eq!(
            span.line_setup,
            Some(LineSetup { framing: Framing::Cas, code: LineCode::Ami, crc4: false, lbo: 0 })
        );
        assert_eq!(span.timing_priority, 0);
        assert_eq!(drv.channel(1).unwrap().sig, Sig::Cas);
        // A T1 keyword on the E1: refused with its place, nothing changed.
        let bad = xpp_span::sysconf::parse_str("system.conf", "span=1,2,0,esf,b8zs\n").unwrap();
        let err = drv.apply_system_conf("system.conf", &bad).unwrap_err().to_string();
        assert!(err.contains("system.conf:1:1") && err.contains("`esf`"), "{err}");
        assert_eq!(drv.spans()[0].timing_priority, 0);
        drv.close();
    });
}

#[test]
fn alarms_reach_the_pbx_as_events_and_cas_bits_go_both_ways() {
    within(60, || {
        let (emu, drv) = e1();
        let rx = drv.events();
        let conf = xpp_span::sysconf::parse_str("system.conf", "span=1,1,0,cas,hdb3\ncas=1-15,17-31:1101\n")
            .unwrap();
        drv.apply_system_conf("system.conf", &conf).unwrap();
        far(&emu, |f, now| f.set_connected(now, false));
        until(
            &rx,
            |e| matches!(e, DriverEvent::SpanAlarms { spanno: 1, alarms, .. } if *alarms == Alarms::RED),
        );
        until(&rx, |e| matches!(e, DriverEvent::Chan { channo: 1, event: Event::ALARM, .. }));
        far(&emu, |f, now| f.set_connected(now, true));
        until(&rx, |e| matches!(e, DriverEvent::SpanAlarms { spanno: 1, alarms, .. } if alarms.is_empty()));
        until(&rx, |e| matches!(e, DriverEvent::Chan { channo: 1, event: Event::NOALARM, .. }));
        // Out: channel 1 (logical 0) high nibble of register 0x71.
        drv.set_tx_bits(1, 0xA).unwrap();
        eventually("the far end sees the bits", || {
            emu.with_device(|d| d.data_mut().pri_far_end_mut(0, 0).unwrap().rx_cas()[1]) == 0xA0
        });
        // In: register 0x72 carries channels 2 (high) and 18 (low).
        far(&emu, |f, _| f.set_cas_reg(0x72, 0x5C));
        eventually("channel 2 receives 0x5", || drv.rx_bits(2).is_ok_and(|b| b == Some(0x5)));
        until(&rx, |e| matches!(e, DriverEvent::Chan { channo: 2, event: Event::BITSCHANGED, .. }));
        assert_eq!(drv.rx_bits(18).unwrap(), Some(0xC));
        drv.close();
    });
}

/// SABME until the far end's UA (Q.921's T200 retransmission: a frame hit by a late tick in
/// real time is sent again); the number of tries.
fn establish(drv: &Driver, buf: &mut [u8]) -> usize {
    for attempt in 1..=10 {
        // SABME, P = 1 (address SAPI 0, C/R = 1, TEI 0) with the two FCS placeholders.
        drv.write_frame(DCHAN, &[0x02, 0x01, 0x7F, 0, 0]).unwrap();
        match drv.read_frame_blocking(DCHAN, buf, std::time::Duration::from_millis(300)) {
            Ok(5) if buf[2] == 0x73 => return attempt,
            Ok(_) | Err(xpp_driver::DriverError::Timeout) => {}
            Err(e) => panic!("{e}"),
        }
    }
    panic!("no UA in 10 tries");
}

#[test]
fn a_q921_link_comes_up_through_the_driver() {
    within(60, || {
        // Real time: the D-channel's bytes go out in every tick, as on hardware.
        let cfg = DeviceConfig::default().with_start_stage(EmuStage::Running).with_slots([
            Some(ModuleConfig::PRI_E1),
            None,
            None,
            None,
        ]);
        let (emu, _runner) = Emulator::real_time(cfg);
        let drv = Driver::new(xpp_usb::SystemClock::new(), DriverOptions::default());
        open(&drv, &emu);
        far(&emu, |f, _| f.set_q921(true));
        assert_eq!(drv.channel(DCHAN).unwrap().sig, Sig::HdlcFcs);
        let mut buf = [0u8; 260];
        assert!(matches!(
            drv.read_frame(1, &mut buf),
            Err(xpp_driver::DriverError::Chan(ChanError::NotHdlc(1)))
        ));
        establish(&drv, &mut buf);
        assert!(
            emu.with_device(|d| d.data_mut().pri_far_end_mut(0, 0).unwrap().q921().unwrap().established())
        );
        // An I-frame (N(S) 0, N(R) 0, P) is acknowledged: RR N(R) = 1, F = 1 (sent again
        // as T200 would, while no acknowledgement came).
        let acked = (0..10).any(|_| {
            drv.write_frame(DCHAN, &[0x02, 0x01, 0x00, 0x01, 0x08, 0x01, 0x00, 0x05, 0, 0]).unwrap();
            drv.read_frame_blocking(DCHAN, &mut buf, std::time::Duration::from_millis(300))
                .is_ok_and(|n| buf[2..n - 2] == [0x01, 0x03])
        });
        assert!(acked, "RR N(R) = 1 within 10 tries");
        assert!(drv.hdlc_stats(DCHAN).unwrap().rx_frames >= 2);
        // The span's chunks in one call: the 30 bearers (the D-channel carries frames).
        let mut span = [[0u8; 8]; 31];
        assert_eq!(drv.read_span_chunks(1, &mut span).unwrap(), 30);
        assert_eq!(drv.write_span_chunks(1, &span).unwrap(), 30);
        drv.close();
    });
}
