//! [`HostTrace`]: the host's own signals and their value changes, kept in
//! memory during a run and written out by [`merge`](super::merge) or
//! [`write_host_only`](super::write_host_only).

use std::collections::HashMap;

use super::gtkw::{GtkwFormat, GtkwSignal};

/// Widest host wire. Values are `u64`, so a wider wire could only ever carry
/// zeros in its upper bits; [`HostTrace::wire`] clamps the width to this.
pub const MAX_WIRE_WIDTH: u32 = 64;

/// Scope used for a signal registered with an empty scope path.
pub const DEFAULT_SCOPE: &str = "host";

/// Handle of one host signal, returned by [`HostTrace::wire`] and
/// [`HostTrace::text`]. Only meaningful for the trace that returned it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SigId(u32);

impl SigId {
    /// Position of the signal in registration order (0-based).
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// What a host signal carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SigKind {
    /// A bit vector (`$var wire W`), 1..=64 bits.
    Wire(u32),
    /// A string (`$var string 1`).
    Text,
}

#[derive(Clone, Debug)]
pub(crate) struct Signal {
    pub(crate) scope: Vec<String>,
    pub(crate) name: String,
    pub(crate) kind: SigKind,
    /// Index into `HostTrace::changes` of this signal's latest change, in
    /// call order.
    last: Option<usize>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Value {
    Bits(u64),
    Text(Box<str>),
}

#[derive(Clone, Debug)]
pub(crate) struct Change {
    pub(crate) time: u64,
    pub(crate) sig: u32,
    pub(crate) value: Value,
}

/// Host signals and their value changes, in memory.
///
/// Times are in picoseconds, the Verilator trace's time base (cycle `c` is
/// time `c * 1000`). Changes are meant to be recorded with non-decreasing
/// times; a debug build asserts it, a release build tolerates it and sorts
/// the changes stably by time when they are written.
///
/// Scope and signal names are sanitised for VCD and GTKWave: every character
/// other than ASCII letters, digits and `_` becomes `_` (so `.` cannot split a
/// name into hierarchy levels and spaces cannot break the VCD tokens). An
/// empty scope path puts the signal under [`DEFAULT_SCOPE`].
#[derive(Clone, Debug)]
pub struct HostTrace {
    signals: Vec<Signal>,
    by_path: HashMap<(Vec<String>, String), u32>,
    changes: Vec<Change>,
    max_time: u64,
    out_of_order: bool,
}

impl Default for HostTrace {
    fn default() -> Self {
        Self::new()
    }
}

impl HostTrace {
    /// An empty trace.
    pub fn new() -> Self {
        HostTrace {
            signals: Vec::new(),
            by_path: HashMap::new(),
            changes: Vec::new(),
            max_time: 0,
            out_of_order: false,
        }
    }

    /// Registers a bit-vector signal of `width` bits (clamped to
    /// 1..=[`MAX_WIRE_WIDTH`]) named `name` under `scope`, e.g.
    /// `wire(&["host", "pages", "addrA"], "window", 1)`. It has no value
    /// (`x`) until the first [`set`](Self::set).
    ///
    /// Registering the same scope and name again with the same kind returns
    /// the same id; with another width or kind the new signal gets a `_2`,
    /// `_3`, ... suffix.
    pub fn wire(&mut self, scope: &[&str], name: &str, width: u32) -> SigId {
        self.register(scope, name, SigKind::Wire(width.clamp(1, MAX_WIRE_WIDTH)))
    }

    /// Registers a string-valued signal (shown as text by GTKWave).
    pub fn text(&mut self, scope: &[&str], name: &str) -> SigId {
        self.register(scope, name, SigKind::Text)
    }

    fn register(&mut self, scope: &[&str], name: &str, kind: SigKind) -> SigId {
        let mut scope: Vec<String> = scope.iter().map(|s| sanitize(s)).collect();
        if scope.is_empty() {
            scope.push(DEFAULT_SCOPE.to_string());
        }
        let base = sanitize(name);
        let mut name = base.clone();
        let mut n = 1u32;
        loop {
            match self.by_path.get(&(scope.clone(), name.clone())) {
                Some(&i) if self.signals[i as usize].kind == kind => return SigId(i),
                Some(_) => {
                    n += 1;
                    name = format!("{base}_{n}");
                }
                None => break,
            }
        }
        let id = u32::try_from(self.signals.len()).expect("more than 2^32 host signals");
        self.by_path.insert((scope.clone(), name.clone()), id);
        self.signals.push(Signal {
            scope,
            name,
            kind,
            last: None,
        });
        SigId(id)
    }

    /// Records `value` (masked to the wire's width) for wire `sig` at `time`,
    /// unless it equals the signal's current value. A second change of the
    /// same signal at the same time replaces the first.
    ///
    /// Ignored (and a debug assertion) when `sig` is a text signal or does
    /// not belong to this trace.
    pub fn set(&mut self, time: u64, sig: SigId, value: u64) {
        let Some(s) = self.signals.get(sig.index()) else {
            debug_assert!(false, "[waves] set(): unknown signal {sig:?}");
            return;
        };
        let SigKind::Wire(width) = s.kind else {
            debug_assert!(false, "[waves] set() on text signal {}", s.name);
            return;
        };
        let value = if width >= 64 {
            value
        } else {
            value & ((1u64 << width) - 1)
        };
        if let Some(Value::Bits(last)) = self.last_value(sig) {
            if *last == value {
                return;
            }
        }
        self.record(time, sig, Value::Bits(value));
    }

    /// Records text `value` for text signal `sig` at `time`, unless it equals
    /// the signal's current text. See the module documentation for how text
    /// is encoded.
    ///
    /// Ignored (and a debug assertion) when `sig` is a wire or does not
    /// belong to this trace.
    pub fn set_text(&mut self, time: u64, sig: SigId, value: &str) {
        let Some(s) = self.signals.get(sig.index()) else {
            debug_assert!(false, "[waves] set_text(): unknown signal {sig:?}");
            return;
        };
        if s.kind != SigKind::Text {
            debug_assert!(false, "[waves] set_text() on wire {}", s.name);
            return;
        }
        if let Some(Value::Text(last)) = self.last_value(sig) {
            if **last == *value {
                return;
            }
        }
        self.record(time, sig, Value::Text(value.into()));
    }

    fn last_value(&self, sig: SigId) -> Option<&Value> {
        self.signals[sig.index()]
            .last
            .map(|i| &self.changes[i].value)
    }

    fn record(&mut self, time: u64, sig: SigId, value: Value) {
        debug_assert!(
            self.changes.is_empty() || time >= self.max_time,
            "[waves] host change at time {time} recorded after one at {}",
            self.max_time
        );
        self.push_change(time, sig, value);
    }

    /// `record` without the ordering assertion (unit tests use it to check
    /// that release builds cope with out-of-order times).
    fn push_change(&mut self, time: u64, sig: SigId, value: Value) {
        if !self.changes.is_empty() && time < self.max_time {
            self.out_of_order = true;
        }
        self.max_time = self.max_time.max(time);
        let s = &mut self.signals[sig.index()];
        if let Some(i) = s.last {
            let last = &mut self.changes[i];
            if last.time == time {
                last.value = value;
                return;
            }
        }
        s.last = Some(self.changes.len());
        self.changes.push(Change {
            time,
            sig: sig.0,
            value,
        });
    }

    /// True when no value change has been recorded.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// Number of registered signals.
    pub fn signal_count(&self) -> usize {
        self.signals.len()
    }

    /// Number of recorded value changes.
    pub fn change_count(&self) -> usize {
        self.changes.len()
    }

    /// Latest time of any recorded change (0 when there is none).
    pub fn last_time(&self) -> u64 {
        self.max_time
    }

    /// The hierarchical name GTKWave gives the signal, without a bit range:
    /// scopes and name joined by `.`, e.g. `host.pages.addrA.window`.
    pub fn path(&self, sig: SigId) -> Option<String> {
        let s = self.signals.get(sig.index())?;
        let mut p = s.scope.join(".");
        p.push('.');
        p.push_str(&s.name);
        Some(p)
    }

    /// A [`GtkwSignal`] for `sig` with a default format: binary for 1-bit
    /// wires, hex for wider ones, ASCII for text. `None` if `sig` is not
    /// from this trace.
    pub fn gtkw_signal(&self, sig: SigId) -> Option<GtkwSignal> {
        let s = self.signals.get(sig.index())?;
        let (width, format) = match s.kind {
            SigKind::Wire(1) => (1, GtkwFormat::Bin),
            SigKind::Wire(w) => (w, GtkwFormat::Hex),
            SigKind::Text => (1, GtkwFormat::Ascii),
        };
        Some(GtkwSignal {
            path: self.path(sig)?,
            width,
            format,
        })
    }

    pub(crate) fn signals(&self) -> &[Signal] {
        &self.signals
    }

    /// The changes in time order (stable: equal times keep call order).
    pub(crate) fn ordered_changes(&self) -> Vec<&Change> {
        let mut v: Vec<&Change> = self.changes.iter().collect();
        if self.out_of_order {
            v.sort_by_key(|c| c.time);
        }
        v
    }
}

/// Replaces every character other than ASCII letters, digits and `_` by `_`;
/// an empty name becomes `_`.
pub(crate) fn sanitize(s: &str) -> String {
    if s.is_empty() {
        return "_".to_string();
    }
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Encodes text for a VCD `s<text> <id>` value change the way GTKWave's own
/// writers do (and its VCD reader and `vcd2fst` decode): every byte outside
/// printable ASCII `!`..=`~`, space included, becomes a three-digit octal
/// escape `\ooo`, and a backslash becomes `\\`. The empty string is written
/// as one escaped space (`\040`), because an empty token would end the value
/// change.
pub fn escape_text(text: &str) -> String {
    let mut out = Vec::with_capacity(text.len() + 8);
    push_escaped(&mut out, text);
    // Only ASCII bytes are ever pushed.
    String::from_utf8(out).unwrap_or_default()
}

pub(crate) fn push_escaped(out: &mut Vec<u8>, text: &str) {
    if text.is_empty() {
        out.extend_from_slice(b"\\040");
        return;
    }
    for &b in text.as_bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x21..=0x7e => out.push(b),
            _ => out.extend_from_slice(&[
                b'\\',
                b'0' + (b >> 6),
                b'0' + ((b >> 3) & 7),
                b'0' + (b & 7),
            ]),
        }
    }
}

/// Decodes a VCD string value written by [`escape_text`] (or by GTKWave):
/// C escapes `\a \b \f \n \r \t \v \\ \' \" \?`, `\xHH` and `\ooo`. Invalid
/// UTF-8 in the result is replaced by U+FFFD.
pub fn unescape_text(escaped: &str) -> String {
    String::from_utf8_lossy(&unescape_bytes(escaped.as_bytes())).into_owned()
}

/// [`unescape_text`] on bytes, giving bytes.
pub(crate) fn unescape_bytes(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] != b'\\' || i + 1 == s.len() {
            out.push(s[i]);
            i += 1;
            continue;
        }
        i += 1;
        let c = s[i];
        i += 1;
        match c {
            b'a' => out.push(0x07),
            b'b' => out.push(0x08),
            b'f' => out.push(0x0c),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(0x0b),
            b'x' | b'X' => {
                let mut v = 0u8;
                let mut n = 0;
                while n < 2 && i < s.len() && s[i].is_ascii_hexdigit() {
                    v = v.wrapping_mul(16) + (s[i] as char).to_digit(16).unwrap_or(0) as u8;
                    i += 1;
                    n += 1;
                }
                out.push(v);
            }
            b'0'..=b'7' => {
                let mut v = u32::from(c - b'0');
                let mut n = 1;
                while n < 3 && i < s.len() && (b'0'..=b'7').contains(&s[i]) {
                    v = v * 8 + u32::from(s[i] - b'0');
                    i += 1;
                    n += 1;
                }
                out.push(v as u8);
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_records_only_changes_and_masks_to_width() {
        let mut t = HostTrace::new();
        let w = t.wire(&["host", "pages"], "pte", 4);
        t.set(0, w, 3);
        t.set(1000, w, 3); // unchanged: dropped
        t.set(2000, w, 0x13); // masked to 0x3: unchanged, dropped
        t.set(3000, w, 5);
        assert_eq!(t.change_count(), 2);
        let v: Vec<(u64, Value)> = t
            .ordered_changes()
            .iter()
            .map(|c| (c.time, c.value.clone()))
            .collect();
        assert_eq!(v, vec![(0, Value::Bits(3)), (3000, Value::Bits(5))]);
    }

    #[test]
    fn same_time_change_replaces_previous() {
        let mut t = HostTrace::new();
        let w = t.wire(&["host"], "flag", 1);
        t.set(1000, w, 1);
        t.set(1000, w, 0);
        assert_eq!(t.change_count(), 1);
        assert_eq!(t.ordered_changes()[0].value, Value::Bits(0));
    }

    #[test]
    fn text_records_only_changes() {
        let mut t = HostTrace::new();
        let s = t.text(&["host", "cpu0"], "step");
        t.set_text(0, s, "idle");
        t.set_text(1000, s, "idle");
        t.set_text(2000, s, "flush range");
        assert_eq!(t.change_count(), 2);
        assert_eq!(t.signal_count(), 1);
        assert!(!t.is_empty());
    }

    #[test]
    fn registration_is_idempotent_and_renames_conflicts() {
        let mut t = HostTrace::new();
        let a = t.wire(&["host", "x"], "v", 8);
        let b = t.wire(&["host", "x"], "v", 8);
        let c = t.wire(&["host", "x"], "v", 4);
        let d = t.text(&["host", "x"], "v");
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(t.path(c).unwrap(), "host.x.v_2");
        assert_eq!(t.path(d).unwrap(), "host.x.v_3");
        assert_eq!(t.signal_count(), 3);
    }

    #[test]
    fn names_are_sanitized_and_empty_scope_defaults() {
        let mut t = HostTrace::new();
        let a = t.wire(&["host", "page 0x1000.a"], "win-dow", 1);
        let b = t.wire(&[], "", 1);
        assert_eq!(t.path(a).unwrap(), "host.page_0x1000_a.win_dow");
        assert_eq!(t.path(b).unwrap(), "host._");
    }

    #[test]
    fn width_is_clamped() {
        let mut t = HostTrace::new();
        let z = t.wire(&["host"], "z", 0);
        let big = t.wire(&["host"], "big", 300);
        assert_eq!(t.gtkw_signal(z).unwrap().width, 1);
        assert_eq!(t.gtkw_signal(big).unwrap().width, 64);
        t.set(0, big, u64::MAX);
        assert_eq!(t.ordered_changes()[0].value, Value::Bits(u64::MAX));
    }

    #[test]
    fn out_of_order_changes_are_sorted_stably() {
        let mut t = HostTrace::new();
        let a = t.wire(&["host"], "a", 8);
        let b = t.wire(&["host"], "b", 8);
        t.push_change(3000, a, Value::Bits(1));
        t.push_change(1000, b, Value::Bits(2));
        t.push_change(1000, a, Value::Bits(3));
        t.push_change(2000, b, Value::Bits(4));
        let got: Vec<(u64, u32)> = t
            .ordered_changes()
            .iter()
            .map(|c| (c.time, c.sig))
            .collect();
        assert_eq!(got, vec![(1000, 1), (1000, 0), (2000, 1), (3000, 0)]);
        assert_eq!(t.last_time(), 3000);
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "recorded after")]
    fn out_of_order_set_asserts_in_debug() {
        let mut t = HostTrace::new();
        let a = t.wire(&["host"], "a", 8);
        t.set(2000, a, 1);
        t.set(1000, a, 2);
    }

    #[test]
    fn gtkw_signal_defaults() {
        let mut t = HostTrace::new();
        let a = t.wire(&["host", "pages", "addrA"], "window", 1);
        let b = t.wire(&["host", "pages", "addrA"], "pte", 64);
        let c = t.text(&["host", "cpu0"], "step");
        let ga = t.gtkw_signal(a).unwrap();
        assert_eq!(ga.path, "host.pages.addrA.window");
        assert_eq!((ga.width, ga.format), (1, GtkwFormat::Bin));
        let gb = t.gtkw_signal(b).unwrap();
        assert_eq!((gb.width, gb.format), (64, GtkwFormat::Hex));
        let gc = t.gtkw_signal(c).unwrap();
        assert_eq!((gc.width, gc.format), (1, GtkwFormat::Ascii));
        assert!(t.gtkw_signal(SigId(99)).is_none());
    }

    #[test]
    fn escape_round_trips() {
        for s in [
            "idle",
            "flush_tlb_range addr=0x1000 len=4096",
            "back\\slash",
            "tab\tnew\nline",
            "ünïcode",
            "",
        ] {
            let e = escape_text(s);
            assert!(!e.is_empty());
            assert!(
                e.bytes().all(|b| (0x21..=0x7e).contains(&b)),
                "escaped {e:?} has a byte a VCD token cannot hold"
            );
            let back = unescape_text(&e);
            if s.is_empty() {
                assert_eq!(back, " ");
            } else {
                assert_eq!(back, s);
            }
        }
        assert_eq!(escape_text("a b"), "a\\040b");
        assert_eq!(unescape_text("a\\x20b\\n"), "a b\n");
    }
}
