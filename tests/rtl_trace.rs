//! The RTL's VCD: timescale 1 ps, one timestamp per cycle, rising edge c at
//! c*1000 (docs/socket.md: the falling edge is not dumped, so clk_i reads 1
//! at every timestamp); a trace can be opened mid-run and is closed when the
//! model is dropped.

use shootdown::rtl::{Model, PortsIn};
use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;
use vcd::{Command, IdCode, TimescaleUnit, Value};

fn temp_vcd(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("shootdown-{}-{name}.vcd", std::process::id()))
}

/// (timescale, every timestamp, clk_i value after each timestamp)
fn read_vcd(path: &PathBuf) -> ((u32, TimescaleUnit), Vec<u64>, Vec<Value>) {
    let mut p = vcd::Parser::new(BufReader::new(File::open(path).expect("vcd exists")));
    let header = p.parse_header().expect("vcd header");
    let clk: IdCode = header.find_var(&["TOP", "clk_i"]).expect("TOP.clk_i").code;
    assert!(header
        .find_var(&["TOP", "shootdown_top", "cq_head_o"])
        .is_some());
    let mut stamps = Vec::new();
    let mut clk_at: HashMap<u64, Value> = HashMap::new();
    let mut now = 0;
    for cmd in p {
        match cmd.expect("vcd body") {
            Command::Timestamp(t) => {
                now = t;
                stamps.push(t);
            }
            Command::ChangeScalar(id, v) if id == clk => {
                clk_at.insert(now, v);
            }
            _ => {}
        }
    }
    let mut last = Value::X;
    let clks = stamps
        .iter()
        .map(|t| {
            if let Some(v) = clk_at.get(t) {
                last = *v;
            }
            last
        })
        .collect();
    (header.timescale.expect("timescale"), stamps, clks)
}

#[test]
fn vcd_time_base_is_the_socket_one() {
    let path = temp_vcd("base");
    let mut m = Model::new();
    m.trace_open(&path).expect("trace opens");
    assert!(m.is_tracing());
    m.reset(4);
    let run = PortsIn {
        rst_ni: 1,
        ..PortsIn::default()
    };
    for _ in 0..6 {
        m.step(&run);
    }
    m.trace_close();
    let (ts, stamps, clks) = read_vcd(&path);
    assert_eq!(ts, (1, TimescaleUnit::PS));
    // One dump per cycle, at its rising edge: clk_i is 1 at each of them.
    let want: Vec<u64> = (1..=10).map(|c| c * 1000).collect();
    assert_eq!(stamps, want);
    for (t, v) in stamps.iter().zip(clks) {
        assert_eq!(v, Value::V1, "clk_i at {t}");
    }
    let _ = std::fs::remove_file(path);
}

#[test]
fn a_trace_opened_mid_run_starts_at_the_next_cycle_and_drop_closes_it() {
    let path = temp_vcd("mid");
    {
        let mut m = Model::new();
        m.reset(10);
        m.trace_open(&path).expect("trace opens");
        let run = PortsIn {
            rst_ni: 1,
            ..PortsIn::default()
        };
        for _ in 0..5 {
            m.step(&run);
        }
    }
    let (_, stamps, _) = read_vcd(&path);
    assert_eq!(stamps.first(), Some(&11_000));
    assert_eq!(stamps.last(), Some(&15_000));
    let _ = std::fs::remove_file(path);
}

#[test]
fn a_trace_can_be_reopened_into_another_file() {
    let (a, b) = (temp_vcd("first"), temp_vcd("second"));
    let mut m = Model::new();
    m.trace_open(&a).expect("first trace");
    m.reset(4);
    m.trace_open(&b).expect("second trace");
    m.reset(3);
    m.trace_close();
    assert!(!m.is_tracing());
    m.reset(2);
    let (_, sa, _) = read_vcd(&a);
    let (_, sb, _) = read_vcd(&b);
    assert_eq!((sa.first(), sa.last()), (Some(&1000), Some(&4000)));
    assert_eq!((sb.first(), sb.last()), (Some(&5000), Some(&7000)));
    let _ = std::fs::remove_file(a);
    let _ = std::fs::remove_file(b);
}

/// The bundled RTL uses its clock only as `posedge clk_i` (build.rs checks
/// the Verilated code), so with the assertions off the model is evaluated
/// once per cycle; with them on the falling edge is evaluated too.
#[test]
fn with_assertions_off_the_bundled_rtl_is_evaluated_once_per_cycle() {
    let mut m = Model::new();
    assert_eq!(m.evals_per_cycle(), 2);
    m.set_assertions(false);
    if shootdown_model_sys::RTL_OVERLAY.is_empty() {
        assert_eq!(m.evals_per_cycle(), 1);
    }
    m.set_assertions(true);
    assert_eq!(m.evals_per_cycle(), 2);
}
