//! `blink`: find an Astribank, or one module in it, by its LEDs (dahdi-tools' `xpp_blink`).
//!
//! ```text
//! cargo run --example blink -- [blink|on|off|bzzt] [--unit U] [--port P] [--seconds S] [--period MS]
//!     [-D DEVICE | --usbip ADDR [--busid ID] | --emulator] [--firmware DIR] [--json]
//! ```
//!
//! Brings the device up (as the driver would: firmware it lacks, module init) and drives the
//! LEDs of every module, or of unit `--unit` only, or of its port `--port` only: `blink`
//! (default) toggles them every `--period` ms (250) for `--seconds` (5) and leaves them off;
//! `on` and `off` set them; `bzzt` is on for one second, then off (as `xpp_blink bzzt`).
//! LEDs are driven as the reference driver does (docs/reference/xpp-protocol.md §9): FXS
//! green LED through register 0x06 (type 1) or the I/O expander (type 6), FXO green through
//! register 0x20, PRI and BRI every LED through SET_LED. `--json` prints one JSON document
//! at the end (`{"device", "mode", "units": [..], "packets"}`).
//!
//! The device must be idle: a device a running driver holds is not reachable from another
//! program. The device options are those of `xpp-tool`. Exit status: 0 done, 1 the device
//! could not be brought up or a write failed, 2 bad arguments (including a unit or port the
//! device does not have; nothing is sent to the LEDs then).

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use serde_json::{Value, json};
use xpp::bringup::{BringUpConfig, CardKind, RunOptions, UnitReport, bring_up};
use xpp::proto::wire::{Address, BriLed, Message, PriLed, RegAccess, RegCmd, Repr, SetLed};
use xpp::usb::{Transport, ep};
use xpp_emu::Emulator;

use common::device::{Dev, DeviceArgs, clock_for, firmware_set};

/// Identify an Astribank or one of its modules by its LEDs (xpp_blink).
#[derive(Parser, Debug)]
#[command(name = "blink")]
struct Args {
    /// blink (toggle for --seconds), on, off, or bzzt (on for one second).
    #[arg(value_enum, default_value = "blink")]
    mode: Mode,
    /// Only this unit (module slot 0..3).
    #[arg(long, value_name = "U")]
    unit: Option<u8>,
    /// Only this port (subunit for PRI/BRI) of --unit.
    #[arg(long, value_name = "P", requires = "unit")]
    port: Option<u8>,
    /// How long to blink.
    #[arg(long, value_name = "S", default_value_t = 5.0)]
    seconds: f64,
    /// Milliseconds between two toggles.
    #[arg(long, value_name = "MS", default_value_t = 250)]
    period: u64,
    #[command(flatten)]
    dev: DeviceArgs,
    /// Firmware folder for a device not yet running.
    #[arg(long, value_name = "DIR")]
    firmware: Option<PathBuf>,
    /// One JSON document at the end.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Mode {
    Blink,
    On,
    Off,
    Bzzt,
}

impl Mode {
    const fn word(self) -> &'static str {
        match self {
            Self::Blink => "blink",
            Self::On => "on",
            Self::Off => "off",
            Self::Bzzt => "bzzt",
        }
    }
}

/// FXS type 1 register 0x06 values (xpp-protocol.md §9.1 "LEDs and relays").
const FXS1_LED: u8 = 0x06;
const FXS1_GREEN: [u8; 2] = [0x6C, 0x7C];
/// FXS type 6 I/O expander port A (§9.1).
const FXS6_EXPANDER_PORT_A: u8 = 0x12;
/// FXO register 0x20 values (§9.2).
const FXO_LED: u8 = 0x20;
const FXO_GREEN: [u8; 2] = [0x60, 0x63];

/// One module's LEDs to drive: which unit, what it is, which ports.
struct Target {
    unit: u8,
    kind: CardKind,
    ports: Vec<u8>,
}

/// The data-interface packets that set `t`'s LEDs `on` or off.
fn led_packets(t: &Target, on: bool) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut push = |addr: Option<Address>, m: Message<'_>| {
        let Some(addr) = addr else { return };
        let repr = Repr::command(addr, m);
        let mut buf = vec![0u8; repr.buffer_len()];
        if repr.emit(&mut buf).is_ok() {
            out.push(buf);
        }
    };
    for &p in &t.ports {
        let reg = |r: RegAccess| Message::RegisterRequest(RegCmd::Reg(r));
        match t.kind {
            CardKind::FxsType1 => {
                push(
                    Address::new(t.unit, 0),
                    reg(RegAccess::write(p, FXS1_LED, FXS1_GREEN[usize::from(on)])),
                );
            }
            CardKind::FxsType6 => {
                let mask = 1u8 << p;
                let cmd = RegAccess::write_sub(0, FXS6_EXPANDER_PORT_A, 0, if on { mask } else { 0 }, mask);
                push(Address::new(t.unit, 0), reg(cmd.via_expander()));
            }
            CardKind::Fxo => {
                push(Address::new(t.unit, 0), reg(RegAccess::write(p, FXO_LED, FXO_GREEN[usize::from(on)])));
            }
            CardKind::Pri => {
                for led in [PriLed::BottomRed, PriLed::BottomGreen, PriLed::TopRed, PriLed::TopGreen] {
                    push(Address::new(t.unit, p), Message::SetLed(SetLed::pri(led, on)));
                }
            }
            CardKind::Bri => {
                for led in [BriLed::Green, BriLed::Red] {
                    push(Address::new(t.unit, p), Message::SetLed(SetLed::bri(led, on)));
                }
            }
            _ => {}
        }
    }
    out
}

/// The LEDs a unit has: its ports (FXS, FXO) or subunits (PRI, BRI); none for the echo module.
fn led_ports(u: &UnitReport) -> Vec<u8> {
    match u.kind {
        CardKind::FxsType1 | CardKind::FxsType6 | CardKind::Fxo => {
            (0..u.ports.min(8)).filter(|p| u.present & (1 << p) != 0).collect()
        }
        CardKind::Pri | CardKind::Bri => (0..u.subunits).collect(),
        _ => Vec::new(),
    }
}

/// Sends `packets` on the data interface, as few transfers as fit 512 bytes each.
fn send(t: &mut dyn Transport, packets: &[Vec<u8>]) -> Result<(), String> {
    let mut transfer = Vec::new();
    for p in packets {
        if transfer.len() + p.len() > 512 {
            flush(t, &mut transfer)?;
        }
        transfer.extend_from_slice(p);
    }
    flush(t, &mut transfer)
}

fn flush(t: &mut dyn Transport, transfer: &mut Vec<u8>) -> Result<(), String> {
    if transfer.is_empty() {
        return Ok(());
    }
    let c = t.transfer_blocking(ep::DATA_OUT, std::mem::take(transfer), Duration::from_secs(1));
    c.status.map_err(|e| format!("LED write: {e}"))
}

/// Runs the tool; its exit status. `emulator` stands in for `--emulator`'s device (tests).
pub(crate) fn run(
    argv: &[&str],
    out: &mut dyn Write,
    err: &mut dyn Write,
    emulator: Option<&Emulator>,
) -> u8 {
    let args: Args = match common::parse_args("blink", argv, out, err) {
        Ok(a) => a,
        Err(code) => return code,
    };
    if !(args.seconds.is_finite() && (0.0..=3600.0).contains(&args.seconds)) || args.period == 0 {
        let _ = writeln!(err, "blink: --seconds 0..3600 and --period at least 1 ms");
        return 2;
    }
    let dev = match args.dev.select(|| {
        emulator.cloned().unwrap_or_else(|| {
            let cfg = xpp_emu::DeviceConfig::default().with_start_stage(xpp_emu::config::Stage::Running);
            Emulator::with_mode(cfg, xpp_emu::ClockMode::AutoAdvance)
        })
    }) {
        Ok(d) => d,
        Err(e) => {
            let _ = writeln!(err, "blink: {e}");
            return 2;
        }
    };
    let mut doc = serde_json::Map::new();
    doc.insert("device".into(), Value::String(dev.name()));
    doc.insert("mode".into(), Value::String(args.mode.word().into()));
    let status = match blink(&args, &dev, &mut doc) {
        Ok(()) => 0,
        Err((code, e)) => {
            let _ = writeln!(err, "blink: {}: {e}", dev.name());
            doc.insert("error".into(), Value::String(e));
            code
        }
    };
    if args.json {
        let _ = writeln!(out, "{}", Value::Object(doc));
    }
    status
}

/// Brings the device up and drives its LEDs; on failure the exit status and why.
fn blink(args: &Args, dev: &Dev, doc: &mut serde_json::Map<String, Value>) -> Result<(), (u8, String)> {
    let fw = firmware_set(args.firmware.as_deref()).map_err(|e| (1, e))?;
    let clock = clock_for(dev);
    let open = dev.opener().map_err(|e| (1, e))?;
    let ready = bring_up(open, &*clock, BringUpConfig::default(), fw, RunOptions::default(), |_| {})
        .map_err(|e| (1, format!("bring-up failed: {e}")))?;
    let mut targets = Vec::new();
    for u in &ready.result.units {
        if args.unit.is_some_and(|w| w != u.unit) {
            continue;
        }
        let mut ports = led_ports(u);
        if let Some(p) = args.port {
            if !ports.contains(&p) {
                return Err((2, format!("unit {} has no port {p} with a LED", u.unit)));
            }
            ports = vec![p];
        }
        if !ports.is_empty() {
            targets.push(Target { unit: u.unit, kind: u.kind, ports });
        }
    }
    if targets.is_empty() {
        let what = args.unit.map_or_else(|| "the device".to_owned(), |u| format!("unit {u}"));
        return Err((2, format!("{what}: no module with LEDs")));
    }
    doc.insert(
        "units".into(),
        Value::Array(
            targets
                .iter()
                .map(|t| json!({ "unit": t.unit, "kind": format!("{:?}", t.kind), "ports": t.ports }))
                .collect(),
        ),
    );
    let all = |on: bool| targets.iter().flat_map(|t| led_packets(t, on)).collect::<Vec<_>>();
    let (on, off) = (all(true), all(false));
    let mut t = ready.transport;
    let mut packets = 0usize;
    let mut set = |t: &mut dyn Transport, lit: bool| -> Result<(), (u8, String)> {
        let p = if lit { &on } else { &off };
        packets += p.len();
        send(t, p).map_err(|e| (1, e))
    };
    match args.mode {
        Mode::On => set(t.as_mut(), true)?,
        Mode::Off => set(t.as_mut(), false)?,
        Mode::Bzzt => {
            set(t.as_mut(), true)?;
            std::thread::sleep(Duration::from_secs(1));
            set(t.as_mut(), false)?;
        }
        Mode::Blink => {
            let toggles = ((args.seconds * 1000.0) / args.period as f64).ceil().max(1.0) as u64;
            for i in 0..toggles {
                set(t.as_mut(), i % 2 == 0)?;
                std::thread::sleep(Duration::from_millis(args.period));
            }
            set(t.as_mut(), false)?;
        }
    }
    doc.insert("packets".into(), json!(packets));
    Ok(())
}

fn main() -> ExitCode {
    common::init();
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let mut out = common::Stdout::default();
    let status = run(&argv, &mut out, &mut std::io::stderr(), None);
    out.exit_code(status)
}
