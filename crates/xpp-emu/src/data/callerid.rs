//! On-hook caller ID (MODEL.md EQ-2, EQ-4): message layout, FSK modulation and a demodulator.
//!
//! These are ordinary telephony standards, not Astribank facts (the references say nothing
//! about caller ID):
//!
//! - **Messages** (Telcordia GR-30 / ETSI EN 300 659-3): SDMF `04 len MMDDHHMM number… sum`
//!   and MDMF `80 len {type len value}… sum`, parameters 0x01 date/time (8 ASCII digits),
//!   0x02 number, 0x04 reason for an absent number (`O` unavailable, `P` private), 0x07 name,
//!   0x08 reason for an absent name. The checksum makes the sum of every byte, checksum
//!   included, 0 modulo 256.
//! - **FSK**: 1200 baud, asynchronous 8N1 (start bit 0, eight data bits LSB first, stop bit 1),
//!   phase-continuous. Bell 202: mark (1) 1200 Hz, space (0) 2200 Hz. ITU-T V.23 (ETSI): mark
//!   1300 Hz, space 2100 Hz. The message follows a channel seizure of 300 alternating bits
//!   (0 first) and 180 mark bits.
//! - **DTMF** caller ID (ETSI EN 300 659-1 annex / Nordic practice): `A<number>C` as DTMF
//!   digits of 70 ms with 70 ms gaps.
//!
//! [`CidReceiver`] is the phone's side: it demodulates line audio sample by sample and
//! returns each message whose checksum is good.

use std::f64::consts::PI;

use super::g711::SAMPLE_RATE;

/// Bits per second of both FSK standards.
pub const BAUD: u32 = 1200;
/// Channel-seizure bits (alternating, 0 first) before the mark signal.
pub const SEIZURE_BITS: usize = 300;
/// Mark bits between the seizure and the message.
pub const MARK_BITS: usize = 180;
/// Longest message kept by the receiver (type + length byte + 255 + checksum).
const MAX_MESSAGE: usize = 258;

/// How a PSTN line sends caller ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum CidStandard {
    /// Bell 202 FSK, 500 ms after the end of the first ring burst (North America).
    #[default]
    Bell202,
    /// ETSI: a polarity reversal, then V.23 FSK, then the first ring.
    EtsiV23,
    /// ETSI DTMF: a polarity reversal, then `A<number>C` in DTMF, then the first ring.
    Dtmf,
}

impl CidStandard {
    /// (mark, space) frequencies in Hz of the FSK standards; `None` for DTMF.
    pub const fn fsk_freqs(self) -> Option<(u32, u32)> {
        match self {
            Self::Bell202 => Some((1200, 2200)),
            Self::EtsiV23 => Some((1300, 2100)),
            Self::Dtmf => None,
        }
    }
}

/// What a caller-ID message says.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct CallerId {
    /// Date and time `MMDDHHMM`, if sent.
    pub datetime: Option<String>,
    /// The calling number (digits); empty if absent.
    pub number: String,
    /// The calling name; empty if absent.
    pub name: String,
}

impl CallerId {
    /// A caller ID with a number and a name (empty name: none) and no date.
    pub fn new(number: &str, name: &str) -> Self {
        Self { datetime: None, number: number.to_owned(), name: name.to_owned() }
    }

    /// Adds a date and time (`MMDDHHMM`; anything else is ignored).
    #[must_use]
    pub fn with_datetime(mut self, mmddhhmm: &str) -> Self {
        if mmddhhmm.len() == 8 && mmddhhmm.bytes().all(|b| b.is_ascii_digit()) {
            self.datetime = Some(mmddhhmm.to_owned());
        }
        self
    }
}

/// The checksum byte of `bytes`: the two's complement of their sum modulo 256.
pub fn checksum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |a, &b| a.wrapping_add(b)).wrapping_neg()
}

/// The MDMF message (type 0x80) for `cid`: date/time, number (or reason `O`), name (or
/// reason `O`), checksum. Fields are cut to 255 bytes in all.
pub fn mdmf(cid: &CallerId) -> Vec<u8> {
    let mut body = Vec::new();
    let mut param = |t: u8, v: &[u8]| {
        let v = &v[..v.len().min(64)];
        body.push(t);
        body.push(v.len() as u8);
        body.extend_from_slice(v);
    };
    if let Some(dt) = &cid.datetime {
        param(0x01, dt.as_bytes());
    }
    if cid.number.is_empty() {
        param(0x04, b"O");
    } else {
        param(0x02, cid.number.as_bytes());
    }
    if cid.name.is_empty() {
        param(0x08, b"O");
    } else {
        param(0x07, cid.name.as_bytes());
    }
    body.truncate(255);
    let mut msg = vec![0x80, body.len() as u8];
    msg.extend_from_slice(&body);
    msg.push(checksum(&msg));
    msg
}

/// Parses one SDMF (0x04) or MDMF (0x80) message: `None` when it is not one or its checksum is
/// wrong. Unknown MDMF parameters are skipped.
pub fn parse_message(msg: &[u8]) -> Option<CallerId> {
    let (&ty, rest) = msg.split_first()?;
    let (&len, rest) = rest.split_first()?;
    let body = rest.get(..usize::from(len))?;
    rest.get(usize::from(len))?;
    if checksum(&msg[..2 + usize::from(len)]) != msg[2 + usize::from(len)] {
        return None;
    }
    let text = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
    let mut cid = CallerId::default();
    match ty {
        0x04 => {
            let dt = body.get(..8)?;
            cid.datetime = Some(text(dt));
            let number = &body[8..];
            if number != b"O" && number != b"P" {
                cid.number = text(number);
            }
        }
        0x80 => {
            let mut p = body;
            while let [t, l, tail @ ..] = p {
                let v = tail.get(..usize::from(*l))?;
                match t {
                    0x01 => cid.datetime = Some(text(v)),
                    0x02 => cid.number = text(v),
                    0x07 => cid.name = text(v),
                    _ => {}
                }
                p = &tail[usize::from(*l)..];
            }
            if !p.is_empty() {
                return None;
            }
        }
        _ => return None,
    }
    Some(cid)
}

/// The bit stream of an FSK transmission: seizure, mark, then each byte 8N1, then one stop
/// mark so the last byte ends cleanly.
fn fsk_bits(msg: &[u8]) -> Vec<bool> {
    let mut bits: Vec<bool> = (0..SEIZURE_BITS).map(|i| i % 2 == 1).collect();
    bits.extend(core::iter::repeat_n(true, MARK_BITS));
    for &b in msg {
        bits.push(false);
        bits.extend((0..8).map(|i| b >> i & 1 != 0));
        bits.push(true);
    }
    bits.push(true);
    bits
}

/// Phase-continuous FSK of `msg` (seizure and mark first) at 8000 samples/s: 16-bit linear
/// samples of peak `amplitude`. `standard` must be an FSK one; DTMF gives no samples.
pub fn fsk_modulate(msg: &[u8], standard: CidStandard, amplitude: i16) -> Vec<i16> {
    let Some((mark, space)) = standard.fsk_freqs() else { return Vec::new() };
    let bits = fsk_bits(msg);
    let total = (bits.len() as u64 * u64::from(SAMPLE_RATE)).div_ceil(u64::from(BAUD));
    let mut phase = 0.0f64;
    let mut out = Vec::with_capacity(total as usize);
    for n in 0..total {
        // Bit k covers samples [k * 8000 / 1200, (k + 1) * 8000 / 1200).
        let k = (n * u64::from(BAUD) / u64::from(SAMPLE_RATE)) as usize;
        let f = if bits.get(k).copied().unwrap_or(true) { mark } else { space };
        out.push((f64::from(amplitude) * phase.sin()) as i16);
        phase += 2.0 * PI * f64::from(f) / f64::from(SAMPLE_RATE);
        if phase > 2.0 * PI {
            phase -= 2.0 * PI;
        }
    }
    out
}

/// Samples per bit (8000 / 1200 = 6.67): the correlator window rounds it to 7.
const WINDOW: usize = 7;
/// Oscillator table length (see [`CidReceiver`]).
const TABLE: usize = 80;

/// A streaming FSK caller-ID receiver: non-coherent tone correlators over one bit, an 8N1
/// UART, and a message finder that accepts SDMF/MDMF messages with a good checksum.
#[derive(Debug, Clone)]
pub struct CidReceiver {
    /// cos/sin of the mark and space tones at n mod 80 (80 samples hold a whole number of
    /// cycles of 1200, 1300, 2100 and 2200 Hz).
    mark: Box<[(f64, f64); TABLE]>,
    space: Box<[(f64, f64); TABLE]>,
    hist: [f64; WINDOW],
    pos: usize,
    n: u64,
    /// Sample index (×3, to keep 1/3-sample resolution) of the next bit decision, if in a byte.
    next_bit_x3: Option<u64>,
    bit: u8,
    byte: u16,
    prev_mark: bool,
    bytes: Vec<u8>,
}

impl CidReceiver {
    /// A receiver for `standard` (DTMF falls back to Bell 202 frequencies).
    pub fn new(standard: CidStandard) -> Self {
        let (m, s) = standard.fsk_freqs().unwrap_or((1200, 2200));
        let table = |f: u32| {
            let w = 2.0 * PI * f64::from(f) / f64::from(SAMPLE_RATE);
            Box::new(core::array::from_fn(|n| ((n as f64 * w).cos(), (n as f64 * w).sin())))
        };
        Self {
            mark: table(m),
            space: table(s),
            hist: [0.0; WINDOW],
            pos: 0,
            n: 0,
            next_bit_x3: None,
            bit: 0,
            byte: 0,
            prev_mark: true,
            bytes: Vec::new(),
        }
    }

    fn energy(&self, osc: &[(f64, f64); TABLE]) -> f64 {
        let (mut re, mut im) = (0.0, 0.0);
        for i in 0..WINDOW {
            let x = self.hist[(self.pos + i) % WINDOW];
            let (c, s) = osc[((self.n + i as u64) % TABLE as u64) as usize];
            re += x * c;
            im += x * s;
        }
        re * re + im * im
    }

    /// Feeds one linear sample; returns a caller ID when a message completes.
    pub fn push(&mut self, sample: i16) -> Option<CallerId> {
        self.hist[self.pos] = f64::from(sample);
        self.pos = (self.pos + 1) % WINDOW;
        self.n += 1;
        let (em, es) = (self.energy(&self.mark), self.energy(&self.space));
        // Quiet line (below about -40 dBm0 over the window) counts as mark (idle).
        let carrier = em + es > 1.0e6;
        let mark = !carrier || em >= es;
        let x3 = self.n * 3;
        match self.next_bit_x3 {
            None => {
                if self.prev_mark && !mark {
                    // Start-bit edge, seen about half a window late. Data bit k is centred
                    // 1.5 + k bits (1 bit = 20/3 samples) after the edge; with the window's
                    // delay that is 30 + 20k thirds of a sample after this one.
                    self.next_bit_x3 = Some(x3 + 30);
                    self.bit = 0;
                    self.byte = 0;
                }
            }
            Some(at) if x3 >= at => {
                if self.bit < 8 {
                    self.byte |= u16::from(mark) << self.bit;
                    self.bit += 1;
                    self.next_bit_x3 = Some(at + 20);
                } else {
                    self.next_bit_x3 = None;
                    if mark {
                        return self.byte_done(self.byte as u8);
                    }
                    // Framing error: drop what was gathered.
                    self.bytes.clear();
                }
            }
            Some(_) => {}
        }
        self.prev_mark = mark;
        None
    }

    fn byte_done(&mut self, b: u8) -> Option<CallerId> {
        if self.bytes.is_empty() && !matches!(b, 0x04 | 0x80) {
            return None; // seizure (0x55) or noise before a message type
        }
        self.bytes.push(b);
        if let [_, len, ..] = self.bytes[..]
            && self.bytes.len() == usize::from(len) + 3
        {
            let msg = core::mem::take(&mut self.bytes);
            return parse_message(&msg);
        }
        if self.bytes.len() >= MAX_MESSAGE {
            self.bytes.clear();
        }
        None
    }

    /// Feeds many samples; the first message that completes.
    pub fn push_all(&mut self, samples: &[i16]) -> Option<CallerId> {
        let mut found = None;
        for &s in samples {
            if let Some(c) = self.push(s) {
                found.get_or_insert(c);
            }
        }
        found
    }
}

/// The DTMF digits of a DTMF caller ID: `A<number>C` (digits only).
pub fn dtmf_digits(cid: &CallerId) -> String {
    let number: String = cid.number.chars().filter(char::is_ascii_digit).collect();
    format!("A{number}C")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The MDMF example of a public caller-ID description (name "JOHN DOE", number
    /// 8005551212, 24 March 09:02), bytes written by hand. The description prints checksum
    /// 0x7D, which breaks its own rule (the bytes sum to 0x7C + 0x7D ≠ 0); 0x84 is the byte
    /// that makes the sum 0 (the SDMF example below does satisfy the rule as printed).
    const MDMF_EXAMPLE: [u8; 35] = [
        0x80, 0x20, 0x01, 0x08, 0x30, 0x33, 0x32, 0x34, 0x30, 0x39, 0x30, 0x32, 0x07, 0x08, 0x4A, 0x4F, 0x48,
        0x4E, 0x20, 0x44, 0x4F, 0x45, 0x02, 0x0A, 0x38, 0x30, 0x30, 0x35, 0x35, 0x35, 0x31, 0x32, 0x31, 0x32,
        0x84,
    ];
    /// The SDMF example: 30 September 12:24, 6095551212, checksum 0x51.
    const SDMF_EXAMPLE: [u8; 21] = [
        0x04, 0x12, 0x30, 0x39, 0x33, 0x30, 0x31, 0x32, 0x32, 0x34, 0x36, 0x30, 0x39, 0x35, 0x35, 0x35, 0x31,
        0x32, 0x31, 0x32, 0x51,
    ];

    #[test]
    fn parses_hand_written_messages() {
        let c = parse_message(&MDMF_EXAMPLE).unwrap();
        assert_eq!(c, CallerId::new("8005551212", "JOHN DOE").with_datetime("03240902"));
        let s = parse_message(&SDMF_EXAMPLE).unwrap();
        assert_eq!(s, CallerId::new("6095551212", "").with_datetime("09301224"));
        let mut bad = MDMF_EXAMPLE;
        bad[20] ^= 1;
        assert_eq!(parse_message(&bad), None);
        for n in 0..MDMF_EXAMPLE.len() {
            assert_eq!(parse_message(&MDMF_EXAMPLE[..n]), None);
        }
    }

    #[test]
    fn mdmf_builds_the_layout() {
        let cid = CallerId::new("8005551212", "JOHN DOE").with_datetime("03240902");
        let m = mdmf(&cid);
        // Same parameters as the example, in our order (date, number, name).
        assert_eq!(m[0], 0x80);
        assert_eq!(m[1], 0x20);
        assert_eq!(m.iter().fold(0u8, |a, &b| a.wrapping_add(b)), 0);
        assert_eq!(parse_message(&m), Some(cid));
        let anon = mdmf(&CallerId::default());
        assert_eq!(anon, vec![0x80, 6, 0x04, 1, b'O', 0x08, 1, b'O', checksum(&anon[..8])]);
    }

    #[test]
    fn fsk_round_trip_both_standards_through_ulaw() {
        use super::super::g711::Law;
        for std in [CidStandard::Bell202, CidStandard::EtsiV23] {
            let cid = CallerId::new("5551234", "Jane Doe").with_datetime("12312359");
            let audio = fsk_modulate(&mdmf(&cid), std, 6000);
            // 300 + 180 + 10 per byte + 1 bits at 1200 baud.
            let bits = 300 + 180 + 10 * mdmf(&cid).len() + 1;
            assert_eq!(audio.len(), (bits * 8000).div_ceil(1200));
            let through: Vec<i16> = audio.iter().map(|&s| Law::Ulaw.decode(Law::Ulaw.encode(s))).collect();
            let mut rx = CidReceiver::new(std);
            let mut lead = vec![0i16; 123];
            lead.extend_from_slice(&through);
            lead.extend_from_slice(&[0; 50]);
            assert_eq!(rx.push_all(&lead), Some(cid), "{std:?}");
        }
    }

    #[test]
    fn receiver_ignores_noise_and_wrong_standard() {
        let mut rx = CidReceiver::new(CidStandard::Bell202);
        let mut g = crate::fault::SplitMix64::new(3);
        let noise: Vec<i16> = (0..20_000).map(|_| g.next_u64() as i16 / 4).collect();
        assert_eq!(rx.push_all(&noise), None);
        assert_eq!(dtmf_digits(&CallerId::new("55-12", "x")), "A5512C");
    }
}
