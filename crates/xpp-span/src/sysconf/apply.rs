//! Applying a [`SystemConf`] to running buses, the way `dahdi_cfg` does (§2, §13).
//!
//! [`SystemConf::apply`] first validates the whole file against the spans and channels that
//! exist (by global DAHDI numbers, across every [`XbusCore`] given), then, only if nothing is
//! wrong, applies it:
//!
//! - analog channels (FXS/FXO ports): CHANCONFIG with the configured signalling
//!   ([`XbusCore::configure_chan`]), skipped when the channel already has it (dahdi_cfg's
//!   "skip if unchanged"); analog ports the file does not list get their natural signalling
//!   (FXS port `fxoks`, FXO port `fxsks`);
//! - law of analog channels: set on the channel ([`XbusCore::set_law`]: chunks are converted
//!   between it and the span's law); law and echo canceller recorded in the result
//!   ([`ChannelSettings`]);
//! - digital spans, in `dahdi_cfg`'s order: every `span=` line first (SPANCONFIG: the timing
//!   priority, and on a PRI span the line configuration, checked against the span's protocol
//!   before anything is applied, [`XbusCore::configure_span`]), then the channels of the
//!   digital spans (`bchan`, `dchan`, `cas`... CHANCONFIG, skipped when unchanged; a
//!   `dchan`/`hdlcfcs` channel with a timeslot gets soft HDLC, at 56 kbit/s when `56k=` lists
//!   it, [`XbusCore::set_hdlc_rate`]), then startup of every digital span the file lists
//!   ([`XbusCore::start_span`]: a PRI span's transmitter on, a BRI span's layer 1 activated).
//!   A BRI span takes the timing priority of its line and keeps no other setting (the
//!   reference driver's BRI spanconfig only records the rest). A `dynamic=` span is listed as
//!   [`Deferred`];
//! - tone zones: recorded ([`Applied::zones`], `us` when none is loaded).
//!
//! Every error points at the line that caused it (`file:line:column`).

use xpp_chan::hdlc::HdlcRate;

use crate::dahdi::{Law, Sig};
use crate::span::ChanKind;
use crate::sysconf::{ConfError, ConfErrorKind, ConfErrors, Location, MAX_ERRORS, SystemConf};
use crate::xbus::XbusCore;
use crate::{Instant, SigCap};

/// A setting accepted that this version does not act on (beyond what is said).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Deferred {
    /// A `dynamic=` span (the Astribank has no dynamic span driver; kept for the record).
    Dynamic {
        /// Driver name.
        driver: String,
        /// Where the line is.
        at: Location,
    },
}

/// Audio-path settings of one configured analog channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelSettings {
    /// Channel number.
    pub chan: u32,
    /// Law (`alaw=`/`mulaw=`/`deflaw=`).
    pub law: Law,
    /// Echo canceller (`echocanceller=`), if any.
    pub echocanceller: Option<String>,
}

/// What [`SystemConf::apply`] did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Applied {
    /// Analog channels configured from the file (CHANCONFIG sent), ascending.
    pub configured: Vec<(u32, Sig)>,
    /// Analog channels the file lists with the signalling they already had (skipped).
    pub unchanged: Vec<(u32, Sig)>,
    /// Analog ports the file does not list, given their natural signalling.
    pub defaulted: Vec<(u32, Sig)>,
    /// Law and echo canceller of every analog channel of the file, ascending.
    pub settings: Vec<ChannelSettings>,
    /// Digital spans configured and started from their `span=` lines, ascending.
    pub spans: Vec<u32>,
    /// Settings accepted and not acted on.
    pub deferred: Vec<Deferred>,
    /// The tone zones to load (`us` when none is configured).
    pub zones: Vec<String>,
    /// The default zone.
    pub default_zone: Option<String>,
}

/// Where a channel is: which bus, its sigcap, current signalling, and whether its span
/// is digital.
struct Found {
    bus: usize,
    sigcap: SigCap,
    sig: Sig,
    digital: bool,
}

fn find(cores: &[&mut XbusCore], chan: u32) -> Option<Found> {
    cores.iter().enumerate().find_map(|(bus, core)| {
        let c = core.channel(chan)?;
        let digital = core.span(c.spanno()).is_some_and(crate::span::Span::is_digital);
        Some(Found { bus, sigcap: c.chan().sigcap(), sig: c.chan().sig(), digital })
    })
}

/// The natural signalling of an analog port, `None` for anything else.
fn natural(kind: ChanKind) -> Option<Sig> {
    match kind {
        ChanKind::FxsPort { .. } => Some(Sig::Fxoks),
        ChanKind::FxoPort { .. } => Some(Sig::Fxsks),
        _ => None,
    }
}

impl SystemConf {
    /// Validates this configuration against the channels and spans of `cores` (global DAHDI
    /// numbers) and applies it at `now` as described in the [module doc](self). `file` names
    /// the file in errors. On any validation error nothing is applied.
    // Decision: validate everything first and apply only a fully valid file (dahdi_cfg stops
    // at the first failing ioctl, leaving a half-applied configuration); errors are all
    // reported, like the parser's.
    pub fn apply<'a>(
        &self,
        file: &str,
        now: Instant,
        cores: impl IntoIterator<Item = &'a mut XbusCore>,
    ) -> Result<Applied, ConfErrors> {
        let mut cores: Vec<&mut XbusCore> = cores.into_iter().collect();
        let mut errors = Vec::new();
        let mut err = |at: Location, kind: ConfErrorKind| {
            if errors.len() < MAX_ERRORS {
                errors.push(ConfError { file: file.to_owned(), at, kind });
            }
        };
        let mut applied = Applied {
            zones: self.effective_zones(),
            default_zone: self.default_zone.clone(),
            ..Applied::default()
        };
        let mut now_analog = Vec::new();
        let mut now_digital = Vec::new();
        let mut digital_spans = Vec::new();
        for (&span, sc) in &self.spans {
            let found = cores.iter().position(|c| c.span(span).is_some());
            match found.map(|b| (b, &cores[b])) {
                None => err(sc.at, ConfErrorKind::NoSuchSpan(span)),
                Some((_, c)) if c.span(span).is_some_and(|s| !s.is_digital()) => {
                    err(sc.at, ConfErrorKind::NotDigitalSpan(span));
                }
                Some((b, c)) => match c.check_span_setup(span, sc.line_setup()) {
                    Err(e) => {
                        let reason = match e {
                            crate::xbus::SpanError::LineSetup { error, .. } => error.to_string(),
                            other => other.to_string(),
                        };
                        err(sc.at, ConfErrorKind::SpanRefused { span, reason });
                    }
                    Ok(()) => digital_spans.push((b, *sc)),
                },
            }
        }
        for d in &self.dynamic_spans {
            applied.deferred.push(Deferred::Dynamic { driver: d.driver.clone(), at: d.at });
        }
        for (&chan, c) in &self.channels {
            let Some(f) = find(&cores, chan) else {
                err(c.at, ConfErrorKind::NoSuchChannel(chan));
                continue;
            };
            if c.sig != Sig::Slave && !f.sigcap.permits(c.sig) {
                err(c.at, ConfErrorKind::NotPermitted { chan, sig: c.sig, sigcap: f.sigcap });
            } else if f.digital {
                now_digital.push((chan, c, f));
            } else if !c.is_analog() {
                // Slave members of a bundle on an analog span (bundles are digital).
                err(c.at, ConfErrorKind::NotDigitalChannel { chan, keyword: c.keyword });
            } else {
                now_analog.push((chan, c, f));
            }
        }
        if !errors.is_empty() {
            return Err(ConfErrors(errors));
        }
        let mut failures = Vec::new();
        // SPANCONFIG first: PRI spans get their line configuration and timing priority, BRI
        // spans their timing priority (the election reads it; a BRI span ignores the rest).
        for sc in self.spans.values() {
            for (b, core) in cores.iter_mut().enumerate() {
                if core.span(sc.span).is_none() {
                    continue;
                }
                let setup = digital_spans
                    .iter()
                    .any(|(pb, p)| *pb == b && p.span == sc.span)
                    .then(|| sc.line_setup());
                if let Err(e) = core.configure_span(sc.span, setup, sc.timing) {
                    failures.push(ConfError {
                        file: file.to_owned(),
                        at: sc.at,
                        kind: ConfErrorKind::SpanRefused { span: sc.span, reason: e.to_string() },
                    });
                }
            }
        }
        // Then CHANCONFIG of the digital channels (skipped when unchanged), and HDLC_RATE on
        // each (56 for the `56k=` ones, else 64), as dahdi_cfg sends it.
        for (chan, c, f) in now_digital {
            let rate = if c.hdlc56 { HdlcRate::Kbps56 } else { HdlcRate::Kbps64 };
            if let Err(e) = cores[f.bus].set_hdlc_rate(chan, rate) {
                failures.push(ConfError {
                    file: file.to_owned(),
                    at: c.at,
                    kind: ConfErrorKind::Refused { chan, reason: e.to_string() },
                });
            }
            if c.sig == Sig::Slave || f.sig == c.sig {
                applied.unchanged.push((chan, c.sig));
                continue;
            }
            match cores[f.bus].configure_chan(now, chan, c.sig) {
                Ok(()) => applied.configured.push((chan, c.sig)),
                Err(e) => failures.push(ConfError {
                    file: file.to_owned(),
                    at: c.at,
                    kind: ConfErrorKind::Refused { chan, reason: e.to_string() },
                }),
            }
        }
        for (chan, c, f) in now_analog {
            applied.settings.push(ChannelSettings {
                chan,
                law: c.law,
                echocanceller: c.echocanceller.clone(),
            });
            if let Err(e) = cores[f.bus].set_law(chan, c.law) {
                failures.push(ConfError {
                    file: file.to_owned(),
                    at: c.at,
                    kind: ConfErrorKind::Refused { chan, reason: e.to_string() },
                });
            }
            if f.sig == c.sig {
                applied.unchanged.push((chan, c.sig));
                continue;
            }
            match cores[f.bus].configure_chan(now, chan, c.sig) {
                Ok(()) => applied.configured.push((chan, c.sig)),
                Err(e) => failures.push(ConfError {
                    file: file.to_owned(),
                    at: c.at,
                    kind: ConfErrorKind::Refused { chan, reason: e.to_string() },
                }),
            }
        }
        // Decision: analog ports the file does not list get their natural signalling (as
        // `XbusCore::configure_defaults` gives them), so that a partial file leaves no port
        // unusable; ports already configured keep what they have.
        for core in &mut cores {
            let unlisted: Vec<(u32, Sig)> = core
                .channels()
                .iter()
                .filter(|ch| !self.channels.contains_key(&ch.channo()))
                .filter(|ch| !ch.chan().sigcap().contains(SigCap::BROKEN))
                .filter(|ch| ch.chan().sig() == Sig::None)
                .filter_map(|ch| natural(ch.kind()).map(|s| (ch.channo(), s)))
                .collect();
            for (chan, sig) in unlisted {
                match core.configure_chan(now, chan, sig) {
                    Ok(()) => applied.defaulted.push((chan, sig)),
                    Err(e) => failures.push(ConfError {
                        file: file.to_owned(),
                        at: Location::default(),
                        kind: ConfErrorKind::Refused { chan, reason: e.to_string() },
                    }),
                }
            }
        }
        // Startup of the digital spans the file configured, once their channels are.
        for (b, sc) in digital_spans {
            match cores[b].start_span(now, sc.span) {
                Ok(()) => applied.spans.push(sc.span),
                Err(e) => failures.push(ConfError {
                    file: file.to_owned(),
                    at: sc.at,
                    kind: ConfErrorKind::SpanRefused { span: sc.span, reason: e.to_string() },
                }),
            }
        }
        applied.configured.sort_unstable_by_key(|&(c, _)| c);
        if failures.is_empty() {
            Ok(applied)
        } else {
            failures.truncate(MAX_ERRORS);
            Err(ConfErrors(failures))
        }
    }
}
