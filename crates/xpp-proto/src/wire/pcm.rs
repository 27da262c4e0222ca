//! PCM_WRITE (0x11) / PCM_READ (0x12) payloads, docs/reference/xpp-protocol.md §6.4 and §7.
//!
//! ```text
//! offset 0   4                8                 16          8+8*popcount(lines)
//!        +---+----------------+-----------------+-- ... --+
//!        |hdr| lines (LE32)   | samples of the  |         |
//!        |   | bit n = line n | lowest set line | ...     |
//!        +---+----------------+-----------------+-- ... --+
//! ```
//!
//! Each set bit of `lines`, in ascending order, is followed by that line's 8 samples (one tick,
//! time order). The packet length is exactly `8 + 8 * popcount(lines)`, at most 264.

use super::{HEADER_LEN, WireError};

/// Samples per line per tick (1 ms at 8 kHz; `DAHDI_CHUNKSIZE`).
pub const SAMPLES_PER_TICK: usize = 8;
/// Bytes before the samples: header plus the `lines` word.
pub const PCM_OVERHEAD: usize = HEADER_LEN + 4;
/// Largest PCM packet: 32 lines.
pub const MAX_PCM_PACKET_LEN: usize = PCM_OVERHEAD + 32 * SAMPLES_PER_TICK;

/// Fill byte the reference driver writes for silent or muted FXS/FXO/BRI lines (§6.4).
pub const SILENCE_FILL: u8 = 0x7F;
/// A-law zero code (PRI E1 silence).
pub const ALAW_SILENCE: u8 = 0xD5;
/// u-law zero code (PRI T1 silence).
pub const ULAW_SILENCE: u8 = 0xFF;

crate::enum_with_unknown! {
    /// The companding law of a line's samples, numbered as DAHDI numbers it (`DAHDI_LAW_*`,
    /// docs/reference/dahdi-span-model.md §1): FXS, FXO and T1 lines carry mu-law, E1 and BRI
    /// lines A-law (docs/reference/xpp-protocol.md §6.4).
    pub enum Law(u32) {
        /// The channel's/span's default (mu-law if none).
        Default = 0 => "DEFAULT",
        /// mu-law.
        Mulaw = 1 => "MULAW",
        /// A-law.
        Alaw = 2 => "ALAW",
    }
}

/// One tick of PCM for one XPD: the `lines` mask and the samples of the set lines, borrowed.
///
/// Invariant (checked by [`Pcm::new`] and the parser): `samples().len() == 8 *
/// lines().count_ones()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Pcm<'a> {
    lines: u32,
    #[cfg_attr(feature = "serde", serde(serialize_with = "super::serde_hex::hex"))]
    samples: &'a [u8],
}

impl<'a> Pcm<'a> {
    /// No lines: an 8-byte packet (a device may tick with it, §14).
    pub const EMPTY: Pcm<'static> = Pcm { lines: 0, samples: &[] };

    /// PCM for `lines`, with `samples` packed in ascending line order.
    ///
    /// Fails unless `samples.len() == 8 * lines.count_ones()`.
    pub const fn new(lines: u32, samples: &'a [u8]) -> Result<Self, WireError> {
        if samples.len() != Self::samples_len(lines) {
            return Err(WireError::Invalid {
                what: "PCM samples",
                offset: PCM_OVERHEAD,
                reason: "length is not 8 per set bit of lines",
            });
        }
        Ok(Self { lines, samples })
    }

    /// Bytes of samples a `lines` mask needs.
    pub const fn samples_len(lines: u32) -> usize {
        lines.count_ones() as usize * SAMPLES_PER_TICK
    }

    /// Packet length for a `lines` mask: `8 + 8 * popcount(lines)`.
    pub const fn packet_len_for(lines: u32) -> usize {
        PCM_OVERHEAD + Self::samples_len(lines)
    }

    /// The `lines` mask: bit n = line n present.
    pub const fn lines(&self) -> u32 {
        self.lines
    }

    /// All samples, packed.
    pub const fn samples(&self) -> &'a [u8] {
        self.samples
    }

    /// The 8 samples of `line`, or `None` if that bit is not set (or `line` > 31).
    pub fn line(&self, line: u8) -> Option<&'a [u8; SAMPLES_PER_TICK]> {
        if line > 31 || self.lines & (1 << line) == 0 {
            return None;
        }
        let index = (self.lines & ((1u32 << line) - 1)).count_ones() as usize;
        let start = index * SAMPLES_PER_TICK;
        self.samples.get(start..start + SAMPLES_PER_TICK)?.try_into().ok()
    }

    /// `(line, samples)` for each set line, in ascending order.
    pub fn iter(&self) -> PcmIter<'a> {
        PcmIter { lines: self.lines, chunks: self.samples.as_chunks::<SAMPLES_PER_TICK>().0.iter() }
    }

    /// Parses a PCM payload (bytes after the header). Error offsets are relative to the
    /// packet start.
    pub(crate) fn parse(payload: &'a [u8]) -> Result<Self, WireError> {
        let Some((lines, samples)) = payload.split_first_chunk::<4>() else {
            return Err(WireError::Truncated { what: "PCM lines", offset: HEADER_LEN, needed: 4 });
        };
        let lines = u32::from_le_bytes(*lines);
        let expected = Self::packet_len_for(lines);
        if samples.len() != Self::samples_len(lines) {
            // Validated by the host (§10): exact length only.
            return Err(WireError::BadLength {
                offset: 0,
                len: (HEADER_LEN + payload.len()) as u16,
                reason: if HEADER_LEN + payload.len() < expected {
                    "PCM packet shorter than 8 + 8 * popcount(lines)"
                } else {
                    "PCM packet longer than 8 + 8 * popcount(lines)"
                },
            });
        }
        Ok(Self { lines, samples })
    }

    /// Writes `lines` and samples into `payload` (exactly `packet_len_for(lines) - 4` bytes).
    pub(crate) fn emit(&self, payload: &mut [u8]) {
        payload[..4].copy_from_slice(&self.lines.to_le_bytes());
        payload[4..].copy_from_slice(self.samples);
    }
}

/// Iterator over `(line, &[u8; 8])` of a [`Pcm`], ascending line order.
#[derive(Debug, Clone)]
pub struct PcmIter<'a> {
    lines: u32,
    chunks: core::slice::Iter<'a, [u8; SAMPLES_PER_TICK]>,
}

impl<'a> Iterator for PcmIter<'a> {
    type Item = (u8, &'a [u8; SAMPLES_PER_TICK]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.lines == 0 {
            return None;
        }
        let line = self.lines.trailing_zeros() as u8;
        self.lines &= self.lines - 1;
        Some((line, self.chunks.next()?))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.lines.count_ones() as usize;
        (n, Some(n))
    }
}

impl ExactSizeIterator for PcmIter<'_> {}

impl<'a> IntoIterator for &Pcm<'a> {
    type Item = (u8, &'a [u8; SAMPLES_PER_TICK]);
    type IntoIter = PcmIter<'a>;

    fn into_iter(self) -> PcmIter<'a> {
        self.iter()
    }
}

/// Writes a mask as a list of set bit numbers: `[0,2]`.
pub(crate) fn fmt_bits(f: &mut core::fmt::Formatter<'_>, mut mask: u32) -> core::fmt::Result {
    f.write_str("[")?;
    let mut first = true;
    while mask != 0 {
        let bit = mask.trailing_zeros();
        mask &= mask - 1;
        if !first {
            f.write_str(",")?;
        }
        first = false;
        write!(f, "{bit}")?;
    }
    f.write_str("]")
}
