//! PRI far-end D-channel HDLC framing (MODEL.md PRI-8): the far end's Q.921 frames appear in
//! the D timeslot of PCM_READ with flags, zero insertion and FCS; frames the host writes in
//! the D timeslot of PCM_WRITE reach the far end. The test has its own bit-level HDLC coder.

mod data_common;
use data_common as common;

use common::{Host, pcm_reads};
use xpp_emu::config::ModuleConfig;
use xpp_emu::data::g711::fcs16;

/// E1: logical D-channel 15 is physical line bit 16.
const D_BIT: u32 = 1 << 16;

/// Line bits (first bit = MSB of each timeslot byte) -> frames with a good FCS.
fn test_decode(bytes: &[u8]) -> Vec<Vec<u8>> {
    let bits: Vec<bool> = bytes.iter().flat_map(|b| (0..8).rev().map(move |i| b >> i & 1 != 0)).collect();
    let mut frames = Vec::new();
    let mut i = 0;
    let is_flag = |i: usize| {
        bits.get(i..i + 8).is_some_and(|w| w == [false, true, true, true, true, true, true, false])
    };
    while i < bits.len() {
        if !is_flag(i) {
            i += 1;
            continue;
        }
        i += 8;
        let mut data = Vec::new();
        let mut ones = 0;
        while i < bits.len() && !is_flag(i) {
            let b = bits[i];
            i += 1;
            if ones == 5 && !b {
                ones = 0;
                continue; // stuffed
            }
            ones = if b { ones + 1 } else { 0 };
            data.push(b);
        }
        if data.len() >= 24 && data.len().is_multiple_of(8) {
            let octets: Vec<u8> = data
                .chunks(8)
                .map(|c| c.iter().enumerate().fold(0, |a, (k, &b)| a | u8::from(b) << k))
                .collect();
            let n = octets.len() - 2;
            if fcs16(&octets[..n]) == u16::from_le_bytes([octets[n], octets[n + 1]]) {
                frames.push(octets[..n].to_vec());
            }
        }
    }
    frames
}

/// A frame -> line bytes (flag, stuffed data + FCS LSB first, flag, ones to the byte).
fn test_encode(frame: &[u8]) -> Vec<u8> {
    let flag = [false, true, true, true, true, true, true, false];
    let mut bits: Vec<bool> = flag.to_vec();
    let mut ones = 0;
    let fcs = fcs16(frame).to_le_bytes();
    for &o in frame.iter().chain(&fcs) {
        for k in 0..8 {
            let b = o >> k & 1 != 0;
            bits.push(b);
            ones = if b { ones + 1 } else { 0 };
            if ones == 5 {
                bits.push(false);
                ones = 0;
            }
        }
    }
    bits.extend(flag);
    while !bits.len().is_multiple_of(8) {
        bits.push(true);
    }
    bits.chunks(8).map(|c| c.iter().fold(0u8, |a, &b| (a << 1) | u8::from(b))).collect()
}

#[test]
fn far_end_frames_reach_the_host_and_host_frames_reach_the_far_end() {
    let mut h = Host::new([Some(ModuleConfig::PRI_E1), None, None, None]);
    h.sync(0x01, 0);
    h.advance_ms(2);
    let now = h.now;
    // A SABME (Q.921 address SAPI 0 TEI 0, C/R 1) and a frame full of ones and flags.
    let sabme = vec![0x02, 0x01, 0x7F];
    let tricky = vec![0x7E, 0xFF, 0x7D, 0x00, 0xFF];
    let far = h.d.pri_far_end_mut(0, 0).unwrap();
    far.send_frame(now, &sabme);
    far.send_frame(now, &tricky);
    let host_bytes = test_encode(&[0x00, 0x01, 0x73]); // UA from the host
    let mut chunks = host_bytes.chunks(8).map(|c| {
        let mut a = [0xFF; 8];
        a[..c.len()].copy_from_slice(c);
        a
    });
    let mut d_rx = Vec::new();
    for _ in 0..20 {
        h.pcm_write(&[(0, 0, D_BIT, chunks.next().unwrap_or([0xFF; 8]))]);
        h.advance_ms(1);
        for t in h.drain().iter().filter(|t| t[1] & 0x08 != 0) {
            for (_, _, lines, s) in pcm_reads(t) {
                if lines == D_BIT {
                    d_rx.extend_from_slice(&s);
                }
            }
        }
    }
    assert_eq!(test_decode(&d_rx), vec![sabme, tricky]);
    // Idle after the frames: all ones.
    assert!(d_rx[d_rx.len() - 40..].iter().all(|&b| b == 0xFF));
    let far = h.d.pri_far_end_mut(0, 0).unwrap();
    assert_eq!(far.take_frames(), vec![vec![0x00, 0x01, 0x73]]);
    assert_eq!(far.dchannel_errors(), 0);
}

#[test]
fn a_corrupted_host_frame_is_counted_not_delivered() {
    let mut h = Host::new([Some(ModuleConfig::PRI_E1), None, None, None]);
    h.sync(0x01, 0);
    h.advance_ms(2);
    let mut bytes = test_encode(&[0x00, 0x01, 0x73, 0x10, 0x20]);
    bytes[3] ^= 0x01;
    for c in bytes.chunks(8).chain([&[0xFF; 8][..]; 3]) {
        let mut a = [0xFF; 8];
        a[..c.len()].copy_from_slice(c);
        h.pcm_write(&[(0, 0, D_BIT, a)]);
        h.advance_ms(1);
        h.drain();
    }
    let far = h.d.pri_far_end_mut(0, 0).unwrap();
    assert!(far.take_frames().is_empty());
    assert_eq!(far.dchannel_errors(), 1);
}
