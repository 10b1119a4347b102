//! Merging host signals into a Verilator-style VCD (`shootdown::waves`),
//! checked by parsing the result with the `vcd` crate and by converting it
//! with GTKWave's `vcd2fst`.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::Command;

use shootdown::waves::*;

const VCD2FST: &str = "/usr/bin/vcd2fst";
const FST2VCD: &str = "/usr/bin/fst2vcd";

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

struct Tmp(PathBuf);

impl Tmp {
    fn new(tag: &str) -> Tmp {
        let d = std::env::temp_dir().join(format!("waves_it_{tag}_{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        Tmp(d)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// One variable of a parsed VCD.
#[derive(Clone, Debug)]
struct VarInfo {
    code: String,
    width: u32,
    var_type: String,
}

/// A VCD parsed with the `vcd` crate: variables by full path
/// (`scope.scope.name`), value changes by identifier code as
/// `(time, value)` with vectors widened to the declared width and strings
/// unescaped.
#[derive(Debug)]
struct Parsed {
    timescale: Option<(u32, vcd::TimescaleUnit)>,
    vars: BTreeMap<String, VarInfo>,
    changes: BTreeMap<String, Vec<(u64, String)>>,
}

impl Parsed {
    fn of(&self, path: &str) -> &[(u64, String)] {
        let v = self
            .vars
            .get(path)
            .unwrap_or_else(|| panic!("no variable {path}"));
        self.changes.get(&v.code).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Value of `path` at `time` (the last change at or before it).
    fn at(&self, path: &str, time: u64) -> Option<String> {
        self.of(path)
            .iter()
            .take_while(|(t, _)| *t <= time)
            .last()
            .map(|(_, v)| v.clone())
    }

    fn codes_under(&self, prefix: &str) -> HashSet<String> {
        self.vars
            .iter()
            .filter(|(p, _)| p.starts_with(prefix))
            .map(|(_, v)| v.code.clone())
            .collect()
    }
}

fn collect_vars(items: &[vcd::ScopeItem], prefix: &str, out: &mut BTreeMap<String, VarInfo>) {
    for item in items {
        match item {
            vcd::ScopeItem::Scope(s) => {
                collect_vars(&s.items, &format!("{prefix}{}.", s.identifier), out);
            }
            vcd::ScopeItem::Var(v) => {
                let path = format!("{prefix}{}", v.reference);
                let info = VarInfo {
                    code: v.code.to_string(),
                    width: v.size,
                    var_type: v.var_type.to_string(),
                };
                assert!(
                    out.insert(path.clone(), info).is_none(),
                    "variable {path} declared twice"
                );
            }
            _ => {}
        }
    }
}

/// Widens a VCD vector value to `width` the VCD way (a leading 0/1 pads
/// with 0, x with x, z with z).
fn widen(v: &str, width: u32) -> String {
    let w = width as usize;
    if v.len() >= w {
        return v.to_string();
    }
    let pad = match v.chars().next() {
        Some('x') | Some('X') => 'x',
        Some('z') | Some('Z') => 'z',
        _ => '0',
    };
    let mut s: String = std::iter::repeat_n(pad, w - v.len()).collect();
    s.push_str(v);
    s
}

fn parse(path: &Path) -> Parsed {
    let f = fs::File::open(path).unwrap();
    let mut p = vcd::Parser::new(BufReader::new(f));
    let header = p
        .parse_header()
        .unwrap_or_else(|e| panic!("vcd crate rejects the header of {}: {e}", path.display()));
    let mut vars = BTreeMap::new();
    collect_vars(&header.items, "", &mut vars);
    let widths: BTreeMap<String, u32> = vars.values().map(|v| (v.code.clone(), v.width)).collect();
    let mut changes: BTreeMap<String, Vec<(u64, String)>> = BTreeMap::new();
    let mut t = 0u64;
    for cmd in p {
        let cmd = cmd.unwrap_or_else(|e| panic!("vcd crate rejects {}: {e}", path.display()));
        let (code, val) = match cmd {
            vcd::Command::Timestamp(x) => {
                t = x;
                continue;
            }
            vcd::Command::ChangeScalar(c, v) => (c.to_string(), v.to_string()),
            vcd::Command::ChangeVector(c, v) => {
                let w = widths.get(&c.to_string()).copied().unwrap_or(0);
                (c.to_string(), widen(&v.to_string(), w))
            }
            vcd::Command::ChangeString(c, s) => (c.to_string(), unescape_text(&s)),
            vcd::Command::ChangeReal(c, r) => (c.to_string(), r.to_string()),
            _ => continue,
        };
        assert!(
            widths.contains_key(&code),
            "{}: change of undeclared code {code}",
            path.display()
        );
        changes.entry(code).or_default().push((t, val));
    }
    Parsed {
        timescale: header.timescale,
        vars,
        changes,
    }
}

fn bits(v: u64, width: u32) -> String {
    format!("{v:0w$b}", w = width as usize)
}

/// Host signals used by the merge tests; returns the trace.
fn sample_host() -> HostTrace {
    let mut h = HostTrace::new();
    let step = h.text(&["host", "cpu0"], "step");
    let pte = h.wire(&["host", "pages", "addrA"], "pte", 64);
    let win = h.wire(&["host", "pages", "addrA"], "window", 1);
    let _never = h.wire(&["host", "pages", "addrB"], "window", 1);
    let viol = h.wire(&["host"], "violation", 1);
    h.set_text(0, step, "idle");
    h.set(0, pte, 0x8000_0000_1234_5067);
    h.set_text(1000, step, "munmap start");
    h.set(2000, win, 1);
    // 2750 is a time the RTL trace has no line for.
    h.set_text(2750, step, "flush_tlb_range addr=0x7f00 len=4096");
    h.set(3000, pte, 0);
    h.set(4000, win, 0);
    h.set_text(4000, step, "done");
    h.set(4000, win, 0); // unchanged: not recorded again
                         // After the RTL trace's last time (5000).
    h.set(7000, viol, 1);
    h
}

const HOST_PATHS: [&str; 5] = [
    "host.cpu0.step",
    "host.pages.addrA.pte",
    "host.pages.addrA.window",
    "host.pages.addrB.window",
    "host.violation",
];

#[test]
fn sample_host_counts() {
    let h = sample_host();
    assert_eq!(h.signal_count(), 5);
    // 4 step texts, 2 pte values, 2 window values, 1 violation.
    assert_eq!(h.change_count(), 9);
    assert!(!h.is_empty());
    assert!(HostTrace::new().is_empty());
}

#[test]
fn merged_host_signals_have_the_right_values_at_the_right_times() {
    let tmp = Tmp::new("values");
    let out = tmp.path("merged.vcd");
    let stats = merge(&data("rtl_small.vcd"), &sample_host(), &out).unwrap();
    let m = parse(&out);

    assert_eq!(m.timescale, Some((1, vcd::TimescaleUnit::PS)));
    for p in HOST_PATHS {
        assert!(m.vars.contains_key(p), "missing {p}: {:?}", m.vars.keys());
    }
    assert_eq!(m.vars["host.cpu0.step"].var_type, "string");
    assert_eq!(m.vars["host.pages.addrA.pte"].width, 64);

    // Exact change lists: initial values at 0, changes at their times
    // (2750 and 7000 are not RTL times), nothing redundant.
    assert_eq!(
        m.of("host.cpu0.step"),
        &[
            (0, "idle".to_string()),
            (1000, "munmap start".to_string()),
            (2750, "flush_tlb_range addr=0x7f00 len=4096".to_string()),
            (4000, "done".to_string()),
        ]
    );
    assert_eq!(
        m.of("host.pages.addrA.pte"),
        &[(0, bits(0x8000_0000_1234_5067, 64)), (3000, bits(0, 64)),]
    );
    assert_eq!(
        m.of("host.pages.addrA.window"),
        &[
            (0, "x".to_string()),
            (2000, "1".to_string()),
            (4000, "0".to_string())
        ]
    );
    assert_eq!(m.of("host.pages.addrB.window"), &[(0, "x".to_string())]);
    assert_eq!(
        m.of("host.violation"),
        &[(0, "x".to_string()), (7000, "1".to_string())]
    );
    assert_eq!(m.at("host.pages.addrA.window", 2999).as_deref(), Some("1"));
    assert_eq!(m.at("host.violation", 6999).as_deref(), Some("x"));

    // 5 initial values + 3 step + 1 pte + 2 window + 1 violation.
    assert_eq!(stats.host_changes, 12);
    assert_eq!(
        stats.bytes_in,
        fs::metadata(data("rtl_small.vcd")).unwrap().len()
    );
    assert_eq!(stats.bytes_out, fs::metadata(&out).unwrap().len());
}

#[test]
fn merged_rtl_signals_are_unchanged() {
    let tmp = Tmp::new("rtl");
    let out = tmp.path("merged.vcd");
    merge(&data("rtl_small.vcd"), &sample_host(), &out).unwrap();
    let orig = parse(&data("rtl_small.vcd"));
    let m = parse(&out);
    assert_eq!(orig.vars.len(), 8);
    for (path, v) in &orig.vars {
        let mv = &m.vars[path];
        assert_eq!((&mv.code, mv.width), (&v.code, v.width), "{path}");
        assert_eq!(m.of(path), orig.of(path), "changes of {path}");
    }
    assert_eq!(m.vars.len(), orig.vars.len() + HOST_PATHS.len());
    // Spot checks against the fixture.
    assert_eq!(
        m.at("TOP.shootdown_top.cq_head_o", 2999).as_deref(),
        Some("00000001")
    );
    assert_eq!(
        m.at("TOP.shootdown_top.stale_o", 3500).as_deref(),
        Some("1")
    );
    assert_eq!(m.at("TOP.clk_i", 4500).as_deref(), Some("0"));
    // The RTL header is copied verbatim up to the inserted host scopes.
    let rtl_text = fs::read_to_string(data("rtl_small.vcd")).unwrap();
    let merged_text = fs::read_to_string(&out).unwrap();
    let head = rtl_text.split("$enddefinitions").next().unwrap();
    assert!(merged_text.starts_with(head));
    assert!(merged_text[head.len()..].starts_with("$scope module host $end\n"));
}

#[test]
fn host_identifier_codes_do_not_collide() {
    let tmp = Tmp::new("ids");
    let out = tmp.path("merged.vcd");
    merge(&data("rtl_small.vcd"), &sample_host(), &out).unwrap();
    let m = parse(&out);
    let rtl = m.codes_under("TOP.");
    let host = m.codes_under("host.");
    assert_eq!(rtl.len(), 5, "the fixture's codes ! \" # $ %");
    assert_eq!(host.len(), HOST_PATHS.len(), "one code per host signal");
    assert!(rtl.is_disjoint(&host), "rtl {rtl:?} host {host:?}");
}

#[test]
fn dumpvars_and_comments_fixture() {
    let tmp = Tmp::new("dumpvars");
    let out = tmp.path("merged.vcd");
    let mut h = HostTrace::new();
    let w = h.wire(&["host"], "flag", 1);
    let c = h.wire(&["host"], "count", 4);
    h.set(0, w, 1);
    h.set(1000, c, 9);
    h.set(1200, w, 0);
    merge(&data("rtl_dumpvars.vcd"), &h, &out).unwrap();
    let text = fs::read_to_string(&out).unwrap();
    // The initial host values went into the RTL's own $dumpvars block.
    let dv = text.find("\n$dumpvars\n").unwrap();
    assert_eq!(
        text.lines().filter(|l| l.trim() == "$dumpvars").count(),
        1,
        "{text}"
    );
    let block = &text[dv..dv + text[dv..].find("$end").unwrap()];
    assert!(block.contains("1!") && block.contains("b0 \""), "{block}");
    // The comment's `$var ... &` is not a variable: `&` is free for the host.
    let m = parse(&out);
    assert_eq!(m.vars["host.flag"].code, "#");
    assert_eq!(m.vars["host.count"].code, "$");
    assert_eq!(
        m.of("host.flag"),
        &[(0, "1".to_string()), (1200, "0".to_string())]
    );
    assert_eq!(
        m.of("host.count"),
        &[(0, "xxxx".to_string()), (1000, "1001".to_string())]
    );
    let orig = parse(&data("rtl_dumpvars.vcd"));
    assert_eq!(m.of("TOP.cnt"), orig.of("TOP.cnt"));
    assert_eq!(m.of("TOP.clk"), orig.of("TOP.clk"));
    assert_eq!(m.at("TOP.cnt", 1000).as_deref(), Some("0001"));
    // The `#999` inside the body comment is still only a comment.
    assert!(!m.changes.values().flatten().any(|(t, _)| *t == 999));
}

fn require_gtkwave_tools() {
    for tool in [VCD2FST, FST2VCD] {
        assert!(
            Path::new(tool).exists(),
            "{tool} is missing: GTKWave's tools are needed to check the merged VCD; \
             install them with `apt-get install -y gtkwave`"
        );
    }
}

/// Converts `vcd` to FST with vcd2fst and back with fst2vcd, and parses the
/// result. vcd2fst exits 0 even on garbage, so acceptance is judged by what
/// survives the round trip.
fn fst_round_trip(vcd: &Path, tmp: &Tmp) -> Parsed {
    require_gtkwave_tools();
    let fst = tmp.path("rt.fst");
    let st = Command::new(VCD2FST)
        .arg("-v")
        .arg(vcd)
        .arg("-f")
        .arg(&fst)
        .output()
        .expect("run vcd2fst");
    assert!(
        st.status.success(),
        "vcd2fst failed: {}",
        String::from_utf8_lossy(&st.stderr)
    );
    let back = Command::new(FST2VCD)
        .arg(&fst)
        .output()
        .expect("run fst2vcd");
    assert!(back.status.success(), "fst2vcd failed");
    let rt = tmp.path("rt.vcd");
    fs::write(&rt, &back.stdout).unwrap();
    parse(&rt)
}

#[test]
fn vcd2fst_accepts_the_merged_file() {
    let tmp = Tmp::new("fst");
    let out = tmp.path("merged.vcd");
    merge(&data("rtl_small.vcd"), &sample_host(), &out).unwrap();
    let m = parse(&out);
    let rt = fst_round_trip(&out, &tmp);
    // Every variable, RTL and host, survives with the same changes.
    assert_eq!(
        rt.vars.keys().collect::<Vec<_>>(),
        m.vars.keys().collect::<Vec<_>>()
    );
    for path in m.vars.keys() {
        assert_eq!(rt.of(path), m.of(path), "{path} after vcd2fst/fst2vcd");
    }
    assert_eq!(
        rt.at("host.cpu0.step", 3000).as_deref(),
        Some("flush_tlb_range addr=0x7f00 len=4096")
    );
}

/// `vcd_to_fst` keeps every variable, RTL and host, with the same changes
/// at the same times, as GTKWave's `fst2vcd` (an independent reader) reads
/// the FST back; text stays text; the same input gives the same bytes.
#[test]
fn vcd_to_fst_keeps_every_change() {
    require_gtkwave_tools();
    let tmp = Tmp::new("tofst");
    let vcd = tmp.path("merged.vcd");
    merge(&data("rtl_small.vcd"), &sample_host(), &vcd).unwrap();
    let m = parse(&vcd);
    let fst = tmp.path("merged.fst");
    let bytes = vcd_to_fst(&vcd, &fst).unwrap();
    assert_eq!(bytes, fs::metadata(&fst).unwrap().len());
    let back = Command::new(FST2VCD)
        .arg(&fst)
        .output()
        .expect("run fst2vcd");
    assert!(back.status.success(), "fst2vcd failed");
    let rt_path = tmp.path("back.vcd");
    fs::write(&rt_path, &back.stdout).unwrap();
    let rt = parse(&rt_path);
    assert_eq!(rt.timescale, Some((1, vcd::TimescaleUnit::PS)));
    assert_eq!(
        rt.vars.keys().collect::<Vec<_>>(),
        m.vars.keys().collect::<Vec<_>>()
    );
    for path in m.vars.keys() {
        assert_eq!(rt.of(path), m.of(path), "{path} after vcd_to_fst/fst2vcd");
    }
    assert_eq!(rt.vars["host.cpu0.step"].var_type, "string");
    assert_eq!(
        rt.at("host.cpu0.step", 3000).as_deref(),
        Some("flush_tlb_range addr=0x7f00 len=4096")
    );
    // RTL aliases (clk_i in TOP and in TOP.shootdown_top) stay one signal.
    assert_eq!(
        rt.vars["TOP.clk_i"].code,
        rt.vars["TOP.shootdown_top.clk_i"].code
    );
    let again = tmp.path("again.fst");
    vcd_to_fst(&vcd, &again).unwrap();
    assert_eq!(fs::read(&fst).unwrap(), fs::read(&again).unwrap());
    // Only the outputs are left: no temporary file, no libfst side file.
    let mut left: Vec<String> = fs::read_dir(&tmp.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["again.fst", "back.vcd", "merged.fst", "merged.vcd"]);
}

#[test]
fn vcd_to_fst_rejects_bad_input_without_leaving_files() {
    let tmp = Tmp::new("tofst_bad");
    let bad = tmp.path("bad.vcd");
    let out = tmp.path("out.fst");
    for text in [
        &b"\x89PNG\r\n\x1a\n\x00binary"[..],
        b"$scope module TOP $end\n$var wire 1 ! a $end\n",
        b"$scope module TOP $end $var wire 1 ! a $end $upscope $end $enddefinitions $end #0 1? \n",
        b"$scope module TOP $end $var wire 1 ! a $end $upscope $end $enddefinitions $end #5 1! #3 0!\n",
        b"$scope module TOP $end $var wire 4 ! a $end $upscope $end $enddefinitions $end #0 b0101",
    ] {
        fs::write(&bad, text).unwrap();
        let e = vcd_to_fst(&bad, &out).unwrap_err();
        assert!(e.to_string().starts_with("[waves] "), "{e}");
        assert!(e.to_string().contains("bad.vcd"), "{e}");
        assert!(!out.exists());
        assert_eq!(fs::read_dir(&tmp.0).unwrap().count(), 1, "{e}: files left");
    }
    assert!(matches!(
        vcd_to_fst(&tmp.path("absent.vcd"), &out),
        Err(WavesError::Read { .. })
    ));
}

#[test]
fn host_only_trace_parses_and_converts() {
    let tmp = Tmp::new("hostonly");
    let out = tmp.path("host.vcd");
    let stats = write_host_only(&sample_host(), &out, 10_000).unwrap();
    assert_eq!(stats.bytes_in, 0);
    assert_eq!(stats.bytes_out, fs::metadata(&out).unwrap().len());
    let m = parse(&out);
    assert_eq!(m.timescale, Some((1, vcd::TimescaleUnit::PS)));
    assert_eq!(m.vars.len(), HOST_PATHS.len());
    assert_eq!(
        m.at("host.cpu0.step", 2999).as_deref(),
        Some("flush_tlb_range addr=0x7f00 len=4096")
    );
    assert_eq!(m.at("host.violation", 7000).as_deref(), Some("1"));
    assert_eq!(m.at("host.pages.addrB.window", 9000).as_deref(), Some("x"));
    let text = fs::read_to_string(&out).unwrap();
    assert!(text.ends_with("#10000\n"), "end time marker: {text}");
    let rt = fst_round_trip(&out, &tmp);
    for path in m.vars.keys() {
        assert_eq!(rt.of(path), m.of(path), "{path} after vcd2fst/fst2vcd");
    }
}

#[test]
fn merge_is_deterministic() {
    let tmp = Tmp::new("det");
    let a = tmp.path("a.vcd");
    let b = tmp.path("b.vcd");
    merge(&data("rtl_small.vcd"), &sample_host(), &a).unwrap();
    merge(&data("rtl_small.vcd"), &sample_host(), &b).unwrap();
    assert_eq!(fs::read(&a).unwrap(), fs::read(&b).unwrap());
    let ga = tmp.path("a.gtkw");
    let groups = sample_groups();
    write_gtkw(&ga, &a, &groups, 7000).unwrap();
    let first = fs::read(&ga).unwrap();
    write_gtkw(&ga, &a, &groups, 7000).unwrap();
    assert_eq!(first, fs::read(&ga).unwrap());
}

#[test]
fn malformed_vcd_is_an_error_naming_file_and_line() {
    let tmp = Tmp::new("bad");
    let bad = tmp.path("broken.vcd");
    let good = fs::read_to_string(data("rtl_small.vcd")).unwrap();
    // Line 31 is `#2000`; make it go back in time.
    let lines: Vec<&str> = good.lines().collect();
    assert_eq!(lines[30], "#2000");
    let mut broken = lines.clone();
    broken[30] = "#200";
    fs::write(&bad, broken.join("\n")).unwrap();
    let out = tmp.path("out.vcd");
    let e = merge(&bad, &sample_host(), &out).unwrap_err();
    let msg = e.to_string();
    assert!(msg.starts_with("[waves] "), "{msg}");
    assert!(msg.contains("broken.vcd:31:"), "{msg}");
    assert!(matches!(e, WavesError::Malformed { line: 31, .. }));
    assert!(!out.exists());

    // Not a VCD at all.
    fs::write(&bad, [0u8, 159, 146, 150, 10, 255]).unwrap();
    let e = merge(&bad, &sample_host(), &out).unwrap_err();
    assert!(matches!(e, WavesError::Malformed { line: 1, .. }), "{e:?}");

    // Missing file.
    let e = merge(&tmp.path("absent.vcd"), &sample_host(), &out).unwrap_err();
    assert!(matches!(e, WavesError::Read { .. }));
    assert!(e.to_string().contains("absent.vcd"));
}

/// The save-file groups used by the tests: RTL and host signals of the
/// fixture and of `sample_host`.
fn sample_groups() -> Vec<GtkwGroup> {
    vec![
        GtkwGroup {
            name: "RTL".into(),
            signals: vec![
                GtkwSignal {
                    path: "TOP.clk_i".into(),
                    width: 1,
                    format: GtkwFormat::Bin,
                },
                GtkwSignal {
                    path: "TOP.shootdown_top.cq_head_o".into(),
                    width: 8,
                    format: GtkwFormat::Hex,
                },
                GtkwSignal {
                    path: "TOP.shootdown_top.inv_count".into(),
                    width: 32,
                    format: GtkwFormat::Dec,
                },
            ],
        },
        GtkwGroup {
            name: "Host".into(),
            signals: vec![
                GtkwSignal {
                    path: "host.cpu0.step".into(),
                    width: 1,
                    format: GtkwFormat::Ascii,
                },
                GtkwSignal {
                    path: "host.pages.addrA.pte".into(),
                    width: 64,
                    format: GtkwFormat::Hex,
                },
                GtkwSignal {
                    path: "host.pages.addrA.window".into(),
                    width: 1,
                    format: GtkwFormat::Bin,
                },
            ],
        },
    ]
}

#[test]
fn gtkw_names_every_signal_as_gtkwave_does() {
    let tmp = Tmp::new("gtkw");
    let vcd_path = tmp.path("run.vcd");
    let h = sample_host();
    merge(&data("rtl_small.vcd"), &h, &vcd_path).unwrap();
    let gtkw = tmp.path("run.gtkw");
    write_gtkw(&gtkw, &vcd_path, &sample_groups(), 7000).unwrap();
    let text = fs::read_to_string(&gtkw).unwrap();
    assert!(text.contains("[dumpfile] \"run.vcd\"\n"), "{text}");
    assert!(text.contains("[timestart] 0\n"));
    let expect = "@800200\n-RTL\n@28\nTOP.clk_i\n@22\nTOP.shootdown_top.cq_head_o[7:0]\n\
                  @24\nTOP.shootdown_top.inv_count[31:0]\n@1000200\n-RTL\n\
                  @800200\n-Host\n@820\nhost.cpu0.step\n@22\nhost.pages.addrA.pte[63:0]\n\
                  @28\nhost.pages.addrA.window\n@1000200\n-Host\n";
    assert!(text.contains(expect), "{text}");

    // Every signal line names a variable of the merged VCD (name + range
    // as GTKWave builds them from the `$var`).
    let m = parse(&vcd_path);
    let gtkwave_names: HashSet<String> = m
        .vars
        .iter()
        .map(|(p, v)| {
            if v.width > 1 && v.var_type != "string" {
                format!("{p}[{}:0]", v.width - 1)
            } else {
                p.clone()
            }
        })
        .collect();
    let mut n = 0;
    for line in text.lines() {
        if line.starts_with(&['[', '@', '-', '*'][..]) {
            continue;
        }
        assert!(gtkwave_names.contains(line), "{line} is not in the VCD");
        n += 1;
    }
    assert_eq!(n, 6);

    // HostTrace::gtkw_signal gives the same entries as the hand-written ones.
    let mut h2 = HostTrace::new();
    let step = h2.text(&["host", "cpu0"], "step");
    let pte = h2.wire(&["host", "pages", "addrA"], "pte", 64);
    let win = h2.wire(&["host", "pages", "addrA"], "window", 1);
    let host_group = &sample_groups()[1].signals;
    assert_eq!(h2.gtkw_signal(step).as_ref(), Some(&host_group[0]));
    assert_eq!(h2.gtkw_signal(pte).as_ref(), Some(&host_group[1]));
    assert_eq!(h2.gtkw_signal(win).as_ref(), Some(&host_group[2]));
}

/// Loads the merged VCD and its save file in GTKWave itself (under a
/// virtual X server) and checks the traces it shows. Needs `xvfb-run`
/// (`apt-get install -y xvfb`) besides gtkwave, so it is not run by default:
/// `cargo test --test waves_merge -- --ignored`.
#[test]
#[ignore]
fn gtkwave_loads_the_save_file() {
    assert!(
        Path::new("/usr/bin/xvfb-run").exists(),
        "xvfb-run missing: apt-get install -y xvfb"
    );
    assert!(
        Path::new("/usr/bin/gtkwave").exists(),
        "gtkwave missing: apt-get install -y gtkwave"
    );
    let tmp = Tmp::new("gtkwave");
    fs::create_dir_all(tmp.path("w")).unwrap();
    let vcd_path = tmp.path("w/run.vcd");
    let h = sample_host();
    merge(&data("rtl_small.vcd"), &h, &vcd_path).unwrap();
    let gtkw = tmp.path("w/run.gtkw");
    write_gtkw(&gtkw, &vcd_path, &sample_groups(), 7000).unwrap();
    let script = tmp.path("q.tcl");
    fs::write(
        &script,
        "gtkwave::setMarker 3000\n\
         set t [gtkwave::getTotalNumTraces]\n\
         for {set i 0} {$i < $t} {incr i} { puts \"TRACE [gtkwave::getTraceNameFromIndex $i]=[gtkwave::getTraceValueAtMarkerFromIndex $i]|[gtkwave::getTraceFlagsFromIndex $i]\" }\n\
         puts \"ZOOM [gtkwave::getZoomFactor]\"\n\
         gtkwave::/File/Quit\n",
    )
    .unwrap();
    // Run from another directory: the relative [dumpfile] must resolve
    // against the save file's location.
    let outp = Command::new("timeout")
        .args(["120", "xvfb-run", "-a", "gtkwave", "-S"])
        .arg(&script)
        .arg(&gtkw)
        .current_dir("/")
        .output()
        .expect("run gtkwave");
    let so = String::from_utf8_lossy(&outp.stdout);
    let traces: Vec<&str> = so
        .lines()
        .filter_map(|l| l.strip_prefix("TRACE "))
        .collect();
    let expect = [
        "RTL=|8389120",
        "TOP.clk_i=1|40",
        "TOP.shootdown_top.cq_head_o[7:0]=02|34",
        "TOP.shootdown_top.inv_count[31:0]=1|36",
        "RTL=|16777728",
        "Host=|8389120",
        "host.cpu0.step=flush_tlb_range addr=0x7f00 len=4096|2080",
        "host.pages.addrA.pte[63:0]=0000000000000000|34",
        "host.pages.addrA.window=1|40",
        "Host=|16777728",
    ];
    // GTKWave shows names without the scopes unless asked; compare the tail.
    assert_eq!(traces.len(), expect.len(), "{so}");
    for (got, want) in traces.iter().zip(expect) {
        let (wname, wrest) = want.split_once('=').unwrap();
        let short = wname.rsplit('.').next().unwrap();
        let (gname, grest) = got.split_once('=').unwrap();
        assert!(gname == wname || gname == short, "{got} vs {want}");
        assert_eq!(grest, wrest, "{got} vs {want}");
    }
    // 7000 ps is less than the 20-cycle minimum span: 20 ps per pixel
    // over the 1000-pixel wave area, zoom -log2(20).
    let zoom: f64 = so
        .lines()
        .find_map(|l| l.strip_prefix("ZOOM "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!((zoom + 20f64.log2()).abs() < 1e-5, "zoom {zoom}");
}

/// Writes a Verilator-style VCD of at least `bytes` bytes: a clock, 40
/// 32-bit counters and 20 flags, one timestamp per cycle (its rising edge,
/// every 1000 ps; the clock is 1 from the first on, as the simulator dumps
/// it). Returns the last cycle.
fn synthetic_rtl(path: &Path, bytes: u64) -> u64 {
    use std::io::Write;
    let mut w = std::io::BufWriter::new(fs::File::create(path).unwrap());
    writeln!(
        w,
        "$version Generated by VerilatedVcd $end\n$timescale 1ps $end"
    )
    .unwrap();
    writeln!(w, " $scope module TOP $end\n  $var wire 1 ! clk $end").unwrap();
    writeln!(w, "  $scope module shootdown_top $end").unwrap();
    let code = |i: u64| {
        // Two-character codes after `!`, as Verilator uses for big designs.
        let a = (b'"' + (i % 90) as u8) as char;
        let b = (b'"' + (i / 90) as u8) as char;
        format!("{a}{b}")
    };
    for i in 0..60u64 {
        if i < 40 {
            writeln!(w, "   $var wire 32 {} cnt{i} [31:0] $end", code(i)).unwrap();
        } else {
            writeln!(w, "   $var wire 1 {} flag{i} $end", code(i)).unwrap();
        }
    }
    writeln!(
        w,
        "  $upscope $end\n $upscope $end\n$enddefinitions $end\n\n"
    )
    .unwrap();
    let mut written: u64 = 0;
    let mut c: u64 = 0;
    let mut line = String::new();
    while written < bytes {
        line.clear();
        use std::fmt::Write as _;
        let _ = writeln!(line, "#{}", c * 1000);
        if c == 0 {
            let _ = writeln!(line, "1!");
        }
        for i in 0..60u64 {
            if (c + i) % 3 == 0 {
                if i < 40 {
                    let _ = writeln!(line, "b{:032b} {}", c.wrapping_mul(i + 1) as u32, code(i));
                } else {
                    let _ = writeln!(line, "{}{}", (c + i) % 2, code(i));
                }
            }
        }
        w.write_all(line.as_bytes()).unwrap();
        written += line.len() as u64;
        c += 1;
    }
    w.flush().unwrap();
    c - 1
}

/// Throughput of `merge` on a 50 MB synthetic trace (prints MB/s). Run it
/// optimised: `cargo test --release --test waves_merge -- --ignored --nocapture merge_throughput`.
#[test]
#[ignore]
fn merge_throughput_50mb() {
    let tmp = Tmp::new("perf");
    let rtl = tmp.path("big.vcd");
    let last_cycle = synthetic_rtl(&rtl, 50_000_000);
    let mut h = HostTrace::new();
    let step = h.text(&["host", "cpu0"], "step");
    let pte = h.wire(&["host", "pages", "addrA"], "pte", 64);
    let win = h.wire(&["host", "pages", "addrA"], "window", 1);
    for c in 0..=last_cycle + 10 {
        let t = c * 1000;
        h.set(t, pte, c.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        if c % 7 == 0 {
            h.set(t, win, (c / 7) % 2);
        }
        if c % 10 == 0 {
            h.set_text(t, step, &format!("step {c} of the run"));
        }
    }
    let out = tmp.path("merged.vcd");
    let t0 = std::time::Instant::now();
    let stats = merge(&rtl, &h, &out).unwrap();
    let secs = t0.elapsed().as_secs_f64();
    let mb = stats.bytes_in as f64 / 1e6;
    eprintln!(
        "merge: {mb:.1} MB in + {} host changes -> {:.1} MB out in {secs:.3} s: {:.0} MB/s (input), {:.0} MB/s (output)",
        stats.host_changes,
        stats.bytes_out as f64 / 1e6,
        mb / secs,
        stats.bytes_out as f64 / 1e6 / secs
    );
    assert!(stats.bytes_in >= 50_000_000);
    assert_eq!(stats.bytes_out, fs::metadata(&out).unwrap().len());
    // Every host change was written once: each of the 3 signals changes
    // at time 0, so the 3-line initial dump stands for those 3 changes.
    assert_eq!(stats.host_changes, h.change_count() as u64);
    let tail = fs::read_to_string(&out).unwrap();
    let last = format!("#{}\n", (last_cycle + 10) * 1000);
    assert!(
        tail.contains(&last),
        "host changes after the RTL end appended"
    );
}
