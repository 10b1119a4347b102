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
//! Every error names the file, the line and what to do.

use crate::checker::Violation;
use crate::iommu::DriverKind;
use crate::mm::Policy;
use serde::Deserialize;
use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

/// Thread kinds of a timeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ThreadRef {
    Cpu(usize),
    Dev(u8),
}

impl fmt::Display for ThreadRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ThreadRef::Cpu(i) => write!(f, "cpu{i}"),
            ThreadRef::Dev(i) => write!(f, "dev{i}"),
        }
    }
}

pub const MAX_CPUS: usize = 16;

/// Where a device access can stop (`dev0: read addrA until translated`),
/// seen through the socket's probes, not inside the RTL:
/// - `translated`: the IOMMU answered the access's Translation Request (the
///   page's `xlat` probe shows a walk result or a Completion in flight).
///
/// The access goes on in the background; `dev0: resume` waits for it.
pub const DEV_CHECKPOINTS: &[&str] = &["translated"];
pub const MAX_DEVS: u8 = 16;

/// What a thread does in one `[Time N+k]` step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Read {
        page: usize,
    },
    Write {
        page: usize,
        value: u64,
    },
    /// `munmap` of `pages` pages from the named page's (zap_pte_range).
    Munmap {
        page: usize,
        pages: u64,
    },
    /// KSM write_protect_page of the page; with `into`, then merge it into
    /// that page's frame (replace_page).
    Ksm {
        page: usize,
        into: Option<usize>,
    },
    /// Writeback of the page: page_mkclean_one, then the I/O.
    Writeback {
        page: usize,
        dax: bool,
    },
    /// mprotect(PROT_READ) of a hugetlb page (hugetlb_change_protection).
    MprotectRo {
        page: usize,
    },
    /// fork: the hugetlb VMA holding the page is copied to a child (copy_hugetlb_page_range).
    Fork {
        page: usize,
    },
    /// split_huge_pmd of the huge zero page holding the page.
    Split {
        page: usize,
    },
    /// madvise(MADV_FREE) of the page.
    MadvFree {
        page: usize,
    },
    /// khugepaged collapses the 2 MiB region holding the page into a huge page.
    Collapse {
        page: usize,
    },
    /// try_to_unmap_one by reclaim (swap-out) or by page migration.
    Unmap {
        page: usize,
        migrate: bool,
    },
    Resume,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub thread: ThreadRef,
    pub action: Action,
    /// Stop after this checkpoint (a kernel path's, or a device access's
    /// [`DEV_CHECKPOINTS`]); None: to completion.
    pub until: Option<String>,
    /// The text as written, for the report.
    pub text: String,
}

impl Entry {
    /// The action as written, without its `until <checkpoint>`.
    pub fn action_text(&self) -> &str {
        self.text.split(" until ").next().unwrap_or(&self.text)
    }
}

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

/// Timing knobs; every field can be set in `params:`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// Memory latency of both RTL memory ports, cycles.
    pub mem_latency: u64,
    /// The device's memory port latency if it differs (0: `mem_latency`).
    pub dev_mem_latency: u64,
    /// The IOMMU's memory port latency (walker and command queue) if it
    /// differs (0: `mem_latency`).
    pub iommu_mem_latency: u64,
    /// One-way ATS link latency, cycles.
    pub ats_latency: u64,
    /// Extra cycles a Translation Completion spends in the fabric (a switch
    /// short of completion credits); Invalidate Requests, posted, pass it as
    /// PCIe ordering allows (`cfg_ats_cpl_delay_i`; 0: one ordered stream).
    pub ats_cpl_delay: u64,
    /// ATC entries in use (`cfg_atc_entries_i`; 0: all the build has).
    pub atc_entries: u64,
    /// IOTLB ways in use per set (`cfg_iotlb_ways_i`; 0: all the build has).
    pub iotlb_ways: u64,
    /// IOTLB sets in use, rounded down to a power of two
    /// (`cfg_iotlb_sets_i`; 0: all the build has).
    pub iotlb_sets: u64,
    /// ITags in use: the device's Invalidate Queue Depth as the driver
    /// programmed it; the queue stalls while that many ATS invalidations are
    /// outstanding (`cfg_ats_itags_i`; 0: all the build has).
    pub ats_itags: u64,
    /// Entries of the in-memory command queue (a power of two, 2 to 256:
    /// one 4 KiB frame of 16-byte commands; `cfg_cq_log2n_i`). The driver
    /// spins while it is full.
    pub cq_entries: u64,
    /// Cycles one kernel-path step (one checkpoint) takes.
    pub cpu_step_cycles: u64,
    /// A step of the timeline that runs longer than this fails (watchdog).
    pub watchdog_cycles: u64,
    /// Pages an mmu_gather batch holds before it must flush and free
    /// (before E): see host/mm/zap.rs.
    pub gather_batch: u64,
    /// Check the RTL's SystemVerilog assertions (default true); false lets a
    /// run go on past a broken invariant, for the checker to judge
    /// (`--no-assert`).
    pub assertions: bool,
    /// ATS invalidation timeout of the IOMMU, cycles (`cfg_ats_timeout_i`;
    /// 0: never time out).
    pub ats_timeout: u64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            mem_latency: 40,
            dev_mem_latency: 0,
            iommu_mem_latency: 0,
            ats_latency: 150,
            ats_cpl_delay: 0,
            atc_entries: 0,
            iotlb_ways: 0,
            iotlb_sets: 0,
            ats_itags: 0,
            cq_entries: 256,
            cpu_step_cycles: 10,
            watchdog_cycles: 200_000,
            gather_batch: 8,
            assertions: true,
            ats_timeout: 0,
        }
    }
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

#[derive(Debug, thiserror::Error)]
#[error("{}:{line}: {msg}", file.display())]
pub struct ScenarioError {
    pub file: PathBuf,
    pub line: usize,
    pub msg: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: String,
    about: String,
    #[serde(default)]
    notify: Option<String>,
    #[serde(default)]
    driver: Option<String>,
    #[serde(default)]
    inject: Vec<String>,
    #[serde(default)]
    params: Params,
    pages: serde_yaml_ng::Mapping,
    timeline: Vec<serde_yaml_ng::Mapping>,
    expect: serde_yaml_ng::Mapping,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPage {
    va: u64,
    #[serde(default)]
    value: u64,
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

/// Line numbers (1-based) of the items of a top-level block sequence
/// `key:`; serde gives no positions for values, so this reads the text.
fn item_lines(src: &str, key: &str) -> Vec<usize> {
    let mut out = Vec::new();
    let mut inside = false;
    let mut indent = None;
    let head = format!("{key}:");
    for (i, line) in src.lines().enumerate() {
        let t = line.trim_start();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let ind = line.len() - t.len();
        if ind == 0 && !t.starts_with('-') {
            inside = t.starts_with(&head);
            if inside && t[head.len()..].trim_start().starts_with('[') {
                return vec![i + 1];
            }
            continue;
        }
        if inside && (t.starts_with("- ") || t == "-") && *indent.get_or_insert(ind) == ind {
            out.push(i + 1);
        }
    }
    out
}

/// Line (1-based) of `key:` at top level, or of `sub:` under it.
fn key_line(src: &str, key: &str, sub: Option<&str>) -> usize {
    let mut inside = false;
    for (i, line) in src.lines().enumerate() {
        let t = line.trim_start();
        let ind = line.len() - t.len();
        if ind == 0 && !t.is_empty() && !t.starts_with('#') {
            if inside && sub.is_some() {
                break;
            }
            inside = t.starts_with(&format!("{key}:"));
            if inside && sub.is_none() {
                return i + 1;
            }
        } else if let (true, Some(s)) = (inside, sub) {
            if t.starts_with(&format!("{s}:"))
                || t.contains(&format!(" {s}:"))
                || t.contains(&format!("{{{s}:"))
            {
                return i + 1;
            }
        }
    }
    key_line_fallback(src, key)
}

fn key_line_fallback(src: &str, key: &str) -> usize {
    src.lines()
        .position(|l| l.starts_with(&format!("{key}:")))
        .map_or(1, |i| i + 1)
}

fn parse_int(s: &str) -> Option<u64> {
    let s = s.replace('_', "");
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

fn parse_thread(s: &str) -> Option<ThreadRef> {
    if let Some(n) = s.strip_prefix("cpu") {
        let i: usize = n.parse().ok()?;
        return (i < MAX_CPUS).then_some(ThreadRef::Cpu(i));
    }
    let n: u8 = s.strip_prefix("dev")?.parse().ok()?;
    (n < MAX_DEVS).then_some(ThreadRef::Dev(n))
}

/// Every checkpoint name a CPU thread can stop at.
pub fn checkpoint_names() -> Vec<&'static str> {
    let mut v: Vec<&str> = vec!["reuse", "load"];
    for c in crate::mm::ALL_CHECKPOINTS.iter().flat_map(|l| l.iter()) {
        if !v.contains(c) {
            v.push(c);
        }
    }
    v
}

impl Scenario {
    /// Read and check a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let src = std::fs::read_to_string(path).map_err(|e| ScenarioError {
            file: path.to_path_buf(),
            line: 0,
            msg: format!("cannot read the scenario: {e}"),
        })?;
        Self::parse(path, &src)
    }

    pub fn parse(path: &Path, src: &str) -> Result<Scenario, ScenarioError> {
        let err = |line: usize, msg: String| ScenarioError {
            file: path.to_path_buf(),
            line,
            msg,
        };
        let raw: RawScenario = serde_yaml_ng::from_str(src).map_err(|e| {
            let line = e.location().map_or(1, |l| l.line());
            err(
                line,
                format!("{e}; see scenarios/cow.yaml for the format (fields: name, about, notify, driver, inject, params, pages, timeline, expect)"),
            )
        })?;

        let notify = match raw.notify {
            None => None,
            Some(n) => Some(
                n.parse()
                    .map_err(|m| err(key_line(src, "notify", None), m))?,
            ),
        };
        let driver = match raw.driver {
            None => DriverKind::default(),
            Some(d) => d
                .parse()
                .map_err(|m| err(key_line(src, "driver", None), m))?,
        };

        let q = raw.params.cq_entries;
        if !(2..=256).contains(&q) || !q.is_power_of_two() {
            return Err(err(
                key_line(src, "params", None),
                format!("params.cq_entries = {q}: the command queue is one 4 KiB frame of 16-byte commands, so give a power of two from 2 to 256"),
            ));
        }

        let names: Vec<&str> = raw.inject.iter().map(String::as_str).collect();
        let inject =
            crate::rtl::inject_bits(&names).map_err(|m| err(key_line(src, "inject", None), m))?;

        let mut pages = Vec::new();
        for (k, v) in raw.pages {
            let name = k.as_str().unwrap_or_default().to_string();
            let line = key_line(src, "pages", Some(&name));
            if name.is_empty() {
                return Err(err(line, "a page name must be a string like addrA".into()));
            }
            let p: RawPage = serde_yaml_ng::from_value(v).map_err(|e| {
                err(
                    line,
                    format!(
                        "page '{name}': {e} (fields: va, value, cow, thp, hugetlb, zero, file)"
                    ),
                )
            })?;
            if p.va & 7 != 0 || (p.va >> 47 != 0) {
                return Err(err(
                    line,
                    format!("page '{name}': va {:#x} must be 8-byte aligned and below 2^47 (user half of a 48-bit address space)", p.va),
                ));
            }
            if let Some(o) = pages.iter().find(|o: &&Page| o.va >> 12 == p.va >> 12) {
                return Err(err(
                    line,
                    format!("page '{name}' shares its 4 KiB page with '{}': give each name its own page", o.name),
                ));
            }
            if p.zero && (!p.thp || p.value != 0 || p.cow) {
                return Err(err(line, format!("page '{name}': a zero page is 'thp: true, zero: true' with value 0 and no cow")));
            }
            if p.file && (p.cow || p.thp || p.hugetlb || p.zero) {
                return Err(err(line, format!("page '{name}': a file page is a small page of a shared mapping: drop cow, thp, hugetlb and zero")));
            }
            if p.thp && p.hugetlb {
                return Err(err(
                    line,
                    format!("page '{name}': a page is thp or hugetlb, not both"),
                ));
            }
            let huge = |t: bool, h: bool| t || h;
            let region = |o: &Page| {
                o.va >> 21 == p.va >> 21 && (huge(o.thp, o.hugetlb) || huge(p.thp, p.hugetlb))
            };
            if let Some(o) = pages.iter().find(|o| region(o)) {
                return Err(err(
                    line,
                    format!("page '{name}' and '{}' share a 2 MiB region and one is a huge page: move one to another 2 MiB region", o.name),
                ));
            }
            pages.push(Page {
                name,
                va: p.va,
                value: p.value,
                cow: p.cow,
                thp: p.thp,
                hugetlb: p.hugetlb,
                zero: p.zero,
                file: p.file,
            });
        }
        if pages.is_empty() || pages.len() > crate::sim::machine::PROBE_SLOTS {
            return Err(err(
                key_line(src, "pages", None),
                format!(
                    "a scenario names 1 to {} pages (one RTL probe slot each); this one names {}",
                    crate::sim::machine::PROBE_SLOTS,
                    pages.len()
                ),
            ));
        }

        let lines = item_lines(src, "timeline");
        let line_of = |i: usize| lines.get(i).or(lines.last()).copied().unwrap_or(1);
        let checkpoints = checkpoint_names();
        let mut timeline = Vec::new();
        for (i, m) in raw.timeline.iter().enumerate() {
            let line = line_of(i);
            let mut entries = Vec::new();
            for (k, v) in m {
                let tname = k.as_str().unwrap_or_default();
                let thread = parse_thread(tname).ok_or_else(|| {
                    err(
                        line,
                        format!(
                            "unknown thread '{tname}': use cpu0..cpu{} or dev0..dev{}",
                            MAX_CPUS - 1,
                            MAX_DEVS - 1
                        ),
                    )
                })?;
                let text = match v {
                    serde_yaml_ng::Value::String(s) => s.clone(),
                    _ => {
                        return Err(err(
                            line,
                            format!("{tname}: the action must be a string like 'read addrA'"),
                        ))
                    }
                };
                let entry = parse_action(thread, &text, &pages, &checkpoints)
                    .map_err(|m| err(line, format!("{tname}: '{text}': {m}")))?;
                entries.push(entry);
            }
            if entries.is_empty() {
                return Err(err(line, "an empty step: name at least one thread".into()));
            }
            timeline.push(Slot { line, entries });
        }
        if timeline.is_empty() {
            return Err(err(
                key_line(src, "timeline", None),
                "the timeline is empty".into(),
            ));
        }

        let eline = key_line(src, "expect", None);
        let mut expect = Vec::new();
        for (k, v) in raw.expect {
            let pname = k.as_str().unwrap_or_default();
            let line = key_line(src, "expect", Some(pname)).max(eline);
            let policy: Policy = pname.parse().map_err(|m| err(line, m))?;
            let kinds: Vec<String> = match v {
                serde_yaml_ng::Value::String(s) => vec![s],
                serde_yaml_ng::Value::Sequence(seq) => seq
                    .into_iter()
                    .map(|x| x.as_str().map(str::to_string).unwrap_or_default())
                    .collect(),
                _ => vec![String::new()],
            };
            let mut set = Expected::new();
            for s in kinds {
                if s == "clean" {
                    continue;
                }
                set.insert(
                    s.parse()
                        .map_err(|m: String| err(line, format!("expect.{pname}: {m}")))?,
                );
            }
            expect.push((policy, set));
        }

        Ok(Scenario {
            path: path.to_path_buf(),
            name: raw.name,
            about: raw.about,
            notify,
            driver,
            inject,
            params: raw.params,
            pages,
            timeline,
            expect,
        })
    }

    pub fn expected(&self, p: Policy) -> Option<&Expected> {
        self.expect.iter().find(|(q, _)| *q == p).map(|(_, e)| e)
    }
}

fn parse_action(
    thread: ThreadRef,
    text: &str,
    pages: &[Page],
    checkpoints: &[&str],
) -> Result<Entry, String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let (body, until) = match words.iter().position(|w| *w == "until") {
        Some(p) => {
            let cp = words.get(p + 1).ok_or("'until' needs a checkpoint name")?;
            if words.len() > p + 2 {
                return Err("nothing may follow 'until <checkpoint>'".into());
            }
            let known = match thread {
                ThreadRef::Cpu(_) => checkpoints,
                ThreadRef::Dev(_) => DEV_CHECKPOINTS,
            };
            if !known.contains(cp) {
                let whose = match thread {
                    ThreadRef::Cpu(_) => "",
                    ThreadRef::Dev(_) => " for a device access",
                };
                return Err(format!(
                    "unknown checkpoint '{cp}'{whose}: use one of {}",
                    known.join(", ")
                ));
            }
            if words.first() == Some(&"resume") && matches!(thread, ThreadRef::Dev(_)) {
                return Err("'resume' waits for the whole access: drop 'until'".into());
            }
            (&words[..p], Some(cp.to_string()))
        }
        None => (&words[..], None),
    };
    let page = |name: &str| {
        pages
            .iter()
            .position(|p| p.name == name)
            .ok_or_else(|| format!("unknown page '{name}': pages are {}", names(pages)))
    };
    let action = match body {
        ["read", p] => Action::Read { page: page(p)? },
        ["write", p, v] => Action::Write {
            page: page(p)?,
            value: parse_int(v).ok_or_else(|| format!("'{v}' is not a number (write 0x.. or decimal)"))?,
        },
        ["munmap", p, rest @ ..] if matches!(thread, ThreadRef::Cpu(_)) && rest.len() <= 1 => Action::Munmap {
            page: page(p)?,
            pages: match rest.first() {
                None => 1,
                Some(n) => parse_int(n).filter(|n| (1..=512).contains(n)).ok_or_else(|| format!("'{n}' is not a page count from 1 to 512"))?,
            },
        },
        ["ksm-wrprotect", p] if matches!(thread, ThreadRef::Cpu(_)) => Action::Ksm { page: page(p)?, into: None },
        ["ksm-merge", p, q] if matches!(thread, ThreadRef::Cpu(_)) => Action::Ksm {
            page: page(p)?,
            into: Some(page(q)?),
        },
        [w @ ("writeback" | "dax-writeback"), p] if matches!(thread, ThreadRef::Cpu(_)) => Action::Writeback {
            page: page(p)?,
            dax: *w == "dax-writeback",
        },
        ["mprotect", p, "ro"] if matches!(thread, ThreadRef::Cpu(_)) => Action::MprotectRo { page: page(p)? },
        ["fork", p] if matches!(thread, ThreadRef::Cpu(_)) => Action::Fork { page: page(p)? },
        ["collapse", p] if matches!(thread, ThreadRef::Cpu(_)) => {
            let i = page(p)?;
            if pages[i].cow || pages[i].thp || pages[i].hugetlb || pages[i].file {
                return Err(format!("'{p}': collapse takes a private small page (its 2 MiB region becomes a huge page)"));
            }
            Action::Collapse { page: i }
        }
        ["madv-free", p] if matches!(thread, ThreadRef::Cpu(_)) => {
            let i = page(p)?;
            if pages[i].cow || pages[i].thp || pages[i].hugetlb || pages[i].file {
                return Err(format!("'{p}': MADV_FREE is modelled for private anonymous small pages only"));
            }
            Action::MadvFree { page: i }
        }
        [v @ ("reclaim" | "migrate"), p] if matches!(thread, ThreadRef::Cpu(_)) => {
            let i = page(p)?;
            if pages[i].cow || pages[i].thp || pages[i].hugetlb {
                return Err(format!("'{p}': reclaim and migration are modelled for private small pages only"));
            }
            Action::Unmap {
                page: i,
                migrate: *v == "migrate",
            }
        }
        ["split", p] if matches!(thread, ThreadRef::Cpu(_)) => {
            let i = page(p)?;
            if !pages[i].zero {
                return Err(format!("'{p}' is not a huge zero page: only 'zero: true' pages can be split (a THP split is not modelled)"));
            }
            Action::Split { page: i }
        }
        ["munmap" | "ksm-wrprotect" | "ksm-merge" | "writeback" | "dax-writeback" | "mprotect" | "fork" | "split" | "reclaim" | "migrate" | "madv-free" | "collapse", ..] if matches!(thread, ThreadRef::Dev(_)) => {
            return Err("this is a kernel path: only CPU threads run it".into())
        }
        ["resume"] => Action::Resume,
        _ => return Err("expected 'read <page>', 'write <page> <value>', 'munmap <page> [<pages>]', 'ksm-wrprotect <page>', 'ksm-merge <page> <into-page>', 'writeback <page>', 'dax-writeback <page>', 'mprotect <page> ro', 'fork <page>', 'split <page>', 'reclaim <page>', 'migrate <page>', 'madv-free <page>', 'collapse <page>' or 'resume', optionally followed by 'until <checkpoint>'".into()),
    };
    Ok(Entry {
        thread,
        action,
        until,
        text: text.to_string(),
    })
}

fn names(pages: &[Page]) -> String {
    pages
        .iter()
        .map(|p| p.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
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
