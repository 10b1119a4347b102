//! What every kernel path shares: the step protocol ([`KernelPath`]) and
//! the small operations paths are made of (take a PTL, write an entry,
//! drop a page reference), each reporting what it did as a [`HostEvent`].

use super::kernel::{Cx, HostEvent, MmError, Progress, WaitOn};
use crate::mem::Pfn;

/// A kernel path run step by step. Each call to `step` does at most one
/// checkpoint's work (or one spin) and says which checkpoint it completed.
pub trait KernelPath: std::fmt::Debug {
    /// One step.
    fn step(&mut self, cx: &mut Cx) -> Result<Progress, MmError>;
    /// The path has returned.
    fn finished(&self) -> bool;
}

/// Inside a step: return [`Progress::Wait`] while `$wait` (an
/// `Option<WaitOn>`: a lock held elsewhere, a flush in progress) is `Some`,
/// so the thread spins and the step is tried again next round.
macro_rules! spin {
    ($wait:expr) => {
        if let Some(w) = $wait {
            return Ok(Progress::Wait(w));
        }
    };
}
pub(crate) use spin;

/// `spin_lock(ptl)`: take the split PTL `id`, or say who holds it.
pub fn lock(cx: &mut Cx, id: u64) -> Option<WaitOn> {
    if cx.k.ptl.try_lock(id, cx.tid) {
        None
    } else {
        Some(WaitOn::Lock {
            id,
            holder: cx.k.ptl.holder(id).unwrap_or(usize::MAX),
        })
    }
}

pub fn unlock(cx: &mut Cx, id: u64) {
    cx.k.ptl.unlock(id, cx.tid);
}

/// Write the page-table entry at `entry_pa` (which maps `va`'s page).
pub fn set_entry(cx: &mut Cx, entry_pa: u64, va: u64, new: u64) -> Result<u64, MmError> {
    let old = cx.m.mem.read(entry_pa)?.value;
    cx.m.mem.write(entry_pa, new, 0)?;
    cx.events.push(HostEvent::Pte {
        va: va & !0xfff,
        old,
        new,
    });
    Ok(old)
}

/// `put_page`: drop a reference; the frame goes back to the free list at zero.
pub fn put_page(cx: &mut Cx, pfn: Pfn) -> Result<(), MmError> {
    if cx.m.mem.put(pfn)? {
        cx.k.lazyfree.remove(&pfn);
        cx.events.push(HostEvent::FrameFreed { pfn });
    }
    Ok(())
}
