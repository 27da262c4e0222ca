//! The one device an idle-device tool acts on (`xpp-tool`, `hexload`, `blink`): named by
//! `-D DEVICE` (bus path, `BBB/DDD`, `serial:LABEL`, `usbip:HOST:PORT/BUSID`), by
//! `--usbip ADDR [--busid ID]`, by `--emulator` (an in-process emulated device), or, with none
//! of these, the first Astribank on this machine's USB buses.

use xpp::Target;
use xpp::usb::Transport;
use xpp_emu::Emulator;

/// A device to open: its name in the output and how to open it.
pub enum Dev {
    /// A real or USB/IP device.
    Target {
        /// As the user named it (`-D`), or as found.
        name: String,
        /// How to open it.
        target: Target,
    },
    /// The in-process emulated device.
    Emulated(Emulator),
}

impl Dev {
    /// Picks the device from the options; an error is a usage error (nothing was sent).
    pub fn select(
        device: Option<&str>,
        usbip: Option<&str>,
        busid: &str,
        emulator: Option<Emulator>,
    ) -> Result<Self, String> {
        if let Some(emu) = emulator {
            return Ok(Self::Emulated(emu));
        }
        if let Some(d) = device {
            let target = d.parse::<Target>().map_err(|e| format!("{d}: {e}"))?;
            return Ok(Self::Target { name: d.to_owned(), target });
        }
        if let Some(addr) = usbip {
            let target = Target::UsbIp { server: addr.to_owned(), busid: busid.to_owned() };
            return Ok(Self::Target { name: target.to_string(), target });
        }
        let list = xpp::usb::backend::nusb::list().map_err(|e| format!("listing USB devices: {e}"))?;
        let first = list.first().ok_or("no Astribank on this machine's USB buses (give -D DEVICE)")?;
        let target = first.bus_path().parse::<Target>().map_err(|e| e.to_string())?;
        Ok(Self::Target { name: first.dev_path(), target })
    }

    /// Its name in the output.
    pub fn name(&self) -> String {
        match self {
            Self::Target { name, .. } => name.clone(),
            Self::Emulated(_) => "emulator:0".to_owned(),
        }
    }

    /// Opens it once.
    pub fn open(&self) -> Result<Box<dyn Transport>, String> {
        match self {
            Self::Target { target, .. } => target.open().map_err(|e| e.to_string()),
            Self::Emulated(e) => e
                .transport(e.with_device(|d| d.active_port()))
                .map(|t| Box::new(t) as Box<dyn Transport>)
                .ok_or_else(|| "the emulated device is not enumerated".to_owned()),
        }
    }

    /// An opener for bring-up, which re-opens the device after each renumeration: the first
    /// call opens it (an error then is returned at once), later calls look for it again.
    pub fn opener(&self) -> Result<impl FnMut() -> Option<Box<dyn Transport>> + use<>, String> {
        let first = self.open()?;
        let again: Box<dyn FnMut() -> Option<Box<dyn Transport>>> = match self {
            Self::Target { target, .. } => {
                let pinned = target.pinned(first.info());
                Box::new(move || pinned.open().ok())
            }
            Self::Emulated(e) => {
                let e = e.clone();
                Box::new(move || {
                    e.transport(e.with_device(|d| d.active_port())).map(|t| Box::new(t) as Box<dyn Transport>)
                })
            }
        };
        let mut first = Some(first);
        let mut again = again;
        Ok(move || first.take().or_else(&mut again))
    }
}
