//! The second socket's Verilated model (`socket-riscv/shootdown_rv_top.sv`
//! around a RISC-V IOMMU specification design, docs/socket-riscv.md) behind
//! a safe handle, and the C ABI of `ffi/rv_shim.cpp` it uses.
//!
//! One clock cycle is [`RvModel::settle`] (the host's inputs applied with
//! the clock low, the outputs they settle to returned: an AXI ready may
//! follow the other side's valid within the cycle) then [`RvModel::edge`]
//! (the rising edge, at which every handshake seen in the settled signals
//! takes place). The library is the first model's (`host/rtl/ffi.rs` names
//! it); a build without a design holds a shim that reports none.

use std::ffi::{c_char, c_int, CString};
use std::marker::{PhantomData, PhantomPinned};
use std::mem::size_of;
use std::path::Path;
use std::ptr::NonNull;
use thiserror::Error;

/// An AXI4 port's manager-driven signals: AW, W, AR, and the B and R
/// readies. Identical to `SdAxiM` in `ffi/rv_shim.h`; valids and flags are
/// 0 or 1.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AxiM {
    pub awaddr: u64,
    pub wdata: u64,
    pub araddr: u64,
    pub awid: u8,
    pub awlen: u8,
    pub awsize: u8,
    pub awburst: u8,
    pub awprot: u8,
    pub awvalid: u8,
    pub wstrb: u8,
    pub wlast: u8,
    pub wvalid: u8,
    pub bready: u8,
    pub arid: u8,
    pub arlen: u8,
    pub arsize: u8,
    pub arburst: u8,
    pub arprot: u8,
    pub arvalid: u8,
    pub rready: u8,
    pub pad: [u8; 7],
}

/// An AXI4 port's subordinate-driven signals: the AW, W and AR readies, B
/// and R. Identical to `SdAxiS` in `ffi/rv_shim.h`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AxiS {
    pub rdata: u64,
    pub awready: u8,
    pub wready: u8,
    pub bid: u8,
    pub bresp: u8,
    pub bvalid: u8,
    pub arready: u8,
    pub rid: u8,
    pub rresp: u8,
    pub rlast: u8,
    pub rvalid: u8,
    pub pad: [u8; 6],
}

/// Every input of `shootdown_rv_top` but `clk_i`. Identical to `SdRvIn`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RvIn {
    /// Register programming (the IOMMU is the subordinate).
    pub reg: AxiM,
    /// The host's memory answering the IOMMU's own accesses.
    pub mem: AxiS,
    /// The device's untranslated requests.
    pub tr: AxiM,
    /// The host's memory answering translated requests.
    pub tx: AxiS,
    /// Device ID (24 bits) and process ID (20 bits) of the AW request.
    pub tr_awsid: u32,
    pub tr_awssid: u32,
    /// The same for the AR request.
    pub tr_arsid: u32,
    pub tr_arssid: u32,
    /// `rst_ni`: 0 holds the design in reset.
    pub rst_n: u8,
    pub tr_awssidv: u8,
    pub tr_arssidv: u8,
    pub pad: [u8; 5],
    /// `probeN_vpn_i` (27 bits: an Sv39 VPN) and `probeN_pscid_i` (20 bits).
    pub probe_vpn: [u64; 4],
    pub probe_pscid: [u32; 4],
    /// `probe_did_i` and `probe_pid_i`: the process-directory cache's
    /// entry to show in [`RvOut::probe_pdtc`].
    pub probe_did: u32,
    pub probe_pid: u32,
}

/// Every output of `shootdown_rv_top`. Identical to `SdRvOut`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RvOut {
    pub reg: AxiS,
    pub mem: AxiM,
    pub tr: AxiS,
    pub tx: AxiM,
    /// `wsi_o`: the wired interrupts.
    pub wsi: u8,
    pub pad: [u8; 7],
    /// `probeN_iotlb_o`: what the IOTLB holds for probe N's PSCID and VPN
    /// (the first socket's probe word, [`crate::rtl::decode_probe`]).
    pub probe_iotlb: [u64; 4],
    /// `probe_pdtc_o`: the process context the process-directory cache
    /// holds for the probe's device and process IDs ([`PdtcProbe`]).
    pub probe_pdtc: u64,
    /// `probe_ddtc_o`: the device context the device-directory cache holds
    /// for the probe's device ID ([`DdtcProbe`]).
    pub probe_ddtc: u64,
}

/// The process-directory cache's entry as `probe_pdtc_o` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PdtcProbe {
    pub pscid: u32,
    /// The context's first-stage root (`fsc.PPN`).
    pub root: u64,
}

/// The device-directory cache's entry as `probe_ddtc_o` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DdtcProbe {
    /// The cached context's `tc.V`.
    pub valid_context: bool,
    /// Its `fsc.PPN`: the process directory's root (or the first-stage
    /// root without one).
    pub root: u64,
}

impl DdtcProbe {
    /// Decode a `probe_ddtc_o` word: `None` when bit 63 (valid) is clear.
    pub fn decode(word: u64) -> Option<DdtcProbe> {
        (word >> 63 == 1).then_some(DdtcProbe {
            valid_context: (word >> 62) & 1 == 1,
            root: word & ((1 << 40) - 1),
        })
    }
}

impl PdtcProbe {
    /// Decode a `probe_pdtc_o` word: `None` when bit 63 (valid) is clear.
    pub fn decode(word: u64) -> Option<PdtcProbe> {
        (word >> 63 == 1).then_some(PdtcProbe {
            pscid: ((word >> 40) & 0xf_ffff) as u32,
            root: word & ((1 << 40) - 1),
        })
    }
}

#[repr(C)]
pub struct SdRvModel {
    _data: [u8; 0],
    _marker: PhantomData<(*mut u8, PhantomPinned)>,
}

extern "C" {
    fn sd_rv_present() -> c_int;
    fn sd_rv_new() -> *mut SdRvModel;
    fn sd_rv_free(m: *mut SdRvModel);
    fn sd_rv_settle(m: *mut SdRvModel, inp: *const RvIn, out: *mut RvOut);
    fn sd_rv_edge(m: *mut SdRvModel);
    fn sd_rv_cycle(m: *const SdRvModel) -> u64;
    fn sd_rv_trace_open(m: *mut SdRvModel, path: *const c_char) -> c_int;
    fn sd_rv_trace_close(m: *mut SdRvModel);
    fn sd_rv_got_error(m: *const SdRvModel) -> c_int;
    fn sd_rv_state_digest(m: *const SdRvModel, out: *mut u64) -> c_int;
    fn sd_rv_in_size() -> u64;
    fn sd_rv_out_size() -> u64;
}

/// Why the second socket's model cannot be had.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum RvModelError {
    #[error(
        "[rtl-riscv] this build has no RISC-V IOMMU design in its socket: rebuild with \
         SHOOTDOWN_RTL_RISCV=<a clone of https://github.com/zero-day-labs/riscv-iommu at 18ad30a> \
         (or with ../shared/thirdparty/riscv-iommu beside the repository)"
    )]
    Absent,
    #[error("[rtl-riscv] cannot allocate the Verilated model")]
    Alloc,
    #[error("[rtl-riscv] port struct sizes differ: Rust {rust_in}/{rust_out} bytes, C {c_in}/{c_out} bytes (a stale build)")]
    Abi {
        rust_in: usize,
        rust_out: usize,
        c_in: u64,
        c_out: u64,
    },
    #[error("[rtl-riscv] cannot open the trace file {0}")]
    TraceOpen(String),
}

/// Whether this build has a design in the second socket.
pub fn present() -> bool {
    // SAFETY: no preconditions; returns a constant.
    unsafe { sd_rv_present() != 0 }
}

/// The Verilated `shootdown_rv_top`, clock low, reset asserted.
pub struct RvModel {
    raw: NonNull<SdRvModel>,
}

// SAFETY: plain C++ state owned by this handle; the shim makes the model's
// context the calling thread's before every eval, and `&mut self` keeps it
// to one thread at a time.
unsafe impl Send for RvModel {}

impl RvModel {
    /// A new model, or why not.
    pub fn new() -> Result<RvModel, RvModelError> {
        // SAFETY: no preconditions; they return constants.
        let (c_in, c_out) = unsafe { (sd_rv_in_size(), sd_rv_out_size()) };
        let (rust_in, rust_out) = (size_of::<RvIn>(), size_of::<RvOut>());
        if c_in != rust_in as u64 || c_out != rust_out as u64 {
            return Err(RvModelError::Abi {
                rust_in,
                rust_out,
                c_in,
                c_out,
            });
        }
        if !present() {
            return Err(RvModelError::Absent);
        }
        // SAFETY: no preconditions; an owned model or null.
        let raw = NonNull::new(unsafe { sd_rv_new() }).ok_or(RvModelError::Alloc)?;
        Ok(RvModel { raw })
    }

    /// Apply `inp` with the clock low; the outputs it settles to.
    #[inline]
    pub fn settle(&mut self, inp: &RvIn) -> RvOut {
        let mut out = RvOut::default();
        // SAFETY: `raw` is live and owned; both pointers are to valid
        // structs of the sizes checked in `new`.
        unsafe { sd_rv_settle(self.raw.as_ptr(), inp, &mut out) };
        out
    }

    /// The rising edge.
    #[inline]
    pub fn edge(&mut self) {
        // SAFETY: `raw` is live and owned.
        unsafe { sd_rv_edge(self.raw.as_ptr()) }
    }

    /// Rising edges so far.
    pub fn cycle(&self) -> u64 {
        // SAFETY: `raw` is live.
        unsafe { sd_rv_cycle(self.raw.as_ptr()) }
    }

    /// Whether `$error`, `$fatal` or `$stop` ran in the design.
    pub fn got_error(&self) -> bool {
        // SAFETY: `raw` is live.
        unsafe { sd_rv_got_error(self.raw.as_ptr()) != 0 }
    }

    /// A digest of the design's whole state (ffi/sd_digest.h), comparable
    /// within this process; None when the build cannot digest it.
    pub fn state_digest(&self) -> Option<[u64; 2]> {
        let mut out = [0u64; 2];
        // SAFETY: `raw` is live; `out` has the two words the shim writes.
        let r = unsafe { sd_rv_state_digest(self.raw.as_ptr(), out.as_mut_ptr()) };
        (r == 0).then_some(out)
    }

    /// Dump every signal of the design into a VCD file at `path`: rising
    /// edge `c` at `c * 1000` ps, the settled inputs half a cycle before.
    pub fn trace_open(&mut self, path: &Path) -> Result<(), RvModelError> {
        let text = path.display().to_string();
        let c = CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| RvModelError::TraceOpen(text.clone()))?;
        // SAFETY: `raw` is live; `c` is NUL-terminated and outlives the call.
        match unsafe { sd_rv_trace_open(self.raw.as_ptr(), c.as_ptr()) } {
            0 => Ok(()),
            _ => Err(RvModelError::TraceOpen(text)),
        }
    }

    /// Flush and close the trace, if open.
    pub fn trace_close(&mut self) {
        // SAFETY: `raw` is live.
        unsafe { sd_rv_trace_close(self.raw.as_ptr()) }
    }
}

impl Drop for RvModel {
    fn drop(&mut self) {
        // SAFETY: `raw` is owned and not used after this.
        unsafe { sd_rv_free(self.raw.as_ptr()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_structs_have_the_shims_sizes() {
        assert_eq!(size_of::<AxiM>(), 48);
        assert_eq!(size_of::<AxiS>(), 24);
        assert_eq!(size_of::<RvIn>(), 224);
        assert_eq!(size_of::<RvOut>(), 200);
        assert_eq!(std::mem::offset_of!(RvIn, rst_n), 160);
        assert_eq!(std::mem::offset_of!(RvIn, probe_pscid), 200);
        assert_eq!(std::mem::offset_of!(RvOut, probe_iotlb), 152);
        assert_eq!(std::mem::offset_of!(RvIn, probe_did), 216);
        assert_eq!(std::mem::offset_of!(RvOut, probe_pdtc), 184);
        assert_eq!(std::mem::offset_of!(RvOut, probe_ddtc), 192);
    }

    #[test]
    fn a_ddtc_probe_word_decodes() {
        assert_eq!(DdtcProbe::decode(1 << 62), None);
        assert_eq!(
            DdtcProbe::decode(3 << 62 | 0x77),
            Some(DdtcProbe {
                valid_context: true,
                root: 0x77
            })
        );
    }

    #[test]
    fn a_pdtc_probe_word_decodes() {
        assert_eq!(PdtcProbe::decode(0x7fff_ffff_ffff_ffff), None);
        assert_eq!(
            PdtcProbe::decode(1 << 63 | 0x21 << 40 | 0x1234),
            Some(PdtcProbe {
                pscid: 0x21,
                root: 0x1234
            })
        );
        // SAFETY: constants.
        unsafe {
            assert_eq!(sd_rv_in_size(), 224);
            assert_eq!(sd_rv_out_size(), 200);
        }
    }
}
