//! HDLC framing of a 64 kbit/s D-channel timeslot (MODEL.md PRI-8): flags 0x7E, zero-bit
//! insertion after five ones, FCS-16 (ISO 3309 / Q.921), aborts of seven ones.
//!
//! Bit order: HDLC sends each octet least significant bit first (ISO 3309); the timeslot
//! carries the bits in line order, first bit in the most significant bit of the timeslot byte
//! (G.704). The idle line between frames is all ones (0xFF), as the far end's idle D-channel
//! always was.
// Decision: MSB of the timeslot byte = first bit on the line (G.704 numbers bit 1 first and
// transmits it first), octets LSB first inside the frame (ISO 3309); a hardware capture of a
// PRI D-channel would confirm the host expects the same.

use std::collections::VecDeque;

use super::g711::fcs16;

/// Longest frame (without FCS) either side keeps; longer ones are discarded.
pub(crate) const MAX_FRAME: usize = 512;

/// The bits of `frame` + FCS, stuffed, between an opening and a closing flag.
fn frame_bits(frame: &[u8], out: &mut VecDeque<bool>) {
    let flag = |out: &mut VecDeque<bool>| out.extend((0..8).map(|i| 0x7E >> i & 1 != 0));
    flag(out);
    let fcs = fcs16(frame).to_le_bytes();
    let mut ones = 0;
    for &b in frame.iter().chain(&fcs) {
        for i in 0..8 {
            let bit = b >> i & 1 != 0;
            out.push_back(bit);
            ones = if bit { ones + 1 } else { 0 };
            if ones == 5 {
                out.push_back(false);
                ones = 0;
            }
        }
    }
    flag(out);
}

/// Transmitter: queued frames become timeslot bytes.
#[derive(Debug, Clone, Default)]
pub(crate) struct HdlcTx {
    frames: VecDeque<Vec<u8>>,
    bits: VecDeque<bool>,
}

impl HdlcTx {
    pub(crate) fn queue(&mut self, frame: &[u8]) {
        if frame.len() <= MAX_FRAME && self.frames.len() < 64 {
            self.frames.push_back(frame.to_vec());
        }
    }

    /// Whether nothing is queued or being sent.
    pub(crate) fn idle(&self) -> bool {
        self.frames.is_empty() && self.bits.is_empty()
    }

    /// The next timeslot byte (0xFF idle) carrying `n` (8, or 7 at 56 kbit/s) line bits from bit 7 down;
    /// the bits below them are ones (MODEL: PRI-14).
    pub(crate) fn next_byte_of(&mut self, n: u32) -> u8 {
        if self.bits.len() < n as usize
            && let Some(f) = self.frames.pop_front()
        {
            frame_bits(&f, &mut self.bits);
        }
        let fill = (1u16 << (8 - n)) - 1;
        let line = (0..n).fold(0u16, |b, _| (b << 1) | u16::from(self.bits.pop_front().unwrap_or(true)));
        ((line << (8 - n)) | fill) as u8
    }
}

/// Receiver: timeslot bytes become frames with a good FCS.
#[derive(Debug, Clone, Default)]
pub(crate) struct HdlcRx {
    ones: u8,
    in_frame: bool,
    cur: Vec<u8>,
    acc: u8,
    nbits: u8,
    /// Frames with a bad FCS, aborted or too long.
    pub(crate) errors: u64,
}

impl HdlcRx {
    /// Feeds the top `n` bits (8, or 7 at 56 kbit/s) of one timeslot byte (MODEL: PRI-14);
    /// completed good frames (FCS removed) are pushed to `out`.
    pub(crate) fn push_of(&mut self, byte: u8, n: u32, out: &mut impl FnMut(Vec<u8>)) {
        for i in (8 - n..8).rev() {
            self.bit(byte >> i & 1 != 0, out);
        }
    }

    fn bit(&mut self, bit: bool, out: &mut impl FnMut(Vec<u8>)) {
        if bit {
            self.ones = self.ones.saturating_add(1);
            if self.ones >= 7 {
                // Abort / idle.
                if self.in_frame && !self.cur.is_empty() {
                    self.errors += 1;
                }
                self.in_frame = false;
                self.reset_frame();
                return;
            }
            self.data_bit(true);
            return;
        }
        let ones = core::mem::replace(&mut self.ones, 0);
        match ones {
            5 => {} // stuffed zero
            6 => {
                // Flag: the six ones before it were collected as data; drop them.
                if self.in_frame {
                    self.close(out);
                }
                self.in_frame = true;
                self.reset_frame();
            }
            _ => self.data_bit(false),
        }
    }

    fn data_bit(&mut self, bit: bool) {
        if !self.in_frame {
            return;
        }
        self.acc |= u8::from(bit) << self.nbits;
        self.nbits += 1;
        if self.nbits == 8 {
            if self.cur.len() < MAX_FRAME + 2 {
                self.cur.push(self.acc);
            }
            self.acc = 0;
            self.nbits = 0;
        }
    }

    fn reset_frame(&mut self) {
        self.cur.clear();
        self.acc = 0;
        self.nbits = 0;
    }

    fn close(&mut self, out: &mut impl FnMut(Vec<u8>)) {
        // The flag's leading zero and six ones were fed as data: 7 bits past the last octet.
        if self.nbits != 7 || self.cur.is_empty() {
            if !self.cur.is_empty() {
                self.errors += 1;
            }
            return;
        }
        if self.cur.len() < 3 || self.cur.len() > MAX_FRAME + 2 {
            self.errors += 1;
            return;
        }
        let n = self.cur.len() - 2;
        let fcs = u16::from_le_bytes([self.cur[n], self.cur[n + 1]]);
        if fcs16(&self.cur[..n]) == fcs {
            out(self.cur[..n].to_vec());
        } else {
            self.errors += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8]) -> (Vec<Vec<u8>>, u64) {
        let mut rx = HdlcRx::default();
        let mut frames = Vec::new();
        for &b in bytes {
            rx.push_of(b, 8, &mut |f| frames.push(f));
        }
        (frames, rx.errors)
    }

    #[test]
    fn hand_written_flag_and_stuffing() {
        // Frame [0xFF]: FCS-16 of 0xFF is fcs16([0xFF]); the data 0xFF (LSB first, eight ones)
        // needs a stuffed zero after the fifth one.
        let mut tx = HdlcTx::default();
        assert_eq!(tx.next_byte_of(8), 0xFF);
        tx.queue(&[0xFF]);
        let first = tx.next_byte_of(8);
        // Line order MSB first: flag 0x7E is symmetric: 0 1 1 1 1 1 1 0.
        assert_eq!(first, 0b0111_1110);
        // Then 1 1 1 1 1 (stuffed 0) 1 1 1 = 0xFB.
        assert_eq!(tx.next_byte_of(8), 0b1111_1011);
    }

    #[test]
    fn at_56k_seven_line_bits_per_byte_from_bit_7_and_bit_0_one() {
        // MODEL: PRI-14. Frame [0xFF] after its flag: 0111 1110 11111 0 111 ... on the line.
        let mut tx = HdlcTx::default();
        tx.queue(&[0xFF]);
        // 0 1 1 1 1 1 1 -> 0111 1111; then the flag's last 0 and 1 1 1 1 1 0 (stuffed) -> 0111 1101.
        assert_eq!(tx.next_byte_of(7), 0b0111_1111);
        assert_eq!(tx.next_byte_of(7), 0b0111_1101);
        let mut line = vec![0b0111_1111, 0b0111_1101];
        while !tx.idle() {
            line.push(tx.next_byte_of(7));
        }
        line.extend([0xFF; 4]);
        // Bit 0 is not looked at.
        line.iter_mut().for_each(|b| *b &= 0xFE);
        let mut rx = HdlcRx::default();
        let mut frames = Vec::new();
        for &b in &line {
            rx.push_of(b, 7, &mut |f| frames.push(f));
        }
        assert_eq!(frames, [vec![0xFF]]);
    }

    #[test]
    fn round_trip_back_to_back_and_errors() {
        let frames: Vec<Vec<u8>> =
            vec![vec![0x00, 0x01, 0x7F], vec![0x02, 0x01, 0x7E, 0x7E, 0xFF, 0xFF, 0x1F], (0..=255).collect()];
        let mut tx = HdlcTx::default();
        for f in &frames {
            tx.queue(f);
        }
        let mut line = Vec::new();
        while !tx.idle() {
            line.push(tx.next_byte_of(8));
        }
        line.extend([0xFF; 4]);
        assert_eq!(decode(&line), (frames.clone(), 0));
        // A flipped bit inside the first frame: that frame is lost with a counted error.
        let mut bad = line.clone();
        bad[3] ^= 0x10;
        let (got, errors) = decode(&bad);
        assert!(errors >= 1);
        assert!(!got.contains(&frames[0]));
        assert!(got.contains(&frames[2]));
        // Idle ones and garbage never produce a frame.
        assert_eq!(decode(&[0xFF; 100]).0.len(), 0);
        assert_eq!(decode(&[0x7E; 100]).0.len(), 0);
    }
}
