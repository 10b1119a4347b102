//! The Linux mm paths (host/mm/) are page-table-format neutral: the same
//! COW, reuse, writeback, MADV_FREE, KSM, migration, hugetlb mprotect and
//! huge-zero-page split run on an x86-64, an Sv39 and an Sv48 address space
//! (`AddressSpace::with_format`), and each leaves the entry words of its
//! format: x86 P|RW|US|A|D with the frame at bit 12, RISC-V V|R|W|U|A|D
//! with it at bit 10. The flushes go to the bundled IOMMU, which walks
//! nothing here (no device access).

use shootdown::iommu::{DriverKind, SvaDriver};
use shootdown::mem::{sv_pte, AddressSpace, PageSize, Prot, PtFormat, PAGE_SHIFT};
use shootdown::mm::lang::{CallOp, Paths};
use shootdown::mm::{Cx, Kernel, KernelPath, LoadOp, Policy, Process, Progress, StoreOp, Vmas};
use shootdown::sim::machine::{IommuLayout, Machine, MachineParams};

const PASID: u32 = 1;
const FORMATS: [PtFormat; 3] = [PtFormat::X86_64, PtFormat::Sv39, PtFormat::Sv48];
const VA: u64 = 0x40_0000;

/// x86 P|RW|US|A|D.
const X86_USER_RW: u64 = 0x67;
/// RISC-V V|R|W|U|A|D.
const SV_USER_RW: u64 = 0xd7;

fn world(f: PtFormat) -> (Machine, Kernel) {
    let mut m = Machine::new(MachineParams {
        mem_latency: 4,
        ats_latency: 8,
        ..MachineParams::default()
    });
    let cq = m.mem.alloc().unwrap();
    let completion = m.mem.alloc().unwrap() << PAGE_SHIFT;
    let table = m.mem.alloc().unwrap();
    let layout = IommuLayout {
        cq_base: cq << PAGE_SHIFT,
        cq_log2n: 8,
        pasid_table: table << PAGE_SHIFT,
        pq_base: 0,
        pq_log2n: 0,
    };
    let mm = AddressSpace::with_format(&mut m.mem, PASID, f).unwrap();
    let parent = AddressSpace::with_format(&mut m.mem, 0, f).unwrap();
    assert_eq!((mm.format, parent.format), (f, f));
    layout.bind(&mut m.mem, PASID, mm.pgd).unwrap();
    m.reset(layout);
    let zero_pfn = m.mem.alloc().unwrap();
    m.mem.pin(zero_pfn).unwrap();
    let driver = SvaDriver::with_kind(layout, completion, DriverKind::Generic);
    let mut k = Kernel::new(vec![Process::new(mm, parent)], Policy::Always, driver);
    k.zero_pfn = zero_pfn;
    (m, k)
}

/// Run `path` to its end, the machine ticking while it waits on a flush.
fn run(m: &mut Machine, k: &mut Kernel, path: &mut dyn KernelPath) {
    let mut events = Vec::new();
    for _ in 0..100_000 {
        if path.finished() {
            return;
        }
        let paths = shootdown::mm::lang::Paths::bundled();
        let mut cx = Cx::new(&mut *m, &mut *k, 0, &mut events, paths);
        match path.step(&mut cx).unwrap() {
            Progress::Done => return,
            Progress::Reached(_) => {}
            Progress::Wait(_) => {
                for _ in 0..10 {
                    m.tick();
                }
            }
        }
    }
    panic!("{path:?} did not finish");
}

fn entry(m: &mut Machine, k: &Kernel, va: u64) -> u64 {
    let pa = k.mm().pte_pa(&mut m.mem, va).unwrap();
    m.mem.read(pa).unwrap().value
}

/// The word of a writable user leaf for `pfn`, spelled out per format.
fn user_rw_word(f: PtFormat, pfn: u64) -> u64 {
    match f {
        PtFormat::X86_64 => (pfn << 12) | X86_USER_RW,
        PtFormat::Sv39 | PtFormat::Sv48 => (pfn << 10) | SV_USER_RW,
    }
}

fn user_page(m: &mut Machine, k: &Kernel, va: u64, prot: Prot) -> u64 {
    let f = m.mem.alloc().unwrap();
    k.mm()
        .map_prot(&mut m.mem, va, f, PageSize::Small, prot)
        .unwrap();
    f
}

#[test]
fn a_cow_write_copies_into_a_writable_dirty_leaf_of_the_format() {
    for f in FORMATS {
        let (mut m, mut k) = world(f);
        let old = m.mem.alloc().unwrap();
        for a in [*k.mm(), k.proc().parent] {
            a.map_prot(&mut m.mem, VA, old, PageSize::Small, Prot::USER_RO)
                .unwrap();
        }
        m.mem.get(old).unwrap();
        let ro = entry(&mut m, &k, VA);
        assert!(!f.writable(ro) && f.young(ro), "{f:?}");
        run(&mut m, &mut k, &mut StoreOp::new(VA + 8, 0x99));
        let leaf = k.mm().walk(&m.mem, VA).unwrap();
        assert_ne!(leaf.pfn, old, "{f:?}: copied");
        assert_eq!(leaf.entry, user_rw_word(f, leaf.pfn), "{f:?}");
        assert!(leaf.writable);
        assert_eq!(m.mem.read((leaf.pfn << 12) + 8).unwrap().value, 0x99);
        assert_eq!(m.mem.refcount(old), 1, "{f:?}: the parent's only");
        // The parent still maps the old page read-only.
        assert_eq!(k.proc().parent.walk(&m.mem, VA).unwrap().entry, ro);
    }
}

#[test]
fn a_write_to_a_page_only_this_process_maps_reuses_it() {
    for f in FORMATS {
        let (mut m, mut k) = world(f);
        let ro = Prot {
            young: false,
            ..Prot::USER_RO
        };
        let page = user_page(&mut m, &k, VA, ro);
        run(&mut m, &mut k, &mut StoreOp::new(VA, 5));
        assert_eq!(entry(&mut m, &k, VA), user_rw_word(f, page), "{f:?}");
    }
}

#[test]
fn a_load_sets_accessed_only() {
    for f in FORMATS {
        let (mut m, mut k) = world(f);
        let cold = Prot {
            young: false,
            dirty: false,
            ..Prot::USER_RW
        };
        let page = user_page(&mut m, &k, VA, cold);
        run(&mut m, &mut k, &mut LoadOp::new(VA));
        let e = entry(&mut m, &k, VA);
        assert_eq!(e, user_rw_word(f, page) & !dirty_bit(f), "{f:?}");
        assert!(f.young(e) && !f.dirty(e));
    }
}

fn dirty_bit(f: PtFormat) -> u64 {
    match f {
        PtFormat::X86_64 => 1 << 6,
        _ => sv_pte::D,
    }
}

fn write_bit(f: PtFormat) -> u64 {
    match f {
        PtFormat::X86_64 => 1 << 1,
        _ => sv_pte::W,
    }
}

fn young_bit(f: PtFormat) -> u64 {
    match f {
        PtFormat::X86_64 => 1 << 5,
        _ => sv_pte::A,
    }
}

#[test]
fn writeback_and_ksm_write_protect_and_clean() {
    for f in FORMATS {
        let (mut m, mut k) = world(f);
        let a = user_page(&mut m, &k, VA, Prot::USER_RW);
        let b = user_page(&mut m, &k, VA + 0x1000, Prot::USER_RW);
        run(
            &mut m,
            &mut k,
            &mut CallOp::new(Paths::bundled().mkclean(), VA, 1).with_caller("writeback"),
        );
        let clean_ro = user_rw_word(f, a) & !write_bit(f) & !dirty_bit(f);
        assert_eq!(entry(&mut m, &k, VA), clean_ro, "{f:?}");
        let vmas = Vmas::new([(VA, false), (VA + 0x1000, false)]);
        run(
            &mut m,
            &mut k,
            &mut CallOp::new(Paths::bundled().ksm(), VA + 0x1000, 1),
        );
        let kpte = user_rw_word(f, b) & !write_bit(f) & !dirty_bit(f);
        assert_eq!(entry(&mut m, &k, VA + 0x1000), kpte, "{f:?}");
        // Merge the first page into the second (both frames zero): its
        // entry is rebuilt at the KSM page with its own flags, read-only
        // and clean.
        k.proc_mut().vmas = vmas;
        run(
            &mut m,
            &mut k,
            &mut CallOp::new(Paths::bundled().ksm(), VA, 1).with_to(VA + 0x1000),
        );
        let merged = user_rw_word(f, b) & !write_bit(f) & !dirty_bit(f);
        assert_eq!(entry(&mut m, &k, VA), merged, "{f:?}");
    }
}

#[test]
fn madv_free_makes_the_pte_old_and_clean() {
    for f in FORMATS {
        let (mut m, mut k) = world(f);
        let a = user_page(&mut m, &k, VA, Prot::USER_RW);
        k.proc_mut().vmas = Vmas::new([(VA, false)]);
        let madv = Paths::bundled().madvise_free();
        run(&mut m, &mut k, &mut CallOp::new(madv, VA, 1));
        let want = user_rw_word(f, a) & !young_bit(f) & !dirty_bit(f);
        assert_eq!(entry(&mut m, &k, VA), want, "{f:?}");
        assert!(k.lazyfree.contains(&a));
    }
}

#[test]
fn migration_moves_the_entry_with_its_flags() {
    for f in FORMATS {
        let (mut m, mut k) = world(f);
        let cold = Prot {
            young: false,
            ..Prot::USER_RW
        };
        let old = user_page(&mut m, &k, VA, cold);
        let before = entry(&mut m, &k, VA);
        run(
            &mut m,
            &mut k,
            &mut CallOp::new(Paths::bundled().migrate(), VA, 1).with_caller("migrate"),
        );
        let e = entry(&mut m, &k, VA);
        let new = f.pfn(e);
        assert_ne!(new, old, "{f:?}");
        assert_eq!(f.flags(e), f.flags(before), "{f:?}");
        assert_eq!(e, user_rw_word(f, new) & !young_bit(f));
    }
}

#[test]
fn hugetlb_mprotect_write_protects_the_pmd_leaf() {
    for f in FORMATS {
        let (mut m, mut k) = world(f);
        let base = m.mem.alloc_contiguous(512).unwrap();
        let pmd = k
            .mm()
            .map_prot(&mut m.mem, VA, base, PageSize::Huge2M, Prot::USER_RW)
            .unwrap();
        let huge = m.mem.read(pmd).unwrap().value;
        run(
            &mut m,
            &mut k,
            &mut CallOp::new(Paths::bundled().hugetlb_mprotect(), VA, 1).with_caller("mprotect"),
        );
        let e = m.mem.read(pmd).unwrap().value;
        assert_eq!(e, huge & !write_bit(f), "{f:?}");
        assert!(f.is_huge(e));
        let leaf = k.mm().walk(&m.mem, VA + 0x3000).unwrap();
        assert_eq!(
            (leaf.pfn, leaf.size, leaf.writable),
            (base + 3, PageSize::Huge2M, false)
        );
    }
}

#[test]
fn the_huge_zero_page_splits_into_read_only_zero_ptes() {
    for f in FORMATS {
        let (mut m, mut k) = world(f);
        k.huge_zero_pfn = m.mem.alloc_contiguous(512).unwrap();
        m.mem.pin(k.huge_zero_pfn).unwrap();
        let pmd = k
            .mm()
            .map_prot(
                &mut m.mem,
                VA,
                k.huge_zero_pfn,
                PageSize::Huge2M,
                Prot::USER_RO,
            )
            .unwrap();
        let table = m.mem.alloc().unwrap();
        k.deposited.insert(pmd, table);
        run(
            &mut m,
            &mut k,
            &mut CallOp::new(Paths::bundled().zero_split(), VA, 1),
        );
        // The PMD points at the deposited table: a table pointer of the format.
        let want_pmd = match f {
            PtFormat::X86_64 => (table << 12) | 0x7,
            _ => (table << 10) | sv_pte::V,
        };
        assert_eq!(m.mem.read(pmd).unwrap().value, want_pmd, "{f:?}");
        // 512 read-only zero-page PTEs: x86 P|US|A, RISC-V V|R|U|A, no W.
        let zero = match f {
            PtFormat::X86_64 => (k.zero_pfn << 12) | 0x25,
            _ => (k.zero_pfn << 10) | sv_pte::V | sv_pte::R | sv_pte::U | sv_pte::A,
        };
        for i in 0..512 {
            assert_eq!(m.mem.read((table << 12) + 8 * i).unwrap().value, zero);
        }
        let leaf = k.mm().walk(&m.mem, VA + 0x5000).unwrap();
        assert_eq!(
            (leaf.pfn, leaf.size, leaf.writable),
            (k.zero_pfn, PageSize::Small, false)
        );
    }
}
