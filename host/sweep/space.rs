//! The design-space view: `sweep --param NAME=V1,V2,..` reruns the sweep for
//! every combination of runtime parameters (latencies, batch sizes: what the
//! RTL takes as inputs or the host models, so no rebuild) and reports how the
//! worst stale window and the fence cost move, as a table and an SVG plot.
//! The RTL takes the ATC entries, IOTLB sets and ways and ITags *in use* as
//! inputs, so those sweep at run time up to the built sizes; the built sizes
//! themselves change by rebuilding with SHOOTDOWN_PARAMS or another RTL
//! through the socket (docs/socket.md).

use super::{run_cells, Cell, Status, SweepOptions};
use crate::mm::Policy;
use crate::scenario::{param_spec, shown, Params, PARAMS};
use std::fmt::Write;
use std::path::PathBuf;

/// The most points one design-space sweep may have (the product of the
/// numbers of values given to `--param`).
pub const MAX_POINTS: usize = 4096;

/// One `--param name=v1,v2,..`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamRange {
    pub name: String,
    pub values: Vec<u64>,
}

/// clap's parser for `--param`: the names and ranges of a scenario's
/// `params:` (`crate::scenario::PARAMS`), each value checked there, never
/// clamped, so a row's label is the value that ran.
pub fn parse_param(s: &str) -> Result<ParamRange, String> {
    let (name, vals) = s.split_once('=').ok_or_else(|| {
        format!(
            "'{}': write NAME=V1,V2,.. (e.g. ats_latency=50,150,400)",
            shown(s)
        )
    })?;
    let spec = param_spec(name).filter(|p| p.sweep).ok_or_else(|| {
        format!(
            "unknown parameter '{}': use one of {}",
            shown(name),
            PARAMS
                .iter()
                .filter(|p| p.sweep)
                .map(|p| p.name)
                .collect::<Vec<_>>()
                .join(", ")
        )
    })?;
    let mut values = Vec::new();
    for v in vals.split(',') {
        let v = spec.parse(v)?;
        if values.contains(&v) {
            return Err(format!("{name}: {v} is given twice"));
        }
        values.push(v);
    }
    if values.len() > MAX_POINTS {
        return Err(format!("{name}: at most {MAX_POINTS} values"));
    }
    Ok(ParamRange {
        name: name.to_string(),
        values,
    })
}

/// Set one named parameter (a name and value `parse_param` accepted).
pub fn apply(p: &mut Params, name: &str, v: u64) {
    if let Some(spec) = param_spec(name) {
        (spec.set)(p, v);
    }
}

/// The number of points of the space, or why it is too many.
pub fn check_points(ranges: &[ParamRange]) -> Result<usize, String> {
    let n = ranges
        .iter()
        .try_fold(1usize, |n, r| n.checked_mul(r.values.len()))
        .filter(|n| *n <= MAX_POINTS);
    n.ok_or_else(|| {
        format!(
            "--param: {} combinations is more than {MAX_POINTS}: give fewer values",
            ranges
                .iter()
                .map(|r| r.values.len().to_string())
                .collect::<Vec<_>>()
                .join(" x ")
        )
    })
}

/// One point of the space: the values, and per policy (in `Policy::ALL`
/// order) the worst window, the summed fence spin cycles and the cells that
/// left `expect`.
#[derive(Clone, Debug)]
pub struct Point {
    pub values: Vec<(String, u64)>,
    pub per_policy: Vec<(Policy, u64, u64, usize)>,
    pub cells: Vec<Cell>,
}

/// Every combination of the ranges' values, the first range outermost.
pub fn combinations(ranges: &[ParamRange]) -> Vec<Vec<(String, u64)>> {
    let mut out = vec![Vec::new()];
    for r in ranges {
        out = out
            .into_iter()
            .flat_map(|prefix: Vec<(String, u64)>| {
                r.values.iter().map(move |v| {
                    let mut p = prefix.clone();
                    p.push((r.name.clone(), *v));
                    p
                })
            })
            .collect();
    }
    out
}

/// Run the sweep at every point of the space.
pub fn run_space(
    files: &[PathBuf],
    policies: &[Policy],
    ranges: &[ParamRange],
    opts: &SweepOptions,
) -> Vec<Point> {
    combinations(ranges)
        .into_iter()
        .map(|values| {
            let o = SweepOptions {
                params: values.clone(),
                ..opts.clone()
            };
            let cells = run_cells(files, policies, &o);
            let per_policy = Policy::ALL
                .into_iter()
                .filter(|p| policies.contains(p))
                .map(|p| {
                    let mine = cells.iter().filter(|c| c.policy == p);
                    let (mut worst, mut spin, mut bad) = (0, 0, 0);
                    for c in mine {
                        if let Ok(o) = &c.result {
                            worst = worst.max(o.worst_window);
                            spin += o.spin_cycles;
                        }
                        bad += usize::from(c.status() != Status::AsExpected);
                    }
                    (p, worst, spin, bad)
                })
                .collect();
            Point {
                values,
                per_policy,
                cells,
            }
        })
        .collect()
}

/// The table: a row per point.
pub fn render_space(points: &[Point]) -> String {
    let mut o = String::new();
    let Some(first) = points.first() else {
        return o;
    };
    let pnames: Vec<&str> = first.values.iter().map(|(n, _)| n.as_str()).collect();
    let _ = write!(
        o,
        "{}",
        pnames
            .iter()
            .map(|n| format!("{n:>16}"))
            .collect::<String>()
    );
    for (p, ..) in &first.per_policy {
        let _ = write!(o, " {:>24}", format!("{p}: window/spin"));
    }
    let _ = writeln!(o, " {:>10}", "off-expect");
    for pt in points {
        let _ = write!(
            o,
            "{}",
            pt.values
                .iter()
                .map(|(_, v)| format!("{v:>16}"))
                .collect::<String>()
        );
        let mut bad = 0;
        for (_, w, s, b) in &pt.per_policy {
            let _ = write!(o, " {:>24}", format!("{w} / {s}"));
            bad += b;
        }
        let _ = writeln!(o, " {bad:>10}");
    }
    let _ = writeln!(
        o,
        "(window: the worst stale-translation window an IOTLB or ATC held over the scenarios, cycles; spin: CPU cycles spent spinning on fences, summed; off-expect: cells whose verdict left the scenario's expect)"
    );
    o
}

const COLORS: [&str; 4] = ["#1f77b4", "#2ca02c", "#9467bd", "#d62728"];

/// Dash patterns telling apart the slices of the other parameters.
const DASHES: [&str; 4] = ["", "6,3", "2,3", "8,3,2,3"];

/// The SVG attribute drawing slice `d`'s dash pattern (none for the first).
fn dash_attr(d: usize) -> String {
    match DASHES[d] {
        "" => String::new(),
        a => format!(r#" stroke-dasharray="{a}""#),
    }
}

/// An SVG with two panels over the first parameter: the worst window and the
/// fence spin cost, one line per policy (colour) and per combination of the
/// other parameters (dash pattern, up to four; further ones are left out
/// and the legend says so), with a legend beside each panel.
pub fn render_svg(points: &[Point]) -> String {
    let mut s = String::new();
    let Some(first) = points.first() else {
        return s;
    };
    let xname = first.values.first().map_or("point", |(n, _)| n.as_str());
    let rest = |p: &Point| p.values.iter().skip(1).map(|(_, v)| *v).collect::<Vec<_>>();
    let mut slices: Vec<Vec<u64>> = Vec::new();
    for p in points {
        if !slices.contains(&rest(p)) {
            slices.push(rest(p));
        }
    }
    let shown = slices.len().min(DASHES.len());
    let mut xs: Vec<u64> = points
        .iter()
        .map(|p| p.values.first().map_or(0, |v| v.1))
        .collect();
    xs.sort_unstable();
    xs.dedup();
    let (w, h, pad, legend) = (760.0, 280.0, 50.0, 190.0);
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{}" font-family="sans-serif" font-size="11">"#,
        2.0 * h + 20.0
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let slice_name = |v: &[u64]| {
        first
            .values
            .iter()
            .skip(1)
            .zip(v)
            .map(|((n, _), v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    for (panel, (title, pick)) in [
        ("worst stale window (cycles)", 1usize),
        ("fence spin (CPU cycles, summed)", 2usize),
    ]
    .into_iter()
    .enumerate()
    {
        let y0 = panel as f64 * (h + 20.0);
        let metric = |p: &Point, k: usize| {
            let t = &p.per_policy[k];
            if pick == 1 {
                t.1
            } else {
                t.2
            }
        };
        let ymax = points
            .iter()
            .filter(|p| slices[..shown].contains(&rest(p)))
            .flat_map(|p| (0..p.per_policy.len()).map(move |k| metric(p, k)))
            .max()
            .unwrap_or(1)
            .max(1) as f64;
        let (xmin, xmax) = (
            *xs.first().unwrap_or(&0) as f64,
            *xs.last().unwrap_or(&1) as f64,
        );
        let xspan = (xmax - xmin).max(1.0);
        let right = w - legend;
        let px = |x: u64| pad + (x as f64 - xmin) / xspan * (right - 2.0 * pad);
        let py = |y: u64| y0 + h - pad + 10.0 - (y as f64 / ymax) * (h - 2.0 * pad);
        let _ = writeln!(
            s,
            r#"<text x="{pad}" y="{}" font-size="13">{title} vs {xname}</text>"#,
            y0 + 18.0
        );
        let _ = writeln!(
            s,
            r#"<line x1="{pad}" y1="{}" x2="{}" y2="{}" stroke="black"/>"#,
            py(0),
            right - pad,
            py(0)
        );
        let _ = writeln!(
            s,
            r#"<line x1="{pad}" y1="{}" x2="{pad}" y2="{}" stroke="black"/>"#,
            py(0),
            y0 + pad - 10.0
        );
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
            pad - 4.0,
            py(ymax as u64) + 4.0,
            ymax as u64
        );
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end">0</text>"#,
            pad - 4.0,
            py(0) + 4.0
        );
        for x in &xs {
            let _ = writeln!(
                s,
                r#"<text x="{}" y="{}" text-anchor="middle">{x}</text>"#,
                px(*x),
                py(0) + 14.0
            );
        }
        for (d, slice) in slices.iter().take(shown).enumerate() {
            let line: Vec<&Point> = points.iter().filter(|p| rest(p) == *slice).collect();
            for (k, _) in first.per_policy.iter().enumerate() {
                let color = COLORS[k % COLORS.len()];
                let pts: Vec<(f64, f64)> = line
                    .iter()
                    .map(|p| (px(p.values.first().map_or(0, |v| v.1)), py(metric(p, k))))
                    .collect();
                let dash = dash_attr(d);
                let _ = writeln!(
                    s,
                    r#"<polyline fill="none" stroke="{color}" stroke-width="2"{dash} points="{}"/>"#,
                    pts.iter()
                        .map(|(x, y)| format!("{x:.1},{y:.1}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                );
                for (x, y) in &pts {
                    let _ = writeln!(
                        s,
                        r#"<circle cx="{x:.1}" cy="{y:.1}" r="3" fill="{color}"/>"#
                    );
                }
            }
        }
        // Legend: the policies' colours, then the slices' dash patterns.
        let lx = right + 10.0;
        let mut ly = y0 + pad;
        for (k, (pol, ..)) in first.per_policy.iter().enumerate() {
            let color = COLORS[k % COLORS.len()];
            let _ = writeln!(
                s,
                r#"<line x1="{lx}" y1="{:.1}" x2="{}" y2="{:.1}" stroke="{color}" stroke-width="3"/><text x="{}" y="{:.1}">{pol}</text>"#,
                ly - 4.0,
                lx + 22.0,
                ly - 4.0,
                lx + 28.0,
                ly
            );
            ly += 15.0;
        }
        if slices.len() > 1 {
            ly += 6.0;
            for (d, slice) in slices.iter().take(shown).enumerate() {
                let dash = dash_attr(d);
                let _ = writeln!(
                    s,
                    r#"<line x1="{lx}" y1="{:.1}" x2="{}" y2="{:.1}" stroke="black" stroke-width="2"{dash}/><text x="{}" y="{:.1}">{}</text>"#,
                    ly - 4.0,
                    lx + 22.0,
                    ly - 4.0,
                    lx + 28.0,
                    ly,
                    slice_name(slice)
                );
                ly += 15.0;
            }
            if slices.len() > shown {
                let _ = writeln!(
                    s,
                    r#"<text x="{lx}" y="{ly:.1}">({} more not drawn)</text>"#,
                    slices.len() - shown
                );
            }
        }
    }
    let _ = writeln!(s, "</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_parse_and_combine() {
        let a = parse_param("ats_latency=50,150").unwrap();
        let b = parse_param("mem_latency=40").unwrap();
        assert_eq!(a.values, vec![50, 150]);
        let c = combinations(&[a, b]);
        assert_eq!(c.len(), 2);
        assert_eq!(
            c[1],
            vec![
                ("ats_latency".to_string(), 150),
                ("mem_latency".to_string(), 40)
            ]
        );
        assert_eq!(parse_param("atc_entries=1,4").unwrap().values, vec![1, 4]);
        assert_eq!(parse_param("iotlb_sets=1,4").unwrap().values, vec![1, 4]);
        assert!(parse_param("iotlb_size=4")
            .unwrap_err()
            .contains("unknown parameter"));
        assert!(parse_param("ats_latency=x").is_err());
        // Values are checked, never clamped: the label is what ran.
        let e = parse_param("cq_entries=3,1000").unwrap_err();
        assert!(e.contains("power of two from 2 to 256"), "{e}");
        assert!(parse_param("iotlb_sets=3").is_err());
        assert!(parse_param("watchdog_cycles=5")
            .unwrap_err()
            .contains("unknown parameter"));
        assert!(parse_param("ats_latency=0")
            .unwrap_err()
            .contains("from 1 to 65535"));
        assert!(parse_param("ats_latency=5,5")
            .unwrap_err()
            .contains("twice"));
        let many = parse_param("ats_latency=1,2,3,4,5,6,7,8").unwrap();
        assert_eq!(check_points(&[many.clone(), many.clone()]), Ok(64));
        assert!(
            check_points(&[many.clone(), many.clone(), many.clone(), many.clone(), many]).is_err()
        );
        let mut p = Params::default();
        apply(&mut p, "gather_batch", 1);
        assert_eq!(p.gather_batch, 1);
    }
}
