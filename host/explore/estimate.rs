//! How big a search is before running it: Knuth's estimator of the size of
//! a tree (D. E. Knuth, "Estimating the efficiency of backtrack programs",
//! 1975), applied to the tree of schedules the exhaustive search plays.
//!
//! A random walk from the root picks, at every point, one of the moves the
//! search would play there (the default move and each alternative within
//! the preemption bound) uniformly; the product of the numbers of choices
//! along the walk is an unbiased estimate of the number of schedules. The
//! mean over many walks, with its standard error, says whether a bound
//! is a matter of seconds or of hours; each walk costs one schedule.
//!
//! The walk follows [`super::play::play`]'s rules: a default move found
//! blocked is dropped and the next default taken (not a branch); an
//! alternative found blocked ends the walk as an infeasible prefix (it
//! counts 0 schedules, as the search counts it as no schedule).

use super::play::{branch_here, default_move, Player, Rules, Tried};
use crate::mm::Policy;
use crate::scenario::Scenario;

/// What the walks estimate.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Estimate {
    pub walks: usize,
    /// Estimated schedules the search plays to their end (findings and
    /// schedules that stop on something not modelled included).
    pub schedules: f64,
    /// The standard error of `schedules`.
    pub stderr: f64,
    /// The longest walk, in moves.
    pub max_moves: usize,
}

/// A small deterministic generator (SplitMix64): the same seed, the same
/// walks.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// One random walk: the estimate it gives (0 for an infeasible prefix) and
/// its length in moves.
fn walk(
    s: &Scenario,
    policy: Policy,
    rules: Rules,
    bound: u32,
    rng: &mut SplitMix,
) -> (f64, usize) {
    let Ok(mut p) = Player::new(s, policy, rules) else {
        return (1.0, 0);
    };
    let mut weight = 1.0;
    loop {
        let mut enabled = p.enabled();
        loop {
            let Some(m0) = default_move(&p, &enabled) else {
                // The end (or every move blocked): one schedule.
                let n = p.moves.len();
                let _ = p.finish();
                return (weight, n);
            };
            let b = branch_here(&p, enabled.clone(), m0);
            let choices: Vec<_> = std::iter::once(m0)
                .chain(
                    enabled
                        .iter()
                        .copied()
                        .filter(|&m| m != m0 && b.preemptions + b.cost(m) <= bound),
                )
                .collect();
            let m = choices[rng.below(choices.len())];
            match p.try_move(m, b.cost(m)) {
                Tried::Moved => {
                    weight *= choices.len() as f64;
                    break;
                }
                Tried::Blocked if m == m0 => enabled.retain(|x| *x != m0),
                Tried::Blocked => return (0.0, p.moves.len()),
                Tried::Failed(_) => {
                    let n = p.moves.len() + 1;
                    return (weight * choices.len() as f64, n);
                }
            }
        }
        if p.moves.len() > 20_000 {
            let n = p.moves.len();
            let _ = p.finish();
            return (weight, n);
        }
    }
}

/// Estimate the number of schedules of `s`'s programs under `policy` with
/// at most `bound` preemptions from `walks` random walks.
pub fn estimate(
    s: &Scenario,
    policy: Policy,
    rules: Rules,
    bound: u32,
    walks: usize,
    seed: u64,
) -> Estimate {
    let mut rng = SplitMix(seed);
    let mut xs = Vec::with_capacity(walks);
    let mut max_moves = 0;
    for _ in 0..walks {
        let (x, n) = walk(s, policy, rules, bound, &mut rng);
        xs.push(x);
        max_moves = max_moves.max(n);
    }
    let n = xs.len().max(1) as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0).max(1.0);
    Estimate {
        walks,
        schedules: mean,
        stderr: (var / n).sqrt(),
        max_moves,
    }
}

/// One line: the cell, the estimate, the walks and what they took.
pub fn describe(
    scenario: &str,
    policy: Policy,
    bound: u32,
    e: &Estimate,
    took: std::time::Duration,
) -> String {
    format!(
        "{scenario} --notify {policy}: about {:.0} schedules (standard error {:.0}) with at most {bound} preemption{} (estimated from {} random walks, at most {} moves, in {:.1}s)",
        e.schedules,
        e.stderr,
        if bound == 1 { "" } else { "s" },
        e.walks,
        e.max_moves,
        took.as_secs_f64()
    )
}
