//! TwinStar on two drivers (host A on port 0, host B on port 1) and one emulated TwinStar
//! Astribank served over USB/IP on loopback, real time: host A's PBX hangs while a phone is
//! off hook; A hands the device over, B takes it over warm (verified, not reset) and its PBX
//! sees the line off hook; the timelines show each phase. Every wait is bounded.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration as StdDuration;

use xpp_driver::tws::{Config, Event as TwsEvent, Phase, Role};
use xpp_driver::{Driver, DriverEvent, DriverOptions, Target, TwinStarHost, TwinStarOptions, layout_file};
use xpp_emu::config::{CoreConfig, LineStateOnJump, Stage as EmuStage};
use xpp_emu::usbip_server::{UsbIpServer, busid};
use xpp_emu::{DeviceConfig, Emulator};
use xpp_proto::Duration;
use xpp_span::Event;
use xpp_usb::SystemClock;

mod common;
use common::{firmware, until, within};

const FXS1: u32 = 1;

/// A running TwinStar device (jump delay 100 ms, `watchdog` timeout) in real time, served
/// over USB/IP on loopback; the target of each of its ports.
fn twinstar_device(
    watchdog: Duration,
) -> (Emulator, xpp_emu::RealTimeRunner, UsbIpServer, impl Fn(u8) -> Target) {
    twinstar_device_with(watchdog, LineStateOnJump::Keep)
}

/// [`twinstar_device`], with what a jump does to the chips.
fn twinstar_device_with(
    watchdog: Duration,
    line_state: LineStateOnJump,
) -> (Emulator, xpp_emu::RealTimeRunner, UsbIpServer, impl Fn(u8) -> Target) {
    let mut core = CoreConfig::default();
    core.line_state_on_jump = line_state;
    core.jump_delay = Duration::from_millis(100);
    core.watchdog_timeout = watchdog;
    let cfg = DeviceConfig::default().with_twinstar(true).with_start_stage(EmuStage::Running).with_core(core);
    let (emu, runner) = Emulator::real_time(cfg);
    let server = UsbIpServer::bind_loopback(emu.clone(), 0).expect("bind 127.0.0.1:0");
    let addr = server.local_addr();
    let target = move |port: u8| -> Target { format!("usbip:{addr}/{}", busid(port)).parse().unwrap() };
    (emu, runner, server, target)
}

fn tws(e: &DriverEvent, pred: impl Fn(&TwsEvent) -> bool) -> bool {
    matches!(e, DriverEvent::TwinStar(t) if pred(t))
}

/// Two hosts on one TwinStar device: A (port 0) started as master with `health_a` as its
/// PBX's check, B (port 1) as backup, both with `options`; A has taken the device and armed
/// its watchdog.
struct Pair {
    emu: Emulator,
    _runner: xpp_emu::RealTimeRunner,
    server: UsbIpServer,
    drv_a: Arc<Driver>,
    drv_b: Arc<Driver>,
    rx_a: xpp_driver::channel::Receiver<DriverEvent>,
    rx_b: xpp_driver::channel::Receiver<DriverEvent>,
    host_a: TwinStarHost,
    host_b: TwinStarHost,
}

impl Pair {
    fn start(
        watchdog: Duration,
        line_state: LineStateOnJump,
        options: TwinStarOptions,
        health_a: impl FnMut() -> bool + Send + 'static,
    ) -> Self {
        let (emu, runner, server, target) = twinstar_device_with(watchdog, line_state);
        let drv_a = Arc::new(Driver::new(SystemClock::new(), DriverOptions::default()));
        let drv_b = Arc::new(Driver::new(SystemClock::new(), DriverOptions::default()));
        let (rx_a, rx_b) = (drv_a.events(), drv_b.events());
        let host_a =
            TwinStarHost::start(Arc::clone(&drv_a), vec![target(0)], Role::Master, health_a, options.clone())
                .unwrap();
        let host_b =
            TwinStarHost::start(Arc::clone(&drv_b), vec![target(1)], Role::Backup, || true, options).unwrap();
        until(&rx_a, |e| tws(e, |t| matches!(t, TwsEvent::WatchdogChanged { armed: true, .. })));
        Self { emu, _runner: runner, server, drv_a, drv_b, rx_a, rx_b, host_a, host_b }
    }

    /// Defaults, a 200 ms watchdog, a PBX on A that stays healthy.
    fn crash_ready(line_state: LineStateOnJump) -> Self {
        Self::start(Duration::from_millis(200), line_state, TwinStarOptions::new(firmware()), || true)
    }

    /// Host A's run loop stops behind its controller's back (a crash): no more data on port 0.
    fn crash_a(&self) {
        let device_a = self.host_a.status().devices[0].expect("A holds the device");
        self.drv_a.close_device(device_a).unwrap();
    }

    /// Orderly stops (B first), the drivers closed, the server shut down.
    fn stop(self) {
        self.host_b.stop(StdDuration::from_secs(10));
        self.host_a.stop(StdDuration::from_secs(10));
        Arc::try_unwrap(self.drv_a).expect("released").close();
        Arc::try_unwrap(self.drv_b).expect("released").close();
        self.server.shutdown();
    }
}

#[test]
fn a_hung_pbx_hands_its_call_to_the_warm_backup() {
    within(120, || {
        let ms = Duration::from_millis;
        let controller = Config::default().with_health(ms(100), ms(200), 3).with_anti_flap(
            Duration::ZERO,
            3,
            Duration::from_secs(600),
        );
        let options = TwinStarOptions::new(firmware()).with_controller(controller);
        let healthy_a = Arc::new(AtomicBool::new(true));
        let h = Arc::clone(&healthy_a);
        let p = Pair::start(Duration::from_secs(2), LineStateOnJump::Keep, options, move || {
            h.load(Ordering::SeqCst)
        });
        let Pair { emu, drv_b, rx_a, rx_b, host_a, host_b, .. } = &p;

        // A has taken the device and armed its watchdog; B waits.
        assert_eq!(host_a.status().role, Role::Master);
        assert_eq!(host_b.status().role, Role::Backup);
        assert!(emu.with_device(|d| d.active_port()) == 0);

        // A call: phone 1 off hook, seen by A's PBX.
        emu.with_device(|d| {
            let now = d.now();
            d.data_mut().phone_mut(0, 0).expect("phone").off_hook(now);
        });
        until(rx_a, |e| matches!(e, DriverEvent::Chan { channo: FXS1, event: Event::RINGOFFHOOK, .. }));

        // A's PBX hangs: after three failed checks A hands over to the powered port 1.
        healthy_a.store(false, Ordering::SeqCst);
        let seen_a = until(rx_a, |e| tws(e, |t| matches!(t, TwsEvent::RoleChanged { role: Role::Backup })));
        let failover_a = seen_a.iter().find_map(|e| match e {
            DriverEvent::TwinStar(TwsEvent::Failover { timeline }) => Some(timeline.clone()),
            _ => None,
        });
        let failover_a = failover_a.expect("A's hand-over timeline");
        let phases: Vec<Phase> = failover_a.phases().iter().map(|p| p.phase).collect();
        assert_eq!(phases, [Phase::Detect, Phase::HandOver], "{failover_a}");
        let onhook =
            |e: &DriverEvent| matches!(e, DriverEvent::Chan { channo: FXS1, event: Event::ONHOOK, .. });
        assert!(!seen_a.iter().any(onhook), "A never reports the call hung up");

        // B takes over warm: verified, not reset; its PBX sees the line off hook, once.
        let seen_b = until(rx_b, |e| tws(e, |t| matches!(t, TwsEvent::Failover { .. })));
        assert!(seen_b.iter().any(|e| tws(e, |t| *t == TwsEvent::RoleChanged { role: Role::Master })));
        let Some(DriverEvent::TwinStar(TwsEvent::Failover { timeline: failover_b })) = seen_b.last().cloned()
        else {
            unreachable!()
        };
        let phases: Vec<Phase> = failover_b.phases().iter().map(|p| p.phase).collect();
        assert_eq!(phases, [Phase::TakeOver, Phase::FirstAudio], "{failover_b}");
        let device_b = host_b.status().devices[0].expect("B holds the device");
        assert!(drv_b.bring_up_result(device_b).unwrap().verified, "take-over verified the running device");
        assert_eq!(emu.with_device(|d| d.active_port()), 1);
        let offhook =
            |e: &DriverEvent| matches!(e, DriverEvent::Chan { channo: FXS1, event: Event::RINGOFFHOOK, .. });
        let hook_b = if seen_b.iter().any(offhook) { Vec::new() } else { until(rx_b, offhook) };
        let seen_b: Vec<DriverEvent> = seen_b.into_iter().chain(hook_b).collect();
        assert_eq!(seen_b.iter().filter(|e| offhook(e)).count(), 1, "off hook, reported once");
        assert!(!seen_b.iter().any(onhook), "B never reports the call hung up");
        assert!(
            emu.with_device(|d| d.data_mut().phone_mut(0, 0).is_some_and(|p| p.is_off_hook())),
            "the call is up"
        );
        eprintln!("host A:\n{failover_a}\nhost B:\n{failover_b}");

        // Orderly stops: B disarms before releasing, never a jump.
        let emu = emu.clone();
        p.stop();
        assert_eq!(emu.with_device(|d| d.active_port()), 1, "no jump on an orderly stop");
    });
}

/// A host whose data stream stops (its run loop gone, as in a crash) while its watchdog is
/// armed: the device's watchdog moves it to the backup, which takes over; the old master
/// sees the device gone and becomes backup.
#[test]
fn a_stopped_data_stream_fires_the_watchdog_and_the_backup_takes_over() {
    within(120, || {
        let p = Pair::crash_ready(LineStateOnJump::Keep);
        let Pair { emu, drv_a, rx_a, rx_b, host_a, .. } = &p;
        let device_a = host_a.status().devices[0].expect("A holds the device");

        // A's run loop stops behind the controller's back: no more data on port 0.
        drv_a.close_device(device_a).unwrap();
        let closed_at = std::time::Instant::now();
        let seen_b = until(rx_b, |e| tws(e, |t| matches!(t, TwsEvent::Failover { .. })));
        let audio_after = closed_at.elapsed();
        assert!(seen_b.iter().any(|e| tws(e, |t| *t == TwsEvent::RoleChanged { role: Role::Master })));
        assert_eq!(emu.with_device(|d| d.active_port()), 1, "the watchdog jumped");
        if let Some(DriverEvent::TwinStar(TwsEvent::Failover { timeline })) = seen_b.last() {
            eprintln!("data stream stopped -> first audio on B: {audio_after:?}\nhost B:\n{timeline}");
        }
        until(rx_a, |e| tws(e, |t| *t == TwsEvent::RoleChanged { role: Role::Backup }));
        assert_eq!(host_a.status().role, Role::Backup);

        p.stop();
    });
}

/// A device whose jump resets its chips (`line_state_on_jump = Reset`): the backup's verify
/// finds the units not configured, falls back to a full init and says so (an event, a
/// full-init phase in the timeline, a bring-up that is not "verified"); the phone that is
/// still off hook is reported off hook on the new host.
#[test]
fn a_device_reset_by_its_jump_gets_a_full_init_and_says_so() {
    within(120, || {
        let p = Pair::crash_ready(LineStateOnJump::Reset);
        let Pair { emu, drv_b, rx_a, rx_b, host_b, .. } = &p;
        emu.with_device(|d| {
            let now = d.now();
            d.data_mut().phone_mut(0, 0).expect("phone").off_hook(now);
        });
        let offhook =
            |e: &DriverEvent| matches!(e, DriverEvent::Chan { channo: FXS1, event: Event::RINGOFFHOOK, .. });
        until(rx_a, offhook);

        p.crash_a();
        let seen_b = until(rx_b, |e| tws(e, |t| matches!(t, TwsEvent::Failover { .. })));
        assert!(
            seen_b.iter().any(|e| tws(e, |t| matches!(t, TwsEvent::FullInit { .. }))),
            "the fallback is reported"
        );
        let Some(DriverEvent::TwinStar(TwsEvent::Failover { timeline })) = seen_b.last().cloned() else {
            unreachable!()
        };
        let phases: Vec<Phase> = timeline.phases().iter().map(|p| p.phase).collect();
        assert_eq!(phases, [Phase::TakeOver, Phase::FullInit, Phase::FirstAudio], "{timeline}");
        let device_b = host_b.status().devices[0].expect("B holds the device");
        assert!(!drv_b.bring_up_result(device_b).unwrap().verified, "a full init, not a verify");
        if !seen_b.iter().any(offhook) {
            until(rx_b, offhook);
        }
        eprintln!("host B (full init):\n{timeline}");

        p.stop();
    });
}

/// The hooks run with the environment the dahdi-tools hooks receive (`ACTION`, `XBUS_NUM`,
/// `XBUS_NAME`, `XPP_INIT_DIR`) plus the role and the target: `online` when A takes the
/// device, `last-resort` when A's PBX fails and the backup port has no power (no jump).
#[test]
fn hooks_run_with_the_dahdi_tools_environment() {
    use std::os::unix::fs::PermissionsExt;
    within(120, || {
        let dir = std::env::temp_dir().join(format!("xpp-hooks-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let hook = dir.join("hook.sh");
        std::fs::write(
            &hook,
            format!(
                "#!/bin/sh\nenv > '{}/'\"$ACTION\".tmp && mv '{0}/'\"$ACTION\".tmp '{0}/'\"$ACTION\".env\n",
                dir.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
        let read = |action: &str| -> Vec<String> {
            let file = dir.join(format!("{action}.env"));
            let end = std::time::Instant::now() + StdDuration::from_secs(20);
            while !file.exists() {
                assert!(std::time::Instant::now() < end, "the {action} hook ran");
                std::thread::sleep(StdDuration::from_millis(10));
            }
            std::fs::read_to_string(&file).unwrap().lines().map(str::to_owned).collect()
        };

        let (emu, _runner, server, target) = twinstar_device(Duration::from_secs(2));
        let ms = Duration::from_millis;
        let controller = Config::default().with_health(ms(100), ms(200), 3).with_anti_flap(
            Duration::ZERO,
            3,
            Duration::from_secs(600),
        );
        let mut hooks = xpp_driver::Hooks::default();
        hooks.online = Some(hook.clone());
        hooks.last_resort = Some(hook.clone());
        hooks.init_dir = dir.clone();
        let options = TwinStarOptions::new(firmware()).with_controller(controller).with_hooks(hooks);
        let drv = Arc::new(Driver::new(SystemClock::new(), DriverOptions::default()));
        let healthy = Arc::new(AtomicBool::new(true));
        let h = Arc::clone(&healthy);
        let host = TwinStarHost::start(
            Arc::clone(&drv),
            vec![target(0)],
            Role::Master,
            move || h.load(Ordering::SeqCst),
            options,
        )
        .unwrap();

        let online = read("online");
        let num = host.status().devices[0].expect("held").0;
        for want in [
            "ACTION=online".to_owned(),
            format!("XBUS_NUM={num:02}"),
            format!("XBUS_NAME=XBUS-{num:02}"),
            format!("XPP_INIT_DIR={}", dir.display()),
            "XPP_TWINSTAR_ROLE=master".to_owned(),
            format!("XPP_TARGET={}", target(0)),
        ] {
            assert!(online.contains(&want), "{want} in {online:?}");
        }

        // No host on port 1: a failing PBX gets the last resort, and the lines stay.
        emu.with_device(|d| d.set_power(d.now(), 1, false));
        healthy.store(false, Ordering::SeqCst);
        let last = read("last-resort");
        assert!(last.contains(&"ACTION=last-resort".to_owned()), "{last:?}");
        assert_eq!(emu.with_device(|d| d.active_port()), 0);
        assert_eq!(host.status().role, Role::Master);

        host.stop(StdDuration::from_secs(10));
        Arc::try_unwrap(drv).expect("released").close();
        server.shutdown();
        let _ = std::fs::remove_dir_all(&dir);
    });
}

/// An FXO call (the PBX has seized the PSTN line, the far party answered) survives a crash
/// failover: the line stays seized through the take-over, and the backup's PBX can release
/// it afterwards (the new host's line model knows the loop is closed).
#[test]
fn an_fxo_call_survives_the_failover_and_the_backup_can_hang_it_up() {
    use xpp_emu::data::CallState;
    use xpp_span::HookCmd;
    use xpp_span::hook::HookMode;
    const FXO1: u32 = 15;
    within(120, || {
        let p = Pair::crash_ready(LineStateOnJump::Keep);
        let Pair { emu, drv_a, drv_b, rx_b, .. } = &p;
        let pstn = |f: &dyn Fn(&mut xpp_emu::data::PstnLine, xpp_proto::Instant)| {
            emu.with_device(|d| {
                let now = d.now();
                f(d.data_mut().pstn_mut(1, 0).expect("PSTN line"), now);
            });
        };
        let state = || emu.with_device(|d| d.data().pstn(1, 0).expect("PSTN line").state());
        let seized = || emu.with_device(|d| d.data().fxo_state(1, 0).expect("FXO port").off_hook);
        // A's PBX seizes the line (once the line model has seen battery) and the far end answers.
        let end = std::time::Instant::now() + StdDuration::from_secs(10);
        while drv_a.set_hook(FXO1, HookCmd::OffHook, HookMode::Blocking).is_err() {
            assert!(std::time::Instant::now() < end, "battery seen");
            std::thread::sleep(StdDuration::from_millis(10));
        }
        let end = std::time::Instant::now() + StdDuration::from_secs(10);
        while !seized() {
            assert!(std::time::Instant::now() < end, "the line is seized");
            std::thread::sleep(StdDuration::from_millis(10));
        }
        let end = std::time::Instant::now() + StdDuration::from_secs(5);
        while state() != CallState::DialTone {
            assert!(std::time::Instant::now() < end, "dial tone: {:?}", state());
            std::thread::sleep(StdDuration::from_millis(10));
        }
        pstn(&|l, now| l.answer(now));
        let end = std::time::Instant::now() + StdDuration::from_secs(5);
        while state() != CallState::Connected {
            assert!(std::time::Instant::now() < end, "the far party answers: {:?}", state());
            std::thread::sleep(StdDuration::from_millis(10));
        }

        p.crash_a();
        until(rx_b, |e| tws(e, |t| matches!(t, TwsEvent::Failover { .. })));
        std::thread::sleep(StdDuration::from_millis(500));
        assert!(seized(), "the take-over keeps the loop closed");
        assert_eq!(state(), CallState::Connected, "the far party is still there");

        // B's PBX hangs up the call it inherited.
        let _ = drv_b.set_hook(FXO1, HookCmd::OnHook, HookMode::Blocking).unwrap();
        let end = std::time::Instant::now() + StdDuration::from_secs(5);
        while seized() {
            assert!(std::time::Instant::now() < end, "B releases the line");
            std::thread::sleep(StdDuration::from_millis(10));
        }

        p.stop();
    });
}

/// A host that crashes while a phone rings leaves its line feed at "ringing": the backup's
/// take-over reads the line feed back and restores the idle line, so the phone does not ring
/// on for a call that is gone.
#[test]
fn a_ring_left_on_by_a_crashed_master_stops_on_the_backup() {
    use xpp_emu::data::LineFeed;
    use xpp_span::HookCmd;
    use xpp_span::hook::HookMode;
    within(120, || {
        let p = Pair::crash_ready(LineStateOnJump::Keep);
        let Pair { emu, drv_a, rx_b, .. } = &p;
        let feed = || emu.with_device(|d| d.data().fxs_state(0, 0).expect("FXS port").line_feed);
        let _ = drv_a.set_hook(FXS1, HookCmd::Ring, HookMode::NonBlocking).unwrap();
        let end = std::time::Instant::now() + StdDuration::from_secs(10);
        while feed() != LineFeed::Ringing {
            assert!(std::time::Instant::now() < end, "the phone rings: {:?}", feed());
            std::thread::sleep(StdDuration::from_millis(1));
        }
        // A crashes mid-ring: its data stream stops, the line feed stays at "ringing".
        p.crash_a();
        until(rx_b, |e| tws(e, |t| matches!(t, TwsEvent::Failover { .. })));
        let end = std::time::Instant::now() + StdDuration::from_secs(2);
        while feed() == LineFeed::Ringing {
            assert!(std::time::Instant::now() < end, "B stops the ring");
            std::thread::sleep(StdDuration::from_millis(5));
        }
        assert_eq!(feed(), LineFeed::ForwardActive, "the idle line");

        p.stop();
    });
}

/// A `system.conf` given to the TwinStar hosts (parsed once, before any device arrives) is
/// applied at every take-over: on A at the start, on B after the failover.
#[test]
fn the_system_conf_is_applied_at_every_take_over() {
    use xpp_span::Sig;
    within(120, || {
        let conf = xpp_span::sysconf::parse_str("test.conf", "fxols=1-2\n").unwrap();
        let options = TwinStarOptions::new(firmware()).with_system_conf("test.conf", conf);
        let p = Pair::start(Duration::from_millis(200), LineStateOnJump::Keep, options, || true);
        let sig =
            |drv: &Driver, channo: u32| drv.channels().iter().find(|c| c.channo == channo).map(|c| c.sig);
        assert_eq!(
            (sig(&p.drv_a, 1), sig(&p.drv_a, 2), sig(&p.drv_a, 3)),
            (Some(Sig::Fxols), Some(Sig::Fxols), Some(Sig::Fxoks))
        );
        p.crash_a();
        until(&p.rx_b, |e| tws(e, |t| matches!(t, TwsEvent::Failover { .. })));
        assert_eq!((sig(&p.drv_b, 1), sig(&p.drv_b, 2)), (Some(Sig::Fxols), Some(Sig::Fxols)));
        p.stop();
    });
}

#[test]
fn the_backup_has_its_spans_registered_and_configured_before_the_device_comes() {
    within(120, || {
        let (emu, _runner, server, target) = twinstar_device(Duration::from_millis(200));
        let root = std::env::temp_dir().join(format!("xpp-layouts-{}", std::process::id()));
        let (dir_a, dir_b) = (root.join("a"), root.join("b"));
        let drv_a = Arc::new(Driver::new(SystemClock::new(), DriverOptions::default()));
        let drv_b = Arc::new(Driver::new(SystemClock::new(), DriverOptions::default()));
        let (rx_a, rx_b) = (drv_a.events(), drv_b.events());
        let conf = xpp_span::sysconf::parse_str("system.conf", "fxols=1\n").unwrap();
        let options = TwinStarOptions::new(firmware()).with_system_conf("system.conf", conf);

        // A takes the device and writes its layout.
        let host_a = TwinStarHost::start(
            Arc::clone(&drv_a),
            vec![target(0)],
            Role::Master,
            || true,
            options.clone().with_layout_dir(&dir_a),
        )
        .unwrap();
        until(&rx_a, |e| tws(e, |t| matches!(t, TwsEvent::WatchdogChanged { armed: true, .. })));
        let layout = std::fs::read_to_string(layout_file(&dir_a, &target(0))).expect("A wrote the layout");
        assert!(layout.contains("unit 0.0 type=FXS") && layout.contains("unit 1.0 type=FXO"), "{layout}");

        // The integrator copies it to B (the same device, seen through B's port); B starts
        // with its spans registered in RED alarm and configured, before any failover.
        std::fs::create_dir_all(&dir_b).unwrap();
        std::fs::write(layout_file(&dir_b, &target(1)), &layout).unwrap();
        let host_b = TwinStarHost::start(
            Arc::clone(&drv_b),
            vec![target(1)],
            Role::Backup,
            || true,
            options.with_layout_dir(&dir_b),
        )
        .unwrap();
        let seen = until(&rx_b, |e| matches!(e, DriverEvent::DeviceStandby { .. }));
        let Some(DriverEvent::DeviceStandby { device: standby, spans, channels }) = seen.last().cloned()
        else {
            unreachable!()
        };
        assert_eq!((spans, channels), (1..=2, 1..=22));
        common::eventually("system.conf applied to the standby", || {
            drv_b.channel(FXS1).is_ok_and(|c| c.sig == xpp_span::Sig::Fxols)
        });
        assert_eq!(drv_b.alarms(1).unwrap(), xpp_span::Alarms::RED);
        assert_eq!(drv_b.spans().len(), 2);
        assert_eq!(host_b.status().devices, [None]);

        // A crashes; B takes the device over in that registration: same device id and
        // numbers, the configuration it had, NOALARM.
        let device_a = host_a.status().devices[0].expect("A holds the device");
        drv_a.close_device(device_a).unwrap();
        let seen = until(&rx_b, |e| matches!(e, DriverEvent::DeviceReady { .. }));
        assert_eq!(
            seen.last(),
            Some(&DriverEvent::DeviceReady { device: standby, spans: 1..=2, channels: 1..=22 })
        );
        until(&rx_b, |e| matches!(e, DriverEvent::Chan { channo: FXS1, event: Event::NOALARM, .. }));
        assert_eq!(drv_b.channel(FXS1).unwrap().sig, xpp_span::Sig::Fxols);
        assert_eq!(drv_b.alarms(1).unwrap(), xpp_span::Alarms::EMPTY);
        common::eventually("B reports the device", || host_b.status().devices == [Some(standby)]);
        assert!(emu.with_device(|d| d.active_port()) == 1);
        assert_eq!(std::fs::read_to_string(layout_file(&dir_b, &target(1))).unwrap(), layout);

        host_b.stop(StdDuration::from_secs(10));
        host_a.stop(StdDuration::from_secs(10));
        Arc::try_unwrap(drv_a).expect("released").close();
        Arc::try_unwrap(drv_b).expect("released").close();
        server.shutdown();
        let _ = std::fs::remove_dir_all(&root);
    });
}
