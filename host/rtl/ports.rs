//! The port structs of the socket (docs/socket.md) and the encodings that
//! cross it: command-queue commands, page-request queue records and probe
//! words. The encodings mirror `rtl/shootdown_pkg.sv`.

pub use super::ffi::{
    SdIn as PortsIn, SdOut as PortsOut, SdProbeIn as ProbeIn, SdProbeOut as ProbeOut, NUM_PROBES,
};

/// Command opcode (dword0 bits 6:0): IOTINVAL.
pub const OP_IOTINVAL: u64 = 1;
/// Command opcode: IOFENCE.
pub const OP_IOFENCE: u64 = 2;
/// Command opcode: ATS.
pub const OP_ATS: u64 = 4;
/// func3 (dword0 bits 9:7) of ATS.PRGR (opcode [`OP_ATS`]): a PCIe PRG
/// Response. IOTINVAL.VMA, IOFENCE.C and ATS.INVAL have func3 0.
pub const FUNC3_ATS_PRGR: u64 = 1;
/// dword0 bit of func3's lowest bit.
pub const CMD_FUNC3_SHIFT: u32 = 7;
/// dword1 bits 15:12 of ATS.PRGR: the PRG Response code.
pub const PRGR_CODE_SHIFT: u32 = 12;
/// PRG Response code: Success (the device asks for the translation again).
pub const PRG_SUCCESS: u8 = 0;
/// PRG Response code: Invalid Request (the access ends with a fault).
pub const PRG_INVALID: u8 = 1;
/// PRG Response code: Response Failure (the access ends with a fault).
pub const PRG_FAILURE: u8 = 0xf;
/// Bytes of one page-request queue record.
pub const PQ_RECORD_BYTES: u64 = 16;
/// Page-request record dword0 bit 8: L (last request of its group; always 1).
pub const PQ_L: u64 = 1 << 8;
/// Page-request record dword0 bit 9: R (read access requested; always 1).
pub const PQ_R: u64 = 1 << 9;
/// Page-request record dword0 bit 10: W (write access requested).
pub const PQ_W: u64 = 1 << 10;
/// Page-request record dword0 bit 11: PV (the PASID is valid; always 1).
pub const PQ_PV: u64 = 1 << 11;
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
/// 2 MiB or 1 GiB entry invalidates that entry. PASIDs are truncated to 20
/// bits.
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

/// IOTINVAL.VMA, range form: invalidate every IOTLB entry of `pasid`
/// (4 KiB, 2 MiB or 1 GiB) that overlaps `[base, base + size_bytes)`.
///
/// Like [`cmd_ats_inval`], the command names a naturally aligned
/// power-of-two range of at least 4 KiB, in the same encoding (dword1 bit 11
/// is S; S=0: the 4 KiB page of the address; S=1: 2^(13+t) bytes, t the
/// number of one bits of the address from bit 12 up), so the command covers
/// the smallest such range holding the given one. This is how VT-d's
/// PASID-IOTLB address mask (AM) and AMD's INVALIDATE_IOMMU_PAGES S bit name
/// several pages in one command. A size of 0 counts as 1 byte.
pub fn cmd_iotinval_range(pasid: u32, base: u64, size_bytes: u64) -> [u64; 2] {
    let dw1 = cmd_ats_inval(pasid, base, size_bytes)[1];
    [OP_IOTINVAL | pasid_field(pasid) | CMD_AV, dw1]
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
    let [dw0, dw1] = cmd_ats_inval_no_pasid(va_base, size_bytes);
    [dw0 | pasid_field(pasid), dw1]
}

/// ATS.INVAL without a PASID (PV clear): a PCIe Invalidate Request with no
/// PASID prefix, which drops the range's translations of every PASID
/// (PCIe ATS; the bundled ATC does). Intel's `cache_tag_flush_all` sends
/// its device-TLB invalidation so from 6.10 to 6.16.
pub fn cmd_ats_inval_no_pasid(va_base: u64, size_bytes: u64) -> [u64; 2] {
    let dw0 = OP_ATS;
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

/// Decode the range of an IOTINVAL.VMA dword1 (AV=1): the same encoding as
/// ATS.INVAL, see [`ats_inval_range`].
pub fn iotinval_range(dw1: u64) -> (u64, u32) {
    ats_inval_range(dw1)
}

/// ATS.PRGR: a PCIe PRG Response for the Page Request group `prgi` of
/// `pasid` (PV set) with response `code` ([`PRG_SUCCESS`], [`PRG_INVALID`],
/// [`PRG_FAILURE`]; 4 bits). The IOMMU sends it down the ATS link in
/// command order; it takes no ITag and no IOFENCE.C waits for it.
pub fn cmd_ats_prgr(pasid: u32, prgi: u8, code: u8) -> [u64; 2] {
    let dw0 = OP_ATS | (FUNC3_ATS_PRGR << CMD_FUNC3_SHIFT) | pasid_field(pasid);
    let dw1 = u64::from(prgi) | (u64::from(code & 0xf) << PRGR_CODE_SHIFT);
    [dw0, dw1]
}

/// A PCIe Page Request as the IOMMU wrote it into the page-request queue
/// (one 16-byte record, docs/socket.md "Page Request Interface").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PageRequest {
    /// PRG Index: the device's request id.
    pub prgi: u8,
    pub pasid: u32,
    /// The page's address (4 KiB aligned).
    pub va: u64,
    /// Write access requested (read access always is).
    pub write: bool,
}

/// Decode a page-request queue record from its two words (dword0 at the
/// lower address): dword0 [7:0] PRGI, [8] L, [9] R, [10] W, [11] PV,
/// [31:12] PASID, [63:32] 0; dword1 the page address. None for a record the
/// bundled IOMMU never writes: L, R or PV clear, bits 63:32 of dword0 or
/// 11:0 of dword1 set.
pub fn decode_page_request(dw0: u64, dw1: u64) -> Option<PageRequest> {
    let must = PQ_L | PQ_R | PQ_PV;
    if dw0 & must != must || dw0 >> 32 != 0 || dw1 & PAGE_MASK != 0 {
        return None;
    }
    Some(PageRequest {
        prgi: dw0 as u8,
        pasid: ((dw0 >> CMD_PASID_SHIFT) as u32) & PASID_MASK,
        va: dw1,
        write: dw0 & PQ_W != 0,
    })
}

/// The two words of the page-request record of `r` (what the IOMMU writes).
pub fn page_request_record(r: &PageRequest) -> [u64; 2] {
    let dw0 = u64::from(r.prgi)
        | PQ_L
        | PQ_R
        | PQ_PV
        | if r.write { PQ_W } else { 0 }
        | (u64::from(r.pasid & PASID_MASK) << CMD_PASID_SHIFT);
    [dw0, r.va & !PAGE_MASK]
}

/// One command of the queue, decoded (for tests and traces).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// IOTINVAL.VMA; `pasid` None: every PASID; `range` None: every
    /// address, else (base VA, log2 of the size in bytes).
    IotinvalVma {
        pasid: Option<u32>,
        range: Option<(u64, u32)>,
    },
    /// ATS.INVAL of (base VA, log2 of the size in bytes); `pasid` None: PV
    /// clear, every PASID's translations.
    AtsInval {
        pasid: Option<u32>,
        range: (u64, u32),
    },
    /// IOFENCE.C; `addr` None: no completion write.
    IofenceC { addr: Option<u64>, data: u32 },
    /// ATS.PRGR: a PRG Response (`pasid` None: PV clear).
    AtsPrgr {
        pasid: Option<u32>,
        prgi: u8,
        code: u8,
    },
    /// Anything else (the RTL flags it as an illegal command).
    Other([u64; 2]),
}

/// Decode a command as the RTL executes it.
pub fn decode_command(c: [u64; 2]) -> Command {
    let [dw0, dw1] = c;
    let pasid = ((dw0 >> CMD_PASID_SHIFT) as u32) & PASID_MASK;
    let pv = dw0 & CMD_PV != 0;
    let av = dw0 & CMD_AV != 0;
    let func3 = (dw0 >> CMD_FUNC3_SHIFT) & 7;
    if dw0 & 0x7f == OP_ATS && func3 == FUNC3_ATS_PRGR {
        return Command::AtsPrgr {
            pasid: pv.then_some(pasid),
            prgi: dw1 as u8,
            code: ((dw1 >> PRGR_CODE_SHIFT) & 0xf) as u8,
        };
    }
    if func3 != 0 {
        return Command::Other(c);
    }
    match dw0 & 0x7f {
        OP_IOTINVAL => Command::IotinvalVma {
            pasid: pv.then_some(pasid),
            range: av.then(|| iotinval_range(dw1)),
        },
        OP_ATS => Command::AtsInval {
            pasid: pv.then_some(pasid),
            range: ats_inval_range(dw1),
        },
        OP_IOFENCE => Command::IofenceC {
            addr: av.then_some(dw1 & !7),
            data: (dw0 >> CMD_DATA_SHIFT) as u32,
        },
        _ => Command::Other(c),
    }
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

/// `cq_err_o` bit 0: illegal command (the head stays on it).
pub const CQ_ERR_ILL: u8 = 1 << 0;
/// `cq_err_o` bit 1 (`cmd_to`, RISC-V cqcsr.cmd_to): an ATS invalidation
/// timed out; an IOFENCE.C does not complete until software clears it.
pub const CQ_ERR_CMD_TO: u8 = 1 << 1;

/// Bug injection (`cfg_inject_i`, docs/socket.md "Bug injection"): each
/// constant is one bit, mirroring the `Inj*` bit numbers of
/// `rtl/shootdown_pkg.sv`. 0 is the correct design.
pub struct Inject;

impl Inject {
    /// The device sends the Invalidate Completion without waiting for the
    /// in-flight access that used an invalidated translation.
    pub const EARLY_INV_CPL: u16 = 1 << 0;
    /// IOFENCE.C completes without waiting for earlier ATS.INVALs.
    pub const EARLY_FENCE: u16 = 1 << 1;
    /// A 4 KiB invalidation does not drop a 2 MiB or 1 GiB entry containing it
    /// (IOTLB and ATC).
    pub const INV_MISSES_2M: u16 = 1 << 2;
    /// Invalidation matching compares against PASID 0 instead of the
    /// command's PASID (IOTLB and ATC).
    pub const INV_WRONG_PASID: u16 = 1 << 3;
    /// The device installs a Translation Completion that an Invalidate
    /// Request overtook instead of discarding it and asking again.
    pub const CACHE_RACING_CPL: u16 = 1 << 4;
    /// IOTINVAL.VMA leaves the walker's paging-structure cache alone.
    pub const PSC_NOT_INVALIDATED: u16 = 1 << 5;
    /// The device never sends Invalidate Completions (it still drops its ATC
    /// entries); only the ATS invalidation timeout lets a fence finish.
    pub const DROP_INV_CPL: u16 = 1 << 6;
    /// IOFENCE.C waits for the first ATS.INVAL since the previous fence
    /// only, not for every busy ITag: visible only with two or more
    /// outstanding before one fence.
    pub const FENCE_ONE_ITAG: u16 = 1 << 7;
    /// The request server answers a write request (NW=0) that hits an
    /// IOTLB entry without W from that entry (a completion without W)
    /// instead of walking again.
    pub const WRITE_HITS_RO: u16 = 1 << 8;
    /// ATS.PRGR retires without sending its PRG Response.
    pub const PRGR_DROPPED: u16 = 1 << 9;
    /// The IOTLB's lookup for a Translation Request matches an entry of
    /// any PASID: another process's translation of the same address.
    pub const LOOKUP_ANY_PASID: u16 = 1 << 10;
}

/// Every injectable bug: (name, bit mask, one-line description).
pub const INJECT_NAMES: &[(&str, u16, &str)] = &[
    (
        "early-inv-cpl",
        Inject::EARLY_INV_CPL,
        "device sends the Invalidate Completion before in-flight accesses using the old translation finish",
    ),
    (
        "early-fence",
        Inject::EARLY_FENCE,
        "IOFENCE.C completes without waiting for earlier ATS.INVALs",
    ),
    (
        "inv-misses-2m",
        Inject::INV_MISSES_2M,
        "a 4 KiB invalidation does not drop a 2 MiB or 1 GiB IOTLB/ATC entry containing it",
    ),
    (
        "inv-wrong-pasid",
        Inject::INV_WRONG_PASID,
        "invalidations match IOTLB/ATC entries against PASID 0 instead of the command's PASID",
    ),
    (
        "cache-racing-cpl",
        Inject::CACHE_RACING_CPL,
        "device installs a Translation Completion that an Invalidate Request overtook",
    ),
    (
        "psc-not-invalidated",
        Inject::PSC_NOT_INVALIDATED,
        "IOTINVAL.VMA leaves the walker's paging-structure cache (PD table pointers) alone",
    ),
    (
        "drop-inv-cpl",
        Inject::DROP_INV_CPL,
        "device never sends Invalidate Completions (fences finish only through the ATS timeout)",
    ),
    (
        "fence-one-itag",
        Inject::FENCE_ONE_ITAG,
        "IOFENCE.C waits for the first of several outstanding ATS.INVALs before it only",
    ),
    (
        "write-hits-ro",
        Inject::WRITE_HITS_RO,
        "IOMMU answers a write that hits a read-only IOTLB entry without W instead of walking again",
    ),
    (
        "prgr-dropped",
        Inject::PRGR_DROPPED,
        "ATS.PRGR retires without sending its PRG Response: the device waits for it forever",
    ),
    (
        "lookup-any-pasid",
        Inject::LOOKUP_ANY_PASID,
        "the IOTLB answers a Translation Request from an entry of any PASID with that page (another process's translation)",
    ),
];

/// The `cfg_inject_i` word for the named bugs (see [`INJECT_NAMES`]); an
/// empty list is 0, the correct design. A name may repeat.
pub fn inject_bits(names: &[&str]) -> Result<u16, String> {
    let mut bits = 0;
    for name in names {
        match INJECT_NAMES.iter().find(|(n, _, _)| n == name) {
            Some((_, b, _)) => bits |= b,
            None => {
                let valid: Vec<&str> = INJECT_NAMES.iter().map(|(n, _, _)| *n).collect();
                return Err(format!(
                    "unknown injected bug '{}': valid names are {}",
                    name.escape_debug(),
                    valid.join(", ")
                ));
            }
        }
    }
    Ok(bits)
}

/// What a probe word says a cache holds for the probed page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProbeEntry {
    /// PPN of the probed 4 KiB page (for a 2 MiB entry: its base plus VPN
    /// bits 8:0; for a 1 GiB entry: its base plus VPN bits 17:0).
    pub ppn: u64,
    pub w: bool,
    pub r: bool,
    /// The entry is a 2 MiB entry.
    pub is_2m: bool,
    /// The entry is a 1 GiB entry.
    pub is_1g: bool,
}

/// Decode a probe word (bit 63 valid, 62 W, 61 R, 60 2 MiB, 59 1 GiB,
/// 39:0 PPN).
pub fn decode_probe(word: u64) -> Option<ProbeEntry> {
    if word >> 63 == 0 {
        return None;
    }
    Some(ProbeEntry {
        ppn: word & ((1 << 40) - 1),
        w: word & (1 << 62) != 0,
        r: word & (1 << 61) != 0,
        is_2m: word & (1 << 60) != 0,
        is_1g: word & (1 << 59) != 0,
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
    fn iotinval_range_fields() {
        // one page: S=0, the same dword1 as the single-address form
        let c = cmd_iotinval_range(5, 0x7f00_0000_3000, 4096);
        assert_eq!(c, cmd_iotinval_vma(Some(5), Some(0x7f00_0000_3000)));
        assert_eq!(
            decode_command(c),
            Command::IotinvalVma {
                pasid: Some(5),
                range: Some((0x7f00_0000_3000, 12))
            }
        );
        // 16 KiB at 0x...0000: S=1, bit 12 one, bit 13 zero
        let [d0, d1] = cmd_iotinval_range(5, 0x7f00_0000_0000, 0x4000);
        assert_eq!(d0 & 0x7f, OP_IOTINVAL);
        assert_ne!(d0 & CMD_AV, 0);
        assert_eq!(d1, 0x7f00_0000_1000 | ATS_S);
        assert_eq!(iotinval_range(d1), (0x7f00_0000_0000, 14));
        // an unaligned 3-page range grows to the 32 KiB block holding it
        let d1 = cmd_iotinval_range(5, 0x7f00_0000_3000, 0x3000)[1];
        assert_eq!(iotinval_range(d1), (0x7f00_0000_0000, 15));
        // 2 MiB
        let d1 = cmd_iotinval_range(5, 0x40_0000, 2 << 20)[1];
        assert_eq!(iotinval_range(d1), (0x40_0000, 21));
        assert_eq!(
            decode_command(cmd_iotinval_vma(None, None)),
            Command::IotinvalVma {
                pasid: None,
                range: None
            }
        );
        assert_eq!(
            decode_command(cmd_iofence_c(Some(0x8008), 9)),
            Command::IofenceC {
                addr: Some(0x8008),
                data: 9
            }
        );
        assert_eq!(
            decode_command(cmd_ats_inval(3, 0x2000, 0x2000)),
            Command::AtsInval {
                pasid: Some(3),
                range: (0x2000, 13)
            }
        );
        // PV clear: every PASID, the same range encoding
        assert_eq!(
            decode_command(cmd_ats_inval_no_pasid(0x2000, 0x2000)),
            Command::AtsInval {
                pasid: None,
                range: (0x2000, 13)
            }
        );
        assert_eq!(
            cmd_ats_inval_no_pasid(0, u64::MAX)[1],
            cmd_ats_inval(3, 0, u64::MAX)[1]
        );
        assert!(matches!(decode_command([0x7f, 0]), Command::Other(_)));
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
    fn inject_names_parse() {
        assert_eq!(inject_bits(&[]), Ok(0));
        assert_eq!(inject_bits(&["early-fence"]), Ok(Inject::EARLY_FENCE));
        assert_eq!(
            inject_bits(&["inv-misses-2m", "cache-racing-cpl", "inv-misses-2m"]),
            Ok(Inject::INV_MISSES_2M | Inject::CACHE_RACING_CPL)
        );
        let e = inject_bits(&["early-fence", "nope"]).unwrap_err();
        assert!(e.contains("'nope'"), "{e}");
        for (n, b, d) in INJECT_NAMES {
            assert!(e.contains(n), "{e}");
            assert_eq!(b.count_ones(), 1, "{n}");
            assert!(!d.is_empty());
        }
        assert_eq!(inject_bits(&["psc-not-invalidated"]), Ok(1 << 5));
        assert_eq!(inject_bits(&["drop-inv-cpl"]), Ok(1 << 6));
        assert_eq!(inject_bits(&["fence-one-itag"]), Ok(1 << 7));
        assert_eq!(inject_bits(&["write-hits-ro"]), Ok(1 << 8));
        assert_eq!(inject_bits(&["prgr-dropped"]), Ok(1 << 9));
        assert_eq!(inject_bits(&["lookup-any-pasid"]), Ok(1 << 10));
        // bits 0..10, each once
        let all = INJECT_NAMES.iter().fold(0, |a, (_, b, _)| a | b);
        assert_eq!(all, 0x7ff);
        assert_eq!(INJECT_NAMES.len(), 11);
    }

    #[test]
    fn ats_prgr_fields() {
        let [d0, d1] = cmd_ats_prgr(0x12345, 0xa7, PRG_FAILURE);
        assert_eq!(d0 & 0x7f, OP_ATS);
        assert_eq!((d0 >> 7) & 7, 1, "func3 1: ATS.PRGR");
        assert_ne!(d0 & CMD_PV, 0);
        assert_eq!((d0 >> 12) & 0xfffff, 0x12345);
        assert_eq!(d0 >> 32, 0);
        assert_eq!(d1, 0xf0a7, "PRGI in 7:0, the code in 15:12");
        assert_eq!(cmd_ats_prgr(1, 3, PRG_SUCCESS)[1], 3);
        assert_eq!(cmd_ats_prgr(1, 3, PRG_INVALID)[1], 0x1003);
        // the code is 4 bits
        assert_eq!(cmd_ats_prgr(1, 3, 0x31)[1], 0x1003);
        assert_eq!(
            decode_command(cmd_ats_prgr(9, 200, PRG_INVALID)),
            Command::AtsPrgr {
                pasid: Some(9),
                prgi: 200,
                code: PRG_INVALID
            }
        );
        assert_eq!(
            decode_command([OP_ATS | (1 << 7), 0xf005]),
            Command::AtsPrgr {
                pasid: None,
                prgi: 5,
                code: PRG_FAILURE
            }
        );
        // ATS with another func3 stays illegal, as does func3 1 of another opcode
        assert!(matches!(
            decode_command([OP_ATS | (2 << 7), 0]),
            Command::Other(_)
        ));
        assert!(matches!(
            decode_command([OP_IOFENCE | (1 << 7), 0]),
            Command::Other(_)
        ));
    }

    #[test]
    fn page_request_records() {
        // as the RTL writes one: PRGI 0x42, L, R, W, PV, PASID 0x9_8765
        let dw0 = 0x42 | (1 << 8) | (1 << 9) | (1 << 10) | (1 << 11) | (0x9_8765 << 12);
        let r = decode_page_request(dw0, 0x7f12_3456_7000).unwrap();
        assert_eq!(
            r,
            PageRequest {
                prgi: 0x42,
                pasid: 0x9_8765,
                va: 0x7f12_3456_7000,
                write: true
            }
        );
        assert_eq!(page_request_record(&r), [dw0, 0x7f12_3456_7000]);
        let read = PageRequest { write: false, ..r };
        let [d0, d1] = page_request_record(&read);
        assert_eq!(d0 & PQ_W, 0);
        assert_eq!(decode_page_request(d0, d1), Some(read));
        // not a record: zero (never written), L/R/PV clear, stray bits
        assert_eq!(decode_page_request(0, 0), None);
        assert_eq!(decode_page_request(dw0 & !PQ_L, 0x7000), None);
        assert_eq!(decode_page_request(dw0 & !PQ_R, 0x7000), None);
        assert_eq!(decode_page_request(dw0 & !PQ_PV, 0x7000), None);
        assert_eq!(decode_page_request(dw0 | (1 << 40), 0x7000), None);
        assert_eq!(decode_page_request(dw0, 0x7008), None);
        assert_eq!(PQ_RECORD_BYTES, 16);
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
                is_2m: true,
                is_1g: false
            })
        );
        let w = (1 << 63) | (1 << 62) | (1 << 61) | (1 << 59) | 0x4_0003_1234;
        assert_eq!(
            decode_probe(w),
            Some(ProbeEntry {
                ppn: 0x4_0003_1234,
                w: true,
                r: true,
                is_2m: false,
                is_1g: true
            })
        );
    }
}
