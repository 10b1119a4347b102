//! A 128-bit digest of the machine's state, for `explore` to tell a state
//! it has already explored: two points of the schedule tree with the same
//! digest have the same futures (the same enabled moves, the same RTL and
//! kernel behaviour, the same verdicts to come).
//!
//! What goes in is what the future depends on, not the history: the RTL's
//! whole state (its cover counters aside), memory with every word's store
//! version, page tables, locks, the kernel paths and the driver, the
//! checker's judging state with its cycle stamps reduced to what a later
//! judgement compares them with. Reports of the past (store and device
//! records, window lengths, step texts) are left out.

use std::fmt;
use std::hash::Hasher;

/// Two 64-bit lanes with different multipliers: a collision needs both.
#[derive(Clone, Copy, Debug)]
pub struct StateHasher {
    a: u64,
    b: u64,
}

impl Default for StateHasher {
    fn default() -> Self {
        StateHasher {
            a: 0x243f_6a88_85a3_08d3,
            b: 0x1319_8a2e_0370_7344,
        }
    }
}

/// The finalizer of SplitMix64 (a full avalanche of one word).
#[inline]
fn avalanche(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl StateHasher {
    /// Feed one word.
    #[inline]
    pub fn word(&mut self, x: u64) {
        self.a = (self.a ^ x)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(29);
        self.b = (self.b.rotate_left(23) ^ x).wrapping_mul(0xc2b2_ae3d_27d4_eb4f) ^ (self.b >> 31);
    }

    /// Feed a 128-bit value (another digest) as two words.
    pub fn word128(&mut self, x: u128) {
        self.word(x as u64);
        self.word((x >> 64) as u64);
    }

    /// The digest of `words` alone.
    pub fn of(words: &[u64]) -> u128 {
        let mut h = StateHasher::default();
        words.iter().for_each(|&w| h.word(w));
        h.finish128()
    }

    /// Feed a value's `Debug` text (derived `Debug` prints every field).
    pub fn debug(&mut self, v: &dyn fmt::Debug) {
        // Writing into the hasher cannot fail.
        let _ = fmt::write(self, format_args!("{v:?}"));
        self.word(0xff);
    }

    /// The digest.
    pub fn finish128(&self) -> u128 {
        (u128::from(avalanche(self.a)) << 64)
            | u128::from(avalanche(self.b ^ 0x5851_f42d_4c95_7f2d))
    }
}

impl Hasher for StateHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.word(u64::from_le_bytes(c.try_into().unwrap_or_default()));
        }
        let rest = chunks.remainder();
        let mut last = [0u8; 8];
        last[..rest.len()].copy_from_slice(rest);
        // the length tells "ab" + "" from "a" + "b"
        self.word(u64::from_le_bytes(last) ^ ((bytes.len() as u64) << 56));
    }

    fn write_u64(&mut self, x: u64) {
        self.word(x);
    }

    fn finish(&self) -> u64 {
        avalanche(self.a ^ self.b.rotate_left(32))
    }
}

impl fmt::Write for StateHasher {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        Hasher::write(self, s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_and_value_change_the_digest() {
        let of = StateHasher::of;
        assert_eq!(of(&[1, 2, 3]), of(&[1, 2, 3]));
        assert_ne!(of(&[1, 2, 3]), of(&[1, 3, 2]));
        assert_ne!(of(&[1, 2, 3]), of(&[1, 2, 4]));
        assert_ne!(of(&[0]), of(&[0, 0]));
        // a 128-bit word is its two halves, low first
        let mut a = StateHasher::default();
        a.word128(5 << 64 | 7);
        assert_eq!(a.finish128(), of(&[7, 5]));
    }

    #[test]
    fn debug_text_is_fed_whole() {
        let mut a = StateHasher::default();
        a.debug(&(1u32, "x"));
        let mut b = StateHasher::default();
        b.debug(&(1u32, "y"));
        let mut c = StateHasher::default();
        c.debug(&(1u32, "x"));
        assert_ne!(a.finish128(), b.finish128());
        assert_eq!(a.finish128(), c.finish128());
    }
}
