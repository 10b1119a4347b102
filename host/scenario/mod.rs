//! Scenarios: YAML timelines written like the seed's `[Time N]` tables.
//!
//! ```yaml
//! name: cow
//! about: what it shows, as numbered steps
//! params: { mem_latency: 40, ats_latency: 150, cpu_step_cycles: 10 }
//! driver: intel                  # optional: generic (default), amd, intel, arm, arm-btm, batched
//! arch: riscv-sv39               # optional: x86-64 (default, the bundled socket) or
//!                                # riscv-sv39 / riscv-sv48 (the RISC-V socket)
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
mod write;
pub(crate) mod yaml;

pub use action::{
    checkpoint_names, parse_action as parse_step, parse_thread, processes, Action, Entry,
    ThreadRef, Until, DEV_CHECKPOINTS, MAX_CPUS, MAX_DEVS, MAX_MUNMAP_PAGES, PAGE_REQUEST,
};
pub use params::{parse_int, spec as param_spec, ParamSpec, Params, Rule, PARAMS};
pub use yaml::{shown, MAX_BYTES, MAX_DEPTH};

use crate::checker::Violation;
use crate::iommu::DriverKind;
use crate::mm::lang::{self, Paths, RawPath};
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
/// `name` as a scenario name at most [`MAX_NAME`] long: unchanged when it
/// fits, else its head and 8 hex digits of a hash of the whole, so that
/// two long names that differ only past the cut (two parameter points,
/// two kinds of finding) stay two names, two files.
pub fn fit_name(name: &str) -> String {
    if name.len() <= MAX_NAME {
        return name.to_string();
    }
    // FNV-1a, 64 bits, folded to 32: stable across builds and platforms.
    let h = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let head: String = name.chars().take(MAX_NAME - 9).collect();
    format!("{head}-{:08x}", (h ^ (h >> 32)) as u32)
}

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
    /// A hugetlbfs page holding `va`: 2 MiB, mapped by a PMD, or with
    /// `gigantic` 1 GiB, mapped by a PUD (`hugetlb: 1G`).
    pub hugetlb: bool,
    /// With `hugetlb`: a 1 GiB page (Linux's gigantic page, `hugepagesz=1G`,
    /// `MAP_HUGE_1GB`).
    pub gigantic: bool,
    /// With `thp`: mapped to the huge zero page (read-only zeros).
    pub zero: bool,
    /// A page-cache page of a shared file mapping (for `reclaim`).
    pub file: bool,
    /// Not mapped at the start: an address a path maps later (`mremap`'s
    /// destination).
    pub absent: bool,
    /// The process whose address space holds the page (0 to
    /// [`MAX_PROCESSES`] - 1): each is bound to the device with its own
    /// PASID, [`Page::pasid`].
    pub process: u8,
    /// The page (an index into the scenario's pages) whose page-cache page
    /// this one maps too: two processes' shared mappings of one file page
    /// (`shares: <page>`).
    pub shares: Option<usize>,
    /// A page of the kernel half (`kernel: true`, a vmalloc page at
    /// [`KERNEL_START`] or above): mapped by the kernel's own page tables
    /// (init_mm's, shared by every process's upper half), supervisor-only.
    /// The device reaches it through `process`'s PASID, with a user-mode
    /// request, which faults at the leaf.
    pub kernel: bool,
    /// With `kernel`: the device reaches it through the supervisor PASID
    /// instead (`kernel: supervisor`, [`KERNEL_PASID`]), bound to the
    /// kernel's page tables with supervisor requests enabled (Intel's
    /// `SVM_FLAG_SUPERVISOR_MODE`): its accesses are privileged and succeed.
    pub supervisor: bool,
}

/// The PASID a supervisor-mode binding of the kernel's address space has
/// (`kernel: supervisor` pages): the one after the processes'.
pub const KERNEL_PASID: u32 = MAX_PROCESSES as u32 + 1;

/// The first address of the x86-64 kernel half (48-bit, sign-extended).
pub const KERNEL_START: u64 = 0xffff_8000_0000_0000;

/// The span of a PUD entry (a PMD table): 1 GiB.
const PUD_SIZE: u64 = 1 << 30;

/// How many processes a scenario's pages may be in.
pub const MAX_PROCESSES: usize = 4;

/// The PASID process `process` is bound to (process 0 has PASID 1).
pub fn pasid_of(process: u8) -> u32 {
    u32::from(process) + 1
}

/// The process bound to `pasid` among `processes` of them, if any.
pub fn process_of(pasid: u32, processes: usize) -> Option<u8> {
    let n = pasid.checked_sub(1)? as usize;
    (n < processes).then_some(n as u8)
}

impl Page {
    /// The size of the huge page a `thp` or `hugetlb` page is a word of
    /// (1 GiB for `hugetlb: 1G`).
    pub fn huge_size(&self) -> crate::mem::PageSize {
        if self.gigantic {
            crate::mem::PageSize::Huge1G
        } else {
            crate::mem::PageSize::Huge2M
        }
    }

    /// The 1 GiB page a `hugetlb: 1G` page is a word of, as (process,
    /// gigabyte): two names with the same one are two words of one page
    /// (the parser allows nothing else in that gigabyte).
    pub fn gigabyte(&self) -> Option<(u8, u64)> {
        self.gigantic.then_some((self.process, self.va >> 30))
    }

    /// The PASID the page's process is bound to.
    pub fn pasid(&self) -> u32 {
        if self.supervisor {
            KERNEL_PASID
        } else {
            pasid_of(self.process)
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
    /// The page-table format, and with it the socket: x86-64 tables for
    /// the bundled IOMMU (docs/socket.md), Sv39/Sv48 for a RISC-V IOMMU
    /// specification design (docs/socket-riscv.md).
    pub arch: Arch,
    /// Injected RTL bugs (`cfg_inject_i`; 0: the correct design).
    pub inject: u16,
    pub params: Params,
    pub pages: Vec<Page>,
    /// The steps as written; empty when the scenario gives only programs
    /// (then `explore` chooses the schedules).
    pub timeline: Vec<Slot>,
    /// Each thread's program: `programs:` as written, or, for a timeline,
    /// each thread's actions in the order the timeline starts them (a
    /// timeline is one schedule of these programs).
    pub programs: Vec<Program>,
    /// The kernel paths in the path language: the bundled ones (as
    /// `kernel:` has them) with the scenario's `paths:` over them.
    pub paths: Paths,
    pub expect: Vec<(Policy, Expected)>,
}

/// The CPU's page-table format, and with it which socket runs the scenario.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Arch {
    /// x86-64 4-level tables, walked by the bundled IOMMU.
    #[default]
    X86_64,
    /// RISC-V Sv39, walked by the RISC-V socket's design.
    RiscvSv39,
    /// RISC-V Sv48 (the design must offer it in `capabilities`).
    RiscvSv48,
}

impl Arch {
    pub const ALL: [Arch; 3] = [Arch::X86_64, Arch::RiscvSv39, Arch::RiscvSv48];

    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86-64",
            Arch::RiscvSv39 => "riscv-sv39",
            Arch::RiscvSv48 => "riscv-sv48",
        }
    }

    /// The end of the user half of the address space.
    pub fn user_end(self) -> u64 {
        match self {
            Arch::RiscvSv39 => 1 << 38,
            _ => USER_END,
        }
    }

    /// Whether the RISC-V socket runs it.
    pub fn riscv(self) -> bool {
        self != Arch::X86_64
    }

    /// The host's page-table format.
    pub fn format(self) -> crate::mem::PtFormat {
        match self {
            Arch::X86_64 => crate::mem::PtFormat::X86_64,
            Arch::RiscvSv39 => crate::mem::PtFormat::Sv39,
            Arch::RiscvSv48 => crate::mem::PtFormat::Sv48,
        }
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Arch {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Arch::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown arch '{}': use x86-64, riscv-sv39 or riscv-sv48",
                    s.escape_debug()
                )
            })
    }
}

/// Where [`Scenario::with_arch`] moves pages whose addresses the new format
/// cannot map: this base, plus the address's low 36 bits.
pub const REBASE: u64 = 0x10_0000_0000;

impl Scenario {
    /// This scenario on `arch` (the command line's `--arch`): pages at
    /// addresses outside its user half move to [`REBASE`] plus their low 36
    /// bits (offsets inside a 2 MiB and a 1 GiB block kept), said in the
    /// returned notes; Err when two pages would share a page there, or
    /// when the scenario names a driver the arch does not run.
    pub fn with_arch(mut self, arch: Arch) -> Result<(Scenario, Vec<String>), String> {
        let file = self.path.display().to_string();
        if arch.riscv() && self.driver != DriverKind::Generic {
            return Err(format!(
                "{file}: driver: {} is a driver of the bundled IOMMU; --arch {arch} runs Linux's RISC-V IOMMU driver",
                self.driver
            ));
        }
        if let (true, Some(p)) = (arch.riscv(), self.pages.iter().find(|p| p.kernel)) {
            return Err(format!(
                "{file}: page '{}' is a kernel page: the kernel half is modelled on x86-64 only (run it without --arch)",
                p.name
            ));
        }
        let mut notes = Vec::new();
        if self
            .pages
            .iter()
            .any(|p| !p.kernel && p.va >= arch.user_end())
        {
            for p in &mut self.pages {
                let va = REBASE | (p.va & ((1 << 36) - 1));
                notes.push(format!(
                    "page '{}' moved from {:#x} to {va:#x}",
                    p.name, p.va
                ));
                p.va = va;
            }
            for (i, p) in self.pages.iter().enumerate() {
                let same = |o: &&Page| o.process == p.process && o.va >> 12 == p.va >> 12;
                if let Some(o) = self.pages[..i].iter().find(same) {
                    return Err(format!(
                        "{file}: on {arch} pages '{}' and '{}' would share a page (they differ only above bit 35): give the scenario arch-fitting addresses",
                        o.name, p.name
                    ));
                }
            }
        }
        self.arch = arch;
        if let Some(why) = self.unsupported() {
            return Err(format!("{file}: {why}"));
        }
        Ok((self, notes))
    }

    /// This scenario with the bundled paths as release `kernel` has them
    /// (`--kernel`); its own `paths:` stay over them.
    pub fn with_kernel(mut self, kernel: lang::Release) -> Scenario {
        self.paths = self.paths.at_kernel(Some(kernel));
        self
    }

    /// Every step of the timeline's and the programs', with its line.
    fn entries(&self) -> impl Iterator<Item = (usize, &Entry)> {
        let timeline =
            (self.timeline.iter()).flat_map(|s| s.entries.iter().map(move |e| (s.line, e)));
        let programs =
            (self.programs.iter()).flat_map(|p| p.actions.iter().map(move |e| (p.line, e)));
        timeline.chain(programs)
    }

    /// The first action whose bundled function the chosen kernel release
    /// did not have yet (its line, and why).
    fn kernel_refused(&self) -> Option<(usize, String)> {
        self.entries().find_map(|(line, e)| {
            let f = e.action.function(&self.pages)?;
            let (rel, commit, instead) = self.paths.introduced_after_kernel(f)?;
            let k = self.paths.kernel?;
            Some((line, format!(
                "'{}' runs {f}, which Linux {rel} brought ({commit}); at {k} {instead}: choose kernel {rel} or later",
                e.text
            )))
        })
    }

    /// On x86-64: the first `unbind` (its line, and why): the bundled IOMMU
    /// caches no process context.
    fn unbind_refused(&self) -> Option<(usize, String)> {
        if self.arch.riscv() {
            return None;
        }
        let (line, e) = self
            .entries()
            .find(|(_, e)| matches!(e.action, Action::Unbind { .. }))?;
        Some((line, format!(
            "'{}': the bundled IOMMU caches no process context to unbind; add 'arch: riscv-sv39' (docs/socket-riscv.md), or drop it",
            e.text
        )))
    }

    /// The timeline schedules the I/O page fault worker: it names `iopf`
    /// or stops a device access at its `page-request`. The worker then
    /// runs only in the steps that name it (and the final drain); else it
    /// runs in every step while it has work.
    pub fn iopf_scheduled(&self) -> bool {
        self.timeline
            .iter()
            .flat_map(|s| &s.entries)
            .any(|e| e.thread == ThreadRef::Iopf || e.until.name() == Some(action::PAGE_REQUEST))
    }

    /// The first step that schedules the I/O page fault worker (its line,
    /// and why) in a scenario whose device has no PRI.
    fn iopf_refused(&self) -> Option<(usize, String)> {
        if self.params.pri > 0 {
            return None;
        }
        let (line, e) = self.timeline.iter().find_map(|s| {
            s.entries
                .iter()
                .find(|e| {
                    e.thread == ThreadRef::Iopf || e.until.name() == Some(action::PAGE_REQUEST)
                })
                .map(|e| (s.line, e))
        })?;
        Some((
            line,
            format!(
                "{}: '{}': the device sends no Page Request (params.pri = 0): set params.pri (Page Requests per access), or drop it",
                e.thread, e.text
            ),
        ))
    }

    /// What this scenario asks that its arch's socket cannot do: on the
    /// RISC-V socket, the ATS and bundled-IOTLB parameters and injected
    /// bugs of the bundled RTL (`ats_latency` is accepted and unused: there
    /// is no ATS link); on x86-64, `unbind` and the RISC-V memory ports'
    /// parameters.
    pub fn unsupported(&self) -> Option<String> {
        let p = &self.params;
        if let Some((line, why)) = self.kernel_refused() {
            return Some(format!("line {line}: {why}"));
        }
        if !self.arch.riscv() {
            if let Some((line, why)) = self.unbind_refused() {
                return Some(format!("line {line}: {why}"));
            }
            return PARAMS.iter().find_map(|s| s.refused_on_x86((s.get)(p)));
        }
        let set = [
            ("ats_timeout", p.ats_timeout),
            ("ats_cpl_delay", p.ats_cpl_delay),
            ("atc_entries", p.atc_entries),
            ("ats_itags", p.ats_itags),
            ("iotlb_ways", p.iotlb_ways),
            ("iotlb_sets", p.iotlb_sets),
            ("pri", p.pri),
        ];
        if let Some((name, _)) = set.iter().find(|(_, v)| *v != 0) {
            return Some(format!(
                "params.{name} is a parameter of the bundled IOMMU's ATS, PRI or IOTLB; arch: {} runs a RISC-V IOMMU without ATS or a page-request queue (docs/socket-riscv.md): drop it, or run on x86-64",
                self.arch
            ));
        }
        if self.inject != 0 {
            return Some(format!(
                "inject names bugs of the bundled RTL; arch: {} runs another design: drop it",
                self.arch
            ));
        }
        None
    }
}

/// One thread's program: the actions it runs, in order, each to its end
/// (`until` is `End`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    pub thread: ThreadRef,
    /// The line it was written on (of its first action for a timeline).
    pub line: usize,
    pub actions: Vec<Entry>,
}

/// The programs a timeline runs: each thread's actions, `until` dropped.
pub fn programs_of(timeline: &[Slot]) -> Vec<Program> {
    let mut out: Vec<Program> = Vec::new();
    for slot in timeline {
        for e in &slot.entries {
            if e.action == Action::Resume {
                continue;
            }
            let action = Entry {
                until: Until::End,
                text: e.action_text().to_string(),
                ..e.clone()
            };
            match out.iter_mut().find(|p| p.thread == e.thread) {
                Some(p) => p.actions.push(action),
                None => out.push(Program {
                    thread: e.thread,
                    line: slot.line,
                    actions: vec![action],
                }),
            }
        }
    }
    out.sort_by_key(|p| p.thread);
    out
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

/// `programs:`: thread names to lists of actions, each with its line.
type ProgramMap = OrderedMap<Spanned<String>, Spanned<Vec<Spanned<String>>>>;

/// The fields every scenario must have (and `timeline` or `programs`).
const TOP_FIELDS: [&str; 4] = ["name", "about", "pages", "expect"];

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
    arch: Option<Spanned<String>>,
    #[serde(default)]
    kernel: Option<Spanned<String>>,
    #[serde(default)]
    inject: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    params: Option<TextMap>,
    pages: Spanned<OrderedMap<Spanned<String>, Spanned<RawPage>>>,
    #[serde(default)]
    timeline: Option<Spanned<Vec<Spanned<TextMap>>>>,
    #[serde(default)]
    programs: Option<Spanned<ProgramMap>>,
    #[serde(default)]
    paths: Option<Spanned<OrderedMap<Spanned<String>, Spanned<RawPath>>>>,
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
    hugetlb: Option<Spanned<String>>,
    #[serde(default)]
    zero: bool,
    #[serde(default)]
    file: bool,
    #[serde(default)]
    absent: bool,
    #[serde(default)]
    process: Option<Spanned<String>>,
    #[serde(default)]
    shares: Option<Spanned<String>>,
    #[serde(default)]
    kernel: Option<Spanned<String>>,
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
                    format!("the scenario has no '{f}:' (it needs name, about, pages, a timeline or programs, and expect); see scenarios/cow.yaml"),
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
        let arch = match &raw.arch {
            None => Arch::default(),
            Some(a) => a.value.parse().map_err(|m| err(line(a), m))?,
        };
        if arch.riscv() {
            if let Some(d) = raw
                .driver
                .as_ref()
                .filter(|_| driver != DriverKind::Generic)
            {
                return Err(err(
                    line(d),
                    format!(
                        "driver: {driver} is a driver of the bundled IOMMU; arch: {arch} runs Linux's \
                         RISC-V IOMMU driver ({}): leave 'driver' out",
                        crate::riscv::linux::RELEASE
                    ),
                ));
            }
        }
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
            if let Some(why) = spec.refused_on_x86(value).filter(|_| !arch.riscv()) {
                return Err(err(line(k), why));
            }
        }

        let kernel = match &raw.kernel {
            None => None,
            Some(k) => Some(
                (k.value.parse::<lang::Release>())
                    .map_err(|m| err(line(k), format!("kernel: {m}")))?,
            ),
        };
        let paths = match &raw.paths {
            None => Paths::bundled_at(kernel),
            Some(p) => Paths::with_at(
                kernel,
                lang::parse_paths(&path.display().to_string(), &p.value)
                    .map_err(|e| err(e.line, e.msg))?,
            ),
        };
        // a bundled file's call is checked by a unit test; a scenario's
        // (or one its override breaks) is this file's error
        let file = path.display().to_string();
        paths.check_calls().map_err(|(f, l, m)| match f == file {
            true => err(l, m),
            false => err(
                1,
                format!("{f}:{l}: {m} (a path this scenario overrides is called there)"),
            ),
        })?;
        let pages = parse_pages(&raw.pages, &err)?;
        if let (true, Some(p)) = (arch.riscv(), pages.iter().find(|p| p.kernel)) {
            return Err(err(
                raw.arch.as_ref().map_or(1, line),
                format!("arch: {arch}: page '{}' is a kernel page, and the kernel half is modelled on x86-64 only: drop 'arch:' (or the page)", p.name),
            ));
        }
        let user = |p: &&Page| !p.kernel && p.va >= arch.user_end();
        if let (Some(a), Some(p)) = (&raw.arch, pages.iter().find(user)) {
            return Err(err(
                line(a),
                format!(
                    "arch: {arch}: page '{}' at {:#x} is outside its user half (below {:#x}): move the pages there",
                    p.name,
                    p.va,
                    arch.user_end()
                ),
            ));
        }

        let (timeline, programs) = match (&raw.timeline, &raw.programs) {
            (None, None) => {
                return Err(err(
                    1,
                    "the scenario has neither 'timeline:' nor 'programs:': give the steps (see scenarios/cow.yaml) or each thread's program (see scenarios/programs/cow.yaml)".into(),
                ))
            }
            (Some(t), None) => {
                let timeline = parse_timeline(t, &pages, &paths, &err)?;
                let programs = programs_of(&timeline);
                (timeline, programs)
            }
            (None, Some(p)) => (Vec::new(), parse_programs(p, &pages, &paths, &err)?),
            (Some(t), Some(p)) => {
                let timeline = parse_timeline(t, &pages, &paths, &err)?;
                let programs = parse_programs(p, &pages, &paths, &err)?;
                let derived = programs_of(&timeline);
                for (a, b) in derived.iter().zip(&programs) {
                    let texts = |p: &Program| -> Vec<String> {
                        p.actions.iter().map(|e| e.text.clone()).collect()
                    };
                    if a.thread != b.thread || texts(a) != texts(b) {
                        return Err(err(
                            b.line,
                            format!("programs.{}: the timeline runs {} [{}] for it: a timeline is one schedule of the programs, so give both the same actions (or drop one)", b.thread, a.thread, texts(a).join(", ")),
                        ));
                    }
                }
                if derived.len() != programs.len() {
                    return Err(err(
                        line(p),
                        "the timeline and the programs name different threads: a timeline is one schedule of the programs".into(),
                    ));
                }
                (timeline, programs)
            }
        };

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

        let scenario = Scenario {
            path: path.to_path_buf(),
            name: raw.name.value,
            about: raw.about.value,
            notify,
            driver,
            arch,
            inject,
            params,
            pages,
            timeline,
            programs,
            paths,
            expect,
        };
        if let Some((l, why)) = scenario.unbind_refused() {
            return Err(err(l, why));
        }
        if let Some((l, why)) = scenario.iopf_refused() {
            return Err(err(l, why));
        }
        if let Some((l, why)) = scenario.kernel_refused() {
            return Err(err(l, why));
        }
        if let (Some(a), Some(why)) = (&raw.arch, scenario.unsupported()) {
            return Err(err(line(a), why));
        }
        Ok(scenario)
    }

    pub fn expected(&self, p: Policy) -> Option<&Expected> {
        self.expect.iter().find(|(q, _)| *q == p).map(|(_, e)| e)
    }
}

/// The timeline's steps, checked against the pages and checkpoints.
fn parse_timeline(
    raw: &Spanned<Vec<Spanned<TextMap>>>,
    pages: &[Page],
    paths: &Paths,
    err: &dyn Fn(usize, String) -> ScenarioError,
) -> Result<Vec<Slot>, ScenarioError> {
    let checkpoints = checkpoint_names(paths);
    if raw.value.len() > MAX_STEPS {
        return Err(err(
            line(raw),
            format!(
                "the timeline has {} steps; at most {MAX_STEPS}: split the scenario",
                raw.value.len()
            ),
        ));
    }
    let mut timeline = Vec::new();
    // Per device: the line of its access stopped at `until translated`
    // that no `resume` has waited for yet.
    let mut stopped: [Option<usize>; MAX_DEVS as usize] = [None; MAX_DEVS as usize];
    for step in &raw.value {
        let sline = line(step);
        let mut entries: Vec<Entry> = Vec::new();
        for (k, v) in &step.value.0 {
            let eline = line(k).max(sline);
            let thread = parse_thread(&k.value).map_err(|m| err(eline, m))?;
            let entry = action::parse_action(thread, &v.value, pages, &checkpoints, paths)
                .map_err(|m| err(eline, format!("{thread}: '{}': {m}", shown(v.value.trim()))))?;
            if let ThreadRef::Dev(d) = thread {
                let slot = &mut stopped[d as usize];
                match (&entry.action, *slot) {
                    (Action::Resume, None) => {
                        return Err(err(
                            eline,
                            format!("{thread}: 'resume': {thread} has no access stopped at a checkpoint to wait for: resume follows '{thread}: read <page> until translated' (or 'requested', 'page-request')"),
                        ))
                    }
                    (Action::Resume, Some(_)) => {
                        // `resume until page-request`: stopped again
                        if !entry.until.stops() {
                            *slot = None;
                        }
                    }
                    (_, Some(at)) => {
                        return Err(err(
                            eline,
                            format!("{thread}: '{}': {thread} is still inside its access of line {at} (stopped at a checkpoint): write '{thread}: resume' in an earlier step", entry.text),
                        ))
                    }
                    (_, None) => {
                        if entry.until.stops() {
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
            line(raw),
            "the timeline is empty: give at least one step like '- { dev0: read addrA }'".into(),
        ));
    }
    Ok(timeline)
}

/// `programs:`: each thread's list of actions.
fn parse_programs(
    raw: &Spanned<ProgramMap>,
    pages: &[Page],
    paths: &Paths,
    err: &dyn Fn(usize, String) -> ScenarioError,
) -> Result<Vec<Program>, ScenarioError> {
    let mut out: Vec<Program> = Vec::new();
    for (k, v) in &raw.value.0 {
        let l = line(k);
        let thread = parse_thread(&k.value).map_err(|m| err(l, m))?;
        let mut actions = Vec::new();
        for a in &v.value {
            let al = line(a).max(l);
            let mut more =
                action::parse_program_entry(thread, &a.value, pages, paths).map_err(|m| {
                    err(
                        al,
                        format!("programs.{thread}: '{}': {m}", shown(a.value.trim())),
                    )
                })?;
            actions.append(&mut more);
            if actions.len() > action::MAX_PROGRAM {
                return Err(err(
                    al,
                    format!(
                        "programs.{thread}: more than {} actions",
                        action::MAX_PROGRAM
                    ),
                ));
            }
        }
        if actions.is_empty() {
            return Err(err(
                l,
                format!("programs.{thread}: an empty program: give at least one action, or drop the thread"),
            ));
        }
        out.push(Program {
            thread,
            line: l,
            actions,
        });
    }
    if out.is_empty() {
        return Err(err(
            line(raw),
            "no programs: give at least one thread's, like 'cpu0: [write addrA 0xa1]'".into(),
        ));
    }
    out.sort_by_key(|p| p.thread);
    Ok(out)
}

/// The page `shares: <target>` of page `name` (in `process`, at `va`)
/// names: a file page of another process declared before it, itself not a
/// second mapping, that no other page of `process` maps, at the same offset
/// in its 4 KiB page; the value, if given, is the target's.
fn shared_page(
    pages: &[Page],
    name: &str,
    p: &RawPage,
    target: &Spanned<String>,
    process: u8,
    va: u64,
    value: u64,
) -> Result<usize, String> {
    let t = &target.value;
    let i = pages.iter().position(|o| o.name == *t).ok_or_else(|| {
        format!(
            "page '{name}': shares '{}', which is not a page declared before it (the pages so far: {})",
            shown(t),
            pages.iter().map(|o| o.name.as_str()).collect::<Vec<_>>().join(", ")
        )
    })?;
    let o = &pages[i];
    // (its size was checked before: any value but false is a hugetlb page)
    let hugetlb = p.hugetlb.as_ref().is_some_and(|h| h.value != "false");
    if !p.file || !o.file {
        return Err(format!("page '{name}': only a page of a shared file mapping shares another's page-cache page: give both '{name}' and '{t}' 'file: true'"));
    }
    if hugetlb != o.hugetlb {
        return Err(format!("page '{name}' and '{t}': one is a hugetlb page and one is not: a page-cache page is one size (give both or neither 'hugetlb: true')"));
    }
    if o.gigantic {
        return Err(format!("page '{name}': '{t}' is a 1 GiB hugetlb page, whose page table no other process shares (huge_pmd_share is for 2 MiB pages): share a 2 MiB one, or give '{name}' a page of its own"));
    }
    if hugetlb && va & (PUD_SIZE - 1) != o.va & (PUD_SIZE - 1) {
        return Err(format!("page '{name}': a hugetlb page that shares another's shares its page table too (huge_pmd_share), which needs the same offset in the 1 GiB region: give va {:#x} plus a multiple of 1 GiB", o.va & (PUD_SIZE - 1)));
    }
    if o.shares.is_some() {
        return Err(format!(
            "page '{name}': '{t}' is itself a second mapping of another page: share the first one"
        ));
    }
    if o.process == process {
        return Err(format!("page '{name}' and '{t}' are both in process {process}: a page shares another process's page (give '{name}' another 'process:')"));
    }
    if let Some(x) = pages
        .iter()
        .find(|x| x.process == process && x.shares == Some(i))
    {
        return Err(format!("page '{name}': '{}' of process {process} maps '{t}''s page already: one mapping per process", x.name));
    }
    if va & 0xfff != o.va & 0xfff {
        return Err(format!("page '{name}': va {va:#x} is at offset {:#x} in its page and '{t}' at {:#x}: the two names of one word sit at the same offset", va & 0xfff, o.va & 0xfff));
    }
    if p.value.is_some() && value != o.value {
        return Err(format!("page '{name}': value {value:#x} differs from '{t}''s {:#x}: one page holds one value (drop 'value')", o.value));
    }
    Ok(i)
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
        let process = match &p.process {
            None => 0,
            Some(n) => match number(n, "process")? {
                v if v < MAX_PROCESSES as u64 => v as u8,
                v => {
                    return Err(err(
                        line(n),
                        format!("page '{name}': process {v} is not 0 to {}: a scenario has at most {MAX_PROCESSES} processes, each bound to the device with its own PASID", MAX_PROCESSES - 1),
                    ))
                }
            },
        };
        // hugetlb: true (2 MiB), 2M or 1G (hugepagesz=)
        let (hugetlb, gigantic) = match p.hugetlb.as_ref().map(|h| (h, h.value.as_str())) {
            None | Some((_, "false")) => (false, false),
            Some((_, "true" | "2M")) => (true, false),
            Some((_, "1G")) => (true, true),
            Some((h, v)) => {
                return Err(err(
                    line(h),
                    format!("page '{name}': hugetlb '{}' is not a hugetlbfs page size: write 'hugetlb: true' or '2M' (a 2 MiB page), or '1G' (a 1 GiB page)", shown(v)),
                ))
            }
        };
        let huge = p.thp || hugetlb;
        let span = if gigantic {
            PUD_SIZE
        } else if huge {
            1 << 21
        } else {
            1 << 12
        };
        let base = va & !(span - 1);
        // kernel: true (through the process's PASID) or supervisor
        let (kernel, supervisor) = match p.kernel.as_ref().map(|k| (k, k.value.as_str())) {
            None | Some((_, "false")) => (false, false),
            Some((_, "true")) => (true, false),
            Some((_, "supervisor")) => (true, true),
            Some((k, v)) => {
                return Err(err(
                    line(k),
                    format!("page '{name}': kernel '{}' is not a way to reach a kernel page: write 'kernel: true' (the device's requests are its process's, user-mode) or 'kernel: supervisor' (through a supervisor PASID bound to the kernel's page tables)", shown(v)),
                ))
            }
        };
        if kernel && supervisor && process != 0 {
            return Err(err(
                l,
                format!("page '{name}': a supervisor page is reached through the kernel's own PASID, not a process's: drop 'process'"),
            ));
        }
        if kernel {
            if va & 7 != 0 || va < KERNEL_START {
                return Err(err(
                    line(&p.va),
                    format!("page '{name}': a kernel page's va {va:#x} must be 8-byte aligned and in the kernel half ({KERNEL_START:#x} and above; vmalloc's is 0xffffc90000000000)"),
                ));
            }
            if p.cow || p.thp || hugetlb || p.zero || p.file || p.absent || p.shares.is_some() {
                return Err(err(
                    l,
                    format!("page '{name}': a kernel page is one vmalloc page (4 KiB, supervisor-only): drop cow, thp, hugetlb, zero, file, absent and shares"),
                ));
            }
        } else if va & 7 != 0 || va >= USER_END || base < MMAP_MIN_ADDR {
            return Err(err(
                line(&p.va),
                format!(
                    "page '{name}': va {va:#x} must be 8-byte aligned, in the user half of a 48-bit address space (below {USER_END:#x}) and, with its {} page, at or above mmap_min_addr ({MMAP_MIN_ADDR:#x}), where Linux maps user pages",
                    if gigantic { "1 GiB" } else if huge { "2 MiB" } else { "4 KiB" }
                ),
            ));
        }
        if let Some(o) = pages
            .iter()
            .find(|o| (o.process == process || kernel) && o.va >> 12 == va >> 12)
        {
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
        if p.file && (p.cow || p.thp || p.zero) {
            return Err(err(
                l,
                format!("page '{name}': a file page is a small page or a hugetlbfs page of a shared mapping: drop cow, thp and zero"),
            ));
        }
        if p.absent && (p.cow || p.thp || hugetlb || p.zero || p.file || value != 0) {
            return Err(err(
                l,
                format!("page '{name}': an absent page is an address nothing maps yet: drop value, cow, thp, hugetlb, zero and file"),
            ));
        }
        if p.thp && hugetlb {
            return Err(err(
                l,
                format!("page '{name}': a page is thp or hugetlb, not both"),
            ));
        }
        let shares = match &p.shares {
            None => None,
            Some(n) => Some(
                shared_page(&pages, &name, p, n, process, va, value)
                    .map_err(|m| err(line(n), m))?,
            ),
        };
        let value = shares.map_or(value, |i| pages[i].value);
        let region = |o: &Page| {
            o.process == process
                && o.va >> 21 == va >> 21
                && (o.thp || o.hugetlb || huge)
                && !(o.gigantic && gigantic)
        };
        if let Some(o) = pages.iter().find(|o| region(o)) {
            return Err(err(
                l,
                format!("page '{name}' and '{}' share a 2 MiB region and one is a huge page: move one to another 2 MiB region", o.name),
            ));
        }
        // Two words of one 1 GiB page may both be named (one entry, a
        // translation that covers both), as two of anything else may not.
        let gigantic_region =
            |o: &Page| o.process == process && o.va >> 30 == va >> 30 && (o.gigantic || gigantic);
        if let Some(o) = pages.iter().find(|o| gigantic_region(o)) {
            let same_page = o.gigantic
                && gigantic
                && (o.cow, o.file, o.shares.is_some()) == (p.cow, p.file, p.shares.is_some());
            if !same_page {
                return Err(err(
                    l,
                    format!("page '{name}' and '{}' share a 1 GiB region and one is a 1 GiB hugetlb page: move one to another 1 GiB region, or make both 'hugetlb: 1G' with the same cow and file (two words of one page)", o.name),
                ));
            }
        }
        pages.push(Page {
            name,
            va,
            value,
            cow: p.cow,
            thp: p.thp,
            hugetlb,
            gigantic,
            zero: p.zero,
            file: p.file,
            absent: p.absent,
            process,
            shares,
            kernel,
            supervisor,
        });
    }
    // A shared page table's VMAs span the 1 GiB region (vma_shareable):
    // nothing else of either process lies in it.
    for (p, i) in pages.iter().filter_map(|p| Some((p, p.shares?))) {
        if !p.hugetlb {
            continue;
        }
        let o = &pages[i];
        let inside = |x: &Page, of: &Page| {
            x.process == of.process && x.va / PUD_SIZE == of.va / PUD_SIZE && x.name != of.name
        };
        if let Some(x) = pages.iter().find(|x| inside(x, p) || inside(x, o)) {
            let (k, _) = (raw.value.0.iter())
                .find(|(k, _)| k.value == x.name)
                .expect("a parsed page has its key");
            return Err(err(
                line(k),
                format!("page '{}' lies in the 1 GiB region whose page table '{}' and '{}' share (their hugetlb VMAs span it, vma_shareable): move it to another 1 GiB region", x.name, o.name, p.name),
            ));
        }
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

    #[test]
    fn a_long_name_is_cut_and_stays_distinct() {
        assert_eq!(fit_name("cow-seed-stale-read"), "cow-seed-stale-read");
        let head = "cow-programs-atslatency150-iommumemlatency40-end-only";
        let a = fit_name(&format!("{head}-order-violation-stale-read"));
        let b = fit_name(&format!("{head}-order-violation"));
        assert_eq!(a.len(), MAX_NAME);
        assert_ne!(a, b);
        assert!(a.starts_with(&head[..40]));
        assert!(check_name(&a).is_ok() && check_name(&b).is_ok());
        assert_eq!(a, fit_name(&format!("{head}-order-violation-stale-read")));
    }

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
        assert_eq!(s.timeline[1].entries[0].until.name(), Some("start"));
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
            e.msg
                .contains("for a device access: use one of requested, translated"),
            "{e}"
        );
        let ok = GOOD.replace("dev0: read addrA", "dev0: read addrA until requested");
        assert_eq!(
            parse(&ok).unwrap().timeline[0].entries[0].until.name(),
            Some("requested")
        );
        let ok = GOOD.replace("dev0: read addrA", "dev0: read addrA until translated");
        assert_eq!(
            parse(&ok).unwrap().timeline[0].entries[0].until.name(),
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

    const PROGRAMS: &str = "name: p
about: test
pages:
  addrA: { va: 0x7f0000000000, value: 0xa0, cow: true }
  addrB: { va: 0x7f0000001000, value: 0xb0 }
  addrC: { va: 0x7f0000002000, value: 0xc0 }
programs:
  cpu0: [write addrA 0xa1, munmap addrB]
  dev0: [read addrA..addrC, 2 x write addrB 5]
expect: { seed: clean }
";

    #[test]
    fn programs_expand_repeats_and_ranges() {
        let s = parse(PROGRAMS).unwrap();
        assert!(s.timeline.is_empty());
        assert_eq!(s.programs.len(), 2);
        let dev: Vec<&str> = s.programs[1]
            .actions
            .iter()
            .map(|e| e.text.as_str())
            .collect();
        assert_eq!(
            dev,
            [
                "read addrA",
                "read addrB",
                "read addrC",
                "write addrB 5",
                "write addrB 5"
            ]
        );
        assert_eq!(s.programs[0].line, 8);
        assert!(s
            .programs
            .iter()
            .flat_map(|p| &p.actions)
            .all(|e| e.until == Until::End));
    }

    #[test]
    fn a_timeline_gives_its_threads_programs() {
        let s = parse(GOOD).unwrap();
        let texts: Vec<(ThreadRef, Vec<&str>)> = s
            .programs
            .iter()
            .map(|p| {
                (
                    p.thread,
                    p.actions.iter().map(|e| e.text.as_str()).collect(),
                )
            })
            .collect();
        assert_eq!(
            texts,
            [
                (ThreadRef::Cpu(0), vec!["write addrA 0xa1"]),
                (ThreadRef::Cpu(1), vec!["write addrB 7"]),
                (ThreadRef::Dev(0), vec!["read addrA"]),
            ]
        );
    }

    #[test]
    fn program_errors_name_the_line() {
        for (from, to, line, msg) in [
            (
                "write addrA 0xa1,",
                "write addrA 0xa1 until start,",
                8,
                "drop 'until'",
            ),
            ("munmap addrB]", "resume]", 8, "belongs to a timeline"),
            (
                "read addrA..addrC",
                "read addrC..addrA",
                9,
                "in the order the pages are declared",
            ),
            (
                "read addrA..addrC",
                "read addrA..addrZ",
                9,
                "unknown page 'addrZ'",
            ),
            ("2 x write", "65 x write", 9, "repeat count from 1 to 64"),
            (
                "cpu0: [write addrA 0xa1, munmap addrB]",
                "cpu0: []",
                8,
                "an empty program",
            ),
            (
                "cpu0: [write addrA 0xa1, munmap addrB]",
                "cpu0: [read addrA..addrB]",
                8,
                "for device accesses",
            ),
        ] {
            let bad = PROGRAMS.replace(from, to);
            let e = parse(&bad).unwrap_err();
            assert_eq!(e.line, line, "{to}: {e}");
            assert!(e.msg.contains(msg), "{to}: {e}");
        }
        let neither = PROGRAMS.replace("programs:\n  cpu0: [write addrA 0xa1, munmap addrB]\n  dev0: [read addrA..addrC, 2 x write addrB 5]\n", "");
        assert!(parse(&neither)
            .unwrap_err()
            .msg
            .contains("neither 'timeline:' nor 'programs:'"));
        // Both: they must agree.
        let both = GOOD.replace("expect:", "programs:\n  cpu0: [write addrA 0xa1]\n  cpu1: [write addrB 7]\n  dev0: [read addrA]\nexpect:");
        assert!(parse(&both).is_ok());
        let differ = both.replace("cpu1: [write addrB 7]", "cpu1: [write addrB 8]");
        let e = parse(&differ).unwrap_err();
        assert!(
            e.msg
                .contains("programs.cpu1: the timeline runs cpu1 [write addrB 7]"),
            "{e}"
        );
    }
}
