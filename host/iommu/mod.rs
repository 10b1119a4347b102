//! The host's IOMMU driver: how an `mmu_notifier` flush becomes commands in
//! the RTL's in-memory command queue.

mod driver;

pub use driver::{ats_range, DriverError, DriverStats, FlushTicket, SvaDriver};
