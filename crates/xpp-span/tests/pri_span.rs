//! A PRI span on the bus core against the emulated E1 far end (virtual clock, deterministic):
//! its `span=` line programmed as docs/reference/xpp-protocol.md §9.3 lists, layer-1 alarms (LOS,
//! AIS, RAI) as DAHDI's alarm bits with ALARM/NOALARM at the right moments, the unit's clock
//! source, CAS bits in both directions, and a Q.921 link over the D-channel's soft HDLC up to
//! multiple-frame-established with the far end's peer.

mod common;

use common::Rig;
use xpp_chan::hdlc::HdlcRate;
use xpp_emu::config::ModuleConfig;
use xpp_emu::data::{DataConfig, Source};
use xpp_proto::Instant;
use xpp_proto::wire::pri::PriProtocol;
use xpp_proto::wire::{Message, RegCmd, parse_transfer};
use xpp_span::sysconf::parse_str;
use xpp_span::xbus::{ChanError, Numbering, XbusEvent};
use xpp_span::{Alarms, Event, Law, Sig};

/// FXS on unit 0 (span 1, channels 1..14), E1 on unit 1 (span 2, channels 15..45, the
/// D-channel at position 16: channel 30).
const SLOTS: [Option<ModuleConfig>; 4] =
    [Some(ModuleConfig::FXS), Some(ModuleConfig::Pri { protocol: PriProtocol::E1, ports: 1 }), None, None];
const SPAN: u32 = 2;
const B1: u32 = 15;
const DCHAN: u32 = 30;

fn rig() -> Rig {
    let mut rig = Rig::with(SLOTS, DataConfig::default(), 0, &mut Numbering::new());
    // The first FRS0 poll (at start) has answered: layer 1 is up.
    rig.run_ms(20);
    rig.events.clear();
    rig.out.clear();
    rig
}

/// Register writes the core sent to unit `unit` since `since`: (portnum, register, value).
fn writes(rig: &Rig, since: Instant, unit: u8) -> Vec<(u8, u8, u8)> {
    let mut out = Vec::new();
    for (t, transfer) in &rig.out {
        if *t < since {
            continue;
        }
        for (_, r) in parse_transfer(transfer).flatten() {
            if let Message::RegisterRequest(RegCmd::Reg(a)) = r.message
                && r.addr.unit() == unit
                && !a.read
            {
                out.push((a.port, a.reg, a.data_low));
            }
        }
    }
    out
}

fn span_alarms(rig: &Rig, since: Instant) -> Vec<Alarms> {
    rig.events
        .iter()
        .filter(|(t, _)| *t >= since)
        .filter_map(|(_, e)| match *e {
            XbusEvent::SpanAlarms { spanno: SPAN, alarms } => Some(alarms),
            _ => None,
        })
        .collect()
}

#[test]
fn a_span_line_programs_the_framer_then_starts_the_span() {
    let mut rig = rig();
    let t0 = rig.now;
    // E1 CAS, AMI, no CRC-4, timing priority 0 (master mode: not line-timed).
    let conf = parse_str("system.conf", "span=2,0,0,cas,ami\ncas=15-29,31-45:1101\n").unwrap();
    let applied = conf.apply("system.conf", t0, [&mut rig.core]).unwrap();
    assert_eq!(applied.spans, [SPAN]);
    rig.run_ms(30);
    // Bytes from docs/reference/xpp-protocol.md §9.3: LIM0 (master), FMR1, FMR2, FMR0 (AMI), FMR4, CMDR,
    // RS1 := 0x0B (E1 CAS), XSP with CASEN; then startup: XPM2 := 0x00. No T1 clear-channel
    // writes on an E1.
    let want = [
        (0, 0x36, 0x01),
        (0, 0x1D, 0x44),
        (0, 0x1E, 0x03),
        (0, 0x1C, 0xB0),
        (0, 0x20, 0x9F),
        (0, 0x02, 0x50),
        (0, 0x70, 0x0B),
        (0, 0x21, 0x5C),
        (0, 0x28, 0x00),
    ];
    let got = writes(&rig, t0, 1);
    assert_eq!(&got[..want.len()], want, "{got:02x?}");
    // The emulated far end sees the transmitter (XPM2 = 0).
    assert!(rig.dev.pri_far_end_mut(1, 0).unwrap().sees_signal());
}

#[test]
fn layer1_alarms_become_dahdi_alarm_bits_with_alarm_and_noalarm() {
    let mut rig = rig();
    assert_eq!(rig.core.span(SPAN).unwrap().alarms(), Alarms::EMPTY);
    // The far end is unplugged: LOS at the next FRS0 poll (every 500 ms) -> RED, ALARM on
    // every channel of the span.
    let t0 = rig.now;
    rig.dev.pri_far_end_mut(1, 0).unwrap().set_connected(t0, false);
    rig.run_ms(600);
    assert_eq!(span_alarms(&rig, t0), [Alarms::RED]);
    assert_eq!(rig.core.span(SPAN).unwrap().alarms(), Alarms::RED);
    for ch in [B1, DCHAN, 45] {
        assert_eq!(
            rig.chan_events(ch, t0).iter().map(|e| e.1).collect::<Vec<_>>(),
            [Event::ALARM],
            "ch {ch}"
        );
        assert_eq!(rig.core.channel(ch).unwrap().chan().alarms(), Alarms::RED);
    }
    // Plugged back, sending AIS: BLUE; a change inside the alarmed state makes no event.
    let t1 = rig.now;
    let far = rig.dev.pri_far_end_mut(1, 0).unwrap();
    far.set_connected(t1, true);
    far.send_ais(t1, true);
    rig.run_ms(600);
    assert_eq!(rig.core.span(SPAN).unwrap().alarms(), Alarms::BLUE);
    assert!(span_alarms(&rig, t1).is_empty());
    assert!(rig.chan_events(B1, t1).is_empty());
    // RAI only: YELLOW.
    let t2 = rig.now;
    let far = rig.dev.pri_far_end_mut(1, 0).unwrap();
    far.send_ais(t2, false);
    far.send_rai(t2, true);
    rig.run_ms(600);
    assert_eq!(rig.core.span(SPAN).unwrap().alarms(), Alarms::YELLOW);
    // All clear: NOALARM, layer 1 up.
    let t3 = rig.now;
    rig.dev.pri_far_end_mut(1, 0).unwrap().send_rai(t3, false);
    rig.run_ms(600);
    assert_eq!(span_alarms(&rig, t3), [Alarms::EMPTY]);
    assert_eq!(rig.chan_events(B1, t3).iter().map(|e| e.1).collect::<Vec<_>>(), [Event::NOALARM]);
    assert!(rig.events.iter().any(|(t, e)| *t >= t3 && *e == XbusEvent::TimingChanged));
}

#[test]
fn the_line_timed_port_is_the_units_clock_source_while_it_has_no_alarm() {
    let mut rig = rig();
    // Timing priority 1 (the card init's) and layer 1 up: port 0 recovers the clock.
    assert_eq!(rig.core.pri_clock_source(1), Some(0));
    assert_eq!(rig.core.sync_candidate().timing_priority, Some(1));
    // LOS: no port may give the clock; the bus offers no timing to the election.
    let t0 = rig.now;
    rig.dev.pri_far_end_mut(1, 0).unwrap().set_connected(t0, false);
    rig.run_ms(600);
    assert_eq!(rig.core.pri_clock_source(1), None);
    assert_eq!(rig.core.sync_candidate().timing_priority, None);
    // Back: chosen again, PC2..PC4 written (portnum 0) for port 0.
    let t1 = rig.now;
    rig.dev.pri_far_end_mut(1, 0).unwrap().set_connected(t1, true);
    rig.run_ms(600);
    assert_eq!(rig.core.pri_clock_source(1), Some(0));
    let pc: Vec<_> = writes(&rig, t1, 1).into_iter().filter(|w| (0x81..=0x83).contains(&w.1)).collect();
    assert_eq!(pc, [(0, 0x81, 0x0B), (0, 0x82, 0x9B), (0, 0x83, 0x9B)]);
}

#[test]
fn cas_bits_round_trip_in_both_directions() {
    let mut rig = rig();
    let conf = parse_str("system.conf", "span=2,1,0,cas,hdb3\ncas=15-29,31-45:1101\n").unwrap();
    let t0 = rig.now;
    conf.apply("system.conf", t0, [&mut rig.core]).unwrap();
    assert_eq!(rig.core.channel(B1).unwrap().chan().sig(), Sig::Cas);
    rig.run_ms(20);
    // Transmit: channel 15 (logical 0) and 31 (logical 16) share register 0x71.
    rig.core.set_tx_bits(rig.now, B1, 0xA).unwrap();
    rig.core.set_tx_bits(rig.now, 31, 0x5).unwrap();
    rig.run_ms(10);
    assert_eq!(rig.dev.pri_far_end_mut(1, 0).unwrap().rx_cas()[1], 0xA5);
    // Receive: the far end changes register 0x72 (logical 1 high nibble, 17 low).
    let t1 = rig.now;
    rig.dev.pri_far_end_mut(1, 0).unwrap().set_cas_reg(0x72, 0x3C);
    rig.run_ms(10);
    assert_eq!(rig.core.rx_bits(16).unwrap(), Some(0x3));
    assert_eq!(rig.core.rx_bits(32).unwrap(), Some(0xC));
    assert_eq!(rig.chan_events(16, t1).iter().map(|e| e.1).collect::<Vec<_>>(), [Event::BITSCHANGED]);
    // A CCS span has no CAS bits. The line build-out is kept (and programs nothing).
    let conf = parse_str("system.conf", "span=2,1,3,ccs,hdb3,crc4\nbchan=15-29,31-45\ndchan=30\n").unwrap();
    conf.apply("system.conf", rig.now, [&mut rig.core]).unwrap();
    assert_eq!(rig.core.set_tx_bits(rig.now, B1, 0xA), Err(ChanError::NotCas(B1)));
    assert_eq!(
        rig.core.span_setup(SPAN).map(|l| (l.lbo, l.to_string())),
        Some((3, "HDB3/CCS/CRC4".to_owned()))
    );
}

/// Q.921 frames as the host writes them: address (SAPI 0, C/R, TEI 0), control, then the two
/// FCS placeholders (DAHDI's convention).
fn frame(cr: bool, control: &[u8]) -> Vec<u8> {
    let mut f = vec![u8::from(cr) << 1, 0x01];
    f.extend_from_slice(control);
    f.extend([0, 0]);
    f
}

#[test]
fn a_q921_link_comes_up_over_the_d_channel() {
    let mut rig = rig();
    rig.dev.pri_far_end_mut(1, 0).unwrap().set_q921(true);
    // The D-channel got HDLCFCS with the defaults; the bearers are no HDLC channels.
    assert_eq!(rig.core.channel(DCHAN).unwrap().chan().sig(), Sig::HdlcFcs);
    let mut buf = [0u8; 64];
    assert_eq!(rig.core.read_frame(B1, &mut buf), Err(ChanError::NotHdlc(B1)));
    assert_eq!(rig.core.write_frame(DCHAN, &[0x00, 0x01]), Err(ChanError::BadFrame(DCHAN)));
    // SABME (P = 1) -> UA (F = 1).
    rig.core.write_frame(DCHAN, &frame(true, &[0x7F])).unwrap();
    rig.run_ms(20);
    let n = rig.core.read_frame(DCHAN, &mut buf).unwrap().expect("UA");
    assert_eq!(n, 5, "address, control, two FCS bytes");
    assert_eq!(buf[2], 0x73, "UA with F = 1");
    assert_eq!(xpp_chan::hdlc::fcs_bytes(&buf[..3]), [buf[3], buf[4]]);
    assert!(
        rig.dev.pri_far_end_mut(1, 0).unwrap().q921().unwrap().established(),
        "multiple-frame-established"
    );
    // An I-frame N(S) = 0, N(R) = 0, P = 1 -> RR N(R) = 1, F = 1.
    let mut i = frame(true, &[0x00, 0x01]);
    i.splice(4..4, *b"SETUP");
    rig.core.write_frame(DCHAN, &i).unwrap();
    rig.run_ms(30);
    let n = rig.core.read_frame(DCHAN, &mut buf).unwrap().expect("RR");
    assert_eq!(&buf[2..n - 2], [0x01, 0x03], "RR, N(R) = 1, F = 1");
    assert_eq!(rig.dev.pri_far_end_mut(1, 0).unwrap().q921().unwrap().i_frames(), 1);
    assert_eq!(rig.core.read_frame(DCHAN, &mut buf), Ok(None));
    let stats = rig.core.hdlc_stats(DCHAN).unwrap();
    assert_eq!((stats.tx_frames, stats.rx_frames, stats.bad_fcs), (2, 2, 0));
}

#[test]
fn hdlc_errors_are_events_only_while_the_span_has_no_alarm() {
    let mut rig = rig();
    // The far end plays a DTMF tone into the D timeslot: no frame survives, only errors.
    rig.dev.pri_far_end_mut(1, 0).unwrap().play(16, Source::Dual { f1: 697, f2: 1209, amplitude: 8000 });
    let t0 = rig.now;
    rig.run_ms(300);
    let ev: Vec<Event> = rig.chan_events(DCHAN, t0).iter().map(|e| e.1).collect();
    assert!(!ev.is_empty());
    assert!(ev.iter().all(|e| [Event::BADFCS, Event::ABORT, Event::OVERRUN].contains(e)), "{ev:?}");
    // With the span in alarm they are counted, not reported.
    rig.events.clear();
    assert!(rig.core.set_span_alarms(SPAN, Alarms::RED));
    let before = rig.core.hdlc_stats(DCHAN).unwrap();
    let t1 = rig.now;
    rig.run_ms(300);
    let ev: Vec<Event> = rig.chan_events(DCHAN, t1).iter().map(|e| e.1).collect();
    assert_eq!(ev, [Event::ALARM]);
    let after = rig.core.hdlc_stats(DCHAN).unwrap();
    assert!(after.bad_fcs + after.aborts + after.overruns > before.bad_fcs + before.aborts + before.overruns);
}

#[test]
fn a_56k_d_channel_talks_to_a_56k_far_end_only() {
    let mut rig = rig();
    let far = rig.dev.pri_far_end_mut(1, 0).unwrap();
    far.set_q921(true);
    far.set_dchan_56k(true);
    // At 64k the far end's 56k frames are noise to us, ours to it: no UA.
    let mut buf = [0u8; 64];
    rig.core.write_frame(DCHAN, &frame(true, &[0x7F])).unwrap();
    rig.run_ms(20);
    assert_eq!(rig.core.read_frame(DCHAN, &mut buf), Ok(None));
    assert!(!rig.dev.pri_far_end_mut(1, 0).unwrap().q921().unwrap().established());
    // HDLC_RATE 56: SABME -> UA, an I-frame acknowledged.
    rig.core.set_hdlc_rate(DCHAN, HdlcRate::Kbps56).unwrap();
    rig.core.write_frame(DCHAN, &frame(true, &[0x7F])).unwrap();
    rig.run_ms(20);
    let n = rig.core.read_frame(DCHAN, &mut buf).unwrap().expect("UA");
    assert_eq!(buf[2..n - 2], [0x73]);
    assert!(rig.dev.pri_far_end_mut(1, 0).unwrap().q921().unwrap().established());
    let mut i = frame(true, &[0x00, 0x01]);
    i.splice(4..4, *b"SETUP");
    rig.core.write_frame(DCHAN, &i).unwrap();
    rig.run_ms(30);
    let n = rig.core.read_frame(DCHAN, &mut buf).unwrap().expect("RR");
    assert_eq!(&buf[2..n - 2], [0x01, 0x03]);
    // The rate stays with the channel across a reconfiguration (HDLCRAW, then HDLCFCS again).
    let now = rig.now;
    rig.core.configure_chan(now, DCHAN, Sig::HdlcRaw).unwrap();
    rig.core.configure_chan(now, DCHAN, Sig::HdlcFcs).unwrap();
    rig.core.write_frame(DCHAN, &frame(true, &[0x7F])).unwrap();
    rig.run_ms(20);
    assert!(rig.core.read_frame(DCHAN, &mut buf).unwrap().is_some(), "UA at 56k");
    assert_eq!(rig.core.set_hdlc_rate(9999, HdlcRate::Kbps56), Err(ChanError::NoSuchChannel(9999)));
}

#[test]
fn a_whole_span_of_chunks_in_one_call() {
    let mut rig = rig();
    rig.dev.pri_far_end_mut(1, 0).unwrap().play(1, Source::tone_1k());
    // One channel in the other law: the span's copy runs split round it, it is converted.
    rig.core.set_law(B1 + 4, Law::Mulaw).unwrap();
    rig.run_ms(10);
    let mut span = [[0u8; 8]; 31];
    let n = rig.core.read_span_chunks(SPAN, &mut span).unwrap();
    assert_eq!(n, 30, "the bearers; the HDLC D-channel carries frames, not chunks");
    for (i, chunk) in span.iter().enumerate() {
        let mut one = [0u8; 8];
        if i != 15 {
            rig.core.read_chunk(B1 + i as u32, &mut one).unwrap();
            assert_eq!(chunk, &one, "channel {}", B1 + i as u32);
        }
    }
    assert_eq!(span[15], [0; 8], "the D-channel's place is left as it was");
    assert_ne!(span[0], [0xD5; 8], "the tone on timeslot 1");
    // A shorter buffer takes the first channels only.
    let mut part = [[0u8; 8]; 20];
    assert_eq!(rig.core.read_span_chunks(SPAN, &mut part).unwrap(), 19);
    assert_eq!(part[..15], span[..15]);
    assert_eq!(part[16..], span[16..20]);
    rig.core.set_law(B1 + 4, Law::Default).unwrap();
    // Out: every bearer's chunk in one call; the far end hears them.
    let mut out = [[0xD5u8; 8]; 31];
    out[1] = [0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87];
    rig.dev.pri_far_end_mut(1, 0).unwrap().take_heard(2);
    assert_eq!(rig.core.write_span_chunks(SPAN, &out[..3]).unwrap(), 3);
    assert_eq!(rig.core.write_span_chunks(SPAN, &out).unwrap(), 30);
    rig.run_ms(3);
    let heard = rig.dev.pri_far_end_mut(1, 0).unwrap().take_heard(2);
    assert!(heard.iter().any(|&s| s != heard[0]), "the far end heard the written chunk on timeslot 2");
    assert_eq!(rig.core.read_span_chunks(99, &mut span), Err(ChanError::NoSuchSpan(99)));
}

/// A T1 span (unit 1): 24 channels, the D-channel the 24th; robbed-bit CAS with ESF and D4.
fn t1_rig() -> Rig {
    let slots = [
        Some(ModuleConfig::FXS),
        Some(ModuleConfig::Pri { protocol: PriProtocol::T1, ports: 1 }),
        None,
        None,
    ];
    let mut rig = Rig::with(slots, DataConfig::default(), 0, &mut Numbering::new());
    rig.run_ms(20);
    rig.events.clear();
    rig.out.clear();
    rig
}

#[test]
fn t1_esf_and_d4_cas_bits_round_trip_and_clear_channels_are_marked() {
    let mut rig = t1_rig();
    let span = rig.core.span(SPAN).unwrap();
    assert_eq!((span.basechan(), span.channels()), (15, 24));
    // ESF, B8ZS; channels 15..37 signalled E&M (CAS), 38 (the 24th) clear: T1 is CAS once a
    // channel other than a D-channel is configured on position 1.
    let t0 = rig.now;
    let conf = parse_str("system.conf", "span=2,1,0,esf,b8zs\ne&m=15-37\nclear=38\n").unwrap();
    conf.apply("system.conf", t0, [&mut rig.core]).unwrap();
    rig.run_ms(30);
    // Startup marked channel 24 (logical 23) clear: register 0x31 (channels 16..23), LSB.
    let clear: Vec<_> = writes(&rig, t0, 1).into_iter().filter(|w| (0x2F..=0x31).contains(&w.1)).collect();
    assert_eq!(clear, [(0, 0x2F, 0x00), (0, 0x30, 0x00), (0, 0x31, 0x01)]);
    // ESF: two channels per register, ABCD each; channel 15 (logical 0) is 0x70's high nibble.
    rig.core.set_tx_bits(rig.now, 15, 0xA).unwrap();
    rig.core.set_tx_bits(rig.now, 16, 0x5).unwrap();
    rig.run_ms(10);
    assert_eq!(rig.dev.pri_far_end_mut(1, 0).unwrap().rx_cas()[0], 0xA5);
    rig.dev.pri_far_end_mut(1, 0).unwrap().set_cas_reg(0x71, 0x3C);
    rig.run_ms(10);
    assert_eq!((rig.core.rx_bits(17).unwrap(), rig.core.rx_bits(18).unwrap()), (Some(0x3), Some(0xC)));
    // D4: four channels per register, AB only (CD read back as AB); written twice (0x70 and
    // its duplicate 0x76). Channel 16 keeps the 0x5 it had (AB 01).
    let t1 = rig.now;
    let conf = parse_str("system.conf", "span=2,1,0,d4,ami\ne&m=15-37\nclear=38\n").unwrap();
    conf.apply("system.conf", t1, [&mut rig.core]).unwrap();
    rig.run_ms(20);
    rig.core.set_tx_bits(rig.now, 15, 0b1100).unwrap();
    rig.run_ms(10);
    let cas: Vec<_> = writes(&rig, t1, 1).into_iter().filter(|w| w.1 == 0x70 || w.1 == 0x76).collect();
    assert!(cas.contains(&(0, 0x70, 0xD0)) && cas.contains(&(0, 0x76, 0xD0)), "{cas:02x?}");
    rig.dev.pri_far_end_mut(1, 0).unwrap().set_cas_reg(0x71, 0b0100_0000);
    rig.run_ms(10);
    assert_eq!(rig.core.rx_bits(19).unwrap(), Some(0b0101), "AB 01 on channel 19, CD = AB");
    // A D-channel on the 24th makes the T1 span CCS: no CAS bits. `56k=` sets its HDLC rate;
    // a file without it sets 64 again (dahdi_cfg's HDLC_RATE on every configured channel).
    let conf = parse_str("system.conf", "span=2,1,0,esf,b8zs\nbchan=15-37\ndchan=38\n56k=38\n").unwrap();
    conf.apply("system.conf", rig.now, [&mut rig.core]).unwrap();
    assert_eq!(rig.core.set_tx_bits(rig.now, 15, 0xA), Err(ChanError::NotCas(15)));
    assert_eq!(rig.core.channel(38).unwrap().chan().sig(), Sig::HdlcFcs);
    assert_eq!(rig.core.channel(38).unwrap().hdlc_rate(), HdlcRate::Kbps56);
    let conf = parse_str("system.conf", "span=2,1,0,esf,b8zs\nbchan=15-37\ndchan=38\n").unwrap();
    conf.apply("system.conf", rig.now, [&mut rig.core]).unwrap();
    assert_eq!(rig.core.channel(38).unwrap().hdlc_rate(), HdlcRate::Kbps64);
}

#[test]
fn the_port_led_shows_layer1_and_the_d_channel() {
    use xpp_proto::wire::PriLed;
    let mut rig = rig();
    let leds = |rig: &Rig, since: Instant| -> Vec<(PriLed, u8)> {
        rig.set_leds(1, since).iter().map(|l| (l.pri_led(), l.0 & 3)).collect()
    };
    // Layer 1 up, the far end's D-channel idle (all ones, no flags): a double blink a second
    // on the slave's bottom green LED.
    let t0 = rig.now;
    rig.run_ms(1000);
    let on = leds(&rig, t0).iter().filter(|(l, s)| *l == PriLed::BottomGreen && *s == 1).count();
    assert_eq!(on, 2, "{:?}", leds(&rig, t0));
    // A frame from the far end (its Q.921 peer's UA): the D-channel is alive for 15 s, one
    // blink a second.
    rig.dev.pri_far_end_mut(1, 0).unwrap().set_q921(true);
    rig.core.write_frame(DCHAN, &frame(true, &[0x7F])).unwrap();
    rig.run_ms(50);
    let t1 = rig.now;
    rig.run_ms(2000);
    let on = leds(&rig, t1).iter().filter(|(l, s)| *l == PriLed::BottomGreen && *s == 1).count();
    assert_eq!(on, 2, "{:?}", leds(&rig, t1));
}
