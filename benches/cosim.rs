//! Co-simulation speed: simulated cycles per second of `scenarios/cow.yaml`
//! without waves, with VCD waves and with FST waves, against the bare
//! Verilated model stepped from Rust with idle inputs (the ceiling for this
//! RTL).
//!
//! `cargo bench --bench cosim` (add `-- N` for N repetitions, default 20).

use shootdown::mm::Policy;
use shootdown::rtl::{Model, PortsIn};
use shootdown::scenario::Scenario;
use shootdown::sim::{run, RunOptions};
use std::path::Path;
use std::time::Instant;

fn main() {
    let reps: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(20);
    let s =
        Scenario::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/cow.yaml")).unwrap();
    let dir = std::env::temp_dir().join(format!("shootdown_bench_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    // The ceiling: the model alone, one FFI call per cycle, idle inputs;
    // then the same with the SystemVerilog assertions off (their cost).
    let bare_model = |assertions: bool| {
        let mut m = Model::new();
        m.set_assertions(assertions);
        let mut inp = PortsIn::default();
        m.reset(4);
        inp.rst_ni = 1;
        inp.cfg_ats_latency = 150;
        let n = 2_000_000u64;
        let t = Instant::now();
        for _ in 0..n {
            m.step(&inp);
        }
        n as f64 / t.elapsed().as_secs_f64()
    };
    let bare = bare_model(true);
    println!("bare model, idle inputs: {:>10.0} cycles/s", bare);
    let unchecked = bare_model(false);
    println!(
        "bare model, assertions off: {:>7.0} cycles/s (assertions cost {:.1} %)",
        unchecked,
        100.0 * (1.0 - bare / unchecked)
    );

    for waves in [None, Some("vcd"), Some("fst")] {
        for p in Policy::ALL {
            let mut cycles = 0;
            let mut bytes = 0;
            let t = Instant::now();
            for _ in 0..reps {
                let opts = RunOptions {
                    policy: p,
                    waves: waves.map(|ext| dir.join(format!("cow-{p}.{ext}"))),
                };
                let r = run(&s, &opts).unwrap();
                cycles += r.cycles;
                bytes = r.waves.map_or(0, |w| w.bytes);
            }
            let secs = t.elapsed().as_secs_f64();
            println!(
                "cow --notify {p:<8} waves={:<4}: {:>6} cycles/run, {:>8.2} ms/run, {:>10.0} cycles/s ({:.2} of bare){}",
                waves.unwrap_or("none"),
                cycles / reps as u64,
                secs * 1e3 / reps as f64,
                cycles as f64 / secs,
                cycles as f64 / secs / bare,
                match waves {
                    Some(ext) => format!(", {} {} KiB", ext.to_uppercase(), bytes / 1024),
                    None => String::new(),
                }
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
