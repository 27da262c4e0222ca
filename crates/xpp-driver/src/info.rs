//! Spans and channels as the PBX sees them.

use xpp_span::dahdi::{Alarms, Law, Sig, SigCap, SpanType};
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
    }
}
