//! Test rig: one `XbusCore` wired to an emulated data interface on a virtual clock.
#![allow(dead_code, unreachable_pub)]

use xpp_emu::DeviceConfig;
use xpp_emu::config::ModuleConfig;
use xpp_emu::data::{DataConfig, DataInterface};
use xpp_proto::wire::{Message, SetLed, SyncMode, UnitDescriptor, parse_transfer};
use xpp_proto::{Duration, Instant};
use xpp_span::span::UnitSetup;
use xpp_span::xbus::{BusSetup, Numbering, XbusCore, XbusEvent};

pub const FXS_FXO: [Option<ModuleConfig>; 4] = [Some(ModuleConfig::FXS), Some(ModuleConfig::FXO), None, None];

pub struct Rig {
    pub dev: DataInterface,
    pub core: XbusCore,
    pub now: Instant,
    /// Every OUT transfer the core produced, with the time.
    pub out: Vec<(Instant, Vec<u8>)>,
    /// Every bus event, with the time.
    pub events: Vec<(Instant, XbusEvent)>,
    pub record_out: bool,
}

/// Asks the device for its unit descriptors (AB_REQUEST -> AB_DESCRIPTION).
pub fn descriptors(dev: &mut DataInterface, now: Instant) -> Vec<UnitDescriptor> {
    dev.handle_out(now, &[0x06, 0x00, 0x07, 0x00, 0x1E, 0x00]);
    let mut buf = [0u8; 512];
    while let Some(n) = dev.poll_in(now, &mut buf) {
        for (_, r) in parse_transfer(&buf[..n]).flatten() {
            if let Message::AbDescription(d) = r.message {
                return d.units().to_vec();
            }
        }
    }
    panic!("no AB_DESCRIPTION");
}

impl Rig {
    pub fn new(slots: [Option<ModuleConfig>; 4]) -> Self {
        Self::with(slots, DataConfig::default(), 0, &mut Numbering::new())
    }

    /// A device, its card init (FXS line feed forward active), a core registered with
    /// `numbering`, every channel configured, and the device ticking (SYNC_SOURCE AB).
    pub fn with(
        slots: [Option<ModuleConfig>; 4],
        data: DataConfig,
        busno: u8,
        numbering: &mut Numbering,
    ) -> Self {
        let mut cfg = DeviceConfig::default().with_slots(slots);
        cfg.data = data;
        let mut dev = DataInterface::new(&cfg);
        let now = Instant::from_millis(1);
        dev.start_session(now);
        let units = descriptors(&mut dev, now);
        // Card init (the bring-up's job): forward active line feed on every FXS port.
        for d in &units {
            if matches!(d.card_type, xpp_proto::wire::CardType::Fxs) {
                let u = d.addr.unit() << 4;
                dev.handle_out(now, &[0x0A, 0x00, 0x0F, u, 0x05, 0x80, 0x40, 0x00, 0x01, 0x00]);
            }
        }
        // BRI ports: the layer-1 state machine enabled (0x30 := 0x00, the card init's last
        // write before activation).
        for d in &units {
            if matches!(d.card_type, xpp_proto::wire::CardType::Bri) {
                let ports = d.numchips * d.ports_per_chip;
                for port in 0..ports {
                    let Some(a) = xpp_proto::wire::Address::new(d.addr.unit(), port) else { continue };
                    let cmd =
                        xpp_proto::wire::RegCmd::Reg(xpp_proto::wire::RegAccess::write(port, 0x30, 0x00));
                    let r = xpp_proto::wire::Repr::command(a, Message::RegisterRequest(cmd));
                    let mut b = [0u8; 64];
                    let n = r.emit(&mut b).expect("emit");
                    dev.handle_out(now, &b[..n]);
                }
            }
        }
        let mut buf = [0u8; 512];
        while dev.poll_in(now, &mut buf).is_some() {}
        // The PRI protocol the card init selects (the bring-up's job): the module's.
        let setup = BusSetup::new(
            units
                .iter()
                .map(|d| {
                    let mut u = UnitSetup::new(*d);
                    if let Some(Some(ModuleConfig::Pri { protocol, .. })) =
                        slots.get(usize::from(d.addr.unit()))
                    {
                        u.pri_protocol = Some(*protocol);
                    }
                    u
                })
                .collect(),
        );
        let core = XbusCore::new(now, busno, &setup, numbering).expect("core");
        let mut rig = Self { dev, core, now, out: Vec::new(), events: Vec::new(), record_out: true };
        rig.core.configure_defaults(now);
        rig.core.set_sync_source(SyncMode::Ab, 0);
        // The SYNC_SOURCE waits behind the FXS hook-state reads in the paced queue.
        for _ in 0..100 {
            if rig.core.is_self_ticking() {
                break;
            }
            rig.step();
        }
        assert!(rig.core.is_self_ticking(), "device ticks");
        rig.run_ms(5);
        rig.events.clear();
        rig.out.clear();
        rig
    }

    /// Core OUT transfers to the device.
    pub fn pump_out(&mut self) {
        let mut buf = [0u8; 512];
        while let Some(n) = self.core.poll_transmit(&mut buf) {
            if self.record_out {
                self.out.push((self.now, buf[..n].to_vec()));
            }
            self.dev.handle_out(self.now, &buf[..n]);
        }
    }

    /// Device IN transfers to the core (answering each at once).
    pub fn pump_in(&mut self) {
        let mut buf = [0u8; 512];
        while let Some(n) = self.dev.poll_in(self.now, &mut buf) {
            self.core.handle_in_transfer(self.now, &buf[..n]);
            self.pump_out();
        }
    }

    pub fn drain_events(&mut self) {
        while let Some(e) = self.core.poll_event() {
            self.events.push((self.now, e));
        }
    }

    /// Advances the virtual clock by one ms, running both sides.
    pub fn step(&mut self) {
        let end = self.now + Duration::from_millis(1);
        loop {
            let d = self.dev.poll_timeout().filter(|&t| t <= end);
            let c = self.core.poll_timeout().filter(|&t| t <= end);
            let next = match (d, c) {
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) | (None, Some(a)) => a,
                (None, None) => break,
            };
            self.now = self.now.max(next);
            if d == Some(next) {
                self.dev.handle_timeout(next);
            }
            self.pump_in();
            if c.is_some_and(|t| t <= self.now) {
                self.core.handle_timeout(self.now);
            }
            self.pump_out();
            self.drain_events();
        }
        self.now = end;
        self.pump_in();
        self.pump_out();
        self.drain_events();
    }

    pub fn run_ms(&mut self, ms: u64) {
        for _ in 0..ms {
            self.step();
        }
    }

    /// The SET_LED commands the core sent to unit `unit` since `since`.
    pub fn set_leds(&self, unit: u8, since: Instant) -> Vec<SetLed> {
        let mut out = Vec::new();
        for (_, transfer) in self.out.iter().filter(|(t, _)| *t >= since) {
            for (_, r) in parse_transfer(transfer).flatten() {
                if let Message::SetLed(l) = r.message
                    && r.addr.unit() == unit
                {
                    out.push(l);
                }
            }
        }
        out
    }

    /// The channel events of `channo` since `since`, as (ms after `since`, event).
    pub fn chan_events(&self, channo: u32, since: Instant) -> Vec<(u64, xpp_span::Event)> {
        self.events
            .iter()
            .filter(|(t, _)| *t >= since)
            .filter_map(|(t, e)| match *e {
                XbusEvent::Chan { channo: c, event } if c == channo => {
                    Some((t.saturating_duration_since(since).total_millis(), event))
                }
                _ => None,
            })
            .collect()
    }
}
