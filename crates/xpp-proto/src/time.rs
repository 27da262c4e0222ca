//! Time for sans-IO code: [`Instant`] and [`Duration`] in microseconds.
//!
//! Nothing in `xpp-proto` (or the other sans-IO crates) reads a clock. Callers pass an
//! [`Instant`] in; tests, fuzzers and trace replays can therefore build any time they like.
//! The IO layer converts from `std::time::Instant` in one place.
//!
//! An `Instant` is microseconds since an arbitrary epoch chosen by whoever owns the clock
//! (the emulator's virtual clock starts at zero). Arithmetic saturates instead of wrapping or
//! panicking: a timer computed from a hostile value never overflows.

use core::fmt;
use core::ops::{Add, AddAssign, Sub, SubAssign};

/// A point in time, in microseconds since the clock owner's epoch.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant {
    micros: u64,
}

/// A span of time, in microseconds.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration {
    micros: u64,
}

impl Instant {
    /// The epoch (time zero).
    pub const ZERO: Self = Self { micros: 0 };

    /// An instant `micros` microseconds after the epoch.
    pub const fn from_micros(micros: u64) -> Self {
        Self { micros }
    }

    /// An instant `millis` milliseconds after the epoch.
    pub const fn from_millis(millis: u64) -> Self {
        Self { micros: millis.saturating_mul(1000) }
    }

    /// An instant `secs` seconds after the epoch.
    pub const fn from_secs(secs: u64) -> Self {
        Self { micros: secs.saturating_mul(1_000_000) }
    }

    /// Microseconds since the epoch.
    pub const fn total_micros(self) -> u64 {
        self.micros
    }

    /// Whole milliseconds since the epoch.
    pub const fn total_millis(self) -> u64 {
        self.micros / 1000
    }

    /// Time elapsed from `earlier` to `self`, or zero if `earlier` is later.
    pub const fn saturating_duration_since(self, earlier: Self) -> Duration {
        Duration { micros: self.micros.saturating_sub(earlier.micros) }
    }

    /// `self + d`, or `None` on overflow.
    pub const fn checked_add(self, d: Duration) -> Option<Self> {
        match self.micros.checked_add(d.micros) {
            Some(micros) => Some(Self { micros }),
            None => None,
        }
    }
}

impl Duration {
    /// No time at all.
    pub const ZERO: Self = Self { micros: 0 };
    /// The longest representable duration.
    pub const MAX: Self = Self { micros: u64::MAX };

    /// A duration of `micros` microseconds.
    pub const fn from_micros(micros: u64) -> Self {
        Self { micros }
    }

    /// A duration of `millis` milliseconds.
    pub const fn from_millis(millis: u64) -> Self {
        Self { micros: millis.saturating_mul(1000) }
    }

    /// A duration of `secs` seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Self { micros: secs.saturating_mul(1_000_000) }
    }

    /// Total microseconds.
    pub const fn total_micros(self) -> u64 {
        self.micros
    }

    /// Total whole milliseconds.
    pub const fn total_millis(self) -> u64 {
        self.micros / 1000
    }

    /// `self * n`, saturating.
    pub const fn saturating_mul(self, n: u64) -> Self {
        Self { micros: self.micros.saturating_mul(n) }
    }
}

impl Add<Duration> for Instant {
    type Output = Self;
    fn add(self, rhs: Duration) -> Self {
        Self { micros: self.micros.saturating_add(rhs.micros) }
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, rhs: Duration) {
        *self = *self + rhs;
    }
}

impl Sub<Duration> for Instant {
    type Output = Self;
    fn sub(self, rhs: Duration) -> Self {
        Self { micros: self.micros.saturating_sub(rhs.micros) }
    }
}

impl SubAssign<Duration> for Instant {
    fn sub_assign(&mut self, rhs: Duration) {
        *self = *self - rhs;
    }
}

impl Sub for Instant {
    type Output = Duration;
    /// Saturates at zero when `rhs` is later than `self`.
    fn sub(self, rhs: Self) -> Duration {
        self.saturating_duration_since(rhs)
    }
}

impl Add for Duration {
    type Output = Self;
    fn add(self, rhs: Self) -> Self {
        Self { micros: self.micros.saturating_add(rhs.micros) }
    }
}

impl AddAssign for Duration {
    fn add_assign(&mut self, rhs: Self) {
        *self = *self + rhs;
    }
}

impl Sub for Duration {
    type Output = Self;
    fn sub(self, rhs: Self) -> Self {
        Self { micros: self.micros.saturating_sub(rhs.micros) }
    }
}

impl From<core::time::Duration> for Duration {
    fn from(d: core::time::Duration) -> Self {
        Self { micros: u64::try_from(d.as_micros()).unwrap_or(u64::MAX) }
    }
}

impl From<Duration> for core::time::Duration {
    fn from(d: Duration) -> Self {
        Self::from_micros(d.micros)
    }
}

impl fmt::Debug for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Instant {
    /// `12.345678s`: seconds since the epoch with microsecond precision.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:06}s", self.micros / 1_000_000, self.micros % 1_000_000)
    }
}

impl fmt::Debug for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Duration {
    /// `1.500ms`, `250us` or `2.000000s`, whichever reads best.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let us = self.micros;
        if us < 1000 {
            write!(f, "{us}us")
        } else if us < 1_000_000 {
            write!(f, "{}.{:03}ms", us / 1000, us % 1000)
        } else {
            write!(f, "{}.{:06}s", us / 1_000_000, us % 1_000_000)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let t = Instant::from_millis(5);
        assert_eq!(t + Duration::from_micros(250), Instant::from_micros(5250));
        assert_eq!(t - Duration::from_secs(1), Instant::ZERO);
        assert_eq!(Instant::ZERO - t, Duration::ZERO);
        assert_eq!(t - Instant::from_millis(2), Duration::from_millis(3));
        assert_eq!(Instant::from_micros(u64::MAX) + Duration::from_micros(1), Instant::from_micros(u64::MAX));
        assert_eq!(Instant::from_micros(u64::MAX).checked_add(Duration::from_micros(1)), None);
        assert_eq!(Duration::from_secs(u64::MAX), Duration::MAX);
    }

    #[test]
    fn display() {
        assert_eq!(Duration::from_micros(250).to_string(), "250us");
        assert_eq!(Duration::from_micros(1500).to_string(), "1.500ms");
        assert_eq!(Duration::from_secs(2).to_string(), "2.000000s");
        assert_eq!(Instant::from_micros(12_345_678).to_string(), "12.345678s");
    }

    #[test]
    fn std_conversion() {
        let d = core::time::Duration::from_millis(7);
        assert_eq!(Duration::from(d), Duration::from_millis(7));
        assert_eq!(core::time::Duration::from(Duration::from_millis(7)), d);
    }
}
