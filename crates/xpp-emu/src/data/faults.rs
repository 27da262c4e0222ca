//! Data-interface fault state (MODEL.md FAULT-11, FAULT-12): what [`DataFault`]s leave
//! pending until the device next acts on it.

use xpp_proto::{Duration, Instant};

use crate::fault::SplitMix64;

/// Longest copy of a host packet an ERROR_CODE carries.
pub(crate) const ERROR_COPY_MAX: usize = 32;

/// Largest tick jitter: below half a tick, so jittered ticks never swap order.
const MAX_JITTER_US: u32 = 499;

/// FAULT-12 tick jitter in progress.
#[derive(Debug, Clone)]
struct Jitter {
    max_us: u32,
    remaining: u32,
    rng: SplitMix64,
    offset_us: i64,
}

impl Jitter {
    fn draw(&mut self) {
        let span = u64::from(self.max_us) * 2 + 1;
        self.offset_us = (self.rng.next_u64() % span) as i64 - i64::from(self.max_us);
    }
}

/// Pending data-side faults.
#[derive(Debug, Clone, Default)]
pub(crate) struct DataFaults {
    /// SYNC_REPLYs still to omit.
    pub(crate) omit_sync: u32,
    /// PCM rounds still to skip.
    pub(crate) skip_pcm: u32,
    jitter: Option<Jitter>,
    /// The last command packet from the host (ERROR_CODE copy).
    pub(crate) last_cmd: [u8; ERROR_COPY_MAX],
    pub(crate) last_cmd_len: usize,
}

impl DataFaults {
    /// The stream of a fault applied at `now` under device seed `seed`.
    // Decision: per-fault streams keyed by (seed, time) rather than one shared stream, so
    // adding a fault at another time never changes the draws of this one (as FAULT-1).
    pub(crate) fn stream(seed: u64, now: Instant, salt: u64) -> SplitMix64 {
        SplitMix64::for_rule(seed ^ salt, now.total_micros() as usize)
    }

    pub(crate) fn start_jitter(&mut self, seed: u64, now: Instant, max_us: u32, ticks: u32) {
        if ticks == 0 || max_us == 0 {
            self.jitter = None;
            return;
        }
        let mut j = Jitter {
            max_us: max_us.min(MAX_JITTER_US),
            remaining: ticks,
            rng: Self::stream(seed, now, 0x4A17_7E12),
            offset_us: 0,
        };
        j.draw();
        self.jitter = Some(j);
    }

    /// The current tick's offset from the grid, in µs.
    pub(crate) fn jitter_us(&self) -> i64 {
        self.jitter.as_ref().map_or(0, |j| j.offset_us)
    }

    /// A tick ran: the next one gets a new offset, or none once the jitter is over.
    pub(crate) fn tick_done(&mut self) {
        if let Some(j) = &mut self.jitter {
            j.remaining = j.remaining.saturating_sub(1);
            if j.remaining == 0 {
                self.jitter = None;
            } else {
                j.draw();
            }
        }
    }

    pub(crate) fn remember_cmd(&mut self, bytes: &[u8]) {
        let n = bytes.len().min(ERROR_COPY_MAX);
        self.last_cmd[..n].copy_from_slice(&bytes[..n]);
        self.last_cmd_len = n;
    }
}

/// Shifts `t` by `offset_us` (saturating at 0).
pub(crate) fn shift(t: Instant, offset_us: i64) -> Instant {
    if offset_us >= 0 {
        t + Duration::from_micros(offset_us.unsigned_abs())
    } else {
        Instant::from_micros(t.total_micros().saturating_sub(offset_us.unsigned_abs()))
    }
}

/// FAULT-11 hook contact bounce of one phone.
#[derive(Debug, Clone)]
pub(crate) struct Bounce {
    bounces: u8,
    rng: SplitMix64,
    /// The phone's hook as last seen (settled side of the contact).
    phone: bool,
    /// Contact flips still to come on the current edge.
    flips_left: u16,
    next_flip: Instant,
}

impl Bounce {
    pub(crate) fn new(bounces: u8, rng: SplitMix64, phone: bool) -> Self {
        Self { bounces, rng, phone, flips_left: 0, next_flip: Instant::ZERO }
    }

    fn hold(&mut self, at: Instant) -> Instant {
        at + Duration::from_millis(1 + self.rng.next_u64() % 5)
    }

    /// The contact at `at` for the phone's hook `phone` (called once per ms).
    pub(crate) fn contact(&mut self, at: Instant, phone: bool) -> bool {
        if phone != self.phone {
            // A new edge: the contact makes at once, then bounces.
            self.phone = phone;
            self.flips_left = u16::from(self.bounces) * 2;
            self.next_flip = self.hold(at);
        } else if self.flips_left > 0 && at >= self.next_flip {
            self.flips_left -= 1;
            self.next_flip = self.hold(at);
        }
        // An odd number of flips left: the contact is back at the old state.
        if self.flips_left % 2 == 1 { !phone } else { phone }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounce_flips_and_settles() {
        let mut b = Bounce::new(2, SplitMix64::new(1), false);
        let mut seen = Vec::new();
        for ms in 0..40 {
            seen.push(b.contact(Instant::from_millis(ms), ms >= 5));
        }
        let edges = seen.windows(2).filter(|w| w[0] != w[1]).count();
        assert_eq!(edges, 5, "{seen:?}");
        assert!(seen[39]);
        assert!(seen[5], "the contact makes at the edge");
    }

    #[test]
    fn jitter_is_bounded_and_seeded() {
        let run = |seed| {
            let mut f = DataFaults::default();
            f.start_jitter(seed, Instant::ZERO, 2000, 50);
            (0..60)
                .map(|_| {
                    let o = f.jitter_us();
                    f.tick_done();
                    o
                })
                .collect::<Vec<_>>()
        };
        let a = run(1);
        assert_eq!(a, run(1));
        assert_ne!(a, run(2));
        assert!(a.iter().all(|o| o.abs() <= 499));
        assert!(a[50..].iter().all(|&o| o == 0));
    }
}
