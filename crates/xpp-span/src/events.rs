//! A channel's event queue (§6).
//!
//! - 64 entries, first in first out; when full, **new** events are dropped (and counted).
//! - While an event is pending, `read()`/`write()` on the channel fail with [`ELAST`]
//!   ([`EventQueue::io_check`]), poll reports POLLPRI and IOMUX SIGEVENT wakes
//!   ([`EventQueue::is_pending`]).
//! - GETEVENT pops one event, [`Event::NONE`] when empty ([`EventQueue::pop`]).
//! - FLUSH bit 4 clears it ([`EventQueue::flush`]); open and close reset it
//!   ([`EventQueue::reset`]).
//! - After surprise removal ([`EventQueue::mark_removed`]) GETEVENT returns REMOVED once the
//!   queue is drained, for ever (§2 step 8).
//!
//! Fixed storage: pushing never allocates.

use crate::dahdi::{ELAST, EVENT_QUEUE_DEPTH, Event};

/// A channel's 64-deep event ring. See the module doc for its rules.
#[derive(Clone)]
pub struct EventQueue {
    buf: [Event; EVENT_QUEUE_DEPTH],
    head: usize,
    len: usize,
    dropped: u64,
    removed: bool,
}

impl Default for EventQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl core::fmt::Debug for EventQueue {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("EventQueue")
            .field("pending", &self.iter().collect::<Vec<_>>())
            .field("dropped", &self.dropped)
            .field("removed", &self.removed)
            .finish()
    }
}

impl EventQueue {
    /// An empty queue.
    pub const fn new() -> Self {
        Self { buf: [Event::NONE; EVENT_QUEUE_DEPTH], head: 0, len: 0, dropped: 0, removed: false }
    }

    /// Queues `event`. Returns `false` if it was dropped because the queue is full (§6: new
    /// events are dropped) or because it is [`Event::NONE`], which is not an event.
    pub fn push(&mut self, event: Event) -> bool {
        if event == Event::NONE {
            return false;
        }
        if self.len == EVENT_QUEUE_DEPTH {
            self.dropped = self.dropped.saturating_add(1);
            log::debug!("event queue full, dropping {event}");
            return false;
        }
        let tail = (self.head + self.len) % EVENT_QUEUE_DEPTH;
        self.buf[tail] = event;
        self.len += 1;
        true
    }

    /// GETEVENT: the oldest pending event, or [`Event::NONE`] (or [`Event::REMOVED`] after
    /// removal) when the queue is empty.
    pub fn pop(&mut self) -> Event {
        if self.len == 0 {
            return if self.removed { Event::REMOVED } else { Event::NONE };
        }
        let event = self.buf[self.head];
        self.head = (self.head + 1) % EVENT_QUEUE_DEPTH;
        self.len -= 1;
        event
    }

    /// The oldest pending event without removing it.
    pub fn peek(&self) -> Option<Event> {
        (self.len > 0).then(|| self.buf[self.head])
    }

    /// Whether an event is pending (POLLPRI / IOMUX SIGEVENT).
    pub fn is_pending(&self) -> bool {
        self.len > 0
    }

    /// `Err(ELAST)` while an event is pending: what `read()`/`write()` return then.
    pub fn io_check(&self) -> Result<(), i32> {
        if self.is_pending() { Err(ELAST) } else { Ok(()) }
    }

    /// Number of pending events.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many events were dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Whether the channel was removed.
    pub fn is_removed(&self) -> bool {
        self.removed
    }

    /// The pending events, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = Event> + '_ {
        (0..self.len).map(move |i| self.buf[(self.head + i) % EVENT_QUEUE_DEPTH])
    }

    /// FLUSH with bit 4 (events): discards the pending events.
    // Decision: the removed state is not flushed: a removed channel stays removed.
    pub fn flush(&mut self) {
        self.head = 0;
        self.len = 0;
    }

    /// Open / close: the queue starts empty (the removed state stays, as for [`Self::flush`]).
    pub fn reset(&mut self) {
        self.flush();
    }

    /// Surprise removal: queues REMOVED and makes GETEVENT return REMOVED once drained.
    // Decision: REMOVED is delivered even when the queue is full: the sticky state makes the
    // first GETEVENT after the backlog return it, so a PBX always learns of the removal.
    pub fn mark_removed(&mut self) {
        if !self.removed {
            self.push(Event::REMOVED);
            self.removed = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_and_none_when_empty() {
        let mut q = EventQueue::new();
        assert_eq!(q.pop(), Event::NONE);
        assert!(q.io_check().is_ok());
        assert!(q.push(Event::RINGOFFHOOK));
        assert!(q.push(Event::ONHOOK));
        assert!(!q.push(Event::NONE));
        assert!(q.is_pending());
        assert_eq!(q.io_check(), Err(500));
        assert_eq!(q.peek(), Some(Event::RINGOFFHOOK));
        assert_eq!(q.pop(), Event::RINGOFFHOOK);
        assert_eq!(q.pop(), Event::ONHOOK);
        assert_eq!(q.pop(), Event::NONE);
        assert!(!q.is_pending());
    }

    #[test]
    fn full_queue_drops_new_events() {
        let mut q = EventQueue::new();
        for i in 0..64 {
            assert!(q.push(Event::pulse_digit(b'0' + (i % 10) as u8)));
        }
        assert!(!q.push(Event::ONHOOK));
        assert!(!q.push(Event::ALARM));
        assert_eq!(q.len(), 64);
        assert_eq!(q.dropped(), 2);
        // The oldest 64 are kept in order; the dropped ones never appear.
        for i in 0..64 {
            assert_eq!(q.pop(), Event::pulse_digit(b'0' + (i % 10) as u8));
        }
        assert_eq!(q.pop(), Event::NONE);
        // Wrap-around keeps order.
        for _ in 0..100 {
            q.push(Event::WINKFLASH);
            q.push(Event::ONHOOK);
            assert_eq!(q.pop(), Event::WINKFLASH);
            assert_eq!(q.pop(), Event::ONHOOK);
        }
    }

    #[test]
    fn flush_and_reset() {
        let mut q = EventQueue::new();
        q.push(Event::ONHOOK);
        q.flush();
        assert_eq!(q.pop(), Event::NONE);
        q.push(Event::ONHOOK);
        q.reset();
        assert!(q.is_empty());
    }

    #[test]
    fn removed_is_sticky_and_survives_a_full_queue() {
        let mut q = EventQueue::new();
        for _ in 0..64 {
            q.push(Event::RINGERON);
        }
        q.mark_removed();
        q.mark_removed();
        assert!(q.is_removed());
        for _ in 0..64 {
            assert_eq!(q.pop(), Event::RINGERON);
        }
        assert_eq!(q.pop(), Event::REMOVED);
        assert_eq!(q.pop(), Event::REMOVED);
        q.flush();
        assert_eq!(q.pop(), Event::REMOVED);

        let mut q = EventQueue::new();
        q.push(Event::ONHOOK);
        q.mark_removed();
        assert_eq!(q.iter().collect::<Vec<_>>(), [Event::ONHOOK, Event::REMOVED]);
    }
}
