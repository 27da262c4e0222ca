//! Ticks and PCM, line behaviour and equipment, patches (MODEL.md TIME, FXS, FXO, PRI, BRI,
//! EQ, PATCH rows).

mod data_common;
use data_common as common;

use common::{Host, pcm_reads};
use xpp_emu::config::ModuleConfig;
use xpp_emu::data::{CallState, DataConfig, EventKind, PcmReadMask, PortRef, Source, g711};
use xpp_proto::wire::pri::PriProtocol;
use xpp_proto::wire::{Message, Multibyte, RegCmd, parse_transfer};

const FXS_FXO: [Option<ModuleConfig>; 4] = [Some(ModuleConfig::FXS), Some(ModuleConfig::FXO), None, None];

#[test]
fn ten_thousand_ms_of_pcm_exactly_one_round_per_ms() {
    // MODEL: TIME-10, TIME-11, TIME-12 — with every channel (the round needs several frames).
    let mut data = DataConfig::default();
    data.pcm_read_mask = PcmReadMask::AllChannels;
    let mut h = Host::with_data(
        [
            Some(ModuleConfig::FXS),
            Some(ModuleConfig::Pri { protocol: PriProtocol::E1, ports: 4 }),
            Some(ModuleConfig::BRI),
            None,
        ],
        data,
    );
    h.sync(0x01, 0);
    let mut rounds = 0;
    for ms in 0..10_000 {
        h.advance_ms(1);
        let frames: Vec<_> = h.drain();
        let mut syncs = 0;
        let mut bytes = 0;
        for f in &frames {
            assert!(f.len() <= 512);
            let reads = pcm_reads(f);
            assert!(!reads.is_empty());
            bytes += f.len();
            for (i, (_, sync, lines, samples)) in reads.iter().enumerate() {
                assert_eq!(samples.len(), 8 * lines.count_ones() as usize);
                if *sync {
                    assert_eq!(i, 0, "sync only on the first packet");
                    syncs += 1;
                }
            }
        }
        assert_eq!(syncs, 1, "one sync per ms at ms {ms}");
        // FXS 8 lines + 4 E1 spans of 31 + BRI 8 B-channels.
        assert_eq!(bytes, (8 + 64) + 4 * (8 + 248) + (8 + 64));
        assert!(frames.len() >= 3);
        assert!(pcm_reads(&frames[0])[0].1);
        rounds += 1;
    }
    assert_eq!(rounds, 10_000);
    assert_eq!(h.d.stats().ticks, 10_000);
}

#[test]
fn mirror_mode_lone_packet_and_masks() {
    // MODEL: TIME-10, TIME-14, TIME-17
    let mut h = Host::new(FXS_FXO);
    h.sync(0x03, 0);
    h.advance_ms(1);
    assert_eq!(h.drain(), vec![vec![0x08, 0x08, 0x12, 0x80, 0x00, 0x00, 0x00, 0x00]]);
    h.pcm_write(&[(0, 0, 0b1, [0x7F; 8])]);
    h.advance_ms(1);
    let t = h.drain();
    assert_eq!(t.len(), 1);
    assert_eq!(&t[0][..8], &[0x10, 0x08, 0x12, 0x80, 0x01, 0x00, 0x00, 0x00]);
    // No new round: masks reused, one missed round counted.
    h.advance_ms(1);
    assert_eq!(h.drain()[0][..8], [0x10, 0x08, 0x12, 0x80, 0x01, 0x00, 0x00, 0x00]);
    let s = h.d.stats();
    assert_eq!(s.rounds, 1);
    assert_eq!(s.missed_rounds, 1);
    // Bits the XPD has no channel for are dropped (bit 8 on FXS).
    h.pcm_write(&[(0, 0, 0x103, [0x7F; 8]), (1, 0, 0b10, [0x7F; 8])]);
    h.pcm_write(&[(0, 0, 0x1, [0x7F; 8])]);
    assert_eq!(h.d.stats().extra_rounds, 1);
    h.advance_ms(1);
    let t = h.drain();
    let reads = pcm_reads(&t[0]);
    assert_eq!(reads.len(), 1, "the second round replaced the first");
    assert_eq!(reads[0].2, 1);
}

#[test]
fn pll_trims_the_tick_period() {
    // MODEL: TIME-1, TIME-9 — +20 steps of 5 ppm = 100 ppm slower: 9999 ticks in 10 s + 1 ms.
    let mut h = Host::new(FXS_FXO);
    h.sync(0x03, 20);
    h.advance_ms(10_000);
    h.drain();
    let slow = h.d.stats().ticks;
    let mut h = Host::new(FXS_FXO);
    h.sync(0x03, -20);
    h.advance_ms(10_000);
    h.drain();
    let fast = h.d.stats().ticks;
    assert_eq!(slow, 9_999);
    assert_eq!(fast, 10_001);
}

fn sig_changed(t: &[Vec<u8>]) -> Vec<Vec<u8>> {
    t.iter().filter(|t| t.len() == 12 && t[2] == 0x06).cloned().collect()
}

#[test]
fn fxs_off_hook_reports_sig_changed() {
    // MODEL: FXS-7, FXS-8, FXS-9
    let mut h = Host::new(FXS_FXO);
    h.write(0, 2, 0x40, 0x01);
    h.d.phone_mut(0, 2).unwrap().off_hook(h.now);
    let t = h.advance_cmds(2);
    assert_eq!(t, vec![vec![0x0C, 0x00, 0x06, 0x00, 0x04, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00]]);
    assert_eq!(h.read(0, 2, 0x44), 0x01);
    h.d.phone_mut(0, 2).unwrap().on_hook(h.now);
    let t = h.advance_cmds(2);
    assert_eq!(t, vec![vec![0x0C, 0x00, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00]]);
    // An unfed loop (line feed open) reports nothing.
    h.write(0, 3, 0x40, 0x00);
    h.d.phone_mut(0, 3).unwrap().off_hook(h.now);
    assert!(h.advance_cmds(5).is_empty());
    // Pulse dialling "3": three breaks and makes visible at 1 ms resolution.
    h.write(0, 2, 0x40, 0x01);
    h.d.phone_mut(0, 2).unwrap().off_hook(h.now);
    h.advance_cmds(5);
    let now = h.now;
    h.d.phone_mut(0, 2).unwrap().dial_pulse(now, "3");
    let t = sig_changed(&h.advance_cmds(1000));
    assert_eq!(t.len(), 6);
    // Flash: one break of 600 ms.
    let now = h.now;
    h.d.phone_mut(0, 2).unwrap().flash(now);
    let t = sig_changed(&h.advance_cmds(700));
    assert_eq!(t.len(), 2);
}

#[test]
fn fxs_ringing_dtmf_and_audio() {
    // MODEL: FXS-10, FXS-12, FXS-13, FXS-14, FXS-15
    let mut h = Host::new(FXS_FXO);
    h.write(0, 0, 0x40, 0x04);
    h.advance_ms(2);
    assert!(h.d.phone(0, 0).unwrap().is_ringing());
    h.write(0, 0, 0x40, 0x02);
    h.advance_ms(2);
    assert!(!h.d.phone(0, 0).unwrap().is_ringing());
    let ev: Vec<_> = h.d.events().map(|e| e.kind.clone()).collect();
    assert!(ev.contains(&EventKind::RingStart) && ev.contains(&EventKind::RingStop));
    // DTMF detection on, dial "5#".
    h.write(0, 0, 0x40, 0x01);
    h.write(0, 0, 0x17, 0x01);
    h.d.phone_mut(0, 0).unwrap().off_hook(h.now);
    h.sync(0x01, 0);
    h.pcm_write(&[(0, 0, 0b1, [0xFF; 8])]);
    h.advance_cmds(3);
    let now = h.now;
    h.d.phone_mut(0, 0).unwrap().dial_dtmf(now, "5#");
    let mut heard = Vec::new();
    let mut replies = Vec::new();
    for _ in 0..450 {
        h.pcm_write(&[(0, 0, 0b1, [0xFF; 8])]);
        h.advance_ms(1);
        for t in h.drain() {
            if t[1] & 0x08 != 0 {
                heard.extend(pcm_reads(&t)[0].3.iter().map(|&b| g711::ulaw_decode(b)));
            } else {
                replies.push(t);
            }
        }
    }
    let dtmf: Vec<_> = replies.iter().filter(|t| t[2] == 0x10).cloned().collect();
    assert_eq!(
        dtmf,
        vec![
            vec![0x0A, 0x00, 0x10, 0x00, 0x05, 0x40, 0x18, 0x00, 0x15, 0x00],
            vec![0x0A, 0x00, 0x10, 0x00, 0x05, 0x40, 0x18, 0x00, 0x05, 0x00],
            vec![0x0A, 0x00, 0x10, 0x00, 0x05, 0x40, 0x18, 0x00, 0x1C, 0x00],
            vec![0x0A, 0x00, 0x10, 0x00, 0x05, 0x40, 0x18, 0x00, 0x0C, 0x00],
        ]
    );
    // The tone is in PCM_READ too (FXS-15).
    assert_eq!(g711::detect_dtmf(&heard[40 * 8..65 * 8]), Some('5'));
}

#[test]
fn fxo_ring_cadence_vbat_and_polarity() {
    // MODEL: FXO-3, FXO-4, FXO-6, FXO-7, FXO-8
    let mut h = Host::new(FXS_FXO);
    h.advance_ms(2);
    assert_eq!(h.read(1, 0, 0x1D), 0x30);
    assert_eq!(h.read(1, 0, 0x1C), 0x00);
    let now = h.now;
    h.d.pstn_mut(1, 0).unwrap().ring(now);
    let t = sig_changed(&h.advance_cmds(6_100));
    assert_eq!(
        t,
        vec![
            vec![0x0C, 0x00, 0x06, 0x10, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00],
            vec![0x0C, 0x00, 0x06, 0x10, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00],
            vec![0x0C, 0x00, 0x06, 0x10, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00],
        ]
    );
    // Answer: ring ends (reported), VBAT drops to loop voltage, loop current flows.
    h.write(1, 0, 0x05, 0x09);
    let t = sig_changed(&h.advance_cmds(3));
    assert_eq!(t.len(), 1);
    assert_eq!(t[0][4], 0);
    assert_eq!(h.read(1, 0, 0x1D), 8);
    assert_eq!(h.read(1, 0, 0x1C), 20);
    assert_eq!(h.d.pstn(1, 0).unwrap().state(), CallState::Connected);
    // Polarity reversal: one unsolicited reg 0x04 reply, VBAT negative.
    let now = h.now;
    h.d.pstn_mut(1, 0).unwrap().reverse_polarity(now);
    let t = h.advance_cmds(3);
    assert_eq!(t, vec![vec![0x0A, 0x00, 0x10, 0x10, 0x05, 0x40, 0x04, 0x00, 0x01, 0x00]]);
    assert_eq!(h.read(1, 0, 0x1D) as i8, -8);
    // Far party hangs up: battery off during disconnect supervision.
    let now = h.now;
    h.d.pstn_mut(1, 0).unwrap().hang_up(now);
    h.advance_ms(2);
    assert_eq!(h.read(1, 0, 0x1D), 0);
    h.advance_ms(900);
    assert_eq!(h.read(1, 0, 0x1D) as i8, -8);
}

#[test]
fn fxo_outgoing_call_dtmf_and_pulse_digits() {
    // MODEL: EQ-5
    let mut h = Host::new(FXS_FXO);
    h.sync(0x01, 0);
    h.write(1, 0, 0x05, 0x09);
    let mut heard = Vec::new();
    for _ in 0..30 {
        h.pcm_write(&[(1, 0, 0b1, [0xFF; 8])]);
        h.advance_ms(1);
        for t in h.drain() {
            if let Some(r) = pcm_reads(&t).first() {
                heard.extend(r.3.iter().map(|&b| g711::ulaw_decode(b)));
            }
        }
    }
    assert_eq!(h.d.pstn(1, 0).unwrap().state(), CallState::DialTone);
    assert!(g711::has_tone(&heard[heard.len() - 160..], 440.0));
    // The host sends DTMF "7" in PCM for 100 ms.
    let mut tone = g711::Generator::new(Source::Dual { f1: 852, f2: 1209, amplitude: 6000 });
    for _ in 0..100 {
        let chunk = tone.next_chunk(g711::Law::Ulaw);
        h.pcm_write(&[(1, 0, 0b1, chunk)]);
        h.advance_ms(1);
    }
    for _ in 0..50 {
        h.pcm_write(&[(1, 0, 0b1, [0xFF; 8])]);
        h.advance_ms(1);
    }
    assert_eq!(h.d.pstn(1, 0).unwrap().dialled(), "7");
    // Pulse "2": two 60 ms breaks.
    for _ in 0..2 {
        h.write(1, 0, 0x05, 0x08);
        h.advance_ms(60);
        h.write(1, 0, 0x05, 0x09);
        h.advance_ms(40);
    }
    h.advance_ms(400);
    assert_eq!(h.d.pstn(1, 0).unwrap().dialled(), "72");
    h.advance_ms(2100);
    assert_eq!(h.d.pstn(1, 0).unwrap().state(), CallState::Connected);
}

#[test]
fn pri_alarms_from_the_far_end() {
    // MODEL: PRI-3, PRI-4, PRI-5, PRI-6, PRI-10, EQ-7
    let mut h = Host::new([Some(ModuleConfig::PRI_E1), None, None, None]);
    h.advance_ms(2);
    assert_eq!(h.read(0, 0, 0x4C), 0x00);
    let now = h.now;
    h.d.pri_far_end_mut(0, 0).unwrap().set_connected(now, false);
    h.advance_ms(2);
    assert_eq!(h.read(0, 0, 0x4C), 0x80);
    assert!(h.d.pri_far_end_mut(0, 0).unwrap().sees_rai(), "automatic yellow (XPM2 = 0 at power-on)");
    h.d.pri_far_end_mut(0, 0).unwrap().set_connected(now, true);
    h.d.pri_far_end_mut(0, 0).unwrap().send_ais(now, true);
    h.advance_ms(2);
    assert_eq!(h.read(0, 0, 0x4C), 0x40);
    h.d.pri_far_end_mut(0, 0).unwrap().send_ais(now, false);
    h.d.pri_far_end_mut(0, 0).unwrap().send_rai(now, true);
    h.advance_ms(2);
    assert_eq!(h.read(0, 0, 0x4C), 0x10);
    // Transmitter tristated: the far end sees nothing.
    h.write(0, 0, 0x28, 0x40);
    h.advance_ms(2);
    assert!(!h.d.pri_far_end_mut(0, 0).unwrap().sees_signal());
    // CAS change: one unsolicited reply per register (PRI-10).
    h.d.pri_far_end_mut(0, 0).unwrap().set_cas_reg(0x71, 0xD5);
    let t = h.advance_cmds(2);
    assert_eq!(t, vec![vec![0x0A, 0x00, 0x10, 0x00, 0x05, 0x40, 0x71, 0x00, 0xD5, 0x00]]);
    assert_eq!(h.read(0, 0, 0x71), 0xD5);
}

#[test]
fn bri_layer1_states_and_dchannel() {
    // MODEL: BRI-2..BRI-5, BRI-8..BRI-10, EQ-8
    let mut h = Host::new([Some(ModuleConfig::Bri { ports: 2, nt_mask: 0b10 }), None, None, None]);
    assert_eq!(h.read_at(0, 0, 0, 0x30) & 0x0F, 0);
    h.write(0, 0, 0x30, 0x00);
    h.write_sub(0, 1, xpp_proto::wire::RegAccess::write(1, 0x30, 0x00));
    assert_eq!(h.read_at(0, 0, 0, 0x30), 0x43, "F3 + INFO0");
    assert_eq!(h.read_at(0, 1, 1, 0x30), 0x41, "G1 + INFO0");
    h.write(0, 0, 0x30, 0x60);
    h.write_sub(0, 1, xpp_proto::wire::RegAccess::write(1, 0x30, 0xE0));
    assert_eq!(h.read_at(0, 1, 1, 0x30) & 0x1F, 0x12, "G2 at once");
    h.advance_ms(12);
    assert_eq!(h.read_at(0, 0, 0, 0x30), 0x17, "F7, frame sync");
    assert_eq!(h.read_at(0, 1, 1, 0x30), 0x13, "G3");
    // D-channel TX: a 7-byte frame in two chunks reaches the far end.
    let m1 = Multibyte::new(0, false, &[1, 2, 3, 4, 5]).unwrap();
    let m2 = Multibyte::new(0, true, &[6, 7]).unwrap();
    h.cmd(0, 0, Message::RegisterRequest(RegCmd::Multibyte(m1)));
    h.cmd(0, 0, Message::RegisterRequest(RegCmd::Multibyte(m2)));
    assert_eq!(h.d.bri_far_end_mut(0, 0).unwrap().take_frames(), vec![vec![1, 2, 3, 4, 5, 6, 7]]);
    // D-channel RX: frame + FCS + status in chunks of 5, one transfer.
    let now = h.now;
    h.d.bri_far_end_mut(0, 0).unwrap().send_frame(now, &[0x02, 0x01, 0x7F]);
    let t = h.advance_cmds(2);
    let fcs = g711::fcs16(&[0x02, 0x01, 0x7F]).to_le_bytes();
    assert_eq!(
        t,
        vec![
            [
                &[0x0A, 0x00, 0x10, 0x00, 0x85, 0x02, 0x01, 0x7F, fcs[0], fcs[1]][..],
                &[0x0A, 0x00, 0x10, 0x00, 0x89, 0x00, 0x00, 0x00, 0x00, 0x00][..],
            ]
            .concat()
        ]
    );
    for r in parse_transfer(&t[0]) {
        assert!(r.is_ok());
    }
    // Magic: eoframe 1 stops delivery.
    h.cmd(0, 0, Message::RegisterRequest(RegCmd::Multibyte(Multibyte::magic(0, true))));
    assert!(!h.d.bri_delivery());
    h.d.bri_far_end_mut(0, 0).unwrap().send_frame(now, &[1]);
    assert!(h.advance_cmds(2).is_empty());
    // Deactivate: TE → F3.
    h.write(0, 0, 0x30, 0x40);
    assert_eq!(h.read_at(0, 0, 0, 0x30) & 0x0F, 3);
}

#[test]
fn a_bri_far_end_can_answer_q921() {
    // MODEL: BRI-14 — SABME (P) in one multibyte chunk, written by hand (BRI-8), answered by
    // UA (F) as frame + FCS + status 0 (BRI-9).
    let mut h = Host::new([Some(ModuleConfig::Bri { ports: 1, nt_mask: 0 }), None, None, None]);
    h.write(0, 0, 0x30, 0x00);
    h.write(0, 0, 0x30, 0x60);
    h.advance_ms(12);
    h.d.bri_far_end_mut(0, 0).unwrap().set_q921(true);
    h.cmd(
        0,
        0,
        Message::RegisterRequest(RegCmd::Multibyte(Multibyte::new(0, true, &[0x00, 0x01, 0x7F]).unwrap())),
    );
    assert!(h.d.bri_far_end_mut(0, 0).unwrap().q921().unwrap().established());
    let t = h.advance_cmds(2);
    let fcs = g711::fcs16(&[0x00, 0x01, 0x73]).to_le_bytes();
    assert_eq!(
        t,
        vec![
            [
                &[0x0A, 0x00, 0x10, 0x00, 0x85, 0x00, 0x01, 0x73, fcs[0], fcs[1]][..],
                &[0x0A, 0x00, 0x10, 0x00, 0x89, 0x00, 0x00, 0x00, 0x00, 0x00][..],
            ]
            .concat()
        ]
    );
    assert_eq!(h.d.bri_far_end_mut(0, 0).unwrap().take_frames(), vec![vec![0x00, 0x01, 0x7F]]);
}

#[test]
fn patched_fxs_and_fxo_carry_audio_and_signalling() {
    // MODEL: PATCH-2, TIME-15, TIME-16 — FXS 0/0 cabled to FXO 1/0.
    let mut h = Host::new(FXS_FXO);
    h.d.patch(PortRef::new(0, 0), PortRef::new(1, 0)).unwrap();
    h.sync(0x01, 0);
    // FXS rings: the FXO port sees ring (SIG_CHANGED on unit 1).
    h.write(0, 0, 0x40, 0x04);
    let t = sig_changed(&h.advance_cmds(3));
    assert_eq!(t, vec![vec![0x0C, 0x00, 0x06, 0x10, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00]]);
    // FXO answers: the FXS side reports off-hook once the ring stops.
    h.write(0, 0, 0x40, 0x01);
    h.write(1, 0, 0x05, 0x09);
    let t = sig_changed(&h.advance_cmds(3));
    assert!(t.contains(&vec![0x0C, 0x00, 0x06, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00]));
    assert_eq!(h.read(1, 0, 0x1D), 8, "FXO sees loop voltage of the FXS battery");
    // Audio written to FXS line 0 appears on FXO line 0 one tick later, and back.
    let pattern = [0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x01];
    let back = [0x91, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98];
    h.drain();
    h.pcm_write(&[(0, 0, 0b1, pattern), (1, 0, 0b1, back)]);
    let mut seen = None;
    let mut seen_back = None;
    for tick in 1..=3 {
        h.advance_ms(1);
        for t in h.drain() {
            for (addr, _, _, s) in pcm_reads(&t) {
                if addr.unit() == 1 && s[..8] == pattern && seen.is_none() {
                    seen = Some(tick);
                }
                if addr.unit() == 0 && s[..8] == back && seen_back.is_none() {
                    seen_back = Some(tick);
                }
            }
        }
        h.pcm_write(&[(0, 0, 0b1, [0xFF; 8]), (1, 0, 0b1, [0xFF; 8])]);
    }
    assert_eq!(seen, Some(1), "one device ms per direction");
    assert_eq!(seen_back, Some(1));
}

#[test]
fn fxo_exchange_line_between_two_fxo_ports() {
    // MODEL: PATCH-3
    let mut h = Host::new(FXS_FXO);
    h.d.patch(PortRef::new(1, 0), PortRef::new(1, 1)).unwrap();
    h.write(1, 0, 0x05, 0x09);
    let t = sig_changed(&h.advance_cmds(3));
    assert_eq!(t, vec![vec![0x0C, 0x00, 0x06, 0x10, 0x02, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00]]);
    h.write(1, 1, 0x05, 0x09);
    h.advance_ms(3);
    assert!(!h.d.fxo_state(1, 1).unwrap().ring_reported);
    h.write(1, 0, 0x05, 0x08);
    h.advance_ms(3);
    assert_eq!(h.read(1, 1, 0x1D), 0, "disconnect supervision");
}

#[test]
fn pri_crossover_patch() {
    // MODEL: PATCH-4
    let mut h =
        Host::new([Some(ModuleConfig::Pri { protocol: PriProtocol::E1, ports: 2 }), None, None, None]);
    h.d.patch(PortRef::new(0, 0), PortRef::new(0, 1)).unwrap();
    h.advance_ms(2);
    assert_eq!(h.read_at(0, 0, 0, 0x4C), 0x00);
    h.write_sub(0, 1, xpp_proto::wire::RegAccess::write(1, 0x28, 0x40));
    h.advance_ms(2);
    assert_eq!(h.read_at(0, 0, 0, 0x4C), 0x80);
    h.advance_ms(2);
    assert_eq!(h.read_at(0, 1, 1, 0x4C), 0x10, "the other side sees RAI");
}
