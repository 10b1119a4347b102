//! Reading paths: the YAML shape (a mapping of path names to `follows`
//! and `steps`), then each primitive's line through a small tokenizer and
//! a precedence-climbing expression parser. Everything is checked before a
//! run: unknown primitives, functions, variables and step names, argument
//! counts, and the notifier tags, each with the line it was written on.

use super::{
    intern, BinOp, Call, Expr, Func, Op, OpKind, PathDef, RmapHold, Step, INPUTS, MAX_OPS,
    MAX_STEPS, MAX_VARS,
};
use crate::mm::policy::Prim;
use crate::scenario::parse_int;
use crate::scenario::yaml::{self, line, shown, OrderedMap};
use serde::de::{self, Deserialize, Deserializer, SeqAccess, Visitor};
use serde::Deserialize as DeriveDeserialize;
use serde_saphyr::Spanned;
use std::fmt;

/// A path as YAML gives it (a bundled file's entry, or one of a
/// scenario's `paths:`).
#[derive(DeriveDeserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPath {
    follows: Spanned<String>,
    #[serde(default)]
    #[allow(dead_code)] // read by people: what the path is for
    about: Option<String>,
    #[serde(default)]
    mmap_lock: Option<Spanned<String>>,
    steps: Spanned<Vec<RawStep>>,
}

/// One step: `- name: primitives`.
type RawStep = Spanned<OrderedMap<Spanned<String>, Spanned<RawOps>>>;

/// A step's primitives: one line, or a list of them.
pub struct RawOps(Vec<(usize, String)>);

impl<'de> Deserialize<'de> for RawOps {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V_;
        impl<'de> Visitor<'de> for V_ {
            type Value = RawOps;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a primitive like 'lock pte', or a list of them (one per line)")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<RawOps, E> {
                Ok(RawOps(vec![(0, s.to_string())]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<RawOps, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = a.next_element::<Spanned<String>>()? {
                    if v.len() >= MAX_OPS {
                        return Err(de::Error::custom(format!(
                            "a step has more than {MAX_OPS} primitives: split it"
                        )));
                    }
                    v.push((line(&x), x.value));
                }
                Ok(RawOps(v))
            }
        }
        d.deserialize_any(V_)
    }
}

/// A parse error: the line and what to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathError {
    pub file: String,
    pub line: usize,
    pub msg: String,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.msg)
    }
}

/// A whole path file: a mapping of path names to paths.
pub fn parse_file(file: &str, src: &str) -> Result<Vec<PathDef>, PathError> {
    let raw: OrderedMap<Spanned<String>, Spanned<RawPath>> =
        yaml::from_str(src).map_err(|(line, msg)| PathError {
            file: file.into(),
            line,
            msg,
        })?;
    parse_paths(file, &raw)
}

/// Check each named path (a file's, or a scenario's `paths:`).
pub fn parse_paths(
    file: &str,
    raw: &OrderedMap<Spanned<String>, Spanned<RawPath>>,
) -> Result<Vec<PathDef>, PathError> {
    let mut out: Vec<PathDef> = Vec::new();
    for (name, p) in &raw.0 {
        let err = |l: usize, msg: String| PathError {
            file: file.into(),
            line: l.max(1),
            msg: format!("path '{}': {msg}", shown(&name.value)),
        };
        ident(&name.value).map_err(|m| err(line(name), m))?;
        if out.iter().any(|d| d.name == name.value) {
            return Err(err(line(name), "defined twice".into()));
        }
        out.push(parse_path(&name.value, file, &p.value, &err)?);
    }
    Ok(out)
}

fn ident(s: &str) -> Result<(), String> {
    let ok = s.len() <= 32
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "'{}' is not a name: use up to 32 lower-case letters, digits and '_', starting with a letter",
            shown(s)
        ))
    }
}

/// The words a primitive can start with (besides `if` and an assignment).
const PRIMITIVES: &[&str] = &[
    "lock",
    "unlock",
    "rmap_lock",
    "rmap_lock_read",
    "rmap_unlock",
    "lock_page",
    "unlock_page",
    "mutex_lock",
    "mutex_unlock",
    "set_pte",
    "get",
    "put",
    "copy",
    "start",
    "invalidate_range",
    "flush_tlb_range",
    "flush_tlb_mm",
    "tlbbatch_add_pending",
    "flush_tlb_kernel_range",
    "iommu_sva_invalidate_kva_range",
    "pte_free_kernel",
    "inc_tlb_flush_pending",
    "dec_tlb_flush_pending",
    "tlb_gather_mmu",
    "tlb_adjust_range",
    "lazyfree",
    "unlazy",
    "discard",
    "madvise_free_begin",
    "madvise_free_return",
    "tlb_remove_tlb_entry",
    "tlb_remove_pmd_tlb_entry",
    "tlb_remove_pud_tlb_entry",
    "tlb_remove_page",
    "tlb_remove_table",
    "tlb_flush_mmu_tlbonly",
    "tlb_flush_mmu_free",
    "tlb_finish_mmu",
    "refuse",
    "store",
    "io",
    "iommu_sva_unbind",
    "deposit",
    "mmu_notifier_put",
    "mmu_notifier_release",
    "end",
    "clear_flush_notify",
    "clear_flush",
    "goto",
    "rmap_next",
    "rmap_end",
    "call",
    "retry",
    "return",
];

/// The other words of the language; none of these, nor a primitive, may
/// name a variable.
const OTHER_WORDS: &[&str] = &[
    "if",
    "then",
    "seed",
    "select",
    "defined",
    "alloc",
    "alloc_huge",
    "alloc_thp",
    "huge_pmd_unshare",
    "pte_alloc",
    "pmd_alloc",
    "pud_alloc",
    "child_pmd",
    "child_huge_pte",
    "withdraw",
];

fn parse_path(
    name: &str,
    file: &str,
    raw: &RawPath,
    err: &dyn Fn(usize, String) -> PathError,
) -> Result<PathDef, PathError> {
    let steps = &raw.steps.value;
    if steps.is_empty() {
        return Err(err(line(&raw.steps), "no steps: give at least one".into()));
    }
    if steps.len() > MAX_STEPS {
        return Err(err(
            line(&raw.steps),
            format!("more than {MAX_STEPS} steps: split the path"),
        ));
    }
    // Pass 1: step names and assigned variables (a goto may jump forward,
    // a variable may be assigned on a line below its use in a loop).
    let mut names: Vec<(&'static str, usize)> = Vec::new();
    let mut vars: Vec<String> = INPUTS.iter().map(|s| s.to_string()).collect();
    let mut arrays = vec![false; vars.len()];
    for s in steps {
        if s.value.0.len() != 1 {
            return Err(err(
                line(s),
                "a step is one 'name: primitives' pair: start each step with '- '".into(),
            ));
        }
        let (k, v) = &s.value.0[0];
        let l = line(k).max(line(s));
        ident(k.value.strip_prefix('_').unwrap_or(&k.value))
            .map_err(|m| err(l, format!("step {m} (a label: '_' and a name)")))?;
        if k.value == "until" || k.value == "resume" {
            return Err(err(l, format!("'{}' cannot name a step", k.value)));
        }
        if names.iter().any(|(n, _)| *n == k.value) {
            return Err(err(l, format!("two steps are named '{}'", k.value)));
        }
        names.push((intern(&k.value), l));
        for (ol, text) in &v.value.0 {
            if let Some((lhs, _)) = assignment(text) {
                let ol = if *ol == 0 { line(v).max(l) } else { *ol };
                // `x[i] = ...` makes `x` an array
                let (lhs, array) = match lhs.split_once('[') {
                    Some((x, _)) => (x.trim(), true),
                    None => (lhs, false),
                };
                ident(lhs).map_err(|m| err(ol, format!("variable {m}")))?;
                if PRIMITIVES.contains(&lhs)
                    || OTHER_WORDS.contains(&lhs)
                    || Func::ALL.iter().any(|(n, _)| *n == lhs)
                {
                    return Err(err(
                        ol,
                        format!("'{lhs}' is a primitive or function: name the variable otherwise"),
                    ));
                }
                match vars.iter().position(|x| x == lhs) {
                    Some(slot) if arrays[slot] != array => {
                        return Err(err(
                            ol,
                            format!("'{lhs}' is assigned both as an array ('{lhs}[i] = ...') and as a variable: give them two names"),
                        ));
                    }
                    Some(_) => {}
                    None => {
                        if vars.len() >= MAX_VARS {
                            return Err(err(ol, format!("more than {MAX_VARS} variables")));
                        }
                        vars.push(lhs.to_string());
                        arrays.push(array);
                    }
                }
            }
        }
    }
    // Pass 2: the primitives.
    let mut out = Vec::new();
    for (s, (name, l)) in steps.iter().zip(&names) {
        let v = &s.value.0[0].1;
        let mut ops = Vec::new();
        if v.value.0.is_empty() {
            return Err(err(
                *l,
                format!("step '{name}' does nothing: give it a primitive"),
            ));
        }
        for (ol, text) in &v.value.0 {
            let ol = if *ol == 0 { line(v).max(*l) } else { *ol };
            let cx = Names {
                vars: &vars,
                arrays: &arrays,
                steps: &names,
            };
            let kind = parse_op(text, &cx)
                .map_err(|m| err(ol, format!("step '{name}': '{}': {m}", shown(text.trim()))))?;
            ops.push(Op {
                line: ol,
                text: text.trim().to_string(),
                kind,
            });
        }
        let step = Step {
            name,
            line: *l,
            ops,
        };
        if let Some(o) = step
            .ops
            .iter()
            .find(|o| step.label() && matches!(o.kind, OpKind::Retry | OpKind::Return))
        {
            return Err(err(
                o.line,
                format!("'{}' ends a checkpoint, and '{name}' is a label: move it into a step whose name has no '_'", o.text),
            ));
        }
        out.push(step);
    }
    if let Some(last) = out.last().filter(|s| s.label()) {
        return Err(err(
            last.line,
            format!(
                "the last step, '{}', is a label: end the path with a checkpoint",
                last.name
            ),
        ));
    }
    let mmap_lock = match &raw.mmap_lock {
        None => None,
        Some(m) => Some(m.value.parse().map_err(|e| {
            err(
                line(m),
                format!(
                    "mmap_lock '{}' is not how a caller holds it: {e}",
                    shown(&m.value)
                ),
            )
        })?),
    };
    Ok(PathDef {
        name: name.to_string(),
        follows: raw.follows.value.clone(),
        mmap_lock,
        file: file.to_string(),
        steps: out,
        vars,
        arrays,
    })
}

/// `x = ...`: the variable's name and the right side.
fn assignment(text: &str) -> Option<(&str, &str)> {
    let (l, r) = text.split_once('=')?;
    let l = l.trim();
    // `==`, `<=`, `>=`, `!=` are comparisons, not assignments.
    if r.starts_with('=') || l.ends_with(['<', '>', '!']) {
        return None;
    }
    // `x = `, or `x[<index>] = ` (the index may hold spaces)
    let name = l.split_once('[').map_or(l, |(x, _)| x.trim_end());
    let indexed = l.len() > name.len();
    if name.contains(char::is_whitespace) || (indexed && !l.ends_with(']')) {
        return None;
    }
    Some((l, r))
}

struct Names<'a> {
    vars: &'a [String],
    /// Which of `vars` are arrays.
    arrays: &'a [bool],
    steps: &'a [(&'static str, usize)],
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Num(u64),
    Ident(String),
    Str(String),
    Punct(&'static str),
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Num(n) => write!(f, "{n:#x}"),
            Tok::Ident(s) => f.write_str(s),
            Tok::Str(s) => write!(f, "\"{s}\""),
            Tok::Punct(p) => f.write_str(p),
        }
    }
}

const PUNCT: &[&str] = &[
    "==", "!=", "<=", ">=", "<<", ">>", "&&", "||", "<", ">", "(", ")", "[", "]", ",", "=", "!",
    "~", "&", "|", "+", "-",
];

fn tokens(text: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() {
            let s = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            let w = &text[s..i];
            out.push(Tok::Num(parse_int(w).ok_or_else(|| {
                format!(
                    "'{}' is not a 64-bit number (write 0x.. or decimal)",
                    shown(w)
                )
            })?));
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let s = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push(Tok::Ident(text[s..i].to_string()));
        } else if c == b'"' {
            let rest = &text[i + 1..];
            let close = rest
                .find('"')
                .ok_or("a text in '\"' is not closed on its line")?;
            out.push(Tok::Str(rest[..close].to_string()));
            i += close + 2;
        } else if let Some(p) = PUNCT.iter().find(|p| text[i..].starts_with(**p)) {
            out.push(Tok::Punct(p));
            i += p.len();
        } else {
            let ch = text[i..].chars().next().unwrap_or('?');
            return Err(format!(
                "'{}' is not part of the language",
                ch.escape_debug()
            ));
        }
    }
    Ok(out)
}

struct P<'a> {
    t: Vec<Tok>,
    i: usize,
    n: &'a Names<'a>,
    depth: usize,
}

/// Named numbers an expression can use.
const CONSTANTS: &[(&str, u64)] = &[
    ("PAGE_SIZE", crate::mem::PAGE_SIZE),
    // A PMD entry's size (a 2 MiB THP or hugetlb page).
    ("PMD_SIZE", 1 << 21),
    // A PUD entry's size (a 1 GiB hugetlb page).
    ("PUD_SIZE", 1 << 30),
    // The non-present entries the model writes (a swap entry, a migration
    // entry), with the frame above bit 12.
    ("SWAP_ENTRY", crate::mm::mapping::SWAP_ENTRY),
    ("MIGRATION_ENTRY", crate::mm::mapping::MIGRATION_ENTRY),
    ("PROTNONE", crate::mm::mapping::PROTNONE),
];

/// The deepest nesting of an expression.
const MAX_DEPTH: usize = 32;

impl P<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.t.get(self.i)
    }

    fn eat(&mut self, p: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Punct(q)) if *q == p) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, p: &str, what: &str) -> Result<(), String> {
        if self.eat(p) {
            Ok(())
        } else {
            Err(match self.peek() {
                Some(t) => format!("expected {what}, found '{t}'"),
                None if p == "," => format!("expected {what} at the end of the line (in a '[ ]' list a comma separates primitives: write the step's primitives one per line, each after '- ')"),
                None => format!("expected {what} at the end of the line"),
            })
        }
    }

    fn word(&mut self) -> Option<String> {
        match self.peek() {
            Some(Tok::Ident(s)) => {
                let s = s.clone();
                self.i += 1;
                Some(s)
            }
            _ => None,
        }
    }

    fn done(&self) -> Result<(), String> {
        match self.peek() {
            None => Ok(()),
            Some(Tok::Punct(",")) => Err(
                "too many arguments (in a '[ ]' list a comma separates primitives: write the step's primitives one per line, each after '- ')".into(),
            ),
            Some(t) => Err(format!("unexpected '{t}'")),
        }
    }

    fn expr(&mut self) -> Result<Expr, String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(format!("nested deeper than {MAX_DEPTH}: use a variable"));
        }
        let e = self.binary(0);
        self.depth -= 1;
        e
    }

    /// Precedence climbing over [`LEVELS`].
    fn binary(&mut self, level: usize) -> Result<Expr, String> {
        if level == LEVELS.len() {
            return self.unary();
        }
        let mut lhs = self.binary(level + 1)?;
        loop {
            let op = LEVELS[level]
                .iter()
                .find(|(p, _)| matches!(self.peek(), Some(Tok::Punct(q)) if q == p));
            let Some(&(_, op)) = op else {
                return Ok(lhs);
            };
            self.i += 1;
            let rhs = self.binary(level + 1)?;
            // C's trap: `a == b | c` is `(a == b) | c`. Refused, as a
            // compiler's -Wparentheses warns.
            let cmp = |e: &Expr| matches!(e, Expr::Bin(o, ..) if is_comparison(*o));
            if matches!(op, BinOp::BitOr | BinOp::BitAnd) && (cmp(&lhs) || cmp(&rhs)) {
                return Err(format!(
                    "a comparison binds tighter than '{}' (as in C): write the parentheses you mean, like (a == b) {0} c or a == (b {0} c)",
                    if op == BinOp::BitOr { "|" } else { "&" }
                ));
            }
            lhs = Expr::Bin(op, Box::new(lhs), Box::new(rhs));
            if LEVELS[level].iter().any(|(_, o)| is_comparison(*o)) {
                // `a == b == c` means nothing useful here.
                return Ok(lhs);
            }
        }
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if self.eat("!") {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.eat("~") {
            return Ok(Expr::Inv(Box::new(self.unary()?)));
        }
        if self.eat("(") {
            let e = self.expr()?;
            self.expect(")", "')'")?;
            return Ok(Expr::Group(Box::new(e)));
        }
        match self.peek().cloned() {
            Some(Tok::Num(n)) => {
                self.i += 1;
                Ok(Expr::Num(n))
            }
            Some(Tok::Ident(w)) => {
                self.i += 1;
                if self.eat("(") {
                    return self.call(&w);
                }
                if let Some(&(_, v)) = CONSTANTS.iter().find(|(n, _)| *n == w) {
                    return Ok(Expr::Num(v));
                }
                match self.n.vars.iter().position(|v| *v == w) {
                    Some(slot) if self.n.arrays[slot] => {
                        if !self.eat("[") {
                            return Err(format!(
                                "'{w}' is an array (set by '{w}[i] = ...'): read an element, '{w}[i]'"
                            ));
                        }
                        let i = self.expr()?;
                        self.expect("]", "']' after the index")?;
                        Ok(Expr::Index(slot, Box::new(i)))
                    }
                    Some(_) if matches!(self.peek(), Some(Tok::Punct("["))) => Err(format!(
                        "'{w}' is not an array: only a name assigned as 'name[i] = ...' takes an index"
                    )),
                    Some(slot) => Ok(Expr::Var(slot)),
                    None => Err(format!(
                        "unknown variable '{}': the inputs are {}; others are set by 'name = ...'",
                        shown(&w),
                        INPUTS.join(", ")
                    )),
                }
            }
            Some(t) => Err(format!("expected a value, found '{t}'")),
            None => Err("expected a value at the end of the line".into()),
        }
    }

    fn call(&mut self, w: &str) -> Result<Expr, String> {
        if w == "defined" {
            let v = self.word().ok_or("defined(x) takes a variable's name")?;
            self.expect(")", "')': defined() takes one variable")?;
            return match self.n.vars.iter().position(|x| *x == v) {
                Some(slot) if self.n.arrays[slot] => Err(format!(
                    "'{}' is an array: defined() tests a variable",
                    shown(&v)
                )),
                Some(slot) => Ok(Expr::Defined(slot)),
                None => Err(format!("unknown variable '{}' in defined()", shown(&v))),
            };
        }
        let mut args = Vec::new();
        if !self.eat(")") {
            loop {
                args.push(self.expr()?);
                if self.eat(")") {
                    break;
                }
                self.expect(",", "',' or ')'")?;
            }
        }
        if w == "select" {
            if args.len() != 3 {
                return Err("select(cond, a, b) takes three arguments".into());
            }
            return Ok(Expr::Func(Func::Select, args));
        }
        if [
            "alloc",
            "pte_alloc",
            "pmd_alloc",
            "pud_alloc",
            "child_pmd",
            "child_huge_pte",
            "withdraw",
        ]
        .contains(&w)
        {
            return Err(format!(
                "{w}() is a primitive of its own: write 'x = {w}(...)' on its own line"
            ));
        }
        let f = Func::ALL
            .iter()
            .find(|(n, _)| *n == w)
            .map(|(_, f)| *f)
            .ok_or_else(|| {
                format!(
                    "unknown function '{}': use one of select, {}",
                    shown(w),
                    Func::ALL
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?;
        if args.len() != f.arity() {
            let n = ["no argument", "one argument", "two arguments"][f.arity().min(2)];
            return Err(format!("{w}() takes {n}"));
        }
        Ok(Expr::Func(f, args))
    }

    fn step(&mut self) -> Result<usize, String> {
        let w = self.word().ok_or("'goto' needs a step name")?;
        self.n
            .steps
            .iter()
            .position(|(n, _)| *n == w)
            .ok_or_else(|| {
                format!(
                    "no step '{}' to go to: the steps are {}",
                    shown(&w),
                    self.n
                        .steps
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
    }

    /// `<expr>, <expr>`
    fn two(&mut self) -> Result<(Expr, Expr), String> {
        let a = self.expr()?;
        self.expect(",", "','")?;
        Ok((a, self.expr()?))
    }

    /// An optional `seed=<tag>` after a notifier call.
    fn seed(&mut self) -> Result<Option<String>, String> {
        if matches!(self.peek(), Some(Tok::Ident(w)) if w == "seed") {
            self.i += 1;
            self.expect("=", "'=' after 'seed'")?;
            return Ok(Some(self.word().ok_or("'seed=' needs a tag")?));
        }
        Ok(None)
    }
}

fn is_comparison(o: BinOp) -> bool {
    matches!(
        o,
        BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge
    )
}

/// Binary operators from the loosest to the tightest binding (C's order).
const LEVELS: &[&[(&str, BinOp)]] = &[
    &[("||", BinOp::Or)],
    &[("&&", BinOp::And)],
    &[("|", BinOp::BitOr)],
    &[("&", BinOp::BitAnd)],
    &[
        ("==", BinOp::Eq),
        ("!=", BinOp::Ne),
        ("<=", BinOp::Le),
        (">=", BinOp::Ge),
        ("<", BinOp::Lt),
        (">", BinOp::Gt),
    ],
    &[("<<", BinOp::Shl), (">>", BinOp::Shr)],
    &[("+", BinOp::Add), ("-", BinOp::Sub)],
];

fn parse_op(text: &str, n: &Names) -> Result<OpKind, String> {
    let mut p = P {
        t: tokens(text)?,
        i: 0,
        n,
        depth: 0,
    };
    op(&mut p)
}

/// One primitive from `p`'s position to the end of the line.
fn op(p: &mut P) -> Result<OpKind, String> {
    let n = p.n;
    let Some(first) = p.word() else {
        return Err(
            "a primitive starts with its name (lock, set_pte, end, goto...) or 'variable ='".into(),
        );
    };
    if matches!(p.peek(), Some(Tok::Punct("["))) {
        let slot = n
            .vars
            .iter()
            .position(|v| *v == first)
            .filter(|&s| n.arrays[s])
            .ok_or_else(|| {
                format!("'{first}[' begins no primitive: an array is set by 'name[i] = ...'")
            })?;
        p.i += 1;
        let i = p.expr()?;
        p.expect("]", "']' after the index")?;
        p.expect("=", "'=' after 'name[i]'")?;
        let e = p.expr()?;
        p.done()?;
        return Ok(OpKind::LetIndex(slot, i, e));
    }
    if p.eat("=") {
        let slot = n
            .vars
            .iter()
            .position(|v| *v == first)
            .filter(|&s| !n.arrays[s])
            .ok_or("not an assignment")?;
        if slot < INPUTS.len() {
            return Err(format!(
                "'{first}' is an input (given by the caller): assign another name"
            ));
        }
        if let Some(Tok::Ident(w)) = p.peek().cloned() {
            if w == "alloc" || w == "alloc_huge" || w == "alloc_thp" {
                p.i += 1;
                p.expect("(", "'('")?;
                p.expect(")", &format!("')': {w}() takes no argument"))?;
                p.done()?;
                return Ok(match w.as_str() {
                    "alloc" => OpKind::Alloc(slot),
                    w => OpKind::AllocHuge(slot, w == "alloc_huge"),
                });
            }
            if [
                "pte_alloc",
                "pmd_alloc",
                "pud_alloc",
                "child_pmd",
                "child_huge_pte",
                "withdraw",
                "huge_pmd_unshare",
            ]
            .contains(&w.as_str())
            {
                p.i += 1;
                p.expect("(", "'('")?;
                let e = p.expr()?;
                p.expect(")", &format!("')': {w}() takes one argument"))?;
                p.done()?;
                return Ok(match w.as_str() {
                    "pte_alloc" => OpKind::SlotAlloc(slot, e, 1),
                    "pmd_alloc" => OpKind::SlotAlloc(slot, e, 2),
                    "pud_alloc" => OpKind::SlotAlloc(slot, e, 3),
                    "withdraw" => OpKind::Withdraw(slot, e),
                    "huge_pmd_unshare" => OpKind::Unshare(slot, e),
                    "child_huge_pte" => OpKind::ChildSlot(slot, e, 0),
                    _ => OpKind::ChildSlot(slot, e, 2),
                });
            }
        }
        let e = p.expr()?;
        p.done()?;
        return Ok(OpKind::Let(slot, e));
    }
    let strided = first == "flush_tlb_range";
    let notify = |p: &mut P, clears: bool, prim: &dyn Fn(Option<&str>) -> Result<Call, String>| {
        let clear = if clears {
            let e = p.expr()?;
            p.expect(",", "',' (the entry, then start, end)")?;
            Some(e)
        } else {
            None
        };
        let (start, end) = p.two()?;
        let stride = if strided && p.eat(",") {
            Some(p.expr()?)
        } else {
            None
        };
        let seed = p.seed()?;
        p.done()?;
        Ok::<OpKind, String>(OpKind::Notify {
            call: prim(seed.as_deref())?,
            clear,
            start,
            end,
            stride,
        })
    };
    let no_seed = |call: Call| {
        move |s: Option<&str>| {
            match s {
            None => Ok(call),
            Some(t) => Err(format!(
                "'seed={t}' has no meaning here: the seed changed only clear_flush_notify (seed=clear_flush), invalidate_range (seed=dropped) and end (seed=only_end)"
            )),
        }
        }
    };
    let tagged = |tag: &'static str, make: fn(bool) -> Prim| {
        move |s: Option<&str>| match s {
            None => Ok(Call::Prim(make(false))),
            Some(t) if t == tag => Ok(Call::Prim(make(true))),
            Some(t) => Err(format!("'seed={t}': the only tag here is seed={tag}")),
        }
    };
    let op = match first.as_str() {
        "lock" | "unlock" => {
            let e = p.expr()?;
            p.done()?;
            if first == "lock" {
                OpKind::Lock(e)
            } else {
                OpKind::Unlock(e)
            }
        }
        "rmap_lock" | "rmap_lock_read" | "rmap_unlock" => {
            let e = p.expr()?;
            p.done()?;
            let hold = match first.as_str() {
                "rmap_lock" => RmapHold::Write,
                "rmap_lock_read" => RmapHold::Read,
                _ => RmapHold::Release,
            };
            OpKind::RmapLock(e, hold)
        }
        "lock_page" | "unlock_page" => {
            let e = p.expr()?;
            p.done()?;
            OpKind::PageLock(e, first == "lock_page")
        }
        "mutex_lock" | "mutex_unlock" => {
            let known = || {
                let names: Vec<&str> = crate::mm::KERNEL_MUTEXES.iter().map(|m| m.0).collect();
                names.join(", ")
            };
            let name = p
                .word()
                .ok_or_else(|| format!("'{first}' needs a kernel mutex's name: one of {}", known()))?;
            p.done()?;
            let id = crate::mm::kernel_mutex_id(&name).ok_or_else(|| {
                format!(
                    "'{}' is not a kernel mutex the model has: use one of {}",
                    shown(&name),
                    known()
                )
            })?;
            OpKind::Mutex(id, first == "mutex_lock")
        }
        "get" | "put" => {
            let e = p.expr()?;
            p.done()?;
            if first == "get" {
                OpKind::Get(e)
            } else {
                OpKind::Put(e)
            }
        }
        "copy" => {
            let (a, b) = p.two()?;
            let n = if p.eat(",") { Some(p.expr()?) } else { None };
            p.done()?;
            OpKind::Copy(a, b, n)
        }
        "set_pte" => {
            let (a, b) = p.two()?;
            let va = if p.eat(",") { Some(p.expr()?) } else { None };
            p.done()?;
            OpKind::SetPte(a, b, va)
        }
        "start" => notify(p, false, &no_seed(Call::Start))?,
        "flush_tlb_range" => notify(p, false, &no_seed(Call::Prim(Prim::FlushTlbRange)))?,
        "tlbbatch_add_pending" => notify(p, false, &no_seed(Call::Prim(Prim::TlbBatch)))?,
        "flush_tlb_kernel_range" => {
            notify(p, false, &no_seed(Call::Prim(Prim::FlushTlbKernel)))?
        }
        "iommu_sva_invalidate_kva_range" => {
            notify(p, false, &no_seed(Call::Prim(Prim::KvaRange)))?
        }
        "pte_free_kernel" => {
            let e = p.expr()?;
            p.done()?;
            OpKind::FreeTable(e)
        }
        // the whole address space: every architecture's flush_tlb_mm
        // passes (0, -1UL) on from 6.6
        "flush_tlb_mm" => {
            p.done()?;
            OpKind::Notify {
                call: Call::Prim(Prim::FlushTlbRange),
                clear: None,
                start: Expr::Num(0),
                end: Expr::Num(u64::MAX),
                stride: None,
            }
        }
        "tlb_gather_mmu" | "tlb_adjust_range" => {
            let (a, b) = p.two()?;
            p.done()?;
            if first == "tlb_gather_mmu" {
                OpKind::Gather(a, b)
            } else {
                OpKind::AdjustRange(a, b)
            }
        }
        "lazyfree" | "unlazy" | "discard" | "io" => {
            let e = p.expr()?;
            p.done()?;
            match first.as_str() {
                "io" => OpKind::Io(e),
                "unlazy" => OpKind::Unlazy(e),
                "discard" => OpKind::Discard(e),
                _ => OpKind::Lazyfree(e),
            }
        }
        "tlb_flush_mmu_tlbonly" | "tlb_flush_mmu_free" | "tlb_finish_mmu" | "iommu_sva_unbind"
        | "mmu_notifier_put" | "mmu_notifier_release" | "madvise_free_begin" | "madvise_free_return"
        | "inc_tlb_flush_pending" | "dec_tlb_flush_pending" => {
            p.done()?;
            match first.as_str() {
                "inc_tlb_flush_pending" => OpKind::FlushPending { inc: true },
                "dec_tlb_flush_pending" => OpKind::FlushPending { inc: false },
                "madvise_free_begin" => OpKind::MadvFree { returned: false },
                "madvise_free_return" => OpKind::MadvFree { returned: true },
                "tlb_flush_mmu_tlbonly" => OpKind::FlushTlbOnly,
                "tlb_flush_mmu_free" => OpKind::FlushFree,
                "iommu_sva_unbind" => OpKind::SvaUnbind,
                "mmu_notifier_put" => OpKind::NotifierPut,
                "mmu_notifier_release" => OpKind::Release,
                _ => OpKind::Finish,
            }
        }
        "store" | "tlb_remove_table" | "deposit" => {
            let (a, b) = p.two()?;
            p.done()?;
            match first.as_str() {
                "store" => OpKind::Store(a, b),
                "deposit" => OpKind::Deposit(a, b),
                _ => OpKind::RemoveTable(a, b),
            }
        }
        "tlb_remove_tlb_entry"
        | "tlb_remove_pmd_tlb_entry"
        | "tlb_remove_pud_tlb_entry"
        | "tlb_remove_page" => {
            let e = p.expr()?;
            p.done()?;
            let size = match first.as_str() {
                "tlb_remove_page" => return Ok(OpKind::RemovePage(e)),
                "tlb_remove_pmd_tlb_entry" => crate::mem::PageSize::Huge2M,
                "tlb_remove_pud_tlb_entry" => crate::mem::PageSize::Huge1G,
                _ => crate::mem::PageSize::Small,
            };
            OpKind::RemoveTlbEntry { va: e, size }
        }
        "refuse" => {
            let text = |p: &mut P| match p.peek().cloned() {
                Some(Tok::Str(s)) => {
                    p.i += 1;
                    Ok(s)
                }
                _ => Err("refuse \"<what the path found>\", \"<what to write instead>\"".to_string()),
            };
            let what = text(p)?;
            p.expect(",", "',' then what to write instead")?;
            let instead = text(p)?;
            p.done()?;
            OpKind::Refuse(what, super::intern(&instead))
        }
        "clear_flush" => notify(p, true, &no_seed(Call::Prim(Prim::ClearFlush)))?,
        // Untagged, each keeps its 4.14 meaning under the seed policy.
        "clear_flush_notify" => notify(
            p,
            true,
            &tagged("clear_flush", |t| Prim::ClearFlushNotify { seed_keeps: !t }),
        )?,
        "invalidate_range" => notify(
            p,
            false,
            &tagged("dropped", |t| Prim::InvalidateRange { seed_keeps: !t }),
        )?,
        "end" => notify(
            p,
            false,
            &tagged("only_end", |t| Prim::End { seed_only_end: t }),
        )?,
        "if" => {
            let c = p.expr()?;
            match p.word().as_deref() {
                Some("goto") => {
                    let s = p.step()?;
                    p.done()?;
                    OpKind::Goto(Some(c), s)
                }
                Some("then") => {
                    let then = op(p)?;
                    if matches!(then, OpKind::When(..) | OpKind::Goto(..) | OpKind::RmapNext(..) | OpKind::Call(..)) {
                        return Err("after 'then' comes one primitive, not another 'if', a 'goto' or an 'rmap_next' (write 'if <condition> goto <step>')".into());
                    }
                    OpKind::When(c, Box::new(then))
                }
                _ => {
                    return Err(
                        "'if <condition>' is followed by 'goto <step>' or 'then <primitive>'"
                            .into(),
                    )
                }
            }
        }
        "goto" => {
            let s = p.step()?;
            p.done()?;
            OpKind::Goto(None, s)
        }
        "rmap_next" => {
            let s = p.step()?;
            p.done()?;
            OpKind::RmapNext(s)
        }
        "rmap_end" => {
            p.done()?;
            OpKind::RmapEnd
        }
        "call" => {
            let name = p
                .word()
                .ok_or("'call' needs a path name: call <path> <va>, <start>, <end>")?;
            let va = p.expr()?;
            p.expect(",", "',' then the callee's start")?;
            let (start, end) = p.two()?;
            p.done()?;
            OpKind::Call(name, va, start, end)
        }
        "retry" | "return" => {
            p.done()?;
            if first == "retry" {
                OpKind::Retry
            } else {
                OpKind::Return
            }
        }
        w => {
            return Err(format!(
                "unknown primitive '{}': use one of {}, 'if <expr> then <primitive>', 'if <expr> goto <step>', or 'variable = ...'",
                shown(w),
                PRIMITIVES.join(", ")
            ))
        }
    };
    Ok(op)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(src: &str) -> Result<PathDef, PathError> {
        parse_file("t.yaml", src).map(|mut v| v.remove(0))
    }

    const OK: &str = "p:\n  follows: test\n  steps:\n    - a:\n        - x = read(pte) & 0xfff\n        - if x == 0 goto b\n        - lock pte\n    - b: unlock pte\n";

    #[test]
    fn a_path_parses_with_its_lines() {
        let d = one(OK).unwrap();
        assert_eq!(d.checkpoints(), ["a", "b"]);
        assert_eq!(d.steps[0].ops[0].line, 5);
        assert_eq!(d.steps[0].ops[1].line, 6);
        assert_eq!(d.steps[1].ops[0].line, 8);
        assert_eq!(
            d.vars,
            [
                "va",
                "start",
                "end",
                "pte",
                "to",
                "keep_tables",
                "prot_numa",
                "misplaced",
                "write",
                "x"
            ]
        );
        assert!(matches!(d.steps[0].ops[1].kind, OpKind::Goto(Some(_), 1)));
    }

    #[test]
    fn every_listed_primitive_is_one_the_parser_knows() {
        // The unknown-primitive error lists PRIMITIVES: each must begin a
        // primitive (its own arguments may then be missing).
        let n = Names {
            vars: &["va".into()],
            arrays: &[false],
            steps: &[],
        };
        for w in PRIMITIVES {
            if let Err(e) = parse_op(w, &n) {
                assert!(!e.contains("unknown primitive"), "{w}: {e}");
            }
        }
        let e = parse_op("frob va", &n).unwrap_err();
        assert!(e.contains("mutex_lock, mutex_unlock"), "{e}");
    }

    #[test]
    fn precedence_follows_c() {
        let n = Names {
            vars: &["va".into(), "start".into(), "end".into(), "pte".into()],
            arrays: &[false; 4],
            steps: &[],
        };
        let OpKind::Lock(e) = parse_op("lock va + 1 << 2 == 3 || 4", &n).unwrap() else {
            panic!()
        };
        // (((va + 1) << 2) == 3) || 4
        let Expr::Bin(BinOp::Or, l, _) = e else {
            panic!("{e:?}")
        };
        let Expr::Bin(BinOp::Eq, a, _) = *l else {
            panic!()
        };
        let Expr::Bin(BinOp::Shl, a, _) = *a else {
            panic!()
        };
        assert!(matches!(*a, Expr::Bin(BinOp::Add, ..)));
        // The C trap is refused; with parentheses it is what they say.
        let e = parse_op("lock va == 1 | 2", &n).unwrap_err();
        assert!(e.contains("binds tighter than '|'"), "{e}");
        assert!(parse_op("lock va & 2 == 2", &n).is_err());
        assert!(parse_op("lock (va == 1) | 2", &n).is_ok());
        assert!(parse_op("lock va == (1 | 2)", &n).is_ok());
    }

    #[test]
    fn errors_name_the_line_and_what_to_do() {
        let cases: &[(&str, usize, &str)] = &[
            (
                "p:\n  follows: t\n  steps:\n    - a: lokc pte\n",
                4,
                "unknown primitive 'lokc'",
            ),
            (
                "p:\n  follows: t\n  steps:\n    - a:\n        - x[0] = 1\n        - x = 2\n",
                6,
                "both as an array",
            ),
            (
                "p:\n  follows: t\n  steps:\n    - a:\n        - mutex_lock ksm_mutex\n",
                5,
                "'ksm_mutex' is not a kernel mutex the model has: use one of ksm_thread_mutex",
            ),
            (
                "p:\n  follows: t\n  steps:\n    - a: mutex_unlock\n",
                4,
                "'mutex_unlock' needs a kernel mutex's name",
            ),
            (
                "p:\n  follows: t\n  steps:\n    - a:\n        - x[0] = 1\n        - put x\n",
                6,
                "'x' is an array",
            ),
            (
                "p:\n  follows: t\n  steps:\n    - a:\n        - x = 1\n        - put x[0]\n",
                6,
                "'x' is not an array",
            ),
            (
                "p:\n  follows: t\n  steps:\n    - a:\n        - x[0] = 1\n        - y = defined(x)\n",
                6,
                "defined() tests a variable",
            ),
            (
                "p:\n  follows: t\n  steps:\n    - a:\n        - lock ptee\n",
                5,
                "unknown variable 'ptee'",
            ),
            (
                "p:\n  follows: t\n  steps:\n    - a: goto c\n",
                4,
                "no step 'c'",
            ),
            (
                "p:\n  follows: t\n  steps:\n    - a: retry\n    - a: retry\n",
                5,
                "two steps are named 'a'",
            ),
            (
                "p:\n  follows: t\n  steps:\n    - a: [copy x, y]\n",
                4,
                "unknown variable 'x'",
            ),
            (
                "p:\n  follows: t\n  steps:\n    - a: [lock pte, pte]\n",
                4,
                "unknown primitive",
            ),
            (
                "p:\n  follows: t\n  steps:\n    - a: end start, end seed=dropped\n",
                4,
                "seed=only_end",
            ),
            (
                "p:\n  follows: t\n  steps:\n    - a: va = 1\n",
                4,
                "is an input",
            ),
            (
                "p:\n  follows: t\n  steps:\n    - a: lock = 1\n",
                4,
                "is a primitive",
            ),
            (
                "p:\n  follows: t\n  steps:\n    - a: x = frob(1)\n",
                4,
                "unknown function 'frob'",
            ),
            (
                "p:\n  follows: t\n  steps:\n    - a: x = 99999999999999999999999\n",
                4,
                "not a 64-bit number",
            ),
            (
                "p:\n  follows: t\n  steps:\n    - a: x = 1 $ 2\n",
                4,
                "'$' is not part",
            ),
            (
                "p:\n  follows: t\n  steps:\n    - a: set_pte pte, 0, 1, 2\n",
                4,
                "too many arguments",
            ),
            ("p:\n  follows: t\n  steps: []\n", 3, "no steps"),
            (
                "p:\n  follows: t\n  stpes: []\n",
                3,
                "unknown field `stpes`",
            ),
            (
                "P:\n  follows: t\n  steps:\n    - a: retry\n",
                1,
                "is not a name",
            ),
        ];
        for (src, l, want) in cases {
            let e = one(src).expect_err(src);
            assert_eq!(e.line, *l, "{src}: {e}");
            assert!(e.msg.contains(want), "{src}: {e}");
            assert!(e.to_string().starts_with(&format!("t.yaml:{l}: ")), "{e}");
        }
    }

    #[test]
    fn labels_guards_and_refusals() {
        let d = one("p:\n  follows: t\n  steps:\n    - _top:\n        - if va == 0 then set_pte pte, 0, va + 8\n        - if 1 goto a\n    - a: refuse \"what, it is\", \"do this\"\n    - b: tlb_finish_mmu\n").unwrap();
        // A label is a place to go, not a checkpoint.
        assert_eq!(d.checkpoints(), ["a", "b"]);
        assert!(d.steps[0].label());
        let OpKind::When(_, then) = &d.steps[0].ops[0].kind else {
            panic!("{:?}", d.steps[0].ops[0])
        };
        assert!(matches!(**then, OpKind::SetPte(_, _, Some(_))));
        assert_eq!(
            d.steps[1].ops[0].kind,
            OpKind::Refuse("what, it is".into(), "do this")
        );
        let cases: &[(&str, usize, &str)] = &[
            (
                "p:\n  follows: t\n  steps:\n    - a: retry\n    - _b: lock pte\n",
                5,
                "is a label",
            ),
            (
                "p:\n  follows: t\n  steps:\n    - _b: return\n    - a: retry\n",
                4,
                "ends a checkpoint",
            ),
            (
                "p:\n  follows: t\n  steps:\n    - a: if 1 then goto a\n",
                4,
                "after 'then'",
            ),
            (
                "p:\n  follows: t\n  steps:\n    - a: if 1 lock pte\n",
                4,
                "'then <primitive>'",
            ),
            (
                "p:\n  follows: t\n  steps:\n    - a: refuse \"x\"\n",
                4,
                "then what to write instead",
            ),
            (
                "p:\n  follows: t\n  steps:\n    - a: refuse x, \"y\"\n",
                4,
                "refuse \"<what",
            ),
            (
                "p:\n  follows: t\n  steps:\n    - a: refuse \"x, y\n",
                4,
                "is not closed",
            ),
            (
                "p:\n  follows: t\n  steps:\n    - a: x = pte_in(1)\n",
                4,
                "takes two arguments",
            ),
            (
                "p:\n  follows: t\n  steps:\n    - a: x = zero_pfn(1)\n",
                4,
                "takes no argument",
            ),
            (
                "p:\n  follows: t\n  steps:\n    - a: x = \"s\"\n",
                4,
                "expected a value",
            ),
            (
                "p:\n  follows: t\n  steps:\n    - __: retry\n",
                4,
                "not a name",
            ),
        ];
        for (src, l, want) in cases {
            let e = one(src).expect_err(src);
            assert_eq!(e.line, *l, "{src}: {e}");
            assert!(e.msg.contains(want), "{src}: {e}");
        }
    }

    #[test]
    fn every_bundled_path_parses() {
        for (file, text) in super::super::BUNDLED {
            let defs = parse_file(file, text).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(defs.len(), 1, "{file}: one path per file");
            assert!(file.ends_with(&format!("{}.yaml", defs[0].name)), "{file}");
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = format!(
            "p:\n  follows: t\n  steps:\n    - a: x = {}1{}\n",
            "(".repeat(100),
            ")".repeat(100)
        );
        assert!(one(&deep).unwrap_err().msg.contains("nested deeper"));
    }
}
