//! The sweep's text: the verdict table, the cost per policy, mismatches,
//! errors and the summary line. A pure function of the cells.

use super::{summary, verdict_text, Cell, Status};
use crate::mm::Policy;
use std::fmt::Write;

/// What one policy cost, summed over the cells that ran.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Totals {
    /// Cells summed (those that ran; error cells are left out).
    pub runs: usize,
    pub flushes: u64,
    pub commands: u64,
    pub iotinval: u64,
    pub ats_inval: u64,
    pub fences: u64,
    pub spin_cycles: u64,
    pub cycles: u64,
    /// Sum of the cells' wall times, when they have one.
    pub wall_ms: f64,
}

impl Totals {
    fn add(&mut self, c: &Cell) {
        if let Ok(o) = &c.result {
            self.runs += 1;
            self.flushes += o.flushes;
            self.commands += o.commands;
            self.iotinval += o.iotinval;
            self.ats_inval += o.ats_inval;
            self.fences += o.fences;
            self.spin_cycles += o.spin_cycles;
            self.cycles += o.cycles;
        }
        self.wall_ms += c.wall_ms.unwrap_or(0.0);
    }
}

/// The policies present in `cells`, in [`Policy::ALL`] order.
pub(super) fn policies(cells: &[Cell]) -> Vec<Policy> {
    Policy::ALL
        .into_iter()
        .filter(|p| cells.iter().any(|c| c.policy == *p))
        .collect()
}

/// The cost of each policy present in `cells`, summed over its cells that ran.
pub fn totals(cells: &[Cell]) -> Vec<(Policy, Totals)> {
    policies(cells)
        .into_iter()
        .map(|p| {
            let mut t = Totals::default();
            cells
                .iter()
                .filter(|c| c.policy == p)
                .for_each(|c| t.add(c));
            (p, t)
        })
        .collect()
}

/// Rows (scenario files) in the order of their first cell.
pub(super) fn rows(cells: &[Cell]) -> Vec<(&str, &str)> {
    let mut sorted: Vec<&Cell> = cells.iter().collect();
    sorted.sort_by_key(|c| c.index);
    let mut out: Vec<(&str, &str)> = Vec::new();
    for c in sorted {
        // A row per (file, name): one file explored at several parameter
        // points gives a row per point.
        if !out.iter().any(|(f, n)| *f == c.file && *n == c.scenario) {
            out.push((&c.file, &c.scenario));
        }
    }
    out
}

/// Lay out `grid` in columns separated by three spaces; the first column
/// left-aligned, the others right-aligned if `right`.
pub(crate) fn columns(grid: &[Vec<String>], right: bool) -> String {
    let n = grid.iter().map(Vec::len).max().unwrap_or(0);
    let width: Vec<usize> = (0..n)
        .map(|i| {
            grid.iter()
                .filter_map(|r| r.get(i))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut o = String::new();
    for r in grid {
        let mut line = String::new();
        for (i, s) in r.iter().enumerate() {
            let w = width[i];
            if i > 0 {
                line.push_str("   ");
            }
            if i > 0 && right {
                let _ = write!(line, "{s:>w$}");
            } else {
                let _ = write!(line, "{s:<w$}");
            }
        }
        o.push_str(line.trim_end());
        o.push('\n');
    }
    o
}

fn ratio(a: u64, b: u64) -> String {
    if b == 0 {
        if a == 0 {
            "the same (0 vs 0)".into()
        } else {
            format!("{a} vs 0")
        }
    } else {
        format!("{:.2}x ({a} vs {b})", a as f64 / b as f64)
    }
}

/// The whole text of a sweep: the verdict table (a row per scenario, a
/// column per policy), the cost per policy, what `always` pays over
/// `seed`, the mismatches and errors, and the summary line. With `timing`,
/// also the cells' wall times (they vary from run to run).
pub fn render_table(cells: &[Cell], timing: bool) -> String {
    render_table_with(cells, timing, true)
}

/// [`render_table`], with or without the cost of each policy (`explore`'s
/// cells are many runs each: their verdicts and windows, no single cost).
pub fn render_table_with(cells: &[Cell], timing: bool, costs: bool) -> String {
    let pols = policies(cells);
    let rows = rows(cells);
    let mut o = String::new();

    // Name rows by scenario; by file too where two files share a name.
    // A row is a (file, name).
    let label = |file: &str, name: &str| {
        if rows.iter().filter(|(_, n)| *n == name).count() > 1 {
            format!("{name} ({file})")
        } else {
            name.to_string()
        }
    };
    let find = |file: &str, name: &str, p: Policy| {
        cells
            .iter()
            .find(|c| c.file == file && c.scenario == name && c.policy == p)
    };
    // Per column: the widest verdict and window, so windows line up.
    let widths: Vec<(usize, usize)> = pols
        .iter()
        .map(|&p| {
            cells
                .iter()
                .filter(|c| c.policy == p)
                .filter_map(|c| c.result.as_ref().ok())
                .map(|r| {
                    (
                        verdict_text(&r.verdict).len(),
                        r.worst_window.to_string().len(),
                    )
                })
                .fold((0, 0), |a, b| (a.0.max(b.0), a.1.max(b.1)))
        })
        .collect();
    let mut grid = vec![std::iter::once("scenario".to_string())
        .chain(pols.iter().map(|p| p.name().to_string()))
        .collect::<Vec<_>>()];
    for (file, name) in &rows {
        let mut r = vec![label(file, name)];
        for (i, &p) in pols.iter().enumerate() {
            let (vw, ww) = widths[i];
            r.push(match find(file, name, p) {
                None => "-".into(),
                Some(c) => match &c.result {
                    Err(_) => "ERR".into(),
                    Ok(res) => format!(
                        "{:<vw$}  {:>ww$}{}",
                        verdict_text(&res.verdict),
                        res.worst_window,
                        if res.as_expected { "" } else { "!" }
                    ),
                },
            });
        }
        grid.push(r);
    }
    o.push_str(&columns(&grid, false));
    let _ = writeln!(
        o,
        "(each cell: verdict, then the worst stale-translation window an IOTLB or ATC held, in cycles; ! differs from the scenario's expect; ERR could not run, see below)"
    );

    // The cost of each policy.
    let tot = totals(cells);
    if costs && !tot.is_empty() {
        let mut grid = vec![std::iter::once(format!(
            "Cost per policy, summed over {} scenario{}",
            rows.len(),
            if rows.len() == 1 { "" } else { "s" }
        ))
        .chain(pols.iter().map(|p| p.name().to_string()))
        .collect::<Vec<_>>()];
        type Get = fn(&Totals) -> String;
        let mut lines: Vec<(&str, Get)> = vec![
            ("secondary-TLB flushes", |t| t.flushes.to_string()),
            ("invalidation commands", |t| t.commands.to_string()),
            ("IOTINVAL.VMA", |t| t.iotinval.to_string()),
            ("ATS invalidations sent", |t| t.ats_inval.to_string()),
            ("fences (IOFENCE.C)", |t| t.fences.to_string()),
            ("CPU cycles spinning on fences", |t| {
                t.spin_cycles.to_string()
            }),
            ("simulated cycles", |t| t.cycles.to_string()),
        ];
        if tot.iter().any(|(_, t)| t.runs != rows.len()) {
            lines.push(("runs summed (the others failed)", |t| t.runs.to_string()));
        }
        if timing {
            lines.push(("wall ms (sum over the runs)", |t| {
                format!("{:.1}", t.wall_ms)
            }));
        }
        for (name, get) in lines {
            grid.push(
                std::iter::once(format!("  {name}"))
                    .chain(tot.iter().map(|(_, t)| get(t)))
                    .collect(),
            );
        }
        o.push('\n');
        o.push_str(&columns(&grid, true));
    }

    // What `always` pays over `seed`, on the scenarios where both ran.
    if costs && pols.contains(&Policy::Always) && pols.contains(&Policy::Seed) {
        let (mut a, mut s) = (Totals::default(), Totals::default());
        for (file, name) in &rows {
            if let (Some(ca), Some(cs)) = (
                find(file, name, Policy::Always),
                find(file, name, Policy::Seed),
            ) {
                if ca.result.is_ok() && cs.result.is_ok() {
                    a.add(ca);
                    s.add(cs);
                }
            }
        }
        if a.runs > 0 {
            let _ = writeln!(
                o,
                "always pays over seed: {} secondary-TLB flushes, {} ATS invalidations, {} spin cycles",
                ratio(a.flushes, s.flushes),
                ratio(a.ats_inval, s.ats_inval),
                ratio(a.spin_cycles, s.spin_cycles)
            );
        }
    }

    let mut sorted: Vec<&Cell> = cells.iter().collect();
    sorted.sort_by_key(|c| c.index);
    let mism: Vec<&&Cell> = sorted
        .iter()
        .filter(|c| c.status() == Status::Mismatch)
        .collect();
    if !mism.is_empty() {
        let _ = writeln!(o, "\nMismatches (! above):");
        for c in mism {
            let got = c.result.as_ref().map(|r| verdict_text(&r.verdict));
            let want = c.expected.as_ref().map(verdict_text);
            let _ = writeln!(
                o,
                "  {} --notify {}: {}, expected {} ({})",
                c.scenario,
                c.policy,
                got.unwrap_or_default(),
                want.unwrap_or_default(),
                c.file
            );
        }
    }
    // Errors, one line per scenario and message (a file that does not load
    // fails every policy the same way).
    let mut errs: Vec<(&str, String, Vec<&str>)> = Vec::new();
    for c in sorted.iter().filter(|c| c.status() == Status::Error) {
        let msg = c.result.as_ref().err().cloned().unwrap_or_default();
        match errs.iter_mut().find(|(f, m, _)| *f == c.file && *m == msg) {
            Some(e) => e.2.push(c.policy.name()),
            None => errs.push((&c.file, msg, vec![c.policy.name()])),
        }
    }
    if !errs.is_empty() {
        let _ = writeln!(o, "\nErrors (ERR above):");
        for (file, msg, ps) in &errs {
            let name = rows.iter().find(|(f, _)| f == file).map_or("", |(_, n)| *n);
            let _ = writeln!(o, "  {name} --notify {}: {msg}", ps.join(","));
        }
    }
    let s = summary(cells);
    let _ = writeln!(
        o,
        "\n{} cells, {} as expected, {} mismatches, {} errors",
        s.cells, s.as_expected, s.mismatches, s.errors
    );
    o
}
