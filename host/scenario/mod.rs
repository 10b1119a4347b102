//! Scenarios: YAML timelines written like the seed's `[Time N]` tables.
//!
//! ```yaml
//! name: cow
//! about: what it shows, as numbered steps
//! params: { mem_latency: 40, ats_latency: 150, cpu_step_cycles: 10 }
//! driver: intel                  # optional: generic (default), amd, intel, arm, arm-btm
//! pages:
//!   addrA: { va: 0x7f0000000000, value: 0xa0, cow: true }
//! timeline:                      # one entry per [Time N+k]
//!   - { dev0: read addrA }
//!   - { cpu0: write addrA 0xa1 until start }
//!   - { cpu0: resume }
//! expect: { end-only: [order-violation], seed: clean }
//! ```
//! A scenario file is untrusted input: every error names the file, the line
//! and what to write instead; names that end up in file names or waves are
//! checked here; every number is range-checked (`params.rs`); the YAML is
//! read under a budget (`yaml.rs`).

mod action;
mod params;
mod yaml;

pub use action::{
    checkpoint_names, parse_thread, Action, Entry, ThreadRef, DEV_CHECKPOINTS, MAX_CPUS, MAX_DEVS,
    MAX_MUNMAP_PAGES,
};
pub use params::{parse_int, spec as param_spec, ParamSpec, Params, Rule, PARAMS};
pub use yaml::{shown, MAX_BYTES, MAX_DEPTH};

use crate::checker::Violation;
use crate::iommu::DriverKind;
use crate::mm::Policy;
use serde::Deserialize;
use serde_saphyr::Spanned;
use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use yaml::{line, OneOrMany, OrderedMap};

/// The lowest user address Linux maps by default (`vm.mmap_min_addr`).
pub const MMAP_MIN_ADDR: u64 = 0x1_0000;
/// The end of the user half of a 48-bit address space.
pub const USER_END: u64 = 1 << 47;
/// The longest timeline, steps.
pub const MAX_STEPS: usize = 10_000;
/// The longest scenario name (it becomes a file name).
pub const MAX_NAME: usize = 64;
/// The longest page name (it becomes a VCD scope name).
pub const MAX_PAGE_NAME: usize = 32;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slot {
    pub line: usize,
    pub entries: Vec<Entry>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    pub name: String,
    pub va: u64,
    pub value: u64,
    /// Mapped read-only and shared with the parent (a COW page after fork).
    pub cow: bool,
    /// A 2 MiB transparent huge page (mapped by a PMD) holding `va`.
    pub thp: bool,
    /// A 2 MiB hugetlbfs page (mapped by a PMD) holding `va`.
    pub hugetlb: bool,
    /// With `thp`: mapped to the huge zero page (read-only zeros).
    pub zero: bool,
    /// A page-cache page of a shared file mapping (for `reclaim`).
    pub file: bool,
}

/// What a policy is expected to give: the exact set of violation kinds.
pub type Expected = BTreeSet<Violation>;

#[derive(Clone, Debug)]
pub struct Scenario {
    pub path: PathBuf,
    pub name: String,
    pub about: String,
    pub notify: Option<Policy>,
    /// Which IOMMU driver's command sequence the flushes follow.
    pub driver: DriverKind,
    /// Injected RTL bugs (`cfg_inject_i`; 0: the correct design).
    pub inject: u16,
    pub params: Params,
    pub pages: Vec<Page>,
    pub timeline: Vec<Slot>,
    pub expect: Vec<(Policy, Expected)>,
}

/// A scenario that cannot be used: the file, the line (0 when the error is
/// about the whole file) and what is wrong, with what to write instead.
#[derive(Debug, thiserror::Error)]
pub struct ScenarioError {
    pub file: PathBuf,
    pub line: usize,
    pub msg: String,
}

impl std::fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            0 => write!(f, "{}: {}", self.file.display(), self.msg),
            l => write!(f, "{}:{l}: {}", self.file.display(), self.msg),
        }
    }
}

/// A mapping of names to texts, each with its line (`params:`, a step).
type TextMap = OrderedMap<Spanned<String>, Spanned<String>>;

/// The fields every scenario must have.
const TOP_FIELDS: [&str; 5] = ["name", "about", "pages", "timeline", "expect"];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: Spanned<String>,
    about: Spanned<String>,
    #[serde(default)]
    notify: Option<Spanned<String>>,
    #[serde(default)]
    driver: Option<Spanned<String>>,
    #[serde(default)]
    inject: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    params: Option<TextMap>,
    pages: Spanned<OrderedMap<Spanned<String>, Spanned<RawPage>>>,
    timeline: Spanned<Vec<Spanned<TextMap>>>,
    expect: Spanned<OrderedMap<Spanned<String>, Spanned<OneOrMany>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPage {
    va: Spanned<String>,
    #[serde(default)]
    value: Option<Spanned<String>>,
    #[serde(default)]
    cow: bool,
    #[serde(default)]
    thp: bool,
    #[serde(default)]
    hugetlb: bool,
    #[serde(default)]
    zero: bool,
    #[serde(default)]
    file: bool,
}

/// A scenario name: it labels the runs in reports, sweep tables, JSON and
/// file names (the waves of a scenario given without a usable file name),
/// so letters, digits, `.`, `_` and `-`, starting with a letter or digit,
/// at most [`MAX_NAME`]: no path, no control character.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "name '{}': the name labels the runs in reports, tables and file names: use 1 to {MAX_NAME} letters, digits, '.', '_' or '-', starting with a letter or digit (e.g. cow-thp)",
            shown(name)
        ))
    }
}

/// A page name: a VCD scope in the waves and a word of the timeline, so an
/// identifier (letters, digits, `_`, not starting with a digit), at most
/// [`MAX_PAGE_NAME`].
pub fn check_page_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= MAX_PAGE_NAME
        && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "page name '{}': use 1 to {MAX_PAGE_NAME} letters, digits or '_', starting with a letter or '_' (e.g. addrA)",
            shown(name)
        ))
    }
}

impl Scenario {
    /// Read and check a scenario file (at most [`MAX_BYTES`]).
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let whole = |msg: String| ScenarioError {
            file: path.to_path_buf(),
            line: 0,
            msg,
        };
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_BYTES + 1).read_to_end(&mut bytes))
            .map_err(|e| whole(format!("cannot read the scenario: {e}")))?;
        if bytes.len() as u64 > MAX_BYTES {
            return Err(whole(format!(
                "the file is larger than {} KiB: a scenario is a short timeline; split it",
                MAX_BYTES / 1024
            )));
        }
        Self::parse_bytes(path, &bytes)
    }

    /// Check a scenario given as bytes (UTF-8, a byte-order mark allowed).
    pub fn parse_bytes(path: &Path, bytes: &[u8]) -> Result<Scenario, ScenarioError> {
        let src = yaml::decode(bytes).map_err(|(line, msg)| ScenarioError {
            file: path.to_path_buf(),
            line,
            msg,
        })?;
        Self::parse(path, src)
    }

    pub fn parse(path: &Path, src: &str) -> Result<Scenario, ScenarioError> {
        let err = |line: usize, msg: String| ScenarioError {
            file: path.to_path_buf(),
            line: line.max(1),
            msg,
        };
        let src = src.strip_prefix('\u{feff}').unwrap_or(src);
        if src.len() as u64 > MAX_BYTES {
            return Err(ScenarioError {
                file: path.to_path_buf(),
                line: 0,
                msg: format!(
                    "the text is larger than {} KiB: a scenario is a short timeline; split it",
                    MAX_BYTES / 1024
                ),
            });
        }
        let raw: RawScenario = yaml::from_str(src).map_err(|(line, msg)| {
            // A missing top-level field is reported where the file ends;
            // it belongs to the whole mapping, which starts on line 1.
            match TOP_FIELDS
                .iter()
                .find(|f| msg.starts_with(&format!("missing field `{f}`")))
            {
                Some(f) => err(
                    1,
                    format!("the scenario has no '{f}:' (it needs name, about, pages, timeline and expect); see scenarios/cow.yaml"),
                ),
                None => err(line, msg),
            }
        })?;

        check_name(&raw.name.value).map_err(|m| err(line(&raw.name), m))?;
        if let Some((l, c)) = raw.about.value.lines().enumerate().find_map(|(i, t)| {
            t.chars()
                .find(|c| c.is_control() && *c != '\t')
                .map(|c| (i, c))
        }) {
            return Err(err(
                line(&raw.about) + l,
                format!(
                    "about: the control character {:?} would reach the terminal: remove it",
                    c
                ),
            ));
        }

        let notify = match &raw.notify {
            None => None,
            Some(n) => Some(n.value.parse().map_err(|m| err(line(n), m))?),
        };
        let driver = match &raw.driver {
            None => DriverKind::default(),
            Some(d) => d.value.parse().map_err(|m| err(line(d), m))?,
        };
        let mut inject = 0;
        for name in raw.inject.iter().flatten() {
            inject |=
                crate::rtl::inject_bits(&[name.value.as_str()]).map_err(|m| err(line(name), m))?;
        }

        let mut params = Params::default();
        let mut seen: Vec<&str> = Vec::new();
        for (k, v) in raw.params.iter().flat_map(|m| m.0.iter()) {
            let spec = params::spec(&k.value).ok_or_else(|| {
                err(
                    line(k),
                    format!(
                        "unknown parameter '{}': use one of {}",
                        shown(&k.value),
                        params::names(false)
                    ),
                )
            })?;
            if seen.contains(&spec.name) {
                return Err(err(line(k), format!("params.{} is given twice", spec.name)));
            }
            seen.push(spec.name);
            let value = spec
                .parse(&v.value)
                .map_err(|m| err(line(v), format!("params.{m}")))?;
            (spec.set)(&mut params, value);
        }

        let pages = parse_pages(&raw.pages, &err)?;

        let checkpoints = checkpoint_names();
        if raw.timeline.value.len() > MAX_STEPS {
            return Err(err(
                line(&raw.timeline),
                format!(
                    "the timeline has {} steps; at most {MAX_STEPS}: split the scenario",
                    raw.timeline.value.len()
                ),
            ));
        }
        let mut timeline = Vec::new();
        // Per device: the line of its access stopped at `until translated`
        // that no `resume` has waited for yet.
        let mut stopped: [Option<usize>; MAX_DEVS as usize] = [None; MAX_DEVS as usize];
        for step in &raw.timeline.value {
            let sline = line(step);
            let mut entries: Vec<Entry> = Vec::new();
            for (k, v) in &step.value.0 {
                let eline = line(k).max(sline);
                let thread = parse_thread(&k.value).map_err(|m| err(eline, m))?;
                let entry =
                    action::parse_action(thread, &v.value, &pages, &checkpoints).map_err(|m| {
                        err(eline, format!("{thread}: '{}': {m}", shown(v.value.trim())))
                    })?;
                if let ThreadRef::Dev(d) = thread {
                    let slot = &mut stopped[d as usize];
                    match (&entry.action, *slot) {
                        (Action::Resume, None) => {
                            return Err(err(
                                eline,
                                format!("{thread}: 'resume': {thread} has no access stopped at 'until translated' to wait for: resume follows '{thread}: read <page> until translated'"),
                            ))
                        }
                        (Action::Resume, Some(_)) => *slot = None,
                        (_, Some(at)) => {
                            return Err(err(
                                eline,
                                format!("{thread}: '{}': {thread} is still inside its access of line {at} (stopped at 'translated'): write '{thread}: resume' in an earlier step", entry.text),
                            ))
                        }
                        (_, None) => {
                            if entry.until.is_some() {
                                *slot = Some(eline);
                            }
                        }
                    }
                }
                entries.push(entry);
            }
            if entries.is_empty() {
                return Err(err(sline, "an empty step: name at least one thread".into()));
            }
            timeline.push(Slot {
                line: sline,
                entries,
            });
        }
        if timeline.is_empty() {
            return Err(err(
                line(&raw.timeline),
                "the timeline is empty: give at least one step like '- { dev0: read addrA }'"
                    .into(),
            ));
        }

        let mut expect: Vec<(Policy, Expected)> = Vec::new();
        for (k, v) in &raw.expect.value.0 {
            let l = line(k).max(line(&raw.expect));
            let policy: Policy = k.value.parse().map_err(|m| err(l, m))?;
            let mut set = Expected::new();
            let mut clean = false;
            for s in &v.value.0 {
                if s == "clean" {
                    clean = true;
                    continue;
                }
                set.insert(
                    s.parse()
                        .map_err(|m: String| err(line(v), format!("expect.{policy}: {m}")))?,
                );
            }
            if clean && !set.is_empty() {
                return Err(err(
                    line(v),
                    format!("expect.{policy}: 'clean' and a violation kind contradict each other: give one or the other"),
                ));
            }
            if v.value.0.is_empty() {
                return Err(err(
                    line(v),
                    format!("expect.{policy}: empty: write 'clean' or the violation kinds"),
                ));
            }
            expect.push((policy, set));
        }

        Ok(Scenario {
            path: path.to_path_buf(),
            name: raw.name.value,
            about: raw.about.value,
            notify,
            driver,
            inject,
            params,
            pages,
            timeline,
            expect,
        })
    }

    pub fn expected(&self, p: Policy) -> Option<&Expected> {
        self.expect.iter().find(|(q, _)| *q == p).map(|(_, e)| e)
    }
}

/// The named pages, checked: names, addresses, kinds, overlaps.
fn parse_pages(
    raw: &Spanned<OrderedMap<Spanned<String>, Spanned<RawPage>>>,
    err: &dyn Fn(usize, String) -> ScenarioError,
) -> Result<Vec<Page>, ScenarioError> {
    let mut pages: Vec<Page> = Vec::new();
    let slots = crate::sim::machine::PROBE_SLOTS;
    for (k, v) in &raw.value.0 {
        let (name, l) = (k.value.clone(), line(k));
        check_page_name(&name).map_err(|m| err(l, m))?;
        if pages.len() == slots {
            return Err(err(
                l,
                format!("page '{name}' is one too many: a scenario names 1 to {slots} pages (one RTL probe slot each)"),
            ));
        }
        let p = &v.value;
        let number = |s: &Spanned<String>, what: &str| {
            parse_int(&s.value).ok_or_else(|| {
                err(
                    line(s),
                    format!(
                        "page '{name}': {what} '{}' is not a 64-bit number (write 0x.. or decimal)",
                        shown(&s.value)
                    ),
                )
            })
        };
        let va = number(&p.va, "va")?;
        let value = match &p.value {
            Some(v) => number(v, "value")?,
            None => 0,
        };
        let huge = p.thp || p.hugetlb;
        let base = if huge { va & !0x1f_ffff } else { va & !0xfff };
        if va & 7 != 0 || va >= USER_END || base < MMAP_MIN_ADDR {
            return Err(err(
                line(&p.va),
                format!(
                    "page '{name}': va {va:#x} must be 8-byte aligned, in the user half of a 48-bit address space (below {USER_END:#x}) and, with its {} page, at or above mmap_min_addr ({MMAP_MIN_ADDR:#x}), where Linux maps user pages",
                    if huge { "2 MiB" } else { "4 KiB" }
                ),
            ));
        }
        if let Some(o) = pages.iter().find(|o| o.va >> 12 == va >> 12) {
            return Err(err(
                l,
                format!(
                    "page '{name}' shares its 4 KiB page with '{}': give each name its own page",
                    o.name
                ),
            ));
        }
        if p.zero && (!p.thp || value != 0 || p.cow) {
            return Err(err(
                l,
                format!(
                    "page '{name}': a zero page is 'thp: true, zero: true' with value 0 and no cow"
                ),
            ));
        }
        if p.file && (p.cow || p.thp || p.hugetlb || p.zero) {
            return Err(err(
                l,
                format!("page '{name}': a file page is a small page of a shared mapping: drop cow, thp, hugetlb and zero"),
            ));
        }
        if p.thp && p.hugetlb {
            return Err(err(
                l,
                format!("page '{name}': a page is thp or hugetlb, not both"),
            ));
        }
        let region = |o: &Page| o.va >> 21 == va >> 21 && (o.thp || o.hugetlb || huge);
        if let Some(o) = pages.iter().find(|o| region(o)) {
            return Err(err(
                l,
                format!("page '{name}' and '{}' share a 2 MiB region and one is a huge page: move one to another 2 MiB region", o.name),
            ));
        }
        pages.push(Page {
            name,
            va,
            value,
            cow: p.cow,
            thp: p.thp,
            hugetlb: p.hugetlb,
            zero: p.zero,
            file: p.file,
        });
    }
    if pages.is_empty() {
        return Err(err(
            line(raw),
            format!("no pages: a scenario names 1 to {slots} pages, like 'addrA: {{ va: 0x7f0000000000, value: 0xa0 }}'"),
        ));
    }
    Ok(pages)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "name: t
about: test
pages:
  addrA: { va: 0x7f0000000000, value: 0xa0, cow: true }
  addrB: { va: 0x7f0000001000, value: 0xb0 }
timeline:
  - { dev0: read addrA }
  - { cpu0: write addrA 0xa1 until start, cpu1: write addrB 7 }
  - cpu0: resume
expect: { end-only: [order-violation, stale-read], seed: clean }
";

    fn parse(s: &str) -> Result<Scenario, ScenarioError> {
        Scenario::parse(Path::new("t.yaml"), s)
    }

    #[test]
    fn parses_the_format() {
        let s = parse(GOOD).unwrap();
        assert_eq!(s.pages.len(), 2);
        assert!(s.pages[0].cow && !s.pages[1].cow);
        assert_eq!(s.timeline.len(), 3);
        assert_eq!(s.timeline[1].line, 8);
        assert_eq!(s.timeline[2].line, 9);
        assert_eq!(s.timeline[1].entries[0].until.as_deref(), Some("start"));
        assert_eq!(
            s.timeline[1].entries[1].action,
            Action::Write { page: 1, value: 7 }
        );
        assert_eq!(s.expected(Policy::EndOnly).unwrap().len(), 2);
        assert!(s.expected(Policy::Seed).unwrap().is_empty());
        assert!(s.expected(Policy::Arch).is_none());
    }

    #[test]
    fn errors_name_the_line_and_field() {
        let bad = GOOD.replace("cpu0: resume", "cpu0: resume until nowhere");
        let e = parse(&bad).unwrap_err();
        assert_eq!(e.line, 9);
        assert!(e.to_string().starts_with("t.yaml:9: cpu0:"), "{e}");
        assert!(e.msg.contains("unknown checkpoint 'nowhere'"));

        let bad = GOOD.replace("read addrA }", "read addrC }");
        let e = parse(&bad).unwrap_err();
        assert_eq!(e.line, 7);
        assert!(e.msg.contains("unknown page 'addrC'"), "{e}");

        let bad = GOOD.replace("about: test", "about: test\ncolour: blue");
        let e = parse(&bad).unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        assert!(e.msg.contains("unknown field `colour`"), "{e}");

        let bad = GOOD.replace("value: 0xb0", "value: 0xb0, huge: true");
        let e = parse(&bad).unwrap_err();
        assert_eq!(e.line, 5, "{e}");
        assert!(e.msg.contains("huge"), "{e}");

        let bad = GOOD.replace("seed: clean", "seed: spotless");
        let e = parse(&bad).unwrap_err();
        assert_eq!(e.line, 10, "{e}");

        let bad = GOOD.replace("dev0: read addrA", "dev0: read addrA until start");
        let e = parse(&bad).unwrap_err();
        assert!(
            e.msg.contains("for a device access: use one of translated"),
            "{e}"
        );
        let ok = GOOD.replace("dev0: read addrA", "dev0: read addrA until translated");
        assert_eq!(
            parse(&ok).unwrap().timeline[0].entries[0].until.as_deref(),
            Some("translated")
        );
        let bad = GOOD.replace("cpu0: resume", "cpu0: resume until translated");
        assert!(parse(&bad).unwrap_err().msg.contains("unknown checkpoint"));

        let bad = GOOD.replace("{ dev0: read addrA }", "{ gpu0: read addrA }");
        assert!(parse(&bad)
            .unwrap_err()
            .msg
            .contains("unknown thread 'gpu0'"));

        let e = parse("name: [unclosed").unwrap_err();
        assert_eq!(e.line, 1);
    }
}
