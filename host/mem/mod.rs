//! Physical memory and the x86-64 page tables that live in it.
//!
//! Both the CPU side (Rust) and the RTL (through its memory ports) read and
//! write the same [`PhysMem`], so a walk by the IOMMU sees exactly what the
//! CPU wrote at that cycle.

mod pagetable;
mod phys;

pub use pagetable::{pte, AddressSpace, Leaf, PageSize, WalkError};
pub use phys::{FrameState, MemError, Pfn, PhysMem, Word, PAGE_SHIFT, PAGE_SIZE, WORDS_PER_PAGE};
