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
