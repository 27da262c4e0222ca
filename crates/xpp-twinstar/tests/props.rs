//! Whatever happens in whatever order, the controller never jumps to a port it was not told
//! has power, never jumps after an orderly stop, and never panics.

use proptest::prelude::*;
use xpp_proto::mgmt::{AckStatus, OwnedReply, TwsPower};
use xpp_proto::{Duration, Instant};
use xpp_twinstar::{Action, Command, Config, Controller, DeviceKey, MppRequest, Role};

#[derive(Debug, Clone)]
enum Input {
    Command(u8),
    Arrive(u8),
    Leave(u8),
    TakeOverDone(u8, bool),
    Health(bool),
    Port(u8, u8),
    Power(u8, u8),
    Ack(u8, bool),
    MppFailed(u8, u8),
    Advance(u16),
}

fn input() -> impl Strategy<Value = Input> {
    prop_oneof![
        (0u8..6).prop_map(Input::Command),
        (0u8..3).prop_map(Input::Arrive),
        (0u8..3).prop_map(Input::Leave),
        (0u8..3, any::<bool>()).prop_map(|(d, ok)| Input::TakeOverDone(d, ok)),
        any::<bool>().prop_map(Input::Health),
        (0u8..3, 0u8..3).prop_map(|(d, p)| Input::Port(d, p)),
        (0u8..3, 0u8..4).prop_map(|(d, p)| Input::Power(d, p)),
        (0u8..3, any::<bool>()).prop_map(|(d, a)| Input::Ack(d, a)),
        (0u8..3, 0u8..4).prop_map(|(d, r)| Input::MppFailed(d, r)),
        (0u16..3000).prop_map(Input::Advance),
    ]
}

fn request(r: u8) -> MppRequest {
    match r {
        0 => MppRequest::PortGet,
        1 => MppRequest::PowerGet,
        2 => MppRequest::WatchdogSet(false),
        _ => MppRequest::WatchdogSet(true),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn never_jumps_to_an_unpowered_port_or_after_a_stop(inputs in prop::collection::vec(input(), 0..80)) {
        let config = Config::default()
            .with_health(Duration::from_millis(100), Duration::from_millis(200), 2)
            .with_anti_flap(Duration::ZERO, 100, Duration::from_secs(1));
        let mut c = Controller::new(config);
        let mut now = Instant::from_secs(1);
        // The last power bits each device reported.
        let mut power = [None::<u8>; 3];
        let mut stopped = false;
        for i in inputs {
            let d = |n: u8| DeviceKey(u32::from(n));
            match i {
                Input::Command(n) => {
                    let cmd = match n {
                        0 => Command::Start(Role::Master),
                        1 => Command::Start(Role::Backup),
                        2 => Command::Jump,
                        3 => Command::EnableWatchdog,
                        4 => Command::DisableWatchdog,
                        _ => Command::Stop,
                    };
                    stopped |= cmd == Command::Stop;
                    c.handle_command(now, cmd);
                }
                Input::Arrive(n) => c.handle_device_arrived(now, d(n)),
                Input::Leave(n) => c.handle_device_left(now, d(n)),
                Input::TakeOverDone(n, ok) => c.handle_takeover_done(now, d(n), ok),
                Input::Health(ok) => c.handle_health(now, ok),
                Input::Port(n, p) => {
                    c.handle_mpp_reply(now, d(n), MppRequest::PortGet, &OwnedReply::TwsPortGetReply { port: p });
                }
                Input::Power(n, p) => {
                    power[usize::from(n)] = Some(p);
                    c.handle_mpp_reply(now, d(n), MppRequest::PowerGet, &OwnedReply::TwsPwrGetReply(TwsPower(p)));
                }
                Input::Ack(n, armed) => {
                    let ack = OwnedReply::Ack { status: AckStatus::Ok };
                    c.handle_mpp_reply(now, d(n), MppRequest::WatchdogSet(armed), &ack);
                }
                Input::MppFailed(n, r) => c.handle_mpp_failed(now, d(n), request(r)),
                Input::Advance(ms) => {
                    now += Duration::from_millis(u64::from(ms));
                    while let Some(t) = c.poll_timeout().filter(|&t| t <= now) {
                        c.handle_timeout(t);
                    }
                }
            }
            while let Some(a) = c.poll_action() {
                if let Action::Mpp { device, request: MppRequest::PortSet(port) } = a {
                    prop_assert!(!stopped, "PortSet after Stop");
                    prop_assert!(port < 2);
                    let bits = power[device.0 as usize];
                    prop_assert!(bits.is_some_and(|b| b & (1 << port) != 0), "jump to unpowered {port}: {bits:?}");
                }
            }
            while c.poll_event().is_some() {}
        }
    }
}
