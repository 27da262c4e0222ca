//! What the driver reports: device ids and the events of its channel.

use std::ops::RangeInclusive;

use xpp_proto::Instant;
use xpp_proto::wire::SyncState;
use xpp_span::dahdi::{Alarms, Event};

/// The receiving end of [`Driver::events`](crate::Driver::events).
// Decision: crossbeam-channel's receiver is part of the API on purpose, not wrapped: a PBX can
// wait on the driver's events and its own channels in one `select!`, and clone it. The crate
// is re-exported as `xpp_driver::channel`, so callers use the same version as the driver.
pub use crossbeam_channel::Receiver;

/// A device of the driver, numbered from 0 in attach order (also its bus number).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeviceId(pub usize);

impl core::fmt::Display for DeviceId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "device {}", self.0)
    }
}

/// What the driver reports on its event channel.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DriverEvent {
    /// Bring-up progress of a device being opened ([`Driver::open`](crate::Driver::open)); the device has no id
    /// yet.
    // Decision: ids are handed out at attach, after a successful bring-up, so that a failed
    // bring-up leaves no hole in the bus numbering; concurrent opens interleave here.
    BringUp(xpp_bringup::Event),
    /// A device is attached and its run loop started.
    DeviceReady {
        /// The device.
        device: DeviceId,
        /// Its spans' numbers.
        spans: RangeInclusive<u32>,
        /// Its first and last channel numbers.
        channels: RangeInclusive<u32>,
    },
    /// A DAHDI event of a channel (as GETEVENT would return it).
    // Decision: the run loop pops every channel's queue into this channel (one consumer
    // model); the handle has no per-channel GETEVENT, so no event is seen twice or lost
    // between two readers.
    Chan {
        /// The channel's device.
        device: DeviceId,
        /// Global channel number.
        channo: u32,
        /// The event.
        event: Event,
        /// When the run loop delivered it.
        at: Instant,
    },
    /// A span's alarm word changed between "no alarm" and "some alarm".
    SpanAlarms {
        /// The span's device.
        device: DeviceId,
        /// Span number.
        spanno: u32,
        /// The new word.
        alarms: Alarms,
    },
    /// The device reported its sync mode (SYNC_REPLY).
    Sync {
        /// The device.
        device: DeviceId,
        /// What it reported.
        state: SyncState,
    },
    /// The device's data IN endpoint kept failing through every retry (see
    /// [`DeviceStats`](crate::DeviceStats)): the driver gives up on it as if it had been
    /// unplugged, and [`DriverEvent::DeviceRemoved`] follows (a [`Supervisor`](crate::Supervisor)
    /// then opens it again).
    DeviceFailed {
        /// The device.
        device: DeviceId,
        /// The last failure.
        error: xpp_usb::TransferError,
    },
    /// Warm standby: the device's spans and channels are registered (in RED alarm) while the
    /// device is not on this host: after [`Driver::register_standby`](crate::Driver::register_standby),
    /// or when a device attached onto a standby registration left (a TwinStar jump to the
    /// other host; its run loop ended, the channels got ALARM, not REMOVED). The device keeps
    /// its id and numbers; [`DriverEvent::DeviceReady`] follows when it is back.
    DeviceStandby {
        /// The device.
        device: DeviceId,
        /// Its spans' numbers.
        spans: RangeInclusive<u32>,
        /// Its first and last channel numbers.
        channels: RangeInclusive<u32>,
    },
    /// Surprise removal: every channel got REMOVED, the run loop ended.
    DeviceRemoved {
        /// The device.
        device: DeviceId,
    },
    /// Orderly close: SYNC_SOURCE NONE was sent, every channel got REMOVED, the loop ended.
    DeviceClosed {
        /// The device.
        device: DeviceId,
    },
    /// What this host's TwinStar controller reports ([`TwinStarHost`](crate::TwinStarHost)):
    /// role changes, health, watchdog, hand-overs, failover timelines.
    TwinStar(xpp_twinstar::Event),
}
