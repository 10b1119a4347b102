//! What a timeline entry starts: a kernel path on a CPU thread, an access
//! on a device thread, or a resume.

use super::{Cpu, DevPending, RunError, Sim};
use crate::checker::key;
use crate::mm::lang::CallOp;
use crate::mm::mmap::{Hold, Syscall, VmaChange};
use crate::mm::{KernelPath, LoadOp, StoreOp};
use crate::scenario::{Action, Entry, ThreadRef, Until, PAGE_REQUEST};
use crate::sim::machine::DevRequest;
use crate::sim::outcome::ThreadLine;

impl Sim<'_> {
    /// Start what `e` asks of its thread.
    pub(super) fn start(&mut self, e: &Entry, line: usize) -> Result<(), RunError> {
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
                let process = a.process(&s.pages);
                // mremap's old and new addresses: a hugetlb page moves
                // whole, from its huge page's first byte
                let moved = |page: usize, to: usize| {
                    let p = &s.pages[page];
                    let size = if p.hugetlb {
                        p.huge_size().bytes()
                    } else {
                        0x1000
                    };
                    (p.va & !(size - 1), s.pages[to].va & !(size - 1))
                };
                // What the VMAs lose before the path runs, once the call
                // holds the mmap_lock: what a device's Page Request finds
                // from then on.
                let change = match *a {
                    Action::Munmap { page, pages } => Some(VmaChange::Unmap {
                        start: s.pages[page].va,
                        pages,
                    }),
                    Action::MprotectRo { page } => Some(VmaChange::Protect {
                        va: s.pages[page].va,
                    }),
                    Action::Exit { .. } => Some(VmaChange::Exit),
                    Action::Mremap { page, to, pages } => {
                        // the word moves: its new address is a second name
                        // of it (a device write through a stale
                        // translation of the old one lands in the page the
                        // new one maps)
                        let (p, q) = (&s.pages[page], &s.pages[to]);
                        self.chk.alias(key(q.process, q.va), key(p.process, p.va));
                        let (from, to) = moved(page, to);
                        Some(VmaChange::Move { from, to, pages })
                    }
                    _ => None,
                };
                let op: Box<dyn KernelPath> = match *a {
                    Action::Write { page, value } => {
                        Box::new(StoreOp::with_paths(s.pages[page].va, value, &s.paths))
                    }
                    Action::Read { page } => {
                        Box::new(LoadOp::with_paths(s.pages[page].va, &s.paths))
                    }
                    // A hugetlb VMA is unmapped by its own function.
                    Action::Munmap { page, pages } => Box::new(
                        CallOp::new(
                            if s.pages[page].hugetlb {
                                s.paths.unmap_hugepage_range()
                            } else {
                                s.paths.zap_pte_range()
                            },
                            s.pages[page].va & !0xfff,
                            pages,
                        )
                        .with_gather_batch(s.params.gather_batch as usize)
                        .with_caller("munmap"),
                    ),
                    // The same zap, without free_pgtables (zap_page_range).
                    Action::MadvDontneed { page, pages } => Box::new(
                        CallOp::new(s.paths.zap_pte_range(), s.pages[page].va & !0xfff, pages)
                            .with_gather_batch(s.params.gather_batch as usize)
                            .keeping_tables()
                            .with_caller("madv-dontneed"),
                    ),
                    Action::Ksm { page, into } => {
                        let call = CallOp::new(s.paths.ksm(), s.pages[page].va, 1);
                        Box::new(match into {
                            None => call.with_caller("ksm-wrprotect"),
                            Some(q) => call.with_caller("ksm-merge").with_to(s.pages[q].va),
                        })
                    }
                    Action::Writeback { page, dax } => {
                        Box::new(
                            CallOp::new(s.paths.mkclean(), s.pages[page].va, 1)
                                .with_caller(if dax { "dax-writeback" } else { "writeback" }),
                        )
                    }
                    Action::MprotectRo { page } => Box::new(
                        CallOp::new(
                            if s.pages[page].hugetlb {
                                s.paths.hugetlb_mprotect()
                            } else {
                                s.paths.mprotect()
                            },
                            s.pages[page].va,
                            1,
                        )
                        .with_caller("mprotect"),
                    ),
                    Action::Fork { page } => Box::new(
                        CallOp::new(s.paths.hugetlb_fork(), s.pages[page].va, 1)
                            .with_caller("fork"),
                    ),
                    Action::MadvFree { page } => Box::new(
                        CallOp::new(s.paths.madvise_free(), s.pages[page].va, 1)
                            .with_caller("madv-free"),
                    ),
                    Action::Collapse { page } => Box::new(
                        CallOp::new(s.paths.collapse(), s.pages[page].va, 1)
                            .with_caller("collapse"),
                    ),
                    // change_prot_numa: change_protection with prot_numa
                    Action::NumaHint { page, misplaced } => Box::new({
                        if misplaced {
                            let at = (usize::from(process), s.pages[page].va & !0xfff);
                            self.k.misplaced.insert(at);
                        }
                        CallOp::new(s.paths.mprotect(), s.pages[page].va, 1)
                            .numa_hinting()
                            .with_caller("numa-hint")
                    }),
                    Action::Unmap { page, migrate } => Box::new(if migrate {
                        let path = if s.pages[page].hugetlb {
                            s.paths.migrate_huge()
                        } else {
                            s.paths.migrate()
                        };
                        CallOp::new(path, s.pages[page].va, 1).with_caller("migrate")
                    } else {
                        CallOp::new(s.paths.reclaim(), s.pages[page].va, 1).with_caller("reclaim")
                    }),
                    Action::Split { page } => Box::new(
                        CallOp::new(
                            if s.pages[page].zero {
                                s.paths.zero_split()
                            } else {
                                s.paths.thp_split()
                            },
                            s.pages[page].va,
                            1,
                        )
                        .with_caller("split"),
                    ),
                    Action::Unbind { .. } => {
                        Box::new(CallOp::new(s.paths.sva_unbind(), 0, 1).with_caller("unbind"))
                    }
                    Action::Exit { .. } => Box::new(
                        CallOp::new(s.paths.exit_mmap(), 0, 1)
                            .with_gather_batch(s.params.gather_batch as usize)
                            .with_caller("exit"),
                    ),
                    Action::Mremap { page, to, pages } => Box::new({
                        let (from, to) = moved(page, to);
                        CallOp::new(
                            match pages {
                                _ if s.pages[page].hugetlb => s.paths.move_hugetlb_page_tables(),
                                1 => s.paths.move_ptes(),
                                512 if s.pages[page].thp => s.paths.move_huge_pmd(),
                                512 => s.paths.move_normal_pmd(),
                                _ => s.paths.move_normal_pud(),
                            },
                            from,
                            pages,
                        )
                        .with_to(to)
                        .with_caller("mremap")
                    }),
                    Action::Vfree { page } => Box::new(
                        CallOp::new(s.paths.vfree(), s.pages[page].va & !0xfff, 1)
                            .with_caller("vfree"),
                    ),
                    Action::VmapHuge { page } => Box::new(
                        CallOp::new(s.paths.vmap_huge(), s.pages[page].va & !0xfff, 1)
                            .with_caller("vmap-huge"),
                    ),
                    Action::Call {
                        ref path,
                        page,
                        pages,
                    } => {
                        let def = s.paths.get(path).ok_or_else(|| {
                            self.err(line, format!("no path '{path}' (checked by the parser)"))
                        })?;
                        Box::new(
                            CallOp::new(def, s.pages[page].va, pages)
                                .with_gather_batch(s.params.gather_batch as usize),
                        )
                    }
                    Action::Resume => unreachable!("handled above"),
                };
                // what the path says of its caller's lock, else Linux's caller's
                let hold = op.declared_mmap_lock().unwrap_or_else(|| mmap_hold(a));
                // what the call throws away: a write racing it may be lost
                let pages_from = |page: usize, pages: u64| {
                    let start = s.pages[page].va & !0xfff;
                    (start, start.saturating_add(pages.saturating_mul(4096)))
                };
                let discards = match *a {
                    Action::Munmap { page, pages } | Action::MadvDontneed { page, pages } => {
                        Some(pages_from(page, pages))
                    }
                    Action::Exit { .. } => Some((0, crate::scenario::USER_END)),
                    _ => None,
                };
                let wrap = hold != Hold::None || change.is_some() || discards.is_some();
                let op: Box<dyn KernelPath> = if wrap {
                    Box::new(Syscall::new(hold, change, op).discarding(discards))
                } else {
                    op
                };
                self.cpus[i] = Cpu {
                    op: Some(op),
                    process,
                    text: e.action_text().to_string(),
                    path: Vec::new(),
                };
            }
            (ThreadRef::Iopf, _) => {
                // the worker goes on with what its queue holds (run_slot)
            }
            (ThreadRef::Dev(d), Action::Resume) => {
                self.stop_at_page_request(d, &e.until);
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
                    | Action::MadvDontneed { .. }
                    | Action::Collapse { .. }
                    | Action::NumaHint { .. }
                    | Action::Unbind { .. }
                    | Action::Exit { .. }
                    | Action::Mremap { .. }
                    | Action::Vfree { .. }
                    | Action::VmapHuge { .. }
                    | Action::Call { .. } => {
                        unreachable!("rejected by the parser")
                    }
                    Action::Resume => unreachable!("handled above"),
                };
                let (va, process) = (s.pages[page].va, s.pages[page].process);
                let issued = self.m.cycle();
                self.iopf.requests[d as usize] = 0;
                self.m.dev_submit(DevRequest {
                    id: d,
                    pasid: s.pages[page].pasid(),
                    va,
                    write,
                    wdata,
                });
                if let Some(sig) = &mut self.sig {
                    sig.dev(issued, d, &e.text);
                }
                self.dev_translated[d as usize] = None;
                self.stop_at_page_request(d, &e.until);
                self.devs[d as usize] = Some(DevPending {
                    accessed: None,
                    va: key(process, va),
                    write,
                    wdata,
                    issued,
                    text: e.action_text().to_string(),
                    line,
                    translated: None,
                    tell_requested: e.until.name() == Some("requested"),
                });
            }
        }
        Ok(())
    }
}

impl Sim<'_> {
    /// Device `d`'s access stops at its next Page Request when `until`
    /// says so (`page-request`, or explore's next stop while it schedules
    /// the worker).
    fn stop_at_page_request(&mut self, d: u8, until: &Until) {
        let stop = match until {
            Until::At(cp) => cp == PAGE_REQUEST,
            Until::Next => self.iopf.scheduled,
            Until::End => false,
        };
        let n = self.page_requests(d);
        self.iopf.stop_at[d as usize] = stop.then_some(n + 1);
        self.iopf.stopped[d as usize] = false;
    }
}

/// How the syscall (or kernel thread) that runs `a`'s path holds its
/// process's mmap_lock in Linux (host/mm/mmap.rs). A load or store takes it
/// only when it faults, in the access itself.
fn mmap_hold(a: &Action) -> Hold {
    match a {
        Action::MprotectRo { .. }
        | Action::Mremap { .. }
        | Action::Fork { .. }
        | Action::Collapse { .. } => Hold::Write,
        Action::Munmap { .. } => Hold::Downgrade,
        Action::MadvDontneed { .. }
        | Action::MadvFree { .. }
        | Action::Ksm { .. }
        | Action::NumaHint { .. } => Hold::Read,
        Action::Read { .. }
        | Action::Write { .. }
        | Action::Writeback { .. }
        | Action::Split { .. }
        | Action::Unmap { .. }
        | Action::Unbind { .. }
        | Action::Exit { .. }
        | Action::Vfree { .. }
        | Action::VmapHuge { .. }
        | Action::Call { .. }
        | Action::Resume => Hold::None,
    }
}
