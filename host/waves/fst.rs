//! FST output: a VCD (the merged one) converted, as it streams, into an FST
//! file through GTKWave's own writer, libfst (`fstapi.c`, compiled by
//! build.rs from Verilator's copy; it needs zlib).
//!
//! Every `$var` becomes an FST variable in the same scopes: a code declared
//! twice (Verilator's `TOP.clk_i` and `TOP.shootdown_top.clk_i`) becomes an
//! alias of the first; a vector keeps its range in its name (`cq_head_o
//! [7:0]`, shown by GTKWave as `cq_head_o[7:0]`, as for a VCD); a `string`
//! variable becomes an FST string variable (`FST_VT_GEN_STRING`), whose
//! changes carry the unescaped text, so GTKWave shows the same text as from
//! the VCD. The file's date and version fields are fixed strings, so the
//! same VCD gives the same FST bytes.

use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CString};
use std::fs::File;
use std::io::Read;
use std::path::Path;

use super::emit::TimeScale;
use super::error::WavesError;
use super::merge::find_blank;
use super::tmp::TempFile;
use super::trace::unescape_bytes;

type FstHandle = u32;

// fstapi.h (GTKWave 3.3, as shipped with Verilator 5.006).
const FST_WR_PT_LZ4: c_int = 2;
const FST_ST_VCD_MODULE: c_int = 0;
const FST_VD_IMPLICIT: c_int = 0;
const FST_VT_VCD_EVENT: c_int = 0;
const FST_VT_VCD_INTEGER: c_int = 1;
const FST_VT_VCD_PARAMETER: c_int = 2;
const FST_VT_VCD_REAL: c_int = 3;
const FST_VT_VCD_REG: c_int = 5;
const FST_VT_VCD_WIRE: c_int = 16;
const FST_VT_GEN_STRING: c_int = 21;
const FST_VT_SV_BIT: c_int = 22;
const FST_VT_SV_LOGIC: c_int = 23;

extern "C" {
    fn fstWriterCreate(nam: *const c_char, use_compressed_hier: c_int) -> *mut c_void;
    fn fstWriterClose(ctx: *mut c_void);
    fn fstWriterSetPackType(ctx: *mut c_void, typ: c_int);
    fn fstWriterSetTimescale(ctx: *mut c_void, ts: c_int);
    fn fstWriterSetDate(ctx: *mut c_void, dat: *const c_char);
    fn fstWriterSetVersion(ctx: *mut c_void, vers: *const c_char);
    fn fstWriterSetScope(
        ctx: *mut c_void,
        scopetype: c_int,
        scopename: *const c_char,
        scopecomp: *const c_char,
    );
    fn fstWriterSetUpscope(ctx: *mut c_void);
    fn fstWriterCreateVar(
        ctx: *mut c_void,
        vt: c_int,
        vd: c_int,
        len: u32,
        nam: *const c_char,
        alias: FstHandle,
    ) -> FstHandle;
    fn fstWriterEmitValueChange(ctx: *mut c_void, handle: FstHandle, val: *const c_void);
    fn fstWriterEmitVariableLengthValueChange(
        ctx: *mut c_void,
        handle: FstHandle,
        val: *const c_void,
        len: u32,
    );
    fn fstWriterEmitTimeChange(ctx: *mut c_void, tim: u64);
}

/// An open libfst writer; closed (and the file completed) on drop.
struct Writer {
    ctx: *mut c_void,
}

impl Writer {
    fn create(path: &Path) -> Option<Writer> {
        let c = path_cstring(path)?;
        // SAFETY: `c` is a NUL-terminated path that outlives the call; the
        // returned context is owned by the Writer and closed exactly once.
        let ctx = unsafe { fstWriterCreate(c.as_ptr(), 1) };
        if ctx.is_null() {
            return None;
        }
        let w = Writer { ctx };
        let fixed = CString::new("shootdown").unwrap_or_default();
        // SAFETY: live context; the strings are copied by libfst.
        unsafe {
            fstWriterSetPackType(w.ctx, FST_WR_PT_LZ4);
            fstWriterSetDate(w.ctx, fixed.as_ptr());
            fstWriterSetVersion(w.ctx, fixed.as_ptr());
        }
        Some(w)
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // SAFETY: the context came from fstWriterCreate and is closed once.
        unsafe { fstWriterClose(self.ctx) };
    }
}

#[cfg(unix)]
fn path_cstring(path: &Path) -> Option<CString> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(path.as_os_str().as_bytes()).ok()
}

#[cfg(not(unix))]
fn path_cstring(path: &Path) -> Option<CString> {
    CString::new(path.to_str()?).ok()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bits,
    Real,
    Text,
}

#[derive(Clone, Copy)]
struct Var {
    handle: FstHandle,
    width: u32,
    kind: Kind,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between header commands.
    Top,
    /// Inside a header command whose content is ignored, up to `$end`.
    Skip,
    Scope(u8),
    Var(u8),
    Timescale,
    /// After `$enddefinitions`, up to its `$end`.
    EndDefs,
    /// Value changes.
    Body,
    /// Inside a body command (`$comment`, ...), up to `$end`.
    BodyCmd,
    /// A vector, real or string value was read: this token is its code.
    Code,
}

struct Converter<'a> {
    src: &'a Path,
    w: Writer,
    state: State,
    line: u64,
    /// The current `$scope` or `$var` tokens.
    parts: Vec<Vec<u8>>,
    timescale: Vec<u8>,
    vars: HashMap<Vec<u8>, Var>,
    value: Vec<u8>,
    pad: Vec<u8>,
    last_time: Option<u64>,
}

/// Converts the VCD `vcd` into the FST file `out` (through a temporary file
/// beside it, renamed into place when complete). Returns the FST's size.
pub fn vcd_to_fst(vcd: &Path, out: &Path) -> Result<u64, WavesError> {
    let mut file = File::open(vcd).map_err(|e| WavesError::read(vcd, e))?;
    let tmp = TempFile::beside(out, "fst");
    let cannot =
        |what: &str| WavesError::write(out, std::io::Error::other(format!("libfst cannot {what}")));
    let w = Writer::create(tmp.path()).ok_or_else(|| cannot("create the file"))?;
    let mut c = Converter {
        src: vcd,
        w,
        state: State::Top,
        line: 1,
        parts: Vec::new(),
        timescale: Vec::new(),
        vars: HashMap::new(),
        value: Vec::new(),
        pad: Vec::new(),
        last_time: None,
    };
    let mut buf = vec![0u8; 1 << 20];
    let mut carry: Vec<u8> = Vec::new();
    loop {
        let n = file.read(&mut buf).map_err(|e| WavesError::read(vcd, e))?;
        if n == 0 {
            break;
        }
        let block = &buf[..n];
        let (mut start, mut i) = (0, 0);
        while let Some(k) = find_blank(&block[i..]) {
            let at = i + k;
            let b = block[at];
            i = at + 1;
            if !is_ws(b) {
                // A control character inside a token: part of it.
                continue;
            }
            if !carry.is_empty() {
                carry.extend_from_slice(&block[start..at]);
                let tok = std::mem::take(&mut carry);
                c.token(&tok)?;
            } else if at > start {
                c.token(&block[start..at])?;
            }
            if b == b'\n' {
                c.line += 1;
            }
            start = i;
        }
        carry.extend_from_slice(&block[start..]);
        if carry.len() > 64 << 20 {
            return Err(c.err("token longer than 64 MiB"));
        }
    }
    if !carry.is_empty() {
        let tok = std::mem::take(&mut carry);
        c.token(&tok)?;
    }
    match c.state {
        State::Body => {}
        State::Code => return Err(c.err("file ends inside a value change (truncated?)")),
        _ => return Err(c.err("no value changes: not a complete VCD")),
    }
    drop(c);
    std::fs::rename(tmp.path(), out).map_err(|e| WavesError::write(out, e))?;
    Ok(std::fs::metadata(out).map(|m| m.len()).unwrap_or(0))
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

impl Converter<'_> {
    fn err(&self, reason: impl Into<String>) -> WavesError {
        WavesError::malformed(self.src, self.line, reason)
    }

    fn token(&mut self, tok: &[u8]) -> Result<(), WavesError> {
        let end = tok == b"$end";
        match self.state {
            State::Skip | State::EndDefs | State::BodyCmd if end => {
                self.state = if self.state == State::Skip {
                    State::Top
                } else {
                    State::Body
                };
            }
            State::Skip | State::EndDefs | State::BodyCmd => {}
            State::Top => match tok {
                b"$scope" => {
                    self.parts.clear();
                    self.state = State::Scope(0);
                }
                b"$var" => {
                    self.parts.clear();
                    self.state = State::Var(0);
                }
                b"$upscope" => {
                    // SAFETY: live context.
                    unsafe { fstWriterSetUpscope(self.w.ctx) };
                    self.state = State::Skip;
                }
                b"$timescale" => {
                    self.timescale.clear();
                    self.state = State::Timescale;
                }
                b"$enddefinitions" => self.state = State::EndDefs,
                _ if tok.first() == Some(&b'$') => self.state = State::Skip,
                _ => return Err(self.err("not a VCD header")),
            },
            State::Timescale if end => {
                let text = String::from_utf8_lossy(&self.timescale).into_owned();
                let exp = TimeScale::parse(&text)
                    .and_then(|t| power_of_ten(t.fs_per_tick))
                    .ok_or_else(|| self.err(format!("unsupported $timescale `{text}`")))?;
                // SAFETY: live context.
                unsafe { fstWriterSetTimescale(self.w.ctx, exp - 15) };
                self.state = State::Top;
            }
            State::Timescale => self.timescale.extend_from_slice(tok),
            State::Scope(_) if end => {
                let name = self.parts.get(1).cloned().unwrap_or_default();
                let name = CString::new(name).map_err(|_| self.err("NUL in a scope name"))?;
                // SAFETY: live context; libfst copies the name.
                unsafe {
                    fstWriterSetScope(
                        self.w.ctx,
                        FST_ST_VCD_MODULE,
                        name.as_ptr(),
                        std::ptr::null(),
                    )
                };
                self.state = State::Top;
            }
            State::Scope(k) => {
                self.parts.push(tok.to_vec());
                self.state = State::Scope(k.saturating_add(1));
            }
            State::Var(_) if end => {
                self.declare()?;
                self.state = State::Top;
            }
            State::Var(k) => {
                self.parts.push(tok.to_vec());
                self.state = State::Var(k.saturating_add(1));
            }
            State::Body => self.body(tok)?,
            State::Code => {
                self.emit(tok)?;
                self.state = State::Body;
            }
        }
        Ok(())
    }

    /// `$var <type> <size> <code> <name> [<range>...] $end`.
    fn declare(&mut self) -> Result<(), WavesError> {
        if self.parts.len() < 4 {
            return Err(self.err("incomplete $var (needs type, size, code, name)"));
        }
        let width: u32 = std::str::from_utf8(&self.parts[1])
            .ok()
            .and_then(|s| s.parse().ok())
            .filter(|w| *w > 0)
            .ok_or_else(|| self.err("bad $var size"))?;
        let (vt, kind) = match self.parts[0].as_slice() {
            b"string" => (FST_VT_GEN_STRING, Kind::Text),
            b"real" | b"realtime" | b"shortreal" => (FST_VT_VCD_REAL, Kind::Real),
            b"reg" => (FST_VT_VCD_REG, Kind::Bits),
            b"integer" | b"int" => (FST_VT_VCD_INTEGER, Kind::Bits),
            b"parameter" => (FST_VT_VCD_PARAMETER, Kind::Bits),
            b"event" => (FST_VT_VCD_EVENT, Kind::Bits),
            b"logic" => (FST_VT_SV_LOGIC, Kind::Bits),
            b"bit" => (FST_VT_SV_BIT, Kind::Bits),
            _ => (FST_VT_VCD_WIRE, Kind::Bits),
        };
        let mut name = self.parts[3].clone();
        for range in &self.parts[4..] {
            name.push(b' ');
            name.extend_from_slice(range);
        }
        let name = CString::new(name).map_err(|_| self.err("NUL in a variable name"))?;
        let alias = self.vars.get(&self.parts[2]).map_or(0, |v| v.handle);
        let len = match kind {
            Kind::Text => 0,
            Kind::Real => 8,
            Kind::Bits => width,
        };
        // SAFETY: live context; libfst copies the name.
        let handle = unsafe {
            fstWriterCreateVar(self.w.ctx, vt, FST_VD_IMPLICIT, len, name.as_ptr(), alias)
        };
        if alias == 0 {
            self.vars.insert(
                self.parts[2].clone(),
                Var {
                    handle,
                    width,
                    kind,
                },
            );
        }
        Ok(())
    }

    fn body(&mut self, tok: &[u8]) -> Result<(), WavesError> {
        match tok[0] {
            b'#' => {
                let t = std::str::from_utf8(&tok[1..])
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok())
                    .ok_or_else(|| self.err("bad timestamp"))?;
                if self.last_time.is_some_and(|l| t < l) {
                    return Err(self.err(format!("timestamp #{t} goes back in time")));
                }
                self.last_time = Some(t);
                // SAFETY: live context.
                unsafe { fstWriterEmitTimeChange(self.w.ctx, t) };
            }
            b'$' => {
                if !matches!(
                    tok,
                    b"$dumpvars" | b"$dumpall" | b"$dumpon" | b"$dumpoff" | b"$end"
                ) {
                    self.state = State::BodyCmd;
                }
            }
            b'b' | b'B' | b'r' | b'R' | b's' | b'S' => {
                self.value.clear();
                self.value.extend_from_slice(tok);
                self.state = State::Code;
            }
            _ if tok.len() >= 2 => {
                self.value.clear();
                self.value.push(tok[0]);
                self.emit(&tok[1..])?;
            }
            _ => return Err(self.err("unexpected token in the value changes")),
        }
        Ok(())
    }

    /// Emits `self.value` (with its type letter, or a scalar's character)
    /// for the variable of code `code`.
    fn emit(&mut self, code: &[u8]) -> Result<(), WavesError> {
        let var = *self
            .vars
            .get(code)
            .ok_or_else(|| self.err("change of an undeclared variable"))?;
        let ctx = self.w.ctx;
        match (var.kind, self.value.first().copied().unwrap_or(b'x')) {
            (Kind::Text, b's' | b'S') => {
                let text = unescape_bytes(&self.value[1..]);
                // SAFETY: live context; `text` is valid for its length.
                unsafe {
                    fstWriterEmitVariableLengthValueChange(
                        ctx,
                        var.handle,
                        text.as_ptr().cast(),
                        text.len() as u32,
                    )
                };
            }
            (Kind::Real, b'r' | b'R') => {
                let v: f64 = std::str::from_utf8(&self.value[1..])
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| self.err("bad real value"))?;
                // SAFETY: live context; a real variable reads 8 bytes.
                unsafe { fstWriterEmitValueChange(ctx, var.handle, (&v as *const f64).cast()) };
            }
            (Kind::Bits, b'b' | b'B') => {
                pad_to(&mut self.pad, var.width, &self.value[1..]);
                self.emit_pad(var.handle);
            }
            (Kind::Bits, c) if self.value.len() == 1 => {
                pad_to(&mut self.pad, var.width, &[c]);
                self.emit_pad(var.handle);
            }
            _ => return Err(self.err("value does not fit its variable's type")),
        }
        Ok(())
    }

    fn emit_pad(&mut self, handle: FstHandle) {
        // SAFETY: live context; `pad` holds exactly the variable's width in
        // value characters, which is what libfst reads.
        unsafe { fstWriterEmitValueChange(self.w.ctx, handle, self.pad.as_ptr().cast()) };
    }
}

/// `digits` widened (as VCD does: 0 and 1 pad with 0, x with x, z with z)
/// or cut to `width` characters, lower case, into `pad`.
fn pad_to(pad: &mut Vec<u8>, width: u32, digits: &[u8]) {
    let w = width as usize;
    pad.clear();
    if digits.len() >= w {
        pad.extend_from_slice(&digits[digits.len() - w..]);
    } else {
        let fill = match digits.first() {
            Some(b'x' | b'X') => b'x',
            Some(b'z' | b'Z') => b'z',
            _ => b'0',
        };
        pad.resize(w - digits.len(), fill);
        pad.extend_from_slice(digits);
    }
    pad.make_ascii_lowercase();
}

/// `n` as a power of ten, if it is one.
fn power_of_ten(mut n: u64) -> Option<c_int> {
    let mut e = 0;
    while n > 1 && n % 10 == 0 {
        n /= 10;
        e += 1;
    }
    (n == 1).then_some(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn powers_of_ten() {
        assert_eq!(power_of_ten(1000), Some(3));
        assert_eq!(power_of_ten(1), Some(0));
        assert_eq!(power_of_ten(300), None);
    }
}
