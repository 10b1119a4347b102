//! The deterministic scheduler: runs a scenario's timeline, one `[Time N+k]`
//! step after another, on a [`Machine`].
//!
//! A step runs in *rounds*. In a round every CPU thread named in the step
//! that has not reached its stop takes one kernel-path step (at most one
//! checkpoint, or one spin on a lock or a fence), in the order the step
//! names them; then the RTL clock advances `cpu_step_cycles` cycles. Device
//! threads submit their access when the step starts; the step ends when
//! every named CPU thread reached its stop and every device access has its
//! response. A schedule is thus data: the timeline alone decides who runs
//! when, and the same scenario gives the same cycles every time.

use super::machine::{DevRequest, IommuLayout, Machine, MachineParams};
use super::trace::HostSignals;
use crate::checker::{Checker, Finding, Violation, Window};
use crate::iommu::{DriverStats, SvaDriver};
use crate::mem::{pte, AddressSpace, FrameState, Leaf, MemError, PageSize, PAGE_SHIFT};
use crate::mm::{
    CollapseOp, Cx, HostEvent, HugetlbOp, Kernel, KernelPath, KsmOp, LoadOp, LockTable, MadvFreeOp,
    MmError, Policy, Progress, StoreOp, UnmapKind, UnmapOp, Vmas, WaitOn, WritebackKind,
    WritebackOp, ZapOp, ZeroSplit,
};
use crate::scenario::{Action, Entry, Expected, Scenario, ThreadRef, MAX_CPUS, MAX_DEVS};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub struct RunOptions {
    pub policy: Policy,
    /// Write the waves (RTL and host signals) here, with a .gtkw beside
    /// them: FST when the path ends in `.fst`, else VCD.
    pub waves: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The timeline cannot go on (line 0: in the drain after its last step).
    #[error("{}{}: {msg}", file.display(), at_line(*line))]
    Timeline {
        file: PathBuf,
        line: usize,
        msg: String,
    },
    #[error("{}: setting up the machine: {source}", file.display())]
    Setup { file: PathBuf, source: MmError },
    /// The RTL stopped the run (an assertion, a trace file that cannot be
    /// opened) during the step written on `line` (0: before the first step
    /// or after the last).
    #[error("{}{}: {source}", file.display(), at_line(*line))]
    Rtl {
        file: PathBuf,
        line: usize,
        source: crate::rtl::RtlError,
    },
    #[error(transparent)]
    Waves(#[from] crate::waves::WavesError),
}

/// `:line`, or nothing for line 0 (not at a line of the scenario).
fn at_line(line: usize) -> String {
    match line {
        0 => String::new(),
        l => format!(":{l}"),
    }
}

/// What one thread did in one step, for the `[Time N]` listing.
#[derive(Clone, Debug)]
pub struct ThreadLine {
    pub thread: ThreadRef,
    pub text: String,
}

#[derive(Clone, Debug)]
pub struct SlotReport {
    pub label: String,
    /// Scenario line (0 for the final drain).
    pub line: usize,
    pub start: u64,
    pub end: u64,
    pub lines: Vec<ThreadLine>,
    /// CPU threads inside a kernel path that this step did not run.
    pub preempted: Vec<usize>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreRecord {
    pub cycle: u64,
    pub thread: ThreadRef,
    pub page: String,
    pub value: u64,
}

/// A writeback I/O: what reached the disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IoRecord {
    pub cycle: u64,
    pub thread: ThreadRef,
    pub page: String,
    pub value: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DevRecord {
    /// Cycle of the response.
    pub cycle: u64,
    pub dev: u8,
    pub page: String,
    pub write: bool,
    pub value: u64,
    pub fault: bool,
    pub pa: u64,
}

/// The CPU's view of a named page when the run ended (after the final drain
/// and the settling time), for checking what a timeline did to the page
/// table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageView {
    /// The translation (None: no present one).
    pub leaf: Option<Leaf>,
    /// The entry the walk ended at: the leaf's, or the non-present entry
    /// (0: none; a swap or migration entry).
    pub entry: u64,
    /// The word at the page's VA, when it is mapped.
    pub value: Option<u64>,
}

impl PageView {
    fn of(mm: &AddressSpace, mem: &crate::mem::PhysMem, va: u64) -> PageView {
        match mm.walk(mem, va) {
            Ok(l) => PageView {
                leaf: Some(l),
                entry: l.entry,
                value: mem
                    .read((l.pfn << PAGE_SHIFT) | (va & 0xff8))
                    .ok()
                    .map(|w| w.value),
            },
            Err(e) => PageView {
                leaf: None,
                entry: match e {
                    crate::mem::WalkError::NotPresent { entry_pa, .. } => {
                        mem.read(entry_pa).map_or(0, |w| w.value)
                    }
                    _ => 0,
                },
                value: None,
            },
        }
    }
}

#[derive(Clone, Debug)]
pub struct WavesOut {
    /// The waves file: VCD, or FST when `RunOptions::waves` ends in `.fst`.
    pub vcd: PathBuf,
    pub gtkw: PathBuf,
    pub bytes: u64,
}

#[derive(Debug)]
pub struct RunReport {
    pub scenario: String,
    pub file: PathBuf,
    pub policy: Policy,
    pub pages: Vec<String>,
    pub slots: Vec<SlotReport>,
    pub windows: Vec<Window>,
    pub findings: Vec<Finding>,
    pub verdict: BTreeSet<Violation>,
    pub expected: Option<Expected>,
    pub stores: Vec<StoreRecord>,
    pub dev: Vec<DevRecord>,
    pub io: Vec<IoRecord>,
    /// Each named page's final CPU view, in `pages` order.
    pub final_view: Vec<PageView>,
    pub cycles: u64,
    pub stats: DriverStats,
    pub driver: crate::iommu::DriverKind,
    /// Cycles CPU threads spent spinning on fences and on the queue lock.
    pub spin_cycles: u64,
    pub wall: Duration,
    pub waves: Option<WavesOut>,
}

impl RunReport {
    /// The verdict matches `expect` (or the scenario expects nothing of this policy).
    pub fn as_expected(&self) -> bool {
        self.expected.as_ref().is_none_or(|e| *e == self.verdict)
    }

    /// The final CPU view of page `name`.
    pub fn view_of(&self, name: &str) -> Option<PageView> {
        let i = self.pages.iter().position(|p| p == name)?;
        self.final_view.get(i).copied()
    }

    /// Windows of page `name`.
    pub fn windows_of(&self, name: &str) -> Vec<Window> {
        let i = self.pages.iter().position(|p| p == name);
        self.windows
            .iter()
            .filter(|w| Some(w.page) == i)
            .copied()
            .collect()
    }
}

#[derive(Default)]
struct Cpu {
    op: Option<Box<dyn KernelPath>>,
    text: String,
    /// Checkpoints reached by the current operation.
    path: Vec<&'static str>,
}

struct DevPending {
    va: u64,
    write: bool,
    wdata: u64,
    issued: u64,
    text: String,
    /// The timeline line that started it.
    line: usize,
    /// When the page's `xlat` probe first showed the IOMMU's answer to this
    /// access's Translation Request (checkpoint `translated`).
    translated: Option<u64>,
    /// The frame its memory access touched and that frame's state then.
    accessed: Option<(u64, FrameState)>,
}

const IOMMU_PASID: u32 = 1;

struct Sim<'s> {
    s: &'s Scenario,
    m: Machine,
    k: Kernel,
    chk: Checker,
    cpus: Vec<Cpu>,
    devs: Vec<Option<DevPending>>,
    /// Per device: when its latest access reached `translated` (kept after
    /// the access finishes, cleared when the next one starts).
    dev_translated: Vec<Option<u64>>,
    events: Vec<HostEvent>,
    cpu_view: Vec<Option<Leaf>>,
    sig: Option<HostSignals>,
    stores: Vec<StoreRecord>,
    dev: Vec<DevRecord>,
    io: Vec<IoRecord>,
    spin_cycles: u64,
    /// Lines for the current slot.
    lines: Vec<ThreadLine>,
    /// The scenario line of the step running (0: the final drain).
    line: usize,
}

/// Run `s` under `opts.policy`. When the run fails (an RTL assertion, the
/// watchdog, an impossible timeline) after waves were asked for, the waves
/// up to that cycle are still written, with the failure marked on
/// `host.violation`, so the failure can be looked at in GTKWave.
pub fn run(s: &Scenario, opts: &RunOptions) -> Result<RunReport, RunError> {
    let t0 = Instant::now();
    let mut sim = Sim::new(s, opts)?;
    match sim.run_timeline() {
        Ok(slots) => sim.finish(slots, t0, opts),
        Err(e) => {
            sim.salvage_waves(opts, &e);
            Err(e)
        }
    }
}

impl<'s> Sim<'s> {
    /// Every step of the timeline, the final drain and the settling time.
    fn run_timeline(&mut self) -> Result<Vec<SlotReport>, RunError> {
        let s = self.s;
        let mut slots = Vec::new();
        for (n, slot) in s.timeline.iter().enumerate() {
            let label = if n == 0 {
                "N".to_string()
            } else {
                format!("N+{n}")
            };
            slots.push(self.run_slot(&label, n as u64, slot.line, &slot.entries)?);
        }
        // Every thread still inside a kernel path or an access runs to its end.
        let cpus = (0..MAX_CPUS)
            .filter(|&i| self.cpus[i].op.is_some())
            .map(ThreadRef::Cpu);
        let devs = (0..MAX_DEVS)
            .filter(|&d| self.devs[d as usize].is_some())
            .map(ThreadRef::Dev);
        let drain: Vec<Entry> = cpus
            .chain(devs)
            .map(|thread| Entry {
                thread,
                action: Action::Resume,
                until: None,
                text: "resume".into(),
            })
            .collect();
        if !drain.is_empty() {
            let n = s.timeline.len();
            slots.push(self.run_slot(&format!("N+{n}"), n as u64, 0, &drain)?);
        }
        // Let the hardware settle so windows opened at the end can close
        // (bounded: every term is range-checked, and by the watchdog).
        let p = &s.params;
        let settle = 4
            * (p.mem_latency.max(p.dev_mem_latency) + p.iommu_mem_latency + p.ats_latency)
            + p.ats_cpl_delay
            + 16;
        self.line = 0;
        self.tick_n(settle.min(p.watchdog_cycles))?;
        Ok(slots)
    }

    /// After a failed run: write the waves up to now (best effort; the
    /// failure is what gets reported), the failure marked at this cycle.
    fn salvage_waves(&mut self, opts: &RunOptions, e: &RunError) {
        let (Some(path), Some(mut sig)) = (&opts.waves, self.sig.take()) else {
            return;
        };
        let cycle = self.m.cycle();
        let mark = match e {
            RunError::Rtl { source, .. } => match crate::rtl::assertion_name(&source.to_string()) {
                Some(name) => format!("assertion {name}"),
                None => format!("RTL error: {source}"),
            },
            RunError::Timeline { line, msg, .. } => format!("stopped at line {line}: {msg}"),
            RunError::Setup { .. } | RunError::Waves(_) => return,
        };
        let mark: String = mark.chars().take(160).collect();
        sig.violation(cycle, &mark);
        self.m.trace_close();
        let _ = sig.write(path, cycle);
    }

    fn new(s: &'s Scenario, opts: &RunOptions) -> Result<Self, RunError> {
        let setup = |e: MemError| RunError::Setup {
            file: s.path.clone(),
            source: MmError::Mem(e),
        };
        let p = &s.params;
        let mut m = Machine::new(MachineParams {
            frames: 8192,
            mem_latency: p.mem_latency,
            dev_mem_latency: p.dev_mem_latency,
            iommu_mem_latency: p.iommu_mem_latency,
            ats_latency: p.ats_latency,
            ats_cpl_delay: p.ats_cpl_delay,
            atc_entries: p.atc_entries,
            iotlb_ways: p.iotlb_ways,
            iotlb_sets: p.iotlb_sets,
            ats_itags: p.ats_itags,
            inject: s.inject,
            assertions: p.assertions,
            ats_timeout: p.ats_timeout,
        });
        let cq = m.mem.alloc().map_err(setup)?;
        let completion = m.mem.alloc().map_err(setup)?;
        let pasid_table = m.mem.alloc().map_err(setup)?;
        let layout = IommuLayout {
            cq_base: cq << PAGE_SHIFT,
            cq_log2n: p.cq_entries.trailing_zeros() as u8,
            pasid_table: pasid_table << PAGE_SHIFT,
        };
        let mm = AddressSpace::new(&mut m.mem, IOMMU_PASID).map_err(setup)?;
        let parent = AddressSpace::new(&mut m.mem, 0).map_err(setup)?;
        layout
            .bind(&mut m.mem, IOMMU_PASID, mm.pgd)
            .map_err(setup)?;
        let k = Kernel {
            mm,
            parent,
            policy: opts.policy,
            ptl: LockTable::default(),
            deposited: Default::default(),
            zero_pfn: 0,
            huge_zero_pfn: 0,
            lazyfree: Default::default(),
            driver: SvaDriver::with_kind(layout, completion << PAGE_SHIFT, s.driver),
        };
        let names: Vec<(String, u64)> = s.pages.iter().map(|p| (p.name.clone(), p.va)).collect();
        let mut sim = Sim {
            s,
            m,
            k,
            chk: Checker::new(&names),
            cpus: (0..MAX_CPUS).map(|_| Cpu::default()).collect(),
            devs: (0..MAX_DEVS).map(|_| None).collect(),
            dev_translated: vec![None; MAX_DEVS as usize],
            events: Vec::new(),
            cpu_view: vec![None; s.pages.len()],
            sig: None,
            stores: Vec::new(),
            dev: Vec::new(),
            io: Vec::new(),
            spin_cycles: 0,
            lines: Vec::new(),
            line: 0,
        };
        sim.map_pages().map_err(|source| RunError::Setup {
            file: s.path.clone(),
            source,
        })?;
        if let Some(path) = &opts.waves {
            let sig = HostSignals::new(s, path);
            sim.m
                .trace_open(sig.rtl_path())
                .map_err(|e| sim.rtl_err(0, e))?;
            sim.sig = Some(sig);
        }
        sim.m.reset(layout);
        for (i, p) in s.pages.iter().enumerate() {
            sim.m.set_probe(i, IOMMU_PASID, p.va >> PAGE_SHIFT);
        }
        sim.refresh_cpu_view();
        if let Some(sig) = &mut sim.sig {
            sig.policy(0, opts.policy);
            for (i, p) in s.pages.iter().enumerate() {
                let e = sim
                    .k
                    .mm
                    .walk(&sim.m.mem, p.va)
                    .map(|l| l.entry)
                    .unwrap_or(0);
                sig.pte(0, i, e);
                sig.value(0, i, p.value);
            }
        }
        Ok(sim)
    }

    /// Map every named page: COW pages read-only in both the process and
    /// its parent (two references), the others writable. A page below
    /// Linux's default `vm.mmap_min_addr` is refused, as `mmap` refuses it.
    fn map_pages(&mut self) -> Result<(), MmError> {
        const MMAP_MIN_ADDR: u64 = 0x10000;
        if let Some(p) = self.s.pages.iter().find(|p| p.va < MMAP_MIN_ADDR) {
            return Err(MmError::Unsupported {
                what: format!(
                    "mapping page '{}' below mmap_min_addr ({MMAP_MIN_ADDR:#x})",
                    p.name
                ),
                va: p.va,
                instead:
                    "give every page a va of 0x10000 or more (Linux's mmap refuses lower addresses)",
            });
        }
        // The zero pages, pinned: never freed.
        self.k.zero_pfn = self.m.mem.alloc()?;
        self.m.mem.pin(self.k.zero_pfn)?;
        if self.s.pages.iter().any(|p| p.zero) {
            self.k.huge_zero_pfn = self.m.mem.alloc_contiguous(512)?;
            self.m.mem.pin(self.k.huge_zero_pfn)?;
        }
        for p in &self.s.pages {
            let ro = pte::US | pte::A;
            if p.zero {
                let haddr = p.va & !0x1f_ffff;
                let base = self.k.huge_zero_pfn;
                self.chk.store("init".into(), p.va, 0, 0, 0);
                self.k
                    .mm
                    .map(&mut self.m.mem, haddr, base, PageSize::Huge2M, ro)?;
                let pmd_pa = self.k.mm.pmd_pa(&mut self.m.mem, haddr)?;
                let table = self.m.mem.alloc()?;
                self.k.deposited.insert(pmd_pa, table);
                let f = base + ((p.va >> PAGE_SHIFT) & 0x1ff);
                let st = self.m.mem.state(f);
                self.chk.mapped(p.va & !0xfff, f, st);
                continue;
            }
            if p.thp || p.hugetlb {
                // A transparent or hugetlbfs huge page (shared with the parent if COW),
                // with the page table deposited for a later split.
                let base = self.m.mem.alloc_contiguous(512)?;
                let f = base + ((p.va >> PAGE_SHIFT) & 0x1ff);
                let v = self.m.store((f << PAGE_SHIFT) | (p.va & 0xff8), p.value)?;
                self.chk.store("init".into(), p.va, p.value, v, 0);
                let haddr = p.va & !0x1f_ffff;
                let flags = if p.cow { ro } else { ro | pte::RW | pte::D };
                self.k
                    .mm
                    .map(&mut self.m.mem, haddr, base, PageSize::Huge2M, flags)?;
                if p.cow {
                    self.k
                        .parent
                        .map(&mut self.m.mem, haddr, base, PageSize::Huge2M, flags)?;
                    self.m.mem.get(base)?;
                }
                if p.thp {
                    let pmd_pa = self.k.mm.pmd_pa(&mut self.m.mem, haddr)?;
                    let table = self.m.mem.alloc()?;
                    self.k.deposited.insert(pmd_pa, table);
                }
                let st = self.m.mem.state(f);
                self.chk.mapped(p.va & !0xfff, f, st);
                continue;
            }
            let f = self.m.mem.alloc()?;
            let pa = (f << PAGE_SHIFT) | (p.va & 0xff8);
            let v = self.m.store(pa, p.value)?;
            self.chk.store("init".into(), p.va, p.value, v, 0);
            let page = p.va & !0xfff;
            if p.cow {
                self.k
                    .mm
                    .map(&mut self.m.mem, page, f, PageSize::Small, ro)?;
                self.k
                    .parent
                    .map(&mut self.m.mem, page, f, PageSize::Small, ro)?;
                self.m.mem.get(f)?;
            } else {
                self.k.mm.map(
                    &mut self.m.mem,
                    page,
                    f,
                    PageSize::Small,
                    ro | pte::RW | pte::D,
                )?;
            }
            let st = self.m.mem.state(f);
            self.chk.mapped(page, f, st);
        }
        Ok(())
    }

    fn page_of(&self, va: u64) -> Option<usize> {
        self.s.pages.iter().position(|p| p.va >> 12 == va >> 12)
    }

    fn refresh_cpu_view(&mut self) {
        for (i, p) in self.s.pages.iter().enumerate() {
            self.cpu_view[i] = self.k.mm.walk(&self.m.mem, p.va).ok();
        }
    }

    fn rtl_err(&self, line: usize, source: crate::rtl::RtlError) -> RunError {
        RunError::Rtl {
            file: self.s.path.clone(),
            line,
            source,
        }
    }

    fn err(&self, line: usize, msg: String) -> RunError {
        RunError::Timeline {
            file: self.s.path.clone(),
            line,
            msg,
        }
    }

    /// Advance the clock `n` cycles, serving the device and watching windows.
    fn tick_n(&mut self, n: u64) -> Result<(), RunError> {
        for _ in 0..n {
            self.m.tick();
            if let Some(e) = self.m.rtl_error() {
                return Err(self.rtl_err(self.line, e));
            }
            let cycle = self.m.cycle();
            let accesses = std::mem::take(&mut self.m.dev_accesses);
            for a in &accesses {
                let Some(p) = self.devs.get(a.id as usize).and_then(|d| d.as_ref()) else {
                    continue;
                };
                let (va, issued) = (p.va, p.issued);
                let cpu = self.k.mm.walk(&self.m.mem, va).ok();
                let state = self.m.mem.state(a.pa >> PAGE_SHIFT);
                if let Some(Some(p)) = self.devs.get_mut(a.id as usize) {
                    p.accessed = Some((a.pa >> PAGE_SHIFT, state));
                }
                let before = self.chk.findings.len();
                self.chk.dev_access(a, va, issued, cpu.as_ref(), state);
                if let Some(sig) = &mut self.sig {
                    for f in &self.chk.findings[before..] {
                        sig.violation(cycle, f.kind.name());
                    }
                }
            }
            self.watch_translations(cycle);
            for r in std::mem::take(&mut self.m.dev_responses) {
                let Some(p) = self.devs.get_mut(r.id as usize).and_then(Option::take) else {
                    continue;
                };
                let page = self.chk.describe_va(p.va);
                let pfn = r.pa >> PAGE_SHIFT;
                if let Some((f, then)) = p.accessed {
                    let now = self.m.mem.state(f);
                    let before = self.chk.findings.len();
                    self.chk
                        .access_outlived_frame(r.id, p.va, f, then, now, cycle);
                    if let (Some(sig), true) = (&mut self.sig, self.chk.findings.len() > before) {
                        sig.violation(cycle, "use-after-free");
                    }
                }
                let text = if r.fault {
                    format!(
                        "{} -> FAULT (no translation or no permission; PRI is not modelled)",
                        p.text
                    )
                } else {
                    let current = self
                        .page_of(p.va)
                        .and_then(|i| self.cpu_view[i])
                        .map(|l| l.pfn);
                    let which = match current {
                        Some(c) if c == pfn => "current page",
                        Some(_) => "OLD page",
                        None => "a page the CPU no longer maps",
                    };
                    if p.write {
                        format!("{} -> frame {pfn:#x} ({which}) @{}", p.text, r.cycle)
                    } else {
                        format!(
                            "{} = {:#x} from frame {pfn:#x} ({which}) @{}",
                            p.text, r.rdata, r.cycle
                        )
                    }
                };
                if let Some(sig) = &mut self.sig {
                    sig.dev(cycle, r.id, &text);
                }
                self.lines.push(ThreadLine {
                    thread: ThreadRef::Dev(r.id),
                    text,
                });
                self.dev.push(DevRecord {
                    cycle: r.cycle,
                    dev: r.id,
                    page,
                    write: p.write,
                    value: if p.write { p.wdata } else { r.rdata },
                    fault: r.fault,
                    pa: r.pa,
                });
            }
            for i in 0..self.s.pages.len() {
                let held = self.m.probe(i);
                let open = self.chk.observe(cycle, i, self.cpu_view[i].as_ref(), held);
                if let Some(sig) = &mut self.sig {
                    sig.window(cycle, i, open, held, self.cpu_view[i].as_ref());
                }
            }
        }
        Ok(())
    }

    /// Checkpoint `translated`: a pending access whose page's `xlat` probe
    /// shows the IOMMU's answer (a walk result or a Completion in flight).
    fn watch_translations(&mut self, cycle: u64) {
        for d in 0..self.devs.len() {
            let Some(p) = &self.devs[d] else { continue };
            if p.translated.is_some() {
                continue;
            }
            let Some(i) = self.page_of(p.va) else {
                continue;
            };
            let Some(x) = self.m.probe(i)[2] else {
                continue;
            };
            let text = format!(
                "{}: translated @{cycle}, frame {:#x} (the IOMMU's answer is on its way)",
                p.text, x.ppn
            );
            if let Some(sig) = &mut self.sig {
                sig.dev(cycle, d as u8, &text);
            }
            self.lines.push(ThreadLine {
                thread: ThreadRef::Dev(d as u8),
                text,
            });
            if let Some(p) = &mut self.devs[d] {
                p.translated = Some(cycle);
            }
            self.dev_translated[d] = Some(cycle);
        }
    }

    /// Stamp the events of the steps just taken.
    fn absorb_events(&mut self) {
        let cycle = self.m.cycle();
        let mut pte_changed = false;
        for e in std::mem::take(&mut self.events) {
            match e {
                HostEvent::Store {
                    tid,
                    va,
                    value,
                    version,
                    ..
                } => {
                    self.chk
                        .store(format!("cpu{tid}"), va, value, version, cycle);
                    self.stores.push(StoreRecord {
                        cycle,
                        thread: ThreadRef::Cpu(tid),
                        page: self.chk.describe_va(va),
                        value,
                    });
                    let page = self.page_of(va);
                    if let (Some(sig), Some(i)) = (&mut self.sig, page) {
                        sig.value(cycle, i, value);
                    }
                }
                HostEvent::Pte { va, new, .. } => {
                    pte_changed = true;
                    if pte::present(new) {
                        let f = pte::pfn(new);
                        let st = self.m.mem.state(f);
                        self.chk.mapped(va, f, st);
                    }
                    let page = self.page_of(va);
                    if let (Some(sig), Some(i)) = (&mut self.sig, page) {
                        sig.pte(cycle, i, new);
                    }
                }
                HostEvent::Io {
                    tid,
                    va,
                    value,
                    version,
                } => {
                    self.chk.io(va, value, version, cycle);
                    self.io.push(IoRecord {
                        cycle,
                        thread: ThreadRef::Cpu(tid),
                        page: self.chk.describe_va(va),
                        value,
                    });
                }
                HostEvent::Load { .. }
                | HostEvent::FlushBegin { .. }
                | HostEvent::FlushDone { .. }
                | HostEvent::FrameFreed { .. } => {}
            }
        }
        if pte_changed {
            self.refresh_cpu_view();
            if let Some(sig) = &mut self.sig {
                for (i, p) in self.s.pages.iter().enumerate() {
                    let v = self.cpu_view[i]
                        .and_then(|l| self.m.mem.read((l.pfn << PAGE_SHIFT) | (p.va & 0xff8)).ok())
                        .map_or(0, |w| w.value);
                    sig.value(cycle, i, v);
                }
            }
        }
    }

    /// Start what `e` asks of its thread.
    fn start(&mut self, e: &Entry, line: usize) -> Result<(), RunError> {
        let s = self.s;
        match (e.thread, &e.action) {
            (ThreadRef::Cpu(i), Action::Resume) => {
                if self.cpus[i].op.is_none() {
                    return Err(self.err(
                        line,
                        format!("cpu{i} has nothing to resume: it is not inside a kernel path"),
                    ));
                }
            }
            (ThreadRef::Cpu(i), a) => {
                if self.cpus[i].op.is_some() {
                    let c = &self.cpus[i];
                    return Err(self.err(
                        line,
                        format!(
                            "cpu{i} is still inside '{}' (stopped after '{}'): write 'resume' before giving it new work",
                            c.text,
                            c.path.last().unwrap_or(&"its start")
                        ),
                    ));
                }
                // The VMAs the paths work in: the pages, and which are a shared file mapping's.
                let vmas = Vmas::new(s.pages.iter().map(|p| (p.va, p.file)));
                let op: Box<dyn KernelPath> = match *a {
                    Action::Write { page, value } => {
                        Box::new(StoreOp::new(s.pages[page].va, value))
                    }
                    Action::Read { page } => Box::new(LoadOp::new(s.pages[page].va)),
                    Action::Munmap { page, pages } => {
                        let start = s.pages[page].va & !0xfff;
                        Box::new(ZapOp::new(
                            start,
                            start + pages * 4096,
                            s.params.gather_batch as usize,
                        ))
                    }
                    Action::Ksm { page, into } => Box::new(match into {
                        None => KsmOp::wrprotect(s.pages[page].va, vmas),
                        Some(q) => KsmOp::merge(s.pages[page].va, s.pages[q].va, vmas),
                    }),
                    Action::Writeback { page, dax } => {
                        let kind = if dax {
                            WritebackKind::Dax
                        } else {
                            WritebackKind::PageCache
                        };
                        Box::new(WritebackOp::new(kind, s.pages[page].va))
                    }
                    Action::MprotectRo { page } => {
                        Box::new(HugetlbOp::mprotect_ro(s.pages[page].va))
                    }
                    Action::Fork { page } => Box::new(HugetlbOp::fork(s.pages[page].va)),
                    Action::MadvFree { page } => Box::new(MadvFreeOp::new(s.pages[page].va, vmas)),
                    Action::Collapse { page } => Box::new(CollapseOp::new(s.pages[page].va, vmas)),
                    Action::Unmap { page, migrate } => {
                        let kind = match (migrate, s.pages[page].file) {
                            (true, _) => UnmapKind::Migrate,
                            (false, true) => UnmapKind::ReclaimFile,
                            (false, false) => UnmapKind::Reclaim,
                        };
                        Box::new(UnmapOp::new(kind, s.pages[page].va))
                    }
                    Action::Split { page } => Box::new(ZeroSplit::new(s.pages[page].va)),
                    Action::Resume => unreachable!("handled above"),
                };
                self.cpus[i] = Cpu {
                    op: Some(op),
                    text: e.action_text().to_string(),
                    path: Vec::new(),
                };
            }
            (ThreadRef::Dev(d), Action::Resume) => {
                // An access can finish in the background before its resume
                // (timing differs with the parameters): nothing to wait for.
                if self.devs[d as usize].is_none() {
                    self.lines.push(ThreadLine {
                        thread: ThreadRef::Dev(d),
                        text: "resume: its access had already finished".into(),
                    });
                }
            }
            (ThreadRef::Dev(d), a) => {
                if let Some(p) = &self.devs[d as usize] {
                    let msg = format!(
                        "dev{d} is still inside '{}' (line {}): write 'dev{d}: resume' in an earlier step before giving it a new access",
                        p.text, p.line
                    );
                    return Err(self.err(line, msg));
                }
                let (page, write, wdata) = match *a {
                    Action::Read { page } => (page, false, 0),
                    Action::Write { page, value } => (page, true, value),
                    Action::Munmap { .. }
                    | Action::Ksm { .. }
                    | Action::Writeback { .. }
                    | Action::MprotectRo { .. }
                    | Action::Fork { .. }
                    | Action::Split { .. }
                    | Action::Unmap { .. }
                    | Action::MadvFree { .. }
                    | Action::Collapse { .. } => {
                        unreachable!("rejected by the parser")
                    }
                    Action::Resume => unreachable!("handled above"),
                };
                let va = s.pages[page].va;
                let issued = self.m.cycle();
                self.m.dev_submit(DevRequest {
                    id: d,
                    pasid: IOMMU_PASID,
                    va,
                    write,
                    wdata,
                });
                if let Some(sig) = &mut self.sig {
                    sig.dev(issued, d, &e.text);
                }
                self.dev_translated[d as usize] = None;
                self.devs[d as usize] = Some(DevPending {
                    accessed: None,
                    va,
                    write,
                    wdata,
                    issued,
                    text: e.action_text().to_string(),
                    line,
                    translated: None,
                });
            }
        }
        Ok(())
    }

    /// One step of CPU thread `i`.
    fn step_cpu(&mut self, i: usize, line: usize) -> Result<Progress, RunError> {
        let mut cx = Cx {
            m: &mut self.m,
            k: &mut self.k,
            tid: i,
            events: &mut self.events,
        };
        let r = match self.cpus[i].op.as_mut() {
            Some(op) => op.step(&mut cx).map(|p| (p, op.finished())),
            None => Ok((Progress::Done, true)),
        };
        let (p, finished) = r.map_err(|e| self.err(line, format!("cpu{i}: {e}")))?;
        if let Progress::Reached(cp) = p {
            self.cpus[i].path.push(cp);
        }
        if finished {
            self.cpus[i].op = None;
        }
        Ok(p)
    }

    fn run_slot(
        &mut self,
        label: &str,
        index: u64,
        line: usize,
        entries: &[Entry],
    ) -> Result<SlotReport, RunError> {
        let start = self.m.cycle();
        self.line = line;
        self.lines.clear();
        if let Some(sig) = &mut self.sig {
            sig.slot(start, index);
        }
        for e in entries {
            self.start(e, line)?;
        }
        // (thread, stop checkpoint, done, what it did in this slot)
        let mut running: Vec<(usize, Option<&str>, bool, Vec<&'static str>)> = entries
            .iter()
            .filter_map(|e| match e.thread {
                ThreadRef::Cpu(i) => Some((i, e.until.as_deref(), false, Vec::new())),
                ThreadRef::Dev(_) => None,
            })
            .collect();
        let step = self.s.params.cpu_step_cycles.max(1);
        loop {
            let mut waits: Vec<(usize, WaitOn)> = Vec::new();
            let mut progressed = false;
            for r in running.iter_mut().filter(|r| !r.2) {
                let (i, until) = (r.0, r.1);
                let p = self.step_cpu(i, line)?;
                match p {
                    Progress::Reached(cp) => {
                        progressed = true;
                        r.3.push(cp);
                        if let Some(sig) = &mut self.sig {
                            sig.cpu(self.m.cycle(), i, &format!("{}: {cp}", self.cpus[i].text));
                        }
                        if until == Some(cp) {
                            r.2 = true;
                        } else if self.cpus[i].op.is_none() {
                            if let Some(u) = until {
                                return Err(self.err(
                                    line,
                                    format!(
                                        "cpu{i} finished '{}' without reaching checkpoint '{u}' (it went through: {}); the page may not have been write-protected, or the checkpoint was already passed",
                                        self.cpus[i].text,
                                        self.cpus[i].path.join(", ")
                                    ),
                                ));
                            }
                            r.2 = true;
                        }
                    }
                    Progress::Wait(w) => {
                        waits.push((i, w));
                        if let Some(sig) = &mut self.sig {
                            let what = match w {
                                WaitOn::Lock { .. } => "spin on PTL",
                                WaitOn::Queue => "spin on IOMMU queue",
                                WaitOn::Fence => "spin on fence",
                            };
                            sig.cpu(self.m.cycle(), i, &format!("{}: {what}", self.cpus[i].text));
                        }
                    }
                    Progress::Done => r.2 = true,
                }
                if self.cpus[i].op.is_none() {
                    self.cpus[i].path.clear();
                }
            }
            self.absorb_events();
            let cpus_done = running.iter().all(|r| r.2);
            let mut devs_done = true;
            for e in entries {
                let ThreadRef::Dev(d) = e.thread else {
                    continue;
                };
                let d = d as usize;
                devs_done &= match (e.until.is_some(), self.dev_translated[d]) {
                    (false, _) => self.devs[d].is_none(),
                    (true, Some(_)) => true,
                    (true, None) if self.devs[d].is_none() => {
                        return Err(self.err(
                            line,
                            format!(
                                "dev{d} finished '{}' without reaching checkpoint 'translated': no translation was sent for it (its ATC held one, or the walk faulted); drop 'until', or let the ATC lose the page first",
                                e.action_text()
                            ),
                        ));
                    }
                    (true, None) => false,
                };
            }
            if cpus_done && devs_done {
                if progressed {
                    self.tick_n(step)?;
                }
                break;
            }
            if !progressed && !waits.is_empty() {
                let live: Vec<usize> = running.iter().filter(|r| !r.2).map(|r| r.0).collect();
                let stuck = waits.iter().all(
                    |(_, w)| matches!(w, WaitOn::Lock { holder, .. } if !live.contains(holder)),
                );
                if stuck && waits.len() == live.len() {
                    let (i, w) = waits[0];
                    if let WaitOn::Lock { holder, .. } = w {
                        return Err(self.err(
                            line,
                            format!(
                                "cpu{i} spins on a page-table lock held by cpu{holder}, which this step does not run (cpu{holder} stopped after '{}'): resume cpu{holder} in this step, or stop it before 'lock'",
                                self.cpus[holder].path.last().unwrap_or(&"?")
                            ),
                        ));
                    }
                }
            }
            let spinning = waits
                .iter()
                .filter(|(_, w)| matches!(w, WaitOn::Fence | WaitOn::Queue));
            self.spin_cycles += step * spinning.count() as u64;
            // A round in which CPU threads ran costs a step; waiting only
            // for the device advances one cycle at a time.
            let cycles = if running.is_empty() || (cpus_done && !progressed) {
                1
            } else {
                step
            };
            self.tick_n(cycles)?;
            if self.m.cycle() - start > self.s.params.watchdog_cycles {
                let mut why = Vec::new();
                for (i, w) in &waits {
                    why.push(format!("cpu{i} waits on {w:?}"));
                }
                for e in entries {
                    if let ThreadRef::Dev(d) = e.thread {
                        if self.devs[d as usize].is_some() {
                            why.push(format!("dev{d} has no response to '{}'", e.text));
                        }
                    }
                }
                let st = self.k.driver.stats;
                if st.ats_timeouts > 0 {
                    why.push(format!(
                        "the IOMMU driver saw {} ATS invalidation timeouts and submitted {} parts again",
                        st.ats_timeouts, st.restarts
                    ));
                }
                return Err(self.err(
                    line,
                    format!(
                        "watchdog: this step ran {} cycles, from cycle {start} to cycle {}, without finishing (watchdog_cycles = {}): {}; the RTL may hang, or raise params.watchdog_cycles",
                        self.m.cycle() - start,
                        self.m.cycle(),
                        self.s.params.watchdog_cycles,
                        why.join("; ")
                    ),
                ));
            }
        }
        let mut lines: Vec<ThreadLine> = running
            .iter()
            .map(|(i, until, _, did)| {
                let stop = match (until, self.cpus[*i].op.is_some()) {
                    (_, true) => " ... preempted".to_string(),
                    (_, false) => String::new(),
                };
                ThreadLine {
                    thread: ThreadRef::Cpu(*i),
                    text: format!("{}: {}{stop}", self.cpus_text(*i, entries), did.join(", ")),
                }
            })
            .collect();
        lines.append(&mut self.lines);
        let preempted = (0..MAX_CPUS)
            .filter(|i| self.cpus[*i].op.is_some() && !running.iter().any(|r| r.0 == *i))
            .collect();
        Ok(SlotReport {
            preempted,
            label: label.to_string(),
            line,
            start,
            end: self.m.cycle(),
            lines,
        })
    }

    fn cpus_text(&self, i: usize, entries: &[Entry]) -> String {
        entries
            .iter()
            .find(|e| e.thread == ThreadRef::Cpu(i))
            .map_or(String::new(), |e| e.text.clone())
    }

    fn finish(
        mut self,
        slots: Vec<SlotReport>,
        t0: Instant,
        opts: &RunOptions,
    ) -> Result<RunReport, RunError> {
        self.chk.finish();
        let (mm, mem) = (&self.k.mm, &self.m.mem);
        let visible = |va: u64| {
            let l = mm.walk(mem, va).ok()?;
            mem.read((l.pfn << PAGE_SHIFT) | (va & 0xff8))
                .ok()
                .map(|w| w.version)
        };
        self.chk.judge_writes(visible, self.m.cycle());
        let cycles = self.m.cycle();
        let mut waves = None;
        if let (Some(path), Some(sig)) = (&opts.waves, self.sig.take()) {
            self.m.trace_close();
            waves = Some(sig.write(path, cycles)?);
        }
        Ok(RunReport {
            scenario: self.s.name.clone(),
            file: self.s.path.clone(),
            policy: opts.policy,
            pages: self.s.pages.iter().map(|p| p.name.clone()).collect(),
            slots,
            windows: self.chk.windows.clone(),
            findings: self.chk.findings.clone(),
            verdict: self.chk.verdict(),
            expected: self.s.expected(opts.policy).cloned(),
            stores: self.stores,
            dev: self.dev,
            io: self.io,
            final_view: (self.s.pages.iter())
                .map(|p| PageView::of(&self.k.mm, &self.m.mem, p.va))
                .collect(),
            cycles,
            stats: self.k.driver.stats,
            driver: self.s.driver,
            spin_cycles: self.spin_cycles,
            wall: t0.elapsed(),
            waves,
        })
    }
}
