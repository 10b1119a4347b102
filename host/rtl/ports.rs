//! The port structs of the socket (docs/socket.md) and the encodings that
//! cross it: command-queue commands and probe words. The command encodings
//! mirror `rtl/shootdown_pkg.sv`.

pub use super::ffi::{
    SdIn as PortsIn, SdOut as PortsOut, SdProbeIn as ProbeIn, SdProbeOut as ProbeOut, NUM_PROBES,
};

/// Command opcode (dword0 bits 6:0): IOTINVAL.
pub const OP_IOTINVAL: u64 = 1;
/// Command opcode: IOFENCE.
pub const OP_IOFENCE: u64 = 2;
/// Command opcode: ATS.
pub const OP_ATS: u64 = 4;
/// dword0 bit 10: IOTINVAL address valid; IOFENCE.C write DATA to ADDR.
pub const CMD_AV: u64 = 1 << 10;
/// dword0 bit 11: PASID valid.
pub const CMD_PV: u64 = 1 << 11;
/// dword0 bits 31:12: PASID.
pub const CMD_PASID_SHIFT: u32 = 12;
/// dword0 bits 63:32: IOFENCE.C DATA.
pub const CMD_DATA_SHIFT: u32 = 32;
/// dword1 bit 11 of ATS.INVAL: the PCIe Invalidate Request S (size) bit.
pub const ATS_S: u64 = 1 << 11;
/// PASIDs are 20 bits.
pub const PASID_MASK: u32 = (1 << 20) - 1;
/// Bytes of one command.
pub const CMD_BYTES: u64 = 16;

const PAGE_MASK: u64 = 0xfff;

fn pasid_field(pasid: u32) -> u64 {
    CMD_PV | (u64::from(pasid & PASID_MASK) << CMD_PASID_SHIFT)
}

/// IOTINVAL.VMA: invalidate IOTLB entries of `pasid` (every PASID if `None`)
/// for the page of `va` (every address if `None`). An address inside a
/// 2 MiB entry invalidates that entry. PASIDs are truncated to 20 bits.
pub fn cmd_iotinval_vma(pasid: Option<u32>, va: Option<u64>) -> [u64; 2] {
    let mut dw0 = OP_IOTINVAL;
    if let Some(p) = pasid {
        dw0 |= pasid_field(p);
    }
    let mut dw1 = 0;
    if let Some(va) = va {
        dw0 |= CMD_AV;
        dw1 = va & !PAGE_MASK;
    }
    [dw0, dw1]
}

/// ATS.INVAL: a PCIe Invalidate Request for `pasid` covering
/// `[va_base, va_base + size_bytes)`.
///
/// ATS can only name naturally aligned power-of-two ranges of at least
/// 4 KiB, so the request covers the smallest such range that contains the
/// given one (exactly the given range when it is already one). S=0 encodes
/// one 4 KiB page; S=1 a size of 2^(13+t) bytes, t the number of one bits of
/// the address from bit 12 up. A size of 0 counts as 1 byte.
pub fn cmd_ats_inval(pasid: u32, va_base: u64, size_bytes: u64) -> [u64; 2] {
    let dw0 = OP_ATS | pasid_field(pasid);
    let last = va_base.saturating_add(size_bytes.max(1) - 1);
    // log2 of the smallest aligned block holding both ends, at least 4 KiB
    let k = (64 - (va_base ^ last).leading_zeros()).max(12);
    let dw1 = if k == 12 {
        va_base & !PAGE_MASK
    } else {
        let base = if k == 64 {
            0
        } else {
            va_base & !((1u64 << k) - 1)
        };
        // ones in bits 12 .. k-2, zero in bit k-1
        let ones = ((1u64 << (k - 1)) - 1) & !PAGE_MASK;
        base | ones | ATS_S
    };
    [dw0, dw1]
}

/// Decode the range of an ATS.INVAL dword1 as `(base VA, log2 of the size in
/// bytes)`, as the RTL does (the whole 48-bit VA space at most).
pub fn ats_inval_range(dw1: u64) -> (u64, u32) {
    if dw1 & ATS_S == 0 {
        return (dw1 & !PAGE_MASK, 12);
    }
    let log2 = 13 + (dw1 >> 12).trailing_ones();
    let base = if log2 >= 64 {
        0
    } else {
        dw1 & !((1u64 << log2) - 1)
    };
    (base, log2.min(48))
}

/// IOFENCE.C: completes after every earlier command; then, if `addr` is
/// given, writes `data` zero-extended as one 64-bit word to it (8-byte
/// aligned: the low 3 bits are dropped).
pub fn cmd_iofence_c(addr: Option<u64>, data: u32) -> [u64; 2] {
    let mut dw0 = OP_IOFENCE | (u64::from(data) << CMD_DATA_SHIFT);
    let mut dw1 = 0;
    if let Some(a) = addr {
        dw0 |= CMD_AV;
        dw1 = a & !7;
    }
    [dw0, dw1]
}

/// What a probe word says a cache holds for the probed page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProbeEntry {
    /// PPN of the probed 4 KiB page (for a 2 MiB entry: its base plus VPN
    /// bits 8:0).
    pub ppn: u64,
    pub w: bool,
    pub r: bool,
    /// The entry is a 2 MiB entry.
    pub is_2m: bool,
}

/// Decode a probe word (bit 63 valid, 62 W, 61 R, 60 2 MiB, 39:0 PPN).
pub fn decode_probe(word: u64) -> Option<ProbeEntry> {
    if word >> 63 == 0 {
        return None;
    }
    Some(ProbeEntry {
        ppn: word & ((1 << 40) - 1),
        w: word & (1 << 62) != 0,
        r: word & (1 << 61) != 0,
        is_2m: word & (1 << 60) != 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iotinval_fields() {
        assert_eq!(cmd_iotinval_vma(None, None), [1, 0]);
        let [d0, d1] = cmd_iotinval_vma(Some(0x12345), Some(0x7fff_1234));
        assert_eq!(d0 & 0x7f, OP_IOTINVAL);
        assert_eq!((d0 >> 7) & 7, 0);
        assert_ne!(d0 & CMD_AV, 0);
        assert_ne!(d0 & CMD_PV, 0);
        assert_eq!((d0 >> 12) & 0xfffff, 0x12345);
        assert_eq!(d1, 0x7fff_1000);
    }

    #[test]
    fn iofence_fields() {
        let [d0, d1] = cmd_iofence_c(Some(0x8008), 0xdead_beef);
        assert_eq!(d0 & 0x7f, OP_IOFENCE);
        assert_ne!(d0 & CMD_AV, 0);
        assert_eq!(d0 >> 32, 0xdead_beef);
        assert_eq!(d1, 0x8008);
        assert_eq!(cmd_iofence_c(None, 0)[0] & CMD_AV, 0);
    }

    #[test]
    fn ats_sizes_round_trip() {
        // one page: S=0
        let [d0, d1] = cmd_ats_inval(7, 0x4000_3000, 4096);
        assert_eq!(d0 & 0x7f, OP_ATS);
        assert_eq!(d1 & ATS_S, 0);
        assert_eq!(ats_inval_range(d1), (0x4000_3000, 12));
        // 8 KiB: S=1, t=0
        let d1 = cmd_ats_inval(7, 0x4000_2000, 8192)[1];
        assert_eq!(d1, 0x4000_2000 | ATS_S);
        assert_eq!(ats_inval_range(d1), (0x4000_2000, 13));
        // 2 MiB
        let d1 = cmd_ats_inval(7, 0x4020_0000, 2 << 20)[1];
        assert_eq!(ats_inval_range(d1), (0x4020_0000, 21));
        // an unaligned range grows to the aligned block holding it
        let d1 = cmd_ats_inval(7, 0x4000_1000, 0x2000)[1];
        assert_eq!(ats_inval_range(d1), (0x4000_0000, 14));
        // everything
        let d1 = cmd_ats_inval(7, 0, u64::MAX)[1];
        assert_eq!(ats_inval_range(d1), (0, 48));
    }

    #[test]
    fn probe_words() {
        assert_eq!(decode_probe(0), None);
        let w = (1 << 63) | (1 << 61) | (1 << 60) | 0x12_3456;
        assert_eq!(
            decode_probe(w),
            Some(ProbeEntry {
                ppn: 0x12_3456,
                w: false,
                r: true,
                is_2m: true
            })
        );
    }
}
