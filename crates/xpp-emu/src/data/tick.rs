//! The internal 1 ms clock with crystal offset and PLL trim, and per-XPD PCM buffers
//! (MODEL.md TIME rows).

use xpp_proto::Instant;
use xpp_proto::wire::Address;

use super::g711::Law;

const PS_PER_US: u128 = 1_000_000;

/// The device's internal 1 ms clock (MODEL: TIME-1, TIME-9), kept in picoseconds so the
/// fractional part of the period accumulates exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Clock {
    next_ps: u128,
    period_ps: u128,
}

impl Clock {
    pub(crate) fn new(crystal_ppm: i32) -> Self {
        let mut c = Self { next_ps: 0, period_ps: 1 };
        c.set_period(crystal_ppm, 0, 0);
        c.next_ps = c.period_ps;
        c
    }

    /// Period = 1 ms × (1 + crystal ppm) × (1 + adjustment × step ppm); a positive adjustment
    /// slows the clock (MODEL: TIME-9).
    pub(crate) fn set_period(&mut self, crystal_ppm: i32, adj: i8, step_ppm: u32) {
        let a = 1_000_000i128 + i128::from(crystal_ppm);
        let b = 1_000_000i128 + i128::from(adj) * i128::from(step_ppm);
        self.period_ps = ((a * b) / 1000).max(1_000) as u128;
    }

    /// The next boundary, rounded up to whole µs.
    pub(crate) fn next_instant(&self) -> Instant {
        Instant::from_micros(self.next_ps.div_ceil(PS_PER_US).min(u128::from(u64::MAX)) as u64)
    }

    pub(crate) fn advance(&mut self) {
        self.next_ps += self.period_ps;
    }

    /// Skips to the first boundary after `now` (the clock kept running while nobody looked).
    pub(crate) fn catch_up(&mut self, now: Instant) {
        let now_ps = u128::from(now.total_micros()) * PS_PER_US;
        if self.next_ps <= now_ps {
            let n = (now_ps - self.next_ps) / self.period_ps + 1;
            self.next_ps += n * self.period_ps;
        }
    }
}

/// PCM state of one XPD: channels it has, the PCM_READ mask, the playout buffer.
#[derive(Debug, Clone)]
pub(crate) struct XpdPcm {
    pub(crate) addr: Address,
    /// Bits the XPD has a channel for (MODEL: TIME-14).
    pub(crate) valid: u32,
    pub(crate) law: Law,
    pub(crate) read_mask: u32,
    pub(crate) pending: [[u8; 8]; 32],
    pub(crate) pending_mask: u32,
    /// Host audio playing in the current ms.
    pub(crate) tx: [[u8; 8]; 32],
    /// Line audio toward the host in the current ms.
    pub(crate) rx: [[u8; 8]; 32],
}

impl XpdPcm {
    pub(crate) fn new(addr: Address, valid: u32, law: Law) -> Self {
        let s = law.silence();
        Self {
            addr,
            valid,
            law,
            read_mask: 0,
            pending: [[s; 8]; 32],
            pending_mask: 0,
            tx: [[s; 8]; 32],
            rx: [[s; 8]; 32],
        }
    }

    /// MODEL: TIME-16, TIME-17 — the round received since the last tick becomes this ms's
    /// transmit audio; lines not in it (or every line, after a missed round) play silence.
    pub(crate) fn playout(&mut self) {
        let s = self.law.silence();
        for (i, (tx, p)) in self.tx.iter_mut().zip(self.pending.iter()).enumerate() {
            *tx = if self.pending_mask & (1 << i) != 0 { *p } else { [s; 8] };
        }
        self.pending_mask = 0;
    }

    pub(crate) fn silence_tx(&mut self) {
        self.tx = [[self.law.silence(); 8]; 32];
        self.pending_mask = 0;
    }
}
