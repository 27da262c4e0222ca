//! Running a [`script`] scenario against a device: [`apply`] maps one
//! [`Action`] onto the equipment, USB and device controls, and [`Scenario`] applies a parsed
//! scenario's events at their times on the device's clock.
//!
//! Every action names its target by unit/port; a target the configuration does not have
//! (`phone 3/0` where unit 3 is an FXO module, `usb 1` on a device without TwinStar) is a
//! [`ScenarioError`], and nothing changes.
//!
//! ```
//! use xpp_emu::{DeviceConfig, Emulator, config::Stage, scenario::Scenario};
//! use xpp_proto::Instant;
//!
//! let emu = Emulator::new(DeviceConfig::default().with_start_stage(Stage::Running));
//! let mut sc = Scenario::parse("0ms phone 0/1 offhook\n+1s phone 0/1 onhook\n", Instant::ZERO).unwrap();
//! let applied = sc.run_virtual(&emu, Instant::from_secs(2));
//! assert!(applied.iter().all(|a| a.result.is_ok()) && sc.is_done());
//! ```

use xpp_proto::{Duration, Instant};

use crate::data::callerid::{CallerId, CidStandard};
use crate::data::{self, DataInterface, PatchError, Source};
use crate::device::Device;
use crate::script::{self, Action, Alarm, Endpoint, PortRef, ScriptError, ScriptEvent};
use crate::transport::Emulator;

/// Peak level of scenario tones (16-bit linear, about −10 dBm0).
const TONE_AMPLITUDE: i16 = 8000;

/// Why an action could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScenarioError {
    /// The configuration has no such equipment at that unit/port.
    #[error("no {kind} at {port} in this configuration")]
    NoSuchTarget {
        /// What was looked for (`phone`, `line`, `span`).
        kind: &'static str,
        /// Where.
        port: PortRef,
    },
    /// The device has no such USB port.
    #[error("no USB port {port} (the device has {count})")]
    NoSuchUsbPort {
        /// The port asked for.
        port: u8,
        /// Ports the device has.
        count: u8,
    },
    /// The patch panel refused.
    #[error(transparent)]
    Patch(#[from] PatchError),
    /// `unpatch` on an end that is not patched.
    #[error("{0} is not patched")]
    NotPatched(PortRef),
    /// The target exists but cannot do this.
    #[error("{port}: {reason}")]
    Unsupported {
        /// Where.
        port: PortRef,
        /// Why not.
        reason: &'static str,
    },
}

/// One event of a scenario after it was applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// Device time it was applied at.
    pub at: Instant,
    /// The event.
    pub event: ScriptEvent,
    /// The outcome.
    pub result: Result<(), ScenarioError>,
}

fn dport(p: PortRef) -> data::PortRef {
    data::PortRef::new(p.unit, p.port)
}

fn tone(hz: u32) -> Source {
    if hz == 0 { Source::Silence } else { Source::Tone { freq_hz: hz, amplitude: TONE_AMPLITUDE } }
}

/// What kind of span a unit/port is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SpanKind {
    Pri,
    Bri,
}

fn span_kind(d: &mut DataInterface, p: PortRef) -> Option<SpanKind> {
    if d.pri_far_end_mut(p.unit, p.port).is_some() {
        Some(SpanKind::Pri)
    } else if d.bri_far_end_mut(p.unit, p.port).is_some() {
        Some(SpanKind::Bri)
    } else {
        None
    }
}

/// Checks that an end point names equipment of its kind (a `phone` on an FXS port, a `line`
/// on an FXO port, a `span` on a PRI/BRI port).
fn check_end(d: &mut DataInterface, e: Endpoint) -> Result<PortRef, ScenarioError> {
    let (kind, p, ok) = match e {
        Endpoint::Phone(p) => ("phone", p, d.phone(p.unit, p.port).is_some()),
        Endpoint::Line(p) => ("line", p, d.pstn(p.unit, p.port).is_some()),
        Endpoint::Span(p) => ("span", p, span_kind(d, p).is_some()),
    };
    if ok { Ok(p) } else { Err(ScenarioError::NoSuchTarget { kind, port: p }) }
}

/// Applies one scenario action to `device` at `now` (which must not be before the device's
/// time; the device first runs every timer due up to it).
pub fn apply(device: &mut Device, now: Instant, action: &Action) -> Result<(), ScenarioError> {
    let now = now.max(device.now());
    device.handle_timeout(now);
    let no = |kind, port| ScenarioError::NoSuchTarget { kind, port };
    let usb = |device: &Device, port: u8| {
        if port < device.port_count() {
            Ok(port)
        } else {
            Err(ScenarioError::NoSuchUsbPort { port, count: device.port_count() })
        }
    };
    match action {
        Action::PhoneOffHook(p)
        | Action::PhoneOnHook(p)
        | Action::PhoneFlash(p)
        | Action::PhoneDtmf(p, _)
        | Action::PhonePulse(p, _)
        | Action::PhoneTone(p, _) => {
            let phone = device.data_mut().phone_mut(p.unit, p.port).ok_or(no("phone", *p))?;
            match action {
                Action::PhoneOffHook(_) => phone.off_hook(now),
                Action::PhoneOnHook(_) => phone.on_hook(now),
                Action::PhoneFlash(_) => phone.flash(now),
                Action::PhoneDtmf(_, digits) => phone.dial_dtmf(now, digits),
                Action::PhonePulse(_, digits) => phone.dial_pulse(now, digits),
                Action::PhoneTone(_, hz) => phone.play(tone(*hz)),
                _ => {}
            }
        }
        Action::LineRing(p, _)
        | Action::LineBattery(p, _)
        | Action::LinePolarity(p)
        | Action::LineCallerId(p, _, _)
        | Action::LineAnswer(p)
        | Action::LineHangup(p)
        | Action::LineTone(p, _) => {
            let line = device.data_mut().pstn_mut(p.unit, p.port).ok_or(no("line", *p))?;
            match action {
                Action::LineRing(_, true) => line.ring(now),
                // Decision: `ring off` ends an incoming call that is still ringing (the caller
                // gives up); it never releases a call that is already up.
                Action::LineRing(_, false) if line.state() == data::CallState::Ringing => line.hang_up(now),
                Action::LineBattery(_, on) => line.set_battery(now, *on),
                Action::LinePolarity(_) => line.reverse_polarity(now),
                Action::LineCallerId(_, number, name) => {
                    // Decision: scenario caller ID is Bell 202 (the default standard); tests
                    // choose ETSI through `PstnLine::set_caller_id`.
                    line.set_caller_id(Some(CallerId::new(number, name)), CidStandard::Bell202);
                }
                Action::LineAnswer(_) => line.answer(now),
                Action::LineHangup(_) => line.hang_up(now),
                Action::LineTone(_, hz) => line.play(tone(*hz)),
                _ => {}
            }
        }
        Action::SpanAlarm(p, alarm) => {
            let d = device.data_mut();
            match span_kind(d, *p).ok_or(no("span", *p))? {
                SpanKind::Pri => {
                    let far = d.pri_far_end_mut(p.unit, p.port).ok_or(no("span", *p))?;
                    far.set_connected(now, *alarm != Alarm::Los);
                    far.send_ais(now, *alarm == Alarm::Ais);
                    far.send_rai(now, *alarm == Alarm::Rai);
                }
                SpanKind::Bri => {
                    let far = d.bri_far_end_mut(p.unit, p.port).ok_or(no("span", *p))?;
                    match alarm {
                        Alarm::Los => far.set_connected(now, false),
                        Alarm::None => far.set_connected(now, true),
                        _ => {
                            return Err(ScenarioError::Unsupported {
                                port: *p,
                                reason: "a BRI S/T line has no AIS or RAI (only los, none)",
                            });
                        }
                    }
                }
            }
        }
        Action::SpanLayer1(p, up) => {
            let d = device.data_mut();
            match span_kind(d, *p).ok_or(no("span", *p))? {
                // Decision: on a PRI span, layer 1 up/down = far end plugged in / pulled.
                SpanKind::Pri => {
                    d.pri_far_end_mut(p.unit, p.port).ok_or(no("span", *p))?.set_connected(now, *up);
                }
                SpanKind::Bri => {
                    let far = d.bri_far_end_mut(p.unit, p.port).ok_or(no("span", *p))?;
                    if *up {
                        far.set_connected(now, true);
                        far.activate(now);
                    } else {
                        far.deactivate(now);
                    }
                }
            }
        }
        Action::UsbPower(n, on) => {
            let port = usb(device, *n)?;
            device.set_power(now, port, *on);
        }
        Action::UsbCable(n, plugged) => {
            let port = usb(device, *n)?;
            if *plugged {
                device.plug(now, port);
            } else {
                device.unplug(now, port);
            }
        }
        Action::DeviceReset => {
            device.set_device_power(now, false);
            device.set_device_power(now, true);
        }
        Action::Patch(a, b) => {
            let d = device.data_mut();
            let (pa, pb) = (check_end(d, *a)?, check_end(d, *b)?);
            d.patch(dport(pa), dport(pb))?;
        }
        Action::Unpatch(e) => {
            let d = device.data_mut();
            let p = check_end(d, *e)?;
            if !d.unpatch(dport(p)) {
                return Err(ScenarioError::NotPatched(p));
            }
        }
    }
    Ok(())
}

/// A parsed scenario being played on a device clock: each event is applied at `start` + its
/// time.
#[derive(Debug, Clone)]
pub struct Scenario {
    events: Vec<ScriptEvent>,
    start: Instant,
    next: usize,
}

impl Scenario {
    /// A scenario of `events` (in time order, as [`script::parse`] returns them) starting at
    /// `start`.
    pub fn new(events: Vec<ScriptEvent>, start: Instant) -> Self {
        Self { events, start, next: 0 }
    }

    /// Parses `text` ([`script`] format) into a scenario starting at `start`.
    pub fn parse(text: &str, start: Instant) -> Result<Self, ScriptError> {
        Ok(Self::new(script::parse(text)?, start))
    }

    /// The events.
    pub fn events(&self) -> &[ScriptEvent] {
        &self.events
    }

    /// When the next event is due, or `None` when every event was applied.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.events.get(self.next).map(|e| self.start + e.at)
    }

    /// Whether every event was applied.
    pub fn is_done(&self) -> bool {
        self.next >= self.events.len()
    }

    /// The time of the last event (the start for an empty scenario).
    pub fn end(&self) -> Instant {
        self.start + self.events.last().map_or(Duration::ZERO, |e| e.at)
    }

    /// Applies every event due at or before `now`, each at its own time (or the device's time,
    /// if that is later).
    pub fn apply_due(&mut self, device: &mut Device, now: Instant) -> Vec<Applied> {
        let mut out = Vec::new();
        while let Some(e) = self.events.get(self.next) {
            let due = self.start + e.at;
            if due > now {
                break;
            }
            self.next += 1;
            let at = due.max(device.now());
            let result = apply(device, at, &e.action);
            out.push(Applied { at, event: e.clone(), result });
        }
        out
    }

    /// Plays the scenario on a virtual-clock emulator up to `until`: the clock is advanced to
    /// each event's time, the event applied, and finally the clock advanced to `until`.
    pub fn run_virtual(&mut self, emu: &Emulator, until: Instant) -> Vec<Applied> {
        let mut out = Vec::new();
        while let Some(t) = self.poll_timeout().filter(|&t| t <= until) {
            emu.advance_to(t);
            out.extend(emu.with_device(|d| self.apply_due(d, t)));
        }
        emu.advance_to(until);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DeviceConfig, ModuleConfig, Stage};
    use crate::data::{CallState, EventKind};
    use crate::device::DeviceEvent;
    use xpp_proto::wire::pri::PriProtocol;

    const P: fn(u8, u8) -> PortRef = |unit, port| PortRef { unit, port };

    fn device(slots: [Option<ModuleConfig>; 4], twinstar: bool) -> Device {
        Device::new(
            DeviceConfig::default()
                .with_slots(slots)
                .with_twinstar(twinstar)
                .with_start_stage(Stage::Running),
        )
    }

    fn all() -> Device {
        device(
            [
                Some(ModuleConfig::FXS),
                Some(ModuleConfig::FXO),
                Some(ModuleConfig::Pri { protocol: PriProtocol::E1, ports: 1 }),
                Some(ModuleConfig::Bri { ports: 2, nt_mask: 0 }),
            ],
            true,
        )
    }

    fn ms(v: u64) -> Instant {
        Instant::from_millis(v)
    }

    /// Runs the device to `t` and returns the data events of `port`.
    fn events_at(d: &mut Device, t: Instant, port: data::PortRef) -> Vec<EventKind> {
        d.handle_timeout(t);
        let mut v = Vec::new();
        while let Some(e) = d.data_mut().poll_event() {
            if e.port == Some(port) {
                v.push(e.kind);
            }
        }
        v
    }

    #[test]
    fn phone_actions() {
        let mut d = all();
        let p = P(0, 1);
        let dp = data::PortRef::new(0, 1);
        // The line must feed the loop for hook reporting; the phone's own log shows hook edges.
        apply(&mut d, ms(1), &Action::PhoneOffHook(p)).unwrap();
        assert!(d.data().phone(0, 1).unwrap().busy());
        assert!(events_at(&mut d, ms(3), dp).contains(&EventKind::Hook(true)));
        assert!(d.data().phone(0, 1).unwrap().is_off_hook());
        apply(&mut d, ms(4), &Action::PhoneDtmf(p, "12".into())).unwrap();
        assert!(d.data().phone(0, 1).unwrap().busy());
        d.handle_timeout(ms(500));
        assert!(!d.data().phone(0, 1).unwrap().busy());
        apply(&mut d, ms(500), &Action::PhonePulse(p, "2".into())).unwrap();
        assert!(events_at(&mut d, ms(530), dp).contains(&EventKind::Hook(false)));
        d.handle_timeout(ms(2000));
        apply(&mut d, ms(2000), &Action::PhoneFlash(p)).unwrap();
        assert!(events_at(&mut d, ms(2010), dp).contains(&EventKind::Hook(false)));
        assert!(events_at(&mut d, ms(2700), dp).contains(&EventKind::Hook(true)));
        apply(&mut d, ms(2700), &Action::PhoneTone(p, 1000)).unwrap();
        apply(&mut d, ms(2700), &Action::PhoneTone(p, 0)).unwrap();
        apply(&mut d, ms(2800), &Action::PhoneOnHook(p)).unwrap();
        assert!(events_at(&mut d, ms(2802), dp).contains(&EventKind::Hook(false)));
    }

    #[test]
    fn line_actions() {
        let mut d = all();
        let p = P(1, 0);
        apply(&mut d, ms(1), &Action::LineCallerId(p, "5551234".into(), "Jane".into())).unwrap();
        apply(&mut d, ms(1), &Action::LineRing(p, true)).unwrap();
        d.handle_timeout(ms(10));
        assert_eq!(d.data().pstn(1, 0).unwrap().state(), CallState::Ringing);
        d.handle_timeout(ms(2600));
        assert!(d.data().pstn(1, 0).unwrap().sending_caller_id());
        apply(&mut d, ms(3000), &Action::LineRing(p, false)).unwrap();
        assert_eq!(d.data().pstn(1, 0).unwrap().state(), CallState::Idle);
        apply(&mut d, ms(3001), &Action::LineBattery(p, false)).unwrap();
        assert!(!d.data().pstn(1, 0).unwrap().has_battery());
        apply(&mut d, ms(3002), &Action::LineBattery(p, true)).unwrap();
        apply(&mut d, ms(3003), &Action::LinePolarity(p)).unwrap();
        assert!(d.data().pstn(1, 0).unwrap().is_reversed());
        apply(&mut d, ms(3004), &Action::LineTone(p, 440)).unwrap();
        apply(&mut d, ms(3004), &Action::LineTone(p, 0)).unwrap();
        // Answer / hang up act on an outgoing call: seize the line from the host side.
        apply(&mut d, ms(3005), &Action::LineAnswer(p)).unwrap();
        apply(&mut d, ms(3006), &Action::LineHangup(p)).unwrap();
        assert_eq!(d.data().pstn(1, 0).unwrap().state(), CallState::Idle);
    }

    #[test]
    fn span_actions_pri_and_bri() {
        let mut d = all();
        for alarm in [Alarm::Los, Alarm::Ais, Alarm::Rai, Alarm::None] {
            apply(&mut d, ms(1), &Action::SpanAlarm(P(2, 0), alarm)).unwrap();
        }
        apply(&mut d, ms(2), &Action::SpanLayer1(P(2, 0), false)).unwrap();
        apply(&mut d, ms(2), &Action::SpanLayer1(P(2, 0), true)).unwrap();
        apply(&mut d, ms(3), &Action::SpanAlarm(P(3, 1), Alarm::Los)).unwrap();
        assert!(!d.data_mut().bri_far_end_mut(3, 1).unwrap().is_active());
        apply(&mut d, ms(3), &Action::SpanAlarm(P(3, 1), Alarm::None)).unwrap();
        apply(&mut d, ms(4), &Action::SpanLayer1(P(3, 1), true)).unwrap();
        assert!(d.data_mut().bri_far_end_mut(3, 1).unwrap().is_active());
        apply(&mut d, ms(5), &Action::SpanLayer1(P(3, 1), false)).unwrap();
        assert!(!d.data_mut().bri_far_end_mut(3, 1).unwrap().is_active());
        assert!(matches!(
            apply(&mut d, ms(6), &Action::SpanAlarm(P(3, 0), Alarm::Ais)),
            Err(ScenarioError::Unsupported { .. })
        ));
        assert_eq!(
            apply(&mut d, ms(6), &Action::SpanAlarm(P(2, 1), Alarm::Los)),
            Err(ScenarioError::NoSuchTarget { kind: "span", port: P(2, 1) })
        );
    }

    #[test]
    fn usb_and_device_actions() {
        let mut d = all();
        while d.poll_event().is_some() {}
        apply(&mut d, ms(10), &Action::UsbPower(0, false)).unwrap();
        assert!(!d.port_power(0));
        apply(&mut d, ms(20), &Action::UsbPower(0, true)).unwrap();
        apply(&mut d, ms(30), &Action::UsbCable(1, false)).unwrap();
        assert!(!d.port_power(1));
        apply(&mut d, ms(40), &Action::UsbCable(1, true)).unwrap();
        assert!(d.port_power(1));
        apply(&mut d, ms(500), &Action::DeviceReset).unwrap();
        let evs: Vec<_> = core::iter::from_fn(|| d.poll_event()).collect();
        assert!(evs.iter().any(|e| matches!(e, DeviceEvent::Detached { .. })));
        d.handle_timeout(ms(700));
        assert!(d.port_info(0).is_some(), "re-enumerated after the power cycle");
        let single = &mut device([Some(ModuleConfig::FXS), None, None, None], false);
        assert_eq!(
            apply(single, ms(1), &Action::UsbPower(1, true)),
            Err(ScenarioError::NoSuchUsbPort { port: 1, count: 1 })
        );
    }

    #[test]
    fn patch_actions_and_errors() {
        let mut d = all();
        let (ph, ln) = (Endpoint::Phone(P(0, 1)), Endpoint::Line(P(1, 0)));
        apply(&mut d, ms(1), &Action::Patch(ph, ln)).unwrap();
        assert!(matches!(
            apply(&mut d, ms(1), &Action::Patch(ph, Endpoint::Line(P(1, 1)))),
            Err(ScenarioError::Patch(PatchError::AlreadyPatched(_)))
        ));
        apply(&mut d, ms(2), &Action::Unpatch(ln)).unwrap();
        assert_eq!(apply(&mut d, ms(3), &Action::Unpatch(ph)), Err(ScenarioError::NotPatched(P(0, 1))));
        // A phone end point must be an FXS port.
        assert_eq!(
            apply(&mut d, ms(3), &Action::Patch(Endpoint::Phone(P(1, 0)), ln)),
            Err(ScenarioError::NoSuchTarget { kind: "phone", port: P(1, 0) })
        );
    }

    #[test]
    fn missing_targets_are_errors_and_change_nothing() {
        let mut d = device([Some(ModuleConfig::FXS), None, None, Some(ModuleConfig::FXO)], false);
        let err = apply(&mut d, ms(1), &Action::PhoneOffHook(P(3, 0))).unwrap_err();
        assert_eq!(err.to_string(), "no phone at 3/0 in this configuration");
        assert!(apply(&mut d, ms(1), &Action::LineRing(P(0, 0), true)).is_err());
        assert!(apply(&mut d, ms(1), &Action::SpanLayer1(P(1, 0), true)).is_err());
        assert!(apply(&mut d, ms(1), &Action::PhoneOffHook(P(0, 7))).is_ok());
    }

    #[test]
    fn scenario_applies_events_at_their_times() {
        let emu = Emulator::new(
            DeviceConfig::default()
                .with_slots([Some(ModuleConfig::FXS), Some(ModuleConfig::FXO), None, None])
                .with_start_stage(Stage::Running),
        );
        let text = "100ms phone 0/0 offhook\n+250ms phone 0/0 onhook\n1s phone 5/0 offhook\n";
        let mut sc = Scenario::parse(text, Instant::from_millis(10)).unwrap();
        assert_eq!(sc.poll_timeout(), Some(ms(110)));
        assert_eq!(sc.end(), ms(1010));
        let applied = sc.run_virtual(&emu, ms(2000));
        assert!(sc.is_done());
        let times: Vec<_> = applied.iter().map(|a| a.at).collect();
        assert_eq!(times, vec![ms(110), ms(360), ms(1010)]);
        assert!(applied[0].result.is_ok() && applied[1].result.is_ok());
        assert_eq!(applied[2].event.line, 3);
        assert!(applied[2].result.is_err());
        let hooks: Vec<_> = emu.with_device(|d| {
            core::iter::from_fn(|| d.data_mut().poll_event())
                .filter(|e| matches!(e.kind, EventKind::Hook(_)))
                .map(|e| e.at)
                .collect()
        });
        // Applied by the first 1 ms scan at or after the event (EQ-9).
        assert_eq!(hooks.len(), 2);
        assert!(hooks[0] >= ms(110) && hooks[0] <= ms(111));
        assert!(hooks[1] >= ms(360) && hooks[1] <= ms(361));
    }
}
