//! Checks shared by the hardware tests of the nusb and rusb backends (`#[ignore]`d: they
//! need an Astribank, or the kernel USB stack test's emulated one).

use std::time::Duration;

use crate::{TransferError, Transport, ep};

/// Interfaces 0 and 1 with the Astribank's bulk endpoints; then an xtalk `PROTO_GET` on the
/// management interface answered by `PROTO_GET_REPLY`, with 10 IN transfers kept queued on
/// the data endpoint meanwhile and cancelled at the end.
pub(crate) fn mpp_proto_get(t: &mut impl Transport) {
    let info = t.info().clone();
    for a in [ep::DATA_OUT, ep::DATA_IN, ep::MGMT_OUT, ep::MGMT_IN] {
        assert!(info.endpoint(a).is_some(), "endpoint {a:#04x} missing in {info:?}");
    }
    for _ in 0..10 {
        t.submit(ep::DATA_IN, vec![0; 512]).unwrap();
    }
    assert_eq!(t.pending(ep::DATA_IN), 10);
    // xtalk header: len 7 (u16 LE), seq 1, op 0x01 PROTO_GET; payload: version 0x14, reserved.
    let c = t.transfer_blocking(ep::MGMT_OUT, vec![7, 0, 1, 0, 0x01, 0x14, 0], Duration::from_secs(1));
    assert_eq!(c.status, Ok(()));
    let c = t.transfer_blocking(ep::MGMT_IN, vec![0; 512], Duration::from_secs(1));
    assert_eq!(c.status, Ok(()));
    assert!(c.buffer.len() >= 7 && c.buffer[4] == 0x81, "reply {:02x?}", c.buffer);
    t.cancel_all(ep::DATA_IN);
    let mut back = 0;
    while let Some(c) = t.wait_next_complete(ep::DATA_IN, Duration::from_secs(1)) {
        assert!(matches!(c.status, Ok(()) | Err(TransferError::Cancelled)), "{c:?}");
        back += 1;
    }
    assert_eq!(back, 10);
}
