//! Digital spans on the bus core: SPANCONFIG and startup of PRI spans, the unit's clock
//! source, CAS bits, and soft HDLC on D-channels (docs/reference/xpp-protocol.md §9.3,
//! docs/reference/dahdi-span-model.md §7, §8, §10, §12).

use xpp_chan::hdlc::HdlcRate;
use xpp_chan::pri::{LineSetup, LineSetupError, Protocol, clock_source_writes};
use xpp_proto::Instant;
use xpp_proto::wire::{Address, Message, RegAccess, RegCmd, Repr};

use super::dchan::{HdlcStats, SoftHdlc, WriteError};
use super::{BusState, ChanError, XbusCore};
use crate::dahdi::Sig;
use crate::span::{ChanKind, XpdKind};

/// Why a span operation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpanError {
    /// No span with this number on this bus.
    #[error("no span {0} on this bus")]
    NoSuchSpan(u32),
    /// The span has no line to configure (an analog span, or a BRI port: its model is not in
    /// this version).
    #[error("span {0} takes no line configuration")]
    NotConfigurable(u32),
    /// The line configuration is not one the span's protocol takes.
    #[error("span {span}: {error}")]
    LineSetup {
        /// The span.
        span: u32,
        /// What was refused.
        error: LineSetupError,
    },
    /// The bus is not running (its device is gone, or not on this host).
    #[error("span {0}: the bus is not running")]
    NotRunning(u32),
}

impl XbusCore {
    fn span_index(&self, spanno: u32) -> Result<usize, SpanError> {
        self.spans.iter().position(|s| s.spanno == spanno).ok_or(SpanError::NoSuchSpan(spanno))
    }

    /// Whether `setup` is one span `spanno` takes (for validating a whole `system.conf`
    /// before applying any of it).
    pub fn check_span_setup(&self, spanno: u32, setup: LineSetup) -> Result<(), SpanError> {
        let si = self.span_index(spanno)?;
        let span = &self.spans[si];
        let Some(pri) = span.line.pri() else {
            return if span.is_digital() { Ok(()) } else { Err(SpanError::NotConfigurable(spanno)) };
        };
        let protocol = pri.line.protocol();
        xpp_chan::pri::line_config_writes(protocol, setup, 1, false)
            .map(|_| ())
            .map_err(|error| SpanError::LineSetup { span: spanno, error })
    }

    /// SPANCONFIG (a `span=` line): the timing priority (`0` never the clock source, else lower
    /// wins) and, on a PRI span, the line configuration (docs/reference/xpp-protocol.md §9.3): the
    /// framer is programmed and the unit's clock source chosen again. A BRI span takes the
    /// timing priority only. Nothing changes on a refusal.
    pub fn configure_span(
        &mut self,
        spanno: u32,
        setup: Option<LineSetup>,
        timing_priority: u8,
    ) -> Result<(), SpanError> {
        let si = self.span_index(spanno)?;
        if !self.spans[si].is_digital() {
            return Err(SpanError::NotConfigurable(spanno));
        }
        if self.state == BusState::Removed || self.state == BusState::Stopped {
            return Err(SpanError::NotRunning(spanno));
        }
        if let Some(pri) = self.spans[si].line.pri_mut() {
            let setup = setup.unwrap_or_else(|| pri.line.setup());
            pri.line
                .configure(setup, timing_priority)
                .map_err(|error| SpanError::LineSetup { span: spanno, error })?;
        }
        self.spans[si].timing_priority = timing_priority;
        self.drain_span_commands(si);
        self.select_pri_clocks();
        self.push_event(super::XbusEvent::TimingChanged);
        Ok(())
    }

    /// Span startup (after its channels are configured, as `dahdi_cfg` does): on a PRI span,
    /// T1 clear-channel marking (channels with a clear-derived signalling carry no robbed
    /// bits) and the transmitter out of tristate. Starting a started span does it again.
    pub fn start_span(&mut self, now: Instant, spanno: u32) -> Result<(), SpanError> {
        let si = self.span_index(spanno)?;
        if !self.spans[si].is_digital() {
            return Err(SpanError::NotConfigurable(spanno));
        }
        let (first, n) = (self.spans[si].first, self.spans[si].channels as usize);
        let clear = self.chans[first..first + n]
            .iter()
            .enumerate()
            .filter(|(_, c)| c.chan.sig().is_clear_derived())
            .fold(0u32, |m, (i, _)| m | 1 << i);
        if let Some(pri) = self.spans[si].line.pri_mut() {
            pri.line.start(now, clear);
            pri.started = true;
        }
        if let Some(bri) = self.spans[si].line.bri_mut() {
            bri.line.start(now);
            bri.started = true;
        }
        self.drain_span_commands(si);
        Ok(())
    }

    /// Whether span `spanno` was started ([`start_span`](Self::start_span)); `None` for a
    /// span without a line model.
    pub fn span_started(&self, spanno: u32) -> Option<bool> {
        let span = self.span(spanno)?;
        span.line.pri().map(|p| p.started).or_else(|| span.line.bri().map(|b| b.started))
    }

    /// The PRI line configuration of span `spanno`.
    pub fn span_setup(&self, spanno: u32) -> Option<LineSetup> {
        self.span(spanno).and_then(|s| s.line.pri()).map(|p| p.line.setup())
    }

    /// The span's register commands to the paced queue, now (a standby bus sends nothing).
    fn drain_span_commands(&mut self, si: usize) {
        let now = self.last_tick.unwrap_or(Instant::from_millis(0));
        while let Some(cmd) = self.spans[si].line.poll_transmit(now) {
            if self.state == BusState::Running {
                self.cmds.push(cmd);
            }
        }
    }

    /// Chooses each PRI unit's clock source (docs/reference/xpp-protocol.md §9.3): among its
    /// ports without alarms and with a timing priority above 0, the lowest priority (the
    /// lowest port on a tie); PC2..PC4 are written (portnum 0) when the choice moves to
    /// another port.
    pub(super) fn select_pri_clocks(&mut self) {
        for unit in 0..8u8 {
            let mut best: Option<(u8, usize)> = None;
            let mut any = false;
            for (si, s) in self.spans.iter().enumerate() {
                if s.addr.unit() != unit || s.line.pri().is_none() {
                    continue;
                }
                any = true;
                let eligible = !s.alarms.in_alarm() && s.line.layer1_up() && s.timing_priority > 0;
                if eligible && best.is_none_or(|(p, _)| s.timing_priority < p) {
                    best = Some((s.timing_priority, si));
                }
            }
            if !any {
                continue;
            }
            let chosen = best.map(|(_, si)| si);
            let mut write = None;
            for si in 0..self.spans.len() {
                if self.spans[si].addr.unit() != unit {
                    continue;
                }
                let port = self.spans[si].addr.subunit();
                if let Some(pri) = self.spans[si].line.pri_mut() {
                    let is = Some(si) == chosen;
                    if is && !pri.clock_source {
                        write = Some(port);
                    }
                    pri.clock_source = is;
                }
            }
            if let (Some(port), Some(addr)) = (write, Address::new(unit, 0))
                && self.state == BusState::Running
            {
                for (reg, val) in clock_source_writes(port) {
                    let cmd = RegCmd::Reg(RegAccess::write(0, reg, val));
                    self.cmds.push(Repr::command(addr, Message::RegisterRequest(cmd)));
                }
            }
        }
    }

    /// The unit port recovering the clock for PRI unit `unit`, if one does.
    pub fn pri_clock_source(&self, unit: u8) -> Option<u8> {
        self.spans
            .iter()
            .filter(|s| s.addr.unit() == unit)
            .find(|s| s.line.pri().is_some_and(|p| p.clock_source))
            .map(|s| s.addr.subunit())
    }

    /// What a newly configured signalling means for a digital channel (called by
    /// [`configure_chan`](Self::configure_chan)): soft HDLC on an HDLCFCS/HDLCRAW channel
    /// with a timeslot (created, or dropped when the channel leaves HDLC); a T1 span's
    /// signalling mode (CCS once a channel is a D-channel, CAS when its first channel gets any
    /// other signalling).
    pub(super) fn digital_chan_configured(&mut self, ci: usize, sig: Sig) {
        let hdlc = matches!(sig, Sig::HdlcFcs | Sig::HdlcRaw);
        let ch = &mut self.chans[ci];
        if hdlc && ch.pcm.is_some() {
            if ch.hdlc.as_ref().is_none_or(|h| h.fcs() != (sig == Sig::HdlcFcs)) {
                ch.hdlc = Some(Box::new(SoftHdlc::new(sig == Sig::HdlcFcs, ch.hdlc_rate)));
            }
        } else {
            ch.hdlc = None;
        }
        self.refresh(ci);
        let ch = &self.chans[ci];
        let (spanno, chanpos, bri_dchan) =
            (ch.spanno, ch.chan.chanpos(), matches!(ch.kind, ChanKind::BriDchan));
        let dchan_sig = matches!(sig, Sig::HdlcFcs | Sig::HdlcRaw | Sig::HardHdlc);
        // A BRI D-channel takes frames (the chip's HDLC) while it is HARDHDLC.
        if bri_dchan
            && let Ok(si) = self.span_index(spanno)
            && let Some(bri) = self.spans[si].line.bri_mut()
        {
            bri.line.set_dchan_open(sig == Sig::HardHdlc);
        }
        if let Ok(si) = self.span_index(spanno)
            && let XpdKind::Pri(map) = self.spans[si].kind
            && map.protocol() == xpp_proto::wire::pri::PriProtocol::T1
            && let Some(pri) = self.spans[si].line.pri_mut()
        {
            if dchan_sig {
                pri.line.set_t1_cas(false);
            } else if chanpos == 1 && sig != Sig::None {
                pri.line.set_t1_cas(true);
            }
        }
    }

    /// Soft HDLC, once per tick: each HDLC channel's received chunk through its receiver, its
    /// transmitted chunk from its transmitter. Errors are channel events unless the span is in
    /// alarm.
    pub(super) fn run_hdlc(&mut self) {
        let Self { chans, pcm, spans, slots, pending, .. } = self;
        for span in spans.iter() {
            let alarmed = span.alarms.in_alarm();
            // The dense slots find the HDLC channels without touching the others.
            for i in span.first..span.first + span.channels as usize {
                let (true, Some((x, b))) = (slots[i].hdlc, slots[i].pcm) else { continue };
                let ch = &mut chans[i];
                let Some(h) = ch.hdlc.as_mut() else { continue };
                let p = &mut pcm[usize::from(x)];
                let b = usize::from(b);
                let rx = p.rx[b];
                let events = ch.chan.events_mut();
                let mut pushed = false;
                h.tick(&rx, &mut p.tx[b], |e| {
                    if !alarmed {
                        events.push(e);
                        pushed = true;
                    }
                });
                if pushed {
                    pending.mark(i);
                }
            }
        }
    }

    fn hdlc_index(&self, channo: u32) -> Result<usize, ChanError> {
        let ci = self.running_index(channo)?;
        if self.chans[ci].hdlc.is_none() {
            return Err(ChanError::NotHdlc(channo));
        }
        Ok(ci)
    }

    /// The span index of a BRI D-channel configured HARDHDLC.
    fn bri_dchan_span(&self, channo: u32) -> Result<Option<usize>, ChanError> {
        let ci = self.running_index(channo)?;
        let ch = &self.chans[ci];
        if !matches!(ch.kind, ChanKind::BriDchan) {
            return Ok(None);
        }
        if ch.chan.sig() != Sig::HardHdlc {
            return Err(ChanError::NotHdlc(channo));
        }
        Ok(self.span_index(ch.spanno).ok())
    }

    /// The oldest frame received on HDLC channel `channo` into `out` (in FCS mode with its two
    /// FCS bytes; truncated to `out`, the rest dropped); its length, `None` when none waits.
    /// A BRI D-channel (HARDHDLC) gives the chip's frames, also with their two FCS bytes.
    pub fn read_frame(&mut self, channo: u32, out: &mut [u8]) -> Result<Option<usize>, ChanError> {
        if let Some(si) = self.bri_dchan_span(channo)? {
            return Ok(self.spans[si].line.bri_mut().and_then(|b| b.line.read_frame(out)));
        }
        let ci = self.hdlc_index(channo)?;
        Ok(self.chans[ci].hdlc.as_mut().and_then(|h| h.read_frame(out)))
    }

    /// Queues a frame on HDLC channel `channo` (in FCS mode its last two bytes are
    /// placeholders for the FCS, DAHDI's convention). [`ChanError::Full`] when every transmit
    /// slot is taken (try after the next tick), [`ChanError::BadFrame`] for a frame too long
    /// or too short.
    pub fn write_frame(&mut self, channo: u32, frame: &[u8]) -> Result<(), ChanError> {
        if let Some(si) = self.bri_dchan_span(channo)? {
            // The chip adds the FCS: the two placeholders are dropped (DAHDI's hdlc getbuf).
            let payload = frame.len().checked_sub(2).filter(|&n| n > 0).ok_or(ChanError::BadFrame(channo))?;
            let bri = self.spans[si].line.bri_mut().ok_or(ChanError::NotHdlc(channo))?;
            return bri.line.send_frame(&frame[..payload]).map_err(|e| match e {
                xpp_chan::bri::SendError::Full => ChanError::Full(channo),
                xpp_chan::bri::SendError::BadLength(_) => ChanError::BadFrame(channo),
            });
        }
        let ci = self.hdlc_index(channo)?;
        let h = self.chans[ci].hdlc.as_mut().ok_or(ChanError::NotHdlc(channo))?;
        h.write_frame(frame).map_err(|e| match e {
            WriteError::Full => ChanError::Full(channo),
            WriteError::BadLength => ChanError::BadFrame(channo),
        })
    }

    /// DAHDI's HDLC_RATE on channel `channo`: 56 kbit/s puts the HDLC bit stream in the seven
    /// most significant bits of each timeslot byte (the least significant sent as 1, ignored
    /// when received), 64 kbit/s in all eight (the default). Kept on the channel, so it holds
    /// for soft HDLC configured later; a frame half received or half sent when it changes is
    /// dropped. Accepted in standby (configuration); no effect on a BRI D-channel, whose chip
    /// does the HDLC.
    pub fn set_hdlc_rate(&mut self, channo: u32, rate: HdlcRate) -> Result<(), ChanError> {
        let ci = self.configurable_index(channo)?;
        let ch = &mut self.chans[ci];
        ch.hdlc_rate = rate;
        if let Some(h) = ch.hdlc.as_mut() {
            h.set_rate(rate);
        }
        Ok(())
    }

    /// Counters of HDLC channel `channo`.
    pub fn hdlc_stats(&self, channo: u32) -> Result<HdlcStats, ChanError> {
        let ci = self.index(channo)?;
        self.chans[ci].hdlc.as_ref().map(|h| h.stats()).ok_or(ChanError::NotHdlc(channo))
    }

    /// Frames waiting to be read on HDLC channel `channo`.
    pub fn frames_waiting(&self, channo: u32) -> Result<usize, ChanError> {
        let ci = self.index(channo)?;
        self.chans[ci].hdlc.as_ref().map(|h| h.frames_waiting()).ok_or(ChanError::NotHdlc(channo))
    }

    /// DAHDI's SETTXBITS on a CAS channel of a PRI span: the ABCD bits (A in bit 3) sent for
    /// it (while the span is in alarm they are kept and the idle bits go out).
    pub fn set_tx_bits(&mut self, now: Instant, channo: u32, abcd: u8) -> Result<(), ChanError> {
        self.running_index(channo)?;
        let (si, pos) = self.cas_position(channo)?;
        if let Some(pri) = self.spans[si].line.pri_mut() {
            pri.line.set_cas(now, pos, abcd);
        }
        self.drain_span_commands(si);
        Ok(())
    }

    /// DAHDI's GETRXBITS: the ABCD bits last received for a CAS channel (`None` before any).
    pub fn rx_bits(&self, channo: u32) -> Result<Option<u8>, ChanError> {
        let (si, pos) = self.cas_position(channo)?;
        Ok(self.spans[si].line.pri().and_then(|p| p.line.rx_cas(pos)))
    }

    /// The span index and 0-based position of `channo` on a PRI span that carries CAS.
    fn cas_position(&self, channo: u32) -> Result<(usize, usize), ChanError> {
        let ci = self.index(channo)?;
        let (spanno, pos) = (self.chans[ci].spanno, self.chans[ci].chan.chanpos() as usize - 1);
        let si = self.span_index(spanno).map_err(|_| ChanError::NoSuchChannel(channo))?;
        match self.spans[si].line.pri() {
            Some(p) if p.line.cas_layout().is_some() => Ok((si, pos)),
            _ => Err(ChanError::NotCas(channo)),
        }
    }

    /// The protocol of PRI span `spanno`.
    pub fn pri_protocol(&self, spanno: u32) -> Option<Protocol> {
        self.span(spanno).and_then(|s| s.line.pri()).map(|p| p.line.protocol())
    }
}
