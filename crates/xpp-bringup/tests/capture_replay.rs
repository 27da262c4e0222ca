//! The bring-up driver against a recorded capture: `hardware-captures/emu-cold-fxs-fxo-bringup.pcap`
//! (a cold FXS + FXO bring-up through its three USB enumerations) replayed device after device
//! (`PcapSession`) reaches READY through the same phases, with the same requests in the same
//! order: a change in what the driver sends, or in the order it sends it, fails here.

use std::path::Path;

use xpp_bringup::{BringUpConfig, Phase, RunOptions, bring_up, read_firmware_dir};
use xpp_proto::Instant;
use xpp_usb::StepClock;
use xpp_usb::middleware::{OutCheck, PcapSession};

#[test]
fn cold_bring_up_capture_replays_to_ready() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let capture = std::fs::read(root.join("hardware-captures/emu-cold-fxs-fxo-bringup.pcap")).unwrap();
    let session = PcapSession::from_bytes(&capture).unwrap().with_out_check(OutCheck::Verify);
    let fw = read_firmware_dir(&root.join("testdata/firmware")).unwrap();
    let ready = bring_up(
        session.into_opener(),
        &StepClock::new(Instant::ZERO),
        BringUpConfig::default(),
        fw,
        RunOptions::default(),
        |_| {},
    )
    .unwrap_or_else(|e| panic!("replayed bring-up: {e}"));
    let phases: Vec<Phase> = ready.result.timeline.iter().map(|t| t.phase).collect();
    assert_eq!(
        phases,
        [
            Phase::Detect,
            Phase::UsbFirmware,
            Phase::WaitRenum,
            Phase::Fpga,
            Phase::Pic,
            Phase::Renum,
            Phase::Descriptors,
            Phase::XbusReset,
            Phase::CardInit { unit: 0 },
            Phase::CardInit { unit: 1 },
            Phase::SyncSource,
            Phase::Ready,
        ]
    );
}
