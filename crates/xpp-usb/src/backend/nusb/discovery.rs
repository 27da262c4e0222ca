//! Listing Astribanks and watching them come and go, with nusb: the IO half of
//! [`discovery`](crate::discovery), which stays pure (identities, [`Locator`](crate::discovery::Locator)s).

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use futures_core::Stream;
use nusb::MaybeFuture;

use super::map::{map_open_error, map_speed};
use crate::discovery::{Astribank, classify};
use crate::error::Error;

/// An [`Astribank`] from nusb's description of a device; `None` if it is not one.
pub fn from_nusb(d: &nusb::DeviceInfo) -> Option<Astribank> {
    let model = classify(d.vendor_id(), d.product_id())?;
    Some(Astribank {
        model,
        vendor_id: d.vendor_id(),
        product_id: d.product_id(),
        bcd_device: d.device_version(),
        bus: d.bus_id().parse().unwrap_or(0),
        address: d.device_address(),
        ports: d.port_chain().to_vec(),
        serial: d.serial_number().map(str::to_owned),
        speed: map_speed(d.speed()),
    })
}

/// Every Astribank-family device, sorted by bus path. A machine without a USB subsystem
/// gives [`Error::Unavailable`].
pub fn list() -> Result<Vec<Astribank>, Error> {
    Ok(list_nusb()?.into_iter().map(|(_, a)| a).collect())
}

/// [`list`] with nusb's own descriptions, for opening.
pub(super) fn list_nusb() -> Result<Vec<(nusb::DeviceInfo, Astribank)>, Error> {
    let devices = nusb::list_devices().wait().map_err(|e| Error::Unavailable(e.to_string()))?;
    let mut found: Vec<_> = devices.filter_map(|d| from_nusb(&d).map(|a| (d, a))).collect();
    found.sort_by(|a, b| (a.1.bus, &a.1.ports).cmp(&(b.1.bus, &b.1.ports)));
    Ok(found)
}

/// An Astribank appearing or disappearing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HotplugEvent {
    /// A device arrived (plugged in, or re-enumerated into a new stage).
    Arrived(Astribank),
    /// A device left (unplugged, or re-enumerating; its transport now reports
    /// `Disconnected`).
    Left(Astribank),
}

/// Astribank arrivals and departures, built on nusb's `watch_devices`.
///
/// Create it *before* listing, so nothing falls between the list and the first event;
/// [`Hotplug::new`] does both and returns the devices present now.
pub struct Hotplug {
    watch: nusb::hotplug::HotplugWatch,
    known: HashMap<nusb::DeviceId, Astribank>,
}

impl std::fmt::Debug for Hotplug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hotplug").field("known", &self.known.len()).finish_non_exhaustive()
    }
}

struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

impl Hotplug {
    /// Starts watching; returns the watcher and the Astribanks present now.
    pub fn new() -> Result<(Self, Vec<Astribank>), Error> {
        let watch = nusb::watch_devices().map_err(|e| map_open_error(&e, "hotplug watch"))?;
        let present = list_nusb()?;
        let known = present.iter().map(|(d, a)| (d.id(), a.clone())).collect();
        Ok((Self { watch, known }, present.into_iter().map(|(_, a)| a).collect()))
    }

    /// The next arrival or departure of an Astribank, waiting up to `timeout`.
    #[must_use = "the event is consumed"]
    pub fn next_event(&mut self, timeout: Duration) -> Option<HotplugEvent> {
        let deadline = Instant::now() + timeout;
        let waker = Waker::from(Arc::new(ThreadWaker(thread::current())));
        let mut cx = Context::from_waker(&waker);
        loop {
            match Pin::new(&mut self.watch).poll_next(&mut cx) {
                Poll::Ready(Some(nusb::hotplug::HotplugEvent::Connected(d))) => {
                    if let Some(a) = from_nusb(&d) {
                        self.known.insert(d.id(), a.clone());
                        return Some(HotplugEvent::Arrived(a));
                    }
                }
                Poll::Ready(Some(nusb::hotplug::HotplugEvent::Disconnected(id))) => {
                    if let Some(a) = self.known.remove(&id) {
                        return Some(HotplugEvent::Left(a));
                    }
                }
                Poll::Ready(None) => return None,
                Poll::Pending => {
                    let now = Instant::now();
                    if now >= deadline {
                        return None;
                    }
                    thread::park_timeout(deadline - now);
                }
            }
        }
    }
}
