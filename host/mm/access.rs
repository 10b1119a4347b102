//! A plain CPU load: one step through the CPU page table (first its minor
//! faults, [`path::MinorFault`]: do_anonymous_page, do_numa_page).

use super::kernel::{Cx, HostEvent, MmError, Progress};
use super::mmap::FaultLock;
use super::path::{self, KernelPath};
use crate::mem::PAGE_SHIFT;

#[derive(Debug)]
pub struct LoadOp {
    va: u64,
    done: bool,
    minor: path::MinorFault,
    /// The fault's mmap_lock, held for read while it runs.
    mmap: FaultLock,
}

impl LoadOp {
    /// A load whose faults run the bundled paths.
    pub fn new(va: u64) -> Self {
        Self::with_paths(va, super::lang::Paths::bundled())
    }

    /// A load whose faults run `paths`' (a misplaced page's migration).
    pub fn with_paths(va: u64, paths: &super::lang::Paths) -> Self {
        LoadOp {
            va,
            done: false,
            minor: path::MinorFault::new(paths),
            mmap: FaultLock::default(),
        }
    }
}

impl KernelPath for LoadOp {
    fn step(&mut self, cx: &mut Cx) -> Result<Progress, MmError> {
        if self.done {
            return Ok(Progress::Done);
        }
        // a fault holds the mmap_lock for read
        if let Some(w) = self.mmap.enter(cx, self.va, false) {
            return Ok(Progress::Wait(w));
        }
        // its minor faults first (do_anonymous_page, do_numa_page), then
        // the load
        if let Some(p) = self.minor.step(cx, self.va, false, None)? {
            return Ok(p);
        }
        let leaf = match path::cpu_walk_or_wait(cx, self.va, "a CPU read of")? {
            Ok(l) => l,
            Err(w) => return Ok(Progress::Wait(w)),
        };
        path::touch(cx, &leaf, false)?;
        let pa = (leaf.pfn << PAGE_SHIFT) | (self.va & 0xff8);
        let w = cx.m.mem.read(pa)?;
        cx.events.push(HostEvent::Load {
            tid: cx.tid,
            va: self.va,
            pa,
            value: w.value,
            version: w.version,
        });
        self.mmap.leave(cx);
        self.done = true;
        Ok(Progress::Reached("load"))
    }

    fn finished(&self) -> bool {
        self.done
    }
}
