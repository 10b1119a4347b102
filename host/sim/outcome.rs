//! What a run gives: the `[Time N]` lines, the stores, device accesses and
//! I/O it saw, each named page's final CPU view, the windows and findings,
//! and the verdict.

use super::trace::WavesOut;
use crate::checker::{ContextWindow, Finding, Violation, Window};
use crate::iommu::DriverStats;
use crate::mem::{AddressSpace, Leaf, PAGE_SHIFT};
use crate::mm::Policy;
use crate::scenario::{Expected, ThreadRef};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

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
    /// The thread's page fault filled the page with zeros
    /// (do_anonymous_page), not a store of the thread's own.
    pub zero_fill: bool,
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
    pub(super) fn of(mm: &AddressSpace, mem: &crate::mem::PhysMem, va: u64) -> PageView {
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

#[derive(Debug)]
pub struct RunReport {
    pub scenario: String,
    pub file: PathBuf,
    pub policy: Policy,
    pub pages: Vec<String>,
    pub slots: Vec<SlotReport>,
    pub windows: Vec<Window>,
    /// The RISC-V socket: when its process-directory cache held a context
    /// the process directory no longer had.
    pub context_windows: Vec<ContextWindow>,
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
    /// What the RTL's cover points counted in this run (docs/socket.md,
    /// "Coverage"); [`crate::coverage::Coverage::add`] sums runs.
    pub coverage: crate::coverage::Coverage,
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
