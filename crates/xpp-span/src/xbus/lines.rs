//! The line models of a bus's channels and their dispatch: a channel's periodic work, line
//! facts to its [`Chan`], tx hook signals to line commands.

use xpp_chan::{FxoLine, FxsLine};
use xpp_proto::Instant;

use super::{XbusCore, XbusStats};
use crate::chan::{Chan, LineCommand, LineFact};
use crate::dahdi::RxSig;

#[derive(Debug, Clone)]
pub(super) enum Line {
    None,
    Fxs(FxsLine),
    Fxo(FxoLine),
}

impl XbusCore {
    /// A channel's periodic work: due timers (with `timers`), line facts to DAHDI events, tx
    /// hook signals to line commands, line register commands to the paced queue.
    pub(super) fn service(&mut self, ci: usize, now: Instant, timers: bool) {
        let Self { chans, cmds, stats, .. } = self;
        let ch = &mut chans[ci];
        if timers && ch.chan.poll_timeout().is_some_and(|t| t <= now) {
            ch.chan.handle_timeout(now);
        }
        match &mut ch.line {
            Line::Fxs(l) => {
                if timers && l.poll_timeout().is_some_and(|t| t <= now) {
                    l.handle_timeout(now);
                }
            }
            Line::Fxo(l) => {
                if timers && l.poll_timeout().is_some_and(|t| t <= now) {
                    l.handle_timeout(now);
                }
            }
            Line::None => {}
        }
        // Facts and commands feed each other (ring stops on off-hook...); a few rounds settle.
        for _ in 0..4 {
            let mut busy = false;
            loop {
                let ev = match &mut ch.line {
                    Line::Fxs(l) => l.poll_event(),
                    Line::Fxo(l) => l.poll_event(),
                    Line::None => None,
                };
                let Some(ev) = ev else { break };
                busy = true;
                apply_fact(&mut ch.chan, ev, stats);
            }
            while let Some((_, cmd)) = ch.chan.poll_line_command() {
                busy = true;
                if let Some(cmd) = cmd
                    && !apply_line_command(&mut ch.line, now, cmd)
                {
                    stats.line_refusals += 1;
                }
            }
            if !busy {
                break;
            }
        }
        loop {
            let cmd = match &mut ch.line {
                Line::Fxs(l) => l.poll_transmit(now),
                Line::Fxo(l) => l.poll_transmit(now),
                Line::None => None,
            };
            let Some(cmd) = cmd else { break };
            cmds.push(cmd);
        }
    }
}

/// A line model's raw fact, as the span core sees it.
fn apply_fact(chan: &mut Chan, ev: xpp_chan::Event, stats: &mut XbusStats) {
    use xpp_chan::Event as E;
    match ev {
        E::HookChanged { off_hook, at } => {
            chan.handle_fact(at, if off_hook { LineFact::HookOff } else { LineFact::HookOn });
        }
        E::RingDetected { on, at } => {
            chan.handle_fact(at, if on { LineFact::RingBegin } else { LineFact::RingEnd });
        }
        E::Battery { present, at } => {
            chan.handle_fact(at, if present { LineFact::BatteryRestored } else { LineFact::BatteryLost });
        }
        E::PolarityReversed { at } => chan.handle_fact(at, LineFact::PolarityReversal),
        // The reference reports power denial to DAHDI as on-hook.
        E::PowerDenial { at } => chan.handle_rxsig(at, RxSig::OnHook),
        E::DtmfDigit { digit, down, at } => {
            let d = u8::try_from(digit).unwrap_or(b'?');
            chan.handle_fact(at, if down { LineFact::DtmfDown(d) } else { LineFact::DtmfUp(d) });
        }
        E::Overheat { .. } => stats.overheats += 1,
        _ => {}
    }
}

/// A tx hook signal's line command, applied to the line model; `false` if refused.
fn apply_line_command(line: &mut Line, now: Instant, cmd: LineCommand) -> bool {
    match (line, cmd) {
        (Line::Fxs(l), LineCommand::RingOn) => {
            l.set_line_open(now, false);
            l.start_ringing(now, xpp_chan::Cadence::CONTINUOUS).is_ok()
        }
        (Line::Fxs(l), LineCommand::Idle | LineCommand::Active) => {
            // Ring gaps and hang-up: the line leaves ringing through on-hook transmission.
            l.stop_ringing(now);
            l.set_line_open(now, false);
            true
        }
        (Line::Fxs(l), LineCommand::DropBattery) => {
            l.set_line_open(now, true);
            true
        }
        (Line::Fxo(l), LineCommand::CloseLoop) => l.off_hook(now).is_ok(),
        (Line::Fxo(l), LineCommand::OpenLoop) => {
            l.on_hook(now);
            true
        }
        (Line::None, _) => true,
        // Ground start on an Astribank FXO port, or a command for the other port type.
        _ => false,
    }
}
