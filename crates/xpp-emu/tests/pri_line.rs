//! The host's PRI line model (`xpp_chan::pri::PriLine`) against the emulated E1 far end:
//! FRS0 polling turns LOS/AIS/RAI injection into status facts at the poll after the change,
//! idle CAS bits go out while alarmed and the saved bits after, and far-end CAS changes arrive
//! as unsolicited replies (MODEL.md PRI-3, PRI-4, PRI-9, PRI-10).

mod data_common;
use data_common as common;

use common::Host;
use xpp_chan::pri::{CasLayout, LineStatus, PriConfig, PriEvent, PriLine, Protocol};
use xpp_emu::config::ModuleConfig;
use xpp_proto::wire::{Address, parse_transfer};

/// Runs `ms` milliseconds of host work: the line's timers and commands, the device's replies
/// back into the line; returns the facts with their millisecond.
fn run(h: &mut Host, line: &mut PriLine, ms: u64) -> Vec<PriEvent> {
    let mut facts = Vec::new();
    for _ in 0..ms {
        if line.poll_timeout().is_some_and(|t| t <= h.now) {
            line.handle_timeout(h.now);
        }
        while let Some(cmd) = line.poll_transmit(h.now) {
            h.send(&cmd);
        }
        h.advance_ms(1);
        for t in h.drain().iter().filter(|t| t[1] & 0x08 == 0) {
            for item in parse_transfer(t) {
                let (_, repr) = item.expect("device output decodes");
                line.handle_packet(h.now, &repr);
            }
        }
        while let Some(ev) = line.poll_event() {
            facts.push(ev);
        }
    }
    facts
}

fn status(ev: &PriEvent) -> Option<LineStatus> {
    match ev {
        PriEvent::Status { status, .. } => Some(*status),
        PriEvent::Cas { .. } => None,
    }
}

#[test]
fn alarm_injection_and_cas_over_the_emulated_e1() {
    let mut h = Host::new([Some(ModuleConfig::PRI_E1), None, None, None]);
    h.sync(0x01, 0);
    h.advance_ms(2);
    let cfg = PriConfig {
        protocol: Protocol::E1,
        cas: Some(CasLayout::E1),
        timing_priority: 1,
        local_loop: false,
        idle_bits: 0x9,
    };
    let mut line = PriLine::new(Address::new(0, 0).unwrap(), 0, cfg);
    line.start(h.now, 0);
    let up = run(&mut h, &mut line, 100);
    assert_eq!(up.iter().filter_map(status).collect::<Vec<_>>(), vec![LineStatus::default()]);
    line.set_cas(h.now, 0, 0xA);
    run(&mut h, &mut line, 5);
    assert_eq!(h.d.pri_far_end_mut(0, 0).unwrap().rx_cas()[1], 0xA0);

    // LOS: seen at the next FRS0 poll (every 500 ms), then idle bits go out.
    let now = h.now;
    h.d.pri_far_end_mut(0, 0).unwrap().set_connected(now, false);
    let facts = run(&mut h, &mut line, 600);
    let los = LineStatus { los: true, ..Default::default() };
    assert_eq!(facts.iter().filter_map(status).collect::<Vec<_>>(), vec![los]);
    // Reconnect; AIS, then RAI, then clear.
    let now = h.now;
    let far = h.d.pri_far_end_mut(0, 0).unwrap();
    far.set_connected(now, true);
    far.send_ais(now, true);
    let facts = run(&mut h, &mut line, 500);
    assert_eq!(
        facts.iter().filter_map(status).collect::<Vec<_>>(),
        vec![LineStatus { ais: true, ..Default::default() }]
    );
    let now = h.now;
    let far = h.d.pri_far_end_mut(0, 0).unwrap();
    far.send_ais(now, false);
    far.send_rai(now, true);
    let facts = run(&mut h, &mut line, 500);
    assert_eq!(
        facts.iter().filter_map(status).collect::<Vec<_>>(),
        vec![LineStatus { rai: true, ..Default::default() }]
    );
    let now = h.now;
    h.d.pri_far_end_mut(0, 0).unwrap().send_rai(now, false);
    let facts = run(&mut h, &mut line, 500);
    assert_eq!(facts.iter().filter_map(status).collect::<Vec<_>>(), vec![LineStatus::default()]);
    // the saved bits are back after the alarm
    assert_eq!(h.d.pri_far_end_mut(0, 0).unwrap().rx_cas()[1], 0xA0);

    // Far-end CAS change: an unsolicited reply, one fact per changed channel.
    h.d.pri_far_end_mut(0, 0).unwrap().set_cas_reg(0x72, 0x5C);
    let facts = run(&mut h, &mut line, 5);
    let cas: Vec<(usize, u8)> = facts
        .iter()
        .filter_map(|e| match e {
            PriEvent::Cas { channel, abcd, .. } => Some((*channel, *abcd)),
            PriEvent::Status { .. } => None,
        })
        .collect();
    assert!(cas.contains(&(1, 0x5)) && cas.contains(&(17, 0xC)), "{cas:?}");
}
