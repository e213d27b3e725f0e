//! One JSON cell to a simd-json tape, with the strict rules of FEATURES.md §3.1.

use simd_json::{Buffers, INPUT_PADDING, Node, StaticNode, Tape};

/// Why a JSON cell was rejected. `offset` is the byte offset in the cell
/// where the problem was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellError {
    pub offset: usize,
    pub message: String,
}

impl std::fmt::Display for CellError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at byte {}", self.message, self.offset)
    }
}

/// A tape holding exactly the empty array, used for NULL, empty,
/// whitespace-only and `null` cells, which behave like `[]`.
pub static EMPTY_ARRAY: [Node<'static>; 1] = [Node::Array { len: 0, count: 0 }];
/// The empty object, for `json NAME: object` columns.
pub static EMPTY_OBJECT: [Node<'static>; 1] = [Node::Object { len: 0, count: 0 }];

/// Reusable per-thread parse state: the padded copy of the cell that
/// simd-json unescapes in place, its scratch buffers, and the tape.
pub struct CellParser {
    buf: Vec<u8>,
    buffers: Buffers,
}

impl std::fmt::Debug for CellParser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CellParser").field("capacity", &self.buf.capacity()).finish()
    }
}

impl Default for CellParser {
    fn default() -> Self {
        Self { buf: Vec::with_capacity(16 * 1024), buffers: Buffers::new(16 * 1024) }
    }
}

fn is_json_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// What a cell holds once parsed.
#[derive(Debug)]
pub enum Parsed {
    /// NULL, empty, whitespace-only or `null`: behaves like `[]`.
    Empty,
    /// A document; the tape is filled.
    Document,
}

impl CellParser {
    /// Parses `cell` into `tape` (whose previous contents are discarded).
    /// The tape borrows this parser's buffer, so it lives until the next call.
    pub fn parse<'p>(&'p mut self, cell: &[u8], tape: &mut Tape<'p>) -> Result<Parsed, CellError> {
        tape.0.clear();
        if cell.iter().all(|&b| is_json_ws(b)) {
            return Ok(Parsed::Empty);
        }
        self.buf.clear();
        self.buf.extend_from_slice(cell);
        self.buf.resize(cell.len() + INPUT_PADDING, 0);
        if let Err(e) = simd_json::fill_tape_padded(&mut self.buf, cell.len(), &mut self.buffers, tape) {
            return Err(describe(&e, cell));
        }
        if matches!(tape.0.first(), Some(Node::Static(StaticNode::Null))) {
            return Ok(Parsed::Empty);
        }
        Ok(Parsed::Document)
    }
}

/// simd-json decides what is rejected; its error positions are coarse, so
/// a rejected cell (rare) is re-read by serde_json for a precise message
/// and byte offset.
fn describe(e: &simd_json::Error, cell: &[u8]) -> CellError {
    let json = describe_json(e, cell);
    // serde_json skips the bytes of the strings it ignores, so UTF-8 is
    // checked here; the earlier of the two problems is reported
    match std::str::from_utf8(cell) {
        Err(u) if u.valid_up_to() < json.offset || json.message == "invalid UTF-8" => {
            CellError { offset: u.valid_up_to(), message: "invalid UTF-8".into() }
        }
        _ => json,
    }
}

fn describe_json(e: &simd_json::Error, cell: &[u8]) -> CellError {
    use simd_json::ErrorType as E;
    if matches!(e.error(), E::DepthLimitExceeded) {
        return CellError { offset: e.index().min(cell.len()), message: "nesting deeper than 1024 levels".into() };
    }
    if let Err(se) = serde_json::from_slice::<serde::de::IgnoredAny>(cell)
        && !matches!(se.classify(), serde_json::error::Category::Io)
        && !se.to_string().starts_with("recursion limit")
    {
        let line_start: usize =
            cell.split(|&b| b == b'\n').take(se.line().saturating_sub(1)).map(|l| l.len() + 1).sum();
        let offset =
            if se.is_eof() { cell.len() } else { (line_start + se.column().saturating_sub(1)).min(cell.len()) };
        let full = se.to_string();
        let message = full.rsplit_once(" at line ").map_or(full.as_str(), |(m, _)| m).to_string();
        return CellError { offset, message };
    }
    let message = match e.error() {
        E::Eof => "unexpected end of the document",
        E::TrailingData => "trailing characters",
        E::InvalidUtf8 => "invalid UTF-8",
        E::InvalidEscape => "invalid escape",
        E::InvalidUnicodeEscape | E::InvalidUnicodeCodepoint => "invalid unicode code point",
        E::InvalidNumber | E::InvalidExponent => "invalid number",
        _ => "invalid JSON",
    };
    CellError { offset: e.index().min(cell.len()), message: message.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &[u8]) -> Result<Parsed, CellError> {
        let mut p = CellParser::default();
        let mut t = Tape::null();
        p.parse(s, &mut t)
    }

    #[test]
    fn empty_forms_are_empty() {
        for s in [&b""[..], b" ", b" \t\r\n", b"null", b" null "] {
            assert!(matches!(parse(s), Ok(Parsed::Empty)), "{s:?}");
        }
    }

    #[test]
    fn strict_rfc8259() {
        for s in [
            &b"[NaN]"[..],
            b"[1,]",
            b"['a']",
            b"[1] x",
            b"[1e400]",
            b"[-1e400]",
            b"[\"\\uD800\"]",
            b"[\"a\tb\"]",
            b"/* c */ []",
            b"[Infinity]",
            b"[1",
            b"\xef\xbb\xbf[]",
        ] {
            assert!(parse(s).is_err(), "{:?} should be rejected", String::from_utf8_lossy(s));
        }
        for s in [&b"[123456789012345678901234567890]"[..], b"[1e308]", b"[-0]", b"{\"a\":1,\"a\":2}"] {
            assert!(matches!(parse(s), Ok(Parsed::Document)), "{:?}", String::from_utf8_lossy(s));
        }
    }

    #[test]
    fn depth_limit_is_1024() {
        let ok = format!("{}{}", "[".repeat(1024), "]".repeat(1024));
        assert!(parse(ok.as_bytes()).is_ok());
        let deep = format!("{}{}", "[".repeat(1025), "]".repeat(1025));
        assert!(parse(deep.as_bytes()).is_err());
        let very = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(parse(very.as_bytes()).is_err());
        assert!(parse("[".repeat(10_000).as_bytes()).is_err());
    }

    #[test]
    fn invalid_utf8_names_the_first_bad_byte() {
        let e = parse(b"[\"ok\", \"caf\xc3\", 1]").unwrap_err();
        assert_eq!((e.offset, e.message.as_str()), (11, "invalid UTF-8"), "{e}");
        // a wrong byte after an earlier syntax error: the first problem is reported
        let e = parse(b"[1,,\xff]").unwrap_err();
        assert_eq!((e.offset, e.message.as_str()), (3, "expected value"), "{e}");
    }

    #[test]
    fn error_names_the_offset() {
        let e = parse(b"[1, 2, x]").unwrap_err();
        assert_eq!(e.offset, 7, "{e}");
        assert!(e.to_string().ends_with("at byte 7"), "{e}");
    }
}
