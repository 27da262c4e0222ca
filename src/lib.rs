//! # xpp: a userspace driver for Xorcom Astribank USB telephony channel banks
//!
//! **A PBX needs nothing but [`Driver`].** It brings Astribanks up from any firmware stage,
//! runs one run-loop thread per device, numbers spans and channels the way DAHDI does, and
//! offers DAHDI's span API: spans and channels with their attributes, `system.conf`, 8-sample
//! audio chunks every millisecond, hook commands, alarms and events. Everything a PBX names is
//! re-exported here at the top: [`Driver`], [`DriverOptions`], [`DriverEvent`],
//! [`DriverError`] (with a stable [`ErrorCode`]), [`Target`] (which device to open), the
//! [`Clock`] it runs on, and what bring-up needs ([`BringUpConfig`], [`RunOptions`],
//! [`read_firmware_dir`]).
//!
//! ```no_run
//! use std::time::Duration;
//! use xpp::{Driver, DriverOptions, SystemClock, Target, read_firmware_dir};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Find an Astribank on this machine's USB buses (what the `lsastribank` example lists).
//! let found = xpp::usb::backend::nusb::list()?;
//! let astribank = found.first().ok_or("no Astribank plugged in")?;
//! let target: Target = astribank.bus_path().parse()?;
//!
//! // One driver for every device, on the wall clock. Opening loads whatever firmware the
//! // device still lacks, initialises every module and starts the device ticking.
//! let firmware = read_firmware_dir("/usr/share/dahdi".as_ref())?;
//! let driver = Driver::new(SystemClock::new(), DriverOptions::default());
//! let device = driver.open_target(&target, Default::default(), firmware, Default::default())?;
//! for span in driver.spans() {
//!     println!("span {} {}: {} channels from {}", span.spanno, span.name, span.channels, span.basechan);
//! }
//!
//! // Audio: one 8-sample chunk per channel per millisecond tick.
//! let mut chunk = [0u8; 8];
//! driver.read_chunk_blocking(1, &mut chunk, Duration::from_secs(1))?;
//! driver.write_chunk(1, &chunk)?; // echo it back
//! while let Ok(event) = driver.events().try_recv() {
//!     println!("{event:?}");
//! }
//! driver.close_device(device)?;
//! driver.close();
//! # Ok(())
//! # }
//! ```
//!
//! # Digital spans (PRI, BRI)
//!
//! A PRI or BRI span is configured the DAHDI way, by `system.conf` lines, and its D-channel
//! carries whole HDLC frames with DAHDI's userspace convention: two trailing bytes for the FCS
//! (placeholders going out, checked and kept coming in; a damaged frame is a `BADFCS` or
//! `ABORT` event). CAS channels set and read their ABCD bits.
//!
//! ```no_run
//! # fn demo(driver: &xpp::Driver) -> Result<(), Box<dyn std::error::Error>> {
//! // Span 1 an E1: line-timed (priority 1), CCS, HDB3, CRC-4; the D-channel in timeslot 16.
//! let conf = xpp::span::sysconf::parse_str(
//!     "system.conf",
//!     "span=1,1,0,ccs,hdb3,crc4\nbchan=1-15,17-31\ndchan=16\n",
//! )?;
//! driver.apply_system_conf("system.conf", &conf)?;
//! // Q.921 SABME (SAPI 0, TEI 0, P = 1) and the two FCS placeholders.
//! driver.write_frame(16, &[0x02, 0x01, 0x7F, 0, 0])?;
//! let mut frame = [0u8; 264];
//! let n = driver.read_frame_blocking(16, &mut frame, std::time::Duration::from_secs(1))?;
//! println!("{:02x?}", &frame[..n - 2]); // the frame without its FCS: a UA, once the peer is up
//! // A line-timed span with layer 1 up becomes the timing master of all the devices.
//! println!("timing master: {:?}", driver.sync_master());
//! # Ok(())
//! # }
//! ```
//!
//! # The layers, top down
//!
//! Each layer is its own crate, re-exported here as a module; dependencies point down.
//!
//! - [`driver`] (`xpp-driver`): the IO edge. [`Driver`], its run loops (one thread per
//!   device), the timing-master election across devices, opening by [`Target`]. The only
//!   crate above the transports that reads the clock, blocks or spawns threads.
//! - [`twinstar`] (`xpp-twinstar`): the TwinStar port-switch controller, sans-IO: the
//!   health-gated watchdog, deliberate hand-over of a hung PBX's lines, warm take-over, the
//!   failover timeline.
//! - [`span`] (`xpp-span`): DAHDI-compatible spans and channels, sans-IO: DAHDI's numbers,
//!   hook state machines, event queues, alarms, `system.conf`, and the per-device core
//!   ([`span::xbus::XbusCore`]) that turns each device tick into channel audio and events.
//! - [`bringup`] (`xpp-bringup`): from "plugged in" to a ticking device: USB firmware, FPGA,
//!   PIC and echo-canceller loading, module initialisation; a sans-IO core and its runner.
//! - [`usb`] (`xpp-usb`): the [`usb::Transport`] trait and its backends (nusb, rusb with the
//!   `rusb` feature, a USB/IP client), device discovery and hotplug, middleware (tracer,
//!   fault injector, pcap), and the stack's one [`Clock`].
//! - [`proto`] (`xpp-proto`): every byte that crosses the cable as typed messages (data and
//!   management interfaces) and the firmware file formats; no IO, no clock.
//! - [`emu`] (`xpp-emu`, feature `emulator`, on by default): the emulated Astribank, written
//!   from the references on its own, so that everything above runs without hardware. A PBX
//!   build may leave it out (`default-features = false, features = ["nusb"]`).
//!
//! The protocol facts every layer is built from are in the repository's `docs/reference/`;
//! `§n` in the documentation points there.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub use xpp_bringup as bringup;
pub use xpp_driver as driver;
#[cfg(feature = "emulator")]
pub use xpp_emu as emu;
pub use xpp_proto as proto;
pub use xpp_span as span;
pub use xpp_twinstar as twinstar;
pub use xpp_usb as usb;

pub use xpp_bringup::{BringUpConfig, FirmwareSet, RunOptions, read_firmware_dir};
pub use xpp_driver::{
    Clock, DeviceId, Driver, DriverError, DriverEvent, DriverOptions, ErrorCode, Pacing, SystemClock, Target,
};
pub use xpp_proto::{Duration, Instant};
