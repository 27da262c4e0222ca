//! Timer tables for sans-IO cores (quinn-proto `connection/timer.rs`, `STYLE.md` §2).
//!
//! A core names its deadlines with its own enum, declared with
//! [`timer_enum!`](crate::timer_enum), and keeps them in a [`TimerTable`]: one
//! `Option<Instant>` per timer. Its `poll_timeout` is the table's
//! [`next_timeout`](TimerTable::next_timeout); its `handle_timeout` takes the due timers out
//! with [`take_expired`](TimerTable::take_expired) or
//! [`next_expired`](TimerTable::next_expired).
//!
//! ```
//! use xpp_proto::Instant;
//! use xpp_proto::timer::TimerTable;
//!
//! xpp_proto::timer_enum! {
//!     /// The timers of a blinking lamp.
//!     enum Timer {
//!         /// The next toggle.
//!         Blink,
//!         /// The lamp goes out for good.
//!         Expiry,
//!     }
//! }
//!
//! let ms = Instant::from_millis;
//! let mut timers = TimerTable::<Timer, 2>::new();
//! timers.set(Timer::Expiry, ms(500));
//! timers.set(Timer::Blink, ms(100));
//! assert_eq!(timers.next_timeout(), Some(ms(100)));
//! assert_eq!(timers.next_expired(ms(99)), None);
//! assert_eq!(timers.next_expired(ms(100)), Some((Timer::Blink, ms(100))));
//! assert_eq!(timers.take_expired(Timer::Blink, ms(100)), Some(ms(100)));
//! assert_eq!(timers.next_timeout(), Some(ms(500)));
//! ```

use core::fmt;
use core::marker::PhantomData;

use crate::time::Instant;

/// A core's timer enum, the index of a [`TimerTable`]. Implemented by
/// [`timer_enum!`](crate::timer_enum), which keeps [`ALL`](Self::ALL) and the indices in step.
pub trait TimerKind: Copy + 'static {
    /// Every timer, in index order: `ALL[t.index()] == t`.
    const ALL: &'static [Self];

    /// The timer's slot in a table, below `ALL.len()`.
    fn index(self) -> usize;
}

/// Declares a core's timer enum (fieldless, `Debug, Clone, Copy, PartialEq, Eq`) and
/// implements [`TimerKind`](crate::timer::TimerKind) for it: the variants' order is their
/// index. See the [module doc](crate::timer) for an example.
#[macro_export]
macro_rules! timer_enum {
    (
        $( #[$attr:meta] )*
        $vis:vis enum $name:ident {
            $(
                $( #[$variant_attr:meta] )*
                $variant:ident
            ),+ $(,)?
        }
    ) => {
        $( #[$attr] )*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        $vis enum $name {
            $(
                $( #[$variant_attr] )*
                $variant
            ),+
        }

        impl $crate::timer::TimerKind for $name {
            const ALL: &'static [Self] = &[ $( Self::$variant ),+ ];

            fn index(self) -> usize {
                self as usize
            }
        }
    };
}

/// One-shot deadlines indexed by a core's timer enum `T`; `N` is the number of timers,
/// checked at compile time against `T::ALL`:
///
/// ```compile_fail
/// xpp_proto::timer_enum! { enum Timer { Only } }
/// let _ = xpp_proto::timer::TimerTable::<Timer, 2>::new();
/// ```
#[derive(Clone)]
pub struct TimerTable<T, const N: usize> {
    at: [Option<Instant>; N],
    timers: PhantomData<T>,
}

impl<T: TimerKind, const N: usize> Default for TimerTable<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: TimerKind, const N: usize> TimerTable<T, N> {
    /// A table with every timer stopped.
    pub const fn new() -> Self {
        const { assert!(N == T::ALL.len(), "TimerTable: N must be the number of timers") };
        Self { at: [None; N], timers: PhantomData }
    }

    /// Arms `timer` for `at` (re-arms it if it was armed).
    #[inline]
    pub fn set(&mut self, timer: T, at: Instant) {
        self.at[timer.index()] = Some(at);
    }

    /// Stops `timer`.
    #[inline]
    pub fn stop(&mut self, timer: T) {
        self.at[timer.index()] = None;
    }

    /// Stops every timer.
    pub fn stop_all(&mut self) {
        self.at = [None; N];
    }

    /// `timer`'s deadline, if armed.
    #[inline]
    pub fn get(&self, timer: T) -> Option<Instant> {
        self.at[timer.index()]
    }

    /// Whether `timer` is armed.
    #[inline]
    pub fn is_armed(&self, timer: T) -> bool {
        self.at[timer.index()].is_some()
    }

    /// Stops `timer` and returns its deadline if it is due at `now`.
    #[inline]
    pub fn take_expired(&mut self, timer: T, now: Instant) -> Option<Instant> {
        let slot = &mut self.at[timer.index()];
        match *slot {
            Some(at) if at <= now => {
                *slot = None;
                Some(at)
            }
            _ => None,
        }
    }

    /// The earliest armed deadline (what a core's `poll_timeout` reports).
    #[inline]
    pub fn next_timeout(&self) -> Option<Instant> {
        self.at.iter().flatten().min().copied()
    }

    /// The timer due at `now` with the earliest deadline (on a tie, the first in `T::ALL`),
    /// left armed.
    pub fn next_expired(&self, now: Instant) -> Option<(T, Instant)> {
        self.iter().filter(|&(_, at)| at <= now).min_by_key(|&(_, at)| at)
    }

    /// The armed timers and their deadlines, in `T::ALL` order.
    pub fn iter(&self) -> impl Iterator<Item = (T, Instant)> + '_ {
        T::ALL.iter().filter_map(|&t| self.at[t.index()].map(|at| (t, at)))
    }
}

impl<T: TimerKind + fmt::Debug, const N: usize> fmt::Debug for TimerTable<T, N> {
    /// The armed timers as a map from timer to deadline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::timer_enum! {
        enum Timer {
            A,
            B,
            C,
        }
    }

    fn ms(n: u64) -> Instant {
        Instant::from_millis(n)
    }

    #[test]
    fn indices_follow_the_declaration() {
        assert_eq!(Timer::ALL, [Timer::A, Timer::B, Timer::C]);
        assert!(Timer::ALL.iter().enumerate().all(|(i, t)| t.index() == i));
    }

    #[test]
    fn next_timeout_is_the_minimum_and_ties_expire_in_declaration_order() {
        let mut t = TimerTable::<Timer, 3>::new();
        assert_eq!((t.next_timeout(), t.next_expired(ms(9))), (None, None));
        t.set(Timer::C, ms(5));
        t.set(Timer::B, ms(5));
        t.set(Timer::A, ms(7));
        assert_eq!(t.next_timeout(), Some(ms(5)));
        assert_eq!(t.next_expired(ms(4)), None);
        assert_eq!(t.next_expired(ms(9)), Some((Timer::B, ms(5))));
        assert_eq!(t.iter().collect::<Vec<_>>(), [(Timer::A, ms(7)), (Timer::B, ms(5)), (Timer::C, ms(5))]);
        assert_eq!(format!("{t:?}"), "{A: 0.007000s, B: 0.005000s, C: 0.005000s}");
        assert_eq!(t.take_expired(Timer::A, ms(6)), None);
        assert_eq!(t.take_expired(Timer::B, ms(6)), Some(ms(5)));
        assert!(!t.is_armed(Timer::B) && t.is_armed(Timer::C));
        t.stop(Timer::C);
        assert_eq!((t.get(Timer::A), t.get(Timer::C)), (Some(ms(7)), None));
        t.stop_all();
        assert_eq!(t.next_timeout(), None);
    }
}
