//! `span-monitor`: a live view of one span's channels (hook state, ringing, audio level),
//! refreshed once a second, in the spirit of dahdi-tools' `dahdi_tool` / `dahdi_monitor`.
//!
//! ```text
//! cargo run --example span-monitor -- [SPAN] [-D DEVICE | --usbip ADDR [--busid ID] | --emulator]
//!     [--count N] [--interval SECONDS] [--firmware DIR] [--json]
//! ```
//!
//! Brings the device up in a driver of its own and watches span SPAN (default 1). Every
//! refresh prints a header `span N NAME (TYPE) alarms A, refresh K` and one line per channel:
//! number, hook (`onhook`, `offhook`, `ring`, `start`, `-` as `lsdahdi`), `ringing` when the
//! channel rang during the interval (an FXS port the driver rings, an FXO line whose ring
//! voltage it saw), and the peak audio level received in the interval in dBFS (`-` for
//! silence). On a terminal each refresh redraws the screen. `--count N` stops after N
//! refreshes; `--json` prints one JSON document when it stops (`{"device", "span",
//! "refreshes": [{"refresh", "alarms", "channels": [...]}]}`) and needs `--count`.
//!
//! The device options are those of `lsdahdi`. Exit status: 0 done, 1 the device could not be
//! brought up or failed while watched, 2 bad arguments (including a span that does not exist).

mod common;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::json;
use xpp::DriverEvent;
use xpp::driver::ChanInfo;
use xpp::span::{Event, RxSig, TxSig};
use xpp_emu::config::{ModuleConfig, Stage};
use xpp_emu::{DeviceConfig, Emulator};

use common::device::{DeviceArgs, Running};

/// Watch one span's channels: hook, ringing, audio level.
#[derive(Parser, Debug)]
#[command(name = "span-monitor")]
struct Args {
    /// The span to watch.
    #[arg(default_value_t = 1)]
    span: u32,
    #[command(flatten)]
    dev: DeviceArgs,
    /// Stop after this many refreshes (default: run until interrupted).
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// Seconds between refreshes.
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0)]
    interval: f64,
    /// Firmware folder for a device not yet running.
    #[arg(long, value_name = "DIR")]
    firmware: Option<PathBuf>,
    /// One JSON document when the monitor stops (needs --count).
    #[arg(long, requires = "count")]
    json: bool,
}

/// Ticks between two samples of the channels' hook state.
const HOOK_SAMPLE_TICKS: u64 = 10;

/// What one channel did during one interval.
#[derive(Debug, Clone, Default)]
struct Seen {
    rang: bool,
    peak: u16,
}

/// The peak of `peak` as dBFS, or `None` for silence.
fn dbfs(peak: u16) -> Option<f64> {
    (peak > 0).then(|| 20.0 * (f64::from(peak) / 32768.0).log10())
}

/// Whether the channel is ringing now: the driver rings an FXS port (`txsig START`), or an FXO
/// line sees ring voltage (`rxsig RING`).
fn ringing(c: &ChanInfo) -> bool {
    c.txsig == TxSig::Start || c.rxsig == RxSig::Ring
}

/// Runs the tool; its exit status. `emulator` stands in for `--emulator`'s device (tests).
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) fn run(
    argv: &[&str],
    out: &mut dyn Write,
    err: &mut dyn Write,
    emulator: Option<&Emulator>,
) -> u8 {
    run_with(argv, out, err, emulator, false)
}

/// Runs the tool; `redraw` clears the screen before each refresh (a terminal).
fn run_with(
    argv: &[&str],
    out: &mut dyn Write,
    err: &mut dyn Write,
    emulator: Option<&Emulator>,
    redraw: bool,
) -> u8 {
    let args: Args = match common::parse_args("span-monitor", argv, out, err) {
        Ok(a) => a,
        Err(code) => return code,
    };
    if !(args.interval.is_finite() && args.interval > 0.0 && args.interval <= 3600.0) {
        let _ = writeln!(err, "span-monitor: --interval {}: 0 < seconds <= 3600", args.interval);
        return 2;
    }
    let cfg = DeviceConfig::default()
        .with_slots([Some(ModuleConfig::FXS), Some(ModuleConfig::FXO), None, None])
        .with_start_stage(Stage::Running);
    let (running, name) = match Running::from_args(&args.dev, emulator, cfg, args.firmware.as_deref()) {
        Ok(r) => r,
        Err((code, e)) => {
            let _ = writeln!(err, "span-monitor: {e}");
            return code;
        }
    };
    let status = monitor(&args, &running, &name, out, err, redraw);
    running.close();
    status
}

/// The refresh loop; the exit status.
fn monitor(
    args: &Args,
    running: &Running,
    name: &str,
    out: &mut dyn Write,
    err: &mut dyn Write,
    redraw: bool,
) -> u8 {
    let drv = &running.driver;
    let Some(span) = drv.spans().into_iter().find(|s| s.spanno == args.span) else {
        let spans: Vec<String> = drv.spans().iter().map(|s| s.spanno.to_string()).collect();
        let _ = writeln!(err, "span-monitor: no span {} (spans: {})", args.span, spans.join(", "));
        return 2;
    };
    let channos: Vec<u32> = (span.basechan..span.basechan + span.channels).collect();
    let interval = Duration::from_secs_f64(args.interval);
    let mut refreshes = Vec::new();
    let mut refresh = 0u64;
    let mut samples = xpp::span::pcm::LinearChunk::default();
    let events = drv.events();
    while args.count.is_none_or(|n| refresh < n) {
        refresh += 1;
        let mut seen = vec![Seen::default(); channos.len()];
        let end = Instant::now() + interval;
        let mut ticks = 0u64;
        while Instant::now() < end {
            if let Err(e) = drv.wait_tick(running.device, Duration::from_secs(2)) {
                let _ = writeln!(err, "span-monitor: {name}: {e}");
                return 1;
            }
            ticks += 1;
            for (s, &ch) in seen.iter_mut().zip(&channos) {
                if drv.read_chunk_linear(ch, &mut samples).is_ok() {
                    let peak = samples.iter().map(|v| v.unsigned_abs()).max().unwrap_or(0);
                    s.peak = s.peak.max(peak);
                }
            }
            if ticks.is_multiple_of(HOOK_SAMPLE_TICKS) {
                for (s, &ch) in seen.iter_mut().zip(&channos) {
                    s.rang |= drv.channel(ch).is_ok_and(|c| ringing(&c));
                }
                // A ring shorter than the sampling: RINGBEGIN (FXO) or RINGERON (FXS).
                while let Ok(e) = events.try_recv() {
                    if let DriverEvent::Chan { channo, event, .. } = e
                        && (event == Event::RINGBEGIN || event == Event::RINGERON)
                        && let Some(i) = channos.iter().position(|&c| c == channo)
                    {
                        seen[i].rang = true;
                    }
                }
            }
        }
        let alarms = drv.alarms(span.spanno).unwrap_or(span.alarms);
        let alarm_text = if alarms.is_empty() { "OK".to_owned() } else { alarms.to_string() };
        let mut lines = Vec::new();
        let mut chans = Vec::new();
        for (s, &ch) in seen.iter().zip(&channos) {
            let Ok(c) = drv.channel(ch) else { continue };
            let rang = s.rang || ringing(&c);
            let level = dbfs(s.peak);
            lines.push(format!(
                "{:4}  {:<8} {:<8} {}",
                ch,
                common::device::hook_word(c.rxsig),
                if rang { "ringing" } else { "-" },
                level.map_or_else(|| "-".to_owned(), |d| format!("{d:.1} dBFS"))
            ));
            chans.push(json!({
                "channo": ch, "hook": common::device::hook_word(c.rxsig), "ringing": rang,
                "peak": s.peak, "peak_dbfs": level,
            }));
        }
        if args.json {
            refreshes
                .push(json!({ "refresh": refresh, "alarms": alarm_text, "ticks": ticks, "channels": chans }));
            continue;
        }
        let mut text = String::new();
        if redraw {
            text.push_str("\x1b[H\x1b[2J");
        }
        text += &format!(
            "span {} {} ({}) alarms {alarm_text}, refresh {refresh}\nchan  hook     ring     level\n",
            span.spanno, span.name, span.spantype
        );
        for l in lines {
            text += &l;
            text.push('\n');
        }
        if out.write_all(text.as_bytes()).and_then(|()| out.flush()).is_err() {
            // The reader went away (`span-monitor | head`): quietly, as every program does.
            return common::EXIT_BROKEN_PIPE as u8;
        }
    }
    if args.json {
        let doc = json!({
            "device": name,
            "span": { "spanno": span.spanno, "name": span.name, "type": span.spantype.to_string() },
            "refreshes": refreshes,
        });
        let _ = writeln!(out, "{doc}");
    }
    0
}

fn main() -> ExitCode {
    common::init();
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let redraw = std::io::stdout().is_terminal();
    let mut out = common::Stdout::default();
    let status = run_with(&argv, &mut out, &mut std::io::stderr(), None, redraw);
    out.exit_code(status)
}
