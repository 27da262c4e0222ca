//! The per-bus command queue and its pacing (docs/reference/xpp-protocol.md §7.5, §6.3).
//!
//! Once per tick (the device's tick, or the host's own 1 ms timer while the bus is not
//! self-ticking) [`CommandQueue::tick`] subtracts 1000 µs from a budget and releases up to
//! three queued commands while the budget is <= 0, each adding its cost: a REG request
//! 2000 µs if its sub-register byte is non-zero, else 1000 µs; a RAM request 1000 µs; any other
//! command 0. Net effect: about one register write per ms. The queue holds at most
//! [`MAX_QUEUED`] commands; storage is reserved up front, so queueing never allocates.

use std::collections::VecDeque;

use xpp_proto::wire::{Message, RegCmd, Repr};

/// Most commands waiting (the reference's limit; overflow fails the bus there).
pub const MAX_QUEUED: usize = 1500;
/// Most commands released per tick.
pub const MAX_PER_TICK: usize = 3;
/// Budget added back per tick, µs.
pub const TICK_BUDGET_US: i64 = 1000;

/// The pacing cost of a command, µs (§6.3).
pub fn cost_us(repr: &Repr<'_>) -> i64 {
    match repr.message {
        Message::RegisterRequest(RegCmd::Reg(r)) if r.subreg != 0 => 2000,
        Message::RegisterRequest(RegCmd::Reg(_) | RegCmd::Ram(_)) => 1000,
        _ => 0,
    }
}

/// A bounded FIFO of commands with the §7.5 budget.
#[derive(Debug, Clone)]
pub struct CommandQueue {
    q: VecDeque<Repr<'static>>,
    budget_us: i64,
    dropped: u64,
}

impl Default for CommandQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl CommandQueue {
    /// An empty queue with room for [`MAX_QUEUED`] commands reserved.
    pub fn new() -> Self {
        Self { q: VecDeque::with_capacity(MAX_QUEUED), budget_us: 0, dropped: 0 }
    }

    /// Queues `cmd`; `false` (and counted) when the queue is full.
    pub fn push(&mut self, cmd: Repr<'static>) -> bool {
        if self.q.len() >= MAX_QUEUED {
            self.dropped += 1;
            return false;
        }
        self.q.push_back(cmd);
        true
    }

    /// Commands waiting.
    pub fn len(&self) -> usize {
        self.q.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.q.is_empty()
    }

    /// Commands refused because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Discards every waiting command (teardown, §8.5).
    pub fn clear(&mut self) {
        self.q.clear();
        self.budget_us = 0;
    }

    /// One tick: releases the commands due now to `send`, at most [`MAX_PER_TICK`].
    pub fn tick(&mut self, mut send: impl FnMut(&Repr<'static>)) -> usize {
        self.budget_us -= TICK_BUDGET_US;
        let mut sent = 0;
        while self.budget_us <= 0 && sent < MAX_PER_TICK {
            let Some(cmd) = self.q.pop_front() else {
                // Decision: an idle queue does not bank credit: the budget restarts at 0, so
                // a burst after a quiet period is still paced (the reference does the same;
                // its first tick may release two REGs).
                self.budget_us = 0;
                break;
            };
            self.budget_us += cost_us(&cmd);
            send(&cmd);
            sent += 1;
        }
        sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xpp_proto::wire::{Address, RamAccess, RegAccess, SyncMode, SyncState};

    fn reg(sub: u8) -> Repr<'static> {
        let a =
            if sub == 0 { RegAccess::write(0, 0x40, 1) } else { RegAccess::write_sub(0, 0x1E, sub, 0, 0) };
        Repr::command(Address::ZERO, Message::RegisterRequest(RegCmd::Reg(a)))
    }

    fn sync() -> Repr<'static> {
        Repr::command(Address::ZERO, Message::SyncSource(SyncState { mode: SyncMode::Pll, drift: 0 }))
    }

    fn run(q: &mut CommandQueue, ticks: usize) -> Vec<usize> {
        (0..ticks).map(|_| q.tick(|_| {})).collect()
    }

    #[test]
    fn one_reg_per_ms_one_subreg_per_two() {
        let mut q = CommandQueue::new();
        for _ in 0..3 {
            assert!(q.push(reg(0)));
        }
        // The budget starts at 0: the first tick of a burst releases two REGs, then one per ms.
        assert_eq!(run(&mut q, 4), [2, 1, 0, 0]);
        for _ in 0..3 {
            q.push(reg(0x58));
        }
        // Then one sub-register command per 2 ms.
        assert_eq!(run(&mut q, 6), [1, 1, 0, 1, 0, 0]);
        let ram =
            Repr::command(Address::ZERO, Message::RegisterRequest(RegCmd::Ram(RamAccess::write(0, 767, 1))));
        q.push(ram);
        q.push(ram);
        assert_eq!(run(&mut q, 3), [2, 0, 0]);
    }

    #[test]
    fn free_commands_three_per_tick() {
        let mut q = CommandQueue::new();
        for _ in 0..7 {
            q.push(sync());
        }
        assert_eq!(run(&mut q, 4), [3, 3, 1, 0]);
        // No credit after idling: a REG then waits its turn as usual.
        run(&mut q, 10);
        q.push(reg(0));
        q.push(reg(0));
        assert_eq!(run(&mut q, 2), [2, 0]);
        for _ in 0..4 {
            q.push(reg(0));
        }
        assert_eq!(run(&mut q, 5), [2, 1, 1, 0, 0]);
    }

    #[test]
    fn bounded() {
        let mut q = CommandQueue::new();
        for _ in 0..MAX_QUEUED {
            assert!(q.push(sync()));
        }
        assert!(!q.push(sync()));
        assert_eq!(q.dropped(), 1);
        q.clear();
        assert!(q.is_empty());
    }
}
