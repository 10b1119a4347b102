//! The RTL's cover points as the model counts them (docs/socket.md,
//! "Coverage"): every SystemVerilog `cover` statement of the build,
//! verilated with `--coverage-user`, counts the cycles its condition held
//! into the model's own counters. `crate::coverage` gives them their cover
//! groups and bins.

use super::ffi;
use super::model::Model;
use std::ffi::CStr;
use std::sync::OnceLock;

/// One `cover property` of the build.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoverPoint {
    /// Instance path from the top, e.g.
    /// `shootdown_top.u_iommu.u_cmdq.CmdIofenceOut2_C`.
    pub hier: String,
    /// The statement's label, e.g. `CmdIofenceOut2_C`.
    pub name: String,
    /// The source file as it was verilated (an absolute path).
    pub file: String,
    pub line: u32,
}

fn string(p: *const std::ffi::c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: the shim's strings are static and NUL-terminated.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// Every cover point of this build, in the order of [`Model::cover_counts`]
/// (empty: the RTL has none). The same for every model; read once.
pub fn cover_points() -> &'static [CoverPoint] {
    static POINTS: OnceLock<Vec<CoverPoint>> = OnceLock::new();
    POINTS.get_or_init(|| {
        // SAFETY: no preconditions; a constant.
        let n = unsafe { ffi::sd_cover_len() };
        (0..n)
            .filter_map(|i| {
                let mut info = ffi::SdCoverInfo {
                    hier: std::ptr::null(),
                    name: std::ptr::null(),
                    file: std::ptr::null(),
                    line: 0,
                };
                // SAFETY: `info` is a valid, writable SdCoverInfo.
                (unsafe { ffi::sd_cover_info(i, &mut info) } == 0).then(|| CoverPoint {
                    hier: string(info.hier),
                    name: string(info.name),
                    file: string(info.file),
                    line: info.line,
                })
            })
            .collect()
    })
}

impl Model {
    /// How many cycles each cover point's property held since the model was
    /// made (or [`Model::cover_zero`]), in [`cover_points`] order.
    pub fn cover_counts(&self) -> Vec<u64> {
        let mut counts = vec![0u64; cover_points().len()];
        // SAFETY: `raw` is a live model owned by `self`; `counts` is
        // writable for its length, and the shim writes at most that many.
        unsafe {
            ffi::sd_cover_counts(self.raw.as_ptr(), counts.as_mut_ptr(), counts.len() as u32)
        };
        counts
    }

    /// Zero every cover point's count.
    pub fn cover_zero(&mut self) {
        // SAFETY: `raw` is a live model owned by `self`.
        unsafe { ffi::sd_cover_zero(self.raw.as_ptr()) };
    }
}
