//! Spans and channels as the PBX sees them.

use xpp_span::dahdi::{Alarms, Law, RxSig, Sig, SigCap, SpanType, TxSig};
use xpp_span::span::ChanKind;

use crate::event::DeviceId;

/// A span as the PBX sees it (the SPANSTAT fields the library has).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SpanInfo {
    /// Its device.
    pub device: DeviceId,
    /// Span number.
    pub spanno: u32,
    /// `XBUS-nn/XPD-us`.
    pub name: String,
    /// Description.
    pub desc: String,
    /// Span type.
    pub spantype: SpanType,
    /// Default law.
    pub deflaw: Law,
    /// First channel number.
    pub basechan: u32,
    /// Channels in the span.
    pub channels: u32,
    /// Alarm word.
    pub alarms: Alarms,
    /// Digital (PRI/BRI) rather than analog.
    pub is_digital: bool,
    /// Timing priority (`span=` second field; 0: never the clock source).
    pub timing_priority: u8,
    /// A PRI span's line configuration (`None` for other spans).
    pub line_setup: Option<xpp_span::xbus::LineSetup>,
    /// A PRI span was started (its transmitter on); `None` for other spans.
    pub started: Option<bool>,
}

/// A channel as the PBX sees it (the GET_PARAMS fields the library has).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChanInfo {
    /// Its device.
    pub device: DeviceId,
    /// Global channel number.
    pub channo: u32,
    /// 1-based position in its span.
    pub chanpos: u32,
    /// Its span.
    pub spanno: u32,
    /// `XPP_FXS/00/00/0` style name.
    pub name: String,
    /// What the channel is.
    pub kind: ChanKind,
    /// Configured signalling.
    pub sig: Sig,
    /// Signalling capabilities.
    pub sigcap: SigCap,
    /// Alarm word.
    pub alarms: Alarms,
    /// The law of its chunks (the span's `deflaw` unless set).
    pub law: Law,
    /// The hook state the line reports, debounced (`dahdi_params.rxhooksig`): for an FXS port
    /// [`RxSig::OffHook`] while the phone is off hook, for an FXO port while there is battery.
    pub rxsig: RxSig,
    /// The hook state the PBX asked for (`dahdi_params.txhooksig`).
    pub txsig: TxSig,
}

pub(crate) fn chan_info(device: DeviceId, c: &xpp_span::xbus::Channel) -> ChanInfo {
    ChanInfo {
        device,
        channo: c.channo(),
        chanpos: c.chanpos(),
        spanno: c.spanno(),
        name: c.name().to_owned(),
        kind: c.kind(),
        sig: c.chan().sig(),
        sigcap: c.chan().sigcap(),
        alarms: c.chan().alarms(),
        law: c.law(),
        rxsig: c.chan().hook().rxsig(),
        txsig: c.chan().hook().txsig(),
    }
}

/// Counters of a device's run loop at the USB level (the bus counters are
/// [`XbusStats`](xpp_span::xbus::XbusStats), from [`Driver::stats`](crate::Driver::stats)).
///
/// A failed data IN transfer (anything but a disconnect) makes the run loop back off before it
/// queues reads again: 1 ms after the first failure, doubling per consecutive failure up to
/// 100 ms, on the driver's clock; a stalled endpoint has its halt cleared first
/// ([`Transport::clear_halt`](xpp_usb::Transport::clear_halt)). The tenth consecutive failure
/// ends the device as failed ([`DriverEvent::DeviceFailed`](crate::DriverEvent::DeviceFailed),
/// then [`DriverEvent::DeviceRemoved`](crate::DriverEvent::DeviceRemoved)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct DeviceStats {
    /// Data IN transfers that completed with `Stall` (the endpoint halted).
    pub in_stalls: u64,
    /// Data IN transfers that failed otherwise (not counting a disconnect).
    pub in_errors: u64,
    /// Halts of the data IN endpoint cleared (CLEAR_FEATURE(ENDPOINT_HALT) accepted).
    pub halts_cleared: u64,
    /// Attempts to clear a halt that failed.
    pub clear_halt_errors: u64,
    /// Times the loop backed off before queuing reads again.
    pub backoffs: u64,
    /// Consecutive failures now (0 once a data IN transfer succeeds again).
    pub consecutive_failures: u32,
}
