//! Hook machine traces on a virtual clock: the exact DAHDI event sequence with timings.

use super::*;
use rstest::rstest;

/// Drives one machine on a virtual clock, recording events and tx signals with their time
/// in milliseconds. Timers due at or before an input's time are handled first (a timer wins
/// a tie with an input).
struct Sim {
    m: HookMachine,
    now: u64,
    events: Vec<(u64, Event)>,
    tx: Vec<(u64, TxSig)>,
}

impl Sim {
    fn new(sig: Sig) -> Self {
        Self { m: HookMachine::new(1, sig), now: 0, events: Vec::new(), tx: Vec::new() }
    }

    fn drain(&mut self) {
        while let Some(e) = self.m.poll_event() {
            self.events.push((self.now, e));
        }
        if let Some(s) = self.m.poll_hooksig() {
            self.tx.push((self.now, s));
        }
    }

    fn run_until(&mut self, ms: u64) {
        let target = Instant::from_millis(ms);
        while let Some(at) = self.m.poll_timeout().filter(|&at| at <= target) {
            assert!(at >= Instant::from_millis(self.now), "timer went backwards");
            self.now = at.total_millis();
            self.m.handle_timeout(at);
            self.drain();
        }
        self.now = ms;
    }

    fn rx(&mut self, ms: u64, s: RxSig) -> &mut Self {
        self.run_until(ms);
        self.m.handle_rxsig(Instant::from_millis(ms), s);
        self.drain();
        self
    }

    fn hook(&mut self, ms: u64, cmd: HookCmd, mode: HookMode) -> Result<HookOutcome, HookError> {
        self.run_until(ms);
        let r = self.m.set_hook(Instant::from_millis(ms), cmd, mode);
        self.drain();
        r
    }

    fn take_events(&mut self) -> Vec<(u64, Event)> {
        std::mem::take(&mut self.events)
    }

    fn take_tx(&mut self) -> Vec<(u64, TxSig)> {
        std::mem::take(&mut self.tx)
    }
}

use Event as E;
use HookMode::{Blocking, NonBlocking};

#[rstest]
#[case(Sig::Fxols)]
#[case(Sig::Fxogs)]
#[case(Sig::Fxoks)]
fn fxo_signalled_offhook_and_hangup(#[case] sig: Sig) {
    let mut s = Sim::new(sig);
    s.rx(0, RxSig::OnHook);
    assert_eq!(s.take_events(), [(0, E::ONHOOK)], "first report after reset counts at once");
    s.rx(1000, RxSig::OffHook);
    assert_eq!(s.take_events(), [(1000, E::RINGOFFHOOK)]);
    assert!(s.m.rx_is_offhook());
    s.rx(5000, RxSig::OnHook);
    s.run_until(10_000);
    assert_eq!(s.take_events(), [(6250, E::ONHOOK)], "on-hook held rxflashtime");
    assert_eq!(s.m.poll_timeout(), None);
}

/// The flash vs hang-up boundary and the pulse window, by on-hook duration.
#[rstest]
#[case::glitch(14, &[])]
#[case::shortest_pulse(15, &[(1015, E::PULSE_START), (1265, E::pulse_digit(b'1'))])]
#[case::longest_pulse(200, &[(1200, E::PULSE_START), (1450, E::pulse_digit(b'1'))])]
#[case::shortest_flash(201, &[(1201, E::WINKFLASH)])]
#[case::longest_flash(1249, &[(2249, E::WINKFLASH)])]
#[case::hangup(1250, &[(2250, E::ONHOOK), (2250, E::RINGOFFHOOK)])]
fn flash_vs_hangup_boundary(#[case] onhook_ms: u64, #[case] want: &[(u64, Event)]) {
    let mut s = Sim::new(Sig::Fxoks);
    s.rx(0, RxSig::OffHook);
    assert_eq!(s.take_events(), [(0, E::RINGOFFHOOK)]);
    s.rx(1000, RxSig::OnHook);
    s.rx(1000 + onhook_ms, RxSig::OffHook);
    s.run_until(5000);
    assert_eq!(s.take_events(), want);
}

/// Pulse dialing at 10 pps (60 ms break, 40 ms make): digits 3, 0 (ten pulses) and #.
#[test]
fn pulse_dialing_digits() {
    let mut s = Sim::new(Sig::Fxols);
    s.rx(0, RxSig::OffHook);
    s.take_events();
    let mut t = 1000;
    let mut want = Vec::new();
    for (pulses, digit) in [(3u64, b'3'), (10, b'0'), (12, b'#')] {
        for p in 0..pulses {
            s.rx(t, RxSig::OnHook);
            s.rx(t + 60, RxSig::OffHook);
            if p == 0 {
                want.push((t + 60, E::PULSE_START));
            }
            t += 100;
        }
        // Last make at t - 40; the digit is due 250 ms later.
        want.push((t - 40 + 250, E::pulse_digit(digit)));
        t += 700; // inter-digit pause
    }
    s.run_until(t + 2000);
    assert_eq!(s.take_events(), want);
    assert_eq!(s.take_tx(), [], "receiving digits never touches tx");
}

#[test]
fn thirteen_pulses_is_no_digit() {
    let mut s = Sim::new(Sig::Fxols);
    s.rx(0, RxSig::OffHook);
    s.take_events();
    for i in 0..13 {
        s.rx(1000 + i * 100, RxSig::OnHook);
        s.rx(1060 + i * 100, RxSig::OffHook);
    }
    s.run_until(5000);
    assert_eq!(s.take_events(), [(1060, E::PULSE_START)]);
}

#[test]
fn hangup_right_after_dialing_reports_digit_then_onhook() {
    let mut s = Sim::new(Sig::Fxoks);
    s.rx(0, RxSig::OffHook);
    s.take_events();
    s.rx(1000, RxSig::OnHook);
    s.rx(1060, RxSig::OffHook);
    s.rx(1100, RxSig::OnHook); // hangs up 40 ms after the pulse
    s.run_until(5000);
    assert_eq!(s.take_events(), [(1060, E::PULSE_START), (1310, E::pulse_digit(b'1')), (2350, E::ONHOOK)]);
}

#[test]
fn ring_cadence_default_then_answer() {
    let mut s = Sim::new(Sig::Fxoks);
    s.rx(0, RxSig::OnHook);
    s.take_events();
    assert_eq!(s.hook(100, HookCmd::Ring, Blocking), Ok(HookOutcome::Done));
    s.run_until(12_100);
    assert_eq!(
        s.take_events(),
        [
            (100, E::RINGERON),
            (2100, E::RINGEROFF),
            (6100, E::RINGERON),
            (8100, E::RINGEROFF),
            (12_100, E::RINGERON)
        ]
    );
    assert_eq!(
        s.take_tx(),
        [
            (100, TxSig::Start),
            (2100, TxSig::OffHook),
            (6100, TxSig::Start),
            (8100, TxSig::OffHook),
            (12_100, TxSig::Start)
        ]
    );
    // The phone answers during ring-on: ringing stops, RINGOFFHOOK.
    s.rx(13_000, RxSig::OffHook);
    assert_eq!(s.take_events(), [(13_000, E::RINGOFFHOOK)]);
    assert_eq!(s.take_tx(), [(13_000, TxSig::OffHook)]);
    assert_eq!(s.m.tx_state(), TxState::OffHook);
    assert_eq!(s.m.poll_timeout(), None);
}

#[test]
fn ring_cadence_with_loop_back_point_and_ringoff() {
    let mut s = Sim::new(Sig::Fxols);
    s.m.set_cadence(Some(Cadence::new(&[400, 200, -400, 2000, 0, 999]).expect("valid cadence")));
    s.rx(0, RxSig::OnHook);
    s.take_events();
    assert_eq!(s.hook(0, HookCmd::Start, NonBlocking), Ok(HookOutcome::Done));
    s.run_until(5999);
    let ev: Vec<(u64, Event)> = s.take_events();
    assert_eq!(
        ev,
        [
            (0, E::RINGERON),
            (400, E::RINGEROFF),
            (600, E::RINGERON),
            (1000, E::RINGEROFF),
            (3000, E::RINGERON), // loops back to index 2, not 0
            (3400, E::RINGEROFF),
            (5400, E::RINGERON),
            (5800, E::RINGEROFF),
        ]
    );
    assert_eq!(s.hook(6000, HookCmd::RingOff, Blocking), Ok(HookOutcome::Done));
    assert_eq!(s.take_tx().last(), Some(&(6000, TxSig::OnHook)));
    assert_eq!(s.m.poll_timeout(), None);
    assert_eq!(s.take_events(), [], "no HOOKCOMPLETE for ringing, no RINGEROFF on RINGOFF");
}

#[test]
fn cadence_validation() {
    assert_eq!(Cadence::new(&[]), Err(CadenceError::TooShort));
    assert_eq!(Cadence::new(&[0, 100]), Err(CadenceError::TooShort));
    assert_eq!(Cadence::new(&[100, 200, 300]), Err(CadenceError::Unpaired));
    assert_eq!(Cadence::new(&[100, -200]), Err(CadenceError::NegativeOff));
    let c = Cadence::new(&[1; 20]).expect("16 values kept");
    assert_eq!(c.steps().len(), 16);
    let d = Cadence::default_for(&HookTimings::defaults_for(Sig::Fxoks));
    assert_eq!(d.steps(), [2000, 4000]);
    let d = Cadence::default_for(&HookTimings::defaults_for(Sig::Em));
    assert_eq!(d.steps(), [1500, 4000]);
}

#[test]
fn default_timings() {
    let t = HookTimings::defaults_for(Sig::Fxsks);
    let ms = |d: Duration| d.total_millis();
    assert_eq!(
        [
            ms(t.prewinktime),
            ms(t.preflashtime),
            ms(t.winktime),
            ms(t.flashtime),
            ms(t.starttime),
            ms(t.rxwinktime),
            ms(t.rxflashtime),
            ms(t.debouncetime),
            ms(t.pulsebreaktime),
            ms(t.pulsemaketime),
            ms(t.pulseaftertime)
        ],
        [50, 50, 150, 750, 1500, 300, 1250, 600, 50, 50, 750]
    );
    assert_eq!(HookTimings::defaults_for(Sig::Fxogs).starttime, Duration::from_millis(2000));
    assert_eq!(
        [
            fixed::AFTERSTART_MS,
            fixed::KEWL_MS,
            fixed::AFTERKEWL_MS,
            fixed::RINGOFF_MS,
            fixed::RING_DEBOUNCE_MS,
            fixed::RING_TRAILER_MS,
            fixed::PULSE_MIN_MS,
            fixed::PULSE_MAX_MS,
            fixed::PULSE_DIGIT_TIMEOUT_MS
        ],
        [500, 500, 300, 4000, 2000, 50, 15, 200, 250]
    );
}

#[rstest]
#[case(Sig::Fxsls)]
#[case(Sig::Fxsgs)]
#[case(Sig::Fxsks)]
fn fxs_signalled_incoming_ring(#[case] sig: Sig) {
    let mut s = Sim::new(sig);
    s.rx(0, RxSig::OffHook); // battery present, no ring
    assert_eq!(s.take_events(), []);
    s.rx(1000, RxSig::Ring);
    s.rx(3000, RxSig::OffHook);
    // A second ring burst with detector chatter inside it (gap shorter than the trailer).
    s.rx(7000, RxSig::Ring);
    s.rx(7100, RxSig::OffHook);
    s.rx(7140, RxSig::Ring);
    s.rx(9000, RxSig::OffHook);
    s.run_until(10_000);
    assert_eq!(
        s.take_events(),
        [(1000, E::RINGBEGIN), (3050, E::RINGOFFHOOK), (7000, E::RINGBEGIN), (9050, E::RINGOFFHOOK)]
    );
}

/// Battery drop (far-end disconnect): fxsls never reports it; fxsgs always (outside tx
/// debounce); fxsks only while tx is off hook.
#[rstest]
#[case(Sig::Fxsls, false, false)]
#[case(Sig::Fxsgs, true, true)]
#[case(Sig::Fxsks, false, true)]
fn fxs_signalled_battery_drop(#[case] sig: Sig, #[case] when_onhook: bool, #[case] when_offhook: bool) {
    let mut s = Sim::new(sig);
    s.rx(0, RxSig::OffHook);
    s.rx(1000, RxSig::OnHook);
    let got: Vec<_> = s.take_events();
    assert_eq!(got, if when_onhook { vec![(1000, E::ONHOOK)] } else { vec![] });
    s.rx(2000, RxSig::OffHook);
    // Seize: OFFHOOK, debounce 600 ms; a battery drop inside the debounce is ignored.
    assert_eq!(s.hook(5000, HookCmd::OffHook, Blocking), Ok(HookOutcome::Done));
    assert_eq!(s.take_tx(), [(5000, TxSig::OffHook)]);
    s.rx(5300, RxSig::OnHook);
    s.rx(5400, RxSig::OffHook);
    s.run_until(5600);
    assert_eq!(s.m.tx_state(), TxState::OffHook);
    assert_eq!(s.take_events(), []);
    s.rx(20_000, RxSig::OnHook);
    let got: Vec<_> = s.take_events();
    assert_eq!(got, if when_offhook { vec![(20_000, E::ONHOOK)] } else { vec![] });
    // The drop re-armed the ring debounce: a ring 1999 ms later is ignored.
    s.rx(20_500, RxSig::OffHook);
    s.rx(21_999, RxSig::Ring);
    s.rx(22_500, RxSig::OffHook);
    s.run_until(23_000);
    let got: Vec<_> = s.take_events();
    if when_offhook {
        assert_eq!(got, []);
    } else {
        assert_eq!(got, [(21_999, E::RINGBEGIN), (22_550, E::RINGOFFHOOK)]);
    }
}

#[test]
fn ring_debounce_after_hangup() {
    let mut s = Sim::new(Sig::Fxsks);
    s.rx(0, RxSig::OffHook);
    assert_eq!(s.hook(1000, HookCmd::OffHook, Blocking), Ok(HookOutcome::Done));
    assert_eq!(s.hook(10_000, HookCmd::OnHook, Blocking), Ok(HookOutcome::Done));
    assert_eq!(s.take_tx(), [(1000, TxSig::OffHook), (10_000, TxSig::OnHook)]);
    s.rx(11_999, RxSig::Ring);
    s.rx(12_100, RxSig::OffHook);
    s.run_until(13_000);
    assert_eq!(s.take_events(), [], "inside the 2 s debounce");
    s.rx(14_000, RxSig::Ring);
    s.rx(15_000, RxSig::OffHook);
    s.run_until(16_000);
    assert_eq!(s.take_events(), [(14_000, E::RINGBEGIN), (15_050, E::RINGOFFHOOK)]);
    // Exactly at the debounce end the timer wins the tie: the ring counts.
    let mut s = Sim::new(Sig::Fxsls);
    s.rx(0, RxSig::OffHook);
    let _ = s.hook(0, HookCmd::OnHook, Blocking);
    s.rx(2000, RxSig::Ring);
    assert_eq!(s.take_events(), [(2000, E::RINGBEGIN)]);
}

#[test]
fn fxoks_hangup_with_phone_offhook_sends_kewl() {
    let mut s = Sim::new(Sig::Fxoks);
    s.rx(0, RxSig::OffHook);
    assert_eq!(s.hook(100, HookCmd::OffHook, Blocking), Ok(HookOutcome::Done));
    assert_eq!(s.hook(1000, HookCmd::OnHook, Blocking), Ok(HookOutcome::Done));
    assert_eq!(s.hook(1100, HookCmd::OffHook, Blocking), Err(HookError::Busy(TxState::Kewl)));
    s.rx(1200, RxSig::OnHook); // phone hangs up during KEWL: no flash timing
    s.run_until(3000);
    assert_eq!(s.take_events(), [(0, E::RINGOFFHOOK), (1800, E::ONHOOK)]);
    assert_eq!(s.take_tx(), [(100, TxSig::OffHook), (1000, TxSig::Kewl), (1500, TxSig::OnHook)]);
    assert_eq!(HookError::Busy(TxState::Kewl).errno(), 16);
}

#[test]
fn fxoks_kewl_phone_stays_offhook() {
    let mut s = Sim::new(Sig::Fxoks);
    s.rx(0, RxSig::OffHook);
    let _ = s.hook(1000, HookCmd::OnHook, Blocking);
    s.run_until(3000);
    assert_eq!(s.take_events(), [(0, E::RINGOFFHOOK)], "no ONHOOK: the phone did not hang up");
    assert_eq!(s.m.tx_state(), TxState::OnHook);
    // Later the phone hangs up: normal on-hook timing.
    s.rx(4000, RxSig::OnHook);
    s.run_until(6000);
    assert_eq!(s.take_events(), [(5250, E::ONHOOK)]);
}

#[test]
fn fxols_hangup_with_phone_offhook_no_kewl() {
    let mut s = Sim::new(Sig::Fxols);
    s.rx(0, RxSig::OffHook);
    let _ = s.hook(1000, HookCmd::OnHook, Blocking);
    assert_eq!(s.take_tx(), [], "tx was on hook already");
    assert_eq!(s.m.tx_state(), TxState::OnHook);
}

#[rstest]
#[case(NonBlocking, true)]
#[case(Blocking, false)]
fn tx_wink(#[case] mode: HookMode, #[case] hookcomplete: bool) {
    let mut s = Sim::new(Sig::Em);
    assert_eq!(s.hook(0, HookCmd::Wink, mode), Ok(HookOutcome::InProgress));
    assert!(s.m.is_tx_busy());
    s.run_until(1000);
    assert!(!s.m.is_tx_busy());
    assert_eq!(s.take_tx(), [(50, TxSig::OffHook), (200, TxSig::OnHook)]);
    assert_eq!(s.take_events(), if hookcomplete { vec![(200, E::HOOKCOMPLETE)] } else { vec![] });
    let _ = s.hook(2000, HookCmd::OffHook, Blocking);
    assert_eq!(s.hook(2001, HookCmd::Wink, mode), Err(HookError::Busy(TxState::Debounce)));
}

#[test]
fn tx_flash() {
    let mut s = Sim::new(Sig::Fxsks);
    assert_eq!(s.hook(0, HookCmd::Flash, NonBlocking), Err(HookError::Busy(TxState::OnHook)));
    let _ = s.hook(0, HookCmd::OffHook, Blocking);
    s.run_until(1000);
    assert_eq!(s.hook(1000, HookCmd::Flash, NonBlocking), Ok(HookOutcome::InProgress));
    s.run_until(3000);
    assert_eq!(s.take_tx(), [(0, TxSig::OffHook), (1050, TxSig::OnHook), (1800, TxSig::OffHook)]);
    assert_eq!(s.take_events(), [(1800, E::HOOKCOMPLETE)]);
    assert_eq!(s.m.tx_state(), TxState::OffHook);
}

#[rstest]
#[case(Sig::Fxsgs)]
#[case(Sig::Em)]
#[case(Sig::EmE1)]
fn tx_start_on_non_fxo_signalled(#[case] sig: Sig) {
    let mut s = Sim::new(sig);
    assert_eq!(s.hook(0, HookCmd::Start, NonBlocking), Ok(HookOutcome::InProgress));
    s.run_until(5000);
    assert_eq!(s.take_tx(), [(0, TxSig::Start), (1500, TxSig::OffHook)]);
    assert_eq!(s.take_events(), [(2000, E::HOOKCOMPLETE)]);
    assert_eq!(s.m.tx_state(), TxState::OffHook);
    assert_eq!(s.hook(5000, HookCmd::Ring, Blocking), Err(HookError::Busy(TxState::OffHook)));
}

#[test]
fn onhook_aborts_a_wink_without_hookcomplete() {
    let mut s = Sim::new(Sig::Em);
    let _ = s.hook(0, HookCmd::Wink, NonBlocking);
    let _ = s.hook(100, HookCmd::OnHook, Blocking);
    s.run_until(1000);
    assert_eq!(s.take_events(), []);
    assert_eq!(s.take_tx(), [(50, TxSig::OffHook), (100, TxSig::OnHook)]);
}

#[test]
fn em_rx_seizure_wink_and_onhook() {
    let mut s = Sim::new(Sig::Em);
    s.rx(0, RxSig::OnHook);
    s.rx(1000, RxSig::OffHook);
    s.rx(2000, RxSig::OnHook);
    s.rx(3000, RxSig::OffHook);
    s.rx(3299, RxSig::OnHook);
    s.run_until(5000);
    assert_eq!(
        s.take_events(),
        [(0, E::ONHOOK), (1300, E::RINGOFFHOOK), (2000, E::ONHOOK), (3299, E::WINKFLASH)]
    );
}

#[test]
fn fxogs_ground_start_once_per_seizure() {
    let mut s = Sim::new(Sig::Fxogs);
    s.rx(0, RxSig::OnHook);
    s.take_events();
    s.rx(1000, RxSig::Start);
    s.rx(1100, RxSig::OffHook);
    s.rx(5000, RxSig::OnHook);
    s.rx(8000, RxSig::Start);
    s.run_until(9000);
    assert_eq!(s.take_events(), [(1000, E::RINGOFFHOOK), (6250, E::ONHOOK), (8000, E::RINGOFFHOOK)]);
}

#[test]
fn sf_rx() {
    let mut s = Sim::new(Sig::Sf);
    s.rx(0, RxSig::OffHook);
    s.rx(10, RxSig::OnHook);
    assert_eq!(s.take_events(), [(0, E::RINGOFFHOOK), (10, E::ONHOOK)]);
}

#[rstest]
#[case(Sig::None)]
#[case(Sig::Clear)]
#[case(Sig::HdlcFcs)]
#[case(Sig::Cas)]
#[case(Sig::HardHdlc)]
fn no_hook_signalling(#[case] sig: Sig) {
    let mut s = Sim::new(sig);
    assert_eq!(s.hook(0, HookCmd::OffHook, Blocking), Err(HookError::Invalid));
    assert_eq!(HookError::Invalid.errno(), 22);
    s.rx(0, RxSig::OffHook);
    assert_eq!(s.take_events(), []);
    assert_eq!(s.m.rxsig(), RxSig::Initial);
}

#[test]
fn unknown_values_are_refused_or_ignored() {
    let mut s = Sim::new(Sig::Fxoks);
    assert_eq!(s.hook(0, HookCmd::Unknown(7), Blocking), Err(HookError::Invalid));
    s.rx(0, RxSig::Unknown(9));
    s.rx(0, RxSig::Initial);
    assert_eq!(s.take_events(), []);
}

#[test]
fn sigfreeze_ignores_reports() {
    let mut s = Sim::new(Sig::Fxoks);
    s.m.set_sigfreeze(true);
    s.rx(0, RxSig::OffHook);
    assert_eq!(s.take_events(), []);
    s.m.set_sigfreeze(false);
    s.rx(10, RxSig::OffHook);
    assert_eq!(s.take_events(), [(10, E::RINGOFFHOOK)]);
}

#[test]
fn reset_rearms_initial() {
    let mut s = Sim::new(Sig::Fxoks);
    s.rx(0, RxSig::OffHook);
    let _ = s.hook(0, HookCmd::OffHook, Blocking);
    s.take_events();
    s.run_until(100);
    s.m.reset(Instant::from_millis(100), Sig::Fxoks);
    s.drain();
    assert_eq!(s.m.rxsig(), RxSig::Initial);
    assert_eq!(s.m.poll_timeout(), None);
    assert_eq!(s.take_tx(), [(0, TxSig::OffHook), (100, TxSig::OnHook)]);
    // The driver re-reports the off-hook phone: it counts again.
    s.rx(101, RxSig::OffHook);
    assert_eq!(s.take_events(), [(101, E::RINGOFFHOOK)]);
}

#[test]
fn time_never_runs_backwards() {
    let mut m = HookMachine::new(1, Sig::Fxoks);
    m.handle_rxsig(Instant::from_millis(1000), RxSig::OffHook);
    m.handle_rxsig(Instant::from_millis(500), RxSig::OnHook); // late report: treated as t=1000
    assert_eq!(m.poll_timeout(), Some(Instant::from_millis(2250)));
}

/// A line found off hook at a take-over: the machine adopts it (no hooksig, no event), and
/// the PBX's on-hook is then given to the line; adopting is a no-op unless on hook.
#[test]
fn adopted_offhook_line_is_released_by_the_pbx() {
    let mut s = Sim::new(Sig::Fxsks);
    s.m.adopt_line_offhook();
    s.drain();
    assert_eq!((s.take_events(), s.take_tx()), (vec![], vec![]));
    assert_eq!(s.m.txsig(), TxSig::OffHook);
    let _ = s.hook(100, HookCmd::OnHook, Blocking).unwrap();
    assert_eq!(s.take_tx(), [(100, TxSig::OnHook)]);
    // Already on its way elsewhere (not on hook): left alone.
    let _ = s.hook(200, HookCmd::OffHook, Blocking).unwrap();
    s.m.adopt_line_offhook();
    s.run_until(2000);
    assert_eq!(s.m.txsig(), TxSig::OffHook);
    assert_eq!(s.take_tx(), [(200, TxSig::OffHook)], "one hooksig, from the PBX's command");
}
