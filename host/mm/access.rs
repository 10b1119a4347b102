//! A plain CPU load: one step through the CPU page table (first, on an
//! empty PTE in an anonymous VMA, do_anonymous_page: checkpoint `anonymous`).

use super::kernel::{Cx, HostEvent, MmError, Progress};
use super::path::{self, KernelPath};
use crate::mem::PAGE_SHIFT;

#[derive(Debug)]
pub struct LoadOp {
    va: u64,
    done: bool,
}

impl LoadOp {
    pub fn new(va: u64) -> Self {
        LoadOp { va, done: false }
    }
}

impl KernelPath for LoadOp {
    fn step(&mut self, cx: &mut Cx) -> Result<Progress, MmError> {
        if self.done {
            return Ok(Progress::Done);
        }
        // MADV_DONTNEED dropped the page: do_anonymous_page, then the load
        if let Some(p) = path::anonymous_fault(cx, self.va, false)? {
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
        self.done = true;
        Ok(Progress::Reached("load"))
    }

    fn finished(&self) -> bool {
        self.done
    }
}
