//! [`Driver`]: the devices, their run loops, and the PBX-facing API (see the crate doc).

use std::ops::RangeInclusive;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::thread::JoinHandle;

use crossbeam_channel::Sender;
use xpp_bringup::{BringUpConfig, BringUpResult, FirmwareSet, Ready, RunOptions};
use xpp_proto::Instant;
use xpp_proto::mgmt::{OwnedReply, Request};
use xpp_proto::wire::SyncState;
use xpp_span::dahdi::{Alarms, HookCmd, Law, Sig};
use xpp_span::hook::{HookMode, HookOutcome};
use xpp_span::pcm::{Chunk, LinearChunk};
use xpp_span::span::UnitSetup;
use xpp_span::sysconf::{self, Applied, ConfErrors, SystemConf};
use xpp_span::xbus::{BusSetup, ChanError, Numbering, SetupError, XbusCore, XbusStats};
use xpp_usb::{Clock, Transport};

use crate::election::{self, Timing};
use crate::error::DriverError;
use crate::event::{DeviceId, DriverEvent, Receiver};
use crate::info::{ChanInfo, DeviceStats, SpanInfo, chan_info};
use crate::options::{DriverOptions, HOOK_WAIT};
use crate::run_loop;
use crate::shared::{DeviceShared, Devices};
use crate::target::Target;

/// How a device's run loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DeviceEnd {
    /// The device went away.
    Removed,
    /// Closed through the driver.
    Closed,
}

/// The bus setup a bring-up established: each unit's descriptor, present ports and PRI
/// protocol, and the sync state the device reported.
pub fn bus_setup(r: &BringUpResult) -> BusSetup {
    let units = r
        .units
        .iter()
        .map(|u| {
            let mut s = UnitSetup::new(u.descriptor);
            s.present = u.present;
            s.pri_protocol = u.pri_protocol;
            s
        })
        .collect();
    BusSetup { units, sync: r.sync }
}

/// The driver: devices and their run loops, and the PBX-facing API. See the module doc.
// Decision: one time source for every device's core (on real hardware the wall clock); the
// devices' own clocks only show in their tick cadence.
pub struct Driver {
    clock: Arc<dyn Clock>,
    options: DriverOptions,
    devices: Devices,
    timing: Arc<Timing>,
    threads: Mutex<Vec<Option<JoinHandle<()>>>>,
    tx: Sender<DriverEvent>,
    rx: Receiver<DriverEvent>,
}

impl core::fmt::Debug for Driver {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Driver")
            .field("options", &self.options)
            .field("devices", &self.devices().len())
            .finish()
    }
}

impl Driver {
    /// A driver without devices whose cores take their time from `clock`.
    pub fn new(clock: impl Clock + 'static, options: DriverOptions) -> Self {
        // Decision: unbounded event channel — a PBX that does not read events must not stall
        // the run loop (the per-channel queues already bound what one channel can pile up).
        let (tx, rx) = crossbeam_channel::unbounded();
        Self {
            clock: Arc::new(clock),
            options,
            devices: Arc::new(RwLock::new(Vec::new())),
            timing: Arc::new(Timing::new()),
            threads: Mutex::new(Vec::new()),
            tx,
            rx,
        }
    }

    /// The event channel (every clone receives from the same queue: one consumer per event).
    pub fn events(&self) -> Receiver<DriverEvent> {
        self.rx.clone()
    }

    /// The driver's current time.
    pub fn now(&self) -> Instant {
        self.clock.now()
    }

    /// Brings a device up ([`xpp_bringup::bring_up`] on the driver's clock, progress on the
    /// event channel) and attaches it.
    pub fn open<T: Transport + 'static>(
        &self,
        open: impl FnMut() -> Option<T>,
        config: BringUpConfig,
        firmware: FirmwareSet,
        run: RunOptions,
    ) -> Result<DeviceId, DriverError> {
        let tx = self.tx.clone();
        let ready = xpp_bringup::bring_up(open, &*self.clock, config, firmware, run, |e| {
            // Decision: unsolicited packets of the bring-up are not replayed into the core;
            // the core re-reads every FXS hook state when it is built.
            if !matches!(e, xpp_bringup::Event::Unsolicited { .. }) {
                let _ = tx.send(DriverEvent::BringUp(e.clone()));
            }
        })?;
        self.attach(ready)
    }

    /// Opens the device `target` names, brings it up on the driver's clock and attaches it:
    /// the way in without generics (C callers, command-line tools; `Box<dyn Transport>`
    /// underneath). After the first open the device is looked for by its bus path
    /// ([`Target::pinned`]), which its renumerations during bring-up do not change. A device
    /// that cannot be opened at all fails at once with [`DriverError::Open`]; one that goes
    /// away during bring-up fails as [`DriverError::BringUp`] when the phase times out.
    pub fn open_target(
        &self,
        target: &Target,
        config: BringUpConfig,
        firmware: FirmwareSet,
        run: RunOptions,
    ) -> Result<DeviceId, DriverError> {
        let first = target.open().map_err(DriverError::Open)?;
        let pinned = target.pinned(first.info());
        let mut first = Some(first);
        let open = move || {
            first.take().or_else(|| match pinned.open() {
                Ok(t) => Some(t),
                Err(e) => {
                    log::debug!("{pinned}: {e}");
                    None
                }
            })
        };
        self.open(open, config, firmware, run)
    }

    /// Attaches a device that is up (its transport with IN transfers possibly queued) and
    /// starts its run loop.
    pub fn attach<T: Transport + 'static>(&self, ready: Ready<T>) -> Result<DeviceId, DriverError> {
        let now = self.clock.now();
        let setup = bus_setup(&ready.result);
        let mut devices = self.devices.write().unwrap_or_else(PoisonError::into_inner);
        let id = DeviceId(devices.len());
        // DAHDI's automatic assignment: the first free numbers among the devices in use, so a
        // device that comes back (re-plug, TwinStar jump) gets its old numbers again.
        let (nspans, nchans) = XbusCore::numbers_needed(&setup)?;
        let taken: Vec<_> = devices
            .iter()
            .filter(|d| d.lock().alive)
            .map(|d| (d.spans.clone(), d.channels.clone()))
            .collect();
        let mut numbering = Numbering::first_fit(nspans, nchans, &taken).ok_or(SetupError::TooMany)?;
        let mut core = XbusCore::new(now, id.0 as u8, &setup, &mut numbering)?;
        if self.options.configure_defaults {
            core.configure_defaults(now);
        }
        // One device's numbers are consecutive (Numbering's decision): ranges, not lists.
        let span_of = |s: Option<&xpp_span::span::Span>| s.map_or(0, |s| s.spanno());
        let spans = span_of(core.spans().first())..=span_of(core.spans().last());
        let first = core.channels().first().map_or(0, |c| c.channo());
        let last = core.channels().last().map_or(0, |c| c.channo());
        let channels = first..=last;
        let has_mgmt = ready.transport.info().interface(xpp_usb::ep::MGMT_INTERFACE).is_some();
        let shared =
            Arc::new(DeviceShared::new(id, core, ready.result, channels.clone(), spans.clone(), has_mgmt));
        let handle = run_loop::spawn(
            ready.transport,
            shared.clone(),
            self.clock.clone(),
            self.tx.clone(),
            self.options,
            run_loop::Coord { devices: self.devices.clone(), timing: self.timing.clone() },
        )?;
        devices.push(shared);
        self.threads.lock().unwrap_or_else(PoisonError::into_inner).push(Some(handle));
        drop(devices);
        self.reelect();
        let _ = self.tx.send(DriverEvent::DeviceReady { device: id, spans, channels });
        Ok(id)
    }

    fn device(&self, id: DeviceId) -> Result<Arc<DeviceShared>, DriverError> {
        let devices = self.devices.read().unwrap_or_else(PoisonError::into_inner);
        devices.get(id.0).cloned().ok_or(DriverError::NoSuchDevice(id))
    }

    /// The devices whose spans and channels are listed: every live one, and a removed one
    /// until a live device took its numbers.
    fn listed_devices(&self) -> Vec<Arc<DeviceShared>> {
        let devices = self.devices.read().unwrap_or_else(PoisonError::into_inner).clone();
        let alive: Vec<bool> = devices.iter().map(|d| d.lock().alive).collect();
        let overlaps = |a: &DeviceShared, b: &DeviceShared| {
            let overlap = |x: &RangeInclusive<u32>, y: &RangeInclusive<u32>| {
                x.start() <= y.end() && y.start() <= x.end()
            };
            overlap(&a.channels, &b.channels) || overlap(&a.spans, &b.spans)
        };
        devices
            .iter()
            .enumerate()
            .filter(|&(i, d)| {
                alive[i] || !devices.iter().enumerate().any(|(j, o)| alive[j] && overlaps(d, o))
            })
            .map(|(_, d)| d.clone())
            .collect()
    }

    /// The device `has` a number: the live one if there is one (numbers of a removed device
    /// are reused), else the latest removed one (whose channels answer REMOVED/ENODEV).
    fn device_with(&self, has: impl Fn(&DeviceShared) -> bool) -> Option<Arc<DeviceShared>> {
        let devices = self.devices.read().unwrap_or_else(PoisonError::into_inner);
        let mut matching = devices.iter().rev().filter(|d| has(d));
        let latest = matching.next()?;
        if latest.lock().alive {
            return Some(latest.clone());
        }
        Some(matching.find(|d| d.lock().alive).unwrap_or(latest).clone())
    }

    fn device_of_chan(&self, channo: u32) -> Result<Arc<DeviceShared>, DriverError> {
        self.device_with(|d| d.channels.contains(&channo)).ok_or(DriverError::NoSuchChannel(channo))
    }

    fn device_of_span(&self, spanno: u32) -> Result<Arc<DeviceShared>, DriverError> {
        self.device_with(|d| d.spans.contains(&spanno)).ok_or(DriverError::NoSuchSpan(spanno))
    }

    // ----- enumeration -----

    /// The devices, in attach order.
    pub fn devices(&self) -> Vec<DeviceId> {
        self.devices.read().unwrap_or_else(PoisonError::into_inner).iter().map(|d| d.id).collect()
    }

    /// What the bring-up of `device` found (its timeline, units, firmware stage...).
    pub fn bring_up_result(&self, device: DeviceId) -> Result<BringUpResult, DriverError> {
        Ok(self.device(device)?.result.clone())
    }

    /// Every span, in span-number order.
    pub fn spans(&self) -> Vec<SpanInfo> {
        let mut out = Vec::new();
        for d in self.listed_devices() {
            let st = d.lock();
            out.extend(st.core.spans().iter().map(|s| SpanInfo {
                device: d.id,
                spanno: s.spanno(),
                name: s.name().to_owned(),
                desc: s.desc().to_owned(),
                spantype: s.spantype(),
                deflaw: s.deflaw(),
                basechan: s.basechan(),
                channels: s.channels(),
                alarms: s.alarms(),
                is_digital: s.is_digital(),
            }));
        }
        out.sort_by_key(|s| s.spanno);
        out
    }

    /// Every channel, in channel-number order.
    pub fn channels(&self) -> Vec<ChanInfo> {
        let mut out = Vec::new();
        for d in self.listed_devices() {
            let st = d.lock();
            out.extend(st.core.channels().iter().map(|c| chan_info(d.id, c)));
        }
        out.sort_by_key(|c| c.channo);
        out
    }

    /// One channel.
    pub fn channel(&self, channo: u32) -> Result<ChanInfo, DriverError> {
        let d = self.device_of_chan(channo)?;
        let st = d.lock();
        st.core.channel(channo).map(|c| chan_info(d.id, c)).ok_or(DriverError::NoSuchChannel(channo))
    }

    /// The alarm word of span `spanno`.
    pub fn alarms(&self, spanno: u32) -> Result<Alarms, DriverError> {
        let d = self.device_of_span(spanno)?;
        let st = d.lock();
        st.core.span(spanno).map(|s| s.alarms()).ok_or(DriverError::NoSuchSpan(spanno))
    }

    /// Counters of `device`'s bus.
    pub fn stats(&self, device: DeviceId) -> Result<XbusStats, DriverError> {
        Ok(self.device(device)?.lock().core.stats())
    }

    /// USB-level counters of `device`'s run loop: failed data IN transfers, halts cleared,
    /// backoffs ([`DeviceStats`]).
    pub fn device_stats(&self, device: DeviceId) -> Result<DeviceStats, DriverError> {
        Ok(self.device(device)?.lock().link)
    }

    /// Whether `device`'s run loop is running (not removed, not closed).
    pub fn is_running(&self, device: DeviceId) -> Result<bool, DriverError> {
        Ok(self.device(device)?.lock().alive)
    }

    /// Host ticks run on `device` so far.
    pub fn tick_count(&self, device: DeviceId) -> Result<u64, DriverError> {
        Ok(self.device(device)?.lock().tick)
    }

    // ----- configuration and signalling -----

    /// CHANCONFIG: signalling `sig` on `channo`.
    pub fn configure_chan(&self, channo: u32, sig: Sig) -> Result<(), DriverError> {
        let d = self.device_of_chan(channo)?;
        let now = self.clock.now();
        d.lock().core.configure_chan(now, channo, sig)?;
        Ok(())
    }

    /// Every channel of every device with its natural signalling
    /// ([`XbusCore::configure_defaults`]).
    pub fn configure_defaults(&self) {
        let devices = self.devices.read().unwrap_or_else(PoisonError::into_inner).clone();
        for d in devices {
            let now = self.clock.now();
            d.lock().core.configure_defaults(now);
        }
    }

    /// Applies a `system.conf` to the running devices the way `dahdi_cfg` does
    /// ([`SystemConf::apply`]: validated as a whole against every running device's spans and
    /// channels, applied only if valid; errors at `file:line:column`). `file` names the file
    /// in errors.
    // Decision: every running device's core is locked for the call, in device order (the
    // only place holding more than one core lock; the run loops hold one lock at a time, so
    // no lock cycle), so the file is validated and applied against one consistent state.
    // Removed or closed devices take no part: their channels no longer exist, as in DAHDI.
    pub fn apply_system_conf(&self, file: &str, conf: &SystemConf) -> Result<Applied, ConfErrors> {
        let devices = self.devices.read().unwrap_or_else(PoisonError::into_inner).clone();
        let mut guards: Vec<_> = devices.iter().map(|d| d.lock()).filter(|st| st.alive).collect();
        let now = self.clock.now();
        let applied = conf.apply(file, now, guards.iter_mut().map(|st| &mut st.core))?;
        drop(guards);
        // `span=` lines may have changed timing priorities.
        self.reelect();
        Ok(applied)
    }

    /// Reads and parses `path` ([`sysconf::parse_file`]) and applies it
    /// ([`Driver::apply_system_conf`]).
    pub fn load_system_conf(&self, path: &std::path::Path) -> Result<Applied, ConfErrors> {
        let conf = sysconf::parse_file(path)?;
        self.apply_system_conf(&path.display().to_string(), &conf)
    }

    /// DAHDI_HOOK on `channo` (ONHOOK, OFFHOOK, RING, FLASH...).
    ///
    /// With [`HookMode::NonBlocking`] a wink/flash/start returns [`HookOutcome::InProgress`]
    /// and HOOKCOMPLETE is queued when it ends. With [`HookMode::Blocking`] the call waits,
    /// tick by tick, until it has ended (as DAHDI's blocking ioctl does) and returns
    /// [`HookOutcome::Done`]; the wait is bounded by [`HOOK_WAIT`] ([`DriverError::Timeout`])
    /// and ends early if the device is removed.
    pub fn set_hook(&self, channo: u32, cmd: HookCmd, mode: HookMode) -> Result<HookOutcome, DriverError> {
        let d = self.device_of_chan(channo)?;
        let now = self.clock.now();
        let outcome = d.lock().core.set_hook(now, channo, cmd, mode)?;
        if mode == HookMode::NonBlocking || outcome != HookOutcome::InProgress {
            return Ok(outcome);
        }
        let end = std::time::Instant::now() + HOOK_WAIT;
        loop {
            let left = end.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Err(DriverError::Timeout);
            }
            let st = d.wait_next_tick(left)?;
            let busy = st.core.channel(channo).is_some_and(|c| c.chan().hook().is_tx_busy());
            if !busy {
                return Ok(HookOutcome::Done);
            }
        }
    }

    /// Sets a digital span's timing priority (`span=` second field: 0 never master, else
    /// lower wins) and re-runs the master election; `false` if no running device has the span.
    pub fn set_timing_priority(&self, spanno: u32, priority: u8) -> Result<(), DriverError> {
        let d = self.device_of_span(spanno)?;
        if !d.lock().core.set_timing_priority(spanno, priority) {
            return Err(DriverError::NoSuchSpan(spanno));
        }
        self.reelect();
        Ok(())
    }

    /// Re-runs the master-timing election over the devices and applies it (see
    /// [the module doc](crate#timing-master)); the driver does this itself when a device is
    /// attached, removed or closed, and when a configuration changes timing priorities.
    pub fn reelect(&self) {
        election::reelect_all(&self.devices, &self.timing);
    }

    /// The device elected timing master (SYNC_SOURCE AB; the others follow it through their
    /// PLL), if any device runs.
    pub fn sync_master(&self) -> Option<DeviceId> {
        self.timing.master()
    }

    /// Counters of `device`'s PLL drift loop (cycles, skipped cycles, lost ticks, last
    /// offset).
    pub fn drift_stats(&self, device: DeviceId) -> Result<xpp_span::sync::DriftStats, DriverError> {
        Ok(self.device(device)?.lock().core.drift_loop().stats())
    }

    /// The sync mode `device` last reported (SYNC_REPLY).
    pub fn sync_state(&self, device: DeviceId) -> Result<SyncState, DriverError> {
        Ok(self.device(device)?.lock().core.sync_state())
    }

    // ----- audio -----

    /// The chunk `channo` received in the device's last tick (non-blocking).
    pub fn read_chunk(&self, channo: u32, chunk: &mut Chunk) -> Result<(), DriverError> {
        let d = self.device_of_chan(channo)?;
        d.lock().core.read_chunk(channo, chunk)?;
        Ok(())
    }

    /// The chunk `channo` sends in the device's next tick (non-blocking; an unwritten
    /// channel sends silence).
    pub fn write_chunk(&self, channo: u32, chunk: &Chunk) -> Result<(), DriverError> {
        let d = self.device_of_chan(channo)?;
        d.lock().core.write_chunk(channo, chunk)?;
        Ok(())
    }

    /// [`read_chunk`](Self::read_chunk) as 16-bit linear samples (DAHDI's SETLINEAR).
    pub fn read_chunk_linear(&self, channo: u32, samples: &mut LinearChunk) -> Result<(), DriverError> {
        let d = self.device_of_chan(channo)?;
        d.lock().core.read_linear(channo, samples)?;
        Ok(())
    }

    /// [`write_chunk`](Self::write_chunk) from 16-bit linear samples (DAHDI's SETLINEAR).
    pub fn write_chunk_linear(&self, channo: u32, samples: &LinearChunk) -> Result<(), DriverError> {
        let d = self.device_of_chan(channo)?;
        d.lock().core.write_linear(channo, samples)?;
        Ok(())
    }

    /// Sets the law of `channo`'s chunks (DAHDI's SETLAW): [`Law::Default`] is the span's
    /// `deflaw`; chunks are converted between it and the hardware's law.
    pub fn set_law(&self, channo: u32, law: Law) -> Result<(), DriverError> {
        let d = self.device_of_chan(channo)?;
        d.lock().core.set_law(channo, law)?;
        Ok(())
    }

    /// Waits (up to `timeout`) for the next tick of `channo`'s device, then reads the chunk
    /// it received.
    pub fn read_chunk_blocking(
        &self,
        channo: u32,
        chunk: &mut Chunk,
        timeout: std::time::Duration,
    ) -> Result<(), DriverError> {
        let d = self.device_of_chan(channo)?;
        let st = d.wait_next_tick(timeout)?;
        st.core.read_chunk(channo, chunk)?;
        Ok(())
    }

    /// Waits (up to `timeout`) for the next tick of `channo`'s device, then sets the chunk
    /// `channo` sends in the tick after it: a writer calling this in a loop hands over one
    /// chunk per tick, paced by the device (DAHDI's blocking `write()` with a one-chunk
    /// buffer).
    pub fn write_chunk_blocking(
        &self,
        channo: u32,
        chunk: &Chunk,
        timeout: std::time::Duration,
    ) -> Result<(), DriverError> {
        let d = self.device_of_chan(channo)?;
        let mut st = d.wait_next_tick(timeout)?;
        st.core.write_chunk(channo, chunk)?;
        Ok(())
    }

    /// Waits (up to `timeout`) for the next tick of `device`; its number. In
    /// [`Pacing::Lockstep`](crate::Pacing::Lockstep) this also tells the loop the caller is done with the current tick.
    pub fn wait_tick(&self, device: DeviceId, timeout: std::time::Duration) -> Result<u64, DriverError> {
        let d = self.device(device)?;
        let st = d.wait_next_tick(timeout)?;
        Ok(st.tick)
    }

    // ----- stop -----

    /// Sends one management (MPP) request to a running device, beside its data stream, and
    /// waits (at most `timeout`, real time) for the answer: the reply (an ACK for the
    /// requests answered by one), or `None` for a request the device does not answer (RENUM,
    /// RESET, HALF_RESET, TWS_PORT_SET: `None` once it was sent). Requests of several callers
    /// are sent one at a time in call order (docs/reference/mpp-twinstar-firmware.md §2.5).
    /// The lines keep running meanwhile. A refused request, a bad reply or no reply within
    /// the session's reply timeout (2 s of the driver's clock) is [`DriverError::Mgmt`].
    pub fn mgmt_request(
        &self,
        device: DeviceId,
        request: Request<'_>,
        timeout: std::time::Duration,
    ) -> Result<Option<OwnedReply>, DriverError> {
        let d = self.device(device)?;
        if !d.has_mgmt {
            return Err(DriverError::NoMgmtInterface(device));
        }
        let now = self.clock.now();
        let mut st = d.lock();
        if !st.alive {
            return Err(ChanError::Removed.into());
        }
        let id = st.mgmt.session.send(now, request)?;
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(outcome) = st.mgmt.take(id) {
                return outcome.map_err(DriverError::from);
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if !st.alive || left.is_zero() {
                st.mgmt.abandon(id);
                return Err(if st.alive { DriverError::Timeout } else { ChanError::Removed.into() });
            }
            st = d.cond.wait_timeout(st, left).unwrap_or_else(PoisonError::into_inner).0;
        }
    }

    /// The driver's clock.
    pub(crate) fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Puts an event on the driver's event channel.
    pub(crate) fn send_event(&self, event: DriverEvent) {
        // A dropped receiver only means nobody listens.
        let _ = self.tx.send(event);
    }

    /// Blocks until `device`'s run loop has ended (the device was removed or closed), at most
    /// `timeout`; whether it has.
    pub fn wait_gone(&self, device: DeviceId, timeout: std::time::Duration) -> Result<bool, DriverError> {
        self.device(device)?;
        Ok(self.device_end(device, timeout).is_some())
    }

    /// How `device`'s run loop ended, waiting at most `timeout` for it (`None`: still running).
    /// An unknown device counts as removed.
    pub(crate) fn device_end(&self, device: DeviceId, timeout: std::time::Duration) -> Option<DeviceEnd> {
        let Ok(d) = self.device(device) else { return Some(DeviceEnd::Removed) };
        let st = d.lock();
        let (st, _) =
            d.cond.wait_timeout_while(st, timeout, |s| s.alive).unwrap_or_else(PoisonError::into_inner);
        if st.alive {
            None
        } else if d.stop.load(Ordering::SeqCst) {
            Some(DeviceEnd::Closed)
        } else {
            Some(DeviceEnd::Removed)
        }
    }

    /// Orderly stop of one device: SYNC_SOURCE NONE goes out, every channel gets REMOVED,
    /// [`DriverEvent::DeviceClosed`], and its thread is joined. A removed device's thread is
    /// just joined.
    pub fn close_device(&self, device: DeviceId) -> Result<(), DriverError> {
        let d = self.device(device)?;
        d.stop.store(true, Ordering::SeqCst);
        d.cond.notify_all();
        let handle = self
            .threads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(device.0)
            .and_then(Option::take);
        if let Some(h) = handle
            && h.join().is_err()
        {
            log::error!("{device}: run loop panicked");
        }
        Ok(())
    }

    /// Closes every device ([`Driver::close_device`]).
    pub fn close(self) {
        self.close_all();
    }

    fn close_all(&self) {
        for id in self.devices() {
            let _ = self.close_device(id);
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.close_all();
    }
}
