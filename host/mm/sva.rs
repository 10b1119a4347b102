//! `iommu_sva_unbind_device`: the device's binding of the process taken
//! away while the process lives on. The IOMMU driver makes the PASID's
//! context invalid and invalidates what the IOMMU cached of it, in the
//! order the RISC-V IOMMU specification gives for a process context that
//! goes invalid (and that the SVA drivers of Linux 6.x follow for a PASID
//! entry: `intel_pasid_tear_down_entry`, `arm_smmu_clear_cd`): then the
//! mm's `mmu_notifier` is unregistered (`mmu_notifier_put`), so the mm's
//! later paths no longer reach the driver.
//!
//! ```text
//! start       mutex_lock(&iommu_sva_lock); the handle's last user goes
//! detach      iommu_detach_device_pasid: the group's mutex, the PASID
//!             erased from its pasid_array; the driver's remove_dev_pasid
//! clear       the process context's ta written with V clear
//! invalidate  IODIR.INVAL_PDT (device, PASID), IOTINVAL.VMA (PSCID),
//!             IOFENCE.C; the CPU waits for the fence
//! unregister  mmu_notifier_put: no more secondary-TLB flushes
//! ```
//! After `invalidate` the IOMMU must fault every request of the PASID.
//! Only the second socket has a process context (the bundled IOMMU's PASID
//! table is not cached): on the first the path is refused.

use super::kernel::{Cx, MmError, Notify, Progress};
use super::mapping;
use super::path::{spin, KernelPath};

pub const CHECKPOINTS_UNBIND: &[&str] = &["start", "detach", "clear", "invalidate", "unregister"];

#[derive(Debug, Default)]
pub struct UnbindOp {
    step: usize,
    notify: Notify,
}

impl UnbindOp {
    pub fn new() -> Self {
        Self::default()
    }
}

impl KernelPath for UnbindOp {
    fn step(&mut self, cx: &mut Cx) -> Result<Progress, MmError> {
        let Some(&name) = CHECKPOINTS_UNBIND.get(self.step) else {
            return Ok(Progress::Done);
        };
        let pasid = cx.k.mm.pasid;
        match name {
            // refused before any change
            "start" if cx.k.unbound => {
                return Err(mapping::refuse(
                    format!("unbind of PASID {pasid}, already unbound,"),
                    0,
                    "unbind once",
                ))
            }
            "start" if cx.m.process_context(pasid).is_none() => {
                return Err(mapping::refuse(
                    format!("unbind of PASID {pasid} on an IOMMU without a process context"),
                    0,
                    "run it on the RISC-V socket (arch: riscv-sv39)",
                ))
            }
            "start" | "detach" => {}
            "clear" => {
                // the driver's store: the context's ta with V clear
                if let Some(at) = cx.m.process_context(pasid) {
                    cx.m.mem.write(at, 0, 0)?;
                }
            }
            "invalidate" => spin!(self.notify.unbind(cx)?),
            "unregister" => cx.k.unbound = true,
            _ => unreachable!("every checkpoint is handled"),
        }
        self.step += 1;
        Ok(Progress::Reached(name))
    }

    fn finished(&self) -> bool {
        self.step >= CHECKPOINTS_UNBIND.len()
    }
}
