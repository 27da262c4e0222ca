//! What the driver, the run loops and the election share of each device.

use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, RwLock};

use xpp_bringup::BringUpResult;
use xpp_span::xbus::{ChanError, XbusCore, XbusStats};

use crate::error::DriverError;
use crate::event::DeviceId;
use crate::info::DeviceStats;
use crate::mgmt::MgmtLane;

/// The devices, shared by the driver and the run loops (which move their device to the gone
/// list and re-run the election when it goes).
pub(crate) type Devices = Arc<RwLock<DeviceTable>>;

/// How a device's run loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DeviceEnd {
    /// The device went away (or failed for good).
    Removed,
    /// Closed through the driver.
    Closed,
}

/// The driver's devices: the present ones whole, the gone ones as a small record.
// Decision: a device whose run loop ended keeps no core, transport or buffers (they went
// with the loop; a re-plugged device used to leak about 200 KB each time), only its id, its
// numbers (so its channels answer REMOVED until a device takes them) and its last counters.
// Ids are never reused, so an id held by a PBX never names another device.
#[derive(Debug, Default)]
pub(crate) struct DeviceTable {
    /// Devices attached and not yet moved to `gone`, in id order.
    pub(crate) present: Vec<Arc<DeviceShared>>,
    /// Devices whose run loop ended, in id order.
    pub(crate) gone: Vec<GoneDevice>,
    /// The next id to hand out.
    pub(crate) next_id: usize,
}

impl DeviceTable {
    /// The present device `id`.
    pub(crate) fn present(&self, id: DeviceId) -> Option<&Arc<DeviceShared>> {
        self.present.iter().find(|d| d.id == id)
    }

    /// The gone device `id`.
    pub(crate) fn gone(&self, id: DeviceId) -> Option<&GoneDevice> {
        self.gone.iter().find(|g| g.id == id)
    }

    /// Moves device `id` from the present to the gone list (its run loop ended `end`).
    pub(crate) fn retire(&mut self, id: DeviceId, end: DeviceEnd) {
        let Some(i) = self.present.iter().position(|d| d.id == id) else { return };
        let d = self.present.remove(i);
        let st = d.lock();
        let g = GoneDevice {
            id,
            end,
            spans: d.spans.clone(),
            channels: d.channels.clone(),
            ticks: st.tick,
            link: st.link,
            bus: st.core.stats(),
        };
        drop(st);
        let at = self.gone.partition_point(|o| o.id < id);
        self.gone.insert(at, g);
    }
}

/// What remains of a device whose run loop ended.
#[derive(Debug, Clone)]
pub(crate) struct GoneDevice {
    pub(crate) id: DeviceId,
    pub(crate) end: DeviceEnd,
    pub(crate) spans: RangeInclusive<u32>,
    pub(crate) channels: RangeInclusive<u32>,
    /// Ticks it ran.
    pub(crate) ticks: u64,
    /// Its run loop's last USB-level counters.
    pub(crate) link: DeviceStats,
    /// Its bus core's last counters.
    pub(crate) bus: XbusStats,
}

/// What the run loop and the PBX calls share, behind [`DeviceShared::state`].
#[derive(Debug)]
pub(crate) struct DevState {
    pub(crate) core: XbusCore,
    /// Ticks published to blocking callers (after the tick's events were sent).
    pub(crate) tick: u64,
    /// Lockstep: the last tick a blocking caller finished with.
    pub(crate) acked: u64,
    /// The run loop is running.
    pub(crate) alive: bool,
    /// Warm standby: the bus is registered for a device that is not on this host (no run
    /// loop; [`Driver::register_standby`](crate::Driver::register_standby)).
    pub(crate) standby: bool,
    /// A surprise removal puts the bus back in standby instead of removing it (a device
    /// attached onto a standby registration: TwinStar, it may jump back).
    pub(crate) keep_standby: bool,
    /// What the device's last bring-up found (`None` for a standby never attached).
    pub(crate) result: Option<BringUpResult>,
    /// The management (MPP) lane beside the data stream.
    pub(crate) mgmt: MgmtLane,
    /// The run loop's USB-level counters.
    pub(crate) link: DeviceStats,
}

impl DevState {
    /// Whether its spans and channels are listed and take PBX calls: running, or in
    /// standby.
    pub(crate) const fn is_listed(&self) -> bool {
        self.alive || self.standby
    }
}

/// One device of the driver.
#[derive(Debug)]
pub(crate) struct DeviceShared {
    pub(crate) id: DeviceId,
    pub(crate) state: Mutex<DevState>,
    /// Signalled on every published tick, every acknowledgement and when the loop ends.
    pub(crate) cond: Condvar,
    pub(crate) stop: AtomicBool,
    /// First and last channel numbers.
    pub(crate) channels: RangeInclusive<u32>,
    /// Span numbers.
    pub(crate) spans: RangeInclusive<u32>,
    /// The device has the management interface (1) open, so the MPP lane can be used (set
    /// before its run loop starts).
    pub(crate) has_mgmt: AtomicBool,
}

impl DeviceShared {
    pub(crate) fn new(
        id: DeviceId,
        core: XbusCore,
        result: Option<BringUpResult>,
        channels: RangeInclusive<u32>,
        spans: RangeInclusive<u32>,
        has_mgmt: bool,
    ) -> Self {
        let standby = result.is_none();
        Self {
            id,
            state: Mutex::new(DevState {
                core,
                tick: 0,
                acked: 0,
                alive: !standby,
                standby,
                keep_standby: standby,
                result,
                mgmt: MgmtLane::default(),
                link: DeviceStats::default(),
            }),
            cond: Condvar::new(),
            stop: AtomicBool::new(false),
            channels,
            spans,
            has_mgmt: AtomicBool::new(has_mgmt),
        }
    }

    /// Whether the device's management lane can be used.
    pub(crate) fn has_mgmt(&self) -> bool {
        self.has_mgmt.load(Ordering::Acquire)
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, DevState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Acknowledges the current tick (lockstep) and waits for the next one.
    pub(crate) fn wait_next_tick(
        &self,
        timeout: std::time::Duration,
    ) -> Result<MutexGuard<'_, DevState>, DriverError> {
        let mut st = self.lock();
        if !st.alive && !st.standby {
            return Err(ChanError::Removed.into());
        }
        let seen = st.tick;
        st.acked = st.acked.max(seen);
        self.cond.notify_all();
        // A standby bus waits too: its device may arrive (and tick) within the timeout.
        let (st, _) = self
            .cond
            .wait_timeout_while(st, timeout, |s| (s.alive || s.standby) && s.tick == seen)
            .unwrap_or_else(PoisonError::into_inner);
        if st.tick != seen {
            Ok(st)
        } else if !st.alive && !st.standby {
            Err(ChanError::Removed.into())
        } else {
            Err(DriverError::Timeout)
        }
    }
}
