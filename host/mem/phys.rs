//! Physical memory as 4 KiB frames with reference counts and a LIFO free
//! list (like Linux's per-CPU hot page lists), so a freed frame is the next
//! one handed out and a use-after-free shows up as another owner's data.
//!
//! Every 64-bit word carries the *version* that last wrote it: the global
//! sequence number of the store (CPU or device). Copying a page (COW)
//! copies versions too, so the checker can tell which store a device read
//! actually observed.

use crate::sim::digest::StateHasher;
use thiserror::Error;

pub const PAGE_SHIFT: u32 = 12;
pub const PAGE_SIZE: u64 = 1 << PAGE_SHIFT;
pub const WORDS_PER_PAGE: usize = (PAGE_SIZE / 8) as usize;

/// A page frame number: physical address >> 12.
pub type Pfn = u64;

/// One 64-bit word of memory and the store that wrote it (0 = never written).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Word {
    pub value: u64,
    pub version: u64,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum MemError {
    #[error("[mem] out of memory: all {frames} frames are in use")]
    OutOfMemory { frames: u64 },
    #[error(
        "[mem] no {count} contiguous free frames aligned to {align} (memory has {frames} frames)"
    )]
    NoContiguous { count: u64, align: u64, frames: u64 },
    #[error("[mem] physical address {pa:#x} is outside memory")]
    BadAddress { pa: u64 },
    #[error("[mem] frame {pfn:#x} is not allocated")]
    NotAllocated { pfn: Pfn },
}

/// Allocation state of one frame, as the checker sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameState {
    Free,
    /// Allocated; `generation` counts allocations of this frame, so a frame
    /// reused by another owner is told apart from its previous life.
    Allocated {
        refcount: u32,
        generation: u32,
    },
}

struct Frame {
    /// Allocated on the frame's first use, kept after it is freed (so a
    /// use-after-free reads the old owner's data until the frame is reused).
    words: Option<Box<[Word; WORDS_PER_PAGE]>>,
    refcount: u32,
    generation: u32,
    /// A compound page's tail: its head frame (0: not a tail). A tail's own
    /// count stays 0; `get`, `put` and `page_count` act on the head.
    head: Pfn,
    /// A compound page's head: how many frames it holds (0: a single frame),
    /// and whether it goes back to the hugetlb pool when freed.
    nr: u32,
    pool: bool,
    /// The frame was a page table when it was last freed
    /// ([`PhysMem::free_table`]), and no page table has been allocated in
    /// it since: a read of it by the IOMMU is a walk through a freed table.
    freed_table: bool,
}

/// The machine's physical memory.
pub struct PhysMem {
    frames: Vec<Frame>,
    /// Free frames, most recently freed last (popped first).
    free: Vec<Pfn>,
    /// The XOR of [`word_key`] over every word not zero: memory's contents
    /// for [`PhysMem::digest`], kept as words change.
    words_key: u128,
    /// The XOR of [`frame_key`] over every frame: reference counts and
    /// generations, kept as they change.
    frames_key: u128,
    /// `free_keys[i]`: a hash of `free[..=i]` in order (the free list is a
    /// stack: a push or pop is one entry).
    free_keys: Vec<u128>,
    /// Addresses the IOMMU read in frames that were freed as page tables
    /// ([`PhysMem::iommu_read`]), until [`PhysMem::take_freed_table_reads`].
    freed_table_reads: Vec<u64>,
}

/// A frame's share of [`PhysMem`]'s `frames_key`.
fn frame_key(pfn: Pfn, f: &Frame) -> u128 {
    if f.refcount == 0 && f.generation == 0 {
        return 0;
    }
    let count = u64::from(f.refcount) << 32 | u64::from(f.generation);
    if f.head == 0 && f.nr == 0 && !f.freed_table {
        return StateHasher::of(&[pfn, count]);
    }
    let flags = u64::from(f.nr) << 2 | u64::from(f.pool) << 1 | u64::from(f.freed_table);
    StateHasher::of(&[pfn, count, f.head, flags])
}

/// The hash of a free list `below` (the hash of the entries under it) with
/// `pfn` on top.
fn free_key(below: Option<&u128>, pfn: Pfn) -> u128 {
    let below = below.copied().unwrap_or(0);
    StateHasher::of(&[below as u64, (below >> 64) as u64, pfn])
}

/// A word's share of [`PhysMem`]'s `words_key` (zero for a zero word, so a
/// frame's words need not be there to count).
fn word_key(pa: u64, w: Word) -> u128 {
    if w == Word::default() {
        return 0;
    }
    StateHasher::of(&[pa, w.value, w.version])
}

/// Frame 0 is never handed out, so a zero PFN in a structure means "none".
const FIRST_PFN: Pfn = 1;

impl PhysMem {
    /// Memory of `frames` frames (frame 0 reserved).
    pub fn new(frames: u64) -> Self {
        let frames_vec = (0..frames)
            .map(|_| Frame {
                words: None,
                refcount: 0,
                generation: 0,
                head: 0,
                nr: 0,
                pool: false,
                freed_table: false,
            })
            .collect();
        // Lowest PFN handed out first: push in reverse so pop() yields FIRST_PFN.
        let free = (FIRST_PFN..frames).rev().collect();
        let mut m = PhysMem {
            frames: frames_vec,
            free,
            words_key: 0,
            frames_key: 0,
            free_keys: Vec::new(),
            freed_table_reads: Vec::new(),
        };
        m.rehash_free();
        m
    }

    pub fn frame_count(&self) -> u64 {
        self.frames.len() as u64
    }

    /// Allocate one zeroed frame with reference count 1.
    pub fn alloc(&mut self) -> Result<Pfn, MemError> {
        self.free_keys.pop();
        let pfn = self.free.pop().ok_or(MemError::OutOfMemory {
            frames: self.frame_count(),
        })?;
        self.take(pfn);
        Ok(pfn)
    }

    /// Allocate one zeroed frame for a page table (`pte_alloc_one`): a frame
    /// freed as a page table earlier is a page table again.
    pub fn alloc_table(&mut self) -> Result<Pfn, MemError> {
        let pfn = self.alloc()?;
        self.set_freed_table(pfn, false);
        Ok(pfn)
    }

    /// Drop a page table's reference (`pte_free`, or the mmu_gather's table
    /// batch after its flush); returns true when the frame was freed. From
    /// then until a page table is allocated in the frame again, the IOMMU
    /// reading it is a walk through a freed table ([`PhysMem::iommu_read`]),
    /// even after the frame is handed out as data.
    pub fn free_table(&mut self, pfn: Pfn) -> Result<bool, MemError> {
        let freed = self.put(pfn)?;
        if freed {
            self.set_freed_table(pfn, true);
        }
        Ok(freed)
    }

    fn set_freed_table(&mut self, pfn: Pfn, on: bool) {
        let f = &mut self.frames[pfn as usize];
        self.frames_key ^= frame_key(pfn, f);
        f.freed_table = on;
        self.frames_key ^= frame_key(pfn, f);
    }

    /// A read by the IOMMU (its page-table walker's and its queue's): as
    /// [`PhysMem::read`], and one in a frame freed as a page table is noted
    /// for [`PhysMem::take_freed_table_reads`].
    pub fn iommu_read(&mut self, pa: u64) -> Result<Word, MemError> {
        let w = self.read(pa)?;
        if self.frames[(pa >> PAGE_SHIFT) as usize].freed_table {
            self.freed_table_reads.push(pa & !7);
        }
        Ok(w)
    }

    /// The addresses the IOMMU read in freed page tables since the last call.
    pub fn take_freed_table_reads(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.freed_table_reads)
    }

    /// Allocate `count` contiguous frames aligned to `count` (a 2 MiB page is
    /// 512), each with reference count 1; returns the first PFN.
    pub fn alloc_contiguous(&mut self, count: u64) -> Result<Pfn, MemError> {
        let n = self.frame_count();
        let mut base = count.max(FIRST_PFN);
        while base + count <= n {
            if (base..base + count).all(|p| self.refcount(p) == 0) {
                self.free.retain(|p| *p < base || *p >= base + count);
                self.rehash_free();
                for p in base..base + count {
                    self.take(p);
                }
                return Ok(base);
            }
            base += count;
        }
        Err(MemError::NoContiguous {
            count,
            align: count,
            frames: n,
        })
    }

    /// Allocate a compound page of `count` contiguous frames aligned to
    /// `count` (a THP or a hugetlb page is 512): one reference count, the
    /// head's, for all of them; returns the head. Freed, its frames go back
    /// to the free list head first (the buddy allocator splits a freed block
    /// from its lowest page), or, for a hugetlb page (`pool`), to the hugetlb
    /// pool: free, but never handed out by [`PhysMem::alloc`].
    pub fn alloc_compound(&mut self, count: u64, pool: bool) -> Result<Pfn, MemError> {
        let head = self.alloc_contiguous(count)?;
        let nr = u32::try_from(count).map_err(|_| MemError::NoContiguous {
            count,
            align: count,
            frames: self.frame_count(),
        })?;
        for p in head..head + count {
            let f = &mut self.frames[p as usize];
            self.frames_key ^= frame_key(p, f);
            if p == head {
                (f.nr, f.pool) = (nr, pool);
            } else {
                (f.refcount, f.head) = (0, head);
            }
            self.frames_key ^= frame_key(p, f);
        }
        Ok(head)
    }

    /// The frame that holds `pfn`'s reference count: its compound head, or
    /// itself.
    fn count_holder(&self, pfn: Pfn) -> Pfn {
        match self.frames.get(pfn as usize) {
            Some(f) if f.head != 0 => f.head,
            _ => pfn,
        }
    }

    fn take(&mut self, pfn: Pfn) {
        self.toggle_words(pfn);
        let f = &mut self.frames[pfn as usize];
        // A frame never written reads as zeros: its words are allocated by
        // its first write (a 1 GiB page's 262,144 frames cost nothing until
        // they are used).
        if let Some(w) = &mut f.words {
            w.fill(Word::default());
        }
        self.frames_key ^= frame_key(pfn, f);
        f.refcount = 1;
        f.generation += 1;
        self.frames_key ^= frame_key(pfn, f);
    }

    /// Hash the free list again from the bottom (after a change inside it).
    fn rehash_free(&mut self) {
        self.free_keys.clear();
        for &p in &self.free {
            let k = free_key(self.free_keys.last(), p);
            self.free_keys.push(k);
        }
    }

    /// `get_page`: take one more reference (a compound page's tail: its
    /// head's).
    pub fn get(&mut self, pfn: Pfn) -> Result<(), MemError> {
        let pfn = self.count_holder(pfn);
        let f = self.frame_mut(pfn)?;
        if f.refcount == 0 {
            return Err(MemError::NotAllocated { pfn });
        }
        let old = frame_key(pfn, f);
        f.refcount += 1;
        self.frames_key ^= old ^ frame_key(pfn, f);
        Ok(())
    }

    /// Pin a frame for good (the zero pages): no put will ever free it.
    pub fn pin(&mut self, pfn: Pfn) -> Result<(), MemError> {
        let pfn = self.count_holder(pfn);
        let f = self.frame_mut(pfn)?;
        if f.refcount == 0 {
            return Err(MemError::NotAllocated { pfn });
        }
        let old = frame_key(pfn, f);
        f.refcount = u32::MAX / 2;
        self.frames_key ^= old ^ frame_key(pfn, f);
        Ok(())
    }

    /// `put_page`: drop one reference; returns true when the frame was freed
    /// (a compound page's tail: its head's reference, and every frame of it
    /// is freed at zero).
    pub fn put(&mut self, pfn: Pfn) -> Result<bool, MemError> {
        let pfn = self.count_holder(pfn);
        let f = self.frame_mut(pfn)?;
        if f.refcount == 0 {
            return Err(MemError::NotAllocated { pfn });
        }
        let old = frame_key(pfn, f);
        f.refcount -= 1;
        let (new, freed) = (frame_key(pfn, f), f.refcount == 0);
        let (nr, pool) = (u64::from(f.nr.max(1)), f.pool);
        self.frames_key ^= old ^ new;
        if !freed {
            return Ok(false);
        }
        // Tails last to first, so the head is on top of the free list.
        for p in (pfn..pfn + nr).rev() {
            let f = &mut self.frames[p as usize];
            self.frames_key ^= frame_key(p, f);
            (f.head, f.nr, f.pool) = (0, 0, false);
            self.frames_key ^= frame_key(p, f);
            if !pool {
                let k = free_key(self.free_keys.last(), p);
                self.free_keys.push(k);
                self.free.push(p);
            }
        }
        Ok(true)
    }

    /// A frame's state: a compound page's tail has its head's count and its
    /// own generation.
    pub fn state(&self, pfn: Pfn) -> FrameState {
        match self.frames.get(pfn as usize) {
            Some(f) if self.refcount(pfn) > 0 => FrameState::Allocated {
                refcount: self.refcount(pfn),
                generation: f.generation,
            },
            _ => FrameState::Free,
        }
    }

    /// `page_count`: a compound page's tail reads its head's.
    pub fn refcount(&self, pfn: Pfn) -> u32 {
        let pfn = self.count_holder(pfn);
        self.frames.get(pfn as usize).map_or(0, |f| f.refcount)
    }

    fn frame_mut(&mut self, pfn: Pfn) -> Result<&mut Frame, MemError> {
        self.frames
            .get_mut(pfn as usize)
            .ok_or(MemError::BadAddress {
                pa: pfn << PAGE_SHIFT,
            })
    }

    fn locate(&self, pa: u64) -> Result<(usize, usize), MemError> {
        let pfn = (pa >> PAGE_SHIFT) as usize;
        if pfn >= self.frames.len() {
            return Err(MemError::BadAddress { pa });
        }
        Ok((pfn, ((pa & (PAGE_SIZE - 1)) >> 3) as usize))
    }

    /// Read the 8-byte-aligned word at `pa` (low 3 bits ignored).
    pub fn read(&self, pa: u64) -> Result<Word, MemError> {
        let (f, i) = self.locate(pa)?;
        Ok(self.frames[f]
            .words
            .as_ref()
            .map_or(Word::default(), |w| w[i]))
    }

    /// Write the word at `pa` with the version of the store doing it.
    pub fn write(&mut self, pa: u64, value: u64, version: u64) -> Result<(), MemError> {
        let (f, i) = self.locate(pa)?;
        let words = self.frames[f]
            .words
            .get_or_insert_with(|| Box::new([Word::default(); WORDS_PER_PAGE]));
        let new = Word { value, version };
        self.words_key ^= word_key(pa & !7, words[i]) ^ word_key(pa & !7, new);
        words[i] = new;
        Ok(())
    }

    /// Copy a whole frame, values and versions (`copy_user_highpage`).
    pub fn copy_frame(&mut self, dst: Pfn, src: Pfn) -> Result<(), MemError> {
        let words = self.frame_mut(src)?.words.clone();
        self.frame_mut(dst)?;
        self.toggle_words(dst);
        self.frames[dst as usize].words = words;
        self.toggle_words(dst);
        Ok(())
    }

    /// Take frame `pfn`'s words out of `words_key`, or put them in: the
    /// same XOR.
    fn toggle_words(&mut self, pfn: Pfn) {
        if let Some(w) = &self.frames[pfn as usize].words {
            let base = pfn << PAGE_SHIFT;
            for (i, &w) in w.iter().enumerate() {
                self.words_key ^= word_key(base + 8 * i as u64, w);
            }
        }
    }

    /// Feed the whole memory into `h`: every word with its version, every
    /// frame's reference count and generation, the free list in order.
    pub fn digest(&self, h: &mut StateHasher) {
        let free = self.free_keys.last().copied().unwrap_or(0);
        for k in [self.words_key, self.frames_key, free] {
            h.word128(k);
        }
        h.word(self.free.len() as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(m: &PhysMem) -> u128 {
        let mut h = StateHasher::default();
        m.digest(&mut h);
        h.finish128()
    }

    #[test]
    fn a_frame_never_written_costs_no_words_and_reads_zero() {
        // A 1 GiB page: 262,144 frames allocated, none of them written.
        let mut m = PhysMem::new(2 * 262_144);
        let base = m.alloc_compound(262_144, true).unwrap();
        assert!(m.frames[base as usize..][..262_144]
            .iter()
            .all(|f| f.words.is_none()));
        assert_eq!(m.read((base + 7) << PAGE_SHIFT).unwrap(), Word::default());
        let before = digest(&m);
        m.write((base + 7) << PAGE_SHIFT, 5, 1).unwrap();
        assert_ne!(digest(&m), before);
        m.write((base + 7) << PAGE_SHIFT, 0, 0).unwrap();
        assert_eq!(digest(&m), before, "a zero word is no word");
        // Freed and allocated again: the written frame is zeroed in place.
        assert!(m.put(base).unwrap());
        let again = m.alloc_compound(262_144, true).unwrap();
        assert_eq!(again, base);
        assert_eq!(m.read((base + 7) << PAGE_SHIFT).unwrap(), Word::default());
    }

    #[test]
    fn equal_contents_reached_in_any_order_digest_equal() {
        let (mut a, mut b) = (PhysMem::new(8), PhysMem::new(8));
        let (fa, fb) = (a.alloc().unwrap(), b.alloc().unwrap());
        let (ga, gb) = (a.alloc().unwrap(), b.alloc().unwrap());
        a.write(fa << 12, 1, 5).unwrap();
        a.write((fa << 12) + 8, 2, 6).unwrap();
        b.write((fb << 12) + 8, 2, 6).unwrap();
        b.write(fb << 12, 1, 5).unwrap();
        assert_eq!(digest(&a), digest(&b));
        // a copy is its words; a zeroing alloc forgets the old ones
        a.copy_frame(ga, fa).unwrap();
        b.write(gb << 12, 1, 5).unwrap();
        b.write((gb << 12) + 8, 2, 6).unwrap();
        assert_eq!(digest(&a), digest(&b));
        // the version counts, not only the value
        b.write(gb << 12, 1, 7).unwrap();
        assert_ne!(digest(&a), digest(&b));
        b.write(gb << 12, 1, 5).unwrap();
        assert_eq!(digest(&a), digest(&b));
        // a freed frame keeps its words (a use-after-free reads them) until
        // it is handed out again, zeroed
        a.put(ga).unwrap();
        b.put(gb).unwrap();
        assert_eq!(digest(&a), digest(&b));
        a.alloc().unwrap();
        assert_ne!(digest(&a), digest(&b));
        b.alloc().unwrap();
        assert_eq!(digest(&a), digest(&b));
    }

    #[test]
    fn freed_frame_is_reused_first() {
        let mut m = PhysMem::new(8);
        let a = m.alloc().unwrap();
        let b = m.alloc().unwrap();
        assert_ne!(a, b);
        assert!(m.put(a).unwrap());
        assert_eq!(m.state(a), FrameState::Free);
        let c = m.alloc().unwrap();
        assert_eq!(c, a, "LIFO free list hands the freed frame out again");
        assert_eq!(
            m.state(c),
            FrameState::Allocated {
                refcount: 1,
                generation: 2
            }
        );
    }

    #[test]
    fn refcount_frees_only_at_zero() {
        let mut m = PhysMem::new(4);
        let a = m.alloc().unwrap();
        m.get(a).unwrap();
        assert!(!m.put(a).unwrap());
        assert!(m.put(a).unwrap());
        assert_eq!(m.put(a), Err(MemError::NotAllocated { pfn: a }));
    }

    #[test]
    fn out_of_memory_is_an_error() {
        let mut m = PhysMem::new(3);
        m.alloc().unwrap();
        m.alloc().unwrap();
        assert_eq!(m.alloc(), Err(MemError::OutOfMemory { frames: 3 }));
    }

    #[test]
    fn words_carry_versions_through_copy() {
        let mut m = PhysMem::new(4);
        let a = m.alloc().unwrap();
        let b = m.alloc().unwrap();
        m.write((a << PAGE_SHIFT) + 16, 0xa0, 7).unwrap();
        m.copy_frame(b, a).unwrap();
        let w = m.read((b << PAGE_SHIFT) + 16).unwrap();
        assert_eq!(
            w,
            Word {
                value: 0xa0,
                version: 7
            }
        );
        assert_eq!(
            m.read(64 << PAGE_SHIFT),
            Err(MemError::BadAddress { pa: 64 << 12 })
        );
    }

    #[test]
    fn contiguous_allocation_is_aligned() {
        let mut m = PhysMem::new(2048);
        m.alloc().unwrap();
        let base = m.alloc_contiguous(512).unwrap();
        assert_eq!(base % 512, 0);
        assert_eq!(m.refcount(base + 511), 1);
        let next = m.alloc().unwrap();
        assert!(next < base || next >= base + 512);
    }

    #[test]
    fn compound_page_counts_at_its_head_and_frees_whole() {
        let mut m = PhysMem::new(2048);
        let small = m.alloc().unwrap();
        let head = m.alloc_compound(512, false).unwrap();
        let tail = head + 7;
        assert_eq!(m.refcount(tail), 1, "a tail reads its head's count");
        m.get(tail).unwrap();
        assert_eq!(m.refcount(head), 2, "get of a tail takes the head's");
        assert!(!m.put(head).unwrap());
        assert!(matches!(
            m.state(head + 511),
            FrameState::Allocated { refcount: 1, .. }
        ));
        assert!(m.put(tail).unwrap(), "the last put frees the compound page");
        for p in [head, tail, head + 511] {
            assert_eq!(m.state(p), FrameState::Free, "frame {p:#x}");
        }
        assert_eq!(m.put(tail), Err(MemError::NotAllocated { pfn: tail }));
        // the buddy allocator hands out the freed block from its lowest page
        assert_eq!(m.alloc().unwrap(), head);
        assert_eq!(m.alloc().unwrap(), head + 1);
        assert_eq!(m.refcount(head + 1), 1, "no longer a tail");
        assert!(m.put(small).unwrap());
    }

    #[test]
    fn freed_hugetlb_page_goes_to_its_pool() {
        let mut m = PhysMem::new(2048);
        let head = m.alloc_compound(512, true).unwrap();
        assert!(m.put(head + 3).unwrap());
        assert_eq!(m.state(head + 3), FrameState::Free);
        let next = m.alloc().unwrap();
        assert!(
            next < head || next >= head + 512,
            "a small allocation never takes a pooled frame ({next:#x})"
        );
        // the pool's frames are free for the next huge allocation
        assert_eq!(m.alloc_compound(512, true).unwrap(), head);
    }

    #[test]
    fn a_freed_table_stays_one_until_a_table_is_allocated_in_it() {
        let mut m = PhysMem::new(8);
        let t = m.alloc_table().unwrap();
        m.iommu_read(t << PAGE_SHIFT).unwrap();
        assert!(m.take_freed_table_reads().is_empty(), "a live table");
        let before = digest(&m);
        assert!(m.free_table(t).unwrap());
        assert_ne!(digest(&m), before);
        // handed out as data: still the freed table to the IOMMU
        assert_eq!(m.alloc().unwrap(), t);
        m.iommu_read((t << PAGE_SHIFT) + 0x18).unwrap();
        m.read((t << PAGE_SHIFT) + 0x20).unwrap();
        assert_eq!(m.take_freed_table_reads(), vec![(t << PAGE_SHIFT) + 0x18]);
        assert!(m.take_freed_table_reads().is_empty(), "taken");
        assert!(m.put(t).unwrap());
        // a page table again
        assert_eq!(m.alloc_table().unwrap(), t);
        m.iommu_read(t << PAGE_SHIFT).unwrap();
        assert!(m.take_freed_table_reads().is_empty());
    }

    #[test]
    fn compound_structure_is_in_the_digest() {
        let (mut a, mut b) = (PhysMem::new(2048), PhysMem::new(2048));
        a.alloc_contiguous(512).unwrap();
        b.alloc_compound(512, false).unwrap();
        assert_ne!(digest(&a), digest(&b));
        let mut c = PhysMem::new(2048);
        c.alloc_compound(512, false).unwrap();
        assert_eq!(digest(&b), digest(&c));
    }
}
