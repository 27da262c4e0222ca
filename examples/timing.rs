//! `timing`: measure an Astribank's tick regularity the way `dahdi_test` does.
//!
//! ```text
//! cargo run --release --example timing -- [--emulator | --usbip ADDR [--busid 1-1]]
//!     [--seconds N] [--firmware DIR] [--json]
//! ```
//!
//! Brings the device up to ticking (from any firmware stage; firmware from `--firmware`,
//! `XPP_FIRMWARE_DIR` or `/usr/share/dahdi`), keeps 10 IN transfers queued on the data
//! endpoint and timestamps every transfer that starts a tick (a PCM frame whose first packet
//! carries the sync bit, docs/reference/xpp-protocol.md §7.3). Each tick is answered with a minimal
//! PCM_WRITE round (the unit-0 dummy line, as the reference host sends when no line is in
//! PCM), which keeps the device's expectations (and TwinStar's watchdog) satisfied.
//!
//! Prints one line per pass (1000 ticks = `dahdi_test`'s 8000 samples): accuracy, mean,
//! shortest and longest interval, worst deviation, missed ticks; then `dahdi_test`'s
//! "Results after N passes" summary and a histogram of every interval. A pass's missed ticks
//! are what it adds to the run's count, so the passes add up to the summary's. `--json`
//! prints one JSON document at the end instead (device, bring-up phases, passes, summary,
//! histogram).
//!
//! The device is the first local Astribank (nusb) unless `--emulator` (the in-process
//! emulator on the wall clock, FXS + FXO modules, running stage) or `--usbip ADDR` (a USB/IP
//! server such as `cargo run --example usbip-serve`) is given.

mod common;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use xpp_bringup::{BringUpConfig, FirmwareSet, RunOptions, bring_up, find_firmware_dir, read_firmware_dir};
use xpp_emu::config::{ModuleConfig, Stage};
use xpp_emu::{DeviceConfig, Emulator};
use xpp_proto::wire::{Address, Framer, Pcm};
use xpp_span::timing::{Pass, TickMeter, is_tick_transfer};
use xpp_usb::{Clock, SystemClock};
use xpp_usb::{NusbTransport, TransferError, Transport, UsbIpTransport, ep};

/// Measure tick regularity (dahdi_test style) on a device, over USB/IP, or on the emulator.
#[derive(Parser)]
#[command(name = "timing")]
struct Args {
    /// Use the in-process real-time emulator (FXS + FXO, running stage).
    #[arg(long, conflicts_with = "usbip")]
    emulator: bool,
    /// Import the device from this USB/IP server (host:port).
    #[arg(long, value_name = "ADDR")]
    usbip: Option<String>,
    /// USB/IP bus id of the device.
    #[arg(long, value_name = "BUSID", default_value = "1-1", requires = "usbip")]
    busid: String,
    /// Seconds to measure.
    #[arg(long, value_name = "N", default_value_t = 10)]
    seconds: u64,
    /// Firmware folder for a device not yet running (default: the first of `XPP_FIRMWARE_DIR`,
    /// the repository's `testdata/firmware`, `/usr/share/dahdi`).
    #[arg(long, value_name = "DIR")]
    firmware: Option<PathBuf>,
    /// Print one JSON document at the end instead of text.
    #[arg(long)]
    json: bool,
}

/// Where the results go: text lines as they come, or one JSON document at the end.
struct Report {
    json: Option<serde_json::Map<String, serde_json::Value>>,
}

impl Report {
    fn line(&mut self, text: impl std::fmt::Display) {
        if self.json.is_none() {
            println!("{text}");
        }
    }

    fn set(&mut self, key: &str, value: serde_json::Value) {
        if let Some(m) = &mut self.json {
            m.insert(key.to_owned(), value);
        }
    }
}

fn pass_json(p: &Pass) -> serde_json::Value {
    serde_json::json!({
        "pass": p.number,
        "intervals": p.intervals,
        "elapsed_us": p.elapsed.total_micros(),
        "accuracy": p.accuracy,
        "mean_us": p.mean_us,
        "min_us": p.min.total_micros(),
        "max_us": p.max.total_micros(),
        "worst_deviation_us": p.worst_deviation.total_micros(),
        "late": p.late,
        "missed": p.missed,
    })
}

/// IN transfers kept queued on the data endpoint.
const IN_QUEUE: usize = 10;
/// Longest wait for one IN completion before checking the deadline again.
const WAIT: std::time::Duration = std::time::Duration::from_millis(100);
/// No tick for this long ends the measurement with an error.
const STALL: xpp_proto::Duration = xpp_proto::Duration::from_secs(2);

fn firmware(dir: Option<PathBuf>) -> FirmwareSet {
    // Decision: a missing firmware folder is not an error here: a device already in the
    // running stage (the emulator, most USB/IP servers) needs none, and a cold device fails
    // its bring-up in the firmware phase with a clear message anyway.
    let Some(dir) = dir.or_else(|| find_firmware_dir().ok()) else {
        return FirmwareSet::default();
    };
    read_firmware_dir(&dir).unwrap_or_default()
}

fn main() -> ExitCode {
    common::init();
    let args = Args::parse();
    let fw = firmware(args.firmware.clone());
    let mut out = Report { json: args.json.then(serde_json::Map::new) };
    let device = |out: &mut Report, name: String| {
        out.line(format!("device: {name}"));
        out.set("device", serde_json::Value::String(name));
    };
    let result = if args.emulator {
        let cfg = DeviceConfig::default()
            .with_slots([Some(ModuleConfig::FXS), Some(ModuleConfig::FXO), None, None])
            .with_start_stage(Stage::Running);
        let (emu, _runner) = Emulator::real_time(cfg);
        device(&mut out, "emulator (real time, FXS + FXO)".into());
        measure(|| emu.transport(0), fw, args.seconds, &mut out)
    } else if let Some(addr) = &args.usbip {
        device(&mut out, format!("USB/IP {addr} bus id {}", args.busid));
        usbip_opener(addr, &args.busid).and_then(|open| measure(open, fw, args.seconds, &mut out))
    } else {
        match NusbTransport::open_first_astribank() {
            Err(e) => Err(format!("no local Astribank: {e}")),
            Ok(first) => {
                device(&mut out, first.info().location.to_string());
                let mut first = Some(first);
                let open = move || first.take().or_else(|| NusbTransport::open_first_astribank().ok());
                measure(open, fw, args.seconds, &mut out)
            }
        }
    };
    match result {
        Ok(()) => {
            if let Some(doc) = out.json {
                println!("{}", serde_json::Value::Object(doc));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("timing: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The USB/IP device's opener for bring-up. The first import happens here, so a closed port,
/// a bus id the server does not export or a silent server is reported at once with its
/// cause; bring-up's own re-opens (a device that resets) import again.
fn usbip_opener(addr: &str, busid: &str) -> Result<impl FnMut() -> Option<UsbIpTransport>, String> {
    let mut first = Some(UsbIpTransport::connect(addr, busid).map_err(|e| e.to_string())?);
    let (addr, busid) = (addr.to_owned(), busid.to_owned());
    Ok(move || first.take().or_else(|| UsbIpTransport::connect(addr.as_str(), &busid).ok()))
}

/// Brings the device up and measures for `seconds`.
fn measure<T: Transport>(
    open: impl FnMut() -> Option<T>,
    fw: FirmwareSet,
    seconds: u64,
    out: &mut Report,
) -> Result<(), String> {
    let clock = SystemClock::new();
    let ready = bring_up(open, &clock, BringUpConfig::default(), fw, RunOptions::default(), |_| {})
        .map_err(|e| format!("bring-up failed: {e}"))?;
    for t in &ready.result.timeline {
        out.line(format!("  {t}"));
    }
    out.set(
        "bring_up",
        ready
            .result
            .timeline
            .iter()
            .map(|t| serde_json::json!({ "phase": t.phase.to_string(), "duration_us": t.duration.total_micros() }))
            .collect(),
    );
    let mut t = ready.transport;
    while t.pending(ep::DATA_IN) < IN_QUEUE {
        t.submit(ep::DATA_IN, vec![0; 512]).map_err(|e| format!("IN submit: {e}"))?;
    }
    // The answer to every tick: PCM_WRITE to unit 0 with its dummy line (line 0) in mu-law
    // silence.
    // Decision: mu-law silence (0xFF) for the dummy line; the FXS/FXO units are mu-law by
    // default and the dummy line is not connected to anything audible.
    let mut answer = Vec::new();
    let mut buf = [0u8; 512];
    let mut framer = Framer::new(&mut buf);
    let silence = [0xFF; 8];
    let pcm = Pcm::new(1, &silence).map_err(|e| e.to_string())?;
    let mut round = framer.pcm_round();
    round.push(Address::ZERO, &pcm, |b: &[u8]| answer.push(b.to_vec())).map_err(|e| e.to_string())?;
    round.finish(|b: &[u8]| answer.push(b.to_vec()));

    out.line(format!("measuring {seconds} s ({} ticks per pass)...", TickMeter::default().ticks_per_pass()));
    let mut passes = Vec::new();
    let mut meter = TickMeter::default();
    let start = clock.now();
    let end = start + xpp_proto::Duration::from_secs(seconds);
    let mut last_tick = start;
    let mut out_errors = 0u64;
    while clock.now() < end {
        let Some(c) = t.wait_next_complete(ep::DATA_IN, WAIT) else {
            if clock.now().saturating_duration_since(last_tick) > STALL {
                return Err(format!("no tick for {STALL}"));
            }
            continue;
        };
        let now = clock.now();
        match c.status {
            Ok(()) => {}
            Err(TransferError::Disconnected) => return Err("device disconnected".into()),
            Err(e) => log_once(&mut out_errors, &format!("IN transfer: {e}")),
        }
        if c.status.is_ok() && is_tick_transfer(&c.buffer) {
            last_tick = now;
            if let Some(pass) = meter.record(now) {
                out.line(pass);
                passes.push(pass_json(&pass));
            }
            for b in &answer {
                if let Err(e) = t.submit(ep::DATA_OUT, b.clone()) {
                    log_once(&mut out_errors, &format!("OUT submit: {e}"));
                }
            }
        }
        let mut buffer = c.buffer;
        buffer.resize(512, 0);
        t.submit(ep::DATA_IN, buffer).map_err(|e| format!("IN submit: {e}"))?;
        while let Some(o) = t.wait_next_complete(ep::DATA_OUT, std::time::Duration::ZERO) {
            if let Err(e) = o.status {
                log_once(&mut out_errors, &format!("OUT transfer: {e}"));
            }
        }
    }
    let summary = meter.summary();
    out.line(&summary);
    if out_errors > 0 {
        out.line(format!("transfer errors: {out_errors}"));
    }
    out.set("passes", serde_json::Value::Array(passes));
    let histogram: Vec<serde_json::Value> = summary
        .histogram
        .buckets()
        .map(|(lo, hi, n)| serde_json::json!({ "from_us": lo.total_micros(), "to_us": hi.total_micros(), "count": n }))
        .collect();
    out.set(
        "summary",
        serde_json::json!({
            "passes": summary.passes,
            "best": summary.best,
            "worst": summary.worst,
            "average": summary.average,
            "overall": pass_json(&summary.overall),
            "histogram": histogram,
        }),
    );
    out.set("transfer_errors", serde_json::json!(out_errors));
    Ok(())
}

/// Counts a transfer error; prints the first one.
fn log_once(count: &mut u64, msg: &str) {
    if *count == 0 {
        eprintln!("timing: {msg}");
    }
    *count += 1;
}

#[cfg(test)]
mod tests {
    use super::usbip_opener;

    #[test]
    fn a_closed_port_is_refused_at_once() {
        let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
        let Err(e) = usbip_opener(&addr, "1-1") else { panic!("connected to a closed port") };
        assert_eq!(e, format!("USB/IP server {addr}: connection refused"));
    }

    #[test]
    fn an_unknown_bus_id_is_not_exported() {
        let cfg = xpp_emu::DeviceConfig::default();
        let server = xpp_emu::usbip_server::UsbIpServer::serve(cfg, "127.0.0.1:0".parse().unwrap()).unwrap();
        let Err(e) = usbip_opener(&server.local_addr().to_string(), "1-9") else { panic!("imported 1-9") };
        assert!(e.contains("bus id 1-9 is not exported"), "{e}");
    }
}
