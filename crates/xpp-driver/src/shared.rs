//! What the driver, the run loops and the election share of each device.

use std::ops::RangeInclusive;
use std::sync::atomic::AtomicBool;
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
    /// The management (MPP) lane beside the data stream.
    pub(crate) mgmt: MgmtLane,
    /// The run loop's USB-level counters.
    pub(crate) link: DeviceStats,
}

/// One device of the driver.
#[derive(Debug)]
pub(crate) struct DeviceShared {
    pub(crate) id: DeviceId,
    pub(crate) state: Mutex<DevState>,
    /// Signalled on every published tick, every acknowledgement and when the loop ends.
    pub(crate) cond: Condvar,
    pub(crate) stop: AtomicBool,
    pub(crate) result: BringUpResult,
    /// First and last channel numbers.
    pub(crate) channels: RangeInclusive<u32>,
    /// Span numbers.
    pub(crate) spans: RangeInclusive<u32>,
    /// The device has the management interface (1) open, so the MPP lane can be used.
    pub(crate) has_mgmt: bool,
}

impl DeviceShared {
    pub(crate) fn new(
        id: DeviceId,
        core: XbusCore,
        result: BringUpResult,
        channels: RangeInclusive<u32>,
        spans: RangeInclusive<u32>,
        has_mgmt: bool,
    ) -> Self {
        Self {
            id,
            state: Mutex::new(DevState {
                core,
                tick: 0,
                acked: 0,
                alive: true,
                mgmt: MgmtLane::default(),
                link: DeviceStats::default(),
            }),
            cond: Condvar::new(),
            stop: AtomicBool::new(false),
            result,
            channels,
            spans,
            has_mgmt,
        }
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
        if !st.alive {
            return Err(ChanError::Removed.into());
        }
        let seen = st.tick;
        st.acked = st.acked.max(seen);
        self.cond.notify_all();
        let (st, _) = self
            .cond
            .wait_timeout_while(st, timeout, |s| s.alive && s.tick == seen)
            .unwrap_or_else(PoisonError::into_inner);
        if st.tick != seen {
            Ok(st)
        } else if !st.alive {
            Err(ChanError::Removed.into())
        } else {
            Err(DriverError::Timeout)
        }
    }
}
