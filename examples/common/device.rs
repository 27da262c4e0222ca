//! The one device a bench program acts on (`xpp-tool`, `hexload`, `blink`, `lsdahdi`,
//! `span-monitor`): named by `-D DEVICE` (bus path, `BBB/DDD`, `serial:LABEL`,
//! `usbip:HOST:PORT/BUSID`), by `--usbip ADDR [--busid ID]`, by `--emulator` (an in-process
//! emulated device), or, with none of these, the first Astribank on this machine's USB buses.

use xpp::Target;
use xpp::usb::Transport;
use xpp_emu::Emulator;

/// The device options every bench program takes (`#[command(flatten)]`).
#[derive(clap::Args, Debug, Clone)]
pub struct DeviceArgs {
    /// The device: bus path, BBB/DDD, serial:LABEL or usbip:HOST:PORT/BUSID.
    #[arg(short = 'D', value_name = "DEVICE", conflicts_with_all = ["usbip", "emulator"])]
    pub device: Option<String>,
    /// The device with bus id --busid that this USB/IP server exports (host:port).
    #[arg(long, value_name = "ADDR", conflicts_with = "emulator")]
    pub usbip: Option<String>,
    /// USB/IP bus id of the device.
    #[arg(long, value_name = "ID", default_value = "1-1", requires = "usbip")]
    pub busid: String,
    /// An in-process emulated Astribank.
    #[arg(long)]
    pub emulator: bool,
}

impl DeviceArgs {
    /// The device the options name; `emulator` makes `--emulator`'s device. An error is a
    /// usage error (nothing was sent).
    pub fn select(&self, emulator: impl FnOnce() -> Emulator) -> Result<Dev, String> {
        Dev::select(self.device.as_deref(), self.usbip.as_deref(), &self.busid, self.emulator.then(emulator))
    }
}

/// A module kind for `--module` (the emulated device's slots, in order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ModuleArg {
    /// 8 FXS ports.
    Fxs,
    /// 8 FXO ports.
    Fxo,
    /// One E1 PRI span.
    Pri,
    /// 4 BRI ports.
    Bri,
}

/// The slots `--module` fills in order; FXS + FXO (the emulator's default) without any. An
/// error when more than 4 are given.
pub fn slots(modules: &[ModuleArg]) -> Result<[Option<xpp_emu::config::ModuleConfig>; 4], String> {
    use xpp_emu::config::ModuleConfig;
    if modules.is_empty() {
        return Ok([Some(ModuleConfig::FXS), Some(ModuleConfig::FXO), None, None]);
    }
    if modules.len() > 4 {
        return Err("at most 4 --module (slots 0..3)".into());
    }
    let mut slots = [None; 4];
    for (slot, m) in slots.iter_mut().zip(modules) {
        *slot = Some(match m {
            ModuleArg::Fxs => ModuleConfig::FXS,
            ModuleArg::Fxo => ModuleConfig::FXO,
            ModuleArg::Pri => ModuleConfig::PRI_E1,
            ModuleArg::Bri => ModuleConfig::BRI,
        });
    }
    Ok(slots)
}

/// A channel's hook state as `lsdahdi` and `span-monitor` print it: what the line reports
/// (`-` before its first report).
pub fn hook_word(rxsig: xpp::span::RxSig) -> &'static str {
    use xpp::span::RxSig;
    match rxsig {
        RxSig::OnHook => "onhook",
        RxSig::OffHook => "offhook",
        RxSig::Ring => "ring",
        RxSig::Start => "start",
        _ => "-",
    }
}

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

/// A driver with one device attached, for the programs that show a running driver's spans
/// (`lsdahdi`, `span-monitor`). Keeps the emulator's clock thread alive as long as it lives.
pub struct Running {
    /// The driver.
    pub driver: xpp::Driver,
    /// The device.
    pub device: xpp::DeviceId,
    /// The emulator's real-time runner, when this program started one.
    _runner: Option<xpp_emu::RealTimeRunner>,
}

impl Running {
    /// Brings `dev` up (firmware from `firmware`, else the usual folders, for a device that
    /// still lacks it) and attaches it to a new driver. An emulated device runs on its own
    /// clock when it has a virtual one (tests), else the driver runs on the wall clock.
    pub fn start(dev: &Dev, firmware: Option<&std::path::Path>) -> Result<Self, String> {
        use xpp::{BringUpConfig, Driver, DriverOptions, RunOptions};
        let fw = firmware_set(firmware)?;
        let clock = clock_for(dev);
        let driver = Driver::new(clock, DriverOptions::default());
        let device = driver
            .open(dev.opener()?, BringUpConfig::default(), fw, RunOptions::default())
            .map_err(|e| format!("bring-up failed: {e}"))?;
        Ok(Self { driver, device, _runner: None })
    }

    /// The driver a program with `args` runs: with `--emulator` the test's `emulator` if
    /// given, else a new real-time emulated device with `cfg`; otherwise the device the
    /// options name. Also the device's name. On failure the exit status (2 for bad options,
    /// 1 when the device could not be brought up) and why.
    pub fn from_args(
        args: &DeviceArgs,
        emulator: Option<&Emulator>,
        cfg: xpp_emu::DeviceConfig,
        firmware: Option<&std::path::Path>,
    ) -> Result<(Self, String), (u8, String)> {
        if args.emulator && emulator.is_none() {
            return Self::start_emulated(cfg, firmware)
                .map(|r| (r, "emulator:0".to_owned()))
                .map_err(|e| (1, e));
        }
        let dev = args
            .select(|| emulator.cloned().unwrap_or_else(|| Emulator::new(cfg.clone())))
            .map_err(|e| (2, e))?;
        Self::start(&dev, firmware).map(|r| (r, dev.name())).map_err(|e| (1, e))
    }

    /// [`Running::start`] on a new real-time emulated device with `cfg`.
    pub fn start_emulated(
        cfg: xpp_emu::DeviceConfig,
        firmware: Option<&std::path::Path>,
    ) -> Result<Self, String> {
        let (emu, runner) = Emulator::real_time(cfg);
        let mut r = Self::start(&Dev::Emulated(emu), firmware)?;
        r._runner = Some(runner);
        Ok(r)
    }
}

impl Running {
    /// Closes the driver (SYNC_SOURCE NONE, run loop joined), then stops the emulator's clock.
    pub fn close(self) {
        self.driver.close();
    }
}

/// The firmware images for a device that still lacks some: from `dir`, else the first of the
/// usual folders (`XPP_FIRMWARE_DIR`, the repository's `testdata/firmware`, `/usr/share/dahdi`),
/// else none (a device already running needs none; a cold one then fails its bring-up with a
/// message naming the image it lacks).
pub fn firmware_set(dir: Option<&std::path::Path>) -> Result<xpp::FirmwareSet, String> {
    match dir.map(std::path::Path::to_path_buf).or_else(|| xpp::bringup::find_firmware_dir().ok()) {
        Some(dir) => {
            xpp::read_firmware_dir(&dir).map_err(|e| format!("firmware folder {}: {e}", dir.display()))
        }
        None => Ok(xpp::FirmwareSet::default()),
    }
}

/// The clock to drive `dev` on: an emulated device's own virtual clock (tests), else the wall
/// clock.
pub fn clock_for(dev: &Dev) -> std::sync::Arc<dyn xpp::Clock> {
    match dev {
        Dev::Emulated(e) if !matches!(e.mode(), xpp_emu::ClockMode::RealTime | xpp_emu::ClockMode::Paced) => {
            std::sync::Arc::new(e.clone())
        }
        _ => std::sync::Arc::new(xpp::SystemClock::new()),
    }
}
