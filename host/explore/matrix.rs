//! Exploring with several IOMMU driver models in one go (`--driver all`,
//! or a comma-separated list), and the table of what each cell cost: the
//! schedules played, those the model could not judge, the wall time.
//!
//! With more than one driver, each scenario is explored once per driver;
//! its name gets the driver as a suffix (`cow.amd`), so that the verdict
//! table has a row per (scenario, driver) and the shrunk findings of one
//! driver do not overwrite another's in `--out`.

use super::Explored;
use crate::iommu::DriverKind;
use crate::mm::Policy;
use crate::sweep::Cell;
use std::fmt::Write;

/// The driver models given to `--driver`: one, several, or `all`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Drivers(pub Vec<DriverKind>);

/// Parse `--driver`: a driver's name, several separated by commas, or
/// `all` (every model, in [`DriverKind::ALL`] order).
pub fn parse_drivers(s: &str) -> Result<Drivers, String> {
    if s == "all" {
        return Ok(Drivers(DriverKind::ALL.to_vec()));
    }
    let mut out: Vec<DriverKind> = Vec::new();
    for name in s.split(',') {
        let d: DriverKind = name.trim().parse()?;
        if out.contains(&d) {
            return Err(format!("driver '{d}' given twice"));
        }
        out.push(d);
    }
    Ok(Drivers(out))
}

/// The driver each scenario is explored with, in order: its own (`None`)
/// without `--driver`.
pub fn drivers(d: Option<&Drivers>) -> Vec<Option<DriverKind>> {
    match d {
        None => vec![None],
        Some(Drivers(v)) => v.iter().copied().map(Some).collect(),
    }
}

/// A scenario's name explored with `driver` when several drivers are:
/// `<name>.<driver>` (still a valid scenario name: when too long, the name
/// is cut as [`crate::scenario::fit_name`] cuts it, never the driver).
pub fn name_with(name: &str, driver: Option<DriverKind>, several: bool) -> String {
    match driver {
        Some(d) if several => {
            let suffix = format!(".{d}");
            let keep = crate::scenario::MAX_NAME.saturating_sub(suffix.len());
            let mut head = crate::scenario::fit_name(name);
            if head.len() > keep {
                // the hash of the whole name, kept
                let hash = crate::scenario::fit_name(&format!("{name}{suffix}"));
                let tail = &hash[hash.len() - 9..];
                head = name.chars().take(keep - 9).collect::<String>() + tail;
            }
            head + &suffix
        }
        _ => name.to_string(),
    }
}

/// The cell's file as the table's rows key it: with several drivers, the
/// file and the driver.
pub fn label_cell(c: &mut Cell, driver: Option<DriverKind>, several: bool) {
    if let (Some(d), true) = (driver, several) {
        c.file = format!("{} ({d})", c.file);
    }
}

/// What one explored cell cost.
#[derive(Clone, Debug, PartialEq)]
pub struct Cost {
    /// The row's label (the scenario's name, with its driver).
    pub scenario: String,
    pub policy: Policy,
    /// Schedules played to their end (or to a failure), those that
    /// reached something the model does not do (not judged), and those cut
    /// at a state already explored; None when the search stopped.
    pub schedules: Option<(usize, usize, usize)>,
    pub wall_s: f64,
}

impl Cost {
    pub fn of(e: &Explored, wall_s: f64) -> Cost {
        Cost {
            scenario: e.scenario.clone(),
            policy: e.policy,
            schedules: e
                .searched
                .as_ref()
                .ok()
                .map(|r| (r.schedules, r.unmodelled, r.pruned)),
            wall_s,
        }
    }
}

/// The table of costs: a row per scenario (and driver), a column per
/// policy, each cell the schedules played (`+N?`: N more that the model
/// could not judge) and the wall time; then the totals.
pub fn render_costs(costs: &[Cost], bound: u32, pct: Option<(u64, u32, u64)>) -> String {
    let pols: Vec<Policy> = Policy::ALL
        .into_iter()
        .filter(|p| costs.iter().any(|c| c.policy == *p))
        .collect();
    let mut rows: Vec<&str> = Vec::new();
    for c in costs {
        if !rows.contains(&c.scenario.as_str()) {
            rows.push(&c.scenario);
        }
    }
    let mut grid = vec![std::iter::once("scenario".to_string())
        .chain(pols.iter().map(|p| p.name().to_string()))
        .chain(std::iter::once("wall".to_string()))
        .collect::<Vec<_>>()];
    let (mut played, mut unjudged, mut cut, mut wall) = (0usize, 0usize, 0usize, 0.0f64);
    for r in &rows {
        let mut line = vec![r.to_string()];
        let mut row_wall = 0.0;
        for p in &pols {
            let c = costs.iter().find(|c| c.scenario == *r && c.policy == *p);
            line.push(match c {
                None => "-".into(),
                Some(c) => {
                    row_wall += c.wall_s;
                    match c.schedules {
                        None => format!("ERR {:.1}s", c.wall_s),
                        Some((n, u, k)) => {
                            played += n;
                            unjudged += u;
                            cut += k;
                            let u = if u > 0 {
                                format!(" +{u}?")
                            } else {
                                String::new()
                            };
                            let k = if k > 0 {
                                format!(" ({k} cut)")
                            } else {
                                String::new()
                            };
                            format!("{n}{u}{k} {:.1}s", c.wall_s)
                        }
                    }
                }
            });
        }
        wall += row_wall;
        line.push(format!("{row_wall:.1}s"));
        grid.push(line);
    }
    let mut o = String::new();
    let _ = writeln!(
        o,
        "Schedules explored {}, and wall time:",
        match pct {
            None => format!(
                "with at most {bound} preemption{}",
                if bound == 1 { "" } else { "s" }
            ),
            Some((runs, depth, seed)) =>
                format!("by PCT ({runs} runs, depth {depth}, seed {seed})"),
        }
    );
    o.push_str(&crate::sweep::columns(&grid, true));
    let _ = writeln!(
        o,
        "(each cell: schedules played to their end, +N? more that reached what the model does not do (not judged), (N cut) more cut where they reached a state already explored, the cell's wall time)"
    );
    let cut = if cut > 0 {
        format!(", {cut} cut")
    } else {
        String::new()
    };
    let _ = writeln!(
        o,
        "{} cells, {played} schedules judged{cut}, {unjudged} not judged, {wall:.1}s",
        costs.len()
    );
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drivers_parse() {
        assert_eq!(parse_drivers("all").unwrap().0, DriverKind::ALL.to_vec());
        assert_eq!(
            parse_drivers("amd,arm-btm").unwrap().0,
            vec![DriverKind::Amd, DriverKind::Arm { btm: true }]
        );
        assert!(parse_drivers("amd,amd").is_err());
        assert!(parse_drivers("amd,").is_err());
        assert!(parse_drivers("vtd").is_err());
        assert_eq!(drivers(None), vec![None]);
    }

    #[test]
    fn names_stay_valid() {
        let long = "x".repeat(crate::scenario::MAX_NAME);
        let n = name_with(&long, Some(DriverKind::Arm { btm: true }), true);
        assert_eq!(n.len(), crate::scenario::MAX_NAME);
        assert!(n.ends_with(".arm-btm"));
        assert!(crate::scenario::check_name(&n).is_ok());
        // two long names equal in their head stay two rows
        let other = name_with(
            &format!("{}y", &long[1..]),
            Some(DriverKind::Arm { btm: true }),
            true,
        );
        assert_eq!(other.len(), crate::scenario::MAX_NAME);
        assert_ne!(n, other);
        assert_eq!(name_with("cow", Some(DriverKind::Amd), false), "cow");
        assert_eq!(name_with("cow", Some(DriverKind::Amd), true), "cow.amd");
    }

    #[test]
    fn costs_table() {
        let c = |s: &str, p, n| Cost {
            scenario: s.into(),
            policy: p,
            schedules: n,
            wall_s: 1.5,
        };
        let t = render_costs(
            &[
                c("ksm", Policy::Seed, Some((264, 34, 0))),
                c("ksm", Policy::EndOnly, None),
            ],
            1,
            None,
        );
        assert!(
            t.contains("with at most 1 preemption, and wall time"),
            "{t}"
        );
        assert!(t.contains("264 +34? 1.5s"), "{t}");
        assert!(t.contains("ERR 1.5s"), "{t}");
        assert!(
            t.contains("2 cells, 264 schedules judged, 34 not judged, 3.0s"),
            "{t}"
        );
        let t = render_costs(
            &[c("ksm", Policy::Seed, Some((9, 0, 0)))],
            1,
            Some((9, 3, 1)),
        );
        assert!(t.contains("by PCT (9 runs, depth 3, seed 1)"), "{t}");
        let t = render_costs(&[c("cow", Policy::Seed, Some((902, 0, 2132)))], 1, None);
        assert!(t.contains("902 (2132 cut) 1.5s"), "{t}");
        assert!(
            t.contains("1 cells, 902 schedules judged, 2132 cut, 0 not judged"),
            "{t}"
        );
    }
}
