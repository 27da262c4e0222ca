//! Helpers for the unit tests: a virtual clock, packet builders and hand-written register
//! commands (built field by field from the reference, not from the line's code).

use xpp_proto::wire::{Address, Message, RamAccess, RegAccess, RegCmd, Repr, SigChanged};
use xpp_proto::{Duration, Instant};

pub(crate) fn addr() -> Address {
    Address::new(1, 0).expect("valid address")
}

pub(crate) fn ms(v: u64) -> Instant {
    Instant::from_millis(v)
}

pub(crate) fn dms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// `WD`: direct register write.
pub(crate) fn wd(port: u8, reg: u8, data: u8) -> RegCmd {
    RegCmd::Reg(RegAccess {
        port,
        broadcast: false,
        read: false,
        expander: false,
        do_subreg: false,
        do_datah: false,
        reg,
        subreg: 0,
        data_low: data,
        data_high: 0,
    })
}

/// `RD`: direct register read.
pub(crate) fn rd(port: u8, reg: u8) -> RegCmd {
    RegCmd::Reg(RegAccess {
        port,
        broadcast: false,
        read: true,
        expander: false,
        do_subreg: false,
        do_datah: false,
        reg,
        subreg: 0,
        data_low: 0,
        data_high: 0,
    })
}

/// `WS`: indirect write through `reg` with `subreg`, two data bytes.
pub(crate) fn ws(port: u8, reg: u8, subreg: u8, lo: u8, hi: u8) -> RegCmd {
    RegCmd::Reg(RegAccess {
        port,
        broadcast: false,
        read: false,
        expander: false,
        do_subreg: true,
        do_datah: true,
        reg,
        subreg,
        data_low: lo,
        data_high: hi,
    })
}

/// `WX`: type-6 I/O expander write (port 0, do_subreg, do_datah).
pub(crate) fn wx(reg: u8, lo: u8, hi: u8) -> RegCmd {
    RegCmd::Reg(RegAccess {
        port: 0,
        broadcast: false,
        read: false,
        expander: true,
        do_subreg: true,
        do_datah: true,
        reg,
        subreg: 0,
        data_low: lo,
        data_high: hi,
    })
}

/// `WR`: RAM write.
pub(crate) fn wr(port: u8, ram: u16, data: u32) -> RegCmd {
    RegCmd::Ram(RamAccess { port, broadcast: false, read: false, addr: ram, data })
}

/// A REG reply from the device: a read of `reg` on `port` answered with `value`.
pub(crate) fn reply(port: u8, reg: u8, value: u8) -> Repr<'static> {
    let mut r = RegAccess::read(port, reg);
    r.data_low = value;
    Repr::command(addr(), Message::RegisterReply(RegCmd::Reg(r)))
}

pub(crate) fn sig(status: u32, toggles: u32) -> Repr<'static> {
    Repr::command(addr(), Message::SigChanged(SigChanged { status, toggles }))
}

/// Every register command queued, checking each is a REGISTER_REQUEST to [`addr`].
pub(crate) fn drain(mut next: impl FnMut() -> Option<Repr<'static>>) -> Vec<RegCmd> {
    let mut v = Vec::new();
    while let Some(repr) = next() {
        assert_eq!(repr.addr, addr());
        match repr.message {
            Message::RegisterRequest(cmd) => v.push(cmd),
            other => panic!("unexpected message {other:?}"),
        }
    }
    v
}
