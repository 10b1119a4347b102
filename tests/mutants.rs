//! Injected RTL bugs against the bundled scenarios: the correct design passes
//! every cell, and each bug is caught by the scenario written for it, but
//! `fence-one-itag`, which no bundled scenario reaches (`BEYOND_BUNDLED`).

use shootdown::mm::Policy;
use shootdown::mutants::{run_mutants, BEYOND_BUNDLED};
use shootdown::rtl::inject_bits;
use shootdown::scenario::Scenario;
use shootdown::sim::{run, RunOptions};
use shootdown::sweep::{expand, Status};
use std::path::Path;

fn caught(bug: &str, scenario: &str, policy: Policy) -> bool {
    let mut s = Scenario::load(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("scenarios")
            .join(scenario),
    )
    .unwrap();
    s.inject = inject_bits(&[bug]).unwrap();
    s.params.assertions = false; // the checker alone
    match run(&s, &RunOptions::policy(policy)) {
        Ok(r) => !r.as_expected(),
        Err(_) => true,
    }
}

#[test]
fn each_bug_is_caught_by_its_scenario() {
    assert!(caught("early-fence", "fence-race.yaml", Policy::EndOnly));
    assert!(caught("early-inv-cpl", "drain-race.yaml", Policy::Seed));
    assert!(caught("inv-misses-2m", "zero-split.yaml", Policy::Seed));
    assert!(caught("inv-wrong-pasid", "cow.yaml", Policy::Seed));
    assert!(caught("psc-not-invalidated", "collapse.yaml", Policy::Seed));
    // a walk through a page table munmap freed, under every policy that
    // flushes before the free
    for p in [Policy::Always, Policy::Seed, Policy::Arch] {
        assert!(caught("psc-not-invalidated", "pgtable-free.yaml", p), "{p}");
    }
    assert!(caught("cache-racing-cpl", "tr-race.yaml", Policy::Seed));
    // a device with PRI that never progresses, under every policy (a
    // permission upgrade notifies nothing)
    for p in Policy::ALL {
        assert!(caught("write-hits-ro", "pri-reuse.yaml", p), "{p}");
        // the device waits for a PRG Response that never comes
        assert!(caught("prgr-dropped", "pri-cow.yaml", p), "{p}");
    }
    // and not by a scenario that cannot see it
    assert!(!caught("inv-misses-2m", "cow.yaml", Policy::Seed));
}

#[test]
fn the_mutants_table_over_the_bundled_scenarios() {
    std::env::set_current_dir(env!("CARGO_MANIFEST_DIR")).unwrap();
    let files = expand(&[]).unwrap();
    let (baseline, rows) = run_mutants(&files, 2);
    assert!(
        baseline.iter().all(|c| c.status() == Status::AsExpected),
        "the correct design passes"
    );
    assert_eq!(rows.len(), 10, "every injectable bug but the device fault");
    for r in &rows {
        let name = &r.name;
        if BEYOND_BUNDLED.contains(name) {
            // fence-one-itag: no bundled timeline has two ATS invalidations
            // outstanding before one fence (tests/drivers.rs checks every
            // driver and catches it with a timeline written for it)
            assert!(
                !r.caught(),
                "{name}: {:?} {:?}",
                r.by_assertion,
                r.by_checker
            );
            assert!(r.as_expected(), "{name}");
            continue;
        }
        assert!(r.as_expected(), "{name}");
        assert!(
            !r.by_checker.cells.is_empty(),
            "{name} caught by the checker alone"
        );
        assert!(
            r.by_checker.first_cycle.is_some(),
            "{name}: the detection cycle is known"
        );
        // With the assertions on, a protocol assertion stops a run first.
        assert!(
            r.by_assertion
                .cells
                .iter()
                .all(|(_, _, saw)| saw.starts_with("assertion ") && saw.ends_with("_A")),
            "{name}: {:?}",
            r.by_assertion.cells
        );
        assert!(
            !r.by_assertion.cells.is_empty(),
            "{name} stops on an assertion"
        );
        assert!(r.by_assertion.first_cycle.is_some(), "{name}");
    }
}
