//! Build script of shootdown-model-sys: verilate the RTL and compile it,
//! with the C shim and the Verilator runtime, into a static library for the
//! `extern "C"` items of `host/rtl/ffi.rs`.
//!
//! - `verilator` comes from `$VERILATOR`, else from `PATH`.
//! - The RTL is `rtl/` overlaid with `$SHOOTDOWN_RTL` (docs/socket.md,
//!   "Bring your own RTL"): each `*.sv` / `*.vlt` there replaces the file of
//!   the same name in `rtl/`, files with new names are added. The top stays
//!   `shootdown_top` with the ports of docs/socket.md. This crate exports
//!   the overlay as `RTL_OVERLAY` (its absolute path, empty without one) and
//!   `RTL_OVERLAY_FILES` (the file names it supplied, space separated).
//! - One static library, `libshootdown_model.a`, holds the model (the
//!   generated C++), `ffi/shim.cpp` and the Verilator runtime. Each object
//!   is compiled here, on `$NUM_JOBS` threads, into a cache in `OUT_DIR`
//!   keyed by the digest of its source, the headers it can include, the
//!   compiler and the flags (`Unit`): the runtime is compiled once, and an
//!   RTL edit recompiles only the generated files whose content changed.
//! - Only the library search path goes to cargo: `host/rtl/ffi.rs` names the
//!   library (`#[link]`), so that the Rust host code does not depend on
//!   this crate and is not recompiled when the RTL changes (Cargo.toml).
//!
//! - Cover points: the RTL is verilated with `--coverage-user`, so its
//!   SystemVerilog `cover property` statements count into the model's own
//!   coverage context; the counter of each is found in the generated code
//!   (`cover_points`) and listed, by index, in `sd_cover_points.h`, which
//!   `ffi/shim.cpp` reads them through (docs/socket.md, "Coverage"); their
//!   registration in Verilator's coverage context is left out
//!   (`ffi/sd_cover_hook.h`, force-included). An RTL without cover points
//!   gets an empty list, and so does a build with
//!   `SHOOTDOWN_COVERAGE=0` (the cover statements are left out: the cost
//!   of coverage measured against the same RTL).
//!
//! `rtl/`, `ffi/` and a relative `$SHOOTDOWN_RTL` are taken from the
//! repository root, the parent of this crate's directory.

use std::collections::BTreeMap;
use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{exit, Command};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Instant, SystemTime};

mod riscv;

const TOP: &str = "shootdown_top";
const PREFIX: &str = "Vshootdown";
const MODEL_LIB: &str = "shootdown_model";
// GTKWave's FST writer (libfst), as Verilator ships it: `--waves-format fst`
// writes the merged waves through it (host/waves/fst.rs). It needs zlib.
const FST_SOURCES: [&str; 3] = ["fstapi.c", "lz4.c", "fastlz.c"];
const RUNTIME_SOURCES: [&str; 4] = [
    "verilated.cpp",
    "verilated_cov.cpp",
    "verilated_threads.cpp",
    "verilated_vcd_c.cpp",
];
// -DVM_* as verilated.mk sets them for `--cc --trace --coverage-user` (VCD,
// coverage, no SystemC); -std: Verilator 5.006 needs C++11 or newer and is
// built and tested with its compiler's default, gnu++17 for g++ 12.
const DEFINES: [(&str, &str); 5] = [
    ("VM_COVERAGE", "1"),
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
    println!("cargo:rerun-if-env-changed=SHOOTDOWN_COVERAGE");

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
    let start = Instant::now();
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
        // files of about 5000 statements (the default is 20000), grouped by
        // what their functions depend on: a one-line logic edit in iotlb.sv
        // changes 4 of 21 generated files instead of 5 of 15, about 6 s of
        // g++ -O3 instead of 9 (a clean build pays 2-3 s more, and the
        // model executes 0.7 % more instructions per cycle)
        "--output-split",
        "5000",
    ])
    .args(["--top-module", TOP, "--prefix", PREFIX])
    .arg("-Mdir")
    .arg(&vobj);
    // the RTL's `cover` statements count (docs/socket.md, "Coverage");
    // line, toggle and expression coverage stay off
    if env::var("SHOOTDOWN_COVERAGE").as_deref() == Ok("0") {
        println!("cargo:warning=SHOOTDOWN_COVERAGE=0: the cover statements are left out");
    } else {
        cmd.arg("--coverage-user");
    }
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

    // 2. compile: the generated C++ and the shim, the runtime; an object is
    // compiled only when its cache key is new (see `Unit`)
    let generated = files_with_ext(&vobj, "cpp");
    // the cover points' table, a header of vobj/ (so in the shim's key)
    let covers = cover_points(&vobj, &generated).unwrap_or_else(|why| {
        println!("cargo:warning=shootdown: {why}: the model reports no cover points");
        Vec::new()
    });
    write_cover_header(&vobj.join("sd_cover_points.h"), &covers);
    let ffi_headers = files_with_ext(&ffi_dir, "h");
    let mut model = cxx_build(&include);
    model.include(&vobj).include(&ffi_dir);
    // the cover points count, unregistered (ffi/sd_cover_hook.h)
    model.flag("-include").flag(ffi_dir.join("sd_cover_hook.h"));
    match clk_prev_member(&vobj, &generated) {
        Ok(member) => {
            model.define("SD_CLK_PREV", member.as_str());
        }
        Err(why) => println!(
            "cargo:warning=shootdown: {why}: the falling clock edge is evaluated too (two evals per cycle)"
        ),
    }
    match idle_skip_ok(&vobj, &generated) {
        Ok(()) => {
            model.define("SD_IDLE_SKIP", None);
        }
        Err(why) => println!(
            "cargo:warning=shootdown: {why}: idle cycles are evaluated one by one (sd_step_idle never skips)"
        ),
    }
    let model_cc = Compiler::new(&model);
    // the second socket's model (model/riscv.rs), into the same library
    let rv = riscv::verilate(&repo, &out_dir, &verilator);
    // the design's state digest (explore's cuts) under the same conditions
    // as the idle skip's byte compare
    let rv_digest = match rv.as_ref().map(|v| idle_skip_ok(&v.vobj, &v.generated)) {
        Some(Err(why)) => {
            println!("cargo:warning=shootdown: RISC-V design: {why}: its states are not digested (explore cuts nothing on it)");
            false
        }
        Some(Ok(())) => true,
        None => false,
    };
    let rv_cc = Compiler::new(&riscv::cxx(
        cxx_build(&include),
        &ffi_dir,
        rv.as_ref(),
        rv_digest,
    ));
    let gtkwave = include.join("gtkwave");
    let mut fst = cc::Build::new();
    fst.opt_level(2)
        .debug(false)
        .warnings(false)
        .include(&gtkwave)
        .define("FST_CONFIG_INCLUDE", "\"fst_config.h\"");
    let fst_cc = Compiler::new(&fst);
    let mut runtime = cxx_build(&include);
    runtime.flag("-include").flag(ffi_dir.join("vl_printf.h"));
    let runtime_cc = Compiler::new(&runtime);
    // What a source can include, besides Verilator's own headers (named by
    // its version and path): for the runtime the headers of ffi/ (the
    // force-included vl_printf.h), for the generated files and the shim also
    // every header Verilator wrote.
    let verilator_id = [
        version.as_bytes().to_vec(),
        include.as_os_str().as_encoded_bytes().to_vec(),
    ];
    let contents = |headers: &[PathBuf]| {
        headers
            .iter()
            .flat_map(|h| [h.as_os_str().as_encoded_bytes().to_vec(), read(h)])
            .collect::<Vec<_>>()
    };
    let runtime_deps = digest(
        verilator_id
            .iter()
            .chain(&contents(&ffi_headers))
            .map(Vec::as_slice),
    );
    let model_deps = digest(
        verilator_id
            .iter()
            .chain(&contents(&ffi_headers))
            .chain(&contents(&files_with_ext(&vobj, "h")))
            .map(Vec::as_slice),
    );
    let rv_generated = rv.as_ref().map(|v| v.generated.clone()).unwrap_or_default();
    let rv_deps = digest(
        verilator_id
            .iter()
            .chain(&contents(&ffi_headers))
            .chain(&contents(
                &rv.as_ref()
                    .map(|v| files_with_ext(&v.vobj, "h"))
                    .unwrap_or_default(),
            ))
            .map(Vec::as_slice),
    );
    let mut units: Vec<Unit> = generated
        .iter()
        .chain([&ffi_dir.join("shim.cpp")])
        .map(|src| Unit::new(src, &model_cc, model_deps))
        .chain(
            rv_generated
                .iter()
                .chain([&ffi_dir.join("rv_shim.cpp")])
                .map(|src| Unit::new(src, &rv_cc, rv_deps)),
        )
        .chain(
            RUNTIME_SOURCES
                .iter()
                .map(|s| Unit::new(&include.join(s), &runtime_cc, runtime_deps)),
        )
        .chain(FST_SOURCES.iter().map(|s| {
            Unit::new(
                &gtkwave.join(s),
                &fst_cc,
                digest(verilator_id.iter().map(Vec::as_slice)),
            )
        }))
        .collect();
    let cache = out_dir.join("obj-cache");
    fs::create_dir_all(&cache)
        .unwrap_or_else(|e| fail(&format!("cannot create {}: {e}", cache.display())));
    let compile_start = Instant::now();
    let compiled = compile_missing(&mut units, &cache);
    // in target/*/build/shootdown-model-sys-*/output
    println!("shootdown-model: {} cover points", covers.len());
    println!(
        "shootdown-model: verilated in {:.1} s; {compiled} of {} objects compiled in {:.1} s, {} from {}",
        (compile_start - start).as_secs_f64(),
        units.len(),
        compile_start.elapsed().as_secs_f64(),
        units.len() - compiled,
        cache.display()
    );

    // 3. one static library: the model, the shim, the runtime, libfst
    let lib_dir = out_dir.join("lib");
    fs::create_dir_all(&lib_dir)
        .unwrap_or_else(|e| fail(&format!("cannot create {}: {e}", lib_dir.display())));
    let objects: Vec<PathBuf> = units.iter().map(|u| u.object(&cache)).collect();
    archive(&model, &lib_dir.join(format!("lib{MODEL_LIB}.a")), &objects);
    prune_cache(&cache, &objects);
    println!("cargo:rustc-link-search=native={}", lib_dir.display());
}

/// The model's "previous value of clk_i" trigger member, when the RTL lets
/// `sd_step` evaluate once per cycle (ffi/shim.cpp): clk_i is used only as
/// `posedge clk_i` (no falling-edge logic, no clock read as data), so an
/// eval with clk_i = 0 computes nothing. Read from the generated code:
/// exactly one `__Vtrig*clk_i*` member in the root class header, every
/// trigger that names clk_i names `posedge clk_i`, and outside the trace
/// code clk_i is read only by the trigger logic, its reset and the width
/// check. Err says what stands in the way.
fn clk_prev_member(vobj: &Path, generated: &[PathBuf]) -> Result<String, String> {
    let header = vobj.join(format!("{PREFIX}___024root.h"));
    let text = read_text(&header)?;
    let members: Vec<&str> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("__Vtrig") && w.contains("clk_i"))
        .collect();
    let member = match members.as_slice() {
        [m] => m.to_string(),
        _ => {
            return Err(format!(
                "no single clk_i trigger member in {}",
                header.display()
            ))
        }
    };
    for path in generated {
        let name = name_of(path);
        if name.contains("__Trace") {
            continue;
        }
        let code = read_text(path)?;
        for line in code.lines() {
            if let Some(at) = line.find("is active: @(") {
                let sens = &line[at..];
                if sens.contains("clk_i") && sens.replace("posedge clk_i", "").contains("clk_i") {
                    return Err(format!(
                        "a trigger uses clk_i other than as posedge: {}",
                        sens.trim()
                    ));
                }
            }
            if line.contains("vlSelf->clk_i")
                && !["__VactTriggered", "__Vtrig", "0xfeU", "VL_RAND_RESET"]
                    .iter()
                    .any(|ok| line.contains(ok))
            {
                return Err(format!("clk_i is read as data in {name}: {}", line.trim()));
            }
        }
    }
    Ok(member)
}

/// Whether a byte compare of the model's symbol table is its whole state
/// (ffi/shim.cpp, `sd_step_idle`): no member lives on the heap (a queue, an
/// associative array, a string, a class object), and no evaluated code
/// reads the simulation time or draws random numbers (state outside it).
fn idle_skip_ok(vobj: &Path, generated: &[PathBuf]) -> Result<(), String> {
    const HEAP: [&str; 6] = [
        "VlQueue<",
        "VlAssocArray<",
        "VlClassRef<",
        "std::string ",
        "VlUnpacked<std::string",
        "VlWildcardArray<",
    ];
    const OUTSIDE: [&str; 4] = ["VL_RANDOM", "VL_URANDOM", "->time()", "VL_TIME_"];
    for path in files_with_ext(vobj, "h") {
        let text = read_text(&path)?;
        // (an interface's `VL_TO_STRING` declaration returns a string: no member)
        let members = text
            .lines()
            .filter(|l| !l.starts_with("std::string VL_TO_STRING("))
            .collect::<Vec<_>>()
            .join("\n");
        if let Some(t) = HEAP.iter().find(|t| members.contains(**t)) {
            return Err(format!(
                "{} holds state on the heap ({})",
                path.display(),
                t.trim()
            ));
        }
    }
    for path in generated {
        let name = name_of(path);
        // the constructors' X initialisation and the trace code run no cycle
        if name.contains("__Slow") || name.contains("__Trace") || name == format!("{PREFIX}.cpp") {
            continue;
        }
        let code = read_text(path)?;
        // a message may print the time: it changes no state
        let code = without_calls(&code, "VL_WRITEF(");
        if let Some(t) = OUTSIDE.iter().find(|t| code.contains(**t)) {
            return Err(format!("{name} reads state outside the model ({t})"));
        }
    }
    Ok(())
}

/// `code` without the calls of `callee` (its name and balanced arguments).
fn without_calls(code: &str, callee: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut rest = code;
    while let Some(at) = rest.find(callee) {
        out.push_str(&rest[..at]);
        let args = &rest[at + callee.len()..];
        let (mut depth, mut end) = (1usize, args.len());
        let (mut quoted, mut escaped) = (false, false);
        for (i, c) in args.char_indices() {
            match (quoted, escaped, c) {
                (true, true, _) => escaped = false,
                (true, false, '\\') => escaped = true,
                (_, false, '"') => quoted = !quoted,
                (false, _, '(') => depth += 1,
                (false, _, ')') => depth -= 1,
                _ => {}
            }
            if depth == 0 {
                end = i + 1;
                break;
            }
        }
        rest = &args[end..];
    }
    out.push_str(rest);
    out
}

/// One `cover property` of the RTL as Verilator registers it
/// (`__vlCoverInsert(&(vlSymsp->__Vcoverage[index]), first, "file", line,
/// column, ".hier", "page", "comment", "linescov")` in the generated code).
struct CoverPoint {
    index: usize,
    file: String,
    line: u32,
    /// Instance path from the top, e.g. `shootdown_top.u_iommu.u_cmdq.X_C`.
    hier: String,
    /// The statement's label (Verilator's "comment"), e.g. `X_C`.
    name: String,
}

/// Every cover point of the generated code, by counter index. Ok(empty):
/// the RTL has none. Err: the code counts cover points this build script
/// cannot list (a newer Verilator's format), said in one line.
fn cover_points(vobj: &Path, generated: &[PathBuf]) -> Result<Vec<CoverPoint>, String> {
    const CALL: &str = "__vlCoverInsert(&(vlSymsp->__Vcoverage[";
    let syms = vobj.join(format!("{PREFIX}__Syms.h"));
    let text = read_text(&syms)?;
    // `std::atomic<uint32_t> __Vcoverage[N];`, absent without cover points
    let declared = match text.split("__Vcoverage[").nth(1) {
        None => return Ok(Vec::new()),
        Some(rest) => rest
            .split(']')
            .next()
            .and_then(|n| n.trim().parse::<usize>().ok())
            .ok_or_else(|| format!("no counter count in {}", syms.display()))?,
    };
    let mut points: Vec<CoverPoint> = Vec::new();
    for path in generated {
        let code = read_text(path)?;
        for line in code.lines().filter(|l| l.contains(CALL)) {
            let bad = || format!("cannot read the cover point in: {}", line.trim());
            let rest = &line[line.find(CALL).ok_or_else(bad)? + CALL.len()..];
            let (index, rest) = rest.split_once(']').ok_or_else(bad)?;
            let index: usize = index.parse().map_err(|_| bad())?;
            let args = c_args(rest.split_once("first,").ok_or_else(bad)?.1).ok_or_else(bad)?;
            let [file, line_no, _column, hier, _page, name, ..] = args.as_slice() else {
                return Err(bad());
            };
            points.push(CoverPoint {
                index,
                file: file.clone(),
                line: line_no.parse().map_err(|_| bad())?,
                hier: hier.trim_start_matches('.').to_string(),
                name: name.clone(),
            });
        }
    }
    points.sort_by_key(|p| p.index);
    let indices_ok = points.iter().enumerate().all(|(i, p)| p.index == i);
    if points.len() != declared || !indices_ok {
        return Err(format!(
            "{} declares {declared} cover counters, the generated code registers {} (indices {})",
            syms.display(),
            points.len(),
            if indices_ok { "0.." } else { "not 0..n-1" }
        ));
    }
    Ok(points)
}

/// The arguments of a C call up to its closing parenthesis: string literals
/// (unescaped) and bare tokens (numbers), e.g. `"a.sv", 3, "x")`.
fn c_args(text: &str) -> Option<Vec<String>> {
    let mut args = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        match chars.next()? {
            ')' => return Some(args),
            '"' => {
                let mut s = String::new();
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => s.push(chars.next()?),
                        c => s.push(c),
                    }
                }
                args.push(s);
            }
            c => {
                let mut s = c.to_string();
                while let Some(&c) = chars.peek().filter(|&&c| c != ',' && c != ')') {
                    s.push(c);
                    chars.next();
                }
                args.push(s.trim().to_string());
            }
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
}

/// `sd_cover_points.h`: `SD_COVER_POINTS` and `kSdCoverPoints`, the cover
/// points by counter index (ffi/shim.cpp).
fn write_cover_header(path: &Path, points: &[CoverPoint]) {
    let c_str = |s: &str| {
        let mut o = String::from("\"");
        for b in s.bytes() {
            match b {
                b'"' | b'\\' => {
                    o.push('\\');
                    o.push(b as char);
                }
                0x20..=0x7e => o.push(b as char),
                _ => o.push_str(&format!("\\{b:03o}")),
            }
        }
        o.push('"');
        o
    };
    let mut h = String::from(
        "// Generated by model/build.rs: the cover points of the model, by the index\n\
         // of their counter (Vshootdown__Syms::__Vcoverage).\n\
         #ifndef SD_COVER_POINTS_H\n#define SD_COVER_POINTS_H\n",
    );
    h.push_str(&format!("#define SD_COVER_POINTS {}\n", points.len()));
    if !points.is_empty() {
        h.push_str("static const SdCoverInfo kSdCoverPoints[SD_COVER_POINTS] = {\n");
        for p in points {
            h.push_str(&format!(
                "    {{{}, {}, {}, {}}},\n",
                c_str(&p.hier),
                c_str(&p.name),
                c_str(&p.file),
                p.line
            ));
        }
        h.push_str("};\n");
    }
    h.push_str("#endif\n");
    fs::write(path, h).unwrap_or_else(|e| fail(&format!("cannot write {}: {e}", path.display())));
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

/// A C++ compiler command line as `cc` puts it together (the compiler from
/// `$CXX` or the default, `$CXXFLAGS`, the target's flags, ours), and the
/// digest of that command line and of the compiler's `--version`.
struct Compiler {
    tool: cc::Tool,
    id: u128,
}

impl Compiler {
    fn new(build: &cc::Build) -> Compiler {
        let tool = build
            .try_get_compiler()
            .unwrap_or_else(|e| fail(&format!("no C++ compiler: {e}")));
        let cmd = tool.to_command();
        let version = Command::new(tool.path())
            .arg("--version")
            .output()
            .map(|o| o.stdout)
            .unwrap_or_default();
        let mut parts = vec![cmd.get_program().as_encoded_bytes().to_vec(), version];
        parts.extend(cmd.get_args().map(|a| a.as_encoded_bytes().to_vec()));
        let id = digest(parts.iter().map(Vec::as_slice));
        Compiler { tool, id }
    }
}

/// One object of the library. Its cache key is the digest of the compiler
/// and its flags, the source's path and content, and `deps`, the digest of
/// every header it can include: an RTL edit that leaves a generated file
/// and the headers as they were does not recompile it (Verilator splits
/// its output by what each function depends on, so a logic edit changes a
/// few files).
struct Unit<'a> {
    src: PathBuf,
    compiler: &'a Compiler,
    key: u128,
    /// Bytes of source, to start the biggest first.
    size: usize,
}

impl<'a> Unit<'a> {
    fn new(src: &Path, compiler: &'a Compiler, deps: u128) -> Unit<'a> {
        let text = read(src);
        let key = digest([
            &compiler.id.to_le_bytes()[..],
            &deps.to_le_bytes(),
            src.as_os_str().as_encoded_bytes(),
            &text,
        ]);
        Unit {
            src: src.to_path_buf(),
            compiler,
            key,
            size: text.len(),
        }
    }

    fn object(&self, cache: &Path) -> PathBuf {
        let stem = self
            .src
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        cache.join(format!("{stem}-{:032x}.o", self.key))
    }
}

/// Compiles every unit whose object is not in `cache`, on `$NUM_JOBS`
/// threads (cargo's `-j`), biggest source first; returns how many. A
/// compiler error stops the build with the compiler's messages.
fn compile_missing(units: &mut [Unit], cache: &Path) -> usize {
    units.sort_by_key(|u| std::cmp::Reverse(u.size));
    let todo: Vec<&Unit> = units
        .iter()
        .filter(|u| !u.object(cache).is_file())
        .collect();
    let jobs = env::var("NUM_JOBS")
        .ok()
        .and_then(|n| n.parse::<usize>().ok())
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
        .unwrap_or(1)
        .clamp(1, todo.len().max(1));
    let next = AtomicUsize::new(0);
    let failures: Vec<(PathBuf, String)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..jobs)
            .map(|_| {
                scope.spawn(|| {
                    let mut failed = Vec::new();
                    loop {
                        let Some(u) = todo.get(next.fetch_add(1, Ordering::Relaxed)) else {
                            return failed;
                        };
                        if let Err(msg) = compile_one(u, cache) {
                            failed.push((u.src.clone(), msg));
                        }
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a compile thread panicked"))
            .collect()
    });
    if let Some((src, _)) = failures.first() {
        for (_, msg) in &failures {
            eprintln!("{msg}");
        }
        fail(&format!(
            "cannot compile {} (the compiler's messages are above)",
            src.display()
        ));
    }
    todo.len()
}

/// Compiles `u` into a temporary file of `cache`, then renames it into
/// place, so that the cache never holds a partial object.
fn compile_one(u: &Unit, cache: &Path) -> Result<(), String> {
    let obj = u.object(cache);
    let tmp = obj.with_extension("o.tmp");
    let mut cmd = u.compiler.tool.to_command();
    cmd.arg("-c").arg(&u.src).arg("-o").arg(&tmp);
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {}: {e}", u.compiler.tool.path().display()))?;
    if !out.status.success() {
        let _ = fs::remove_file(&tmp);
        return Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    fs::rename(&tmp, &obj).map_err(|e| format!("cannot write {}: {e}", obj.display()))
}

/// Writes the static library `lib` (replacing it) from `objects`.
fn archive(build: &cc::Build, lib: &Path, objects: &[PathBuf]) {
    let _ = fs::remove_file(lib);
    let mut ar = build
        .try_get_archiver()
        .unwrap_or_else(|e| fail(&format!("no archiver: {e}")));
    ar.arg("crs").arg(lib).args(objects);
    let out = ar
        .output()
        .unwrap_or_else(|e| fail(&format!("cannot run {:?}: {e}", ar.get_program())));
    if !out.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
        fail(&format!("cannot write {}", lib.display()));
    }
}

/// Keeps the cache small: marks this build's objects as just used, then
/// drops the least recently used others beyond three times their number
/// (enough to go back and forth between a few versions of the RTL).
fn prune_cache(cache: &Path, used: &[PathBuf]) {
    let now = SystemTime::now();
    for o in used {
        if let Ok(f) = fs::File::options().append(true).open(o) {
            let _ = f.set_modified(now);
        }
    }
    let Ok(entries) = fs::read_dir(cache) else {
        return;
    };
    let mut others: Vec<(SystemTime, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter(|e| !used.contains(&e.path()))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    others.sort_by_key(|(t, _)| std::cmp::Reverse(*t));
    for (_, p) in others.into_iter().skip(3 * used.len()) {
        let _ = fs::remove_file(p);
    }
}

/// FNV-1a, 128 bits, over each part preceded by its length: stable across
/// runs and Rust versions, so a key names the same object next time.
fn digest<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> u128 {
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
    let mut h: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    for part in parts {
        for b in (part.len() as u64).to_le_bytes().iter().chain(part) {
            h ^= u128::from(*b);
            h = h.wrapping_mul(PRIME);
        }
    }
    h
}

/// The text of `path`, or why not (for the checks that fall back).
fn read_text(path: &Path) -> Result<String, String> {
    fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// The file name of `path` ("" if it has none).
fn name_of(path: &Path) -> &str {
    path.file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
}

fn read(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|e| fail(&format!("cannot read {}: {e}", path.display())))
}

/// The files of `dir` whose extension is `ext`, sorted.
fn files_with_ext(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| fail(&format!("cannot read {}: {e}", dir.display())))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    files.sort();
    files
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
