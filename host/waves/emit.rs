//! VCD text for the host signals: identifier codes, `$scope`/`$var`
//! definitions and value-change blocks. Shared by the merger and the
//! host-only writer.

use std::collections::HashSet;

use super::trace::{push_escaped, Change, HostTrace, SigKind, Signal, Value};

/// Identifier codes for `n` host signals, none of which is in `taken`.
/// Codes are the printable ASCII characters `!`..=`~` counted in bijective
/// base 94 (`!`, `"`, ..., `~`, `!!`, `"!`, ...), skipping taken ones, so the
/// result depends only on `n` and `taken`.
pub(crate) fn assign_ids(n: usize, taken: &HashSet<Vec<u8>>) -> Vec<String> {
    let mut ids = Vec::with_capacity(n);
    let mut k: u64 = 0;
    while ids.len() < n {
        let code = id_code(k);
        k += 1;
        if !taken.contains(code.as_bytes()) {
            ids.push(code);
        }
    }
    ids
}

fn id_code(mut k: u64) -> String {
    let mut s = String::new();
    loop {
        s.push((b'!' + (k % 94) as u8) as char);
        k /= 94;
        if k == 0 {
            break;
        }
        k -= 1;
    }
    s
}

#[derive(Default)]
struct ScopeNode<'a> {
    name: &'a str,
    vars: Vec<usize>,
    children: Vec<ScopeNode<'a>>,
}

/// Appends the `$scope module ...` tree of the host signals, in registration
/// order, to `out`.
pub(crate) fn write_defs(out: &mut Vec<u8>, host: &HostTrace, ids: &[String]) {
    let mut root = ScopeNode::default();
    for (i, s) in host.signals().iter().enumerate() {
        let mut node = &mut root;
        for part in &s.scope {
            let pos = match node.children.iter().position(|c| c.name == part.as_str()) {
                Some(p) => p,
                None => {
                    node.children.push(ScopeNode {
                        name: part,
                        ..ScopeNode::default()
                    });
                    node.children.len() - 1
                }
            };
            node = &mut node.children[pos];
        }
        node.vars.push(i);
    }
    for child in &root.children {
        write_scope(out, child, host.signals(), ids);
    }
}

fn write_scope(out: &mut Vec<u8>, node: &ScopeNode<'_>, signals: &[Signal], ids: &[String]) {
    out.extend_from_slice(b"$scope module ");
    out.extend_from_slice(node.name.as_bytes());
    out.extend_from_slice(b" $end\n");
    for &i in &node.vars {
        let s = &signals[i];
        let line = match s.kind {
            SigKind::Wire(1) => format!("$var wire 1 {} {} $end\n", ids[i], s.name),
            SigKind::Wire(w) => {
                format!("$var wire {w} {} {} [{}:0] $end\n", ids[i], s.name, w - 1)
            }
            SigKind::Text => format!("$var string 1 {} {} $end\n", ids[i], s.name),
        };
        out.extend_from_slice(line.as_bytes());
    }
    for child in &node.children {
        write_scope(out, child, signals, ids);
    }
    out.extend_from_slice(b"$upscope $end\n");
}

/// Top-level scope names of the host signals.
pub(crate) fn top_scopes(host: &HostTrace) -> Vec<&str> {
    let mut v: Vec<&str> = Vec::new();
    for s in host.signals() {
        let top = s.scope[0].as_str();
        if !v.contains(&top) {
            v.push(top);
        }
    }
    v
}

/// Appends one value-change line. `None` is "no value yet": `x` for wires;
/// text signals without a value write nothing (returns false).
pub(crate) fn write_value(
    out: &mut Vec<u8>,
    kind: SigKind,
    value: Option<&Value>,
    id: &str,
) -> bool {
    match (kind, value) {
        (SigKind::Wire(1), v) => {
            out.push(match v {
                Some(Value::Bits(b)) => b'0' + (*b & 1) as u8,
                _ => b'x',
            });
        }
        (SigKind::Wire(w), Some(Value::Bits(b))) => {
            out.push(b'b');
            for bit in (0..w).rev() {
                out.push(b'0' + ((b >> bit) & 1) as u8);
            }
            out.push(b' ');
        }
        (SigKind::Wire(_), _) => out.extend_from_slice(b"bx "),
        (SigKind::Text, Some(Value::Text(t))) => {
            out.push(b's');
            push_escaped(out, t);
            out.push(b' ');
        }
        (SigKind::Text, _) => return false,
    }
    out.extend_from_slice(id.as_bytes());
    out.push(b'\n');
    true
}

/// Converts host times (picoseconds) to ticks of a VCD's timescale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TimeScale {
    /// Femtoseconds per tick of the target file.
    pub(crate) fs_per_tick: u64,
}

impl TimeScale {
    pub(crate) const PS: TimeScale = TimeScale { fs_per_tick: 1000 };

    /// Parses the text of a `$timescale` command (`1ps`, `10 ns`, ...).
    pub(crate) fn parse(text: &str) -> Option<TimeScale> {
        let t: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let split = t.find(|c: char| !c.is_ascii_digit())?;
        let (num, unit) = t.split_at(split);
        let num: u64 = num.parse().ok()?;
        let fs: u64 = match unit {
            "s" => 1_000_000_000_000_000,
            "ms" => 1_000_000_000_000,
            "us" => 1_000_000_000,
            "ns" => 1_000_000,
            "ps" => 1_000,
            "fs" => 1,
            _ => return None,
        };
        let fs_per_tick = num.checked_mul(fs)?;
        (fs_per_tick > 0).then_some(TimeScale { fs_per_tick })
    }

    /// Host time in ps to ticks (rounded down, saturating).
    pub(crate) fn ticks(self, ps: u64) -> u64 {
        if self == Self::PS {
            return ps;
        }
        let t = u128::from(ps) * 1000 / u128::from(self.fs_per_tick);
        u64::try_from(t).unwrap_or(u64::MAX)
    }
}

/// Writes the host changes in time order, interleaved by the caller with
/// another trace's timestamps.
pub(crate) struct HostEmitter<'a> {
    signals: &'a [Signal],
    ids: Vec<String>,
    changes: Vec<(u64, &'a Change)>,
    next: usize,
    cur: Vec<Option<&'a Value>>,
    /// Whether the initial dump (every host signal's value) has been written.
    pub(crate) initial_done: bool,
    /// Value-change lines written so far (initial dump included).
    pub(crate) lines: u64,
}

impl<'a> HostEmitter<'a> {
    pub(crate) fn new(host: &'a HostTrace, ids: Vec<String>, scale: TimeScale) -> Self {
        let changes = host
            .ordered_changes()
            .into_iter()
            .map(|c| (scale.ticks(c.time), c))
            .collect();
        HostEmitter {
            signals: host.signals(),
            ids,
            changes,
            next: 0,
            cur: vec![None; host.signal_count()],
            initial_done: host.signal_count() == 0,
            lines: 0,
        }
    }

    /// Time of the next change not yet written.
    pub(crate) fn next_time(&self) -> Option<u64> {
        self.changes.get(self.next).map(|c| c.0)
    }

    fn apply_at(&mut self, t: u64, out: Option<&mut Vec<u8>>) {
        let mut out = out;
        while let Some(&(ct, c)) = self.changes.get(self.next) {
            if ct != t {
                break;
            }
            self.next += 1;
            let i = c.sig as usize;
            self.cur[i] = Some(&c.value);
            if let Some(o) = out.as_deref_mut() {
                if write_value(o, self.signals[i].kind, Some(&c.value), &self.ids[i]) {
                    self.lines += 1;
                }
            }
        }
    }

    /// Appends the changes at time `t` (no `#t` line). Call only once the
    /// initial dump is done.
    pub(crate) fn changes_at(&mut self, t: u64, out: &mut Vec<u8>) {
        self.apply_at(t, Some(out));
    }

    /// Applies the changes at time `t` and appends every host signal's
    /// value (the initial dump), without `$dumpvars`/`$end` around it.
    pub(crate) fn initial_at(&mut self, t: u64, out: &mut Vec<u8>) {
        self.apply_at(t, None);
        for (i, s) in self.signals.iter().enumerate() {
            if write_value(out, s.kind, self.cur[i], &self.ids[i]) {
                self.lines += 1;
            }
        }
        self.initial_done = true;
    }

    /// Appends `#t` blocks for every change before `limit` (all when
    /// `None`); the first block is the initial dump, in `$dumpvars`, if it
    /// has not been written yet.
    pub(crate) fn blocks_before(&mut self, limit: Option<u64>, out: &mut Vec<u8>) {
        while let Some(t) = self.next_time() {
            if limit.is_some_and(|l| t >= l) {
                break;
            }
            out.push(b'#');
            out.extend_from_slice(t.to_string().as_bytes());
            out.push(b'\n');
            if self.initial_done {
                self.changes_at(t, out);
            } else {
                out.extend_from_slice(b"$dumpvars\n");
                self.initial_at(t, out);
                out.extend_from_slice(b"$end\n");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_printable_unique_and_skip_taken() {
        let mut taken = HashSet::new();
        taken.insert(b"!".to_vec());
        taken.insert(b"#".to_vec());
        let ids = assign_ids(200, &taken);
        assert_eq!(ids[0], "\"");
        assert_eq!(ids[1], "$");
        let set: HashSet<&String> = ids.iter().collect();
        assert_eq!(set.len(), 200);
        for id in &ids {
            assert!(!taken.contains(id.as_bytes()));
            assert!(id.bytes().all(|b| (0x21..=0x7e).contains(&b)));
        }
        assert_eq!(id_code(93), "~");
        assert_eq!(id_code(94), "!!");
        assert_eq!(id_code(95), "\"!");
    }

    #[test]
    fn value_lines() {
        let mut o = Vec::new();
        write_value(&mut o, SigKind::Wire(1), None, "!");
        write_value(&mut o, SigKind::Wire(1), Some(&Value::Bits(1)), "!");
        write_value(&mut o, SigKind::Wire(4), Some(&Value::Bits(5)), "\"");
        write_value(&mut o, SigKind::Wire(4), None, "\"");
        assert!(!write_value(&mut o, SigKind::Text, None, "#"));
        write_value(&mut o, SigKind::Text, Some(&Value::Text("a b".into())), "#");
        assert_eq!(
            String::from_utf8(o).unwrap(),
            "x!\n1!\nb0101 \"\nbx \"\nsa\\040b #\n"
        );
    }

    #[test]
    fn timescale_parse_and_convert() {
        assert_eq!(TimeScale::parse("1ps"), Some(TimeScale::PS));
        assert_eq!(TimeScale::parse(" 1 ps "), Some(TimeScale::PS));
        let ns = TimeScale::parse("1ns").unwrap();
        assert_eq!(ns.ticks(5000), 5);
        let fs = TimeScale::parse("100fs").unwrap();
        assert_eq!(fs.ticks(3), 30);
        assert_eq!(TimeScale::PS.ticks(12345), 12345);
        assert!(TimeScale::parse("1 parsec").is_none());
        assert!(TimeScale::parse("ps").is_none());
        assert!(TimeScale::parse("0ps").is_none());
    }

    #[test]
    fn defs_nest_scopes_in_registration_order() {
        let mut h = HostTrace::new();
        h.wire(&["host", "pages", "addrA"], "window", 1);
        h.text(&["host", "cpu0"], "step");
        h.wire(&["host", "pages", "addrA"], "pte", 64);
        let ids = assign_ids(3, &HashSet::new());
        let mut o = Vec::new();
        write_defs(&mut o, &h, &ids);
        let expect = "$scope module host $end\n\
                      $scope module pages $end\n\
                      $scope module addrA $end\n\
                      $var wire 1 ! window $end\n\
                      $var wire 64 # pte [63:0] $end\n\
                      $upscope $end\n\
                      $upscope $end\n\
                      $scope module cpu0 $end\n\
                      $var string 1 \" step $end\n\
                      $upscope $end\n\
                      $upscope $end\n";
        assert_eq!(String::from_utf8(o).unwrap(), expect);
        assert_eq!(top_scopes(&h), vec!["host"]);
    }
}
