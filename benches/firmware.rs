//! Parsing a real FPGA image (FPGA_1161.hex, 1065 records, 135 771 data bytes) and walking
//! its MPP load sequence.

#[path = "../crates/xpp-proto/tests/support/mod.rs"]
mod support;

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use xpp::proto::firmware::{HexFile, MppLoad};

fn firmware(c: &mut Criterion) {
    let dir = support::firmware_dir();
    let bytes = std::fs::read(dir.join("FPGA_1161.hex")).expect("read FPGA_1161.hex");
    let mut group = c.benchmark_group("firmware");
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("parse FPGA_1161.hex", |b| {
        b.iter(|| HexFile::parse(black_box(&bytes)).expect("parses"));
    });
    let hex = HexFile::parse(&bytes).expect("parses");
    group.bench_function("re-emit FPGA_1161.hex", |b| b.iter(|| black_box(&hex).to_hex_records()));
    group.bench_function("MPP load sequence FPGA_1161.hex", |b| {
        b.iter(|| MppLoad::fpga(black_box(&hex)).expect("valid").requests().count());
    });
    group.finish();
}

criterion_group!(benches, firmware);
criterion_main!(benches);
