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
pub mod play;
pub mod search;
pub mod shrink;

use crate::checker::Violation;
use crate::iommu::DriverKind;
use crate::mm::Policy;
use crate::scenario::Scenario;
use crate::sweep::{
    default_jobs, exit_status, expand, parse_driver, parse_inject, render_table_with, to_json,
    Cell, Outcome,
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
    /// At most this many preemptions per schedule (a move away from a CPU
    /// thread inside a kernel path that could go on).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(0..=8))]
    pub bound: u32,
    /// Device accesses may also stop at `translated` and finish later,
    /// while other threads move (accesses in flight at once).
    #[arg(long)]
    pub overlap: bool,
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
    #[arg(long, action = clap::ArgAction::Set)]
    pub assertions: bool,
    #[arg(long)]
    pub overlap: bool,
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
    s.driver = a.driver;
    s.inject = a.inject_bits;
    s.params.assertions = a.assertions;
    fork::worker(&s, a.policy, Rules { overlap: a.overlap }, a.bound);
    ExitCode::SUCCESS
}

/// One explored (scenario, policy): what the search saw and what it wrote.
pub struct Explored {
    pub scenario: String,
    pub file: PathBuf,
    pub policy: Policy,
    pub bound: u32,
    pub searched: Result<Searched, String>,
    /// A timeline scenario's own timeline (one schedule of its programs,
    /// with steps that may run several threads at once): its verdict.
    pub timeline: Option<Result<BTreeSet<Violation>, String>>,
    /// Per distinct finding: its name, the shrunk file or why not.
    pub written: Vec<(String, Result<PathBuf, String>)>,
}

/// Explore one scenario under one policy and write what it finds.
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
) -> Explored {
    let searched = match engine {
        Engine::Stateless => search::exhaustive(s, policy, rules, bound, max, jobs),
        Engine::Fork { exe } => fork::exhaustive(s, policy, rules, bound, max, jobs, exe),
    };
    let mut written = Vec::new();
    if let Ok(r) = &searched {
        // One scenario per kind of finding (the same assertion at other
        // cycles is the same finding).
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
            let name: String = name.chars().take(crate::scenario::MAX_NAME).collect();
            let file = out.join(format!("{name}.yaml"));
            let about = format!(
                "Found by shootdown explore in {} under --notify {policy} (every schedule with at most {bound} preemption(s) searched): a schedule of its programs with {} preemption(s) and {} moves, shrunk and replayed.\nReplay: shootdown scenario {}",
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
    }
    let timeline = (!s.timeline.is_empty()).then(|| {
        let opts = crate::sim::RunOptions {
            policy,
            waves: None,
        };
        crate::sim::run(s, &opts)
            .map(|r| r.verdict)
            .map_err(|e| e.to_string())
    });
    Explored {
        scenario: s.name.clone(),
        file: s.path.clone(),
        policy,
        bound,
        searched,
        timeline,
        written,
    }
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
            let _ = writeln!(
                o,
                "{head}: {} in all {} schedules with at most {} preemption{plural} ({} distinct end states, {} infeasible prefixes{})",
                if r.findings.is_empty() {
                    "0 violations".to_string()
                } else {
                    format!("{} finding", r.findings.len())
                        + if r.findings.len() == 1 { "" } else { "s" }
                },
                r.schedules,
                e.bound,
                r.distinct,
                r.infeasible,
                if r.unmodelled > 0 {
                    format!(", {} that reach what the model does not do", r.unmodelled)
                } else {
                    String::new()
                }
            );
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
    let files = match expand(&args.patterns) {
        Ok(f) => f,
        Err(e) => return fail(&e),
    };
    let jobs = args.jobs.map_or_else(default_jobs, |j| j as usize);
    let rules = Rules {
        overlap: args.overlap,
    };
    let engine = if args.stateless {
        Engine::Stateless
    } else {
        match std::env::current_exe() {
            Ok(exe) => Engine::Fork { exe },
            Err(e) => return fail(&format!("cannot find this program to start workers: {e}")),
        }
    };
    let mut cells = Vec::new();
    let mut costs = Vec::new();
    let drivers = matrix::drivers(args.driver.as_ref());
    let several = drivers.len() > 1;
    for (f, driver) in files
        .iter()
        .flat_map(|f| drivers.iter().map(move |d| (f, *d)))
    {
        let mut s = match Scenario::load(f) {
            Ok(s) => s,
            Err(e) => return fail(&e),
        };
        if let Some(d) = driver {
            s.driver = d;
        }
        s.name = matrix::name_with(&s.name, driver, several);
        if let Some(i) = args.inject {
            s.inject = i;
        }
        s.params.assertions &= !args.no_assert;
        let policies: Vec<Policy> = if !args.notify.is_empty() {
            args.notify.clone()
        } else if s.expect.is_empty() {
            Policy::ALL.to_vec()
        } else {
            Policy::ALL
                .into_iter()
                .filter(|p| s.expected(*p).is_some())
                .collect()
        };
        for p in policies {
            let t0 = std::time::Instant::now();
            if let Some(walks) = args.estimate {
                let e = estimate::estimate(&s, p, rules, args.bound, walks as usize, 1);
                println!(
                    "{}",
                    estimate::describe(&s.name, p, args.bound, &e, t0.elapsed())
                );
                continue;
            }
            let e = explore_one(
                &s,
                p,
                rules,
                args.bound,
                args.max_schedules as usize,
                jobs,
                &engine,
                &args.out,
            );
            print!("{}", describe(&e));
            costs.push(matrix::Cost::of(&e, t0.elapsed().as_secs_f64()));
            let mut c = cell(cells.len(), &s, &e, args.coverage);
            matrix::label_cell(&mut c, driver, several);
            cells.push(c);
        }
    }
    if args.estimate.is_some() {
        return ExitCode::SUCCESS;
    }
    println!();
    print!("{}", render_table_with(&cells, false, false));
    println!();
    print!("{}", matrix::render_costs(&costs, args.bound));
    if args.coverage {
        print!("{}", crate::sweep::render_coverage(&cells));
    }
    if let Some(path) = &args.json {
        if let Err(e) = std::fs::write(path, to_json(&cells, None)) {
            return fail(&format!("{}: {e}", path.display()));
        }
    }
    ExitCode::from(exit_status(&cells))
}
