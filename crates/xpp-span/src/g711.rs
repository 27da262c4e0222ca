//! G.711 companding (ITU-T G.711): mu-law and A-law to and from 16-bit linear, and the
//! byte-to-byte tables between the two laws.
//!
//! The audio path uses these when a channel's law (`alaw=`/`mulaw=` in `system.conf`, or
//! [`XbusCore::set_law`](crate::xbus::XbusCore::set_law), the driver's `Driver::set_law`)
//! differs from its span's native law (mu-law on analog and T1 spans, A-law on E1 and BRI),
//! and for linear (16-bit) chunk I/O,
//! the way the DAHDI core converts (docs/reference/dahdi-span-model.md §9). Conversions between the laws go
//! through linear, as DAHDI's do.
//!
//! Linear values are 16-bit two's complement with the G.711 range scaled to the full word:
//! mu-law decodes to ±32124, A-law to ±32256. Everything here is `const` and table-free
//! except the two 256-byte law-to-law tables, built at compile time.

use crate::dahdi::Law;

/// mu-law bias added before the segment search (in the 16-bit domain).
const ULAW_BIAS: i32 = 0x84;
/// Largest magnitude mu-law encodes without clipping (16-bit domain).
const ULAW_CLIP: i32 = 32635;

/// The segment of `v` (0..=7) for G.711's eight segments starting at `first_end` (each
/// segment's end doubles the previous one); 8 if `v` is beyond the last.
const fn segment(v: i32, first_end: i32) -> i32 {
    let mut seg = 0;
    let mut end = first_end;
    while seg < 8 {
        if v <= end {
            return seg;
        }
        seg += 1;
        end = end * 2 + 1;
    }
    8
}

/// Decodes one mu-law byte.
pub const fn ulaw_to_linear(code: u8) -> i16 {
    let u = !code as i32 & 0xFF;
    let exponent = (u >> 4) & 0x07;
    let magnitude = ((((u & 0x0F) << 3) + ULAW_BIAS) << exponent) - ULAW_BIAS;
    (if u & 0x80 != 0 { -magnitude } else { magnitude }) as i16
}

/// Encodes one 16-bit linear sample as mu-law (clipped to the mu-law range).
pub const fn linear_to_ulaw(sample: i16) -> u8 {
    let mut v = sample as i32;
    let mask = if v < 0 {
        v = -v;
        0x7F
    } else {
        0xFF
    };
    if v > ULAW_CLIP {
        v = ULAW_CLIP;
    }
    v += ULAW_BIAS;
    // Biased values start at 0x84 > 0xFF >> 1: segment 0 ends at 0xFF.
    let seg = segment(v, 0xFF);
    let code = if seg >= 8 { 0x7F } else { (seg << 4) | ((v >> (seg + 3)) & 0x0F) };
    (code ^ mask) as u8
}

/// Decodes one A-law byte.
pub const fn alaw_to_linear(code: u8) -> i16 {
    let a = (code ^ 0x55) as i32;
    let seg = (a >> 4) & 0x07;
    let mut t = (a & 0x0F) << 4;
    if seg == 0 {
        t += 8;
    } else {
        t = (t + 0x108) << (seg - 1);
    }
    (if a & 0x80 != 0 { t } else { -t }) as i16
}

/// Encodes one 16-bit linear sample as A-law.
pub const fn linear_to_alaw(sample: i16) -> u8 {
    // A-law is defined on 13 bits.
    let mut v = (sample as i32) >> 3;
    let mask = if v >= 0 {
        0xD5
    } else {
        v = -v - 1;
        0x55
    };
    let seg = segment(v, 0x1F);
    let code = if seg >= 8 {
        0x7F
    } else if seg < 2 {
        (seg << 4) | ((v >> 1) & 0x0F)
    } else {
        (seg << 4) | ((v >> seg) & 0x0F)
    };
    (code ^ mask) as u8
}

const fn table(from: Law) -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = match from {
            Law::Alaw => linear_to_ulaw(alaw_to_linear(i as u8)),
            _ => linear_to_alaw(ulaw_to_linear(i as u8)),
        };
        i += 1;
    }
    t
}

/// mu-law byte → the A-law byte of the same linear value.
pub static ULAW_TO_ALAW: [u8; 256] = table(Law::Mulaw);
/// A-law byte → the mu-law byte of the same linear value.
pub static ALAW_TO_ULAW: [u8; 256] = table(Law::Alaw);

/// The byte table from law `from` to law `to`, `None` when they are the same (both must be
/// [`Law::Mulaw`] or [`Law::Alaw`]; [`Law::Default`] and unknown values count as mu-law).
pub fn law_table(from: Law, to: Law) -> Option<&'static [u8; 256]> {
    match (from == Law::Alaw, to == Law::Alaw) {
        (false, true) => Some(&ULAW_TO_ALAW),
        (true, false) => Some(&ALAW_TO_ULAW),
        _ => None,
    }
}

/// Decodes one byte in `law` ([`Law::Alaw`], anything else mu-law).
pub fn to_linear(law: Law, code: u8) -> i16 {
    if law == Law::Alaw { alaw_to_linear(code) } else { ulaw_to_linear(code) }
}

/// Encodes one sample in `law` ([`Law::Alaw`], anything else mu-law).
pub fn from_linear(law: Law, sample: i16) -> u8 {
    if law == Law::Alaw { linear_to_alaw(sample) } else { linear_to_ulaw(sample) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_codes() {
        // Silence and the extremes (G.711 tables, scaled to 16 bits).
        assert_eq!((ulaw_to_linear(0xFF), ulaw_to_linear(0x7F)), (0, 0));
        assert_eq!((ulaw_to_linear(0x80), ulaw_to_linear(0x00)), (32124, -32124));
        assert_eq!((alaw_to_linear(0xD5), alaw_to_linear(0x55)), (8, -8));
        assert_eq!((alaw_to_linear(0xAA), alaw_to_linear(0x2A)), (32256, -32256));
        assert_eq!((linear_to_ulaw(0), linear_to_alaw(0)), (0xFF, 0xD5));
        assert_eq!((linear_to_ulaw(i16::MAX), linear_to_ulaw(i16::MIN)), (0x80, 0x00));
        assert_eq!((linear_to_alaw(i16::MAX), linear_to_alaw(i16::MIN)), (0xAA, 0x2A));
        // mu-law zero is A-law's smallest step (+8); that is mu-law's first step (0xFE).
        assert_eq!((ULAW_TO_ALAW[0xFF], ALAW_TO_ULAW[0xD5]), (0xD5, 0xFE));
    }

    #[test]
    fn every_code_survives_decode_then_encode() {
        for c in 0..=255u8 {
            assert_eq!(linear_to_alaw(alaw_to_linear(c)), c, "A-law {c:#04x}");
            // mu-law has two zeros (0x7F = -0, 0xFF = +0); zero encodes as +0.
            let want = if c == 0x7F { 0xFF } else { c };
            assert_eq!(linear_to_ulaw(ulaw_to_linear(c)), want, "mu-law {c:#04x}");
        }
    }

    #[test]
    fn decoding_is_monotonic_in_magnitude() {
        // Within each sign half, larger magnitude codes decode to larger magnitudes.
        let mags = |f: fn(u8) -> i16, codes: &mut dyn Iterator<Item = u8>| {
            codes.map(|c| i32::from(f(c)).abs()).collect::<Vec<_>>()
        };
        let u = mags(ulaw_to_linear, &mut (0x80..=0xFFu8).rev());
        assert!(u.windows(2).all(|w| w[0] < w[1]), "{u:?}");
        let a = mags(
            alaw_to_linear,
            &mut (0..8u8).flat_map(|e| (0..16u8).map(move |m| 0x80 | (e << 4) | m)).map(|c| c ^ 0x55),
        );
        assert!(a.windows(2).all(|w| w[0] < w[1]), "{a:?}");
    }

    #[test]
    fn law_tables_agree_with_linear_and_are_near_inverses() {
        for c in 0..=255u8 {
            assert_eq!(ULAW_TO_ALAW[usize::from(c)], linear_to_alaw(ulaw_to_linear(c)));
            assert_eq!(ALAW_TO_ULAW[usize::from(c)], linear_to_ulaw(alaw_to_linear(c)));
            // There and back moves a sample by at most one step of the coarser law.
            let back = ALAW_TO_ULAW[usize::from(ULAW_TO_ALAW[usize::from(c)])];
            let (x, y) = (i32::from(ulaw_to_linear(c)), i32::from(ulaw_to_linear(back)));
            assert!((x - y).abs() <= 1024 + x.abs() / 16, "{c:#04x}: {x} -> {y}");
        }
        assert_eq!(law_table(Law::Mulaw, Law::Mulaw), None);
        assert_eq!(law_table(Law::Default, Law::Mulaw), None);
        assert_eq!(law_table(Law::Alaw, Law::Alaw), None);
        assert!(std::ptr::eq(law_table(Law::Mulaw, Law::Alaw).unwrap(), &ULAW_TO_ALAW));
        assert!(std::ptr::eq(law_table(Law::Alaw, Law::Default).unwrap(), &ALAW_TO_ULAW));
    }

    proptest! {
        /// encode → decode keeps a sample within the law's quantisation step (relative
        /// error under 1/16 of the magnitude above the smallest segments).
        #[test]
        fn linear_round_trip_within_one_step(x in any::<i16>()) {
            for law in [Law::Mulaw, Law::Alaw] {
                let y = i32::from(to_linear(law, from_linear(law, x)));
                let x = i32::from(x).clamp(-32256, 32256);
                let step = (x.abs() / 16).max(if law == Law::Alaw { 16 } else { 8 }) + 132;
                prop_assert!((x - y).abs() <= step, "{:?}: {} -> {}", law, x, y);
            }
        }
    }
}
