//! Per-XPD PCM state: the 8-sample chunks of every channel in both directions, the wanted
//! mask and the unit-0 dummy line (docs/reference/xpp-protocol.md §7.1, §7.2, §9.3, §9.4).
//!
//! Chunks are stored by wire `lines` bit, so a PRI span's chunks sit at their physical
//! timeslot bits and a BRI unit's B-channels at bits 4s / 4s+1 of the unit's subunit-0 packet.
//! Nothing here allocates.

use xpp_proto::wire::{Address, PcmRound, SAMPLES_PER_TICK, WireError};

/// One 8-sample chunk (1 ms), companded (mu-law or A-law).
pub type Chunk = [u8; SAMPLES_PER_TICK];

/// One 8-sample chunk (1 ms) as 16-bit linear samples (DAHDI's SETLINEAR).
pub type LinearChunk = [i16; SAMPLES_PER_TICK];

/// The PCM state of one packet source/sink (one XPD; one BRI unit).
#[derive(Debug, Clone)]
pub(crate) struct PcmXpd {
    pub(crate) addr: Address,
    pub(crate) silence: u8,
    pub(crate) tx: [Chunk; 32],
    pub(crate) rx: [Chunk; 32],
    /// Bits that belong to a channel.
    pub(crate) bits: u32,
    /// Channel wanted mask of the last round (received data for other bits is silence).
    pub(crate) wanted: u32,
    /// The `lines` of the last PCM_WRITE (wanted, or the dummy line).
    pub(crate) sent: u32,
    /// Bit forced in when nothing is wanted on unit 0.
    pub(crate) dummy: Option<u8>,
}

impl PcmXpd {
    pub(crate) fn new(addr: Address, silence: u8, dummy_bit: u8) -> Self {
        Self {
            addr,
            silence,
            tx: [[silence; SAMPLES_PER_TICK]; 32],
            rx: [[silence; SAMPLES_PER_TICK]; 32],
            bits: 0,
            wanted: 0,
            sent: 0,
            // Decision: the unit-0 dummy line is the XPD's first channel (line 0 on FXS/FXO,
            // timeslot 1 on a PRI span).
            dummy: (addr.unit() == 0).then_some(dummy_bit),
        }
    }

    /// Sets the wanted mask for this tick: bits leaving it read silence from now on.
    pub(crate) fn set_wanted(&mut self, wanted: u32) {
        let wanted = wanted & self.bits;
        let mut gone = self.wanted & !wanted;
        while gone != 0 {
            let b = gone.trailing_zeros() as usize;
            gone &= gone - 1;
            self.rx[b] = [self.silence; SAMPLES_PER_TICK];
        }
        self.wanted = wanted;
    }

    /// Stores a received PCM_READ's samples for the wanted bits (the others stay silent).
    pub(crate) fn receive(&mut self, lines: u32, samples: &[u8]) {
        let mut mask = lines;
        for chunk in samples.chunks_exact(SAMPLES_PER_TICK) {
            let b = mask.trailing_zeros() as usize;
            mask &= mask.wrapping_sub(1);
            if b < 32
                && self.wanted & (1 << b) != 0
                && let Ok(c) = <&Chunk>::try_from(chunk)
            {
                self.rx[b] = *c;
            }
        }
    }

    /// Appends this XPD's PCM_WRITE to the round (nothing when the mask is empty), then
    /// refills the sent chunks with silence (a channel the PBX does not write sends silence).
    pub(crate) fn transmit(
        &mut self,
        round: &mut PcmRound<'_, '_>,
        sink: impl FnMut(&[u8]),
    ) -> Result<(), WireError> {
        let mut lines = self.wanted;
        if lines == 0
            && let Some(d) = self.dummy
        {
            lines = 1 << d;
            self.tx[usize::from(d)] = [self.silence; SAMPLES_PER_TICK];
        }
        self.sent = lines;
        if lines == 0 {
            return Ok(());
        }
        let r = round.push_chunks(self.addr, lines, &self.tx, sink);
        let mut m = lines;
        while m != 0 {
            let b = m.trailing_zeros() as usize;
            m &= m - 1;
            self.tx[b] = [self.silence; SAMPLES_PER_TICK];
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xpp_proto::wire::Framer;

    fn round_of(x: &mut PcmXpd) -> Vec<u8> {
        let mut buf = [0u8; 512];
        let mut out = Vec::new();
        let mut framer = Framer::new(&mut buf);
        let mut round = framer.pcm_round();
        x.transmit(&mut round, |t: &[u8]| out.extend_from_slice(t)).unwrap();
        round.finish(|t: &[u8]| out.extend_from_slice(t));
        out
    }

    #[test]
    fn dummy_line_on_unit_zero_only() {
        let mut x = PcmXpd::new(Address::ZERO, 0x7F, 0);
        x.bits = 0xFF;
        x.tx[0] = [1; 8];
        let t = round_of(&mut x);
        assert_eq!(&t[..8], &[0x10, 0x08, 0x11, 0x80, 0x01, 0, 0, 0]);
        assert_eq!(&t[8..], &[0x7F; 8], "dummy line carries silence");
        let mut y = PcmXpd::new(Address::new(1, 0).unwrap(), 0x7F, 0);
        y.bits = 0xFF;
        assert!(round_of(&mut y).is_empty(), "FXO on-hook sends nothing");
    }

    #[test]
    fn wanted_masks_and_silence() {
        let mut x = PcmXpd::new(Address::new(1, 0).unwrap(), 0x7F, 0);
        x.bits = 0xFF;
        x.set_wanted(0b101 | 0x100);
        assert_eq!(x.wanted, 0b101);
        x.receive(0b111, &[[1u8; 8], [2; 8], [3; 8]].concat());
        assert_eq!((x.rx[0], x.rx[1], x.rx[2]), ([1; 8], [0x7F; 8], [3; 8]));
        x.tx[2] = [9; 8];
        let t = round_of(&mut x);
        assert_eq!(t.len(), 8 + 16);
        assert_eq!(&t[8..], &[[0x7F; 8], [9; 8]].concat());
        assert_eq!(x.tx[2], [0x7F; 8], "consumed");
        x.set_wanted(0b001);
        assert_eq!(x.rx[2], [0x7F; 8], "left the mask: silence");
    }
}
