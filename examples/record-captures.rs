//! `record-captures`: records the emulator captures in `hardware-captures/`.
//!
//! ```text
//! cargo run --example record-captures -- [OUT_DIR]   # default: hardware-captures
//! ```
//!
//! Each capture is the USB traffic between xpp and an **emulated** Astribank (real-time
//! emulator, running stage), recorded by `xpp::usb::middleware::PcapWriter` in the Linux usbmon
//! pcap format (link type 220). They are emulator output, never hardware: the README row of each
//! file says so. Scenarios:
//!
//! - `emu-fxs-fxo-bringup-call.pcap`: bring-up of an FXS + FXO unit by the driver (AB_REQUEST,
//!   descriptors, XBUS_RESET, card init, SYNC_SOURCE), PCM, a phone going off-hook (SIG_CHANGED)
//!   and back on-hook, orderly close (SYNC_SOURCE NONE).
//! - `emu-fxs-pri-e1-bringup.pcap`: the same for FXS + a PRI E1 span (A-law, 31 timeslots).
//! - `emu-fxo-bri-bringup.pcap`: the same for a 4-port BRI + FXO unit.
//! - `emu-twinstar-jump.pcap`: MPP on port 0 of a TwinStar unit: STATUS_GET, TWS_PWR_GET,
//!   TWS_PORT_GET, then TWS_PORT_SET(1): the device leaves port 0 (the pending IN transfer
//!   completes Disconnected).

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration as StdDuration;

use xpp::emu::config::{ModuleConfig, Stage};
use xpp::emu::{DeviceConfig, Emulator};
use xpp::proto::mgmt::Request;
use xpp::span::bringup::{BringUpConfig, FirmwareSet, RunOptions, SystemClock};
use xpp::span::driver::{Driver, DriverEvent, DriverOptions};
use xpp::usb::middleware::PcapWriter;
use xpp::usb::{Transport, ep};

type Recorder = PcapWriter<xpp::emu::EmulatedTransport, BufWriter<File>>;
/// One capture: its file name and the function that records it.
type Run = (&'static str, Box<dyn Fn(&Path) -> Result<(), String>>);

fn recorder(emu: &Emulator, port: u8, path: &Path) -> Result<Recorder, String> {
    let t = emu.transport(port).ok_or("nothing enumerated on the port")?;
    let f = File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    PcapWriter::new(t, BufWriter::new(f)).map_err(|e| e.to_string())
}

/// Driver bring-up, 300 ms of ticks, phone 0/0 off-hook and on-hook (if FXS in slot 0), close.
fn bringup_call(path: &Path, slots: [Option<ModuleConfig>; 4]) -> Result<(), String> {
    let cfg = DeviceConfig::default().with_start_stage(Stage::Running).with_slots(slots);
    let (emu, _runner) = Emulator::real_time(cfg);
    let mut rec = Some(recorder(&emu, 0, path)?);
    let drv = Driver::new(SystemClock::new(), DriverOptions::default());
    let rx = drv.events();
    let id = drv
        .open(
            move || rec.take(),
            &mut SystemClock::new(),
            BringUpConfig::default(),
            FirmwareSet::default(),
            RunOptions::default(),
        )
        .map_err(|e| format!("bring-up: {e}"))?;
    let wait = StdDuration::from_secs(5);
    drv.wait_tick(id, wait).map_err(|e| e.to_string())?;
    std::thread::sleep(StdDuration::from_millis(300));
    let hook = |off: bool| {
        emu.with_device(|d| {
            let now = d.now();
            if let Some(p) = d.data_mut().phone_mut(0, 0) {
                if off { p.off_hook(now) } else { p.on_hook(now) }
            }
        });
    };
    hook(true);
    std::thread::sleep(StdDuration::from_millis(300));
    hook(false);
    std::thread::sleep(StdDuration::from_millis(300));
    drv.close_device(id).map_err(|e| e.to_string())?;
    while let Ok(e) = rx.recv_timeout(wait) {
        if matches!(e, DriverEvent::DeviceClosed { .. }) {
            break;
        }
    }
    drv.close();
    Ok(())
}

/// MPP queries then a TwinStar jump away from port 0.
fn twinstar_jump(path: &Path) -> Result<(), String> {
    let cfg = DeviceConfig::default().with_start_stage(Stage::Running).with_twinstar(true);
    let (emu, _runner) = Emulator::real_time(cfg);
    let mut rec = recorder(&emu, 0, path)?;
    let timeout = StdDuration::from_millis(500);
    let requests =
        [Request::StatusGet, Request::TwsPwrGet, Request::TwsPortGet, Request::TwsPortSet { port: 1 }];
    for (seq, req) in (1..).zip(requests) {
        let mut buf = vec![0u8; 512];
        let n = req.emit(seq, &mut buf).map_err(|e| e.to_string())?;
        buf.truncate(n);
        if matches!(req, Request::TwsPortSet { .. }) {
            rec.submit(ep::DATA_IN, vec![0; 512]).map_err(|e| e.to_string())?;
            let c = rec.transfer_blocking(ep::MGMT_OUT, buf, timeout);
            c.status.map_err(|e| format!("TWS_PORT_SET: {e}"))?;
            // The pending IN completes Disconnected when the device leaves port 0.
            let _ = rec.wait_next_complete(ep::DATA_IN, StdDuration::from_secs(3));
        } else {
            rec.transfer_blocking(ep::MGMT_OUT, buf, timeout).status.map_err(|e| e.to_string())?;
            rec.transfer_blocking(ep::MGMT_IN, vec![0; 512], timeout).status.map_err(|e| e.to_string())?;
        }
    }
    rec.finish().map_err(|e| e.to_string())?;
    Ok(())
}

fn main() -> ExitCode {
    let dir = std::env::args().nth(1).map_or_else(|| PathBuf::from("hardware-captures"), PathBuf::from);
    let fxs = Some(ModuleConfig::FXS);
    let runs: [Run; 4] = [
        (
            "emu-fxs-fxo-bringup-call.pcap",
            Box::new(move |p| bringup_call(p, [fxs, Some(ModuleConfig::FXO), None, None])),
        ),
        (
            "emu-fxs-pri-e1-bringup.pcap",
            Box::new(move |p| bringup_call(p, [fxs, Some(ModuleConfig::PRI_E1), None, None])),
        ),
        (
            "emu-fxo-bri-bringup.pcap",
            Box::new(|p| bringup_call(p, [Some(ModuleConfig::BRI), Some(ModuleConfig::FXO), None, None])),
        ),
        ("emu-twinstar-jump.pcap", Box::new(twinstar_jump)),
    ];
    for (name, run) in runs {
        let path = dir.join(name);
        match run(&path) {
            Ok(()) => println!("recorded {}", path.display()),
            Err(e) => {
                eprintln!("record-captures: {name}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
