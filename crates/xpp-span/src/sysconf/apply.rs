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
//! - digital settings (`span=` lines, channels of PRI/BRI spans, `dynamic=`): validated (the
//!   span exists and is digital, the channel belongs to a digital span, its signalling is in
//!   the port's sigcap) and listed as [`Deferred`]: accepted, taking effect with the digital
//!   spans; a `span=` line's timing priority is given to the span now (the master election
//!   reads it);
//! - tone zones: recorded ([`Applied::zones`], `us` when none is loaded).
//!
//! Every error points at the line that caused it (`file:line:column`).

use crate::dahdi::{Law, Sig};
use crate::span::ChanKind;
use crate::sysconf::{ConfError, ConfErrorKind, ConfErrors, Location, MAX_ERRORS, SpanConf, SystemConf};
use crate::xbus::XbusCore;
use crate::{Instant, SigCap};

/// A setting accepted now that takes effect with the digital spans.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Deferred {
    /// A `span=` line for an existing digital span (its timing priority is applied now).
    Span(SpanConf),
    /// A channel of a digital span with its signalling (`bchan`, `dchan`, `hardhdlc`, ...).
    Channel {
        /// Channel number.
        chan: u32,
        /// Its signalling.
        sig: Sig,
        /// The keyword that configured it.
        keyword: &'static str,
    },
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
    /// Digital settings accepted for the digital spans.
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
        for (&span, sc) in &self.spans {
            let found = cores.iter().position(|c| c.span(span).is_some());
            match found.and_then(|b| cores[b].span(span)) {
                None => err(sc.at, ConfErrorKind::NoSuchSpan(span)),
                Some(s) if !s.is_digital() => err(sc.at, ConfErrorKind::NotDigitalSpan(span)),
                Some(_) => applied.deferred.push(Deferred::Span(*sc)),
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
                applied.deferred.push(Deferred::Channel { chan, sig: c.sig, keyword: c.keyword });
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
        // Decision: a `span=` line's timing priority goes to the span now: the election and
        // the status views read it; the rest of the line waits for the digital spans.
        for sc in self.spans.values() {
            for core in &mut cores {
                core.set_timing_priority(sc.span, sc.timing);
            }
        }
        let mut failures = Vec::new();
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
        if failures.is_empty() {
            Ok(applied)
        } else {
            failures.truncate(MAX_ERRORS);
            Err(ConfErrors(failures))
        }
    }
}
