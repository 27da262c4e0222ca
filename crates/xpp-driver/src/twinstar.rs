//! TwinStar on a running driver: the sans-IO controller of `xpp-twinstar` wired to this host's
//! devices, the PBX's health check and the hooks.
//!
//! A [`TwinStarHost`] owns one thread. It watches each of its [`Target`]s (a listing, not an
//! open, while the device is elsewhere: the USB buses, or the USB/IP server's device list),
//! tells the controller when a device arrives or leaves, and executes what the controller
//! asks for: a take-over is [`Driver::open_target`] with [`OnRunning::Verify`] (a device
//! found running is verified, not reset, so calls in progress survive), into the target's
//! standby registration when it has one ([`Driver::open_target_standby`],
//! [`TwinStarOptions::layout_dir`]; a device that was here once keeps its spans registered
//! in standby while it is away), a management
//! request goes through the device's MPP lane ([`Driver::mgmt_request`]), a release closes
//! the device's run loop, a health check runs the integrator's check on a worker thread (a
//! hung check counts as failed at the controller's deadline), a hook runs as a process with
//! a time limit. The controller's events reach the PBX as [`DriverEvent::TwinStar`] on the
//! driver's event channel.

use std::path::PathBuf;
use std::process::{Command as Process, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration as StdDuration;

use xpp_bringup::{
    BringUpConfig, BringUpError, Failure, FirmwareSet, OnRunning, Phase as BringUpPhase, RunOptions,
};
use xpp_proto::Duration;
use xpp_twinstar::{Action, Command, Config, Controller, DeviceKey, Event, Hook, Role, Timeline};

use crate::driver::{DeviceEnd, Driver};
use crate::error::DriverError;
use crate::event::{DeviceId, DriverEvent};
use crate::target::Target;
use xpp_span::sysconf::SystemConf;

/// The hook programs a [`TwinStarHost`] runs (dahdi-tools' `twinstar_hook` events).
///
/// Each runs with `ACTION` (`online`, `offline` or `last-resort`), `XPP_TWINSTAR_ROLE`
/// (`master`/`backup`), `XPP_INIT_DIR` ([`Hooks::init_dir`]), and for each device `XBUS_NUM`
/// (two digits) and `XBUS_NAME` (`XBUS-NN`), the way the dahdi-tools hooks receive them
/// (docs/reference/mpp-twinstar-firmware.md §4.6), plus `XPP_TARGET` (the device's target
/// text). It is killed after [`Hooks::timeout`]; its output is logged. A hook never
/// blocks the controller.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Hooks {
    /// Run when the devices came online on this host.
    pub online: Option<PathBuf>,
    /// Run when they left it.
    pub offline: Option<PathBuf>,
    /// Run when the PBX is unhealthy and no backup can take the lines.
    pub last_resort: Option<PathBuf>,
    /// Automatic failback's peer check ([`Action::CheckPeer`]): exit status 0 means the
    /// other host is ready to take the lines back (for example `ssh peer twinstar status
    /// --socket ...`, or a cluster manager's view). Without one, the other port's power
    /// alone, for the hold-down, is taken as ready.
    pub peer_check: Option<PathBuf>,
    /// Longest run of one hook.
    pub timeout: StdDuration,
    /// `XPP_INIT_DIR` in the hooks' environment (dahdi-tools' default, `/usr/share/dahdi`).
    pub init_dir: PathBuf,
}

impl Default for Hooks {
    fn default() -> Self {
        Self {
            online: None,
            offline: None,
            last_resort: None,
            peer_check: None,
            timeout: StdDuration::from_secs(10),
            init_dir: PathBuf::from("/usr/share/dahdi"),
        }
    }
}

/// [`TwinStarHost`] parameters.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TwinStarOptions {
    /// The controller's parameters (health, anti-flap, timeouts).
    pub controller: Config,
    /// How often an absent device is looked for (a listing), and the longest sleep of the
    /// host's thread. When every target is on this machine's USB buses, USB hotplug wakes
    /// the host at once instead and the listing runs once a second (at least), as a safety
    /// net; USB/IP targets are always polled (a bounded listing of the server's devices).
    // Decision: 50 ms: the take-over starts within 50 ms of the device appearing, for one
    // listing (a TCP round trip on USB/IP, a sysfs walk on USB) per target per period.
    pub poll_interval: StdDuration,
    /// Bring-up parameters of a take-over ([`BringUpConfig::on_running`] is set per take-over).
    pub bring_up: BringUpConfig,
    /// Firmware for a device that arrives cold (read and checked before it is needed).
    pub firmware: FirmwareSet,
    /// Bring-up runner parameters.
    pub run: RunOptions,
    /// Longest wait for one management answer.
    pub mpp_timeout: StdDuration,
    /// The hook programs.
    pub hooks: Hooks,
    /// A `system.conf` (its name in errors, and the parsed file), applied to this host's
    /// devices right after each take-over, inside the take-over phase: the standby has it
    /// parsed and checked before any device arrives, so taking over costs no file reading.
    pub system_conf: Option<(String, SystemConf)>,
    /// Warm standby: a folder with one layout file per target ([`layout_file`]:
    /// `<target>.layout`, [`BusSetup::to_text`](xpp_span::xbus::BusSetup::to_text) format). At start,
    /// each target with a layout gets its spans registered in standby
    /// ([`Driver::register_standby`]) and `system_conf` applied to them, so the PBX here can
    /// open its channels before the device comes; a take-over then runs in that
    /// registration ([`Driver::open_target_standby`]). After each take-over the device's
    /// layout is written there (atomically), so a backup learns it from any stay of the
    /// device; the file can also be copied from the other host, which sees the same device.
    /// A layout that does not parse is logged with its `line:column` and not used.
    pub layout_dir: Option<PathBuf>,
}

impl TwinStarOptions {
    /// Defaults, with `firmware` for devices that arrive cold.
    pub fn new(firmware: FirmwareSet) -> Self {
        Self {
            controller: Config::default(),
            poll_interval: StdDuration::from_millis(50),
            bring_up: BringUpConfig::default(),
            firmware,
            run: RunOptions::default(),
            mpp_timeout: StdDuration::from_secs(3),
            hooks: Hooks::default(),
            system_conf: None,
            layout_dir: None,
        }
    }

    /// Sets [`TwinStarOptions::layout_dir`].
    #[must_use]
    pub fn with_layout_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.layout_dir = Some(dir.into());
        self
    }

    /// Sets [`TwinStarOptions::controller`].
    #[must_use]
    pub fn with_controller(mut self, config: Config) -> Self {
        self.controller = config;
        self
    }

    /// Sets [`TwinStarOptions::system_conf`]: `conf` (parsed, e.g. with
    /// [`xpp_span::sysconf::parse_file`]) applied after each take-over, `name` in its errors.
    #[must_use]
    pub fn with_system_conf(mut self, name: impl Into<String>, conf: SystemConf) -> Self {
        self.system_conf = Some((name.into(), conf));
        self
    }

    /// Sets [`TwinStarOptions::hooks`].
    #[must_use]
    pub fn with_hooks(mut self, hooks: Hooks) -> Self {
        self.hooks = hooks;
        self
    }
}

/// What a [`TwinStarHost`] knows now.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TwinStarStatus {
    /// This host's role.
    pub role: Role,
    /// The last health result.
    pub healthy: bool,
    /// Per target, the driver's device while it is attached here.
    pub devices: Vec<Option<DeviceId>>,
    /// Per target, whether the device is on this host's port (listed), taken over or not
    /// yet: a cluster agent's `start` can tell "here, being taken over" from "elsewhere".
    pub present: Vec<bool>,
    /// The last failover's phases on this host.
    pub last_failover: Option<Timeline>,
    /// The controller has stopped ([`Command::Stop`] done).
    pub stopped: bool,
}

/// Where a [`TwinStarHost`] with [`TwinStarOptions::layout_dir`] `dir` keeps `target`'s layout:
/// `dir/<target>.layout` ([`Target::file_stem`]).
pub fn layout_file(dir: &std::path::Path, target: &Target) -> PathBuf {
    dir.join(format!("{}.layout", target.file_stem()))
}

/// The TwinStar controller of this host running on a driver (see the module doc).
#[derive(Debug)]
pub struct TwinStarHost {
    commands: mpsc::Sender<Command>,
    status: Arc<Mutex<TwinStarStatus>>,
    watchers: Watchers,
    quit: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TwinStarHost {
    /// Starts the controller for `targets` (this host's Astribanks, the [`DeviceKey`] of each
    /// is its index) in `role`, with `health` as the PBX's health check (run on a worker
    /// thread, one check at a time).
    pub fn start(
        driver: Arc<Driver>,
        targets: Vec<Target>,
        role: Role,
        health: impl FnMut() -> bool + Send + 'static,
        options: TwinStarOptions,
    ) -> std::io::Result<Self> {
        let (commands, rx) = mpsc::channel();
        let status = Arc::new(Mutex::new(TwinStarStatus {
            role: Role::Backup,
            healthy: true,
            devices: vec![None; targets.len()],
            present: vec![false; targets.len()],
            last_failover: None,
            stopped: false,
        }));
        let quit = Arc::new(AtomicBool::new(false));
        let watchers = Watchers::default();
        let checker = HealthWorker::start(health)?;
        let (peer_tx, peer_results) = mpsc::channel();
        let mut options = options;
        if options.controller.expected_devices == 0 {
            // This host's targets are the installation's units (each host lists them all,
            // through its own port): a unit found alone on the wrong port is moved back.
            options.controller.expected_devices = u32::try_from(targets.len()).unwrap_or(u32::MAX);
        }
        let mut host = Host {
            controller: Controller::new(options.controller),
            slots: targets.into_iter().map(Slot::new).collect(),
            driver,
            options,
            commands: rx,
            checker,
            peer_tx,
            peer_results,
            status: Arc::clone(&status),
            watchers: watchers.clone(),
        };
        commands.send(Command::Start(role)).map_err(std::io::Error::other)?;
        let q = Arc::clone(&quit);
        let thread = std::thread::Builder::new().name("xpp-twinstar".into()).spawn(move || host.run(&q))?;
        Ok(Self { commands, status, watchers, quit, thread: Some(thread) })
    }

    /// Hands the controller a command (a jump, the watchdog on or off, a stop).
    pub fn command(&self, command: Command) {
        let _ = self.commands.send(command);
    }

    /// A copy of every controller event from now on (the driver's event channel has one
    /// consumer, the PBX; tools such as the control socket's `watch` subscribe here). A
    /// receiver that is dropped is forgotten.
    pub fn subscribe(&self) -> mpsc::Receiver<Event> {
        let (tx, rx) = mpsc::channel();
        self.watchers.0.lock().unwrap_or_else(PoisonError::into_inner).push(tx);
        rx
    }

    /// What the host knows now.
    pub fn status(&self) -> TwinStarStatus {
        self.status.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Orderly stop ([`Command::Stop`]: watchdogs disarmed, devices released, never a jump),
    /// waited for at most `timeout`, then the thread is joined.
    pub fn stop(mut self, timeout: StdDuration) {
        self.command(Command::Stop);
        let end = std::time::Instant::now() + timeout;
        while !self.status().stopped && std::time::Instant::now() < end {
            std::thread::sleep(StdDuration::from_millis(5));
        }
        self.shut();
    }

    fn shut(&mut self) {
        self.quit.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for TwinStarHost {
    fn drop(&mut self) {
        self.shut();
    }
}

/// One target of this host.
#[derive(Debug)]
struct Slot {
    target: Target,
    /// Reported to the controller as here.
    here: bool,
    /// The driver's device while attached.
    device: Option<DeviceId>,
    /// Tick count at the take-over, until the first audio is reported.
    audio_from: Option<u64>,
    /// The driver's registration of this target's spans, kept while the device is away
    /// (warm standby; the device runs in it while here).
    standby: Option<DeviceId>,
}

impl Slot {
    const fn new(target: Target) -> Self {
        Self { target, here: false, device: None, audio_from: None, standby: None }
    }

    /// This target's layout file in `dir`.
    fn layout_path(&self, dir: &std::path::Path) -> PathBuf {
        layout_file(dir, &self.target)
    }
}

/// Runs the integrator's health check on its own thread, one at a time.
struct HealthWorker {
    ask: mpsc::Sender<()>,
    results: mpsc::Receiver<bool>,
}

impl HealthWorker {
    fn start(mut health: impl FnMut() -> bool + Send + 'static) -> std::io::Result<Self> {
        let (ask, asked) = mpsc::channel::<()>();
        let (tell, results) = mpsc::channel();
        std::thread::Builder::new().name("xpp-twinstar-health".into()).spawn(move || {
            while asked.recv().is_ok() {
                if tell.send(health()).is_err() {
                    return;
                }
            }
        })?;
        Ok(Self { ask, results })
    }
}

impl std::fmt::Debug for HealthWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HealthWorker")
    }
}

/// The subscribers of [`TwinStarHost::subscribe`].
#[derive(Debug, Clone, Default)]
struct Watchers(Arc<Mutex<Vec<mpsc::Sender<Event>>>>);

struct Host {
    watchers: Watchers,
    controller: Controller,
    slots: Vec<Slot>,
    driver: Arc<Driver>,
    options: TwinStarOptions,
    commands: mpsc::Receiver<Command>,
    checker: HealthWorker,
    /// Peer-check results (automatic failback).
    peer_tx: mpsc::Sender<bool>,
    peer_results: mpsc::Receiver<bool>,
    status: Arc<Mutex<TwinStarStatus>>,
}

/// While some target is on this machine's USB buses: a thread watching USB hotplug that
/// wakes the host's thread at once when an Astribank arrives or leaves, so the listing poll
/// is only a safety net (once a second instead of [`TwinStarOptions::poll_interval`]).
// Decision: hotplug only wakes the host up; the target listing stays the one source of
// truth for "is it here", so a missed or spurious hotplug event cannot lose a device.
#[cfg(feature = "nusb")]
fn start_hotplug(slots: &[Slot], quit: &Arc<AtomicBool>) -> Option<mpsc::Receiver<()>> {
    if !slots.iter().any(|s| !matches!(s.target, Target::UsbIp { .. })) {
        return None;
    }
    let (mut watch, _) = match xpp_usb::backend::nusb::Hotplug::new() {
        Ok(w) => w,
        Err(e) => {
            log::warn!("twinstar: no USB hotplug ({e}); polling the USB buses");
            return None;
        }
    };
    let (tx, rx) = mpsc::channel();
    let quit = Arc::clone(quit);
    let spawned = std::thread::Builder::new().name("xpp-twinstar-hotplug".into()).spawn(move || {
        while !quit.load(Ordering::SeqCst) {
            if let Some(e) = watch.next_event(StdDuration::from_millis(200)) {
                log::debug!("twinstar: hotplug: {e:?}");
                if tx.send(()).is_err() {
                    return;
                }
            }
        }
    });
    match spawned {
        Ok(_) => Some(rx),
        Err(e) => {
            log::warn!("twinstar: hotplug thread: {e}; polling the USB buses");
            None
        }
    }
}

#[cfg(not(feature = "nusb"))]
fn start_hotplug(_: &[Slot], _: &Arc<AtomicBool>) -> Option<mpsc::Receiver<()>> {
    None
}

impl Host {
    fn run(&mut self, quit: &Arc<AtomicBool>) {
        let hotplug = start_hotplug(&self.slots, quit);
        self.register_standby();
        self.watch();
        while !quit.load(Ordering::SeqCst) {
            let now = self.driver.now();
            while let Ok(c) = self.commands.try_recv() {
                self.controller.handle_command(now, c);
            }
            while let Ok(ok) = self.checker.results.try_recv() {
                self.controller.handle_health(self.driver.now(), ok);
            }
            while let Ok(ready) = self.peer_results.try_recv() {
                self.controller.handle_peer_ready(self.driver.now(), ready);
            }
            self.watch();
            let now = self.driver.now();
            if self.controller.poll_timeout().is_some_and(|t| t <= now) {
                self.controller.handle_timeout(now);
            }
            while let Some(a) = self.controller.poll_action() {
                self.execute(a);
            }
            self.publish();
            let now = self.driver.now();
            let interval = match &hotplug {
                // USB/IP targets are still polled at the configured rate.
                Some(_) if self.slots.iter().all(|s| !matches!(s.target, Target::UsbIp { .. })) => {
                    StdDuration::from_secs(1).max(self.options.poll_interval)
                }
                _ => self.options.poll_interval,
            };
            let poll = Duration::from_micros(interval.as_micros().min(u128::from(u64::MAX)) as u64);
            let until = self.controller.poll_timeout().map_or(now + poll, |t| t.min(now + poll));
            match &hotplug {
                // Real USB means the real clock: wait on the hotplug wake-ups instead.
                Some(wake) => {
                    let left = until.saturating_duration_since(self.driver.now());
                    let _ = wake.recv_timeout(StdDuration::from_micros(left.total_micros()));
                    while wake.try_recv().is_ok() {}
                }
                None => self.driver.clock().sleep_until(until),
            }
        }
        // The host ends: the standby registrations of devices that are elsewhere go too
        // (a device here was released by the controller's stop, or stays with the driver).
        for slot in &self.slots {
            if let Some(id) = slot.standby
                && slot.device.is_none()
                && self.driver.device_end(id, StdDuration::ZERO).is_some()
            {
                let _ = self.driver.close_device(id);
            }
        }
    }

    /// Device arrivals, departures and first audio.
    fn watch(&mut self) {
        for i in 0..self.slots.len() {
            let key = DeviceKey(i as u32);
            let now = self.driver.now();
            let slot = &mut self.slots[i];
            if let Some(id) = slot.device {
                match self.driver.device_end(id, StdDuration::ZERO) {
                    None => {
                        if let Some(from) = slot.audio_from
                            && self.driver.tick_count(id).is_ok_and(|t| t > from + 1)
                        {
                            slot.audio_from = None;
                            self.controller.handle_first_audio(now, key);
                        }
                        continue;
                    }
                    // Gone from this host (a jump, an unplug).
                    Some(DeviceEnd::Removed) => {
                        slot.device = None;
                        slot.here = false;
                        self.controller.handle_device_left(now, key);
                        continue;
                    }
                    // Released by us: whether it is still here is the listing's to say.
                    Some(DeviceEnd::Closed) => slot.device = None,
                }
            }
            let present = slot.target.is_present().unwrap_or_else(|e| {
                log::debug!("{}: {e}", slot.target);
                false
            });
            if present != slot.here {
                slot.here = present;
                if present {
                    self.controller.handle_device_arrived(now, key);
                } else {
                    self.controller.handle_device_left(now, key);
                }
            }
        }
    }

    fn execute(&mut self, action: Action) {
        match action {
            Action::TakeOver { device } => self.take_over(device),
            Action::Mpp { device, request } => {
                let Some(id) = self.slot(device).and_then(|s| s.device) else {
                    return self.controller.handle_mpp_failed(self.driver.now(), device, request);
                };
                match self.driver.mgmt_request(id, request.to_request(), self.options.mpp_timeout) {
                    Ok(Some(reply)) => {
                        self.controller.handle_mpp_reply(self.driver.now(), device, request, &reply);
                    }
                    Ok(None) => {}
                    Err(e) => {
                        log::warn!("twinstar: {device:?}: {request:?}: {e}");
                        self.controller.handle_mpp_failed(self.driver.now(), device, request);
                    }
                }
            }
            Action::Release { device } => {
                if let Some(id) = self.slot(device).and_then(|s| s.device) {
                    let _ = self.driver.close_device(id);
                }
            }
            Action::CheckHealth => {
                let _ = self.checker.ask.send(());
            }
            Action::CheckPeer => self.check_peer(),
            Action::RunHook { hook } => self.run_hook(hook),
            other => log::debug!("twinstar: action not handled: {other:?}"),
        }
    }

    fn slot(&self, key: DeviceKey) -> Option<&Slot> {
        self.slots.get(key.0 as usize)
    }

    /// Warm standby at start: each target with a layout file gets its spans registered,
    /// then the `system.conf` is applied to them.
    fn register_standby(&mut self) {
        let Some(dir) = self.options.layout_dir.clone() else { return };
        let mut registered = false;
        for slot in &mut self.slots {
            let path = slot.layout_path(&dir);
            let text = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    log::info!(
                        "twinstar: {}: no layout yet ({}): registered when it arrives",
                        slot.target,
                        path.display()
                    );
                    continue;
                }
                Err(e) => {
                    log::warn!("twinstar: {}: {e}", path.display());
                    continue;
                }
            };
            let setup = match xpp_span::xbus::BusSetup::from_text(&text) {
                Ok(s) => s,
                Err(e) => {
                    log::warn!("twinstar: {}:{e}; not used", path.display());
                    continue;
                }
            };
            match self.driver.register_standby(&setup) {
                Ok(id) => {
                    log::info!("twinstar: {}: standby as {id}", slot.target);
                    slot.standby = Some(id);
                    registered = true;
                }
                Err(e) => log::warn!("twinstar: {}: standby registration: {e}", slot.target),
            }
        }
        if registered
            && let Some((name, conf)) = &self.options.system_conf
            && let Err(e) = self.driver.apply_system_conf(name, conf)
        {
            log::warn!("twinstar: {name} not applied to the standby spans: {e}");
        }
    }

    /// Writes `slot`'s device layout to the layout folder (a temporary file renamed over
    /// the old one, so a crash never leaves half a layout).
    fn write_layout(&self, slot: &Slot, id: DeviceId) {
        let Some(dir) = &self.options.layout_dir else { return };
        let Ok(result) = self.driver.bring_up_result(id) else { return };
        let text = crate::driver::bus_setup(&result).to_text();
        let path = slot.layout_path(dir);
        let tmp = path.with_extension("layout.tmp");
        let written = std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(&tmp, text))
            .and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(e) = written {
            log::warn!("twinstar: {}: {e}", path.display());
        }
    }

    fn take_over(&mut self, key: DeviceKey) {
        let Some(slot) = self.slots.get_mut(key.0 as usize) else { return };
        // Decision: every device found running is verified first, whether it came from the
        // other host or was here when this host started (a restarted driver keeps its calls
        // too): the verify reads back the registers the card init sets, so a device that was
        // never initialised, or was reset since, fails it and gets the full init below.
        let on_running = OnRunning::Verify;
        let config = self.options.bring_up.with_on_running(on_running);
        let firmware = self.options.firmware.clone();
        let driver = Arc::clone(&self.driver);
        let run = self.options.run;
        let open = |config, firmware| match slot.standby {
            Some(standby) => driver.open_target_standby(&slot.target, standby, config, firmware, run),
            None => driver.open_target(&slot.target, config, firmware, run),
        };
        let mut opened = open(config, firmware.clone());
        if let Err(DriverError::BringUp(e)) = &opened
            && on_running == OnRunning::Verify
            && cannot_trust(e)
        {
            // The device is there and answers, but its state cannot be trusted: a full init
            // (the calls on it are lost), said in an event and in the timeline.
            log::warn!("twinstar: {}: {e}; falling back to a full init", slot.target);
            self.controller.handle_takeover_fallback(self.driver.now(), key);
            let config = self.options.bring_up.with_on_running(OnRunning::Reset);
            opened = open(config, firmware);
        }
        let now = self.driver.now();
        match opened {
            Ok(id) => {
                slot.device = Some(id);
                // A take-over in the standby registration keeps the configuration the
                // standby was given; a new registration gets the file now.
                let configured = slot.standby == Some(id);
                if !configured
                    && let Some((name, conf)) = &self.options.system_conf
                    && let Err(e) = self.driver.apply_system_conf(name, conf)
                {
                    // The lines run with their default signalling; the PBX sees why.
                    log::warn!("twinstar: {}: {name} not applied: {e}", slot.target);
                }
                // From now on its spans stay registered while it is away (a jump to the
                // other host and back keeps the PBX's channels open here).
                let _ = self.driver.keep_standby(id);
                slot.standby = Some(id);
                let slot = &self.slots[key.0 as usize];
                self.write_layout(slot, id);
                let slot = &mut self.slots[key.0 as usize];
                let now = self.driver.now();
                slot.audio_from = self.driver.tick_count(id).ok();
                self.controller.handle_takeover_done(now, key, true);
            }
            Err(e) => {
                log::warn!("twinstar: take-over of {}: {e}", slot.target);
                self.controller.handle_takeover_done(now, key, false);
            }
        }
    }

    /// Runs the peer check on its own thread; its answer comes back through `peer_results`.
    fn check_peer(&self) {
        let Some(program) = self.options.hooks.peer_check.clone() else {
            let _ = self.peer_tx.send(true);
            return;
        };
        let mut cmd = Process::new(&program);
        cmd.env("ACTION", "peer-check").stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let (tx, timeout) = (self.peer_tx.clone(), self.options.hooks.timeout);
        let name = format!("{} peer-check", program.display());
        let spawned = std::thread::Builder::new().name("xpp-twinstar-peer".into()).spawn(move || {
            let _ = tx.send(run_bounded(&name, cmd, timeout));
        });
        if let Err(e) = spawned {
            log::warn!("twinstar: peer check thread: {e}");
            let _ = self.peer_tx.send(false);
        }
    }

    fn run_hook(&self, hook: Hook) {
        let (program, action) = match hook {
            Hook::Online => (&self.options.hooks.online, "online"),
            Hook::Offline => (&self.options.hooks.offline, "offline"),
            Hook::LastResort => (&self.options.hooks.last_resort, "last-resort"),
            other => {
                log::debug!("twinstar: hook not handled: {other:?}");
                return;
            }
        };
        let Some(program) = program.clone() else { return };
        let role = match self.controller.role() {
            Role::Master => "master",
            Role::Backup => "backup",
        };
        for (i, slot) in self.slots.iter().enumerate() {
            let num = slot.device.map_or(i, |d| d.0);
            let mut cmd = Process::new(&program);
            cmd.env("ACTION", action)
                .env("XPP_TWINSTAR_ROLE", role)
                .env("XBUS_NUM", format!("{num:02}"))
                .env("XBUS_NAME", format!("XBUS-{num:02}"))
                .env("XPP_TARGET", slot.target.to_string())
                .env("XPP_INIT_DIR", &self.options.hooks.init_dir)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let timeout = self.options.hooks.timeout;
            let name = format!("{} {action}", program.display());
            let spawned = std::thread::Builder::new().name("xpp-twinstar-hook".into()).spawn(move || {
                run_bounded(&name, cmd, timeout);
            });
            if let Err(e) = spawned {
                log::warn!("twinstar: hook thread: {e}");
            }
        }
    }

    fn publish(&mut self) {
        let mut failover = None;
        while let Some(e) = self.controller.poll_event() {
            if let Event::Failover { timeline } = &e {
                failover = Some(timeline.clone());
            }
            self.watchers
                .0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .retain(|w| w.send(e.clone()).is_ok());
            self.driver.send_event(DriverEvent::TwinStar(e));
        }
        let mut st = self.status.lock().unwrap_or_else(PoisonError::into_inner);
        st.role = self.controller.role();
        st.healthy = self.controller.is_healthy();
        st.devices = self.slots.iter().map(|s| s.device).collect();
        st.present = self.slots.iter().map(|s| s.here).collect();
        if failover.is_some() {
            st.last_failover = failover;
        }
        st.stopped = self.controller.is_stopped();
    }
}

/// Whether a failed verify says the device's state cannot be trusted (rather than that the
/// device is gone): its chips were reset since their init, its units differ from what was
/// expected, or a unit's verification failed.
fn cannot_trust(e: &BringUpError) -> bool {
    matches!(e.reason, Failure::NotConfigured { .. } | Failure::UnitMismatch { .. })
        || matches!(e.phase, BringUpPhase::Verify { .. })
}

/// Runs a hook program, killing it after `timeout`; its exit and output are logged. True
/// when it exited with status 0.
fn run_bounded(name: &str, mut cmd: Process, timeout: StdDuration) -> bool {
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            log::warn!("twinstar hook {name}: {e}");
            return false;
        }
    };
    let end = std::time::Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if std::time::Instant::now() < end => std::thread::sleep(StdDuration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Err(e) => {
                log::warn!("twinstar hook {name}: {e}");
                break None;
            }
        }
    };
    let out = read_capped(child.stdout.take());
    let err = read_capped(child.stderr.take());
    match status {
        Some(s) if s.success() => log::info!("twinstar hook {name}: done"),
        Some(s) => log::warn!("twinstar hook {name}: {s}"),
        None => log::warn!("twinstar hook {name}: killed after {timeout:?}"),
    }
    for line in out.lines().chain(err.lines()) {
        log::info!("twinstar hook {name}: {line}");
    }
    status.is_some_and(|s| s.success())
}

/// A hook's output, at most 64 KiB of it.
fn read_capped(r: Option<impl std::io::Read>) -> String {
    use std::io::Read as _;
    let mut s = String::new();
    if let Some(r) = r {
        let _ = r.take(64 * 1024).read_to_string(&mut s);
    }
    s
}
