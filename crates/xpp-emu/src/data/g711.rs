//! G.711 µ-law / A-law, tone generation and detection helpers (MODEL.md TIME-13, EQ-1, EQ-2).
//!
//! The codec follows ITU-T G.711 (segment/quantisation tables of the standard): 14-bit linear
//! for µ-law, 13-bit for A-law, scaled to 16-bit samples. Tests check it against the
//! standard's well-known code points (0xFF/0xD5 silence, full-scale ±32124 / ±32256).

use std::collections::VecDeque;
use std::f64::consts::PI;

/// Samples per second of every line.
pub const SAMPLE_RATE: u32 = 8000;

/// Companding law of a line (MODEL: TIME-13).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Law {
    /// µ-law (FXS, FXO, T1).
    Ulaw,
    /// A-law (E1, BRI).
    Alaw,
}

impl Law {
    /// The law's silence code: µ-law 0xFF, A-law 0xD5.
    pub const fn silence(self) -> u8 {
        match self {
            Self::Ulaw => 0xFF,
            Self::Alaw => 0xD5,
        }
    }

    /// Encodes a 16-bit linear sample.
    pub fn encode(self, s: i16) -> u8 {
        match self {
            Self::Ulaw => ulaw_encode(s),
            Self::Alaw => alaw_encode(s),
        }
    }

    /// Decodes to a 16-bit linear sample.
    pub fn decode(self, b: u8) -> i16 {
        match self {
            Self::Ulaw => ulaw_decode(b),
            Self::Alaw => alaw_decode(b),
        }
    }

    /// Re-encodes a code of law `self` in law `to`.
    pub fn transcode(self, to: Self, b: u8) -> u8 {
        if self == to { b } else { to.encode(self.decode(b)) }
    }
}

const ULAW_SEG_END: [i32; 8] = [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF];
const ALAW_SEG_END: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];

fn segment(v: i32, table: &[i32; 8]) -> usize {
    table.iter().position(|&end| v <= end).unwrap_or(8)
}

/// µ-law encoding of a 16-bit linear sample (G.711, 14-bit magnitude, bias 33).
pub fn ulaw_encode(s: i16) -> u8 {
    let mut v = i32::from(s) >> 2;
    let mask: u8 = if v < 0 {
        v = -v;
        0x7F
    } else {
        0xFF
    };
    v = v.min(8159) + 0x21;
    let seg = segment(v, &ULAW_SEG_END);
    if seg >= 8 {
        return 0x7F ^ mask;
    }
    let code = ((seg as u8) << 4) | ((v >> (seg + 1)) & 0x0F) as u8;
    code ^ mask
}

/// µ-law decoding to a 16-bit linear sample.
pub fn ulaw_decode(b: u8) -> i16 {
    let u = !b;
    let mut t = (i32::from(u & 0x0F) << 3) + 0x84;
    t <<= (u & 0x70) >> 4;
    (if u & 0x80 != 0 { 0x84 - t } else { t - 0x84 }) as i16
}

/// A-law encoding of a 16-bit linear sample (G.711, 13-bit magnitude, even bits inverted).
pub fn alaw_encode(s: i16) -> u8 {
    let mut v = i32::from(s) >> 3;
    let mask: u8 = if v >= 0 {
        0xD5
    } else {
        v = -v - 1;
        0x55
    };
    let seg = segment(v, &ALAW_SEG_END);
    if seg >= 8 {
        return 0x7F ^ mask;
    }
    let mut code = (seg as u8) << 4;
    code |= if seg < 2 { ((v >> 1) & 0x0F) as u8 } else { ((v >> seg) & 0x0F) as u8 };
    code ^ mask
}

/// A-law decoding to a 16-bit linear sample.
pub fn alaw_decode(b: u8) -> i16 {
    let a = b ^ 0x55;
    let mut t = i32::from(a & 0x0F) << 4;
    match (a & 0x70) >> 4 {
        0 => t += 8,
        1 => t += 0x108,
        seg => {
            t += 0x108;
            t <<= seg - 1;
        }
    }
    (if a & 0x80 != 0 { t } else { -t }) as i16
}

/// Where a line's audio comes from (EQ-1 `play`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// Nothing: the law's silence code.
    Silence,
    /// A sine tone.
    Tone {
        /// Frequency in Hz.
        freq_hz: u32,
        /// Peak amplitude (16-bit linear).
        amplitude: i16,
    },
    /// Two sines added (dial tone 350 + 440 Hz, DTMF).
    Dual {
        /// First frequency in Hz.
        f1: u32,
        /// Second frequency in Hz.
        f2: u32,
        /// Peak amplitude of each (16-bit linear).
        amplitude: i16,
    },
    /// A buffer of linear samples, played once, then silence.
    Samples(VecDeque<i16>),
}

impl Source {
    /// A 1 kHz tone at about −3 dBm0.
    pub const fn tone_1k() -> Self {
        Self::Tone { freq_hz: 1000, amplitude: 16000 }
    }
}

/// Generates a [`Source`] 8 samples at a time, phase-continuous.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generator {
    source: Source,
    n: u64,
}

impl Default for Generator {
    fn default() -> Self {
        Self::new(Source::Silence)
    }
}

fn sine(freq: u32, n: u64, amp: i16) -> f64 {
    let phase = (n % u64::from(SAMPLE_RATE)) as f64 * f64::from(freq) / f64::from(SAMPLE_RATE);
    f64::from(amp) * (2.0 * PI * phase).sin()
}

impl Generator {
    /// A generator of `source`.
    pub const fn new(source: Source) -> Self {
        Self { source, n: 0 }
    }

    /// Replaces the source (restarting its phase).
    pub fn set(&mut self, source: Source) {
        self.source = source;
        self.n = 0;
    }

    /// The current source.
    pub const fn source(&self) -> &Source {
        &self.source
    }

    /// Whether the source is silence (or an exhausted buffer).
    pub fn is_silent(&self) -> bool {
        match &self.source {
            Source::Silence => true,
            Source::Samples(b) => b.is_empty(),
            _ => false,
        }
    }

    /// The next linear sample.
    pub fn next_sample(&mut self) -> i16 {
        let n = self.n;
        self.n = self.n.wrapping_add(1);
        match &mut self.source {
            Source::Silence => 0,
            Source::Tone { freq_hz, amplitude } => sine(*freq_hz, n, *amplitude) as i16,
            Source::Dual { f1, f2, amplitude } => {
                (sine(*f1, n, *amplitude) + sine(*f2, n, *amplitude)) as i16
            }
            Source::Samples(b) => b.pop_front().unwrap_or(0),
        }
    }

    /// Appends linear samples to play (PATCH-6 bridges): a `Samples` source grows (keeping
    /// at most `BRIDGE_BACKLOG` waiting samples, the oldest dropped); any other source is
    /// replaced by them.
    pub(crate) fn feed(&mut self, samples: &[i16]) {
        if !matches!(self.source, Source::Samples(_)) {
            self.set(Source::Samples(VecDeque::new()));
        }
        if let Source::Samples(q) = &mut self.source {
            q.extend(samples.iter().copied());
            while q.len() > BRIDGE_BACKLOG {
                q.pop_front();
            }
        }
    }

    /// The next 8 samples, encoded in `law` (silence code for silence).
    pub fn next_chunk(&mut self, law: Law) -> [u8; 8] {
        if matches!(self.source, Source::Silence) {
            return [law.silence(); 8];
        }
        let mut out = [0u8; 8];
        for b in &mut out {
            *b = law.encode(self.next_sample());
        }
        out
    }
}

/// Most bridged samples waiting in a generator or a recorder tap (4 ms).
pub(crate) const BRIDGE_BACKLOG: usize = 32;

/// Keeps the most recent received audio as linear samples (bounded).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Recorder {
    samples: VecDeque<i16>,
    limit: usize,
    /// PATCH-6: a copy of what arrives for an audio bridge, independent of `samples`.
    tap: Option<Vec<i16>>,
}

impl Recorder {
    /// A recorder keeping at most `limit` samples (older ones are dropped).
    pub fn new(limit: usize) -> Self {
        Self { samples: VecDeque::new(), limit, tap: None }
    }

    /// Starts or stops copying received audio for a bridge (PATCH-6).
    pub(crate) fn set_tap(&mut self, on: bool) {
        self.tap = on.then(Vec::new);
    }

    /// The audio received since the last call, for a bridge (PATCH-6).
    pub(crate) fn drain_tap(&mut self, into: &mut Vec<i16>) {
        if let Some(t) = &mut self.tap {
            into.append(t);
        }
    }

    /// Appends one 8-sample chunk of law `law`.
    pub fn push_chunk(&mut self, law: Law, chunk: &[u8; 8]) {
        if let Some(t) = &mut self.tap
            && t.len() < BRIDGE_BACKLOG
        {
            t.extend(chunk.iter().map(|&b| law.decode(b)));
        }
        if self.limit == 0 {
            return;
        }
        for &b in chunk {
            if self.samples.len() >= self.limit {
                self.samples.pop_front();
            }
            self.samples.push_back(law.decode(b));
        }
    }

    /// Takes everything recorded so far.
    pub fn take(&mut self) -> Vec<i16> {
        self.samples.drain(..).collect()
    }

    /// Samples currently kept.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Forgets everything recorded.
    pub fn clear(&mut self) {
        self.samples.clear();
    }
}

/// Mean power of `samples` in dB relative to a full-scale sine (0 dB ≈ +3 dBm0); −inf for
/// silence.
pub fn level_db(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return f64::NEG_INFINITY;
    }
    let ms = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum::<f64>() / samples.len() as f64;
    let full = 32767.0f64 * 32767.0 / 2.0;
    10.0 * (ms / full).log10()
}

/// Goertzel power of `freq` in `samples`, normalised so that a sine of amplitude A gives
/// about (A/2)².
pub fn goertzel(samples: &[i16], freq: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let n = samples.len() as f64;
    // Decision: the exact frequency, not the nearest DFT bin (DTMF rows are 70-90 Hz apart).
    let w = 2.0 * PI * freq / f64::from(SAMPLE_RATE);
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let p = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    p / (n * n)
}

/// Whether `samples` carry a tone at `freq` (its Goertzel power holds at least half of the
/// signal's power and the signal is above −40 dB).
pub fn has_tone(samples: &[i16], freq: f64) -> bool {
    if level_db(samples) < -40.0 {
        return false;
    }
    let total = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum::<f64>() / samples.len() as f64;
    goertzel(samples, freq) * 2.0 >= total * 0.5 * 0.5
}

const DTMF_ROWS: [u32; 4] = [697, 770, 852, 941];
const DTMF_COLS: [u32; 4] = [1209, 1336, 1477, 1633];
const DTMF_KEYS: [[char; 4]; 4] =
    [['1', '2', '3', 'A'], ['4', '5', '6', 'B'], ['7', '8', '9', 'C'], ['*', '0', '#', 'D']];

/// The (row, column) frequencies of a DTMF key.
pub fn dtmf_freqs(key: char) -> Option<(u32, u32)> {
    let key = key.to_ascii_uppercase();
    for (r, row) in DTMF_KEYS.iter().enumerate() {
        if let Some(c) = row.iter().position(|&k| k == key) {
            return Some((DTMF_ROWS[r], DTMF_COLS[c]));
        }
    }
    None
}

/// The DTMF key in `samples` (use blocks of about 200 samples), if one dominates.
pub fn detect_dtmf(samples: &[i16]) -> Option<char> {
    if level_db(samples) < -35.0 {
        return None;
    }
    let best = |freqs: &[u32; 4]| {
        let mut p: Vec<(usize, f64)> =
            freqs.iter().enumerate().map(|(i, &f)| (i, goertzel(samples, f64::from(f)))).collect();
        p.sort_by(|a, b| b.1.total_cmp(&a.1));
        (p[0].0, p[0].1, p[1].1)
    };
    let (r, pr, pr2) = best(&DTMF_ROWS);
    let (c, pc, pc2) = best(&DTMF_COLS);
    let total = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum::<f64>() / samples.len() as f64;
    // Both tones present, clearly above the runners-up, and together most of the energy.
    if pr > 4.0 * pr2 && pc > 4.0 * pc2 && 2.0 * (pr + pc) > 0.5 * total {
        Some(DTMF_KEYS[r][c])
    } else {
        None
    }
}

/// ITU-T HDLC FCS-16 (CRC-16/X.25: reflected 0x1021, init and final XOR 0xFFFF).
pub fn fcs16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for &b in data {
        crc ^= u16::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0x8408 } else { crc >> 1 };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulaw_known_values() {
        assert_eq!(ulaw_encode(0), 0xFF);
        assert_eq!(ulaw_decode(0xFF), 0);
        assert_eq!(ulaw_decode(0x7F), 0);
        assert_eq!(ulaw_decode(0x80), 32124);
        assert_eq!(ulaw_decode(0x00), -32124);
        assert_eq!(ulaw_encode(32767), 0x80);
        assert_eq!(ulaw_encode(-32768), 0x00);
        assert_eq!(ulaw_decode(0xFE), 8);
        assert_eq!(ulaw_decode(0xEF), 132);
    }

    #[test]
    fn alaw_known_values() {
        assert_eq!(alaw_encode(0), 0xD5);
        assert_eq!(alaw_decode(0xD5), 8);
        assert_eq!(alaw_decode(0x55), -8);
        assert_eq!(alaw_decode(0xAA), 32256);
        assert_eq!(alaw_decode(0x2A), -32256);
        assert_eq!(alaw_encode(32767), 0xAA);
        assert_eq!(alaw_encode(-32768), 0x2A);
    }

    #[test]
    fn codes_round_trip() {
        for b in 0..=255u8 {
            assert_eq!(ulaw_encode(ulaw_decode(b)), if b == 0x7F { 0xFF } else { b });
            assert_eq!(alaw_encode(alaw_decode(b)), b);
        }
        assert_eq!(Law::Ulaw.transcode(Law::Alaw, 0xFF), 0xD5);
    }

    #[test]
    fn tone_and_dtmf_detection() {
        let mut g = Generator::new(Source::tone_1k());
        let s: Vec<i16> = (0..200).map(|_| Law::Ulaw.decode(Law::Ulaw.encode(g.next_sample()))).collect();
        assert!(has_tone(&s, 1000.0));
        assert!(!has_tone(&s, 1400.0));
        assert!(level_db(&s) > -7.0);
        assert!(!has_tone(&[0; 200], 1000.0));
        for key in "0123456789*#ABCD".chars() {
            let (f1, f2) = dtmf_freqs(key).unwrap();
            let mut g = Generator::new(Source::Dual { f1, f2, amplitude: 8000 });
            let s: Vec<i16> = (0..200).map(|_| Law::Ulaw.decode(Law::Ulaw.encode(g.next_sample()))).collect();
            assert_eq!(detect_dtmf(&s), Some(key), "key {key}");
        }
        assert_eq!(detect_dtmf(&[0; 200]), None);
    }

    #[test]
    fn fcs16_check_value() {
        // CRC-16/X.25 check value of "123456789".
        assert_eq!(fcs16(b"123456789"), 0x906E);
    }
}
