//! Randomized search with a guarantee on depth: PCT, probabilistic
//! concurrency testing (Burckhardt, Kothari, Musuvathi, Nagarakatte,
//! ASPLOS 2010), for spaces too big to exhaust.
//!
//! Each run gives the `n` threads distinct random priorities (all above
//! `depth`) and picks `depth - 1` random change points among the `k` moves
//! of a schedule; at every point the enabled thread with the highest
//! priority moves, and at the i-th change point the thread about to move
//! drops to priority i. A bug that needs `depth` ordering constraints
//! (a preempted thread and `depth - 1` moves placed before others) is hit
//! by one run with probability at least 1 / (n * k^(depth - 1)), whatever
//! the program. Run `r` draws from a generator seeded by (`seed`, `r`),
//! so the runs, and the output, are the same for any `--jobs` and across
//! shards (run `r` belongs to shard `r mod N`).

use super::play::{play, play_with, Move, Player, Prefix, Rules};
use super::search::{collect, Searched, Summary};
use crate::coverage::Coverage;
use crate::mm::Policy;
use crate::scenario::{Scenario, ThreadRef};
use crate::sweep::Shard;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// What a PCT search was asked and what its guarantee rests on.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pct {
    pub runs: u64,
    pub depth: u32,
    pub seed: u64,
    /// Threads of the programs.
    pub threads: usize,
    /// Moves of the first schedule (every default move): the `k` the change
    /// points are drawn from.
    pub steps: usize,
}

impl Pct {
    /// The probability that one run hits a given bug of depth `depth`, at
    /// least: 1 / (n * k^(depth - 1)).
    pub fn per_run(&self) -> f64 {
        let k = self.steps.max(1) as f64;
        1.0 / (self.threads.max(1) as f64 * k.powi(self.depth as i32 - 1))
    }

    /// The probability that every one of the runs misses it, at most.
    pub fn miss(&self) -> f64 {
        (1.0 - self.per_run()).powf(self.runs as f64)
    }
}

/// SplitMix64: small, fast, and the same numbers on every machine.
pub struct Rng(u64);

impl Rng {
    /// The generator of run `run` of a search seeded `seed`.
    pub fn new(seed: u64, run: u64) -> Rng {
        let mut r = Rng(seed ^ run.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        r.next_u64();
        r
    }

    /// The generator whose state is `seed` (no mixing of a run number).
    pub fn from_state(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        // Multiply-shift: unbiased enough for n far below 2^64.
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

/// One run's priorities and change points.
struct Plan {
    threads: Vec<ThreadRef>,
    /// Priority per thread, in `threads` order.
    prio: Vec<u64>,
    /// Change points (move indices) and whether each was applied.
    change: Vec<(usize, bool)>,
    rng: Rng,
}

impl Plan {
    fn new(threads: &[ThreadRef], depth: u32, steps: usize, mut rng: Rng) -> Plan {
        let d = u64::from(depth);
        // A random permutation of d .. d + n (Fisher-Yates).
        let mut prio: Vec<u64> = (0..threads.len() as u64).map(|i| d + i).collect();
        for i in (1..prio.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            prio.swap(i, j);
        }
        // Distinct points in the order drawn: the i-th drawn lowers its
        // thread to priority i + 1 (below every initial priority), so
        // which of two drops goes lower is random too, not their order.
        let want = (depth.saturating_sub(1) as usize).min(steps);
        let mut change: Vec<(usize, bool)> = Vec::with_capacity(want);
        while change.len() < want {
            let k = 1 + rng.below(steps as u64) as usize;
            if !change.iter().any(|(p, _)| *p == k) {
                change.push((k, false));
            }
        }
        Plan {
            threads: threads.to_vec(),
            prio,
            change,
            rng,
        }
    }

    fn prio_of(&self, t: ThreadRef) -> u64 {
        self.threads
            .iter()
            .position(|x| *x == t)
            .map_or(0, |i| self.prio[i])
    }

    /// The move of the enabled thread with the highest priority (a change
    /// point first lowers the thread that would move there).
    fn choose(&mut self, player: &Player, enabled: &[Move]) -> Option<Move> {
        let best = |plan: &Plan| {
            enabled
                .iter()
                .map(|m| m.thread())
                .max_by_key(|t| (plan.prio_of(*t), std::cmp::Reverse(*t)))
        };
        let mut thread = best(self)?;
        let k = player.moves.len();
        if let Some(i) = self.change.iter().position(|(p, done)| *p == k && !done) {
            self.change[i].1 = true;
            if let Some(t) = self.threads.iter().position(|x| *x == thread) {
                self.prio[t] = i as u64 + 1;
            }
            thread = best(self)?;
        }
        let mine: Vec<Move> = enabled
            .iter()
            .copied()
            .filter(|m| m.thread() == thread)
            .collect();
        // A device thread with several moves (start an access and stop it
        // in flight, or run it whole): one at random.
        Some(mine[self.rng.below(mine.len() as u64) as usize])
    }
}

/// The threads of `s`'s programs, in a fixed order.
pub fn threads(s: &Scenario) -> Vec<ThreadRef> {
    let mut set: BTreeSet<ThreadRef> = s.programs.iter().map(|p| p.thread).collect();
    // with PRI, the I/O page fault worker is scheduled too
    if s.params.pri > 0 {
        set.insert(ThreadRef::Iopf);
    }
    set.into_iter().collect()
}

/// `runs` PCT runs of `s`'s programs (those of `shard`), on `jobs` threads.
#[allow(clippy::too_many_arguments)]
pub fn search(
    s: &Scenario,
    policy: Policy,
    rules: Rules,
    runs: u64,
    depth: u32,
    seed: u64,
    jobs: usize,
    shard: Option<Shard>,
) -> (Pct, Searched) {
    let threads = threads(s);
    let steps = play(s, policy, rules, &Prefix::default()).moves.len();
    let info = Pct {
        runs,
        depth,
        seed,
        threads: threads.len(),
        steps,
    };
    let (k, n) = shard.map_or((1, 1), |sh| (sh.k as u64, sh.n as u64));
    let mine: Vec<u64> = (0..runs).filter(|r| r % n == k - 1).collect();
    let next = AtomicUsize::new(0);
    let results: Mutex<(super::search::Results, Coverage)> = Mutex::default();
    std::thread::scope(|sc| {
        for _ in 0..jobs.max(1) {
            sc.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&r) = mine.get(i) else { return };
                let mut plan = Plan::new(&threads, depth, steps.max(1), Rng::new(seed, r));
                let played = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    play_with(s, policy, rules, &Prefix::default(), |p, e| {
                        plan.choose(p, e)
                    })
                }));
                let got = match played {
                    Ok(p) => (p.moves.clone(), Summary::of(&p)),
                    Err(p) => (Vec::new(), super::search::panicked(&[], p.as_ref())),
                };
                let mut g = results.lock().unwrap_or_else(|e| e.into_inner());
                let got = super::search::absorb(&mut g.1, got);
                g.0.push(got);
            });
        }
    });
    let (results, cover) = results.into_inner().unwrap_or_else(|e| e.into_inner());
    let mut out = collect(results);
    out.coverage.add(&cover);
    (info, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generator_is_fixed_and_spreads() {
        let mut a = Rng::new(7, 3);
        let mut b = Rng::new(7, 3);
        let xs: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        assert_eq!(xs, (0..8).map(|_| b.next_u64()).collect::<Vec<_>>());
        assert_ne!(Rng::new(7, 4).next_u64(), Rng::new(7, 3).next_u64());
        let mut c = Rng::new(1, 0);
        let mut seen = [0u32; 5];
        for _ in 0..5000 {
            seen[c.below(5) as usize] += 1;
        }
        assert!(seen.iter().all(|&n| (800..1200).contains(&n)), "{seen:?}");
    }

    #[test]
    fn a_plan_has_distinct_priorities_above_depth_and_its_change_points() {
        let threads = [ThreadRef::Cpu(0), ThreadRef::Cpu(1), ThreadRef::Dev(0)];
        for r in 0..50 {
            let p = Plan::new(&threads, 3, 20, Rng::new(9, r));
            let mut pr = p.prio.clone();
            pr.sort();
            assert_eq!(pr, vec![3, 4, 5]);
            assert_eq!(p.change.len(), 2);
            assert!(p.change.iter().all(|(k, _)| (1..=20).contains(k)));
        }
        // Fewer moves than change points: as many as there are moves.
        assert_eq!(Plan::new(&threads, 4, 1, Rng::new(0, 0)).change.len(), 1);
    }

    #[test]
    fn the_guarantee() {
        let p = Pct {
            runs: 1000,
            depth: 2,
            seed: 0,
            threads: 3,
            steps: 50,
        };
        assert!((p.per_run() - 1.0 / 150.0).abs() < 1e-12);
        assert!(p.miss() < 0.002);
    }
}
