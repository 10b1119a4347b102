//! `shootdown explore`: the schedules nobody wrote down. A scenario's
//! programs (its `programs:`, or the actions its timeline gives each
//! thread) are played in every interleaving of their moves with at most
//! `--bound` preemptions ([`play`], [`search`]); each distinct thing found
//! (a verdict, an assertion, the watchdog) is shrunk into an ordinary
//! scenario with a timeline that `shootdown scenario` replays ([`shrink`]);
//! a space searched to its end says so, with its bound: "clean" is a claim
//! about every schedule in it, not about one timeline.

pub mod estimate;
pub mod fork;
pub mod matrix;
pub mod pct;
pub mod play;
pub mod search;
pub mod shard;
pub mod shrink;
pub mod visited;

use crate::checker::Violation;
use crate::iommu::DriverKind;
use crate::mm::Policy;
use crate::scenario::Scenario;
use crate::sweep::{
    default_jobs, exit_status, expand, parse_driver, parse_inject, render_table_with, Cell,
    Outcome, Shard,
};
use clap::Args;
use play::Rules;
use search::{Found, Searched};
use std::collections::BTreeSet;
use std::fmt::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct ExploreArgs {
    /// Scenario files or names (as for `sweep`); default: every bundled
    /// scenario in scenarios/.
    pub patterns: Vec<String>,
    /// Policies to explore, comma-separated (default: every one the
    /// scenario expects something of, else all four).
    #[arg(long, value_delimiter = ',', value_parser = |s: &str| s.parse::<Policy>())]
    pub notify: Vec<Policy>,
    /// Explore every scenario with this IOMMU driver model; several,
    /// comma-separated, or `all`: each scenario once per driver, a row each.
    #[arg(long, value_parser = matrix::parse_drivers, value_name = "DRIVER[,DRIVER...]|all")]
    pub driver: Option<matrix::Drivers>,
    /// Inject RTL bugs, comma-separated (`shootdown mutants --list`).
    #[arg(long, value_parser = parse_inject, value_name = "BUG[,BUG...]")]
    pub inject: Option<u16>,
    /// Explore on this arch: x86-64 (the bundled IOMMU) or riscv-sv39 / riscv-sv48 (the RISC-V
    /// IOMMU design, docs/socket-riscv.md; its states are digested and cut as the bundled
    /// IOMMU's are, unless its build keeps state on the heap).
    #[arg(long, value_name = "ARCH")]
    pub arch: Option<crate::scenario::Arch>,
    /// Explore with the bundled kernel paths as this release has them (`4.19`, `5.16`;
    /// docs/paths.md, "Kernel releases").
    #[arg(long, value_name = "RELEASE", value_parser = |s: &str| s.parse::<crate::mm::lang::Release>())]
    pub kernel: Option<crate::mm::lang::Release>,
    /// At most this many preemptions per schedule (a move away from a CPU
    /// thread inside a kernel path that could go on).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(0..=8))]
    pub bound: u32,
    /// Device accesses may also stop at `translated` and finish later,
    /// while other threads move (accesses in flight at once).
    #[arg(long)]
    pub overlap: bool,
    /// Device accesses may also stop at `requested` (taken by the device,
    /// before its translation) and finish later: what others do lands
    /// while the Translation Request travels, the IOMMU walks, the device
    /// reads. A bigger space than --overlap's.
    #[arg(long)]
    pub requested: bool,
    /// Stop with an error past this many schedules per (scenario, policy).
    #[arg(long, default_value_t = 200_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub max_schedules: u64,
    /// Worker threads (default: one per core); the output is the same.
    #[arg(long, short, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub jobs: Option<u64>,
    /// Where to write the shrunk scenarios of what is found.
    #[arg(long, default_value = "explore")]
    pub out: PathBuf,
    /// Also write the cells (as `sweep --json` does) to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Do not check the RTL's SystemVerilog assertions.
    #[arg(long)]
    pub no_assert: bool,
    /// Replay every schedule from the start in this process instead of
    /// sharing prefixes by forking worker processes (slower; the same
    /// result).
    #[arg(long)]
    pub stateless: bool,
    /// Play every schedule to its end: do not cut one where it reaches a
    /// state that an earlier schedule of its subtree already explored with
    /// no more preemptions spent (the default cuts those: the verdicts and
    /// findings are the same, fewer schedules are played; --stateless
    /// never cuts).
    #[arg(long)]
    pub no_prune: bool,
    /// Do not explore: estimate how many schedules each cell has, from this
    /// many random walks of its tree (Knuth's estimator; a few hundred
    /// walks give the count within a standard error or two).
    #[arg(long, value_name = "WALKS", value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub estimate: Option<u64>,
    /// Also print the functional coverage summed over every schedule: the
    /// bins each cell hit and the RTL's cover groups with their holes;
    /// --json cells carry the summed counts.
    #[arg(long)]
    pub coverage: bool,
    /// Instead of every schedule within --bound, RUNS random schedules by
    /// PCT (probabilistic concurrency testing): random thread priorities
    /// and --depth - 1 random points where the running thread drops; each
    /// run finds a bug of that depth with a probability the output gives.
    #[arg(long, value_name = "RUNS", value_parser = clap::value_parser!(u64).range(1..=10_000_000), conflicts_with = "stateless")]
    pub pct: Option<u64>,
    /// PCT: the bug depth to aim at (ordering constraints: 1 + the change
    /// points).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=8), requires = "pct")]
    pub depth: u32,
    /// PCT: the seed; the runs are the same for a seed whatever --jobs and
    /// --shard.
    #[arg(long, default_value_t = 0, requires = "pct")]
    pub seed: u64,
    /// Explore at every combination of these runtime parameters too (the
    /// RTL's latencies, the ATC and IOTLB in use, ...: `sweep --param`'s
    /// names and ranges), one cell each, named after the values.
    #[arg(long = "param", value_parser = crate::sweep::space::parse_param, value_name = "NAME=V1,V2")]
    pub param: Vec<crate::sweep::space::ParamRange>,
    /// Search only shard K of N of every cell's schedules (README,
    /// "Exploring on a cluster"); write it with --json, then put the shards
    /// together with --merge. Findings are shrunk by the merge.
    #[arg(long, value_name = "K/N", conflicts_with = "merge")]
    pub shard: Option<Shard>,
    /// Read the --json files of every shard of one exploration (no search),
    /// sum them into the whole space's result, shrink its findings into
    /// --out, print what one unsharded run prints (--json: and write it).
    #[arg(long, value_name = "FILE", num_args = 1.., conflicts_with_all = ["patterns", "notify", "driver", "inject", "bound", "overlap", "requested", "jobs", "no_assert", "stateless", "pct", "param"])]
    pub merge: Vec<PathBuf>,
}

/// How the search runs: in this process, replaying each schedule from the
/// start, or in worker processes that fork at branch points (`exe` is this
/// program).
#[derive(Clone, Debug)]
pub enum Engine {
    Stateless,
    Fork { exe: PathBuf },
}

/// The command line of a worker process (`shootdown explore-worker`).
#[derive(Args, Debug)]
pub struct WorkerArgs {
    pub file: PathBuf,
    #[arg(long, value_parser = |s: &str| s.parse::<Policy>())]
    pub policy: Policy,
    #[arg(long)]
    pub bound: u32,
    #[arg(long, value_parser = parse_driver)]
    pub driver: DriverKind,
    #[arg(long)]
    pub inject_bits: u16,
    #[arg(long, default_value = "x86-64")]
    pub arch: crate::scenario::Arch,
    #[arg(long, value_parser = |s: &str| s.parse::<crate::mm::lang::Release>())]
    pub kernel: Option<crate::mm::lang::Release>,
    #[arg(long, action = clap::ArgAction::Set)]
    pub assertions: bool,
    #[arg(long)]
    pub overlap: bool,
    #[arg(long)]
    pub requested: bool,
    #[arg(long)]
    pub prune: bool,
    /// A parameter's value, NAME=V (every one, as the coordinator has it).
    #[arg(long = "set", value_name = "NAME=V")]
    pub set: Vec<String>,
}

/// `shootdown explore-worker`: explore the subtrees the coordinator sends.
pub fn worker_main(a: WorkerArgs) -> ExitCode {
    let mut s = match Scenario::load(&a.file) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("shootdown explore-worker: {e}");
            return ExitCode::from(2);
        }
    };
    for kv in &a.set {
        let spec = kv
            .split_once('=')
            .and_then(|(k, v)| Some((crate::scenario::param_spec(k)?, v)));
        let value = spec.and_then(|(p, v)| Some((p, crate::scenario::parse_int(v)?)));
        match value.map(|(p, v)| p.check(v).map(|v| (p.set)(&mut s.params, v))) {
            Some(Ok(())) => {}
            _ => {
                eprintln!("shootdown explore-worker: --set {kv}: not a parameter and value");
                return ExitCode::from(2);
            }
        }
    }
    s.driver = a.driver;
    s = match s.with_arch(a.arch) {
        Ok((s, _)) => s,
        Err(e) => {
            eprintln!("shootdown explore-worker: {e}");
            return ExitCode::from(2);
        }
    };
    s.inject = a.inject_bits;
    s.params.assertions = a.assertions;
    if let Some(k) = a.kernel {
        s = s.with_kernel(k);
    }
    fork::worker(
        &s,
        a.policy,
        Rules {
            overlap: a.overlap,
            requested: a.requested,
            prune: a.prune,
        },
        a.bound,
    );
    ExitCode::SUCCESS
}

/// One explored (scenario, policy): what the search saw and what it wrote.
pub struct Explored {
    pub scenario: String,
    pub file: PathBuf,
    pub policy: Policy,
    pub bound: u32,
    /// Where device accesses may stop (part of what "all" covers).
    pub rules: Rules,
    /// The shard searched (None: every schedule).
    pub shard: Option<Shard>,
    /// Searched by PCT (random schedules), not every one within the bound.
    pub pct: Option<pct::Pct>,
    pub searched: Result<Searched, String>,
    /// A timeline scenario's own timeline (one schedule of its programs,
    /// with steps that may run several threads at once): its verdict.
    pub timeline: Option<Result<BTreeSet<Violation>, String>>,
    /// Per distinct finding: its name, the shrunk file or why not.
    pub written: Vec<(String, Result<PathBuf, String>)>,
}

/// Explore one scenario under one policy (one shard of its schedules, or
/// all) and write what it finds (with every schedule searched only: a
/// shard's findings are shrunk by the merge, which knows the first).
#[allow(clippy::too_many_arguments)]
pub fn explore_one(
    s: &Scenario,
    policy: Policy,
    rules: Rules,
    bound: u32,
    max: usize,
    jobs: usize,
    engine: &Engine,
    out: &std::path::Path,
    shard: Option<Shard>,
) -> Explored {
    explore_with(
        s,
        policy,
        rules,
        Strategy::Exhaustive { bound, max },
        jobs,
        engine,
        out,
        shard,
    )
}

/// How the schedules are chosen.
#[derive(Clone, Copy, Debug)]
pub enum Strategy {
    /// Every schedule with at most `bound` preemptions; an error past `max`.
    Exhaustive { bound: u32, max: usize },
    /// `runs` random schedules by PCT (played from the start each).
    Pct { runs: u64, depth: u32, seed: u64 },
}

/// [`explore_one`] with the strategy given.
#[allow(clippy::too_many_arguments)]
pub fn explore_with(
    s: &Scenario,
    policy: Policy,
    rules: Rules,
    strategy: Strategy,
    jobs: usize,
    engine: &Engine,
    out: &std::path::Path,
    shard: Option<Shard>,
) -> Explored {
    let (bound, searched, pct) = match (strategy, engine) {
        (Strategy::Pct { runs, depth, seed }, _) => {
            let (info, r) = pct::search(s, policy, rules, runs, depth, seed, jobs, shard);
            (0, Ok(r), Some(info))
        }
        (Strategy::Exhaustive { bound, max }, Engine::Stateless) => (
            bound,
            search::exhaustive_shard(s, policy, rules, bound, max, jobs, shard),
            None,
        ),
        (Strategy::Exhaustive { bound, max }, Engine::Fork { exe }) => (
            bound,
            fork::exhaustive(s, policy, rules, bound, max, jobs, exe, shard),
            None,
        ),
    };
    let written = match (&searched, shard) {
        (Ok(r), None) => write_findings(s, policy, &how(bound, pct.as_ref()), r, out),
        _ => Vec::new(),
    };
    let timeline = (!s.timeline.is_empty()).then(|| {
        let opts = crate::sim::RunOptions::policy(policy);
        crate::sim::run(s, &opts)
            .map(|r| r.verdict)
            .map_err(|e| e.to_string())
    });
    Explored {
        scenario: s.name.clone(),
        file: s.path.clone(),
        policy,
        bound,
        rules,
        shard,
        pct,
        searched,
        timeline,
        written,
    }
}

/// How the schedules were searched, as the shrunk scenarios' `about` says.
fn how(bound: u32, pct: Option<&pct::Pct>) -> String {
    match pct {
        None => format!("every schedule with at most {bound} preemption(s) searched"),
        Some(p) => format!(
            "{} random schedules by PCT, depth {}, seed {}",
            p.runs, p.depth, p.seed
        ),
    }
}

/// Where device accesses may stop besides their end, as the claim says it.
fn stops_text(rules: Rules) -> &'static str {
    match (rules.overlap, rules.requested) {
        (false, false) => "",
        (true, false) => ", device accesses also stopped at translated",
        (false, true) => ", device accesses also stopped at requested",
        (true, true) => ", device accesses also stopped at requested or translated",
    }
}

/// Shrink the first finding of each kind (the same assertion at other
/// cycles is the same finding) into a scenario under `out`: per kind, its
/// name and the file written, or why not.
pub fn write_findings(
    s: &Scenario,
    policy: Policy,
    how: &str,
    r: &Searched,
    out: &std::path::Path,
) -> Vec<(String, Result<PathBuf, String>)> {
    let mut written = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for f in &r.findings {
        if seen.contains(&f.what.name()) {
            continue;
        }
        seen.push(f.what.name());
        let tag: String = f
            .what
            .name()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let name = format!("{}-{policy}-{tag}", s.name);
        let name = crate::scenario::fit_name(&name);
        let file = out.join(format!("{name}.yaml"));
        let about = format!(
            "Found by shootdown explore in {} under --notify {policy} ({how}): a schedule of its programs with {} preemption(s) and {} moves, shrunk and replayed.\nReplay: shootdown scenario {}",
            s.path.display(),
            f.preemptions,
            f.moves.len(),
            file.display()
        );
        let res = shrink::shrink(s, policy, f, &name, &about, &file).and_then(|sh| {
            std::fs::create_dir_all(out)
                .and_then(|_| std::fs::write(&file, &sh.yaml))
                .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
            Ok(file.clone())
        });
        written.push((f.what.name(), res));
    }
    written
}

/// The explored cell as a sweep cell (verdict union, worst window), for the
/// table and the JSON.
fn cell(index: usize, s: &Scenario, e: &Explored, coverage: bool) -> Cell {
    let result = match &e.searched {
        Err(m) => Err(m.clone()),
        Ok(r) => {
            let stopped: Vec<String> = r
                .findings
                .iter()
                .filter(|f| matches!(f.what, Found::Stopped(_)))
                .map(|f| f.what.name())
                .collect();
            let mut verdict = r.verdict.clone();
            let mut stopped = stopped;
            match &e.timeline {
                Some(Ok(v)) => verdict.extend(v.iter().copied()),
                Some(Err(m)) => stopped.push(format!("its timeline: {m}")),
                None => {}
            }
            if let Some(first) = stopped.first() {
                Err(format!(
                    "{} schedules stop the run ({first}, ...)",
                    stopped.len()
                ))
            } else {
                Ok(Outcome {
                    as_expected: s.expected(e.policy).is_none_or(|x| *x == verdict),
                    verdict,
                    worst_window: r.worst_window,
                    flushes: 0,
                    commands: 0,
                    iotinval: 0,
                    ats_inval: 0,
                    fences: 0,
                    spin_cycles: 0,
                    cycles: 0,
                    coverage: coverage.then(|| r.coverage.clone()),
                })
            }
        }
    };
    Cell {
        index,
        scenario: s.name.clone(),
        file: s.path.display().to_string(),
        policy: e.policy,
        expected: s.expected(e.policy).cloned(),
        result,
        wall_ms: None,
    }
}

/// The lines that say what one explored cell saw.
pub fn describe(e: &Explored) -> String {
    let mut o = String::new();
    let head = format!("{} --notify {}", e.scenario, e.policy);
    match &e.searched {
        Err(m) => {
            let _ = writeln!(o, "{head}: {m}");
        }
        Ok(r) => {
            let plural = if e.bound == 1 { "" } else { "s" };
            let found = if r.findings.is_empty() {
                "0 violations".to_string()
            } else {
                format!("{} finding", r.findings.len())
                    + if r.findings.len() == 1 { "" } else { "s" }
            };
            let stops = stops_text(e.rules);
            // A cut schedule stands for every schedule through the state
            // it reached: the space is covered, not counted.
            let (all, the, cut) = match r.pruned {
                0 => (
                    format!("all {} schedules", r.schedules),
                    format!("the {} schedules", r.schedules),
                    String::new(),
                ),
                n => (
                    "the schedules".to_string(),
                    "the schedules".to_string(),
                    format!(
                        ", every one explored: {} played to the end, {n} cut where they reached a state already explored",
                        r.schedules
                    ),
                ),
            };
            let space = match (e.shard, &e.pct) {
                (None, None) => format!(
                    "in {all} with at most {} preemption{plural}{stops}{cut}",
                    e.bound
                ),
                (Some(sh), None) => format!(
                    "in {the} of shard {sh} with at most {} preemption{plural}{stops}{cut}",
                    e.bound
                ),
                (sh, Some(p)) => format!(
                    "in {} random schedules{} (PCT, depth {}, seed {})",
                    r.schedules,
                    sh.map_or(String::new(), |sh| format!(" of shard {sh}")),
                    p.depth,
                    p.seed
                ),
            };
            let _ = writeln!(
                o,
                "{head}: {found} {space} ({} distinct end states, {} infeasible prefixes{})",
                r.distinct,
                r.infeasible,
                if r.unmodelled > 0 {
                    format!(", {} that reach what the model does not do", r.unmodelled)
                } else {
                    String::new()
                }
            );
            if let (Some(p), None) = (&e.pct, e.shard) {
                let _ = writeln!(
                    o,
                    "  PCT: {} threads, {} moves in the first schedule: each run hits a given bug of depth {} with probability >= 1/({}*{}^{}) = {:.2e}; all {} runs miss it with probability <= {:.2e}",
                    p.threads,
                    p.steps,
                    p.depth,
                    p.threads,
                    p.steps,
                    p.depth - 1,
                    p.per_run(),
                    p.runs,
                    p.miss()
                );
            }
            if let Some(m) = &r.unmodelled_first {
                let _ = writeln!(o, "  not judged ({} schedules), e.g.: {m}", r.unmodelled);
            }
            if let Some(t) = &e.timeline {
                let _ = writeln!(
                    o,
                    "  and its timeline (one more schedule): {}",
                    match t {
                        Ok(v) => crate::sweep::verdict_text(v),
                        Err(m) => format!("stops: {m}"),
                    }
                );
            }
            if e.shard.is_some() {
                let kinds: BTreeSet<String> = r.findings.iter().map(|f| f.what.name()).collect();
                for name in kinds {
                    let n = r.findings.iter().filter(|f| f.what.name() == name).count();
                    let _ = writeln!(
                        o,
                        "  {name}: {n} schedule(s) in this shard; shrunk by `shootdown explore --merge`"
                    );
                }
            }
            for (name, w) in &e.written {
                let n = r.findings.iter().filter(|f| f.what.name() == *name).count();
                let min = r
                    .findings
                    .iter()
                    .filter(|f| f.what.name() == *name)
                    .map(|f| f.preemptions)
                    .min()
                    .unwrap_or(0);
                match w {
                    Ok(f) => {
                        let _ = writeln!(
                            o,
                            "  {name}: {n} schedule(s), the first with {min} preemption(s); replay: shootdown scenario {}",
                            f.display()
                        );
                    }
                    Err(m) => {
                        let _ = writeln!(o, "  {name}: {n} schedule(s); not written: {m}");
                    }
                }
            }
        }
    }
    o
}

/// The `explore` subcommand.
pub fn main(args: ExploreArgs) -> ExitCode {
    let fail = |m: &dyn std::fmt::Display| {
        eprintln!("shootdown explore: {m}");
        ExitCode::from(2)
    };
    if !args.merge.is_empty() {
        return merge_main(&args);
    }
    let files = match expand(&args.patterns) {
        Ok(f) => f,
        Err(e) => return fail(&e),
    };
    let jobs = args.jobs.map_or_else(default_jobs, |j| j as usize);
    let rules = Rules {
        overlap: args.overlap,
        requested: args.requested,
        prune: !args.no_prune && !args.stateless && args.pct.is_none(),
    };
    let engine = if args.stateless {
        Engine::Stateless
    } else {
        match std::env::current_exe() {
            Ok(exe) => Engine::Fork { exe },
            Err(e) => return fail(&format!("cannot find this program to start workers: {e}")),
        }
    };
    if let Err(m) = crate::sweep::space::check_points(&args.param) {
        return fail(&m);
    }
    let points = crate::sweep::space::combinations(&args.param);
    let strategy = match args.pct {
        Some(runs) => Strategy::Pct {
            runs,
            depth: args.depth,
            seed: args.seed,
        },
        None => Strategy::Exhaustive {
            bound: args.bound,
            max: args.max_schedules as usize,
        },
    };
    let mut cells = Vec::new();
    let mut searches = Vec::new();
    let mut costs = Vec::new();
    let drivers = matrix::drivers(args.driver.as_ref());
    let several = drivers.len() > 1;
    for (f, driver) in files
        .iter()
        .flat_map(|f| drivers.iter().map(move |d| (f, *d)))
    {
        let mut base = match Scenario::load(f) {
            Ok(s) => s,
            Err(e) => return fail(&e),
        };
        if let Some(d) = driver {
            base.driver = d;
        }
        base.name = matrix::name_with(&base.name, driver, several);
        if let Some(i) = args.inject {
            base.inject = i;
        }
        if let Some(a) = args.arch {
            base = match base.with_arch(a) {
                Ok((s, _)) => s,
                Err(e) => return fail(&e),
            };
        }
        if let Some(k) = args.kernel {
            base = base.with_kernel(k);
        }
        base.params.assertions &= !args.no_assert;
        let policies: Vec<Policy> = if !args.notify.is_empty() {
            args.notify.clone()
        } else if base.expect.is_empty() {
            Policy::ALL.to_vec()
        } else {
            Policy::ALL
                .into_iter()
                .filter(|p| base.expected(*p).is_some())
                .collect()
        };
        for point in &points {
            let s = at_point(&base, point);
            for &p in &policies {
                let t0 = std::time::Instant::now();
                if let Some(walks) = args.estimate {
                    let e = estimate::estimate(&s, p, rules, args.bound, walks as usize, 1);
                    let took = t0.elapsed();
                    println!("{}", estimate::describe(&s.name, p, args.bound, &e, took));
                    continue;
                }
                let e = explore_with(&s, p, rules, strategy, jobs, &engine, &args.out, args.shard);
                print!("{}", describe(&e));
                costs.push(matrix::Cost::of(&e, t0.elapsed().as_secs_f64()));
                searches.push(shard::CellSearch::of(cells.len(), &s, &e, point));
                let mut c = cell(cells.len(), &s, &e, args.coverage);
                matrix::label_cell(&mut c, driver, several);
                cells.push(c);
            }
        }
    }
    if args.estimate.is_some() {
        return ExitCode::SUCCESS;
    }
    let pct = args.pct.map(|runs| (runs, args.depth, args.seed));
    report(
        &args,
        &cells,
        &costs,
        searches,
        (args.bound, rules),
        pct,
        args.shard,
    )
}

/// `s` with the parameters of `point` set, named after them (a name a
/// scenario may have, so a shrunk finding carries it).
pub fn at_point(s: &Scenario, point: &[(String, u64)]) -> Scenario {
    let mut s = s.clone();
    for (name, v) in point {
        crate::sweep::space::apply(&mut s.params, name, *v);
        let tag: String = name.chars().filter(|c| *c != '_').collect();
        s.name = format!("{}-{tag}{v}", s.name);
    }
    s.name = crate::scenario::fit_name(&s.name);
    s
}

/// `--merge`: the shards' files summed, the findings shrunk, the output of
/// one unsharded run.
fn merge_main(args: &ExploreArgs) -> ExitCode {
    let merged = match shard::merge(&args.merge) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("shootdown explore: {e}");
            return ExitCode::from(2);
        }
    };
    let mut cells = Vec::new();
    let mut searches = Vec::new();
    for c in merged.cells {
        let s = &c.scenario;
        let written = match &c.searched {
            Ok(r) => write_findings(
                s,
                c.policy,
                &how(merged.bound, c.pct.as_ref()),
                r,
                &args.out,
            ),
            Err(_) => Vec::new(),
        };
        let e = Explored {
            scenario: s.name.clone(),
            file: s.path.clone(),
            policy: c.policy,
            bound: merged.bound,
            rules: merged.rules,
            shard: None,
            pct: c.pct,
            searched: c.searched,
            timeline: c.timeline,
            written,
        };
        print!("{}", describe(&e));
        searches.push(shard::CellSearch::of(c.index, s, &e, &c.params));
        cells.push(cell(c.index, s, &e, args.coverage));
    }
    let pct = merged.pct;
    report(
        args,
        &cells,
        &[],
        searches,
        (merged.bound, merged.rules),
        pct,
        None,
    )
}

/// The table (and coverage) of `cells`, the JSON, the exit status: a
/// shard's cells are partial, so only a shard that failed is an error.
fn report(
    args: &ExploreArgs,
    cells: &[Cell],
    costs: &[matrix::Cost],
    searches: Vec<shard::CellSearch>,
    (bound, rules): (u32, Rules),
    pct: Option<(u64, u32, u64)>,
    shard: Option<Shard>,
) -> ExitCode {
    println!();
    print!("{}", render_table_with(cells, false, false));
    // Wall times vary from run to run: on stderr, so that the output is
    // the same for the same inputs (and a merge's is the unsharded run's).
    if !costs.is_empty() {
        eprintln!();
        eprint!("{}", matrix::render_costs(costs, bound, pct));
    }
    if args.coverage {
        print!("{}", crate::sweep::render_coverage(cells));
    }
    if let Some(sh) = shard {
        println!(
            "(shard {sh}: the verdicts of its schedules only; merge every shard with --merge)"
        );
    }
    if let Some(path) = &args.json {
        let cells_json = crate::sweep::cells_value(cells);
        let file = shard::ExploreFile {
            version: shard::EXPLORE_JSON_VERSION,
            bound,
            pct,
            overlap: rules.overlap,
            requested: rules.requested,
            prune: rules.prune,
            shard,
            cells: cells_json,
            explore: searches,
        };
        let mut text = serde_json::to_string_pretty(&file).unwrap_or_default();
        text.push('\n');
        if let Err(e) = std::fs::write(path, text) {
            eprintln!("shootdown explore: {}: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    if shard.is_some() {
        return ExitCode::from(if cells.iter().any(|c| c.result.is_err()) {
            1
        } else {
            0
        });
    }
    ExitCode::from(exit_status(cells))
}
