//! Warm standby (a TwinStar backup host): a bus registered before its device is here, in RED
//! alarm, configured by the PBX; the take-over that makes it run and keeps that
//! configuration; the device leaving again; a device with other units. Against the emulated
//! Astribank on a virtual clock.

mod common;

use common::{FXS_FXO, Rig, descriptors};
use xpp_emu::DeviceConfig;
use xpp_emu::config::ModuleConfig;
use xpp_emu::data::DataInterface;
use xpp_proto::Instant;
use xpp_span::hook::HookMode;
use xpp_span::span::UnitSetup;
use xpp_span::xbus::{BusSetup, ChanError, Numbering, SetupError, XbusCore, XbusEvent};
use xpp_span::{Alarms, Event, HookCmd, Law, Sig};

/// FXS on unit 0 (channels 1..14), FXO on unit 1 (15..22).
const FXS1: u32 = 1;
const FXO1: u32 = 15;

/// The setup a bring-up of a device with `slots` establishes (its AB_DESCRIPTION).
fn setup_of(slots: [Option<ModuleConfig>; 4]) -> BusSetup {
    let mut dev = DataInterface::new(&DeviceConfig::default().with_slots(slots));
    let now = Instant::from_millis(1);
    dev.start_session(now);
    BusSetup::new(descriptors(&mut dev, now).into_iter().map(UnitSetup::new).collect())
}

fn events(core: &mut XbusCore) -> Vec<XbusEvent> {
    std::iter::from_fn(|| core.poll_event()).collect()
}

fn chan_events(events: &[XbusEvent], channo: u32) -> Vec<Event> {
    events
        .iter()
        .filter_map(|e| match *e {
            XbusEvent::Chan { channo: c, event } if c == channo => Some(event),
            _ => None,
        })
        .collect()
}

fn span_alarms(events: &[XbusEvent]) -> Vec<(u32, Alarms)> {
    events
        .iter()
        .filter_map(|e| match *e {
            XbusEvent::SpanAlarms { spanno, alarms } => Some((spanno, alarms)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_standby_bus_is_numbered_in_red_alarm_and_takes_configuration_only() {
    let now = Instant::from_millis(1);
    let mut numbering = Numbering::new();
    let mut core = XbusCore::new_standby(now, 0, &setup_of(FXS_FXO), &mut numbering).unwrap();
    assert!(core.is_standby());
    assert!(!core.is_running());
    // Numbered as the running device would be: FXS span 1 (channels 1..14), FXO span 2.
    assert_eq!(core.spans().iter().map(|s| s.spanno()).collect::<Vec<_>>(), [1, 2]);
    assert_eq!((numbering.next_span(), numbering.next_chan()), (3, 23));
    for s in core.spans() {
        assert_eq!(s.alarms(), Alarms::RED, "span {}", s.spanno());
    }
    assert_eq!(span_alarms(&events(&mut core)), [(1, Alarms::RED), (2, Alarms::RED)]);

    // Configuration is taken (the PBX's dahdi_cfg on the backup host)...
    core.configure_chan(now, FXS1, Sig::Fxoks).unwrap();
    core.configure_chan(now, FXO1, Sig::Fxsks).unwrap();
    core.set_law(FXS1, Law::Alaw).unwrap();
    assert_eq!(core.channel(FXS1).unwrap().chan().sig(), Sig::Fxoks);
    assert_eq!(core.channel(FXS1).unwrap().chan().alarms(), Alarms::RED);
    // ... and a sigcap refusal is still one.
    assert!(core.configure_chan(now, FXO1, Sig::Fxoks).is_err());
    // Audio and hook commands are not: the device is not here (EBUSY, not ENODEV).
    let mut chunk = [0u8; 8];
    assert_eq!(core.read_chunk(FXS1, &mut chunk), Err(ChanError::Standby(FXS1)));
    assert_eq!(core.write_chunk(FXS1, &chunk), Err(ChanError::Standby(FXS1)));
    assert_eq!(ChanError::Standby(FXS1).errno(), 16);
    let hook = core.set_hook(now, FXS1, HookCmd::Ring, HookMode::NonBlocking);
    assert!(matches!(hook, Err(xpp_span::Error::Chan(ChanError::Standby(FXS1)))), "{hook:?}");
    // Nothing to send and no timer to serve.
    let mut buf = [0u8; 512];
    assert_eq!(core.poll_transmit(&mut buf), None);
    assert_eq!(core.poll_timeout(), None);
}

#[test]
fn take_over_runs_the_bus_with_the_standby_configuration() {
    let mut rig = Rig::new(FXS_FXO);
    let now = rig.now;
    // The backup host's core: registered before the device came, configured by the PBX.
    let mut standby = XbusCore::new_standby(now, 0, &setup_of(FXS_FXO), &mut Numbering::new()).unwrap();
    standby.configure_chan(now, FXS1, Sig::Fxoks).unwrap();
    standby.configure_chan(now, FXO1, Sig::Fxsks).unwrap();
    standby.set_law(FXS1, Law::Alaw).unwrap();
    assert!(standby.set_timing_priority(2, 3));
    let before = events(&mut standby);
    assert_eq!(span_alarms(&before), [(1, Alarms::RED), (2, Alarms::RED)]);
    rig.events.clear();

    // The device arrives: the rig's bus is now the taken-over standby.
    standby.activate(now, &setup_of(FXS_FXO), false).unwrap();
    rig.core = standby;
    assert!(rig.core.is_running() && !rig.core.is_standby());
    rig.core.set_sync_source(xpp_proto::wire::SyncMode::Ab, 0);
    rig.run_ms(50);
    // NOALARM on each configured channel, the spans clear; then the line's first hook
    // read takes the channel out of rx INITIAL (on-hook), as at any registration.
    let took: Vec<XbusEvent> = rig.events.iter().map(|(_, e)| *e).collect();
    assert_eq!(span_alarms(&took), [(1, Alarms::EMPTY), (2, Alarms::EMPTY)]);
    assert_eq!(chan_events(&took, FXS1), [Event::NOALARM, Event::ONHOOK]);
    // The configuration came along.
    let ch = rig.core.channel(FXS1).unwrap();
    assert_eq!((ch.chan().sig(), ch.law(), ch.chan().alarms()), (Sig::Fxoks, Law::Alaw, Alarms::EMPTY));
    assert_eq!(rig.core.channel(FXO1).unwrap().chan().sig(), Sig::Fxsks);
    // And the lines work: an off-hook phone on FXS port 0 is reported, audio flows.
    rig.events.clear();
    let t0 = rig.now;
    rig.dev.phone_mut(0, 0).unwrap().off_hook(t0);
    rig.run_ms(100);
    assert_eq!(rig.chan_events(FXS1, t0).iter().map(|e| e.1).collect::<Vec<_>>(), [Event::RINGOFFHOOK]);
    let mut chunk = [0u8; 8];
    rig.core.read_chunk(FXS1, &mut chunk).unwrap();
    let _ = rig.core.set_hook(rig.now, FXS1, HookCmd::OffHook, HookMode::NonBlocking).unwrap();
    // A second activation is refused: the bus runs.
    assert_eq!(rig.core.activate(rig.now, &setup_of(FXS_FXO), false), Err(SetupError::NotStandby));
}

#[test]
fn a_device_that_leaves_puts_the_bus_back_in_standby_and_can_come_back() {
    let mut rig = Rig::new(FXS_FXO);
    let t0 = rig.now;
    rig.dev.phone_mut(0, 0).unwrap().off_hook(t0);
    rig.run_ms(100);
    assert_eq!(rig.chan_events(FXS1, t0).iter().map(|e| e.1).collect::<Vec<_>>(), [Event::RINGOFFHOOK]);
    // The device jumps to the other host.
    rig.events.clear();
    rig.core.handle_left(rig.now);
    assert!(rig.core.is_standby());
    let left = events(&mut rig.core);
    assert_eq!(span_alarms(&left), [(1, Alarms::RED), (2, Alarms::RED)]);
    // The call ends as on a hang-up; the channel stays (ALARM, never REMOVED).
    let ev = chan_events(&left, FXS1);
    assert!(ev.contains(&Event::ALARM), "{ev:?}");
    assert!(!ev.contains(&Event::REMOVED), "{ev:?}");
    assert_eq!(rig.core.channel(FXS1).unwrap().chan().sig(), Sig::Fxoks);
    let mut buf = [0u8; 512];
    assert_eq!(rig.core.poll_transmit(&mut buf), None);
    // It comes back (the phone still off-hook): running again, the off-hook reported again.
    rig.core.activate(rig.now, &setup_of(FXS_FXO), false).unwrap();
    rig.core.set_sync_source(xpp_proto::wire::SyncMode::Ab, 0);
    let t1 = rig.now;
    rig.run_ms(100);
    let ev: Vec<Event> = rig.chan_events(FXS1, t1).iter().map(|e| e.1).collect();
    assert_eq!(ev, [Event::NOALARM, Event::RINGOFFHOOK]);
}

#[test]
fn a_device_with_other_units_does_not_take_the_standby_over() {
    let now = Instant::from_millis(1);
    let mut core = XbusCore::new_standby(now, 0, &setup_of(FXS_FXO), &mut Numbering::new()).unwrap();
    core.configure_chan(now, FXS1, Sig::Fxoks).unwrap();
    let fxs_only = setup_of([Some(ModuleConfig::FXS), None, None, None]);
    assert_eq!(core.activate(now, &fxs_only, false), Err(SetupError::LayoutChanged));
    // Still the standby it was, configuration kept.
    assert!(core.is_standby());
    assert_eq!(core.channel(FXS1).unwrap().chan().sig(), Sig::Fxoks);
    assert_eq!(core.spans().len(), 2);
}
