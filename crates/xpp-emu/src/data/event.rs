//! The time-stamped equipment and line event log (MODEL.md EQ-9).

use std::collections::VecDeque;

use xpp_proto::Instant;

/// A port of a module: `unit` 0..4 (slot), `port` 0..7 (chip port / span / S/T port).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortRef {
    /// Unit (slot) 0..3, or 4 for the echo canceller.
    pub unit: u8,
    /// Chip port on that unit.
    pub port: u8,
}

impl PortRef {
    /// Port `port` of unit `unit`.
    pub const fn new(unit: u8, port: u8) -> Self {
        Self { unit, port }
    }
}

impl core::fmt::Display for PortRef {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}/{}", self.unit, self.port)
    }
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventKind {
    /// A phone started ringing (FXS line state 4, MODEL: FXS-10).
    RingStart,
    /// A phone stopped ringing.
    RingStop,
    /// A phone's message lamp went on or off (MODEL: FXS-19).
    Lamp(bool),
    /// The battery a phone sees appeared or disappeared.
    PhoneBattery(bool),
    /// The polarity a phone sees changed (`true` = reversed, MODEL: FXS-11).
    PhonePolarity(bool),
    /// Equipment went off-hook (`true`) or on-hook.
    Hook(bool),
    /// A PSTN line changed call state (name of the new state).
    Line(&'static str),
    /// A PSTN exchange received a dialled digit.
    Digit(char),
    /// A PSTN line's battery went on or off.
    LineBattery(bool),
    /// A PSTN line reversed polarity (`true` = now reversed).
    LinePolarity(bool),
    /// A PRI/BRI far end received a D-channel frame of this many bytes.
    FarEndFrame(usize),
    /// A BRI port's layer-1 state changed (register 0x30 state nibble).
    Layer1(u8),
    /// A LED changed (`led` index as the card numbers them, on/off).
    Led {
        /// LED selector.
        led: u8,
        /// New state.
        on: bool,
    },
    /// A PSTN line's ring voltage went on or off (cadence bursts, MODEL: EQ-4).
    LineRinging(bool),
    /// A PSTN line started sending caller ID (MODEL: EQ-4).
    CallerIdSent,
    /// A phone decoded an on-hook caller-ID message (MODEL: EQ-2).
    CallerId {
        /// Calling number (empty if absent).
        number: String,
        /// Calling name (empty if absent).
        name: String,
    },
    /// The device's sync mode changed (name).
    Sync(&'static str),
}

/// One entry of the event log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Device time of the event.
    pub at: Instant,
    /// The port concerned, if any.
    pub port: Option<PortRef>,
    /// What happened.
    pub kind: EventKind,
}

/// Bounded event log; the oldest entries are dropped (and counted) when full.
#[derive(Debug, Clone, Default)]
pub(crate) struct EventLog {
    events: VecDeque<Event>,
    limit: usize,
    pub(crate) dropped: u64,
}

impl EventLog {
    pub(crate) fn new(limit: usize) -> Self {
        Self { events: VecDeque::new(), limit, dropped: 0 }
    }

    pub(crate) fn push(&mut self, at: Instant, port: Option<PortRef>, kind: EventKind) {
        if self.limit == 0 {
            self.dropped += 1;
            return;
        }
        if self.events.len() >= self.limit {
            self.events.pop_front();
            self.dropped += 1;
        }
        self.events.push_back(Event { at, port, kind });
    }

    pub(crate) fn pop(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Event> {
        self.events.iter()
    }
}
