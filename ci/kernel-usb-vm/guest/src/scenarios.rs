//! The checks, run once per backend against fresh emulated devices.
//!
//! Device A: an Astribank-modular with TwinStar, powered up cold (`e4e4:1160`), for the
//! control transfers, the USB firmware download and its renumeration, and the jump.
//! Device B: an Astribank-modular in the running stage (`e4e4:1162`), for the data interface.

use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::time::{Duration, Instant};

use xpp_emu::config::Stage as EmuStage;
use xpp_emu::usbip_server::UsbIpServer;
use xpp_emu::{DeviceConfig, Emulator};
use xpp_proto::mgmt::{Reply, Request};
use xpp_usb::discovery::{Family, Stage, XORCOM_VENDOR_ID};
use xpp_usb::{ControlSetup, TransferError, Transport, ep};

use crate::backend::{Backend, Found};
use crate::vhci::{self, Attacher};
use crate::{call, cold, hotplug, tools};

/// How long a device may take to appear (attach + enumeration under TCG emulation).
pub(crate) const APPEAR: Duration = Duration::from_secs(30);
/// One transfer's timeout.
const XFER: Duration = Duration::from_secs(5);
/// A check still running after this is reported as hung and ends the program.
const HUNG: Duration = Duration::from_secs(120);
/// IN transfers kept queued on the data endpoint.
const QUEUED: usize = 8;

const COLD: u16 = 0x1160;
pub(crate) const USB_FW: u16 = 0x1161;
const RUNNING: u16 = 0x1162;

pub(crate) type Check = Result<String, String>;

pub(crate) struct Ctx<'a> {
    pub(crate) backend: &'a dyn Backend,
    firmware: &'a Path,
    attacher: Attacher,
    failed: usize,
    /// Device A's transport, carried from check to check (cold, then 11x1).
    a: Option<Box<dyn Transport>>,
}

impl Ctx<'_> {
    pub(crate) fn check(&mut self, name: &str, f: impl FnOnce(&mut Self) -> Check) {
        self.check_within(name, HUNG, f);
    }

    /// [`Ctx::check`] with its own hang bound.
    pub(crate) fn check_within(&mut self, name: &str, hung: Duration, f: impl FnOnce(&mut Self) -> Check) {
        let started = Instant::now();
        // A check that blocks forever still gets its FAIL line (and the guest its end marker).
        let (done, watched) = std::sync::mpsc::channel::<()>();
        let full = format!("{}.{name}", self.backend.name());
        let log = self.attacher.log_handle();
        let watchdog = std::thread::spawn(move || {
            if watched.recv_timeout(hung) == Err(std::sync::mpsc::RecvTimeoutError::Timeout) {
                println!("KVM-TEST {full} FAIL hung: no result after {hung:?}");
                for l in log.lock().unwrap_or_else(std::sync::PoisonError::into_inner).iter() {
                    println!("KVM-LOG {l}");
                }
                std::process::exit(1);
            }
        });
        let r = std::panic::catch_unwind(AssertUnwindSafe(|| f(self)))
            .unwrap_or_else(|p| Err(format!("panicked: {}", panic_text(&*p))));
        let _ = done.send(());
        let _ = watchdog.join();
        let ms = started.elapsed().as_millis();
        match r {
            Ok(detail) => println!("KVM-TEST {}.{name} PASS {detail} ({ms} ms)", self.backend.name()),
            Err(detail) => {
                self.failed += 1;
                println!("KVM-TEST {}.{name} FAIL {detail} ({ms} ms)", self.backend.name());
                for l in self.attacher.log() {
                    println!("KVM-LOG {l}");
                }
            }
        }
    }

    /// Waits until the backend lists a device with `product_id` (and `pred`).
    pub(crate) fn wait_for(&self, product_id: u16, pred: impl Fn(&Found) -> bool) -> Result<Found, String> {
        let end = Instant::now() + APPEAR;
        loop {
            let last = match self.backend.list() {
                Ok(list) => {
                    if let Some(f) = list.iter().find(|f| f.product_id == product_id && pred(f)) {
                        return Ok(f.clone());
                    }
                    format!("listed {:?}", list.iter().map(short).collect::<Vec<_>>())
                }
                Err(e) => e,
            };
            if Instant::now() > end {
                return Err(format!("no e4e4:{product_id:04x} after {APPEAR:?}: {last}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "?".into())
}

pub(crate) fn short(f: &Found) -> String {
    format!(
        "{:04x}:{:04x} {}/{} at {} ({:03}/{:03})",
        f.vendor_id,
        f.product_id,
        f.model.family.description(),
        f.model.stage.name(),
        f.bus_path,
        f.bus,
        f.address
    )
}

pub(crate) fn ensure(cond: bool, msg: impl FnOnce() -> String) -> Result<(), String> {
    if cond { Ok(()) } else { Err(msg()) }
}

/// Waits until `t` reports the device gone (a GET_STATUS fails with `Disconnected`).
fn wait_gone(t: &mut dyn Transport) -> Result<Duration, String> {
    let start = Instant::now();
    let get_status = ControlSetup { request_type: 0x80, request: 0, value: 0, index: 0 };
    loop {
        let mut buf = [0u8; 2];
        match t.control_in(get_status, &mut buf, Duration::from_secs(1)) {
            Err(TransferError::Disconnected) => return Ok(start.elapsed()),
            r if start.elapsed() > APPEAR => return Err(format!("old device still answers: {r:?}")),
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// One MPP request and its reply on interface 1.
fn mpp(t: &mut dyn Transport, seq: u16, req: Request<'_>) -> Result<Vec<u8>, String> {
    let mut buf = [0u8; 512];
    let n = req.emit(seq, &mut buf).map_err(|e| e.to_string())?;
    let c = t.transfer_blocking(ep::MGMT_OUT, buf[..n].to_vec(), XFER);
    ensure(c.status.is_ok() && c.actual_len == n, || format!("MPP OUT: {c:?}"))?;
    let c = t.transfer_blocking(ep::MGMT_IN, vec![0; 512], XFER);
    c.status.map_err(|e| format!("MPP IN: {e}"))?;
    Ok(c.buffer)
}

/// STATUS_GET on interface 1 while `QUEUED` IN transfers wait on the data endpoint; then the
/// queued ones are cancelled and every one comes back.
fn status_get_with_queue(t: &mut dyn Transport) -> Check {
    for _ in 0..QUEUED {
        t.submit(ep::DATA_IN, vec![0; 512]).map_err(|e| format!("queue IN: {e}"))?;
    }
    ensure(t.pending(ep::DATA_IN) == QUEUED, || format!("pending {}", t.pending(ep::DATA_IN)))?;
    let start = Instant::now();
    let bytes = mpp(t, 0x21, Request::StatusGet)?;
    let rtt = start.elapsed();
    let (seq, reply) = Reply::parse(&bytes).map_err(|e| format!("reply {bytes:02x?}: {e}"))?;
    ensure(seq == 0x21 && matches!(reply, Reply::StatusGetReply(_)), || {
        format!("reply {reply:?} seq {seq}")
    })?;
    t.cancel_all(ep::DATA_IN);
    let mut back = 0;
    while let Some(c) = t.wait_next_complete(ep::DATA_IN, XFER) {
        ensure(c.status == Err(TransferError::Cancelled), || format!("queued IN came back {c:?}"))?;
        back += 1;
    }
    ensure(back == QUEUED, || format!("{back} of {QUEUED} queued IN transfers came back"))?;
    Ok(format!("STATUS_GET_REPLY in {rtt:?} with {QUEUED} IN queued on 0x86, all {back} cancelled"))
}

fn configs() -> (DeviceConfig, DeviceConfig) {
    let mut a = DeviceConfig::default().with_twinstar(true);
    a.label = *b"KVMTWIN1";
    // The astribank_tool -w checks arm the watchdog of this device, which has no data stream
    // to feed it in the USB-firmware stage: 30 s (TWS-10 allows up to 60 s) instead of 2 s
    // keeps a slow guest from seeing an expiry jump between `-w 1` and `-w 0`.
    let mut core = a.core.clone();
    core.watchdog_timeout = xpp_proto::Duration::from_secs(30);
    let a = a.with_core(core);
    let mut b = DeviceConfig::default().with_start_stage(EmuStage::Running);
    b.label = *b"KVMRUN01";
    (a, b)
}

/// Runs every check with `backend`; the number that failed. `tools`: also the checks with
/// independent clients (dahdi's `astribank_tool`), which do not depend on the backend.
pub(crate) fn run(backend: &dyn Backend, firmware: &Path, tools: bool) -> usize {
    let name = backend.name();
    let (cfg_a, cfg_b) = configs();
    // The emulator's USB/IP server, on the guest's loopback (a free port each).
    let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    // Device B runs on the paced real-time clock (call.rs says why); its runner lives as
    // long as its server.
    let (emu_b, runner_b) = Emulator::paced(cfg_b, call::PACE_BACKLOG);
    let servers = UsbIpServer::serve(cfg_a, loopback)
        .and_then(|a| Ok((a, UsbIpServer::bind(emu_b.clone(), loopback)?)));
    let (server_a, server_b) = match servers {
        Ok(s) => s,
        Err(e) => {
            println!("KVM-TEST {name}.setup FAIL USB/IP server: {e}");
            return 1;
        }
    };
    println!(
        "KVM-LOG {name}: USB/IP servers on {} (TwinStar, cold) and {} (running, FXS + FXO, paced clock)",
        server_a.local_addr(),
        server_b.local_addr()
    );
    let attacher = Attacher::spawn(vec![server_a.local_addr(), server_b.local_addr()]);
    let mut cx = Ctx { backend, firmware, attacher, failed: 0, a: None };

    cx.check("enumerate", |cx| {
        let cold = cx.wait_for(COLD, |_| true)?;
        let running = cx.wait_for(RUNNING, |_| true)?;
        for (f, stage) in [(&cold, Stage::Cold), (&running, Stage::Running)] {
            ensure(
                f.vendor_id == XORCOM_VENDOR_ID
                    && f.model.family == Family::Modular
                    && f.model.stage == stage,
                || format!("wrong classification: {}", short(f)),
            )?;
        }
        Ok(format!("{}; {}", short(&cold), short(&running)))
    });

    cx.check("control-fx2-cold", |cx| {
        let f = cx.wait_for(COLD, |_| true)?;
        let mut t = cx.backend.open(&f)?;
        let info = t.info().clone();
        ensure(info.interface(0).is_some() && info.interface(1).is_none(), || {
            format!("cold interfaces {info:?}")
        })?;
        // A standard request through usbfs, answered by the device (not the kernel's cache).
        let mut d = [0u8; 18];
        let n = t
            .control_in(
                ControlSetup { request_type: 0x80, request: 6, value: 0x0100, index: 0 },
                &mut d,
                XFER,
            )
            .map_err(|e| format!("GET_DESCRIPTOR: {e}"))?;
        ensure(n == 18 && d[8..12] == [0xE4, 0xE4, 0x60, 0x11], || format!("device descriptor {d:02x?}"))?;
        // FX2 vendor request 0xA0: write into RAM and read it back.
        let data: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(7) ^ 0x5A).collect();
        let w = ControlSetup { request_type: 0x40, request: 0xA0, value: 0x1000, index: 0 };
        let n = t.control_out(w, &data, XFER).map_err(|e| format!("0xA0 write: {e}"))?;
        ensure(n == data.len(), || format!("0xA0 wrote {n}"))?;
        let mut back = vec![0u8; data.len()];
        let r = ControlSetup { request_type: 0xC0, request: 0xA0, value: 0x1000, index: 0 };
        let n = t.control_in(r, &mut back, XFER).map_err(|e| format!("0xA0 read: {e}"))?;
        ensure(n == data.len() && back == data, || format!("0xA0 read back {n} bytes {back:02x?}"))?;
        cx.a = Some(t);
        Ok(format!("GET_DESCRIPTOR + FX2 0xA0 write/read of {} bytes on {}", data.len(), f.bus_path))
    });

    cx.check("firmware-renumeration", |cx| {
        let old = cx.wait_for(COLD, |_| true)?;
        let mut t = match cx.a.take() {
            Some(t) => t,
            None => cx.backend.open(&old)?,
        };
        let start = Instant::now();
        let (requests, sent) = hotplug::load_usb_firmware(t.as_mut(), cx.firmware)?;
        let download = start.elapsed();
        let gone = wait_gone(t.as_mut())?;
        drop(t);
        let new = cx.wait_for(USB_FW, |_| true)?;
        let appeared = start.elapsed();
        ensure(new.model.stage == Stage::UsbFirmware, || format!("new device {}", short(&new)))?;
        ensure(!cx.backend.list()?.iter().any(|f| f.product_id == COLD), || "cold device still listed".into())?;
        Ok(format!(
            "{requests} requests ({sent} bytes) in {download:?}; old handle Disconnected after {gone:?}; {} -> {} after {appeared:?}",
            short(&old),
            short(&new)
        ))
    });

    cx.check("interfaces-11x1", |cx| {
        let f = cx.wait_for(USB_FW, |_| true)?;
        let t = cx.backend.open(&f)?;
        let info = t.info().clone();
        for a in [ep::DATA_OUT, ep::DATA_IN, ep::MGMT_OUT, ep::MGMT_IN] {
            ensure(info.endpoint(a).is_some_and(|e| e.max_packet_size == 512), || {
                format!("endpoint {a:#04x} in {info:?}")
            })?;
        }
        ensure(info.serial.as_deref() == Some("KVMTWIN1"), || format!("serial {:?}", info.serial))?;
        cx.a = Some(t);
        Ok(format!("interfaces 0 and 1 claimed, endpoints 02 86 04 88 (512), serial {:?}", info.serial))
    });

    cx.check("mpp-queued-in", |cx| {
        let mut t = match cx.a.take() {
            Some(t) => t,
            None => cx.backend.open(&cx.wait_for(USB_FW, |_| true)?)?,
        };
        let r = status_get_with_queue(t.as_mut());
        cx.a = Some(t);
        r
    });

    cx.check("twinstar-jump", |cx| {
        let old = cx.wait_for(USB_FW, |_| true)?;
        let mut t = match cx.a.take() {
            Some(t) => t,
            None => cx.backend.open(&old)?,
        };
        let start = Instant::now();
        // TWS_PORT_SET is never answered (TWS-8): OUT only.
        let mut buf = [0u8; 16];
        let n = Request::TwsPortSet { port: 1 }.emit(0x22, &mut buf).map_err(|e| e.to_string())?;
        let c = t.transfer_blocking(ep::MGMT_OUT, buf[..n].to_vec(), XFER);
        ensure(c.status.is_ok(), || format!("TWS_PORT_SET: {c:?}"))?;
        let gone = wait_gone(t.as_mut())?;
        // Every later call fails too.
        let after = t.submit(ep::MGMT_OUT, vec![5, 0, 1, 0, 0x11]);
        ensure(after == Err(TransferError::Disconnected), || format!("submit after unplug: {after:?}"))?;
        drop(t);
        let new = cx.wait_for(USB_FW, |f| f.bus_path != old.bus_path)?;
        let appeared = start.elapsed();
        let list = cx.backend.list()?;
        ensure(!list.iter().any(|f| f.bus_path == old.bus_path), || {
            format!("old port still listed: {list:?}")
        })?;
        let mut t = cx.backend.open(&new)?;
        let bytes = mpp(t.as_mut(), 0x23, Request::StatusGet)?;
        ensure(matches!(Reply::parse(&bytes), Ok((0x23, Reply::StatusGetReply(_)))), || {
            format!("{bytes:02x?}")
        })?;
        Ok(format!(
            "unplug of {} seen after {gone:?}; back as {} after {appeared:?}; MPP answers there",
            old.bus_path,
            short(&new)
        ))
    });

    cx.check("xpp-ab-request-running", |cx| {
        let f = cx.wait_for(RUNNING, |_| true)?;
        let mut t = cx.backend.open(&f)?;
        for _ in 0..QUEUED {
            t.submit(ep::DATA_IN, vec![0; 512]).map_err(|e| format!("queue IN: {e}"))?;
        }
        // AB_REQUEST (XPP opcode 0x07) to unit 0, rev 0x1E, twice.
        let start = Instant::now();
        for _ in 0..2 {
            let c = t.transfer_blocking(ep::DATA_OUT, vec![0x06, 0x00, 0x07, 0x00, 0x1E, 0x00], XFER);
            ensure(c.status.is_ok() && c.actual_len == 6, || format!("AB_REQUEST OUT: {c:?}"))?;
        }
        let mut descs = Vec::new();
        for _ in 0..2 {
            let c = t.wait_next_complete(ep::DATA_IN, XFER).ok_or("no AB_DESCRIPTION")?;
            c.status.map_err(|e| format!("IN: {e}"))?;
            ensure(c.buffer.len() >= 8 && c.buffer[2] == 0x08, || format!("not AB_DESCRIPTION: {:02x?}", c.buffer))?;
            descs.push(c.buffer.len());
        }
        let rtt = start.elapsed();
        let still = t.pending(ep::DATA_IN);
        ensure(still == QUEUED - 2, || format!("{still} IN still queued"))?;
        t.cancel_all(ep::DATA_IN);
        let mut back = 0;
        while let Some(c) = t.wait_next_complete(ep::DATA_IN, XFER) {
            ensure(c.status == Err(TransferError::Cancelled), || format!("queued IN came back {c:?}"))?;
            back += 1;
        }
        ensure(back == still, || format!("{back} of {still} came back"))?;
        let mpp = status_get_with_queue(t.as_mut())?;
        Ok(format!(
            "2 AB_DESCRIPTION ({descs:?} bytes) in {rtt:?} with {QUEUED} IN queued, {back} cancelled; interface 1: {mpp}"
        ))
    });

    cx.check("in-rate", |cx| {
        let f = cx.wait_for(RUNNING, |_| true)?;
        call::in_rate(cx.backend, &f, &emu_b, cx.backend.in_rate_floor())
    });

    cx.check("driver-call", |cx| {
        let f = cx.wait_for(RUNNING, |_| true)?;
        call::driver_call(cx.backend, &f, &emu_b, cx.firmware)
    });

    cx.check_within("driver-cold", cold::HUNG, |cx| cold::driver_cold(cx.backend, cx.firmware));

    if name == "nusb" && Path::new(hotplug::UDEVD).exists() {
        cx.check("hotplug", |cx| hotplug::check(cx.firmware));
    } else if name == "nusb" {
        println!("KVM-LOG {} not in the guest (KVM_UDEV=0): nusb.hotplug not run", hotplug::UDEVD);
    }

    if tools && Path::new(tools::ASTRIBANK_TOOL).exists() {
        cx.check("astribank_tool-Q", |cx| {
            let f = cx.wait_for(RUNNING, |_| true)?;
            let (status, out, err) = tools::astribank_tool(&f, &["-Q"])?;
            for l in out.lines().chain(err.lines()) {
                println!("KVM-LOG astribank_tool: {l}");
            }
            let has = |prefix: &str, value: &str| {
                out.lines().any(|l| {
                    l.starts_with(prefix)
                        && l[prefix.len()..].trim_start_matches([' ', ':']).starts_with(value)
                })
            };
            ensure(status.success(), || format!("exit status {status}"))?;
            let wanted = [
                ("EEPROM: Vendor", "0xE4E4"),
                ("EEPROM: Product", "0x1160"),
                ("EEPROM: Label", "'KVMRUN01'"),
                ("Astribank: EEPROM", "LARGE"),
                ("Astribank: FPGA status", "Loaded"),
                ("Capabilities: FXS ports", "8"),
                ("Capabilities: FXO ports", "8"),
                ("Capabilities: TwinStar", "No"),
                ("CARD 0", "type=1.0 PIC"),
                ("CARD 1", "type=2.0 PIC"),
            ];
            for (prefix, value) in wanted {
                ensure(has(prefix, value), || format!("no line {prefix:?} with {value:?}"))?;
            }
            ensure(!err.contains("ERR"), || "errors on stderr".into())?;
            Ok(format!(
                "Debian's astribank_tool -D {:03}/{:03} -Q: exit 0, {} lines as expected",
                f.bus,
                f.address,
                wanted.len()
            ))
        });
    } else if tools {
        println!(
            "KVM-LOG {} not in the guest (KVM_DAHDI=0): independent-client checks not run",
            tools::ASTRIBANK_TOOL
        );
    }

    if tools && Path::new(tools::ASTRIBANK_TOOL).exists() {
        tools::checks(&mut cx);
    }

    let failed = cx.failed;
    cx.a = None;
    drop(cx.attacher);
    println!("KVM-LOG {name}: vhci ports in use before detach: {:?}", vhci::used_ports());
    if let Err(e) = vhci::detach_all(Duration::from_secs(10)) {
        println!("KVM-TEST {name}.detach FAIL {e}");
        return failed + 1;
    }
    drop((server_a, server_b, runner_b));
    failed
}
