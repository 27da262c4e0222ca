//! BRI packed PCM (docs/reference/xpp-protocol.md §9.4).
//!
//! Only subunit 0's XPD of a BRI unit sends and receives a PCM packet, for the whole unit:
//! subunit `s` uses bit `4s` for B1 and `4s + 1` for B2. The D-channel is never in PCM.

use super::Pcm;
use super::pcm::SAMPLES_PER_TICK;

/// Most BRI subunits whose B-channels fit the 32-bit `lines` mask.
pub const MAX_SUBUNITS: u8 = 8;

/// The `lines` bit of subunit `s`'s B1 channel, or `None` if `s` > 7.
pub const fn b1_bit(subunit: u8) -> Option<u8> {
    if subunit < MAX_SUBUNITS { Some(subunit * 4) } else { None }
}

/// The `lines` bit of subunit `s`'s B2 channel, or `None` if `s` > 7.
pub const fn b2_bit(subunit: u8) -> Option<u8> {
    if subunit < MAX_SUBUNITS { Some(subunit * 4 + 1) } else { None }
}

/// Which B-channels of one BRI port are in PCM (marked off-hook).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct BChannels {
    /// B1 is carried.
    pub b1: bool,
    /// B2 is carried.
    pub b2: bool,
}

/// The unit's `lines` mask from per-subunit B-channel states, subunit 0 first.
/// Entries past the 8th are ignored.
pub fn unit_lines(subunits: &[BChannels]) -> u32 {
    subunits
        .iter()
        .take(usize::from(MAX_SUBUNITS))
        .enumerate()
        .fold(0, |acc, (s, c)| acc | (u32::from(c.b1) << (4 * s)) | (u32::from(c.b2) << (4 * s + 1)))
}

/// The B-channel states of subunit `s` in a unit `lines` mask.
pub const fn subunit_channels(lines: u32, subunit: u8) -> BChannels {
    if subunit >= MAX_SUBUNITS {
        return BChannels { b1: false, b2: false };
    }
    let shift = subunit * 4;
    BChannels { b1: lines & (1 << shift) != 0, b2: lines & (1 << (shift + 1)) != 0 }
}

/// Locates subunit `s`'s B1 and B2 samples in a unit's PCM packet (`None` where not carried).
pub fn subunit_samples<'a>(
    pcm: &Pcm<'a>,
    subunit: u8,
) -> (Option<&'a [u8; SAMPLES_PER_TICK]>, Option<&'a [u8; SAMPLES_PER_TICK]>) {
    match (b1_bit(subunit), b2_bit(subunit)) {
        (Some(b1), Some(b2)) => (pcm.line(b1), pcm.line(b2)),
        _ => (None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits() {
        for s in 0..8u8 {
            assert_eq!(b1_bit(s), Some(4 * s));
            assert_eq!(b2_bit(s), Some(4 * s + 1));
        }
        assert_eq!(b1_bit(8), None);
        assert_eq!(b2_bit(8), None);
    }

    #[test]
    fn lines_from_states() {
        let on = BChannels { b1: true, b2: true };
        let off = BChannels::default();
        let b2 = BChannels { b1: false, b2: true };
        assert_eq!(unit_lines(&[]), 0);
        assert_eq!(unit_lines(&[on]), 0b11);
        assert_eq!(unit_lines(&[off, b2, on, off]), 0x0000_0320);
        assert_eq!(unit_lines(&[on; 10]), 0x3333_3333);
        for s in 0..8 {
            assert_eq!(subunit_channels(0x3333_3333, s), on);
            assert_eq!(subunit_channels(0, s), off);
        }
        assert_eq!(subunit_channels(0x20, 1), b2);
        assert_eq!(subunit_channels(u32::MAX, 8), off);
        // Exhaustive over every per-port combination of 4 ports.
        for combo in 0u32..256 {
            let states: [BChannels; 4] = core::array::from_fn(|s| BChannels {
                b1: combo & (1 << (2 * s)) != 0,
                b2: combo & (1 << (2 * s + 1)) != 0,
            });
            let lines = unit_lines(&states);
            for (s, st) in states.iter().enumerate() {
                assert_eq!(subunit_channels(lines, s as u8), *st);
            }
            assert_eq!(lines & !0x3333, 0, "D-channel and spare bits never set");
        }
    }

    #[test]
    fn locate_samples() {
        // Subunit 0 B1+B2, subunit 2 B2 only: lines = bits 0, 1, 9.
        let lines = 0b10_0000_0011;
        let mut samples = [0u8; 24];
        for (i, b) in samples.iter_mut().enumerate() {
            *b = i as u8;
        }
        let pcm = Pcm::new(lines, &samples).unwrap();
        let (b1, b2) = subunit_samples(&pcm, 0);
        assert_eq!(b1, Some(&[0, 1, 2, 3, 4, 5, 6, 7]));
        assert_eq!(b2, Some(&[8, 9, 10, 11, 12, 13, 14, 15]));
        assert_eq!(subunit_samples(&pcm, 1), (None, None));
        assert_eq!(subunit_samples(&pcm, 2), (None, Some(&[16, 17, 18, 19, 20, 21, 22, 23])));
        assert_eq!(subunit_samples(&pcm, 9), (None, None));
    }
}
