//! The second socket's model (docs/socket-riscv.md): `socket-riscv/`
//! wrapping a RISC-V IOMMU specification design, verilated into the same
//! library as the first, with `ffi/rv_shim.cpp`.
//!
//! The design comes from `$SHOOTDOWN_RTL_RISCV` (a clone of the design at
//! its pinned commit), else from `../shared/thirdparty/riscv-iommu` beside
//! the repository when that exists; `SHOOTDOWN_RTL_RISCV=off` builds
//! without it. Without a design the shim is compiled alone and reports
//! the model absent (`sd_rv_present() == 0`): the first socket works as
//! before, and what needs the second says how to get it. The design's
//! tree is only read: the include directory where its
//! `common_cells/assertions.svh` resolves is made here, in `OUT_DIR`.
//!
//! Its generated C++ is compiled at `-O1`: the design is large (about 15k
//! lines of RTL and vendored AXI pieces) and a RISC-V run is short, so
//! build time counts more than cycles per second here.

use super::{fail, files_with_ext, rerun_for_dir, Command, Path, PathBuf};
use std::env;
use std::fs;

pub const TOP: &str = "shootdown_rv_top";
pub const PREFIX: &str = "Vshootdown_rv";

/// The design's directories its files include each other from (its
/// Makefile's include path), relative to its root.
const INCLUDE_DIRS: [&str; 13] = [
    "packages/dependencies",
    "packages/rv_iommu",
    "vendor",
    "include",
    "rtl",
    "rtl/translation_logic",
    "rtl/translation_logic/cdw",
    "rtl/translation_logic/ptw",
    "rtl/translation_logic/wrapper",
    "rtl/software_interface",
    "rtl/software_interface/regmap",
    "rtl/software_interface/wrapper",
    "rtl/ext_interfaces",
];

/// Warnings of the design's own files that Verilator 5.006 would stop on
/// (the socket's own files are linted clean with -Wall by
/// scripts/riscv-socket-lint.sh).
const WAIVERS: [&str; 4] = ["-Wno-fatal", "-Wno-LATCH", "-Wno-MULTITOP", "-Wno-WIDTH"];

/// A verilated RISC-V socket: where its generated code is.
pub struct Verilated {
    pub vobj: PathBuf,
    pub generated: Vec<PathBuf>,
}

/// The design's root, or None (said as a cargo warning) when there is none.
fn design_dir(repo: &Path) -> Option<PathBuf> {
    println!("cargo:rerun-if-env-changed=SHOOTDOWN_RTL_RISCV");
    let dir = match env::var_os("SHOOTDOWN_RTL_RISCV") {
        Some(v) if v == "off" => {
            println!("cargo:warning=SHOOTDOWN_RTL_RISCV=off: the RISC-V socket is built without a design");
            return None;
        }
        Some(v) if !v.is_empty() => {
            let dir = repo.join(PathBuf::from(v));
            if !dir.join("rtl").is_dir() {
                fail(&format!(
                    "SHOOTDOWN_RTL_RISCV={}: no RISC-V IOMMU design there (no rtl/ directory; \
                     clone https://github.com/zero-day-labs/riscv-iommu at 18ad30a, or set it to off)",
                    dir.display()
                ));
            }
            dir
        }
        _ => {
            let dir = repo.join("../shared/thirdparty/riscv-iommu");
            if !dir.join("rtl").is_dir() {
                println!(
                    "cargo:warning=no RISC-V IOMMU design (set SHOOTDOWN_RTL_RISCV=<clone>): \
                     the RISC-V socket is built without one"
                );
                return None;
            }
            dir
        }
    };
    Some(dir.canonicalize().unwrap_or(dir))
}

/// Verilate the wrapper and the design into `OUT_DIR/rv-vobj`, or None
/// without a design. Exports the design's path as `SHOOTDOWN_RTL_RISCV_DIR`
/// (empty without one).
pub fn verilate(repo: &Path, out_dir: &Path, verilator: &Path) -> Option<Verilated> {
    let Some(design) = design_dir(repo) else {
        println!("cargo:rustc-env=SHOOTDOWN_RTL_RISCV_DIR=");
        return None;
    };
    println!(
        "cargo:rustc-env=SHOOTDOWN_RTL_RISCV_DIR={}",
        design.display()
    );
    let socket = repo.join("socket-riscv");
    rerun_for_dir(&socket);
    for d in INCLUDE_DIRS {
        rerun_for_dir(&design.join(d));
    }
    // common_cells/assertions.svh, as the design includes it
    let inc = out_dir.join("rv-include");
    let cells = inc.join("common_cells");
    fs::create_dir_all(&cells)
        .unwrap_or_else(|e| fail(&format!("cannot create {}: {e}", cells.display())));
    let src = design.join("include/assertions.svh");
    fs::copy(&src, cells.join("assertions.svh"))
        .unwrap_or_else(|e| fail(&format!("cannot copy {}: {e}", src.display())));

    let vobj = out_dir.join("rv-vobj");
    let _ = fs::remove_dir_all(&vobj);
    fs::create_dir_all(&vobj)
        .unwrap_or_else(|e| fail(&format!("cannot create {}: {e}", vobj.display())));
    let mut cmd = Command::new(verilator);
    cmd.args(["--cc", "-O3", "--trace", "--timescale", "1ns/1ps"])
        .args(["--output-split", "20000"])
        .args(WAIVERS)
        .args(["--top-module", TOP, "--prefix", PREFIX])
        .arg("-Mdir")
        .arg(&vobj)
        .arg(format!("-I{}", inc.display()));
    for d in INCLUDE_DIRS {
        cmd.arg(format!("-I{}", design.join(d).display()));
    }
    cmd.arg(socket.join("shootdown_rv_top.sv"));
    let output = cmd
        .output()
        .unwrap_or_else(|e| fail(&format!("cannot run {}: {e}", verilator.display())));
    if !output.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&output.stderr));
        fail(&format!(
            "verilator failed on socket-riscv/ with the design in {} (its messages are above; \
             SHOOTDOWN_RTL_RISCV=off builds without it)",
            design.display()
        ));
    }
    let generated = files_with_ext(&vobj, "cpp");
    Some(Verilated { vobj, generated })
}

/// The compiler settings of the second model's objects: `base` (the first
/// model's), at -O1, with its generated headers when there is a design;
/// `digest`: its state can be digested (`sd_rv_state_digest`).
pub fn cxx(mut base: cc::Build, ffi_dir: &Path, rv: Option<&Verilated>, digest: bool) -> cc::Build {
    base.opt_level(1).include(ffi_dir);
    if let Some(v) = rv {
        base.include(&v.vobj).define("SD_RV_PRESENT", None);
        if digest {
            base.define("SD_RV_DIGEST", None);
        }
    }
    base
}
