//! Device and process contexts and their directories (specification
//! chapter 2): the device directory table (DDT), indexed by device ID, holds
//! a device context per device; with `PDTV` its first-stage context points
//! at a process directory table (PDT), indexed by process ID (PASID),
//! holding a process context per address space: its `iosatp` (the page
//! table's mode and root) and its PSCID (the tag IOTINVAL.VMA names).

use super::{Field, PPN};

/// `iosatp.MODE` (and `satp`'s): how the first stage translates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SatpMode {
    Bare = 0,
    Sv39 = 8,
    Sv48 = 9,
}

impl SatpMode {
    /// The mode that walks page tables in `format`; None for a format a
    /// RISC-V IOMMU does not walk (x86-64).
    pub fn of(format: crate::mem::PtFormat) -> Option<SatpMode> {
        match format {
            crate::mem::PtFormat::Sv39 => Some(SatpMode::Sv39),
            crate::mem::PtFormat::Sv48 => Some(SatpMode::Sv48),
            crate::mem::PtFormat::X86_64 => None,
        }
    }
}

/// `pdtp.MODE`: the process directory's depth (8, 17, 20-bit PIDs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PdtMode {
    Bare = 0,
    Pd8 = 1,
    Pd17 = 2,
    Pd20 = 3,
}

const ATP_MODE: Field = Field::new(63, 60);
const ATP_PPN: Field = Field::new(43, 0);
const TA_PSCID: Field = Field::new(31, 12);

/// `tc` bits of a device context.
pub mod tc {
    pub const V: u64 = 1 << 0;
    pub const EN_ATS: u64 = 1 << 1;
    pub const EN_PRI: u64 = 1 << 2;
    /// Faults are not reported (disable translation faults).
    pub const DTF: u64 = 1 << 4;
    /// `fsc` holds a process directory pointer, not an `iosatp`.
    pub const PDTV: u64 = 1 << 5;
    /// The IOMMU sets A and D in first-stage PTEs (else a missing one is a
    /// fault).
    pub const SADE: u64 = 1 << 8;
    /// Requests without a process ID use process 0's context.
    pub const DPE: u64 = 1 << 9;
}

/// `ta` bits of a process context.
pub mod pc_ta {
    pub const V: u64 = 1 << 0;
    /// Supervisor requests allowed.
    pub const ENS: u64 = 1 << 1;
    /// Supervisor access to user pages allowed.
    pub const SUM: u64 = 1 << 2;
}

/// An address-translation pointer (`iosatp`, `pdtp`, `iohgatp` without its
/// GSCID): a mode in 63:60 and a page number in 43:0.
pub fn atp(mode: u64, ppn: u64) -> Option<u64> {
    Some(ATP_MODE.put(mode)? | ATP_PPN.put(ppn)?)
}

/// A device context. `fsc` is an `iosatp` (`tc::PDTV` clear) or a `pdtp`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceContext {
    pub tc: u64,
    pub iohgatp: u64,
    pub ta: u64,
    pub fsc: u64,
}

impl DeviceContext {
    /// A device whose requests carry a process ID, each translated by the
    /// process context the PDT at `pdt_ppn` gives it; second stage bare.
    pub fn with_pdt(mode: PdtMode, pdt_ppn: u64, ats: bool) -> Option<DeviceContext> {
        Some(DeviceContext {
            tc: tc::V | tc::PDTV | if ats { tc::EN_ATS } else { 0 },
            iohgatp: 0,
            ta: 0,
            fsc: atp(mode as u64, pdt_ppn)?,
        })
    }

    /// A device without process IDs (Linux's paging domain): its requests
    /// are translated by the page table rooted at `root_ppn` in `mode`,
    /// tagged `pscid`; second stage bare.
    pub fn paging(pscid: u32, mode: SatpMode, root_ppn: u64) -> Option<DeviceContext> {
        Some(DeviceContext {
            tc: tc::V,
            iohgatp: 0,
            ta: TA_PSCID.put(u64::from(pscid))?,
            fsc: atp(mode as u64, root_ppn)?,
        })
    }

    /// The context's words as they sit in the DDT: 8 in the extended format
    /// (a design with MSI translation, `capabilities.MSI_FLAT`), 4 in the
    /// base one. MSI translation is off (`msiptp` 0).
    pub fn words(&self, extended: bool) -> Vec<u64> {
        let mut w = vec![self.tc, self.iohgatp, self.ta, self.fsc];
        if extended {
            w.extend([0; 4]);
        }
        w
    }
}

/// A process context: the address space's page table and its tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessContext {
    pub ta: u64,
    pub fsc: u64,
}

impl ProcessContext {
    /// A user address space tagged `pscid` whose page table is rooted at
    /// `root_ppn` in `mode`.
    pub fn user(pscid: u32, mode: SatpMode, root_ppn: u64) -> Option<ProcessContext> {
        Some(ProcessContext {
            ta: pc_ta::V | TA_PSCID.put(u64::from(pscid))?,
            fsc: atp(mode as u64, root_ppn)?,
        })
    }

    pub fn words(&self) -> [u64; 2] {
        [self.ta, self.fsc]
    }

    pub fn pscid(&self) -> u32 {
        TA_PSCID.get(self.ta) as u32
    }
}

/// A non-leaf DDT or PDT entry: valid, pointing at the next level's page.
pub fn dir_entry(ppn: u64) -> Option<u64> {
    Some(1 | PPN.put(ppn)?)
}

/// The DDT indices of device `did`, the top level first, for a directory of
/// `levels` levels (1 to 3) of contexts in the extended (64-byte) or base
/// (32-byte) format. None when the ID does not fit the directory.
pub fn ddt_indices(did: u32, levels: u8, extended: bool) -> Option<Vec<u64>> {
    // the leaf level holds 4096 / size contexts: 64 or 128
    let leaf_bits = if extended { 6 } else { 7 };
    index_split(u64::from(did), levels, leaf_bits, 24)
}

/// The PDT indices of process `pid`, the top level first: 8, 17 or 20-bit
/// IDs in 1, 2 or 3 levels (16-byte contexts: 256 a page at the leaf).
pub fn pdt_indices(pid: u32, mode: PdtMode) -> Option<Vec<u64>> {
    let (levels, bits) = match mode {
        PdtMode::Bare => return None,
        PdtMode::Pd8 => (1, 8),
        PdtMode::Pd17 => (2, 17),
        PdtMode::Pd20 => (3, 20),
    };
    index_split(u64::from(pid), levels, 8, bits)
}

/// Split `id` into a `leaf_bits` leaf index and 9-bit upper ones, at most
/// `levels` of them and `id_bits` in all.
fn index_split(id: u64, levels: u8, leaf_bits: u32, id_bits: u32) -> Option<Vec<u64>> {
    if !(1..=3).contains(&levels) {
        return None;
    }
    let covered = (leaf_bits + 9 * (u32::from(levels) - 1)).min(id_bits);
    if id >> covered != 0 {
        return None;
    }
    let mut out = vec![id & ((1 << leaf_bits) - 1)];
    let mut shift = leaf_bits;
    for _ in 1..levels {
        out.push((id >> shift) & 0x1ff);
        shift += 9;
    }
    out.reverse();
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contexts_encode_mode_root_and_tag() {
        let pc = ProcessContext::user(0x42, SatpMode::Sv39, 0x80123).unwrap();
        assert_eq!(pc.words(), [1 | 0x42 << 12, 8 << 60 | 0x80123]);
        assert_eq!(pc.pscid(), 0x42);
        assert!(ProcessContext::user(1 << 20, SatpMode::Sv48, 1).is_none());
        let dc = DeviceContext::with_pdt(PdtMode::Pd8, 0x80200, false).unwrap();
        assert_eq!(dc.words(false), vec![1 | 1 << 5, 0, 0, 1 << 60 | 0x80200]);
        assert_eq!(dc.words(true).len(), 8);
        assert_eq!(dir_entry(0x80300), Some(1 | 0x80300 << 10));
    }

    #[test]
    fn device_and_process_ids_split_into_directory_indices() {
        // extended contexts: 6 bits at the leaf, then 9 and 9
        let did = 0x101 << 15 | 0x3 << 6 | 0x5;
        assert_eq!(ddt_indices(did, 3, true), Some(vec![0x101, 0x3, 0x5]));
        // base contexts: 7 bits at the leaf, then 9 and 8
        let did = 0xff << 16 | 0x1ff << 7 | 0x7f;
        assert_eq!(ddt_indices(did, 3, false), Some(vec![0xff, 0x1ff, 0x7f]));
        assert_eq!(ddt_indices(63, 1, true), Some(vec![63]));
        assert_eq!(ddt_indices(64, 1, true), None, "past a one-level DDT");
        assert_eq!(ddt_indices(127, 1, false), Some(vec![127]));
        assert_eq!(ddt_indices(1 << 24, 3, false), None);
        assert_eq!(pdt_indices(0xff, PdtMode::Pd8), Some(vec![0xff]));
        assert_eq!(pdt_indices(0x100, PdtMode::Pd8), None);
        assert_eq!(
            pdt_indices(0xf_ffff, PdtMode::Pd20),
            Some(vec![0x7, 0x1ff, 0xff])
        );
        assert_eq!(pdt_indices(1 << 20, PdtMode::Pd20), None);
        assert_eq!(pdt_indices(1, PdtMode::Bare), None);
    }
}
