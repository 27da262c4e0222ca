//! The host's D-channel over an emulated PRI E1 reaches Q.921 multiple-frame-established
//! with the far end's minimal Q.921 peer (MODEL.md PRI-13): the host side is the software HDLC
//! engine of `xpp-chan` plus a minimal Q.921 client written here.

mod data_common;
use data_common as common;

use common::{Host, pcm_reads};
use xpp_chan::hdlc::{HdlcRx, HdlcTx, RxEvent};
use xpp_emu::config::ModuleConfig;

/// E1: logical D-channel 15 is physical line bit 16.
const D_BIT: u32 = 1 << 16;

/// Runs `ms` milliseconds: the host's HDLC transmitter fills the D timeslot of every
/// PCM_WRITE, every PCM_READ D timeslot goes through the host's HDLC receiver; frames
/// (FCS stripped) are returned.
fn run(h: &mut Host, tx: &mut HdlcTx, rx: &mut HdlcRx, ms: usize) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    for _ in 0..ms {
        let mut chunk = [0u8; 8];
        tx.fill(&mut chunk);
        h.pcm_write(&[(0, 0, D_BIT, chunk)]);
        h.advance_ms(1);
        for t in h.drain().iter().filter(|t| t[1] & 0x08 != 0) {
            for (_, _, lines, s) in pcm_reads(t) {
                if lines == D_BIT {
                    rx.feed(&s, |ev| match ev {
                        RxEvent::Frame(f) => frames.push(f[..f.len() - 2].to_vec()),
                        other => panic!("unexpected {other:?}"),
                    });
                }
            }
        }
    }
    frames
}

/// Q.921 user side, SAPI 0 TEI 0: a command from the user has C/R = 0.
const ADDR: [u8; 2] = [0x00, 0x01];

#[test]
fn host_q921_reaches_multiple_frame_established() {
    let mut h = Host::new([Some(ModuleConfig::PRI_E1), None, None, None]);
    h.sync(0x01, 0);
    h.advance_ms(2);
    h.d.pri_far_end_mut(0, 0).unwrap().set_q921(true);
    let mut tx = HdlcTx::new(260, true);
    let mut rx = HdlcRx::new(260, true);

    // SABME with P: the link comes up when the UA with F arrives.
    tx.send(&[ADDR[0], ADDR[1], 0x7F, 0, 0]).unwrap();
    let got = run(&mut h, &mut tx, &mut rx, 10);
    assert_eq!(got, vec![vec![0x00, 0x01, 0x73]], "UA, F=1");
    assert!(h.d.pri_far_end_mut(0, 0).unwrap().q921().unwrap().established());

    // Two I-frames (N(S) 0 and 1, P on the second): both acknowledged with RR N(R) 1 and 2.
    let mut acks = Vec::new();
    for (ns, p) in [(0u8, 0u8), (1, 1)] {
        tx.send(&[ADDR[0], ADDR[1], ns << 1, p, 0x08, 0x01, 0x05, 0x05, 0, 0]).unwrap();
        acks.extend(run(&mut h, &mut tx, &mut rx, 10));
    }
    assert_eq!(acks, vec![vec![0x00, 0x01, 0x01, 0x02], vec![0x00, 0x01, 0x01, 0x05]]);

    // A poll (RR command with P) is answered with RR F=1: the link stays up.
    tx.send(&[ADDR[0], ADDR[1], 0x01, 0x05, 0, 0]).unwrap();
    assert_eq!(run(&mut h, &mut tx, &mut rx, 10), vec![vec![0x00, 0x01, 0x01, 0x05]]);
    let far = h.d.pri_far_end_mut(0, 0).unwrap();
    assert_eq!(far.q921().unwrap().i_frames(), 2);
    assert_eq!(far.dchannel_errors(), 0);
    assert_eq!(far.take_frames().len(), 4);
}
