//! The one clock of the host stack.
//!
//! Everything above the transports is sans-IO and takes an [`Instant`] from its caller; the
//! IO edges (bring-up's runner, the driver's run loops, the PBX calls into the driver) get
//! that instant from one [`Clock`]. On real hardware it is the [`SystemClock`]; in tests and
//! simulations it is the emulator's virtual clock (`xpp_emu::Emulator` implements this
//! trait), or a [`StepClock`] for replaying a capture. One driver uses one clock, so bring-up,
//! the run loops and the PBX calls share one epoch.

use std::sync::atomic::{AtomicU64, Ordering};

use xpp_proto::{Duration, Instant};

/// Where time comes from, and how an IO loop waits for a deadline.
///
/// Shared across threads (the driver's run loops and the PBX threads read the same clock), so
/// both methods take `&self`.
pub trait Clock: Send + Sync {
    /// The current time. Never goes backwards.
    fn now(&self) -> Instant;
    /// Returns once [`Clock::now`] has reached `deadline` (at once if it has passed). A
    /// virtual clock may move itself there instead of waiting.
    fn sleep_until(&self, deadline: Instant);
}

impl<C: Clock + ?Sized> Clock for &C {
    fn now(&self) -> Instant {
        (**self).now()
    }
    fn sleep_until(&self, deadline: Instant) {
        (**self).sleep_until(deadline);
    }
}

impl<C: Clock + ?Sized> Clock for std::sync::Arc<C> {
    fn now(&self) -> Instant {
        (**self).now()
    }
    fn sleep_until(&self, deadline: Instant) {
        (**self).sleep_until(deadline);
    }
}

impl<C: Clock + ?Sized> Clock for Box<C> {
    fn now(&self) -> Instant {
        (**self).now()
    }
    fn sleep_until(&self, deadline: Instant) {
        (**self).sleep_until(deadline);
    }
}

/// The wall clock (monotonic): [`Instant`]s count from the clock's creation.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    epoch: std::time::Instant,
}

impl SystemClock {
    /// A clock whose zero is now.
    pub fn new() -> Self {
        Self { epoch: std::time::Instant::now() }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        // The one conversion from std time (STYLE.md §2).
        Instant::from_micros(u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX))
    }

    fn sleep_until(&self, deadline: Instant) {
        let now = self.now();
        if deadline > now {
            std::thread::sleep((deadline - now).into());
        }
    }
}

/// A clock for replaying a capture (`middleware::PcapSession`), whose transfers answer at
/// once: every reading moves it [`StepClock::STEP`] forward and sleeping jumps to the
/// deadline, so timers (renumeration waits, pacing) pass without real time.
#[derive(Debug, Default)]
pub struct StepClock {
    micros: AtomicU64,
}

impl StepClock {
    /// How far each reading moves the clock.
    pub const STEP: Duration = Duration::from_micros(10);

    /// A clock at `start`.
    pub fn new(start: Instant) -> Self {
        Self { micros: AtomicU64::new(start.total_micros()) }
    }
}

impl Clock for StepClock {
    fn now(&self) -> Instant {
        let step = Self::STEP.total_micros();
        Instant::from_micros(self.micros.fetch_add(step, Ordering::Relaxed).saturating_add(step))
    }

    fn sleep_until(&self, deadline: Instant) {
        self.micros.fetch_max(deadline.total_micros(), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_clock_steps_and_jumps_forward_only() {
        let c = StepClock::new(Instant::from_micros(100));
        assert_eq!(c.now(), Instant::from_micros(110));
        assert_eq!(c.now(), Instant::from_micros(120));
        c.sleep_until(Instant::from_micros(1_000));
        assert_eq!(c.now(), Instant::from_micros(1_010));
        c.sleep_until(Instant::from_micros(500));
        assert_eq!(c.now(), Instant::from_micros(1_020));
    }

    #[test]
    fn system_clock_is_monotonic_and_sleeps_to_the_deadline() {
        let c = SystemClock::new();
        let a = c.now();
        let deadline = a + Duration::from_millis(2);
        c.sleep_until(deadline);
        assert!(c.now() >= deadline);
        // Through a trait object, as the driver holds it.
        let d: &dyn Clock = &c;
        assert!(d.now() >= deadline);
    }
}
