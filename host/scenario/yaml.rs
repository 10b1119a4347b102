//! Reading a scenario file as untrusted input: its size, its encoding, and
//! the YAML itself under a budget (one document, bounded nesting, nodes and
//! aliases), every value with the line it was written on.
//!
//! The YAML parser is serde-saphyr: it deserializes straight from the event
//! stream (a wrong shape stops it at the first offending node, so nesting
//! costs linear time), reports a duplicate key at the second occurrence, and
//! gives [`Spanned`] values their line.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;
use std::fmt;
use std::marker::PhantomData;

/// The largest scenario file read, bytes.
pub const MAX_BYTES: u64 = 1 << 20;
/// The deepest nesting of YAML collections accepted (a scenario needs 4).
pub const MAX_DEPTH: usize = 16;

/// A YAML mapping with its keys in the order they were written (a
/// timeline step names its threads in order; pages keep their order).
pub struct OrderedMap<K, V>(pub Vec<(K, V)>);

impl<'de, K: Deserialize<'de>, V: Deserialize<'de>> Deserialize<'de> for OrderedMap<K, V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V_<K, V>(PhantomData<(K, V)>);
        impl<'de, K: Deserialize<'de>, V: Deserialize<'de>> Visitor<'de> for V_<K, V> {
            type Value = OrderedMap<K, V>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                let mut v = Vec::new();
                while let Some(kv) = a.next_entry()? {
                    v.push(kv);
                }
                Ok(OrderedMap(v))
            }
        }
        d.deserialize_map(V_(PhantomData))
    }
}

/// One string or a sequence of strings (`seed: clean`,
/// `end-only: [order-violation, stale-read]`).
pub struct OneOrMany(pub Vec<String>);

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V_;
        impl<'de> Visitor<'de> for V_ {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a verdict kind or a list of them, like [order-violation, stale-read]")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(OneOrMany(vec![s.to_string()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = a.next_element::<String>()? {
                    v.push(x);
                }
                Ok(OneOrMany(v))
            }
        }
        d.deserialize_any(V_)
    }
}

/// The line (1-based) a value was written on; 0 when not known.
pub fn line<T>(s: &Spanned<T>) -> usize {
    s.referenced.line() as usize
}

/// Decode the file as UTF-8 (a byte-order mark is allowed), or say on which
/// line the first byte that is not UTF-8 stands.
pub fn decode(bytes: &[u8]) -> Result<&str, (usize, String)> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    std::str::from_utf8(bytes).map_err(|e| {
        let ok = &bytes[..e.valid_up_to()];
        let line = 1 + ok.iter().filter(|b| **b == b'\n').count();
        let col = 1 + ok.len() - ok.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1);
        let bad = bytes[e.valid_up_to()];
        (
            line,
            format!(
                "byte {bad:#04x} at column {col} is not UTF-8: save the scenario as UTF-8 text"
            ),
        )
    })
}

/// Deserialize `src` under the budget. On error: the line and the parser's
/// message without its own position suffix.
pub fn from_str<'de, T: Deserialize<'de>>(src: &'de str) -> Result<T, (usize, String)> {
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_depth: MAX_DEPTH,
            flow_nesting_limit: MAX_DEPTH,
            max_documents: 1,
            max_nodes: 200_000,
            max_events: 400_000,
            max_aliases: 256,
            max_anchors: 256,
            max_total_scalar_bytes: MAX_BYTES as usize,
        },
        with_snippet: false,
    };
    serde_saphyr::from_str_with_options(src, options).map_err(|e| {
        let line = e.location().map_or(1, |l| (l.line() as usize).max(1));
        let mut msg = message(&e);
        // A bracket left open is found only lines later: say where it opened.
        if let Some(open) = unclosed_flow(src).filter(|l| *l < line) {
            msg.push_str(&format!(
                " (the '{{' or '[' opened on line {open} is never closed)"
            ));
        }
        (line, msg)
    })
}

/// The line of the outermost flow collection (`{`, `[`) that the file never
/// closes, by a count that skips quoted text and comments.
fn unclosed_flow(src: &str) -> Option<usize> {
    let mut depth = 0u64;
    let mut opened_at = 0;
    for (i, line) in src.lines().enumerate() {
        let mut quote = None;
        let mut prev = ' ';
        for c in line.chars() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '\'' | '"') => quote = Some(c),
                (None, '#') if prev.is_whitespace() => break,
                (None, '{' | '[') => {
                    if depth == 0 {
                        opened_at = i + 1;
                    }
                    depth += 1;
                }
                (None, '}' | ']') => depth = depth.saturating_sub(1),
                _ => {}
            }
            prev = c;
        }
    }
    (depth > 0).then_some(opened_at)
}

/// The parser's message, one line, without " at line L, column C".
fn message(e: &serde_saphyr::Error) -> String {
    let text = e.without_snippet().to_string();
    let first = text.lines().next().unwrap_or_default().trim();
    let text = match first.rfind(" at line ") {
        Some(i) if is_position(&first[i + 9..]) => &first[..i],
        _ => first,
    };
    let text = text.strip_prefix("error: ").unwrap_or(text);
    let text = match text.find(": ") {
        // "line 3 column 1: duplicate mapping key: ..." (the rendered form)
        Some(i) if text.starts_with("line ") => &text[i + 2..],
        _ => text,
    };
    plain(text)
}

/// `L, column C`, all of the rest of the message.
fn is_position(rest: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    rest.split_once(", column ")
        .is_some_and(|(l, c)| digits(l) && digits(c))
}

/// The parser's words for a scenario's author: what is wrong, what to
/// write; a key it quotes is shortened, and the whole is one line of at most
/// [`MAX_MESSAGE`] characters.
fn plain(text: &str) -> String {
    let mut out = explain(&quote_short(text));
    if out.chars().count() > MAX_MESSAGE {
        out = out.chars().take(MAX_MESSAGE - 3).collect::<String>() + "...";
    }
    out
}

/// The longest message taken from the parser, characters.
const MAX_MESSAGE: usize = 400;

/// `unknown field `<anything>`, ...` with the quoted key shortened.
fn quote_short(text: &str) -> String {
    for head in ["unknown field `", "unknown variant `"] {
        if let Some(rest) = text.strip_prefix(head) {
            if let Some(end) = rest.rfind("`, expected") {
                return format!("{head}{}{}", shown(&rest[..end]), &rest[end..]);
            }
        }
    }
    text.to_string()
}

fn explain(text: &str) -> String {
    const HINT: &str = "see scenarios/cow.yaml and docs/scenarios.md for the format";
    if let Some(k) = text.strip_prefix("duplicate mapping key: ") {
        let k = k.split(", set DuplicateKeyPolicy").next().unwrap_or(k);
        return format!(
            "'{}' is given a second time in this mapping: keep one",
            shown(k)
        );
    }
    if text.starts_with("budget breached: Documents") || text.starts_with("multiple YAML documents")
    {
        return "a second YAML document starts here ('---'): a scenario file holds one; remove it or put each scenario in its own file".into();
    }
    if text.starts_with("budget breached: Depth")
        || text.contains("nesting limit")
        || text.starts_with("recursion limit")
    {
        return format!(
            "nested deeper than {MAX_DEPTH} levels: a scenario needs at most 4 ({HINT})"
        );
    }
    if text.starts_with("budget breached: Alias") || text.starts_with("budget breached: Anchors") {
        return "too many YAML anchors (&name) or aliases (*name): a scenario needs none; write the values out".into();
    }
    if text.starts_with("budget breached") {
        return format!("the file is too large or repetitive for a scenario ({text})");
    }
    let what = [
        (
            "expected string scalar",
            "expected a text value here (like 'read addrA' or 40), not a list or a mapping",
        ),
        (
            "expected mapping start",
            "expected a mapping here ('key: value' lines, or { key: value, .. })",
        ),
        (
            "expected sequence start",
            "expected a list here ('- item' lines, or [a, b])",
        ),
    ];
    if let Some((_, w)) = what.iter().find(|(p, _)| text.starts_with(p)) {
        return format!("{w}; {HINT}");
    }
    if text.starts_with("tabs disallowed") {
        return format!("{text}: indent with spaces");
    }
    if [
        "unknown field",
        "missing field",
        "invalid type",
        "expected ",
    ]
    .iter()
    .any(|p| text.starts_with(p))
    {
        return format!("{text}; {HINT}");
    }
    text.to_string()
}

/// `s` as it may be shown in a message: control characters escaped, at
/// most 60 characters.
pub fn shown(s: &str) -> String {
    let mut out: String = s.chars().take(60).flat_map(char::escape_debug).collect();
    if s.chars().count() > 60 {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_byte_that_is_not_utf8_is_placed() {
        let (line, msg) = decode(b"name: t\nabout: t\xe9st\n").unwrap_err();
        assert_eq!(line, 2);
        assert!(msg.contains("0xe9 at column 9"), "{msg}");
        assert_eq!(decode(b"\xef\xbb\xbfname: t\n").unwrap(), "name: t\n");
    }

    #[test]
    fn messages_lose_the_parser_position() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct T {
            a: u8,
        }
        let (line, msg) = from_str::<T>("a: 1\nb: 2\n").unwrap_err();
        assert_eq!(line, 2);
        assert!(msg.starts_with("unknown field `b`"), "{msg}");
        assert!(!msg.contains("column"), "{msg}");
        let (line, msg) = from_str::<T>("a: 1\na: 2\n").unwrap_err();
        assert_eq!(line, 2);
        assert!(msg.contains("given a second time"), "{msg}");
    }

    #[test]
    fn nesting_is_bounded_and_cheap() {
        let deep = format!("a: {}{}\n", "[".repeat(50_000), "]".repeat(50_000));
        let t = std::time::Instant::now();
        let (line, _) = from_str::<std::collections::BTreeMap<String, u8>>(&deep).unwrap_err();
        assert_eq!(line, 1);
        assert!(t.elapsed().as_secs_f64() < 0.5, "{:?}", t.elapsed());
    }

    #[test]
    fn shown_escapes_and_truncates() {
        assert_eq!(shown("a\x1b[31mb"), "a\\u{1b}[31mb");
        assert_eq!(shown(&"x".repeat(70)).len(), 63);
    }
}
