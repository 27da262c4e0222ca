//! A failover's phases, each with its start and duration, as tools print them.

use core::fmt;

use xpp_proto::{Duration, Instant};

/// One phase of a failover, in the order they happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Phase {
    /// Master: from the first failed health check to the decision to hand over.
    Detect,
    /// Master: from TWS_PORT_SET (or the release that lets the watchdog fire) until the
    /// device left this host.
    HandOver,
    /// Backup: the device appeared on this host's port (re-enumeration), until the take-over
    /// was asked for.
    Enumerate,
    /// Backup: attach and verify, until the spans are up (or until the verify failed).
    TakeOver,
    /// Backup: the device could not be trusted (the verify failed: its chips were reset,
    /// its units differ): a full init, until the spans are up. Calls in progress are lost.
    FullInit,
    /// Backup: spans up until the first audio frame was exchanged.
    FirstAudio,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Detect => "detect",
            Self::HandOver => "hand-over",
            Self::Enumerate => "enumerate",
            Self::TakeOver => "take-over",
            Self::FullInit => "full-init",
            Self::FirstAudio => "first-audio",
        })
    }
}

/// One finished phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhaseSpan {
    /// Which.
    pub phase: Phase,
    /// When it started.
    pub start: Instant,
    /// How long it took.
    pub duration: Duration,
}

/// The phases of one failover as seen by one host, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Timeline {
    phases: Vec<PhaseSpan>,
    open: Option<(Phase, Instant)>,
}

impl Timeline {
    /// Ends the open phase (if any) at `now` and starts `phase`.
    pub(crate) fn begin(&mut self, now: Instant, phase: Phase) {
        self.end(now);
        self.open = Some((phase, now));
    }

    /// Ends the open phase at `now`.
    pub(crate) fn end(&mut self, now: Instant) {
        if let Some((phase, start)) = self.open.take() {
            self.phases.push(PhaseSpan { phase, start, duration: now.saturating_duration_since(start) });
        }
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.phases.is_empty() && self.open.is_none()
    }

    /// The finished phases, in order.
    pub fn phases(&self) -> &[PhaseSpan] {
        &self.phases
    }

    /// The phase still running, with its start.
    pub fn open_phase(&self) -> Option<(Phase, Instant)> {
        self.open
    }

    /// The duration of `phase` (the sum, if it ran more than once).
    pub fn duration(&self, phase: Phase) -> Option<Duration> {
        let mut spans = self.phases.iter().filter(|p| p.phase == phase).peekable();
        spans.peek()?;
        Some(spans.fold(Duration::ZERO, |acc, p| acc + p.duration))
    }

    /// From the first phase's start to the last one's end.
    pub fn total(&self) -> Duration {
        match (self.phases.first(), self.phases.last()) {
            (Some(a), Some(b)) => (b.start + b.duration).saturating_duration_since(a.start),
            _ => Duration::ZERO,
        }
    }
}

/// One line per phase, then `total`, in milliseconds:
///
/// ```text
/// enumerate      12.000 ms
/// take-over      20.000 ms
/// total          32.000 ms
/// ```
impl fmt::Display for Timeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |d: Duration| d.total_micros() as f64 / 1000.0;
        for p in &self.phases {
            writeln!(f, "{:<12} {:>9.3} ms", p.phase.to_string(), ms(p.duration))?;
        }
        write!(f, "{:<12} {:>9.3} ms", "total", ms(self.total()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_chain_and_total_spans_them() {
        let ms = Instant::from_millis;
        let mut t = Timeline::default();
        assert!(t.is_empty());
        t.begin(ms(100), Phase::Enumerate);
        t.begin(ms(112), Phase::TakeOver);
        assert_eq!(t.open_phase(), Some((Phase::TakeOver, ms(112))));
        t.end(ms(132));
        t.end(ms(500)); // nothing open: no effect
        assert_eq!(t.duration(Phase::Enumerate), Some(Duration::from_millis(12)));
        assert_eq!(t.duration(Phase::TakeOver), Some(Duration::from_millis(20)));
        assert_eq!(t.duration(Phase::Detect), None);
        assert_eq!(t.total(), Duration::from_millis(32));
        assert_eq!(
            t.to_string(),
            "enumerate       12.000 ms\ntake-over       20.000 ms\ntotal           32.000 ms"
        );
    }
}
