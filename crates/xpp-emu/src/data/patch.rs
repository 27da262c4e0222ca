//! The patch panel (MODEL.md PATCH rows): line ends connected to each other instead of to
//! equipment, so audio and signalling flow end to end through one or two hosts.

use xpp_proto::{Duration, Instant};

use super::equipment::{FxoLineIn, LineFeed, PhoneSide};
use super::event::{EventKind, EventLog, PortRef};
use super::{Card, DataInterface, SILENCE_U};
use crate::config::EquipmentTimings;

/// Why a patch was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PatchError {
    /// No such unit or port.
    #[error("no port {0}")]
    NoSuchPort(PortRef),
    /// The port is already patched.
    #[error("port {0} is already patched")]
    AlreadyPatched(PortRef),
    /// The two ends cannot be connected (reason).
    #[error("cannot patch {0} to {1}: {2}")]
    Unsupported(PortRef, PortRef, &'static str),
}

/// One audio channel of a line's equipment, for an audio-only bridge (MODEL: PATCH-6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AudioChannel {
    /// The phone on an FXS port (its microphone and ear).
    Phone(PortRef),
    /// The far party of the PSTN line on an FXO port.
    Pstn(PortRef),
    /// Timeslot `ts` (0..=31) of the far end of a PRI port.
    Pri {
        /// The PRI port.
        port: PortRef,
        /// The physical timeslot.
        ts: u8,
    },
    /// B channel `b` (0 = B1, 1 = B2) of the far end of a BRI port.
    Bri {
        /// The BRI port.
        port: PortRef,
        /// The B channel.
        b: u8,
    },
}

impl AudioChannel {
    const fn port(self) -> PortRef {
        match self {
            Self::Phone(p) | Self::Pstn(p) | Self::Pri { port: p, .. } | Self::Bri { port: p, .. } => p,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExState {
    Idle,
    Calling { caller: usize, since: Instant },
    Connected,
    Disconnect { notify: usize, until: Instant },
}

/// PATCH-3: an exchange line between two FXO ports.
#[derive(Debug, Clone)]
pub(crate) struct Exchange {
    state: ExState,
    release: [bool; 2],
    t: EquipmentTimings,
}

impl Exchange {
    fn new(t: EquipmentTimings) -> Self {
        Self { state: ExState::Idle, release: [false; 2], t }
    }

    fn step(&mut self, at: Instant, hooks: [bool; 2], tx: [[u8; 8]; 2]) -> [FxoLineIn; 2] {
        let ms = |v: u32| Duration::from_millis(u64::from(v));
        for (i, r) in self.release.iter_mut().enumerate() {
            if !hooks[i] {
                *r = false;
            }
        }
        self.state = match self.state {
            ExState::Idle => match (0..2).find(|&i| hooks[i] && !self.release[i] && !hooks[1 - i]) {
                Some(caller) => ExState::Calling { caller, since: at },
                None => ExState::Idle,
            },
            ExState::Calling { caller, .. } if !hooks[caller] => ExState::Idle,
            ExState::Calling { caller, .. } if hooks[1 - caller] => ExState::Connected,
            ExState::Connected => match (0..2).find(|&i| !hooks[i]) {
                Some(i) => ExState::Disconnect { notify: 1 - i, until: at + ms(self.t.disconnect_ms) },
                None => ExState::Connected,
            },
            ExState::Disconnect { notify, until } if at >= until => {
                self.release[notify] = hooks[notify];
                ExState::Idle
            }
            s => s,
        };
        let mut out = [FxoLineIn { battery: Some(false), ringing: false, audio: [SILENCE_U; 8] }; 2];
        match self.state {
            ExState::Calling { caller, since } => {
                let period = u64::from(self.t.ring_on_ms + self.t.ring_off_ms).max(1) * 1000;
                out[1 - caller].ringing =
                    (at - since).total_micros() % period < u64::from(self.t.ring_on_ms) * 1000;
            }
            ExState::Connected => {
                out[0].audio = tx[1];
                out[1].audio = tx[0];
            }
            ExState::Disconnect { notify, .. } => out[notify].battery = None,
            ExState::Idle => {}
        }
        out
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Patch {
    /// PATCH-2: FXS port `fxs` cabled to FXO port `fxo`.
    FxsFxo { fxs: PortRef, fxo: PortRef },
    /// PATCH-3.
    FxoFxo { a: PortRef, b: PortRef, ex: Exchange },
    /// PATCH-4: PRI crossover.
    PriPri { a: PortRef, b: PortRef },
    /// PATCH-5: BRI S/T cable between two ports.
    BriBri { a: PortRef, b: PortRef },
}

impl Patch {
    fn ends(&self) -> (PortRef, PortRef) {
        match self {
            Self::FxsFxo { fxs, fxo } => (*fxs, *fxo),
            Self::FxoFxo { a, b, .. } | Self::PriPri { a, b } | Self::BriBri { a, b } => (*a, *b),
        }
    }
}

/// A BRI port as the other end of a cable sees it (PATCH-5).
#[derive(Debug, Clone, Copy)]
struct BriLine {
    nt: bool,
    enabled: bool,
    state: u8,
    /// A TE on its way to F7 (sending INFO3).
    activating: bool,
    /// B1/B2 transmit this ms.
    tx: [[u8; 8]; 2],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EndKind {
    Fxs,
    Fxo,
    Pri,
    Bri,
}

impl DataInterface {
    fn audio_io(
        &mut self,
        c: AudioChannel,
    ) -> Option<(&mut super::g711::Generator, &mut super::g711::Recorder)> {
        match c {
            AudioChannel::Phone(p) => Some(self.phone_mut(p.unit, p.port)?.audio_io()),
            AudioChannel::Pstn(p) => Some(self.pstn_mut(p.unit, p.port)?.audio_io()),
            AudioChannel::Pri { port, ts } => self.pri_far_end_mut(port.unit, port.port)?.audio_io(ts),
            AudioChannel::Bri { port, b } => self.bri_far_end_mut(port.unit, port.port)?.audio_io(b),
        }
    }

    /// Bridges the audio of two equipment channels (MODEL: PATCH-6): from now on what `a`'s
    /// equipment hears is what `b`'s equipment sends, and the other way round, 1 ms later.
    /// Signalling stays with the equipment (hook, ring, layer 1 are driven as before); the
    /// bridge replaces whatever the two equipments were playing. A channel is in at most one
    /// bridge.
    // Decision: a bridge joins equipment, not line ends, so it works between any two audio
    // channels of any kinds (a phone talking to a PRI timeslot); line patches (PATCH-2..5)
    // are the ones that carry signalling.
    pub fn bridge(&mut self, a: AudioChannel, b: AudioChannel) -> Result<(), PatchError> {
        for c in [a, b] {
            self.check_bridgeable(c)?;
        }
        if a == b {
            return Err(PatchError::Unsupported(a.port(), b.port(), "a channel cannot be bridged to itself"));
        }
        for c in [a, b] {
            if let Some((g, r)) = self.audio_io(c) {
                g.set(super::g711::Source::Silence);
                r.set_tap(true);
            }
        }
        self.bridges.push((a, b));
        Ok(())
    }

    fn check_bridgeable(&mut self, c: AudioChannel) -> Result<(), PatchError> {
        if self.audio_io(c).is_none() {
            return Err(PatchError::NoSuchPort(c.port()));
        }
        if self.bridges.iter().any(|&(x, y)| x == c || y == c) || self.remote.iter().any(|r| r.0 == c) {
            return Err(PatchError::AlreadyPatched(c.port()));
        }
        Ok(())
    }

    /// Bridges the audio of channel `c` to whatever the other side of `link` is bridged to,
    /// in another device (MODEL: PATCH-7): as [`bridge`](Self::bridge), through the link's
    /// 4 ms elastic buffer, moved once per tick of this device's clock.
    pub fn bridge_remote(
        &mut self,
        c: AudioChannel,
        link: &super::CrossLink,
        side: super::LinkSide,
    ) -> Result<(), PatchError> {
        self.check_bridgeable(c)?;
        if let Some((g, r)) = self.audio_io(c) {
            g.set(super::g711::Source::Silence);
            r.set_tap(true);
        }
        self.remote.push((c, link.clone(), side));
        Ok(())
    }

    /// Removes the bridge (local or to another device) on channel `c` (the equipment plays
    /// silence); whether one existed.
    pub fn unbridge(&mut self, c: AudioChannel) -> bool {
        if let Some(i) = self.remote.iter().position(|r| r.0 == c) {
            self.remote.remove(i);
            if let Some((g, r)) = self.audio_io(c) {
                g.set(super::g711::Source::Silence);
                r.set_tap(false);
            }
            return true;
        }
        let Some(i) = self.bridges.iter().position(|&(x, y)| x == c || y == c) else { return false };
        let (a, b) = self.bridges.remove(i);
        for c in [a, b] {
            if let Some((g, r)) = self.audio_io(c) {
                g.set(super::g711::Source::Silence);
                r.set_tap(false);
            }
        }
        true
    }

    /// MODEL: PATCH-6 — one ms of every audio bridge.
    fn run_bridges(&mut self) {
        let bridges = core::mem::take(&mut self.bridges);
        let mut from_a = Vec::new();
        let mut from_b = Vec::new();
        for &(a, b) in &bridges {
            from_a.clear();
            from_b.clear();
            if let Some((_, r)) = self.audio_io(a) {
                r.drain_tap(&mut from_a);
            }
            if let Some((_, r)) = self.audio_io(b) {
                r.drain_tap(&mut from_b);
            }
            if let Some((g, _)) = self.audio_io(b) {
                g.feed(&from_a);
            }
            if let Some((g, _)) = self.audio_io(a) {
                g.feed(&from_b);
            }
        }
        self.bridges = bridges;
        let remote = core::mem::take(&mut self.remote);
        for (c, link, side) in &remote {
            from_a.clear();
            if let Some((_, r)) = self.audio_io(*c) {
                r.drain_tap(&mut from_a);
            }
            if let Some(chunk) = link.exchange(*side, &from_a)
                && let Some((g, _)) = self.audio_io(*c)
            {
                g.feed(&chunk);
            }
        }
        self.remote = remote;
    }

    fn end_kind(&self, p: PortRef) -> Result<EndKind, PatchError> {
        let card =
            self.units.get(usize::from(p.unit)).and_then(Option::as_ref).ok_or(PatchError::NoSuchPort(p))?;
        let ok = |b: bool, k| if b { Ok(k) } else { Err(PatchError::NoSuchPort(p)) };
        match card {
            Card::Fxs(u) => ok(u.ports.get(usize::from(p.port)).is_some_and(|s| s.present), EndKind::Fxs),
            Card::Fxo(u) => ok(u.ports.get(usize::from(p.port)).is_some_and(|s| s.present), EndKind::Fxo),
            Card::Pri(u) => ok(p.port < u.nports, EndKind::Pri),
            Card::Bri(u) => ok(p.port < u.nports, EndKind::Bri),
            Card::Echo(_) => Err(PatchError::NoSuchPort(p)),
        }
    }

    fn set_patched(&mut self, p: PortRef, on: bool) {
        match self.units.get_mut(usize::from(p.unit)).and_then(Option::as_mut) {
            Some(Card::Fxs(u)) => {
                if let Some(s) = u.ports.get_mut(usize::from(p.port)) {
                    s.patched = on;
                    s.side = PhoneSide { off_hook: false, key: None, mic: [SILENCE_U; 8] };
                }
            }
            Some(Card::Fxo(u)) => {
                if let Some(s) = u.ports.get_mut(usize::from(p.port)) {
                    s.patched = on;
                    s.input = FxoLineIn::IDLE;
                }
            }
            Some(Card::Pri(u)) => {
                if let Some(s) = u.ports.get_mut(usize::from(p.port)) {
                    s.patched = on;
                }
            }
            Some(Card::Bri(u)) => {
                if let Some(s) = u.ports.get_mut(usize::from(p.port)) {
                    s.patched = on;
                    s.peer_b = [[0xD5; 8]; 2];
                    // Back to a connected, idle far end after the cable is pulled.
                    s.far.connected = true;
                    s.far.active = false;
                }
            }
            _ => {}
        }
    }

    fn bri_port_mut(&mut self, p: PortRef) -> Option<&mut super::bri::BriPort> {
        match self.units.get_mut(usize::from(p.unit)).and_then(Option::as_mut) {
            Some(Card::Bri(u)) => u.ports.get_mut(usize::from(p.port)),
            _ => None,
        }
    }

    /// A BRI port's view for the cable.
    fn bri_line(&self, p: PortRef) -> Option<BriLine> {
        let Some(Card::Bri(u)) = self.units.get(usize::from(p.unit)).and_then(Option::as_ref) else {
            return None;
        };
        let port = u.ports.get(usize::from(p.port))?;
        let tx = super::bri::b_tx(port, self.pcm_of(p.unit, 0), usize::from(p.port));
        Some(BriLine {
            nt: port.nt,
            enabled: port.enabled(),
            state: port.state,
            activating: port.activating(),
            tx,
        })
    }

    /// MODEL: PATCH-5 — one ms of a BRI cable between `a` and `b`.
    fn run_bri_cable(&mut self, a: PortRef, b: PortRef) {
        let (Some(la), Some(lb)) = (self.bri_line(a), self.bri_line(b)) else { return };
        // Decision: a simplified I.430 coupling. A TE sees a signal while the NT side is
        // enabled and in G2/G3 (INFO2/INFO4); an NT sees one while the TE side is enabled and in
        // F7 or activating toward it (INFO3). Two TEs or two NTs see no signal they can
        // synchronise to: as an unconnected far end (INFO0), so they never activate.
        let sees = |me: &BriLine, peer: &BriLine| {
            if me.nt == peer.nt {
                return None;
            }
            let signal = if me.nt { peer.state == 7 || peer.activating } else { matches!(peer.state, 2 | 3) };
            Some(peer.enabled && signal)
        };
        let (sa, sb) = (sees(&la, &lb), sees(&lb, &la));
        let mut frames_ab = Vec::new();
        let mut frames_ba = Vec::new();
        for (p, seen, peer_tx, out) in [(a, sa, lb.tx, &mut frames_ab), (b, sb, la.tx, &mut frames_ba)] {
            if let Some(port) = self.bri_port_mut(p) {
                port.far.connected = seen.is_some();
                port.far.active = seen.unwrap_or(false);
                port.peer_b = peer_tx;
                out.extend(port.far.from_host.drain(..));
            }
        }
        for (p, frames) in [(b, frames_ab), (a, frames_ba)] {
            if let Some(port) = self.bri_port_mut(p) {
                for f in frames {
                    port.far.send_frame(Instant::ZERO, &f);
                }
            }
        }
    }

    /// Connects two line ends instead of their equipment (MODEL: PATCH-1..4): FXS↔FXO (a
    /// cable: line state, hook and audio), FXO↔FXO (an exchange line: seizing one end rings
    /// the other), PRI↔PRI (a crossover), BRI↔BRI (an S/T cable: a TE and an NT port
    /// activate each other, D-channel frames and B channels pass; PATCH-5). FXS↔FXS is
    /// refused (PATCH-1).
    pub fn patch(&mut self, a: PortRef, b: PortRef) -> Result<(), PatchError> {
        let (ka, kb) = (self.end_kind(a)?, self.end_kind(b)?);
        for p in [a, b] {
            self.check_unpatched(p)?;
        }
        if a == b {
            return Err(PatchError::Unsupported(a, b, "a port cannot be patched to itself"));
        }
        let patch = match (ka, kb) {
            (EndKind::Fxs, EndKind::Fxo) => Patch::FxsFxo { fxs: a, fxo: b },
            (EndKind::Fxo, EndKind::Fxs) => Patch::FxsFxo { fxs: b, fxo: a },
            (EndKind::Fxo, EndKind::Fxo) => Patch::FxoFxo { a, b, ex: Exchange::new(self.cfg.timings) },
            (EndKind::Pri, EndKind::Pri) => Patch::PriPri { a, b },
            (EndKind::Fxs, EndKind::Fxs) => {
                return Err(PatchError::Unsupported(a, b, "FXS to FXS (PATCH-1)"));
            }
            (EndKind::Bri, EndKind::Bri) => Patch::BriBri { a, b },
            _ => return Err(PatchError::Unsupported(a, b, "line types do not connect")),
        };
        self.set_patched(a, true);
        self.set_patched(b, true);
        self.patches.push(patch);
        Ok(())
    }

    fn check_unpatched(&self, p: PortRef) -> Result<(), PatchError> {
        let local = self.patches.iter().any(|x| {
            let (m, n) = x.ends();
            m == p || n == p
        });
        if local || self.remote_lines.iter().any(|r| r.0 == p) {
            return Err(PatchError::AlreadyPatched(p));
        }
        Ok(())
    }

    /// Connects FXS or FXO port `port` to a line end in another device through `link`
    /// (MODEL: PATCH-7 with PATCH-2): the other device does the same with the other
    /// [`LinkSide`](super::LinkSide). An FXS end sends its line state (battery, polarity,
    /// ringing) and hears the other end's hook; an FXO end the reverse; audio crosses the
    /// link's elastic buffer. Two FXS or two FXO ends see nothing connected.
    pub fn patch_remote(
        &mut self,
        port: PortRef,
        link: &super::CrossLink,
        side: super::LinkSide,
    ) -> Result<(), PatchError> {
        match self.end_kind(port)? {
            EndKind::Fxs | EndKind::Fxo => {}
            _ => return Err(PatchError::Unsupported(port, port, "only FXS and FXO lines cross devices")),
        }
        self.check_unpatched(port)?;
        self.set_patched(port, true);
        self.remote_lines.push((port, link.clone(), side));
        Ok(())
    }

    /// MODEL: PATCH-7 — one ms of every line patch to another device.
    fn run_remote_lines(&mut self, at: Instant, log: &mut EventLog) {
        use super::g711::{ulaw_decode, ulaw_encode};
        use super::link::LineSignal;
        let lines = core::mem::take(&mut self.remote_lines);
        for (p, link, side) in &lines {
            let silence = [SILENCE_U; 8];
            let to_ulaw = |c: Option<[i16; 8]>| c.map_or(silence, |c| c.map(ulaw_encode));
            match self.end_kind(*p) {
                Ok(EndKind::Fxs) => {
                    let (feed, tx) = self.fxs_out(*p);
                    let mine = LineSignal::Fxs {
                        battery: feed.feeds_loop().then_some(feed.reversed()),
                        ringing: feed == LineFeed::Ringing,
                    };
                    let (peer, audio) = link.exchange_line(*side, mine, &tx.map(ulaw_decode));
                    let hook = matches!(peer, Some(LineSignal::Fxo { off_hook: true }));
                    let mic = if hook { to_ulaw(audio) } else { silence };
                    self.set_fxs_side(*p, PhoneSide { off_hook: hook, key: None, mic }, at, log);
                }
                Ok(EndKind::Fxo) => {
                    let (hook, tx) = self.fxo_out(*p);
                    let mine = LineSignal::Fxo { off_hook: hook };
                    let (peer, audio) = link.exchange_line(*side, mine, &tx.map(ulaw_decode));
                    let input = match peer {
                        Some(LineSignal::Fxs { battery, ringing }) => {
                            FxoLineIn { battery, ringing, audio: to_ulaw(audio) }
                        }
                        _ => FxoLineIn::IDLE,
                    };
                    self.set_fxo_input(*p, input);
                }
                _ => {}
            }
        }
        self.remote_lines = lines;
    }

    /// Removes the patch on `port` (both ends go back to their equipment); whether one existed.
    pub fn unpatch(&mut self, port: PortRef) -> bool {
        if let Some(i) = self.remote_lines.iter().position(|r| r.0 == port) {
            self.remote_lines.remove(i);
            self.set_patched(port, false);
            return true;
        }
        let Some(i) = self.patches.iter().position(|x| {
            let (m, n) = x.ends();
            m == port || n == port
        }) else {
            return false;
        };
        let (m, n) = self.patches.remove(i).ends();
        self.set_patched(m, false);
        self.set_patched(n, false);
        true
    }

    fn fxs_out(&self, p: PortRef) -> (LineFeed, [u8; 8]) {
        match (self.units.get(usize::from(p.unit)).and_then(Option::as_ref), self.pcm_of(p.unit, 0)) {
            (Some(Card::Fxs(u)), Some(pcm)) => u.output(p.port, pcm),
            _ => (LineFeed::Open, [SILENCE_U; 8]),
        }
    }

    fn fxo_out(&self, p: PortRef) -> (bool, [u8; 8]) {
        match (self.units.get(usize::from(p.unit)).and_then(Option::as_ref), self.pcm_of(p.unit, 0)) {
            (Some(Card::Fxo(u)), Some(pcm)) => u.output(p.port, pcm),
            _ => (false, [SILENCE_U; 8]),
        }
    }

    fn set_fxs_side(&mut self, p: PortRef, side: PhoneSide, at: Instant, log: &mut EventLog) {
        if let Some(Card::Fxs(u)) = self.units.get_mut(usize::from(p.unit)).and_then(Option::as_mut)
            && let Some(s) = u.ports.get_mut(usize::from(p.port))
        {
            if s.side.off_hook != side.off_hook {
                log.push(at, Some(p), EventKind::Hook(side.off_hook));
            }
            s.side = side;
        }
    }

    fn set_fxo_input(&mut self, p: PortRef, input: FxoLineIn) {
        if let Some(Card::Fxo(u)) = self.units.get_mut(usize::from(p.unit)).and_then(Option::as_mut)
            && let Some(s) = u.ports.get_mut(usize::from(p.port))
        {
            s.input = input;
        }
    }

    /// Runs every patch for the ms at `at` (between the equipment and scan phases).
    pub(super) fn run_patches(&mut self, at: Instant) {
        if !self.bridges.is_empty() || !self.remote.is_empty() {
            self.run_bridges();
        }
        let mut patches = core::mem::take(&mut self.patches);
        let mut log = core::mem::take(&mut self.events);
        if !self.remote_lines.is_empty() {
            self.run_remote_lines(at, &mut log);
        }
        for patch in &mut patches {
            match patch {
                Patch::FxsFxo { fxs, fxo } => {
                    // MODEL: PATCH-2
                    let (feed, fxs_tx) = self.fxs_out(*fxs);
                    let (hook, fxo_tx) = self.fxo_out(*fxo);
                    let battery = feed.feeds_loop().then_some(feed.reversed());
                    let ringing = feed == LineFeed::Ringing;
                    self.set_fxo_input(*fxo, FxoLineIn { battery, ringing, audio: fxs_tx });
                    let mic = if hook { fxo_tx } else { [SILENCE_U; 8] };
                    self.set_fxs_side(*fxs, PhoneSide { off_hook: hook, key: None, mic }, at, &mut log);
                }
                Patch::FxoFxo { a, b, ex } => {
                    let (ha, ta) = self.fxo_out(*a);
                    let (hb, tb) = self.fxo_out(*b);
                    let [ia, ib] = ex.step(at, [ha, hb], [ta, tb]);
                    self.set_fxo_input(*a, ia);
                    self.set_fxo_input(*b, ib);
                }
                Patch::BriBri { a, b } => self.run_bri_cable(*a, *b),
                Patch::PriPri { a, b } => {
                    // MODEL: PATCH-4
                    let out = |d: &Self, p: PortRef| match (
                        d.units.get(usize::from(p.unit)).and_then(Option::as_ref),
                        d.pcm_of(p.unit, p.port),
                    ) {
                        (Some(Card::Pri(u)), Some(pcm)) => Some(u.output(p.port, pcm)),
                        _ => None,
                    };
                    let (Some(ta), Some(tb)) = (out(self, *a), out(self, *b)) else { continue };
                    for (p, peer) in [(*a, &tb), (*b, &ta)] {
                        if let Some(Card::Pri(u)) =
                            self.units.get_mut(usize::from(p.unit)).and_then(Option::as_mut)
                        {
                            u.receive_from(p.port, peer);
                        }
                    }
                }
            }
        }
        self.patches = patches;
        self.events = log;
    }
}
