#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| xpp_usb::middleware::fuzzing::usbip_codec(data));
