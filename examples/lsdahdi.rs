//! `lsdahdi`: the spans and channels of a running xpp driver, as dahdi-tools' `lsdahdi` lists
//! a kernel DAHDI's.
//!
//! ```text
//! cargo run --example lsdahdi -- [-D DEVICE | --usbip ADDR [--busid ID] | --emulator [--module KIND]...]
//!     [--system-conf FILE] [--firmware DIR] [--json]
//! ```
//!
//! Brings the device up in a driver of its own (xpp has no kernel to ask: the driver is the
//! program's), applies `--system-conf` (dahdi_cfg's `system.conf`) if given, and prints per
//! span `### Span N: NAME "DESCRIPTION" ALARMS` (`OK` when there are none) and per channel
//! `NUM TYPE SIGNALLING HOOK` (docs/reference/mpp-twinstar-firmware.md §7.7; types `FXS`,
//! `FXO`, `Output`, `Input` for the FXS unit's digital I/O ports, `PRI`/`BRI` for digital
//! channels; signalling as DAHDI names it, empty when unconfigured; hook `onhook`, `offhook`,
//! `ring`, `start` or `-` before the line's first report). `--json` prints one JSON document,
//! `{"device", "spans": [{..., "channels": [...]}]}`.
//!
//! The device is `-D DEVICE` (bus path, `BBB/DDD`, `serial:LABEL`, `usbip:HOST:PORT/BUSID`),
//! the device `--busid` of USB/IP server `--usbip ADDR`, an in-process real-time emulator
//! (`--emulator`; FXS + FXO, or the `--module` kinds in slot order), or the first Astribank on
//! this machine's USB buses. Exit status: 0 listed, 1 the device could not be brought up or
//! the system.conf not applied, 2 bad arguments.

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use serde_json::{Value, json};
use xpp::driver::{ChanInfo, SpanInfo};
use xpp::span::span::ChanKind;
use xpp::span::{Sig, SpanType};
use xpp_emu::config::Stage;
use xpp_emu::{DeviceConfig, Emulator};

use common::device::{DeviceArgs, Running};

/// List the spans and channels of an Astribank under the xpp driver (lsdahdi).
#[derive(Parser, Debug)]
#[command(name = "lsdahdi")]
struct Args {
    #[command(flatten)]
    dev: DeviceArgs,
    /// Emulator: the module in the next slot (fxs, fxo, pri, bri); default FXS + FXO.
    #[arg(long = "module", value_name = "KIND", requires = "emulator")]
    modules: Vec<common::device::ModuleArg>,
    /// Apply this system.conf (dahdi_cfg's file) before listing.
    #[arg(long, value_name = "FILE")]
    system_conf: Option<PathBuf>,
    /// Firmware folder for a device not yet running.
    #[arg(long, value_name = "DIR")]
    firmware: Option<PathBuf>,
    /// One JSON document instead of text.
    #[arg(long)]
    json: bool,
}

/// Device ticks (ms) to wait after bring-up before the listing.
const SETTLE_TICKS: u32 = 300;

/// The channel type column.
pub(crate) fn chan_type(c: &ChanInfo, span: Option<&SpanInfo>) -> &'static str {
    match c.kind {
        ChanKind::FxsPort { .. } => "FXS",
        ChanKind::FxoPort { .. } => "FXO",
        ChanKind::DigitalOutput(_) => "Output",
        ChanKind::DigitalInput(_) => "Input",
        _ => match span.map(|s| s.spantype) {
            Some(SpanType::BriNt | SpanType::BriTe | SpanType::BriSoft) => "BRI",
            _ => "PRI",
        },
    }
}

/// The signalling column: DAHDI's name, empty when unconfigured.
pub(crate) fn sig_word(sig: Sig) -> String {
    if sig == Sig::None { String::new() } else { sig.to_string() }
}

/// The alarms column: `OK` or DAHDI's names.
pub(crate) fn alarm_word(alarms: xpp::span::Alarms) -> String {
    if alarms.is_empty() { "OK".to_owned() } else { alarms.to_string() }
}

/// Runs the tool; its exit status. `emulator` stands in for `--emulator`'s device (tests).
pub(crate) fn run(
    argv: &[&str],
    out: &mut dyn Write,
    err: &mut dyn Write,
    emulator: Option<&Emulator>,
) -> u8 {
    let args: Args = match common::parse_args("lsdahdi", argv, out, err) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let slots = match common::device::slots(&args.modules) {
        Ok(s) => s,
        Err(e) => {
            let _ = writeln!(err, "lsdahdi: {e}");
            return 2;
        }
    };
    let cfg = DeviceConfig::default().with_slots(slots).with_start_stage(Stage::Running);
    let (running, name) = match Running::from_args(&args.dev, emulator, cfg, args.firmware.as_deref()) {
        Ok(r) => r,
        Err((code, e)) => {
            let _ = writeln!(err, "lsdahdi: {e}");
            return code;
        }
    };
    let drv = &running.driver;
    if let Some(path) = &args.system_conf
        && let Err(e) = drv.load_system_conf(path)
    {
        let _ = writeln!(err, "lsdahdi: {}: {e}", path.display());
        running.close();
        return 1;
    }
    // Let the lines report their hook state (the FXS unit's hook-state reads after bring-up,
    // the FXO battery polls) before taking the snapshot.
    for _ in 0..SETTLE_TICKS {
        if drv.wait_tick(running.device, std::time::Duration::from_secs(1)).is_err() {
            break;
        }
    }
    let spans = drv.spans();
    let chans = drv.channels();
    let mut docs = Vec::new();
    for s in &spans {
        let mine: Vec<&ChanInfo> = chans.iter().filter(|c| c.spanno == s.spanno).collect();
        if args.json {
            let channels: Vec<Value> = mine
                .iter()
                .map(|c| {
                    json!({
                        "channo": c.channo, "name": c.name, "type": chan_type(c, Some(s)),
                        "signalling": sig_word(c.sig), "hook": common::device::hook_word(c.rxsig),
                        "txsig": c.txsig.to_string(), "alarms": alarm_word(c.alarms),
                    })
                })
                .collect();
            let mut doc = json!({
                "spanno": s.spanno, "name": s.name, "description": s.desc,
                "type": s.spantype.to_string(), "alarms": alarm_word(s.alarms),
                "basechan": s.basechan, "channels": channels,
            });
            if s.is_digital {
                doc["timing_priority"] = json!(s.timing_priority);
            }
            if let Some(l) = s.line_setup {
                doc["line"] = json!(l.to_string());
                doc["lbo"] = json!(l.lbo);
                doc["lbo_name"] = json!(l.lbo_name());
            }
            docs.push(doc);
            continue;
        }
        // DAHDI's lsdahdi puts a digital span's line configuration before its alarms.
        let line = s.line_setup.map(|l| format!("{l} ")).unwrap_or_default();
        let _ = writeln!(
            out,
            "### Span {:2}: {} \"{}\" {line}{}",
            s.spanno,
            s.name,
            s.desc,
            alarm_word(s.alarms)
        );
        for c in mine {
            let _ = writeln!(
                out,
                "{:3} {:<6} {:<10} {}",
                c.channo,
                chan_type(c, Some(s)),
                sig_word(c.sig),
                common::device::hook_word(c.rxsig)
            );
        }
    }
    if args.json {
        let _ = writeln!(out, "{}", json!({ "device": name, "spans": docs }));
    }
    running.close();
    0
}

fn main() -> ExitCode {
    common::init();
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let mut out = common::Stdout::default();
    let status = run(&argv, &mut out, &mut std::io::stderr(), None);
    out.exit_code(status)
}
