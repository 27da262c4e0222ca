//! `hexload`: dahdi-tools' `astribank_hexload` for Astribanks that no driver holds.
//!
//! ```text
//! cargo run --example hexload -- [-v] [-D DEVICE | --usbip ADDR [--busid ID] | --emulator [--stage S]]
//!     (-F FPGA.hex | -E EEPROM.hex | -p PIC_TYPE_n.hex... | -O IMAGE [-A] [-S SPEC]) [-o] [--json]
//! ```
//!
//! As docs/reference/mpp-twinstar-firmware.md §7.2: exactly one of `-F` (FPGA image over MPP
//! DEV_SEND, §5.4), `-E` (EEPROM burn, the same sequence to the EEPROM), `-p` (PIC images of
//! the module micro-controllers over the data interface, §5.5) or `-O` (echo canceller,
//! §5.6), unless `-o` (print the echo canceller's CPLD version) is given, which may also
//! stand alone. The load sequences are xpp's own (`xpp::proto::firmware`: `MppLoad`,
//! `PicLoad`, `echo`), the same the driver's bring-up sends.
//!
//! Every file is read and checked **before the device is opened**: a file that does not parse
//! (or does not fit its load, e.g. a PIC record that is not 3 bytes) ends the run with
//! `hexload: FILE: line N: ...` and exit status 1, and nothing is sent. The device line and
//! `INFO: DEVICE [SERIAL]: Loading FPGA Firmware: FILE (version V)` go to stderr; with
//! stderr on a terminal a progress bar (indicatif) shows the load. `--json` prints one JSON
//! document at the end (`{"device", "loads": [{"file", "kind", "version", "sent"}], ...}`,
//! `"error"` when the run failed).
//!
//! `-O` checks the image and probes the module (the loader's test packet, then the CPLD
//! version), then fails: opening the OCT6104E runs the image through Octasic's proprietary
//! API library, which xpp does not contain (the bring-up probes the module the same way).
//! `-A` and `-S` are accepted for compatibility.
//!
//! Exit status: 0 loaded, 1 any failure (as §7.2), 2 bad arguments (nothing sent).
//! Without a device option the first Astribank on this machine's USB buses is used; with
//! `--emulator`, an in-process emulated device in stage `--stage` (default `usb`: USB
//! firmware loaded, FPGA empty).

mod common;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Map, Value, json};
use xpp::proto::firmware::echo::{self, EchoPacket, SpiPacket};
use xpp::proto::firmware::{HexFile, MAX_PIC_RECORDS, MppLoad, PicImage, PicLoad, PicReply};
use xpp::proto::mgmt::{OwnedReply, Request, Session};
use xpp::usb::{Transport, ep, mgmt_request};
use xpp_emu::config::Stage;
use xpp_emu::{DeviceConfig, Emulator};

use common::device::{Dev, DeviceArgs};

/// dahdi-tools' `astribank_hexload`: load FPGA, EEPROM, PIC or echo-canceller images into an
/// idle Astribank.
#[derive(Parser, Debug)]
#[command(name = "hexload")]
struct Args {
    /// Load this FPGA image (MPP).
    #[arg(short = 'F', value_name = "HEXFILE", conflicts_with = "eeprom")]
    fpga: Option<PathBuf>,
    /// Burn this EEPROM image (MPP).
    #[arg(short = 'E', value_name = "HEXFILE")]
    eeprom: Option<PathBuf>,
    /// Load these PIC images (PIC_TYPE_<n>.hex) over the data interface.
    #[arg(short = 'p', value_name = "HEXFILE", num_args = 1..)]
    pic: Vec<PathBuf>,
    /// Load this echo-canceller image (Octasic OCT6104E).
    #[arg(short = 'O', value_name = "IMAGE")]
    echo: Option<PathBuf>,
    /// Echo canceller: A-law on every span (accepted for compatibility).
    #[arg(short = 'A')]
    alaw: bool,
    /// Echo canceller: per-port law, e.g. `*:E1` (accepted for compatibility).
    #[arg(short = 'S', value_name = "SPEC")]
    spec: Option<String>,
    /// Print the echo canceller's CPLD version.
    #[arg(short = 'o')]
    octasic_version: bool,
    /// More output; repeatable.
    #[arg(short = 'v', action = clap::ArgAction::Count)]
    verbose: u8,
    /// Debug categories of the C tool; accepted and ignored (use RUST_LOG).
    #[arg(short = 'd', value_name = "MASK")]
    debug: Option<String>,
    #[command(flatten)]
    dev: DeviceArgs,
    /// Emulator: its power-on firmware stage.
    #[arg(long, value_enum, default_value = "usb", requires = "emulator")]
    stage: common::StageArg,
    /// One JSON document at the end instead of text.
    #[arg(long)]
    json: bool,
}

/// How long one management transfer may take (§2.5).
const MPP_TIMEOUT: Duration = Duration::from_secs(2);
/// Send/receive timeout of the PIC loader (§5.5).
const PIC_TIMEOUT: Duration = Duration::from_millis(500);
/// Timeout of the echo loader (§5.6).
const ECHO_TIMEOUT: Duration = Duration::from_millis(1000);

/// What one file is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Fpga,
    Eeprom,
    Pic,
    Echo,
}

impl Kind {
    const fn word(self) -> &'static str {
        match self {
            Self::Fpga => "fpga",
            Self::Eeprom => "eeprom",
            Self::Pic => "pic",
            Self::Echo => "echo",
        }
    }

    const fn title(self) -> &'static str {
        match self {
            Self::Fpga => "FPGA Firmware",
            Self::Eeprom => "EEPROM",
            Self::Pic => "PIC Firmware",
            Self::Echo => "Octasic echo canceller image",
        }
    }
}

/// A file read and checked before anything is sent.
struct Loaded {
    path: PathBuf,
    kind: Kind,
    /// The parsed HEX file (FPGA, EEPROM, PIC).
    hex: Option<HexFile>,
    /// The raw image (echo canceller).
    image: Vec<u8>,
}

impl Loaded {
    fn name(&self) -> String {
        self.path.display().to_string()
    }

    fn version(&self) -> Option<&str> {
        self.hex.as_ref().and_then(HexFile::version)
    }
}

/// Reads and checks one file for `kind`; the error names the file and, for a HEX error, its line.
fn read(path: &Path, kind: Kind) -> Result<Loaded, String> {
    let name = path.display();
    let bytes = std::fs::read(path).map_err(|e| format!("{name}: {e}"))?;
    let mut loaded = Loaded { path: path.to_owned(), kind, hex: None, image: Vec::new() };
    match kind {
        Kind::Echo => {
            if bytes.is_empty() || bytes.len() > echo::MAX_IMAGE_LEN {
                return Err(format!("{name}: {} bytes is not an echo-canceller image", bytes.len()));
            }
            loaded.image = bytes;
        }
        Kind::Pic => {
            let hex =
                HexFile::parse_with_limit(&bytes, MAX_PIC_RECORDS).map_err(|e| format!("{name}: {e}"))?;
            let file = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
            PicImage::new(&file, &hex).map_err(|e| format!("{name}: {e}"))?;
            loaded.hex = Some(hex);
        }
        Kind::Fpga | Kind::Eeprom => {
            let hex = HexFile::parse(&bytes).map_err(|e| format!("{name}: {e}"))?;
            let check = if kind == Kind::Fpga { MppLoad::fpga(&hex) } else { MppLoad::eeprom(&hex) };
            check.map_err(|e| format!("{name}: {e}"))?;
            loaded.hex = Some(hex);
        }
    }
    Ok(loaded)
}

/// The progress of one load: a bar on a terminal, nothing otherwise.
fn bar(show: bool, total: usize, what: &str) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let b = ProgressBar::new(total as u64);
    if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({eta})") {
        b.set_style(style.progress_chars("=> "));
    }
    b.set_message(what.to_owned());
    b
}

/// FPGA or EEPROM over MPP (§5.4): STATUS_GET, DEV_SEND_START, one DEV_SEND_SEG per data
/// record, DEV_SEND_END; each must be acknowledged OK. The requests sent.
fn load_mpp(t: &mut dyn Transport, file: &Loaded, progress: bool) -> Result<usize, String> {
    let Some(hex) = &file.hex else { return Err("no HEX image".into()) };
    let load = if file.kind == Kind::Fpga { MppLoad::fpga(hex) } else { MppLoad::eeprom(hex) };
    let load = load.map_err(|e| e.to_string())?;
    let mut s = Session::new();
    match mgmt_request(t, &mut s, Request::StatusGet, MPP_TIMEOUT) {
        Ok(Some(OwnedReply::StatusGetReply(_))) => {}
        Ok(other) => return Err(format!("STATUS_GET answered {other:?}")),
        Err(e) => return Err(format!("STATUS_GET: {e}")),
    }
    let b = bar(progress, load.segment_count() + 2, "Sending");
    let mut sent = 0;
    for req in load.requests() {
        match mgmt_request(t, &mut s, req, MPP_TIMEOUT) {
            Ok(Some(OwnedReply::Ack { status })) if status.is_ok() => {}
            Ok(other) => {
                b.abandon();
                return Err(format!("{} answered {other:?} after {sent} requests", req.op()));
            }
            Err(e) => {
                b.abandon();
                return Err(format!("{}: {e} after {sent} requests", req.op()));
            }
        }
        sent += 1;
        b.inc(1);
    }
    b.finish_and_clear();
    Ok(sent)
}

/// Reads one data IN transfer, or `None` when none comes within `timeout`.
fn read_in(t: &mut dyn Transport, timeout: Duration) -> Result<Option<Vec<u8>>, String> {
    let c = t.transfer_blocking(ep::DATA_IN, vec![0; 512], timeout);
    match c.status {
        Ok(()) => Ok(Some(c.buffer[..c.actual_len.min(c.buffer.len())].to_vec())),
        Err(xpp::usb::TransferError::Cancelled) => Ok(None),
        Err(e) => Err(format!("data IN: {e}")),
    }
}

/// PIC images over the data interface (§5.5): stale IN transfers drained, then START, DATA...,
/// END and its checked reply per file, ENDS after all. The packets sent.
fn load_pic(t: &mut dyn Transport, files: &[&Loaded], progress: bool) -> Result<usize, String> {
    let mut images = Vec::new();
    for f in files {
        let Some(hex) = &f.hex else { return Err(format!("{}: no HEX image", f.name())) };
        let file = f.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        images.push(PicImage::new(&file, hex).map_err(|e| format!("{}: {e}", f.name()))?);
    }
    for _ in 0..2 {
        if read_in(t, PIC_TIMEOUT)?.is_none() {
            break;
        }
    }
    let load = PicLoad::new(&images);
    let b = bar(progress, load.step_count(), "Sending");
    let mut sent = 0;
    for step in load.steps() {
        let mut buf = [0u8; 16];
        let n = step.packet.emit(&mut buf).map_err(|e| format!("PIC packet: {e}"))?;
        let c = t.transfer_blocking(ep::DATA_OUT, buf[..n].to_vec(), PIC_TIMEOUT);
        if let Err(e) = c.status {
            b.abandon();
            return Err(format!("PIC packet {sent}: {e}"));
        }
        sent += 1;
        b.inc(1);
        if step.expects_reply {
            let reply = loop {
                let Some(data) = read_in(t, PIC_TIMEOUT)? else {
                    b.abandon();
                    return Err(format!("no PIC reply for card type {}", step.packet.card_type));
                };
                if let Ok(r) = PicReply::parse(&data) {
                    break r;
                }
            };
            if let Err(e) = reply.check() {
                b.abandon();
                return Err(format!("card type {}: {e}", step.packet.card_type));
            }
        }
    }
    b.finish_and_clear();
    Ok(sent)
}

/// Sends one echo packet and reads the reply `parse` accepts.
fn echo_ask(
    t: &mut dyn Transport,
    p: EchoPacket,
    parse: fn(&[u8]) -> Result<u16, xpp::proto::wire::WireError>,
) -> Result<u16, String> {
    let mut buf = [0u8; echo::SPI_PACKET_LEN];
    let n = p.emit(&mut buf).map_err(|e| format!("echo packet: {e}"))?;
    let c = t.transfer_blocking(ep::DATA_OUT, buf[..n].to_vec(), ECHO_TIMEOUT);
    c.status.map_err(|e| format!("echo packet: {e}"))?;
    loop {
        let Some(data) = read_in(t, ECHO_TIMEOUT)? else {
            return Err("the echo canceller does not answer".into());
        };
        if let Ok(v) = parse(&data) {
            return Ok(v);
        }
    }
}

/// The loader's test packet, then the CPLD version (§5.6).
fn octasic_version(t: &mut dyn Transport) -> Result<u16, String> {
    echo_ask(t, EchoPacket::Test, echo::parse_test_reply)?;
    echo_ask(t, EchoPacket::Spi(SpiPacket::version_query()), echo::parse_spi_reply)
}

/// Runs the tool without a progress bar (tests); its exit status.
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) fn run(
    argv: &[&str],
    out: &mut dyn Write,
    err: &mut dyn Write,
    emulator: Option<&Emulator>,
) -> u8 {
    run_with(argv, out, err, emulator, false)
}

/// Runs the tool; `progress` draws the progress bar on stderr.
fn run_with(
    argv: &[&str],
    out: &mut dyn Write,
    err: &mut dyn Write,
    emulator: Option<&Emulator>,
    progress: bool,
) -> u8 {
    let args: Args = match common::parse_args("hexload", argv, out, err) {
        Ok(a) => a,
        Err(code) => return code,
    };
    // §7.2: exactly one of -F/-E/-p/-O unless -o is given.
    let count = usize::from(args.fpga.is_some())
        + usize::from(args.eeprom.is_some())
        + usize::from(!args.pic.is_empty())
        + usize::from(args.echo.is_some());
    if count > 1 || (count == 0 && !args.octasic_version) {
        let _ = writeln!(err, "hexload: give exactly one of -F, -E, -p, -O (or -o alone)");
        return 2;
    }
    let dev = match args.dev.select(|| {
        emulator.cloned().unwrap_or_else(|| {
            let cfg = DeviceConfig::default().with_start_stage(Stage::from(args.stage));
            Emulator::with_mode(cfg, xpp_emu::ClockMode::AutoAdvance)
        })
    }) {
        Ok(d) => d,
        Err(e) => {
            let _ = writeln!(err, "hexload: {e}");
            return 2;
        }
    };
    let mut doc = Map::new();
    doc.insert("device".into(), Value::String(dev.name()));
    let status = match load(&args, &dev, err, &mut doc, progress) {
        Ok(()) => 0,
        Err(e) => {
            let _ = writeln!(err, "hexload: {e}");
            doc.insert("error".into(), Value::String(e));
            1
        }
    };
    if args.json {
        let _ = writeln!(out, "{}", Value::Object(doc));
    } else if let Some(v) = doc.get("octasic_version").and_then(Value::as_str) {
        let _ = writeln!(err, "INFO: Octasic version: {v}");
    }
    status
}

/// Reads every file, then opens the device and loads them.
fn load(
    args: &Args,
    dev: &Dev,
    err: &mut dyn Write,
    doc: &mut Map<String, Value>,
    progress: bool,
) -> Result<(), String> {
    let mut files = Vec::new();
    if let Some(p) = &args.fpga {
        files.push(read(p, Kind::Fpga)?);
    }
    if let Some(p) = &args.eeprom {
        files.push(read(p, Kind::Eeprom)?);
    }
    for p in &args.pic {
        files.push(read(p, Kind::Pic)?);
    }
    if let Some(p) = &args.echo {
        files.push(read(p, Kind::Echo)?);
    }
    let name = dev.name();
    let mut t = dev.open()?;
    let info = t.info().clone();
    let serial = info.serial.clone().unwrap_or_default();
    if !args.json {
        let _ = writeln!(
            err,
            "INFO: {name}: [{:04X}:{:04X}] [{} / {} / {serial}]",
            info.vendor_id,
            info.product_id,
            info.manufacturer.as_deref().unwrap_or(""),
            info.product.as_deref().unwrap_or(""),
        );
    }
    let mut loads = Vec::new();
    let note = |err: &mut dyn Write, f: &Loaded| {
        if !args.json {
            let version = f.version().map(|v| format!(" (version {v})")).unwrap_or_default();
            let _ =
                writeln!(err, "INFO: {name} [{serial}]: Loading {}: {}{version}", f.kind.title(), f.name());
        }
    };
    let result = (|| {
        let pics: Vec<&Loaded> = files.iter().filter(|f| f.kind == Kind::Pic).collect();
        if !pics.is_empty() {
            pics.iter().for_each(|f| note(err, f));
            let sent = load_pic(t.as_mut(), &pics, progress)?;
            for f in &pics {
                loads.push(json!({ "file": f.name(), "kind": "pic", "version": f.version() }));
            }
            loads.push(json!({ "kind": "pic", "sent": sent }));
        }
        for f in files.iter().filter(|f| matches!(f.kind, Kind::Fpga | Kind::Eeprom)) {
            note(err, f);
            let sent = load_mpp(t.as_mut(), f, progress)?;
            loads.push(
                json!({ "file": f.name(), "kind": f.kind.word(), "version": f.version(), "sent": sent }),
            );
        }
        if args.octasic_version || args.echo.is_some() {
            let v = octasic_version(t.as_mut())?;
            doc.insert("octasic_version".into(), Value::String(format!("0x{v:04X}")));
        }
        if let Some(f) = files.iter().find(|f| f.kind == Kind::Echo) {
            note(err, f);
            return Err(format!(
                "{}: {} bytes checked and the module answers, but opening the OCT6104E needs \
                 Octasic's API library, which xpp does not contain: not loaded",
                f.name(),
                f.image.len()
            ));
        }
        Ok(())
    })();
    doc.insert("loads".into(), Value::Array(loads));
    result
}

fn main() -> ExitCode {
    common::init();
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let progress = std::io::stderr().is_terminal();
    let mut out = common::Stdout::default();
    let status = run_with(&argv, &mut out, &mut std::io::stderr(), None, progress);
    out.exit_code(status)
}
