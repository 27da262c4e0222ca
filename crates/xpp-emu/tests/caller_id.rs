//! Caller ID end to end through the data interface (MODEL.md EQ-2, EQ-4): a PSTN line sends it
//! into an FXO port's PCM_READ, and an FXS phone decodes what the host plays in PCM_WRITE.
//!
//! The test decodes FSK with its own demodulator (a quadrature delay discriminator, a
//! different method from the phone's correlators), so the generator is not checked against
//! its own twin.

mod data_common;
use data_common as common;

use common::{Host, pcm_reads};
use xpp_emu::config::ModuleConfig;
use xpp_emu::data::callerid::{self, CallerId, CidStandard};
use xpp_emu::data::{EventKind, g711};

const FXS_FXO: [Option<ModuleConfig>; 4] = [Some(ModuleConfig::FXS), Some(ModuleConfig::FXO), None, None];

/// FSK demodulator for the test: the product of the signal with itself delayed by `d`
/// samples, low-passed over one bit, sign = mark/space; then an 8N1 UART sampling mid-bit;
/// then the SDMF/MDMF message with a good checksum (written from the standard's layout).
fn test_demodulate(samples: &[i16], mark_hz: f64, space_hz: f64) -> Option<(String, String)> {
    // Delay one sample: cos(2π f / 8000) > 0 for the mark, < 0 ... pick the threshold between.
    let c = |f: f64| (2.0 * std::f64::consts::PI * f / 8000.0).cos();
    let threshold = (c(mark_hz) + c(space_hz)) / 2.0;
    let x: Vec<f64> = samples.iter().map(|&s| f64::from(s)).collect();
    let mut bits = Vec::with_capacity(x.len());
    let w = 7;
    for n in 0..x.len() {
        let lo = n.saturating_sub(w);
        let (mut num, mut den) = (0.0, 0.0);
        for k in lo.max(1)..=n {
            num += x[k] * x[k - 1];
            den += x[k] * x[k];
        }
        // Quiet -> mark.
        bits.push(den < 1e5 || num / den > threshold);
    }
    let spb = 8000.0 / 1200.0;
    let mut bytes = Vec::new();
    let mut n = 1;
    while n < bits.len() {
        if bits[n - 1] && !bits[n] {
            let at = |k: f64| (n as f64 + spb * (k + 0.5)) as usize;
            if bits.get(at(9.0)) == Some(&true) && bits.get(at(0.0)) == Some(&false) {
                let b = (0..8).fold(0u8, |acc, i| acc | (u8::from(bits[at(1.0 + i as f64)]) << i));
                bytes.push(b);
                n = at(9.0);
                continue;
            }
        }
        n += 1;
    }
    // Find a message: type 0x80, length, parameters, checksum.
    for i in 0..bytes.len() {
        if bytes[i] != 0x80 {
            continue;
        }
        let Some(&len) = bytes.get(i + 1) else { continue };
        let end = i + 2 + usize::from(len);
        let Some(sum) = bytes.get(end) else { continue };
        let total = bytes[i..end].iter().fold(0u8, |a, &b| a.wrapping_add(b)).wrapping_add(*sum);
        if total != 0 {
            continue;
        }
        let (mut number, mut name) = (String::new(), String::new());
        let mut p = i + 2;
        while p + 1 < end {
            let (t, l) = (bytes[p], usize::from(bytes[p + 1]));
            let v = String::from_utf8_lossy(&bytes[p + 2..(p + 2 + l).min(end)]).into_owned();
            match t {
                0x02 => number = v,
                0x07 => name = v,
                _ => {}
            }
            p += 2 + l;
        }
        return Some((number, name));
    }
    None
}

/// Rings FXO port 1/0 with caller ID; returns (per-ms PCM_READ audio of line 0 of unit 1 as
/// linear samples, the ms at which the ring was first reported on, second ring report).
fn ring_with_cid(standard: CidStandard) -> (Vec<i16>, Vec<usize>, Host) {
    let mut h = Host::new(FXS_FXO);
    h.write(1, 0, 0x05, 0x08); // on-hook line monitor (FXO-11)
    h.sync(0x01, 0);
    let now = h.now;
    let line = h.d.pstn_mut(1, 0).unwrap();
    line.set_caller_id(Some(CallerId::new("5551234", "Jane Doe")), standard);
    line.ring(now);
    let mut audio = Vec::new();
    let mut ring_on_at = Vec::new();
    for ms in 0..9_000 {
        h.pcm_write(&[(1, 0, 0b1, [0xFF; 8])]);
        h.advance_ms(1);
        for t in h.drain() {
            if t[1] & 0x08 != 0 {
                for (addr, _, lines, s) in pcm_reads(&t) {
                    if addr.unit() == 1 && lines & 1 != 0 {
                        audio.extend(s[..8].iter().map(|&b| g711::ulaw_decode(b)));
                    }
                }
            } else if t[2] == 0x06 && t[4] & 1 != 0 {
                ring_on_at.push(ms);
            }
        }
    }
    (audio, ring_on_at, h)
}

#[test]
fn bell202_caller_id_between_first_and_second_ring() {
    // MODEL: EQ-4 — FSK 500 ms after the first 2 s burst, before the second burst at 6 s.
    let (audio, rings, _) = ring_with_cid(CidStandard::Bell202);
    assert_eq!(rings.len(), 2, "two ring-on reports in 9 s: {rings:?}");
    let (first, second) = (rings[0], rings[1]);
    assert!(second - first >= 5_990);
    let between = &audio[(first + 2_000) * 8..second * 8];
    // Quiet for the first 500 ms after the burst, then the FSK.
    assert!(between[..400 * 8].iter().all(|&s| s.abs() < 16));
    assert_eq!(test_demodulate(between, 1200.0, 2200.0), Some(("5551234".into(), "Jane Doe".into())));
    // Nothing before the first ring ended.
    assert!(audio[..(first + 2_000) * 8].iter().all(|&s| s.abs() < 16));
}

#[test]
fn etsi_caller_id_after_polarity_reversal_before_the_ring() {
    // MODEL: EQ-4 — ETSI: reversal (FXO-8 reply), V.23 FSK, then the first ring.
    let mut h = Host::new(FXS_FXO);
    h.write(1, 0, 0x05, 0x08);
    h.sync(0x01, 0);
    h.advance_ms(5);
    h.drain();
    let now = h.now;
    let line = h.d.pstn_mut(1, 0).unwrap();
    line.set_caller_id(Some(CallerId::new("0123456789", "ACME")), CidStandard::EtsiV23);
    line.ring(now);
    let mut audio = Vec::new();
    let mut events = Vec::new();
    for ms in 0..3_000usize {
        h.pcm_write(&[(1, 0, 0b1, [0xFF; 8])]);
        h.advance_ms(1);
        for t in h.drain() {
            if t[1] & 0x08 != 0 {
                for (addr, _, lines, s) in pcm_reads(&t) {
                    if addr.unit() == 1 && lines & 1 != 0 {
                        audio.extend(s[..8].iter().map(|&b| g711::ulaw_decode(b)));
                    }
                }
            } else if t[2] == 0x10 && t[6] == 0x04 {
                events.push(("reversal", ms));
            } else if t[2] == 0x06 && t[4] & 1 != 0 {
                events.push(("ring", ms));
            }
        }
    }
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0].0, "reversal");
    assert!(events[0].1 <= 2);
    assert_eq!(events[1].0, "ring");
    let (rev, ring) = (events[0].1, events[1].1);
    let got = test_demodulate(&audio[rev * 8..ring * 8], 1300.0, 2100.0);
    assert_eq!(got, Some(("0123456789".into(), "ACME".into())));
    // The line is reversed while the call lasts, normal again once it is idle.
    assert!(h.d.pstn(1, 0).unwrap().is_reversed());
    let now = h.now;
    h.d.pstn_mut(1, 0).unwrap().hang_up(now);
    h.advance_ms(2);
    assert!(!h.d.pstn(1, 0).unwrap().is_reversed());
}

#[test]
fn dtmf_caller_id_before_the_ring() {
    let mut h = Host::new(FXS_FXO);
    h.write(1, 0, 0x05, 0x08);
    h.sync(0x01, 0);
    let now = h.now;
    let line = h.d.pstn_mut(1, 0).unwrap();
    line.set_caller_id(Some(CallerId::new("42", "")), CidStandard::Dtmf);
    line.ring(now);
    let mut audio = Vec::new();
    for _ in 0..1_000 {
        h.pcm_write(&[(1, 0, 0b1, [0xFF; 8])]);
        h.advance_ms(1);
        for t in h.drain().iter().filter(|t| t[1] & 0x08 != 0) {
            for (addr, _, _, s) in pcm_reads(t) {
                if addr.unit() == 1 {
                    audio.extend(s[..8].iter().map(|&b| g711::ulaw_decode(b)));
                }
            }
        }
    }
    // Digits of 70 ms every 140 ms from 250 ms: A 4 2 C.
    let digit = |ms: usize| g711::detect_dtmf(&audio[(ms + 10) * 8..(ms + 35) * 8]);
    let got: String = (0..4).filter_map(|i| digit(250 + 140 * i)).collect();
    assert_eq!(got, "A42C");
}

#[test]
fn fxs_phone_decodes_fsk_played_by_the_host() {
    // MODEL: EQ-2 — the host puts the FXS line in on-hook transmission and plays FSK.
    let mut h = Host::new(FXS_FXO);
    h.write(0, 0, 0x40, 0x02); // forward OHT
    h.sync(0x01, 0);
    for (standard, number, name) in
        [(CidStandard::Bell202, "5551234", "Jane Doe"), (CidStandard::EtsiV23, "0612345678", "")]
    {
        let cid = CallerId::new(number, name);
        let fsk = callerid::fsk_modulate(&callerid::mdmf(&cid), standard, 5000);
        let mut ulaw: Vec<u8> = fsk.iter().map(|&s| g711::ulaw_encode(s)).collect();
        ulaw.resize(ulaw.len().div_ceil(8) * 8 + 80, 0xFF);
        for chunk in ulaw.chunks(8) {
            let mut c = [0u8; 8];
            c.copy_from_slice(chunk);
            h.pcm_write(&[(0, 0, 0b1, c)]);
            h.advance_ms(1);
            h.drain();
        }
        assert_eq!(h.d.phone(0, 0).unwrap().caller_id(), Some(&cid), "{standard:?}");
        let ev: Vec<_> = h.d.events().map(|e| e.kind.clone()).collect();
        assert!(ev.contains(&EventKind::CallerId { number: number.into(), name: name.into() }));
    }
}

#[test]
fn pstn_caller_id_reaches_a_patched_phone_through_the_host_loop() {
    // The FXO port's monitor audio decoded by the test demodulator is what a host would pass
    // on; here the test plays it straight to an FXS port and the phone shows it.
    let (audio, rings, _) = ring_with_cid(CidStandard::Bell202);
    let between = &audio[(rings[0] + 2_000) * 8..rings[1] * 8];
    let mut h = Host::new(FXS_FXO);
    h.write(0, 0, 0x40, 0x02);
    h.sync(0x01, 0);
    for chunk in between.chunks_exact(8) {
        let mut c = [0u8; 8];
        for (o, &s) in c.iter_mut().zip(chunk) {
            *o = g711::ulaw_encode(s);
        }
        h.pcm_write(&[(0, 0, 0b1, c)]);
        h.advance_ms(1);
        h.drain();
    }
    assert_eq!(h.d.phone(0, 0).unwrap().caller_id(), Some(&CallerId::new("5551234", "Jane Doe")));
}
