//! One BRI S/T port (docs/reference/xpp-protocol.md §9.4), sans-IO: layer-1 polling, activation
//! with its timer, and the D-channel carried in multibyte register commands both ways.
//!
//! - **Layer 1**: register 0x30 is read (portnum = the port) every 500 ms. Bits 0-3 are the
//!   I.430 state (TE: F0, F2..F8; NT: G0..G4), bit 4 frame sync, bit 6 INFO0; layer 1 is up in
//!   F7 (TE) or G3 (NT). Three polls in a row without an answer count as down.
//! - **Activation** ([`BriLine::start`]): 0x30 := 0x60 on a TE port, 0xE0 on an NT port, then
//!   the activation timer (T3 = 8000 ms for TE, T1 = 2500 ms for NT). Decision: when it runs out
//!   with layer 1 still down, or when layer 1 of a started port goes down, the request is
//!   written again and the timer restarts, so a line plugged in later comes up without the PBX
//!   doing anything; the span stays in RED meanwhile. [`BriLine::stop`] writes 0x40
//!   (deactivate) and ends the requests.
//! - **D-channel, out**: a frame (without FCS: the chip adds it) goes as multibyte
//!   REGISTER_REQUESTs of at most 5 bytes, `eoframe` on the last; at most one frame is started
//!   per tick ([`BriLine::tick`]), the rest wait in a ring.
//! - **D-channel, in**: multibyte REGISTER_REPLYs are joined until `eoframe`; the last byte of
//!   the frame is a status byte (0 good, 0xFF abort, anything else bad FCS) and the two before
//!   it the FCS, kept with the frame (DAHDI's convention). Data is ignored while the D-channel
//!   is not open ([`BriLine::set_dchan_open`]).

use xpp_proto::wire::{Address, BriLed, Message, Multibyte, RegAccess, RegCmd, Repr, SetLed};
use xpp_proto::{Duration, Instant};

use crate::hdlc::FrameRing;

/// The layer-1 state register.
pub const REG_STATE: u8 = 0x30;
/// Activation request, TE port.
pub const ACTIVATE_TE: u8 = 0x60;
/// Activation request, NT port.
pub const ACTIVATE_NT: u8 = 0xE0;
/// Deactivation request.
pub const DEACTIVATE: u8 = 0x40;
/// How often register 0x30 is read.
pub const POLL: Duration = Duration::from_millis(500);
/// TE activation timer (T3).
pub const T3: Duration = Duration::from_millis(8000);
/// NT activation timer (T1).
pub const T1: Duration = Duration::from_millis(2500);
/// Polls without an answer after which layer 1 counts as down.
pub const MAX_MISSED_POLLS: u8 = 3;
/// Longest D-channel frame either way (a Q.921 frame is at most 260 bytes; received frames
/// carry 2 FCS bytes and the status byte besides).
pub const MAX_FRAME: usize = 300;
/// Frames that wait in each direction.
pub const FRAMES: usize = 16;

/// Layer-1 status from register 0x30.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Layer1 {
    /// The I.430 state number (TE: F-state, NT: G-state).
    pub state: u8,
    /// Frame synchronisation (bit 4).
    pub frame_sync: bool,
    /// INFO0 received: the far end sends nothing (bit 6).
    pub info0: bool,
}

impl Layer1 {
    /// Decodes register 0x30.
    pub const fn from_reg(v: u8) -> Self {
        Self { state: v & 0x0F, frame_sync: v & 0x10 != 0, info0: v & 0x40 != 0 }
    }

    /// Whether layer 1 is up: F7 on a TE port, G3 on an NT port.
    pub const fn is_up(self, nt: bool) -> bool {
        self.state == if nt { 3 } else { 7 }
    }
}

/// What the port reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BriEvent {
    /// Layer 1 went up or down (the first answer always reports).
    Layer1 {
        /// Up (F7 / G3).
        up: bool,
        /// The state read (`None`: polls went unanswered).
        status: Option<Layer1>,
        /// When it was seen.
        at: Instant,
    },
    /// A received frame had a bad FCS (status byte other than 0 and 0xFF).
    BadFcs,
    /// A received frame was aborted (status 0xFF).
    Abort,
    /// A received frame was dropped: longer than [`MAX_FRAME`], or no room to keep it.
    Overrun,
}

/// Why [`BriLine::send_frame`] refused a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Every slot is taken: try after a tick.
    #[error("transmit queue full")]
    Full,
    /// Empty, or longer than [`MAX_FRAME`].
    #[error("bad frame length {0}")]
    BadLength(usize),
}

/// One BRI S/T port.
#[derive(Debug, Clone)]
pub struct BriLine {
    addr: Address,
    port: u8,
    nt: bool,
    commands: std::collections::VecDeque<RegCmd>,
    events: std::collections::VecDeque<BriEvent>,
    next_poll: Option<Instant>,
    activate_until: Option<Instant>,
    missed: u8,
    /// Started: layer 1 is wanted up.
    started: bool,
    up: Option<bool>,
    status: Option<Layer1>,
    dchan_open: bool,
    /// The frame being received (multibyte chunks joined).
    rx: Box<[u8]>,
    rx_len: usize,
    rx_overrun: bool,
    rx_frames: FrameRing,
    tx_frames: FrameRing,
    /// D-channel frames received whole and sent, since construction.
    dchan_frames: u64,
    /// The LEDs as last set (green, red) and the changes not yet sent.
    leds: [bool; 2],
    led_out: std::collections::VecDeque<(BriLed, bool)>,
}

impl BriLine {
    /// The port at `addr` (portnum `port`), NT (`nt`) or TE.
    pub fn new(addr: Address, port: u8, nt: bool) -> Self {
        Self {
            addr,
            port,
            nt,
            commands: std::collections::VecDeque::with_capacity(64),
            events: std::collections::VecDeque::with_capacity(8),
            next_poll: None,
            activate_until: None,
            missed: 0,
            started: false,
            up: None,
            status: None,
            dchan_open: false,
            rx: vec![0; MAX_FRAME + 3].into_boxed_slice(),
            rx_len: 0,
            rx_overrun: false,
            rx_frames: FrameRing::new(FRAMES, MAX_FRAME + 2),
            tx_frames: FrameRing::new(FRAMES, MAX_FRAME),
            dchan_frames: 0,
            leds: [false; 2],
            led_out: std::collections::VecDeque::with_capacity(2),
        }
    }

    /// Network side.
    pub fn is_nt(&self) -> bool {
        self.nt
    }

    fn write(&mut self, reg: u8, val: u8) {
        self.commands.push_back(RegCmd::Reg(RegAccess::write(self.port, reg, val)));
    }

    /// Starts layer-1 polling, the first poll at `now`.
    pub fn poll_from(&mut self, now: Instant) {
        if self.next_poll.is_none() {
            self.next_poll = Some(now);
        }
    }

    /// Span startup: requests layer-1 activation and starts its timer (and the polling).
    pub fn start(&mut self, now: Instant) {
        self.started = true;
        self.activate(now);
        self.poll_from(now);
    }

    fn activate(&mut self, now: Instant) {
        self.write(REG_STATE, if self.nt { ACTIVATE_NT } else { ACTIVATE_TE });
        self.activate_until = Some(now + if self.nt { T1 } else { T3 });
    }

    /// Span shutdown: deactivates layer 1.
    pub fn stop(&mut self) {
        self.started = false;
        self.activate_until = None;
        self.write(REG_STATE, DEACTIVATE);
    }

    /// Whether layer 1 is up (`None` before the first answer).
    pub fn layer1_up(&self) -> Option<bool> {
        self.up
    }

    /// The last layer-1 status read.
    pub fn status(&self) -> Option<Layer1> {
        self.status
    }

    /// Opens or closes the D-channel: received frames are kept only while it is open.
    pub fn set_dchan_open(&mut self, open: bool) {
        self.dchan_open = open;
        if !open {
            self.rx_len = 0;
            self.rx_overrun = false;
            while !self.rx_frames.is_empty() {
                self.rx_frames.pop();
            }
        }
    }

    /// Queues a D-channel frame (without FCS) for sending.
    pub fn send_frame(&mut self, frame: &[u8]) -> Result<(), SendError> {
        if frame.is_empty() || frame.len() > MAX_FRAME {
            return Err(SendError::BadLength(frame.len()));
        }
        if !self.tx_frames.push(frame) {
            return Err(SendError::Full);
        }
        Ok(())
    }

    /// The oldest received frame (with its two FCS bytes) into `out` (truncated to it); its
    /// full length, or `None`.
    pub fn read_frame(&mut self, out: &mut [u8]) -> Option<usize> {
        self.rx_frames.pop_into(out)
    }

    /// Received frames waiting.
    pub fn frames_waiting(&self) -> usize {
        self.rx_frames.len()
    }

    /// D-channel frames received whole (good, bad or aborted) and sent since construction:
    /// the D-channel is alive while this moves (the reference's 15 s heuristic, §9.4).
    pub fn dchan_frames(&self) -> u64 {
        self.dchan_frames
    }

    /// The LEDs, once per tick (`tick`: the bus's tick count), as the reference driver drives
    /// them (card_bri.c `handle_leds`): the port's LED is the red one on an NT port, the green
    /// one on a TE port, and the other is off; it blinks once a second while the D-channel is
    /// alive (`dchan_alive`), double-blinks while only layer 1 is up, and stays on otherwise
    /// (the pattern of PRI ports). Only changes are sent (SET_LED).
    pub fn tick_leds(&mut self, tick: u64, dchan_alive: bool) {
        let (own, other) = if self.nt { (BriLed::Red, BriLed::Green) } else { (BriLed::Green, BriLed::Red) };
        let want = crate::common::port_led(tick, self.up == Some(true), dchan_alive);
        self.set_led(other, false);
        if let Some(on) = want {
            self.set_led(own, on);
        }
    }

    fn set_led(&mut self, led: BriLed, on: bool) {
        let i = usize::from(led == BriLed::Red);
        if self.leds[i] != on {
            self.leds[i] = on;
            self.led_out.push_back((led, on));
        }
    }

    /// The LEDs as last set (green, red).
    pub fn leds(&self) -> [bool; 2] {
        self.leds
    }

    /// Once per tick: the next waiting frame, if any, goes out as multibyte chunks.
    pub fn tick(&mut self) {
        let Some(frame) = self.tx_frames.front() else { return };
        let n = frame.len().div_ceil(xpp_proto::wire::MULTIBYTE_MAX);
        for (i, chunk) in frame.chunks(xpp_proto::wire::MULTIBYTE_MAX).enumerate() {
            if let Some(m) = Multibyte::new(self.port, i + 1 == n, chunk) {
                self.commands.push_back(RegCmd::Multibyte(m));
            }
        }
        self.tx_frames.pop();
        self.dchan_frames += 1;
    }

    /// The next command for this port's XPD: LED changes first (SET_LED), then register
    /// commands.
    #[must_use]
    pub fn poll_transmit(&mut self, _now: Instant) -> Option<Repr<'static>> {
        if let Some((led, on)) = self.led_out.pop_front() {
            return Some(Repr::command(self.addr, Message::SetLed(SetLed::bri(led, on))));
        }
        let cmd = self.commands.pop_front()?;
        Some(Repr::command(self.addr, Message::RegisterRequest(cmd)))
    }

    /// The next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<BriEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.next_poll, self.activate_until) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Polls register 0x30 when due; renews an activation request whose timer ran out.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(due) = self.next_poll
            && due <= now
        {
            if self.missed >= MAX_MISSED_POLLS {
                self.set_up(now, false, None);
            }
            self.missed = self.missed.saturating_add(1);
            let read = RegCmd::Reg(RegAccess::read(self.port, REG_STATE));
            if !self.commands.contains(&read) {
                self.commands.push_back(read);
            }
            self.next_poll = Some(crate::common::next_period(due, now, POLL));
        }
        if let Some(until) = self.activate_until
            && until <= now
        {
            if self.up == Some(true) || !self.started {
                self.activate_until = None;
            } else {
                self.activate(now);
            }
        }
    }

    fn set_up(&mut self, now: Instant, up: bool, status: Option<Layer1>) {
        let was = self.up;
        if was != Some(up) {
            self.up = Some(up);
            self.events.push_back(BriEvent::Layer1 { up, status, at: now });
        }
        if up {
            self.activate_until = None;
        } else if was == Some(true) && self.started {
            // Layer 1 of a started port went down: ask again.
            self.activate(now);
        }
    }

    /// A packet from the device: the answer to a 0x30 read, or a D-channel chunk.
    pub fn handle_packet(&mut self, now: Instant, repr: &Repr<'_>) {
        if repr.addr != self.addr {
            return;
        }
        match repr.message {
            Message::RegisterReply(RegCmd::Reg(r))
                if r.port == self.port && !r.expander && !r.do_subreg && r.reg == REG_STATE =>
            {
                self.missed = 0;
                let status = Layer1::from_reg(r.data_low);
                self.status = Some(status);
                self.set_up(now, status.is_up(self.nt), Some(status));
            }
            Message::RegisterReply(RegCmd::Multibyte(m)) if m.port == self.port && !m.is_magic() => {
                self.chunk(m.data(), m.eoframe);
            }
            _ => {}
        }
    }

    fn chunk(&mut self, data: &[u8], eoframe: bool) {
        if !self.dchan_open {
            return;
        }
        if self.rx_len + data.len() > self.rx.len() {
            self.rx_overrun = true;
        } else {
            self.rx[self.rx_len..][..data.len()].copy_from_slice(data);
            self.rx_len += data.len();
        }
        if !eoframe {
            return;
        }
        let (len, overrun) = (self.rx_len, self.rx_overrun);
        self.rx_len = 0;
        self.rx_overrun = false;
        self.dchan_frames += u64::from(len > 0);
        // The status byte, after the frame and its two FCS bytes.
        let event = match (overrun, len) {
            (true, _) => Some(BriEvent::Overrun),
            (false, 0) => None,
            (false, _) => match self.rx[len - 1] {
                0x00 if len >= 3 => {
                    if self.rx_frames.push(&self.rx[..len - 1]) {
                        None
                    } else {
                        Some(BriEvent::Overrun)
                    }
                }
                0xFF => Some(BriEvent::Abort),
                _ => Some(BriEvent::BadFcs),
            },
        };
        if let Some(e) = event {
            self.events.push_back(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{addr, drain, ms, rd, reply, wd};

    /// A multibyte REGISTER_REPLY as the device sends it (BRI-9), built field by field.
    fn chunk(data: &[u8], eoframe: bool) -> Repr<'static> {
        Repr::command(
            addr(),
            Message::RegisterReply(RegCmd::Multibyte(Multibyte::new(0, eoframe, data).unwrap())),
        )
    }

    fn state(v: u8) -> Repr<'static> {
        reply(0, REG_STATE, v)
    }

    fn mb(data: &[u8], eoframe: bool) -> RegCmd {
        RegCmd::Multibyte(Multibyte::new(0, eoframe, data).unwrap())
    }

    #[test]
    fn start_activates_then_polls_and_reports_layer1() {
        for (nt, req, timer, up_state) in [(false, 0x60, 8000, 7u8), (true, 0xE0, 2500, 3u8)] {
            let mut l = BriLine::new(addr(), 0, nt);
            l.start(ms(0));
            assert_eq!(drain(|| l.poll_transmit(ms(0))), [wd(0, 0x30, req)]);
            assert_eq!(l.poll_timeout(), Some(ms(0)));
            l.handle_timeout(ms(0));
            assert_eq!(drain(|| l.poll_transmit(ms(0))), [rd(0, 0x30)]);
            // Not up yet (F3 / G1, INFO0).
            l.handle_packet(ms(5), &state(0x43 - u8::from(nt) * 2));
            assert_eq!(l.poll_event(), Some(BriEvent::Layer1 { up: false, status: l.status(), at: ms(5) }));
            assert_eq!(l.layer1_up(), Some(false));
            // The activation timer runs out: the request is written again.
            l.handle_timeout(ms(timer));
            let out = drain(|| l.poll_transmit(ms(timer)));
            assert!(out.contains(&wd(0, 0x30, req)), "{out:?}");
            // F7 / G3 with frame sync: up; the timer stops.
            l.handle_packet(ms(timer + 10), &state(0x10 | up_state));
            assert!(matches!(l.poll_event(), Some(BriEvent::Layer1 { up: true, .. })));
            assert_eq!(l.poll_timeout(), Some(ms(timer + 500).min(ms((timer / 500 + 1) * 500))));
        }
    }

    #[test]
    fn three_unanswered_polls_are_layer1_down() {
        let mut l = BriLine::new(addr(), 0, false);
        l.start(ms(0));
        l.handle_packet(ms(1), &state(0x17));
        assert!(matches!(l.poll_event(), Some(BriEvent::Layer1 { up: true, .. })));
        for t in [500, 1000, 1500] {
            l.handle_timeout(ms(t));
            assert_eq!(l.poll_event(), None);
        }
        let _ = drain(|| l.poll_transmit(ms(2000)));
        l.handle_timeout(ms(2000));
        assert_eq!(l.poll_event(), Some(BriEvent::Layer1 { up: false, status: None, at: ms(2000) }));
        // A started port asks for layer 1 again.
        assert!(drain(|| l.poll_transmit(ms(2000))).contains(&wd(0, 0x30, 0x60)));
    }

    #[test]
    fn frames_go_out_in_chunks_of_five_one_frame_per_tick() {
        let mut l = BriLine::new(addr(), 0, false);
        l.send_frame(&[1, 2, 3, 4, 5, 6, 7]).unwrap();
        l.send_frame(&[9, 8, 7, 6, 5]).unwrap();
        assert_eq!(l.send_frame(&[]), Err(SendError::BadLength(0)));
        assert_eq!(l.send_frame(&[0; MAX_FRAME + 1]), Err(SendError::BadLength(MAX_FRAME + 1)));
        l.tick();
        assert_eq!(drain(|| l.poll_transmit(ms(0))), [mb(&[1, 2, 3, 4, 5], false), mb(&[6, 7], true)]);
        l.tick();
        assert_eq!(drain(|| l.poll_transmit(ms(1))), [mb(&[9, 8, 7, 6, 5], true)]);
        l.tick();
        assert!(drain(|| l.poll_transmit(ms(2))).is_empty());
        for _ in 0..FRAMES {
            l.send_frame(&[1]).unwrap();
        }
        assert_eq!(l.send_frame(&[1]), Err(SendError::Full));
    }

    #[test]
    fn received_chunks_make_frames_with_their_fcs_and_the_status_decides() {
        let mut l = BriLine::new(addr(), 0, true);
        // Closed D-channel: ignored.
        l.handle_packet(ms(0), &chunk(&[0x02, 0x01, 0x73, 0xAA, 0xBB], false));
        l.handle_packet(ms(0), &chunk(&[0x00], true));
        assert_eq!(l.frames_waiting(), 0);
        l.set_dchan_open(true);
        // UA (3 bytes) + FCS (2) + status 0: one frame of 5 bytes.
        l.handle_packet(ms(1), &chunk(&[0x02, 0x01, 0x73, 0xAA, 0xBB], false));
        l.handle_packet(ms(1), &chunk(&[0x00], true));
        let mut buf = [0u8; 16];
        assert_eq!(l.read_frame(&mut buf), Some(5));
        assert_eq!(&buf[..5], [0x02, 0x01, 0x73, 0xAA, 0xBB]);
        // Status 0xFF: abort; 0x01: bad FCS; no frame kept.
        l.handle_packet(ms(2), &chunk(&[0x02, 0x01, 0x73, 0, 0], false));
        l.handle_packet(ms(2), &chunk(&[0xFF], true));
        l.handle_packet(ms(3), &chunk(&[0x02, 0x01, 0x73, 0, 0], false));
        l.handle_packet(ms(3), &chunk(&[0x01], true));
        assert_eq!((l.poll_event(), l.poll_event()), (Some(BriEvent::Abort), Some(BriEvent::BadFcs)));
        assert_eq!(l.read_frame(&mut buf), None);
        // Too long: OVERRUN, and the next frame is whole again.
        for _ in 0..(MAX_FRAME + 10) / 5 {
            l.handle_packet(ms(4), &chunk(&[7; 5], false));
        }
        l.handle_packet(ms(4), &chunk(&[0x00], true));
        assert_eq!(l.poll_event(), Some(BriEvent::Overrun));
        l.handle_packet(ms(5), &chunk(&[0x02, 0x01, 0x01, 0x03, 0x11], false));
        l.handle_packet(ms(5), &chunk(&[0x22, 0x00], true));
        assert_eq!(l.read_frame(&mut buf), Some(6));
        // Another port's chunk is not ours.
        let other = Repr::command(
            addr(),
            Message::RegisterReply(RegCmd::Multibyte(Multibyte::new(1, true, &[1, 2, 3, 0]).unwrap())),
        );
        l.handle_packet(ms(6), &other);
        assert_eq!(l.frames_waiting(), 0);
    }
}
