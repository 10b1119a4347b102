//! The sweep's JSON: `{"version":1,"cells":[...],"shard":{"k":K,"n":N}|null}`,
//! written by `--json` and read back by `--merge`.

use super::{Cell, Outcome, Shard, SweepError};
use crate::checker::Violation;
use crate::mm::Policy;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The version this build writes and reads.
pub const JSON_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct FileJson {
    version: u32,
    cells: Vec<CellJson>,
    shard: Option<Shard>,
}

/// One cell, flat. A failed cell has `error` set and the run's fields null.
#[derive(Serialize, Deserialize)]
struct CellJson {
    index: usize,
    scenario: String,
    file: String,
    policy: String,
    /// Violation kinds found; [] is clean.
    verdict: Option<Vec<String>>,
    /// What the scenario expects of this policy; null if it names no expectation.
    expected: Option<Vec<String>>,
    as_expected: bool,
    worst_window: Option<u64>,
    flushes: Option<u64>,
    commands: Option<u64>,
    iotinval: Option<u64>,
    ats_inval: Option<u64>,
    fences: Option<u64>,
    spin_cycles: Option<u64>,
    cycles: Option<u64>,
    error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    wall_ms: Option<f64>,
    /// With `--coverage`: the run's hits per cover point (docs/socket.md, "Coverage").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    coverage: Option<crate::coverage::Coverage>,
}

fn kinds(v: &BTreeSet<Violation>) -> Vec<String> {
    v.iter().map(|k| k.name().to_string()).collect()
}

impl From<&Cell> for CellJson {
    fn from(c: &Cell) -> Self {
        let o = c.result.as_ref().ok();
        CellJson {
            index: c.index,
            scenario: c.scenario.clone(),
            file: c.file.clone(),
            policy: c.policy.name().to_string(),
            verdict: o.map(|o| kinds(&o.verdict)),
            expected: c.expected.as_ref().map(kinds),
            as_expected: o.is_some_and(|o| o.as_expected),
            worst_window: o.map(|o| o.worst_window),
            flushes: o.map(|o| o.flushes),
            commands: o.map(|o| o.commands),
            iotinval: o.map(|o| o.iotinval),
            ats_inval: o.map(|o| o.ats_inval),
            fences: o.map(|o| o.fences),
            spin_cycles: o.map(|o| o.spin_cycles),
            cycles: o.map(|o| o.cycles),
            error: c.result.as_ref().err().cloned(),
            wall_ms: c.wall_ms,
            coverage: o.and_then(|o| o.coverage.clone()),
        }
    }
}

impl CellJson {
    fn into_cell(self) -> Result<Cell, String> {
        let at = format!(
            "cell {} ({} --notify {})",
            self.index, self.scenario, self.policy
        );
        let policy: Policy = self.policy.parse().map_err(|e| format!("{at}: {e}"))?;
        let set = |v: Vec<String>| -> Result<BTreeSet<Violation>, String> {
            v.iter()
                .map(|s| s.parse::<Violation>().map_err(|e| format!("{at}: {e}")))
                .collect()
        };
        let expected = self.expected.map(set).transpose()?;
        let result = match self.error {
            Some(e) => Err(e),
            None => {
                let need = |v: Option<u64>, name: &str| {
                    v.ok_or_else(|| format!("{at}: '{name}' is null but the cell has no error"))
                };
                Ok(Outcome {
                    verdict: set(self.verdict.ok_or_else(|| {
                        format!("{at}: 'verdict' is null but the cell has no error")
                    })?)?,
                    as_expected: self.as_expected,
                    worst_window: need(self.worst_window, "worst_window")?,
                    flushes: need(self.flushes, "flushes")?,
                    commands: need(self.commands, "commands")?,
                    iotinval: need(self.iotinval, "iotinval")?,
                    ats_inval: need(self.ats_inval, "ats_inval")?,
                    fences: need(self.fences, "fences")?,
                    spin_cycles: need(self.spin_cycles, "spin_cycles")?,
                    cycles: need(self.cycles, "cycles")?,
                    coverage: self.coverage,
                })
            }
        };
        Ok(Cell {
            index: self.index,
            scenario: self.scenario,
            file: self.file,
            policy,
            expected,
            result,
            wall_ms: self.wall_ms,
        })
    }
}

/// A sweep's JSON, read back.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepFile {
    pub version: u32,
    pub cells: Vec<Cell>,
    pub shard: Option<Shard>,
}

/// The JSON of `cells` (in the order given), pretty-printed, with a final newline.
pub fn to_json(cells: &[Cell], shard: Option<Shard>) -> String {
    let f = FileJson {
        version: JSON_VERSION,
        cells: cells.iter().map(CellJson::from).collect(),
        shard,
    };
    let mut s = serde_json::to_string_pretty(&f).unwrap_or_else(|e| {
        // Serializing these plain structs cannot fail; say so if it ever does.
        format!("{{\"version\":{JSON_VERSION},\"error\":\"{e}\"}}")
    });
    s.push('\n');
    s
}

/// The cells as `to_json` writes them, as a value (explore's JSON carries
/// them beside what its searches found).
pub fn cells_value(cells: &[Cell]) -> serde_json::Value {
    serde_json::to_value(cells.iter().map(CellJson::from).collect::<Vec<_>>()).unwrap_or_default()
}

/// Parse the text of a sweep JSON; `file` names it in errors.
pub fn from_json(file: &Path, text: &str) -> Result<SweepFile, SweepError> {
    let err = |msg: String| SweepError::Json {
        file: file.to_path_buf(),
        msg,
    };
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        err(format!(
            "not JSON ({e}); give a file written by `shootdown sweep --json`"
        ))
    })?;
    match v.get("version").and_then(|x| x.as_u64()) {
        Some(n) if n == u64::from(JSON_VERSION) => {}
        Some(n) => {
            return Err(err(format!(
                "version {n}, this shootdown reads version {JSON_VERSION}: run the sweep again with this shootdown"
            )))
        }
        None => {
            return Err(err(
                "no \"version\": give a file written by `shootdown sweep --json`".into(),
            ))
        }
    }
    if v.get("explore").is_some() {
        return Err(err(
            "written by `shootdown explore --json` (its cells of a shard are partial): merge it with `shootdown explore --merge`".into(),
        ));
    }
    let f: FileJson = serde_json::from_value(v).map_err(|e| {
        err(format!(
            "{e}; give a file written by `shootdown sweep --json`"
        ))
    })?;
    if let Some(s) = f.shard {
        if s.k == 0 || s.k > s.n {
            return Err(err(format!(
                "shard {}/{} is impossible (need 1 <= k <= n)",
                s.k, s.n
            )));
        }
    }
    let cells = f
        .cells
        .into_iter()
        .map(CellJson::into_cell)
        .collect::<Result<Vec<_>, _>>()
        .map_err(err)?;
    Ok(SweepFile {
        version: f.version,
        cells,
        shard: f.shard,
    })
}

/// Shards put back together.
#[derive(Clone, Debug, PartialEq)]
pub struct Merged {
    /// Every cell of every file, in cell order.
    pub cells: Vec<Cell>,
}

/// Read shard JSONs and merge their cells. Errors: a file that cannot be
/// read or parsed, files of different versions or of different shard
/// counts, a cell outside its file's shard, a cell in two files, a shard
/// of the sweep not given (the table would silently cover only part).
pub fn merge(files: &[PathBuf]) -> Result<Merged, SweepError> {
    let mut by_index: BTreeMap<usize, (Cell, &Path)> = BTreeMap::new();
    let mut version: Option<(u32, &Path)> = None;
    let mut count: Option<(usize, &Path)> = None;
    let mut shards_seen = BTreeSet::new();
    for path in files {
        let text = std::fs::read_to_string(path).map_err(|e| SweepError::Io {
            file: path.clone(),
            msg: format!("cannot read it ({e}); give the files written by `shootdown sweep --shard K/N --json FILE`"),
        })?;
        let f = from_json(path, &text)?;
        let jerr = |msg: String| SweepError::Json {
            file: path.clone(),
            msg,
        };
        match version {
            Some((v, other)) if v != f.version => {
                return Err(jerr(format!(
                    "version {} but {} has version {v}: merge the shards of one sweep",
                    f.version,
                    other.display()
                )))
            }
            _ => version = Some((f.version, path)),
        }
        if let Some(s) = f.shard {
            if let Some((n, other)) = count {
                if n != s.n {
                    return Err(jerr(format!(
                        "shard {s} but {} is a shard of {n}: merge the shards of one sweep",
                        other.display()
                    )));
                }
            }
            count = Some((s.n, path));
            shards_seen.insert(s.k);
        }
        for c in f.cells {
            if let Some(s) = f.shard {
                if !s.contains(c.index) {
                    return Err(jerr(format!(
                        "cell {} ({} --notify {}) does not belong to shard {s}: the file was edited or not written by sweep",
                        c.index, c.scenario, c.policy
                    )));
                }
            }
            if let Some((old, other)) = by_index.get(&c.index) {
                return Err(jerr(format!(
                    "cell {} ({} --notify {}) is also in {} (as {} --notify {}): give each shard once, all from one sweep",
                    c.index,
                    c.scenario,
                    c.policy,
                    other.display(),
                    old.scenario,
                    old.policy
                )));
            }
            by_index.insert(c.index, (c, path));
        }
    }
    if let Some((n, _)) = count {
        let missing: Vec<String> = (1..=n)
            .filter(|k| !shards_seen.contains(k))
            .map(|k| format!("{k}/{n}"))
            .collect();
        if !missing.is_empty() {
            return Err(SweepError::Incomplete { missing, n });
        }
    }
    Ok(Merged {
        cells: by_index.into_values().map(|(c, _)| c).collect(),
    })
}
