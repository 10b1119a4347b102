//! Streaming merge of a [`HostTrace`] into a Verilator VCD, and the
//! host-only writer for runs without an RTL trace.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use super::emit::{assign_ids, top_scopes, write_defs, HostEmitter, TimeScale};
use super::error::WavesError;
use super::trace::HostTrace;

/// Byte counts of one [`merge`] or [`write_host_only`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MergeStats {
    /// Bytes read from the RTL trace (0 for [`write_host_only`]).
    pub bytes_in: u64,
    /// Bytes written to the output VCD.
    pub bytes_out: u64,
    /// Host value-change lines written, the initial dump included.
    pub host_changes: u64,
}

/// Longest line accepted in an RTL trace. Verilator writes one value change
/// per line, so only a multi-megabit vector gets near it.
const MAX_LINE: u64 = 64 << 20;

const IO_BUF: usize = 1 << 20;

/// Merges the host signals of `host` into the VCD `rtl_vcd`, writing the
/// result to `out` (through a temporary file beside it that is renamed into
/// place, so `out` is never left half-written and may even be `rtl_vcd`).
///
/// The RTL header is copied unchanged, with the host scopes inserted just
/// before `$enddefinitions`, using identifier codes that no RTL variable
/// uses. The body is copied unchanged, with each host change inserted under
/// the RTL's `#t` line for its time, or under a new `#t` line between the
/// RTL ones, or appended after the RTL's last time. The first timestamp
/// gets every host signal's initial value (`x` for a wire with no value
/// yet), inside the RTL's `$dumpvars` block if that timestamp has one, else
/// in a `$dumpvars` block of its own.
///
/// Host times are picoseconds; if the RTL `$timescale` is not `1ps` they are
/// converted to its unit (rounding down).
///
/// Lines are streamed; memory use is the host trace plus the RTL header's
/// identifier codes, whatever the size of `rtl_vcd`.
pub fn merge(rtl_vcd: &Path, host: &HostTrace, out: &Path) -> Result<MergeStats, WavesError> {
    let file = File::open(rtl_vcd).map_err(|e| WavesError::read(rtl_vcd, e))?;
    let reader = file;
    write_atomically(out, |o| Merger::new(rtl_vcd, reader, o, host).run())
}

/// Writes a VCD of the host signals alone (timescale 1ps), for runs without
/// an RTL trace. Time 0 holds every host signal's initial value; a final
/// `#end_time` line is added when `end_time` is after the last change, so a
/// viewer shows the whole run.
pub fn write_host_only(
    host: &HostTrace,
    out: &Path,
    end_time: u64,
) -> Result<MergeStats, WavesError> {
    write_atomically(out, |o| {
        let ids = assign_ids(host.signal_count(), &HashSet::new());
        let mut buf = Vec::with_capacity(4096);
        buf.extend_from_slice(b"$version\n\tshootdown host trace\n$end\n$timescale 1ps $end\n");
        write_defs(&mut buf, host, &ids);
        buf.extend_from_slice(b"$enddefinitions $end\n");
        let mut em = HostEmitter::new(host, ids, TimeScale::PS);
        let mut last = 0;
        buf.extend_from_slice(b"#0\n");
        if host.signal_count() > 0 {
            buf.extend_from_slice(b"$dumpvars\n");
            em.initial_at(0, &mut buf);
            buf.extend_from_slice(b"$end\n");
        }
        while let Some(t) = em.next_time() {
            buf.push(b'#');
            buf.extend_from_slice(t.to_string().as_bytes());
            buf.push(b'\n');
            em.changes_at(t, &mut buf);
            last = t;
            if buf.len() >= IO_BUF {
                o.put(&buf)?;
                buf.clear();
            }
        }
        if end_time > last {
            buf.push(b'#');
            buf.extend_from_slice(end_time.to_string().as_bytes());
            buf.push(b'\n');
        }
        o.put(&buf)?;
        Ok(MergeStats {
            bytes_in: 0,
            bytes_out: 0,
            host_changes: em.lines,
        })
    })
}

/// Buffered output that counts bytes and knows whether it is at the start
/// of a line.
pub(crate) struct Out {
    w: BufWriter<File>,
    path: PathBuf,
    n: u64,
    at_line_start: bool,
}

impl Out {
    pub(crate) fn put(&mut self, b: &[u8]) -> Result<(), WavesError> {
        if b.is_empty() {
            return Ok(());
        }
        self.w
            .write_all(b)
            .map_err(|e| WavesError::write(&self.path, e))?;
        self.n += b.len() as u64;
        self.at_line_start = b[b.len() - 1] == b'\n';
        Ok(())
    }

    fn newline(&mut self) -> Result<(), WavesError> {
        if self.at_line_start {
            Ok(())
        } else {
            self.put(b"\n")
        }
    }
}

/// Runs `f` on a temporary file beside `out` (unique to this call, see
/// [`temp_path`](super::temp_path)), then renames it to `out`; on error the
/// temporary file is removed. Fills in `bytes_out`.
fn write_atomically(
    out: &Path,
    f: impl FnOnce(&mut Out) -> Result<MergeStats, WavesError>,
) -> Result<MergeStats, WavesError> {
    if out.file_name().is_none() {
        return Err(WavesError::write(
            out,
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file path"),
        ));
    }
    let tmp = super::tmp::temp_path(out, "tmp");
    let file = File::create(&tmp).map_err(|e| WavesError::write(out, e))?;
    let mut o = Out {
        w: BufWriter::with_capacity(IO_BUF, file),
        path: out.to_path_buf(),
        n: 0,
        at_line_start: true,
    };
    let result = f(&mut o).and_then(|mut stats| {
        o.w.flush().map_err(|e| WavesError::write(out, e))?;
        stats.bytes_out = o.n;
        Ok(stats)
    });
    drop(o);
    match result {
        Ok(stats) => {
            fs::rename(&tmp, out).map_err(|e| {
                let _ = fs::remove_file(&tmp);
                WavesError::write(out, e)
            })?;
            Ok(stats)
        }
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hdr {
    /// Between commands.
    Top,
    /// Inside a command whose content is ignored, up to its `$end`.
    Skip,
    /// Inside `$var`, after this many tokens.
    Var(u8),
    /// Inside `$scope`, after this many tokens.
    Scope(u8),
    Timescale,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Body {
    /// Expecting a timestamp, a value change or a command.
    Normal,
    /// The previous token was a vector, real or string value: this one is
    /// its identifier code.
    ExpectId,
    /// Inside a command (`$comment`, ...), up to its `$end`.
    Command,
}

struct Merger<'a, R> {
    src: &'a Path,
    reader: R,
    out: &'a mut Out,
    host: &'a HostTrace,
    line_no: u64,
    bytes_in: u64,
    /// Bytes of the current line already written.
    written: usize,

    in_header: bool,
    hdr: Hdr,
    depth: u32,
    scope_name: Vec<u8>,
    taken: HashSet<Vec<u8>>,
    rtl_tops: Vec<Vec<u8>>,
    timescale_text: String,
    scale: TimeScale,

    emitter: Option<HostEmitter<'a>>,
    body: Body,
    /// The first timestamp (or the implicit time 0 before it) was seen.
    started: bool,
    last_time: Option<u64>,
    /// The initial dump, waiting to see whether the RTL's first timestamp
    /// has a `$dumpvars` block to put it in.
    deferred: Option<Vec<u8>>,
    buf: Vec<u8>,
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// Position of the first byte of `s` at or below `' '` (a blank, a line
/// end or another control character), eight bytes at a time.
pub(crate) fn find_blank(s: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut chunks = s.chunks_exact(8);
    let mut at = 0;
    for c in &mut chunks {
        let x = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        // A byte below 0x21 (high bit clear) sets its high bit here; bytes
        // above the first such one may be flagged wrongly, the first is not.
        let low = x.wrapping_sub(ONES * 0x21) & !x & HIGHS;
        if low != 0 {
            return Some(at + (low.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b <= b' ')
        .map(|i| at + i)
}

/// Position of the first `\n` in `s`, eight bytes at a time.
fn find_newline(s: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut chunks = s.chunks_exact(8);
    let mut at = 0;
    for c in &mut chunks {
        let x = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])
            ^ (ONES * u64::from(b'\n'));
        // A zero byte of x (a newline in s) sets its high bit here; bytes
        // above the first zero may be flagged wrongly, the first one is not.
        let zero = x.wrapping_sub(ONES) & !x & HIGHS;
        if zero != 0 {
            return Some(at + (zero.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == b'\n')
        .map(|i| at + i)
}

fn show(tok: &[u8]) -> String {
    let s = String::from_utf8_lossy(tok);
    if s.chars().count() > 40 {
        let cut: String = s.chars().take(40).collect();
        format!("{cut}...")
    } else {
        s.into_owned()
    }
}

fn parse_u64(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(v)
}

impl<'a, R: Read> Merger<'a, R> {
    fn new(src: &'a Path, reader: R, out: &'a mut Out, host: &'a HostTrace) -> Self {
        Merger {
            src,
            reader,
            out,
            host,
            line_no: 0,
            bytes_in: 0,
            written: 0,
            in_header: true,
            hdr: Hdr::Top,
            depth: 0,
            scope_name: Vec::new(),
            taken: HashSet::new(),
            rtl_tops: Vec::new(),
            timescale_text: String::new(),
            scale: TimeScale::PS,
            emitter: None,
            body: Body::Normal,
            started: false,
            last_time: None,
            deferred: None,
            buf: Vec::new(),
        }
    }

    fn err(&self, reason: impl Into<String>) -> WavesError {
        WavesError::malformed(self.src, self.line_no.max(1), reason)
    }

    /// Reads the RTL trace in blocks of [`IO_BUF`] bytes and walks it line by
    /// line. A line that needs nothing inserted (see
    /// [`fast_line`](Self::fast_line): almost every line Verilator writes)
    /// is not copied on its own: runs of them go out as one slice of the
    /// block. Other lines go through the token state machine.
    fn run(mut self) -> Result<MergeStats, WavesError> {
        let mut buf = vec![0u8; IO_BUF];
        let mut len = 0;
        let mut eof = false;
        loop {
            while !eof && len < buf.len() {
                let n = self
                    .reader
                    .read(&mut buf[len..])
                    .map_err(|e| WavesError::read(self.src, e))?;
                if n == 0 {
                    eof = true;
                }
                len += n;
                self.bytes_in += n as u64;
            }
            let (mut pos, mut pending) = (0, 0);
            while pos < len {
                self.line_no += 1;
                if let Some(n) = self.fast_line(&buf[pos..len]) {
                    pos += n;
                    continue;
                }
                let end = match find_newline(&buf[pos..len]) {
                    Some(i) => pos + i + 1,
                    None if eof => len,
                    None => {
                        self.line_no -= 1;
                        break;
                    }
                };
                let line = &buf[pos..end];
                self.out.put(&buf[pending..pos])?;
                self.written = 0;
                self.process_line(line)?;
                if self.written < line.len() {
                    self.out.put(&line[self.written..])?;
                }
                pending = end;
                pos = end;
            }
            self.out.put(&buf[pending..pos])?;
            if eof && pos == len {
                break;
            }
            buf.copy_within(pos..len, 0);
            len -= pos;
            if len == buf.len() {
                // One line fills the whole buffer.
                if buf.len() as u64 >= MAX_LINE {
                    self.line_no += 1;
                    return Err(self.err(format!("line longer than {MAX_LINE} bytes")));
                }
                buf.resize(buf.len() * 2, 0);
            }
        }
        self.finish()
    }

    /// When the line at the start of `s` is a body line after which nothing
    /// is inserted and that the token state machine would only copy, its
    /// length (newline included): a scalar value change, a vector, real or
    /// string value change in one token pair, or a timestamp (in order)
    /// before which and at which the host has no change, each alone on its
    /// line ending in `\n`. Anything else, and any malformed line, is left to
    /// [`process_line`](Self::process_line).
    fn fast_line(&mut self, s: &[u8]) -> Option<usize> {
        if self.in_header || self.body != Body::Normal || !self.started || self.deferred.is_some() {
            return None;
        }
        let first = *s.first()?;
        // The first blank or control byte: the line's end, or the blank
        // between a vector and its code.
        let p = find_blank(s)?;
        match first {
            b'#' if s[p] == b'\n' => {
                let t = parse_u64(&s[1..p])?;
                let em = self.emitter.as_ref()?;
                let quiet = em.initial_done && em.next_time().is_none_or(|h| h > t);
                if quiet && self.last_time.is_none_or(|last| t >= last) {
                    self.last_time = Some(t);
                    Some(p + 1)
                } else {
                    None
                }
            }
            b'0' | b'1' | b'x' | b'X' | b'z' | b'Z' | b'h' | b'H' | b'l' | b'L' | b'u' | b'U'
            | b'w' | b'W' | b'-'
                if s[p] == b'\n' && p >= 2 =>
            {
                Some(p + 1)
            }
            b'b' | b'B' | b'r' | b'R' | b's' | b'S' if s[p] == b' ' => {
                let code = &s[p + 1..];
                let q = find_blank(code)?;
                (q > 0 && code[q] == b'\n').then_some(p + 1 + q + 1)
            }
            _ => None,
        }
    }

    fn process_line(&mut self, line: &[u8]) -> Result<(), WavesError> {
        let n = line.len();
        let mut i = 0;
        while i < n {
            while i < n && is_ws(line[i]) {
                i += 1;
            }
            if i == n {
                break;
            }
            let s = i;
            while i < n && !is_ws(line[i]) {
                i += 1;
            }
            if self.in_header {
                self.header_token(line, s, i)?;
            } else {
                self.body_token(line, s, i)?;
            }
        }
        Ok(())
    }

    fn header_token(&mut self, line: &[u8], s: usize, e: usize) -> Result<(), WavesError> {
        let tok = &line[s..e];
        let end = tok == b"$end";
        match self.hdr {
            Hdr::Skip => {
                if end {
                    self.hdr = Hdr::Top;
                }
            }
            Hdr::Var(k) => {
                if end {
                    if k < 4 {
                        return Err(self.err("incomplete $var (needs type, size, code, name)"));
                    }
                    self.hdr = Hdr::Top;
                } else {
                    if k == 1 && parse_u64(tok).is_none() {
                        return Err(self.err(format!("$var size `{}` is not a number", show(tok))));
                    }
                    if k == 2 {
                        self.taken.insert(tok.to_vec());
                    }
                    self.hdr = Hdr::Var(k.saturating_add(1));
                }
            }
            Hdr::Scope(k) => {
                if end {
                    if k < 2 {
                        return Err(self.err("incomplete $scope (needs type and name)"));
                    }
                    if self.depth == 0 {
                        self.rtl_tops.push(std::mem::take(&mut self.scope_name));
                    }
                    self.depth += 1;
                    self.hdr = Hdr::Top;
                } else {
                    if k == 1 {
                        self.scope_name = tok.to_vec();
                    }
                    self.hdr = Hdr::Scope(k.saturating_add(1));
                }
            }
            Hdr::Timescale => {
                if end {
                    self.scale = TimeScale::parse(&self.timescale_text).ok_or_else(|| {
                        self.err(format!("unsupported $timescale `{}`", self.timescale_text))
                    })?;
                    self.hdr = Hdr::Top;
                } else {
                    self.timescale_text.push_str(&String::from_utf8_lossy(tok));
                }
            }
            Hdr::Top => {
                if tok[0] != b'$' {
                    return Err(self.err(format!(
                        "unexpected `{}` in the header (not a VCD file?)",
                        show(tok)
                    )));
                }
                match tok {
                    b"$var" => self.hdr = Hdr::Var(0),
                    b"$scope" => self.hdr = Hdr::Scope(0),
                    b"$upscope" => {
                        if self.depth == 0 {
                            return Err(self.err("$upscope without an open $scope"));
                        }
                        self.depth -= 1;
                        self.hdr = Hdr::Skip;
                    }
                    b"$timescale" => {
                        self.timescale_text.clear();
                        self.hdr = Hdr::Timescale;
                    }
                    b"$enddefinitions" => self.end_definitions(line, s)?,
                    b"$end" => {}
                    _ => self.hdr = Hdr::Skip,
                }
            }
        }
        Ok(())
    }

    /// Inserts the host scopes before the `$enddefinitions` token at `s`
    /// and switches to the body.
    fn end_definitions(&mut self, line: &[u8], s: usize) -> Result<(), WavesError> {
        if self.depth != 0 {
            return Err(self.err(format!(
                "$enddefinitions inside {} unclosed $scope(s)",
                self.depth
            )));
        }
        for top in top_scopes(self.host) {
            if self.rtl_tops.iter().any(|t| t == top.as_bytes()) {
                return Err(WavesError::ScopeClash {
                    path: self.src.to_path_buf(),
                    scope: top.to_string(),
                });
            }
        }
        let taken = std::mem::take(&mut self.taken);
        let ids = assign_ids(self.host.signal_count(), &taken);
        drop(taken);
        let mut defs = Vec::new();
        write_defs(&mut defs, self.host, &ids);
        self.insert_before(line, s, &defs)?;
        self.emitter = Some(HostEmitter::new(self.host, ids, self.scale));
        self.in_header = false;
        // The `$end` closing `$enddefinitions`.
        self.body = Body::Command;
        Ok(())
    }

    fn emitter(&mut self) -> &mut HostEmitter<'a> {
        self.emitter
            .as_mut()
            .expect("emitter exists once the header is done")
    }

    fn body_token(&mut self, line: &[u8], s: usize, e: usize) -> Result<(), WavesError> {
        match self.body {
            Body::ExpectId => {
                self.body = Body::Normal;
                return Ok(());
            }
            Body::Command => {
                if &line[s..e] == b"$end" {
                    self.body = Body::Normal;
                }
                return Ok(());
            }
            Body::Normal => {}
        }
        let tok = &line[s..e];
        match tok[0] {
            b'#' => {
                let t = parse_u64(&tok[1..])
                    .ok_or_else(|| self.err(format!("bad timestamp `{}`", show(tok))))?;
                if let Some(last) = self.last_time {
                    if t < last {
                        return Err(self.err(format!("timestamp #{t} comes after #{last}")));
                    }
                }
                self.last_time = Some(t);
                self.started = true;
                self.flush_deferred(line, s)?;
                let mut buf = std::mem::take(&mut self.buf);
                buf.clear();
                self.emitter().blocks_before(Some(t), &mut buf);
                self.insert_before(line, s, &buf)?;
                buf.clear();
                if self.emitter().initial_done {
                    self.emitter().changes_at(t, &mut buf);
                    self.insert_after(line, e, &buf)?;
                } else {
                    let mut init = Vec::new();
                    self.emitter().initial_at(t, &mut init);
                    if !init.is_empty() {
                        self.deferred = Some(init);
                    }
                }
                self.buf = buf;
            }
            b'$' => match tok {
                b"$end" => {}
                b"$comment" => self.body = Body::Command,
                b"$dumpvars" | b"$dumpall" | b"$dumpon" | b"$dumpoff" => {
                    self.start_implicit();
                    if tok == b"$dumpvars" {
                        if let Some(d) = self.deferred.take() {
                            self.insert_after(line, e, &d)?;
                        }
                    } else {
                        self.flush_deferred(line, s)?;
                    }
                }
                _ => {
                    self.flush_deferred(line, s)?;
                    self.body = Body::Command;
                }
            },
            b'0' | b'1' | b'x' | b'X' | b'z' | b'Z' | b'h' | b'H' | b'l' | b'L' | b'u' | b'U'
            | b'w' | b'W' | b'-' => {
                if tok.len() < 2 {
                    return Err(self.err(format!(
                        "scalar value `{}` without an identifier code",
                        show(tok)
                    )));
                }
                self.start_implicit();
                self.flush_deferred(line, s)?;
            }
            b'b' | b'B' | b'r' | b'R' | b's' | b'S' => {
                self.start_implicit();
                self.flush_deferred(line, s)?;
                self.body = Body::ExpectId;
            }
            _ => {
                return Err(self.err(format!("unexpected `{}` in the value changes", show(tok))));
            }
        }
        Ok(())
    }

    /// Value changes before any timestamp belong to time 0: start there.
    fn start_implicit(&mut self) {
        if self.started {
            return;
        }
        self.started = true;
        self.last_time = Some(0);
        if !self.emitter().initial_done {
            let mut init = Vec::new();
            self.emitter().initial_at(0, &mut init);
            if !init.is_empty() {
                self.deferred = Some(init);
            }
        }
    }

    /// Writes the deferred initial dump, in a `$dumpvars` block of its own,
    /// before the token at `pos`.
    fn flush_deferred(&mut self, line: &[u8], pos: usize) -> Result<(), WavesError> {
        if let Some(d) = self.deferred.take() {
            let mut wrapped = Vec::with_capacity(d.len() + 16);
            wrapped.extend_from_slice(b"$dumpvars\n");
            wrapped.extend_from_slice(&d);
            wrapped.extend_from_slice(b"$end\n");
            self.insert_before(line, pos, &wrapped)?;
        }
        Ok(())
    }

    /// Writes the unwritten part of `line` up to `pos` (trailing blanks
    /// dropped), ends the output line, then writes `bytes` (whole lines).
    fn insert_before(&mut self, line: &[u8], pos: usize, bytes: &[u8]) -> Result<(), WavesError> {
        if bytes.is_empty() {
            return Ok(());
        }
        let mut pre = &line[self.written..pos];
        while let Some((&last, rest)) = pre.split_last() {
            if !is_ws(last) {
                break;
            }
            pre = rest;
        }
        self.out.put(pre)?;
        self.out.newline()?;
        self.out.put(bytes)?;
        self.written = pos;
        Ok(())
    }

    /// Like [`insert_before`](Self::insert_before) at the end `end` of a
    /// token; when only blanks follow on the line they are dropped.
    fn insert_after(&mut self, line: &[u8], end: usize, bytes: &[u8]) -> Result<(), WavesError> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.insert_before(line, end, bytes)?;
        if line[end..].iter().all(|&b| is_ws(b)) {
            self.written = line.len();
        }
        Ok(())
    }

    fn finish(mut self) -> Result<MergeStats, WavesError> {
        if self.in_header {
            return Err(self.err("no $enddefinitions: not a VCD file, or its header is truncated"));
        }
        match self.body {
            Body::ExpectId => {
                return Err(self.err("file ends inside a value change (truncated?)"));
            }
            Body::Command => {
                return Err(self.err("file ends inside a $command without $end (truncated?)"));
            }
            Body::Normal => {}
        }
        if let Some(d) = self.deferred.take() {
            self.out.newline()?;
            self.out.put(b"$dumpvars\n")?;
            self.out.put(&d)?;
            self.out.put(b"$end\n")?;
        }
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        self.emitter().blocks_before(None, &mut buf);
        if !buf.is_empty() {
            self.out.newline()?;
            self.out.put(&buf)?;
        }
        let host_changes = self.emitter().lines;
        Ok(MergeStats {
            bytes_in: self.bytes_in,
            bytes_out: 0,
            host_changes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct TmpDir(PathBuf);

    impl TmpDir {
        fn new(tag: &str) -> Self {
            let d = std::env::temp_dir().join(format!("waves_unit_{tag}_{}", std::process::id()));
            let _ = fs::remove_dir_all(&d);
            fs::create_dir_all(&d).unwrap();
            TmpDir(d)
        }
        fn file(&self, name: &str, content: &[u8]) -> PathBuf {
            let p = self.0.join(name);
            fs::write(&p, content).unwrap();
            p
        }
    }

    impl Drop for TmpDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn merge_str(tag: &str, rtl: &str, host: &HostTrace) -> Result<String, WavesError> {
        let d = TmpDir::new(tag);
        let src = d.file("rtl.vcd", rtl.as_bytes());
        let out = d.0.join("merged.vcd");
        let stats = merge(&src, host, &out)?;
        let text = fs::read_to_string(&out).unwrap();
        assert_eq!(stats.bytes_in, rtl.len() as u64);
        assert_eq!(stats.bytes_out, text.len() as u64);
        assert_eq!(fs::read_dir(&d.0).unwrap().count(), 2, "no temporary left");
        Ok(text)
    }

    const VERILATOR: &str = "$version Generated by VerilatedVcd $end\n\
$timescale 1ps $end\n\
\n\
 $scope module TOP $end\n\
  $var wire 1 # clk $end\n\
  $var wire 8 $ cq_head_o [7:0] $end\n\
 $upscope $end\n\
$enddefinitions $end\n\
\n\
\n\
#0\n\
0#\n\
b00000000 $\n\
#500\n\
1#\n\
#1000\n\
0#\n\
b00000001 $\n";

    #[test]
    fn verilator_style_exact_output() {
        let mut h = HostTrace::new();
        let w = h.wire(&["host"], "w", 1);
        let step = h.text(&["host"], "step");
        h.set_text(0, step, "idle");
        h.set_text(750, step, "a b");
        h.set(1000, w, 1);
        h.set(3000, w, 0);
        let got = merge_str("verilator", VERILATOR, &h).unwrap();
        let expect = "$version Generated by VerilatedVcd $end\n\
$timescale 1ps $end\n\
\n\
 $scope module TOP $end\n\
  $var wire 1 # clk $end\n\
  $var wire 8 $ cq_head_o [7:0] $end\n\
 $upscope $end\n\
$scope module host $end\n\
$var wire 1 ! w $end\n\
$var string 1 \" step $end\n\
$upscope $end\n\
$enddefinitions $end\n\
\n\
\n\
#0\n\
$dumpvars\n\
x!\n\
sidle \"\n\
$end\n\
0#\n\
b00000000 $\n\
#500\n\
1#\n\
#750\n\
sa\\040b \"\n\
#1000\n\
1!\n\
0#\n\
b00000001 $\n\
#3000\n\
0!\n";
        assert_eq!(got, expect);
    }

    #[test]
    fn dumpvars_comments_and_multi_token_lines() {
        let rtl = "$date today $end\n\
$timescale 1ns $end\n\
$comment a $var wire 1 ? fake inside comment $end\n\
$scope module TOP $end $var wire 1 ! clk $end $var reg 4 \" cnt [3:0] $end $upscope $end $enddefinitions $end\n\
#0 $dumpvars 0! b0000 \" $end\n\
$comment #5 is not a time $end\n\
#5 1! #10 0! b0001 \"\n";
        let mut h = HostTrace::new();
        let w = h.wire(&["host"], "w", 1);
        h.set(5000, w, 1); // 5 ns
        h.set(7000, w, 0); // 7 ns
        let got = merge_str("dumpvars", rtl, &h).unwrap();
        let expect = "$date today $end\n\
$timescale 1ns $end\n\
$comment a $var wire 1 ? fake inside comment $end\n\
$scope module TOP $end $var wire 1 ! clk $end $var reg 4 \" cnt [3:0] $end $upscope $end\n\
$scope module host $end\n\
$var wire 1 # w $end\n\
$upscope $end\n\
$enddefinitions $end\n\
#0 $dumpvars\n\
x#\n \
0! b0000 \" $end\n\
$comment #5 is not a time $end\n\
#5\n\
1#\n \
1!\n\
#7\n\
0#\n\
#10 0! b0001 \"\n";
        assert_eq!(got, expect);
    }

    #[test]
    fn host_before_first_rtl_time_and_without_body() {
        let rtl = "$timescale 1ps $end\n$scope module TOP $end\n$var wire 1 ! a $end\n$upscope $end\n$enddefinitions $end\n#2000\n1!\n";
        let mut h = HostTrace::new();
        let w = h.wire(&["host"], "v", 4);
        h.set(1000, w, 9);
        h.set(2000, w, 3);
        let got = merge_str("early", rtl, &h).unwrap();
        assert!(
            got.ends_with(
                "$enddefinitions $end\n#1000\n$dumpvars\nb1001 \"\n$end\n#2000\nb0011 \"\n1!\n"
            ),
            "{got}"
        );
        // An RTL trace with no value changes at all.
        let bare = "$timescale 1ps $end\n$scope module TOP $end\n$var wire 1 ! a $end\n$upscope $end\n$enddefinitions $end";
        let got = merge_str("bare", bare, &h).unwrap();
        assert!(
            got.ends_with(
                "$enddefinitions $end\n#1000\n$dumpvars\nb1001 \"\n$end\n#2000\nb0011 \"\n"
            ),
            "{got}"
        );
    }

    #[test]
    fn values_before_any_timestamp_are_time_zero() {
        let rtl = "$scope module TOP $end\n$var wire 1 ! a $end\n$upscope $end\n$enddefinitions $end\n$dumpvars\n0!\n$end\n#10\n1!\n";
        let mut h = HostTrace::new();
        let w = h.wire(&["host"], "v", 1);
        h.set(0, w, 1);
        h.set(10, w, 0);
        let got = merge_str("implicit", rtl, &h).unwrap();
        assert!(
            got.ends_with("$enddefinitions $end\n$dumpvars\n1\"\n0!\n$end\n#10\n0\"\n1!\n"),
            "{got}"
        );
    }

    #[test]
    fn newline_search_finds_the_first() {
        for n in 0..40 {
            let mut v = vec![b'a'; n];
            assert_eq!(find_newline(&v), None);
            for at in 0..n {
                v[at] = b'\n';
                if at + 3 < n {
                    v[at + 3] = b'\n';
                }
                assert_eq!(find_newline(&v), Some(at), "n {n} at {at}");
                v.fill(0x8a);
                assert_eq!(find_newline(&v), None);
                v.fill(b'a');
            }
        }
    }

    #[test]
    fn blank_search_finds_the_first_control_byte() {
        for n in 0..40 {
            let mut v = vec![b'a'; n];
            assert_eq!(find_blank(&v), None);
            for at in 0..n {
                for b in [b' ', b'\n', b'\t', 0u8, 0x20] {
                    v[at] = b;
                    if at + 2 < n {
                        v[at + 2] = b'\n';
                    }
                    assert_eq!(find_blank(&v), Some(at), "n {n} at {at} byte {b}");
                    v.fill(b'a');
                }
                v.fill(0xa0);
                assert_eq!(find_blank(&v), None, "bytes above 0x80 are not blanks");
                v[at] = b'!';
                assert_eq!(find_blank(&v), None);
                v.fill(b'a');
            }
        }
    }

    #[test]
    fn empty_host_trace_copies_input_exactly() {
        let got = merge_str("empty", VERILATOR, &HostTrace::new()).unwrap();
        assert_eq!(got, VERILATOR);
    }

    #[test]
    fn host_signals_without_changes_are_x() {
        let mut h = HostTrace::new();
        h.wire(&["host"], "a", 1);
        h.wire(&["host"], "b", 3);
        h.text(&["host"], "c");
        let got = merge_str("nochanges", VERILATOR, &h).unwrap();
        assert!(
            got.contains("#0\n$dumpvars\nx!\nbx \"\n$end\n0#\n"),
            "{got}"
        );
    }

    #[test]
    fn output_may_replace_input() {
        let d = TmpDir::new("inplace");
        let src = d.file("t.vcd", VERILATOR.as_bytes());
        let mut h = HostTrace::new();
        let w = h.wire(&["host"], "w", 1);
        h.set(500, w, 1);
        merge(&src, &h, &src).unwrap();
        let got = fs::read_to_string(&src).unwrap();
        assert!(got.contains("#500\n1!\n1#\n"), "{got}");
    }

    #[test]
    fn identical_inputs_give_identical_output() {
        let mut h = HostTrace::new();
        let w = h.wire(&["host", "a"], "w", 7);
        let s = h.text(&["host", "b"], "s");
        for c in 0..50u64 {
            h.set(c * 1000, w, c * 3);
            h.set_text(c * 1000 + 250, s, &format!("step {c}"));
        }
        let a = merge_str("det1", VERILATOR, &h).unwrap();
        let b = merge_str("det2", VERILATOR, &h).unwrap();
        assert_eq!(a, b);
    }

    fn merge_err(tag: &str, rtl: &[u8], host: &HostTrace) -> WavesError {
        let d = TmpDir::new(tag);
        let src = d.file("bad.vcd", rtl);
        let out = d.0.join("out.vcd");
        let e = merge(&src, host, &out).unwrap_err();
        assert!(!out.exists(), "no output on error");
        assert_eq!(fs::read_dir(&d.0).unwrap().count(), 1, "temporary removed");
        let msg = e.to_string();
        assert!(msg.starts_with("[waves] "), "{msg}");
        assert!(msg.contains("bad.vcd"), "{msg}");
        e
    }

    fn line_of(e: &WavesError) -> u64 {
        match e {
            WavesError::Malformed { line, .. } => *line,
            other => panic!("expected Malformed, got {other:?}"),
        }
    }

    #[test]
    fn malformed_inputs_are_errors_with_lines() {
        let h = {
            let mut h = HostTrace::new();
            let w = h.wire(&["host"], "w", 1);
            h.set(0, w, 1);
            h
        };
        let hdr =
            "$scope module TOP $end\n$var wire 1 ! a $end\n$upscope $end\n$enddefinitions $end\n";
        let e = merge_err(
            "noend",
            b"$scope module TOP $end\n$var wire 1 ! a $end\n",
            &h,
        );
        assert_eq!(line_of(&e), 2);
        assert!(e.to_string().contains("$enddefinitions"));

        let e = merge_err("garbage", b"\x89PNG\r\n\x1a\n\x00\x00binary", &h);
        assert_eq!(line_of(&e), 1);

        let e = merge_err("badtime", format!("{hdr}#0\n1!\n#12x\n").as_bytes(), &h);
        assert_eq!(line_of(&e), 7);
        assert!(e.to_string().contains("bad timestamp `#12x`"), "{e}");

        let e = merge_err("backwards", format!("{hdr}#10\n1!\n#5\n").as_bytes(), &h);
        assert_eq!(line_of(&e), 7);

        let e = merge_err("truncated", format!("{hdr}#0\nb0101").as_bytes(), &h);
        assert_eq!(line_of(&e), 6);
        assert!(e.to_string().contains("truncated"));

        let e = merge_err("lonescalar", format!("{hdr}#0\n1\n").as_bytes(), &h);
        assert_eq!(line_of(&e), 6);

        let e = merge_err("junk", format!("{hdr}#0\n?!\n").as_bytes(), &h);
        assert_eq!(line_of(&e), 6);

        let e = merge_err(
            "badvar",
            b"$scope module TOP $end\n$var wire ! a $end\n",
            &h,
        );
        assert_eq!(line_of(&e), 2);

        let e = merge_err(
            "openscope",
            b"$scope module TOP $end\n$var wire 1 ! a $end\n$enddefinitions $end\n",
            &h,
        );
        assert_eq!(line_of(&e), 3);

        let e = merge_err("upscope", b"$upscope $end\n$enddefinitions $end\n", &h);
        assert_eq!(line_of(&e), 1);

        let e = merge_err(
            "timescale",
            format!("$timescale 3 weeks $end\n{hdr}").as_bytes(),
            &h,
        );
        assert_eq!(line_of(&e), 1);

        let e = merge_err(
            "clash",
            b"$scope module host $end\n$var wire 1 ! a $end\n$upscope $end\n$enddefinitions $end\n",
            &h,
        );
        assert!(
            matches!(e, WavesError::ScopeClash { ref scope, .. } if scope == "host"),
            "{e:?}"
        );
    }

    #[test]
    fn unwritable_output_is_a_write_error_naming_it() {
        let d = TmpDir::new("unwritable");
        let src = d.file("t.vcd", VERILATOR.as_bytes());
        let out = d.0.join("no_such_dir").join("o.vcd");
        let e = merge(&src, &HostTrace::new(), &out).unwrap_err();
        assert!(matches!(e, WavesError::Write { .. }), "{e:?}");
        let msg = e.to_string();
        assert!(msg.starts_with("[waves] cannot write "), "{msg}");
        assert!(msg.contains("no_such_dir/o.vcd"), "{msg}");
    }

    #[test]
    fn missing_input_is_a_read_error() {
        let d = TmpDir::new("missing");
        let src = d.0.join("nope.vcd");
        let e = merge(&src, &HostTrace::new(), &d.0.join("o.vcd")).unwrap_err();
        assert!(matches!(e, WavesError::Read { .. }));
        assert!(e.to_string().starts_with("[waves] cannot read "));
        assert!(e.to_string().contains("nope.vcd"));
    }

    #[test]
    fn host_only_exact_output() {
        let d = TmpDir::new("hostonly");
        let mut h = HostTrace::new();
        let w = h.wire(&["host", "pages", "addrA"], "window", 1);
        let s = h.text(&["host", "cpu0"], "step");
        h.set(1000, w, 1);
        h.set_text(1000, s, "flush");
        h.set(2000, w, 0);
        let out = d.0.join("h.vcd");
        let stats = write_host_only(&h, &out, 5000).unwrap();
        let got = fs::read_to_string(&out).unwrap();
        let expect = "$version\n\tshootdown host trace\n$end\n$timescale 1ps $end\n\
$scope module host $end\n\
$scope module pages $end\n\
$scope module addrA $end\n\
$var wire 1 ! window $end\n\
$upscope $end\n\
$upscope $end\n\
$scope module cpu0 $end\n\
$var string 1 \" step $end\n\
$upscope $end\n\
$upscope $end\n\
$enddefinitions $end\n\
#0\n$dumpvars\nx!\n$end\n\
#1000\n1!\nsflush \"\n\
#2000\n0!\n\
#5000\n";
        assert_eq!(got, expect);
        assert_eq!(stats.bytes_out, expect.len() as u64);
        assert_eq!(stats.host_changes, 4);
    }
}
