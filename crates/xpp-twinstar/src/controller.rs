//! The controller's state machine (see the crate doc).

use std::collections::{BTreeMap, VecDeque};

use xpp_proto::mgmt::{OwnedReply, Request, TwsPower};
use xpp_proto::timer::TimerTable;
use xpp_proto::{Duration, Instant};

use crate::timeline::{Phase, Timeline};

/// One Astribank of this host, as the driver names it (stable while the driver runs, across
/// the device's disconnects).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeviceKey(pub u32);

/// Which role a host starts in. The device decides in the end: the host whose port is active
/// drives the lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// This host drives the lines (its devices are attached and taken over).
    Master,
    /// This host waits, warm, for the devices to come to its port.
    Backup,
}

/// An operator's (or cluster manager's) command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Command {
    /// Start in a role. The device decides who drives it: the devices present on this host's
    /// port are taken over in either role; a backup with none waits for them.
    Start(Role),
    /// Move the devices to the other port now (planned switch-over). Refused, with an event,
    /// when the other port has no power.
    Jump,
    /// Arm the watchdogs (and re-arm them after every take-over, the default).
    EnableWatchdog,
    /// Disarm the watchdogs and leave them disarmed after take-overs (like dahdi-tools'
    /// `twinstar_no_autojump`).
    DisableWatchdog,
    /// Orderly stop: the watchdogs are disarmed first, then the devices released; never a
    /// jump.
    Stop,
}

/// The TwinStar MPP requests the controller sends (docs/reference/mpp-twinstar-firmware.md
/// §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MppRequest {
    /// TWS_PORT_GET: which port is active.
    PortGet,
    /// TWS_PWR_GET: which ports have power (a host connected).
    PowerGet,
    /// TWS_WD_MODE_SET: arm (true) or disarm the watchdog; answered by an ACK.
    WatchdogSet(bool),
    /// TWS_PORT_SET: jump to this port; not answered.
    PortSet(u8),
}

impl MppRequest {
    /// The wire request.
    pub const fn to_request(self) -> Request<'static> {
        match self {
            Self::PortGet => Request::TwsPortGet,
            Self::PowerGet => Request::TwsPwrGet,
            Self::WatchdogSet(armed) => Request::TwsWdModeSet { armed },
            Self::PortSet(port) => Request::TwsPortSet { port },
        }
    }
}

/// A hook the integrator runs (the dahdi-tools `twinstar_hook` / `astribank_hook` events).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Hook {
    /// The devices came online on this host (`ACTION=online`).
    Online,
    /// The devices left this host (`ACTION=offline`).
    Offline,
    /// The PBX is unhealthy and no other host can take the lines.
    LastResort,
}

/// What the driver is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Send a management request to the device; its answer comes back through
    /// [`Controller::handle_mpp_reply`] or [`Controller::handle_mpp_failed`] (a request
    /// without an answer, [`MppRequest::PortSet`], needs neither).
    Mpp {
        /// The device.
        device: DeviceKey,
        /// The request.
        request: MppRequest,
    },
    /// Take the device's lines over: attach and verify it (a full init only if it cannot be
    /// trusted), then report with [`Controller::handle_takeover_done`].
    TakeOver {
        /// The device.
        device: DeviceKey,
    },
    /// Stop driving the device: close its data stream (an armed watchdog then fires).
    Release {
        /// The device.
        device: DeviceKey,
    },
    /// Run the integrator's health check and report with [`Controller::handle_health`].
    CheckHealth,
    /// Ask whether the other host is ready to take the lines back (automatic failback,
    /// [`Failback::Automatic`]), and report with [`Controller::handle_peer_ready`].
    CheckPeer,
    /// Run a hook.
    RunHook {
        /// Which.
        hook: Hook,
    },
}

/// Why a hand-over started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HandOverReason {
    /// The PBX failed [`Config::health_failures`] health checks in a row.
    Unhealthy,
    /// [`Command::Jump`].
    Operator,
    /// Automatic failback to the host that started as master ([`Failback::Automatic`]).
    Failback,
    /// Some of this installation's Astribanks are on this host and more of them on the
    /// other: the minority moves to join the others ([`Config::expected_devices`]).
    Regroup,
}

/// Why a hand-over did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RefusalReason {
    /// The other port of a device has no power (no host there).
    NoPower,
    /// A device did not say which ports have power.
    NoAnswer,
    /// Too soon after the last switch ([`Config::min_dwell`], [`Config::max_switches`]).
    Flapping,
    /// This host has no device to hand over.
    NoDevice,
    /// The devices did not leave after TWS_PORT_SET and a release; they are taken back.
    DidNotLeave,
}

/// What the controller reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// This host's role changed.
    RoleChanged {
        /// The new role.
        role: Role,
    },
    /// The PBX's health changed (first failed check, or the first good one after failures).
    HealthChanged {
        /// Healthy now.
        healthy: bool,
    },
    /// A device confirmed its watchdog mode (the ACK of TWS_WD_MODE_SET).
    WatchdogChanged {
        /// The device.
        device: DeviceKey,
        /// Armed now.
        armed: bool,
    },
    /// A hand-over started.
    HandOverStarted {
        /// Why.
        reason: HandOverReason,
    },
    /// A hand-over was refused or failed; the lines stay on this host.
    HandOverRefused {
        /// Why.
        reason: RefusalReason,
    },
    /// A failover ended on this host (master: the devices left; backup: first audio), with
    /// its phases.
    Failover {
        /// The phases.
        timeline: Timeline,
    },
    /// A take-over could not trust the device (its verify failed) and fell back to a full
    /// init: the lines are re-initialised and calls in progress on it are lost.
    FullInit {
        /// The device.
        device: DeviceKey,
    },
    /// A take-over failed; the driver may offer the device again.
    TakeOverFailed {
        /// The device.
        device: DeviceKey,
    },
    /// A management request failed.
    MppFailed {
        /// The device.
        device: DeviceKey,
        /// The request.
        request: MppRequest,
    },
    /// The orderly stop is complete: watchdogs disarmed (or not answering), devices
    /// released.
    Stopped,
}

/// Whether the lines go back, by themselves, to the host that started as master once it is
/// back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Failback {
    /// Only an operator's (or cluster manager's) [`Command::Jump`] moves them back (the
    /// default: a host that just failed is not trusted again until someone says so).
    #[default]
    Manual,
    /// A host that started as backup and became master hands the lines back once the other
    /// port has had power for `hold_down` without a break and the peer check
    /// ([`Action::CheckPeer`]) says the other host is ready; subject to the anti-flap limits.
    Automatic {
        /// How long the other port must have had power.
        hold_down: Duration,
    },
}

/// Controller parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// How often the PBX's health is checked while this host is master.
    // Decision: 500 ms, with 3 failures: a hung PBX is detected within about 1.5 s, and one
    // slow check (a busy PBX) does not switch.
    pub health_interval: Duration,
    /// A check not answered within this time counts as failed (a hung PBX may hang its
    /// check too).
    pub health_timeout: Duration,
    /// Failed checks in a row that make the master hand over.
    pub health_failures: u32,
    /// How long management answers are waited for (docs/reference/mpp-twinstar-firmware.md
    /// §2.5: the reference's per-transfer timeout is 2 s).
    pub mpp_timeout: Duration,
    /// How long the devices may take to leave after TWS_PORT_SET before the data stream is
    /// released (so the watchdog fires), and again before the hand-over is given up.
    pub jump_timeout: Duration,
    /// No deliberate hand-over this soon after becoming master.
    pub min_dwell: Duration,
    /// At most this many deliberate hand-overs ...
    pub max_switches: u32,
    /// ... in any window of this length.
    pub switch_window: Duration,
    /// Failback to the host that started as master.
    pub failback: Failback,
    /// How many Astribanks this installation has (on both hosts together; 0: unknown). With
    /// it, a host that holds fewer of them than the other host, once arrivals and departures
    /// have settled, moves its units to the other port, so that a unit found on the wrong
    /// port joins the others (no partial switching). On a tie the host that started as
    /// backup moves; both hosts apply the same rule to the same count, so they never trade
    /// units back and forth.
    pub expected_devices: u32,
    /// How long arrivals and departures must have been quiet before the counts above are
    /// compared (a watchdog failover brings the units over a few milliseconds apart).
    pub settle: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            health_interval: Duration::from_millis(500),
            health_timeout: Duration::from_millis(1000),
            health_failures: 3,
            mpp_timeout: Duration::from_millis(2000),
            // Decision: 1 s: a TWS_PORT_SET the device accepted disconnects this host at once
            // (the jump delay counts on the other side), so a second is ample.
            jump_timeout: Duration::from_millis(1000),
            // Decision: 30 s dwell, 3 switches per 10 minutes: a PBX that fails on every
            // host does not bounce the lines back and forth.
            min_dwell: Duration::from_secs(30),
            max_switches: 3,
            switch_window: Duration::from_secs(600),
            failback: Failback::Manual,
            expected_devices: 0,
            // Decision: 3 s: longer than a jump (the device's re-enumeration, about 0.5 s)
            // plus a take-over, so units of one failover never look split.
            settle: Duration::from_secs(3),
        }
    }
}

impl Config {
    /// Sets the health check interval, timeout and the failures that trigger a hand-over.
    #[must_use]
    pub const fn with_health(mut self, interval: Duration, timeout: Duration, failures: u32) -> Self {
        self.health_interval = interval;
        self.health_timeout = timeout;
        self.health_failures = failures;
        self
    }

    /// Sets the anti-flap limits.
    #[must_use]
    pub const fn with_anti_flap(mut self, min_dwell: Duration, max_switches: u32, window: Duration) -> Self {
        self.min_dwell = min_dwell;
        self.max_switches = max_switches;
        self.switch_window = window;
        self
    }

    /// Sets [`Config::failback`].
    #[must_use]
    pub const fn with_failback(mut self, failback: Failback) -> Self {
        self.failback = failback;
        self
    }

    /// Sets [`Config::expected_devices`] and [`Config::settle`].
    #[must_use]
    pub const fn with_expected_devices(mut self, count: u32, settle: Duration) -> Self {
        self.expected_devices = count;
        self.settle = settle;
        self
    }

    /// Sets [`Config::jump_timeout`].
    #[must_use]
    pub const fn with_jump_timeout(mut self, timeout: Duration) -> Self {
        self.jump_timeout = timeout;
        self
    }
}

xpp_proto::timer_enum! {
    /// The controller's deadlines.
    enum Timer {
        /// The next health check.
        HealthCheck,
        /// The pending health check counts as failed.
        HealthDeadline,
        /// Management answers of a hand-over or a stop are no longer waited for.
        Mpp,
        /// The devices should have left after TWS_PORT_SET (then: after the release).
        Jump,
        /// Arrivals and departures have settled: compare the unit counts.
        Settle,
        /// The next look at the other port's power (automatic failback).
        Failback,
    }
}

/// Where the controller is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Not started.
    Idle,
    /// Running: master while devices are taken over here, backup otherwise.
    Running,
    /// A hand-over: asking every device for its ports' power.
    AskingPower(HandOverReason),
    /// A hand-over: TWS_PORT_SET sent; waiting for the devices to leave (`released`: the data
    /// streams were closed as well).
    Jumping { released: bool },
    /// An orderly stop: waiting for the watchdogs to be disarmed.
    Stopping,
    /// Stopped.
    Stopped,
}

/// One device of this host.
#[derive(Debug, Clone, Copy, Default)]
struct Dev {
    /// Present on this host's bus.
    attached: bool,
    /// Its lines are driven here (take-over done).
    taken: bool,
    /// The active port it reported (this host's port while attached).
    port: Option<u8>,
    /// Power bits, as last reported during a hand-over.
    power: Option<TwsPower>,
    /// The power request of a hand-over failed.
    power_failed: bool,
    /// Armed, as last confirmed.
    armed: Option<bool>,
    /// A stop waits for this device's disarm.
    disarm_pending: bool,
}

/// The TwinStar controller of one host (see the crate doc).
///
/// Method kinds, quinn style: commands and inputs (`handle_*`), then outputs polled in this
/// order after every input: [`Controller::poll_action`] until `None`,
/// [`Controller::poll_event`] until `None`, then [`Controller::poll_timeout`] for when to call
/// [`Controller::handle_timeout`].
#[derive(Debug)]
pub struct Controller {
    config: Config,
    state: State,
    role: Role,
    /// The role asked for at the start (the tie-break of [`Config::expected_devices`], and
    /// who fails back to whom).
    started_as: Role,
    /// Since when every device here has reported power on its other port (failback).
    peer_powered_since: Option<Instant>,
    /// A failback poll's power requests are out.
    failback_polling: bool,
    devices: BTreeMap<DeviceKey, Dev>,
    /// Arm watchdogs after take-overs.
    watchdog_wanted: bool,
    /// Failed health checks in a row.
    failures: u32,
    healthy: bool,
    /// When this host last became master.
    master_since: Option<Instant>,
    /// Deliberate hand-overs, for the anti-flap window.
    switches: VecDeque<Instant>,
    timers: TimerTable<Timer, 6>,
    timeline: Timeline,
    actions: VecDeque<Action>,
    events: VecDeque<Event>,
}

impl Controller {
    /// A controller, not started.
    pub fn new(config: Config) -> Self {
        Self {
            config,
            state: State::Idle,
            role: Role::Backup,
            started_as: Role::Backup,
            peer_powered_since: None,
            failback_polling: false,
            devices: BTreeMap::new(),
            watchdog_wanted: true,
            failures: 0,
            healthy: true,
            master_since: None,
            switches: VecDeque::new(),
            timers: TimerTable::new(),
            timeline: Timeline::default(),
            actions: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// The current role.
    pub const fn role(&self) -> Role {
        self.role
    }

    /// Whether the last health result was good (true before any check).
    pub const fn is_healthy(&self) -> bool {
        self.healthy
    }

    /// Whether an orderly stop has completed.
    pub fn is_stopped(&self) -> bool {
        self.state == State::Stopped
    }

    /// The current (or last) failover's timeline.
    pub const fn timeline(&self) -> &Timeline {
        &self.timeline
    }

    /// The devices present on this host.
    pub fn devices(&self) -> impl Iterator<Item = DeviceKey> + '_ {
        self.devices.iter().filter(|(_, d)| d.attached).map(|(k, _)| *k)
    }

    /// An operator's command.
    pub fn handle_command(&mut self, now: Instant, command: Command) {
        match (self.state, command) {
            (State::Idle, Command::Start(role)) => {
                self.state = State::Running;
                self.started_as = role;
                log::info!("twinstar: started as {role:?}");
                // The device decides: only the active port's host sees it, so whatever is
                // attached here (now or later) is taken over, whichever role was asked for.
                let here: Vec<DeviceKey> = self.devices().collect();
                for device in here {
                    self.actions.push_back(Action::TakeOver { device });
                }
            }
            (State::Stopped | State::Stopping, _) | (_, Command::Start(_)) => {
                log::debug!("twinstar: {command:?} ignored in {:?}", self.state);
            }
            (State::Idle, Command::Stop) => self.finish_stop(),
            (State::Idle, _) => log::debug!("twinstar: {command:?} before start"),
            (_, Command::Jump) => self.start_hand_over(now, HandOverReason::Operator),
            (_, Command::EnableWatchdog | Command::DisableWatchdog) => {
                let armed = command == Command::EnableWatchdog;
                self.watchdog_wanted = armed;
                self.mpp_to_taken(MppRequest::WatchdogSet(armed));
            }
            (_, Command::Stop) => self.start_stop(now),
        }
    }

    /// A device appeared on this host (attached, in any stage). It is taken over once the
    /// controller runs.
    pub fn handle_device_arrived(&mut self, now: Instant, device: DeviceKey) {
        let d = self.devices.entry(device).or_default();
        *d = Dev { attached: true, ..Dev::default() };
        self.arm_settle(now);
        if matches!(self.state, State::Running) {
            if self.role == Role::Backup {
                self.timeline = Timeline::default();
            }
            self.timeline.begin(now, Phase::TakeOver);
            self.actions.push_back(Action::TakeOver { device });
        }
    }

    /// A device left this host (a jump, an unplug, a power cut).
    pub fn handle_device_left(&mut self, now: Instant, device: DeviceKey) {
        if let Some(d) = self.devices.get_mut(&device) {
            *d = Dev::default();
        }
        self.arm_settle(now);
        let any_here = self.devices.values().any(|d| d.attached);
        match self.state {
            State::Jumping { .. } if !any_here => {
                self.timers.stop(Timer::Jump);
                self.timeline.end(now);
                self.events.push_back(Event::Failover { timeline: self.timeline.clone() });
                self.state = State::Running;
                self.become_backup();
            }
            State::Stopping if !any_here => self.finish_stop(),
            State::Running | State::AskingPower(_) if !self.devices.values().any(|d| d.taken) => {
                if matches!(self.state, State::AskingPower(_)) {
                    self.timers.stop(Timer::Mpp);
                    self.state = State::Running;
                }
                self.become_backup();
            }
            _ => {}
        }
    }

    /// The driver finished a take-over: `ok` when the device's spans are up.
    pub fn handle_takeover_done(&mut self, now: Instant, device: DeviceKey, ok: bool) {
        let Some(d) = self.devices.get_mut(&device).filter(|d| d.attached) else { return };
        if !ok {
            self.events.push_back(Event::TakeOverFailed { device });
            return;
        }
        d.taken = true;
        if self.timeline.open_phase().is_some_and(|(p, _)| matches!(p, Phase::TakeOver | Phase::FullInit)) {
            self.timeline.begin(now, Phase::FirstAudio);
        }
        // Re-arm: the watchdog does not survive a jump (docs/reference/mpp-twinstar-firmware.md
        // §4.3: the hooks re-arm it every time a unit comes online).
        self.actions.push_back(Action::Mpp { device, request: MppRequest::PortGet });
        if self.watchdog_wanted && self.healthy {
            self.actions.push_back(Action::Mpp { device, request: MppRequest::WatchdogSet(true) });
        }
        if self.role == Role::Backup {
            self.role = Role::Master;
            self.master_since = Some(now);
            self.failures = 0;
            self.events.push_back(Event::RoleChanged { role: Role::Master });
            self.actions.push_back(Action::RunHook { hook: Hook::Online });
            self.timers.set(Timer::HealthCheck, now);
            if self.started_as == Role::Backup && matches!(self.config.failback, Failback::Automatic { .. }) {
                self.peer_powered_since = None;
                self.timers.set(Timer::Failback, now + self.config.health_interval);
            }
        }
    }

    /// The take-over of `device` could not verify it and goes on with a full init (reported
    /// as [`Event::FullInit`] and as [`Phase::FullInit`] in the timeline); its end is still
    /// reported with [`Controller::handle_takeover_done`].
    pub fn handle_takeover_fallback(&mut self, now: Instant, device: DeviceKey) {
        if !self.devices.get(&device).is_some_and(|d| d.attached) {
            return;
        }
        self.events.push_back(Event::FullInit { device });
        if self.timeline.open_phase().is_some_and(|(p, _)| p == Phase::TakeOver) {
            self.timeline.begin(now, Phase::FullInit);
        }
    }

    /// The first audio frame went both ways on a taken-over device: the failover is complete
    /// on this host.
    pub fn handle_first_audio(&mut self, now: Instant, _device: DeviceKey) {
        if self.timeline.open_phase().is_some_and(|(p, _)| p == Phase::FirstAudio) {
            self.timeline.end(now);
            self.events.push_back(Event::Failover { timeline: self.timeline.clone() });
        }
    }

    /// The result of the health check asked for with [`Action::CheckHealth`].
    pub fn handle_health(&mut self, now: Instant, healthy: bool) {
        if !self.timers.is_armed(Timer::HealthDeadline) {
            log::debug!("twinstar: health result without a pending check");
        }
        self.timers.stop(Timer::HealthDeadline);
        self.health_result(now, healthy);
    }

    /// The answer to [`Action::CheckPeer`]: whether the other host is ready to take the lines
    /// back. A ready peer starts the failback (anti-flap limits permitting).
    pub fn handle_peer_ready(&mut self, now: Instant, ready: bool) {
        let waiting = self.role == Role::Master
            && self.state == State::Running
            && self.started_as == Role::Backup
            && self.peer_powered_since.is_some();
        if !waiting {
            log::debug!("twinstar: peer answer ({ready}) not waited for");
        } else if ready && self.healthy {
            self.start_hand_over(now, HandOverReason::Failback);
        } else {
            log::info!("twinstar: failback: the other host is not ready");
        }
    }

    /// A device's answer to an [`Action::Mpp`] request.
    pub fn handle_mpp_reply(
        &mut self,
        now: Instant,
        device: DeviceKey,
        request: MppRequest,
        reply: &OwnedReply,
    ) {
        let Some(d) = self.devices.get_mut(&device) else { return };
        match (request, reply) {
            (MppRequest::PortGet, OwnedReply::TwsPortGetReply { port }) => d.port = Some(*port),
            (MppRequest::PowerGet, OwnedReply::TwsPwrGetReply(power)) => {
                d.power = Some(*power);
                d.power_failed = false;
            }
            (MppRequest::WatchdogSet(armed), OwnedReply::Ack { .. }) => {
                d.armed = Some(armed);
                d.disarm_pending &= armed;
                self.events.push_back(Event::WatchdogChanged { device, armed });
            }
            (request, reply) => {
                log::warn!("twinstar: {device:?}: unexpected answer to {request:?}: {reply:?}");
                return self.handle_mpp_failed(now, device, request);
            }
        }
        self.progress(now);
    }

    /// An [`Action::Mpp`] request failed (refused, no answer, the device gone).
    pub fn handle_mpp_failed(&mut self, now: Instant, device: DeviceKey, request: MppRequest) {
        self.events.push_back(Event::MppFailed { device, request });
        if let Some(d) = self.devices.get_mut(&device) {
            match request {
                MppRequest::PowerGet => d.power_failed = true,
                MppRequest::WatchdogSet(false) => d.disarm_pending = false,
                _ => {}
            }
        }
        self.progress(now);
    }

    /// Runs what is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.timers.take_expired(Timer::HealthDeadline, now).is_some() {
            log::warn!("twinstar: health check not answered in time");
            self.health_result(now, false);
        }
        if self.timers.take_expired(Timer::HealthCheck, now).is_some() && self.role == Role::Master {
            // One check at a time (a hung check counts once, at its deadline), and none while
            // a hand-over or a stop is under way.
            if self.state == State::Running && !self.timers.is_armed(Timer::HealthDeadline) {
                self.actions.push_back(Action::CheckHealth);
                self.timers.set(Timer::HealthDeadline, now + self.config.health_timeout);
            }
            self.timers.set(Timer::HealthCheck, now + self.config.health_interval);
        }
        if self.timers.take_expired(Timer::Mpp, now).is_some() {
            match self.state {
                State::AskingPower(_) => {
                    for d in self.devices.values_mut().filter(|d| d.attached && d.power.is_none()) {
                        d.power_failed = true;
                    }
                }
                State::Stopping => {
                    for d in self.devices.values_mut() {
                        d.disarm_pending = false;
                    }
                }
                _ => {}
            }
            self.progress(now);
        }
        if self.timers.take_expired(Timer::Settle, now).is_some() {
            self.regroup(now);
        }
        if self.timers.take_expired(Timer::Failback, now).is_some() {
            self.poll_failback(now);
        }
        if self.timers.take_expired(Timer::Jump, now).is_some()
            && let State::Jumping { released } = self.state
        {
            let here: Vec<DeviceKey> = self.devices().collect();
            if released {
                // Neither the jump nor the watchdog moved the devices: take them back.
                self.events.push_back(Event::HandOverRefused { reason: RefusalReason::DidNotLeave });
                self.state = State::Running;
                self.timeline.end(now);
                for device in here {
                    if let Some(d) = self.devices.get_mut(&device) {
                        d.taken = false;
                    }
                    self.actions.push_back(Action::TakeOver { device });
                }
            } else {
                // The jump did not happen: stop the data stream so the armed watchdog fires.
                for device in here {
                    self.actions.push_back(Action::Release { device });
                }
                self.state = State::Jumping { released: true };
                self.timers.set(Timer::Jump, now + self.config.jump_timeout);
            }
        }
    }

    /// The next thing for the driver to do.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Controller::handle_timeout`] must run next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next_timeout()
    }

    fn health_result(&mut self, now: Instant, healthy: bool) {
        if healthy {
            if !self.healthy {
                self.events.push_back(Event::HealthChanged { healthy: true });
            }
            self.healthy = true;
            self.failures = 0;
            return;
        }
        self.failures += 1;
        if self.healthy {
            self.healthy = false;
            self.events.push_back(Event::HealthChanged { healthy: false });
        }
        if self.failures == 1 && self.role == Role::Master && self.state == State::Running {
            self.timeline = Timeline::default();
            self.timeline.begin(now, Phase::Detect);
        }
        if self.failures >= self.config.health_failures
            && self.role == Role::Master
            && self.state == State::Running
        {
            self.start_hand_over(now, HandOverReason::Unhealthy);
        }
    }

    fn start_hand_over(&mut self, now: Instant, reason: HandOverReason) {
        if self.state != State::Running {
            log::debug!("twinstar: hand-over ({reason:?}) ignored in {:?}", self.state);
            return;
        }
        let here: Vec<DeviceKey> = self.devices().collect();
        if here.is_empty() || self.role != Role::Master {
            return self.refuse(now, RefusalReason::NoDevice);
        }
        let flapping = match reason {
            HandOverReason::Unhealthy | HandOverReason::Failback => self.flapping(now),
            // Convergence, right after a take-over: only the switch count limits it.
            HandOverReason::Regroup => self.window_full(now),
            _ => false,
        };
        if flapping {
            return self.refuse(now, RefusalReason::Flapping);
        }
        self.events.push_back(Event::HandOverStarted { reason });
        if reason != HandOverReason::Unhealthy {
            self.timeline = Timeline::default();
            self.timeline.begin(now, Phase::Detect);
        }
        for device in here {
            if let Some(d) = self.devices.get_mut(&device) {
                (d.power, d.power_failed) = (None, false);
            }
            self.actions.push_back(Action::Mpp { device, request: MppRequest::PowerGet });
        }
        self.state = State::AskingPower(reason);
        self.timers.set(Timer::Mpp, now + self.config.mpp_timeout);
    }

    /// Whether a deliberate hand-over now would be flapping.
    fn flapping(&mut self, now: Instant) -> bool {
        let too_soon =
            self.master_since.is_some_and(|t| now.saturating_duration_since(t) < self.config.min_dwell);
        too_soon || self.window_full(now)
    }

    /// Whether [`Config::max_switches`] deliberate hand-overs happened in the last
    /// [`Config::switch_window`] (older ones are forgotten).
    fn window_full(&mut self, now: Instant) -> bool {
        let window = self.config.switch_window;
        while self.switches.front().is_some_and(|&t| now.saturating_duration_since(t) >= window) {
            self.switches.pop_front();
        }
        self.switches.len() >= self.config.max_switches as usize
    }

    fn refuse(&mut self, now: Instant, reason: RefusalReason) {
        self.events.push_back(Event::HandOverRefused { reason });
        if !self.healthy && matches!(reason, RefusalReason::NoPower | RefusalReason::NoAnswer) {
            // Neither host can serve: the integrator's last resort.
            self.actions.push_back(Action::RunHook { hook: Hook::LastResort });
        }
        self.timeline.end(now);
        self.state = State::Running;
    }

    /// Moves a hand-over or a stop on once the answers it waits for are in.
    fn progress(&mut self, now: Instant) {
        match self.state {
            State::AskingPower(reason) => {
                let here: Vec<(DeviceKey, Dev)> =
                    self.devices.iter().filter(|(_, d)| d.attached).map(|(k, d)| (*k, *d)).collect();
                if here.iter().any(|(_, d)| d.power.is_none() && !d.power_failed) {
                    return;
                }
                self.timers.stop(Timer::Mpp);
                if here.iter().any(|(_, d)| d.power_failed) {
                    return self.refuse(now, RefusalReason::NoAnswer);
                }
                // All or none: every device must be able to move (no partial switching).
                let target = |d: &Dev| 1 - d.port.unwrap_or(0).min(1);
                if here.iter().any(|(_, d)| !d.power.is_some_and(|p| p.has_power(target(d)))) {
                    return self.refuse(now, RefusalReason::NoPower);
                }
                if reason != HandOverReason::Operator {
                    self.switches.push_back(now);
                }
                self.timeline.begin(now, Phase::HandOver);
                for (device, d) in here {
                    self.actions.push_back(Action::Mpp { device, request: MppRequest::PortSet(target(&d)) });
                }
                self.state = State::Jumping { released: false };
                self.timers.set(Timer::Jump, now + self.config.jump_timeout);
            }
            State::Stopping if !self.devices.values().any(|d| d.disarm_pending) => {
                self.timers.stop(Timer::Mpp);
                let here: Vec<DeviceKey> = self.devices().collect();
                for device in here {
                    self.actions.push_back(Action::Release { device });
                }
                self.finish_stop();
            }
            _ => {}
        }
    }

    fn start_stop(&mut self, now: Instant) {
        let taken: Vec<DeviceKey> =
            self.devices.iter().filter(|(_, d)| d.attached && d.taken).map(|(k, _)| *k).collect();
        self.timers.stop_all();
        self.state = State::Stopping;
        for &device in &taken {
            if let Some(d) = self.devices.get_mut(&device) {
                d.disarm_pending = true;
            }
            self.actions.push_back(Action::Mpp { device, request: MppRequest::WatchdogSet(false) });
        }
        self.timers.set(Timer::Mpp, now + self.config.mpp_timeout);
        self.progress(now);
    }

    fn finish_stop(&mut self) {
        self.timers.stop_all();
        if self.role == Role::Master {
            self.actions.push_back(Action::RunHook { hook: Hook::Offline });
            self.role = Role::Backup;
            self.events.push_back(Event::RoleChanged { role: Role::Backup });
        }
        self.state = State::Stopped;
        self.events.push_back(Event::Stopped);
    }

    fn become_backup(&mut self) {
        self.timers.stop(Timer::HealthCheck);
        self.timers.stop(Timer::HealthDeadline);
        self.timers.stop(Timer::Failback);
        self.peer_powered_since = None;
        self.failback_polling = false;
        if self.role == Role::Master {
            self.role = Role::Backup;
            self.master_since = None;
            self.events.push_back(Event::RoleChanged { role: Role::Backup });
            self.actions.push_back(Action::RunHook { hook: Hook::Offline });
        }
        // The checks stop with the role; the last result is kept (a host that handed over
        // for its PBX's sake does not re-arm a watchdog until a check passes again).
        self.failures = 0;
    }

    /// Restarts the settle timer of [`Config::expected_devices`].
    fn arm_settle(&mut self, now: Instant) {
        if self.config.expected_devices > 0 && matches!(self.state, State::Running | State::Idle) {
            self.timers.set(Timer::Settle, now + self.config.settle);
        }
    }

    /// Arrivals and departures have settled: a minority of the installation's units on this
    /// host moves to the other port (see [`Config::expected_devices`]).
    fn regroup(&mut self, now: Instant) {
        let expected = self.config.expected_devices as usize;
        let here = self.devices().count();
        if self.state != State::Running || here == 0 || here >= expected {
            return;
        }
        if self.devices.values().any(|d| d.attached && !d.taken) {
            // A take-over is still under way: look again later.
            return self.arm_settle(now);
        }
        let there = expected - here;
        let yield_here = here < there || (here == there && self.started_as == Role::Backup);
        if yield_here {
            log::info!("twinstar: {here} of {expected} units here, {there} elsewhere: moving ours");
            self.start_hand_over(now, HandOverReason::Regroup);
        }
    }

    /// Automatic failback: asks the devices for their ports' power, and the peer check once
    /// the other port has had power for the hold-down.
    fn poll_failback(&mut self, now: Instant) {
        let Failback::Automatic { hold_down } = self.config.failback else { return };
        if self.role != Role::Master || self.started_as != Role::Backup {
            return;
        }
        self.timers.set(Timer::Failback, now + self.config.health_interval);
        if self.state != State::Running {
            return;
        }
        if self.failback_polling {
            // The last poll's answers are in (or never came): judge them.
            self.failback_polling = false;
            let here: Vec<Dev> = self.devices.values().filter(|d| d.attached).copied().collect();
            let powered = !here.is_empty()
                && here.iter().all(|d| {
                    let other = 1 - d.port.unwrap_or(0).min(1);
                    d.power.is_some_and(|p| p.has_power(other))
                });
            if !powered {
                self.peer_powered_since = None;
            } else {
                let since = *self.peer_powered_since.get_or_insert(now);
                if now.saturating_duration_since(since) >= hold_down && self.healthy {
                    self.actions.push_back(Action::CheckPeer);
                }
            }
            return;
        }
        for d in self.devices.values_mut().filter(|d| d.attached) {
            (d.power, d.power_failed) = (None, false);
        }
        self.failback_polling = true;
        self.mpp_to_attached(MppRequest::PowerGet);
    }

    fn mpp_to_attached(&mut self, request: MppRequest) {
        let here: Vec<DeviceKey> = self.devices().collect();
        for device in here {
            self.actions.push_back(Action::Mpp { device, request });
        }
    }

    fn mpp_to_taken(&mut self, request: MppRequest) {
        let taken: Vec<DeviceKey> =
            self.devices.iter().filter(|(_, d)| d.attached && d.taken).map(|(k, _)| *k).collect();
        for device in taken {
            self.actions.push_back(Action::Mpp { device, request });
        }
    }
}
