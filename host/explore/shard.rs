//! `explore --shard K/N` and `--merge`: the schedule space of every
//! (scenario, policy) cell cut into subtrees, dealt to shards without
//! overlap; each shard's JSON carries what its schedules found, and the
//! shards' files merge into the result of the whole space.
//!
//! The cut: the first schedule (every default move) is played, and the
//! schedules that branch off it are the subtrees below the cut. With more
//! than one shard, the subtrees that may still preempt (nearly all the
//! schedules are in those) are cut further, the highest first (its first
//! schedule played, its branches the new subtrees), until there are
//! [`PIECES_PER_SHARD`] subtrees a shard or [`MAX_CUT`] schedules a shard
//! were played above the cut.
//! Every shard plays the schedules above the cut (a few, to know the
//! subtrees); schedule `j` above it belongs to shard `j mod N`, subtree `i`
//! below it (sorted by moves) to shard `i mod N`. Every schedule is in
//! exactly one shard, so the shards' sums are the whole space's.

use super::fork::FindingRecord;
use super::play::{Move, Prefix, Rules};
use super::search::{collect, kinds, names, play_one, sort_findings, Searched, Summary};
use super::Explored;
use crate::checker::Violation;
use crate::coverage::Coverage;
use crate::mm::Policy;
use crate::scenario::Scenario;
use crate::sweep::Shard;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Subtrees a shard gets at least, where the space has them.
pub const PIECES_PER_SHARD: usize = 8;
/// Schedules a shard plays above the cut at most, per shard.
pub const MAX_CUT: usize = 16;

/// Where a shard's search starts: the results of its schedules above the
/// cut, and the subtrees below it that are its own.
pub(crate) struct Split {
    pub above: Vec<(Vec<Move>, Summary)>,
    pub roots: Vec<Prefix>,
}

/// Cut the schedule space of `s` under `policy` for `shard` (None: one
/// shard, the whole space).
pub(crate) fn split(
    s: &Scenario,
    policy: Policy,
    rules: Rules,
    bound: u32,
    shard: Option<Shard>,
) -> Split {
    let (k, n) = shard.map_or((1, 1), |sh| (sh.k, sh.n));
    let mine = |i: usize| i % n == k - 1;
    // The first schedule is always played here (the fork engine's workers
    // take its branches). Then, for several shards, the subtree that may
    // still preempt and starts highest in the tree is cut, one at a time:
    // those hold nearly all schedules; one whose prefix used the bound
    // stays whole.
    let mut above = Vec::new();
    let mut frontier = Vec::new();
    let mut next = vec![Prefix::default()];
    let mut j = 0;
    while let Some(p) = next.pop() {
        let (children, summary, moves) = play_one(s, policy, rules, bound, &p);
        if mine(j) {
            above.push((moves, summary));
        }
        j += 1;
        for c in children {
            if n > 1 && c.preemptions < bound {
                next.push(c);
            } else {
                frontier.push(c);
            }
        }
        let want = PIECES_PER_SHARD * n;
        if n == 1 || next.len() >= want || j >= MAX_CUT * n {
            frontier.append(&mut next);
            break;
        }
        // The shallowest first (popped from the end).
        next.sort_by(|a, b| (b.moves.len(), &b.moves).cmp(&(a.moves.len(), &a.moves)));
    }
    // Dealt in the order of a hash of their moves: neighbours in the tree
    // (alike in size) go to different shards.
    frontier.sort_by_cached_key(|p| {
        (
            super::search::fnv(super::fork::encode(&p.moves).as_bytes()),
            p.moves.clone(),
        )
    });
    let roots = frontier
        .into_iter()
        .enumerate()
        .filter(|(i, _)| mine(*i))
        .map(|(_, p)| p)
        .collect();
    Split { above, roots }
}

/// The version of explore's JSON this build writes and reads.
pub const EXPLORE_JSON_VERSION: u32 = 1;

/// One explored cell in the JSON: where it came from (to load it again for
/// shrinking after a merge) and what its schedules found.
#[derive(Serialize, Deserialize)]
pub struct CellSearch {
    pub index: usize,
    pub scenario: String,
    pub file: String,
    pub policy: String,
    pub driver: String,
    pub inject_bits: u16,
    pub assertions: bool,
    /// The `--param` values it was explored at.
    pub params: Vec<(String, u64)>,
    /// The search's error (too many schedules, a worker that failed).
    pub error: Option<String>,
    pub schedules: usize,
    /// Schedules cut at a state already explored.
    #[serde(default)]
    pub pruned: usize,
    pub infeasible: usize,
    pub unmodelled: usize,
    pub unmodelled_first: Option<String>,
    pub unmodelled_moves: Option<String>,
    /// Hashes of the distinct end states, hexadecimal, sorted.
    pub states: Vec<String>,
    pub verdict: Vec<String>,
    pub worst_window: u64,
    pub findings: Vec<FindingJson>,
    /// Cover-point counts summed over the schedules.
    pub coverage: Coverage,
    /// A timeline scenario's own timeline: its verdict, or why it stopped.
    pub timeline: Option<Result<Vec<String>, String>>,
    /// PCT's parameters and the cell's threads and moves (its guarantee).
    pub pct: Option<super::pct::Pct>,
}

/// A finding: its schedule's moves and what it found.
#[derive(Serialize, Deserialize)]
pub struct FindingJson {
    pub moves: String,
    #[serde(flatten)]
    pub(crate) found: FindingRecord,
}

/// Explore's JSON: the sweep-shaped cells (`cells`, as `sweep --json`
/// writes them) and, beside them, what each cell's search found
/// (`explore`), which `--merge` reads.
#[derive(Serialize, Deserialize)]
pub struct ExploreFile {
    pub version: u32,
    pub bound: u32,
    /// PCT's runs, depth and seed, when it chose the schedules.
    #[serde(default)]
    pub pct: Option<(u64, u32, u64)>,
    pub overlap: bool,
    #[serde(default)]
    pub requested: bool,
    /// Schedules were cut at states already explored (the counts are of a
    /// pruned search).
    #[serde(default)]
    pub prune: bool,
    pub shard: Option<Shard>,
    pub cells: serde_json::Value,
    pub explore: Vec<CellSearch>,
}

impl CellSearch {
    pub fn of(index: usize, s: &Scenario, e: &Explored, params: &[(String, u64)]) -> CellSearch {
        let r = e.searched.as_ref().ok();
        CellSearch {
            index,
            scenario: s.name.clone(),
            file: s.path.display().to_string(),
            policy: e.policy.name().into(),
            driver: s.driver.name().into(),
            inject_bits: s.inject,
            assertions: s.params.assertions,
            params: params.to_vec(),
            error: e.searched.as_ref().err().cloned(),
            schedules: r.map_or(0, |r| r.schedules),
            pruned: r.map_or(0, |r| r.pruned),
            infeasible: r.map_or(0, |r| r.infeasible),
            unmodelled: r.map_or(0, |r| r.unmodelled),
            unmodelled_first: r.and_then(|r| r.unmodelled_first.clone()),
            unmodelled_moves: r
                .and_then(|r| r.unmodelled_moves.as_deref().map(super::fork::encode)),
            states: r.map_or(Vec::new(), |r| {
                r.states.iter().map(|h| format!("{h:016x}")).collect()
            }),
            verdict: r.map_or(Vec::new(), |r| names(&r.verdict)),
            worst_window: r.map_or(0, |r| r.worst_window),
            findings: r.map_or(Vec::new(), |r| {
                r.findings
                    .iter()
                    .map(|f| FindingJson {
                        moves: super::fork::encode(&f.moves),
                        found: FindingRecord::of(f),
                    })
                    .collect()
            }),
            coverage: r.map_or(Coverage::default(), |r| r.coverage.clone()),
            timeline: e
                .timeline
                .as_ref()
                .map(|t| t.as_ref().map(names).map_err(Clone::clone)),
            pct: e.pct,
        }
    }

    /// The scenario as the cell explored it (its file loaded, the options
    /// that applied).
    pub fn scenario(&self) -> Result<Scenario, String> {
        let s = Scenario::load(Path::new(&self.file)).map_err(|e| e.to_string())?;
        for (name, v) in &self.params {
            let spec = crate::scenario::param_spec(name)
                .filter(|p| p.sweep)
                .ok_or_else(|| format!("unknown parameter '{name}'"))?;
            spec.check(*v)?;
        }
        let mut s = super::at_point(&s, &self.params);
        s.driver = self.driver.parse()?;
        s.inject = self.inject_bits;
        s.params.assertions = self.assertions;
        Ok(s)
    }

    /// The cell's search result, its findings' steps parsed against `s`.
    pub fn searched(&self, s: &Scenario) -> Result<Searched, String> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        let mut findings = Vec::new();
        for f in &self.findings {
            let moves = super::fork::decode(&f.moves)?;
            findings.push(f.found.clone().finding(moves, s)?);
        }
        let states = self
            .states
            .iter()
            .map(|h| u64::from_str_radix(h, 16).map_err(|_| format!("'{h}' is not a state hash")))
            .collect::<Result<BTreeSet<u64>, String>>()?;
        Ok(Searched {
            schedules: self.schedules,
            pruned: self.pruned,
            infeasible: self.infeasible,
            unmodelled: self.unmodelled,
            unmodelled_first: self.unmodelled_first.clone(),
            unmodelled_moves: self
                .unmodelled_moves
                .as_deref()
                .map(super::fork::decode)
                .transpose()?,
            distinct: states.len(),
            states,
            verdict: kinds(&self.verdict)?,
            worst_window: self.worst_window,
            findings,
            coverage: self.coverage.clone(),
        })
    }
}

/// Sum shards' results of one cell: every schedule is in one shard.
pub fn sum(parts: Vec<Searched>) -> Searched {
    let mut out = collect(Vec::new());
    for p in parts {
        out.schedules += p.schedules;
        out.pruned += p.pruned;
        out.infeasible += p.infeasible;
        out.unmodelled += p.unmodelled;
        // The first refusal in the order of moves, as one search finds it.
        if p.unmodelled_moves.is_some()
            && (out.unmodelled_moves.is_none() || p.unmodelled_moves < out.unmodelled_moves)
        {
            out.unmodelled_first = p.unmodelled_first;
            out.unmodelled_moves = p.unmodelled_moves;
        }
        out.states.extend(p.states);
        out.verdict.extend(p.verdict);
        out.worst_window = out.worst_window.max(p.worst_window);
        out.findings.extend(p.findings);
        out.coverage.add(&p.coverage);
    }
    out.distinct = out.states.len();
    sort_findings(&mut out.findings);
    out
}

/// A merged cell: the scenario loaded again and the whole space's result.
pub struct MergedCell {
    pub index: usize,
    pub scenario: Scenario,
    pub policy: Policy,
    pub searched: Result<Searched, String>,
    pub timeline: Option<Result<BTreeSet<Violation>, String>>,
    pub pct: Option<super::pct::Pct>,
    pub params: Vec<(String, u64)>,
}

/// What `--merge` read: the bound and the merged cells in cell order.
pub struct MergedExplore {
    pub bound: u32,
    /// The device accesses' stops (`--overlap`, `--requested`).
    pub rules: Rules,
    /// PCT's runs, depth and seed, when it chose the schedules.
    pub pct: Option<(u64, u32, u64)>,
    pub cells: Vec<MergedCell>,
}

/// The device flags of an exploration as its command line gives them, and
/// whether it cut schedules at states already explored.
fn flags(overlap: bool, requested: bool, prune: bool) -> String {
    let mut s = String::new();
    if overlap {
        s.push_str(" --overlap");
    }
    if requested {
        s.push_str(" --requested");
    }
    if prune {
        s.push_str(" (pruned)");
    }
    s
}

/// Read the JSON of every shard of one exploration and merge each cell.
/// Errors name the file: not explore's JSON, another version, shards of
/// different explorations (count, bound, cells), a shard twice or missing.
pub fn merge(files: &[PathBuf]) -> Result<MergedExplore, String> {
    #[derive(PartialEq)]
    struct Head {
        bound: u32,
        pct: Option<(u64, u32, u64)>,
        overlap: bool,
        requested: bool,
        prune: bool,
        n: usize,
    }
    let mut first: Option<(Head, &Path)> = None;
    let mut seen: BTreeMap<usize, &Path> = BTreeMap::new();
    let mut parts: BTreeMap<usize, Vec<CellSearch>> = BTreeMap::new();
    for path in files {
        let at = |m: String| format!("{}: {m}", path.display());
        let text = std::fs::read_to_string(path).map_err(|e| {
            at(format!(
                "cannot read it ({e}); give the files written by `shootdown explore --shard K/N --json FILE`"
            ))
        })?;
        let f: ExploreFile = serde_json::from_str(&text).map_err(|e| {
            at(format!(
                "not the JSON of `shootdown explore --json` ({e}); a sweep's JSON merges with `shootdown sweep --merge`"
            ))
        })?;
        if f.version != EXPLORE_JSON_VERSION {
            return Err(at(format!(
                "version {}, this build reads version {EXPLORE_JSON_VERSION}",
                f.version
            )));
        }
        let Some(shard) = f.shard else {
            return Err(at(
                "not a shard (written without --shard): nothing to merge it with".into(),
            ));
        };
        let head = Head {
            bound: f.bound,
            pct: f.pct,
            overlap: f.overlap,
            requested: f.requested,
            prune: f.prune,
            n: shard.n,
        };
        if let Some((g, other)) = &first {
            if *g != head {
                return Err(at(format!(
                    "shard {shard} with --bound {}{} but {} is of {} shards with --bound {}{}: merge the shards of one exploration",
                    f.bound,
                    flags(f.overlap, f.requested, f.prune),
                    other.display(),
                    g.n,
                    g.bound,
                    flags(g.overlap, g.requested, g.prune),
                )));
            }
        }
        if let Some(other) = seen.insert(shard.k, path) {
            return Err(at(format!(
                "shard {shard} is also {}: give each shard once",
                other.display()
            )));
        }
        let ExploreFile { explore, .. } = f;
        for c in explore {
            parts.entry(c.index).or_default().push(c);
        }
        first.get_or_insert((head, path));
    }
    let Some((f, _)) = first else {
        return Err("no files to merge".into());
    };
    let n = f.n;
    let missing: Vec<String> = (1..=n)
        .filter(|k| !seen.contains_key(k))
        .map(|k| k.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "shard {} of {n} not given: merge every shard of the exploration (each written by `shootdown explore --shard K/{n} --json FILE`)",
            missing.join(", ")
        ));
    }
    let mut cells = Vec::new();
    for (index, group) in parts {
        if group.len() != n {
            return Err(format!(
                "cell {index} is in {} of the {n} shards: merge the shards of one exploration (the same scenarios and options)",
                group.len()
            ));
        }
        let c0 = &group[0];
        if group.iter().any(|c| {
            (&c.file, &c.policy, &c.driver, c.inject_bits, c.assertions)
                != (
                    &c0.file,
                    &c0.policy,
                    &c0.driver,
                    c0.inject_bits,
                    c0.assertions,
                )
        }) {
            return Err(format!(
                "cell {index} is not the same (scenario, policy, driver, bugs) in every shard: merge the shards of one exploration"
            ));
        }
        let scenario = c0.scenario().map_err(|e| format!("cell {index}: {e}"))?;
        let policy: Policy = c0.policy.parse()?;
        let timeline = c0
            .timeline
            .as_ref()
            .map(|t| match t {
                Ok(v) => kinds(v).map(Ok),
                Err(m) => Ok(Err(m.clone())),
            })
            .transpose()?;
        let searched = match group.iter().find_map(|c| c.error.clone()) {
            Some(e) => Err(e),
            None => Ok(sum(group
                .iter()
                .map(|c| c.searched(&scenario))
                .collect::<Result<Vec<_>, String>>()
                .map_err(|e| format!("cell {index}: {e}"))?)),
        };
        cells.push(MergedCell {
            index,
            pct: c0.pct,
            params: c0.params.clone(),
            scenario,
            policy,
            searched,
            timeline,
        });
    }
    Ok(MergedExplore {
        bound: f.bound,
        rules: Rules {
            overlap: f.overlap,
            requested: f.requested,
            prune: f.prune,
        },
        pct: f.pct,
        cells,
    })
}
