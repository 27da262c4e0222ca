//! A BRI span on the bus core against the emulated S/T far end (virtual clock, deterministic):
//! layer 1 activated and polled (RED until it is up, then NOALARM; RED again when the far end
//! is pulled), the D-channel's frames through the chip's HDLC in multibyte register commands,
//! a Q.921 link with the far end's peer, receive errors as channel events, and the port LED.

mod common;

use common::Rig;
use xpp_emu::config::ModuleConfig;
use xpp_emu::data::DataConfig;
use xpp_proto::wire::BriLed;
use xpp_span::xbus::{ChanError, Numbering, XbusEvent};
use xpp_span::{Alarms, Event, Sig};

/// FXS on unit 0 (span 1, channels 1..14), one TE BRI port on unit 1 (span 2: B1 15, B2 16,
/// D 17).
const SLOTS: [Option<ModuleConfig>; 4] =
    [Some(ModuleConfig::FXS), Some(ModuleConfig::Bri { ports: 1, nt_mask: 0 }), None, None];
const SPAN: u32 = 2;
const DCHAN: u32 = 17;

fn rig() -> Rig {
    Rig::with(SLOTS, DataConfig::default(), 0, &mut Numbering::new())
}

fn span_alarms(rig: &Rig) -> Vec<Alarms> {
    rig.events
        .iter()
        .filter_map(|(_, e)| match *e {
            XbusEvent::SpanAlarms { spanno: SPAN, alarms } => Some(alarms),
            _ => None,
        })
        .collect()
}

#[test]
fn layer1_comes_up_and_goes_down_with_the_far_end() {
    let mut rig = rig();
    assert_eq!(rig.core.span_started(SPAN), Some(true));
    assert_eq!(rig.core.channel(DCHAN).unwrap().chan().sig(), Sig::HardHdlc);
    rig.run_ms(1200);
    // Activation (0x60) brought the TE port to F7; the polls report it: no alarm.
    assert_eq!(rig.core.span(SPAN).unwrap().alarms(), Alarms::EMPTY);
    assert!(rig.dev.bri_far_end_mut(1, 0).unwrap().is_active());
    // The far end is pulled: F3, RED at the next poll, ALARM on the span's channels.
    rig.events.clear();
    let t0 = rig.now;
    rig.dev.bri_far_end_mut(1, 0).unwrap().set_connected(t0, false);
    rig.run_ms(600);
    assert_eq!(span_alarms(&rig), [Alarms::RED]);
    assert!(rig.chan_events(15, t0).iter().any(|e| e.1 == Event::ALARM));
    // Plugged back: the activation timer (T3, 8 s) asks again and layer 1 comes up.
    rig.events.clear();
    let t1 = rig.now;
    rig.dev.bri_far_end_mut(1, 0).unwrap().set_connected(t1, true);
    rig.run_ms(9000);
    assert_eq!(span_alarms(&rig), [Alarms::EMPTY]);
    assert!(rig.chan_events(15, t1).iter().any(|e| e.1 == Event::NOALARM));
}

#[test]
fn a_q921_link_comes_up_over_the_bri_d_channel() {
    let mut rig = rig();
    rig.run_ms(1200);
    rig.dev.bri_far_end_mut(1, 0).unwrap().set_q921(true);
    let mut buf = [0u8; 64];
    assert_eq!(rig.core.read_frame(15, &mut buf), Err(ChanError::NotHdlc(15)));
    assert_eq!(rig.core.write_frame(DCHAN, &[0x00, 0x01]), Err(ChanError::BadFrame(DCHAN)));
    // SABME (a TE's command: C/R 0), P = 1, with the two FCS placeholders the chip replaces.
    rig.core.write_frame(DCHAN, &[0x00, 0x01, 0x7F, 0, 0]).unwrap();
    rig.run_ms(10);
    assert_eq!(rig.dev.bri_far_end_mut(1, 0).unwrap().take_frames(), vec![vec![0x00, 0x01, 0x7F]]);
    assert!(rig.dev.bri_far_end_mut(1, 0).unwrap().q921().unwrap().established());
    // UA with F = 1 back, with its two FCS bytes (the status byte is the chip's, not kept).
    let n = rig.core.read_frame(DCHAN, &mut buf).unwrap().expect("UA");
    assert_eq!(n, 5);
    assert_eq!(&buf[..3], [0x00, 0x01, 0x73]);
    assert_eq!(xpp_chan::hdlc::fcs_bytes(&buf[..3]), [buf[3], buf[4]]);
    // An I-frame: RR N(R) = 1 (F = 1).
    rig.core.write_frame(DCHAN, &[0x00, 0x01, 0x00, 0x01, 0x08, 0x01, 0x00, 0x05, 0, 0]).unwrap();
    rig.run_ms(10);
    let n = rig.core.read_frame(DCHAN, &mut buf).unwrap().expect("RR");
    assert_eq!(&buf[2..n - 2], [0x01, 0x03]);
    assert_eq!(rig.core.read_frame(DCHAN, &mut buf), Ok(None));
}

#[test]
fn damaged_frames_from_the_far_end_are_badfcs_and_abort() {
    let mut rig = rig();
    rig.run_ms(1200);
    let t0 = rig.now;
    let far = rig.dev.bri_far_end_mut(1, 0).unwrap();
    far.damage_next(false);
    far.damage_next(true);
    far.send_frame(t0, &[0x02, 0x01, 0x01, 0x01]);
    far.send_frame(t0, &[0x02, 0x01, 0x01, 0x01]);
    far.send_frame(t0, &[0x02, 0x01, 0x01, 0x01]);
    rig.run_ms(10);
    let ev: Vec<Event> = rig.chan_events(DCHAN, t0).iter().map(|e| e.1).collect();
    assert_eq!(ev, [Event::BADFCS, Event::ABORT]);
    let mut buf = [0u8; 64];
    assert_eq!(rig.core.read_frame(DCHAN, &mut buf), Ok(Some(6)), "the undamaged third frame");
}

/// The SET_LED commands the host sent to unit 1 since `since`: (LED, state).
fn leds(rig: &Rig, since: xpp_proto::Instant) -> Vec<(BriLed, u8)> {
    rig.set_leds(1, since).iter().map(|l| (l.bri_led(), l.state())).collect()
}

#[test]
fn the_port_led_shows_layer1_and_the_d_channel() {
    let mut rig = rig();
    // Layer 1 not up yet: the TE port's green LED steady on, red off (as the device has them).
    assert_eq!(rig.dev.bri_state(1, 0).unwrap().leds, [true, false]);
    // Layer 1 up, no D-channel traffic: a double blink a second.
    rig.run_ms(1200);
    let t1 = rig.now;
    rig.run_ms(1000);
    let got = leds(&rig, t1);
    assert_eq!(got.iter().filter(|&&l| l == (BriLed::Green, 1)).count(), 2, "{got:?}");
    assert!(got.iter().all(|l| l.0 == BriLed::Green), "{got:?}");
    // A frame each way (SABME, UA): the D-channel is alive for 15 s, one blink a second.
    rig.dev.bri_far_end_mut(1, 0).unwrap().set_q921(true);
    rig.core.write_frame(DCHAN, &[0x00, 0x01, 0x7F, 0, 0]).unwrap();
    rig.run_ms(50);
    let t2 = rig.now;
    rig.run_ms(2000);
    let got = leds(&rig, t2);
    // (A double blink would have been on four times.)
    assert_eq!(got.iter().filter(|&&l| l == (BriLed::Green, 1)).count(), 2, "{got:?}");

    // An NT port shows itself on the red LED.
    let nt = [Some(ModuleConfig::FXS), Some(ModuleConfig::Bri { ports: 1, nt_mask: 1 }), None, None];
    let rig = Rig::with(nt, DataConfig::default(), 0, &mut Numbering::new());
    assert_eq!(rig.dev.bri_state(1, 0).unwrap().leds, [false, true]);
}

#[test]
fn a_span_line_sets_the_timing_priority_and_starts_the_span() {
    let mut rig = rig();
    rig.run_ms(1200);
    // A BRI span line: its timing priority applies, the rest is recorded by the reference
    // driver only; startup activates layer 1 (again) and the span stays up.
    let conf = xpp_span::sysconf::parse_str("system.conf", "span=2,3,0,ccs,ami\nbchan=15-16\nhardhdlc=17\n")
        .unwrap();
    let applied = conf.apply("system.conf", rig.now, [&mut rig.core]).unwrap();
    assert_eq!(applied.spans, [SPAN]);
    assert!(applied.deferred.is_empty(), "{:?}", applied.deferred);
    assert_eq!(rig.core.span(SPAN).unwrap().timing_priority(), 3);
    assert_eq!(rig.core.span_started(SPAN), Some(true));
    assert_eq!(rig.core.span_setup(SPAN), None, "no PRI line configuration on a BRI span");
    rig.run_ms(1200);
    assert_eq!(rig.core.span(SPAN).unwrap().alarms(), Alarms::EMPTY);
    assert_eq!(rig.core.channel(DCHAN).unwrap().chan().sig(), Sig::HardHdlc);
}
