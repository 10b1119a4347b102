//! Build script of shootdown-model-sys: verilate the RTL and compile it,
//! with the C shim and the Verilator runtime, into static libraries for the
//! `extern "C"` items of `host/rtl/ffi.rs`.
//!
//! - `verilator` comes from `$VERILATOR`, else from `PATH`.
//! - The RTL is `rtl/` overlaid with `$SHOOTDOWN_RTL` (docs/socket.md,
//!   "Bring your own RTL"): each `*.sv` / `*.vlt` there replaces the file of
//!   the same name in `rtl/`, files with new names are added. The top stays
//!   `shootdown_top` with the ports of docs/socket.md. This crate exports
//!   the overlay as `RTL_OVERLAY` (its absolute path, empty without one) and
//!   `RTL_OVERLAY_FILES` (the file names it supplied, space separated).
//! - The model (generated C++ + `ffi/shim.cpp`) is one static library,
//!   rebuilt on every RTL change; the Verilator runtime is a second one,
//!   cached in `OUT_DIR` under a key of the Verilator version and the flags,
//!   so an RTL edit does not recompile it.
//! - Only the library search paths go to cargo: `host/rtl/ffi.rs` names the
//!   libraries (`#[link]`), so that the Rust host code does not depend on
//!   this crate and is not recompiled when the RTL changes (Cargo.toml).
//!
//! `rtl/`, `ffi/` and a relative `$SHOOTDOWN_RTL` are taken from the
//! repository root, the parent of this crate's directory.

use std::collections::BTreeMap;
use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{exit, Command};

const TOP: &str = "shootdown_top";
const PREFIX: &str = "Vshootdown";
const RUNTIME_LIB: &str = "verilated_rt";
const MODEL_LIB: &str = "shootdown_model";
const RUNTIME_SOURCES: [&str; 3] = [
    "verilated.cpp",
    "verilated_threads.cpp",
    "verilated_vcd_c.cpp",
];
// -DVM_* as verilated.mk sets them for `--cc --trace` (VCD, no coverage,
// no SystemC); -std: Verilator 5.006 needs C++11 or newer and is built and
// tested with its compiler's default, gnu++17 for g++ 12.
const DEFINES: [(&str, &str); 5] = [
    ("VM_COVERAGE", "0"),
    ("VM_SC", "0"),
    ("VM_TRACE", "1"),
    ("VM_TRACE_FST", "0"),
    ("VM_TRACE_VCD", "1"),
];
const CXX_FLAGS: [&str; 4] = [
    "-std=gnu++17",
    "-faligned-new",
    "-fcf-protection=none",
    "-w",
];

fn main() {
    let manifest =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let repo = manifest
        .parent()
        .unwrap_or_else(|| fail("the crate directory has no parent"))
        .to_path_buf();
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let ffi_dir = repo.join("ffi");

    let verilator = find_verilator().unwrap_or_else(|| {
        eprintln!(
            "shootdown: Verilator not found: install it with 'apt-get install -y verilator' \
             (Debian 12 ships 5.006) or set VERILATOR=/path/to/verilator"
        );
        exit(1);
    });

    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=SHOOTDOWN_RTL");
    println!("cargo:rerun-if-env-changed=VERILATOR");
    println!("cargo:rerun-if-env-changed=SHOOTDOWN_PARAMS");

    let rtl_dir = repo.join("rtl");
    let overlay = overlay_dir(&repo);
    rerun_for_dir(&rtl_dir);
    if let Some(dir) = &overlay {
        rerun_for_dir(dir);
    }
    rerun_for_dir(&ffi_dir);

    let version = run_capture(&verilator, &["--version"]);
    let root = PathBuf::from(run_capture(&verilator, &["--getenv", "VERILATOR_ROOT"]));
    let include = root.join("include");

    // 1. verilate
    let sources = rtl_sources(&rtl_dir, overlay.as_deref());
    let vobj = out_dir.join("vobj");
    let _ = fs::remove_dir_all(&vobj);
    fs::create_dir_all(&vobj)
        .unwrap_or_else(|e| fail(&format!("cannot create {}: {e}", vobj.display())));
    let mut cmd = Command::new(&verilator);
    cmd.args([
        "--cc",
        "-O3",
        "--trace",
        "--assert",
        "--timescale",
        "1ns/1ps",
    ])
    .args(["--top-module", TOP, "--prefix", PREFIX])
    .arg("-Mdir")
    .arg(&vobj);
    // SHOOTDOWN_PARAMS="IotlbSets=32 AtcEntries=16": top-level parameters
    // (Verilator -G), so sizes change without editing the RTL.
    for g in top_params() {
        cmd.arg(g);
    }
    // `include files: the overlay's first, like the sources
    for dir in overlay.iter().chain([&rtl_dir]) {
        cmd.arg(format!("-I{}", dir.display()));
    }
    cmd.args(&sources);
    let output = cmd
        .output()
        .unwrap_or_else(|e| fail(&format!("cannot run {}: {e}", verilator.display())));
    if !output.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&output.stdout));
        eprintln!("{}", String::from_utf8_lossy(&output.stderr));
        fail(&format!(
            "verilator failed on the RTL in {}{} (its messages are above)",
            rtl_dir.display(),
            overlay
                .as_ref()
                .map(|d| format!(" overlaid with SHOOTDOWN_RTL={}", d.display()))
                .unwrap_or_default()
        ));
    }

    // 2. the model: generated C++ and the shim
    let mut generated: Vec<PathBuf> = fs::read_dir(&vobj)
        .unwrap_or_else(|e| fail(&format!("cannot read {}: {e}", vobj.display())))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "cpp"))
        .collect();
    generated.sort();
    let mut model = cxx_build(&include);
    model
        .include(&vobj)
        .include(&ffi_dir)
        .files(&generated)
        .file(ffi_dir.join("shim.cpp"))
        .cargo_metadata(false);
    model.compile(MODEL_LIB);
    println!("cargo:rustc-link-search=native={}", out_dir.display());

    // 3. the runtime, cached
    let printf_header = ffi_dir.join("vl_printf.h");
    let key = runtime_key(&version, &include, &printf_header);
    let rt_dir = out_dir.join(format!("vlrt-{key:016x}"));
    let stamp = rt_dir.join("done");
    if !stamp.exists() {
        let _ = fs::remove_dir_all(&rt_dir);
        fs::create_dir_all(&rt_dir)
            .unwrap_or_else(|e| fail(&format!("cannot create {}: {e}", rt_dir.display())));
        let mut runtime = cxx_build(&include);
        runtime
            .out_dir(&rt_dir)
            .cargo_metadata(false)
            .flag("-include")
            .flag(
                printf_header
                    .to_str()
                    .unwrap_or_else(|| fail("ffi path is not UTF-8")),
            )
            .files(RUNTIME_SOURCES.iter().map(|s| include.join(s)));
        runtime.compile(RUNTIME_LIB);
        fs::write(&stamp, &version)
            .unwrap_or_else(|e| fail(&format!("cannot write {}: {e}", stamp.display())));
    }
    println!("cargo:rustc-link-search=native={}", rt_dir.display());
}

fn cxx_build(include: &Path) -> cc::Build {
    let mut b = cc::Build::new();
    b.cpp(true)
        .cpp_link_stdlib(None)
        .opt_level(3)
        .debug(false)
        .warnings(false)
        .include(include)
        .include(include.join("vltstd"));
    for (name, value) in DEFINES {
        b.define(name, value);
    }
    for flag in CXX_FLAGS {
        b.flag(flag);
    }
    b
}

/// Cache key of the runtime library: Verilator version and root, the flags
/// and the force-included printf header (FNV-1a, stable across runs).
fn runtime_key(version: &str, include: &Path, printf_header: &Path) -> u64 {
    let header = fs::read(printf_header)
        .unwrap_or_else(|e| fail(&format!("cannot read {}: {e}", printf_header.display())));
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    feed(version.as_bytes());
    feed(include.to_string_lossy().as_bytes());
    for (name, value) in DEFINES {
        feed(name.as_bytes());
        feed(value.as_bytes());
    }
    for flag in CXX_FLAGS {
        feed(flag.as_bytes());
    }
    feed(env::var("TARGET").unwrap_or_default().as_bytes());
    feed(env::var("CXX").unwrap_or_default().as_bytes());
    feed(&header);
    h
}

/// `$SHOOTDOWN_RTL` as an absolute directory (a relative one is taken from
/// the repository root), or None when unset/empty. Also hands it to the
/// crate as `SHOOTDOWN_RTL_OVERLAY`.
fn overlay_dir(repo: &Path) -> Option<PathBuf> {
    let dir = match env::var_os("SHOOTDOWN_RTL") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => {
            println!("cargo:rustc-env=SHOOTDOWN_RTL_OVERLAY=");
            return None;
        }
    };
    let abs = repo.join(&dir);
    if !abs.is_dir() {
        fail(&format!(
            "SHOOTDOWN_RTL={}: no such directory (relative paths are taken from {})",
            dir.display(),
            repo.display()
        ));
    }
    let abs = abs.canonicalize().unwrap_or(abs);
    println!("cargo:rustc-env=SHOOTDOWN_RTL_OVERLAY={}", abs.display());
    Some(abs)
}

/// The `*.sv` and `*.vlt` files of `dir`, by file name.
fn rtl_files(dir: &Path) -> BTreeMap<String, PathBuf> {
    fs::read_dir(dir)
        .unwrap_or_else(|e| {
            fail(&format!(
                "cannot read the RTL directory {}: {e}",
                dir.display()
            ))
        })
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .filter_map(|p| {
            let n = p.file_name()?.to_str()?.to_string();
            (n.ends_with(".sv") || n.ends_with(".vlt")).then_some((n, p))
        })
        .collect()
}

/// The RTL files in a fixed order: waivers (`*.vlt`), packages (`*_pkg.sv`),
/// then the other `*.sv`, each group sorted by file name. `rtl/` overlaid
/// with `overlay`: a file there replaces the one of the same name in `rtl/`,
/// a new name is added. Tells the user (cargo:warning) and the crate
/// (`SHOOTDOWN_RTL_OVERLAY_FILES`) which files came from the overlay.
fn rtl_sources(base: &Path, overlay: Option<&Path>) -> Vec<PathBuf> {
    let mut files = rtl_files(base);
    let mut from_overlay = Vec::new();
    if let Some(dir) = overlay {
        let over = rtl_files(dir);
        if over.is_empty() {
            fail(&format!(
                "SHOOTDOWN_RTL={}: no *.sv or *.vlt files in it",
                dir.display()
            ));
        }
        for (name, path) in over {
            let what = if files.contains_key(&name) {
                format!("replaces rtl/{name}")
            } else {
                "added".to_string()
            };
            println!(
                "cargo:warning=SHOOTDOWN_RTL: {name} from {} ({what})",
                dir.display()
            );
            from_overlay.push(name.clone());
            files.insert(name, path);
        }
    }
    println!(
        "cargo:rustc-env=SHOOTDOWN_RTL_OVERLAY_FILES={}",
        from_overlay.join(" ")
    );
    let vlt = files.iter().filter(|(n, _)| n.ends_with(".vlt"));
    let pkg = files.iter().filter(|(n, _)| n.ends_with("_pkg.sv"));
    let rest = files
        .iter()
        .filter(|(n, _)| n.ends_with(".sv") && !n.ends_with("_pkg.sv"));
    let sources: Vec<PathBuf> = vlt.chain(pkg).chain(rest).map(|(_, p)| p.clone()).collect();
    if !files.keys().any(|n| n.ends_with(".sv")) {
        fail(&format!(
            "no .sv files in the RTL directory {}",
            base.display()
        ));
    }
    sources
}

fn rerun_for_dir(dir: &Path) {
    println!("cargo:rerun-if-changed={}", dir.display());
    if let Ok(entries) = fs::read_dir(dir) {
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for p in paths {
            println!("cargo:rerun-if-changed={}", p.display());
        }
    }
}

/// `-GName=Value` for each `Name=Value` of SHOOTDOWN_PARAMS (whitespace or
/// comma separated); anything else stops the build with one line.
fn top_params() -> Vec<String> {
    let Ok(spec) = env::var("SHOOTDOWN_PARAMS") else {
        return Vec::new();
    };
    spec.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|t| !t.is_empty())
        .map(|t| {
            let ok = t.split_once('=').is_some_and(|(n, v)| {
                n.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                    && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && v.parse::<u32>().is_ok()
            });
            if !ok {
                fail(&format!(
                    "SHOOTDOWN_PARAMS: '{t}' is not Name=Number (e.g. SHOOTDOWN_PARAMS=\"IotlbSets=32 AtcEntries=16\")"
                ));
            }
            println!("cargo:warning=SHOOTDOWN_PARAMS: shootdown_top #({t})");
            format!("-G{t}")
        })
        .collect()
}

fn find_verilator() -> Option<PathBuf> {
    if let Some(v) = env::var_os("VERILATOR").filter(|v| !v.is_empty()) {
        let p = PathBuf::from(v);
        return p.is_file().then_some(p);
    }
    env::split_paths(&env::var_os("PATH")?)
        .map(|d| d.join("verilator"))
        .find(|p| p.is_file())
}

fn run_capture(program: &Path, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            fail(&format!(
                "cannot run {} {}: {e}",
                program.display(),
                args.join(" ")
            ))
        });
    if !out.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
        fail(&format!("{} {} failed", program.display(), args.join(" ")));
    }
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn fail(msg: &str) -> ! {
    eprintln!("shootdown: {msg}");
    exit(1);
}
