//! Test harness for the data interface: a virtual clock, host bytes built with xpp-proto.
#![allow(dead_code, unreachable_pub)]

use xpp_emu::DeviceConfig;
use xpp_emu::config::ModuleConfig;
use xpp_emu::data::{DataConfig, DataInterface};
use xpp_proto::wire::{Address, Message, Pcm, RegAccess, RegCmd, Repr, parse_transfer};
use xpp_proto::{Duration, Instant};

pub struct Host {
    pub d: DataInterface,
    pub now: Instant,
}

pub fn config(slots: [Option<ModuleConfig>; 4]) -> DeviceConfig {
    DeviceConfig::default().with_slots(slots)
}

impl Host {
    pub fn new(slots: [Option<ModuleConfig>; 4]) -> Self {
        Self::with(config(slots))
    }

    pub fn with_data(slots: [Option<ModuleConfig>; 4], data: DataConfig) -> Self {
        let mut c = config(slots);
        c.data = data;
        Self::with(c)
    }

    pub fn with(c: DeviceConfig) -> Self {
        let mut d = DataInterface::new(&c);
        let now = Instant::from_micros(123);
        d.start_session(now);
        Self { d, now }
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.d.handle_out(self.now, bytes);
    }

    pub fn send(&mut self, repr: &Repr<'_>) {
        let mut buf = [0u8; 512];
        let n = repr.emit(&mut buf).expect("emit");
        self.send_raw(&buf[..n]);
    }

    pub fn cmd(&mut self, unit: u8, sub: u8, m: Message<'_>) {
        self.send(&Repr::command(Address::new(unit, sub).unwrap(), m));
    }

    pub fn write(&mut self, unit: u8, port: u8, reg: u8, v: u8) {
        self.cmd(unit, 0, Message::RegisterRequest(RegCmd::Reg(RegAccess::write(port, reg, v))));
    }

    pub fn write_sub(&mut self, unit: u8, sub: u8, a: RegAccess) {
        self.cmd(unit, sub, Message::RegisterRequest(RegCmd::Reg(a)));
    }

    /// Reads a register and returns the reply's data_low (the reply must be the only output).
    pub fn read(&mut self, unit: u8, port: u8, reg: u8) -> u8 {
        self.read_at(unit, 0, port, reg)
    }

    pub fn read_at(&mut self, unit: u8, sub: u8, port: u8, reg: u8) -> u8 {
        self.drain();
        self.cmd(unit, sub, Message::RegisterRequest(RegCmd::Reg(RegAccess::read(port, reg))));
        let t = self.drain();
        assert_eq!(t.len(), 1, "one reply expected");
        assert_eq!(t[0].len(), 10);
        t[0][8]
    }

    pub fn drain(&mut self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = [0u8; 512];
        while let Some(n) = self.d.poll_in(self.now, &mut buf) {
            assert!(n > 0 && n <= 512);
            out.push(buf[..n].to_vec());
        }
        out
    }

    /// Advances the virtual clock by `ms`, running every due timer.
    pub fn advance_ms(&mut self, ms: u64) {
        let end = self.now + Duration::from_millis(ms);
        while let Some(t) = self.d.poll_timeout() {
            if t > end {
                break;
            }
            self.now = t;
            self.d.handle_timeout(t);
        }
        self.now = end;
    }

    /// Advances and returns the command (non-PCM) transfers produced.
    pub fn advance_cmds(&mut self, ms: u64) -> Vec<Vec<u8>> {
        let mut all = Vec::new();
        for _ in 0..ms {
            self.advance_ms(1);
            all.extend(self.drain().into_iter().filter(|t| t[1] & 0x08 == 0));
        }
        all
    }

    pub fn sync(&mut self, mode: u8, drift: i8) -> Vec<Vec<u8>> {
        self.drain();
        self.send_raw(&[0x06, 0x00, 0x19, 0x00, mode, drift as u8]);
        self.drain()
    }

    /// Sends one PCM_WRITE round: (unit, subunit, lines, samples per line).
    pub fn pcm_write(&mut self, xpds: &[(u8, u8, u32, [u8; 8])]) {
        let mut frame = Vec::new();
        for (i, &(u, s, lines, fill)) in xpds.iter().enumerate() {
            let samples: Vec<u8> = (0..lines.count_ones()).flat_map(|_| fill).collect();
            let pcm = Pcm::new(lines, &samples).unwrap();
            let repr =
                Repr { addr: Address::new(u, s).unwrap(), sync: i == 0, message: Message::PcmWrite(pcm) };
            let mut buf = [0u8; 512];
            let n = repr.emit(&mut buf).unwrap();
            frame.extend_from_slice(&buf[..n]);
        }
        self.send_raw(&frame);
    }
}

/// The PCM_READ packets of a transfer: (addr, sync, lines, samples).
pub fn pcm_reads(t: &[u8]) -> Vec<(Address, bool, u32, Vec<u8>)> {
    parse_transfer(t)
        .map(|r| r.expect("device transfer parses"))
        .filter_map(|(_, r)| match r.message {
            Message::PcmRead(p) => Some((r.addr, r.sync, p.lines(), p.samples().to_vec())),
            _ => None,
        })
        .collect()
}
