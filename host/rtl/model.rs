//! The Verilated model behind a safe handle: one [`Model::step`] is one
//! clock cycle and one FFI call.

use super::ffi;
use super::ports::{PortsIn, PortsOut};
use std::ffi::{c_char, c_int, CString};
use std::mem::size_of;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use thiserror::Error;

/// Errors of the RTL model.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum RtlError {
    /// An RTL assertion (or `$stop` / `$error`) fired; the model keeps
    /// running but its behaviour is no longer trustworthy.
    #[error("[rtl] assertion failed in cycle {cycle}: {message}")]
    Assertion { cycle: u64, message: String },
    /// The VCD file could not be created.
    #[error("[rtl] cannot open the trace file {}", .path.display())]
    TraceOpen { path: PathBuf },
    /// The path cannot be passed to C (it contains a NUL byte).
    #[error("[rtl] the trace path {} contains a NUL byte", .path.display())]
    TracePath { path: PathBuf },
    /// The C++ side could not allocate the model.
    #[error("[rtl] cannot allocate the Verilated model")]
    Alloc,
    /// The shim was compiled with port structs of other sizes than
    /// `host/rtl/ffi.rs` declares (a stale or foreign build).
    #[error(
        "[rtl] port struct sizes differ: Rust {rust_in}/{rust_out} bytes, C {c_in}/{c_out} bytes"
    )]
    Abi {
        rust_in: usize,
        rust_out: usize,
        c_in: u64,
        c_out: u64,
    },
}

/// The failed assertion's name in an RTL error message
/// (`... Assertion failed in TOP.shootdown_top.u_dev.Name_A: ...`).
pub fn assertion_name(msg: &str) -> Option<&str> {
    let at = msg.find("Assertion failed in ")? + "Assertion failed in ".len();
    let path = msg[at..].split([':', ' ']).next()?;
    path.rsplit('.').next().filter(|n| !n.is_empty())
}

/// The Verilated `shootdown_top` (docs/socket.md).
///
/// Every register starts at zero; hold `rst_ni` low for at least 4 cycles
/// ([`Model::reset`]) before use. Cycle `c` is the `c`-th rising edge; a VCD
/// opened with [`Model::trace_open`] has rising edge `c` at `c * 1000` ps,
/// one timestamp per cycle.
/// Dropping the model closes its trace file first.
pub struct Model {
    pub(super) raw: NonNull<ffi::SdModel>,
    out: PortsOut,
    tracing: bool,
}

// SAFETY: the model is plain C++ state owned by this handle; the shim makes
// the model's own VerilatedContext the calling thread's context at every
// step, and `&mut self` on every mutating call keeps it to one thread at a
// time. It is not `Sync`.
unsafe impl Send for Model {}

impl Model {
    /// A new model, not yet reset: call [`Model::reset`] first.
    ///
    /// # Panics
    /// If the C++ side cannot allocate the model (out of memory), like
    /// `Box::new`; use [`Model::try_new`] to get an error instead.
    pub fn new() -> Model {
        match Model::try_new() {
            Ok(m) => m,
            Err(e) => panic!("{e}"),
        }
    }

    /// A new model, or [`RtlError::Alloc`] / [`RtlError::Abi`].
    pub fn try_new() -> Result<Model, RtlError> {
        // SAFETY: no preconditions; they return constants.
        let (c_in, c_out) = unsafe { (ffi::sd_in_size(), ffi::sd_out_size()) };
        let (rust_in, rust_out) = (size_of::<PortsIn>(), size_of::<PortsOut>());
        if c_in != rust_in as u64 || c_out != rust_out as u64 {
            return Err(RtlError::Abi {
                rust_in,
                rust_out,
                c_in,
                c_out,
            });
        }
        // SAFETY: sd_new has no preconditions; it returns an owned model or null.
        let raw = unsafe { ffi::sd_new() };
        let raw = NonNull::new(raw).ok_or(RtlError::Alloc)?;
        Ok(Model {
            raw,
            out: PortsOut::default(),
            tracing: false,
        })
    }

    /// Hold `rst_ni` low for `cycles` cycles (at least 1) with every other
    /// input zero. The socket asks for at least 4.
    pub fn reset(&mut self, cycles: u64) {
        let inp = PortsIn {
            rst_ni: 0,
            ..PortsIn::default()
        };
        for _ in 0..cycles.max(1) {
            self.step(&inp);
        }
    }

    /// One clock cycle: apply `inp`, run the rising edge (which samples
    /// them), return the outputs after it.
    #[inline]
    pub fn step(&mut self, inp: &PortsIn) -> &PortsOut {
        // SAFETY: `raw` is a live model owned by `self` (freed only in Drop);
        // `inp` and `self.out` are valid, aligned #[repr(C)] structs with the
        // layout of SdIn / SdOut (checked at compile time on both sides), and
        // the shim keeps no pointer to either after returning.
        unsafe { ffi::sd_step(self.raw.as_ptr(), inp, &mut self.out) };
        &self.out
    }

    /// Up to `max` clock cycles (at least 1) with `inp` held, for a caller
    /// that would drive the same inputs in each of them and do nothing with
    /// outputs that ask nothing (no memory request, no device response):
    /// one [`Model::step`], then, when the model's whole state came out of
    /// it unchanged (a fixed point of the clock under `inp`), the other
    /// `max - 1` cycles are counted without evaluating: exactly what
    /// evaluating them would give. Never skips while tracing, after an
    /// error, or when the build found state it cannot compare
    /// ([`idle_skip_available`]). Returns the outputs and the cycles done.
    #[inline]
    pub fn step_idle(&mut self, inp: &PortsIn, max: u64) -> (&PortsOut, u64) {
        // SAFETY: as in `step`.
        let n = unsafe { ffi::sd_step_idle(self.raw.as_ptr(), inp, &mut self.out, max.max(1)) };
        (&self.out, n.max(1))
    }

    /// A digest of the model's whole state but its cover counters: equal
    /// for equal states of this model (in one process). None when the
    /// build found state on the heap (as for [`idle_skip_available`]).
    pub fn state_digest(&self) -> Option<[u64; 2]> {
        let mut out = [0u64; 2];
        // SAFETY: `raw` is a live model owned by `self`; `out` has two words.
        let r = unsafe { ffi::sd_state_digest(self.raw.as_ptr(), out.as_mut_ptr()) };
        (r == 0).then_some(out)
    }

    /// Check the RTL's SystemVerilog assertions (the default) or not. Off,
    /// a run goes on past a broken invariant, so the host's checker can show
    /// what the bug does to the kernel's data.
    pub fn set_assertions(&mut self, on: bool) {
        // SAFETY: `raw` is a live model owned by `self`.
        unsafe { ffi::sd_set_assertions(self.raw.as_ptr(), c_int::from(on)) };
    }

    /// The outputs of the last step.
    pub fn outputs(&self) -> &PortsOut {
        &self.out
    }

    /// Model evaluations per clock cycle: 1 with the assertions off when
    /// the RTL uses its clock only as `posedge clk_i` (checked when it was
    /// built), else 2: the falling edge is evaluated too (untraced), so that
    /// the assertions sample the values the new inputs give before the edge.
    pub fn evals_per_cycle(&self) -> u32 {
        // SAFETY: `raw` is a live model owned by `self`.
        unsafe { ffi::sd_evals_per_cycle(self.raw.as_ptr()) }
    }

    /// Rising edges done so far (0 for a new model).
    pub fn cycle(&self) -> u64 {
        // SAFETY: `raw` is a live model owned by `self`.
        unsafe { ffi::sd_cycle(self.raw.as_ptr()) }
    }

    /// Start writing a VCD of every RTL signal to `path` (closing any open
    /// trace). The first dump is at the next step.
    pub fn trace_open(&mut self, path: &Path) -> Result<(), RtlError> {
        let c_path = path_to_cstring(path).ok_or_else(|| RtlError::TracePath {
            path: path.to_path_buf(),
        })?;
        // SAFETY: `raw` is a live model owned by `self`; `c_path` is a
        // NUL-terminated string that outlives the call (the shim copies it).
        let rc = unsafe { ffi::sd_trace_open(self.raw.as_ptr(), c_path.as_ptr()) };
        self.tracing = rc == 0;
        if rc == 0 {
            Ok(())
        } else {
            Err(RtlError::TraceOpen {
                path: path.to_path_buf(),
            })
        }
    }

    /// Flush and close the trace, if one is open.
    pub fn trace_close(&mut self) {
        // SAFETY: `raw` is a live model owned by `self`; closing with no
        // trace open is a no-op.
        unsafe { ffi::sd_trace_close(self.raw.as_ptr()) };
        self.tracing = false;
    }

    /// Whether a trace is open.
    pub fn is_tracing(&self) -> bool {
        self.tracing
    }

    /// The first assertion failure, if any fired.
    pub fn error(&self) -> Option<RtlError> {
        let m = self.raw.as_ptr();
        // SAFETY: `raw` is a live model owned by `self`.
        if unsafe { ffi::sd_got_error(m) } == 0 {
            return None;
        }
        // SAFETY: as above; a null buffer with length 0 only asks for the length.
        let cycle = unsafe { ffi::sd_error_cycle(m) };
        // SAFETY: as above.
        let len = unsafe { ffi::sd_error_message(m, std::ptr::null_mut(), 0) };
        let mut buf = vec![0u8; usize::try_from(len).unwrap_or(0) + 1];
        // SAFETY: `buf` is writable for `buf.len()` bytes; the shim writes at
        // most that many, NUL included.
        unsafe { ffi::sd_error_message(m, buf.as_mut_ptr().cast::<c_char>(), buf.len() as u64) };
        let text = String::from_utf8_lossy(&buf[..buf.len() - 1]);
        Some(RtlError::Assertion {
            cycle,
            message: text.trim().to_string(),
        })
    }
}

impl Default for Model {
    fn default() -> Self {
        Model::new()
    }
}

impl Drop for Model {
    fn drop(&mut self) {
        // SAFETY: `raw` came from sd_new and is freed exactly once, here;
        // sd_free closes the trace before freeing the model.
        unsafe { ffi::sd_free(self.raw.as_ptr()) };
    }
}

#[cfg(unix)]
fn path_to_cstring(path: &Path) -> Option<CString> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(path.as_os_str().as_bytes()).ok()
}

#[cfg(not(unix))]
fn path_to_cstring(path: &Path) -> Option<CString> {
    CString::new(path.to_str()?).ok()
}

/// Whether [`Model::step_idle`] can skip cycles in this build: the model's
/// state is all in one object that the shim compares (no queues, strings
/// or classes, no `$time` or `$random` in evaluated code; `model/build.rs`).
pub fn idle_skip_available() -> bool {
    // SAFETY: no arguments, no state.
    unsafe { ffi::sd_idle_skip() != 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_assertion_is_named_from_the_runtime_message() {
        let m = "[rtl] cycle 1722: [1722000] %Error: dev_invq.sv:80: Assertion failed in TOP.shootdown_top.u_dev.u_invq.DrainBeforeCpl_A: 'assert' failed.";
        assert_eq!(assertion_name(m), Some("DrainBeforeCpl_A"));
        assert_eq!(assertion_name("[rtl] $stop"), None);
    }

    #[test]
    fn struct_sizes_match_the_shim() {
        assert!(Model::try_new().is_ok());
    }

    #[test]
    fn cycles_count_and_reset_idles() {
        let mut m = Model::new();
        assert_eq!(m.cycle(), 0);
        m.reset(4);
        assert_eq!(m.cycle(), 4);
        let out = *m.step(&PortsIn {
            rst_ni: 1,
            ..PortsIn::default()
        });
        assert_eq!(m.cycle(), 5);
        assert_eq!(out.cq_head, 0);
        assert_eq!(out.iommu_mem_req_valid, 0);
        assert_eq!(out.dev_req_ready, 1);
        assert!(m.error().is_none());
    }

    #[test]
    fn an_assertion_is_reported_not_fatal() {
        let mut m = Model::new();
        m.reset(4);
        // a memory response with no request outstanding
        let inp = PortsIn {
            rst_ni: 1,
            iommu_mem_rsp_valid: 1,
            ..PortsIn::default()
        };
        m.step(&inp);
        let e = m.error().expect("assertion fired");
        match &e {
            RtlError::Assertion { cycle, message } => {
                assert_eq!(*cycle, 5);
                assert!(message.contains("RspOnlyWhenBusy_A"), "{message}");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(e.to_string().starts_with("[rtl] "));
        // the model keeps running
        m.step(&PortsIn {
            rst_ni: 1,
            ..PortsIn::default()
        });
        assert_eq!(m.cycle(), 6);
    }

    #[test]
    fn bad_trace_path_is_an_error() {
        let mut m = Model::new();
        let e = m.trace_open(Path::new("/nonexistent-dir/x.vcd"));
        assert!(matches!(e, Err(RtlError::TraceOpen { .. })));
        assert!(!m.is_tracing());
    }
}
