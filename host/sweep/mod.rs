//! `shootdown sweep`: every (scenario, policy) cell, in parallel, as one
//! table of verdicts and worst stale windows plus the cost of each policy.
//!
//! Cells are numbered in a fixed order (scenario files sorted by file name,
//! then policies in [`Policy::ALL`] order); workers take the next cell from
//! a shared counter, and the results are put back in cell order, so the
//! table and the JSON are the same whatever `--jobs` is. Each cell is an
//! independent deterministic simulation with its own Verilated model.
//! `--shard K/N` runs the cells whose number `i` has `i % N == K-1`;
//! `--merge` puts shard JSONs back together.

mod cover;
mod json;
mod select;
pub mod space;
mod table;

pub use cover::render_coverage;
pub use json::{cells_value, from_json, merge, to_json, Merged, SweepFile, JSON_VERSION};
pub use select::{expand, glob_match, resolve, scenarios_dir};
pub(crate) use table::columns;
pub use table::{render_table, render_table_with, totals, Totals};

use crate::checker::{Cache, Violation, Window};
use crate::iommu::DriverKind;
use crate::mm::Policy;
use crate::scenario::Scenario;
use crate::sim::{run, RunOptions};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

/// What a finished run of one cell gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The violation kinds found; empty: clean.
    pub verdict: BTreeSet<Violation>,
    /// The verdict equals the scenario's `expect` for this policy (true when it expects nothing).
    pub as_expected: bool,
    /// The longest stale-translation window a cache (IOTLB or ATC) held, in
    /// cycles (0: none). Translations in flight are left out: not yet
    /// cached, and a correct device discards one that an invalidation
    /// overtook.
    pub worst_window: u64,
    /// Secondary-TLB flushes that reached the IOMMU driver.
    pub flushes: u64,
    /// Commands written to the IOMMU queue.
    pub commands: u64,
    /// IOTINVAL.VMA commands.
    pub iotinval: u64,
    /// ATS invalidations sent to the device.
    pub ats_inval: u64,
    /// IOFENCE.C commands.
    pub fences: u64,
    /// CPU cycles spent spinning on fences (and the queue lock).
    pub spin_cycles: u64,
    /// Simulated cycles of the whole run.
    pub cycles: u64,
    /// What the RTL's cover points counted (with `--coverage` only).
    pub coverage: Option<crate::coverage::Coverage>,
}

/// One (scenario, policy) cell of a sweep.
#[derive(Clone, Debug, PartialEq)]
pub struct Cell {
    /// Position in the full, unsharded cell list.
    pub index: usize,
    /// The scenario's `name` (the file stem if it could not be loaded).
    pub scenario: String,
    /// The scenario file, as the sweep found it.
    pub file: String,
    pub policy: Policy,
    /// What the scenario's `expect` says of this policy, if it names it.
    pub expected: Option<BTreeSet<Violation>>,
    /// The outcome, or why the scenario could not be loaded or run.
    pub result: Result<Outcome, String>,
    /// Wall time of the cell in ms; only kept with `--timing`.
    pub wall_ms: Option<f64>,
}

/// How a cell counts in the summary and the exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    AsExpected,
    Mismatch,
    Error,
}

impl Cell {
    pub fn status(&self) -> Status {
        match &self.result {
            Ok(o) if o.as_expected => Status::AsExpected,
            Ok(_) => Status::Mismatch,
            Err(_) => Status::Error,
        }
    }
}

/// The verdict as the table writes it: `clean`, or the kinds joined with `+`.
pub fn verdict_text(v: &BTreeSet<Violation>) -> String {
    if v.is_empty() {
        "clean".into()
    } else {
        v.iter().map(|k| k.name()).collect::<Vec<_>>().join("+")
    }
}

/// `--shard K/N`: the cells `i` with `i % N == K - 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub k: usize,
    pub n: usize,
}

impl Shard {
    pub fn contains(&self, index: usize) -> bool {
        index % self.n == self.k - 1
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.k, self.n)
    }
}

impl FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Shard, String> {
        let bad = || format!("'{s}' is not a shard: write K/N with 1 <= K <= N, e.g. 1/4");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let (k, n): (usize, usize) = (
            k.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if k == 0 || k > n {
            return Err(bad());
        }
        Ok(Shard { k, n })
    }
}

/// Errors of a sweep that stop it before any cell runs (bad patterns) or
/// of reading and writing its JSON.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error("pattern '{pattern}': {msg}")]
    Pattern { pattern: String, msg: String },
    #[error("{}: {msg}", file.display())]
    Json { file: PathBuf, msg: String },
    #[error("{}: {msg}", file.display())]
    Io { file: PathBuf, msg: String },
    #[error("shard {} of {n} not given: merge every shard of the sweep (each written by `shootdown sweep --shard K/{n} --json FILE`)", missing.join(", "))]
    Incomplete { missing: Vec<String>, n: usize },
}

/// How to run the cells.
#[derive(Clone, Debug)]
pub struct SweepOptions {
    /// Worker threads (at least 1).
    pub jobs: usize,
    /// Run only this shard of the cells.
    pub shard: Option<Shard>,
    /// Draw a progress bar on stderr.
    pub progress: bool,
    /// Keep each cell's wall time.
    pub timing: bool,
    /// Run every scenario with this IOMMU driver model instead of its own `driver:`.
    pub driver: Option<DriverKind>,
    /// Run every scenario with these injected RTL bugs instead of its own `inject:`.
    pub inject: Option<u16>,
    /// Parameter overrides (`--param`), applied to every scenario.
    pub params: Vec<(String, u64)>,
    /// Check the RTL's assertions (false: `--no-assert`, every run goes on
    /// past a broken invariant and the checker judges it).
    pub assertions: bool,
    /// Keep each run's functional coverage in its outcome.
    pub coverage: bool,
    /// Run every scenario on this arch (and its socket), its pages moved
    /// where the arch needs ([`Scenario::with_arch`]).
    pub arch: Option<crate::scenario::Arch>,
    /// Run every scenario's bundled paths as this release has them.
    pub kernel: Option<crate::mm::lang::Release>,
}

impl Default for SweepOptions {
    fn default() -> Self {
        SweepOptions {
            jobs: default_jobs(),
            shard: None,
            progress: false,
            timing: false,
            driver: None,
            inject: None,
            params: Vec::new(),
            assertions: true,
            coverage: false,
            arch: None,
            kernel: None,
        }
    }
}

/// The number of cores, or 1 if it cannot be told.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The progress bar on stderr (hidden when not asked for, e.g. not a
/// terminal): one tick per finished cell, from any worker.
fn progress_bar(total: usize, enabled: bool) -> indicatif::ProgressBar {
    if !enabled {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total as u64);
    if let Ok(style) = indicatif::ProgressStyle::with_template("[{bar:30}] {pos}/{len} cells") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Run every (file, policy) cell (or those of `opts.shard`) and return
/// them in cell order. A file that does not load or a run that fails
/// gives an error cell; nothing here panics on bad input.
pub fn run_cells(files: &[PathBuf], policies: &[Policy], opts: &SweepOptions) -> Vec<Cell> {
    let policies: Vec<Policy> = Policy::ALL
        .into_iter()
        .filter(|p| policies.contains(p))
        .collect();
    let loaded: Vec<Result<Scenario, String>> = files
        .iter()
        .map(|f| {
            let mut s = Scenario::load(f).map_err(|e| e.to_string())?;
            if let Some(d) = opts.driver {
                s.driver = d;
            }
            if let Some(a) = opts.arch {
                s = s.with_arch(a)?.0;
            }
            if let Some(k) = opts.kernel {
                s = s.with_kernel(k);
            }
            if let Some(i) = opts.inject {
                s.inject = i;
            }
            s.params.assertions &= opts.assertions;
            for (n, v) in &opts.params {
                space::apply(&mut s.params, n, *v);
            }
            // a parameter the arch's socket does not have is an error
            if let Some(why) = s.unsupported() {
                return Err(format!("{}: {why}", s.path.display()));
            }
            Ok(s)
        })
        .collect();
    let specs: Vec<(usize, usize, Policy)> = (0..files.len())
        .flat_map(|si| policies.iter().enumerate().map(move |(pi, &p)| (si, pi, p)))
        .map(|(si, pi, p)| (si * policies.len() + pi, si, p))
        .filter(|(i, _, _)| opts.shard.is_none_or(|s| s.contains(*i)))
        .collect();

    let progress = progress_bar(specs.len(), opts.progress);
    let slots: Vec<OnceLock<Cell>> = specs.iter().map(|_| OnceLock::new()).collect();
    let next = AtomicUsize::new(0);
    let workers = opts.jobs.max(1).min(specs.len());
    std::thread::scope(|sc| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                sc.spawn(|| loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(index, si, policy)) = specs.get(n) else {
                        break;
                    };
                    let cell = run_cell(index, &files[si], &loaded[si], policy, opts);
                    let _ = slots[n].set(cell);
                    progress.inc(1);
                })
            })
            .collect();
        for h in handles {
            // A worker cannot panic (each run is caught); a cell it left
            // unfinished becomes an error cell below.
            let _ = h.join();
        }
    });
    progress.finish_and_clear();
    slots
        .into_iter()
        .zip(&specs)
        .map(|(slot, &(index, si, policy))| {
            slot.into_inner().unwrap_or_else(|| Cell {
                index,
                scenario: row_name(&files[si], &loaded[si]),
                file: files[si].display().to_string(),
                policy,
                expected: None,
                result: Err("the worker thread running this cell died".into()),
                wall_ms: None,
            })
        })
        .collect()
}

fn row_name(file: &Path, s: &Result<Scenario, String>) -> String {
    match s {
        Ok(s) => s.name.clone(),
        Err(_) => file
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned(),
    }
}

fn run_cell(
    index: usize,
    file: &Path,
    loaded: &Result<Scenario, String>,
    policy: Policy,
    opts: &SweepOptions,
) -> Cell {
    let t0 = Instant::now();
    let mut cell = Cell {
        index,
        scenario: row_name(file, loaded),
        file: file.display().to_string(),
        policy,
        expected: None,
        result: Err(String::new()),
        wall_ms: None,
    };
    cell.result = match loaded {
        Err(e) => Err(e.clone()),
        Ok(s) => {
            cell.expected = s.expected(policy).cloned();
            let run_opts = RunOptions::policy(policy);
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(s, &run_opts))) {
                Ok(Ok(r)) => Ok(Outcome {
                    as_expected: r.as_expected(),
                    worst_window: r
                        .windows
                        .iter()
                        .filter(|w| w.cache != Cache::InFlight)
                        .map(|w: &Window| w.len(r.cycles))
                        .max()
                        .unwrap_or(0),
                    flushes: r.stats.flushes,
                    commands: r.stats.commands,
                    iotinval: r.stats.iotinval,
                    ats_inval: r.stats.ats_inval,
                    fences: r.stats.fences,
                    spin_cycles: r.spin_cycles,
                    cycles: r.cycles,
                    verdict: r.verdict,
                    coverage: opts.coverage.then_some(r.coverage),
                }),
                Ok(Err(e)) => Err(e.to_string()),
                Err(panic) => {
                    let msg = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    Err(format!(
                        "{}: the simulation panicked ({msg}); this is a bug in shootdown: please report it with this scenario",
                        file.display()
                    ))
                }
            }
        }
    };
    if opts.timing {
        cell.wall_ms = Some((t0.elapsed().as_secs_f64() * 1e6).round() / 1e3);
    }
    cell
}

/// Counts for the summary line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub cells: usize,
    pub as_expected: usize,
    pub mismatches: usize,
    pub errors: usize,
}

pub fn summary(cells: &[Cell]) -> Summary {
    let mut s = Summary {
        cells: cells.len(),
        ..Summary::default()
    };
    for c in cells {
        match c.status() {
            Status::AsExpected => s.as_expected += 1,
            Status::Mismatch => s.mismatches += 1,
            Status::Error => s.errors += 1,
        }
    }
    s
}

/// 0: every cell as expected; 1: a verdict differs from `expect`; 2: a cell failed.
pub fn exit_status(cells: &[Cell]) -> u8 {
    let s = summary(cells);
    if s.errors > 0 {
        2
    } else if s.mismatches > 0 {
        1
    } else {
        0
    }
}

fn parse_policy(s: &str) -> Result<Policy, String> {
    s.parse()
}

fn parse_jobs(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("'{s}' is not a number of jobs: give 1 or more")),
    }
}

/// `shootdown sweep`'s options.
#[derive(clap::Args, Debug)]
#[command(
    long_about = "Runs every (scenario, policy) cell in parallel and prints a table: a row per scenario, a \
column per policy, each cell the verdict (clean, or the violation kinds joined with +) and the worst \
stale-translation window in cycles; `!` marks a verdict that differs from the scenario's expect, ERR a \
cell that could not run (listed below the table). Then the cost of each policy summed over the scenarios \
and a summary line. Output is the same whatever --jobs is.\n\n\
Exit status: 0 every cell as expected, 1 a verdict differs from expect, 2 an error (bad pattern, bad \
JSON, a failed cell)."
)]
pub struct SweepArgs {
    /// Scenario files, bare names looked up in scenarios/ (`cow`), directories, or file-name
    /// patterns with `*` (`'co*'`, `dir/*.yaml`). Default: every scenarios/*.yaml.
    /// Files are swept sorted by file name.
    #[arg(value_name = "PATTERN")]
    pub patterns: Vec<String>,
    /// Only these policies, comma-separated: always, seed, arch, end-only. Default: all four.
    #[arg(long, value_delimiter = ',', value_parser = parse_policy, value_name = "P[,P...]")]
    pub notify: Vec<Policy>,
    /// Simulations run at once. Default: the number of cores.
    #[arg(long, short, value_parser = parse_jobs, value_name = "N")]
    pub jobs: Option<usize>,
    /// Also write the cells as JSON to FILE (for --merge and for scripts).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Run only shard K of N: the cells whose number i (in the full sorted list) has i % N == K-1.
    /// Write each shard with --json, then put them together with --merge.
    #[arg(long, value_name = "K/N", value_parser = Shard::from_str)]
    pub shard: Option<Shard>,
    /// Read the --json files of shards (no simulation), check they are of one sweep and hold
    /// each cell once, and print the table of all their cells.
    #[arg(long, value_name = "FILE", num_args = 1.., conflicts_with_all = ["patterns", "notify", "shard", "jobs"])]
    pub merge: Vec<PathBuf>,
    /// Also show wall times (table and JSON); they vary from run to run.
    #[arg(long)]
    pub timing: bool,
    /// Run every scenario with this IOMMU driver model (generic, amd, amd@6.10, intel, intel@<release>, arm, arm@5.11, arm-btm, batched; docs/drivers.md)
    /// instead of the scenario's `driver:`.
    #[arg(long, value_parser = parse_driver, value_name = "DRIVER", conflicts_with = "merge")]
    pub driver: Option<DriverKind>,
    /// Vary a runtime parameter: NAME=V1,V2,.. (repeatable; every combination runs).
    /// NAME: ats_latency, mem_latency, dev_mem_latency, iommu_mem_latency, ats_cpl_delay,
    /// atc_entries, iotlb_ways, iotlb_sets, ats_itags, cq_entries, cpu_step_cycles,
    /// gather_batch.
    /// Prints the worst window and the fence cost per point instead of the cell table.
    #[arg(long = "param", value_parser = space::parse_param, value_name = "NAME=V1,V2", conflicts_with_all = ["merge", "shard"])]
    pub param: Vec<space::ParamRange>,
    /// With --param: also write an SVG plot over the first parameter (a line per policy and per value of the others).
    #[arg(long, value_name = "FILE.svg", requires = "param")]
    pub plot: Option<PathBuf>,
    /// Inject RTL bugs into every run, comma-separated (`shootdown mutants --list` names them).
    #[arg(long, value_parser = parse_inject, value_name = "BUG[,BUG...]", conflicts_with = "merge")]
    pub inject: Option<u16>,
    /// Run every scenario on this arch: x86-64 (the bundled IOMMU) or riscv-sv39 / riscv-sv48
    /// (the RISC-V IOMMU design, docs/socket-riscv.md); pages move where the arch needs. A
    /// scenario that needs what the socket lacks (ATS) is a cell error.
    #[arg(long, value_name = "ARCH", conflicts_with = "merge")]
    pub arch: Option<crate::scenario::Arch>,
    /// Run every scenario's bundled kernel paths as this release has them (`4.19`, `5.16`;
    /// docs/paths.md, "Kernel releases").
    #[arg(long, value_name = "RELEASE", conflicts_with = "merge", value_parser = |s: &str| s.parse::<crate::mm::lang::Release>())]
    pub kernel: Option<crate::mm::lang::Release>,
    /// Do not check the RTL's SystemVerilog assertions: runs go on past a
    /// broken invariant and the checker judges what the device did.
    #[arg(long, conflicts_with = "merge")]
    pub no_assert: bool,
    /// Also print the functional coverage: the bins each cell hit, and the RTL's cover groups
    /// summed over the cells (hits per bin, holes listed); --json cells carry their counts.
    /// With --merge: of the merged cells that carry counts.
    #[arg(long)]
    pub coverage: bool,
}

/// clap's parser for `--inject`: comma-separated bug names.
pub fn parse_inject(s: &str) -> Result<u16, String> {
    let names: Vec<&str> = s
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect();
    crate::rtl::inject_bits(&names)
}

/// clap's parser for `--driver`.
pub fn parse_driver(s: &str) -> Result<DriverKind, String> {
    s.parse()
}

/// The `sweep` subcommand: parse nothing more, run, print, return the exit status.
pub fn main(args: SweepArgs) -> ExitCode {
    let fail = |e: &dyn fmt::Display| {
        eprintln!("shootdown sweep: {e}");
        ExitCode::from(2)
    };
    let t0 = Instant::now();
    let (cells, shard, jobs) = if !args.merge.is_empty() {
        match merge(&args.merge) {
            Ok(m) => (m.cells, None, None),
            Err(e) => return fail(&e),
        }
    } else {
        let files = match expand(&args.patterns) {
            Ok(f) => f,
            Err(e) => return fail(&e),
        };
        let policies = if args.notify.is_empty() {
            Policy::ALL.to_vec()
        } else {
            args.notify.clone()
        };
        let opts = SweepOptions {
            jobs: args.jobs.unwrap_or_else(default_jobs),
            shard: args.shard,
            progress: std::io::stderr().is_terminal(),
            timing: args.timing,
            driver: args.driver,
            inject: args.inject,
            params: Vec::new(),
            assertions: !args.no_assert,
            coverage: args.coverage,
            arch: args.arch,
            kernel: args.kernel,
        };
        if !args.param.is_empty() {
            if let Err(m) = space::check_points(&args.param) {
                return fail(&m);
            }
            let points = space::run_space(&files, &policies, &args.param, &opts);
            print!("{}", space::render_space(&points));
            if args.coverage {
                let cells: Vec<&Cell> = points.iter().flat_map(|p| &p.cells).collect();
                print!("\n{}", cover::render_summed(cells));
            }
            if let Some(svg) = &args.plot {
                if let Err(e) = std::fs::write(svg, space::render_svg(&points)) {
                    return fail(&format!("{}: {e}", svg.display()));
                }
                println!("Plot: {}", svg.display());
            }
            let cells: Vec<Cell> = points.into_iter().flat_map(|p| p.cells).collect();
            return ExitCode::from(exit_status(&cells));
        }
        (
            run_cells(&files, &policies, &opts),
            args.shard,
            Some(opts.jobs),
        )
    };
    print!("{}", render_table(&cells, args.timing));
    if args.coverage {
        print!("{}", render_coverage(&cells));
    }
    if let (true, Some(jobs)) = (args.timing, jobs) {
        println!(
            "Wall time: {:.0} ms with --jobs {jobs}",
            t0.elapsed().as_secs_f64() * 1e3
        );
    }
    if let Some(path) = &args.json {
        let text = to_json(&cells, shard);
        if let Err(e) = std::fs::write(path, text) {
            return fail(&SweepError::Io {
                file: path.clone(),
                msg: format!(
                    "cannot write the JSON: {e}; check the directory exists and is writable"
                ),
            });
        }
    }
    ExitCode::from(exit_status(&cells))
}
