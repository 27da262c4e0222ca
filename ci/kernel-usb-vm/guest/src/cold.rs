//! `<backend>.driver-cold`: the whole cold bring-up through the kernel's USB stack. A fresh
//! emulated Astribank (FXS + FXO, powered up cold as `e4e4:1160`, on the paced clock) is
//! attached to `vhci_hcd`, and the driver (`Driver::open`, with the firmware images of the
//! guest's `/firmware`) brings it up through the backend: FX2 RAM download of the USB
//! firmware, re-enumeration as `1161`, the FPGA image over MPP DEV_SEND on interface 1, the
//! PIC images of the modules present, RENUM, re-enumeration as `1162`, AB_REQUEST ... READY.
//! The opener reopens the device by its bus path (`Locator::BusPath`) after each
//! re-enumeration, as a user's opener does: the address changes, the port does not. Then a
//! short check that it ticks and that an FXS off-hook reaches the driver's user as
//! RINGOFFHOOK, and an orderly close.

use std::path::Path;
use std::time::{Duration, Instant};

use xpp_bringup::{
    self, BringUpConfig, BringUpResult, FirmwareSet, Outcome, Phase, RunOptions, read_firmware_dir,
};
use xpp_driver::{Driver, DriverEvent, DriverOptions, Receiver};
use xpp_emu::usbip_server::UsbIpServer;
use xpp_emu::{DeviceConfig, Emulator};
use xpp_proto::firmware::select_images;
use xpp_span::Event;
use xpp_usb::SystemClock;
use xpp_usb::discovery::{Locator, XORCOM_VENDOR_ID};

use crate::backend::Backend;
use crate::call::PACE_BACKLOG;
use crate::scenarios::{APPEAR, ensure, short};
use crate::vhci::{self, Attacher};

/// The check's own hang bound (the other checks have 120 s): above the bring-up's whole
/// time limit (`Timeouts::total`, 90 s) plus attaching (at most [`APPEAR`]) and the waits of
/// the tick check and the close (each at most [`WAIT`]), so that a slow bring-up fails with
/// its own error (phase, last answer) rather than as "hung".
pub(crate) const HUNG: Duration = Duration::from_secs(160);
/// How long the ticking device may take to show a tick, an event, a close.
const WAIT: Duration = Duration::from_secs(10);
/// Product ids of the three stages.
const COLD: u16 = 0x1160;
const USB_FW: u16 = 0x1161;
/// The phone's channel (FXS unit 0, port 0: the driver's first channel).
const FXS1: u32 = 1;

type Check = Result<String, String>;

/// The bring-up's time limits in the guest: the driver's own.
// Decision: the driver's defaults, untouched. (Until the PIC reply timeout started only once
// a PIC burst had gone out, this check needed 2 s instead of 500 ms under TCG: the driver
// started the timer when it queued the ~450-packet burst.)
fn config() -> BringUpConfig {
    BringUpConfig::default()
}

/// How the detail line names [`config`]'s limits.
fn limits() -> String {
    let t = config().timeouts;
    let s = |d: xpp_proto::Duration| format!("{} s", d.total_micros() as f64 / 1e6);
    format!(
        "driver defaults: PIC reply {} (after each burst), Fpga {}, total {}",
        s(t.pic_reply),
        s(t.fpga),
        s(t.total)
    )
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn dev_ms(d: xpp_proto::Duration) -> String {
    format!("{:.0} ms", d.total_micros() as f64 / 1000.0)
}

/// What the bring-up told its user on the event channel, as the check sums it up.
#[derive(Default)]
struct Seen {
    /// Every timeline entry.
    timeline: Vec<xpp_bringup::TimelineEvent>,
    /// The last (done, total) per load phase: UsbFirmware, Fpga, Pic.
    progress: [Option<(usize, usize)>; 3],
    /// Warnings.
    warnings: Vec<String>,
    /// Whether DeviceReady came.
    ready: bool,
}

impl Seen {
    fn take(&mut self, e: &DriverEvent) {
        match e {
            DriverEvent::BringUp(xpp_bringup::Event::Timeline(t)) => self.timeline.push(*t),
            DriverEvent::BringUp(xpp_bringup::Event::Progress { phase, done, total }) => {
                let i = match phase {
                    Phase::UsbFirmware => 0,
                    Phase::Fpga => 1,
                    Phase::Pic => 2,
                    _ => return,
                };
                self.progress[i] = Some((*done, *total));
            }
            DriverEvent::BringUp(xpp_bringup::Event::Warning { phase, message }) => {
                self.warnings.push(format!("{phase}: {message}"));
            }
            DriverEvent::DeviceReady { .. } => self.ready = true,
            _ => {}
        }
    }

    /// Takes what is in the channel now.
    fn drain(&mut self, rx: &Receiver<DriverEvent>) {
        while let Ok(e) = rx.try_recv() {
            self.take(&e);
        }
    }

    fn render_timeline(&self) -> String {
        let phases: Vec<String> = self
            .timeline
            .iter()
            .map(|t| {
                let o = match t.outcome {
                    Outcome::Done => "",
                    Outcome::Skipped => " skipped",
                    _ => " FAILED",
                };
                format!("{} {}{o}", t.phase, dev_ms(t.duration))
            })
            .collect();
        let sum = self.timeline.iter().fold(xpp_proto::Duration::ZERO, |a, t| a + t.duration);
        format!("[{}] (sum {})", phases.join(", "), dev_ms(sum))
    }
}

/// The opener's record: the product id of each device it opened, in order, and its tries.
#[derive(Default)]
struct Opens {
    tries: usize,
    products: Vec<u16>,
}

impl Opens {
    /// The enumerations it met: the product ids with repeats of the same one merged.
    fn enumerations(&self) -> Vec<u16> {
        let mut v = self.products.clone();
        v.dedup();
        v
    }

    fn render(&self) -> String {
        let e: Vec<String> = self.enumerations().iter().map(|p| format!("{p:04x}")).collect();
        format!(
            "{} re-enumerations seen by the opener ({}; {} opens in {} tries)",
            e.len().saturating_sub(1),
            e.join(" -> "),
            self.products.len(),
            self.tries
        )
    }
}

/// Requests (as the driver's progress reported them) and image bytes of each load.
fn images(fw: &FirmwareSet, result: &BringUpResult, seen: &Seen) -> Result<String, String> {
    let bcd = result.device.bcd_device;
    let usb = select_images(XORCOM_VENDOR_ID, COLD, bcd).usb.unwrap_or("?");
    let fpga = select_images(XORCOM_VENDOR_ID, USB_FW, bcd).fpga.unwrap_or("?");
    let mut types: Vec<u8> = result
        .cards
        .iter()
        .filter(|c| c.unit() <= 3)
        .map(|c| c.type_code())
        .filter(|t| matches!(t, 1..=4 | 6))
        .collect();
    types.sort_unstable();
    types.dedup();
    let pics: Vec<String> = types.iter().map(|t| format!("PIC_TYPE_{t}.hex")).collect();
    let bytes = |name: &str| fw.get(name).and_then(|r| r.as_ref().ok()).map_or(0, |h| h.data_len());
    let mut out = Vec::new();
    for (i, (what, names, unit)) in [
        ("USB", vec![usb.to_owned()], "control requests"),
        ("FPGA", vec![fpga.to_owned()], "MPP requests"),
        ("PIC", pics, "packets"),
    ]
    .into_iter()
    .enumerate()
    {
        let Some((done, total)) = seen.progress[i] else {
            return Err(format!("no {what} load progress reported"));
        };
        ensure(done == total, || format!("{what} load stopped at {done} of {total}"))?;
        let b: usize = names.iter().map(|n| bytes(n)).sum();
        out.push(format!("{} {total} {unit} ({b} image bytes)", names.join("+")));
    }
    Ok(out.join(", "))
}

/// Detaches the vhci ports in `ports` and waits until they are free and `bus_path` is gone.
fn detach(ports: &[u32], bus_path: &str) -> Result<(), String> {
    for &p in ports {
        vhci::detach(p)?;
    }
    let end = Instant::now() + WAIT;
    while vhci::used_ports()?.iter().any(|p| ports.contains(p))
        || vhci::usb_devices().iter().any(|d| d == bus_path)
    {
        if Instant::now() > end {
            return Err(format!("vhci ports {ports:?} / {bus_path} still in use after {WAIT:?}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// The check (see the module doc).
pub(crate) fn driver_cold(backend: &dyn Backend, firmware: &Path) -> Check {
    let started = Instant::now();
    let fw = read_firmware_dir(firmware).map_err(|e| format!("firmware {}: {e}", firmware.display()))?;
    let before: Vec<String> = backend.list()?.into_iter().map(|f| f.bus_path).collect();
    let ports_before = vhci::used_ports()?;
    let mut cfg = DeviceConfig::default();
    cfg.label = *b"KVMCOLD1";
    // Paced like the running device of driver-call (call.rs says why): the bring-up's
    // traffic never holds it, the ticking device after READY does if the guest lags.
    let (emu, runner) = Emulator::paced(cfg, PACE_BACKLOG);
    let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let server = UsbIpServer::bind(emu.clone(), loopback).map_err(|e| format!("USB/IP server: {e}"))?;
    let attacher = Attacher::spawn(vec![server.local_addr()]);

    let r = bring_up_and_call(backend, &fw, &emu, &before);

    // The check's own attacher (the failure lines print only the run's shared one).
    let r = r.map_err(|e| format!("{e}; vhci attacher of this device: {}", attacher.log().join("; ")));
    drop(attacher);
    let ours: Vec<u32> = vhci::used_ports()?.into_iter().filter(|p| !ports_before.contains(p)).collect();
    let gone = detach(&ours, r.as_ref().map_or("", |(p, _)| p.as_str()));
    drop(server);
    drop(runner);
    let (_, detail) = r?;
    gone.map_err(|e| format!("{e}; {detail}"))?;
    Ok(format!("{detail}; total wall {}", ms(started.elapsed())))
}

/// Attaches, brings up, ticks, off-hook, close; (the device's bus path, the detail).
fn bring_up_and_call(
    backend: &dyn Backend,
    fw: &FirmwareSet,
    emu: &Emulator,
    before: &[String],
) -> Result<(String, String), String> {
    let attach_start = Instant::now();
    let f = {
        let end = Instant::now() + APPEAR;
        loop {
            let list = backend.list()?;
            if let Some(f) = list.iter().find(|f| f.product_id == COLD && !before.contains(&f.bus_path)) {
                break f.clone();
            }
            if Instant::now() > end {
                return Err(format!(
                    "no new e4e4:1160 after {APPEAR:?}: listed {:?}",
                    list.iter().map(short).collect::<Vec<_>>()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let attached = attach_start.elapsed();
    let loc: Locator = f.bus_path.parse().map_err(|e| format!("bus path {}: {e}", f.bus_path))?;

    let drv = Driver::new(SystemClock::new(), DriverOptions::default());
    let rx = drv.events();
    let mut seen = Seen::default();
    let mut opens = Opens::default();
    let up_start = Instant::now();
    let opened = drv.open(
        || {
            opens.tries += 1;
            let t = backend.open_locator(&loc).ok()?;
            opens.products.push(t.info().product_id);
            Some(t)
        },
        config(),
        fw.clone(),
        RunOptions::default(),
    );
    let bring_up = up_start.elapsed();
    seen.drain(&rx);
    let dev_renums = emu.with_device(|d| d.counters().renumerations);
    let head = format!("{} (attached after {}) through {}", short(&f), ms(attached), backend.name());
    let id = opened.map_err(|e| {
        format!(
            "{head}: {e}; timeline so far {}; {}; device counted {dev_renums} renumerations; timeouts: {}",
            seen.render_timeline(),
            opens.render(),
            limits()
        )
    })?;
    let result = drv.bring_up_result(id).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + WAIT;
    while !seen.ready && Instant::now() < deadline {
        if let Ok(e) = rx.recv_timeout(Duration::from_millis(100)) {
            seen.take(&e);
        }
    }
    let up = format!(
        "{head}: bring-up {} wall, timeline {}; {}; device counted {dev_renums} renumerations; images: {}; timeouts: {}",
        ms(bring_up),
        seen.render_timeline(),
        opens.render(),
        images(fw, &result, &seen).unwrap_or_else(|e| format!("({e})")),
        limits()
    );
    // What a cold bring-up must have done.
    let phase = |p: Phase| seen.timeline.iter().find(|t| t.phase == p).map(|t| t.outcome);
    ensure(seen.ready, || format!("no DeviceReady within {WAIT:?}; {up}"))?;
    ensure(result.initial_stage == xpp_usb::discovery::Stage::Cold, || {
        format!("initial stage {:?}; {up}", result.initial_stage)
    })?;
    ensure(result.device.product_id == 0x1162, || {
        format!("ended as {:04x}; {up}", result.device.product_id)
    })?;
    for p in [Phase::UsbFirmware, Phase::WaitRenum, Phase::Fpga, Phase::Pic, Phase::Renum, Phase::Ready] {
        ensure(phase(p) == Some(Outcome::Done), || format!("phase {p}: {:?}; {up}", phase(p)))?;
    }
    ensure(opens.enumerations() == [COLD, USB_FW, 0x1162], || format!("enumerations; {up}"))?;
    ensure(dev_renums == 2, || format!("device renumerations {dev_renums}; {up}"))?;
    images(fw, &result, &seen).map_err(|e| format!("{e}; {up}"))?;
    ensure(seen.warnings.is_empty(), || format!("warnings {:?}; {up}", seen.warnings))?;

    // Running: it ticks, an off-hook reaches the user, an orderly close.
    let run_start = Instant::now();
    let t0 = drv.wait_tick(id, WAIT).map_err(|e| format!("no tick: {e}; {up}"))?;
    emu.with_device(|d| {
        let now = d.now();
        d.data_mut().phone_mut(0, 0).map(|p| p.off_hook(now))
    })
    .ok_or_else(|| format!("no phone on FXS unit 0 port 0; {up}"))?;
    let hook_start = Instant::now();
    let hook = until(&rx, |e| matches!(e, DriverEvent::Chan { channo: FXS1, event: Event::RINGOFFHOOK, .. }));
    let hook_wall = hook_start.elapsed();
    ensure(hook, || format!("no RINGOFFHOOK on channel {FXS1} within {WAIT:?} of the off-hook; {up}"))?;
    let t1 = drv.wait_tick(id, WAIT).map_err(|e| format!("no tick after the off-hook: {e}; {up}"))?;
    ensure(t1 > t0, || format!("not ticking: tick {t0} then {t1}; {up}"))?;
    let ran = run_start.elapsed();
    let closing = Instant::now();
    drv.close_device(id).map_err(|e| e.to_string())?;
    let closed = until(&rx, |e| matches!(e, DriverEvent::DeviceClosed { .. }));
    let close = closing.elapsed();
    let running = drv.is_running(id).unwrap_or(true);
    let stats = drv.stats(id).map_err(|e| e.to_string())?;
    drv.close();
    let overflow = emu.with_device(|d| d.counters().in_overflow);
    let detail = format!(
        "{up}; running: ticks {t0} -> {t1} in {}, RINGOFFHOOK on channel {FXS1} {} after the off-hook; \
         close {}; driver: {} IN transfers, {} rx errors; device IN overflow {overflow}, held {} (paced)",
        ms(ran),
        ms(hook_wall),
        ms(close),
        stats.rx_transfers,
        stats.rx_errors,
        dev_ms(emu.pace_lag()),
    );
    ensure(closed, || format!("no DeviceClosed within {WAIT:?}; {detail}"))?;
    ensure(!running, || format!("run loop still running after close; {detail}"))?;
    ensure(overflow == 0, || format!("IN transfers lost in the device FIFO; {detail}"))?;
    ensure(stats.rx_errors == 0, || format!("decode errors; {detail}"))?;
    Ok((f.bus_path, detail))
}

/// Receives driver events until `pred` matches one (at most [`WAIT`]).
fn until(rx: &Receiver<DriverEvent>, pred: impl Fn(&DriverEvent) -> bool) -> bool {
    let end = Instant::now() + WAIT;
    loop {
        match rx.recv_timeout(end.saturating_duration_since(Instant::now())) {
            Ok(e) if pred(&e) => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
}
