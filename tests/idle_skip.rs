//! Cycles in which nothing happens are done in one evaluation
//! (`Model::step_idle`, `Machine::tick_upto`), and that is exact: the same
//! verdicts, cycles, windows and cover counts as evaluating every cycle
//! (`SHOOTDOWN_EVAL_EVERY_CYCLE=1`).

use shootdown::rtl::{idle_skip_available, Model, PortsIn};
use std::path::{Path, PathBuf};
use std::process::Command;

fn quiet_inputs() -> PortsIn {
    PortsIn {
        rst_ni: 1,
        cfg_ats_latency: 4,
        cfg_cq_log2n: 4,
        iommu_mem_req_ready: 1,
        dev_mem_req_ready: 1,
        ..PortsIn::default()
    }
}

#[test]
fn an_idle_model_is_skipped_and_one_asking_for_memory_is_not() {
    assert!(
        idle_skip_available(),
        "the bundled RTL keeps all its state where the shim can compare it"
    );
    let inp = quiet_inputs();
    let (mut a, mut b) = (Model::new(), Model::new());
    for m in [&mut a, &mut b] {
        m.reset(4);
        for _ in 0..8 {
            m.step(&inp);
        }
    }
    // Idle: 1,000 cycles in one call, as 1,000 steps would leave it.
    let (_, n) = a.step_idle(&inp, 1000);
    assert_eq!(n, 1000);
    for _ in 0..1000 {
        b.step(&inp);
    }
    assert_eq!(a.cycle(), b.cycle());
    // A device request: the IOMMU walks, asking the host for memory that
    // never comes. Both models go cycle for cycle the same way, and no call
    // skips while the model asks (its state may not change, its output does
    // ask).
    let mut req = inp;
    req.dev_req_valid = 1;
    req.dev_req_id = 0;
    req.dev_req_pasid = 1;
    req.dev_req_va = 0x7f00_0000_0000;
    let (oa, _) = a.step_idle(&req, 1);
    let oa = *oa;
    assert_eq!(&oa, b.step(&req));
    let mut asked = false;
    for _ in 0..300 {
        let (oa, n) = a.step_idle(&inp, 50);
        let oa = *oa;
        asked |= oa.iommu_mem_req_valid != 0;
        if oa.iommu_mem_req_valid != 0 {
            assert_eq!(n, 1, "a cycle asking the host for memory was skipped");
        }
        for _ in 0..n {
            b.step(&inp);
        }
        assert_eq!(&oa, b.outputs());
        assert_eq!(a.cycle(), b.cycle());
    }
    assert!(asked, "the request never reached the memory port");
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn shootdown(args: &[&str], every_cycle: bool) -> (String, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_shootdown"));
    c.args(args).current_dir(repo());
    if every_cycle {
        c.env("SHOOTDOWN_EVAL_EVERY_CYCLE", "1");
    } else {
        c.env_remove("SHOOTDOWN_EVAL_EVERY_CYCLE");
    }
    let o = c.output().unwrap();
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("shootdown-idle-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn skipping_changes_no_verdict_cycle_window_or_cover_count() {
    let mut files: Vec<String> = std::fs::read_dir(repo().join("scenarios"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .map(|p| p.strip_prefix(repo()).unwrap().display().to_string())
        .collect();
    files.sort();
    assert!(files.len() >= 15);
    let d = tmp("sweep");
    let mut outs = Vec::new();
    for every in [false, true] {
        let json = d.join(format!("sweep-{every}.json"));
        let mut args = vec!["sweep", "--coverage", "--json", json.to_str().unwrap()];
        args.extend(files.iter().map(String::as_str));
        let (out, err) = shootdown(&args, every);
        assert!(out.contains("cow"), "sweep printed no table: {err}");
        outs.push((out, std::fs::read_to_string(&json).unwrap()));
    }
    assert_eq!(outs[0].0, outs[1].0, "the sweep's table differs");
    assert_eq!(outs[0].1, outs[1].1, "the sweep's JSON differs");
    // every schedule of a program, with overlapping accesses
    let mut outs = Vec::new();
    for every in [false, true] {
        let json = d.join(format!("explore-{every}.json"));
        let out = d.join(format!("found-{every}"));
        let (_, err) = shootdown(
            &[
                "explore",
                "scenarios/programs/batch-fence.yaml",
                "--overlap",
                "--coverage",
                "--out",
                out.to_str().unwrap(),
                "--json",
                json.to_str().unwrap(),
            ],
            every,
        );
        let text = std::fs::read_to_string(&json).unwrap_or_else(|_| panic!("no JSON: {err}"));
        outs.push(text.replace(&format!("found-{every}"), "found"));
    }
    assert!(outs[0].contains("\"explore\""));
    assert_eq!(outs[0], outs[1], "explore's JSON differs");
    let _ = std::fs::remove_dir_all(&d);
}
