//! `explore --driver all` (each scenario once per IOMMU driver model, a
//! row each, the shrunk findings of one driver apart from another's), the
//! table of schedules and wall time per cell, and `explore --estimate`
//! (Knuth's estimator of the number of schedules) against the exact count.

use shootdown::explore::estimate::estimate;
use shootdown::explore::play::Rules;
use shootdown::explore::search::exhaustive;
use shootdown::mm::Policy;
use shootdown::scenario::Scenario;
use std::path::Path;
use std::process::Command;

fn scenario(rel: &str) -> Scenario {
    Scenario::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).unwrap()
}

fn cli(args: &[&str]) -> (i32, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_shootdown"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr),
    )
}

#[test]
fn driver_all_explores_each_scenario_once_per_driver() {
    let out = std::env::temp_dir().join(format!("shootdown_explore_all_{}", std::process::id()));
    let out_s = out.display().to_string();
    let (code, text) = cli(&[
        "explore",
        "scenarios/drain-race.yaml",
        "--driver",
        "all",
        "--notify",
        "end-only",
        "-j",
        "1",
        "--no-prune",
        "--out",
        &out_s,
    ]);
    assert_eq!(code, 0, "{text}");
    for d in ["generic", "amd", "intel", "arm", "arm-btm", "batched"] {
        // A verdict row and a schedules row per driver, and its finding
        // written under its own name.
        let row = format!("drain-race.{d} ");
        let rows = text
            .lines()
            .filter(|l| l.starts_with(&row) && !l.contains("--notify"))
            .count();
        assert_eq!(rows, 2, "{d}:\n{text}");
        assert!(
            text.contains(&format!("drain-race.{d} --notify end-only: ")),
            "{text}"
        );
        let f = out.join(format!("drain-race.{d}-end-only-use-after-free.yaml"));
        let shrunk = Scenario::load(&f).unwrap();
        assert_eq!(shrunk.driver.name(), d);
    }
    assert!(
        text.contains("Schedules explored with at most 1 preemption, and wall time:"),
        "{text}"
    );
    assert!(
        text.contains("6 cells, 162 schedules judged, 0 not judged"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&out);

    let (code, text) = cli(&["explore", "writeback", "--driver", "amd,amd"]);
    assert_eq!(code, 2);
    assert!(text.contains("driver 'amd' given twice"), "{text}");
}

#[test]
fn the_schedules_table_counts_what_was_not_judged() {
    let (code, text) = cli(&[
        "explore",
        "scenarios/ksm.yaml",
        "--notify",
        "seed",
        "-j",
        "1",
        "--no-prune",
        "--out",
        &std::env::temp_dir().display().to_string(),
    ]);
    assert_eq!(code, 0, "{text}");
    let s = scenario("scenarios/ksm.yaml");
    let r = exhaustive(&s, Policy::Seed, Rules::default(), 1, 100_000, 2).unwrap();
    assert!(r.unmodelled > 0);
    let cell = format!("{} +{}? ", r.schedules, r.unmodelled);
    assert!(text.contains(&cell), "{cell}:\n{text}");
}

#[test]
fn the_estimate_is_near_the_exact_count() {
    let s = scenario("scenarios/programs/cow.yaml");
    let rules = Rules::default();
    // Within a quarter of the exact count (schedules judged or not).
    let near = |s: &Scenario, bound: u32, walks: usize| {
        let exact = exhaustive(s, Policy::Seed, rules, bound, 100_000, 2).unwrap();
        let n = (exact.schedules + exact.unmodelled) as f64;
        let e = estimate(s, Policy::Seed, rules, bound, walks, 1);
        assert!(
            (e.schedules - n).abs() <= 0.25 * n,
            "estimate {} +- {} vs exact {n}",
            e.schedules,
            e.stderr
        );
        e
    };
    let e = near(&s, 0, 400);
    // The same seed, the same walks.
    assert_eq!(e, estimate(&s, Policy::Seed, rules, 0, 400, 1));
    // With preemptions the tree is lopsided (most schedules preempt late);
    // the walks still land near the count.
    near(&scenario("scenarios/munmap.yaml"), 1, 300);

    let (code, text) = cli(&[
        "explore",
        "scenarios/programs/cow.yaml",
        "--notify",
        "seed",
        "--bound",
        "0",
        "--estimate",
        "400",
    ]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains(&format!(
            "cow-programs --notify seed: about {:.0} schedules",
            e.schedules
        )),
        "{text}"
    );
    assert!(!text.contains("scenario "), "no table: {text}");
}
