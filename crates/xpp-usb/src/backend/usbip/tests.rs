//! Codec tests against byte layouts written out from the protocol documentation
//! (Linux `Documentation/usb/usbip_protocol.rst`), never from our own encoder; truncation
//! sweeps; proptest round trips and arbitrary-input parses.

use proptest::prelude::*;

use super::codec::*;
use crate::info::Direction;

/// Big-endian u32 words, as the documentation's EXAMPLE section prints them.
fn words(ws: &[u32]) -> Vec<u8> {
    ws.iter().flat_map(|w| w.to_be_bytes()).collect()
}

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

/// A zero-padded fixed-size string field.
fn field(s: &str, len: usize) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.resize(len, 0);
    v
}

/// Every strict prefix of a complete message must fail as truncated, never panic.
fn sweep<T: std::fmt::Debug>(bytes: &[u8], parse: impl Fn(&[u8]) -> Result<T, CodecError>) {
    for n in 0..bytes.len() {
        match parse(&bytes[..n]) {
            Err(CodecError::Truncated { needed, offset, .. }) => {
                assert!(needed > n, "prefix {n}: needed {needed}");
                assert!(offset <= n, "prefix {n}: offset {offset}");
            }
            other => panic!("prefix {n} of {}: {other:?}", bytes.len()),
        }
    }
    assert!(parse(bytes).is_ok());
}

// --- OP_REQ_DEVLIST / OP_REQ_IMPORT -----------------------------------------------------

const REQ_DEVLIST: &[u8] = &[0x01, 0x11, 0x80, 0x05, 0x00, 0x00, 0x00, 0x00];

#[test]
fn req_devlist_layout() {
    let (r, n) = OpRequest::parse(REQ_DEVLIST).unwrap();
    assert_eq!((r.clone(), n), (OpRequest::DevList, 8));
    let mut out = Vec::new();
    r.emit(&mut out).unwrap();
    assert_eq!(out, REQ_DEVLIST);
    sweep(REQ_DEVLIST, OpRequest::parse);
}

fn req_import_bytes() -> Vec<u8> {
    let mut b = vec![0x01, 0x11, 0x80, 0x03, 0, 0, 0, 0];
    b.extend(field("1-1", 32));
    b
}

#[test]
fn req_import_layout() {
    let b = req_import_bytes();
    assert_eq!(b.len(), 40);
    let (r, n) = OpRequest::parse(&b).unwrap();
    assert_eq!(r, OpRequest::Import { busid: "1-1".into() });
    assert_eq!(n, 40);
    let mut out = Vec::new();
    r.emit(&mut out).unwrap();
    assert_eq!(out, b);
    sweep(&b, OpRequest::parse);
}

#[test]
fn requests_refuse_bad_version_code_and_strings() {
    let mut b = REQ_DEVLIST.to_vec();
    b[1] = 0x06; // 0x0106
    assert_eq!(OpRequest::parse(&b), Err(CodecError::Version { offset: 0, version: 0x0106 }));
    let mut b = REQ_DEVLIST.to_vec();
    b[3] = 0x07;
    assert_eq!(
        OpRequest::parse(&b),
        Err(CodecError::UnexpectedCode { what: "op code", offset: 2, code: 0x8007 })
    );
    // A reply code is not a request.
    assert!(OpRequest::parse(&[0x01, 0x11, 0x00, 0x05, 0, 0, 0, 0]).is_err());
    // busid with no NUL in its 32 bytes.
    let mut b = vec![0x01, 0x11, 0x80, 0x03, 0, 0, 0, 0];
    b.extend([b'x'; 32]);
    assert_eq!(OpRequest::parse(&b), Err(CodecError::BadString { what: "import busid", offset: 8 }));
    // busid not UTF-8.
    let mut b = req_import_bytes();
    b[8] = 0xFF;
    assert_eq!(OpRequest::parse(&b), Err(CodecError::BadString { what: "import busid", offset: 8 }));
    // Emitting a bus id that does not fit (31 bytes + NUL at most).
    let long = OpRequest::Import { busid: "x".repeat(32) };
    assert_eq!(
        long.emit(&mut Vec::new()),
        Err(CodecError::FieldTooLong { what: "import busid", field_len: 32 })
    );
    assert!(OpRequest::Import { busid: "x".repeat(31) }.emit(&mut Vec::new()).is_ok());
}

// --- OP_REP_DEVLIST / OP_REP_IMPORT -----------------------------------------------------

/// The documentation's example path and bus id, an Astribank's numbers.
fn device_record() -> Vec<u8> {
    let mut b = field("/sys/devices/pci0000:00/0000:00:1d.1/usb3/3-2", 256);
    b.extend(field("3-2", 32));
    b.extend([0, 0, 0, 3]); // busnum
    b.extend([0, 0, 0, 2]); // devnum
    b.extend([0, 0, 0, 3]); // speed: high
    b.extend([0xE4, 0xE4, 0x11, 0x62, 0x01, 0x01]); // idVendor, idProduct, bcdDevice
    b.extend([0xFF, 0x00, 0x00, 0x01, 0x01, 0x02]); // class, subclass, protocol, config, nconf, nif
    b
}

fn expected_device() -> UsbDevice {
    UsbDevice {
        path: "/sys/devices/pci0000:00/0000:00:1d.1/usb3/3-2".into(),
        busid: "3-2".into(),
        busnum: 3,
        devnum: 2,
        speed: 3,
        id_vendor: 0xE4E4,
        id_product: 0x1162,
        bcd_device: 0x0101,
        device_class: 0xFF,
        device_subclass: 0,
        device_protocol: 0,
        configuration_value: 1,
        num_configurations: 1,
        num_interfaces: 2,
    }
}

fn rep_devlist_bytes() -> Vec<u8> {
    let mut b = vec![0x01, 0x11, 0x00, 0x05, 0, 0, 0, 0, 0, 0, 0, 1];
    b.extend(device_record());
    b.extend([0xFF, 0x00, 0x00, 0x00, 0xFF, 0x01, 0x02, 0x00]);
    b
}

#[test]
fn rep_devlist_layout() {
    let b = rep_devlist_bytes();
    // The documented offsets: busid at 0x10C, busnum at 0x12C, idVendor at 0x138,
    // bNumInterfaces at 0x143, first interface at 0x144.
    assert_eq!(&b[0x10C..0x10F], b"3-2");
    assert_eq!(b[0x12F], 3);
    assert_eq!(&b[0x138..0x13A], &[0xE4, 0xE4]);
    assert_eq!(b[0x143], 2);
    assert_eq!(b[0x144], 0xFF);
    assert_eq!(b.len(), 0xC + 0x138 + 2 * 4);
    let (r, n) = OpReply::parse(&b).unwrap();
    assert_eq!(n, b.len());
    let want = OpReply::DevList {
        status: 0,
        devices: vec![ExportedDevice {
            device: expected_device(),
            interfaces: vec![
                UsbInterface { class: 0xFF, subclass: 0, protocol: 0 },
                UsbInterface { class: 0xFF, subclass: 1, protocol: 2 },
            ],
        }],
    };
    assert_eq!(r, want);
    assert_eq!(expected_device().devid(), 0x0003_0002);
    let mut out = Vec::new();
    want.emit(&mut out).unwrap();
    assert_eq!(out, b);
    sweep(&b, OpReply::parse);
}

#[test]
fn rep_devlist_empty_and_failed() {
    let empty = [0x01, 0x11, 0x00, 0x05, 0, 0, 0, 0, 0, 0, 0, 0];
    assert_eq!(OpReply::parse(&empty).unwrap(), (OpReply::DevList { status: 0, devices: vec![] }, 12));
    sweep(&empty, OpReply::parse);
    let failed = [0x01, 0x11, 0x00, 0x05, 0, 0, 0, 1];
    assert_eq!(OpReply::parse(&failed).unwrap(), (OpReply::DevList { status: 1, devices: vec![] }, 8));
    // A huge announced count is refused before anything is allocated for it.
    let huge = [0x01, 0x11, 0x00, 0x05, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF];
    assert_eq!(
        OpReply::parse(&huge),
        Err(CodecError::TooLarge { what: "devlist count", offset: 8, value: u32::MAX, max: MAX_DEVICES })
    );
}

#[test]
fn rep_import_layout() {
    let mut ok = vec![0x01, 0x11, 0x00, 0x03, 0, 0, 0, 0];
    ok.extend(device_record());
    assert_eq!(ok.len(), 8 + DEVICE_LEN);
    // docs/reference/kernel-usb-vm.md: busnum at 288, devnum at 292, speed at 296 of the record.
    assert_eq!((ok[8 + 291], ok[8 + 295], ok[8 + 299]), (3, 2, 3));
    let (r, n) = OpReply::parse(&ok).unwrap();
    assert_eq!((r.clone(), n), (OpReply::Import { status: 0, device: Some(expected_device()) }, ok.len()));
    let mut out = Vec::new();
    r.emit(&mut out).unwrap();
    assert_eq!(out, ok);
    sweep(&ok, OpReply::parse);

    let refused = [0x01, 0x11, 0x00, 0x03, 0, 0, 0, 1];
    assert_eq!(OpReply::parse(&refused).unwrap(), (OpReply::Import { status: 1, device: None }, 8));
    let mut out = Vec::new();
    OpReply::Import { status: 1, device: None }.emit(&mut out).unwrap();
    assert_eq!(out, refused);
}

// --- URBs: the documentation's EXAMPLE capture ------------------------------------------

fn cmd_intr_in() -> Vec<u8> {
    words(&[0x1, 0xd05, 0x1000f, 0x1, 0x1, 0x200, 0x40, 0xffffffff, 0x0, 0x4, 0x0, 0x0])
}

const OUT_DATA: &str = "ffffffff860008a784ce5ae212376300000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000";
const IN_DATA: &str = "ffffffff860011a784ce5ae2123763612891b1020100000400000000000000000000000000000000000000000000000000000000000000000000000000000000";

#[test]
fn cmd_submit_interrupt_in_from_the_documentation() {
    let b = cmd_intr_in();
    let urb = Urb::parse(&b).unwrap();
    let want = Urb::CmdSubmit(CmdSubmit {
        header: BasicHeader { seqnum: 0xd05, devid: 0x1000f, direction: dir::IN, ep: 1 },
        transfer_flags: 0x200,
        transfer_buffer_length: 0x40,
        start_frame: 0xffffffff,
        number_of_packets: 0,
        interval: 4,
        setup: [0; 8],
    });
    assert_eq!(urb, want);
    assert_eq!(urb.payload_len(Direction::In), 0, "an IN submit carries no data");
    let mut out = Vec::new();
    want.emit(&mut out);
    assert_eq!(out, b);
    sweep(&b, Urb::parse);
}

#[test]
fn cmd_submit_interrupt_out_from_the_documentation() {
    let mut b = words(&[0x1, 0xd06, 0x1000f, 0x0, 0x1, 0x0, 0x40, 0xffffffff, 0x0, 0x4, 0x0, 0x0]);
    let data = hex(OUT_DATA);
    assert_eq!(data.len(), 64);
    b.extend(&data);
    let urb = Urb::parse(&b).unwrap();
    let Urb::CmdSubmit(c) = urb else { panic!("{urb:?}") };
    assert_eq!((c.header.direction, c.transfer_buffer_length, c.interval), (dir::OUT, 64, 4));
    assert_eq!(urb.payload_len(Direction::Out), 64);
    assert_eq!(&b[URB_HEADER_LEN..URB_HEADER_LEN + urb.payload_len(Direction::Out)], &data[..]);
}

#[test]
fn ret_submit_from_the_documentation() {
    let ret_out = words(&[0x3, 0xd06, 0, 0, 0, 0, 0x40, 0xffffffff, 0, 0, 0, 0]);
    let urb = Urb::parse(&ret_out).unwrap();
    let want = Urb::RetSubmit(RetSubmit {
        header: BasicHeader { seqnum: 0xd06, ..Default::default() },
        status: 0,
        actual_length: 0x40,
        start_frame: 0xffffffff,
        number_of_packets: 0,
        error_count: 0,
    });
    assert_eq!(urb, want);
    // The answer to an OUT submit carries no data even though actual_length is 64.
    assert_eq!(urb.payload_len(Direction::Out), 0);
    let mut out = Vec::new();
    want.emit(&mut out);
    assert_eq!(out, ret_out);
    sweep(&ret_out, Urb::parse);

    let mut ret_in = words(&[0x3, 0xd05, 0, 0, 0, 0, 0x40, 0xffffffff, 0, 0, 0, 0]);
    ret_in.extend(hex(IN_DATA));
    let urb = Urb::parse(&ret_in).unwrap();
    assert_eq!(urb.header().seqnum, 0xd05);
    assert_eq!(urb.payload_len(Direction::In), 64);
    assert_eq!(ret_in.len(), URB_HEADER_LEN + 64);
}

#[test]
fn unlink_layouts() {
    let cmd = words(&[0x2, 0x6, 0x1000f, 0, 0, 0x5, 0, 0, 0, 0, 0, 0]);
    let want = Urb::CmdUnlink(CmdUnlink {
        header: BasicHeader { seqnum: 6, devid: 0x1000f, direction: 0, ep: 0 },
        unlink_seqnum: 5,
    });
    assert_eq!(Urb::parse(&cmd).unwrap(), want);
    let mut out = Vec::new();
    want.emit(&mut out);
    assert_eq!(out, cmd);
    sweep(&cmd, Urb::parse);

    // -ECONNRESET = 0xffffff98.
    let ret = words(&[0x4, 0x6, 0, 0, 0, 0xffffff98, 0, 0, 0, 0, 0, 0]);
    let want = Urb::RetUnlink(RetUnlink {
        header: BasicHeader { seqnum: 6, ..Default::default() },
        status: STATUS_UNLINKED,
    });
    assert_eq!(Urb::parse(&ret).unwrap(), want);
    assert_eq!(want.payload_len(Direction::In), 0);
    let mut out = Vec::new();
    want.emit(&mut out);
    assert_eq!(out, ret);
}

#[test]
fn control_submit_carries_the_setup_packet() {
    // GET_DESCRIPTOR(device), 18 bytes, on endpoint 0: setup 80 06 00 01 00 00 12 00.
    let mut b = words(&[0x1, 0x1, 0x10002, 0x1, 0x0, 0x0, 18, 0, 0xffffffff, 0]);
    b.extend([0x80, 0x06, 0x00, 0x01, 0x00, 0x00, 0x12, 0x00]);
    let Urb::CmdSubmit(c) = Urb::parse(&b).unwrap() else { panic!() };
    assert_eq!(c.setup, [0x80, 0x06, 0x00, 0x01, 0x00, 0x00, 0x12, 0x00]);
    assert_eq!(c.number_of_packets, NOT_ISO);
    let (setup, wlength) = crate::ControlSetup::from_bytes(c.setup);
    assert_eq!((setup.request, setup.value, wlength), (0x06, 0x0100, 18));
}

#[test]
fn urb_errors_carry_offsets() {
    let mut b = cmd_intr_in();
    b[3] = 9;
    assert_eq!(Urb::parse(&b), Err(CodecError::UnexpectedCode { what: "urb command", offset: 0, code: 9 }));
    let mut b = cmd_intr_in();
    b[15] = 2; // direction
    assert_eq!(Urb::parse(&b), Err(CodecError::Invalid { what: "direction", offset: 12, value: 2 }));
    let mut b = cmd_intr_in();
    b[0x18..0x1C].copy_from_slice(&(MAX_TRANSFER_LEN + 1).to_be_bytes());
    assert_eq!(
        Urb::parse(&b),
        Err(CodecError::TooLarge {
            what: "transfer_buffer_length",
            offset: 0x18,
            value: MAX_TRANSFER_LEN + 1,
            max: MAX_TRANSFER_LEN
        })
    );
    let mut b = cmd_intr_in();
    b[0x20..0x24].copy_from_slice(&(MAX_ISO_PACKETS + 1).to_be_bytes());
    assert!(matches!(
        Urb::parse(&b),
        Err(CodecError::TooLarge { what: "number_of_packets", offset: 0x20, .. })
    ));
}

#[test]
fn iso_descriptors_and_lengths() {
    // An ISO IN submit of 2 packets: the 2 descriptors (32 bytes) follow, no data.
    let b = words(&[0x1, 0x7, 0x10002, 0x1, 0x3, 0x2, 384, 0, 2, 1, 0, 0]);
    let urb = Urb::parse(&b).unwrap();
    assert_eq!(urb.payload_len(Direction::In), 2 * ISO_DESCRIPTOR_LEN);
    let d = words(&[0, 192, 180, 0xffffffb9]); // offset, length, actual, -EPROTO
    let iso = IsoPacketDescriptor::parse(&d).unwrap();
    assert_eq!(iso, IsoPacketDescriptor { offset: 0, length: 192, actual_length: 180, status: -71 });
    let mut out = Vec::new();
    iso.emit(&mut out);
    assert_eq!(out, d);
    sweep(&d, IsoPacketDescriptor::parse);
}

#[test]
fn speeds() {
    use crate::info::Speed;
    for s in [Speed::Low, Speed::Full, Speed::High, Speed::Super] {
        assert_eq!(speed_from_usbip(speed_to_usbip(s)), s);
    }
    assert_eq!(speed_from_usbip(0), Speed::Unknown);
    assert_eq!(speed_from_usbip(99), Speed::Unknown);
}

// --- Property tests ---------------------------------------------------------------------

fn short_string(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[a-z0-9/:.-]{{0,{max}}}")).unwrap()
}

prop_compose! {
    fn arb_device()(
        path in short_string(255), busid in short_string(31),
        nums in any::<(u32, u32, u32)>(), ids in any::<(u16, u16, u16)>(), bytes in any::<[u8; 5]>(),
    ) -> UsbDevice {
        UsbDevice {
            path, busid, busnum: nums.0, devnum: nums.1, speed: nums.2,
            id_vendor: ids.0, id_product: ids.1, bcd_device: ids.2,
            device_class: bytes[0], device_subclass: bytes[1], device_protocol: bytes[2],
            configuration_value: bytes[3], num_configurations: bytes[4], num_interfaces: 0,
        }
    }
}

prop_compose! {
    fn arb_exported()(device in arb_device(), ifs in prop::collection::vec(any::<[u8; 3]>(), 0..6)) -> ExportedDevice {
        let interfaces: Vec<_> = ifs.iter().map(|i| UsbInterface { class: i[0], subclass: i[1], protocol: i[2] }).collect();
        ExportedDevice { device: UsbDevice { num_interfaces: interfaces.len() as u8, ..device }, interfaces }
    }
}

fn arb_reply() -> impl Strategy<Value = OpReply> {
    prop_oneof![
        prop::collection::vec(arb_exported(), 0..4)
            .prop_map(|devices| OpReply::DevList { status: 0, devices }),
        (1u32..).prop_map(|status| OpReply::DevList { status, devices: vec![] }),
        arb_device().prop_map(|d| OpReply::Import { status: 0, device: Some(d) }),
        (1u32..).prop_map(|status| OpReply::Import { status, device: None }),
    ]
}

fn arb_header() -> impl Strategy<Value = BasicHeader> {
    (any::<u32>(), any::<u32>(), 0u32..=1, any::<u32>())
        .prop_map(|(seqnum, devid, direction, ep)| BasicHeader { seqnum, devid, direction, ep })
}

fn arb_packets() -> impl Strategy<Value = u32> {
    prop_oneof![Just(NOT_ISO), 0..=MAX_ISO_PACKETS]
}

fn arb_urb() -> impl Strategy<Value = Urb> {
    prop_oneof![
        (
            arb_header(),
            any::<u32>(),
            0..=MAX_TRANSFER_LEN,
            any::<u32>(),
            arb_packets(),
            any::<u32>(),
            any::<[u8; 8]>()
        )
            .prop_map(
                |(
                    header,
                    transfer_flags,
                    transfer_buffer_length,
                    start_frame,
                    number_of_packets,
                    interval,
                    setup,
                )| {
                    Urb::CmdSubmit(CmdSubmit {
                        header,
                        transfer_flags,
                        transfer_buffer_length,
                        start_frame,
                        number_of_packets,
                        interval,
                        setup,
                    })
                }
            ),
        (arb_header(), any::<i32>(), 0..=MAX_TRANSFER_LEN, any::<u32>(), arb_packets(), any::<u32>())
            .prop_map(|(header, status, actual_length, start_frame, number_of_packets, error_count)| {
                Urb::RetSubmit(RetSubmit {
                    header,
                    status,
                    actual_length,
                    start_frame,
                    number_of_packets,
                    error_count,
                })
            }),
        (arb_header(), any::<u32>())
            .prop_map(|(header, unlink_seqnum)| Urb::CmdUnlink(CmdUnlink { header, unlink_seqnum })),
        (arb_header(), any::<i32>())
            .prop_map(|(header, status)| Urb::RetUnlink(RetUnlink { header, status })),
    ]
}

proptest! {
    #[test]
    fn reply_round_trip(r in arb_reply()) {
        let mut out = Vec::new();
        r.emit(&mut out).unwrap();
        prop_assert_eq!(OpReply::parse(&out).unwrap(), (r, out.len()));
    }

    #[test]
    fn request_round_trip(busid in short_string(31), devlist in any::<bool>()) {
        let r = if devlist { OpRequest::DevList } else { OpRequest::Import { busid } };
        let mut out = Vec::new();
        r.emit(&mut out).unwrap();
        prop_assert_eq!(OpRequest::parse(&out).unwrap(), (r, out.len()));
    }

    #[test]
    fn urb_round_trip(u in arb_urb()) {
        let mut out = Vec::new();
        u.emit(&mut out);
        prop_assert_eq!(out.len(), URB_HEADER_LEN);
        prop_assert_eq!(Urb::parse(&out).unwrap(), u);
    }

    #[test]
    fn arbitrary_bytes_never_panic(b in prop::collection::vec(any::<u8>(), 0..800)) {
        let _ = OpRequest::parse(&b);
        let _ = OpReply::parse(&b);
        let _ = UsbDevice::parse(&b);
        let _ = IsoPacketDescriptor::parse(&b);
        if let Ok(u) = Urb::parse(&b) {
            let _ = u.payload_len(Direction::In);
        }
        let _ = super::parse_configuration(&b);
    }

    #[test]
    fn valid_prefix_with_garbage_never_panics(tail in prop::collection::vec(any::<u8>(), 0..400)) {
        let mut b = vec![0x01, 0x11, 0x00, 0x05, 0, 0, 0, 0];
        b.extend(tail);
        let _ = OpReply::parse(&b);
    }
}
