//! A line as [`Event`]s: what each value is, in document order, the one
//! form that inference ([`crate::Shape::replay`]) and conversion
//! ([`crate::build::Rows::add`]) read.
//!
//! Most lines are read by a strict scan (the checks of `fleet_spec::cell`'s
//! scanner, RFC 8259 as simd-json applies it): no tape, no copy of the
//! line, no number parsed beyond its class (its text is kept), a string
//! with escapes kept as written ([`Event::Escaped`], undone only where its
//! text is written). It reads only lines it is sure of; anything else (a
//! key with an escape, a surrogate escape, `-0`, a
//! three-digit exponent, nesting beyond 64, a root that is not an object,
//! invalid UTF-8, every syntax error) is left to simd-json, which decides,
//! and whose tape [`from_tape`] turns into the same events. Events are
//! read only once the whole line has been, so a line found bad half-way
//! adds nothing.

use fleet_spec::cell::{each_element, each_member, literal, scan_string_escaped, skip_ws};
use simd_json::{Node, StaticNode};

use crate::literal::Literals;

/// 2^53: the integers a double holds exactly.
const SAFE: u64 = 1 << 53;

/// The class of an integer: what [`crate::shape`] widens by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Int {
    /// |v| <= 2^53
    Safe,
    /// fits i64
    I64,
    /// up to 38 digits
    Decimal,
    /// wider
    Wide,
}

/// What a line holds, in document order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// An object: its members follow (a key, then its value), then `End`;
    /// `end` is the index after that `End`.
    Object {
        end: u32,
    },
    /// An array: its elements follow, then `End` (`end`: after it).
    Array {
        end: u32,
    },
    End,
    /// A member name, unescaped.
    Key(&'a str),
    Null,
    Bool(bool),
    /// An integer literal: its class and its text.
    Int(Int, &'a str),
    /// A number with a fraction or an exponent: its text.
    Float(&'a str),
    /// A string without escapes (or unescaped by simd-json).
    String(&'a str),
    /// A string with escapes, as written between its quotes (valid
    /// escapes, no surrogates: [`unescape`] undoes them).
    Escaped(&'a str),
}

/// Nesting this deep or deeper is left to simd-json.
const MAX_DEPTH: u32 = 64;

/// The events of `line` (a JSON object, whitespace around it aside) into
/// `events` (cleared first), when the scan is sure the line is valid
/// JSON; `false` when it is not sure.
pub fn scan<'a>(line: &'a [u8], events: &mut Vec<Event<'a>>) -> bool {
    events.clear();
    // simd-json takes documents below 4 GiB
    if line.len() >= u32::MAX as usize {
        return false;
    }
    let Ok(s) = std::str::from_utf8(line) else { return false };
    let start = skip_ws(line, 0);
    if line.get(start) != Some(&b'{') {
        return false;
    }
    let mut scan = Scan { text: s, events };
    match scan.value(start, 0) {
        Some(end) => skip_ws(line, end) == line.len(),
        None => false,
    }
}

struct Scan<'a, 'e> {
    text: &'a str,
    events: &'e mut Vec<Event<'a>>,
}

impl<'a> Scan<'a, '_> {
    /// `text[start..end]`; both ends are at ASCII bytes.
    fn between(&self, start: usize, end: usize) -> Option<&'a str> {
        self.text.get(start..end)
    }

    /// Reads the value at `text[i]`; returns where it ends.
    fn value(&mut self, i: usize, depth: u32) -> Option<usize> {
        let b = self.text.as_bytes();
        let end = match *b.get(i)? {
            b'"' => {
                let (end, escaped) = scan_string_escaped(b, i)?;
                let text = self.between(i + 1, end - 1)?;
                self.events.push(if escaped { Event::Escaped(text) } else { Event::String(text) });
                end
            }
            open @ (b'{' | b'[') => {
                if depth == MAX_DEPTH {
                    return None;
                }
                let at = self.events.len();
                let end = if open == b'{' {
                    self.events.push(Event::Object { end: 0 });
                    each_member(b, i, |name, at| {
                        // a name with an escape is left to simd-json
                        let name = name?;
                        let start = name.as_ptr() as usize - b.as_ptr() as usize;
                        let key = self.between(start, start + name.len())?;
                        self.events.push(Event::Key(key));
                        self.value(at, depth + 1)
                    })?
                } else {
                    self.events.push(Event::Array { end: 0 });
                    each_element(b, i, |at| self.value(at, depth + 1))?.0
                };
                self.events.push(Event::End);
                close(self.events, at);
                end
            }
            b't' => {
                self.events.push(Event::Bool(true));
                literal(b, i, b"true")?
            }
            b'f' => {
                self.events.push(Event::Bool(false));
                literal(b, i, b"false")?
            }
            b'n' => {
                self.events.push(Event::Null);
                literal(b, i, b"null")?
            }
            b'-' | b'0'..=b'9' => {
                let (end, float) = number(b, i)?;
                let text = self.between(i, end)?;
                self.events.push(if float { Event::Float(text) } else { Event::Int(class(text.as_bytes()), text) });
                end
            }
            _ => return None,
        };
        Some(end)
    }
}

/// Writes the text of the string written `raw` between its quotes (its
/// escapes checked by the scan: one-letter ones and `\u` outside the
/// surrogates) to `out`.
pub fn unescape(raw: &str, out: &mut impl std::fmt::Write) -> std::fmt::Result {
    let mut rest = raw;
    while let Some(p) = rest.find('\\') {
        out.write_str(&rest[..p])?;
        let (c, n) = match rest.as_bytes().get(p + 1) {
            Some(b'b') => ('\u{8}', 2),
            Some(b'f') => ('\u{c}', 2),
            Some(b'n') => ('\n', 2),
            Some(b'r') => ('\r', 2),
            Some(b't') => ('\t', 2),
            Some(b'u') => {
                let code = rest.get(p + 2..p + 6).and_then(|h| u32::from_str_radix(h, 16).ok());
                (code.and_then(char::from_u32).unwrap_or(char::REPLACEMENT_CHARACTER), 6)
            }
            // `\"`, `\\`, `\/`
            Some(&c) => (char::from(c), 2),
            None => break,
        };
        out.write_char(c)?;
        rest = rest.get(p + n..).unwrap_or_default();
    }
    out.write_str(rest)
}

/// Sets the end of the container whose event is `events[at]` (its `End`
/// is the last event).
fn close(events: &mut [Event], at: usize) {
    let after = events.len() as u32;
    match &mut events[at] {
        Event::Object { end } | Event::Array { end } => *end = after,
        _ => unreachable!("a container's event"),
    }
}

/// `-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?` at `b[i]`: where it
/// ends, and whether it is a float (a fraction or an exponent). Not sure
/// (`None`): `-0`, an exponent of three digits or more, a literal over 100
/// bytes.
fn number(b: &[u8], i: usize) -> Option<(usize, bool)> {
    let digits = |mut j: usize| {
        let s = j;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        (j, j - s)
    };
    let neg = b[i] == b'-';
    let int_start = i + usize::from(neg);
    let int_end = match *b.get(int_start)? {
        b'0' => int_start + 1,
        b'1'..=b'9' => digits(int_start).0,
        _ => return None,
    };
    let mut end = int_end;
    let mut float = false;
    if b.get(end) == Some(&b'.') {
        let (e, f) = digits(end + 1);
        if f == 0 {
            return None;
        }
        (end, float) = (e, true);
    }
    if matches!(b.get(end), Some(b'e' | b'E')) {
        let mut j = end + 1;
        if matches!(b.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        let (e, x) = digits(j);
        if x == 0 || x > 2 {
            return None;
        }
        (end, float) = (e, true);
    }
    if end - i > 100 || (!float && neg && int_end - int_start == 1 && b[int_start] == b'0') {
        return None;
    }
    Some((end, float))
}

/// The class of an integer literal (`-?[0-9]+`): what simd-json's node
/// makes of it (an I64 or U64 by value; beyond 64 bits a double, which
/// [`Literals::integer_digits`] reads back).
fn class(lit: &[u8]) -> Int {
    let (neg, digits) = match lit.split_first() {
        Some((b'-', d)) => (true, d),
        _ => (false, lit),
    };
    match digits.len() {
        // below 10^15 < 2^53
        0..=15 => Int::Safe,
        16..=19 => {
            // below 10^19 < 2^64
            let v = digits.iter().fold(0u64, |v, &d| v * 10 + u64::from(d - b'0'));
            match (neg, v) {
                (_, v) if v <= SAFE => Int::Safe,
                (false, v) if v <= i64::MAX as u64 => Int::I64,
                (true, v) if v <= 1 << 63 => Int::I64,
                // a U64, or (below -2^63) a double of an integer literal
                _ => Int::Decimal,
            }
        }
        20..=38 => Int::Decimal,
        _ => Int::Wide,
    }
}

/// The events of a line simd-json parsed into `tape` (from `line`, whose
/// bytes give the numbers' text) into `events` (cleared first).
pub fn from_tape<'a>(tape: &[Node<'a>], line: &'a [u8], events: &mut Vec<Event<'a>>) {
    struct Open {
        /// Its event.
        at: usize,
        /// Its last tape node.
        last: usize,
        object: bool,
        /// In an object: the next string is a key.
        key: bool,
    }
    events.clear();
    let mut lit = Literals::new(line);
    let mut open: Vec<Open> = Vec::new();
    for (i, node) in tape.iter().enumerate() {
        let key = open.last().is_some_and(|o| o.object && o.key);
        if let Some(o) = open.last_mut()
            && o.object
        {
            o.key = !o.key;
        }
        match *node {
            Node::Object { count, .. } | Node::Array { count, .. } => {
                let object = matches!(node, Node::Object { .. });
                open.push(Open { at: events.len(), last: i + count, object, key: true });
                events.push(if object { Event::Object { end: 0 } } else { Event::Array { end: 0 } });
            }
            Node::String(s) => events.push(if key { Event::Key(s) } else { Event::String(s) }),
            Node::Static(StaticNode::Null) => events.push(Event::Null),
            Node::Static(StaticNode::Bool(v)) => events.push(Event::Bool(v)),
            Node::Static(StaticNode::I64(_) | StaticNode::U64(_)) => {
                let text = lit.text(i);
                events.push(Event::Int(class(text.as_bytes()), text));
            }
            Node::Static(StaticNode::F64(_)) => {
                let text = lit.text(i);
                // an integer literal beyond 64 bits (simd-json made it a double)
                events.push(match lit.integer_digits(tape, i) {
                    Some(_) => Event::Int(class(text.as_bytes()), text),
                    None => Event::Float(text),
                });
            }
        }
        // close every container whose last node this was (an empty one at once)
        while open.last().is_some_and(|o| o.last == i) {
            let o = open.pop().expect("checked");
            events.push(Event::End);
            close(events, o.at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Int as I;
    use super::*;
    use Event::*;

    fn events(line: &str) -> Option<Vec<Event<'_>>> {
        let mut ev = Vec::new();
        scan(line.as_bytes(), &mut ev).then_some(ev)
    }

    /// simd-json's events of `line`.
    fn tape_events(line: &str) -> Vec<Event<'static>> {
        let line: &'static str = Box::leak(line.to_string().into_boxed_str());
        let buf: &'static mut [u8] = Box::leak(line.as_bytes().to_vec().into_boxed_slice());
        let tape = simd_json::to_tape(buf).unwrap();
        let mut ev = Vec::new();
        from_tape(&tape.0, line.as_bytes(), &mut ev);
        ev
    }

    #[test]
    fn sure_lines_give_their_events_in_document_order() {
        let line = r#" {"a":[1,-2.5e3,"xy"],"b":{"c":null,"d":true,"e":[]},"e":9007199254740993,"f":-9223372036854775808,"g":18446744073709551615,"h":-9223372036854775809,"i":123456789012345678901234567890123456789} "#;
        let want = vec![
            Object { end: 28 },
            Key("a"),
            Array { end: 7 },
            Int(I::Safe, "1"),
            Float("-2.5e3"),
            String("xy"),
            End,
            Key("b"),
            Object { end: 17 },
            Key("c"),
            Null,
            Key("d"),
            Bool(true),
            Key("e"),
            Array { end: 16 },
            End,
            End,
            Key("e"),
            Int(I::I64, "9007199254740993"),
            Key("f"),
            Int(I::I64, "-9223372036854775808"),
            Key("g"),
            Int(I::Decimal, "18446744073709551615"),
            Key("h"),
            Int(I::Decimal, "-9223372036854775809"),
            Key("i"),
            Int(I::Wide, "123456789012345678901234567890123456789"),
            End,
        ];
        assert_eq!(events(line), Some(want.clone()));
        assert_eq!(tape_events(line), want);
        assert_eq!(events("{}"), Some(vec![Object { end: 2 }, End]));
        assert_eq!(
            events(r#"{"é":9007199254740992}"#),
            Some(vec![Object { end: 4 }, Key("é"), Int(I::Safe, "9007199254740992"), End])
        );
        // strings with escapes come as written, and unescape to simd-json's text
        let line = r#"{"a":"x\ny\u00e9\"\\\/\t"}"#;
        let ev = events(line).unwrap();
        assert_eq!(ev, [Object { end: 4 }, Key("a"), Escaped(r#"x\ny\u00e9\"\\\/\t"#), End]);
        let mut text = std::string::String::new();
        unescape(r#"x\ny\u00e9\"\\\/\t"#, &mut text).unwrap();
        assert_eq!(tape_events(line)[2], String(&text));
        assert_eq!(tape_events(r#"{"a":"x\ny","b":[{}]}"#)[2], String("x\ny"));
    }

    #[test]
    fn anything_unsure_or_invalid_is_left_to_simd_json() {
        for line in [
            "[1]",
            "1",
            r#"{"a":1"#,
            r#"{"a":1,}"#,
            r#"{"a":01}"#,
            r#"{"a":1.}"#,
            r#"{"a":-0}"#,
            r#"{"a":1e400}"#,
            r#"{"a":1.5e-400}"#,
            r#"{"a\n":1}"#,
            r#"{"a":"\ud83d\ude00"}"#,
            "{\"a\":\"tab\tin\"}",
            r#"{"a":tru}"#,
            r#"{"a":1} x"#,
            r#"{"a":1}{"b":2}"#,
        ] {
            assert_eq!(events(line), None, "{line}");
        }
        assert!(!scan(b"{\"a\":\"\xff\"}", &mut Vec::new()));
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(64), "]".repeat(64));
        assert_eq!(events(&deep), None);
        let ok = format!("{{\"a\":{}{}}}", "[".repeat(63), "]".repeat(63));
        assert!(events(&ok).is_some());
    }
}
