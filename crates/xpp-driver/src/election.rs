//! The master-timing election across the driver's devices (docs/reference/xpp-protocol.md §7.4).
//!
//! [`Timing::reelect`] runs [`SyncElection`] over every device's
//! [`XbusCore::sync_candidate`] and applies the result ([`XbusCore::apply_election`]): the
//! master gets SYNC_SOURCE(AB), the others their default (PLL, or AB with a PRI/BRI unit). It
//! runs when a device is attached, removed or closed, and after a configuration that can
//! change timing priorities. Per tick, the master's run loop publishes its
//! [`XbusCore::tick_sample`] ([`Timing::publish`]) and every other loop hands the latest one
//! to its core's PLL drift loop ([`Timing::reference_for`] then
//! [`XbusCore::set_sync_reference`]), allocation-free.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use xpp_proto::{Duration, Instant};
use xpp_span::sync::{Candidate, SyncElection, TickSample};

use crate::event::DeviceId;
use crate::shared::{DeviceShared, Devices};

/// The nominal tick period, µs.
const TICK_US: u64 = 1000;

/// Re-runs the election over the current device list (taken without holding its lock).
pub(crate) fn reelect_all(devices: &Devices, timing: &Timing) {
    let list = devices.read().unwrap_or_else(PoisonError::into_inner).present.clone();
    timing.reelect(&list);
}

/// No master (in [`Timing::master`]).
const NONE: usize = usize::MAX;

/// The election state shared by the driver and its run loops.
#[derive(Debug)]
pub(crate) struct Timing {
    /// The elected master; serializes elections (held across the per-device core locks, one
    /// at a time).
    election: Mutex<Option<DeviceId>>,
    /// The master's device id, [`NONE`] if none (read per tick without a lock).
    master: AtomicUsize,
    /// The master's latest tick, tagged with the master it came from.
    sample: Mutex<Option<(usize, TickSample)>>,
}

impl Timing {
    pub(crate) fn new() -> Self {
        Self { election: Mutex::new(None), master: AtomicUsize::new(NONE), sample: Mutex::new(None) }
    }

    /// The elected master.
    pub(crate) fn master(&self) -> Option<DeviceId> {
        match self.master.load(Ordering::Acquire) {
            NONE => None,
            i => Some(DeviceId(i)),
        }
    }

    /// Re-runs the election over `devices` (the present ones, in id order) and applies it to
    /// every running device. Locks each device's core in turn (never two at once).
    // Decision: the result is applied to every running device on every election, not only
    // when the master changed: `apply_election` sends SYNC_SOURCE only when the device's
    // reported mode differs, so a newly attached device gets its mode and the others are
    // left alone.
    pub(crate) fn reelect(&self, devices: &[Arc<DeviceShared>]) {
        let mut elected = self.election.lock().unwrap_or_else(PoisonError::into_inner);
        let cands: Vec<Candidate> = devices
            .iter()
            .map(|d| {
                let st = d.lock();
                if st.alive { st.core.sync_candidate() } else { Candidate::default() }
            })
            .collect();
        // Decision: the result is kept as a device id, not a position: the list loses the
        // devices that went, so positions move.
        let master = SyncElection::elect(&cands).and_then(|i| devices.get(i)).map(|d| d.id);
        let changed = *elected != master;
        if changed {
            log::info!("sync master: {:?} -> {master:?}", *elected);
            *elected = master;
            self.master.store(master.map_or(NONE, |m| m.0), Ordering::Release);
            *self.sample.lock().unwrap_or_else(PoisonError::into_inner) = None;
        }
        for d in devices {
            let mut st = d.lock();
            if !st.alive {
                continue;
            }
            let is_master = master == Some(d.id);
            st.core.apply_election(is_master);
            if changed && !is_master {
                // A new reference: the drift loop starts over.
                st.core.set_sync_reference(None);
            }
        }
    }

    /// The master's run loop: its latest tick.
    pub(crate) fn publish(&self, id: DeviceId, sample: TickSample) {
        if self.master.load(Ordering::Acquire) == id.0 {
            *self.sample.lock().unwrap_or_else(PoisonError::into_inner) = Some((id.0, sample));
        }
    }

    /// Whether `id` is the master (its loop publishes its ticks).
    pub(crate) fn is_master(&self, id: DeviceId) -> bool {
        self.master.load(Ordering::Acquire) == id.0
    }

    /// The reference tick for `id`'s drift loop: the master's latest tick, `None` when `id` is
    /// the master, there is none, or it has not ticked since it was elected.
    ///
    /// The sample is brought forward to `now` on the master's nominal 1 ms grid: each run
    /// loop is its own thread, so the master's latest published tick may lag `now` by a tick
    /// or two of scheduling. (The drift loop itself filters out scheduling delay and pairs
    /// the two buses' ticks with hysteresis, see [`DriftLoop::step`](xpp_span::sync::DriftLoop::step),
    /// so this is only the closest estimate, not what keeps the count difference steady.)
    // Decision: extrapolate with the nominal period (the master's crystal error over a
    // few ms is well under a µs) rather than change the §7.4 loop, which expects the
    // reference count of the same instant, as the reference driver samples it in its
    // interrupt handler.
    pub(crate) fn reference_for(&self, id: DeviceId, now: Instant) -> Option<TickSample> {
        let master = self.master.load(Ordering::Acquire);
        if master == NONE || master == id.0 {
            return None;
        }
        let s = *self.sample.lock().unwrap_or_else(PoisonError::into_inner);
        let (_, t) = s.filter(|&(m, _)| m == master)?;
        let behind = now.saturating_duration_since(t.at).total_micros() / TICK_US;
        Some(TickSample {
            count: t.count.saturating_add(behind),
            at: t.at + Duration::from_micros(behind.saturating_mul(TICK_US)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_is_the_masters_latest_tick_brought_forward_on_its_grid() {
        let t = Timing::new();
        let at = Instant::from_micros(10_000);
        assert_eq!(t.reference_for(DeviceId(1), at), None, "no master");
        t.master.store(0, Ordering::Release);
        t.publish(DeviceId(1), TickSample { count: 99, at });
        assert_eq!(t.reference_for(DeviceId(1), at), None, "only the master publishes");
        t.publish(DeviceId(0), TickSample { count: 7, at });
        assert_eq!(t.reference_for(DeviceId(0), at), None, "the master has no reference");
        let r = |us| t.reference_for(DeviceId(1), Instant::from_micros(us));
        assert_eq!(r(10_000), Some(TickSample { count: 7, at }));
        assert_eq!(r(10_999), Some(TickSample { count: 7, at }));
        assert_eq!(r(12_300), Some(TickSample { count: 9, at: Instant::from_micros(12_000) }));
        assert_eq!(r(5_000), Some(TickSample { count: 7, at }), "never backwards");
        // A new master: the old one's sample is not used.
        t.master.store(2, Ordering::Release);
        assert_eq!(r(10_000), None);
    }
}
