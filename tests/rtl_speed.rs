//! Simulation speed of the Verilated model through the FFI (not a check:
//! ignored by default). Run with
//! `cargo test --release --test rtl_speed -- --ignored --nocapture`.

mod common;
use common::*;
use shootdown::rtl::{Model, PortsIn};
use std::time::Instant;

const CYCLES: u64 = 1_000_000;
const TRACED_CYCLES: u64 = 200_000;

fn report(what: &str, cycles: u64, t: Instant) {
    let s = t.elapsed().as_secs_f64();
    println!(
        "{what:<44} {cycles:>8} cycles {s:>7.3} s {:>7.3} M cycles/s",
        cycles as f64 / s / 1e6
    );
}

fn print_size(path: &std::path::Path) {
    if let Ok(md) = std::fs::metadata(path) {
        println!("{:<44} VCD {:.1} MB", "", md.len() as f64 / 1e6);
        let _ = std::fs::remove_file(path);
    }
}

fn idle(cycles: u64, trace: bool) {
    let mut m = Model::new();
    let path = std::env::temp_dir().join(format!("shootdown-speed-{}.vcd", std::process::id()));
    if trace {
        m.trace_open(&path).expect("trace");
    }
    m.reset(4);
    let inp = PortsIn {
        rst_ni: 1,
        cfg_ats_latency: 10,
        cfg_cq_log2n: 6,
        iommu_mem_req_ready: 1,
        dev_mem_req_ready: 1,
        ..PortsIn::default()
    };
    let t = Instant::now();
    let mut acc = 0u64;
    for _ in 0..cycles {
        acc = acc.wrapping_add(u64::from(m.step(&inp).dev_req_ready));
    }
    report(
        &format!("idle, trace {}", if trace { "on" } else { "off" }),
        cycles,
        t,
    );
    assert_eq!(acc, cycles);
    drop(m);
    print_size(&path);
}

fn reads(cycles: u64, trace: bool) {
    let mut s = Sim::new(4, 20);
    let path = std::env::temp_dir().join(format!("shootdown-speed-r-{}.vcd", std::process::id()));
    if trace {
        s.model.trace_open(&path).expect("trace");
    }
    for p in 0..4u64 {
        s.map_4k(1, p << 12, 0x1000_0000 + (p << 12), true);
    }
    for p in 0..4 {
        s.set_probe(p, 1, (p as u64) << 12);
    }
    let t = Instant::now();
    let (mut id, mut outstanding, mut done) = (0u8, 0usize, 0usize);
    let start = s.cycle();
    while s.cycle() - start < cycles {
        if outstanding < 4 {
            s.submit(id, false, 1, u64::from(id % 4) << 12, 0);
            id = id.wrapping_add(1);
            outstanding += 1;
        }
        s.step();
        outstanding -= s.responses.len();
        done += s.responses.len();
        s.responses.clear();
    }
    report(
        &format!(
            "device reads (harness incl.), trace {}",
            if trace { "on" } else { "off" }
        ),
        cycles,
        t,
    );
    println!("{:<44} {done} responses", "");
    drop(s);
    print_size(&path);
}

#[test]
#[ignore]
fn speed() {
    idle(CYCLES, false);
    idle(TRACED_CYCLES, true);
    reads(CYCLES, false);
    reads(TRACED_CYCLES, true);
}
