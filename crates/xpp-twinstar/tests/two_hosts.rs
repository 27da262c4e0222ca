//! Two hosts, each with its controller, and emulated TwinStar Astribanks on one virtual
//! clock, deterministic: the controllers' MPP requests travel as bytes to the emulated
//! device (xpp-emu's TWS model, MODEL.md TWS rows), a master that holds its devices keeps
//! their data stream alive (the watchdog's feed, TWS-9), a crashed host stops doing anything,
//! and a hung PBX stops answering its health check. The take-over itself (bring-up, verify,
//! line state) is the driver's and is tested there; here it is immediate, so the times below
//! are the controllers' and the device's own share of a failover.

use std::time::Duration as StdDuration;

use xpp_emu::config::{CoreConfig, Stage};
use xpp_emu::{DeviceConfig, DeviceEvent, EmulatedTransport, Emulator};
use xpp_proto::mgmt::Session;
use xpp_proto::{Duration, Instant};
use xpp_twinstar::{
    Action, Command, Config, Controller, DeviceKey, Event, Failback, HandOverReason, Hook, Phase,
    RefusalReason, Role,
};
use xpp_usb::{Transport, ep, mgmt_request};

/// XBUS_RESET with mask 0: one well-formed XPP packet the device does not answer (TWS-9).
const FEED: [u8; 5] = [0x05, 0x00, 0x23, 0x00, 0x00];
/// One simulation step: the hosts' poll period and the data stream's feed period.
const STEP: Duration = Duration::from_millis(10);
/// One exchange's timeout: the emulator answers at once on its manual clock.
const T: StdDuration = StdDuration::from_millis(10);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// What a host's PBX does when asked for its health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pbx {
    Healthy,
    /// Answers, badly.
    Failing,
    /// Never answers (the check hangs with the PBX).
    Hung,
}

/// One host: its controller, and per device the transport while the device is on its port.
struct Host {
    port: u8,
    c: Controller,
    slots: Vec<Slot>,
    /// The host runs (a crashed host does nothing at all, its streams stop).
    alive: bool,
    pbx: Pbx,
    /// What the peer check answers (automatic failback).
    peer_ready: bool,
    events: Vec<(Instant, Event)>,
    hooks: Vec<Hook>,
}

#[derive(Default)]
struct Slot {
    t: Option<EmulatedTransport>,
    session: Session,
    /// Taken over: the data stream runs.
    taken: bool,
    /// First audio is reported at the next step.
    audio_pending: bool,
}

impl Host {
    fn new(port: u8, devices: usize, config: Config) -> Self {
        Self {
            port,
            c: Controller::new(config),
            slots: (0..devices).map(|_| Slot::default()).collect(),
            alive: true,
            pbx: Pbx::Healthy,
            peer_ready: true,
            events: Vec::new(),
            hooks: Vec::new(),
        }
    }

    fn role(&self) -> Role {
        self.c.role()
    }

    fn saw(&self, pred: impl Fn(&Event) -> bool) -> bool {
        self.events.iter().any(|(_, e)| pred(e))
    }

    fn when(&self, pred: impl Fn(&Event) -> bool) -> Option<Instant> {
        self.events.iter().find(|(_, e)| pred(e)).map(|(t, _)| *t)
    }

    fn failovers(&self) -> Vec<xpp_twinstar::Timeline> {
        self.events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::Failover { timeline } => Some(timeline.clone()),
                _ => None,
            })
            .collect()
    }

    /// One step at `now`: arrivals and departures, timers, actions, the data stream.
    fn step(&mut self, now: Instant, emus: &[Emulator]) {
        if !self.alive {
            return;
        }
        for (i, emu) in emus.iter().enumerate() {
            let key = DeviceKey(i as u32);
            let gone = self.slots[i].t.as_ref().is_some_and(|t| t.is_disconnected());
            if gone {
                self.slots[i] = Slot::default();
                self.c.handle_device_left(now, key);
            }
            if self.slots[i].t.is_none()
                && let Some(t) = emu.transport(self.port)
            {
                self.slots[i].t = Some(t);
                self.c.handle_device_arrived(now, key);
            }
            if std::mem::take(&mut self.slots[i].audio_pending) {
                self.c.handle_first_audio(now, key);
            }
        }
        if self.c.poll_timeout().is_some_and(|t| t <= now) {
            self.c.handle_timeout(now);
        }
        while let Some(a) = self.c.poll_action() {
            self.execute(now, a);
        }
        while let Some(e) = self.c.poll_event() {
            self.events.push((now, e));
        }
        for s in &mut self.slots {
            if s.taken
                && let Some(t) = s.t.as_mut()
            {
                let _ = t.transfer_blocking(ep::DATA_OUT, FEED.to_vec(), T);
            }
        }
    }

    fn execute(&mut self, now: Instant, action: Action) {
        match action {
            Action::TakeOver { device } => {
                let slot = &mut self.slots[device.0 as usize];
                let ok = slot.t.is_some();
                slot.taken = ok;
                slot.audio_pending = ok;
                self.c.handle_takeover_done(now, device, ok);
            }
            Action::Release { device } => {
                let slot = &mut self.slots[device.0 as usize];
                slot.taken = false;
            }
            Action::Mpp { device, request } => {
                let slot = &mut self.slots[device.0 as usize];
                let Some(t) = slot.t.as_mut() else {
                    return self.c.handle_mpp_failed(now, device, request);
                };
                match mgmt_request(t, &mut slot.session, request.to_request(), T) {
                    Ok(Some(reply)) => self.c.handle_mpp_reply(now, device, request, &reply),
                    Ok(None) => {}
                    Err(_) => self.c.handle_mpp_failed(now, device, request),
                }
            }
            Action::CheckHealth => match self.pbx {
                Pbx::Healthy => self.c.handle_health(now, true),
                Pbx::Failing => self.c.handle_health(now, false),
                Pbx::Hung => {}
            },
            Action::CheckPeer => self.c.handle_peer_ready(now, self.peer_ready),
            Action::RunHook { hook } => self.hooks.push(hook),
            other => panic!("unexpected action {other:?}"),
        }
    }
}

/// Hosts A (port 0) and B (port 1) and the devices, on one virtual clock.
struct Sim {
    emus: Vec<Emulator>,
    a: Host,
    b: Host,
}

impl Sim {
    /// `devices` TwinStar Astribanks running on port 0 (watchdog 200 ms, jump delay 100 ms),
    /// both hosts with `config`, A started as master and B as backup.
    fn new(devices: usize, config: Config) -> Self {
        Self::with(devices, config, |_, _| {})
    }

    fn with(devices: usize, config: Config, tweak: impl Fn(usize, &mut CoreConfig)) -> Self {
        let emus = (0..devices)
            .map(|i| {
                let mut core = CoreConfig::default();
                core.watchdog_timeout = ms(200);
                core.jump_delay = ms(100);
                tweak(i, &mut core);
                Emulator::new(
                    DeviceConfig::default()
                        .with_twinstar(true)
                        .with_start_stage(Stage::Running)
                        .with_core(core),
                )
            })
            .collect();
        let mut sim = Self { emus, a: Host::new(0, devices, config), b: Host::new(1, devices, config) };
        let now = sim.now();
        sim.a.c.handle_command(now, Command::Start(Role::Master));
        sim.b.c.handle_command(now, Command::Start(Role::Backup));
        sim
    }

    fn now(&self) -> Instant {
        self.emus[0].now()
    }

    fn step(&mut self) {
        for e in &self.emus {
            e.advance(STEP);
        }
        let now = self.now();
        self.a.step(now, &self.emus);
        self.b.step(now, &self.emus);
    }

    fn run(&mut self, d: Duration) {
        let end = self.now() + d;
        while self.now() < end {
            self.step();
        }
    }

    /// Runs until `done` (at most `limit`); the time it took.
    fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Self) -> bool) -> Option<Duration> {
        let start = self.now();
        while self.now() - start < limit {
            if done(self) {
                return Some(self.now() - start);
            }
            self.step();
        }
        None
    }

    fn active(&self, device: usize) -> u8 {
        self.emus[device].with_device(|d| d.active_port())
    }

    /// The device's jumps so far (the events are consumed, so count them once per test).
    fn jumps(&self, device: usize) -> usize {
        self.emus[device].with_device(|d| {
            std::iter::from_fn(|| d.poll_event()).filter(|e| matches!(e, DeviceEvent::Jumped { .. })).count()
        })
    }

    fn armed(&self, device: usize) -> bool {
        self.emus[device].with_device(|d| d.watchdog_armed())
    }
}

/// Health every 100 ms (timeout 200 ms), hand-over after 3 failures; no dwell.
fn config() -> Config {
    Config::default()
        .with_health(ms(100), ms(200), 3)
        .with_anti_flap(Duration::ZERO, 3, Duration::from_secs(600))
        .with_jump_timeout(ms(500))
}

/// A's master role settled: the device is taken over on port 0 and its watchdog armed.
fn settled(devices: usize, config: Config) -> Sim {
    let mut sim = Sim::new(devices, config);
    let up = sim.run_until(Duration::from_secs(2), |s| {
        s.a.role() == Role::Master && (0..devices).all(|i| s.armed(i))
    });
    assert!(up.is_some(), "A takes the devices and arms their watchdogs");
    assert_eq!(sim.b.role(), Role::Backup);
    sim
}

#[test]
fn a_crashed_master_fails_over_by_the_watchdog() {
    let mut sim = settled(1, config());
    sim.a.alive = false;
    let gap = sim.run_until(Duration::from_secs(2), |s| s.b.role() == Role::Master && s.armed(0));
    let gap = gap.expect("B takes over");
    // 200 ms watchdog + 100 ms jump delay + one step of B's poll + the take-over.
    assert!(gap <= ms(500), "crash to B master in {gap:?}");
    assert_eq!(sim.active(0), 1);
    sim.run(ms(50));
    let timeline = sim.b.failovers().pop().expect("B's timeline");
    let phases: Vec<Phase> = timeline.phases().iter().map(|p| p.phase).collect();
    assert_eq!(phases, [Phase::TakeOver, Phase::FirstAudio], "{timeline}");
    assert!(sim.b.hooks.contains(&Hook::Online));
    // B keeps it: its own watchdog feeds go on.
    sim.run(Duration::from_secs(5));
    assert_eq!(sim.active(0), 1);
    assert_eq!(sim.jumps(0), 1);
}

#[test]
fn a_hung_pbx_hands_over_deliberately() {
    let mut sim = settled(1, config());
    let hang = sim.now();
    sim.a.pbx = Pbx::Hung;
    let took = sim.run_until(Duration::from_secs(3), |s| s.b.role() == Role::Master);
    let took = took.expect("B takes over");
    // Three checks at 100 ms, each failing at its 200 ms deadline, then the jump (100 ms).
    assert!(took <= Duration::from_millis(1000), "hang to B master in {took:?}");
    assert!(sim.a.saw(|e| *e == Event::HandOverStarted { reason: HandOverReason::Unhealthy }));
    assert!(sim.a.saw(|e| *e == Event::RoleChanged { role: Role::Backup }));
    assert!(sim.a.hooks.contains(&Hook::Offline));
    let a_timeline = sim.a.failovers().pop().expect("A's timeline");
    let phases: Vec<Phase> = a_timeline.phases().iter().map(|p| p.phase).collect();
    assert_eq!(phases, [Phase::Detect, Phase::HandOver], "{a_timeline}");
    assert!(sim.a.when(|e| matches!(e, Event::HealthChanged { healthy: false })).unwrap() > hang);
    sim.run(Duration::from_secs(3));
    assert_eq!((sim.active(0), sim.jumps(0)), (1, 1), "one deliberate jump, to B");
}

#[test]
fn an_orderly_stop_never_jumps() {
    let mut sim = settled(1, config());
    let now = sim.now();
    sim.a.c.handle_command(now, Command::Stop);
    let stopped = sim.run_until(Duration::from_secs(2), |s| s.a.c.is_stopped());
    assert!(stopped.is_some(), "the stop completes");
    assert!(!sim.armed(0), "disarmed before the streams stop");
    assert!(!sim.a.slots[0].taken, "released");
    sim.run(Duration::from_secs(5));
    assert_eq!((sim.active(0), sim.jumps(0)), (0, 0), "the device stays on A's port");
    assert_eq!(sim.b.role(), Role::Backup);
}

#[test]
fn an_operator_jump_is_a_planned_switch_over() {
    let mut sim = settled(1, config());
    let now = sim.now();
    sim.a.c.handle_command(now, Command::Jump);
    let took = sim.run_until(Duration::from_secs(2), |s| s.b.role() == Role::Master && s.armed(0));
    assert!(took.expect("B takes over") <= ms(300), "{took:?}");
    assert!(sim.a.saw(|e| *e == Event::HandOverStarted { reason: HandOverReason::Operator }));
    assert!(!sim.a.saw(|e| matches!(e, Event::HandOverRefused { .. })));
    assert_eq!((sim.active(0), sim.jumps(0)), (1, 1));
}

#[test]
fn an_unpowered_backup_port_gets_no_jump_but_the_last_resort() {
    let mut sim = settled(1, config());
    sim.emus[0].with_device(|d| d.set_power(d.now(), 1, false));
    sim.a.pbx = Pbx::Failing;
    let refused = sim.run_until(Duration::from_secs(3), |s| {
        s.a.saw(|e| *e == Event::HandOverRefused { reason: RefusalReason::NoPower })
    });
    assert!(refused.is_some(), "refused: no power on port 1");
    assert!(sim.a.hooks.contains(&Hook::LastResort));
    sim.run(Duration::from_secs(2));
    assert_eq!((sim.active(0), sim.jumps(0)), (0, 0));
    assert_eq!(sim.a.role(), Role::Master, "the lines stay here");
}

#[test]
fn flapping_health_switches_at_most_once_per_window_per_host() {
    // Both PBXs fail: without limits the lines would bounce every second.
    let cfg = config().with_anti_flap(Duration::from_secs(5), 1, Duration::from_secs(60));
    let mut sim = settled(1, cfg);
    sim.a.pbx = Pbx::Failing;
    sim.b.pbx = Pbx::Failing;
    sim.run(Duration::from_secs(60));
    // A hands over once its dwell is over, B hands back once its dwell is over; then A's
    // window is used up and it refuses.
    assert_eq!(sim.jumps(0), 2, "A to B, B to A, then no more");
    let count =
        |h: &Host| h.events.iter().filter(|(_, e)| matches!(e, Event::HandOverStarted { .. })).count();
    assert_eq!((count(&sim.a), count(&sim.b)), (1, 1));
    assert!(sim.a.saw(|e| *e == Event::HandOverRefused { reason: RefusalReason::Flapping }));
}

#[test]
fn failback_is_manual_by_default() {
    let mut sim = settled(1, config());
    sim.a.pbx = Pbx::Hung;
    sim.run_until(Duration::from_secs(3), |s| s.b.role() == Role::Master).expect("failover");
    sim.a.pbx = Pbx::Healthy;
    sim.run(Duration::from_secs(30));
    assert_eq!((sim.active(0), sim.jumps(0)), (1, 1), "the lines stay on B");
    assert!(!sim.b.saw(|e| *e == Event::HandOverStarted { reason: HandOverReason::Failback }));
    // The operator moves them back.
    let now = sim.now();
    sim.b.c.handle_command(now, Command::Jump);
    sim.run_until(Duration::from_secs(2), |s| s.a.role() == Role::Master).expect("back to A");
    assert_eq!(sim.active(0), 0);
}

#[test]
fn automatic_failback_waits_for_the_hold_down_and_the_peer() {
    let hold_down = Duration::from_secs(10);
    let cfg = config().with_failback(Failback::Automatic { hold_down });
    let mut sim = settled(1, cfg);
    sim.a.pbx = Pbx::Hung;
    sim.run_until(Duration::from_secs(3), |s| s.b.role() == Role::Master).expect("failover");
    let failed_over = sim.now();
    // A's PBX is back, but A says it is not ready yet: no failback.
    sim.a.pbx = Pbx::Healthy;
    sim.a.peer_ready = false;
    sim.b.peer_ready = false;
    sim.run(Duration::from_secs(20));
    assert_eq!(sim.active(0), 1, "no failback to a host that is not ready");
    // Ready now: the lines go back to A within one poll.
    sim.b.peer_ready = true;
    let back = sim.run_until(Duration::from_secs(3), |s| s.a.role() == Role::Master && s.active(0) == 0);
    assert!(back.is_some(), "failback to A");
    let started =
        sim.b.when(|e| *e == Event::HandOverStarted { reason: HandOverReason::Failback }).expect("failback");
    assert!(started - failed_over >= hold_down, "not before the hold-down");
    assert_eq!(sim.jumps(0), 2);
    // A started as master: it never fails back anywhere by itself.
    sim.run(Duration::from_secs(30));
    assert_eq!(sim.active(0), 0);
}

#[test]
fn automatic_failback_restarts_the_hold_down_when_the_port_loses_power() {
    let hold_down = Duration::from_secs(10);
    let cfg = config().with_failback(Failback::Automatic { hold_down });
    let mut sim = settled(1, cfg);
    sim.a.pbx = Pbx::Hung;
    sim.run_until(Duration::from_secs(3), |s| s.b.role() == Role::Master).expect("failover");
    sim.a.pbx = Pbx::Healthy;
    // Host A power-cycles 6 s into the hold-down.
    sim.run(Duration::from_secs(6));
    sim.emus[0].with_device(|d| d.set_power(d.now(), 0, false));
    sim.run(Duration::from_secs(2));
    let powered = sim.now();
    sim.emus[0].with_device(|d| d.set_power(d.now(), 0, true));
    let back = sim.run_until(Duration::from_secs(20), |s| s.active(0) == 0);
    assert!(back.is_some(), "failback after the hold-down");
    assert!(sim.now() - powered >= hold_down, "the hold-down counts from the power's return");
}

#[test]
fn two_masters_at_once_leave_one_active_port_and_no_ping_pong() {
    let mut sim = Sim::new(1, config());
    let now = sim.now();
    // B was (wrongly) started as master as well.
    sim.b = Host::new(1, 1, config());
    sim.b.c.handle_command(now, Command::Start(Role::Master));
    sim.run(Duration::from_secs(10));
    assert_eq!((sim.active(0), sim.jumps(0)), (0, 0));
    assert_eq!((sim.a.role(), sim.b.role()), (Role::Master, Role::Backup), "the device decides");
    // A crash still moves the lines to B, which serves them.
    sim.a.alive = false;
    sim.run_until(Duration::from_secs(2), |s| s.b.role() == Role::Master).expect("B takes over");
    sim.run(Duration::from_secs(10));
    assert_eq!((sim.active(0), sim.jumps(0)), (1, 1));
}

#[test]
fn two_astribanks_switch_together() {
    let cfg = config().with_expected_devices(2, Duration::from_secs(3));
    let mut sim = settled(2, cfg);
    sim.a.pbx = Pbx::Hung;
    sim.run_until(Duration::from_secs(3), |s| s.b.role() == Role::Master).expect("failover");
    sim.run(Duration::from_secs(5));
    assert_eq!((sim.active(0), sim.active(1)), (1, 1), "both units moved");
    assert_eq!((sim.jumps(0), sim.jumps(1)), (1, 1));
    assert!(sim.b.slots.iter().all(|s| s.taken));
    // Host A crashes later? No: B crashes, and both come back to A by their watchdogs.
    sim.a.pbx = Pbx::Healthy;
    sim.b.alive = false;
    sim.run_until(Duration::from_secs(2), |s| s.active(0) == 0 && s.active(1) == 0).expect("both back");
    sim.run(Duration::from_secs(5));
    assert!(sim.a.slots.iter().all(|s| s.taken));
}

#[test]
fn a_unit_found_on_the_wrong_port_is_moved_to_join_the_others() {
    let cfg = config().with_expected_devices(2, Duration::from_secs(3));
    // Unit 1 powered up while only host B's port had power: it came up on port 1.
    let mut sim = Sim::with(2, cfg, |i, core| {
        if i == 1 {
            core.port_power = [false, true];
        }
    });
    sim.emus[1].with_device(|d| d.set_power(d.now(), 0, true));
    assert_eq!((sim.active(0), sim.active(1)), (0, 1));
    sim.run(Duration::from_secs(1));
    assert!(sim.b.slots[1].taken, "B took the unit it found");
    let moved = sim.run_until(Duration::from_secs(10), |s| s.active(1) == 0 && s.a.slots[1].taken);
    assert!(moved.is_some(), "the lone unit joins the others on A");
    assert!(sim.b.saw(|e| *e == Event::HandOverStarted { reason: HandOverReason::Regroup }));
    sim.run(Duration::from_secs(10));
    assert_eq!((sim.active(0), sim.active(1)), (0, 0));
    assert_eq!((sim.jumps(0), sim.jumps(1)), (0, 1), "one move, no trading back");
    assert_eq!((sim.a.role(), sim.b.role()), (Role::Master, Role::Backup));
}
