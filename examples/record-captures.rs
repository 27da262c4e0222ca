//! `record-captures`: records the emulator captures in `hardware-captures/`.
//!
//! ```text
//! cargo run --example record-captures -- [OUT_DIR [NAME...]]   # default: hardware-captures, all
//! ```
//!
//! With names (`emu-cold-fxs-fxo-bringup.pcap` …) only those captures are recorded.
//!
//! Each capture is the USB traffic between xpp and an **emulated** Astribank, recorded by
//! `xpp::usb::middleware::PcapWriter` (or `PcapSink`) in the Linux usbmon pcap format (link
//! type 220). They are emulator output, never hardware: the README row of each file says so.
//! Scenarios:
//!
//! - `emu-fxs-fxo-bringup-call.pcap`: bring-up of an FXS + FXO unit by the driver (AB_REQUEST,
//!   descriptors, XBUS_RESET, card init, SYNC_SOURCE), PCM, a phone going off-hook (SIG_CHANGED)
//!   and back on-hook, orderly close (SYNC_SOURCE NONE).
//! - `emu-fxs-pri-e1-bringup.pcap`: the same for FXS + a PRI E1 span (A-law, 31 timeslots).
//! - `emu-fxo-bri-bringup.pcap`: the same for a 4-port BRI + FXO unit.
//! - `emu-twinstar-jump.pcap`: MPP on port 0 of a TwinStar unit: STATUS_GET, TWS_PWR_GET,
//!   TWS_PORT_GET, then TWS_PORT_SET(1): the device leaves port 0 (the pending IN transfer
//!   completes Disconnected).
//! - `emu-cold-fxs-fxo-bringup.pcap`: a cold FXS + FXO unit brought up by
//!   `xpp::bringup::bring_up` with the images of `testdata/firmware` (or
//!   `XPP_FIRMWARE_DIR`): FX2 download on E4E4:1160 (bus 1 device 2), re-enumeration as 1161
//!   (device 3), FPGA and PIC loads over MPP, RENUM, running as 1162 (device 4), AB_REQUEST …
//!   card init, SYNC_SOURCE, then 10 ms of PCM after READY. One file through three devices,
//!   recorded by `xpp::usb::middleware::PcapSink` as a usbmon capture of the bus would show it.
//!   Self-check: the same bring-up driver is then run against the file (`PcapSession`, one
//!   device after the other) and must reach READY through the same phases.
//!
//! Every capture is deterministic: the emulator runs on its virtual clock (auto-advancing in
//! the driver's waits; the run loop in lockstep with this program's `wait_tick` calls), and
//! timestamps are that clock from 2024-01-01T00:00:00Z. Re-recording gives the same bytes.

mod common;

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration as StdDuration;

use xpp::bringup::{BringUpConfig, FirmwareSet, RunOptions, bring_up, find_firmware_dir, read_firmware_dir};
use xpp::driver::{Driver, DriverEvent, DriverOptions, Pacing};
use xpp::emu::config::{ModuleConfig, Stage};
use xpp::emu::{ClockMode, DeviceConfig, Emulator};
use xpp::proto::mgmt::Request;
use xpp::proto::{Duration, Instant};
use xpp::usb::StepClock;
use xpp::usb::middleware::{PcapSession, PcapSink, PcapWriter};
use xpp::usb::{Transport, ep};

type Recorder = PcapWriter<xpp::emu::EmulatedTransport, BufWriter<File>>;
/// One capture: its file name and the function that records it.
type Run = (&'static str, Box<dyn Fn(&Path) -> Result<(), String>>);

/// The capture's clock: the emulator's virtual time from [`CAPTURE_EPOCH_SECS`].
fn capture_clock(emu: &Emulator) -> xpp::usb::middleware::Clock {
    let emu = emu.clone();
    let epoch = StdDuration::from_secs(CAPTURE_EPOCH_SECS);
    Box::new(move || epoch + StdDuration::from_micros(emu.now().total_micros()))
}

fn recorder(emu: &Emulator, port: u8, path: &Path) -> Result<Recorder, String> {
    let t = emu.transport(port).ok_or("nothing enumerated on the port")?;
    let f = File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    PcapWriter::with_clock(t, BufWriter::new(f), capture_clock(emu)).map_err(|e| e.to_string())
}

/// Waits for `n` device ticks (in lockstep, the run loop waits for each call).
fn ticks(drv: &Driver, id: xpp::driver::DeviceId, n: usize) -> Result<(), String> {
    for _ in 0..n {
        drv.wait_tick(id, StdDuration::from_secs(5)).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Driver bring-up, 300 ticks (300 ms), phone 0/0 off-hook and on-hook (if FXS in slot 0), close. The
/// driver runs in lockstep on the emulator's virtual clock, so the capture is reproducible.
fn bringup_call(path: &Path, slots: [Option<ModuleConfig>; 4]) -> Result<(), String> {
    let cfg = DeviceConfig::default().with_start_stage(Stage::Running).with_slots(slots);
    let emu = Emulator::with_mode(cfg, ClockMode::AutoAdvance);
    let mut rec = Some(recorder(&emu, 0, path)?);
    let clock = emu.clone();
    let drv = Driver::new(clock.clone(), DriverOptions::default().with_pacing(Pacing::Lockstep));
    let rx = drv.events();
    let id = drv
        .open(move || rec.take(), BringUpConfig::default(), FirmwareSet::default(), RunOptions::default())
        .map_err(|e| format!("bring-up: {e}"))?;
    let wait = StdDuration::from_secs(5);
    ticks(&drv, id, 300)?;
    let hook = |off: bool| {
        emu.with_device(|d| {
            let now = d.now();
            if let Some(p) = d.data_mut().phone_mut(0, 0) {
                if off { p.off_hook(now) } else { p.on_hook(now) }
            }
        });
    };
    hook(true);
    ticks(&drv, id, 300)?;
    hook(false);
    ticks(&drv, id, 300)?;
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
    let emu = Emulator::with_mode(cfg, ClockMode::AutoAdvance);
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

/// The first firmware folder of the one search order (`XPP_FIRMWARE_DIR`, the repository's
/// `testdata/firmware`, `/usr/share/dahdi`).
fn firmware_dir() -> Result<PathBuf, String> {
    find_firmware_dir().map_err(|e| e.to_string())
}

/// Where the virtual clock's zero lies in the capture: 2024-01-01T00:00:00Z.
const CAPTURE_EPOCH_SECS: u64 = 1_704_067_200;

/// Cold FXS + FXO bring-up through its three enumerations into one capture, then 10 ms of
/// PCM; virtual clock throughout.
fn cold_bringup(path: &Path) -> Result<(), String> {
    let emu = Emulator::with_mode(DeviceConfig::default(), ClockMode::AutoAdvance);
    let fw_dir = firmware_dir()?;
    let fw = read_firmware_dir(&fw_dir).map_err(|e| format!("firmware folder {}: {e}", fw_dir.display()))?;
    let f = File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let sink = PcapSink::with_clock(BufWriter::new(f), capture_clock(&emu)).map_err(|e| e.to_string())?;
    let e3 = emu.clone();
    let open = sink.opener(move || e3.transport(0));
    let clock = emu.clone();
    let ready = bring_up(open, &clock, BringUpConfig::default(), fw, RunOptions::default(), |_| {})
        .map_err(|e| format!("bring-up: {e}"))?;
    let mut t = ready.transport;
    // 10 ms of PCM_READ after READY (the driver left its reads queued), then the capture ends.
    let end = emu.now() + Duration::from_millis(10);
    while emu.now() < end {
        let Some(c) = t.wait_next_complete(ep::DATA_IN, StdDuration::from_millis(2)) else { continue };
        c.status.map_err(|e| format!("PCM read: {e}"))?;
        t.submit(ep::DATA_IN, vec![0; 512]).map_err(|e| e.to_string())?;
    }
    let (_, handle) = t.finish().map_err(|e| e.to_string())?;
    drop(handle);
    sink.finish().map_err(|e| e.to_string())?;
    let phases = |r: &xpp::bringup::BringUpResult| r.timeline.iter().map(|t| t.phase).collect::<Vec<_>>();
    let recorded = phases(&ready.result);
    // Self-check: the same driver, fed by the capture device after device, reaches READY
    // through the same phases.
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let replayed = replay_bringup(&bytes)?;
    if phases(&replayed) != recorded {
        return Err(format!("replay went {:?}, the recording {recorded:?}", phases(&replayed)));
    }
    Ok(())
}

/// Runs the bring-up driver against a capture's devices in turn (`PcapSession`).
fn replay_bringup(capture: &[u8]) -> Result<xpp::bringup::BringUpResult, String> {
    let session = PcapSession::from_bytes(capture).map_err(|e| e.to_string())?;
    let fw_dir = firmware_dir()?;
    let fw = read_firmware_dir(&fw_dir).map_err(|e| format!("firmware folder {}: {e}", fw_dir.display()))?;
    let clock = StepClock::new(Instant::ZERO);
    let ready =
        bring_up(session.into_opener(), &clock, BringUpConfig::default(), fw, RunOptions::default(), |_| {})
            .map_err(|e| format!("replayed bring-up: {e}"))?;
    Ok(ready.result)
}

fn main() -> ExitCode {
    common::init();
    let dir = std::env::args().nth(1).map_or_else(|| PathBuf::from("hardware-captures"), PathBuf::from);
    let only: Vec<String> = std::env::args().skip(2).collect();
    let fxs = Some(ModuleConfig::FXS);
    let runs: [Run; 5] = [
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
        ("emu-cold-fxs-fxo-bringup.pcap", Box::new(cold_bringup)),
    ];
    for (name, run) in runs {
        if !only.is_empty() && !only.iter().any(|o| o == name) {
            continue;
        }
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
