//! With the assertions off, `sd_step` evaluates the model once per cycle
//! (the falling edge is not evaluated; docs/socket.md, "Clocking"); with
//! them on, twice. On the correct RTL no assertion fires, so every bundled
//! scenario must run exactly alike both ways: same cycles, windows, device
//! accesses and verdict, under every policy.

use shootdown::mm::Policy;
use shootdown::scenario::Scenario;
use shootdown::sim::{run, RunOptions, RunReport};

fn summary(r: &RunReport) -> String {
    format!(
        "cycles {} verdict {:?} windows {:?} dev {:?} stores {:?} io {:?} spin {}",
        r.cycles, r.verdict, r.windows, r.dev, r.stores, r.io, r.spin_cycles
    )
}

#[test]
fn one_eval_per_cycle_runs_every_scenario_as_two_do() {
    // every bundled scenario, sorted, as `sweep` takes them
    let files = shootdown::sweep::expand(&[]).unwrap();
    assert!(files.len() >= 10);
    for f in files {
        let mut s = Scenario::load(&f).unwrap();
        if s.inject != 0 {
            continue;
        }
        for policy in Policy::ALL {
            let opts = RunOptions::policy(policy);
            s.params.assertions = true;
            let checked = run(&s, &opts);
            s.params.assertions = false;
            let unchecked = run(&s, &opts);
            match (checked, unchecked) {
                (Ok(a), Ok(b)) => assert_eq!(
                    summary(&a),
                    summary(&b),
                    "{} --notify {policy}",
                    f.display()
                ),
                (a, b) => assert_eq!(
                    a.map(|r| summary(&r)).map_err(|e| e.to_string()),
                    b.map(|r| summary(&r)).map_err(|e| e.to_string()),
                    "{} --notify {policy}",
                    f.display()
                ),
            }
        }
    }
}
