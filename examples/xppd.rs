//! `xppd`: the reference host program of a TwinStar PBX host, for systemd and cluster managers.
//!
//! ```text
//! cargo run --example xppd -- (--usbip ADDR [--busid ID]... | --device TARGET...)
//!     [--role master|backup] [--socket PATH] [--health-cmd CMD] [--health-interval-ms N]
//!     [--health-timeout-ms N] [--health-failures N] [--no-watchdog] [--firmware DIR]
//!     [--bridge FXS:FXO]... [--hook-online PROG] [--hook-offline PROG] [--hook-last-resort PROG]
//!     [--layout-dir DIR] [--system-conf PATH]
//! ```
//!
//! It embeds the driver with the TwinStar host ([`xpp::driver::TwinStarHost`]) for its
//! Astribanks (`--device`: a bus path, `BBB/DDD`, `serial:LABEL` or `usbip:HOST:PORT/BUSID`;
//! or `--usbip ADDR` with `--busid`, default `1-1`), serves the control socket
//! ([`xpp::driver::control`], `--socket`, default `/run/xpp/xppd.sock`) through which the
//! `twinstar` example (`--socket`), Pacemaker's resource agent and keepalived's scripts
//! (`contrib/`) query and command it, and runs a tiny PBX: when the phone on an FXS channel
//! goes off hook it seizes the paired FXO channel and bridges their audio every tick, and
//! releases the line when the phone hangs up (`--bridge FXS:FXO`, default `1:15`, the demo's
//! pairing). A device taken over from the other host with a call up is verified, not reset,
//! and the PBX seizes the line again: the call is kept.
//!
//! The PBX's health is `--health-cmd` (run with `sh -c`; exit status 0 = healthy) every
//! `--health-interval-ms`; `--health-failures` failed or late (`--health-timeout-ms`) checks
//! in a row make the master hand the lines over. `--no-watchdog` leaves the device's watchdog
//! disarmed (dahdi-tools' `twinstar_no_autojump`).
//!
//! Warm standby: with `--layout-dir DIR` (the unit's `StateDirectory`, `/var/lib/xpp`), each
//! device's layout is written there when this host has it, and read at start: a backup
//! registers the spans of a device it has seen before (or whose layout was copied from the
//! other host) in RED alarm before the device comes, so its PBX has the channels open; the
//! device leaving puts them back in standby instead of removing them
//! ([`xpp::driver::TwinStarOptions::layout_dir`]).
//!
//! Span configuration: `--system-conf PATH` (DAHDI's `system.conf`: signalling, PRI/BRI
//! `span=` lines, D-channels, CAS) is read at start, and xppd does not start if it does not
//! parse (exit status 2, every error with its `file:line:column` on stderr); it is applied to each device
//! this host takes, and to the standby registrations
//! ([`xpp::driver::TwinStarOptions::system_conf`]).
//!
//! Readiness: once the control socket answers, `READY=1` goes to systemd's `$NOTIFY_SOCKET`
//! (when set; `contrib/systemd/xppd.service` is `Type=notify`), and `xppd: ready` is printed.
//! Every role change, failover timeline and call step is printed on stdout, one line each.
//! SIGTERM or SIGINT is an orderly stop: watchdogs disarmed first, devices released, never a
//! jump; the socket file is removed. Exit status: 0 after an orderly stop, 1 when it could not
//! start (the reason on stderr), 2 bad arguments.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration as StdDuration;

use clap::{Parser, ValueEnum};
use xpp::driver::control::ControlSocket;
use xpp::driver::tws::{Config, Event as TwsEvent, Role};
use xpp::driver::{Hooks, TwinStarHost, TwinStarOptions};
use xpp::span::hook::HookMode;
use xpp::span::{Event, HookCmd};
use xpp::{DeviceId, Driver, DriverEvent, DriverOptions, FirmwareSet, SystemClock, Target};

/// The reference TwinStar host program: driver, control socket and a tiny PBX.
#[derive(Parser, Debug)]
#[command(name = "xppd")]
struct Args {
    /// An Astribank of this host (bus path, BBB/DDD, serial:LABEL, usbip:HOST:PORT/BUSID).
    #[arg(long = "device", value_name = "TARGET")]
    devices: Vec<String>,
    /// A USB/IP server whose devices (`--busid`) are this host's.
    #[arg(long, value_name = "ADDR")]
    usbip: Option<String>,
    /// With --usbip: the exported bus ids to use (default 1-1).
    #[arg(long = "busid", value_name = "ID", requires = "usbip")]
    busids: Vec<String>,
    /// The role asked for at start (the device decides: what is on this host's port is taken).
    #[arg(long, value_enum, default_value_t = RoleArg::Backup)]
    role: RoleArg,
    /// The control socket.
    #[arg(long, value_name = "PATH", default_value = "/run/xpp/xppd.sock")]
    socket: PathBuf,
    /// The PBX's health check, run with `sh -c` (exit status 0 = healthy); none: always healthy.
    #[arg(long, value_name = "CMD")]
    health_cmd: Option<String>,
    /// How often the health is checked while master.
    #[arg(long, value_name = "MS", default_value_t = 500)]
    health_interval_ms: u64,
    /// A check not answered within this time counts as failed.
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    health_timeout_ms: u64,
    /// Failed checks in a row that make the master hand the lines over.
    #[arg(long, value_name = "N", default_value_t = 3)]
    health_failures: u32,
    /// Leave the device's watchdog disarmed (dahdi-tools' twinstar_no_autojump).
    #[arg(long)]
    no_watchdog: bool,
    /// Firmware folder for a device that arrives cold (default: $XPP_FIRMWARE_DIR, or none).
    #[arg(long, value_name = "DIR")]
    firmware: Option<PathBuf>,
    /// An FXS channel and the FXO channel its calls go out on.
    #[arg(long = "bridge", value_name = "FXS:FXO")]
    bridges: Vec<String>,
    /// Run when the lines came online here (dahdi-tools' twinstar_hook `online`).
    #[arg(long, value_name = "PROG")]
    hook_online: Option<PathBuf>,
    /// Run when the lines left this host.
    #[arg(long, value_name = "PROG")]
    hook_offline: Option<PathBuf>,
    /// Run when the PBX is unhealthy and no backup can take the lines.
    #[arg(long, value_name = "PROG")]
    hook_last_resort: Option<PathBuf>,
    /// Keep each device's layout here, to register its spans in standby before it comes.
    #[arg(long, value_name = "DIR")]
    layout_dir: Option<PathBuf>,
    /// DAHDI's system.conf, applied to every device this host takes (refused at start if it
    /// does not parse).
    #[arg(long, value_name = "PATH")]
    system_conf: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum RoleArg {
    Master,
    Backup,
}

/// What the arguments ask for, checked.
struct Plan {
    targets: Vec<Target>,
    role: Role,
    bridges: Vec<(u32, u32)>,
    firmware: FirmwareSet,
    options: TwinStarOptions,
}

fn plan(args: &Args) -> Result<Plan, String> {
    let mut targets = Vec::new();
    for d in &args.devices {
        targets.push(d.parse::<Target>().map_err(|e| format!("--device {d}: {e}"))?);
    }
    if let Some(addr) = &args.usbip {
        let busids = if args.busids.is_empty() { vec!["1-1".to_owned()] } else { args.busids.clone() };
        for b in busids {
            let text = format!("usbip:{addr}/{b}");
            targets.push(text.parse::<Target>().map_err(|e| format!("--usbip {addr} --busid {b}: {e}"))?);
        }
    }
    if targets.is_empty() {
        return Err("no device: give --device TARGET or --usbip ADDR".to_owned());
    }
    let mut bridges = Vec::new();
    let texts = if args.bridges.is_empty() { vec!["1:15".to_owned()] } else { args.bridges.clone() };
    for b in &texts {
        let pair = b.split_once(':').and_then(|(s, o)| Some((s.parse().ok()?, o.parse().ok()?)));
        match pair {
            Some((fxs, fxo)) if fxs != fxo => bridges.push((fxs, fxo)),
            _ => return Err(format!("--bridge {b}: expected FXS:FXO, two different channel numbers")),
        }
    }
    if args.health_interval_ms == 0 || args.health_timeout_ms == 0 || args.health_failures == 0 {
        return Err("--health-interval-ms, --health-timeout-ms and --health-failures must be > 0".to_owned());
    }
    let dir = args.firmware.clone().or_else(|| std::env::var_os("XPP_FIRMWARE_DIR").map(PathBuf::from));
    let firmware = match dir {
        Some(d) => xpp::read_firmware_dir(&d).map_err(|e| format!("firmware: {e}"))?,
        None => FirmwareSet::new(),
    };
    let ms = xpp::Duration::from_millis;
    let controller = Config::default().with_health(
        ms(args.health_interval_ms),
        ms(args.health_timeout_ms),
        args.health_failures,
    );
    let mut hooks = Hooks::default();
    hooks.online.clone_from(&args.hook_online);
    hooks.offline.clone_from(&args.hook_offline);
    hooks.last_resort.clone_from(&args.hook_last_resort);
    let mut options = TwinStarOptions::new(firmware.clone()).with_controller(controller).with_hooks(hooks);
    if let Some(dir) = &args.layout_dir {
        options = options.with_layout_dir(dir);
    }
    if let Some(path) = &args.system_conf {
        let conf = xpp::span::sysconf::parse_file(path).map_err(|e| e.to_string())?;
        options = options.with_system_conf(path.display().to_string(), conf);
    }
    let role = match args.role {
        RoleArg::Master => Role::Master,
        RoleArg::Backup => Role::Backup,
    };
    Ok(Plan { targets, role, bridges, firmware, options })
}

/// The health check: `sh -c CMD`, healthy on exit status 0.
fn health(cmd: Option<String>) -> impl FnMut() -> bool + Send + 'static {
    move || match &cmd {
        None => true,
        Some(c) => Command::new("sh")
            .arg("-c")
            .arg(c)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success()),
    }
}

/// Tells systemd (`$NOTIFY_SOCKET`, a path or an abstract `@name`) one state line, e.g.
/// `READY=1`. Nothing to do without the variable.
fn sd_notify(state: &str) -> std::io::Result<()> {
    match std::env::var_os("NOTIFY_SOCKET") {
        Some(path) => sd_notify_to(&path, state),
        None => Ok(()),
    }
}

/// Sends `state` to the notification socket `path` (a file path, or `@name` in the abstract
/// namespace).
fn sd_notify_to(path: &std::ffi::OsStr, state: &str) -> std::io::Result<()> {
    let sock = std::os::unix::net::UnixDatagram::unbound()?;
    let bytes = path.as_encoded_bytes();
    if let Some(name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
        sock.send_to_addr(state.as_bytes(), &addr)?;
    } else {
        sock.send_to(state.as_bytes(), path)?;
    }
    Ok(())
}

/// Prints one line with the wall-clock time (journald and the cluster test read it).
fn say(line: &str) {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}.{:03} {line}", t.as_secs(), t.subsec_millis());
    let _ = out.flush();
}

const fn role_name(r: Role) -> &'static str {
    match r {
        Role::Master => "master",
        Role::Backup => "backup",
    }
}

/// The bridged pairs (FXS, FXO) with a call up, shared between the PBX and audio threads.
type Calls = Arc<Mutex<BTreeMap<u32, u32>>>;

/// The PBX's signalling: hook events in, line seizures out; TwinStar events printed.
fn pbx(drv: &Driver, bridges: &[(u32, u32)], calls: &Calls, stop: &AtomicBool) {
    let events = drv.events();
    while !stop.load(Ordering::SeqCst) {
        let Ok(e) = events.recv_timeout(StdDuration::from_millis(100)) else { continue };
        match e {
            DriverEvent::DeviceReady { device, spans, channels } => say(&format!(
                "device {} up: spans {}-{}, channels {}-{}",
                device.0,
                spans.start(),
                spans.end(),
                channels.start(),
                channels.end()
            )),
            DriverEvent::TwinStar(t) => match t {
                TwsEvent::RoleChanged { role } => say(&format!("role {}", role_name(role))),
                TwsEvent::Failover { timeline } => {
                    say(&format!("failover: {} ms", timeline.total().total_micros() / 1000));
                }
                TwsEvent::WatchdogChanged { armed, .. } => {
                    say(&format!("watchdog {}", if armed { "armed" } else { "disarmed" }));
                }
                TwsEvent::HandOverStarted { reason } => say(&format!("hand-over: {reason:?}")),
                TwsEvent::HandOverRefused { reason } => say(&format!("hand-over refused: {reason:?}")),
                other => say(&format!("twinstar: {other:?}")),
            },
            DriverEvent::Chan { channo, event, .. } => {
                let Some(&(fxs, fxo)) = bridges.iter().find(|(s, _)| *s == channo) else { continue };
                if event == Event::RINGOFFHOOK {
                    // The line model accepts the seizure once it has read the line voltage, a
                    // few ms after a take-over: retry for a short while.
                    let from = std::time::Instant::now();
                    let seized = loop {
                        match drv.set_hook(fxo, HookCmd::OffHook, HookMode::Blocking) {
                            Ok(_) => break Ok(()),
                            Err(e) if from.elapsed() > StdDuration::from_secs(3) => break Err(e),
                            Err(_) => std::thread::sleep(StdDuration::from_millis(2)),
                        }
                    };
                    match seized {
                        Ok(()) => {
                            calls.lock().unwrap_or_else(PoisonError::into_inner).insert(fxs, fxo);
                            say(&format!("call: FXS {fxs} off hook, FXO {fxo} seized, bridged"));
                        }
                        Err(e) => say(&format!("call: FXS {fxs} off hook, FXO {fxo} not seized: {e}")),
                    }
                } else if event == Event::ONHOOK {
                    calls.lock().unwrap_or_else(PoisonError::into_inner).remove(&fxs);
                    let _ = drv.set_hook(fxo, HookCmd::OnHook, HookMode::Blocking);
                    say(&format!("call: FXS {fxs} on hook, FXO {fxo} released"));
                }
            }
            _ => {}
        }
    }
}

/// The PBX's audio: every tick of the device held now, each call's chunks both ways.
fn audio(drv: &Driver, host: &TwinStarHost, calls: &Calls, stop: &AtomicBool) {
    let (mut a, mut b) = ([0u8; 8], [0u8; 8]);
    while !stop.load(Ordering::SeqCst) {
        let device: Option<DeviceId> = host.status().devices.into_iter().flatten().next();
        let Some(id) = device else {
            std::thread::sleep(StdDuration::from_millis(20));
            continue;
        };
        for _ in 0..100 {
            if stop.load(Ordering::SeqCst) || drv.wait_tick(id, StdDuration::from_millis(200)).is_err() {
                break;
            }
            let pairs: Vec<(u32, u32)> =
                calls.lock().unwrap_or_else(PoisonError::into_inner).iter().map(|(s, o)| (*s, *o)).collect();
            for (fxs, fxo) in pairs {
                if drv.read_chunk(fxs, &mut a).is_ok() && drv.read_chunk(fxo, &mut b).is_ok() {
                    let _ = drv.write_chunk(fxo, &a);
                    let _ = drv.write_chunk(fxs, &b);
                }
            }
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let plan = plan(args).map_err(|e| format!("bad arguments: {e}"))?;
    let _ = plan.firmware; // checked at start; the host keeps its own copy in the options
    if let Some(dir) = args.socket.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).map_err(|e| format!("signal handler: {e}"))?;
    }
    let drv = Arc::new(Driver::new(SystemClock::new(), DriverOptions::default()));
    let host = TwinStarHost::start(
        Arc::clone(&drv),
        plan.targets.clone(),
        plan.role,
        health(args.health_cmd.clone()),
        plan.options,
    )
    .map_err(|e| format!("TwinStar host: {e}"))?;
    let host = Arc::new(host);
    if args.no_watchdog {
        host.command(xpp::driver::tws::Command::DisableWatchdog);
    }
    let socket = ControlSocket::bind(&args.socket, Arc::clone(&host))
        .map_err(|e| format!("control socket {}: {e}", args.socket.display()))?;
    let calls: Calls = Arc::default();
    let pbx_thread = {
        let (d, c, s, b) = (Arc::clone(&drv), Arc::clone(&calls), Arc::clone(&stop), plan.bridges.clone());
        std::thread::Builder::new()
            .name("xppd-pbx".into())
            .spawn(move || pbx(&d, &b, &c, &s))
            .map_err(|e| e.to_string())?
    };
    let audio_thread = {
        let (d, h, c, s) = (Arc::clone(&drv), Arc::clone(&host), Arc::clone(&calls), Arc::clone(&stop));
        std::thread::Builder::new()
            .name("xppd-audio".into())
            .spawn(move || audio(&d, &h, &c, &s))
            .map_err(|e| e.to_string())?
    };
    let targets: Vec<String> = plan.targets.iter().map(ToString::to_string).collect();
    say(&format!("ready: socket {}, devices {}", args.socket.display(), targets.join(" ")));
    if let Err(e) = sd_notify("READY=1\nSTATUS=serving the control socket") {
        say(&format!("sd_notify: {e}"));
    }
    let mut shown = None;
    while !stop.load(Ordering::SeqCst) {
        let st = host.status();
        let now = (st.role, st.devices.iter().filter(|d| d.is_some()).count());
        if shown != Some(now) {
            let _ = sd_notify(&format!(
                "STATUS={}, {} of {} devices here",
                role_name(now.0),
                now.1,
                targets.len()
            ));
            shown = Some(now);
        }
        std::thread::sleep(StdDuration::from_millis(50));
    }
    say("stopping: watchdogs disarmed, devices released, no jump");
    let _ = sd_notify("STOPPING=1");
    socket.shutdown();
    let _ = audio_thread.join();
    let _ = pbx_thread.join();
    match Arc::try_unwrap(host) {
        Ok(h) => h.stop(StdDuration::from_secs(10)),
        Err(_) => return Err("the TwinStar host is still shared at stop".to_owned()),
    }
    match Arc::try_unwrap(drv) {
        Ok(d) => d.close(),
        Err(_) => return Err("the driver is still shared at stop".to_owned()),
    }
    say("stopped");
    Ok(())
}

fn main() -> ExitCode {
    common::init();
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.starts_with("bad arguments") => {
            eprintln!("xppd: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("xppd: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixDatagram;

    use super::*;

    fn received(sock: &UnixDatagram) -> String {
        sock.set_read_timeout(Some(StdDuration::from_secs(5))).unwrap();
        let mut buf = [0u8; 256];
        let n = sock.recv(&mut buf).expect("a notification");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn readiness_reaches_a_path_socket() {
        let dir = std::env::temp_dir().join(format!("xppd-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let sock = UnixDatagram::bind(&path).unwrap();
        sd_notify_to(path.as_os_str(), "READY=1\nSTATUS=x").unwrap();
        assert_eq!(received(&sock), "READY=1\nSTATUS=x");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn readiness_reaches_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("xppd-notify-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let sock = UnixDatagram::bind_addr(&addr).unwrap();
        sd_notify_to(std::ffi::OsStr::new(&format!("@{name}")), "READY=1").unwrap();
        assert_eq!(received(&sock), "READY=1");
    }

    #[test]
    fn a_missing_socket_is_an_error() {
        let path = std::env::temp_dir().join("xppd-notify-nonexistent/notify.sock");
        assert!(sd_notify_to(path.as_os_str(), "READY=1").is_err());
    }

    fn args(argv: &[&str]) -> Args {
        Args::try_parse_from(std::iter::once("xppd").chain(argv.iter().copied())).unwrap()
    }

    #[test]
    fn arguments_become_targets_and_bridges() {
        let p = plan(&args(&["--usbip", "127.0.0.1:3240", "--busid", "1-2", "--bridge", "2:16"])).unwrap();
        let targets: Vec<String> = p.targets.iter().map(ToString::to_string).collect();
        assert_eq!(targets, ["usbip:127.0.0.1:3240/1-2"]);
        assert_eq!(p.bridges, [(2, 16)]);
        let p = plan(&args(&["--device", "usbip:127.0.0.1:3240/1-1"])).unwrap();
        assert_eq!(p.bridges, [(1, 15)]);
    }

    #[test]
    fn bad_arguments_say_which() {
        let e = |argv: &[&str]| plan(&args(argv)).err().expect("refused");
        assert!(e(&[]).contains("no device"));
        assert!(e(&["--usbip", "h:1", "--bridge", "3:3"]).contains("--bridge 3:3"));
        assert!(e(&["--usbip", "h:1", "--bridge", "x"]).contains("--bridge x"));
        assert!(e(&["--usbip", "h:1", "--health-failures", "0"]).contains("--health-failures"));
        assert!(e(&["--device", "nonsense target"]).contains("--device nonsense target"));
    }

    #[test]
    fn system_conf_is_read_at_start_and_refused_with_its_place() {
        let dir = std::env::temp_dir().join(format!("xppd-sysconf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.conf");
        std::fs::write(&good, "span=1,1,0,ccs,hdb3,crc4\nbchan=1-15,17-31\ndchan=16\n").unwrap();
        let bad = dir.join("bad.conf");
        std::fs::write(&bad, "fxoks=1-8\nspan=1,1,0,ccs,hdb3,crc4,bogus\n").unwrap();
        let plan_with = |conf: &std::path::Path| {
            plan(&args(&["--usbip", "h:1", "--system-conf", conf.to_str().unwrap()]))
        };
        let p = plan_with(&good).unwrap();
        let (name, conf) = p.options.system_conf.expect("kept for the take-overs");
        assert_eq!(name, good.display().to_string());
        assert_eq!(conf.spans.len(), 1);
        let e = plan_with(&bad).err().expect("refused");
        assert!(e.contains(&format!("{}:2:26: expected span option", bad.display())), "{e}");
        let e = plan_with(&dir.join("absent.conf")).err().expect("refused");
        assert!(e.contains("absent.conf"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
