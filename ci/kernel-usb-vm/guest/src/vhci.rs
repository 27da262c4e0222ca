//! Attaching USB/IP devices to the guest kernel's `vhci_hcd` without Debian's `usbip` tool:
//! `OP_REQ_IMPORT` over TCP, then the connected socket's fd written to the vhci sysfs
//! `attach` file (the kernel takes its own reference to the socket).
//!
//! [`Attacher`] keeps every device the servers export attached: a device that leaves (the
//! server closes its connection at a renumeration or a TwinStar jump, and the kernel sees an
//! unplug of its vhci port) is imported and attached again as soon as it is exported again,
//! on the same vhci port: each exported USB port keeps its own "cable" to one vhci port, so a
//! TwinStar jump shows up on another bus path, as with two host ports.

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use xpp_usb::usbip::codec::{OpReply, OpRequest, UsbDevice};

/// The vhci_hcd platform device's sysfs directory.
pub(crate) const VHCI: &str = "/sys/devices/platform/vhci_hcd.0";

/// `VDEV_ST_NULL` in the vhci `status` file: a free port.
const VDEV_ST_NULL: u32 = 4;

/// One port line of the vhci `status` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PortStatus {
    /// `hs` or `ss`.
    pub(crate) hub: String,
    /// Port number as the `attach` file wants it.
    pub(crate) port: u32,
    /// Status (`VDEV_ST_*`).
    pub(crate) status: u32,
}

/// Parses the vhci `status` file ("hub port sta spd dev sockfd local_busid" lines).
pub(crate) fn parse_status(text: &str) -> Vec<PortStatus> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let hub = f.next()?;
            if hub != "hs" && hub != "ss" {
                return None;
            }
            let port = f.next()?.parse().ok()?;
            let status = f.next()?.parse().ok()?;
            Some(PortStatus { hub: hub.to_owned(), port, status })
        })
        .collect()
}

fn status() -> Result<Vec<PortStatus>, String> {
    std::fs::read_to_string(format!("{VHCI}/status"))
        .map(|t| parse_status(&t))
        .map_err(|e| format!("{VHCI}/status: {e}"))
}

/// The high-speed vhci ports in use.
pub(crate) fn used_ports() -> Result<Vec<u32>, String> {
    Ok(status()?.into_iter().filter(|p| p.hub == "hs" && p.status != VDEV_ST_NULL).map(|p| p.port).collect())
}

/// The line written to the `attach` file.
pub(crate) fn attach_line(port: u32, sockfd: i32, device: &UsbDevice) -> String {
    format!("{port} {sockfd} {} {}", device.devid(), device.speed)
}

fn exchange(addr: SocketAddr, req: &OpRequest) -> Result<(TcpStream, OpReply), String> {
    let mut s =
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|e| format!("{addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5))).map_err(|e| e.to_string())?;
    s.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    req.emit(&mut out).map_err(|e| e.to_string())?;
    s.write_all(&out).map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    loop {
        match OpReply::parse(&buf) {
            Ok((reply, _)) => return Ok((s, reply)),
            Err(e) => {
                let needed = e.needed().ok_or_else(|| e.to_string())?;
                let start = buf.len();
                buf.resize(needed, 0);
                s.read_exact(&mut buf[start..]).map_err(|e| format!("{addr}: reply: {e}"))?;
            }
        }
    }
}

/// The busids `addr` exports now.
pub(crate) fn devlist(addr: SocketAddr) -> Result<Vec<String>, String> {
    match exchange(addr, &OpRequest::DevList)?.1 {
        OpReply::DevList { status: 0, devices } => Ok(devices.into_iter().map(|d| d.device.busid).collect()),
        other => Err(format!("{addr}: devlist: {other:?}")),
    }
}

/// Imports `busid` from `addr` and attaches it to vhci port `port` (an error while that port
/// is not free yet), or with `None` to the first free high-speed port not in `reserved`; the
/// port used.
pub(crate) fn attach(
    addr: SocketAddr,
    busid: &str,
    port: Option<u32>,
    reserved: &[u32],
) -> Result<u32, String> {
    let free: Vec<u32> =
        status()?.into_iter().filter(|p| p.hub == "hs" && p.status == VDEV_ST_NULL).map(|p| p.port).collect();
    let port = match port {
        Some(p) if free.contains(&p) => p,
        Some(p) => return Err(format!("vhci port {p} not free yet")),
        None => free.iter().copied().find(|p| !reserved.contains(p)).ok_or("no free high-speed vhci port")?,
    };
    let (s, reply) = exchange(addr, &OpRequest::Import { busid: busid.to_owned() })?;
    let OpReply::Import { status: 0, device: Some(device) } = reply else {
        return Err(format!("{addr}: import {busid}: {reply:?}"));
    };
    s.set_read_timeout(None).map_err(|e| e.to_string())?;
    let line = attach_line(port, s.as_raw_fd(), &device);
    std::fs::write(format!("{VHCI}/attach"), &line).map_err(|e| format!("attach {line:?}: {e}"))?;
    // The kernel holds its own reference to the socket; ours can go.
    Ok(port)
}

/// Detaches vhci port `port`.
pub(crate) fn detach(port: u32) -> Result<(), String> {
    std::fs::write(format!("{VHCI}/detach"), port.to_string()).map_err(|e| format!("detach {port}: {e}"))
}

/// Detaches every used port and waits until they are free.
pub(crate) fn detach_all(timeout: Duration) -> Result<(), String> {
    for p in used_ports()? {
        let _ = detach(p);
    }
    let end = Instant::now() + timeout;
    while !used_ports()?.is_empty() {
        if Instant::now() > end {
            return Err(format!("vhci ports still in use: {:?}", used_ports()?));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // The port is free before the hub driver has removed the device: wait for that too.
    while !usb_devices().is_empty() {
        if Instant::now() > end {
            return Err(format!("USB devices still present after detach: {:?}", usb_devices()));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// The USB devices (not root hubs, not interfaces) in sysfs: `1-1`, `1-2.3`...
pub(crate) fn usb_devices() -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/sys/bus/usb/devices") else { return Vec::new() };
    dir.filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.contains('-') && !n.contains(':'))
        .collect()
}

/// Keeps every exported device of some servers attached (see the module doc).
pub(crate) struct Attacher {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Attacher {
    /// Starts watching `servers` (every 50 ms).
    pub(crate) fn spawn(servers: Vec<SocketAddr>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(Vec::new()));
        let (s, l) = (stop.clone(), log.clone());
        let handle = std::thread::Builder::new()
            .name("vhci-attacher".into())
            .spawn(move || {
                let mut failed = HashSet::new();
                let mut cables: HashMap<(SocketAddr, String), u32> = HashMap::new();
                while !s.load(Ordering::Relaxed) {
                    for &addr in &servers {
                        let Ok(busids) = devlist(addr) else { continue };
                        let used = used_ports().unwrap_or_default();
                        for b in busids {
                            let key = (addr, b.clone());
                            // Still attached (servers list imported devices too).
                            if cables.get(&key).is_some_and(|p| used.contains(p)) {
                                continue;
                            }
                            let reserved: Vec<u32> = cables.values().copied().collect();
                            let entry = match attach(addr, &b, cables.get(&key).copied(), &reserved) {
                                Ok(port) => {
                                    cables.insert(key, port);
                                    format!("attached {addr} {b} on vhci port {port}")
                                }
                                Err(e) if failed.insert(e.clone()) => format!("attach failed: {e}"),
                                Err(_) => continue,
                            };
                            l.lock().unwrap_or_else(PoisonError::into_inner).push(entry);
                        }
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            })
            .ok();
        Self { stop, handle, log }
    }

    /// What it did so far (for failure details).
    pub(crate) fn log(&self) -> Vec<String> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The log itself, for a thread that may outlive a borrow of the attacher.
    pub(crate) fn log_handle(&self) -> Arc<Mutex<Vec<String>>> {
        self.log.clone()
    }
}

impl Drop for Attacher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_file_of_linux_6_1() {
        let text = "hub port sta spd dev      sockfd local_busid\n\
                    hs  0000 006 003 00010002 000003 1-1\n\
                    hs  0001 004 000 00000000 000000 0-0\n\
                    ss  0008 004 000 00000000 000000 0-0\n";
        let s = parse_status(text);
        assert_eq!(s.len(), 3);
        assert_eq!(s[0], PortStatus { hub: "hs".into(), port: 0, status: 6 });
        assert_eq!((s[2].hub.as_str(), s[2].port, s[2].status), ("ss", 8, 4));
    }

    #[test]
    fn attach_line_is_port_fd_devid_speed() {
        let d = UsbDevice { busnum: 1, devnum: 2, speed: 3, ..UsbDevice::default() };
        assert_eq!(attach_line(0, 5, &d), "0 5 65538 3");
    }
}
