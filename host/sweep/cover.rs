//! The sweep's functional coverage (`--coverage`): how many bins each cell
//! hit, in the verdict table's rows and columns, and the cover groups
//! summed over every cell with their holes. A pure function of the cells.

use super::table::{columns, policies, rows};
use super::Cell;
use crate::coverage::Coverage;
use std::fmt::Write;

/// The bins each cell hit (a row per scenario, a column per policy, and a
/// last row with each policy's cells summed), then the cover groups summed
/// over every cell that carries coverage.
pub fn render_coverage(cells: &[Cell]) -> String {
    fn covered(c: &Cell) -> Option<&Coverage> {
        c.result.as_ref().ok().and_then(|o| o.coverage.as_ref())
    }
    if !cells.iter().any(|c| covered(c).is_some()) {
        return "coverage: no cell carries coverage counts (run the sweep with --coverage)\n"
            .into();
    }
    let pols = policies(cells);
    let rows = rows(cells);
    let total = Coverage::sum(cells.iter().filter_map(covered));
    let (present, _) = total.bins_hit();
    let hit = |c: &Coverage| c.bins_hit().1.to_string();
    let mut grid = vec![std::iter::once(format!("bins hit (of {present})"))
        .chain(pols.iter().map(|p| p.name().to_string()))
        .collect::<Vec<_>>()];
    for (file, name) in &rows {
        let label = if rows.iter().filter(|(_, n)| n == name).count() > 1 {
            format!("{name} ({file})")
        } else {
            name.to_string()
        };
        let mut r = vec![label];
        for &p in &pols {
            let c = cells
                .iter()
                .find(|c| c.file == *file && c.scenario == *name && c.policy == p)
                .and_then(covered);
            r.push(c.map_or("-".into(), hit));
        }
        grid.push(r);
    }
    let mut r = vec!["every scenario".to_string()];
    for &p in &pols {
        r.push(hit(&Coverage::sum(
            cells.iter().filter(|c| c.policy == p).filter_map(covered),
        )));
    }
    grid.push(r);
    let mut o = String::from("\n");
    o.push_str(&columns(&grid, true));
    let _ = writeln!(
        o,
        "(each cell: the cover bins its run hit; - no counts: the run failed)"
    );
    o.push('\n');
    o.push_str(&render_summed(cells.iter()));
    o
}

/// The cover groups summed over `cells` (those that carry coverage).
pub(super) fn render_summed<'a>(cells: impl IntoIterator<Item = &'a Cell>) -> String {
    let sum = Coverage::sum(
        cells
            .into_iter()
            .filter_map(|c| c.result.as_ref().ok().and_then(|o| o.coverage.as_ref())),
    );
    format!("summed {}", sum.render())
}
