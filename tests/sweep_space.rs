//! The design-space view: `sweep --param` over the ATS link latency.

use shootdown::mm::Policy;
use shootdown::sweep::space::{parse_param, render_space, render_svg, run_space};
use shootdown::sweep::SweepOptions;
use std::path::Path;

#[test]
fn windows_and_fence_cost_grow_with_the_ats_latency() {
    let cow = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/cow.yaml");
    let range = parse_param("ats_latency=50,400").unwrap();
    let opts = SweepOptions {
        jobs: 2,
        ..SweepOptions::default()
    };
    let points = run_space(&[cow], &Policy::ALL, &[range], &opts);
    assert_eq!(points.len(), 2);
    for k in 0..4 {
        let (p, w0, s0, bad0) = points[0].per_policy[k];
        let (_, w1, s1, bad1) = points[1].per_policy[k];
        assert!(
            w1 > w0,
            "{p}: the window grows with the link latency ({w0} -> {w1})"
        );
        assert!(s1 > s0, "{p}: so does the fence spin ({s0} -> {s1})");
        assert_eq!(
            (bad0, bad1),
            (0, 0),
            "{p}: the verdicts do not depend on it"
        );
    }
    let table = render_space(&points);
    assert!(table
        .lines()
        .nth(2)
        .unwrap()
        .trim_start()
        .starts_with("400"));
    let svg = render_svg(&points);
    assert!(
        svg.starts_with("<svg") && svg.matches("<polyline").count() == 8,
        "two panels, four policies"
    );
}

/// ATC entries in use are a run-time input: one entry hides thp-cow's
/// end-only order violation (B's read evicts A's 2 MiB entry, and the
/// generic driver's 2 MiB flush of B drops the whole PASID from the IOTLB),
/// while cow's stays (A's 4 KiB IOTLB entry still serves the stale read).
/// The plot draws one dash pattern per value of the second parameter.
#[test]
fn a_one_entry_atc_hides_the_thp_order_violation_and_the_plot_has_a_line_per_slice() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let files = [dir.join("cow.yaml"), dir.join("thp-cow.yaml")];
    let opts = SweepOptions {
        jobs: 2,
        ..SweepOptions::default()
    };
    let ranges = [
        parse_param("atc_entries=1,8").unwrap(),
        parse_param("ats_latency=50,150,400").unwrap(),
    ];
    let points = run_space(&files, &[Policy::EndOnly], &ranges, &opts);
    assert_eq!(points.len(), 6);
    for p in &points {
        let atc = p.values[0].1;
        let (_, _, _, off) = p.per_policy[0];
        assert_eq!(off, usize::from(atc == 1), "{:?}", p.values);
    }
    let svg = render_svg(&points);
    assert_eq!(
        svg.matches("<polyline").count(),
        2 * 3,
        "2 panels x 3 slices x 1 policy"
    );
    assert!(svg.contains("ats_latency=400"));
    assert_eq!(svg.matches("stroke-dasharray=\"6,3\"").count(), 2 + 2);
}

/// `--param` takes the scenario's ranges (a value out of range is refused,
/// never clamped, so a row's label is what ran) and a bounded number of
/// points; both are errors before anything runs.
#[test]
fn param_values_are_checked_and_the_space_is_bounded() {
    let sweep = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_shootdown"))
            .arg("sweep")
            .args(args)
            .arg("cow")
            .output()
            .unwrap()
    };
    let out = sweep(&["--param", "cq_entries=3,1000"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cq_entries = 3 is out of range"), "{err}");
    assert!(out.stdout.is_empty());
    let nine = "1,2,3,4,5,6,7,8,9";
    let out = sweep(&[
        "--param",
        &format!("ats_latency={nine}"),
        "--param",
        &format!("mem_latency={nine}"),
        "--param",
        &format!("cpu_step_cycles={nine}"),
        "--param",
        &format!("gather_batch={nine}"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("9 x 9 x 9 x 9 combinations is more than 4096"),
        "{err}"
    );
}
