//! How big a search is before running it: Knuth's estimator of the size of
//! a tree (D. E. Knuth, "Estimating the efficiency of backtrack programs",
//! 1975), applied to the tree of schedules the exhaustive search plays.
//!
//! A random walk from the root picks, at every point, one of the moves the
//! search would play there (the default move and each alternative within
//! the preemption bound); the product of the inverse probabilities of the
//! moves it took is an unbiased estimate of the number of schedules. The
//! mean over many walks, with its standard error, says whether a bound is a
//! matter of seconds or of hours; each walk costs one schedule.
//!
//! Picking uniformly is unbiased but useless here: a walk spends its
//! preemptions at the first points it may, while most schedules preempt
//! late, so a few hundred walks underestimated `cow.yaml` at bound 1
//! by 3.6x (217 k for 786 k) and collapse at bound 2 by 3.4x. The walk
//! therefore takes a preemption with probability (preemptions left) /
//! (moves left to the length of the first schedule), at most one half
//! (importance sampling; see [`walk`]): 300 walks then land within a
//! standard error or two of the exact counts (`docs/explore-seed.md`).
//!
//! The walk follows [`super::play::play`]'s rules: a default move found
//! blocked is dropped and the next default taken (not a branch); an
//! alternative found blocked ends the walk as an infeasible prefix (it
//! counts 0 schedules, as the search counts it as no schedule).

use super::pct::Rng;
use super::play::{branch_here, default_move, Move, Player, Prefix, Rules, Tried};
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

/// An index in `0..n` (n > 0) from `rng`, by remainder (the estimator's
/// walks, as first measured).
fn pick(rng: &mut Rng, n: usize) -> usize {
    (rng.next_u64() % n as u64) as usize
}

/// One random walk: the estimate it gives (0 for an infeasible prefix) and
/// its length in moves. `horizon` is the expected length of a schedule
/// (the first schedule's): a preemption is taken at a point with
/// probability (preemptions left) / (moves left to the horizon), at most
/// one half, so that walks spread their preemptions over the schedule as
/// the tree does instead of spending them at the first points; each move's
/// weight is the inverse of its probability, which keeps the estimate
/// unbiased.
fn walk(
    s: &Scenario,
    policy: Policy,
    rules: Rules,
    bound: u32,
    horizon: usize,
    rng: &mut Rng,
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
            let allowed = |m: &Move| *m == m0 || b.preemptions + b.cost(*m) <= bound;
            let (costly, free): (Vec<Move>, Vec<Move>) = enabled
                .iter()
                .copied()
                .filter(allowed)
                .partition(|&m| m != m0 && b.cost(m) > 0);
            let free: Vec<Move> = std::iter::once(m0)
                .chain(free.into_iter().filter(|&m| m != m0))
                .collect();
            let q = if costly.is_empty() {
                0.0
            } else {
                let left = f64::from(bound.saturating_sub(b.preemptions));
                let to_go = horizon.saturating_sub(p.moves.len()).max(1) as f64;
                (left / to_go).min(0.5)
            };
            let (m, prob) = if rng.unit() < q {
                (costly[pick(rng, costly.len())], q / costly.len() as f64)
            } else {
                (free[pick(rng, free.len())], (1.0 - q) / free.len() as f64)
            };
            match p.try_move(m, b.cost(m)) {
                Tried::Moved => {
                    weight /= prob;
                    break;
                }
                Tried::Blocked if m == m0 => enabled.retain(|x| *x != m0),
                Tried::Blocked => return (0.0, p.moves.len()),
                Tried::Failed(_) => {
                    let n = p.moves.len() + 1;
                    return (weight / prob, n);
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
    let mut rng = Rng::from_state(seed);
    let mut xs = Vec::with_capacity(walks);
    let horizon = super::play::play(s, policy, rules, &Prefix::default())
        .moves
        .len();
    let mut max_moves = horizon;
    for _ in 0..walks {
        let (x, n) = walk(s, policy, rules, bound, horizon, &mut rng);
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
