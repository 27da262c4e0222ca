//! The whole emulated device: USB ports and stages, EEPROM, FX2 RAM, MPP, firmware loading,
//! the data interface, TwinStar and fault injection — sans-IO, on the caller's clock.

use std::collections::VecDeque;

use xpp_proto::mgmt::Capabilities;
use xpp_proto::{Duration, Instant};
use xpp_usb::{ControlSetup, DeviceInfo, TransferError, ep};

use crate::config::{DeviceConfig, EepromKind, FaultAction, ScheduledFault, Stage};
use crate::data::DataInterface;
use crate::eeprom::{Eeprom, module_type};
use crate::fault::FaultEngine;
use crate::loader::{Cpucs, Fx2, Loader, LoaderEnv, fpga_image_for, judge, usb_image_for, version6};
use crate::usb::{Identity, UsbStage};

/// Why the device left a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DetachReason {
    /// It renumerated (USB-17): firmware load, RENUM, RESET, HALF_RESET.
    Renumerated,
    /// It jumped to the other TwinStar port (TWS-12).
    Jumped,
    /// The port lost VBUS: host powered off or cable pulled (TWS-14).
    PowerLost,
    /// The device itself lost power (FAULT-10).
    DevicePowerOff,
}

/// Why the device jumped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum JumpReason {
    /// MPP TWS_PORT_SET (TWS-8).
    Command,
    /// The armed watchdog expired (TWS-11).
    Watchdog,
}

/// A firmware kind, for events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FirmwareKind {
    /// The FX2 USB firmware (LOAD-5).
    Usb,
    /// The FPGA image (MPP-22).
    Fpga,
}

/// Something that happened, for logs, demos and tests (poll with [`Device::poll_event`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeviceEvent {
    /// The device enumerated on `port`.
    Attached {
        /// When.
        at: Instant,
        /// The port.
        port: u8,
        /// Its vendor ID.
        vendor: u16,
        /// Its product ID.
        product: u16,
    },
    /// The device left `port`.
    Detached {
        /// When.
        at: Instant,
        /// The port.
        port: u8,
        /// Why.
        reason: DetachReason,
    },
    /// The device switched TwinStar ports.
    Jumped {
        /// When.
        at: Instant,
        /// Old active port.
        from: u8,
        /// New active port.
        to: u8,
        /// Why.
        reason: JumpReason,
    },
    /// A firmware image was accepted.
    FirmwareLoaded {
        /// When.
        at: Instant,
        /// Which.
        kind: FirmwareKind,
        /// Its version string.
        version: String,
    },
    /// A firmware image was refused (LOAD-6, MPP-22).
    FirmwareRefused {
        /// When.
        at: Instant,
        /// Which.
        kind: FirmwareKind,
    },
    /// The armed TwinStar watchdog expired (TWS-11).
    WatchdogExpired {
        /// When.
        at: Instant,
    },
    /// A transfer fault rule fired (FAULT-13).
    FaultApplied {
        /// When.
        at: Instant,
        /// Port.
        port: u8,
        /// Endpoint.
        endpoint: u8,
        /// Index of the rule in `CoreConfig::faults`.
        rule: usize,
        /// What it did.
        action: FaultAction,
    },
    /// A scheduled fault started (FAULT-13).
    ScheduledFault {
        /// When.
        at: Instant,
        /// Which.
        fault: ScheduledFault,
    },
    /// The EEPROM file (`CoreConfig::eeprom_file`) could not be read or written (MPP-18,
    /// LOAD-13); the in-memory EEPROM carries on.
    EepromFileError {
        /// When.
        at: Instant,
        /// True for a write, false for the power-on read.
        write: bool,
        /// What went wrong.
        reason: String,
    },
}

/// Counters of the device core.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Counters {
    /// USB-12: device IN transfers discarded because the FIFO was full.
    pub in_overflow: u64,
    /// USB-14: OUT transfers longer than 512 bytes (the excess discarded).
    pub out_oversize: u64,
    /// OUT transfers the device discarded (silent CPU, LOAD-15/16).
    pub out_discarded: u64,
    /// MPP requests processed.
    pub mpp_requests: u64,
    /// MPP requests answered with a non-OK ACK.
    pub mpp_errors: u64,
    /// Renumerations (USB-17).
    pub renumerations: u64,
    /// TwinStar jumps (TWS-12).
    pub jumps: u64,
    /// Watchdog feeds (TWS-9).
    pub watchdog_feeds: u64,
    /// Watchdog expiries (TWS-11).
    pub watchdog_expiries: u64,
    /// Transfer faults applied (FAULT-13).
    pub faults_applied: u64,
    /// Events dropped because nobody polled them.
    pub events_dropped: u64,
    /// EEPROM file reads and writes that failed (MPP-18, LOAD-13).
    pub eeprom_file_errors: u64,
}

/// The 8051's state in stages 11x1/11x2 (LOAD-4..6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cpu {
    Running,
    /// CPUCS holds it in reset.
    Held,
    /// Released into an image that is not a working firmware.
    Broken,
}

/// Firmware state held in RAM (lost on RESET / power-off).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Firmware {
    pub(crate) stage: UsbStage,
    pub(crate) cpu: Cpu,
    pub(crate) usb_version: [u8; 6],
    pub(crate) fpga_loaded: bool,
    pub(crate) fpga_version: [u8; 6],
}

impl Firmware {
    const COLD: Self = Self {
        stage: UsbStage::Cold,
        cpu: Cpu::Running,
        usb_version: [0; 6],
        fpga_loaded: false,
        fpga_version: [0; 6],
    };
}

/// An open DEV_SEND session (MPP-19..22).
#[derive(Debug, Clone)]
pub(crate) enum DevSend {
    Fpga { version: [u8; 6], hasher: sha2::Sha256, len: usize, next_offset: u16 },
    Eeprom,
}

/// TwinStar watchdog (TWS-6..11, 18, 19).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Watchdog {
    pub(crate) armed: bool,
    pub(crate) expired: bool,
    pub(crate) deadline: Option<Instant>,
    pub(crate) last_feed: Option<Instant>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    Detached,
    Attaching { at: Instant },
    Attached,
}

/// A device IN transfer waiting for the host.
#[derive(Debug, Clone)]
struct InItem {
    data: Vec<u8>,
    ready_at: Instant,
}

/// Bulk endpoints in a fixed order, for per-endpoint tables.
const ENDPOINTS: [u8; 4] = [ep::DATA_OUT, ep::DATA_IN, ep::MGMT_OUT, ep::MGMT_IN];

fn ep_index(ep: u8) -> Option<usize> {
    ENDPOINTS.iter().position(|&e| e == ep)
}

#[derive(Debug, Clone)]
struct Port {
    cable: bool,
    host_power: bool,
    link: Link,
    generation: u64,
    reset_epoch: u64,
    configuration: u8,
    identity: Option<Identity>,
    halted: [bool; 4],
    halt_until: [Option<Instant>; 4],
    in_data: VecDeque<InItem>,
    in_mgmt: VecDeque<InItem>,
    /// Delayed OUT transfers (FAULT-5): release time, endpoint, bytes.
    out_delayed: VecDeque<(Instant, u8, Vec<u8>)>,
}

impl Port {
    fn new(vbus: bool) -> Self {
        Self {
            cable: true,
            host_power: vbus,
            link: Link::Detached,
            generation: 0,
            reset_epoch: 0,
            configuration: 0,
            identity: None,
            halted: [false; 4],
            halt_until: [None; 4],
            in_data: VecDeque::new(),
            in_mgmt: VecDeque::new(),
            out_delayed: VecDeque::new(),
        }
    }

    const fn vbus(&self) -> bool {
        self.cable && self.host_power
    }

    fn clear_transfers(&mut self) {
        self.in_data.clear();
        self.in_mgmt.clear();
        self.out_delayed.clear();
        self.halted = [false; 4];
        self.halt_until = [None; 4];
    }
}

/// A scheduled fault's steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Start(ScheduledFault),
    Cable(u8, bool),
    HostPower(u8, bool),
    DevicePower(bool),
}

/// Most events kept unpolled; older ones are dropped and counted.
const EVENT_LIMIT: usize = 10_000;
/// Guard against a timer that never advances: most timer firings at one instant.
const MAX_FIRINGS_PER_INSTANT: usize = 100_000;

/// The emulated Astribank (MODEL.md).
///
/// Sans-IO, no threads, no clock: every method takes the current [`Instant`] (which must not go
/// backwards) and first runs every timer due up to it, in order.
///
/// Method kinds (quinn-style):
/// - inputs from a host on a USB port: [`Device::bulk_out`], [`Device::control_out`],
///   [`Device::control_in`], [`Device::usb_reset`];
/// - outputs to a host: [`Device::bulk_in`] (the next IN transfer ready on an endpoint);
/// - the physical world: [`Device::set_power`], [`Device::unplug`], [`Device::plug`],
///   [`Device::set_device_power`];
/// - time: [`Device::poll_timeout`] says when the device next needs to run,
///   [`Device::handle_timeout`] runs it;
/// - observation: [`Device::poll_event`], [`Device::port_info`], [`Device::generation`],
///   and the accessors for tests.
///
/// Polling order after any input: drain [`Device::bulk_in`] on the IN endpoints of interest,
/// then [`Device::poll_event`], then sleep until [`Device::poll_timeout`].
#[derive(Debug)]
pub struct Device {
    pub(crate) cfg: DeviceConfig,
    pub(crate) now: Instant,
    pub(crate) powered: bool,
    ports: Vec<Port>,
    pub(crate) active: u8,
    pub(crate) fw: Firmware,
    fx2: Fx2,
    pub(crate) eeprom: Eeprom,
    /// USB-2/USB-3: the boot header latched at the last power-on / RESET.
    boot_ids: Option<(u16, u16)>,
    /// MPP-12: capabilities in effect since the last RESET / power-on.
    pub(crate) effective_caps: Capabilities,
    pub(crate) dev_send: Option<DevSend>,
    loader: Loader,
    pub(crate) pic_burned: [bool; 5],
    pub(crate) data: DataInterface,
    pub(crate) wd: Watchdog,
    faults: FaultEngine,
    schedule: VecDeque<(Instant, Step)>,
    events: VecDeque<DeviceEvent>,
    pub(crate) counters: Counters,
}

impl Device {
    /// A device built from `cfg`, powered at [`Instant::ZERO`] and enumerated at once on its
    /// active port if that port has VBUS.
    pub fn new(cfg: DeviceConfig) -> Self {
        let port_count = if cfg.twinstar { 2 } else { 1 };
        let ports = (0..port_count).map(|p| Port::new(cfg.core.port_power[p])).collect();
        let eeprom = Eeprom::new(&cfg);
        let mut schedule: Vec<(Instant, Step)> = Vec::new();
        for f in &cfg.core.scheduled_faults {
            schedule.push((f.at(), Step::Start(*f)));
            match *f {
                ScheduledFault::Unplug { port, at, duration } => {
                    schedule.push((at, Step::Cable(port, false)));
                    schedule.push((at + duration, Step::Cable(port, true)));
                }
                ScheduledFault::PowerOff { port, at, duration } => {
                    schedule.push((at, Step::HostPower(port, false)));
                    schedule.push((at + duration, Step::HostPower(port, true)));
                }
                ScheduledFault::PowerCycle { at, off_for } => {
                    schedule.push((at, Step::DevicePower(false)));
                    schedule.push((at + off_for, Step::DevicePower(true)));
                }
                _ => {}
            }
        }
        schedule.sort_by_key(|(t, _)| *t);
        let mut d = Self {
            faults: FaultEngine::new(&cfg.core.faults, cfg.seed),
            data: DataInterface::new(&cfg),
            effective_caps: eeprom.caps(),
            boot_ids: eeprom.boot_ids(),
            eeprom,
            ports,
            cfg,
            now: Instant::ZERO,
            powered: false,
            active: 0,
            fw: Firmware::COLD,
            fx2: Fx2::new(),
            dev_send: None,
            loader: Loader::default(),
            pic_burned: [false; 5],
            wd: Watchdog::default(),
            schedule: schedule.into(),
            events: VecDeque::new(),
            counters: Counters::default(),
        };
        d.pic_burned = d.default_pic_burned();
        d.power_on(Instant::ZERO, Duration::ZERO);
        // MODEL: LOAD-14 — start stages skip loading.
        let start = d.cfg.start_stage;
        if start != Stage::Cold {
            d.fw.stage = UsbStage::UsbFirmware;
            d.fw.usb_version = version6(usb_image_for(d.cfg.hw_revision).map_or("0", |k| k.version));
            if matches!(start, Stage::FpgaLoaded | Stage::Running) {
                d.fw.fpga_loaded = true;
                d.fw.fpga_version =
                    version6(fpga_image_for(d.cfg.family, d.cfg.hw_revision).map_or("0", |k| k.version));
            }
            if start == Stage::Running {
                d.fw.stage = UsbStage::Running;
            }
        }
        d.run_due(Instant::ZERO);
        d
    }

    /// MODEL: MPP-26 — PIC burned as configured per unit; by default for modules, not for
    /// the echo module.
    fn default_pic_burned(&self) -> [bool; 5] {
        let mut b = [false; 5];
        for (unit, m) in self.cfg.slots.iter().enumerate() {
            b[unit] = m.is_some();
        }
        for (b, c) in b.iter_mut().zip(self.cfg.pic_burned) {
            *b = c.unwrap_or(*b);
        }
        b
    }

    // ----- observation -------------------------------------------------------------------

    /// The configuration the device was built from.
    pub const fn config(&self) -> &DeviceConfig {
        &self.cfg
    }

    /// Number of USB ports (2 with TwinStar, else 1).
    pub fn port_count(&self) -> u8 {
        self.ports.len() as u8
    }

    /// The firmware stage.
    pub const fn stage(&self) -> UsbStage {
        self.fw.stage
    }

    /// Whether the FPGA is loaded (STATUS_GET bit 0).
    pub const fn fpga_loaded(&self) -> bool {
        self.fw.fpga_loaded
    }

    /// Whether the 8051 runs a working firmware (false while CPUCS holds it, LOAD-4, or after
    /// a bad image, LOAD-6).
    pub fn cpu_running(&self) -> bool {
        self.fw.cpu == Cpu::Running
    }

    /// The TwinStar active port.
    pub const fn active_port(&self) -> u8 {
        self.active
    }

    /// Whether the TwinStar watchdog is armed.
    pub const fn watchdog_armed(&self) -> bool {
        self.wd.armed
    }

    /// Whether the armed watchdog has expired (STAT_GET bit 0 = 0).
    pub const fn watchdog_expired(&self) -> bool {
        self.wd.expired
    }

    /// Whether `port` has VBUS.
    pub fn port_power(&self, port: u8) -> bool {
        self.ports.get(usize::from(port)).is_some_and(Port::vbus)
    }

    /// Whether the device itself is powered.
    pub const fn device_powered(&self) -> bool {
        self.powered
    }

    /// What is enumerated on `port`, if anything.
    pub fn port_info(&self, port: u8) -> Option<DeviceInfo> {
        let p = self.ports.get(usize::from(port))?;
        if p.link != Link::Attached {
            return None;
        }
        let id = p.identity?;
        let address = (p.generation % 127) + 1;
        Some(id.device_info(format!("emu:{}/{port}-{address:03}", String::from_utf8_lossy(&self.cfg.label))))
    }

    /// The enumeration generation of `port`: `Some` while a device is enumerated there. It
    /// changes on every departure and every enumeration, so a handle opened on one generation
    /// knows it is stale (USB-16).
    pub fn generation(&self, port: u8) -> Option<u64> {
        let p = self.ports.get(usize::from(port))?;
        (p.link == Link::Attached).then_some(p.generation)
    }

    /// Bus resets seen on `port` (USB-15); a transfer submitted before a reset completes
    /// `Cancelled`.
    pub fn reset_epoch(&self, port: u8) -> u64 {
        self.ports.get(usize::from(port)).map_or(0, |p| p.reset_epoch)
    }

    /// The data interface (for tests and equipment control).
    pub const fn data(&self) -> &DataInterface {
        &self.data
    }

    /// The data interface, mutably.
    pub const fn data_mut(&mut self) -> &mut DataInterface {
        &mut self.data
    }

    /// Counters.
    pub const fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The raw EEPROM (empty when none is fitted).
    pub fn eeprom(&self) -> &[u8] {
        self.eeprom.raw()
    }

    /// Capabilities in effect (MPP-12: updated at RESET / power-on).
    pub const fn effective_capabilities(&self) -> Capabilities {
        self.effective_caps
    }

    /// Whether the module at `unit` (0..=4) reports "PIC burned" (MPP-26).
    pub fn pic_burned(&self, unit: u8) -> bool {
        self.pic_burned.get(usize::from(unit)).copied().unwrap_or(false)
    }

    /// The echo-canceller chip word at `address` written through the EC loader (ECHO-6).
    pub fn ec_word(&self, address: u32) -> u16 {
        self.loader.ec_word(address)
    }

    /// The time of the last input or timer.
    pub const fn now(&self) -> Instant {
        self.now
    }

    /// The next event, oldest first.
    #[must_use = "the event is taken off the queue"]
    pub fn poll_event(&mut self) -> Option<DeviceEvent> {
        self.events.pop_front()
    }

    pub(crate) fn event(&mut self, e: DeviceEvent) {
        if self.events.len() >= EVENT_LIMIT {
            self.events.pop_front();
            self.counters.events_dropped += 1;
        }
        self.events.push_back(e);
    }

    // ----- time --------------------------------------------------------------------------

    /// When [`Device::handle_timeout`] must next run (also when a delayed IN transfer becomes
    /// ready), or `None`.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t = self.own_deadline();
        let mut consider = |x: Option<Instant>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |t: Instant| t.min(x)));
            }
        };
        consider(self.data.poll_timeout());
        for p in &self.ports {
            consider(p.in_data.iter().chain(p.in_mgmt.iter()).map(|i| i.ready_at).find(|&r| r > self.now));
        }
        t
    }

    /// Runs every timer due at or before `now`, in time order.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.run_due(now);
    }

    fn own_deadline(&self) -> Option<Instant> {
        let mut t: Option<Instant> = None;
        let mut consider = |x: Instant| t = Some(t.map_or(x, |t| t.min(x)));
        for p in &self.ports {
            if let Link::Attaching { at } = p.link {
                consider(at);
            }
            p.halt_until.iter().flatten().for_each(|&x| consider(x));
            if let Some((at, _, _)) = p.out_delayed.front() {
                consider(*at);
            }
        }
        if let Some(d) = self.wd.deadline {
            consider(d);
        }
        if let Some((at, _)) = self.schedule.front() {
            consider(*at);
        }
        t
    }

    fn run_due(&mut self, now: Instant) {
        let now = now.max(self.now);
        for _ in 0..MAX_FIRINGS_PER_INSTANT {
            let own = self.own_deadline().filter(|&t| t <= now);
            let data = self.data.poll_timeout().filter(|&t| t <= now);
            let next = match (own, data) {
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) | (None, Some(a)) => a,
                (None, None) => break,
            };
            self.now = self.now.max(next);
            let t = self.now;
            if own.is_some_and(|o| o <= t) {
                self.fire_own(t);
            }
            if data.is_some_and(|d| d <= t) {
                self.data.handle_timeout(t);
            }
            self.pump(t);
        }
        self.now = now;
        self.pump(now);
    }

    fn fire_own(&mut self, t: Instant) {
        while let Some(&(at, step)) = self.schedule.front() {
            if at > t {
                break;
            }
            self.schedule.pop_front();
            self.run_step(t, step);
        }
        if self.wd.deadline.is_some_and(|d| d <= t) {
            self.watchdog_expire(t);
        }
        for i in 0..self.ports.len() {
            let port = i as u8;
            if let Link::Attaching { at } = self.ports[i].link
                && at <= t
            {
                self.ports[i].link = Link::Detached;
                self.try_attach(t, port);
            }
            for e in 0..4 {
                if self.ports[i].halt_until[e].is_some_and(|u| u <= t) {
                    self.ports[i].halt_until[e] = None;
                    self.ports[i].halted[e] = false;
                }
            }
            while self.ports[i].out_delayed.front().is_some_and(|(at, _, _)| *at <= t) {
                if let Some((_, e, bytes)) = self.ports[i].out_delayed.pop_front() {
                    self.deliver_out(t, port, e, &bytes);
                }
            }
        }
    }

    fn run_step(&mut self, t: Instant, step: Step) {
        match step {
            Step::Start(f) => {
                self.event(DeviceEvent::ScheduledFault { at: t, fault: f });
                match f {
                    ScheduledFault::DeviceReset { .. } => self.full_reset(t),
                    ScheduledFault::BusReset { port, .. } => self.usb_reset(t, port),
                    ScheduledFault::Renumerate { .. } if self.generation(self.active).is_some() => {
                        self.renumerate(t);
                    }
                    ScheduledFault::InTransfer { len, .. } if self.data_live() => {
                        // MODEL: FAULT-12 — an odd-sized IN transfer on 0x86.
                        self.push_in(t, self.active, ep::DATA_IN, vec![0; usize::from(len)], Duration::ZERO);
                    }
                    ScheduledFault::Data { fault, .. } if self.data_live() => self.data.inject(t, fault),
                    _ => {}
                }
            }
            Step::Cable(port, on) => {
                if on {
                    self.plug(t, port);
                } else {
                    self.unplug(t, port);
                }
            }
            Step::HostPower(port, on) => self.set_power(t, port, on),
            Step::DevicePower(on) => self.set_device_power(t, on),
        }
    }

    // ----- ports, power, enumeration -----------------------------------------------------

    /// Powers the host on `port` on or off (its VBUS; TWS-1, TWS-14, FAULT-9).
    pub fn set_power(&mut self, now: Instant, port: u8, on: bool) {
        self.run_due(now);
        self.change_vbus(now, port, |p| p.host_power = on);
    }

    /// Pulls the cable of `port` (FAULT-8): VBUS lost, as TWS-14.
    pub fn unplug(&mut self, now: Instant, port: u8) {
        self.run_due(now);
        self.change_vbus(now, port, |p| p.cable = false);
    }

    /// Plugs the cable of `port` back in.
    pub fn plug(&mut self, now: Instant, port: u8) {
        self.run_due(now);
        self.change_vbus(now, port, |p| p.cable = true);
    }

    fn change_vbus(&mut self, now: Instant, port: u8, f: impl FnOnce(&mut Port)) {
        let Some(p) = self.ports.get_mut(usize::from(port)) else { return };
        let before = p.vbus();
        f(p);
        let after = p.vbus();
        if before && !after && port == self.active {
            // MODEL: TWS-14 — leave the port; no jump by itself.
            self.leave(now, port, DetachReason::PowerLost);
        } else if !before && after {
            if port == self.active {
                if self.powered && p.link == Link::Detached {
                    p.link = Link::Attaching { at: now + self.cfg.core.attach_delay };
                }
            } else if self.cfg.twinstar && self.wd.armed && self.wd.expired {
                // MODEL: TWS-11 — a pending jump happens when the other port gains VBUS.
                self.jump(now, port, JumpReason::Watchdog);
            }
        }
        self.refresh_monitor(now, DetachReason::PowerLost);
    }

    /// Device power off or on (FAULT-10). Power-on is LOAD-13.
    pub fn set_device_power(&mut self, now: Instant, on: bool) {
        self.run_due(now);
        if on == self.powered {
            return;
        }
        if on {
            self.power_on(now, self.cfg.core.attach_delay);
        } else {
            let active = self.active;
            self.leave(now, active, DetachReason::DevicePowerOff);
            self.powered = false;
            self.refresh_monitor(now, DetachReason::DevicePowerOff);
            self.lose_ram();
            // Decision: a device power cycle drops the lines too (equipment = true); RESET
            // keeps them (LOAD-11 says chips, not the lines' far ends).
            self.data.power_on_reset(true);
        }
    }

    /// MODEL: LOAD-13, TWS-3.
    fn power_on(&mut self, now: Instant, attach_delay: Duration) {
        self.powered = true;
        self.lose_ram();
        // MODEL: LOAD-13, MPP-18 — the EEPROM file, if configured, is read at power-on.
        // Decision: a bad file (unreadable, wrong size) is reported and the EEPROM keeps what
        // it held (the configured contents at first); the file is only replaced by the next
        // EEPROM write.
        if let Some(path) = self.cfg.core.eeprom_file.clone()
            && let Err(reason) = self.eeprom.load_file(&path)
        {
            self.counters.eeprom_file_errors += 1;
            self.event(DeviceEvent::EepromFileError { at: now, write: false, reason });
        }
        self.boot_ids = self.eeprom.boot_ids();
        self.effective_caps = self.eeprom.caps();
        self.active = if self.port_power(0) || !self.port_power(1) { 0 } else { 1 };
        let active = usize::from(self.active);
        if self.ports[active].vbus() {
            self.ports[active].link = Link::Attaching { at: now + attach_delay };
        }
        self.refresh_monitor(now, DetachReason::PowerLost);
    }

    /// MODEL: TWS-2 — whether the 1163 monitor should be on `port`.
    fn monitor_wanted(&self, port: u8) -> bool {
        self.powered
            && self.cfg.twinstar
            && self.cfg.core.standby_presence == crate::config::StandbyPresence::Monitor1163
            && port != self.active
            && self.ports.get(usize::from(port)).is_some_and(Port::vbus)
    }

    /// MODEL: TWS-2 — the monitor appears on a powered standby port (after `attach_delay`)
    /// and leaves one that is no longer wanted (for `reason`).
    fn refresh_monitor(&mut self, now: Instant, reason: DetachReason) {
        for port in 0..self.port_count() {
            if port == self.active {
                continue;
            }
            let wanted = self.monitor_wanted(port);
            let delay = self.cfg.core.attach_delay;
            let p = &mut self.ports[usize::from(port)];
            match (wanted, p.link) {
                (true, Link::Detached) => p.link = Link::Attaching { at: now + delay },
                (false, Link::Attaching { .. }) => p.link = Link::Detached,
                (false, Link::Attached) => self.detach_monitor(now, port, reason),
                _ => {}
            }
        }
    }

    /// The monitor leaves `port` (no data session or MPP state is involved).
    fn detach_monitor(&mut self, now: Instant, port: u8, reason: DetachReason) {
        let Some(p) = self.ports.get_mut(usize::from(port)) else { return };
        match p.link {
            Link::Attached => {
                p.generation += 1;
                p.link = Link::Detached;
                p.identity = None;
                p.clear_transfers();
                self.event(DeviceEvent::Detached { at: now, port, reason });
            }
            Link::Attaching { .. } => p.link = Link::Detached,
            Link::Detached => {}
        }
    }

    /// Everything held in RAM is lost (LOAD-11, LOAD-13).
    fn lose_ram(&mut self) {
        self.fw = Firmware::COLD;
        self.fx2 = Fx2::new();
        self.dev_send = None;
        self.loader = Loader::default();
        self.wd = Watchdog::default();
    }

    fn identity(&self) -> Identity {
        let base = self.cfg.family.base_product();
        let (stage, vendor, product) = match self.fw.stage {
            UsbStage::Cold => match self.boot_ids {
                Some((v, p)) => (UsbStage::Cold, v, p),
                None => (UsbStage::Cold, 0x04B4, 0x8613),
            },
            UsbStage::UsbFirmware => (UsbStage::UsbFirmware, 0xE4E4, base | 1),
            UsbStage::Running => (UsbStage::Running, 0xE4E4, base | 2),
        };
        Identity { stage, vendor, product, bcd: self.cfg.hw_revision, label: self.eeprom.table().label }
    }

    fn try_attach(&mut self, now: Instant, port: u8) {
        let i = usize::from(port);
        if port != self.active && self.monitor_wanted(port) && self.ports[i].link != Link::Attached {
            // MODEL: TWS-2 — the 1163 monitor, cold, on the standby port.
            let id = Identity {
                stage: UsbStage::Cold,
                vendor: 0xE4E4,
                product: 0x1163,
                bcd: self.cfg.hw_revision,
                label: self.eeprom.table().label,
            };
            let p = &mut self.ports[i];
            p.generation += 1;
            p.link = Link::Attached;
            p.identity = Some(id);
            p.configuration = 1;
            p.clear_transfers();
            self.event(DeviceEvent::Attached { at: now, port, vendor: id.vendor, product: id.product });
            return;
        }
        if !self.powered
            || port != self.active
            || !self.ports[i].vbus()
            || self.ports[i].link == Link::Attached
        {
            return;
        }
        let id = self.identity();
        let p = &mut self.ports[i];
        p.generation += 1;
        p.link = Link::Attached;
        p.identity = Some(id);
        // Decision: the host's enumeration selects configuration 1 before any driver sees
        // the device.
        p.configuration = 1;
        p.clear_transfers();
        self.event(DeviceEvent::Attached { at: now, port, vendor: id.vendor, product: id.product });
        if id.stage == UsbStage::Running && self.fw.cpu == Cpu::Running {
            // MODEL: TIME-2, TIME-20 — a fresh data session.
            self.data.start_session(now);
        }
    }

    /// MODEL: USB-16 — the device leaves `port`.
    fn leave(&mut self, now: Instant, port: u8, reason: DetachReason) {
        let Some(p) = self.ports.get_mut(usize::from(port)) else { return };
        match p.link {
            Link::Attached => {
                p.generation += 1;
                p.link = Link::Detached;
                p.identity = None;
                p.clear_transfers();
                self.data.stop_session();
                self.loader.reset_session();
                self.event(DeviceEvent::Detached { at: now, port, reason });
            }
            Link::Attaching { .. } => p.link = Link::Detached,
            Link::Detached => {}
        }
    }

    /// MODEL: USB-17 — leave the active port, reappear after `renum_delay`.
    pub(crate) fn renumerate(&mut self, now: Instant) {
        let port = self.active;
        self.leave(now, port, DetachReason::Renumerated);
        self.counters.renumerations += 1;
        if let Some(p) = self.ports.get_mut(usize::from(port))
            && self.powered
        {
            p.link = Link::Attaching { at: now + self.cfg.core.renum_delay };
        }
    }

    /// MODEL: TWS-12, TWS-13 — switch to port `to`.
    pub(crate) fn jump(&mut self, now: Instant, to: u8, reason: JumpReason) {
        let from = self.active;
        if to == from || usize::from(to) >= self.ports.len() {
            return;
        }
        self.leave(now, from, DetachReason::Jumped);
        // MODEL: TWS-2 — the monitor leaves the port the device moves to.
        self.detach_monitor(now, to, DetachReason::Jumped);
        self.active = to;
        self.wd.armed = false;
        self.wd.expired = false;
        self.wd.deadline = None;
        // Decision: the MPP/loader state of the old host's session goes too: an open DEV_SEND
        // or PIC file would otherwise be continued by the new host.
        self.dev_send = None;
        self.loader.reset_session();
        if self.cfg.core.line_state_on_jump == crate::config::LineStateOnJump::Reset {
            self.data.power_on_reset(false);
        }
        self.counters.jumps += 1;
        self.event(DeviceEvent::Jumped { at: now, from, to, reason });
        if self.powered {
            self.ports[usize::from(to)].link = Link::Attaching { at: now + self.cfg.core.jump_delay };
        }
        self.refresh_monitor(now, DetachReason::Jumped);
    }

    /// MODEL: LOAD-11 — RESET: back to the power-on identity, RAM state lost.
    pub(crate) fn full_reset(&mut self, now: Instant) {
        self.lose_ram();
        self.boot_ids = self.eeprom.boot_ids();
        self.effective_caps = self.eeprom.caps();
        self.data.power_on_reset(false);
        self.renumerate(now);
    }

    // ----- USB transfers -----------------------------------------------------------------

    fn attached(&self, port: u8) -> Result<(usize, Identity), TransferError> {
        let i = usize::from(port);
        match self.ports.get(i) {
            Some(p) if p.link == Link::Attached => {
                p.identity.map(|id| (i, id)).ok_or(TransferError::Disconnected)
            }
            _ => Err(TransferError::Disconnected),
        }
    }

    /// A bulk OUT transfer from the host on `port`, endpoint `ep` (0x02 or 0x04).
    ///
    /// `Err(Disconnected)` if nothing is enumerated on `port`, `Err(InvalidArgument)` for an
    /// endpoint the current stage does not have, `Err(Stall)` on a halted endpoint.
    pub fn bulk_out(&mut self, now: Instant, port: u8, ep: u8, data: &[u8]) -> Result<(), TransferError> {
        self.run_due(now);
        let (i, id) = self.attached(port)?;
        if ep & 0x80 != 0 || !id.has_endpoint(ep) {
            return Err(TransferError::InvalidArgument);
        }
        let e = ep_index(ep).ok_or(TransferError::InvalidArgument)?;
        if self.ports[i].halted[e] {
            return Err(TransferError::Stall);
        }
        // MODEL: USB-14 — at most 512 bytes reach the device.
        let data = if data.len() > 512 {
            self.counters.out_oversize += 1;
            &data[..512]
        } else {
            data
        };
        if self.faults.is_empty() {
            self.out_now_or_later(now, port, ep, data.to_vec(), Duration::ZERO);
            return Ok(());
        }
        let outcome = self.faults.apply(now, port, ep, data.to_vec());
        self.log_faults(now, port, ep, &outcome.applied);
        if let Some(until) = outcome.stall {
            self.halt(port, ep, until);
            return Err(TransferError::Stall);
        }
        for (bytes, delay) in outcome.deliveries {
            self.out_now_or_later(now, port, ep, bytes, delay);
        }
        Ok(())
    }

    fn log_faults(&mut self, now: Instant, port: u8, endpoint: u8, applied: &[(usize, FaultAction)]) {
        for &(rule, action) in applied {
            self.counters.faults_applied += 1;
            self.event(DeviceEvent::FaultApplied { at: now, port, endpoint, rule, action });
        }
    }

    fn halt(&mut self, port: u8, ep: u8, until: Option<Instant>) {
        if let (Some(p), Some(e)) = (self.ports.get_mut(usize::from(port)), ep_index(ep)) {
            p.halted[e] = true;
            p.halt_until[e] = until;
        }
    }

    fn out_now_or_later(&mut self, now: Instant, port: u8, ep: u8, bytes: Vec<u8>, delay: Duration) {
        let Some(p) = self.ports.get_mut(usize::from(port)) else { return };
        // MODEL: FAULT-5 — later transfers on the endpoint wait behind a delayed one.
        let behind = p.out_delayed.iter().filter(|(_, e, _)| *e == ep).map(|(t, _, _)| *t).max();
        if delay == Duration::ZERO && behind.is_none() {
            self.deliver_out(now, port, ep, &bytes);
        } else {
            let at = (now + delay).max(behind.unwrap_or(now));
            p.out_delayed.push_back((at, ep, bytes));
        }
    }

    /// An OUT transfer reaches the device's firmware.
    fn deliver_out(&mut self, now: Instant, port: u8, ep: u8, bytes: &[u8]) {
        if port != self.active || self.attached(port).is_err() || self.fw.cpu != Cpu::Running {
            // MODEL: LOAD-4, MPP-29 — a halted 8051 hears nothing.
            self.counters.out_discarded += 1;
            return;
        }
        match (ep, self.fw.stage) {
            (ep::MGMT_OUT, _) => {
                self.handle_mpp(now, port, bytes);
                self.persist_eeprom(now);
            }
            (ep::DATA_OUT, UsbStage::UsbFirmware) => {
                if !self.fw.fpga_loaded {
                    // MODEL: LOAD-15.
                    self.counters.out_discarded += 1;
                    return;
                }
                let unit_types =
                    core::array::from_fn(|u| self.cfg.slots[u].as_ref().map_or(0, |m| module_type(m).0));
                let mut replies = Vec::new();
                let mut env = LoaderEnv {
                    echo: self.cfg.echo,
                    cpld_version: self.cfg.core.cpld_version,
                    unit_types,
                    pic_burned: &mut self.pic_burned,
                    replies: &mut replies,
                };
                self.loader.handle_out(bytes, &mut env);
                for r in replies {
                    self.push_in(now, port, ep::DATA_IN, r, Duration::ZERO);
                }
            }
            (ep::DATA_OUT, UsbStage::Running) => {
                // MODEL: TWS-9 — a transfer holding a well-formed XPP packet feeds the watchdog.
                if xpp_proto::wire::deframe(bytes).next().is_some_and(|r| r.is_ok()) {
                    self.watchdog_feed(now);
                }
                self.data.handle_out(now, bytes);
            }
            _ => self.counters.out_discarded += 1,
        }
        self.pump(now);
    }

    /// Queues a device IN transfer, through the IN fault rules (USB-12).
    pub(crate) fn push_in(&mut self, now: Instant, port: u8, ep: u8, bytes: Vec<u8>, delay: Duration) {
        let outcome = if self.faults.is_empty() {
            crate::fault::Outcome { deliveries: vec![(bytes, delay)], ..Default::default() }
        } else {
            let mut o = self.faults.apply(now, port, ep, bytes);
            for d in &mut o.deliveries {
                d.1 += delay;
            }
            o
        };
        self.log_faults(now, port, ep, &outcome.applied);
        if let Some(until) = outcome.stall {
            self.halt(port, ep, until);
        }
        let depth = if ep == ep::DATA_IN { self.cfg.core.data_in_depth } else { self.cfg.core.mgmt_in_depth };
        let Some(p) = self.ports.get_mut(usize::from(port)) else { return };
        let q = if ep == ep::DATA_IN { &mut p.in_data } else { &mut p.in_mgmt };
        for (data, delay) in outcome.deliveries {
            if q.len() >= depth {
                self.counters.in_overflow += 1;
                continue;
            }
            let behind = q.back().map_or(now, |i| i.ready_at);
            q.push_back(InItem { data, ready_at: (now + delay).max(behind) });
        }
    }

    /// Whether the data interface of the active port is live (11x2, CPU running, attached).
    fn data_live(&self) -> bool {
        self.fw.stage == UsbStage::Running
            && self.fw.cpu == Cpu::Running
            && self.attached(self.active).is_ok()
    }

    /// Moves what the data interface has to send into the 0x86 FIFO of the active port.
    fn pump(&mut self, now: Instant) {
        let mut buf = [0u8; 512];
        let live = self.data_live();
        for _ in 0..1024 {
            let Some(n) = self.data.poll_in(now, &mut buf) else { break };
            if live {
                let n = n.min(buf.len());
                self.push_in(now, self.active, ep::DATA_IN, buf[..n].to_vec(), Duration::ZERO);
            }
        }
    }

    /// The next device IN transfer on `port`'s endpoint `ep` (0x86 or 0x88), copied into
    /// `buf`: `None` while nothing is ready (the host's transfer stays pending).
    ///
    /// A `buf` shorter than the device transfer completes with `Fault` and consumes it
    /// (USB-13).
    pub fn bulk_in(
        &mut self,
        now: Instant,
        port: u8,
        ep: u8,
        buf: &mut [u8],
    ) -> Option<Result<usize, TransferError>> {
        self.run_due(now);
        let (i, id) = match self.attached(port) {
            Ok(x) => x,
            Err(e) => return Some(Err(e)),
        };
        if ep & 0x80 == 0 || !id.has_endpoint(ep) {
            return Some(Err(TransferError::InvalidArgument));
        }
        let e = ep_index(ep)?;
        if self.ports[i].halted[e] {
            return Some(Err(TransferError::Stall));
        }
        let q = if ep == ep::DATA_IN { &mut self.ports[i].in_data } else { &mut self.ports[i].in_mgmt };
        if q.front()?.ready_at > now {
            return None;
        }
        let item = q.pop_front()?;
        let n = item.data.len();
        let Some(dst) = buf.get_mut(..n) else {
            return Some(Err(TransferError::Fault));
        };
        dst.copy_from_slice(&item.data);
        Some(Ok(n))
    }

    /// Device IN transfers queued on `port`'s endpoint `ep` (ready or delayed).
    pub fn in_queued(&self, port: u8, ep: u8) -> usize {
        self.ports.get(usize::from(port)).map_or(0, |p| match ep {
            ep::DATA_IN => p.in_data.len(),
            ep::MGMT_IN => p.in_mgmt.len(),
            _ => 0,
        })
    }

    /// A USB bus reset of `port` (USB-15): queued IN data discarded, halts cleared, the reset
    /// epoch advanced; the firmware stage and device state are kept.
    pub fn usb_reset(&mut self, now: Instant, port: u8) {
        self.run_due(now);
        if let Some(p) = self.ports.get_mut(usize::from(port))
            && p.link == Link::Attached
        {
            p.reset_epoch += 1;
            p.clear_transfers();
        }
    }

    /// A control transfer with an OUT (or no) data stage (USB-10, LOAD-1..5). Returns the
    /// bytes accepted.
    pub fn control_out(
        &mut self,
        now: Instant,
        port: u8,
        setup: ControlSetup,
        data: &[u8],
    ) -> Result<usize, TransferError> {
        self.run_due(now);
        let (i, id) = self.attached(port)?;
        match (setup.request_type, setup.request) {
            // MODEL: TWS-2 — the 1163 monitor has no FX2 RAM to load.
            // Decision: the emulated device has one FX2, serving the active port; what a real
            // 1163 does with a firmware load is unknown (MT §10.4), so the monitor refuses it.
            (0x40 | 0xC0, 0xA0) if port != self.active => Err(TransferError::Stall),
            (0x40, 0xA0) => {
                // MODEL: LOAD-1, LOAD-2.
                let effect = self.fx2.write(setup.value, data).map_err(|()| TransferError::Stall)?;
                match effect {
                    Some(Cpucs::Hold) if self.fw.stage != UsbStage::Cold => self.fw.cpu = Cpu::Held,
                    Some(Cpucs::Release) if self.fx2.held => self.cpucs_release(now),
                    _ => {}
                }
                Ok(data.len())
            }
            (0x00, 5) => Ok(0),
            (0x00, 9) if setup.value <= 1 => {
                self.ports[i].configuration = setup.value as u8;
                Ok(0)
            }
            (0x01, 11)
                if setup.value == 0 && id.interfaces().iter().any(|f| u16::from(f.number) == setup.index) =>
            {
                Ok(0)
            }
            (0x02, 1) if setup.value == 0 => {
                // MODEL: USB-10, FAULT-7 — CLEAR_FEATURE(ENDPOINT_HALT).
                let ep = setup.index as u8;
                let e = ep_index(ep).filter(|_| id.has_endpoint(ep)).ok_or(TransferError::Stall)?;
                self.ports[i].halted[e] = false;
                self.ports[i].halt_until[e] = None;
                Ok(0)
            }
            _ => Err(TransferError::Stall),
        }
    }

    /// A control transfer with an IN data stage of up to `buf.len()` bytes (USB-10, LOAD-3).
    pub fn control_in(
        &mut self,
        now: Instant,
        port: u8,
        setup: ControlSetup,
        buf: &mut [u8],
    ) -> Result<usize, TransferError> {
        self.run_due(now);
        let (i, id) = self.attached(port)?;
        let reply: Vec<u8> = match (setup.request_type, setup.request) {
            (0xC0, 0xA0) if port != self.active => return Err(TransferError::Stall),
            (0xC0, 0xA0) => self.fx2.read(setup.value, buf.len()).ok_or(TransferError::Stall)?,
            (0x80, 6) => {
                id.descriptor((setup.value >> 8) as u8, setup.value as u8).ok_or(TransferError::Stall)?
            }
            (0x80, 8) => vec![self.ports[i].configuration],
            // MODEL: USB-6 — self-powered.
            (0x80, 0) => vec![0x01, 0x00],
            (0x81, 0) => vec![0, 0],
            (0x82, 0) => {
                let ep = setup.index as u8;
                let e = ep_index(ep).filter(|_| id.has_endpoint(ep)).ok_or(TransferError::Stall)?;
                vec![u8::from(self.ports[i].halted[e]), 0]
            }
            _ => return Err(TransferError::Stall),
        };
        let n = reply.len().min(buf.len());
        buf[..n].copy_from_slice(&reply[..n]);
        Ok(n)
    }

    /// MODEL: LOAD-5, LOAD-6, LOAD-7.
    fn cpucs_release(&mut self, now: Instant) {
        self.fx2.held = false;
        let digest = self.fx2.digest();
        let expected = usb_image_for(self.cfg.hw_revision);
        let verdict = judge(
            &digest,
            self.fx2.written,
            expected,
            &self.cfg.core.extra_usb_digests,
            self.cfg.core.usb_image_check,
        );
        match verdict {
            Some(version) => {
                self.fw = Firmware {
                    stage: UsbStage::UsbFirmware,
                    usb_version: version6(version),
                    ..Firmware::COLD
                };
                self.dev_send = None;
                self.loader = Loader::default();
                self.data.power_on_reset(false);
                self.event(DeviceEvent::FirmwareLoaded {
                    at: now,
                    kind: FirmwareKind::Usb,
                    version: version.into(),
                });
                self.renumerate(now);
            }
            None => {
                if self.fw.stage != UsbStage::Cold {
                    self.fw.cpu = Cpu::Broken;
                }
                self.event(DeviceEvent::FirmwareRefused { at: now, kind: FirmwareKind::Usb });
            }
        }
    }

    // ----- TwinStar watchdog -------------------------------------------------------------

    /// MODEL: TWS-10 — the timeout, clamped to 50 ms ..= 60 s.
    pub(crate) fn watchdog_timeout(&self) -> Duration {
        let t = self.cfg.core.watchdog_timeout;
        t.max(Duration::from_millis(50)).min(Duration::from_secs(60))
    }

    /// MODEL: TWS-9.
    fn watchdog_feed(&mut self, now: Instant) {
        self.counters.watchdog_feeds += 1;
        self.wd.last_feed = Some(now);
        if self.wd.armed {
            self.wd.deadline = Some(now + self.watchdog_timeout());
            self.wd.expired = false;
        }
    }

    /// MODEL: TWS-6 — arm (restarting the timer) or disarm.
    pub(crate) fn watchdog_set(&mut self, now: Instant, armed: bool) {
        self.wd.armed = armed;
        self.wd.expired = false;
        self.wd.deadline = armed.then(|| now + self.watchdog_timeout());
    }

    /// MODEL: TWS-19.
    pub(crate) fn xpd_alive(&self, now: Instant) -> bool {
        self.wd.last_feed.is_some_and(|t| now < t + self.watchdog_timeout())
    }

    /// MODEL: TWS-11, TWS-15.
    fn watchdog_expire(&mut self, now: Instant) {
        self.wd.deadline = None;
        self.wd.expired = true;
        self.counters.watchdog_expiries += 1;
        self.event(DeviceEvent::WatchdogExpired { at: now });
        let other = 1 - self.active.min(1);
        if self.cfg.twinstar && self.port_power(other) {
            self.jump(now, other, JumpReason::Watchdog);
        }
    }

    /// TWS_PWR_GET bits (TWS-4, TWS-15).
    pub(crate) fn power_bits(&self) -> u8 {
        (0..self.port_count()).filter(|&p| self.port_power(p)).fold(0, |b, p| b | 1 << p)
    }

    /// MODEL: MPP-18 — writes a changed EEPROM to its file (EEPROM_SET, CAPS_SET,
    /// EXTRAINFO_SET, EEPROM DEV_SEND segments).
    fn persist_eeprom(&mut self, now: Instant) {
        if !self.eeprom.take_dirty() {
            return;
        }
        let Some(path) = self.cfg.core.eeprom_file.as_deref() else { return };
        if let Err(reason) = self.eeprom.save_file(path) {
            self.counters.eeprom_file_errors += 1;
            self.event(DeviceEvent::EepromFileError { at: now, write: true, reason });
        }
    }

    /// The current EEPROM kind.
    pub(crate) const fn eeprom_kind(&self) -> EepromKind {
        self.eeprom.kind()
    }

    /// Queues an MPP reply on 0x88 of `port` (after `mpp_latency`, MPP-1).
    pub(crate) fn mpp_reply(&mut self, now: Instant, port: u8, bytes: Vec<u8>) {
        let latency = self.cfg.core.mpp_latency;
        self.push_in(now, port, ep::MGMT_IN, bytes, latency);
    }

    /// The loader's view for tests: number of bytes downloaded into FX2 RAM since the hold.
    pub fn fx2_downloaded(&self) -> usize {
        self.fx2.written
    }
}
