//! `nusb.hotplug`: `xpp_usb::backend::nusb::Hotplug` (nusb's hotplug watch, which listens to the
//! events Debian's `systemd-udevd` re-broadcasts) sees a fresh cold device arrive when it is
//! attached, leave and arrive again across its USB firmware's renumeration, and leave when
//! its vhci port is detached.

use std::path::Path;
use std::time::{Duration, Instant};

use xpp_emu::DeviceConfig;
use xpp_emu::usbip_server::UsbIpServer;
use xpp_proto::firmware::{Fx2Load, HexFile};
use xpp_usb::backend::nusb::{Hotplug, HotplugEvent};
use xpp_usb::discovery::{Astribank, Locator};
use xpp_usb::{ControlSetup, Transport};

use crate::vhci::{self, Attacher};

/// Where init.sh finds the udev daemon (build-guest.sh puts it there unless `KVM_UDEV=0`).
pub(crate) const UDEVD: &str = "/lib/systemd/systemd-udevd";
/// How long one hotplug event may take (attach + enumeration + udevd under TCG).
const EVENT: Duration = Duration::from_secs(30);
/// One control transfer's timeout.
const XFER: Duration = Duration::from_secs(5);

type Check = Result<String, String>;

fn short(a: &Astribank) -> String {
    format!("{:04x}:{:04x} at {} ({:03}/{:03})", a.vendor_id, a.product_id, a.bus_path(), a.bus, a.address)
}

fn describe(e: &HotplugEvent) -> String {
    match e {
        HotplugEvent::Arrived(a) => format!("Arrived {}", short(a)),
        HotplugEvent::Left(a) => format!("Left {}", short(a)),
        other => format!("{other:?}"),
    }
}

/// Downloads `USB_FW.hex` from `firmware` into the cold device `t` with FX2 request 0xA0
/// (CPUCS hold, data, release); (requests, bytes).
pub(crate) fn load_usb_firmware(t: &mut dyn Transport, firmware: &Path) -> Result<(usize, usize), String> {
    let path = firmware.join("USB_FW.hex");
    let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let hex = HexFile::parse(&bytes).map_err(|e| e.to_string())?;
    let load = Fx2Load::new(&hex).map_err(|e| e.to_string())?;
    let mut sent = 0;
    for req in load.requests() {
        let setup = ControlSetup {
            request_type: req.request_type,
            request: req.request,
            value: req.value,
            index: req.index,
        };
        t.control_out(setup, req.data, XFER).map_err(|e| format!("0xA0 at {:#06x}: {e}", req.value))?;
        sent += req.data.len();
    }
    Ok((load.request_count(), sent))
}

/// Waits for the first event matching `want` (at most [`EVENT`]); the time it took. Events
/// for other devices are skipped and listed in the error.
fn expect(
    hp: &mut Hotplug,
    what: &str,
    want: impl Fn(&HotplugEvent) -> Option<Astribank>,
) -> Result<(Astribank, Duration), String> {
    let start = Instant::now();
    let mut other = Vec::new();
    loop {
        let left = EVENT.saturating_sub(start.elapsed());
        if left.is_zero() {
            return Err(format!("no {what} within {EVENT:?} (other events: {other:?})"));
        }
        if let Some(e) = hp.next_event(left) {
            match want(&e) {
                Some(a) => return Ok((a, start.elapsed())),
                None => other.push(describe(&e)),
            }
        }
    }
}

/// The check (see the module doc).
pub(crate) fn check(firmware: &Path) -> Check {
    let (mut hp, present) = Hotplug::new().map_err(|e| format!("hotplug watch: {e}"))?;
    let ports_before = vhci::used_ports()?;
    let mut cfg = DeviceConfig::default();
    cfg.label = *b"KVMHOTPL";
    let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let server = UsbIpServer::serve(cfg, loopback).map_err(|e| format!("USB/IP server: {e}"))?;
    let attacher = Attacher::spawn(vec![server.local_addr()]);

    // 1. Attach: a cold device arrives.
    let (cold, t_attach) = expect(&mut hp, "Arrived of the attached cold device", |e| match e {
        HotplugEvent::Arrived(a) if a.product_id == 0x1160 => Some(a.clone()),
        _ => None,
    })?;
    // 2. USB firmware: it leaves and arrives again, in its next stage, at the same place.
    let mut t = xpp_usb::NusbTransport::open(&Locator::BusAddress { bus: cold.bus, address: cold.address })
        .map_err(|e| format!("open {}: {e}", short(&cold)))?;
    let (requests, bytes) = load_usb_firmware(&mut t, firmware)?;
    let (left, t_left) = expect(&mut hp, "Left at the renumeration", |e| match e {
        HotplugEvent::Left(a) if (a.bus, a.address) == (cold.bus, cold.address) => Some(a.clone()),
        _ => None,
    })?;
    drop(t);
    let (back, t_back) = expect(&mut hp, "Arrived after the renumeration", |e| match e {
        HotplugEvent::Arrived(a) if a.product_id == 0x1161 && a.bus_path() == cold.bus_path() => {
            Some(a.clone())
        }
        _ => None,
    })?;
    // 3. Detach its vhci port: it leaves.
    drop(attacher);
    let ours: Vec<u32> = vhci::used_ports()?.into_iter().filter(|p| !ports_before.contains(p)).collect();
    let [port] = ours[..] else { return Err(format!("expected one new vhci port, found {ours:?}")) };
    vhci::detach(port)?;
    let (gone, t_gone) = expect(&mut hp, "Left at the detach", |e| match e {
        HotplugEvent::Left(a) if (a.bus, a.address) == (back.bus, back.address) => Some(a.clone()),
        _ => None,
    })?;
    drop(server);
    Ok(format!(
        "{} present at start; attach: Arrived {} after {}; USB_FW ({requests} requests, {bytes} bytes): Left {} after {}, \
         Arrived {} after {}; vhci port {port} detached: Left {} after {}",
        present.len(),
        short(&cold),
        ms(t_attach),
        short(&left),
        ms(t_left),
        short(&back),
        ms(t_back),
        short(&gone),
        ms(t_gone)
    ))
}

fn ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}
