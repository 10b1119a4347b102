//! `shootdown mutants`: run the bundled scenarios against each injectable
//! RTL bug (`cfg_inject_i`, docs/socket.md) and report which scenario caught
//! it (a verdict that differs from `expect`, or an RTL assertion / watchdog
//! stopping the run) and at which cycle. The correct design must pass all.

use crate::mm::Policy;
use crate::rtl::INJECT_NAMES;
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

/// How one bug fared.
#[derive(Clone, Debug)]
pub struct MutantRow {
    pub name: &'static str,
    pub bit: u16,
    pub about: &'static str,
    /// (scenario, policy, what it saw) of every cell that caught it, in cell order.
    pub caught_by: Vec<(String, Policy, String)>,
    /// Cells run.
    pub cells: usize,
    /// The cycle of the first violation (or the stopping error) in the first
    /// catching cell.
    pub first_cycle: Option<u64>,
}

/// What a catching cell saw.
fn seen(c: &Cell) -> String {
    match &c.result {
        Ok(o) => verdict_text(&o.verdict),
        Err(e) => {
            let mut e = e.lines().next().unwrap_or_default().to_string();
            if e.chars().count() > 60 {
                e = e.chars().take(57).collect::<String>() + "...";
            }
            if e.contains("[rtl]") {
                format!("assertion: {e}")
            } else {
                format!("error: {e}")
            }
        }
    }
}

/// The first violation's cycle when `file` runs under `policy` with `bit`.
fn detection_cycle(file: &str, policy: Policy, bit: u16) -> Option<u64> {
    let mut s = Scenario::load(std::path::Path::new(file)).ok()?;
    s.inject = bit;
    match run(
        &s,
        &RunOptions {
            policy,
            waves: None,
        },
    ) {
        Ok(r) => r.findings.iter().map(|f| f.cycle).min(),
        Err(RunError::Rtl(e)) => e.to_string().split("cycle ").nth(1).and_then(|t| {
            t.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse()
                .ok()
        }),
        Err(_) => None,
    }
}

/// Run `files` under every policy, first correct, then with each bug.
pub fn run_mutants(files: &[PathBuf], jobs: usize) -> (Vec<Cell>, Vec<MutantRow>) {
    let opts = |inject| SweepOptions {
        jobs,
        inject: Some(inject),
        ..SweepOptions::default()
    };
    let baseline = run_cells(files, &Policy::ALL, &opts(0));
    let rows = INJECT_NAMES
        .iter()
        .filter(|(name, ..)| !FAULTS.contains(name))
        .map(|&(name, bit, about)| {
            let cells = run_cells(files, &Policy::ALL, &opts(bit));
            let caught: Vec<&Cell> = cells
                .iter()
                .filter(|c| c.status() != Status::AsExpected)
                .collect();
            let first_cycle = caught
                .first()
                .and_then(|c| detection_cycle(&c.file, c.policy, bit));
            MutantRow {
                name,
                bit,
                about,
                caught_by: caught
                    .iter()
                    .map(|c| (c.scenario.clone(), c.policy, seen(c)))
                    .collect(),
                cells: cells.len(),
                first_cycle,
            }
        })
        .collect();
    (baseline, rows)
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
        "correct design: {ok}/{} cells as expected",
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
        "\n{:<20} {:<7} {:<44} {:>8} {:>6}",
        "bug", "caught", "first caught by", "cycle", "cells"
    );
    for r in rows {
        let (yes, first) = match r.caught_by.first() {
            Some((s, p, what)) => ("yes", format!("{s} --notify {p}: {what}")),
            None => ("NO", "-".to_string()),
        };
        let cycle = r.first_cycle.map_or("-".to_string(), |c| c.to_string());
        let _ = writeln!(
            o,
            "{:<20} {:<7} {:<44} {:>8} {:>6}",
            r.name,
            yes,
            first,
            cycle,
            format!("{}/{}", r.caught_by.len(), r.cells)
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
        for (s, p, what) in r.caught_by.iter().take(6) {
            let _ = writeln!(o, "    {s} --notify {p}: {what}");
        }
        if r.caught_by.len() > 6 {
            let _ = writeln!(o, "    ... and {} more cells", r.caught_by.len() - 6);
        }
        if r.caught_by.is_empty() {
            let _ = writeln!(o, "    caught by no scenario here");
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
/// cell and every bug is caught; 1 otherwise; 2 on bad input.
pub fn main(args: MutantsArgs) -> ExitCode {
    if args.list {
        for (name, bit, about) in INJECT_NAMES {
            let fault = if FAULTS.contains(name) {
                " (a device fault, not run by mutants)"
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
    if all_ok && rows.iter().all(|r| !r.caught_by.is_empty()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
