//! `emulator`: an emulated Astribank in real time, printing what it does.
//!
//! ```text
//! cargo run --example emulator -- [--modules fxs,fxo] [--echo] [--twinstar]
//!     [--stage cold|usb|fpga|running] [--label TEXT] [--seed N] [--script FILE] [--seconds N]
//!     [--usbip ADDR] [--json]
//! ```
//!
//! Builds the device from the flags (`--modules`: `fxs`, `fxs6`, `fxo`, `pri-e1`, `pri-t1`,
//! `bri`, `bri-nt` or `none`, comma-separated, unit = position), runs it on the wall clock and
//! prints one line per event with its device time: USB attach/detach, TwinStar jumps, firmware,
//! watchdog and faults, hook changes, ringing, digits, alarms, layer 1, caller ID, a PCM summary
//! every second while the device ticks, and each scenario action as it is applied. `--script`
//! plays a scenario file (format: `xpp::emu::script`); a file that does not parse prints
//! `emulator: FILE:line:column: reason` and exits 1 before anything runs. It stops after
//! `--seconds`, or 1 s after the script's last event, or runs until killed. The logic lives in
//! `xpp::emu::report` and `xpp::emu::scenario`. `--usbip ADDR` also serves the device over
//! USB/IP (e.g. `127.0.0.1:3240`; give a non-loopback address only if you mean it), so
//! `lsastribank --usbip ADDR`, xpp's USB/IP transport or Linux `usbip attach` can drive it.
//! The exit status is 1 when a scenario action FAILED (after the run), 0 otherwise.

mod common;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use xpp::Duration;
use xpp::emu::report::{self, Reporter};
use xpp::emu::scenario::Scenario;
use xpp::emu::usbip_server::UsbIpServer;
use xpp::emu::{Emulator, script};

/// Run an emulated Astribank in real time and print what it does.
#[derive(Parser)]
#[command(name = "emulator")]
struct Args {
    /// Modules in slots 0..3, comma-separated: fxs, fxs6, fxo, pri-e1, pri-t1, bri, bri-nt, none.
    #[arg(long, default_value = "fxs,fxo")]
    modules: String,
    /// Fit the echo-canceller module (unit 4).
    #[arg(long)]
    echo: bool,
    /// Two USB ports with TwinStar switching.
    #[arg(long)]
    twinstar: bool,
    /// Power-on stage.
    #[arg(long, value_enum, default_value_t)]
    stage: common::StageArg,
    /// Device label (1..8 ASCII characters; USB serial).
    #[arg(long)]
    label: Option<String>,
    /// Seed of every pseudo-random choice.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// A scenario file to play.
    #[arg(long)]
    script: Option<PathBuf>,
    /// Run time in seconds (default: the script's end plus 1 s; without a script, forever).
    #[arg(long)]
    seconds: Option<f64>,
    /// Also serve the device over USB/IP at this address (e.g. 127.0.0.1:3240).
    #[arg(long)]
    usbip: Option<std::net::SocketAddr>,
    /// Print one JSON document at the end (`{"events":[{"at_us":..,"line":..}],
    /// "failed_actions":N}`) instead of lines; needs an end (`--seconds` or `--script`).
    #[arg(long)]
    json: bool,
}

/// Reads and parses a scenario file. An IO error reads `path: reason` (with the byte offset
/// of text that is not UTF-8), a script error `path:line:column: reason`.
fn load_script(path: &std::path::Path) -> Result<Vec<script::ScriptEvent>, String> {
    // At most script::MAX_SCRIPT_LEN + 1 bytes are read (the file may be a pipe).
    let text = std::fs::File::open(path).and_then(script::read_text);
    let text = text.map_err(|e| format!("{}: {e}", path.display()))?;
    script::parse(&text).map_err(|e| format!("{}:{}:{}: {}", path.display(), e.line, e.column, e.reason))
}

fn main() -> ExitCode {
    common::init();
    let args = Args::parse();
    let cfg = match report::device_config(
        &args.modules,
        args.echo,
        args.twinstar,
        args.stage.word(),
        args.label.as_deref(),
        args.seed,
    ) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("emulator: {e}");
            return ExitCode::FAILURE;
        }
    };
    let events = match &args.script {
        None => Vec::new(),
        Some(path) => match load_script(path) {
            Ok(ev) => ev,
            Err(e) => {
                eprintln!("emulator: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    let (emu, _runner) = Emulator::real_time(cfg);
    let _server = match args.usbip.map(|addr| UsbIpServer::bind(emu.clone(), addr)) {
        None => None,
        Some(Ok(server)) => {
            if !args.json {
                println!("serving USB/IP on {}", server.local_addr());
            }
            Some(server)
        }
        Some(Err(e)) => {
            eprintln!("emulator: --usbip: {e}");
            return ExitCode::FAILURE;
        }
    };
    let start = emu.now();
    let has_script = args.script.is_some();
    let mut scenario = Scenario::new(events, start);
    let end = match args.seconds {
        Some(s) if s.is_finite() && s >= 0.0 => Some(start + Duration::from_micros((s * 1e6) as u64)),
        Some(_) => {
            eprintln!("emulator: --seconds must be a non-negative number");
            return ExitCode::FAILURE;
        }
        None => has_script.then(|| scenario.end() + Duration::from_secs(1)),
    };
    if args.json && end.is_none() {
        eprintln!("emulator: --json prints its document at the end: give --seconds or --script");
        return ExitCode::from(2);
    }
    let mut failed = 0usize;
    let mut events = Vec::new();
    let mut reporter = Reporter::new(start);
    loop {
        let now = emu.now();
        let (applied, mut lines) = emu.with_device(|d| (scenario.apply_due(d, now), reporter.poll(d, now)));
        failed += applied.iter().filter(|a| a.result.is_err()).count();
        lines.extend(applied.iter().map(|a| (a.at, report::applied(a))));
        lines.sort_by_key(|(at, _)| *at);
        for (at, line) in lines {
            if args.json {
                let at_us = at.saturating_duration_since(start).total_micros();
                events.push(serde_json::json!({ "at_us": at_us, "line": line }));
            } else {
                println!("{} {line}", report::timestamp(at));
            }
        }
        if end.is_some_and(|e| now >= e) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    if args.json {
        println!("{}", serde_json::json!({ "events": events, "failed_actions": failed }));
    }
    if failed > 0 {
        eprintln!("emulator: {failed} scenario action(s) FAILED");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::load_script;

    #[test]
    fn script_errors_name_the_file_and_where() {
        let dir = std::env::temp_dir().join(format!("xpp-emulator-example-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bad_utf8 = dir.join("x.scn");
        std::fs::write(&bad_utf8, b"0ms phone 0/1 offhook\n\xff").unwrap();
        assert_eq!(load_script(&bad_utf8), Err(format!("{}: not UTF-8 at byte 22", bad_utf8.display())));
        let bad_line = dir.join("y.scn");
        std::fs::write(&bad_line, "0ms phone 0/1 offhook\n5ms frobnicate\n").unwrap();
        let e = load_script(&bad_line).unwrap_err();
        assert!(e.starts_with(&format!("{}:2:", bad_line.display())), "{e}");
        let missing = dir.join("none.scn");
        assert!(load_script(&missing).unwrap_err().starts_with(&format!("{}: ", missing.display())));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
