//! Audio-only bridges (MODEL.md PATCH-6) and BRI TE↔NT patches (PATCH-5).

mod data_common;

use data_common::{Host, pcm_reads};
use xpp_emu::config::ModuleConfig;
use xpp_emu::data::{AudioChannel, PatchError, PortRef};

const FXS_FXO: [Option<ModuleConfig>; 4] = [Some(ModuleConfig::FXS), Some(ModuleConfig::FXO), None, None];

#[test]
fn a_bridge_carries_audio_between_two_phones() {
    let mut h = Host::new(FXS_FXO);
    for p in [2, 3] {
        h.write(0, p, 0x40, 0x01);
        h.d.phone_mut(0, p).unwrap().off_hook(h.now);
    }
    let (a, b) = (AudioChannel::Phone(PortRef::new(0, 2)), AudioChannel::Phone(PortRef::new(0, 3)));
    h.d.bridge(a, b).unwrap();
    // Refusals: a channel in a bridge, a missing channel, itself.
    let c = AudioChannel::Pstn(PortRef::new(1, 0));
    assert_eq!(h.d.bridge(a, c), Err(PatchError::AlreadyPatched(PortRef::new(0, 2))));
    let none = AudioChannel::Pstn(PortRef::new(0, 0));
    assert_eq!(h.d.bridge(none, c), Err(PatchError::NoSuchPort(PortRef::new(0, 0))));
    assert!(matches!(h.d.bridge(c, c), Err(PatchError::Unsupported(..))));
    h.sync(0x01, 0);
    // The host plays 0x9A to port 2: port 2's phone hears it, port 3's phone says it.
    let mut read3 = Vec::new();
    for _ in 0..10 {
        h.pcm_write(&[(0, 0, 0b1100, [0x9A; 8])]);
        h.advance_ms(1);
        for t in h.drain() {
            for (_, _, lines, samples) in pcm_reads(&t) {
                if lines == 0b1100 {
                    read3.push(samples[8..16].to_vec());
                }
            }
        }
    }
    assert!(read3.len() >= 8);
    assert!(read3[read3.len() - 5..].iter().all(|s| s == &[0x9A; 8]), "{read3:?}");
    // Unbridged: silence again.
    assert!(h.d.unbridge(b));
    assert!(!h.d.unbridge(b));
    for _ in 0..3 {
        h.pcm_write(&[(0, 0, 0b1100, [0x9A; 8])]);
        h.advance_ms(1);
        h.drain();
    }
    h.pcm_write(&[(0, 0, 0b1100, [0x9A; 8])]);
    h.advance_ms(1);
    let t = h.drain();
    let last = pcm_reads(t.last().unwrap());
    assert_eq!(&last[0].3[8..16], &[0xFF; 8]);
}
