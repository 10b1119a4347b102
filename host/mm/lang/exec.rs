//! Running a path: one step (one checkpoint) per scheduler step. A
//! primitive that must wait (a lock held elsewhere, a flush in progress)
//! leaves the step where it is; the next round resumes at that primitive,
//! so nothing before it is done twice. A `goto` continues in the same round
//! at the target step: the step it left is not reached.

use super::{
    BinOp, Call, Expr, Func, Inputs, OpKind, PathDef, RmapHold, END, MAX_INDEX, MAX_OPS_PER_STEP,
    PTE, START, VA,
};
use crate::mem::{AddressSpace, PageSize, Prot, PAGE_SIZE};
use crate::mm::kernel::{Cx, HostEvent, MmError, Notify, WaitOn};
use crate::mm::mapping::{self, HugeKind, Mapping};
use crate::mm::path;
use crate::mm::policy::Prim;
use std::fmt;
use std::sync::Arc;

/// What a step of a path did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Completed the named checkpoint; more steps follow.
    Reached(&'static str),
    /// Waiting; try again next round.
    Wait(WaitOn),
    /// Completed the named checkpoint with `retry`: the faulting access is
    /// tried again.
    Retry(&'static str),
    /// Completed the named checkpoint and returned.
    Return(&'static str),
}

/// One run of a path: where it is, and its variables.
pub struct PathRun {
    def: Arc<PathDef>,
    step: usize,
    op: usize,
    /// The current `*_clear_flush*` cleared its entry and is flushing.
    cleared: bool,
    vars: Vec<Option<u64>>,
    /// The elements of the arrays set so far, by (slot, index).
    elems: std::collections::BTreeMap<(usize, u64), u64>,
    notify: Notify,
    gather: Option<Gather>,
    /// The batch size of an mmu_gather (`params.gather_batch`).
    batch_max: usize,
    /// What started the path, as the timeline writes it (`munmap`,
    /// `call`), for a refusal's message.
    caller: &'static str,
    /// The rmap walk in progress (`rmap_next`).
    rmap: Option<Rmap>,
    /// The path a `call` runs, until it returns; and how deep this run is
    /// in calls.
    sub: Option<Box<PathRun>>,
    depth: u8,
    finished: bool,
}

/// How deep calls may nest (a path that calls itself stops there).
const MAX_CALL_DEPTH: u8 = 8;

/// An rmap walk of a page (`rmap_next`): where the path started, and the
/// other mappings still to visit.
#[derive(Debug)]
struct Rmap {
    /// The process the walk started in, and its `va`, `start`, `end` and
    /// `pte`.
    home: usize,
    inputs: [Option<u64>; 4],
    /// (process, page address), in the order the walk visits them.
    rest: std::collections::VecDeque<(usize, u64)>,
}

/// The physical address of `va`'s PTE slot in the running process's
/// page tables when a page table maps its region with 4 KiB entries (the
/// `pte` input; `None` otherwise).
pub(super) fn pte_slot(cx: &Cx, va: u64) -> Option<u64> {
    use crate::mem::WalkError;
    match cx.k.mm().walk(&cx.m.mem, va) {
        Ok(l) if l.size == PageSize::Small => Some(l.entry_pa),
        Err(WalkError::NotPresent {
            level: 1, entry_pa, ..
        }) => Some(entry_pa),
        _ => None,
    }
}

/// An mmu_gather in progress (`struct mmu_gather`).
#[derive(Debug, Default)]
struct Gather {
    /// The pages to free after the flush.
    batch: Vec<u64>,
    /// The page tables to free after the flush (`tlb_remove_table`).
    tables: Vec<u64>,
    /// `tlb->start/end`: what the next TLB flush must cover.
    range: Option<(u64, u64)>,
    /// `tlb->cleared_ptes`, `tlb->cleared_pmds`, `tlb->cleared_puds`: what
    /// the next flush's entries are (`tlb_get_unmap_shift`: 4 KiB if any PTE
    /// was cleared, else 2 MiB if a PMD was, else 1 GiB if a PUD was).
    cleared_ptes: bool,
    cleared_pmds: bool,
    cleared_puds: bool,
}

impl Gather {
    /// The stride of the next flush, bytes.
    fn stride(&self) -> u64 {
        if self.cleared_ptes {
            PAGE_SIZE
        } else if self.cleared_pmds {
            PageSize::Huge2M.bytes()
        } else if self.cleared_puds {
            PageSize::Huge1G.bytes()
        } else {
            PAGE_SIZE
        }
    }

    /// `__tlb_adjust_range`: the next flush covers `[start, end)` too.
    fn adjust(&mut self, start: u64, end: u64) {
        let (s, t) = self.range.unwrap_or((start, end));
        self.range = Some((s.min(start), t.max(end)));
    }

    /// The next flush covers the `size`-aligned block holding `va` (an
    /// entry the path cleared, or a page table it freed).
    fn cover(&mut self, va: u64, size: PageSize) -> Result<(), MmError> {
        let va = va & !(size.bytes() - 1);
        let end = va
            .checked_add(size.bytes())
            .ok_or_else(|| fail(format!("{va:#x}: no page there")))?;
        self.adjust(va, end);
        Ok(())
    }
}

/// The state a future depends on (what `explore`'s digest reads): the
/// path by name, not its text.
impl fmt::Debug for PathRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PathRun")
            .field("path", &self.def.name)
            .field("step", &self.step)
            .field("op", &self.op)
            .field("cleared", &self.cleared)
            .field("vars", &self.vars)
            .field("elems", &self.elems)
            .field("notify", &self.notify)
            .field("gather", &self.gather)
            .field("rmap", &self.rmap)
            .field("sub", &self.sub)
            .field("finished", &self.finished)
            .finish()
    }
}

enum Next {
    On,
    Wait(WaitOn),
    Jump(usize),
    Retry,
    Return,
    /// A called path reached its checkpoint; `true`: and returned (this
    /// path goes on after the call).
    Called(&'static str, bool),
}

impl PathRun {
    /// A run with its inputs (in [`super::INPUTS`] order; `None`: the
    /// caller has none, and reading it is an error).
    pub fn new(def: Arc<PathDef>, inputs: Inputs) -> Self {
        let mut vars = vec![None; def.vars.len()];
        vars[..inputs.len()].copy_from_slice(&inputs);
        PathRun {
            def,
            step: 0,
            op: 0,
            cleared: false,
            vars,
            elems: Default::default(),
            notify: Notify::default(),
            gather: None,
            batch_max: 1,
            caller: "call",
            rmap: None,
            sub: None,
            depth: 0,
            finished: false,
        }
    }

    /// The action that started it (default `call`).
    pub fn with_caller(mut self, caller: &'static str) -> Self {
        self.caller = caller;
        self
    }

    /// The batch size of the path's mmu_gather (at least 1).
    pub fn with_gather_batch(mut self, n: usize) -> Self {
        self.batch_max = n.max(1);
        self
    }

    /// A write fault handler's inputs for the 4 KiB page at `va` whose PTE
    /// is at `pte`.
    pub fn page_inputs(va: u64, pte: u64) -> Inputs {
        let s = va & !(PAGE_SIZE - 1);
        [
            Some(va),
            Some(s),
            Some(s + PAGE_SIZE),
            Some(pte),
            None,
            None,
            None,
            None,
            Some(1),
        ]
    }

    pub fn finished(&self) -> bool {
        self.finished
    }

    pub fn def(&self) -> &PathDef {
        &self.def
    }

    /// Run the current step to its checkpoint, or until it waits.
    pub fn step(&mut self, cx: &mut Cx) -> Result<Flow, MmError> {
        if self.finished {
            return Ok(Flow::Return(""));
        }
        let def = self.def.clone();
        let mut budget = MAX_OPS_PER_STEP;
        loop {
            let step = &def.steps[self.step];
            let at = |line: usize, msg: String| MmError::Path {
                at: format!("{}:{line}", def.file),
                path: def.name.clone(),
                step: step.name,
                msg,
            };
            let mut jumped = false;
            while self.op < step.ops.len() {
                let op = &step.ops[self.op];
                budget -= 1;
                if budget == 0 {
                    return Err(at(op.line, format!("{MAX_OPS_PER_STEP} primitives without reaching a checkpoint: the path loops; give the loop a checkpoint")));
                }
                let next = self.op(cx, &op.kind).map_err(|e| match e {
                    // What the path does not model stays that error, and a
                    // called path's names its own line.
                    e @ (MmError::Unsupported { .. } | MmError::Path { .. }) => e,
                    e => at(op.line, e.to_string()),
                })?;
                match next {
                    Next::On => {
                        self.op += 1;
                        self.cleared = false;
                    }
                    Next::Wait(w) => return Ok(Flow::Wait(w)),
                    Next::Jump(t) => {
                        self.step = t;
                        self.op = 0;
                        jumped = true;
                        break;
                    }
                    Next::Retry => {
                        self.finished = true;
                        return Ok(Flow::Retry(step.name));
                    }
                    Next::Return => {
                        self.finished = true;
                        return Ok(Flow::Return(step.name));
                    }
                    // the callee's checkpoint is the thread's; this path
                    // resumes at the call, or after it once it returned
                    Next::Called(c, returned) => {
                        if returned {
                            self.op += 1;
                            self.cleared = false;
                        }
                        return Ok(Flow::Reached(c));
                    }
                }
            }
            if jumped {
                continue;
            }
            self.op = 0;
            self.step += 1;
            if step.label() {
                continue; // the parser keeps a label from being last
            }
            if self.step == def.steps.len() {
                self.finished = true;
                return Ok(Flow::Return(step.name));
            }
            return Ok(Flow::Reached(step.name));
        }
    }

    /// `rmap_next` (`to`: the step each VMA runs from) and `rmap_end`
    /// (`None`). The first call lists the VMAs (`rmap_walk_file` holds
    /// `i_mmap_rwsem`: those of that moment); each `rmap_next` moves the
    /// thread to the next, and after the last, as `rmap_end` does, back
    /// home, where a later `rmap_next` would begin a new walk.
    fn rmap_next(&mut self, cx: &mut Cx, to: Option<usize>) -> Next {
        let inputs = [
            self.vars[VA],
            self.vars[START],
            self.vars[END],
            self.vars[PTE],
        ];
        let walk = self.rmap.get_or_insert_with(|| {
            let home = cx.k.cur;
            let page = inputs[0].unwrap_or(0) & !(PAGE_SIZE - 1);
            Rmap {
                home,
                inputs,
                rest: cx.k.file_mappings(home, page).into(),
            }
        });
        let next = to.and_then(|t| Some((t, walk.rest.pop_front()?)));
        match next {
            Some((to, (process, page))) => {
                let [va, start, end, _] = walk.inputs;
                // the page's range as long as the first's (a `call` may
                // have given any start and end: no wrap)
                let len = end.zip(start).map(|(e, s)| e.saturating_sub(s));
                cx.switch_process(process);
                self.vars[VA] = va.map(|v| page + (v & (PAGE_SIZE - 1)));
                self.vars[START] = Some(page);
                self.vars[END] = len.and_then(|n| page.checked_add(n));
                self.vars[PTE] = self.vars[VA].and_then(|va| pte_slot(cx, va));
                Next::Jump(to)
            }
            None => {
                let (home, inputs) = (walk.home, walk.inputs);
                self.rmap = None;
                if cx.k.cur != home {
                    cx.switch_process(home);
                    self.vars[..4].copy_from_slice(&inputs);
                }
                Next::On
            }
        }
    }

    /// `call`: the callee's next step (started with its inputs the first
    /// time); a wait is this path's.
    fn call(&mut self, cx: &mut Cx, name: &str, args: [&Expr; 3]) -> Result<Next, MmError> {
        if self.sub.is_none() {
            if self.depth >= MAX_CALL_DEPTH {
                return Err(fail(format!(
                    "'call {name}' nests {MAX_CALL_DEPTH} calls deep: a path calls itself"
                )));
            }
            let def = cx.paths.get(name).ok_or_else(|| {
                fail(format!(
                    "no path '{name}' (checked when the paths are loaded)"
                ))
            })?;
            let [va, start, end] = [
                self.eval(cx, args[0])?,
                self.eval(cx, args[1])?,
                self.eval(cx, args[2])?,
            ];
            let mut inputs: Inputs = [None; super::INPUTS.len()];
            inputs[..4].copy_from_slice(&[Some(va), Some(start), Some(end), pte_slot(cx, va)]);
            let mut run = PathRun::new(def.0, inputs)
                .with_caller(self.caller)
                .with_gather_batch(self.batch_max);
            run.depth = self.depth + 1;
            self.sub = Some(Box::new(run));
        }
        let sub = self.sub.as_mut().expect("started above");
        Ok(match sub.step(cx)? {
            Flow::Reached(c) => Next::Called(c, false),
            Flow::Wait(w) => Next::Wait(w),
            Flow::Return(c) => {
                self.sub = None;
                Next::Called(c, true)
            }
            Flow::Retry(_) => {
                return Err(fail(format!(
                    "'call {name}': the callee ended in 'retry', which only a fault handler does"
                )))
            }
        })
    }

    fn op(&mut self, cx: &mut Cx, op: &OpKind) -> Result<Next, MmError> {
        match op {
            OpKind::Let(slot, e) => self.vars[*slot] = Some(self.eval(cx, e)?),
            OpKind::LetIndex(slot, i, e) => {
                let i = self.eval(cx, i)?;
                if i >= MAX_INDEX {
                    return Err(fail(format!(
                        "'{}[{i}]': an index is 0 to {}",
                        self.def.vars[*slot],
                        MAX_INDEX - 1
                    )));
                }
                let v = self.eval(cx, e)?;
                self.elems.insert((*slot, i), v);
            }
            OpKind::Alloc(slot) => self.vars[*slot] = Some(cx.m.mem.alloc()?),
            OpKind::Withdraw(slot, e) => {
                let pmd = self.eval(cx, e)?;
                self.vars[*slot] = Some(cx.k.withdraw(pmd).unwrap_or(0));
            }
            OpKind::ChildSlot(slot, e, level) => {
                let addr = self.eval(cx, e)?;
                let size = match level {
                    0 => cx.k.proc().vmas.huge_entry_size(addr),
                    l => PageSize::at_level(*l).expect("the parser gives level 0 or 2"),
                };
                let haddr = addr & !(size.bytes() - 1);
                let format = cx.pt();
                let child = AddressSpace::with_format(&mut cx.m.mem, 0, format)?;
                let none = Prot::default();
                let dst = child.map_prot(&mut cx.m.mem, haddr, 0, size, none)?;
                cx.m.mem.write(dst, 0, 0)?;
                self.vars[*slot] = Some(dst);
            }
            OpKind::SlotAlloc(slot, e, level) => {
                let va = self.eval(cx, e)?;
                self.vars[*slot] = Some(cx.k.mm().alloc_slot(&mut cx.m.mem, va, *level)?);
            }
            OpKind::Lock(e) => {
                let id = self.eval(cx, e)? >> 12;
                if let Some(w) = path::lock(cx, id) {
                    return Ok(Next::Wait(w));
                }
            }
            OpKind::Unlock(e) => {
                let id = self.eval(cx, e)? >> 12;
                path::unlock(cx, id);
            }
            OpKind::RmapLock(e, hold) => {
                let va = self.eval(cx, e)?;
                let id = cx.k.rmap_lock_id(va);
                let wait = match hold {
                    RmapHold::Write => path::lock(cx, id),
                    RmapHold::Read => path::lock_read(cx, id),
                    RmapHold::Release => {
                        path::unlock(cx, id);
                        None
                    }
                };
                if let Some(w) = wait {
                    return Ok(Next::Wait(w));
                }
            }
            OpKind::PageLock(e, take) => {
                let id = crate::mm::page_lock_id(self.eval(cx, e)?);
                if !*take {
                    path::unlock(cx, id);
                } else if let Some(w) = path::lock(cx, id) {
                    return Ok(Next::Wait(w));
                }
            }
            OpKind::Mutex(id, take) => {
                let held = cx.k.ptl.holder(*id) == Some(cx.tid);
                if *take && held {
                    return Err(fail(format!(
                        "mutex_lock of {}, which this thread holds already: a mutex is not recursive (Linux would deadlock here)",
                        crate::mm::lock_kind(*id).0
                    )));
                } else if !*take && !held {
                    return Err(fail(format!(
                        "mutex_unlock of {}, which this thread does not hold",
                        crate::mm::lock_kind(*id).0
                    )));
                }
                if !*take {
                    path::unlock(cx, *id);
                } else if let Some(w) = path::lock(cx, *id) {
                    return Ok(Next::Wait(w));
                }
            }
            OpKind::SetPte(a, v, at) => {
                let (pa, v) = (self.eval(cx, a)?, self.eval(cx, v)?);
                let va = match at {
                    Some(e) => self.eval(cx, e)?,
                    None => self.var(VA)?,
                };
                path::set_entry(cx, pa, va, v)?;
            }
            OpKind::When(c, then) => {
                if self.eval(cx, c)? != 0 {
                    return self.op(cx, then);
                }
            }
            OpKind::Get(e) => {
                let pfn = self.eval(cx, e)?;
                cx.m.mem.get(pfn)?;
            }
            OpKind::Put(e) => {
                let pfn = self.eval(cx, e)?;
                path::put_page(cx, pfn)?;
            }
            OpKind::Copy(d, s, n) => {
                let (d, s) = (self.eval(cx, d)?, self.eval(cx, s)?);
                let n = match n {
                    Some(n) => self.eval(cx, n)?,
                    None => 1,
                };
                if n > 512 {
                    return Err(fail(format!(
                        "copy of {n} pages: at most a 2 MiB page's 512"
                    )));
                }
                for i in 0..n {
                    let (d, s) = d.checked_add(i).zip(s.checked_add(i)).ok_or_else(|| {
                        fail(format!(
                            "copy of {n} pages from {s:#x} to {d:#x}: no such frames"
                        ))
                    })?;
                    cx.m.mem.copy_frame(d, s)?;
                }
            }
            OpKind::AllocHuge(slot, pool) => {
                self.vars[*slot] = Some(cx.m.mem.alloc_compound(512, *pool)?);
            }
            OpKind::Unshare(slot, e) => {
                let addr = self.eval(cx, e)?;
                self.vars[*slot] = Some(path::huge_pmd_unshare(cx, addr)?);
            }
            OpKind::Notify {
                call,
                clear,
                start,
                end,
                stride,
            } => {
                let (s, e) = (self.eval(cx, start)?, self.eval(cx, end)?);
                if e < s {
                    return Err(fail(format!(
                        "the range ends ({e:#x}) before it starts ({s:#x})"
                    )));
                }
                // a *_clear_flush flushes its one entry; flush_tlb_range
                // entries of its stride (4 KiB unless given)
                let stride = match (stride, clear) {
                    (Some(x), _) => match self.eval(cx, x)? {
                        0 => return Err(fail("a stride of 0: give the size of one flushed entry (PAGE_SIZE, PMD_SIZE)".into())),
                        x => x,
                    },
                    (None, Some(_)) => (e - s).max(PAGE_SIZE),
                    (None, None) => PAGE_SIZE,
                };
                if let (Some(entry), false) = (clear, self.cleared) {
                    let pa = self.eval(cx, entry)?;
                    path::set_entry(cx, pa, self.var(VA)?, 0)?;
                    self.cleared = true;
                }
                let wait = match call {
                    Call::Prim(Prim::KvaRange) => self.notify.kva_range(cx, s, e)?,
                    Call::Prim(p) => self.notify.run(cx, *p, s, e, stride)?,
                    Call::Start => None,
                };
                if let Some(w) = wait {
                    return Ok(Next::Wait(w));
                }
            }
            OpKind::Goto(c, t) => {
                let go = match c {
                    None => true,
                    Some(c) => self.eval(cx, c)? != 0,
                };
                if go {
                    return Ok(Next::Jump(*t));
                }
            }
            OpKind::Call(name, va, start, end) => return self.call(cx, name, [va, start, end]),
            OpKind::RmapNext(t) => return Ok(self.rmap_next(cx, Some(*t))),
            OpKind::RmapEnd => return Ok(self.rmap_next(cx, None)),
            OpKind::Gather(s, e) => {
                if self.gather.is_some() {
                    return Err(fail("tlb_gather_mmu while a gather is in progress: finish it first (tlb_finish_mmu)".into()));
                }
                // 4.15's tlb_gather_mmu(tlb, mm, start, end): the range is
                // the caller's (tlb_finish_mmu's nested force takes it
                // again, with tlb_adjust_range).
                let (start, end) = (self.eval(cx, s)?, self.eval(cx, e)?);
                if end < start {
                    return Err(fail(format!(
                        "the range ends ({end:#x}) before it starts ({start:#x})"
                    )));
                }
                self.gather = Some(Gather::default());
                cx.k.proc_mut().tlb_flush_pending += 1;
            }
            OpKind::AdjustRange(s, e) => {
                let (s, e) = (self.eval(cx, s)?, self.eval(cx, e)?);
                if e > s {
                    self.gather_mut()?.adjust(s, e);
                }
            }
            OpKind::Lazyfree(e) => {
                let pfn = self.eval(cx, e)?;
                cx.k.lazyfree.insert(pfn);
            }
            OpKind::Unlazy(e) => {
                let pfn = self.eval(cx, e)?;
                cx.k.lazyfree.remove(&pfn);
            }
            OpKind::Discard(e) => {
                let pfn = self.eval(cx, e)?;
                cx.events.push(HostEvent::Discard {
                    va: self.var(VA)?,
                    pfn,
                });
            }
            OpKind::FlushPending { inc: true } => {
                let p = cx.k.proc_mut();
                p.tlb_flush_pending = p.tlb_flush_pending.checked_add(1).ok_or_else(|| {
                    fail("mm->tlb_flush_pending overflows: a loop of inc_tlb_flush_pending".into())
                })?;
            }
            OpKind::FlushPending { inc: false } => {
                let p = cx.k.proc_mut();
                p.tlb_flush_pending = p.tlb_flush_pending.checked_sub(1).ok_or_else(|| {
                    fail("dec_tlb_flush_pending with no flush pending: pair it with inc_tlb_flush_pending".into())
                })?;
            }
            OpKind::MadvFree { returned } => {
                let va = self.var(VA)? & !(PAGE_SIZE - 1);
                cx.events.push(HostEvent::MadvFree {
                    va,
                    returned: *returned,
                });
            }
            OpKind::RemoveTlbEntry { va, size } => {
                let va = self.eval(cx, va)?;
                let g = self.gather_mut()?;
                g.cover(va, *size)?;
                match size {
                    PageSize::Small => g.cleared_ptes = true,
                    PageSize::Huge2M => g.cleared_pmds = true,
                    PageSize::Huge1G => g.cleared_puds = true,
                }
            }
            OpKind::RemovePage(e) => {
                let pfn = self.eval(cx, e)?;
                self.gather_mut()?.batch.push(pfn);
            }
            OpKind::RemoveTable(t, va) => {
                let (pfn, va) = (self.eval(cx, t)?, self.eval(cx, va)?);
                let g = self.gather_mut()?;
                g.cover(va, PageSize::Small)?;
                g.tables.push(pfn);
            }
            OpKind::FreeTable(t) => {
                let pfn = self.eval(cx, t)?;
                if !cx.m.mem.free_table(pfn)? {
                    return Err(fail(format!(
                        "pte_free_kernel {pfn:#x}: the frame has another reference (not a page table only the kernel holds)"
                    )));
                }
            }
            OpKind::FlushTlbOnly | OpKind::Finish => {
                let g = self.gather_mut()?;
                let (range, stride) = (g.range, g.stride());
                if let Some((s, e)) = range {
                    if let Some(w) = self.notify.run(cx, Prim::TlbFlushMmu, s, e, stride)? {
                        return Ok(Next::Wait(w));
                    }
                    // __tlb_reset_range
                    let g = self.gather_mut()?;
                    (g.range, g.cleared_ptes, g.cleared_pmds, g.cleared_puds) =
                        (None, false, false, false);
                }
                if *op == OpKind::Finish {
                    self.free_batch(cx)?;
                    self.gather = None;
                    let p = cx.k.proc_mut();
                    p.tlb_flush_pending = p.tlb_flush_pending.saturating_sub(1);
                }
            }
            OpKind::FlushFree => self.free_batch(cx)?,
            OpKind::Io(e) => {
                let pa = self.eval(cx, e)?;
                let w = cx.m.mem.read(pa)?;
                cx.events.push(HostEvent::Io {
                    tid: cx.tid,
                    va: self.var(VA)?,
                    value: w.value,
                    version: w.version,
                });
            }
            OpKind::Store(a, v) => {
                let (pa, v) = (self.eval(cx, a)?, self.eval(cx, v)?);
                cx.m.mem.write(pa, v, 0)?;
            }
            OpKind::Deposit(pmd, t) => {
                let (pmd, t) = (self.eval(cx, pmd)?, self.eval(cx, t)?);
                if cx.k.deposited.contains_key(&pmd) {
                    return Err(fail(format!(
                        "deposit at {pmd:#x}: a page table is deposited there already (withdraw it first)"
                    )));
                }
                cx.k.deposited.insert(pmd, t);
            }
            OpKind::SvaUnbind => {
                if let Some(w) = self.notify.unbind(cx)? {
                    return Ok(Next::Wait(w));
                }
            }
            OpKind::NotifierPut => cx.k.proc_mut().unbound = true,
            OpKind::Release => {
                if cx.k.proc().unbound {
                    return Err(fail("mmu_notifier_release with no notifier left (unbound, released or put): test unbound() first".into()));
                }
                if let Some(w) = self.notify.release(cx)? {
                    return Ok(Next::Wait(w));
                }
                cx.k.proc_mut().unbound = true;
            }
            OpKind::Refuse(what, instead) => {
                let what = what.replace("{caller}", self.caller);
                return Err(mapping::refuse(what, self.var(VA)?, instead));
            }
            OpKind::Retry => return Ok(Next::Retry),
            OpKind::Return => return Ok(Next::Return),
        }
        Ok(Next::On)
    }

    fn gather_mut(&mut self) -> Result<&mut Gather, MmError> {
        self.gather
            .as_mut()
            .ok_or_else(|| fail("no mmu_gather: begin one with tlb_gather_mmu".into()))
    }

    /// `tlb_flush_mmu_free`: the page tables (`tlb_table_flush`), then the
    /// pages.
    fn free_batch(&mut self, cx: &mut Cx) -> Result<(), MmError> {
        for pfn in std::mem::take(&mut self.gather_mut()?.tables) {
            cx.m.mem.free_table(pfn)?;
        }
        for pfn in std::mem::take(&mut self.gather_mut()?.batch) {
            path::put_page(cx, pfn)?;
        }
        Ok(())
    }

    fn var(&self, slot: usize) -> Result<u64, MmError> {
        self.vars[slot].ok_or_else(|| {
            fail(format!(
                "'{}' is read before it is set (on this run's way through the path)",
                self.def.vars[slot]
            ))
        })
    }

    fn eval(&self, cx: &mut Cx, e: &Expr) -> Result<u64, MmError> {
        Ok(match e {
            Expr::Num(n) => *n,
            Expr::Var(s) => self.var(*s)?,
            Expr::Index(s, i) => {
                let i = self.eval(cx, i)?;
                *self.elems.get(&(*s, i)).ok_or_else(|| {
                    fail(format!(
                        "'{}[{i}]' is read before it is set (on this run's way through the path)",
                        self.def.vars[*s]
                    ))
                })?
            }
            Expr::Group(a) => self.eval(cx, a)?,
            Expr::Defined(s) => u64::from(self.vars[*s].is_some()),
            Expr::Not(a) => u64::from(self.eval(cx, a)? == 0),
            Expr::Inv(a) => !self.eval(cx, a)?,
            Expr::Bin(op, a, b) => {
                let (a, b) = (self.eval(cx, a)?, self.eval(cx, b)?);
                let wrap = || fail(format!("{a:#x} {op:?} {b:#x} does not fit in 64 bits"));
                match op {
                    BinOp::Or => u64::from(a != 0 || b != 0),
                    BinOp::And => u64::from(a != 0 && b != 0),
                    BinOp::Eq => u64::from(a == b),
                    BinOp::Ne => u64::from(a != b),
                    BinOp::Lt => u64::from(a < b),
                    BinOp::Le => u64::from(a <= b),
                    BinOp::Gt => u64::from(a > b),
                    BinOp::Ge => u64::from(a >= b),
                    BinOp::BitOr => a | b,
                    BinOp::BitAnd => a & b,
                    BinOp::Add => a.checked_add(b).ok_or_else(wrap)?,
                    BinOp::Sub => a.checked_sub(b).ok_or_else(wrap)?,
                    BinOp::Shl => u32::try_from(b)
                        .ok()
                        .and_then(|b| a.checked_shl(b))
                        .filter(|r| r >> b.min(63) == a)
                        .ok_or_else(wrap)?,
                    BinOp::Shr => u32::try_from(b)
                        .ok()
                        .and_then(|b| a.checked_shr(b))
                        .ok_or_else(wrap)?,
                }
            }
            // C's ?:, not a call: only the chosen value is evaluated (a read
            // that would fail on the other side is never made).
            Expr::Func(Func::Select, args) => {
                let pick = if self.eval(cx, &args[0])? != 0 { 1 } else { 2 };
                self.eval(cx, &args[pick])?
            }
            Expr::Func(f, args) => {
                let mut v = [0u64; 3];
                for (slot, a) in v.iter_mut().zip(args) {
                    *slot = self.eval(cx, a)?;
                }
                let x = v[0];
                let pt = cx.pt();
                match f {
                    Func::Read => cx.m.mem.read(x)?.value,
                    Func::Refcount => u64::from(cx.m.mem.refcount(x)),
                    Func::Mapcount => cx.k.mapcount(&cx.m.mem, x),
                    Func::Pfn => pt.pfn(x),
                    // pte_present: a NUMA hinting entry is the kernel's
                    Func::Present => u64::from(pt.present(x) || mapping::is_protnone(x)),
                    Func::Protnone => mapping::protnone(x),
                    Func::IsProtnone => u64::from(mapping::is_protnone(x)),
                    Func::Mkpresent if mapping::is_protnone(x) => mapping::present_again(x),
                    Func::Mkpresent => x,
                    Func::Writable => u64::from(pt.writable(x)),
                    Func::Young => u64::from(pt.young(x)),
                    Func::Dirty => u64::from(pt.dirty(x)),
                    Func::Mkwrite => pt.mkwrite(x),
                    Func::Wrprotect => pt.wrprotect(x),
                    Func::Mkdirty => pt.mkdirty(x),
                    Func::Mkclean => pt.mkclean(x),
                    Func::Mkyoung => pt.mkyoung(x),
                    Func::Mkold => pt.mkold(x),
                    Func::LeafRw | Func::LeafRo => {
                        let prot = if *f == Func::LeafRw {
                            Prot::USER_RW
                        } else {
                            Prot::USER_RO
                        };
                        let e = pt.leaf(x, prot, false);
                        if pt.pfn(e) != x {
                            return Err(fail(format!(
                                "{}({x:#x}): not a frame number an entry can hold",
                                f.name()
                            )));
                        }
                        e
                    }
                    Func::HugeLeafRw => {
                        let e = pt.leaf(x, Prot::USER_RW, true);
                        if pt.pfn(e) != x || x % 512 != 0 {
                            return Err(fail(format!(
                                "huge_leaf_rw({x:#x}): not the first frame of a 2 MiB page"
                            )));
                        }
                        e
                    }
                    Func::KernelHugeLeaf => {
                        let e = pt.leaf(x, Prot::KERNEL_RW, true);
                        if pt.pfn(e) != x || x % 512 != 0 {
                            return Err(fail(format!(
                                "kernel_huge_leaf({x:#x}): not the first frame of a 2 MiB page"
                            )));
                        }
                        e
                    }
                    Func::Named => u64::from(cx.k.proc().vmas.pages().any(|p| p == x & !0xfff)),
                    Func::Select => unreachable!("evaluated above, lazily"),
                    Func::Table => table(cx, self.caller, &self.def.name, x)?,
                    Func::PteIn => x
                        .checked_mul(PAGE_SIZE)
                        .and_then(|t| t.checked_add(((v[1] >> 12) & 0x1ff) * 8))
                        .ok_or_else(|| fail(format!("pte_in({x:#x}, ..): not a frame")))?,
                    Func::BatchFull => u64::from(
                        self.gather
                            .as_ref()
                            .is_some_and(|g| g.batch.len() >= self.batch_max),
                    ),
                    Func::ZeroPfn => cx.k.zero_pfn,
                    Func::Unbound => u64::from(cx.k.proc().unbound),
                    Func::TlbFlushNested => u64::from(cx.k.proc().tlb_flush_pending > 1),
                    Func::TlbFlushPending => u64::from(cx.k.proc().tlb_flush_pending > 0),
                    Func::FileVma => u64::from(cx.k.proc().vmas.is_file(x)),
                    Func::Hugetlb => u64::from(matches!(
                        mapping::lookup(cx.k, &mut cx.m.mem, x)?,
                        Mapping::Huge {
                            kind: HugeKind::Hugetlb,
                            ..
                        }
                    )),
                    Func::PmdOf => cx.k.mm().pmd_pa(&mut cx.m.mem, x)?,
                    Func::PudOf => cx.k.mm().pud_pa(&mut cx.m.mem, x)?,
                    Func::HugePteOffset => {
                        let level = cx.k.proc().vmas.huge_entry_size(x).level();
                        cx.k.mm().slot_pa(&mut cx.m.mem, x, level).unwrap_or(0)
                    }
                    Func::HugePageSize => cx.k.proc().vmas.huge_page_size(x),
                    Func::HugeHinting => u64::from(path::huge_numa_hole(cx, x)?),
                    Func::HugeZero => u64::from(matches!(
                        mapping::lookup(cx.k, &mut cx.m.mem, x)?,
                        Mapping::Huge {
                            kind: HugeKind::HugeZero,
                            ..
                        }
                    )),
                    Func::Deposited => u64::from(cx.k.deposited.contains_key(&x)),
                    Func::IsHuge => u64::from(pt.is_huge(x)),
                    Func::TableEntry => {
                        let e = pt.table(x);
                        if pt.pfn(e) != x {
                            return Err(fail(format!(
                                "table_entry({x:#x}): not a frame number an entry can hold"
                            )));
                        }
                        e
                    }
                    Func::IsLazyfree => u64::from(cx.k.lazyfree.contains(&x)),
                    Func::HasVma => u64::from(cx.k.proc().vmas.mapped(x)),
                    Func::PageLocked => {
                        u64::from(cx.k.ptl.holder(crate::mm::page_lock_id(x)).is_some())
                    }
                    Func::Identical => {
                        let mut same = true;
                        for i in 0..PAGE_SIZE / 8 {
                            let a = cx.m.mem.read((x << 12) + 8 * i)?.value;
                            if a != cx.m.mem.read((v[1] << 12) + 8 * i)?.value {
                                same = false;
                                break;
                            }
                        }
                        u64::from(same)
                    }
                    Func::SetPfn => {
                        let e = pt.entry(v[1], pt.flags(x));
                        if pt.pfn(e) != v[1] {
                            return Err(fail(format!(
                                "set_pfn(.., {:#x}): not a frame number an entry can hold",
                                v[1]
                            )));
                        }
                        e
                    }
                    Func::Mapped => u64::from(cx.k.mm().walk(&cx.m.mem, x).is_ok()),
                    Func::FrameOf => cx.k.mm().walk(&cx.m.mem, x)?.pfn,
                    Func::Huge => u64::from(matches!(
                        mapping::lookup(cx.k, &mut cx.m.mem, x)?,
                        Mapping::Huge { .. }
                    )),
                    Func::ProcessContext => cx.m.process_context(cx.k.mm().pasid).unwrap_or(0),
                    Func::PasidEntry => cx.k.driver.pasid_entry(cx.m, cx.k.mm().pasid).unwrap_or(0),
                    Func::NextVma => cx.k.proc().vmas.next_region(x).unwrap_or(u64::MAX),
                    Func::TableEmpty => {
                        let mut empty = true;
                        for i in 0..512 {
                            empty &= cx.m.mem.read((x << 12) + 8 * i)?.value == 0;
                        }
                        u64::from(empty)
                    }
                    Func::RegionWithin => {
                        u64::from(cx.k.proc().vmas.in_region(x).all(|p| p >= v[1] && p < v[2]))
                    }
                }
            }
        })
    }
}

/// `table(addr)`: see [`Func::Table`].
fn table(cx: &mut Cx, caller: &str, name: &str, addr: u64) -> Result<u64, MmError> {
    match mapping::lookup(cx.k, &mut cx.m.mem, addr)? {
        m @ Mapping::Huge { .. } => Err(mapping::refuse(
            format!(
                "{caller} of {} ({name} walks 4 KiB entries, and a huge PMD has no page table: a path tests huge(addr) before table(addr), as zap_pte_range.yaml does)",
                m.describe(cx.k),
            ),
            addr,
            "this path walks 4 KiB entries: give it a range of small pages",
        )),
        Mapping::Absent { level: 2.., .. } => Ok(0),
        Mapping::Pte { pte_pa, .. }
        | Mapping::Absent {
            entry_pa: pte_pa, ..
        } => Ok(pte_pa >> 12),
    }
}

fn fail(msg: String) -> MmError {
    MmError::Eval(msg)
}

/// `call <path> <page> [<pages>]`: a scenario's own path run on a CPU
/// thread over `pages` pages from `va`. Its `pte` input is the PTE slot of
/// `va` when `va` is mapped by (or has a table for) 4 KiB entries, read
/// when the call starts.
#[derive(Debug)]
pub struct CallOp {
    def: super::PathRef,
    va: u64,
    pages: u64,
    batch: usize,
    caller: &'static str,
    to: Option<u64>,
    keep_tables: bool,
    prot_numa: bool,
    misplaced: bool,
    write: Option<bool>,
    run: Option<PathRun>,
    finished: bool,
}

impl CallOp {
    pub fn new(def: super::PathRef, va: u64, pages: u64) -> Self {
        CallOp {
            def,
            va,
            pages,
            batch: 1,
            caller: "call",
            to: None,
            keep_tables: false,
            prot_numa: false,
            misplaced: false,
            write: None,
            run: None,
            finished: false,
        }
    }

    /// A fault's access: the input `write` is 1 for a write, 0 for a read.
    pub fn with_write(mut self, write: bool) -> Self {
        self.write = Some(write);
        self
    }

    /// The caller keeps the page tables the path's range empties: the
    /// input `keep_tables` is 1 (madvise(MADV_DONTNEED)).
    pub fn keeping_tables(mut self) -> Self {
        self.keep_tables = true;
        self
    }

    /// A NUMA hinting fault of a page the scan found misplaced: the input
    /// `misplaced` is 1.
    pub fn misplaced(mut self) -> Self {
        self.misplaced = true;
        self
    }

    /// The caller is NUMA balancing: the input `prot_numa` is 1
    /// (`change_prot_numa`).
    pub fn numa_hinting(mut self) -> Self {
        self.prot_numa = true;
        self
    }

    /// The input `to`: a destination page's address (`mremap`).
    pub fn with_to(mut self, va: u64) -> Self {
        self.to = Some(va);
        self
    }

    /// The action that runs it (default `call`), for a refusal's message.
    pub fn with_caller(mut self, caller: &'static str) -> Self {
        self.caller = caller;
        self
    }

    /// The batch size of the path's mmu_gather (`params.gather_batch`).
    pub fn with_gather_batch(mut self, n: usize) -> Self {
        self.batch = n.max(1);
        self
    }
}

impl crate::mm::KernelPath for CallOp {
    fn step(&mut self, cx: &mut Cx) -> Result<crate::mm::Progress, MmError> {
        use crate::mm::Progress;
        if self.finished {
            return Ok(Progress::Done);
        }
        let run = match &mut self.run {
            Some(r) => r,
            None => {
                let pte = pte_slot(cx, self.va);
                let start = self.va & !(PAGE_SIZE - 1);
                // The parser bounds `pages` and keeps the range in the user half.
                let end = start.saturating_add(self.pages.saturating_mul(PAGE_SIZE));
                self.run.insert(
                    PathRun::new(
                        self.def.0.clone(),
                        [
                            Some(self.va),
                            Some(start),
                            Some(end),
                            pte,
                            self.to,
                            self.keep_tables.then_some(1),
                            self.prot_numa.then_some(1),
                            self.misplaced.then_some(1),
                            self.write.map(u64::from),
                        ],
                    )
                    .with_gather_batch(self.batch)
                    .with_caller(self.caller),
                )
            }
        };
        Ok(match run.step(cx)? {
            Flow::Reached(c) => Progress::Reached(c),
            Flow::Wait(w) => Progress::Wait(w),
            Flow::Return(c) => {
                self.finished = true;
                Progress::Reached(c)
            }
            Flow::Retry(c) => {
                return Err(MmError::Path {
                    at: self.def.0.file.clone(),
                    path: self.def.0.name.clone(),
                    step: c,
                    msg: "'retry' returns to a faulting access, and 'call' has none: end the path with 'return'".into(),
                })
            }
        })
    }

    fn finished(&self) -> bool {
        self.finished
    }

    fn declared_mmap_lock(&self) -> Option<crate::mm::mmap::Hold> {
        self.def.0.mmap_lock
    }
}
