//! The states a worker has explored in one subtree, by digest
//! ([`crate::sim::digest`]), in memory its forked children share: a
//! schedule that reaches a state explored before, with no more preemptions
//! spent, has only futures that were explored from there, so it is cut.
//!
//! One subtree at a time, in the fixed order of the depth-first search
//! (each child runs to its end before its parent goes on), so what is cut
//! is the same whatever the number of workers and whichever worker gets
//! the subtree.

use std::ptr::NonNull;

#[repr(C)]
#[derive(Clone, Copy)]
struct Slot {
    lo: u64,
    hi: u64,
    /// The subtree it was set in ([`Visited::begin`]); another: empty.
    generation: u32,
    /// The fewest preemptions it was reached with.
    preemptions: u32,
}

/// An open-addressing table of digests in a shared anonymous mapping.
pub struct Visited {
    slots: NonNull<Slot>,
    /// Slots set in this subtree (shared, as the slots are).
    used: NonNull<u64>,
    cap: usize,
    bytes: usize,
    generation: u32,
}

/// Slots in the table (24 MiB of address space; pages are touched as
/// used). Past three quarters full nothing more is kept: a state not kept
/// is explored again, never cut wrongly.
pub const SLOTS: usize = 1 << 20;

impl Visited {
    /// A table of `cap` slots (a power of two); None when the memory cannot
    /// be mapped (then nothing is cut).
    pub fn new(cap: usize) -> Option<Visited> {
        let cap = cap.max(2).next_power_of_two();
        let bytes = 64 + cap * std::mem::size_of::<Slot>();
        // SAFETY: a fresh anonymous shared mapping, zeroed by the kernel;
        // nothing else refers to it.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return None;
        }
        let used = NonNull::new(p.cast::<u64>())?;
        // SAFETY: the slots start 64 bytes into the mapping.
        let slots = NonNull::new(unsafe { p.cast::<u8>().add(64) }.cast::<Slot>())?;
        Some(Visited {
            slots,
            used,
            cap,
            bytes,
            generation: 0,
        })
    }

    /// Start a subtree: forget every state (slots of older subtrees count
    /// as empty).
    pub fn begin(&mut self) {
        self.generation = self.generation.wrapping_add(1).max(1);
        // SAFETY: `used` points into our live mapping.
        unsafe { self.used.as_ptr().write_volatile(0) };
    }

    /// Has this subtree explored `key` with at most `preemptions` spent?
    /// If not, remember that it now has.
    pub fn seen(&self, key: u128, preemptions: u32) -> bool {
        let (lo, hi) = (key as u64, (key >> 64) as u64);
        let mask = self.cap - 1;
        let mut i = (lo ^ hi.rotate_left(17)) as usize & mask;
        for _ in 0..self.cap {
            // SAFETY: i < cap, inside the mapping; one process at a time
            // touches it (a parent waits for its child), and volatile
            // accesses keep the compiler from caching what a child wrote.
            let p = unsafe { self.slots.as_ptr().add(i) };
            let s = unsafe { p.read_volatile() };
            if s.generation != self.generation {
                // SAFETY: as above.
                let used = unsafe { self.used.as_ptr().read_volatile() };
                if used as usize >= self.cap / 4 * 3 {
                    return false;
                }
                unsafe {
                    p.write_volatile(Slot {
                        lo,
                        hi,
                        generation: self.generation,
                        preemptions,
                    });
                    self.used.as_ptr().write_volatile(used + 1);
                }
                return false;
            }
            if s.lo == lo && s.hi == hi {
                if s.preemptions <= preemptions {
                    return true;
                }
                // reached again with more of the bound left: explore it,
                // and let later ones with as much be cut
                // SAFETY: as above.
                unsafe { p.write_volatile(Slot { preemptions, ..s }) };
                return false;
            }
            i = (i + 1) & mask;
        }
        false
    }
}

impl Drop for Visited {
    fn drop(&mut self) {
        // SAFETY: unmapping our own mapping, whose size we recorded.
        unsafe {
            libc::munmap(self.used.as_ptr().cast(), self.bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_is_cut_only_with_no_more_of_the_bound_left() {
        let mut v = Visited::new(16).unwrap();
        v.begin();
        assert!(!v.seen(7, 1), "first visit");
        assert!(v.seen(7, 1), "same state, same preemptions");
        assert!(v.seen(7, 2), "more preemptions spent: fewer futures");
        assert!(!v.seen(7, 0), "fewer spent: more futures, explored again");
        assert!(v.seen(7, 0));
        assert!(!v.seen(8 << 64 | 7, 1), "the high half counts");
        v.begin();
        assert!(!v.seen(7, 2), "a new subtree forgets");
    }

    #[test]
    fn a_full_table_keeps_nothing_more_and_cuts_nothing_wrongly() {
        let mut v = Visited::new(8).unwrap();
        v.begin();
        for k in 0..6u128 {
            assert!(!v.seen(k, 0));
        }
        // 6 of 8 slots: no more are kept
        assert!(!v.seen(100, 0));
        assert!(!v.seen(100, 0), "not kept, so not cut");
        assert!(v.seen(3, 0), "kept ones still cut");
    }

    #[test]
    fn a_forked_child_s_states_are_seen_by_its_parent() {
        let mut v = Visited::new(64).unwrap();
        v.begin();
        // SAFETY: the child only touches the shared table and exits.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            v.seen(42, 0);
            unsafe { libc::_exit(0) };
        }
        let mut status = 0;
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert!(v.seen(42, 0));
    }
}
