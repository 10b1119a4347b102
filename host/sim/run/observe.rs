//! The clock, and what every cycle shows: device accesses and responses,
//! translations reaching the device, the probes and the stale windows, the
//! kernel's events stamped with the cycle.

use super::{RunError, Sim};
use crate::checker::{key, split_key};
use crate::mem::PAGE_SHIFT;
use crate::mm::HostEvent;
use crate::scenario::ThreadRef;
use crate::sim::outcome::{DevRecord, IoRecord, StoreRecord, ThreadLine};

impl Sim<'_> {
    /// The named page holding `at` (a [`key`]: the process and the VA).
    pub(super) fn page_of(&self, at: u64) -> Option<usize> {
        (self.s.pages.iter()).position(|p| key(p.process, p.va) >> 12 == at >> 12)
    }

    /// What the CPU page table of `at`'s process maps there (a [`key`]).
    fn cpu_walk(&self, at: u64) -> Option<crate::mem::Leaf> {
        let (n, va) = split_key(at);
        self.k
            .procs
            .get(usize::from(n))?
            .mm
            .walk(&self.m.mem, va)
            .ok()
    }

    pub(super) fn refresh_cpu_view(&mut self) {
        for (i, p) in self.s.pages.iter().enumerate() {
            let at = key(p.process, p.va);
            let was = self.cpu_view[i].map(|l| l.pfn);
            self.cpu_view[i] = self.cpu_walk(at);
            if let Some(l) = self.cpu_view[i] {
                self.chk.maps(p.process, l.pfn);
                // the page now maps another frame (a huge entry's too, which
                // its PTE event names by the 2 MiB's first page only): the
                // frame's generation from now on
                if was != Some(l.pfn) {
                    let st = self.m.mem.state(l.pfn);
                    self.chk.mapped(at, l.pfn, st);
                }
            }
        }
    }

    /// Mark on `host.checker.violation`, at `cycle`, each finding the
    /// checker made since it held `before` of them.
    pub(super) fn mark_findings(&mut self, cycle: u64, before: usize) {
        if let Some(sig) = &mut self.sig {
            for f in &self.chk.findings[before..] {
                sig.violation(cycle, f.kind.name());
            }
        }
    }

    /// Advance the clock `n` cycles, serving the device and watching windows.
    pub(super) fn tick_n(&mut self, n: u64) -> Result<(), RunError> {
        let mut left = n;
        while left > 0 {
            left -= self.tick_upto(left)?;
        }
        Ok(())
    }

    /// Advance the clock one cycle, or up to `max` when nothing happens in
    /// them (`Machine::tick_upto`: one evaluation for them all); returns the
    /// cycles done. The host's side of the skipped cycles is the same as
    /// the first's (the checker records transitions only, and any happen in
    /// the first), so it runs once, at the first.
    pub(super) fn tick_upto(&mut self, max: u64) -> Result<u64, RunError> {
        let done = self.m.tick_upto(max.max(1));
        if let Some(e) = self.m.rtl_error() {
            return Err(self.rtl_err(self.line, e));
        }
        // What changed, changed in the first of them.
        let cycle = self.m.cycle() - (done - 1);
        let accesses = std::mem::take(&mut self.m.dev_accesses);
        for a in &accesses {
            let Some(p) = self.devs.get(a.id as usize).and_then(|d| d.as_ref()) else {
                continue;
            };
            let (va, issued) = (p.va, p.issued);
            let cpu = self.cpu_walk(va);
            let state = self.m.mem.state(a.pa >> PAGE_SHIFT);
            if let Some(Some(p)) = self.devs.get_mut(a.id as usize) {
                p.accessed = Some((a.pa >> PAGE_SHIFT, state));
            }
            let before = self.chk.findings.len();
            self.chk.dev_access(a, va, issued, cpu.as_ref(), state);
            self.mark_findings(cycle, before);
        }
        for pa in self.m.mem.take_freed_table_reads() {
            let before = self.chk.findings.len();
            self.chk.walked_freed_table(pa, cycle);
            self.mark_findings(cycle, before);
        }
        self.watch_requests(cycle);
        self.watch_page_requests(cycle);
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
                self.mark_findings(cycle, before);
            }
            let requests = self.iopf.requests.get(r.id as usize).copied().unwrap_or(0);
            let text = if r.gave_up {
                let before = self.chk.findings.len();
                self.chk.gave_up(r.id, p.va, p.write, requests, cycle);
                self.mark_findings(cycle, before);
                format!(
                    "{} -> GAVE UP after {requests} Page Requests answered Success (no progress)",
                    p.text
                )
            } else if r.fault && self.iopf.pq.is_some() {
                format!(
                    "{} -> FAULT (the kernel answered its Page Request with Invalid Request)",
                    p.text
                )
            } else if r.fault {
                format!(
                    "{} -> FAULT (no translation or no permission; the device has no PRI)",
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
            self.dev_line(cycle, r.id, text);
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
        if let Some(stale) = self.m.stale_context() {
            self.chk.observe_context(cycle, stale);
            if let Some(sig) = &mut self.sig {
                sig.stale_context(cycle, stale);
            }
        }
        for i in 0..self.s.pages.len() {
            let held = self.m.probe(i);
            let open = self.chk.observe(cycle, i, self.cpu_view[i].as_ref(), held);
            if let Some(sig) = &mut self.sig {
                sig.window(cycle, i, open, held, self.cpu_view[i].as_ref());
            }
        }
        Ok(done)
    }

    /// What device `d` did at `cycle`: a line of the step's report, and of
    /// its host signal in the waves.
    fn dev_line(&mut self, cycle: u64, d: u8, text: String) {
        if let Some(sig) = &mut self.sig {
            sig.dev(cycle, d, &text);
        }
        self.lines.push(ThreadLine {
            thread: ThreadRef::Dev(d),
            text,
        });
    }

    /// Checkpoint `page-request`, for an access that stops there: its
    /// Page Request is in the queue (or the worker took it already).
    fn watch_page_requests(&mut self, cycle: u64) {
        for d in 0..self.devs.len() {
            let (Some(n), false) = (self.iopf.stop_at[d], self.iopf.stopped[d]) else {
                continue;
            };
            let Some(p) = &self.devs[d] else { continue };
            if self.page_requests(d as u8) < n {
                continue;
            }
            let text = format!(
                "{}: page request @{cycle} (queued for the I/O page fault worker)",
                p.text
            );
            self.iopf.stopped[d] = true;
            self.dev_line(cycle, d as u8, text);
        }
    }

    /// Checkpoint `requested`, for an access that stops there: the device
    /// took its request.
    fn watch_requests(&mut self, cycle: u64) {
        for d in 0..self.devs.len() {
            let Some(p) = &self.devs[d] else { continue };
            if !p.tell_requested || self.m.dev_waiting(d as u8) {
                continue;
            }
            let text = format!("{}: requested @{cycle} (taken by the device)", p.text);
            self.dev_line(cycle, d as u8, text);
            if let Some(p) = &mut self.devs[d] {
                p.tell_requested = false;
            }
        }
    }

    /// Checkpoint `translated`: a pending access whose page's `xlat` probe
    /// shows the IOMMU's answer (a walk result or a Completion in flight).
    pub(super) fn watch_translations(&mut self, cycle: u64) {
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
            // no permission at all: the answer is a fault, not a frame
            let answer = match (x.r, x.w) {
                (_, true) => format!("frame {:#x}", x.ppn),
                (true, false) => format!("frame {:#x}, read-only", x.ppn),
                (false, false) => "no translation".to_string(),
            };
            let text = format!(
                "{}: translated @{cycle}, {answer} (the IOMMU's answer is on its way)",
                p.text
            );
            self.dev_line(cycle, d as u8, text);
            if let Some(p) = &mut self.devs[d] {
                p.translated = Some(cycle);
            }
            self.dev_translated[d] = Some(cycle);
        }
    }

    /// Stamp the events of the steps just taken.
    pub(super) fn absorb_events(&mut self) {
        let cycle = self.m.cycle();
        let mut pte_changed = false;
        // (thread, page VA) of each PTE change, and the threads whose
        // operation returned, in order: a protection is registered before
        // the return of the operation that made it
        let mut changes: Vec<(usize, u64)> = Vec::new();
        let mut returned: Vec<usize> = Vec::new();
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
                        zero_fill: false,
                    });
                    let page = self.page_of(va);
                    if let (Some(sig), Some(i)) = (&mut self.sig, page) {
                        sig.value(cycle, i, value);
                    }
                }
                HostEvent::Pte { tid, va, new, .. } => {
                    pte_changed = true;
                    changes.push((tid, va));
                    let format = self.s.arch.format();
                    if format.present(new) {
                        let f = format.pfn(new);
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
                HostEvent::ZeroFill { tid, dev, va, pfn } => {
                    self.zero_fill(tid, dev, va, pfn, cycle);
                }
                HostEvent::MadvFree { va, returned } => self.chk.madv_free(va, returned, cycle),
                HostEvent::Discard { va, pfn } => self.chk.discarded(va, pfn, cycle),
                HostEvent::Discarding {
                    start,
                    end,
                    returned,
                } => self.chk.discarding(start, end, returned),
                HostEvent::Returned { tid } => returned.push(tid),
                HostEvent::Load { .. }
                | HostEvent::FlushBegin { .. }
                | HostEvent::FlushDone { .. }
                | HostEvent::FrameFreed { .. } => {}
            }
        }
        if pte_changed {
            self.refresh_cpu_view();
            self.judge_protection(&changes, cycle);
            if let Some(sig) = &mut self.sig {
                for (i, p) in self.s.pages.iter().enumerate() {
                    let v = self.cpu_view[i]
                        .and_then(|l| self.m.mem.read((l.pfn << PAGE_SHIFT) | (p.va & 0xff8)).ok())
                        .map_or(0, |w| w.value);
                    sig.value(cycle, i, v);
                }
            }
        }
        for tid in returned {
            self.chk.returned(tid, cycle);
        }
    }

    /// After PTE changes, what each named page is to the checker's
    /// write-protect tracking, and which thread changed its entry (its
    /// 4 KiB page's, else its 2 MiB region's, or its 1 GiB region's for a
    /// 1 GiB page: a huge entry's change names the huge page's address).
    pub(super) fn judge_protection(&mut self, changes: &[(usize, u64)], cycle: u64) {
        for (i, p) in self.s.pages.iter().enumerate() {
            let at = key(p.process, p.va);
            let huge = if p.gigantic { 30 } else { 21 };
            let by = changes
                .iter()
                .rev()
                .find(|(_, va)| va >> 12 == at >> 12)
                .or_else(|| {
                    changes
                        .iter()
                        .rev()
                        .find(|(_, va)| va >> huge == at >> huge)
                })
                .map(|&(tid, _)| tid);
            self.chk
                .cpu_view(i, self.cpu_view[i].map(|l| l.writable), by, cycle);
        }
    }

    /// do_anonymous_page mapped frame `pfn` at `va`'s page for CPU thread
    /// `tid`, or for device `dev`'s Page Request: each named word of the
    /// page holds a zero that is a store in the global order, so a read of
    /// it is judged against what came before.
    fn zero_fill(&mut self, tid: usize, dev: Option<u8>, va: u64, pfn: u64, cycle: u64) {
        let words: Vec<u64> = (self.s.pages.iter())
            .map(|p| key(p.process, p.va))
            .filter(|&at| at >> 12 == va >> 12)
            .collect();
        for w in words {
            let pa = (pfn << PAGE_SHIFT) | (w & 0xff8);
            // the frame was just allocated (or is the zero page): memory
            let Ok(version) = self.m.store(pa, 0) else {
                continue;
            };
            let (who, thread) = match dev {
                Some(d) => (format!("dev{d}'s page fault"), ThreadRef::Dev(d)),
                None => (format!("cpu{tid}'s page fault"), ThreadRef::Cpu(tid)),
            };
            self.chk.store(who, w, 0, version, cycle);
            self.stores.push(StoreRecord {
                cycle,
                thread,
                page: self.chk.describe_va(w),
                value: 0,
                zero_fill: true,
            });
        }
    }
}
