//! `xpp-tool`: dahdi-tools' `astribank_tool` for Astribanks that no driver holds.
//!
//! ```text
//! cargo run --example xpp-tool -- [-v]... [-d MASK] [-D DEVICE | --usbip ADDR [--busid ID] | --emulator]
//!     [-Q | -n | -r half|full | -w 0|1 | -p 0|1] [--json]
//! ```
//!
//! DEVICE is a bus path, `BBB/DDD`, `serial:LABEL` or `usbip:HOST:PORT/BUSID`; without `-D`
//! the first Astribank on this machine's USB buses, or with `--usbip ADDR` the device with
//! bus id `--busid` (default `1-1`) that server exports, or with `--emulator` an in-process
//! emulated device (`--module fxs|fxo|pri|bri` per slot, `--twinstar`, `--stage`).
//!
//! Behaviour and output follow docs/reference/mpp-twinstar-firmware.md §7.1 line by line, so
//! scripts that parse `astribank_tool` keep working: `-r` runs first and alone (RESET or
//! HALF_RESET, nothing printed); otherwise the device line is printed (stderr
//! `INFO: DEVICE: [E4E4:1162] [Xorcom LTD / Astribank / 00000123]`, or with `-v` the
//! `USB    ...` lines on stdout) and only the first of `-Q`, `-n`, `-w`, `-p` runs. `-Q` prints
//! the EEPROM, FPGA, capabilities, card, extrainfo and TwinStar lines of §7.1 on stdout.
//! `-d MASK` is accepted for compatibility and ignored (`RUST_LOG` sets the log level).
//! `--json` prints one JSON document instead of the text (`{"device": .., "usb": {..},
//! "query": {..}}`, `"action"` for the other options, `"error"` when something failed).
//!
//! Exit status as §7.1: 0 done, and also when `-Q`, `-n` or `-r` failed (the failure is
//! printed); 1 when the device cannot be opened or `-w`/`-p` failed. Bad arguments exit 2 (the
//! C tool's 1; every xpp program uses 2 for usage errors) and nothing is sent.

mod common;

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use serde_json::{Map, Value, json};
use xpp::proto::mgmt::{
    CardInfo, EepromTable, FirmwareVersions, FpgaStat, OwnedReply, Request, SerAnswer, SerCommand, Session,
};
use xpp::usb::discovery::classify;
use xpp::usb::{Transport, mgmt_request};
use xpp_emu::config::{ModuleConfig, Stage};
use xpp_emu::{DeviceConfig, Emulator};

use common::device::{Dev, DeviceArgs};

/// dahdi-tools' `astribank_tool`: query, renumerate, reset and TwinStar control of idle
/// Astribanks.
#[derive(Parser, Debug)]
#[command(name = "xpp-tool")]
struct Args {
    /// Query: EEPROM, FPGA, capabilities, cards, extrainfo, TwinStar.
    #[arg(short = 'Q')]
    query: bool,
    /// Renumerate (RENUM): the device re-enumerates with its loaded firmware.
    #[arg(short = 'n')]
    renumerate: bool,
    /// Reset the device: half or full.
    #[arg(short = 'r', value_name = "half|full", value_parser = parse_reset, ignore_case = true)]
    reset: Option<Reset>,
    /// TwinStar watchdog: 1 arms it, 0 disarms it.
    #[arg(short = 'w', value_name = "0|1")]
    watchdog: Option<i64>,
    /// TwinStar: switch the device to USB port 0 or 1.
    #[arg(short = 'p', value_name = "0|1")]
    port: Option<i64>,
    /// More output (the USB identity lines on stdout); repeatable.
    #[arg(short = 'v', action = clap::ArgAction::Count)]
    verbose: u8,
    /// Debug categories of the C tool; accepted and ignored (use RUST_LOG).
    #[arg(short = 'd', value_name = "MASK")]
    debug: Option<String>,
    #[command(flatten)]
    dev: DeviceArgs,
    /// Emulator: the module in the next slot (fxs, fxo, pri, bri); default FXS + FXO.
    #[arg(long = "module", value_name = "KIND", requires = "emulator")]
    modules: Vec<common::device::ModuleArg>,
    /// Emulator: a TwinStar device.
    #[arg(long, requires = "emulator")]
    twinstar: bool,
    /// Emulator: its power-on firmware stage.
    #[arg(long, value_enum, default_value = "running", requires = "emulator")]
    stage: common::StageArg,
    /// One JSON document instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reset {
    Half,
    Full,
}

fn parse_reset(s: &str) -> Result<Reset, String> {
    match s.to_ascii_lowercase().as_str() {
        "half" => Ok(Reset::Half),
        "full" => Ok(Reset::Full),
        _ => Err(format!("{s:?}: half or full")),
    }
}

/// How long one management transfer may take (the reference tool's 2 s, §2.5).
const TIMEOUT: Duration = Duration::from_secs(2);

/// Sends one request; its reply, or why there is none.
fn ask(t: &mut dyn Transport, s: &mut Session, request: Request<'_>) -> Result<OwnedReply, String> {
    match mgmt_request(t, s, request, TIMEOUT) {
        Ok(Some(r)) => Ok(r),
        Ok(None) => Err(format!("{}: no reply", request.op())),
        Err(e) => Err(format!("{}: {e}", request.op())),
    }
}

/// Sends a request the device does not answer (RENUM, RESET, HALF_RESET, TWS_PORT_SET).
fn tell(t: &mut dyn Transport, s: &mut Session, request: Request<'_>) -> Result<(), String> {
    mgmt_request(t, s, request, TIMEOUT).map(|_| ()).map_err(|e| format!("{}: {e}", request.op()))
}

/// One SER_SEND sub-command and its decoded answer.
fn ser(t: &mut dyn Transport, s: &mut Session, cmd: SerCommand) -> Result<SerAnswer, String> {
    let (bytes, len) = cmd.to_bytes();
    match ask(t, s, Request::SerSend { data: &bytes[..len] })? {
        OwnedReply::SerRecv { data } => SerAnswer::parse(&data).map_err(|e| format!("SER_RECV: {e}")),
        other => Err(format!("SER_SEND answered {other:?}")),
    }
}

/// Where the output goes: text lines, and the same facts as JSON.
struct Report<'a> {
    out: &'a mut dyn Write,
    json: Option<Map<String, Value>>,
}

impl Report<'_> {
    fn line(&mut self, text: impl std::fmt::Display) {
        if self.json.is_none() {
            let _ = writeln!(self.out, "{text}");
        }
    }
}

/// The -Q query, §7.1: its lines go to `r` as they are known; the facts also go into `q`.
/// An error stops the query where it happened (what was printed stays printed).
fn query(
    t: &mut dyn Transport,
    s: &mut Session,
    r: &mut Report<'_>,
    q: &mut Map<String, Value>,
) -> Result<(), String> {
    let status = match ask(t, s, Request::StatusGet)? {
        OwnedReply::StatusGetReply(st) => st,
        other => return Err(format!("STATUS_GET answered {other:?}")),
    };
    let (table, caps) = match ask(t, s, Request::CapsGet)? {
        OwnedReply::CapsGetReply { table, caps, .. } => (table, caps),
        other => return Err(format!("CAPS_GET answered {other:?}")),
    };
    eeprom_lines(&table, r);
    q.insert(
        "eeprom".into(),
        json!({
            "source": table.source,
            "vendor": format!("{:04x}", table.vendor),
            "product": format!("{:04x}", table.product),
            "release": table.release_display().to_string(),
            "config": table.config,
            "label": String::from_utf8_lossy(table.label_bytes()),
            "type": status.eeprom_type().name(),
        }),
    );
    let eeprom_type = status.eeprom_type();
    r.line(format_args!("Astribank: {:<12}: {}", "EEPROM", eeprom_type.name()));
    let loaded = status.fpga_loaded();
    r.line(format_args!("Astribank: {:<12}: {}", "FPGA status", if loaded { "Loaded" } else { "Empty" }));
    let fpga_version = String::from_utf8_lossy(FirmwareVersions::trimmed(&status.versions.fpga)).into_owned();
    if loaded {
        r.line(format_args!("Astribank: {:<12}: {fpga_version}", "FPGA version"));
    }
    q.insert("fpga".into(), json!({ "loaded": loaded, "version": loaded.then_some(fpga_version) }));
    if eeprom_type != xpp::proto::mgmt::EepromType::Large {
        return Ok(());
    }
    r.line(format_args!("Capabilities: FXS ports: {:2}", caps.ports_fxs));
    r.line(format_args!("Capabilities: FXO ports: {:2}", caps.ports_fxo));
    r.line(format_args!("Capabilities: BRI ports: {:2}", caps.ports_bri));
    r.line(format_args!("Capabilities: PRI ports: {:2}", caps.ports_pri));
    r.line(format_args!("Capabilities: ECHO ports: {:2}", caps.ports_echo));
    r.line(format_args!("Capabilities: TwinStar : {}", if caps.twinstar() { "Yes" } else { "No" }));
    q.insert(
        "capabilities".into(),
        json!({
            "fxs": caps.ports_fxs, "fxo": caps.ports_fxo, "bri": caps.ports_bri,
            "pri": caps.ports_pri, "echo": caps.ports_echo, "twinstar": caps.twinstar(),
        }),
    );
    if loaded {
        let mut cards = Vec::new();
        for unit in 0..5 {
            let card = match ser(t, s, SerCommand::card_info(unit))? {
                SerAnswer::CardInfo(c) => c,
                other => return Err(format!("CARD_INFO_GET answered {other:?}")),
            };
            r.line(card_line(unit, &card));
            cards.push(json!({
                "unit": unit, "type": card.type_code(), "subtype": card.subtype(), "pic": card.pic_burned,
            }));
        }
        q.insert("cards".into(), Value::Array(cards));
        let stat: FpgaStat = match ser(t, s, SerCommand::StatGet)? {
            SerAnswer::FpgaStat(f) => f,
            other => return Err(format!("STAT_GET answered {other:?}")),
        };
        r.line(format_args!("FPGA: {:<17}: {}", "Configuration num", stat.configuration));
        r.line(format_args!(
            "FPGA: {:<17}: {}",
            "Watchdog Timer",
            if stat.watchdog_ready { "ready" } else { "expired" }
        ));
        r.line(format_args!("FPGA: {:<17}: {}", "XPD Alive", if stat.xpd_alive { "yes" } else { "no" }));
        q.insert(
            "fpga_stat".into(),
            json!({
                "configuration": stat.configuration,
                "watchdog_ready": stat.watchdog_ready,
                "xpd_alive": stat.xpd_alive,
            }),
        );
    }
    let extra = match ask(t, s, Request::ExtrainfoGet)? {
        OwnedReply::ExtrainfoGetReply(e) => e,
        other => return Err(format!("EXTRAINFO_GET answered {other:?}")),
    };
    let text = String::from_utf8_lossy(extra.text()).into_owned();
    r.line(format_args!("Extrainfo:             : '{text}'"));
    q.insert("extrainfo".into(), Value::String(text));
    if !caps.twinstar() {
        return Ok(());
    }
    if table.product & 0xFFF0 != 0x1160 {
        r.line("TwinStar: NO");
        q.insert("twinstar".into(), Value::Bool(false));
        return Ok(());
    }
    let watchdog = match ask(t, s, Request::TwsWdModeGet)? {
        OwnedReply::TwsWdModeGetReply { wd_active } => wd_active == 1,
        other => return Err(format!("TWS_WD_MODE_GET answered {other:?}")),
    };
    let power = match ask(t, s, Request::TwsPwrGet)? {
        OwnedReply::TwsPwrGetReply(p) => p,
        other => return Err(format!("TWS_PWR_GET answered {other:?}")),
    };
    let port = match ask(t, s, Request::TwsPortGet)? {
        OwnedReply::TwsPortGetReply { port } => port,
        other => return Err(format!("TWS_PORT_GET answered {other:?}")),
    };
    let on_off = |b: bool| if b { "ON" } else { "OFF" };
    r.line(format_args!("TwinStar: {:<13}: USB-{port}", "Connected to"));
    r.line(format_args!("TwinStar: {:<13}: {}", "Watchdog", if watchdog { "on-guard" } else { "off-guard" }));
    r.line(format_args!("TwinStar: {:<13}: {}", "USB-0 POWER", on_off(power.has_power(0))));
    r.line(format_args!("TwinStar: {:<13}: {}", "USB-1 POWER", on_off(power.has_power(1))));
    q.insert(
        "twinstar".into(),
        json!({
            "port": port, "watchdog": watchdog, "power0": power.has_power(0), "power1": power.has_power(1),
        }),
    );
    Ok(())
}

fn eeprom_lines(table: &EepromTable, r: &mut Report<'_>) {
    r.line(format_args!("EEPROM: {:<15}: 0x{:02X}", "Source", table.source));
    r.line(format_args!("EEPROM: {:<15}: 0x{:04X}", "Vendor", table.vendor));
    r.line(format_args!("EEPROM: {:<15}: 0x{:04X}", "Product", table.product));
    r.line(format_args!("EEPROM: {:<15}: {}", "Release", table.release_display()));
    r.line(format_args!("EEPROM: {:<15}: 0x{:02X}", "Config", table.config));
    r.line(format_args!("EEPROM: {:<15}: '{}'", "Label", String::from_utf8_lossy(table.label_bytes())));
}

fn card_line(unit: u8, card: &CardInfo) -> String {
    format!(
        "CARD {unit}: type={:x}.{:x} {}",
        card.type_code(),
        card.subtype(),
        if card.pic_burned { "PIC" } else { "NOPIC" }
    )
}

/// The emulated device `--emulator` asks for.
fn emulated(args: &Args, slots: [Option<ModuleConfig>; 4]) -> Emulator {
    let cfg = DeviceConfig::default()
        .with_slots(slots)
        .with_twinstar(args.twinstar)
        .with_start_stage(Stage::from(args.stage));
    Emulator::with_mode(cfg, xpp_emu::ClockMode::AutoAdvance)
}

/// Runs the tool; its exit status. `emulator` stands in for `--emulator`'s device (tests).
pub(crate) fn run(
    argv: &[&str],
    out: &mut dyn Write,
    err: &mut dyn Write,
    emulator: Option<&Emulator>,
) -> u8 {
    let args: Args = match common::parse_args("xpp-tool", argv, out, err) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let slots = match common::device::slots(&args.modules) {
        Ok(s) => s,
        Err(e) => {
            let _ = writeln!(err, "xpp-tool: {e}");
            return 2;
        }
    };
    if let Some(p) = args.port.filter(|p| !(0..=1).contains(p)) {
        let _ = writeln!(err, "xpp-tool: -p {p}: the port is 0 or 1");
        return 2;
    }
    let dev = match args.dev.select(|| emulator.cloned().unwrap_or_else(|| emulated(&args, slots))) {
        Ok(d) => d,
        Err(e) => {
            let _ = writeln!(err, "xpp-tool: {e}");
            return 2;
        }
    };
    let name = dev.name();
    let mut doc = Map::new();
    doc.insert("device".into(), Value::String(name.clone()));
    let mut report = Report { out, json: args.json.then(Map::new) };
    let status = act(&args, &dev, &name, &mut report, &mut doc, err);
    if args.json {
        let _ = writeln!(report.out, "{}", Value::Object(doc));
    }
    status
}

/// Opens the device and does what the options say; the exit status.
fn act(
    args: &Args,
    dev: &Dev,
    name: &str,
    r: &mut Report<'_>,
    doc: &mut Map<String, Value>,
    err: &mut dyn Write,
) -> u8 {
    let fail = |err: &mut dyn Write, doc: &mut Map<String, Value>, e: String| {
        let _ = writeln!(err, "xpp-tool: {name}: {e}");
        doc.insert("error".into(), Value::String(e));
    };
    let mut t = match dev.open() {
        Ok(t) => t,
        Err(e) => {
            fail(err, doc, e);
            return 1;
        }
    };
    let mut s = Session::new();
    if let Some(reset) = args.reset {
        // §7.1: executed first and alone, nothing printed; a failure still exits 0.
        let (req, word) = match reset {
            Reset::Half => (Request::HalfReset, "half_reset"),
            Reset::Full => (Request::Reset, "reset"),
        };
        doc.insert("action".into(), Value::String(word.into()));
        if let Err(e) = tell(t.as_mut(), &mut s, req) {
            fail(err, doc, e);
        }
        return 0;
    }
    device_line(t.info(), name, args.verbose, r, doc, err);
    if args.query {
        let mut q = Map::new();
        let result = query(t.as_mut(), &mut s, r, &mut q);
        doc.insert("query".into(), Value::Object(q));
        if let Err(e) = result {
            fail(err, doc, e);
        }
        return 0;
    }
    if args.renumerate {
        doc.insert("action".into(), Value::String("renumerate".into()));
        if let Err(e) = tell(t.as_mut(), &mut s, Request::Renum) {
            fail(err, doc, e);
        }
        return 0;
    }
    if let Some(v) = args.watchdog {
        let armed = v != 0;
        doc.insert("action".into(), json!({ "watchdog": armed }));
        return match ask(t.as_mut(), &mut s, Request::TwsWdModeSet { armed }) {
            Ok(OwnedReply::Ack { .. }) => 0,
            Ok(other) => {
                fail(err, doc, format!("TWS_WD_MODE_SET answered {other:?}"));
                1
            }
            Err(e) => {
                fail(err, doc, e);
                1
            }
        };
    }
    if let Some(port) = args.port {
        doc.insert("action".into(), json!({ "port": port }));
        // §7.1: TWS_PORT_GET first (the C tool only logs the answer).
        let _ = ask(t.as_mut(), &mut s, Request::TwsPortGet);
        return match tell(t.as_mut(), &mut s, Request::TwsPortSet { port: port as u8 }) {
            Ok(()) => 0,
            Err(e) => {
                fail(err, doc, e);
                1
            }
        };
    }
    0
}

/// The device line of §7.1: `INFO: ...` on stderr, or with `-v` the `USB ...` lines on stdout.
fn device_line(
    info: &xpp::usb::DeviceInfo,
    name: &str,
    verbose: u8,
    r: &mut Report<'_>,
    doc: &mut Map<String, Value>,
    err: &mut dyn Write,
) {
    let text = |s: &Option<String>| s.clone().unwrap_or_default();
    let (manufacturer, product, serial) = (text(&info.manufacturer), text(&info.product), text(&info.serial));
    let stage = classify(info.vendor_id, info.product_id).map_or("unknown", |m| m.stage.name());
    doc.insert(
        "usb".into(),
        json!({
            "vendor_id": format!("{:04x}", info.vendor_id),
            "product_id": format!("{:04x}", info.product_id),
            "manufacturer": manufacturer, "product": product, "serial": serial,
            "stage": stage, "location": info.location,
        }),
    );
    if r.json.is_some() {
        return;
    }
    if verbose == 0 {
        let _ = writeln!(
            err,
            "INFO: {name}: [{:04X}:{:04X}] [{manufacturer} / {product} / {serial}]",
            info.vendor_id, info.product_id
        );
        return;
    }
    r.line(format_args!("USB    Bus/Device:    [{name}]"));
    r.line(format_args!("USB    Firmware Type: [{stage}]"));
    r.line(format_args!("USB    iSerialNumber: [{serial}]"));
    r.line(format_args!("USB    iManufacturer: [{manufacturer}]"));
    r.line(format_args!("USB    iProduct:      [{product}]"));
}

fn main() -> ExitCode {
    common::init();
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let mut out = common::Stdout::default();
    let status = run(&argv, &mut out, &mut std::io::stderr(), None);
    out.exit_code(status)
}
