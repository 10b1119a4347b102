//! Fuzz target over the scenario parser (a proptest harness over mutated
//! real scenarios, `tests/support/mutate.rs`): whatever the bytes, the
//! parser returns, never panics, and either accepts a scenario whose every
//! value is in range or names the file and a line within it on one clean
//! line. Mutants that still parse are run: the run ends (the watchdog bounds
//! it), never panics, gives the same result twice, and a failure names its
//! line too.
//!
//! CI runs a short pass with a fixed seed; a longer one, with new cases:
//! `PROPTEST_CASES=200000 PROPTEST_RNG_SEED=$RANDOM cargo test --release --test fuzz_scenario`
//! (the run property takes a tenth of the cases). `benches/soak.rs` runs
//! mutants through the CLI with a timeout per process.

#[path = "support/mutate.rs"]
mod mutate;

use mutate::{is_clear, Rng, Seeds};
use proptest::prelude::*;
use shootdown::mm::Policy;
use shootdown::scenario::{check_name, check_page_name, Scenario, MAX_STEPS, PARAMS};
use shootdown::sim::{run, RunError, RunOptions};
use std::path::Path;
use std::sync::OnceLock;

fn corpus() -> &'static (Seeds, Vec<Vec<u8>>) {
    static SEEDS: OnceLock<(Seeds, Vec<Vec<u8>>)> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let s = Seeds::load(Path::new(env!("CARGO_MANIFEST_DIR")));
        let all = s.all_bytes();
        (s, all)
    })
}

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A fixed seed, so CI runs the same cases every time; set
/// `PROPTEST_RNG_SEED` to explore others.
fn config(cases: u32) -> ProptestConfig {
    let default = ProptestConfig::default();
    let rng_seed = match std::env::var_os("PROPTEST_RNG_SEED") {
        Some(_) => default.rng_seed,
        None => proptest::test_runner::RngSeed::Fixed(0x5eed_0f5c_e7a2_10ff),
    };
    ProptestConfig {
        cases,
        failure_persistence: None,
        rng_seed,
        ..default
    }
}

/// A mutant: the seed's name, the bytes and their line count.
fn mutant(seed: u64, edits: usize) -> (String, Vec<u8>, usize) {
    let (seeds, all) = corpus();
    let (name, bytes) = seeds.mutant(&mut Rng::new(seed), all, edits);
    let lines = bytes.split(|b| *b == b'\n').count();
    (name, bytes, lines)
}

/// What an accepted scenario must satisfy whatever its text was.
fn invariants(s: &Scenario) -> Result<(), String> {
    check_name(&s.name)?;
    for p in &s.pages {
        check_page_name(&p.name)?;
        let user = p.va < 1 << 47 && p.va >= 0x10000;
        let kernel = p.kernel && p.va >= 0xffff_8000_0000_0000;
        if !user && !kernel {
            return Err(format!("page {} at {:#x}", p.name, p.va));
        }
    }
    if s.pages.is_empty() || s.pages.len() > 4 {
        return Err(format!("{} pages", s.pages.len()));
    }
    if s.timeline.is_empty() || s.timeline.len() > MAX_STEPS {
        return Err(format!("{} steps", s.timeline.len()));
    }
    for spec in PARAMS {
        spec.check((spec.get)(&s.params))?;
    }
    if s.about
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err("a control character in about".into());
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(cases(2000)))]

    #[test]
    fn the_parser_accepts_in_range_or_names_a_line(
        seed in any::<u64>(),
        edits in 1usize..6,
    ) {
        let (name, bytes, lines) = mutant(seed, edits);
        match Scenario::parse_bytes(Path::new(&name), &bytes) {
            Err(e) => {
                if let Err(why) = is_clear(&e.to_string(), &name, lines) {
                    return Err(TestCaseError::fail(format!("seed {seed}: {why}")));
                }
            }
            Ok(s) => {
                if let Err(why) = invariants(&s) {
                    return Err(TestCaseError::fail(format!("seed {seed}: accepted with {why}")));
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(config((cases(2000) / 10).max(1)))]

    #[test]
    fn an_accepted_mutant_runs_to_a_verdict_or_a_clear_error(
        seed in any::<u64>(),
        edits in 1usize..4,
    ) {
        let (name, bytes, lines) = mutant(seed, edits);
        let Ok(s) = Scenario::parse_bytes(Path::new(&name), &bytes) else {
            return Ok(());
        };
        let opts = RunOptions::policy(Policy::Seed);
        let once = run(&s, &opts);
        let twice = run(&s, &opts);
        match (&once, &twice) {
            (Ok(a), Ok(b)) => {
                prop_assert_eq!(&a.verdict, &b.verdict);
                prop_assert_eq!(a.cycles, b.cycles);
                prop_assert_eq!(&a.windows, &b.windows);
            }
            (Err(a), Err(b)) => {
                prop_assert_eq!(a.to_string(), b.to_string());
                let text = a.to_string();
                if let RunError::Timeline { .. } | RunError::Rtl { .. } = a {
                    if let Err(why) = is_clear(&text, &name, lines) {
                        return Err(TestCaseError::fail(format!("seed {seed}: {why}")));
                    }
                }
            }
            _ => return Err(TestCaseError::fail(format!("seed {seed}: two runs of one scenario disagree"))),
        }
    }
}
