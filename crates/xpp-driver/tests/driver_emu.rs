//! The driver (run loop + PBX API) on the emulator.
//!
//! The emulator runs in `ClockMode::AutoAdvance`: virtual time moves only while the run loop
//! waits for an IN transfer, so a test never sleeps through device time (a 1.25 s hang-up
//! debounce takes milliseconds). Most tests use `Pacing::FreeRunning` and assert on what
//! happens (events, states), never on wall-clock timing; the one that places faults at
//! virtual times runs in `Pacing::Lockstep` (one tick per blocking call of the test). Every
//! wait is bounded.

use std::time::Duration as StdDuration;

use crossbeam_channel::Receiver;
use xpp_bringup::{BringUpConfig, RunOptions};
use xpp_driver::{DeviceId, Driver, DriverError, DriverEvent, DriverOptions, Pacing};
use xpp_emu::config::Stage as EmuStage;
use xpp_emu::fault::{FaultAction, FaultEndpoint, FaultRule, FaultTrigger};
use xpp_emu::{ClockMode, DeviceConfig, Emulator};
use xpp_proto::Instant;
use xpp_proto::mgmt::{OwnedReply, Request};
use xpp_span::hook::{HookMode, HookOutcome};
use xpp_span::sysconf::{ConfErrorKind, parse_str};
use xpp_span::xbus::ChanError;
use xpp_span::{Alarms, Event, HookCmd, Sig, SpanType};

mod common;
use common::{WAIT, firmware, until, within};

const FXS1: u32 = 1;
const FXO1: u32 = 15;
const CHANNELS: u32 = 22;

/// An FXS + FXO device powered on in `stage`, brought up and attached.
fn start(stage: EmuStage, options: DriverOptions) -> (Emulator, Driver, DeviceId, Receiver<DriverEvent>) {
    start_with(DeviceConfig::default().with_start_stage(stage), options)
}

/// [`start`] with a device configuration.
fn start_with(
    cfg: DeviceConfig,
    options: DriverOptions,
) -> (Emulator, Driver, DeviceId, Receiver<DriverEvent>) {
    let emu = Emulator::with_mode(cfg, ClockMode::AutoAdvance);
    let fw = firmware();
    let drv = Driver::new(emu.clone(), options);
    let rx = drv.events();
    let e2 = emu.clone();
    let id = drv
        .open(move || e2.transport(0), BringUpConfig::default(), fw, RunOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));
    (emu, drv, id, rx)
}

/// Acts on the phone on FXS port 1 at the device's current time.
fn phone(emu: &Emulator, f: impl FnOnce(&mut xpp_emu::data::Phone, Instant)) {
    emu.with_device(|d| {
        let now = d.now();
        f(d.data_mut().phone_mut(0, 0).expect("phone"), now);
    });
}

fn chan_event(e: &DriverEvent, ch: u32, ev: Event) -> bool {
    matches!(e, DriverEvent::Chan { channo, event, .. } if *channo == ch && *event == ev)
}

#[test]
fn bring_up_from_running_lists_spans_and_channels() {
    within(60, || {
        let (_emu, drv, id, rx) = start(EmuStage::Running, DriverOptions::default());
        let seen = until(&rx, |e| matches!(e, DriverEvent::DeviceReady { .. }));
        assert!(
            seen.iter().any(|e| matches!(e, DriverEvent::BringUp(_))),
            "bring-up progress on the channel"
        );
        assert_eq!(
            seen.last(),
            Some(&DriverEvent::DeviceReady { device: id, spans: 1..=2, channels: 1..=CHANNELS })
        );
        let spans = drv.spans();
        let s: Vec<_> =
            spans.iter().map(|s| (s.spanno, s.name.as_str(), s.spantype, s.basechan, s.channels)).collect();
        assert_eq!(
            s,
            [
                (1, "XBUS-00/XPD-00", SpanType::AnalogFxs, 1, 14),
                (2, "XBUS-00/XPD-10", SpanType::AnalogFxo, 15, 8)
            ]
        );
        let chans = drv.channels();
        assert_eq!(chans.len(), CHANNELS as usize);
        assert_eq!((chans[0].name.as_str(), chans[0].sig), ("XPP_FXS/00/00/0", Sig::Fxoks));
        assert_eq!(drv.channel(FXO1).unwrap().sig, Sig::Fxsks);
        assert!(matches!(drv.channel(99), Err(DriverError::NoSuchChannel(99))));
        assert_eq!(drv.alarms(1).unwrap(), Alarms::EMPTY);
        assert!(matches!(drv.alarms(7), Err(DriverError::NoSuchSpan(7))));
        let phases = drv.bring_up_result(id).unwrap().timeline.len();
        assert!(phases >= 5, "{phases}");
        // The device ticks and the loop follows.
        let t0 = drv.tick_count(id).unwrap();
        let t1 = drv.wait_tick(id, WAIT).unwrap();
        assert!(t1 > t0);
        // Configuration through the handle.
        drv.configure_chan(FXS1, Sig::Fxsks).expect_err("an FXS port has FXO signalling only");
        drv.configure_chan(FXS1, Sig::Fxoks).unwrap();
        drv.close();
    });
}

#[test]
fn events_on_the_channel_and_blocking_reads() {
    within(60, || {
        let (emu, drv, _id, rx) = start(EmuStage::Running, DriverOptions::default());
        until(&rx, |e| matches!(e, DriverEvent::DeviceReady { .. }));
        // Phone 1 off-hook: RINGOFFHOOK on channel 1.
        phone(&emu, |p, now| p.off_hook(now));
        until(&rx, |e| chan_event(e, FXS1, Event::RINGOFFHOOK));
        // Audio the phone sends arrives in the channel's chunks.
        emu.with_device(|d| {
            d.data_mut().phone_mut(0, 0).unwrap().play(xpp_emu::data::g711::Source::tone_1k());
        });
        let mut chunk = [0u8; 8];
        let mut voiced = 0;
        for _ in 0..50 {
            drv.read_chunk_blocking(FXS1, &mut chunk, WAIT).unwrap();
            if chunk.iter().any(|&b| b != 0xFF && b != 0x7F) {
                voiced += 1;
            }
        }
        assert!(voiced > 40, "{voiced} voiced chunks of 50");
        // Hang-up: ONHOOK after the debounce.
        phone(&emu, |p, now| p.on_hook(now));
        until(&rx, |e| chan_event(e, FXS1, Event::ONHOOK));
        // The PBX rings the phone; it rings.
        let _ = drv.set_hook(FXS1, HookCmd::Ring, HookMode::NonBlocking).unwrap();
        until(&rx, |e| chan_event(e, FXS1, Event::RINGERON));
        drv.close();
    });
}

#[test]
fn hook_flash_blocking_waits_nonblocking_completes_with_hookcomplete() {
    within(60, || {
        let (_emu, drv, id, rx) = start(EmuStage::Running, DriverOptions::default());
        until(&rx, |e| matches!(e, DriverEvent::DeviceReady { .. }));
        // Off-hook on the FXO port once its VBAT poll has seen the line's battery.
        let mut tries = 0;
        while drv.set_hook(FXO1, HookCmd::OffHook, HookMode::Blocking).is_err() {
            tries += 1;
            assert!(tries < 5000, "no battery on the FXO line");
            drv.wait_tick(id, WAIT).unwrap();
        }
        // Non-blocking: EINPROGRESS now, HOOKCOMPLETE when the 50 + 750 ms flash ends (the
        // loop runs freely, so only the event's own virtual time is exact; the upper bound
        // leaves room for this thread being late).
        let t0 = drv.now();
        assert_eq!(
            drv.set_hook(FXO1, HookCmd::Flash, HookMode::NonBlocking).unwrap(),
            HookOutcome::InProgress
        );
        let seen = until(&rx, |e| chan_event(e, FXO1, Event::HOOKCOMPLETE));
        let Some(DriverEvent::Chan { at, .. }) = seen.last() else { unreachable!() };
        let took = at.saturating_duration_since(t0).total_millis();
        assert!((800..2000).contains(&took), "flash took {took} ms");
        // Blocking: returns only once the flash is over (at least 800 device ticks later), with
        // no HOOKCOMPLETE.
        let t1 = drv.tick_count(id).unwrap();
        assert_eq!(drv.set_hook(FXO1, HookCmd::Flash, HookMode::Blocking).unwrap(), HookOutcome::Done);
        let took = drv.tick_count(id).unwrap() - t1;
        assert!((790..5000).contains(&took), "blocking flash returned after {took} ticks");
        for _ in 0..20 {
            drv.wait_tick(id, WAIT).unwrap();
        }
        let late: Vec<_> = rx.try_iter().filter(|e| chan_event(e, FXO1, Event::HOOKCOMPLETE)).collect();
        assert!(late.is_empty(), "{late:?}");
        drv.close();
    });
}

#[test]
fn bursts_of_lost_frames_mid_call_are_counted_and_raise_no_events() {
    within(60, || {
        let ms = Instant::from_millis;
        let lose = |from, until| {
            FaultRule::new(FaultEndpoint::Ep(0x86), FaultAction::Drop).during(ms(from), ms(until))
        };
        let mut cfg = DeviceConfig::default().with_start_stage(EmuStage::Running);
        cfg.core.faults = vec![
            // Two bursts of lost IN frames (50 ms and 20 ms), and 2 % of the frames cut short.
            lose(1500, 1550),
            lose(2500, 2520),
            FaultRule::new(FaultEndpoint::Ep(0x86), FaultAction::Truncate(6))
                .when(FaultTrigger::PerMillion(20_000))
                .during(ms(1000), ms(3500)),
        ];
        // Lockstep: the loop runs one tick per blocking call of this thread, so the faults'
        // virtual times fall where this test expects them, however the machine schedules it.
        let (emu, drv, id, rx) = start_with(cfg, DriverOptions::default().with_pacing(Pacing::Lockstep));
        // Ticks until `pred` holds for an event; the events seen.
        let ticks_until = |pred: &dyn Fn(&DriverEvent) -> bool| {
            let mut seen = Vec::new();
            for _ in 0..5000 {
                drv.wait_tick(id, WAIT).unwrap();
                seen.extend(rx.try_iter());
                if seen.iter().any(pred) {
                    return seen;
                }
            }
            panic!("not seen in 5000 ticks: {seen:?}");
        };
        ticks_until(&|e| matches!(e, DriverEvent::DeviceReady { .. }));
        phone(&emu, |p, now| p.off_hook(now));
        ticks_until(&|e| chan_event(e, FXS1, Event::RINGOFFHOOK));
        emu.with_device(|d| {
            d.data_mut().phone_mut(0, 0).unwrap().play(xpp_emu::data::g711::Source::tone_1k());
        });
        assert!(emu.now() < ms(1000), "the call is up before the faults start");
        // The call goes on through the faults; audio keeps arriving.
        let (mut chunk, mut reads, mut voiced) = ([0u8; 8], 0, 0);
        while emu.now() < ms(4000) {
            drv.read_chunk_blocking(FXS1, &mut chunk, WAIT).unwrap();
            reads += 1;
            voiced += usize::from(chunk.iter().any(|&b| b != 0xFF && b != 0x7F));
        }
        assert!(voiced * 100 >= reads * 95, "{voiced} voiced chunks of {reads}");
        // Counted, not reported: no hook event, no alarm, the device keeps running.
        let st = drv.stats(id).unwrap();
        assert!(st.late_ticks >= 2, "{st:?}");
        assert!((50_000..60_000).contains(&st.max_tick_interval_us), "{st:?}");
        assert!(st.rx_errors >= 5, "{st:?}");
        assert!(drv.is_running(id).unwrap());
        let spurious: Vec<_> =
            rx.try_iter().filter(|e| matches!(e, DriverEvent::Chan { at, .. } if *at >= ms(1000))).collect();
        assert!(spurious.is_empty(), "{spurious:?}");
        assert_eq!(drv.alarms(1).unwrap(), Alarms::EMPTY);
        // The line still works: hang-up is seen.
        phone(&emu, |p, now| p.on_hook(now));
        ticks_until(&|e| chan_event(e, FXS1, Event::ONHOOK));
        drv.close();
    });
}

#[test]
fn blocking_read_times_out_when_the_device_stops_ticking() {
    within(60, || {
        let (emu, drv, id, _rx) = start(EmuStage::Running, DriverOptions::default());
        let mut chunk = [0u8; 8];
        drv.read_chunk_blocking(FXS1, &mut chunk, WAIT).unwrap();
        // The device stops ticking (its session ends) but stays attached.
        emu.with_device(|d| d.data_mut().stop_session());
        // (A frame already on its way may still tick once or twice.)
        let mut r = Ok(());
        for _ in 0..5 {
            r = drv.read_chunk_blocking(FXS1, &mut chunk, StdDuration::from_millis(200));
            if r.is_err() {
                break;
            }
        }
        assert!(matches!(r, Err(DriverError::Timeout)), "{r:?}");
        assert!(drv.is_running(id).unwrap());
        drv.close();
    });
}

#[test]
fn surprise_removal_sends_removed_everywhere_and_ends_the_loop() {
    within(60, || {
        let (emu, drv, id, rx) = start(EmuStage::Running, DriverOptions::default());
        until(&rx, |e| matches!(e, DriverEvent::DeviceReady { .. }));
        phone(&emu, |p, now| p.off_hook(now));
        until(&rx, |e| chan_event(e, FXS1, Event::RINGOFFHOOK));
        emu.with_device(|d| {
            let now = d.now();
            d.unplug(now, 0);
        });
        let seen = until(&rx, |e| matches!(e, DriverEvent::DeviceRemoved { .. }));
        for ch in 1..=CHANNELS {
            assert!(seen.iter().any(|e| chan_event(e, ch, Event::REMOVED)), "REMOVED on channel {ch}");
        }
        assert!(!drv.is_running(id).unwrap());
        let mut chunk = [0u8; 8];
        assert!(matches!(
            drv.read_chunk_blocking(FXS1, &mut chunk, WAIT),
            Err(DriverError::Chan(ChanError::Removed))
        ));
        assert!(matches!(drv.write_chunk(FXS1, &chunk), Err(DriverError::Chan(ChanError::Removed))));
        assert_eq!(drv.alarms(1).unwrap(), Alarms::NOTOPEN);
        // The thread is gone: joining returns at once.
        drv.close_device(id).unwrap();
        drv.close();
    });
}

#[test]
fn orderly_close_stops_the_device_and_joins() {
    within(60, || {
        let (emu, drv, id, rx) = start(EmuStage::Running, DriverOptions::default());
        until(&rx, |e| matches!(e, DriverEvent::DeviceReady { .. }));
        drv.wait_tick(id, WAIT).unwrap();
        assert!(emu.with_device(|d| d.data().is_ticking()));
        drv.close_device(id).unwrap();
        let seen = until(&rx, |e| matches!(e, DriverEvent::DeviceClosed { .. }));
        assert!((1..=CHANNELS).all(|ch| seen.iter().any(|e| chan_event(e, ch, Event::REMOVED))));
        assert!(!drv.is_running(id).unwrap());
        // SYNC_SOURCE NONE reached the device: it no longer ticks.
        emu.advance(xpp_proto::Duration::from_millis(5));
        assert!(!emu.with_device(|d| d.data().is_ticking()));
        assert!(matches!(drv.wait_tick(id, WAIT), Err(DriverError::Chan(ChanError::Removed))));
        // The counters stay readable after the close (tools report them).
        assert!(drv.stats(id).unwrap().ticks > 0);
    });
}

#[test]
fn system_conf_applied_to_the_running_driver() {
    within(60, || {
        let (_emu, drv, _id, rx) =
            start(EmuStage::Running, DriverOptions::default().with_configure_defaults(false));
        until(&rx, |e| matches!(e, DriverEvent::DeviceReady { .. }));
        drv.wait_tick(DeviceId(0), WAIT).unwrap();
        assert_eq!(drv.channel(FXS1).unwrap().sig, Sig::None, "not configured at attach");
        // A mismatched file: the error names file:line:column and nothing changes.
        let bad = parse_str("system.conf", "fxoks=1-8\n# FXS signalling on an FXS port\nfxsks=9\n").unwrap();
        let errs = drv.apply_system_conf("system.conf", &bad).unwrap_err();
        assert!(matches!(errs.0[0].kind, ConfErrorKind::NotPermitted { chan: 9, sig: Sig::Fxsks, .. }));
        assert!(errs.to_string().starts_with("system.conf:3:1: channel 9"), "{errs}");
        assert!(drv.channels().iter().all(|c| c.sig == Sig::None), "nothing applied");
        // A good one, from a file: every analog port gets its signalling.
        let path = std::env::temp_dir().join(format!("xpp-driver-system-{}.conf", std::process::id()));
        std::fs::write(&path, "fxoks=1-8\nfxsks=15-22\n").unwrap();
        let applied = drv.load_system_conf(&path);
        let _ = std::fs::remove_file(&path);
        let applied = applied.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(applied.configured.len(), 16);
        for ch in 1..=8 {
            assert_eq!(drv.channel(ch).unwrap().sig, Sig::Fxoks, "channel {ch}");
        }
        for ch in 15..=22 {
            assert_eq!(drv.channel(ch).unwrap().sig, Sig::Fxsks, "channel {ch}");
        }
        // Re-applying changes nothing (dahdi_cfg's "skip if unchanged").
        let again = parse_str("system.conf", "fxols=1\nfxoks=2-8\nfxsks=15-22\n").unwrap();
        let applied = drv.apply_system_conf("system.conf", &again).unwrap();
        assert_eq!(applied.configured, [(1, Sig::Fxols)]);
        assert_eq!(applied.unchanged.len(), 15);
        assert_eq!(drv.channel(1).unwrap().sig, Sig::Fxols);
        // The device still runs.
        drv.wait_tick(DeviceId(0), WAIT).unwrap();
        drv.close();
    });
}

/// The management (MPP) lane of a running device: STATUS_GET, TWS_PORT_GET and
/// TWS_WD_MODE_SET/GET answered while the device keeps ticking; a request the device refuses
/// fails as `Mgmt`; TWS_PORT_SET (unanswered) completes once sent and the device jumps to the
/// other port (a removal here); a request on the removed device fails as `Removed`.
#[test]
fn management_requests_beside_the_data_stream() {
    within(60, || {
        let cfg = DeviceConfig::default().with_twinstar(true).with_start_stage(EmuStage::Running);
        let (emu, drv, id, rx) = start_with(cfg, DriverOptions::default());
        until(&rx, |e| matches!(e, DriverEvent::DeviceReady { .. }));
        let t0 = drv.wait_tick(id, WAIT).unwrap();

        let status = drv.mgmt_request(id, Request::StatusGet, WAIT).unwrap();
        assert!(matches!(status, Some(OwnedReply::StatusGetReply(s)) if s.fpga_loaded()), "{status:?}");
        let port = drv.mgmt_request(id, Request::TwsPortGet, WAIT).unwrap();
        assert_eq!(port, Some(OwnedReply::TwsPortGetReply { port: 0 }));
        let armed = drv.mgmt_request(id, Request::TwsWdModeSet { armed: true }, WAIT).unwrap();
        assert!(matches!(armed, Some(OwnedReply::Ack { .. })), "{armed:?}");
        let mode = drv.mgmt_request(id, Request::TwsWdModeGet, WAIT).unwrap();
        assert!(matches!(mode, Some(OwnedReply::TwsWdModeGetReply { .. })), "{mode:?}");
        assert!(drv.wait_tick(id, WAIT).unwrap() > t0, "the lines kept running");

        // An EEPROM offset past the end: refused (an ACK with an error status), never a hang.
        let bad = drv.mgmt_request(id, Request::EepromBlkRd { offset: 0xFFFF, len: 64 }, WAIT);
        assert!(matches!(bad, Err(DriverError::Mgmt(_))), "{bad:?}");
        assert!(drv.is_running(id).unwrap());

        // TWS_PORT_SET is not answered: done once sent. The device jumps to port 1 (both
        // ports are powered), which this host sees as the device going away.
        assert!(emu.with_device(|d| d.port_power(1)));
        assert_eq!(drv.mgmt_request(id, Request::TwsPortSet { port: 1 }, WAIT).unwrap(), None);
        until(&rx, |e| matches!(e, DriverEvent::DeviceRemoved { .. }));
        let gone = drv.mgmt_request(id, Request::StatusGet, WAIT);
        assert!(matches!(gone, Err(DriverError::Chan(ChanError::Removed))), "{gone:?}");
        drv.close();
    });
}

/// An FXO seize before the port has read its line voltage is refused (the reference refuses
/// off-hook until battery is detected) and reported to the PBX; the channel stays on hook, so
/// a later seize goes through and the exchange gives dial tone.
#[test]
fn an_fxo_seize_before_battery_is_refused_and_can_be_retried() {
    within(60, || {
        // Lockstep: the loop handles no reply until this thread has had the tick, so the
        // first seize comes before the line voltage is known, whatever the scheduling.
        let (emu, drv, id, rx) =
            start(EmuStage::Running, DriverOptions::default().with_pacing(Pacing::Lockstep));
        until(&rx, |e| matches!(e, DriverEvent::DeviceReady { .. }));
        let line = || emu.with_device(|d| d.data_mut().pstn_mut(1, 0).expect("PSTN line").state());
        // Right after the attach the port's first line-voltage read has not come back.
        let first = drv.set_hook(FXO1, HookCmd::OffHook, HookMode::NonBlocking);
        assert!(
            matches!(first, Err(DriverError::Span(xpp_span::Error::Chan(ChanError::Refused(FXO1))))),
            "{first:?}"
        );
        // Once the line voltage is known the same command seizes the line.
        let mut ticks = 0;
        while drv.set_hook(FXO1, HookCmd::OffHook, HookMode::NonBlocking).is_err() {
            ticks += 1;
            assert!(ticks < 2000, "battery never detected");
            drv.wait_tick(id, StdDuration::from_secs(5)).unwrap();
        }
        let mut waited = 0;
        while line() != xpp_emu::data::CallState::DialTone {
            waited += 1;
            assert!(waited < 2000, "no dial tone: {:?}", line());
            drv.wait_tick(id, StdDuration::from_secs(5)).unwrap();
        }
        drv.close();
    });
}

/// A call that rings in right after the attach (the PBX restarting while a call arrives) is
/// reported at its first ring, not one ring cadence later (issue 14, item 3: the ring's start
/// came before the port's first line-voltage reply and was dropped).
#[test]
fn a_ring_right_after_open_is_reported_at_once() {
    within(60, || {
        let (emu, _drv, _id, rx) = start(EmuStage::Running, DriverOptions::default());
        until(&rx, |e| matches!(e, DriverEvent::DeviceReady { .. }));
        let rang_at = emu.with_device(|d| {
            let now = d.now();
            d.data_mut().pstn_mut(1, 0).expect("PSTN line").ring(now);
            now
        });
        let seen = until(&rx, |e| chan_event(e, FXO1, Event::RINGBEGIN));
        let Some(DriverEvent::Chan { at, .. }) = seen.last() else { unreachable!() };
        let after = at.saturating_duration_since(rang_at);
        // One ring cadence is 6 s (2 s on, 4 s off); the first ring is seen after the 50 ms
        // debounce and the first line-voltage read.
        assert!(after < xpp_proto::Duration::from_millis(1000), "RINGBEGIN {after} after the ring started");
    });
}
