//! The Linux side: processes' address spaces, the page-table lock, the
//! `mmu_notifier` policies and the mm paths, each written step by step so
//! that every point where a thread can be preempted is a named checkpoint.

mod cow;
mod kernel;
mod policy;

pub use cow::{StoreOp, CHECKPOINTS_WP_PAGE_COPY};
pub use kernel::{Cx, HostEvent, Kernel, LockTable, MmError, Notify, Progress, WaitOn};
pub use policy::{Policy, Prim};
