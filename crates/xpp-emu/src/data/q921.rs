//! A minimal Q.921 (LAPD) peer for the emulated far end of a D-channel (MODEL.md PRI-13):
//! enough for a host's data link to reach multiple-frame-established and stay there.
//!
//! It answers SABME with UA (and resets its sequence variables), DISC with UA, acknowledges
//! in-sequence I-frames with RR, and answers an RR/RNR/REJ command with the P bit with an RR
//! response with the F bit. Everything else (UI, XID, TEI management, frames of other TEIs)
//! gets no answer. The answer carries the address field of the frame it answers: a response
//! and the command it answers have the same C/R bit value in Q.921 whichever side sent the
//! command. Decisions (the reference only says the D-channel is a timeslot): the far end never
//! sends I-frames of its own and never times out (no T200/T203), a frame out of sequence is
//! answered with RR carrying the expected N(R) (no REJ).

/// Control field values (modulo-128 operation, P/F bit = 0x10 in U frames).
const SABME: u8 = 0x6F;
const DISC: u8 = 0x43;
const UA: u8 = 0x63;
const PF_U: u8 = 0x10;
const RR: u8 = 0x01;

/// The far end's LAPD state for one D-channel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Q921Peer {
    established: bool,
    /// Next expected N(S) of the host's I-frames.
    vr: u8,
    /// I-frames the peer accepted.
    i_frames: u64,
}

impl Q921Peer {
    /// Whether the link is in multiple-frame-established state (SABME acknowledged).
    pub fn established(&self) -> bool {
        self.established
    }

    /// In-sequence I-frames accepted since start.
    pub fn i_frames(&self) -> u64 {
        self.i_frames
    }

    /// The answer to one frame from the host (without FCS), if any.
    pub(crate) fn answer(&mut self, frame: &[u8]) -> Option<Vec<u8>> {
        let [a0, a1, c0, rest @ ..] = frame else { return None };
        // Two-octet address: EA bit 0 of the first octet 0, of the second 1.
        if a0 & 1 != 0 || a1 & 1 != 1 {
            return None;
        }
        let addr = [*a0, *a1];
        let reply = |ctl: &[u8]| -> Vec<u8> { addr.iter().chain(ctl).copied().collect() };
        if c0 & 1 == 0 {
            // I-frame: N(S) in c0, N(R)/P in the next octet.
            let &[c1, ..] = rest else { return None };
            if !self.established {
                return None;
            }
            let ns = c0 >> 1;
            if ns == self.vr {
                self.vr = (self.vr + 1) % 128;
                self.i_frames += 1;
            }
            return Some(reply(&[RR, (self.vr << 1) | (c1 & 1)]));
        }
        if c0 & 3 == 1 {
            // S frame (RR/RNR/REJ): answer a poll.
            let &[c1, ..] = rest else { return None };
            if self.established && c1 & 1 == 1 {
                return Some(reply(&[RR, (self.vr << 1) | 1]));
            }
            return None;
        }
        match c0 & !PF_U {
            SABME => {
                self.established = true;
                self.vr = 0;
                Some(reply(&[UA | (c0 & PF_U)]))
            }
            DISC => {
                self.established = false;
                Some(reply(&[UA | (c0 & PF_U)]))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sabme_i_frame_rr_disc() {
        let mut p = Q921Peer::default();
        assert_eq!(p.answer(&[0x00, 0x01, 0x03, 0x08, 0x01]), None, "UI: no answer");
        assert_eq!(p.answer(&[0x00, 0x01, 0x00, 0x01, 0xAA]), None, "I before SABME: no answer");
        assert_eq!(p.answer(&[0x00, 0x01, 0x7F]), Some(vec![0x00, 0x01, 0x73]));
        assert!(p.established());
        assert_eq!(p.answer(&[0x00, 0x01, 0x00, 0x01, 0xAA]), Some(vec![0x00, 0x01, 0x01, 0x03]));
        assert_eq!(p.answer(&[0x00, 0x01, 0x02, 0x00, 0xBB]), Some(vec![0x00, 0x01, 0x01, 0x04]));
        // repeated N(S)=1: not accepted again
        assert_eq!(p.answer(&[0x00, 0x01, 0x02, 0x00, 0xBB]), Some(vec![0x00, 0x01, 0x01, 0x04]));
        assert_eq!(p.i_frames(), 2);
        assert_eq!(p.answer(&[0x00, 0x01, 0x01, 0x01]), Some(vec![0x00, 0x01, 0x01, 0x05]));
        assert_eq!(p.answer(&[0x00, 0x01, 0x01, 0x00]), None, "RR without poll");
        assert_eq!(p.answer(&[0x00, 0x01, 0x53]), Some(vec![0x00, 0x01, 0x73]));
        assert!(!p.established());
        assert_eq!(p.answer(&[0x01]), None);
        assert_eq!(p.answer(&[0x01, 0x01, 0x7F]), None, "bad EA");
    }
}
