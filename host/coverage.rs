//! Functional coverage: the RTL's cover points (`cover` statements, counted
//! by the Verilated model, [`crate::rtl::cover_points`]) as cover groups of
//! named cross-product bins, per run and summed over many, with the holes
//! (bins never hit) listed (docs/socket.md, "Coverage").
//!
//! [`GROUPS`] and [`BINS`] are the coverage model: which `cover` statement
//! (by its label) is which bin of which group, and where it lives (the
//! socket's top, or a module of the bundled RTL). A design in the socket
//! that replaces a module loses that module's bins: they are reported as
//! not in this RTL, neither hit nor holes. Cover points of the build that
//! the model does not name (a user's own) are listed after the groups.

use crate::rtl::{cover_points, Model};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// A cover group: a cross of `rows` x `cols` (a list when it has one
/// column), each cell at most one bin.
#[derive(Clone, Copy, Debug)]
pub struct Group {
    pub name: &'static str,
    /// What is crossed with what, in a few words.
    pub about: &'static str,
    pub rows: &'static [&'static str],
    pub cols: &'static [&'static str],
}

/// One bin: the `cover` statement labelled `label`, in cell (`row`, `col`)
/// of group `group`, in the RTL file `file` (`shootdown_top.sv`: at the
/// socket, on the top's ports and links).
#[derive(Clone, Copy, Debug)]
pub struct Bin {
    pub label: &'static str,
    pub group: usize,
    pub row: usize,
    pub col: usize,
    pub file: &'static str,
}

/// The file of the socket-level bins.
pub const SOCKET_FILE: &str = "shootdown_top.sv";

const OUT4: &[&str] = &["0", "1", "2", "3+"];
const RANGE_COLS: &[&str] = &["start", "middle", "end", "held", "none"];
const HITS: &[&str] = &["hits"];

/// The cover groups, in report order.
pub const GROUPS: &[Group] = &[
    Group {
        name: "cmd_issue",
        about: "a command starts x ATS invalidations outstanding (ITags busy)",
        rows: &["IOTINVAL.VMA", "ATS.INVAL", "IOFENCE.C"],
        cols: OUT4,
    },
    Group {
        name: "fence_done",
        about:
            "an IOFENCE.C completes (its write) x Invalidate Requests the device has not completed",
        rows: &["IOFENCE.C"],
        cols: &["0", "1", "2+"],
    },
    Group {
        name: "iotlb_inval",
        about: "IOTINVAL.VMA range x where the IOTLB held a translation it names",
        rows: &["1 page", "2..15", "16..511", "512+", "no address"],
        cols: RANGE_COLS,
    },
    Group {
        name: "atc_inval",
        about: "Invalidate Request range x where the ATC held a translation it names",
        rows: &["1 page", "2..15", "16..511", "512+"],
        cols: RANGE_COLS,
    },
    Group {
        name: "walk_race",
        about: "page-table walk step x a change of the walked entry seen by the IOMMU",
        rows: &["IOTINVAL.VMA of the page", "A/D CAS found another value"],
        cols: &["read", "CAS", "fill", "send"],
    },
    Group {
        name: "cpl_race",
        about: "a Translation Completion and an Invalidate Request for its page cross",
        rows: &[
            "Invalidate Request passes the Completion in the switch",
            "Invalidate Request ahead of the Completion (sent first)",
            "overtaken Completion discarded, read",
            "overtaken Completion discarded, write",
            "Invalidate Request for another page during a Translation Request",
            "Invalidate Request waits for an access in flight (drain)",
        ],
        cols: HITS,
    },
    Group {
        name: "queue",
        about: "the command ring and the ITags",
        rows: &[
            "head wraps around the ring",
            "ring full",
            "ATS.INVAL waits for an ITag (all busy)",
        ],
        cols: HITS,
    },
    Group {
        name: "timeout",
        about: "ATS invalidation timeout (cmd_to)",
        rows: &[
            "cmd_to set",
            "IOFENCE.C held by cmd_to",
            "cmd_to cleared by software",
            "late Invalidate Completion dropped",
        ],
        cols: HITS,
    },
    Group {
        name: "pri",
        about: "PCIe PRI: Page Requests, the page-request queue and PRG Responses",
        rows: &[
            "Page Request written to the queue",
            "queue full: the IOMMU answers Success itself",
            "PRG Response Success taken by the waiting access",
            "PRG Response not Success taken by the waiting access",
            "an access gave up (Page Requests answered Success, no grant)",
        ],
        cols: HITS,
    },
    Group {
        name: "inval_1g",
        about: "an invalidation names a valid 1 GiB entry (any range or form)",
        rows: &["IOTINVAL.VMA, IOTLB", "Invalidate Request, ATC"],
        cols: HITS,
    },
];

macro_rules! bins {
    ($( $label:literal $group:literal $row:literal $col:literal $file:literal; )*) => {
        &[$( Bin { label: $label, group: $group, row: $row, col: $col, file: $file }, )*]
    };
}

/// Every bin of [`GROUPS`]: label, group, row, column, file.
pub const BINS: &[Bin] = bins! {
    "CmdIotinvalOut0_C" 0 0 0 "cmdq.sv";
    "CmdIotinvalOut1_C" 0 0 1 "cmdq.sv";
    "CmdIotinvalOut2_C" 0 0 2 "cmdq.sv";
    "CmdIotinvalOut3_C" 0 0 3 "cmdq.sv";
    "CmdAtsInvalOut0_C" 0 1 0 "cmdq.sv";
    "CmdAtsInvalOut1_C" 0 1 1 "cmdq.sv";
    "CmdAtsInvalOut2_C" 0 1 2 "cmdq.sv";
    "CmdAtsInvalOut3_C" 0 1 3 "cmdq.sv";
    "CmdIofenceOut0_C" 0 2 0 "cmdq.sv";
    "CmdIofenceOut1_C" 0 2 1 "cmdq.sv";
    "CmdIofenceOut2_C" 0 2 2 "cmdq.sv";
    "CmdIofenceOut3_C" 0 2 3 "cmdq.sv";
    "FenceDoneOut0_C" 1 0 0 "shootdown_top.sv";
    "FenceDoneOut1_C" 1 0 1 "shootdown_top.sv";
    "FenceDoneOut2_C" 1 0 2 "shootdown_top.sv";
    "IotlbInvPageHeld_C" 2 0 3 "iotlb.sv";
    "IotlbInvPageEmpty_C" 2 0 4 "iotlb.sv";
    "IotlbInvSmallStart_C" 2 1 0 "iotlb.sv";
    "IotlbInvSmallMiddle_C" 2 1 1 "iotlb.sv";
    "IotlbInvSmallEnd_C" 2 1 2 "iotlb.sv";
    "IotlbInvSmallEmpty_C" 2 1 4 "iotlb.sv";
    "IotlbInvMediumStart_C" 2 2 0 "iotlb.sv";
    "IotlbInvMediumMiddle_C" 2 2 1 "iotlb.sv";
    "IotlbInvMediumEnd_C" 2 2 2 "iotlb.sv";
    "IotlbInvMediumEmpty_C" 2 2 4 "iotlb.sv";
    "IotlbInvLargeStart_C" 2 3 0 "iotlb.sv";
    "IotlbInvLargeMiddle_C" 2 3 1 "iotlb.sv";
    "IotlbInvLargeEnd_C" 2 3 2 "iotlb.sv";
    "IotlbInvLargeEmpty_C" 2 3 4 "iotlb.sv";
    "IotlbInvPasidHeld_C" 2 4 3 "iotlb.sv";
    "IotlbInvPasidEmpty_C" 2 4 4 "iotlb.sv";
    "AtcInvPageHeld_C" 3 0 3 "atc.sv";
    "AtcInvPageEmpty_C" 3 0 4 "atc.sv";
    "AtcInvSmallStart_C" 3 1 0 "atc.sv";
    "AtcInvSmallMiddle_C" 3 1 1 "atc.sv";
    "AtcInvSmallEnd_C" 3 1 2 "atc.sv";
    "AtcInvSmallEmpty_C" 3 1 4 "atc.sv";
    "AtcInvMediumStart_C" 3 2 0 "atc.sv";
    "AtcInvMediumMiddle_C" 3 2 1 "atc.sv";
    "AtcInvMediumEnd_C" 3 2 2 "atc.sv";
    "AtcInvMediumEmpty_C" 3 2 4 "atc.sv";
    "AtcInvLargeStart_C" 3 3 0 "atc.sv";
    "AtcInvLargeMiddle_C" 3 3 1 "atc.sv";
    "AtcInvLargeEnd_C" 3 3 2 "atc.sv";
    "AtcInvLargeEmpty_C" 3 3 4 "atc.sv";
    "WalkReadInval_C" 4 0 0 "iommu.sv";
    "WalkCasInval_C" 4 0 1 "iommu.sv";
    "WalkFillInval_C" 4 0 2 "iommu.sv";
    "WalkSendInval_C" 4 0 3 "iommu.sv";
    "WalkCasLost_C" 4 1 1 "iommu.sv";
    "InvPassesCpl_C" 5 0 0 "shootdown_top.sv";
    "InvAheadOfCpl_C" 5 1 0 "shootdown_top.sv";
    "CplOvertakenRead_C" 5 2 0 "dev_dma.sv";
    "CplOvertakenWrite_C" 5 3 0 "dev_dma.sv";
    "InvOtherDuringTr_C" 5 4 0 "dev_dma.sv";
    "InvDrainsAccess_C" 5 5 0 "dev_dma.sv";
    "CqWrap_C" 6 0 0 "shootdown_top.sv";
    "CqFull_C" 6 1 0 "shootdown_top.sv";
    "ItagsExhausted_C" 6 2 0 "cmdq.sv";
    "CmdToSet_C" 7 0 0 "shootdown_top.sv";
    "FenceHeldCmdTo_C" 7 1 0 "cmdq.sv";
    "CmdToCleared_C" 7 2 0 "shootdown_top.sv";
    "LateCpl_C" 7 3 0 "itag_pool.sv";
    "PqWrite_C" 8 0 0 "prq.sv";
    "PqFullRsp_C" 8 1 0 "prq.sv";
    "PrgRspSuccess_C" 8 2 0 "dev_dma.sv";
    "PrgRspFail_C" 8 3 0 "dev_dma.sv";
    "PriGaveUp_C" 8 4 0 "dev_dma.sv";
    "IotlbInv1gHeld_C" 9 0 0 "iotlb.sv";
    "AtcInv1gHeld_C" 9 1 0 "atc.sv";
};

/// The bin labelled `label`, if the model names it.
pub fn bin(label: &str) -> Option<&'static Bin> {
    BINS.iter().find(|b| b.label == label)
}

/// The bin in cell (`row`, `col`) of group `group`.
fn bin_at(group: usize, row: usize, col: usize) -> Option<&'static Bin> {
    BINS.iter()
        .find(|b| b.group == group && b.row == row && b.col == col)
}

/// A bin's name in messages: `group row x col`, or `group row` in a list.
pub fn bin_name(b: &Bin) -> String {
    let g = &GROUPS[b.group];
    if g.cols.len() == 1 {
        format!("{} {}", g.name, g.rows[b.row])
    } else {
        format!("{} {} x {}", g.name, g.rows[b.row], g.cols[b.col])
    }
}

/// Hits per cover point of one run, or summed over `runs` runs. A point is
/// keyed by its label (the name of its `cover` statement), or by its
/// instance path when several points share a label (a module instantiated
/// more than once). Every point of the build is present, 0 included, so a
/// bin the model names but the map lacks is not in this RTL.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coverage {
    /// Runs summed (1 for one run; 0: empty).
    pub runs: u64,
    /// Hits (cycles the point's condition held) per point.
    pub counts: BTreeMap<String, u64>,
}

/// The key of each cover point of the build, in [`cover_points`] order.
fn point_keys() -> &'static [String] {
    static KEYS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        let points = cover_points();
        points
            .iter()
            .map(|p| {
                if points.iter().filter(|q| q.name == p.name).count() == 1 {
                    p.name.clone()
                } else {
                    p.hier.clone()
                }
            })
            .collect()
    })
}

impl Coverage {
    /// The counts of `model`'s cover points: one run.
    pub fn of_model(model: &Model) -> Coverage {
        Coverage::from_counts(&model.cover_counts())
    }

    /// One run's coverage from the counts of every cover point of the
    /// build, in [`cover_points`] order.
    pub fn from_counts(counts: &[u64]) -> Coverage {
        Coverage {
            runs: 1,
            counts: point_keys()
                .iter()
                .cloned()
                .zip(counts.iter().copied())
                .collect(),
        }
    }

    /// The counts of one run in [`cover_points`] order (the inverse of
    /// [`Coverage::from_counts`]; points this build lacks are dropped).
    pub fn to_counts(&self) -> Vec<u64> {
        point_keys()
            .iter()
            .map(|k| self.counts.get(k).copied().unwrap_or(0))
            .collect()
    }

    /// Add `other`'s runs and counts (points of either are kept).
    pub fn add(&mut self, other: &Coverage) {
        self.runs += other.runs;
        for (k, v) in &other.counts {
            *self.counts.entry(k.clone()).or_insert(0) += v;
        }
    }

    /// The sum of `items`.
    pub fn sum<'a>(items: impl IntoIterator<Item = &'a Coverage>) -> Coverage {
        let mut total = Coverage::default();
        for c in items {
            total.add(c);
        }
        total
    }

    /// Hits of the bin labelled `label`; None: not in this RTL.
    pub fn hits(&self, label: &str) -> Option<u64> {
        self.counts.get(label).copied()
    }

    /// The bins of the model in this RTL: (in it, hit).
    pub fn bins_hit(&self) -> (usize, usize) {
        let present: Vec<u64> = BINS.iter().filter_map(|b| self.hits(b.label)).collect();
        (present.len(), present.iter().filter(|&&n| n > 0).count())
    }

    /// The holes: the bins of the model in this RTL never hit.
    pub fn holes(&self) -> Vec<&'static Bin> {
        BINS.iter()
            .filter(|b| self.hits(b.label) == Some(0))
            .collect()
    }

    /// Cover points of the build the model does not name (a user's own), with their hits.
    pub fn others(&self) -> Vec<(&str, u64)> {
        self.counts
            .iter()
            .filter(|(k, _)| bin(k).is_none())
            .map(|(k, v)| (k.as_str(), *v))
            .collect()
    }

    /// The report: a line of totals, a table per cover group (hits per
    /// bin, `HOLE` for a bin never hit, `-` where the cross has no bin,
    /// `n/a` for a bin not in this RTL), the other cover points, and the
    /// holes listed by group.
    pub fn render(&self) -> String {
        let mut o = String::new();
        let runs = match self.runs {
            1 => "1 run".to_string(),
            n => format!("{n} runs"),
        };
        if self.counts.is_empty() {
            let _ = writeln!(
                o,
                "coverage ({runs}): this RTL has no cover points (docs/socket.md, \"Coverage\")"
            );
            return o;
        }
        let (present, hit) = self.bins_hit();
        let absent = BINS.len() - present;
        let holes = present - hit;
        let _ = write!(
            o,
            "coverage ({runs}): {hit} of {present} bins hit, {holes} hole{}",
            if holes == 1 { "" } else { "s" }
        );
        if absent > 0 {
            let _ = write!(o, "; {absent} bins not in this RTL");
        }
        o.push('\n');
        for (g, group) in GROUPS.iter().enumerate() {
            render_group(&mut o, self, g, group);
        }
        let others = self.others();
        if !others.is_empty() {
            let _ = writeln!(o, "other cover points of this RTL:");
            let w = others.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
            for (k, n) in others {
                let _ = writeln!(o, "  {k:<w$}  {}", cell(Some(n)));
            }
        }
        let holes = self.holes();
        if !holes.is_empty() {
            let _ = writeln!(o, "holes ({}):", holes.len());
            o.push_str(&list_by_group(&holes));
        }
        o
    }

    /// One line: the totals and the bins hit, with their hits.
    pub fn render_brief(&self) -> String {
        if self.counts.is_empty() {
            return "this RTL has no cover points".into();
        }
        let (present, hit) = self.bins_hit();
        let hits: Vec<String> = BINS
            .iter()
            .filter_map(|b| Some((b, self.hits(b.label).filter(|&n| n > 0)?)))
            .map(|(b, n)| format!("{} = {n}", bin_name(b)))
            .collect();
        format!(
            "{hit} of {present} bins hit{}{}",
            if hits.is_empty() { "" } else { ": " },
            hits.join("; ")
        )
    }
}

/// `bins` as lines `  group: row x col, col; row x col` (a list group:
/// `  group: row; row`), in catalogue order.
pub fn list_by_group(bins: &[&Bin]) -> String {
    let mut o = String::new();
    for (g, group) in GROUPS.iter().enumerate() {
        let mut parts: Vec<String> = Vec::new();
        for (r, row) in group.rows.iter().enumerate() {
            let cols: Vec<&str> = bins
                .iter()
                .filter(|b| b.group == g && b.row == r)
                .map(|b| group.cols[b.col])
                .collect();
            if cols.is_empty() {
                continue;
            }
            if group.cols.len() == 1 {
                parts.push(row.to_string());
            } else {
                parts.push(format!("{row} x {}", cols.join(", ")));
            }
        }
        if !parts.is_empty() {
            let _ = writeln!(o, "  {}: {}", group.name, parts.join("; "));
        }
    }
    o
}

/// A count as the table shows it.
fn cell(n: Option<u64>) -> String {
    match n {
        None => "n/a".into(),
        Some(0) => "HOLE".into(),
        Some(n) => n.to_string(),
    }
}

fn render_group(o: &mut String, cov: &Coverage, g: usize, group: &Group) {
    let bins: Vec<&Bin> = BINS.iter().filter(|b| b.group == g).collect();
    let mut files: Vec<&str> = Vec::new();
    for b in &bins {
        let f = if b.file == SOCKET_FILE {
            "socket"
        } else {
            b.file
        };
        if !files.contains(&f) {
            files.push(f);
        }
    }
    let _ = writeln!(o, "{}: {} [{}]", group.name, group.about, files.join(", "));
    if bins.iter().all(|b| cov.hits(b.label).is_none()) {
        let _ = writeln!(o, "  not in this RTL");
        return;
    }
    let text = |r: usize, c: usize| match bin_at(g, r, c) {
        None => "-".to_string(),
        Some(b) => cell(cov.hits(b.label)),
    };
    let row_w = group.rows.iter().map(|r| r.len()).max().unwrap_or(0);
    if group.cols.len() == 1 {
        for (r, name) in group.rows.iter().enumerate() {
            let _ = writeln!(o, "  {name:<row_w$}  {:>6}", text(r, 0));
        }
        return;
    }
    let widths: Vec<usize> = (0..group.cols.len())
        .map(|c| {
            (0..group.rows.len())
                .map(|r| text(r, c).len())
                .chain([group.cols[c].len(), 6])
                .max()
                .unwrap_or(6)
        })
        .collect();
    let _ = write!(o, "  {:<row_w$}", "");
    for (c, name) in group.cols.iter().enumerate() {
        let _ = write!(o, "  {name:>w$}", w = widths[c]);
    }
    o.push('\n');
    for (r, name) in group.rows.iter().enumerate() {
        let _ = write!(o, "  {name:<row_w$}");
        for (c, w) in widths.iter().enumerate() {
            let _ = write!(o, "  {:>w$}", text(r, c));
        }
        o.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bin_sits_in_its_group_once() {
        for (i, b) in BINS.iter().enumerate() {
            let g = &GROUPS[b.group];
            assert!(b.row < g.rows.len() && b.col < g.cols.len(), "{}", b.label);
            assert!(b.label.ends_with("_C"), "{}", b.label);
            for c in &BINS[..i] {
                assert_ne!(c.label, b.label);
                assert!(
                    (c.group, c.row, c.col) != (b.group, b.row, b.col),
                    "{} and {} share a cell",
                    c.label,
                    b.label
                );
            }
        }
        for (g, _) in GROUPS.iter().enumerate() {
            assert!(BINS.iter().any(|b| b.group == g));
        }
    }

    fn with(counts: &[(&str, u64)]) -> Coverage {
        Coverage {
            runs: 1,
            counts: counts.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        }
    }

    #[test]
    fn holes_absent_bins_and_other_points() {
        let mut c = with(&[
            ("CqWrap_C", 2),
            ("CqFull_C", 0),
            ("ItagsExhausted_C", 0),
            ("MyOwn_C", 0),
        ]);
        assert_eq!(c.bins_hit(), (3, 1));
        let holes: Vec<&str> = c.holes().iter().map(|b| b.label).collect();
        assert_eq!(holes, ["CqFull_C", "ItagsExhausted_C"]);
        assert_eq!(c.others(), [("MyOwn_C", 0)]);
        let text = c.render();
        for line in [
            "coverage (1 run): 1 of 3 bins hit, 2 holes; 67 bins not in this RTL\n",
            "queue: the command ring and the ITags [socket, cmdq.sv]\n",
            "  head wraps around the ring                   2\n",
            "  ring full                                 HOLE\n",
            "timeout: ATS invalidation timeout (cmd_to) [socket, cmdq.sv, itag_pool.sv]\n  not in this RTL\n",
            "other cover points of this RTL:\n  MyOwn_C  HOLE\n",
            "holes (2):\n  queue: ring full; ATS.INVAL waits for an ITag (all busy)\n",
        ] {
            assert!(text.contains(line), "{line:?} not in\n{text}");
        }
        assert!(text.starts_with("coverage (1 run): "));
        // summing keeps every point and adds the runs
        c.add(&with(&[("CqFull_C", 1), ("CmdToSet_C", 0)]));
        assert_eq!(c.runs, 2);
        assert_eq!(c.hits("CqFull_C"), Some(1));
        assert_eq!(c.hits("CqWrap_C"), Some(2));
        assert_eq!(c.hits("CmdToSet_C"), Some(0));
        assert_eq!(c.hits("LateCpl_C"), None);
    }

    #[test]
    fn an_rtl_without_cover_points_says_so() {
        let c = with(&[]);
        assert_eq!(
            c.render(),
            "coverage (1 run): this RTL has no cover points (docs/socket.md, \"Coverage\")\n"
        );
        assert_eq!(c.bins_hit(), (0, 0));
        assert!(c.holes().is_empty());
    }

    #[test]
    fn a_cross_renders_as_a_matrix() {
        let c = with(&[
            ("CmdIotinvalOut0_C", 12),
            ("CmdIotinvalOut1_C", 0),
            ("CmdIofenceOut1_C", 3),
        ]);
        let text = c.render();
        assert!(
            text.starts_with("coverage (1 run): 2 of 3 bins hit, 1 hole; "),
            "{text}"
        );
        assert!(
            text.contains("                     0       1       2      3+\n"),
            "{text}"
        );
        assert!(
            text.contains("  IOTINVAL.VMA      12    HOLE     n/a     n/a\n"),
            "{text}"
        );
        assert!(text.contains("  cmd_issue: IOTINVAL.VMA x 1\n"), "{text}");
    }
}
