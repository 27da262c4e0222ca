//! `usbip-serve`: serve one emulated Astribank (modules FXS, FXO) over USB/IP.
//!
//! ```text
//! cargo run --example usbip-serve -- [--listen 127.0.0.1:3240] [--twinstar]
//!     [--stage cold|usb|fpga|running] [--seconds N] [--watchdog-ms N] [--jump-delay-ms N]
//!     [--commands]
//! ```
//!
//! Listens on 127.0.0.1:3240 unless `--listen` names another address. Port 0 of the emulator
//! is bus id `1-1`, TwinStar's port 1 is `1-2`. Prints the exported devices at start and
//! whenever they change (a firmware stage, a RENUM, a TwinStar jump), and runs until killed,
//! or for `--seconds N`. List it with `cargo run --example lsastribank -- --usbip ADDR`;
//! attach it with `usbip attach -r 127.0.0.1 -b 1-1` (Linux, `vhci-hcd` loaded).
//!
//! `--watchdog-ms` and `--jump-delay-ms` set the TwinStar watchdog timeout and jump delay
//! (defaults: the emulator's). `--commands` reads one command per line on stdin, for scripts
//! (the cluster tests, `ci/cluster/`): `offhook` / `onhook` (the phone on FXS port 1),
//! `answer` (the far party of the PSTN line on FXO port 1 answers a seized line),
//! `vbus P on|off` (power from the host on TwinStar port P: a cable plugged or pulled), `tone`
//! (the phone plays 1 kHz) and `heard` (prints `heard: 1kHz=yes|no level=L dB`, what the PSTN
//! line heard since `tone`, and silences the phone), `status` (prints `status: port=P phone=on-hook|off-hook line=STATE`, the active port and
//! the PSTN line's call state on FXO port 1).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use xpp_emu::DeviceConfig;
use xpp_emu::config::{CoreConfig, Stage};
use xpp_emu::data::g711::{Source, has_tone, level_db};
use xpp_emu::usbip_server::{DEFAULT_ADDR, UsbIpServer};
use xpp_usb::usbip::codec::ExportedDevice;

/// Serve an emulated Astribank (FXS + FXO modules) over USB/IP.
#[derive(Parser)]
#[command(name = "usbip-serve")]
struct Args {
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value_t = DEFAULT_ADDR)]
    listen: SocketAddr,
    /// Two USB ports with TwinStar switching.
    #[arg(long)]
    twinstar: bool,
    /// Firmware stage at power-on.
    #[arg(long, value_enum, default_value_t = StageArg::Cold)]
    stage: StageArg,
    /// Stop after this many seconds (0: run until killed).
    #[arg(long, value_name = "N", default_value_t = 0)]
    seconds: u64,
    /// TwinStar watchdog timeout in ms (default: the emulator's).
    #[arg(long, value_name = "N")]
    watchdog_ms: Option<u64>,
    /// TwinStar jump delay in ms (default: the emulator's).
    #[arg(long, value_name = "N")]
    jump_delay_ms: Option<u64>,
    /// Read commands on stdin: offhook, onhook, answer, tone, heard, vbus P on|off, status.
    #[arg(long)]
    commands: bool,
}

/// One stdin command on the emulated device; the line to print.
fn command(emu: &xpp_emu::Emulator, cmd: &str) -> String {
    emu.with_device(|d| {
        let now = d.now();
        let port = d.active_port();
        match cmd {
            "offhook" | "onhook" => match d.data_mut().phone_mut(0, 0) {
                Some(p) if cmd == "offhook" => {
                    p.off_hook(now);
                    "ok: phone off-hook".to_owned()
                }
                Some(p) => {
                    p.on_hook(now);
                    "ok: phone on-hook".to_owned()
                }
                None => "error: no phone on FXS port 1".to_owned(),
            },
            "status" => {
                let phone = d.data_mut().phone_mut(0, 0).map(|p| p.is_off_hook());
                let phone = match phone {
                    Some(true) => "off-hook",
                    Some(false) => "on-hook",
                    None => "none",
                };
                let line = d.data_mut().pstn_mut(1, 0).map(|l| format!("{:?}", l.state()));
                format!("status: port={port} phone={phone} line={}", line.as_deref().unwrap_or("none"))
            }
            vbus if vbus.starts_with("vbus ") => match vbus.split_whitespace().collect::<Vec<_>>()[..] {
                [_, p @ ("0" | "1"), on @ ("on" | "off")] => {
                    d.set_power(now, u8::from(p == "1"), on == "on");
                    format!("ok: vbus {p} {on}")
                }
                _ => "error: vbus P on|off (P: 0 or 1)".to_owned(),
            },
            "answer" => match d.data_mut().pstn_mut(1, 0) {
                Some(l) => {
                    l.answer(now);
                    "ok: the far party answers".to_owned()
                }
                None => "error: no PSTN line on FXO port 1".to_owned(),
            },
            "tone" => match d.data_mut().phone_mut(0, 0) {
                Some(p) => {
                    p.play(Source::tone_1k());
                    let _ = d.data_mut().pstn_mut(1, 0).map(|l| l.take_heard());
                    "ok: phone plays 1 kHz".to_owned()
                }
                None => "error: no phone on FXS port 1".to_owned(),
            },
            "heard" => {
                if let Some(p) = d.data_mut().phone_mut(0, 0) {
                    p.play(Source::Silence);
                }
                match d.data_mut().pstn_mut(1, 0).map(|l| l.take_heard()) {
                    Some(heard) => {
                        let tail = &heard[heard.len().saturating_sub(2000)..];
                        let tone = !tail.is_empty() && has_tone(tail, 1000.0);
                        format!("heard: 1kHz={} level={:.1}dB", if tone { "yes" } else { "no" }, level_db(tail))
                    }
                    None => "error: no PSTN line on FXO port 1".to_owned(),
                }
            }
            other => format!("error: unknown command {other:?} (offhook, onhook, answer, tone, heard, vbus P on|off, status)"),
        }
    })
}

#[derive(Clone, Copy, ValueEnum)]
enum StageArg {
    /// 11x0: waiting for the USB firmware (FX2 download).
    Cold,
    /// 11x1: USB firmware running, FPGA empty.
    Usb,
    /// 11x1 with the FPGA loaded, waiting for RENUM.
    Fpga,
    /// 11x2: data interface live.
    Running,
}

fn line(d: &ExportedDevice) -> String {
    let r = &d.device;
    format!(
        "  {}  {:03}/{:03}  {:04x}:{:04x}/{:04x}  {} interface(s)",
        r.busid,
        r.busnum,
        r.devnum,
        r.id_vendor,
        r.id_product,
        r.bcd_device,
        d.interfaces.len()
    )
}

fn main() -> ExitCode {
    let args = Args::parse();
    let stage = match args.stage {
        StageArg::Cold => Stage::Cold,
        StageArg::Usb => Stage::UsbLoaded,
        StageArg::Fpga => Stage::FpgaLoaded,
        StageArg::Running => Stage::Running,
    };
    let mut core = CoreConfig::default();
    if let Some(ms) = args.watchdog_ms {
        core.watchdog_timeout = xpp_proto::Duration::from_millis(ms);
    }
    if let Some(ms) = args.jump_delay_ms {
        core.jump_delay = xpp_proto::Duration::from_millis(ms);
    }
    let cfg = DeviceConfig::default().with_twinstar(args.twinstar).with_start_stage(stage).with_core(core);
    let server = match UsbIpServer::serve(cfg, args.listen) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("usbip-serve: cannot listen on {}: {e}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    println!("usbip-serve: emulated Astribank (FXS, FXO) on {}", server.local_addr());
    if args.commands {
        let emu = server.emulator().clone();
        std::thread::spawn(move || {
            for line in std::io::stdin().lines() {
                let Ok(line) = line else { return };
                let line = line.trim();
                if !line.is_empty() {
                    println!("{}", command(&emu, line));
                }
            }
        });
    }
    let end = (args.seconds > 0).then(|| Instant::now() + Duration::from_secs(args.seconds));
    let mut shown: Option<Vec<ExportedDevice>> = None;
    while end.is_none_or(|e| Instant::now() < e) {
        let now = server.exported();
        if shown.as_ref() != Some(&now) {
            println!("exported ({}):", now.len());
            now.iter().for_each(|d| println!("{}", line(d)));
            shown = Some(now);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    ExitCode::SUCCESS
}
