//! The checker: judges what the simulated device actually read and wrote.
//!
//! It keeps the CPUs' global store order (every store's version), the
//! history of every word the scenario names, and every device access seen
//! on the device's memory port, and reports:
//! - stale-translation windows per named page and per cache (IOTLB, ATC, a
//!   translation in flight), read from the RTL's probe ports each cycle;
//! - **stale reads**: the device read an older value than a store to that
//!   address which had completed before the read was issued;
//! - **order violations**: the device observed a store, then read a location
//!   older than a store that preceded the observed one in the global store
//!   order (the seed's symptom);
//! - **use-after-free**: the device touched a frame that was freed, or freed
//!   and handed to another owner, since it was mapped at that address;
//! - **lost writes**: a device write landed in a frame the CPU page table no
//!   longer maps at that address, and nothing carried it back (the word the
//!   CPU sees is neither that write, a newer one, nor its value); except a
//!   write made before a madvise(MADV_FREE) of that page returned, into the
//!   frame reclaim then discarded: MADV_FREE's contract lets it go (the
//!   caller no longer needs the data; only a write after the call returns
//!   must survive);
//! - **writes after protect**: a device write landed, through a writable
//!   translation, in a frame the CPU page table maps read-only at that
//!   address, issued after the operation that took write permission away
//!   (mprotect, fork, writeback) had returned: the kernel relies on no one
//!   writing there any more (a fork's child shares the page, a cleaned page
//!   is not written back again). A write racing the operation itself is
//!   concurrent with it and allowed;
//! - **no progress**: a device with PCIe PRI asked the kernel to fix its
//!   translation fault as many times as it may (`params.pri`), every
//!   Page Request was answered Success, and the translation still did not
//!   grant the access: it gave up. Without PRI a fault ends the access at
//!   once (the device's driver sees an error); that is reported, not judged.
//!   Nor is a device access that has no response at all when its step ran
//!   past the watchdog with no CPU thread left to wait for: the hardware
//!   made no progress within the bound (the run stops there);
//! - **isolation**: a device access through one process's PASID touched a
//!   frame that process never mapped at a named page and another process
//!   did: the device reached another address space's memory (an IOMMU
//!   that tags its caches without the PASID, or walks the wrong table).

use crate::mem::{FrameState, Leaf, Pfn};
use crate::rtl::ProbeEntry;
use crate::sim::machine::DevMemAccess;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Violation {
    OrderViolation,
    StaleRead,
    UseAfterFree,
    LostWrite,
    WriteAfterProtect,
    NoProgress,
    Isolation,
}

impl Violation {
    pub const ALL: [Violation; 7] = [
        Violation::OrderViolation,
        Violation::StaleRead,
        Violation::UseAfterFree,
        Violation::LostWrite,
        Violation::WriteAfterProtect,
        Violation::NoProgress,
        Violation::Isolation,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Violation::OrderViolation => "order-violation",
            Violation::StaleRead => "stale-read",
            Violation::UseAfterFree => "use-after-free",
            Violation::LostWrite => "lost-write",
            Violation::WriteAfterProtect => "write-after-protect",
            Violation::NoProgress => "no-progress",
            Violation::Isolation => "isolation",
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Violation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Violation::ALL
            .into_iter()
            .find(|v| v.name() == s)
            .ok_or_else(|| {
                format!("unknown verdict '{}': use clean, order-violation, stale-read, use-after-free, lost-write, write-after-protect, no-progress or isolation", s.escape_debug())
            })
    }
}

/// Which cache holds a stale translation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Cache {
    Iotlb,
    Atc,
    InFlight,
}

impl Cache {
    pub const ALL: [Cache; 3] = [Cache::Iotlb, Cache::Atc, Cache::InFlight];
    pub fn name(self) -> &'static str {
        match self {
            Cache::Iotlb => "IOTLB",
            Cache::Atc => "ATC",
            Cache::InFlight => "in-flight",
        }
    }
}

/// Cycles `[start, end)` in which `cache` held a translation of `page`
/// that the CPU page table no longer had; `end` None: still open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub page: usize,
    pub cache: Cache,
    pub start: u64,
    pub end: Option<u64>,
}

impl Window {
    pub fn len(&self, now: u64) -> u64 {
        self.end.unwrap_or(now) - self.start
    }
    pub fn contains(&self, cycle: u64) -> bool {
        cycle >= self.start && self.end.is_none_or(|e| cycle < e)
    }
}

/// The RISC-V socket's directory caches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ContextCache {
    /// Device contexts (`probe_ddtc`).
    Ddtc,
    /// Process contexts (`probe_pdtc`).
    Pdtc,
}

impl ContextCache {
    pub const ALL: [ContextCache; 2] = [ContextCache::Ddtc, ContextCache::Pdtc];
    pub fn name(self) -> &'static str {
        match self {
            ContextCache::Ddtc => "DDTC",
            ContextCache::Pdtc => "PDTC",
        }
    }
}

/// Cycles `[start, end)` in which one of the IOMMU's directory caches held
/// a context the directory in memory no longer had (valid there no more):
/// every page of the device or process was reachable through it. `end`
/// None: still open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContextWindow {
    pub cache: ContextCache,
    pub start: u64,
    pub end: Option<u64>,
}

impl ContextWindow {
    pub fn len(&self, now: u64) -> u64 {
        self.end.unwrap_or(now) - self.start
    }
}

/// Is a cached translation stale against the CPU's current one?
pub fn is_stale(cached: Option<ProbeEntry>, cpu: Option<&Leaf>) -> bool {
    match (cached, cpu) {
        (None, _) => false,
        // a fault (an entry that grants nothing) translates to nothing
        (Some(c), _) if !c.r && !c.w => false,
        (Some(_), None) => true,
        (Some(c), Some(l)) => c.ppn != l.pfn || (c.w && !l.writable),
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub kind: Violation,
    pub cycle: u64,
    pub dev: u8,
    pub va: u64,
    pub detail: String,
}

/// A store in the global order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreRec {
    pub version: u64,
    pub who: String,
    pub va: u64,
    pub value: u64,
    pub cycle: u64,
}

/// A device write that landed in a frame the CPU did not map at that
/// address: lost unless something carries it to where the CPU or the disk
/// will see it.
#[derive(Clone, Copy, Debug)]
struct Suspect {
    dev: u8,
    va: u64,
    pfn: Pfn,
    value: u64,
    version: u64,
    cycle: u64,
}

/// Write permission taken from a page by CPU thread `tid`'s operation at
/// cycle `at`; `returned`: the cycle that operation returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Protected {
    tid: usize,
    at: u64,
    returned: Option<u64>,
}

/// A device read as the checker saw it.
#[derive(Clone, Copy, Debug)]
struct DevRead {
    completed: u64,
    version: u64,
}

/// Where the process sits in an address the checker knows ([`key`]).
const PROCESS_SHIFT: u32 = 56;

/// The address the checker, the records and the report know process
/// `process`'s virtual address `va` by: the process in the bits above
/// [`PROCESS_SHIFT`], so the same VA in two processes is two addresses.
/// The VA keeps its 48 bits (a kernel-half address, bits 63:47 set, loses
/// its sign extension, which [`split_key`] gives back). Process 0's user
/// addresses are their plain VAs.
pub fn key(process: u8, va: u64) -> u64 {
    (va & VA_MASK) | u64::from(process) << PROCESS_SHIFT
}

/// The 48 bits of a VA a [`key`] keeps.
const VA_MASK: u64 = (1 << 48) - 1;

/// The process and the virtual address of a [`key`] (a kernel-half
/// address sign-extended again from bit 47).
pub fn split_key(k: u64) -> (u8, u64) {
    let va = k & VA_MASK;
    let va = if va >> 47 != 0 { va | !VA_MASK } else { va };
    ((k >> PROCESS_SHIFT) as u8, va)
}

pub struct Checker {
    /// (process, frame) of each frame a process's named page was seen
    /// mapped to ([`Checker::maps`]).
    spaces: BTreeSet<(u8, Pfn)>,
    page_names: Vec<String>,
    page_vas: Vec<u64>,
    open: Vec<[Option<u64>; 3]>,
    pub windows: Vec<Window>,
    pub context_windows: Vec<ContextWindow>,
    open_context: [Option<u64>; 2],
    /// Stores by version (the global order).
    stores: BTreeMap<u64, StoreRec>,
    /// Versions stored to each 8-byte address, in order.
    history: BTreeMap<u64, Vec<u64>>,
    /// (page VA, frame) -> frame generation when that mapping was made.
    mapped: BTreeMap<(u64, Pfn), u32>,
    reads: Vec<DevRead>,
    suspects: Vec<Suspect>,
    /// Per page: the madvise(MADV_FREE) calls, (began, returned) cycles.
    madv_free: BTreeMap<u64, Vec<(u64, Option<u64>)>>,
    /// Frames reclaim discarded as lazily freeable: (page, frame, cycle).
    discards: Vec<(u64, Pfn, u64)>,
    /// Calls running now that throw a range's contents away (munmap,
    /// MADV_DONTNEED, exit): `[start, end)` of each.
    discarding: Vec<(u64, u64)>,
    /// Per named page the CPU maps read-only after it was writable: who
    /// took write permission away, when, and when that operation returned.
    protected: BTreeMap<usize, Protected>,
    /// Named pages the CPU has mapped writable since they were last
    /// read-only.
    writable_seen: BTreeSet<usize>,
    /// Frames freed as page tables that the IOMMU walked since.
    walked_freed: BTreeSet<Pfn>,
    /// A page's second name: another process's mapping of the same
    /// page-cache page (`shares:`), or the address mremap moved it to, by
    /// page address, to the first's.
    aliases: BTreeMap<u64, u64>,
    pub findings: Vec<Finding>,
}

impl Checker {
    pub fn new(pages: &[(String, u64)]) -> Self {
        Checker {
            spaces: BTreeSet::new(),
            page_names: pages.iter().map(|p| p.0.clone()).collect(),
            page_vas: pages.iter().map(|p| p.1).collect(),
            open: vec![[None; 3]; pages.len()],
            windows: Vec::new(),
            context_windows: Vec::new(),
            open_context: [None; 2],
            stores: BTreeMap::new(),
            history: BTreeMap::new(),
            mapped: BTreeMap::new(),
            reads: Vec::new(),
            suspects: Vec::new(),
            madv_free: BTreeMap::new(),
            walked_freed: BTreeSet::new(),
            discards: Vec::new(),
            discarding: Vec::new(),
            protected: BTreeMap::new(),
            writable_seen: BTreeSet::new(),
            aliases: BTreeMap::new(),
            findings: Vec::new(),
        }
    }

    /// The page at `page` is `of`'s page-cache page mapped by another
    /// process: a store through either name is a store to both.
    pub fn alias(&mut self, page: u64, of: u64) {
        self.aliases.insert(page & !0xfff, of & !0xfff);
    }

    /// The one name of the word `va` names: a second mapping's address
    /// becomes the first's.
    fn canon(&self, va: u64) -> u64 {
        match self.aliases.get(&(va & !0xfff)) {
            Some(&of) => of | (va & 0xfff),
            None => va,
        }
    }

    /// Every name of the word `va` names (the first mapping's, then the
    /// others').
    fn names(&self, va: u64) -> Vec<u64> {
        let first = self.canon(va);
        let others = (self.aliases.iter())
            .filter(|&(_, &of)| of == first & !0xfff)
            .map(|(&page, _)| page | (va & 0xfff));
        std::iter::once(first).chain(others).collect()
    }

    pub fn page_name(&self, i: usize) -> &str {
        &self.page_names[i]
    }

    /// A name for an address: the page's name, with the offset if any.
    pub fn describe_va(&self, va: u64) -> String {
        for (n, &pva) in self.page_names.iter().zip(&self.page_vas) {
            if va == pva {
                return n.clone();
            }
            if va >> 12 == pva >> 12 {
                return format!("{n}{:+}", va as i64 - pva as i64);
            }
        }
        match split_key(va) {
            (0, va) => format!("{va:#x}"),
            (p, va) => format!("{va:#x} of process {p}"),
        }
    }

    /// Process `process`'s page table maps a named page to `pfn`.
    pub fn maps(&mut self, process: u8, pfn: Pfn) {
        self.spaces.insert((process, pfn));
    }

    /// Record a store in the global order (CPU stores, initial values, and
    /// device writes all go through here).
    pub fn store(&mut self, who: String, va: u64, value: u64, version: u64, cycle: u64) {
        self.history
            .entry(self.canon(va) & !7)
            .or_default()
            .push(version);
        self.stores.insert(
            version,
            StoreRec {
                version,
                who,
                va,
                value,
                cycle,
            },
        );
    }

    /// A PTE of the device's address space now maps `page_va` to `pfn`.
    pub fn mapped(&mut self, page_va: u64, pfn: Pfn, state: FrameState) {
        if let FrameState::Allocated { generation, .. } = state {
            self.mapped.insert((page_va & !0xfff, pfn), generation);
        }
    }

    /// Per-cycle window tracking for page `i`.
    pub fn observe(
        &mut self,
        cycle: u64,
        i: usize,
        cpu: Option<&Leaf>,
        held: [Option<ProbeEntry>; 3],
    ) -> bool {
        let mut any = false;
        for (c, cache) in Cache::ALL.into_iter().enumerate() {
            let stale = is_stale(held[c], cpu);
            any |= stale;
            match (stale, self.open[i][c]) {
                (true, None) => self.open[i][c] = Some(cycle),
                (false, Some(start)) => {
                    self.open[i][c] = None;
                    self.windows.push(Window {
                        page: i,
                        cache,
                        start,
                        end: Some(cycle),
                    });
                }
                _ => {}
            }
        }
        any
    }

    /// Per-cycle tracking of the directory caches ([`ContextCache::ALL`]
    /// order): `stale` when one holds a context its directory no longer
    /// has.
    pub fn observe_context(&mut self, cycle: u64, stale: [bool; 2]) {
        for (c, cache) in ContextCache::ALL.into_iter().enumerate() {
            match (stale[c], self.open_context[c]) {
                (true, None) => self.open_context[c] = Some(cycle),
                (false, Some(start)) => {
                    self.open_context[c] = None;
                    self.context_windows.push(ContextWindow {
                        cache,
                        start,
                        end: Some(cycle),
                    });
                }
                _ => {}
            }
        }
    }

    /// Close the books: windows still open stay open (end None).
    pub fn finish(&mut self) {
        for (c, cache) in ContextCache::ALL.into_iter().enumerate() {
            if let Some(start) = self.open_context[c].take() {
                self.context_windows.push(ContextWindow {
                    cache,
                    start,
                    end: None,
                });
            }
        }
        self.context_windows.sort_by_key(|w| (w.start, w.cache));
        for (i, o) in self.open.iter_mut().enumerate() {
            for (c, cache) in Cache::ALL.into_iter().enumerate() {
                if let Some(start) = o[c].take() {
                    self.windows.push(Window {
                        page: i,
                        cache,
                        start,
                        end: None,
                    });
                }
            }
        }
        self.windows.sort_by_key(|w| (w.page, w.start, w.cache));
    }

    /// The latest version of `va` stored at or before `cycle`.
    fn latest(&self, va: u64, cycle: u64) -> Option<&StoreRec> {
        self.history
            .get(&(self.canon(va) & !7))?
            .iter()
            .rev()
            .map(|v| &self.stores[v])
            .find(|s| s.cycle <= cycle)
    }

    fn what(&self, version: u64) -> String {
        match self.stores.get(&version) {
            Some(s) if s.who == "init" => format!(
                "the initial value {:#x} of {}",
                s.value,
                self.describe_va(s.va)
            ),
            Some(s) => format!(
                "{}'s store {:#x} to {} (cycle {})",
                s.who,
                s.value,
                self.describe_va(s.va),
                s.cycle
            ),
            None => "a value no store wrote".into(),
        }
    }

    /// Judge one device access. `va` is the address the device thread
    /// asked for, `issued` the cycle it asked, `cpu` the CPU's translation
    /// of `va` at the access, `frame` the state of the frame it touched.
    /// A read is observed when it reads memory (`a.cycle`): a later read
    /// issued after that cycle is ordered after it.
    pub fn dev_access(
        &mut self,
        a: &DevMemAccess,
        va: u64,
        issued: u64,
        cpu: Option<&Leaf>,
        frame: FrameState,
    ) {
        let pfn = a.pa >> 12;
        let name = self.describe_va(va);
        let mut found = Vec::new();
        match frame {
            FrameState::Free => found.push((
                Violation::UseAfterFree,
                format!(
                    "dev{} touched frame {pfn:#x} of {name} after it was freed",
                    a.id
                ),
            )),
            FrameState::Allocated { generation, .. } => {
                if let Some(&g) = self.mapped.get(&(va & !0xfff, pfn)) {
                    if g != generation {
                        found.push((
                            Violation::UseAfterFree,
                            format!("dev{} touched frame {pfn:#x} of {name}: freed and reused by another owner since it was mapped there", a.id),
                        ));
                    }
                }
            }
        }
        let process = split_key(va).0;
        let ours = self.spaces.contains(&(process, pfn));
        let theirs = (self.spaces.iter()).find(|&&(q, f)| f == pfn && q != process);
        if let (false, Some(&(q, _))) = (ours, theirs) {
            found.push((
                Violation::Isolation,
                format!("dev{} {} {name} in frame {pfn:#x}, which process {process}'s page tables never mapped and process {q}'s did: another address space's memory", a.id, if a.write { "wrote" } else { "read" }),
            ));
        }
        let discarded = (self.discarding.iter()).any(|(s, e)| (*s..*e).contains(&va));
        if a.write && cpu.is_none_or(|l| l.pfn != pfn) && !discarded {
            // Not lost yet: a pageout, a writeback or a migration copy made
            // after it may still carry it. Judged at the I/O or at the end.
            self.suspects.push(Suspect {
                dev: a.id,
                va,
                pfn,
                value: a.word.value,
                version: a.word.version,
                cycle: a.cycle,
            });
        }
        if a.write && cpu.is_some_and(|l| l.pfn == pfn && !l.writable) {
            if let Some(detail) = self.write_after_protect(a, va, issued) {
                found.push((Violation::WriteAfterProtect, detail));
            }
        }
        if a.write {
            self.store(
                format!("dev{}", a.id),
                va,
                a.word.value,
                a.word.version,
                a.cycle,
            );
        } else {
            let v = a.word.version;
            let value = a.word.value;
            // A read is judged by what it returned: an older version holding
            // the same value as the store it should have seen (a KSM merge of
            // identical pages, a COW copy) is not observably stale.
            if let Some(s) = self.latest(va, issued) {
                if s.version > v && s.value != value {
                    found.push((
                        Violation::StaleRead,
                        format!(
                            "dev{} read {name} = {:#x} from frame {pfn:#x} ({}), but {} came before the read was issued at cycle {issued}",
                            a.id, value, self.what(v), self.what(s.version)
                        ),
                    ));
                }
            }
            // The newest store the device had observed before it issued this
            // read; the device must now see at least the last store to this
            // address that precedes it in the global order. A read that
            // completed in the cycle this one was issued counts: the host
            // issues after it has seen that cycle's responses (a design that
            // forwards the memory's answer to the device in the same cycle,
            // as the RISC-V socket's does, completes and answers at once).
            let seen = self
                .reads
                .iter()
                .filter(|r| r.completed <= issued)
                .map(|r| r.version)
                .max()
                .unwrap_or(0);
            let missed = self
                .history
                .get(&(self.canon(va) & !7))
                .and_then(|h| h.iter().rev().find(|&&s| s < seen).copied())
                .filter(|&m| m > v && self.stores[&m].value != value);
            if let Some(m) = missed {
                found.push((
                    Violation::OrderViolation,
                    format!(
                        "dev{} read {name} = {:#x} ({}) after the device had observed {}; {} came before it in the global store order",
                        a.id,
                        a.word.value,
                        self.what(v),
                        self.what(seen),
                        self.what(m)
                    ),
                ));
            }
            self.reads.push(DevRead {
                completed: a.cycle,
                version: v,
            });
        }
        for (kind, detail) in found {
            self.findings.push(Finding {
                kind,
                cycle: a.cycle,
                dev: a.id,
                va,
                detail,
            });
        }
    }

    /// A writeback I/O read `va` (value, version) at `cycle`: every store to
    /// it that completed before must be on the disk, a device write through
    /// a stale writable translation included.
    pub fn io(&mut self, va: u64, value: u64, version: u64, cycle: u64) {
        // the disk gets the word whichever mapping the write went through
        let names = self.names(va);
        self.suspects
            .retain(|w| !names.contains(&(w.va & !7 | va & 7)) || w.version > version);
        if let Some(s) = self.latest(va, cycle) {
            if s.version > version && s.value != value {
                let detail = format!(
                    "the writeback of {} wrote {value:#x} to disk ({}), but {} came before the I/O: that write is lost",
                    self.describe_va(va),
                    self.what(version),
                    self.what(s.version)
                );
                let dev = s
                    .who
                    .strip_prefix("dev")
                    .and_then(|d| d.parse().ok())
                    .unwrap_or(u8::MAX);
                self.findings.push(Finding {
                    kind: Violation::LostWrite,
                    cycle,
                    dev,
                    va,
                    detail,
                });
            }
        }
    }

    /// At a device access's response: its frame must not have been freed
    /// (or handed to another owner) while the access was in flight. This is
    /// the ATS drain rule: the device may send its Invalidate Completion only
    /// after such accesses finish, and the kernel frees the page only after
    /// the completion.
    pub fn access_outlived_frame(
        &mut self,
        dev: u8,
        va: u64,
        pfn: Pfn,
        then: FrameState,
        now: FrameState,
        cycle: u64,
    ) {
        let same = match (then, now) {
            (
                FrameState::Allocated { generation: a, .. },
                FrameState::Allocated { generation: b, .. },
            ) => a == b,
            (FrameState::Free, _) => return, // judged at the access already
            (_, FrameState::Free) => false,
        };
        if !same {
            let detail = format!(
                "dev{dev}'s access to {} in frame {pfn:#x} was still in flight when the frame was freed{}",
                self.describe_va(va),
                if now == FrameState::Free { "" } else { " and handed to another owner" }
            );
            self.findings.push(Finding {
                kind: Violation::UseAfterFree,
                cycle,
                dev,
                va,
                detail,
            });
        }
    }

    /// The IOMMU read `pa`, in a frame freed as a page table (free_pgtables)
    /// and not a page table since: a walk through a freed table, from a
    /// paging-structure cache entry (or a walk in flight) that the table's
    /// flush left behind. Reported once per frame.
    pub fn walked_freed_table(&mut self, pa: u64, cycle: u64) {
        let pfn = pa >> 12;
        if !self.walked_freed.insert(pfn) {
            return;
        }
        self.findings.push(Finding {
            kind: Violation::UseAfterFree,
            cycle,
            dev: 0,
            va: 0,
            detail: format!(
                "the IOMMU's page-table walk read {pa:#x}, in frame {pfn:#x}, a page table freed since (a paging-structure cache entry or a walk outlived the table's flush)"
            ),
        });
    }

    /// Device `dev`'s access to `va`, issued at `issued`, still had no
    /// response at `cycle`, after its step ran past the watchdog (`bound`
    /// cycles) with every CPU thread done: the hardware made no progress.
    pub fn no_response(
        &mut self,
        dev: u8,
        va: u64,
        write: bool,
        issued: u64,
        cycle: u64,
        bound: u64,
    ) {
        let detail = format!(
            "dev{dev}'s {} of {} issued at cycle {issued} had no response by cycle {cycle}, more than watchdog_cycles = {bound} into its step, with no CPU thread left to wait for (the IOMMU or the device hangs, or waits for something no one sends; a slow but live design needs a larger watchdog_cycles)",
            if write { "write" } else { "read" },
            self.describe_va(va),
        );
        self.no_progress(dev, va, cycle, detail);
    }

    fn no_progress(&mut self, dev: u8, va: u64, cycle: u64, detail: String) {
        self.findings.push(Finding {
            kind: Violation::NoProgress,
            cycle,
            dev,
            va,
            detail,
        });
    }

    /// Device `dev`'s access to `va` gave up at `cycle`: each of its
    /// `requests` Page Requests was answered Success, and the translation
    /// it asked for after the last one still did not grant the access.
    pub fn gave_up(&mut self, dev: u8, va: u64, write: bool, requests: u32, cycle: u64) {
        let detail = format!(
            "dev{dev}'s {} of {} gave up: the kernel answered each of its {requests} Page Requests with Success, and the translation it asked for after the last still did not grant the {} (a livelock: the fault the kernel fixed is not the one the IOMMU answers from)",
            if write { "write" } else { "read" },
            self.describe_va(va),
            if write { "write" } else { "read" },
        );
        self.no_progress(dev, va, cycle, detail);
    }

    /// madvise(MADV_FREE) of the page at `va` began, or returned.
    pub fn madv_free(&mut self, va: u64, returned: bool, cycle: u64) {
        let calls = self.madv_free.entry(va & !0xfff).or_default();
        if returned {
            if let Some(c) = calls.iter_mut().rev().find(|c| c.1.is_none()) {
                c.1 = Some(cycle);
            }
        } else {
            calls.push((cycle, None));
        }
    }

    /// Reclaim discarded frame `pfn`, mapped at `va`, as lazily freeable.
    pub fn discarded(&mut self, va: u64, pfn: Pfn, cycle: u64) {
        self.discards.push((va & !0xfff, pfn, cycle));
    }

    /// A munmap, madvise(MADV_DONTNEED) or exit of `[start, end)` began, or
    /// returned. A device write into the range while it runs is the call's
    /// to discard: the program raced its own munmap or madvise (after the
    /// call returned, nothing may lose a write).
    pub fn discarding(&mut self, start: u64, end: u64, returned: bool) {
        if !returned {
            self.discarding.push((start, end));
        } else if let Some(i) = self.discarding.iter().rposition(|c| *c == (start, end)) {
            self.discarding.remove(i);
        }
    }

    /// MADV_FREE may drop `w`: reclaim discarded its frame, and `w` landed
    /// while a madvise(MADV_FREE) of its page that began before the
    /// discard had not yet returned.
    fn madv_free_may_drop(&self, w: &Suspect) -> bool {
        let page = w.va & !0xfff;
        let calls = self.madv_free.get(&page).map_or(&[][..], |c| &c[..]);
        self.discards
            .iter()
            .filter(|(p, pfn, _)| *p == page && *pfn == w.pfn)
            .any(|&(_, _, at)| {
                calls.iter().any(|&(began, ret)| {
                    began <= at && began <= w.cycle && ret.is_none_or(|r| w.cycle <= r)
                })
            })
    }

    /// What the CPU page table now gives named page `page`: writable
    /// (`Some(true)`), read-only, or nothing; `by` the CPU thread whose
    /// operation changed its entry. A page made read-only after it was
    /// writable (a clear in between, as `ptep_clear_flush` then
    /// `set_pte_at` do, included) was write-protected by that thread.
    pub fn cpu_view(&mut self, page: usize, writable: Option<bool>, by: Option<usize>, cycle: u64) {
        match writable {
            Some(true) => {
                self.writable_seen.insert(page);
                self.protected.remove(&page);
            }
            Some(false) => {
                if self.writable_seen.remove(&page) {
                    match by {
                        Some(tid) => {
                            self.protected.insert(
                                page,
                                Protected {
                                    tid,
                                    at: cycle,
                                    returned: None,
                                },
                            );
                        }
                        None => {
                            self.protected.remove(&page);
                        }
                    }
                }
            }
            // a write through a stale translation of an unmapped page is
            // judged as any other (use-after-free, lost write)
            None => {
                self.protected.remove(&page);
            }
        }
    }

    /// CPU thread `tid`'s operation returned at `cycle`: from then on, a
    /// device write through the permission it took away is a violation.
    pub fn returned(&mut self, tid: usize, cycle: u64) {
        for p in self.protected.values_mut() {
            if p.tid == tid && p.returned.is_none() {
                p.returned = Some(cycle);
            }
        }
    }

    /// A device write into frame `pfn` at `va`, which the CPU maps there
    /// read-only: a violation if issued after the write-protecting
    /// operation returned.
    fn write_after_protect(&self, a: &DevMemAccess, va: u64, issued: u64) -> Option<String> {
        let page = self.page_vas.iter().position(|p| p >> 12 == va >> 12)?;
        let p = self.protected.get(&page)?;
        let returned = p.returned.filter(|&r| r <= issued)?;
        Some(format!(
            "dev{} wrote {:#x} to {} in frame {:#x} through a writable translation, but cpu{} had made the page read-only at cycle {} and returned at cycle {returned}, before the write was issued at cycle {issued}",
            a.id,
            a.word.value,
            self.describe_va(va),
            a.pa >> 12,
            p.tid,
            p.at
        ))
    }

    /// At the end of a run: a suspect device write is lost unless the word
    /// the CPU now sees at its address (`visible`: its version and value)
    /// is that write or newer, or holds the value it wrote (a KSM merge of
    /// the page it made identical: as a read of an older version holding
    /// the latest value is not stale, no one can tell this write from the
    /// word the CPU sees), or MADV_FREE's contract lets it go.
    pub fn judge_writes(&mut self, visible: impl Fn(u64) -> Option<(u64, u64)>, cycle: u64) {
        for w in std::mem::take(&mut self.suspects) {
            // through any mapping of the word that is left
            let seen = (self.names(w.va).into_iter())
                .filter_map(&visible)
                .any(|(v, value)| v >= w.version || value == w.value);
            if seen || self.madv_free_may_drop(&w) {
                continue;
            }
            let detail = format!(
                "dev{} wrote {:#x} to {} at cycle {} in frame {:#x}, which the CPU page table no longer mapped there, and nothing carried it back: the write is lost",
                w.dev,
                w.value,
                self.describe_va(w.va),
                w.cycle,
                w.pfn
            );
            self.findings.push(Finding {
                kind: Violation::LostWrite,
                cycle,
                dev: w.dev,
                va: w.va,
                detail,
            });
        }
    }

    /// Feed what later judgements depend on into `h` (the state digest
    /// `explore` prunes by): the store order, each address's history, the
    /// mappings, the lazily freed pages, the verdict so far. A cycle stamp
    /// goes in only as what a later judgement compares it with: every past
    /// store is older than a later issue, so a store's stamp matters only
    /// against the issue cycles of the accesses still in flight
    /// (`in_flight`), and a read's completion only against those and `now`.
    /// Windows go in as the worst one to come depends on them (explore
    /// reports it); the findings' texts are the past's report, not in.
    pub fn digest(&self, h: &mut crate::sim::digest::StateHasher, now: u64, in_flight: &[u64]) {
        for (v, s) in &self.stores {
            h.debug(&(v, &s.who, s.va, s.value));
        }
        h.debug(&(&self.history, &self.mapped, &self.suspects));
        // what one process's frames were matters only against another's
        if self.spaces.iter().any(|&(q, _)| q != 0) {
            h.debug(&self.spaces);
        }
        h.debug(&(&self.madv_free, &self.discards, &self.discarding));
        // a protection's cycles only as what later issues compare: all past
        for p in &self.protected {
            h.debug(&(p.0, p.1.tid, p.1.returned.is_some()));
        }
        h.debug(&(&self.writable_seen, &self.aliases));
        if !self.walked_freed.is_empty() {
            h.debug(&self.walked_freed);
        }
        h.debug(&self.verdict());
        // The windows, as far as the worst one to come depends on them:
        // how long each open one has been open, and the longest closed one
        // an IOTLB or ATC held (what explore reports).
        for o in &self.open {
            h.debug(&o.map(|c| c.map(|start| now - start)));
        }
        let worst = self
            .windows
            .iter()
            .filter(|w| w.cache != Cache::InFlight)
            .map(|w| w.len(now))
            .max();
        h.debug(&worst);
        let seen = |before: u64| {
            self.reads
                .iter()
                .filter(|r| r.completed < before)
                .map(|r| r.version)
                .max()
        };
        h.debug(&(seen(now), seen(now + 1)));
        for &issued in in_flight {
            let stored = self
                .stores
                .values()
                .filter(|s| s.cycle <= issued)
                .map(|s| s.version)
                .max();
            h.debug(&(stored, seen(issued)));
        }
    }

    pub fn verdict(&self) -> BTreeSet<Violation> {
        self.findings.iter().map(|f| f.kind).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::{PageSize, Word};

    fn leaf(pfn: Pfn, writable: bool) -> Leaf {
        Leaf {
            pfn,
            size: PageSize::Small,
            writable,
            entry_pa: 0,
            entry: 0,
        }
    }

    fn read(id: u8, pa: u64, value: u64, version: u64, cycle: u64) -> DevMemAccess {
        DevMemAccess {
            cycle,
            id,
            pa,
            write: false,
            word: Word { value, version },
        }
    }

    const A: u64 = 0x7f00_0000_0000;
    const B: u64 = 0x7f00_0000_1000;
    const ALLOC: FrameState = FrameState::Allocated {
        refcount: 1,
        generation: 1,
    };

    /// The seed's outcome, fed by hand: B's new value, then A's old one.
    #[test]
    fn seed_outcome_is_an_order_violation() {
        let mut c = Checker::new(&[("addrA".into(), A), ("addrB".into(), B)]);
        c.store("init".into(), A, 0xa0, 1, 0);
        c.store("init".into(), B, 0xb0, 2, 0);
        c.store("cpu2".into(), A, 0xa2, 3, 100);
        c.store("cpu3".into(), B, 0xb2, 4, 200);
        c.dev_access(
            &read(2, 0x20_0000, 0xb2, 4, 300),
            B,
            290,
            Some(&leaf(0x200, false)),
            ALLOC,
        );
        assert!(c.findings.is_empty(), "{:?}", c.findings);
        c.dev_access(
            &read(0, 0x10_0000, 0xa0, 1, 400),
            A,
            390,
            Some(&leaf(0x300, true)),
            ALLOC,
        );
        let v = c.verdict();
        assert!(v.contains(&Violation::OrderViolation), "{:?}", c.findings);
        assert!(v.contains(&Violation::StaleRead));
        assert!(c
            .findings
            .iter()
            .any(|f| f.detail.contains("cpu3's store 0xb2")));
    }

    #[test]
    fn a_key_names_the_process_and_keeps_process_0s_addresses() {
        assert_eq!(key(0, A), A);
        assert_eq!(split_key(key(3, A + 8)), (3, A + 8));
        // a kernel-half address keeps its sign through the key
        let kva = 0xffff_c900_0000_1000;
        assert_eq!(split_key(key(2, kva)), (2, kva));
        assert_ne!(key(0, kva), key(1, kva));
        assert_ne!(key(1, A), key(2, A));
        let c = Checker::new(&[("addrA".into(), A), ("addrB".into(), key(1, A))]);
        assert_eq!(c.describe_va(key(1, A) + 8), "addrB+8");
        assert_eq!(c.describe_va(A + 8), "addrA+8");
        assert_eq!(c.describe_va(key(2, A)), "0x7f0000000000 of process 2");
    }

    /// Two processes' mappings of one page-cache page: a store through one
    /// name is what a read through the other must see, and a write through
    /// one is carried to the disk by the other's I/O.
    #[test]
    fn a_shared_pages_two_names_are_one_word() {
        let g = key(1, B);
        let mut c = Checker::new(&[("addrF".into(), A), ("addrG".into(), g)]);
        c.alias(g, A);
        assert_eq!(c.names(g + 8), vec![A + 8, g + 8]);
        assert_eq!(c.names(A), vec![A, g]);
        c.store("init".into(), A, 0x60, 1, 0);
        c.maps(0, 0x100);
        c.maps(1, 0x100);
        c.store("cpu1".into(), g, 0x61, 2, 100);
        // a read through process 0's name that missed process 1's store
        c.dev_access(
            &read(0, 0x10_0000, 0x60, 1, 300),
            A,
            200,
            Some(&leaf(0x100, true)),
            ALLOC,
        );
        assert_eq!(
            c.verdict().into_iter().collect::<Vec<_>>(),
            vec![Violation::StaleRead],
            "{:?}",
            c.findings
        );
        assert!(
            c.findings[0].detail.contains("cpu1's store 0x61 to addrG"),
            "{:?}",
            c.findings
        );
        // a device write through G while G was unmapped, then the
        // writeback of F carries it: not lost
        let mut w = read(1, 0x10_0000, 0x62, 3, 400);
        w.write = true;
        c.dev_access(&w, g, 350, None, ALLOC);
        c.io(A, 0x62, 3, 500);
        c.judge_writes(|_| None, 600);
        assert!(
            c.findings.iter().all(|f| f.kind != Violation::LostWrite),
            "{:?}",
            c.findings
        );
        // the same write that nothing carries, but visible through F: not
        // lost either
        let mut w = read(1, 0x10_0000, 0x63, 4, 700);
        w.write = true;
        c.dev_access(&w, g, 650, None, ALLOC);
        c.judge_writes(|va| (va == A).then_some((4, 0x63)), 800);
        assert!(
            c.findings.iter().all(|f| f.kind != Violation::LostWrite),
            "{:?}",
            c.findings
        );
    }

    /// The same VA in two processes: a read through process 1's PASID that
    /// lands in process 0's frame is an isolation breach; its own frame,
    /// stale or not, is not.
    #[test]
    fn another_processs_frame_is_an_isolation_breach() {
        let b = key(1, A);
        let mut c = Checker::new(&[("addrA".into(), A), ("addrB".into(), b)]);
        c.store("init".into(), A, 0xa0, 1, 0);
        c.store("init".into(), b, 0xa0, 2, 0);
        c.maps(0, 0x100);
        c.maps(1, 0x200);
        c.dev_access(&read(1, 0x20_0000, 0xa0, 2, 10), b, 5, None, ALLOC);
        assert!(c.verdict().is_empty(), "{:?}", c.findings);
        // the same value, so no stale read: only the frame tells
        c.dev_access(&read(1, 0x10_0000, 0xa0, 1, 20), b, 15, None, ALLOC);
        assert_eq!(
            c.verdict().into_iter().collect::<Vec<_>>(),
            vec![Violation::Isolation],
            "{:?}",
            c.findings
        );
        // a frame no process mapped (a page-table walk's garbage) is not
        // this finding's
        let before = c.findings.len();
        c.dev_access(&read(1, 0x30_0000, 0xa0, 1, 30), b, 25, None, ALLOC);
        assert!(c.findings[before..]
            .iter()
            .all(|f| f.kind != Violation::Isolation));
    }

    #[test]
    fn the_new_values_in_order_are_clean() {
        let mut c = Checker::new(&[("addrA".into(), A), ("addrB".into(), B)]);
        c.store("init".into(), A, 0xa0, 1, 0);
        c.store("cpu2".into(), A, 0xa2, 3, 100);
        c.store("cpu3".into(), B, 0xb2, 4, 200);
        c.dev_access(&read(2, 0x20_0000, 0xb2, 4, 300), B, 290, None, ALLOC);
        c.dev_access(&read(0, 0x30_0000, 0xa2, 3, 400), A, 390, None, ALLOC);
        assert!(c.verdict().is_empty(), "{:?}", c.findings);
    }

    #[test]
    fn concurrent_reads_are_not_ordered() {
        // Both reads issued before either completed: no order between them.
        let mut c = Checker::new(&[("addrA".into(), A)]);
        c.store("init".into(), A, 0xa0, 1, 0);
        c.store("cpu2".into(), A, 0xa2, 3, 100);
        c.store("cpu3".into(), B, 0xb2, 4, 200);
        c.dev_access(&read(2, 0x20_0000, 0xb2, 4, 300), B, 250, None, ALLOC);
        c.dev_access(&read(0, 0x10_0000, 0xa0, 1, 301), A, 50, None, ALLOC);
        assert!(!c.verdict().contains(&Violation::OrderViolation));
    }

    #[test]
    fn an_older_version_with_the_latest_value_is_not_stale() {
        // KSM merged B into A's identical page: B now reads A's version.
        let mut c = Checker::new(&[("addrA".into(), A), ("addrB".into(), B)]);
        c.store("init".into(), A, 0x55, 1, 0);
        c.store("init".into(), B, 0x55, 2, 0);
        c.store("cpu3".into(), A + 8, 0x1, 3, 10);
        c.dev_access(&read(0, 0x10_008, 0x1, 3, 20), A + 8, 15, None, ALLOC);
        c.dev_access(&read(0, 0x10_000, 0x55, 1, 40), B, 30, None, ALLOC);
        assert!(c.verdict().is_empty(), "{:?}", c.findings);
        // but a different value is
        c.store("cpu2".into(), B, 0x66, 4, 50);
        c.dev_access(&read(0, 0x10_000, 0x55, 1, 70), B, 60, None, ALLOC);
        assert!(c.verdict().contains(&Violation::StaleRead));
    }

    #[test]
    fn writeback_that_misses_an_earlier_device_write_loses_it() {
        let mut c = Checker::new(&[("addrF".into(), A)]);
        c.store("init".into(), A, 0xf0, 1, 0);
        c.store("dev0".into(), A, 0x66, 2, 10);
        c.io(A, 0x66, 2, 20);
        assert!(c.verdict().is_empty());
        c.io(A, 0xf0, 1, 30);
        assert_eq!(
            c.verdict().into_iter().collect::<Vec<_>>(),
            vec![Violation::LostWrite]
        );
        assert!(
            c.findings[0].detail.contains("dev0's store 0x66"),
            "{}",
            c.findings[0].detail
        );
    }

    #[test]
    fn freed_and_reused_frames_are_use_after_free() {
        let mut c = Checker::new(&[("addrA".into(), A)]);
        c.mapped(A, 0x10, ALLOC);
        c.dev_access(&read(0, 0x10_000, 0, 0, 5), A, 1, None, FrameState::Free);
        let reused = FrameState::Allocated {
            refcount: 1,
            generation: 2,
        };
        c.dev_access(&read(0, 0x10_000, 0, 0, 9), A, 7, None, reused);
        assert_eq!(
            c.findings
                .iter()
                .filter(|f| f.kind == Violation::UseAfterFree)
                .count(),
            2
        );
    }

    /// dev1 writes 9 (version 7) into frame 0x10 at cycle 5.
    fn dev1_writes_frame_0x10() -> DevMemAccess {
        DevMemAccess {
            cycle: 5,
            id: 1,
            pa: 0x10_008,
            write: true,
            word: Word {
                value: 9,
                version: 7,
            },
        }
    }

    #[test]
    fn device_write_to_unmapped_frame_is_lost() {
        let mut c = Checker::new(&[("addrA".into(), A)]);
        let w = dev1_writes_frame_0x10();
        c.dev_access(&w, A + 8, 1, Some(&leaf(0x11, true)), ALLOC);
        assert!(
            c.verdict().is_empty(),
            "judged at the end, not at the write"
        );
        // A migration copy carried it: the CPU now sees version 7.
        let mut carried = Checker::new(&[("addrA".into(), A)]);
        carried.dev_access(&w, A + 8, 1, Some(&leaf(0x11, true)), ALLOC);
        carried.judge_writes(|_| Some((7, 0)), 10);
        assert!(carried.verdict().is_empty());
        // The CPU sees an older version with the value it wrote (a KSM
        // merge into an identical page): nothing observable was lost.
        let mut same = Checker::new(&[("addrA".into(), A)]);
        same.dev_access(&w, A + 8, 1, Some(&leaf(0x11, true)), ALLOC);
        same.judge_writes(|_| Some((3, 9)), 10);
        assert!(same.verdict().is_empty());
        // Nothing did.
        c.judge_writes(|_| Some((3, 4)), 10);
        assert_eq!(
            c.verdict().into_iter().collect::<Vec<_>>(),
            vec![Violation::LostWrite]
        );
    }

    #[test]
    fn madv_free_may_drop_a_write_before_it_returns_and_no_other() {
        // dev1 writes frame 0x10 at cycle 5; the CPU no longer maps it
        // there (reclaim discarded it at cycle 4).
        let w = dev1_writes_frame_0x10();
        let judge = |began: u64, returned: Option<u64>, discard: (Pfn, u64)| {
            let mut c = Checker::new(&[("addrA".into(), A)]);
            c.madv_free(A, false, began);
            c.discarded(A, discard.0, discard.1);
            if let Some(r) = returned {
                c.madv_free(A, true, r);
            }
            c.dev_access(&w, A + 8, 1, None, ALLOC);
            c.judge_writes(|_| None, 20);
            c.verdict()
        };
        // The madvise returns after the write (or not at all): MADV_FREE may
        // drop it.
        assert!(judge(2, Some(9), (0x10, 4)).is_empty());
        assert!(judge(2, None, (0x10, 4)).is_empty());
        // It returned before the write: the write must survive.
        assert_eq!(judge(2, Some(4), (0x10, 4)), [Violation::LostWrite].into());
        // Another frame was discarded, or the madvise began after the
        // discard or the write: not MADV_FREE's to drop.
        assert_eq!(judge(2, Some(9), (0x11, 4)), [Violation::LostWrite].into());
        assert_eq!(judge(4, Some(9), (0x10, 3)), [Violation::LostWrite].into());
        assert_eq!(judge(6, Some(9), (0x10, 6)), [Violation::LostWrite].into());
        // No discard at all (a munmap, a reclaim to swap): judged as before.
        let mut c = Checker::new(&[("addrA".into(), A)]);
        c.madv_free(A, false, 2);
        c.dev_access(&w, A + 8, 1, None, ALLOC);
        c.judge_writes(|_| None, 20);
        assert_eq!(c.verdict(), [Violation::LostWrite].into());
    }

    #[test]
    fn a_discarding_call_may_drop_a_write_while_it_runs_and_no_other() {
        // dev1 writes frame 0x10 at cycle 5 at A+8, which the CPU no longer
        // maps there.
        let w = dev1_writes_frame_0x10();
        // the write comes before the call, during it, or after it returned
        let judge = |range: (u64, u64), when: u8| {
            let mut c = Checker::new(&[("addrA".into(), A)]);
            let write = |c: &mut Checker| c.dev_access(&w, A + 8, 1, None, ALLOC);
            if when == 0 {
                write(&mut c);
            }
            c.discarding(range.0, range.1, false);
            if when == 1 {
                write(&mut c);
            }
            c.discarding(range.0, range.1, true);
            if when == 2 {
                write(&mut c);
            }
            c.judge_writes(|_| None, 20);
            c.verdict()
        };
        let page = (A & !0xfff, (A & !0xfff) + 0x1000);
        // during the call: the call's to drop
        assert!(judge(page, 1).is_empty());
        // before it began, or after it returned: lost
        assert_eq!(judge(page, 0), [Violation::LostWrite].into());
        assert_eq!(judge(page, 2), [Violation::LostWrite].into());
        // another range: lost
        let next = (page.1, page.1 + 0x1000);
        assert_eq!(judge(next, 1), [Violation::LostWrite].into());
        // two calls over the page: the first to return leaves the other
        let mut c = Checker::new(&[("addrA".into(), A)]);
        c.discarding(page.0, page.1, false);
        c.discarding(page.0, page.1 + 0x1000, false);
        c.discarding(page.0, page.1, true);
        c.dev_access(&w, A + 8, 1, None, ALLOC);
        c.judge_writes(|_| None, 20);
        assert!(c.verdict().is_empty());
    }

    #[test]
    fn a_fault_in_flight_is_no_stale_translation() {
        let entry = |r, w| {
            Some(ProbeEntry {
                ppn: 0,
                w,
                r,
                is_2m: false,
                is_1g: false,
            })
        };
        let cpu = leaf(0x10, true);
        // a Completion that says fault, whether the CPU maps the page or not
        assert!(!is_stale(entry(false, false), Some(&cpu)));
        assert!(!is_stale(entry(false, false), None));
        // one that grants a frame the CPU does not map there is stale
        assert!(is_stale(entry(true, false), Some(&cpu)));
        assert!(is_stale(entry(true, true), None));
    }

    #[test]
    fn windows_open_and_close_per_cache() {
        let mut c = Checker::new(&[("addrA".into(), A)]);
        let e = |ppn| {
            Some(ProbeEntry {
                ppn,
                w: false,
                r: true,
                is_2m: false,
                is_1g: false,
            })
        };
        let cpu_old = leaf(0x10, false);
        let cpu_new = leaf(0x11, true);
        assert!(!c.observe(1, 0, Some(&cpu_old), [e(0x10), e(0x10), None]));
        assert!(c.observe(2, 0, Some(&cpu_new), [e(0x10), e(0x10), None]));
        assert!(c.observe(3, 0, None, [None, e(0x10), None]));
        assert!(!c.observe(9, 0, Some(&cpu_new), [None, e(0x11), None]));
        c.finish();
        let w: Vec<_> = c
            .windows
            .iter()
            .map(|w| (w.cache, w.start, w.end))
            .collect();
        assert_eq!(
            w,
            vec![(Cache::Iotlb, 2, Some(3)), (Cache::Atc, 2, Some(9))]
        );
    }

    #[test]
    fn context_windows_open_and_close_per_directory_cache() {
        let mut c = Checker::new(&[("addrA".into(), A)]);
        c.observe_context(5, [false, true]);
        c.observe_context(6, [true, true]);
        c.observe_context(8, [true, false]);
        c.finish();
        let w: Vec<_> = c
            .context_windows
            .iter()
            .map(|w| (w.cache, w.start, w.end))
            .collect();
        assert_eq!(
            w,
            vec![
                (ContextCache::Pdtc, 5, Some(8)),
                (ContextCache::Ddtc, 6, None)
            ]
        );
    }

    /// A device write through a permission the kernel took away: allowed
    /// while the operation that took it runs, a violation once it returned.
    #[test]
    fn a_write_after_the_protecting_operation_returned() {
        let write = |value, version, cycle| DevMemAccess {
            cycle,
            id: 0,
            pa: 0x5000,
            write: true,
            word: Word { value, version },
        };
        let judge = |steps: &dyn Fn(&mut Checker)| {
            let mut c = Checker::new(&[("addrA".into(), A)]);
            c.store("init".into(), A, 1, 1, 0);
            c.cpu_view(0, Some(true), None, 0);
            steps(&mut c);
            c.verdict()
        };
        let ro = leaf(5, false);
        // cpu1 write-protects at 100 (a clear first, as ptep_clear_flush
        // then set_pte_at), returns at 200; the write issued at 150 races
        // the call, the one at 250 comes after it
        let protect = |c: &mut Checker| {
            c.cpu_view(0, None, Some(1), 90);
            c.cpu_view(0, Some(false), Some(1), 100);
        };
        let racing = judge(&|c| {
            protect(c);
            c.dev_access(&write(2, 2, 160), A, 150, Some(&ro), ALLOC);
            c.returned(1, 200);
        });
        assert!(racing.is_empty(), "{racing:?}");
        let after = judge(&|c| {
            protect(c);
            c.returned(1, 200);
            c.dev_access(&write(2, 2, 260), A, 250, Some(&ro), ALLOC);
        });
        assert_eq!(after, [Violation::WriteAfterProtect].into());
        // another thread's return does not count
        let other = judge(&|c| {
            protect(c);
            c.returned(2, 200);
            c.dev_access(&write(2, 2, 260), A, 250, Some(&ro), ALLOC);
        });
        assert!(other.is_empty(), "{other:?}");
        // writable again (a COW gave the page back its write bit): the
        // protection is gone
        let again = judge(&|c| {
            protect(c);
            c.returned(1, 200);
            c.cpu_view(0, Some(true), Some(1), 210);
            c.dev_access(&write(2, 2, 260), A, 250, Some(&leaf(5, true)), ALLOC);
        });
        assert!(again.is_empty(), "{again:?}");
        // a page read-only from the start (a COW page) was never protected
        let mut c = Checker::new(&[("addrA".into(), A)]);
        c.cpu_view(0, Some(false), None, 0);
        c.cpu_view(0, Some(false), Some(1), 100);
        c.returned(1, 200);
        c.dev_access(&write(2, 2, 260), A, 250, Some(&ro), ALLOC);
        assert!(c.verdict().is_empty());
    }
}
