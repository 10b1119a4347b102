//! Explore's speed: schedules a second on cow's program (the seed's case B
//! as programs, `scenarios/programs/cow.yaml`) under end-only, every
//! schedule within one preemption, no waves. Each engine and worker count
//! runs the same 4,725 schedules (the pruned one plays fewer, cutting
//! those that reach a state already explored, and says at what rate it
//! covers the 4,725); the line per run gives the wall time, schedules a
//! second, and a second per worker, and the simulated cycles a second of
//! the first schedule for scale.
//!
//! `cargo bench --bench explore -- [--bound B] [--jobs J,..] [--stateless]`
//! (defaults: bound 1, jobs 1 and 2, the fork engine and the stateless one).

use shootdown::explore::play::{play, Prefix, Rules};
use shootdown::explore::search::exhaustive;
use shootdown::explore::{fork, play::End};
use shootdown::mm::Policy;
use shootdown::scenario::Scenario;
use std::path::Path;
use std::time::Instant;

fn arg<T: std::str::FromStr>(args: &[String], flag: &str) -> Option<T> {
    let i = args.iter().position(|a| a == flag)?;
    args.get(i + 1)?.parse().ok()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let bound: u32 = arg(&args, "--bound").unwrap_or(1);
    let jobs: Vec<usize> = arg::<String>(&args, "--jobs")
        .map(|s| s.split(',').filter_map(|j| j.parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 2]);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let s = Scenario::load(&root.join("scenarios/programs/cow.yaml")).expect("cow's program");
    // The fork engine's workers are this package's binary.
    let exe = Path::new(env!("CARGO_BIN_EXE_shootdown"));
    let rules = Rules::default();
    let t = Instant::now();
    let first = play(&s, Policy::EndOnly, rules, &Prefix::default());
    let cycles = match &first.end {
        End::Done(r) => r.cycles,
        _ => 0,
    };
    println!(
        "first schedule: {} moves, {cycles} cycles, {:.1} ms ({:.0} cycles/s)",
        first.moves.len(),
        t.elapsed().as_secs_f64() * 1e3,
        cycles as f64 / t.elapsed().as_secs_f64()
    );
    let engines: &[&str] = if args.iter().any(|a| a == "--stateless") {
        &["stateless"]
    } else {
        &["fork", "pruned", "stateless"]
    };
    // The schedules within the bound, as the first unpruned search counts
    // them: what a pruned search covers.
    let mut space = None;
    for engine in engines {
        for &j in &jobs {
            let t = Instant::now();
            let pruned = Rules {
                prune: true,
                ..rules
            };
            let r = match *engine {
                "fork" => {
                    fork::exhaustive(&s, Policy::EndOnly, rules, bound, 1_000_000, j, exe, None)
                }
                "pruned" => {
                    fork::exhaustive(&s, Policy::EndOnly, pruned, bound, 1_000_000, j, exe, None)
                }
                _ => exhaustive(&s, Policy::EndOnly, rules, bound, 1_000_000, j),
            }
            .expect("the search");
            let secs = t.elapsed().as_secs_f64();
            if r.pruned == 0 {
                space.get_or_insert(r.schedules);
            }
            let covered = match (r.pruned, space) {
                (0, _) | (_, None) => String::new(),
                (n, Some(all)) => format!(
                    " ({n} cut at a state already explored; the {all} schedules covered at {:.0}/s)",
                    all as f64 / secs
                ),
            };
            println!(
                "{engine:>9} -j{j}: {} schedules in {secs:.2} s: {:.0} schedules/s, {:.0} a worker{covered}",
                r.schedules,
                r.schedules as f64 / secs,
                r.schedules as f64 / secs / j as f64
            );
        }
    }
}
