//! Exhaustive search up to a preemption bound (context bounding), without
//! keeping states: each schedule is played on a fresh machine; at every
//! point past its forced prefix, each enabled move not taken (within the
//! bound) becomes the forced prefix of another schedule. Every maximal
//! schedule with at most `bound` preemptions is played exactly once,
//! whatever the number of workers; the results are sorted, so the output
//! does not depend on `--jobs`.

use super::play::{play, End, Move, Played, Prefix, Rules};
use crate::checker::Violation;
use crate::coverage::Coverage;
use crate::mm::Policy;
use crate::scenario::{Entry, Scenario};
use crate::sim::RunError;
use crate::sweep::Shard;
use std::collections::BTreeSet;
use std::sync::{Condvar, Mutex};

/// A schedule that found something.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    pub moves: Vec<Move>,
    /// The timeline steps it played.
    pub steps: Vec<Entry>,
    pub preemptions: u32,
    /// What it found: the checker's verdict, or the error that stopped it
    /// (an RTL assertion, the watchdog).
    pub what: Found,
}

/// What a schedule found.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Found {
    Verdict(BTreeSet<Violation>),
    /// The run stopped: the error's text.
    Stopped(String),
}

impl Found {
    /// A short name: the verdict kinds joined with `+`, or the assertion.
    pub fn name(&self) -> String {
        match self {
            Found::Verdict(v) => crate::sweep::verdict_text(v),
            Found::Stopped(e) => match crate::rtl::assertion_name(e) {
                Some(a) => format!("assertion {a}"),
                None if e.contains("watchdog:") => "watchdog".into(),
                None => "error".into(),
            },
        }
    }
}

/// What the search saw.
#[derive(Clone, Debug, Default)]
pub struct Searched {
    /// Schedules played to their end (or to a failure).
    pub schedules: usize,
    /// Schedules cut where they reached a state already explored (with no
    /// more preemptions spent): their futures are among the played ones'.
    pub pruned: usize,
    /// Forced prefixes that turned out impossible (a move blocked, an
    /// access that could not stop where asked).
    pub infeasible: usize,
    /// Schedules that reached something the model does not do (a kernel
    /// path refusing a state it does not model): not judged, so "clean"
    /// does not cover them; the first refusal's text.
    pub unmodelled: usize,
    pub unmodelled_first: Option<String>,
    /// The moves of the schedule `unmodelled_first` is from (the first such
    /// in the order of moves).
    pub unmodelled_moves: Option<Vec<Move>>,
    /// Distinct final machine states (verdict, windows, what the device
    /// read, cycles) among the schedules.
    pub distinct: usize,
    /// Their hashes (what shards' results are merged by).
    pub states: BTreeSet<u64>,
    /// The union of the verdicts.
    pub verdict: BTreeSet<Violation>,
    /// The longest IOTLB/ATC window over all schedules, cycles.
    pub worst_window: u64,
    /// The schedules that found something, sorted by preemptions, length,
    /// moves.
    pub findings: Vec<Finding>,
    /// The RTL's cover points summed over the schedules that ran to their
    /// end.
    pub coverage: Coverage,
}

/// The longest schedule the search plays, moves (a program is at most 64
/// actions a thread, each a bounded number of checkpoints).
const MAX_MOVES: usize = 20_000;

/// Explore every schedule of `s`'s programs with at most `bound`
/// preemptions; stop with an error past `max` schedules.
pub fn exhaustive(
    s: &Scenario,
    policy: Policy,
    rules: Rules,
    bound: u32,
    max: usize,
    jobs: usize,
) -> Result<Searched, String> {
    exhaustive_shard(s, policy, rules, bound, max, jobs, None)
}

/// [`exhaustive`] over shard `shard` of the schedules only
/// ([`super::shard::split`]); None: all of them.
pub fn exhaustive_shard(
    s: &Scenario,
    policy: Policy,
    rules: Rules,
    bound: u32,
    max: usize,
    jobs: usize,
    shard: Option<Shard>,
) -> Result<Searched, String> {
    let split = super::shard::split(s, policy, rules, bound, shard);
    struct Shared {
        queue: Vec<Prefix>,
        busy: usize,
        played: usize,
        over: bool,
        results: Vec<(Vec<Move>, Summary)>,
        cover: Coverage,
    }
    let shared = Mutex::new(Shared {
        played: split.above.len(),
        queue: split.roots,
        busy: 0,
        over: false,
        results: split.above,
        cover: Coverage::default(),
    });
    let wake = Condvar::new();
    std::thread::scope(|sc| {
        for _ in 0..jobs.max(1) {
            sc.spawn(|| loop {
                let prefix = {
                    let mut g = shared.lock().unwrap_or_else(|e| e.into_inner());
                    loop {
                        if g.over {
                            return;
                        }
                        if let Some(p) = g.queue.pop() {
                            g.busy += 1;
                            g.played += 1;
                            if g.played > max {
                                g.over = true;
                                wake.notify_all();
                                return;
                            }
                            break p;
                        }
                        if g.busy == 0 {
                            wake.notify_all();
                            return;
                        }
                        g = wake.wait(g).unwrap_or_else(|e| e.into_inner());
                    }
                };
                let (children, summary, moves) = play_one(s, policy, rules, bound, &prefix);
                let mut g = shared.lock().unwrap_or_else(|e| e.into_inner());
                g.queue.extend(children);
                let r = absorb(&mut g.cover, (moves, summary));
                g.results.push(r);
                g.busy -= 1;
                wake.notify_all();
            });
        }
    });
    let g = shared.into_inner().unwrap_or_else(|e| e.into_inner());
    if g.over {
        return Err(too_many(max, bound));
    }
    let mut out = collect(g.results);
    out.coverage.add(&g.cover);
    Ok(out)
}

/// Play the schedule of `prefix` (its forced moves, then the default
/// choice at every point): the prefixes of the schedules that branch off
/// it, what it found, and its moves. A panic is a bug of shootdown's: kept
/// as a finding of this schedule, never the end of the search.
pub(crate) fn play_one(
    s: &Scenario,
    policy: Policy,
    rules: Rules,
    bound: u32,
    prefix: &Prefix,
) -> (Vec<Prefix>, Summary, Vec<Move>) {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        play(s, policy, rules, prefix)
    })) {
        Ok(played) => (
            children(&played, prefix.moves.len(), bound),
            Summary::of(&played),
            played.moves,
        ),
        Err(p) => {
            let summary = panicked(&prefix.moves, p.as_ref());
            (Vec::new(), summary, prefix.moves.clone())
        }
    }
}

/// What a schedule that panicked (a bug of shootdown's) found.
pub(crate) fn panicked(moves: &[Move], p: &(dyn std::any::Any + Send)) -> Summary {
    let why = p
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    Summary::Ran {
        verdict: BTreeSet::new(),
        worst: 0,
        state: fnv(why.as_bytes()),
        finding: Some(Finding {
            moves: moves.to_vec(),
            steps: Vec::new(),
            preemptions: 0,
            what: Found::Stopped(format!("panic: {why}")),
        }),
        coverage: Coverage::default(),
    }
}

/// The forced prefixes of the schedules that branch off `p` past its own
/// forced prefix of `forced` moves, within the bound.
pub(crate) fn children(p: &Played, forced: usize, bound: u32) -> Vec<Prefix> {
    if !matches!(p.end, End::Done(_) | End::Failed(_)) || p.moves.len() > MAX_MOVES {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (k, b) in p.branches.iter().enumerate().skip(forced) {
        for &m in b.enabled.iter().rev() {
            if m != b.taken && b.preemptions + b.cost(m) <= bound {
                let mut c = p.moves[..k].to_vec();
                c.push(m);
                out.push(Prefix {
                    moves: c,
                    preemptions: b.preemptions + b.cost(m),
                });
            }
        }
    }
    out
}

/// What the search keeps of one played schedule.
#[derive(Debug, PartialEq)]
pub(crate) enum Summary {
    Infeasible,
    /// The model refused a state the schedule reached (its message).
    Unmodelled(String),
    Ran {
        verdict: BTreeSet<Violation>,
        worst: u64,
        /// Hash of what the run ended with.
        state: u64,
        finding: Option<Finding>,
        /// What the RTL's cover points counted in the run.
        coverage: Coverage,
    },
    /// Cut where it reached a state already explored: what the RTL's
    /// cover points counted up to there (its `runs` 0: summed as counts,
    /// not as a run).
    Pruned(Coverage),
}

impl Summary {
    pub(crate) fn of(p: &Played) -> Summary {
        let finding = |what| Finding {
            moves: p.moves.clone(),
            steps: p.steps.clone(),
            preemptions: p.preemptions,
            what,
        };
        match &p.end {
            End::Infeasible => Summary::Infeasible,
            End::Failed(RunError::Timeline { msg, .. }) if !msg.starts_with("watchdog:") => {
                Summary::Unmodelled(msg.clone())
            }
            End::Failed(e) => Summary::Ran {
                verdict: BTreeSet::new(),
                worst: 0,
                state: fnv(e.to_string().as_bytes()),
                finding: Some(finding(Found::Stopped(e.to_string()))),
                coverage: Coverage::default(),
            },
            End::Done(r) => {
                let worst = r
                    .windows
                    .iter()
                    .filter(|w| w.cache != crate::checker::Cache::InFlight)
                    .map(|w| w.len(r.cycles))
                    .max()
                    .unwrap_or(0);
                let state = fnv(format!(
                    "{:?}{:?}{:?}{:?}{}",
                    r.verdict, r.windows, r.dev, r.final_view, r.cycles
                )
                .as_bytes());
                Summary::Ran {
                    finding: (!r.verdict.is_empty())
                        .then(|| finding(Found::Verdict(r.verdict.clone()))),
                    verdict: r.verdict.clone(),
                    worst,
                    state,
                    coverage: r.coverage.clone(),
                }
            }
        }
    }
}

/// The schedules played: each one's moves and what it found.
pub(crate) type Results = Vec<(Vec<Move>, Summary)>;

/// Move a schedule's cover counts into the running sum `total`: the
/// results are kept until the search ends, and a map of every cover point
/// each would be most of their memory (gigabytes at 200,000 schedules).
pub(crate) fn absorb(total: &mut Coverage, mut r: (Vec<Move>, Summary)) -> (Vec<Move>, Summary) {
    if let Summary::Ran { coverage, .. } | Summary::Pruned(coverage) = &mut r.1 {
        total.add(coverage);
        *coverage = Coverage::default();
    }
    r
}

/// Sort the schedules' results and sum them up.
pub(crate) fn collect(mut results: Vec<(Vec<Move>, Summary)>) -> Searched {
    results.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = Searched::default();
    let mut states = BTreeSet::new();
    for (moves, s) in results {
        match s {
            Summary::Infeasible => out.infeasible += 1,
            Summary::Pruned(coverage) => {
                out.pruned += 1;
                out.coverage.add(&coverage);
            }
            Summary::Unmodelled(m) => {
                out.unmodelled += 1;
                if out.unmodelled_first.is_none() {
                    out.unmodelled_first = Some(m);
                    out.unmodelled_moves = Some(moves);
                }
            }
            Summary::Ran {
                verdict,
                worst,
                state,
                finding,
                coverage,
            } => {
                out.schedules += 1;
                out.coverage.add(&coverage);
                states.insert(state);
                out.verdict.extend(verdict);
                out.worst_window = out.worst_window.max(worst);
                out.findings.extend(finding);
            }
        }
    }
    out.distinct = states.len();
    out.states = states;
    sort_findings(&mut out.findings);
    out
}

/// Findings in the order they are reported and shrunk: fewest
/// preemptions, then shortest, then by moves.
pub(crate) fn sort_findings(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        (a.preemptions, a.moves.len(), &a.moves).cmp(&(b.preemptions, b.moves.len(), &b.moves))
    });
}

/// The error of a search past `--max-schedules`.
pub(crate) fn too_many(max: usize, bound: u32) -> String {
    format!(
        "more than {max} schedules with at most {bound} preemptions: lower --bound, or raise --max-schedules"
    )
}

/// Violation kinds by name, as the JSON carries them.
pub(crate) fn names(v: &BTreeSet<Violation>) -> Vec<String> {
    v.iter().map(|k| k.name().to_string()).collect()
}

/// [`names`] read back.
pub(crate) fn kinds(v: &[String]) -> Result<BTreeSet<Violation>, String> {
    v.iter().map(|k| k.parse()).collect()
}

/// FNV-1a, stable across runs and machines.
pub(crate) fn fnv(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}
