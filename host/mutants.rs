//! `shootdown mutants`: run the bundled scenarios against each injectable
//! RTL bug (`cfg_inject_i`, docs/socket.md) and report which scenario caught
//! it and at which cycle, twice: with the RTL's SystemVerilog assertions
//! checked (which assertion stopped which run first) and with them off (what
//! the bug does to the kernel's data: a verdict that differs from `expect`).
//! The correct design must pass all, with no assertion firing.

use crate::mm::Policy;
use crate::rtl::{assertion_name, INJECT_NAMES};
use crate::scenario::Scenario;
use crate::sim::{run, RunError, RunOptions};
use crate::sweep::{default_jobs, expand, run_cells, verdict_text, Cell, Status, SweepOptions};
use std::fmt::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Injections that model a failing device rather than a design bug: they
/// exercise the error paths (drop-inv-cpl: the ATS invalidation timeout, see
/// tests/driver_timeout.rs) and hang by construction where no timeout is set,
/// so `mutants` leaves them out.
pub const FAULTS: &[&str] = &["drop-inv-cpl"];

/// Bugs no bundled timeline can reach: `fence-one-itag` shows only with two
/// ATS invalidations outstanding before one fence (the `batched` driver and
/// a flush of several pages, which no bundled scenario has) and a device
/// access racing the later ones. `mutants` runs them like the others and
/// expects no scenario to catch them ("no*" in its table, not counted
/// against its exit status); tests/drivers.rs catches `fence-one-itag`
/// with a timeline written for it, and an explorer of interleavings has to
/// find such schedules itself.
pub const BEYOND_BUNDLED: &[&str] = &["fence-one-itag"];

/// The cells that caught one bug in one pass.
#[derive(Clone, Debug, Default)]
pub struct Catch {
    /// (scenario, policy, what it saw) of every catching cell, in cell order.
    pub cells: Vec<(String, Policy, String)>,
    /// The cycle of the first violation (or the assertion) in the first
    /// catching cell.
    pub first_cycle: Option<u64>,
}

/// How one bug fared.
#[derive(Clone, Debug)]
pub struct MutantRow {
    pub name: &'static str,
    pub bit: u16,
    pub about: &'static str,
    /// Cells run in each pass.
    pub cells: usize,
    /// With the RTL's assertions checked: the cells an assertion stopped.
    pub by_assertion: Catch,
    /// With the assertions off: the cells whose verdict left `expect` (or
    /// that could not finish): what the bug does to the kernel's data.
    pub by_checker: Catch,
}

impl MutantRow {
    pub fn caught(&self) -> bool {
        !self.by_assertion.cells.is_empty() || !self.by_checker.cells.is_empty()
    }

    /// As `mutants` expects: caught, or a bug of [`BEYOND_BUNDLED`].
    pub fn as_expected(&self) -> bool {
        self.caught() || BEYOND_BUNDLED.contains(&self.name)
    }
}

/// An RTL assertion stopped the cell.
fn is_assertion(c: &Cell) -> bool {
    matches!(&c.result, Err(e) if e.contains("[rtl]"))
}

/// What a catching cell saw.
fn seen(c: &Cell) -> String {
    match &c.result {
        Ok(o) => verdict_text(&o.verdict),
        Err(e) => {
            if let Some(name) = assertion_name(e).filter(|_| is_assertion(c)) {
                return format!("assertion {name}");
            }
            let mut e = e.lines().next().unwrap_or_default().to_string();
            if e.chars().count() > 60 {
                e = e.chars().take(57).collect::<String>() + "...";
            }
            format!("error: {e}")
        }
    }
}

/// The cycle an RTL error message names (`[rtl] ... in cycle N: ...`).
fn error_cycle(msg: &str) -> Option<u64> {
    msg.split("cycle ").nth(1).and_then(|t| {
        t.chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .ok()
    })
}

/// The first violation's (or the RTL error's) cycle when `file` runs under
/// `policy` with `bit`: the cells keep verdicts, not finding cycles, so the
/// first catching cell is run again.
fn detection_cycle(file: &str, policy: Policy, bit: u16, assertions: bool) -> Option<u64> {
    let mut s = Scenario::load(std::path::Path::new(file)).ok()?;
    s.inject = bit;
    s.params.assertions = assertions;
    match run(&s, &RunOptions::policy(policy)) {
        Ok(r) => r.findings.iter().map(|f| f.cycle).min(),
        Err(RunError::Rtl { source, .. }) => error_cycle(&source.to_string()),
        Err(_) => None,
    }
}

/// The catching cells of one pass.
fn catch(cells: &[Cell], keep: impl Fn(&Cell) -> bool, bit: u16, assertions: bool) -> Catch {
    let caught: Vec<&Cell> = cells
        .iter()
        .filter(|c| c.status() != Status::AsExpected && keep(c))
        .collect();
    Catch {
        // An assertion's cycle is in the cell's error; a verdict's needs a rerun.
        first_cycle: caught.first().and_then(|c| match &c.result {
            Err(e) if is_assertion(c) => error_cycle(e),
            _ => detection_cycle(&c.file, c.policy, bit, assertions),
        }),
        cells: caught
            .iter()
            .map(|c| (c.scenario.clone(), c.policy, seen(c)))
            .collect(),
    }
}

/// Run `files` under every policy, first correct, then with each bug: once
/// with the RTL's assertions checked, once without (the checker alone).
pub fn run_mutants(files: &[PathBuf], jobs: usize) -> (Vec<Cell>, Vec<MutantRow>) {
    let opts = |inject, assertions| SweepOptions {
        jobs,
        inject: Some(inject),
        assertions,
        ..SweepOptions::default()
    };
    let baseline = run_cells(files, &Policy::ALL, &opts(0, true));
    let rows = INJECT_NAMES
        .iter()
        .filter(|(name, ..)| !FAULTS.contains(name))
        .map(|&(name, bit, about)| {
            let on = run_cells(files, &Policy::ALL, &opts(bit, true));
            let off = run_cells(files, &Policy::ALL, &opts(bit, false));
            MutantRow {
                name,
                bit,
                about,
                cells: on.len(),
                by_assertion: catch(&on, is_assertion, bit, true),
                by_checker: catch(&off, |_| true, bit, false),
            }
        })
        .collect();
    (baseline, rows)
}

/// `scenario --notify policy` as `scenario/policy`, and what it saw.
fn first(c: &Catch, what: bool) -> String {
    let cycle = c.first_cycle.map_or(String::new(), |n| format!(" @{n}"));
    match c.cells.first() {
        Some((s, p, saw)) if what => format!("{saw}{cycle} in {s}/{p}"),
        Some((s, p, saw)) => format!("{}{cycle} in {s}/{p}", saw.trim_start_matches("assertion ")),
        None => "-".to_string(),
    }
}

/// The mutants table.
pub fn render(baseline: &[Cell], rows: &[MutantRow]) -> String {
    let mut o = String::new();
    let ok = baseline
        .iter()
        .filter(|c| c.status() == Status::AsExpected)
        .count();
    let _ = writeln!(
        o,
        "correct design: {ok}/{} cells as expected, no assertion fired",
        baseline.len()
    );
    for c in baseline.iter().filter(|c| c.status() != Status::AsExpected) {
        let _ = writeln!(
            o,
            "  FAILS: {} --notify {}: {}",
            c.scenario,
            c.policy,
            seen(c)
        );
    }
    let _ = writeln!(
        o,
        "\n{:<20} {:<6} {:<46} {:<48} {:>11}",
        "bug",
        "caught",
        "assertion (first; assertions on)",
        "checker (first; assertions off)",
        "cells a / c"
    );
    for r in rows {
        let cells = format!(
            "{}/{} {}/{}",
            r.by_assertion.cells.len(),
            r.cells,
            r.by_checker.cells.len(),
            r.cells
        );
        let _ = writeln!(
            o,
            "{:<20} {:<6} {:<46} {:<48} {:>11}",
            r.name,
            if r.caught() {
                "yes"
            } else if r.as_expected() {
                "no*"
            } else {
                "NO"
            },
            first(&r.by_assertion, false),
            first(&r.by_checker, true),
            cells
        );
    }
    let _ = writeln!(
        o,
        "(a: cells an RTL assertion stopped; c: cells whose verdict left expect with the assertions off)"
    );
    if rows.iter().any(|r| !r.caught() && r.as_expected()) {
        let _ = writeln!(
            o,
            "(no*: as expected, no bundled timeline reaches the bug: it needs several ATS invalidations outstanding before one fence)"
        );
    }
    let _ = writeln!(o);
    for r in rows {
        let _ = writeln!(
            o,
            "{} (cfg_inject_i bit {}): {}",
            r.name,
            r.bit.trailing_zeros(),
            r.about
        );
        for (label, c) in [("assertion", &r.by_assertion), ("checker", &r.by_checker)] {
            for (s, p, what) in c.cells.iter().take(4) {
                let what = what.trim_start_matches("assertion ");
                let _ = writeln!(o, "    {label:<9} {s} --notify {p}: {what}");
            }
            if c.cells.len() > 4 {
                let _ = writeln!(o, "    {label:<9} ... and {} more cells", c.cells.len() - 4);
            }
            if c.cells.is_empty() {
                let _ = writeln!(o, "    {label:<9} caught in no scenario here");
            }
        }
    }
    o
}

#[derive(clap::Args)]
pub struct MutantsArgs {
    /// Scenario files, names or `*` patterns, as for `sweep`. Default: every scenarios/*.yaml.
    #[arg(value_name = "PATTERN")]
    pub patterns: Vec<String>,
    /// Simulations run at once. Default: the number of cores.
    #[arg(long, short)]
    pub jobs: Option<usize>,
    /// List the injectable bugs and exit.
    #[arg(long)]
    pub list: bool,
}

/// The `mutants` subcommand. Exit 0 when the correct design passes every
/// cell and every bug is caught (but those of [`BEYOND_BUNDLED`]); 1
/// otherwise; 2 on bad input.
pub fn main(args: MutantsArgs) -> ExitCode {
    if args.list {
        for (name, bit, about) in INJECT_NAMES {
            let fault = if FAULTS.contains(name) {
                " (a device fault, not run by mutants)"
            } else if BEYOND_BUNDLED.contains(name) {
                " (no bundled scenario reaches it)"
            } else {
                ""
            };
            println!("{name:<20} bit {:<2} {about}{fault}", bit.trailing_zeros());
        }
        return ExitCode::SUCCESS;
    }
    let files = match expand(&args.patterns) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("shootdown mutants: {e}");
            return ExitCode::from(2);
        }
    };
    let (baseline, rows) = run_mutants(&files, args.jobs.unwrap_or_else(default_jobs).max(1));
    print!("{}", render(&baseline, &rows));
    let all_ok = baseline.iter().all(|c| c.status() == Status::AsExpected);
    if all_ok && rows.iter().all(MutantRow::as_expected) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
