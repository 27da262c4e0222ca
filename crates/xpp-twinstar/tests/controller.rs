//! The TwinStar controller on a virtual clock: take-over, the health-gated hand-over, the
//! refusals (no power, flapping), the watchdog fallback, the orderly stop.

use xpp_proto::mgmt::{AckStatus, OwnedReply, TwsPower};
use xpp_proto::{Duration, Instant};
use xpp_twinstar::{
    Action, Command, Config, Controller, DeviceKey, Event, HandOverReason, Hook, MppRequest, Phase,
    RefusalReason, Role,
};

const A: DeviceKey = DeviceKey(0);
const B: DeviceKey = DeviceKey(1);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Health every 100 ms (timeout 200 ms), hand-over after 3 failures, no dwell.
fn config() -> Config {
    Config::default().with_health(ms(100), ms(200), 3).with_anti_flap(
        Duration::ZERO,
        3,
        Duration::from_secs(600),
    )
}

/// A controller and its virtual time; every output is collected as it is polled.
struct Host {
    c: Controller,
    now: Instant,
    actions: Vec<Action>,
    events: Vec<Event>,
}

impl Host {
    fn new(config: Config) -> Self {
        Self {
            c: Controller::new(config),
            now: Instant::from_secs(100),
            actions: Vec::new(),
            events: Vec::new(),
        }
    }

    /// Collects what the controller has to say.
    fn drain(&mut self) {
        while let Some(a) = self.c.poll_action() {
            self.actions.push(a);
        }
        while let Some(e) = self.c.poll_event() {
            self.events.push(e);
        }
    }

    /// Takes the actions collected so far.
    fn take_actions(&mut self) -> Vec<Action> {
        self.drain();
        std::mem::take(&mut self.actions)
    }

    fn take_events(&mut self) -> Vec<Event> {
        self.drain();
        std::mem::take(&mut self.events)
    }

    /// Moves the clock to `t`, running every timer on the way.
    fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        while let Some(t) = self.c.poll_timeout().filter(|&t| t <= end) {
            self.now = self.now.max(t);
            self.c.handle_timeout(self.now);
            self.drain();
        }
        self.now = end;
    }

    /// Answers every pending request the way a device on `port` with `power` bits would.
    fn answer(&mut self, actions: &[Action], port: u8, power: u8) {
        for a in actions {
            if let Action::Mpp { device, request } = *a {
                let reply = match request {
                    MppRequest::PortGet => OwnedReply::TwsPortGetReply { port },
                    MppRequest::PowerGet => OwnedReply::TwsPwrGetReply(TwsPower(power)),
                    MppRequest::WatchdogSet(_) => OwnedReply::Ack { status: AckStatus::Ok },
                    _ => continue,
                };
                self.c.handle_mpp_reply(self.now, device, request, &reply);
            }
        }
        self.drain();
    }

    /// A master: started, the devices attached on port 0 and taken over, the first
    /// requests answered.
    fn master(config: Config, devices: &[DeviceKey]) -> Self {
        let mut h = Self::new(config);
        for &d in devices {
            h.c.handle_device_arrived(h.now, d);
        }
        h.c.handle_command(h.now, Command::Start(Role::Master));
        let takeovers = h.take_actions();
        assert_eq!(takeovers, devices.iter().map(|&device| Action::TakeOver { device }).collect::<Vec<_>>());
        for &d in devices {
            h.c.handle_takeover_done(h.now, d, true);
        }
        let actions = h.take_actions();
        h.answer(&actions, 0, 0b11);
        h.take_events();
        assert_eq!(h.c.role(), Role::Master);
        h
    }

    /// The device comes back a second later, is taken over, passes a check, and 31 s pass
    /// (past the default dwell).
    fn comes_back_and_dwells(&mut self, device: DeviceKey) {
        self.now += Duration::from_secs(1);
        self.c.handle_device_arrived(self.now, device);
        self.c.handle_takeover_done(self.now, device, true);
        self.take_actions();
        self.checks(ms(100), true);
        self.now += Duration::from_secs(31);
    }

    /// Runs health checks answered with `healthy` for `d`.
    fn checks(&mut self, d: Duration, healthy: bool) -> Vec<Action> {
        let end = self.now + d;
        let mut seen = Vec::new();
        while let Some(t) = self.c.poll_timeout().filter(|&t| t <= end) {
            self.now = self.now.max(t);
            self.c.handle_timeout(self.now);
            for a in self.take_actions() {
                if a == Action::CheckHealth {
                    self.c.handle_health(self.now, healthy);
                }
                seen.push(a);
            }
        }
        self.now = end;
        seen.extend(self.take_actions());
        seen
    }
}

fn mpp(device: DeviceKey, request: MppRequest) -> Action {
    Action::Mpp { device, request }
}

#[test]
fn backup_takes_over_arms_the_watchdog_and_records_its_timeline() {
    let mut h = Host::new(config());
    h.c.handle_command(h.now, Command::Start(Role::Backup));
    assert_eq!(h.take_actions(), []);
    assert_eq!(h.c.poll_timeout(), None, "a backup without devices waits for nothing");

    h.c.handle_device_arrived(h.now, A);
    assert_eq!(h.take_actions(), [Action::TakeOver { device: A }]);
    h.now += ms(20);
    h.c.handle_takeover_done(h.now, A, true);
    let actions = h.take_actions();
    assert_eq!(
        actions,
        [
            mpp(A, MppRequest::PortGet),
            mpp(A, MppRequest::WatchdogSet(true)),
            Action::RunHook { hook: Hook::Online }
        ]
    );
    h.answer(&actions, 1, 0b11);
    assert_eq!(
        h.take_events(),
        [Event::RoleChanged { role: Role::Master }, Event::WatchdogChanged { device: A, armed: true }]
    );
    h.now += ms(7);
    h.c.handle_first_audio(h.now, A);
    let events = h.take_events();
    let [Event::Failover { timeline }] = events.as_slice() else { panic!("{events:?}") };
    assert_eq!(timeline.duration(Phase::TakeOver), Some(ms(20)));
    assert_eq!(timeline.duration(Phase::FirstAudio), Some(ms(7)));
    assert_eq!(timeline.total(), ms(27));
    // As master it checks its PBX's health.
    assert_eq!(h.c.poll_timeout(), Some(h.now - ms(27) + ms(20)));
    h.advance(Duration::ZERO);
    assert_eq!(h.take_actions(), [Action::CheckHealth]);
}

#[test]
fn a_hung_pbx_hands_over_to_the_powered_backup() {
    let mut h = Host::master(config(), &[A]);
    let t_fail = h.now;
    // Two failures, then a good check: no hand-over, the count starts again.
    let seen = h.checks(ms(150), false);
    assert_eq!(seen.iter().filter(|a| **a == Action::CheckHealth).count(), 2);
    assert!(!seen.iter().any(|a| matches!(a, Action::Mpp { .. })), "{seen:?}");
    assert_eq!(h.checks(ms(100), true), [Action::CheckHealth]);
    assert_eq!(
        h.take_events(),
        [Event::HealthChanged { healthy: false }, Event::HealthChanged { healthy: true }]
    );
    // Three failures in a row: the hand-over asks the device which ports have power.
    let seen = h.checks(ms(250), false);
    assert_eq!(seen.last(), Some(&mpp(A, MppRequest::PowerGet)), "{seen:?}");
    assert!(h.now > t_fail);
    assert_eq!(
        h.take_events(),
        [
            Event::HealthChanged { healthy: false },
            Event::HandOverStarted { reason: HandOverReason::Unhealthy }
        ]
    );
    h.answer(&[mpp(A, MppRequest::PowerGet)], 0, 0b11);
    assert_eq!(h.take_actions(), [mpp(A, MppRequest::PortSet(1))]);
    // The jump: the device leaves this host.
    h.now += ms(3);
    h.c.handle_device_left(h.now, A);
    assert_eq!(h.take_actions(), [Action::RunHook { hook: Hook::Offline }]);
    let events = h.take_events();
    let [Event::Failover { timeline }, Event::RoleChanged { role: Role::Backup }] = events.as_slice() else {
        panic!("{events:?}")
    };
    assert_eq!(
        timeline.phases().iter().map(|p| p.phase).collect::<Vec<_>>(),
        [Phase::Detect, Phase::HandOver]
    );
    assert_eq!(timeline.duration(Phase::HandOver), Some(ms(3)));
    assert_eq!(timeline.duration(Phase::Detect), Some(ms(200)), "first failure to the decision");
    assert_eq!(h.c.role(), Role::Backup);
    assert_eq!(h.checks(Duration::from_secs(5), false), [], "a backup runs no health checks");
}

#[test]
fn unanswered_health_checks_count_as_failures() {
    let mut h = Host::master(config(), &[A]);
    // Checks asked for and never answered (the PBX hangs its check too).
    h.advance(ms(700));
    let actions = h.take_actions();
    assert!(actions.contains(&mpp(A, MppRequest::PowerGet)), "{actions:?}");
    assert!(h.take_events().contains(&Event::HandOverStarted { reason: HandOverReason::Unhealthy }));
}

#[test]
fn no_power_on_the_other_port_refuses_and_runs_the_last_resort() {
    let mut h = Host::master(config(), &[A]);
    h.checks(ms(300), false);
    h.answer(&[mpp(A, MppRequest::PowerGet)], 0, 0b01);
    assert_eq!(h.take_actions(), [Action::RunHook { hook: Hook::LastResort }]);
    assert!(h.take_events().contains(&Event::HandOverRefused { reason: RefusalReason::NoPower }));
    assert_eq!(h.c.role(), Role::Master, "the lines stay here");
    // An operator's jump is refused the same way, without the last resort (the PBX is
    // healthy again).
    h.checks(ms(100), true);
    h.take_events();
    h.c.handle_command(h.now, Command::Jump);
    let actions = h.take_actions();
    assert_eq!(actions, [mpp(A, MppRequest::PowerGet)]);
    h.answer(&actions, 0, 0b01);
    assert_eq!(h.take_actions(), []);
    assert_eq!(
        h.take_events(),
        [
            Event::HandOverStarted { reason: HandOverReason::Operator },
            Event::HandOverRefused { reason: RefusalReason::NoPower }
        ]
    );
}

#[test]
fn an_unanswered_power_request_never_jumps() {
    let mut h = Host::master(config(), &[A]);
    h.c.handle_command(h.now, Command::Jump);
    assert_eq!(h.take_actions(), [mpp(A, MppRequest::PowerGet)]);
    h.advance(Duration::from_secs(3));
    let actions = h.take_actions();
    assert!(!actions.iter().any(|a| matches!(a, Action::Mpp { request: MppRequest::PortSet(_), .. })));
    assert!(h.take_events().contains(&Event::HandOverRefused { reason: RefusalReason::NoAnswer }));
}

#[test]
fn two_devices_switch_together_or_not_at_all() {
    let mut h = Host::master(config(), &[A, B]);
    h.c.handle_command(h.now, Command::Jump);
    let asks = h.take_actions();
    assert_eq!(asks, [mpp(A, MppRequest::PowerGet), mpp(B, MppRequest::PowerGet)]);
    // B's backup port has no power: neither moves.
    h.c.handle_mpp_reply(h.now, A, MppRequest::PowerGet, &OwnedReply::TwsPwrGetReply(TwsPower(0b11)));
    assert_eq!(h.take_actions(), [], "waits for every device");
    h.c.handle_mpp_reply(h.now, B, MppRequest::PowerGet, &OwnedReply::TwsPwrGetReply(TwsPower(0b01)));
    assert_eq!(h.take_actions(), []);
    assert!(h.take_events().contains(&Event::HandOverRefused { reason: RefusalReason::NoPower }));
    // Both powered: both jump; the host is backup only when both have left.
    h.c.handle_command(h.now, Command::Jump);
    let asks = h.take_actions();
    h.answer(&asks, 0, 0b11);
    assert_eq!(h.take_actions(), [mpp(A, MppRequest::PortSet(1)), mpp(B, MppRequest::PortSet(1))]);
    h.c.handle_device_left(h.now, A);
    assert_eq!(h.c.role(), Role::Master);
    h.c.handle_device_left(h.now, B);
    assert_eq!(h.c.role(), Role::Backup);
}

#[test]
fn a_jump_that_does_not_happen_releases_then_takes_the_devices_back() {
    let mut h = Host::master(config().with_jump_timeout(ms(500)), &[A]);
    h.c.handle_command(h.now, Command::Jump);
    let asks = h.take_actions();
    h.answer(&asks, 0, 0b11);
    assert_eq!(h.take_actions(), [mpp(A, MppRequest::PortSet(1))]);
    // The device stays: the data stream is closed so the armed watchdog fires.
    h.advance(ms(500));
    assert_eq!(h.take_actions(), [Action::Release { device: A }]);
    // Still here: the hand-over is given up and the device taken back.
    h.advance(ms(500));
    assert_eq!(h.take_actions(), [Action::TakeOver { device: A }]);
    assert!(h.take_events().contains(&Event::HandOverRefused { reason: RefusalReason::DidNotLeave }));
    assert_eq!(h.c.role(), Role::Master);
}

#[test]
fn health_hand_overs_respect_the_dwell_and_the_window() {
    let flappy = config().with_anti_flap(Duration::from_secs(30), 1, Duration::from_secs(600));
    let mut h = Host::master(flappy, &[A]);
    // Unhealthy right after becoming master: refused for flapping, no MPP sent.
    let seen = h.checks(ms(300), false);
    assert!(!seen.iter().any(|a| matches!(a, Action::Mpp { .. })), "{seen:?}");
    assert!(h.take_events().contains(&Event::HandOverRefused { reason: RefusalReason::Flapping }));
    // An operator may still switch (the dwell guards automatic switches only).
    h.c.handle_command(h.now, Command::Jump);
    assert_eq!(h.take_actions(), [mpp(A, MppRequest::PowerGet)]);
    h.answer(&[mpp(A, MppRequest::PowerGet)], 0, 0b11);
    assert_eq!(h.take_actions(), [mpp(A, MppRequest::PortSet(1))]);
    h.c.handle_device_left(h.now, A);
    h.take_actions();
    // The device comes back later; after the dwell, one health hand-over is allowed...
    h.comes_back_and_dwells(A);
    h.checks(ms(300), false);
    h.answer(&[mpp(A, MppRequest::PowerGet)], 0, 0b11);
    assert_eq!(h.take_actions(), [mpp(A, MppRequest::PortSet(1))]);
    h.c.handle_device_left(h.now, A);
    // ... and the second within the window is refused.
    h.comes_back_and_dwells(A);
    h.take_events();
    let seen = h.checks(ms(300), false);
    assert!(!seen.iter().any(|a| matches!(a, Action::Mpp { request: MppRequest::PowerGet, .. })));
    assert!(h.take_events().contains(&Event::HandOverRefused { reason: RefusalReason::Flapping }));
}

#[test]
fn an_orderly_stop_disarms_first_and_never_jumps() {
    let mut h = Host::master(config(), &[A, B]);
    h.c.handle_command(h.now, Command::Stop);
    let disarms = h.take_actions();
    assert_eq!(disarms, [mpp(A, MppRequest::WatchdogSet(false)), mpp(B, MppRequest::WatchdogSet(false))]);
    // Released only once both watchdogs are disarmed.
    h.c.handle_mpp_reply(
        h.now,
        A,
        MppRequest::WatchdogSet(false),
        &OwnedReply::Ack { status: AckStatus::Ok },
    );
    assert_eq!(h.take_actions(), []);
    h.c.handle_mpp_reply(
        h.now,
        B,
        MppRequest::WatchdogSet(false),
        &OwnedReply::Ack { status: AckStatus::Ok },
    );
    assert_eq!(
        h.take_actions(),
        [
            Action::Release { device: A },
            Action::Release { device: B },
            Action::RunHook { hook: Hook::Offline }
        ]
    );
    let events = h.take_events();
    assert!(events.ends_with(&[Event::RoleChanged { role: Role::Backup }, Event::Stopped]), "{events:?}");
    // Nothing more happens: no checks, no jump, whatever comes.
    h.c.handle_command(h.now, Command::Jump);
    h.advance(Duration::from_secs(60));
    assert_eq!(h.take_actions(), []);
}

#[test]
fn a_stop_whose_disarm_is_not_answered_still_ends() {
    let mut h = Host::master(config(), &[A]);
    h.c.handle_command(h.now, Command::Stop);
    assert_eq!(h.take_actions(), [mpp(A, MppRequest::WatchdogSet(false))]);
    h.advance(Duration::from_secs(2));
    let actions = h.take_actions();
    assert_eq!(actions, [Action::Release { device: A }, Action::RunHook { hook: Hook::Offline }]);
    assert!(h.take_events().contains(&Event::Stopped));
}

#[test]
fn watchdog_commands_reach_every_device_and_stick() {
    let mut h = Host::master(config(), &[A]);
    h.c.handle_command(h.now, Command::DisableWatchdog);
    let actions = h.take_actions();
    assert_eq!(actions, [mpp(A, MppRequest::WatchdogSet(false))]);
    h.answer(&actions, 0, 0b11);
    assert_eq!(h.take_events(), [Event::WatchdogChanged { device: A, armed: false }]);
    // Disabled stays disabled across a take-over.
    h.c.handle_device_left(h.now, A);
    h.c.handle_device_arrived(h.now, A);
    h.c.handle_takeover_done(h.now, A, true);
    let actions = h.take_actions();
    assert!(!actions.contains(&mpp(A, MppRequest::WatchdogSet(true))), "{actions:?}");
    h.c.handle_command(h.now, Command::EnableWatchdog);
    assert_eq!(h.take_actions(), [mpp(A, MppRequest::WatchdogSet(true))]);
}

#[test]
fn a_failed_take_over_is_reported_and_leaves_the_role() {
    let mut h = Host::new(config());
    h.c.handle_command(h.now, Command::Start(Role::Backup));
    h.c.handle_device_arrived(h.now, A);
    assert_eq!(h.take_actions(), [Action::TakeOver { device: A }]);
    h.c.handle_takeover_done(h.now, A, false);
    assert_eq!(h.take_events(), [Event::TakeOverFailed { device: A }]);
    assert_eq!(h.c.role(), Role::Backup);
    assert_eq!(h.take_actions(), []);
}
