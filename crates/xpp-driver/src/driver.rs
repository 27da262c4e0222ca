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
pub(crate) use crate::shared::DeviceEnd;
use crate::shared::{DeviceShared, DeviceTable, Devices};
use crate::target::Target;

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
    /// Run-loop threads not yet joined (a removed device's is joined at the next attach).
    threads: Mutex<Vec<(DeviceId, JoinHandle<()>)>>,
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
            devices: Arc::new(RwLock::new(DeviceTable::default())),
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
        let ready = self.bring_up(open, config, firmware, run)?;
        self.attach(ready)
    }

    /// [`xpp_bringup::bring_up`] on the driver's clock, progress on the event channel.
    fn bring_up<T: Transport + 'static>(
        &self,
        open: impl FnMut() -> Option<T>,
        config: BringUpConfig,
        firmware: FirmwareSet,
        run: RunOptions,
    ) -> Result<Ready<T>, DriverError> {
        let tx = self.tx.clone();
        Ok(xpp_bringup::bring_up(open, &*self.clock, config, firmware, run, |e| {
            // Decision: unsolicited packets of the bring-up are not replayed into the core;
            // the core re-reads every FXS hook state when it is built.
            if !matches!(e, xpp_bringup::Event::Unsolicited { .. }) {
                let _ = tx.send(DriverEvent::BringUp(e.clone()));
            }
        })?)
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
        let ready = self.bring_up_target(target, config, firmware, run)?;
        self.attach(ready)
    }

    /// [`Driver::open_target`] onto the standby registration `standby`
    /// ([`Driver::attach_standby`]).
    pub fn open_target_standby(
        &self,
        target: &Target,
        standby: DeviceId,
        config: BringUpConfig,
        firmware: FirmwareSet,
        run: RunOptions,
    ) -> Result<DeviceId, DriverError> {
        let ready = self.bring_up_target(target, config, firmware, run)?;
        self.attach_standby(standby, ready)
    }

    fn bring_up_target(
        &self,
        target: &Target,
        config: BringUpConfig,
        firmware: FirmwareSet,
        run: RunOptions,
    ) -> Result<Ready<Box<dyn Transport>>, DriverError> {
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
        self.bring_up(open, config, firmware, run)
    }

    /// Attaches a device that is up (its transport with IN transfers possibly queued) and
    /// starts its run loop.
    pub fn attach<T: Transport + 'static>(&self, ready: Ready<T>) -> Result<DeviceId, DriverError> {
        self.join_finished();
        self.attach_new(ready)
    }

    /// Warm standby: registers the spans and channels of a device that is not on this host
    /// yet, from `setup` (the layout it had when a host last saw it, e.g.
    /// [`BusSetup::from_text`]), numbered as it would be at attach. The spans are in RED
    /// alarm; the channels take configuration ([`Driver::configure_chan`],
    /// [`Driver::apply_system_conf`], SETLAW) so the PBX can open and configure them, while
    /// audio and hook calls answer [`ErrorCode::Standby`](crate::ErrorCode::Standby) (EBUSY).
    /// [`Driver::attach_standby`] (or [`Driver::open_target_standby`]) makes it run with that
    /// configuration when the device arrives, under the same id and numbers; when it leaves
    /// again its spans go back to standby instead of away. [`DriverEvent::DeviceStandby`]
    /// is sent, then the spans' alarms. [`Driver::close_device`] unregisters it.
    pub fn register_standby(&self, setup: &BusSetup) -> Result<DeviceId, DriverError> {
        let now = self.clock.now();
        let mut devices = self.devices.write().unwrap_or_else(PoisonError::into_inner);
        let id = DeviceId(devices.next_id);
        let mut numbering = Self::numbering(&devices, setup)?;
        let mut core = XbusCore::new_standby(now, id.0 as u8, setup, &mut numbering)?;
        if self.options.configure_defaults {
            core.configure_defaults(now);
        }
        let events: Vec<_> = std::iter::from_fn(|| core.poll_event()).collect();
        let (spans, channels) = Self::ranges(&core);
        let shared = Arc::new(DeviceShared::new(id, core, None, channels.clone(), spans.clone(), false));
        devices.present.push(shared);
        devices.next_id += 1;
        drop(devices);
        log::info!("{id}: standby, spans {spans:?}, channels {channels:?}");
        let _ = self.tx.send(DriverEvent::DeviceStandby { device: id, spans, channels });
        self.forward_bus_events(id, now, events);
        Ok(id)
    }

    /// Attaches a device that is up onto the standby registration `standby`
    /// ([`Driver::register_standby`]): the bus runs under the standby's id and numbers with
    /// the configuration the PBX gave it, NOALARM on its channels; a device found running and
    /// verified keeps its line state. When the device's units differ from the registration
    /// (another unit was fitted), the registration is closed (its channels get REMOVED) and
    /// the device is attached as a new one, with a warning; a `standby` that is not (or no
    /// longer) in standby is ignored the same way. The device's id.
    pub fn attach_standby<T: Transport + 'static>(
        &self,
        standby: DeviceId,
        ready: Ready<T>,
    ) -> Result<DeviceId, DriverError> {
        self.join_finished();
        // The loop of the device's previous stay may still be finishing (it ended when the
        // device left); its record is the one taken over. (A running record is not waited
        // for: it is not in standby, so the device is attached as a new one below.)
        if self.device(standby).is_ok_and(|d| d.lock().standby) {
            self.join_thread(standby);
        }
        let now = self.clock.now();
        let setup = bus_setup(&ready.result);
        let devices = self.devices.write().unwrap_or_else(PoisonError::into_inner);
        let Some(shared) = devices.present(standby).cloned() else {
            drop(devices);
            log::warn!("{standby}: no standby registration; attaching as a new device");
            return self.attach_new(ready);
        };
        let mut st = shared.lock();
        if !st.standby {
            drop(st);
            drop(devices);
            log::warn!("{standby}: not in standby; attaching as a new device");
            return self.attach_new(ready);
        }
        match st.core.activate(now, &setup, ready.result.verified) {
            Ok(()) => {}
            Err(SetupError::LayoutChanged) => {
                drop(st);
                drop(devices);
                log::warn!(
                    "{standby}: the device's units differ from its standby registration; registering it anew"
                );
                self.close_standby(&shared);
                return self.attach_new(ready);
            }
            Err(e) => return Err(e.into()),
        }
        if ready.result.verified {
            st.core.adopt_line_state();
        }
        st.standby = false;
        st.alive = true;
        st.result = Some(ready.result);
        st.mgmt = crate::mgmt::MgmtLane::default();
        let has_mgmt = ready.transport.info().interface(xpp_usb::ep::MGMT_INTERFACE).is_some();
        shared.has_mgmt.store(has_mgmt, Ordering::Release);
        shared.stop.store(false, Ordering::SeqCst);
        // DeviceReady first, then the take-over's own events (NOALARM...), then the loop's:
        // a PBX sees the device back before anything of its new stay.
        let events: Vec<_> = std::iter::from_fn(|| st.core.poll_event()).collect();
        drop(st);
        let (spans, channels) = (shared.spans.clone(), shared.channels.clone());
        let _ = self.tx.send(DriverEvent::DeviceReady { device: standby, spans, channels });
        self.forward_bus_events(standby, now, events);
        let handle = match self.spawn(ready.transport, &shared) {
            Ok(h) => h,
            Err(e) => {
                // No loop: back to standby, as the device left.
                let mut st = shared.lock();
                st.core.handle_left(self.clock.now());
                st.alive = false;
                st.standby = true;
                drop(st);
                let (spans, channels) = (shared.spans.clone(), shared.channels.clone());
                let _ = self.tx.send(DriverEvent::DeviceStandby { device: standby, spans, channels });
                return Err(e);
            }
        };
        self.threads.lock().unwrap_or_else(PoisonError::into_inner).push((standby, handle));
        drop(devices);
        self.reelect();
        log::info!("{standby}: standby taken over");
        Ok(standby)
    }

    /// When `device` leaves (a surprise removal: a TwinStar jump, an unplug), its spans stay
    /// registered in standby instead of going away, as for a device attached with
    /// [`Driver::attach_standby`]; an orderly close still ends it.
    pub fn keep_standby(&self, device: DeviceId) -> Result<(), DriverError> {
        self.device(device)?.lock().keep_standby = true;
        Ok(())
    }

    /// Attaches a device under a new id and the first free numbers.
    fn attach_new<T: Transport + 'static>(&self, ready: Ready<T>) -> Result<DeviceId, DriverError> {
        let now = self.clock.now();
        let setup = bus_setup(&ready.result);
        let mut devices = self.devices.write().unwrap_or_else(PoisonError::into_inner);
        let id = DeviceId(devices.next_id);
        let mut numbering = Self::numbering(&devices, &setup)?;
        let mut core = XbusCore::new(now, id.0 as u8, &setup, &mut numbering)?;
        if self.options.configure_defaults {
            core.configure_defaults(now);
        }
        if ready.result.verified {
            core.adopt_line_state();
        }
        let (spans, channels) = Self::ranges(&core);
        let has_mgmt = ready.transport.info().interface(xpp_usb::ep::MGMT_INTERFACE).is_some();
        let shared = Arc::new(DeviceShared::new(
            id,
            core,
            Some(ready.result),
            channels.clone(),
            spans.clone(),
            has_mgmt,
        ));
        let handle = self.spawn(ready.transport, &shared)?;
        devices.present.push(shared);
        devices.next_id += 1;
        self.threads.lock().unwrap_or_else(PoisonError::into_inner).push((id, handle));
        drop(devices);
        self.reelect();
        let _ = self.tx.send(DriverEvent::DeviceReady { device: id, spans, channels });
        Ok(id)
    }

    /// Where a bus of `setup` is numbered: DAHDI's automatic assignment, the first free
    /// numbers among the devices in use (running or in standby), so a device that comes back
    /// (re-plug, TwinStar jump) gets its old numbers again.
    fn numbering(devices: &DeviceTable, setup: &BusSetup) -> Result<Numbering, DriverError> {
        let (nspans, nchans) = XbusCore::numbers_needed(setup)?;
        let taken: Vec<_> = devices
            .present
            .iter()
            .filter(|d| d.lock().is_listed())
            .map(|d| (d.spans.clone(), d.channels.clone()))
            .collect();
        Ok(Numbering::first_fit(nspans, nchans, &taken).ok_or(SetupError::TooMany)?)
    }

    /// A bus's span and channel numbers (one device's are consecutive, Numbering's decision).
    fn ranges(core: &XbusCore) -> (RangeInclusive<u32>, RangeInclusive<u32>) {
        let span_of = |s: Option<&xpp_span::span::Span>| s.map_or(0, |s| s.spanno());
        let spans = span_of(core.spans().first())..=span_of(core.spans().last());
        let first = core.channels().first().map_or(0, |c| c.channo());
        let last = core.channels().last().map_or(0, |c| c.channo());
        (spans, first..=last)
    }

    fn spawn<T: Transport + 'static>(
        &self,
        transport: T,
        shared: &Arc<DeviceShared>,
    ) -> Result<JoinHandle<()>, DriverError> {
        Ok(run_loop::spawn(
            transport,
            shared.clone(),
            self.clock.clone(),
            self.tx.clone(),
            self.options,
            run_loop::Coord { devices: self.devices.clone(), timing: self.timing.clone() },
        )?)
    }

    /// Unregisters a bus in standby: its spans go away (NOTOPEN, REMOVED on the channels),
    /// [`DriverEvent::DeviceClosed`], and it joins the gone devices.
    fn close_standby(&self, shared: &Arc<DeviceShared>) {
        let now = self.clock.now();
        let mut st = shared.lock();
        if !st.standby {
            return;
        }
        st.core.shutdown();
        st.standby = false;
        let events: Vec<_> = std::iter::from_fn(|| st.core.poll_event()).collect();
        drop(st);
        shared.stop.store(true, Ordering::SeqCst);
        let id = shared.id;
        self.forward_bus_events(id, now, events);
        self.devices.write().unwrap_or_else(PoisonError::into_inner).retire(id, DeviceEnd::Closed);
        shared.cond.notify_all();
        let _ = self.tx.send(DriverEvent::DeviceClosed { device: id });
    }

    /// Joins the run-loop thread of `device`, if one is left.
    fn join_thread(&self, device: DeviceId) {
        let handle = {
            let mut threads = self.threads.lock().unwrap_or_else(PoisonError::into_inner);
            threads.iter().position(|(id, _)| *id == device).map(|i| threads.swap_remove(i).1)
        };
        if let Some(h) = handle
            && h.join().is_err()
        {
            log::error!("{device}: run loop panicked");
        }
    }

    /// Bus events taken from a core outside its run loop (standby registration, take-over,
    /// unregistration) onto the event channel, as the run loop forwards its own.
    fn forward_bus_events(&self, device: DeviceId, now: Instant, events: Vec<xpp_span::xbus::XbusEvent>) {
        for e in events {
            if let Some(ev) = run_loop::forward(device, now, e) {
                let _ = self.tx.send(ev);
            }
        }
    }

    /// Joins the run-loop threads that have ended.
    fn join_finished(&self) {
        let finished: Vec<_> = {
            let mut threads = self.threads.lock().unwrap_or_else(PoisonError::into_inner);
            let (done, running) = threads.drain(..).partition(|(_, h)| h.is_finished());
            *threads = running;
            done
        };
        for (id, h) in finished {
            if h.join().is_err() {
                log::error!("{id}: run loop panicked");
            }
        }
    }

    /// The present device `id`; a gone one is [`ChanError::Removed`].
    fn device(&self, id: DeviceId) -> Result<Arc<DeviceShared>, DriverError> {
        let devices = self.devices.read().unwrap_or_else(PoisonError::into_inner);
        match devices.present(id) {
            Some(d) => Ok(d.clone()),
            None if devices.gone(id).is_some() => Err(ChanError::Removed.into()),
            None => Err(DriverError::NoSuchDevice(id)),
        }
    }

    /// What `f` answers for the present device `id`, or `gone` for a gone one.
    fn device_or_gone<R>(
        &self,
        id: DeviceId,
        f: impl FnOnce(&DeviceShared) -> R,
        gone: impl FnOnce(&crate::shared::GoneDevice) -> R,
    ) -> Result<R, DriverError> {
        let d = {
            let devices = self.devices.read().unwrap_or_else(PoisonError::into_inner);
            match (devices.present(id), devices.gone(id)) {
                (Some(d), _) => d.clone(),
                (None, Some(g)) => return Ok(gone(g)),
                (None, None) => return Err(DriverError::NoSuchDevice(id)),
            }
        };
        Ok(f(&d))
    }

    /// The devices whose spans and channels are listed: the running ones.
    fn listed_devices(&self) -> Vec<Arc<DeviceShared>> {
        let devices = self.devices.read().unwrap_or_else(PoisonError::into_inner).present.clone();
        devices.into_iter().filter(|d| d.lock().is_listed()).collect()
    }

    /// The device that `has` a number: the running one if there is one (numbers of a
    /// removed device are reused), else one whose loop is ending (its channels answer
    /// REMOVED/ENODEV). `Err(Removed)` if only a gone device had it, `Ok(None)` if none did.
    fn device_with(
        &self,
        has: impl Fn(&RangeInclusive<u32>, &RangeInclusive<u32>) -> bool,
    ) -> Result<Option<Arc<DeviceShared>>, DriverError> {
        let devices = self.devices.read().unwrap_or_else(PoisonError::into_inner);
        let mut matching = devices.present.iter().rev().filter(|d| has(&d.spans, &d.channels));
        if let Some(latest) = matching.next() {
            if latest.lock().is_listed() {
                return Ok(Some(latest.clone()));
            }
            return Ok(Some(matching.find(|d| d.lock().is_listed()).unwrap_or(latest).clone()));
        }
        if devices.gone.iter().any(|g| has(&g.spans, &g.channels)) {
            return Err(ChanError::Removed.into());
        }
        Ok(None)
    }

    fn device_of_chan(&self, channo: u32) -> Result<Arc<DeviceShared>, DriverError> {
        self.device_with(|_, c| c.contains(&channo))?.ok_or(DriverError::NoSuchChannel(channo))
    }

    fn device_of_span(&self, spanno: u32) -> Result<Arc<DeviceShared>, DriverError> {
        self.device_with(|s, _| s.contains(&spanno))?.ok_or(DriverError::NoSuchSpan(spanno))
    }

    // ----- enumeration -----

    /// The devices, in attach order: the present ones and those that went (removed or
    /// closed, whose ids stay valid and are never reused).
    pub fn devices(&self) -> Vec<DeviceId> {
        let devices = self.devices.read().unwrap_or_else(PoisonError::into_inner);
        let mut ids: Vec<DeviceId> =
            devices.present.iter().map(|d| d.id).chain(devices.gone.iter().map(|g| g.id)).collect();
        ids.sort_unstable();
        ids
    }

    /// What the bring-up of `device` found (its timeline, units, firmware stage...); a device
    /// that went keeps no bring-up result (`ChanError::Removed`).
    pub fn bring_up_result(&self, device: DeviceId) -> Result<BringUpResult, DriverError> {
        self.device(device)?.lock().result.clone().ok_or(DriverError::Standby(device))
    }

    /// Every span of the running devices, in span-number order.
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
                timing_priority: s.timing_priority(),
                line_setup: st.core.span_setup(s.spanno()),
                started: st.core.span_started(s.spanno()),
            }));
        }
        out.sort_by_key(|s| s.spanno);
        out
    }

    /// Every channel of the running devices, in channel-number order.
    pub fn channels(&self) -> Vec<ChanInfo> {
        let mut out = Vec::new();
        for d in self.listed_devices() {
            let st = d.lock();
            out.extend(st.core.channels().iter().map(|c| chan_info(d.id, c)));
        }
        out.sort_by_key(|c| c.channo);
        out
    }

    /// One channel; a number that only a device that went had is `ChanError::Removed`.
    pub fn channel(&self, channo: u32) -> Result<ChanInfo, DriverError> {
        let d = self.device_of_chan(channo)?;
        let st = d.lock();
        st.core.channel(channo).map(|c| chan_info(d.id, c)).ok_or(DriverError::NoSuchChannel(channo))
    }

    /// The alarm word of span `spanno`; NOTOPEN for a span only a device that went had (as a
    /// removed device's span reports).
    pub fn alarms(&self, spanno: u32) -> Result<Alarms, DriverError> {
        let d = match self.device_of_span(spanno) {
            Err(DriverError::Chan(ChanError::Removed)) => return Ok(Alarms::NOTOPEN),
            r => r?,
        };
        let st = d.lock();
        st.core.span(spanno).map(|s| s.alarms()).ok_or(DriverError::NoSuchSpan(spanno))
    }

    /// Counters of `device`'s bus; after the device went, their last values.
    pub fn stats(&self, device: DeviceId) -> Result<XbusStats, DriverError> {
        self.device_or_gone(device, |d| d.lock().core.stats(), |g| g.bus)
    }

    /// USB-level counters of `device`'s run loop: failed data IN transfers, halts cleared,
    /// backoffs ([`DeviceStats`]).
    /// The counters stay readable after the device went.
    pub fn device_stats(&self, device: DeviceId) -> Result<DeviceStats, DriverError> {
        self.device_or_gone(device, |d| d.lock().link, |g| g.link)
    }

    /// Whether `device`'s run loop is running (not removed, not closed).
    pub fn is_running(&self, device: DeviceId) -> Result<bool, DriverError> {
        self.device_or_gone(device, |d| d.lock().alive, |_| false)
    }

    /// Host ticks run on `device` so far (all it ran, once it went).
    pub fn tick_count(&self, device: DeviceId) -> Result<u64, DriverError> {
        self.device_or_gone(device, |d| d.lock().tick, |g| g.ticks)
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
        let devices = self.devices.read().unwrap_or_else(PoisonError::into_inner).present.clone();
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
        let devices = self.devices.read().unwrap_or_else(PoisonError::into_inner).present.clone();
        let mut guards: Vec<_> = devices.iter().map(|d| d.lock()).filter(|st| st.is_listed()).collect();
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
        {
            let mut st = d.lock();
            let digital = st.core.span(spanno).is_some_and(xpp_span::span::Span::is_digital);
            if digital {
                // A PRI port's master-mode bit follows the priority (LIM0).
                st.core.configure_span(spanno, None, priority).map_err(xpp_span::Error::from)?;
            } else if !st.core.set_timing_priority(spanno, priority) {
                return Err(DriverError::NoSuchSpan(spanno));
            }
        }
        self.reelect();
        Ok(())
    }

    // ----- digital spans -----

    /// SPANCONFIG on a digital span: its timing priority and, on a PRI span, the line
    /// configuration (`None`: keep the current one), programmed at once
    /// ([`XbusCore::configure_span`]); the timing election runs again. A configuration the
    /// span's protocol refuses changes nothing.
    pub fn configure_span(
        &self,
        spanno: u32,
        setup: Option<xpp_span::xbus::LineSetup>,
        timing_priority: u8,
    ) -> Result<(), DriverError> {
        let d = self.device_of_span(spanno)?;
        d.lock().core.configure_span(spanno, setup, timing_priority).map_err(xpp_span::Error::from)?;
        self.reelect();
        Ok(())
    }

    /// Span startup ([`XbusCore::start_span`]: on a PRI span T1 clear-channel marking and the
    /// transmitter on), after its channels are configured.
    pub fn start_span(&self, spanno: u32) -> Result<(), DriverError> {
        let d = self.device_of_span(spanno)?;
        let now = self.clock.now();
        d.lock().core.start_span(now, spanno).map_err(xpp_span::Error::from)?;
        Ok(())
    }

    /// The oldest frame received on HDLC channel `channo` (a D-channel configured `dchan` /
    /// `hdlcfcs`), into `buf`: in FCS mode with its two received FCS bytes at the end
    /// (DAHDI's convention; truncated to `buf`, the rest dropped). Its length, or `None` when
    /// none waits. Non-blocking.
    pub fn read_frame(&self, channo: u32, buf: &mut [u8]) -> Result<Option<usize>, DriverError> {
        let d = self.device_of_chan(channo)?;
        Ok(d.lock().core.read_frame(channo, buf)?)
    }

    /// [`Driver::read_frame`], waiting tick by tick (up to `timeout`) for a frame:
    /// [`DriverError::Timeout`] when none came.
    pub fn read_frame_blocking(
        &self,
        channo: u32,
        buf: &mut [u8],
        timeout: std::time::Duration,
    ) -> Result<usize, DriverError> {
        let d = self.device_of_chan(channo)?;
        let end = std::time::Instant::now() + timeout;
        loop {
            if let Some(n) = d.lock().core.read_frame(channo, buf)? {
                return Ok(n);
            }
            let left = end.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Err(DriverError::Timeout);
            }
            drop(d.wait_next_tick(left)?);
        }
    }

    /// Queues a frame on HDLC channel `channo`; in FCS mode its last two bytes are
    /// placeholders the FCS replaces (DAHDI's convention). `ChanError::Full` (EAGAIN) while
    /// every transmit slot is taken, `ChanError::BadFrame` for a frame too long or too short.
    pub fn write_frame(&self, channo: u32, frame: &[u8]) -> Result<(), DriverError> {
        let d = self.device_of_chan(channo)?;
        Ok(d.lock().core.write_frame(channo, frame)?)
    }

    /// DAHDI's HDLC_RATE on channel `channo` (56 kbit/s: the HDLC bits in the top seven bits
    /// of each timeslot byte; 64: all eight, the default). Kept on the channel for its soft
    /// HDLC now or later; taken in standby too.
    pub fn set_hdlc_rate(&self, channo: u32, rate: xpp_span::xbus::HdlcRate) -> Result<(), DriverError> {
        let d = self.device_of_chan(channo)?;
        Ok(d.lock().core.set_hdlc_rate(channo, rate)?)
    }

    /// Counters of HDLC channel `channo` (frames each way, bad FCS, aborts, overruns).
    pub fn hdlc_stats(&self, channo: u32) -> Result<xpp_span::xbus::HdlcStats, DriverError> {
        let d = self.device_of_chan(channo)?;
        Ok(d.lock().core.hdlc_stats(channo)?)
    }

    /// Every channel's last received chunk of span `spanno` in one call (channel
    /// `basechan + i` into `out[i]`, in its law; channels without audio and HDLC channels are
    /// left as they are): one lock per span and tick instead of one per channel. The number
    /// of channels written.
    pub fn read_span_chunks(&self, spanno: u32, out: &mut [Chunk]) -> Result<usize, DriverError> {
        let d = self.device_of_span(spanno)?;
        Ok(d.lock().core.read_span_chunks(spanno, out)?)
    }

    /// Every channel's chunk of span `spanno` for the next tick in one call (`chunks[i]` to
    /// channel `basechan + i`). The number of channels set.
    pub fn write_span_chunks(&self, spanno: u32, chunks: &[Chunk]) -> Result<usize, DriverError> {
        let d = self.device_of_span(spanno)?;
        Ok(d.lock().core.write_span_chunks(spanno, chunks)?)
    }

    /// DAHDI's SETTXBITS: the ABCD bits (A in bit 3) sent for CAS channel `channo`.
    pub fn set_tx_bits(&self, channo: u32, abcd: u8) -> Result<(), DriverError> {
        let d = self.device_of_chan(channo)?;
        let now = self.clock.now();
        Ok(d.lock().core.set_tx_bits(now, channo, abcd)?)
    }

    /// DAHDI's GETRXBITS: the ABCD bits last received for CAS channel `channo` (`None`
    /// before any).
    pub fn rx_bits(&self, channo: u32) -> Result<Option<u8>, DriverError> {
        let d = self.device_of_chan(channo)?;
        Ok(d.lock().core.rx_bits(channo)?)
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
        let now = self.clock.now();
        let mut st = d.lock();
        if st.standby {
            return Err(DriverError::Standby(device));
        }
        if !d.has_mgmt() {
            return Err(DriverError::NoMgmtInterface(device));
        }
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
        self.device_or_gone(device, |_| (), |_| ())?;
        Ok(self.device_end(device, timeout).is_some())
    }

    /// How `device`'s run loop ended, waiting at most `timeout` for it (`None`: still running).
    /// An unknown device counts as removed.
    pub(crate) fn device_end(&self, device: DeviceId, timeout: std::time::Duration) -> Option<DeviceEnd> {
        let d = match self.device_or_gone(device, |_| None, |g| Some(g.end)) {
            Ok(Some(end)) => return Some(end),
            Ok(None) => match self.device(device) {
                Ok(d) => d,
                // It went meanwhile.
                Err(_) => return self.device_or_gone(device, |_| None, |g| Some(g.end)).ok().flatten(),
            },
            Err(_) => return Some(DeviceEnd::Removed),
        };
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
        match self.device(device) {
            Ok(d) => {
                d.stop.store(true, Ordering::SeqCst);
                d.cond.notify_all();
                // A loop that ended into standby is joined first, then the standby closed.
                self.join_thread(device);
                if d.lock().standby {
                    self.close_standby(&d);
                    self.reelect();
                }
            }
            // Gone already: only its thread may be left to join.
            Err(DriverError::Chan(ChanError::Removed)) => {}
            Err(e) => return Err(e),
        }
        self.join_thread(device);
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
