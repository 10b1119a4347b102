//! Running a scenario: the hub where a scenario line becomes kernel-path
//! steps, device accesses and RTL clock cycles, split into rooms:
//!
//! - this file: the run as a whole ([`run`]: set up, the timeline, the
//!   final drain and settle, the report or the salvaged waves);
//! - [`setup`]: the named pages mapped as the scenario declares them;
//! - [`dispatch`]: what a timeline entry starts (a kernel path, a device
//!   access, a resume);
//! - [`sched`]: the deterministic scheduler, one `[Time N+k]` step after
//!   another in rounds, with the watchdog;
//! - [`observe`]: the clock, and what each cycle shows (device accesses and
//!   responses, the probes, the windows, the kernel's events).
//!
//! A step runs in *rounds*. In a round every CPU thread named in the step
//! that has not reached its stop takes one kernel-path step (at most one
//! checkpoint, or one spin on a lock or a fence), in the order the step
//! names them; then the RTL clock advances `cpu_step_cycles` cycles. Device
//! threads submit their access when the step starts; the step ends when
//! every named CPU thread reached its stop and every device access has its
//! response. A schedule is thus data: the timeline alone decides who runs
//! when, and the same scenario gives the same cycles every time.

mod dispatch;
mod iopf;
mod observe;
mod sched;
mod session;
mod setup;

pub use session::Session;

use super::machine::{IommuLayout, Machine, MachineParams, RvMemory};
use super::outcome::{
    DevRecord, IoRecord, PageView, RunReport, SlotReport, StoreRecord, ThreadLine,
};
use super::trace::HostSignals;
use crate::checker::{key, split_key, Checker};
use crate::iommu::SvaDriver;
use crate::mem::{AddressSpace, FrameState, Leaf, MemError, PageSize, PAGE_SHIFT};
use crate::mm::{HostEvent, Kernel, KernelPath, MmError, Policy, Process};
use crate::scenario::{Action, Entry, Scenario, ThreadRef, Until, MAX_CPUS, MAX_DEVS};
use std::path::PathBuf;
use std::time::Instant;

pub struct RunOptions {
    pub policy: Policy,
    /// Write the waves (RTL and host signals) here, with a .gtkw beside
    /// them: FST when the path ends in `.fst`, else VCD.
    pub waves: Option<PathBuf>,
}

impl RunOptions {
    /// A run under `policy` that writes no waves.
    pub fn policy(policy: Policy) -> Self {
        RunOptions {
            policy,
            waves: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The timeline cannot go on (line 0: in the drain after its last step).
    #[error("{}{}: {msg}", file.display(), at_line(*line))]
    Timeline {
        file: PathBuf,
        line: usize,
        msg: String,
        /// The step's thread spins on a lock held by this thread, which
        /// the step does not run: a schedule may choose another move (in a
        /// new session: the thread may have run part of its path).
        blocked_by: Option<usize>,
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

#[derive(Default, Debug)]
struct Cpu {
    op: Option<Box<dyn KernelPath>>,
    /// The process its operation acts in (`current->mm`).
    process: u8,
    text: String,
    /// Checkpoints reached by the current operation.
    path: Vec<&'static str>,
}

#[derive(Debug)]
struct DevPending {
    /// The page's address as the checker knows it
    /// ([`crate::checker::key`]: the process and the VA).
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
    /// It stops at `requested`, not yet reached: say when the device takes it.
    tell_requested: bool,
    /// The frame its memory access touched and that frame's state then.
    accessed: Option<(u64, FrameState)>,
}

/// log2 of the page-request queue's records: one 4 KiB frame.
const PQ_LOG2N: u8 = 8;

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
    /// Per CPU thread: the checkpoint it reached last (kept when its path
    /// ends, for `explore` to name the step it played).
    reached: Vec<Option<&'static str>>,
    /// The kernel's I/O page fault worker (PRI).
    iopf: iopf::Iopf,
    /// The cycle a device access made no progress within the watchdog:
    /// the run stopped there (no step, drain or settle runs after it).
    stalled: Option<u64>,
}

/// The `[Time N+k]` label of step `n`.
fn label(n: usize) -> String {
    match n {
        0 => "N".to_string(),
        n => format!("N+{n}"),
    }
}

/// Run `s` under `opts.policy`. When the run fails (an RTL assertion, the
/// watchdog, an impossible timeline) after waves were asked for, the waves
/// up to that cycle are still written, with the failure marked on
/// `host.violation`, so the failure can be looked at in GTKWave.
/// Physical memory for a scenario's pages: 8,192 frames (32 MiB), and for
/// each 1 GiB hugetlb page 262,144 frames more, with one more gigabyte
/// below them (a 1 GiB page is aligned to 1 GiB, and the small frames and
/// 2 MiB pages sit in the first).
fn memory_frames(pages: &[crate::scenario::Page]) -> u64 {
    // one page per process and gigabyte
    let mut regions: Vec<(u8, u64)> = pages.iter().filter_map(|p| p.gigabyte()).collect();
    regions.sort_unstable();
    regions.dedup();
    let gigantic = regions.len() as u64;
    if gigantic == 0 {
        8192
    } else {
        (gigantic + 1) * PageSize::Huge1G.frames()
    }
}

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
    /// Feed what the run's future depends on into `h`
    /// ([`crate::sim::digest`]): the machine, the kernel (paths, locks,
    /// driver), the checker's judging state, the accesses in flight. The
    /// records of the past (stores, device accesses, step lines) are left
    /// out. None when the RTL's state cannot be digested.
    fn digest(&self, h: &mut crate::sim::digest::StateHasher) -> Option<()> {
        self.m.digest(h)?;
        h.debug(&self.k);
        let in_flight: Vec<u64> = self.devs.iter().flatten().map(|d| d.issued).collect();
        self.chk.digest(h, self.m.cycle(), &in_flight);
        h.debug(&self.cpus);
        h.debug(&self.iopf);
        // When a finished access reached `translated` is the past's: it is
        // read only while the access is in flight.
        let translated: Vec<Option<u64>> = (self.devs.iter().zip(&self.dev_translated))
            .map(|(d, t)| d.as_ref().and(*t))
            .collect();
        h.debug(&(&self.devs, &translated, &self.events, &self.cpu_view));
        Some(())
    }

    /// Every step of the timeline, the final drain and the settling time.
    fn run_timeline(&mut self) -> Result<Vec<SlotReport>, RunError> {
        let s = self.s;
        if s.timeline.is_empty() {
            return Err(self.err(
                0,
                "this scenario gives programs and no timeline: explore its schedules with 'shootdown explore', or add a timeline".into(),
            ));
        }
        let mut slots = Vec::new();
        for (n, slot) in s.timeline.iter().enumerate() {
            slots.push(self.run_slot(&label(n), n as u64, slot.line, &slot.entries)?);
            if self.stalled.is_some() {
                break;
            }
        }
        slots.extend(self.drain_and_settle(s.timeline.len())?);
        Ok(slots)
    }

    /// After the last of `steps` steps: every thread still inside a kernel
    /// path or an access runs to its end, then the hardware settles so that
    /// windows opened at the end can close.
    fn drain_and_settle(&mut self, steps: usize) -> Result<Option<SlotReport>, RunError> {
        if self.stalled.is_some() {
            return Ok(None);
        }
        let cpus = (0..MAX_CPUS)
            .filter(|&i| self.cpus[i].op.is_some())
            .map(ThreadRef::Cpu);
        let devs = (0..MAX_DEVS)
            .filter(|&d| self.devs[d as usize].is_some())
            .map(ThreadRef::Dev);
        // A scheduled worker drains too (the devices may still ask it).
        let worker = (self.iopf.scheduled).then_some(ThreadRef::Iopf);
        let drain: Vec<Entry> = cpus
            .chain(devs)
            .chain(worker)
            .map(|thread| Entry {
                thread,
                action: Action::Resume,
                until: Until::End,
                text: "resume".into(),
            })
            .collect();
        let waiting = drain.iter().any(|e| e.thread != ThreadRef::Iopf);
        let slot = if !waiting && !self.iopf.busy(self.m.pq_tail()) {
            None
        } else {
            Some(self.run_slot(&label(steps), steps as u64, 0, &drain)?)
        };
        // Bounded: every term is range-checked, and by the watchdog.
        let p = &self.s.params;
        let settle = 4
            * (p.mem_latency.max(p.dev_mem_latency) + p.iommu_mem_latency + p.ats_latency)
            + p.ats_cpl_delay
            + 16;
        self.line = 0;
        self.tick_n(settle.min(p.watchdog_cycles))?;
        Ok(slot)
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
        // What parsing checks, for a scenario changed since (an arch or a
        // parameter set by a caller): a run only on a socket that has it.
        if let Some(msg) = s.unsupported() {
            return Err(RunError::Timeline {
                file: s.path.clone(),
                line: 0,
                msg,
                blocked_by: None,
            });
        }
        let machine_params = MachineParams {
            frames: memory_frames(&s.pages),
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
            pri_limit: p.pri as u8,
        };
        let mut m = if s.arch.riscv() {
            let mem = RvMemory {
                sample_on_request: p.mem_sample_on_request,
                slow: (p.iommu_slow_cycles > 0)
                    .then_some((p.iommu_slow_id as u32, p.iommu_slow_cycles)),
            };
            Machine::new_riscv(machine_params, mem).map_err(|e| RunError::Rtl {
                file: s.path.clone(),
                line: 0,
                source: crate::rtl::RtlError::Assertion {
                    cycle: 0,
                    message: e.to_string(),
                },
            })?
        } else {
            Machine::new(machine_params)
        };
        let cq = m.mem.alloc().map_err(setup)?;
        let completion = m.mem.alloc().map_err(setup)?;
        let pasid_table = m.mem.alloc().map_err(setup)?;
        // The page-request queue: one frame of 256 records, only with PRI
        // (a run without it allocates the frames it always did).
        let pq = if p.pri > 0 {
            Some((m.mem.alloc().map_err(setup)? << PAGE_SHIFT, PQ_LOG2N))
        } else {
            None
        };
        let layout = IommuLayout {
            cq_base: cq << PAGE_SHIFT,
            cq_log2n: p.cq_entries.trailing_zeros() as u8,
            pasid_table: pasid_table << PAGE_SHIFT,
            pq_base: pq.map_or(0, |q| q.0),
            pq_log2n: pq.map_or(0, |q| q.1),
        };
        // Each process's address space, bound to its PASID, and the parent
        // it forked from (process 0's allocated first, as a one-process run
        // always did).
        let mut procs = Vec::new();
        for n in 0..crate::scenario::processes(&s.pages) {
            let pasid = crate::scenario::pasid_of(n as u8);
            let mm =
                AddressSpace::with_format(&mut m.mem, pasid, s.arch.format()).map_err(setup)?;
            let parent = AddressSpace::with_format(&mut m.mem, 0, mm.format).map_err(setup)?;
            m.bind(&layout, pasid, mm.pgd, mm.format).map_err(setup)?;
            let mut proc = Process::new(mm, parent);
            // (a kernel page is in no VMA: a Page Request for it finds none)
            let mine = (s.pages.iter()).filter(|p| usize::from(p.process) == n && !p.kernel);
            proc.vmas = crate::mm::Vmas::new(mine.clone().map(|p| (p.va, p.file)));
            for p in mine.clone().filter(|p| p.hugetlb) {
                proc.vmas.hugetlb(p.va, p.huge_size().bytes());
            }
            // An absent page has no VMA until an mremap moves one there.
            for p in mine.filter(|p| p.absent) {
                proc.vmas.unmap(p.va, 1);
            }
            procs.push(proc);
        }
        let driver = SvaDriver::with_kind(layout, completion << PAGE_SHIFT, s.driver);
        let k = Kernel::new(procs, opts.policy, driver);
        let names: Vec<(String, u64)> = (s.pages.iter())
            .map(|p| (p.name.clone(), key(p.process, p.va)))
            .collect();
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
            reached: vec![None; MAX_CPUS],
            iopf: iopf::Iopf::new(pq),
            stalled: None,
        };
        sim.iopf.scheduled = pq.is_some() && s.iopf_scheduled();
        for (n, p) in s.pages.iter().enumerate().filter(|(_, p)| p.file) {
            let at = (usize::from(p.process), p.va & !0xfff);
            sim.k.files.insert(at, p.shares.unwrap_or(n));
            if let Some(i) = p.shares {
                let of = &s.pages[i];
                sim.chk.alias(key(p.process, p.va), key(of.process, of.va));
            }
        }
        sim.map_pages().map_err(|source| RunError::Setup {
            file: s.path.clone(),
            source,
        })?;
        // a supervisor-mode binding of the kernel's page tables
        if let (Some(init), true) = (sim.k.init_mm, s.pages.iter().any(|p| p.supervisor)) {
            let pasid = crate::scenario::KERNEL_PASID;
            (layout.bind_supervisor(&mut sim.m.mem, pasid, init.pgd)).map_err(setup)?;
            sim.k.supervisor_pasid = Some(pasid);
        }
        if let Some(path) = &opts.waves {
            let sig = HostSignals::new(s, path);
            sim.m
                .trace_open(sig.rtl_path())
                .map_err(|e| sim.rtl_err(0, e))?;
            sim.sig = Some(sig);
        }
        sim.m.reset(layout);
        if sim.m.is_riscv() {
            // Linux's RISC-V driver, after the bring-up's own commands
            sim.k.driver =
                SvaDriver::riscv(layout, sim.m.cq_start(), crate::sim::machine::RV_DEVICE_ID);
        }
        for (i, p) in s.pages.iter().enumerate() {
            sim.m.set_probe(i, p.pasid(), p.va >> PAGE_SHIFT);
        }
        sim.refresh_cpu_view();
        sim.judge_protection(&[], 0);
        if let Some(sig) = &mut sim.sig {
            sig.policy(0, opts.policy);
            for (i, p) in s.pages.iter().enumerate() {
                let e = (sim.k.procs[usize::from(p.process)].mm)
                    .walk(&sim.m.mem, p.va)
                    .map(|l| l.entry)
                    .unwrap_or(0);
                sig.pte(0, i, e);
                sig.value(0, i, p.value);
            }
        }
        Ok(sim)
    }

    fn rtl_err(&self, line: usize, source: crate::rtl::RtlError) -> RunError {
        RunError::Rtl {
            file: self.s.path.clone(),
            line,
            source,
        }
    }

    fn err(&self, line: usize, msg: String) -> RunError {
        self.blocked(line, msg, None)
    }

    /// [`Sim::err`] of a step whose thread waits for a lock `blocked_by`
    /// holds and the step does not run (a move explore may take back).
    fn blocked(&self, line: usize, msg: String, blocked_by: Option<usize>) -> RunError {
        RunError::Timeline {
            file: self.s.path.clone(),
            line,
            msg,
            blocked_by,
        }
    }

    fn finish(
        mut self,
        slots: Vec<SlotReport>,
        t0: Instant,
        opts: &RunOptions,
    ) -> Result<RunReport, RunError> {
        self.chk.finish();
        let (procs, mem) = (&self.k.procs, &self.m.mem);
        let visible = |k: u64| {
            let (n, va) = split_key(k);
            let l = procs.get(usize::from(n))?.mm.walk(mem, va).ok()?;
            mem.read((l.pfn << PAGE_SHIFT) | (va & 0xff8))
                .ok()
                .map(|w| (w.version, w.value))
        };
        self.chk.judge_writes(visible, self.m.cycle());
        let cycles = self.m.cycle();
        let coverage = self.m.coverage();
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
            context_windows: self.chk.context_windows.clone(),
            findings: self.chk.findings.clone(),
            verdict: self.chk.verdict(),
            expected: self.s.expected(opts.policy).cloned(),
            stores: self.stores,
            dev: self.dev,
            io: self.io,
            final_view: (self.s.pages.iter())
                .map(|p| PageView::of(&self.k.procs[usize::from(p.process)].mm, &self.m.mem, p.va))
                .collect(),
            cycles,
            stats: self.k.driver.stats,
            driver: self.s.driver,
            spin_cycles: self.spin_cycles,
            wall: t0.elapsed(),
            waves,
            coverage,
        })
    }
}
