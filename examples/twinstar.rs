//! `twinstar`: dahdi-tools' `twinstar` verbs for Astribanks that no driver holds.
//!
//! ```text
//! cargo run --example twinstar -- [--usbip ADDR | --emulator] [--json] VERB [DEVICE...]
//! ```
//!
//! VERB is `status`, `ports`, `jump`, `enable-wd` or `disable-wd`
//! (docs/reference/mpp-twinstar-firmware.md §4.5). DEVICE is a bus path, `BBB/DDD`,
//! `serial:LABEL` or `usbip:HOST:PORT/BUSID`; without one, every MPP-capable Astribank
//! (1161, 1162) on this machine's USB buses, or with `--usbip ADDR` every one that server
//! exports, or with `--emulator` an in-process emulated TwinStar device.
//!
//! `status` prints the dahdi-tools header and one row per device (columns 15, 10, 15, 10, 10
//! wide: `DEVICE PORT WATCHDOG POWER0 POWER1`, `on`/`off`, `yes`/`no`); `ports` one active
//! port per line; `jump` moves each device to its other port, and refuses (sending nothing)
//! when that port has no power; `enable-wd`/`disable-wd` arm or disarm the watchdog. `--json`
//! prints one JSON document instead, `{"devices": [...]}` with one object per device (a
//! device that failed has an `"error"`). Exit status: 0 done, 1 a device failed (each
//! failure on stderr), 2 bad arguments (nothing sent).
//!
//! A device a running driver holds is reached through that driver's control socket instead:
//! `--socket PATH` sends the verb (also `timeline` and `watch`) and prints the driver's JSON
//! answer (`xpp_driver::control` documents the protocol).

mod common;

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use xpp::Target;
use xpp::emu::config::Stage;
use xpp::emu::{DeviceConfig, Emulator};
use xpp::proto::mgmt::{OwnedReply, Request, Session, TwsPower};
use xpp::usb::discovery::Family;
use xpp::usb::{Transport, mgmt_request};

/// dahdi-tools' `twinstar`: TwinStar status and control of idle Astribanks.
#[derive(Parser, Debug)]
#[command(name = "twinstar")]
struct Args {
    /// status | ports | jump | enable-wd | disable-wd
    verb: String,
    /// Devices (bus path, BBB/DDD, serial:LABEL, usbip:HOST:PORT/BUSID); default: all.
    devices: Vec<String>,
    /// Every Astribank this USB/IP server exports (host:port).
    #[arg(long, value_name = "ADDR", conflicts_with = "emulator")]
    usbip: Option<String>,
    /// An in-process emulated TwinStar Astribank.
    #[arg(long)]
    emulator: bool,
    /// One JSON document, `{"devices": [...]}`.
    #[arg(long)]
    json: bool,
    /// Ask the control socket of a running driver instead (verbs also `timeline`, `watch`).
    #[arg(long, value_name = "PATH", conflicts_with_all = ["usbip", "emulator"])]
    socket: Option<std::path::PathBuf>,
}

/// How long one management transfer may take (the reference tool's 2 s, §2.5).
const TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    Status,
    Ports,
    Jump,
    Watchdog(bool),
}

/// One device to act on: its name in the output and how to open it.
enum Dev {
    Target(Target),
    Emulated(Emulator),
}

impl Dev {
    fn name(&self) -> String {
        match self {
            Self::Target(t) => t.to_string(),
            Self::Emulated(_) => "emulator:0".to_owned(),
        }
    }

    fn open(&self) -> Result<Box<dyn Transport>, String> {
        match self {
            Self::Target(t) => t.open().map_err(|e| e.to_string()),
            Self::Emulated(e) => e
                .transport(e.with_device(|d| d.active_port()))
                .map(|t| Box::new(t) as Box<dyn Transport>)
                .ok_or_else(|| "the emulated device is not enumerated".to_owned()),
        }
    }
}

/// What one device said.
struct Tws {
    port: u8,
    watchdog: bool,
    power: TwsPower,
}

fn ask(t: &mut dyn Transport, s: &mut Session, request: Request<'_>) -> Result<OwnedReply, String> {
    match mgmt_request(t, s, request, TIMEOUT) {
        Ok(Some(r)) => Ok(r),
        Ok(None) => Err(format!("{}: no reply", request.op())),
        Err(e) => Err(format!("{}: {e}", request.op())),
    }
}

fn query(t: &mut dyn Transport, s: &mut Session) -> Result<Tws, String> {
    let port = match ask(t, s, Request::TwsPortGet)? {
        OwnedReply::TwsPortGetReply { port } => port,
        other => return Err(format!("TWS_PORT_GET answered {other:?}")),
    };
    let watchdog = match ask(t, s, Request::TwsWdModeGet)? {
        // §4.2: 1 = on-guard, anything else off-guard.
        OwnedReply::TwsWdModeGetReply { wd_active } => wd_active == 1,
        other => return Err(format!("TWS_WD_MODE_GET answered {other:?}")),
    };
    let power = match ask(t, s, Request::TwsPwrGet)? {
        OwnedReply::TwsPwrGetReply(p) => p,
        other => return Err(format!("TWS_PWR_GET answered {other:?}")),
    };
    Ok(Tws { port, watchdog, power })
}

/// What one device's verb gave: the text line to print (if the verb prints one) and the same
/// as a JSON object, one element of the run's `{"devices": [...]}` document.
struct Outcome {
    text: Option<String>,
    json: serde_json::Value,
}

/// Acts on one device; what to print, or why it failed.
fn act(dev: &Dev, verb: Verb) -> Result<Outcome, String> {
    let mut t = dev.open()?;
    let mut s = Session::new();
    let tws = query(t.as_mut(), &mut s)?;
    let yes = |b: bool| if b { "yes" } else { "no" };
    let name = dev.name();
    let on_off = |b: bool| if b { "on" } else { "off" };
    Ok(match verb {
        Verb::Status => Outcome {
            text: Some(format!(
                "{name:<15} {:<10} {:<15} {:<10} {:<10}",
                tws.port,
                on_off(tws.watchdog),
                yes(tws.power.has_power(0)),
                yes(tws.power.has_power(1))
            )),
            json: serde_json::json!({
                "device": name,
                "port": tws.port,
                "watchdog": on_off(tws.watchdog),
                "power0": tws.power.has_power(0),
                "power1": tws.power.has_power(1),
            }),
        },
        Verb::Ports => Outcome {
            text: Some(tws.port.to_string()),
            json: serde_json::json!({ "device": name, "port": tws.port }),
        },
        Verb::Jump => {
            let other = if tws.port == 1 { 0 } else { 1 };
            if !tws.power.has_power(other) {
                return Err(format!("no power on USB-{other}: not jumping"));
            }
            mgmt_request(t.as_mut(), &mut s, Request::TwsPortSet { port: other }, TIMEOUT)
                .map_err(|e| format!("TWS_PORT_SET: {e}"))?;
            Outcome { text: None, json: serde_json::json!({ "device": name, "jumped_to": other }) }
        }
        Verb::Watchdog(armed) => {
            match ask(t.as_mut(), &mut s, Request::TwsWdModeSet { armed })? {
                OwnedReply::Ack { .. } => {}
                other => return Err(format!("TWS_WD_MODE_SET answered {other:?}")),
            }
            Outcome { text: None, json: serde_json::json!({ "device": name, "watchdog": on_off(armed) }) }
        }
    })
}

/// The devices the arguments name.
fn devices(args: &Args, emulator: Option<&Emulator>) -> Result<Vec<Dev>, String> {
    if args.emulator {
        let emu = emulator.cloned().unwrap_or_else(|| {
            Emulator::new(DeviceConfig::default().with_twinstar(true).with_start_stage(Stage::Running))
        });
        return Ok(vec![Dev::Emulated(emu)]);
    }
    if !args.devices.is_empty() {
        return args
            .devices
            .iter()
            .map(|d| d.parse::<Target>().map(Dev::Target).map_err(|e| format!("{d}: {e}")))
            .collect();
    }
    // §4.5: only the MPP-capable products 1161 and 1162 are queried.
    let mpp_capable = |pid: u16| matches!(pid, 0x1161 | 0x1162);
    if let Some(addr) = &args.usbip {
        let list = xpp::usb::usbip::list_devices(addr.as_str()).map_err(|e| format!("{addr}: {e}"))?;
        return Ok(list
            .iter()
            .filter(|d| mpp_capable(d.device.id_product))
            .map(|d| Dev::Target(Target::UsbIp { server: addr.clone(), busid: d.device.busid.clone() }))
            .collect());
    }
    let list = xpp::usb::backend::nusb::list().map_err(|e| e.to_string())?;
    Ok(list
        .iter()
        .filter(|a| a.model.family == Family::Modular && mpp_capable(a.product_id))
        .filter_map(|a| a.bus_path().parse().ok().map(Dev::Target))
        .collect())
}

/// Runs the tool; its exit status. `emulator` stands in for `--emulator`'s device (tests).
pub(crate) fn run(
    argv: &[&str],
    out: &mut dyn Write,
    err: &mut dyn Write,
    emulator: Option<&Emulator>,
) -> u8 {
    let args = match Args::try_parse_from(std::iter::once("twinstar").chain(argv.iter().copied())) {
        Ok(a) => a,
        Err(e) => {
            let _ = write!(err, "{e}");
            return 2;
        }
    };
    if let Some(path) = &args.socket {
        return via_socket(path, &args.verb, out, err);
    }
    let verb = match args.verb.as_str() {
        "status" => Verb::Status,
        "ports" => Verb::Ports,
        "jump" => Verb::Jump,
        "enable-wd" => Verb::Watchdog(true),
        "disable-wd" => Verb::Watchdog(false),
        other => {
            let _ = writeln!(
                err,
                "twinstar: unknown verb {other:?} (status, ports, jump, enable-wd, disable-wd)"
            );
            return 2;
        }
    };
    let devs = match devices(&args, emulator) {
        Ok(d) => d,
        Err(e) => {
            let _ = writeln!(err, "twinstar: {e}");
            return 2;
        }
    };
    if verb == Verb::Status && !args.json {
        let _ = writeln!(
            out,
            "{:<15} {:<10} {:<15} {:<10} {:<10}",
            "DEVICE", "PORT", "WATCHDOG", "POWER0", "POWER1"
        );
    }
    let mut status = 0;
    let mut docs = Vec::new();
    for dev in &devs {
        match act(dev, verb) {
            Ok(Outcome { json, .. }) if args.json => docs.push(json),
            Ok(Outcome { text: Some(line), .. }) => {
                let _ = writeln!(out, "{line}");
            }
            Ok(Outcome { text: None, .. }) => {}
            Err(e) => {
                let _ = writeln!(err, "twinstar: {}: {e}", dev.name());
                if args.json {
                    docs.push(serde_json::json!({ "device": dev.name(), "error": e }));
                }
                status = 1;
            }
        }
    }
    if args.json {
        // One document per run, so `twinstar --json status | jq` works with any number of
        // devices; a device that failed is in it too, with its error.
        let _ = writeln!(out, "{}", serde_json::json!({ "devices": docs }));
    }
    status
}

/// A verb through a running driver's control socket (`xpp_driver::control`): its JSON answer
/// printed as it is; `watch` prints every event until the driver stops.
fn via_socket(path: &std::path::Path, verb: &str, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    use std::io::{BufRead, BufReader};
    const VERBS: [&str; 6] = ["status", "jump", "enable-wd", "disable-wd", "timeline", "watch"];
    if !VERBS.contains(&verb) {
        let _ = writeln!(err, "twinstar: unknown verb {verb:?} for --socket ({})", VERBS.join(", "));
        return 2;
    }
    let stream = match std::os::unix::net::UnixStream::connect(path) {
        Ok(s) => s,
        Err(e) => {
            let _ = writeln!(err, "twinstar: {}: {e}", path.display());
            return 1;
        }
    };
    let mut reader = BufReader::new(&stream);
    if writeln!(&stream, "{verb}").is_err() {
        let _ = writeln!(err, "twinstar: {}: the driver closed the connection", path.display());
        return 1;
    }
    let mut status = 0;
    let mut line = String::new();
    while matches!(reader.read_line(&mut line), Ok(n) if n > 0) {
        let failed = serde_json::from_str::<serde_json::Value>(&line).is_ok_and(|v| v.get("error").is_some());
        if failed {
            let _ = write!(err, "twinstar: {line}");
            status = 1;
        } else {
            let _ = write!(out, "{line}");
        }
        line.clear();
        if verb != "watch" {
            break;
        }
    }
    status
}

fn main() -> ExitCode {
    common::init();
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    ExitCode::from(run(&argv, &mut std::io::stdout(), &mut std::io::stderr(), None))
}
