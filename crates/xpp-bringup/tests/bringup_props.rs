//! Property tests of the sans-IO bring-up core (full and verify paths): arbitrary device input
//! never panics it, its timers never go backwards, and once it has reported `Done` or `Failed`
//! it asks for nothing more.

use proptest::prelude::*;
use xpp_bringup::{Action, BringUp, BringUpConfig, FirmwareSet, OnRunning};
use xpp_proto::wire::{AbDescription, Address, CardType, Message, Repr, UnitDescriptor};
use xpp_proto::{Duration, Instant};
use xpp_usb::{DeviceInfo, EndpointInfo, InterfaceInfo, Speed, TransferError, TransferType};

fn info(product: u16) -> DeviceInfo {
    let ep = |address| EndpointInfo { address, transfer_type: TransferType::Bulk, max_packet_size: 512 };
    DeviceInfo {
        vendor_id: 0xE4E4,
        product_id: product,
        bcd_device: 0x0101,
        manufacturer: None,
        product: None,
        serial: None,
        speed: Speed::High,
        location: "prop".into(),
        interfaces: vec![
            InterfaceInfo { number: 0, endpoints: vec![ep(0x02), ep(0x86)] },
            InterfaceInfo { number: 1, endpoints: vec![ep(0x04), ep(0x88)] },
        ],
    }
}

/// A valid AB_DESCRIPTION for FXS + FXO, to get the core into the card-init phases.
fn description() -> Vec<u8> {
    let mut fxs = UnitDescriptor::new(Address::ZERO, CardType::Fxs, 0, 8, 1);
    fxs.port_dir = 1;
    let fxo = UnitDescriptor::new(Address::new(1, 0).unwrap(), CardType::Fxo, 0, 8, 1);
    let d = AbDescription::new(&[fxs, fxo]).unwrap();
    let repr = Repr::command(Address::ZERO, Message::AbDescription(d));
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(&mut buf).unwrap();
    buf
}

#[derive(Debug, Clone)]
enum Input {
    Mpp(Vec<u8>),
    Data(Vec<u8>),
    /// A register reply with arbitrary fields (more likely to match a pending read).
    Reply([u8; 6]),
    Control(bool),
    Device(u16),
    Disconnect,
    Advance(u16),
}

fn input() -> impl Strategy<Value = Input> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..80).prop_map(Input::Mpp),
        proptest::collection::vec(any::<u8>(), 0..80).prop_map(Input::Data),
        any::<[u8; 6]>().prop_map(Input::Reply),
        any::<bool>().prop_map(Input::Control),
        prop_oneof![Just(0x1160u16), Just(0x1161), Just(0x1162), Just(0x1164), any::<u16>()]
            .prop_map(Input::Device),
        Just(Input::Disconnect),
        any::<u16>().prop_map(Input::Advance),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_input_never_panics(
        start in prop_oneof![Just(0x1160u16), Just(0x1161), Just(0x1162)],
        describe in any::<bool>(),
        verify in any::<bool>(),
        inputs in proptest::collection::vec(input(), 0..60),
    ) {
        let mut now = Instant::ZERO;
        let on_running = if verify { OnRunning::Verify } else { OnRunning::Reset };
        let mut core = BringUp::new(now, BringUpConfig::default().with_on_running(on_running), FirmwareSet::new());
        core.handle_device(now, &info(start));
        if describe && start == 0x1162 {
            // After the listen for stale input, so that the description is the answer.
            now += BringUpConfig::default().timeouts.listen;
            core.handle_timeout(now);
            core.handle_data_in(now, &description());
        }
        let mut finished = false;
        for i in inputs {
            match i {
                Input::Mpp(b) => core.handle_mpp_in(now, &b),
                Input::Data(b) => core.handle_data_in(now, &b),
                Input::Reply(f) => {
                    let mut b = [0x0A, 0x00, 0x10, f[0] & 0x70, 0x05 | (f[1] & 0x70), 0x40, f[2], f[3], f[4], f[5]];
                    if f[1] & 1 == 0 { b[6] = 0x00; }
                    core.handle_data_in(now, &b);
                }
                Input::Control(ok) => core.handle_control_result(now, if ok { Ok(1) } else { Err(TransferError::Stall) }),
                Input::Device(p) => { core.handle_device(now, &info(p)); }
                Input::Disconnect => core.handle_disconnect(now),
                Input::Advance(ms) => {
                    now += Duration::from_micros(u64::from(ms) * 100);
                    core.handle_timeout(now);
                }
            }
            while let Some(a) = core.poll_action() {
                prop_assert!(!finished, "action after the end: {a:?}");
                if matches!(a, Action::Done(_) | Action::Failed(_)) {
                    finished = true;
                }
            }
            while core.poll_event().is_some() {}
            if let Some(t) = core.poll_timeout() {
                // A due timer is handled by the next `handle_timeout`, never one in the past
                // relative to the start.
                prop_assert!(t >= Instant::ZERO);
            }
            prop_assert_eq!(finished, core.is_finished());
        }
    }
}
