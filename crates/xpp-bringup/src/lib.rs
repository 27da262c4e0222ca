//! # xpp-bringup: from "plugged in" to a ticking Astribank
//!
//! Bring-up: from "plugged in" (any firmware stage) to a device ticking in sync mode, with every
//! unit initialised — one in-process sequence replacing the reference's udev rule, `fxload`,
//! `astribank_hexload`, `astribank_tool` and Perl init scripts.
//!
//! Two layers, quinn-style:
//!
//! - [`BringUp`] is the sans-IO core. It reads no clock, does no IO and starts no threads: the
//!   caller hands in the device identity after each (re-)enumeration, control-transfer results,
//!   management (MPP) and data IN transfers and timeouts, and takes out [`Action`]s (what to
//!   send, when to wait for a re-enumeration, the final result) and [`Event`]s (progress,
//!   warnings, the timeline).
//! - [`run::bring_up`] executes the actions on any [`xpp_usb::Transport`] (real, USB/IP or
//!   emulated), reopening the device through a caller-supplied opener after each
//!   re-enumeration, on the stack's one [`Clock`](xpp_usb::Clock) so that tests on the
//!   emulator's virtual clock are deterministic. [`run::verify_running`] is the same on an
//!   opened device that must be running already, and only verifies it (below).
//!
//! This crate depends on `xpp-proto` and `xpp-usb` only (not on the span layer above it): the
//! driver (`xpp-driver`) runs it before it builds a device's spans.
//!
//! # Phases
//!
//! In order (docs/reference/xpp-protocol.md §8, §14; docs/reference/mpp-twinstar-firmware.md §1.2, §5): [`Phase::Detect`]
//! (which stage is the device in), [`Phase::UsbFirmware`] (FX2 RAM download, cold devices),
//! [`Phase::WaitRenum`], [`Phase::Fpga`] (MPP DEV_SEND, skipped when the right image is already
//! loaded), [`Phase::Pic`] and [`Phase::Echo`] (modular family only, for the modules present),
//! [`Phase::Renum`] (MPP RENUM and the wait for the running stage), [`Phase::Descriptors`]
//! (AB_REQUEST, AB_DESCRIPTION validated per §6.2), [`Phase::XbusReset`] (0x04 then 0x00),
//! [`Phase::CardInit`] per unit in ascending order, [`Phase::SyncSource`] (PLL, then AB for a
//! single device) and [`Phase::Ready`]. A device found in a later stage starts there. Every
//! phase has a timeout ([`Timeouts`]); a failure ([`BringUpError`]) names the phase and the
//! device's last answer, and once it is reported nothing more is sent.
//!
//! # A device another host left behind
//!
//! A host that goes away without SYNC_SOURCE(NONE) (§8.5: a crash, an unplug, a TwinStar jump
//! away from a hung host) leaves the device ticking, its IN FIFO full of stale PCM and perhaps
//! of replies meant for that host. Descriptors therefore starts by listening
//! ([`Timeouts::listen`]): if anything comes, the device is quiesced first — SYNC_SOURCE(NONE),
//! then everything it had queued is read and dropped until its SYNC_REPLY(NONE) (or the IN side
//! goes quiet, or [`Timeouts::drain`] passes) — and only then is AB_REQUEST sent; a warning
//! says how much was drained. A quiet device gets the reference's AB_REQUEST and
//! SYNC_SOURCE(NONE) at once. AB_REQUEST, SYNC_SOURCE, register reads and echo-canceller
//! queries whose reply does not come are sent again, up to
//! [`BringUpConfig::request_attempts`] times in all, and PIC images whose reply is late or
//! reports a bad checksum up to [`BringUpConfig::pic_attempts`] times, each time with a
//! warning; the timeline counts them per phase ([`TimelineEvent::retries`]).
//!
//! # Found running: verify, don't reset
//!
//! XBUS_RESET and the card init reset every chip, so every call in progress drops: right for a
//! device that has just been loaded, wrong for a TwinStar take-over, where the device the
//! master left running still carries calls. With [`OnRunning::Verify`]
//! ([`BringUpConfig::on_running`]), or through [`run::verify_running`], a device found in the
//! running stage is only verified: AB_DESCRIPTION validated as above (and compared per unit
//! with [`BringUpConfig::expected_description`], e.g. the master's), no XBUS_RESET, no
//! register write; per unit a [`Phase::Verify`] of reads only, each of which must be answered
//! — FXS chip IDs (register 0x00 per port, which fill the unit's present ports again), and per
//! port the FXO line voltage, PRI FRS0 or BRI layer-1 state, registers the reference host
//! itself polls on a running device (ECHO: none); and for FXS type 1 and FXO the PCM mode
//! register the card init sets (0x01 / 0x21 = 0x28) must read back, or the unit was reset
//! since and the verify fails with [`Failure::NotConfigured`] — then SyncSource as
//! [`BringUpConfig::sync`] says. [`BringUpResult::verified`] and
//! the timeline tell which path was taken. A device found in an earlier stage still gets the
//! full bring-up.
//!
//! # Pacing
//!
//! Register commands (REGISTER_REQUEST) are paced by a host timer at one per
//! [`BringUpConfig::pacing`] (1 ms), two units for a command with a non-zero sub-register, as
//! the reference's command queue charges them (§6.3, §7.5); other commands are not charged.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
// Decision: the same 1 ms host timer paces the whole bring-up. Before SYNC_REPLY the device
// does not tick (§7.5, §14), so a host timer is the only clock available; keeping it after the
// device ticks as well keeps one rule and gives the "about one register write per ms" of §7.5.

mod cards;
mod firmware;
mod machine;
pub mod run;
mod search;

use core::fmt;

use xpp_proto::firmware::FirmwareError;
use xpp_proto::mgmt::{CardInfo, DeviceStatus, MgmtError};
use xpp_proto::wire::pri::PriProtocol;
use xpp_proto::wire::{AbDescription, SyncState, UnitDescriptor};
use xpp_proto::{Duration, Instant};
use xpp_usb::discovery::Stage;
use xpp_usb::{ControlSetup, DeviceInfo, TransferError};

pub use cards::CardKind;
pub use firmware::{ECHO_IMAGE, FirmwareSet};
pub use machine::{BringUp, MAX_TRANSFER_FAILURES};
pub use run::{Ready, RunOptions, bring_up, read_firmware_dir, verify_running};
pub use search::{
    FIRMWARE_DIR_ENV, FirmwareDirNotFound, SYSTEM_FIRMWARE_DIR, find_firmware_dir, firmware_dirs,
};

use xpp_proto::wire::Law;

/// One phase of the bring-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Phase {
    /// Waiting for the device and classifying its stage from its USB identity.
    Detect,
    /// Downloading the USB firmware into FX2 RAM (vendor request 0xA0).
    UsbFirmware,
    /// Waiting for the device to re-enumerate with its USB firmware running (11x1).
    WaitRenum,
    /// STATUS_GET and, unless the image is already loaded, the FPGA image over MPP DEV_SEND.
    Fpga,
    /// CARD_INFO_GET of the module slots and the PIC images of the modules present.
    Pic,
    /// The echo canceller (only with an echo module).
    Echo,
    /// MPP RENUM and the wait for the running stage (11x2).
    Renum,
    /// AB_REQUEST (with SYNC_SOURCE NONE) and the validation of AB_DESCRIPTION.
    Descriptors,
    /// XBUS_RESET 0x04 then 0x00.
    XbusReset,
    /// Chip detection and initialisation of one unit.
    CardInit {
        /// The unit.
        unit: u8,
    },
    /// The read-only check of one unit of a device found running ([`OnRunning::Verify`]),
    /// in place of XbusReset and CardInit.
    Verify {
        /// The unit.
        unit: u8,
    },
    /// SYNC_SOURCE and its SYNC_REPLY.
    SyncSource,
    /// Done.
    Ready,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Detect => f.write_str("Detect"),
            Self::UsbFirmware => f.write_str("UsbFirmware"),
            Self::WaitRenum => f.write_str("WaitRenum"),
            Self::Fpga => f.write_str("Fpga"),
            Self::Pic => f.write_str("Pic"),
            Self::Echo => f.write_str("Echo"),
            Self::Renum => f.write_str("Renum"),
            Self::Descriptors => f.write_str("Descriptors"),
            Self::XbusReset => f.write_str("XbusReset"),
            Self::CardInit { unit } => write!(f, "CardInit({unit})"),
            Self::Verify { unit } => write!(f, "Verify({unit})"),
            Self::SyncSource => f.write_str("SyncSource"),
            Self::Ready => f.write_str("Ready"),
        }
    }
}

/// How a phase ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// It did its work.
    Done,
    /// It found nothing to do (image already loaded, no image for an optional part).
    Skipped,
    /// Bring-up failed in it.
    Failed,
}

/// One entry of the bring-up timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimelineEvent {
    /// The phase.
    pub phase: Phase,
    /// When it started.
    pub start: Instant,
    /// How long it took.
    pub duration: Duration,
    /// How it ended.
    pub outcome: Outcome,
    /// How many requests, register reads or firmware images it sent again because their
    /// answer did not come or was a failure (each also a warning).
    pub retries: u16,
}

impl fmt::Display for TimelineEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = match self.outcome {
            Outcome::Done => "",
            Outcome::Skipped => " (skipped)",
            Outcome::Failed => " (FAILED)",
        };
        write!(
            f,
            "{:>9.3} ms  {:<14} {:>9.3} ms{o}",
            self.start.total_micros() as f64 / 1000.0,
            self.phase.to_string(),
            self.duration.total_micros() as f64 / 1000.0
        )?;
        match self.retries {
            0 => Ok(()),
            1 => write!(f, " (1 retry)"),
            n => write!(f, " ({n} retries)"),
        }
    }
}

/// What the core reports besides its actions.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A phase started.
    PhaseStarted {
        /// The phase.
        phase: Phase,
        /// When.
        at: Instant,
    },
    /// Work done in a long phase (FX2 requests, FPGA segments, PIC packets, unit steps).
    Progress {
        /// The phase.
        phase: Phase,
        /// Items done.
        done: usize,
        /// Items in all.
        total: usize,
    },
    /// Something the operator should know that does not stop bring-up.
    Warning {
        /// The phase.
        phase: Phase,
        /// What.
        message: String,
    },
    /// A phase ended.
    Timeline(TimelineEvent),
    /// A data-interface packet bring-up does not consume (SIG_CHANGED, unsolicited register
    /// replies, ECHO SET_REPLY, ERROR_CODE, ...), for the span layer to route; PCM_READ and
    /// SYNC_REPLY are not reported this way.
    Unsolicited {
        /// When it arrived.
        at: Instant,
        /// The packet's bytes.
        packet: Vec<u8>,
    },
}

/// What the IO layer must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// A control transfer with an OUT data stage; report the result with
    /// [`BringUp::handle_control_result`] before anything else.
    ControlOut {
        /// The SETUP fields.
        setup: ControlSetup,
        /// The data stage.
        data: Vec<u8>,
    },
    /// One bulk OUT transfer on the management endpoint (0x04).
    MppOut(Vec<u8>),
    /// One bulk OUT transfer on the data endpoint (0x02).
    DataOut(Vec<u8>),
    /// The device is about to leave: close the handle, and hand every device the opener
    /// finds to [`BringUp::handle_device`] until it accepts one.
    WaitForReenumeration {
        /// The stage the device should come back in.
        expect: Stage,
    },
    /// A bulk transfer on this endpoint stalled: clear its halt (CLEAR_FEATURE(ENDPOINT_HALT),
    /// [`Transport::clear_halt`](xpp_usb::Transport::clear_halt)); nothing is reported back.
    ClearHalt(u8),
    /// Bring-up finished: the device ticks and its units are initialised.
    Done(Box<BringUpResult>),
    /// Bring-up failed; nothing more will be asked.
    Failed(BringUpError),
}

/// Where the device's last answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AnswerSource {
    /// Its USB identity after an enumeration.
    Enumeration,
    /// A control transfer's result.
    Control,
    /// A management (MPP) IN transfer.
    Mgmt,
    /// A data-interface IN transfer.
    Data,
}

/// The device's last answer, as text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Answer {
    /// When it came.
    pub at: Instant,
    /// Where from.
    pub source: AnswerSource,
    /// What it said (decoded where possible).
    pub text: String,
}

impl fmt::Display for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at {} ({:?}): {}", self.at, self.source, self.text)
    }
}

/// Why bring-up failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Failure {
    /// The phase's time ran out.
    #[error("timeout waiting for {waiting_for}")]
    Timeout {
        /// What was awaited.
        waiting_for: &'static str,
    },
    /// The device is not an Astribank in any known stage.
    #[error("{vendor:04x}:{product:04x} is not an Astribank")]
    NotAnAstribank {
        /// idVendor.
        vendor: u16,
        /// idProduct.
        product: u16,
    },
    /// The device is in a stage bring-up does not handle (e.g. the EEPROM burner).
    #[error("unsupported stage: {0}")]
    UnsupportedStage(&'static str),
    /// The selection table names no image of this kind for the device.
    #[error("no {kind} image is known for {vendor:04x}:{product:04x} revision {bcd:04x}")]
    NoImageFor {
        /// "USB" or "FPGA".
        kind: &'static str,
        /// idVendor.
        vendor: u16,
        /// idProduct.
        product: u16,
        /// bcdDevice.
        bcd: u16,
    },
    /// The firmware set lacks a file the device needs.
    #[error("firmware file {name} not found{}", match .searched {
        Some(dir) => format!(" in {dir}"),
        None => String::new(),
    })]
    MissingImage {
        /// The file name.
        name: String,
        /// Where the set was read from ([`FirmwareSet::origin`]), if from a folder.
        searched: Option<String>,
    },
    /// A firmware file does not parse or does not suit its load.
    #[error("firmware file {name}: {error}")]
    BadImage {
        /// The file name.
        name: String,
        /// Why.
        error: FirmwareError,
    },
    /// A USB transfer failed.
    #[error("USB transfer failed: {0}")]
    Transfer(TransferError),
    /// The device left when it should not have.
    #[error("device disconnected")]
    Disconnected,
    /// An MPP exchange failed (a non-OK ACK carries the device's status).
    #[error("MPP: {0}")]
    Mgmt(MgmtError),
    /// The device refused something (PIC checksum, echo canceller test).
    #[error("device rejected it: {0}")]
    Rejected(&'static str),
    /// AB_DESCRIPTION broke a §6.2 rule.
    #[error("bad AB_DESCRIPTION: {0}")]
    BadDescription(&'static str),
    /// [`run::verify_running`] (or [`BringUp::verify_running`]) was given a device that is
    /// not in the running stage (11x2).
    #[error("the device is not running (found in stage {stage}); only a running device can be verified")]
    NotRunning {
        /// The stage it is in.
        stage: &'static str,
    },
    /// AB_DESCRIPTION differs from [`BringUpConfig::expected_description`] at this unit.
    #[error("unit {unit}: expected {}, found {}", describe_unit(.expected), describe_unit(.found))]
    UnitMismatch {
        /// The first unit (ascending) that differs.
        unit: u8,
        /// Its descriptor in the expected description (`None`: not there).
        expected: Option<UnitDescriptor>,
        /// Its descriptor in the device's (`None`: not there).
        found: Option<UnitDescriptor>,
    },
    /// Verifying a device found running: a register the card init sets reads another value,
    /// so the unit's chips were reset since their init (the caller falls back to a full
    /// init).
    #[error(
        "unit {unit} port {port}: register 0x{register:02X} reads 0x{found:02X}, the card init sets 0x{want:02X}: not configured"
    )]
    NotConfigured {
        /// The unit.
        unit: u8,
        /// The chip port.
        port: u8,
        /// The register read back.
        register: u8,
        /// What it read.
        found: u8,
        /// What the init writes.
        want: u8,
    },
    /// A calibration register did not reach its "done" value in 10 polls.
    /// A type-6 FXS module whose descriptor declares ports has no chip that passes the §8.4
    /// detection checks (chip id 0xC3, register 0x0E read-back, master status 0x03).
    #[error("unit {unit}: FXS type-6 module declares {ports} ports but no chip passed detection")]
    NoChip {
        /// The unit.
        unit: u8,
        /// Ports its descriptor declares.
        ports: u8,
    },
    /// A calibration register did not reach its "done" value in its polls.
    #[error("unit {unit} port {port}: {what} did not finish")]
    Calibration {
        /// The unit.
        unit: u8,
        /// The chip port.
        port: u8,
        /// Which calibration.
        what: &'static str,
    },
}

/// A unit descriptor in words: card, port count and layout, or "no unit".
fn describe_unit(d: &Option<UnitDescriptor>) -> String {
    match d {
        None => "no unit".to_owned(),
        Some(d) => format!(
            "{} (type {}.{}) with {} ports ({} chips x {}), directions 0x{:02x}, at {}",
            CardKind::from_card_type(d.card_type).map_or_else(|| d.card_type.to_string(), |k| k.to_string()),
            u8::from(d.card_type),
            d.subtype,
            u16::from(d.numchips) * u16::from(d.ports_per_chip),
            d.numchips,
            d.ports_per_chip,
            d.port_dir,
            d.addr
        ),
    }
}

/// A failed bring-up: the phase, why, and the device's last answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bring-up failed in phase {phase} at {at}: {reason}{}", match .last_answer {
    Some(a) => format!("; last device answer {a}"),
    None => "; no answer from the device".to_owned(),
})]
pub struct BringUpError {
    /// The phase it failed in.
    pub phase: Phase,
    /// When.
    pub at: Instant,
    /// Why.
    pub reason: Failure,
    /// The last thing the device said.
    pub last_answer: Option<Answer>,
}

/// FXO country settings ("opermode", docs/reference/xpp-protocol.md §8.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Opermode {
    /// USA/Canada (FCC part 68), the reference's default.
    #[default]
    Fcc,
    /// Europe (TBR21).
    Tbr21,
    /// Australia.
    Australia,
}

/// How the device is left ticking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum SyncPolicy {
    /// SYNC_SOURCE(PLL, 0) then SYNC_SOURCE(AB, 0): a single device wins the sync election
    /// (§8.3, §14).
    #[default]
    Master,
    /// SYNC_SOURCE(PLL, 0) only; the span layer's election decides later.
    Pll,
}

/// What bring-up does with a device it finds already running (stage 11x2), e.g. the backup
/// host of a TwinStar pair taking over a device the master left running.
///
/// A device found in an earlier stage gets the full bring-up whatever this says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum OnRunning {
    /// Start it over as the reference does (§6.2, §8.3): XBUS_RESET, then every unit's full
    /// card init. Every call in progress is dropped.
    #[default]
    Reset,
    /// Verify it, changing nothing: AB_DESCRIPTION validated (and compared with
    /// [`BringUpConfig::expected_description`] if given), no XBUS_RESET, no register write;
    /// per unit only reads that show its chips answer ([`Phase::Verify`]), the unit reports
    /// filled from them; then the sync step of [`BringUpConfig::sync`]. Calls in progress
    /// survive (their line state is the chips' registers, which nothing writes).
    Verify,
}

/// Per-phase time limits.
///
/// Decision: values. The reference's loader waits about 10 s for each re-enumeration (MT §1.2),
/// MPP requests time out after 2 s (MT §2.5), PIC replies after 500 ms (MT §5.5), register
/// reads after 10 polls 13 ms apart (§7.6), and the whole initialisation after 90 s (§8.3); the
/// rest are chosen well above what the phases take on the emulator.
///
/// Decision: the listen before AB_REQUEST is 5 ms: a device left ticking sends a PCM frame every
/// 1 ms (§7.3) and what its IN FIFO holds is readable at once, so 5 ms sees either with room
/// for host scheduling, and costs a quiet device 5 ms. The drain ends 10 ms (ten ticks) after
/// the last IN transfer, and at 250 ms in any case. A request is sent again after 250 ms
/// without its reply: a device answers in about a millisecond (§14), and three sends fit in
/// the 1 s of SyncSource and the 2 s of Descriptors with time to spare for a late reply.
///
/// Decision (assumed, confirm on hardware): what a ticking device queued for a previous host
/// waits in its IN FIFO and reaches the next host's first reads (the emulator keeps 64
/// transfers, MODEL USB-12, itself an assumption). A USB reset at open may empty it (the
/// emulator's does, MODEL USB-15); the reference's probe resets (§8.3 step 1), xpp's open
/// does not, so the listen and drain are what clear it here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Timeouts {
    /// Detect: until the opener finds a device.
    pub detect: Duration,
    /// UsbFirmware: all control transfers.
    pub usb_firmware: Duration,
    /// WaitRenum and Renum: until the device is back in the expected stage.
    pub renumeration: Duration,
    /// Fpga: STATUS_GET and the whole DEV_SEND sequence.
    pub fpga: Duration,
    /// Pic: CARD_INFO_GET and all PIC images.
    pub pic: Duration,
    /// One PIC reply after END.
    pub pic_reply: Duration,
    /// Echo: the whole phase.
    pub echo: Duration,
    /// Echo: one reply to the test packet or the version query (sent again after it, at
    /// most [`BringUpConfig::request_attempts`] times in all).
    pub echo_reply: Duration,
    /// Descriptors: from its start (the listen and the drain included) until a valid
    /// AB_DESCRIPTION.
    pub descriptors: Duration,
    /// Descriptors: how long to listen for input before sending anything (a device left
    /// ticking, or replies queued for a previous host, show up in this time).
    pub listen: Duration,
    /// Descriptors: the longest drain of a device found sending, after SYNC_SOURCE(NONE).
    pub drain: Duration,
    /// Descriptors: the drain also ends after this long without any IN transfer (when the
    /// SYNC_REPLY(NONE) that normally ends it does not come).
    pub drain_quiet: Duration,
    /// AB_REQUEST and SYNC_SOURCE: sent again when their reply has not come in this time
    /// (at most [`BringUpConfig::request_attempts`] sends in all).
    pub request_retry: Duration,
    /// XbusReset.
    pub xbus_reset: Duration,
    /// CardInit, and Verify: one unit.
    pub card_init: Duration,
    /// One register read's answer (the read is sent again after it, at most
    /// [`BringUpConfig::request_attempts`] times in all).
    pub read: Duration,
    /// SyncSource: all SYNC_REPLYs.
    pub sync: Duration,
    /// The whole bring-up.
    pub total: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            detect: Duration::from_secs(10),
            usb_firmware: Duration::from_secs(10),
            renumeration: Duration::from_secs(10),
            fpga: Duration::from_secs(60),
            pic: Duration::from_secs(30),
            pic_reply: Duration::from_millis(500),
            echo: Duration::from_secs(10),
            // Decision: like pic_reply; three sends fit in the phase's 10 s many times over.
            echo_reply: Duration::from_millis(500),
            descriptors: Duration::from_secs(2),
            listen: Duration::from_millis(5),
            drain: Duration::from_millis(250),
            drain_quiet: Duration::from_millis(10),
            request_retry: Duration::from_millis(250),
            xbus_reset: Duration::from_secs(1),
            card_init: Duration::from_secs(15),
            read: Duration::from_millis(130),
            sync: Duration::from_secs(1),
            total: Duration::from_secs(90),
        }
    }
}

/// Bring-up parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct BringUpConfig {
    /// Time limits.
    pub timeouts: Timeouts,
    /// Spacing of register commands (doubled for a non-zero sub-register), §7.5.
    pub pacing: Duration,
    /// FXO country settings.
    pub opermode: Opermode,
    /// PRI line protocol for every PRI port (E1 or T1).
    pub pri_protocol: PriProtocol,
    /// Final sync mode.
    pub sync: SyncPolicy,
    /// Run the LED self-test of the card init (about 100 ms per line).
    // Decision: off by default; it only blinks LEDs and would add ~0.8 s per analog unit.
    pub led_test: bool,
    /// How many times in all AB_REQUEST, SYNC_SOURCE, a register read and an echo-canceller
    /// query are sent when their reply does not come (at least 1). Each retry is a warning and
    /// counts in its phase's [`TimelineEvent::retries`].
    // Decision: 3. The reference sends each once and never resends (§7.6), so one lost reply
    // fails its bring-up; resending is safe because all three are idempotent (a read changes
    // nothing in the registers bring-up reads, a second SYNC_SOURCE sets the same mode, and a
    // second AB_DESCRIPTION is ignored here, not taken for a protocol error as in §6.2 rule 4).
    // The echo queries are safe to repeat too: the test packet and the version query only
    // read (issue 15, item 9).
    // Decision (assumed, confirm on hardware): the device answers every AB_REQUEST it gets,
    // not only the first after enumeration. §6.1 only says the host sends one; the emulator
    // answers each (MODEL XPP-8, also an assumption). If hardware answers once, a lost reply
    // is not recovered by the resend and bring-up fails as before, after the same 2 s.
    pub request_attempts: u8,
    /// How many times in all one PIC image is sent when its PIC_REPLY reports a bad checksum
    /// or does not come (at least 1); each retry is a warning and counts in the Pic phase's
    /// [`TimelineEvent::retries`].
    // Decision: 10. An image is 400-500 one-packet transfers, so a transfer loss rate p fails
    // one send with probability about 1-(1-p)^450: 60 % at the soak's 0.2 %, where three sends
    // still failed one image in five and ten fail one in a hundred (about 0.5 s of transfers
    // per send). A START resets the module's checksum (§5.5), so sending again is safe.
    pub pic_attempts: u8,
    /// What to do with a device found running.
    pub on_running: OnRunning,
    /// The description the device must give (e.g. [`BringUpResult::description`] of a previous
    /// bring-up of the same device): a unit whose descriptor differs, or that is missing or
    /// extra, fails bring-up in Descriptors with [`Failure::UnitMismatch`] naming it. Compared
    /// per unit: address, card type, subtype, chips, ports per chip and directions (the fields
    /// that make its XPDs and channels, §6.2), not the reserved bytes nor `ec_addr`, which the
    /// host does not use (§13.4).
    pub expected_description: Option<AbDescription>,
}

impl Default for BringUpConfig {
    fn default() -> Self {
        Self {
            timeouts: Timeouts::default(),
            pacing: Duration::from_millis(1),
            opermode: Opermode::Fcc,
            pri_protocol: PriProtocol::E1,
            sync: SyncPolicy::Master,
            led_test: false,
            request_attempts: 3,
            pic_attempts: 10,
            on_running: OnRunning::Reset,
            expected_description: None,
        }
    }
}

impl BringUpConfig {
    /// Sets [`BringUpConfig::timeouts`].
    #[must_use]
    pub const fn with_timeouts(mut self, t: Timeouts) -> Self {
        self.timeouts = t;
        self
    }

    /// Sets [`BringUpConfig::opermode`].
    #[must_use]
    pub const fn with_opermode(mut self, m: Opermode) -> Self {
        self.opermode = m;
        self
    }

    /// Sets [`BringUpConfig::pri_protocol`].
    #[must_use]
    pub const fn with_pri_protocol(mut self, p: PriProtocol) -> Self {
        self.pri_protocol = p;
        self
    }

    /// Sets [`BringUpConfig::sync`].
    #[must_use]
    pub const fn with_sync(mut self, s: SyncPolicy) -> Self {
        self.sync = s;
        self
    }

    /// Sets [`BringUpConfig::led_test`].
    #[must_use]
    pub const fn with_led_test(mut self, on: bool) -> Self {
        self.led_test = on;
        self
    }

    /// Sets [`BringUpConfig::on_running`].
    #[must_use]
    pub const fn with_on_running(mut self, on: OnRunning) -> Self {
        self.on_running = on;
        self
    }

    /// Sets [`BringUpConfig::expected_description`].
    #[must_use]
    pub const fn with_expected_description(mut self, d: Option<AbDescription>) -> Self {
        self.expected_description = d;
        self
    }

    /// Sets [`BringUpConfig::request_attempts`] (0 counts as 1).
    #[must_use]
    pub const fn with_request_attempts(mut self, n: u8) -> Self {
        self.request_attempts = n;
        self
    }

    /// Sets [`BringUpConfig::pic_attempts`] (0 counts as 1).
    #[must_use]
    pub const fn with_pic_attempts(mut self, n: u8) -> Self {
        self.pic_attempts = n;
        self
    }
}

/// One initialised unit, as the span layer needs it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UnitReport {
    /// Unit number.
    pub unit: u8,
    /// Its descriptor.
    pub descriptor: UnitDescriptor,
    /// The card.
    pub kind: CardKind,
    /// numchips × ports_per_chip.
    pub ports: u8,
    /// XPDs (subunits) the reference would create.
    pub subunits: u8,
    /// Bit n: chip port n present (FXS: chip detection, also when verified; other cards:
    /// every declared port).
    pub present: u32,
    /// FXS: the chip-ID register read per port (0xFF = absent).
    pub chip_ids: [Option<u8>; 8],
    /// Companding law of its channels.
    pub law: Law,
    /// PRI: the line protocol configured.
    pub pri_protocol: Option<PriProtocol>,
}

/// What bring-up leaves for the span layer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BringUpResult {
    /// The device as last enumerated (stage 11x2).
    pub device: DeviceInfo,
    /// The stage it was found in.
    pub initial_stage: Stage,
    /// STATUS_GET, when the device was seen in the USB-firmware stage.
    pub status: Option<DeviceStatus>,
    /// CARD_INFO_GET answers for units 0..4, when queried (modular family).
    pub cards: Vec<CardInfo>,
    /// The validated AB_DESCRIPTION.
    pub description: AbDescription,
    /// The units initialised (or verified), ascending.
    pub units: Vec<UnitReport>,
    /// The device was found running and verified ([`OnRunning::Verify`]): no XBUS_RESET and no
    /// card init were sent; the timeline has [`Phase::Verify`] in place of XbusReset and
    /// CardInit.
    pub verified: bool,
    /// The last SYNC_REPLY.
    pub sync: SyncState,
    /// Every phase with its start and duration.
    pub timeline: Vec<TimelineEvent>,
    /// Every warning, in order.
    pub warnings: Vec<String>,
    /// Data-interface packets not consumed by bring-up (also reported as events).
    pub unsolicited: u64,
}
