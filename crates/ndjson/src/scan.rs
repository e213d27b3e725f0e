//! The inference pass's fast read of a line: a strict scan (the checks of
//! `fleet_spec::cell`'s scanner, RFC 8259 as simd-json applies it) that
//! records what each value is, with no tape, no unescaped copy of the
//! strings and no number parsed beyond its class. It reads only lines it
//! is sure of; anything else (a key with an escape, an integer of 20
//! digits or more, a three-digit exponent, nesting beyond 64, a root that
//! is not an object, invalid UTF-8, every syntax error) is left to
//! simd-json, which decides. The events of a line are replayed into the
//! [`Shape`](crate::Shape) only once the whole line has been read, so a
//! line found bad half-way adds nothing.

use fleet_spec::cell::{each_element, each_member, literal, scan_string, skip_ws};

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
    /// An object; its members follow (a key, then its value), then `End`.
    Object,
    /// An array; its elements follow, then `End`.
    Array,
    End,
    Key(&'a str),
    Null,
    Bool,
    Int(Int),
    Float,
    String,
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
    let Ok(text) = std::str::from_utf8(line) else { return false };
    let start = skip_ws(line, 0);
    if line.get(start) != Some(&b'{') {
        return false;
    }
    match value(text, start, events, 0) {
        Some(end) => skip_ws(line, end) == line.len(),
        None => false,
    }
}

/// Reads the value at `text[i]` into `events`; returns where it ends.
fn value<'a>(text: &'a str, i: usize, events: &mut Vec<Event<'a>>, depth: u32) -> Option<usize> {
    let b = text.as_bytes();
    let end = match *b.get(i)? {
        b'"' => {
            events.push(Event::String);
            scan_string(b, i)?
        }
        b'{' => {
            if depth == MAX_DEPTH {
                return None;
            }
            events.push(Event::Object);
            let end = each_member(b, i, |name, at| {
                // a name with an escape is left to simd-json
                let name = name?;
                // the name's bytes lie between the quotes at ASCII positions
                let start = name.as_ptr() as usize - b.as_ptr() as usize;
                events.push(Event::Key(text.get(start..start + name.len())?));
                value(text, at, events, depth + 1)
            })?;
            events.push(Event::End);
            end
        }
        b'[' => {
            if depth == MAX_DEPTH {
                return None;
            }
            events.push(Event::Array);
            let (end, _) = each_element(b, i, |at| value(text, at, events, depth + 1))?;
            events.push(Event::End);
            end
        }
        b't' => {
            events.push(Event::Bool);
            literal(b, i, b"true")?
        }
        b'f' => {
            events.push(Event::Bool);
            literal(b, i, b"false")?
        }
        b'n' => {
            events.push(Event::Null);
            literal(b, i, b"null")?
        }
        b'-' | b'0'..=b'9' => {
            let (end, class) = number(b, i)?;
            events.push(class);
            end
        }
        _ => return None,
    };
    Some(end)
}

/// `-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?` at `b[i]`, and its
/// class as simd-json's node would make it ([`crate::shape`]): an integer
/// literal by its magnitude, anything with a fraction or an exponent a
/// float. Not sure (`None`): `-0`, an exponent of three digits or more,
/// a literal over 100 bytes.
fn number(b: &[u8], i: usize) -> Option<(usize, Event<'static>)> {
    let digits = |mut j: usize| {
        let s = j;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        (j, j - s)
    };
    let neg = b[i] == b'-';
    let int_start = i + usize::from(neg);
    let (int_end, n) = match *b.get(int_start)? {
        b'0' => (int_start + 1, 1),
        b'1'..=b'9' => digits(int_start),
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
    if end - i > 100 {
        return None;
    }
    if float {
        return Some((end, Event::Float));
    }
    if n <= 15 {
        // below 10^15 < 2^53
        return (!(neg && n == 1 && b[int_start] == b'0')).then_some((end, Event::Int(Int::Safe)));
    }
    if n > 38 {
        return Some((end, Event::Int(Int::Wide)));
    }
    if n > 19 {
        // simd-json: a U64 up to 2^64 - 1, a double (of an integer literal) beyond
        return Some((end, Event::Int(Int::Decimal)));
    }
    // 16 to 19 digits: below 10^19 < 2^64
    let v = b[int_start..int_end].iter().fold(0u64, |v, &d| v * 10 + u64::from(d - b'0'));
    let class = match (neg, v) {
        (_, v) if v <= SAFE => Int::Safe,
        (false, v) if v <= i64::MAX as u64 => Int::I64,
        (true, v) if v <= 1 << 63 => Int::I64,
        // a U64, or (below -2^63) a double of an integer literal
        _ => Int::Decimal,
    };
    Some((end, Event::Int(class)))
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

    #[test]
    fn sure_lines_give_their_events_in_document_order() {
        assert_eq!(
            events(
                r#" {"a":[1,-2.5e3,"x\u00e9\n"],"b":{"c":null,"d":true},"e":9007199254740993,"f":-9223372036854775808,"g":18446744073709551615,"h":-9223372036854775809,"i":123456789012345678901234567890123456789} "#
            ),
            Some(vec![
                Object,
                Key("a"),
                Array,
                Int(I::Safe),
                Float,
                String,
                End,
                Key("b"),
                Object,
                Key("c"),
                Null,
                Key("d"),
                Bool,
                End,
                Key("e"),
                Int(I::I64),
                Key("f"),
                Int(I::I64),
                Key("g"),
                Int(I::Decimal),
                Key("h"),
                Int(I::Decimal),
                Key("i"),
                Int(I::Wide),
                End,
            ])
        );
        assert_eq!(events("{}"), Some(vec![Object, End]));
        assert_eq!(events(r#"{"é":9007199254740992}"#), Some(vec![Object, Key("é"), Int(I::Safe), End]));
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
            r#"{"a":"tab	in"}"#,
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
