//! GTKWave save files (`.gtkw`): which trace to open and which signals to
//! show, in which groups and formats.
//!
//! Format notes (GTKWave 3.3): a line `@<hex>` sets the trace flags for the
//! traces that follow (`TR_HEX`=0x2, `TR_DEC`=0x4, `TR_BIN`=0x8,
//! `TR_RJUSTIFY`=0x20, `TR_BLANK`=0x200, `TR_ASCII`=0x800,
//! `TR_GRP_BEGIN`=0x800000, `TR_GRP_END`=0x1000000); a line `-Name` is a
//! blank/comment trace, which the group flags turn into a group's start or
//! end; any other line is a signal's full name, scopes joined by `.` and,
//! for a vector, its `[msb:lsb]` range as the VCD reader names it.

use std::fmt::Write as _;
use std::fs;
use std::path::{Component, Path, PathBuf};

use super::error::WavesError;

/// How GTKWave shows a signal's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GtkwFormat {
    /// `@22`: hexadecimal, right-justified.
    Hex,
    /// `@24`: decimal, right-justified.
    Dec,
    /// `@28`: binary, right-justified (the usual flag of a 1-bit trace).
    Bin,
    /// `@820`: ASCII, right-justified. For text (`$var string`) signals;
    /// on a bit vector it shows each byte as a character.
    Ascii,
}

impl GtkwFormat {
    /// The hex trace-flags word of the `@` line.
    pub fn flags(self) -> &'static str {
        match self {
            GtkwFormat::Hex => "22",
            GtkwFormat::Dec => "24",
            GtkwFormat::Bin => "28",
            GtkwFormat::Ascii => "820",
        }
    }
}

/// A named group of traces (shown open).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GtkwGroup {
    pub name: String,
    pub signals: Vec<GtkwSignal>,
}

/// One trace of a save file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GtkwSignal {
    /// Full hierarchical name without bit range, scopes joined by `.`:
    /// `host.pages.addrA.window`, `TOP.shootdown_top.cq_head_o`. A path that
    /// already ends in `]` is used as it is.
    pub path: String,
    /// Bit width; a width above 1 appends `[width-1:0]` to the name, as
    /// GTKWave names a VCD vector. Text (`$var string`) signals have width 1.
    pub width: u32,
    pub format: GtkwFormat,
}

impl GtkwSignal {
    /// The name GTKWave gives the signal.
    pub fn gtkwave_name(&self) -> String {
        if self.width > 1 && !self.path.ends_with(']') {
            format!("{}[{}:0]", self.path, self.width - 1)
        } else {
            self.path.clone()
        }
    }
}

const GRP_BEGIN: &str = "800200";
const GRP_END: &str = "1000200";
const WIN_W: u32 = 1600;
const WIN_H: u32 = 900;
const SST_W: u32 = 240;
const SIGNALS_W: u32 = 320;
/// Smallest span the initial zoom shows: 20 cycles of 1000 ps.
const MIN_SPAN: u64 = 20_000;

/// Writes a GTKWave save file `out` (through a temporary file renamed into
/// place) that opens `vcd_file` and shows
/// `groups`, zoomed to fit `0..=end_time` (at least 20 cycles).
///
/// `[dumpfile]` is `vcd_file` relative to the directory of `out` when it
/// lies in that directory or below it (GTKWave resolves it against the save
/// file's location, so the pair can be moved together), else its absolute
/// path. The content depends only on the arguments.
pub fn write_gtkw(
    out: &Path,
    vcd_file: &Path,
    groups: &[GtkwGroup],
    end_time: u64,
) -> Result<(), WavesError> {
    let text = render(out, vcd_file, groups, end_time);
    super::tmp::write_file_atomically(out, text.as_bytes())
}

fn render(out: &Path, vcd_file: &Path, groups: &[GtkwGroup], end_time: u64) -> String {
    let (dump, save) = dump_and_save_paths(out, vcd_file);
    let mut s = String::new();
    s.push_str("[*]\n[*] shootdown: RTL and host signals (generated)\n[*]\n");
    let _ = writeln!(s, "[dumpfile] \"{dump}\"");
    let _ = writeln!(s, "[savefile] \"{save}\"");
    s.push_str("[timestart] 0\n");
    let _ = writeln!(s, "[size] {WIN_W} {WIN_H}");
    s.push_str("[pos] -1 -1\n");
    // `*zoom marker named-markers...`: zoom is -log2(ps per pixel).
    let wave_px = f64::from(WIN_W - SST_W - SIGNALS_W - 40);
    let span = end_time.max(MIN_SPAN) as f64;
    let zoom = -(span / wave_px).log2();
    let _ = write!(s, "*{zoom:.6} -1");
    for _ in 0..26 {
        s.push_str(" -1");
    }
    s.push('\n');
    let _ = writeln!(s, "[sst_width] {SST_W}");
    let _ = writeln!(s, "[signals_width] {SIGNALS_W}");
    s.push_str("[sst_expanded] 1\n[sst_vpaned_height] 250\n");
    for g in groups {
        let name = one_line(&g.name);
        let _ = writeln!(s, "@{GRP_BEGIN}\n-{name}");
        // Each signal after the group marker needs its own flags line.
        let mut flags = GRP_BEGIN;
        for sig in &g.signals {
            let f = sig.format.flags();
            if f != flags {
                let _ = writeln!(s, "@{f}");
                flags = f;
            }
            let _ = writeln!(s, "{}", one_line(&sig.gtkwave_name()));
        }
        let _ = writeln!(s, "@{GRP_END}\n-{name}");
    }
    s.push_str("[pattern_trace] 1\n[pattern_trace] 0\n");
    s
}

fn one_line(s: &str) -> String {
    let t: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if t.trim().is_empty() {
        "group".to_string()
    } else {
        t
    }
}

/// Absolute form of `p` with `.`/`..` resolved through the file system as
/// far as it exists (symlinks followed there), lexically beyond.
fn resolve(p: &Path) -> PathBuf {
    if let Ok(c) = fs::canonicalize(p) {
        return c;
    }
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    // Canonicalize the longest existing prefix, then append the rest.
    let comps: Vec<Component<'_>> = abs.components().collect();
    for k in (1..comps.len()).rev() {
        let head: PathBuf = comps[..k].iter().collect();
        if let Ok(mut c) = fs::canonicalize(&head) {
            for comp in &comps[k..] {
                match comp {
                    Component::ParentDir => {
                        c.pop();
                    }
                    Component::CurDir => {}
                    other => c.push(other.as_os_str()),
                }
            }
            return c;
        }
    }
    abs
}

/// `([dumpfile], [savefile])` values.
fn dump_and_save_paths(gtkw: &Path, vcd: &Path) -> (String, String) {
    let gtkw_abs = resolve(gtkw);
    let vcd_abs = resolve(vcd);
    if let Some(dir) = gtkw_abs.parent() {
        if let Ok(rel) = vcd_abs.strip_prefix(dir) {
            let rel: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            let save = gtkw_abs
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            return (rel.join("/"), save);
        }
    }
    (
        vcd_abs.to_string_lossy().into_owned(),
        gtkw_abs.to_string_lossy().into_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig(path: &str, width: u32, format: GtkwFormat) -> GtkwSignal {
        GtkwSignal {
            path: path.to_string(),
            width,
            format,
        }
    }

    #[test]
    fn names_get_vector_ranges() {
        assert_eq!(sig("TOP.a", 1, GtkwFormat::Bin).gtkwave_name(), "TOP.a");
        assert_eq!(
            sig("TOP.b", 8, GtkwFormat::Hex).gtkwave_name(),
            "TOP.b[7:0]"
        );
        assert_eq!(
            sig("TOP.c[3:1]", 3, GtkwFormat::Hex).gtkwave_name(),
            "TOP.c[3:1]"
        );
    }

    #[test]
    fn render_groups_flags_and_relative_dumpfile() {
        let dir = std::env::temp_dir().join(format!("waves_gtkw_unit_{}", std::process::id()));
        fs::create_dir_all(dir.join("sub")).unwrap();
        let groups = vec![
            GtkwGroup {
                name: "RTL".into(),
                signals: vec![
                    sig("TOP.clk", 1, GtkwFormat::Bin),
                    sig("TOP.shootdown_top.cq_head_o", 8, GtkwFormat::Hex),
                    sig("TOP.shootdown_top.count", 16, GtkwFormat::Dec),
                ],
            },
            GtkwGroup {
                name: "Host\nCPU".into(),
                signals: vec![sig("host.cpu0.step", 1, GtkwFormat::Ascii)],
            },
        ];
        let text = render(
            &dir.join("run.gtkw"),
            &dir.join("sub/run.vcd"),
            &groups,
            1_024_000,
        );
        let expect_body = "@800200\n-RTL\n@28\nTOP.clk\n@22\nTOP.shootdown_top.cq_head_o[7:0]\n\
                           @24\nTOP.shootdown_top.count[15:0]\n@1000200\n-RTL\n\
                           @800200\n-Host CPU\n@820\nhost.cpu0.step\n@1000200\n-Host CPU\n";
        assert!(text.contains(expect_body), "{text}");
        assert!(text.contains("[dumpfile] \"sub/run.vcd\"\n"), "{text}");
        assert!(text.contains("[savefile] \"run.gtkw\"\n"), "{text}");
        assert!(text.contains("[timestart] 0\n"));
        // 1_024_000 ps over 1000 px: 1024 ps per pixel, zoom -10.
        assert!(text.contains("\n*-10.000000 -1 -1"), "{text}");
        // Deterministic.
        assert_eq!(
            text,
            render(
                &dir.join("run.gtkw"),
                &dir.join("sub/run.vcd"),
                &groups,
                1_024_000
            )
        );
        // A trace outside the save file's directory gets an absolute path.
        let other = render(&dir.join("sub/x.gtkw"), &dir.join("run.vcd"), &[], 0);
        let abs = fs::canonicalize(&dir).unwrap().join("run.vcd");
        assert!(
            other.contains(&format!("[dumpfile] \"{}\"", abs.display())),
            "{other}"
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
