//! Span alarms and how they reach channels (§7).
//!
//! The driver writes the span's alarm word and calls alarm-notify
//! ([`SpanAlarms::set_alarms`]). The core recomputes LOOPBACK from the maintenance state; only
//! when the span moves between "no alarm" and "some alarm" does it copy the span word into
//! every channel's alarm word, queueing ALARM (non-zero) or NOALARM (zero) on the channels
//! whose word changed, and re-running master election. Changes inside the alarmed state
//! (RED -> RED|YELLOW) make no event. Per-channel alarms (an FXO port without battery => RED)
//! go through [`set_chan_alarms`].

use crate::dahdi::{Alarms, Event};
use crate::events::EventQueue;

/// What an alarm-notify asks of the span's owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum AlarmNotify {
    /// Nothing to propagate (no change, or a change inside the alarmed state).
    Quiet,
    /// The span moved between "no alarm" and "some alarm": copy `word` into every channel
    /// (with [`apply_span_alarms`]) and re-run master election.
    Propagate {
        /// The span's new alarm word.
        word: Alarms,
    },
}

/// A span's alarm word, its previous value (`lastalarms`) and the maintenance loopback.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpanAlarms {
    alarms: Alarms,
    lastalarms: Alarms,
    loopback: bool,
}

impl SpanAlarms {
    /// A span without alarms.
    pub const fn new() -> Self {
        Self { alarms: Alarms::EMPTY, lastalarms: Alarms::EMPTY, loopback: false }
    }

    /// The current span alarm word (what SPANSTAT reports).
    pub fn alarms(&self) -> Alarms {
        self.alarms
    }

    /// Whether the span is in alarm (eligibility for master election, §12).
    pub fn in_alarm(&self) -> bool {
        !self.alarms.is_empty()
    }

    /// The driver sets the span word and calls alarm-notify. LOOPBACK is the core's: the
    /// driver's LOOPBACK bit is replaced by the maintenance state's.
    pub fn set_alarms(&mut self, driver_word: Alarms) -> AlarmNotify {
        let mut word = driver_word.difference(Alarms::LOOPBACK);
        if self.loopback {
            word |= Alarms::LOOPBACK;
        }
        self.alarms = word;
        self.notify()
    }

    /// The maintenance state changed (a loop started or ended).
    pub fn set_loopback(&mut self, on: bool) -> AlarmNotify {
        self.loopback = on;
        self.set_alarms(self.alarms)
    }

    /// Span unassign / unregister / surprise removal: the word becomes NOTOPEN (§2 step 8).
    /// The caller marks every channel removed before propagating.
    pub fn set_removed(&mut self) -> AlarmNotify {
        self.loopback = false;
        self.set_alarms(Alarms::NOTOPEN)
    }

    fn notify(&mut self) -> AlarmNotify {
        let was = !self.lastalarms.is_empty();
        let is = !self.alarms.is_empty();
        self.lastalarms = self.alarms;
        if was == is {
            AlarmNotify::Quiet
        } else {
            log::debug!("span alarms {}", self.alarms);
            AlarmNotify::Propagate { word: self.alarms }
        }
    }
}

/// Copies a propagated span word into one channel's alarm word, queueing ALARM or NOALARM
/// if the channel's word changed. Returns whether an event was queued.
pub fn apply_span_alarms(word: Alarms, chan_alarms: &mut Alarms, events: &mut EventQueue) -> bool {
    if *chan_alarms == word {
        return false;
    }
    *chan_alarms = word;
    events.push(if word.is_empty() { Event::NOALARM } else { Event::ALARM })
}

/// The per-channel alarm helper: sets the channel word, queueing ALARM/NOALARM only when the
/// channel moves between "no alarm" and "some alarm". Returns whether an event was queued.
// Decision: the reference only says the helper is used directly; we apply the same in/out
// transition rule as for spans (§14: "events only on in/out transitions").
pub fn set_chan_alarms(new: Alarms, chan_alarms: &mut Alarms, events: &mut EventQueue) -> bool {
    let was = !chan_alarms.is_empty();
    *chan_alarms = new;
    match (was, !new.is_empty()) {
        (false, true) => events.push(Event::ALARM),
        (true, false) => events.push(Event::NOALARM),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_in_out_transitions_propagate() {
        let mut s = SpanAlarms::new();
        assert_eq!(s.set_alarms(Alarms::EMPTY), AlarmNotify::Quiet);
        assert_eq!(s.set_alarms(Alarms::RED), AlarmNotify::Propagate { word: Alarms::RED });
        assert_eq!(s.set_alarms(Alarms::RED | Alarms::YELLOW), AlarmNotify::Quiet);
        assert_eq!(s.alarms(), Alarms::RED | Alarms::YELLOW);
        assert_eq!(s.set_alarms(Alarms::EMPTY), AlarmNotify::Propagate { word: Alarms::EMPTY });
        assert!(!s.in_alarm());
    }

    #[test]
    fn loopback_is_the_cores() {
        let mut s = SpanAlarms::new();
        assert_eq!(s.set_alarms(Alarms::LOOPBACK), AlarmNotify::Quiet, "driver cannot set LOOPBACK");
        assert_eq!(s.set_loopback(true), AlarmNotify::Propagate { word: Alarms::LOOPBACK });
        assert_eq!(s.set_alarms(Alarms::EMPTY), AlarmNotify::Quiet);
        assert_eq!(s.alarms(), Alarms::LOOPBACK);
        assert_eq!(s.set_loopback(false), AlarmNotify::Propagate { word: Alarms::EMPTY });
    }

    #[test]
    fn span_word_reaches_channels() {
        let mut s = SpanAlarms::new();
        let mut chans = [(Alarms::EMPTY, EventQueue::new()), (Alarms::RED, EventQueue::new())];
        let AlarmNotify::Propagate { word } = s.set_alarms(Alarms::RED) else { panic!("no propagate") };
        for (a, q) in &mut chans {
            apply_span_alarms(word, a, q);
        }
        assert_eq!(chans[0].1.pop(), Event::ALARM);
        assert_eq!(chans[1].1.pop(), Event::NONE, "word unchanged: no event");
        let AlarmNotify::Propagate { word } = s.set_alarms(Alarms::EMPTY) else { panic!("no propagate") };
        for (a, q) in &mut chans {
            apply_span_alarms(word, a, q);
            assert_eq!(*a, Alarms::EMPTY);
            assert_eq!(q.pop(), Event::NOALARM);
        }
    }

    #[test]
    fn removal_sets_notopen() {
        let mut s = SpanAlarms::new();
        assert_eq!(s.set_loopback(true), AlarmNotify::Propagate { word: Alarms::LOOPBACK });
        assert_eq!(s.set_removed(), AlarmNotify::Quiet, "already in alarm");
        assert_eq!(s.alarms(), Alarms::NOTOPEN);
        let mut s = SpanAlarms::new();
        assert_eq!(s.set_removed(), AlarmNotify::Propagate { word: Alarms::NOTOPEN });
    }

    #[test]
    fn channel_helper_events_on_transitions_only() {
        let mut a = Alarms::EMPTY;
        let mut q = EventQueue::new();
        assert!(set_chan_alarms(Alarms::RED, &mut a, &mut q));
        assert!(!set_chan_alarms(Alarms::RED | Alarms::BLUE, &mut a, &mut q));
        assert!(set_chan_alarms(Alarms::EMPTY, &mut a, &mut q));
        assert!(!set_chan_alarms(Alarms::EMPTY, &mut a, &mut q));
        assert_eq!(q.iter().collect::<Vec<_>>(), [Event::ALARM, Event::NOALARM]);
    }
}
