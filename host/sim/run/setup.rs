//! The named pages, mapped as the scenario declares them.

use super::Sim;
use crate::checker::key;
use crate::mem::{AddressSpace, PageSize, Prot, PAGE_SHIFT};
use crate::mm::MmError;

impl Sim<'_> {
    /// Map every named page: COW pages read-only in both the process and
    /// its parent (two references), the others writable. A page below
    /// Linux's default `vm.mmap_min_addr` is refused, as `mmap` refuses it.
    pub(super) fn map_pages(&mut self) -> Result<(), MmError> {
        const MMAP_MIN_ADDR: u64 = 0x10000;
        if let Some(p) = self.s.pages.iter().find(|p| p.va < MMAP_MIN_ADDR) {
            return Err(MmError::Unsupported {
                what: format!(
                    "mapping page '{}' below mmap_min_addr ({MMAP_MIN_ADDR:#x})",
                    p.name
                ),
                va: p.va,
                instead:
                    "give every page a va of 0x10000 or more (Linux's mmap refuses lower addresses)",
            });
        }
        // The zero pages, pinned: never freed.
        self.k.zero_pfn = self.m.mem.alloc()?;
        self.m.mem.pin(self.k.zero_pfn)?;
        if self.s.pages.iter().any(|p| p.zero) {
            self.k.huge_zero_pfn = self.m.mem.alloc_compound(512, false)?;
            self.m.mem.pin(self.k.huge_zero_pfn)?;
        }
        // COW pages and the huge zero page read-only and clean, the others
        // writable and dirty: in the address space's own format.
        let (ro, rw) = (Prot::USER_RO, Prot::USER_RW);
        // each small page's frame, for a page that shares it
        let mut frames = vec![0; self.s.pages.len()];
        for (n, p) in self.s.pages.iter().enumerate() {
            if p.absent || p.kernel {
                continue; // mapped later by a path, if at all; the kernel's below
            }
            let own = &self.k.procs[usize::from(p.process)];
            let (mm, parent) = (own.mm, own.parent);
            // the checker's name for the page's address
            let at = key(p.process, p.va);
            if p.zero {
                let haddr = p.va & !0x1f_ffff;
                let base = self.k.huge_zero_pfn;
                self.chk.store("init".into(), at, 0, 0, 0);
                mm.map_prot(&mut self.m.mem, haddr, base, PageSize::Huge2M, ro)?;
                let pmd_pa = mm.pmd_pa(&mut self.m.mem, haddr)?;
                let table = self.m.mem.alloc_table()?;
                self.k.deposited.insert(pmd_pa, table);
                let f = base + ((p.va >> PAGE_SHIFT) & 0x1ff);
                let st = self.m.mem.state(f);
                self.chk.mapped(at & !0xfff, f, st);
                continue;
            }
            if let (true, Some(i)) = (p.hugetlb, p.shares) {
                // huge_pmd_share: the PUD entry points at the page table of
                // the page it shares, which takes a reference; the huge
                // entry, one for both, keeps the page's one reference
                let of = &self.s.pages[i];
                let theirs = self.k.procs[usize::from(of.process)].mm;
                let pmd = theirs.pmd_pa(&mut self.m.mem, of.va & !0x1f_ffff)?;
                let table = pmd >> PAGE_SHIFT;
                let pud = mm.pud_alloc(&mut self.m.mem, p.va)?;
                self.m.mem.write(pud, mm.format.table(table), 0)?;
                self.m.mem.get(table)?;
                let f = frames[i] + ((p.va >> PAGE_SHIFT) & 0x1ff);
                let st = self.m.mem.state(f);
                self.chk.mapped(at & !0xfff, f, st);
                continue;
            }
            let same_page =
                |o: &crate::scenario::Page| p.gigabyte().is_some() && o.gigabyte() == p.gigabyte();
            if let Some(i) = self.s.pages[..n].iter().position(same_page) {
                // another word of a 1 GiB page named before: mapped already
                let f = frames[i] + ((p.va >> PAGE_SHIFT) & (PageSize::Huge1G.frames() - 1));
                frames[n] = frames[i];
                let v = self.m.store((f << PAGE_SHIFT) | (p.va & 0xff8), p.value)?;
                self.chk.store("init".into(), at, p.value, v, 0);
                let st = self.m.mem.state(f);
                self.chk.mapped(at & !0xfff, f, st);
                continue;
            }
            if p.thp || p.hugetlb {
                // A transparent or hugetlbfs huge page (shared with the parent if COW),
                // with the page table deposited for a later split: a compound
                // page (a hugetlb page goes back to its pool when freed).
                // A 1 GiB hugetlb page (`hugetlb: 1G`) is mapped by its PUD.
                let size = p.huge_size();
                let base = self.m.mem.alloc_compound(size.frames(), p.hugetlb)?;
                frames[n] = base;
                let f = base + ((p.va >> PAGE_SHIFT) & (size.frames() - 1));
                let v = self.m.store((f << PAGE_SHIFT) | (p.va & 0xff8), p.value)?;
                self.chk.store("init".into(), at, p.value, v, 0);
                let haddr = p.va & !(size.bytes() - 1);
                let prot = if p.cow { ro } else { rw };
                mm.map_prot(&mut self.m.mem, haddr, base, size, prot)?;
                if p.cow {
                    parent.map_prot(&mut self.m.mem, haddr, base, size, prot)?;
                    self.m.mem.get(base)?;
                }
                if p.thp {
                    let pmd_pa = mm.pmd_pa(&mut self.m.mem, haddr)?;
                    let table = self.m.mem.alloc_table()?;
                    self.k.deposited.insert(pmd_pa, table);
                }
                let st = self.m.mem.state(f);
                self.chk.mapped(at & !0xfff, f, st);
                continue;
            }
            let page = p.va & !0xfff;
            if let Some(i) = p.shares {
                // the page-cache page of the page declared before it: one
                // more mapping, one more reference
                let f = frames[i];
                self.m.mem.get(f)?;
                mm.map_prot(&mut self.m.mem, page, f, PageSize::Small, rw)?;
                let st = self.m.mem.state(f);
                self.chk.mapped(at & !0xfff, f, st);
                continue;
            }
            let f = self.m.mem.alloc()?;
            frames[n] = f;
            let pa = (f << PAGE_SHIFT) | (p.va & 0xff8);
            let v = self.m.store(pa, p.value)?;
            self.chk.store("init".into(), at, p.value, v, 0);
            if p.cow {
                mm.map_prot(&mut self.m.mem, page, f, PageSize::Small, ro)?;
                parent.map_prot(&mut self.m.mem, page, f, PageSize::Small, ro)?;
                self.m.mem.get(f)?;
            } else {
                mm.map_prot(&mut self.m.mem, page, f, PageSize::Small, rw)?;
            }
            let st = self.m.mem.state(f);
            self.chk.mapped(at & !0xfff, f, st);
        }
        self.map_kernel_pages()
    }

    /// The kernel pages (`kernel: true`): vmalloc pages in init_mm's page
    /// tables (kernel tables, supervisor-only leaves), whose top-level
    /// entries every process's page tables (and a COW parent's) copy, as
    /// `pgd_alloc` copies the kernel half: one set of kernel tables below
    /// them, which every PASID's walk reaches.
    fn map_kernel_pages(&mut self) -> Result<(), MmError> {
        if !self.s.pages.iter().any(|p| p.kernel) {
            return Ok(());
        }
        let format = self.k.procs[0].mm.format;
        let init_mm = AddressSpace::with_format(&mut self.m.mem, 0, format)?;
        for p in self.s.pages.iter().filter(|p| p.kernel) {
            let f = self.m.mem.alloc()?;
            let v = self.m.store((f << PAGE_SHIFT) | (p.va & 0xff8), p.value)?;
            let at = key(p.process, p.va);
            self.chk.store("init".into(), at, p.value, v, 0);
            init_mm.map_kernel(&mut self.m.mem, p.va & !0xfff, f)?;
            let st = self.m.mem.state(f);
            self.chk.mapped(at & !0xfff, f, st);
        }
        for proc in &self.k.procs {
            for p in self.s.pages.iter().filter(|p| p.kernel) {
                proc.mm.share_top(&mut self.m.mem, &init_mm, p.va)?;
                proc.parent.share_top(&mut self.m.mem, &init_mm, p.va)?;
            }
        }
        self.k.init_mm = Some(init_mm);
        Ok(())
    }
}
