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

/// The number of elements of `cell` when it is, without doubt, a valid
/// JSON array (RFC 8259, as strict as the full parser); `None` when not
/// sure, and then the full parser decides and names the problem. For
/// columns the spec only counts (`len(skills)`): no tape is built.
///
/// Not sure means anything beyond plain documents: another root, a `\u`
/// escape of a surrogate, a number with more than 15 digits or a
/// three-digit exponent, nesting deeper than 64 within an element (65 in
/// an element that is an object), invalid UTF-8, and every
/// syntax error.
pub fn array_len(cell: &[u8]) -> Option<usize> {
    array_len_text(std::str::from_utf8(cell).ok()?)
}

/// [`array_len`] of a cell already known to be UTF-8 (an Arrow string).
pub fn array_len_text(cell: &str) -> Option<usize> {
    let b = cell.as_bytes();
    cell_elements(b, |at| match b.get(at) {
        // most elements are strings or objects of strings
        Some(b'{') => each_member(b, at, |_, at| skip(b, at)),
        _ => skip(b, at),
    })
}

/// Walks the cell `b` when it is one array (whitespace around it aside),
/// reading each element with `f` as [`each_element`] does; returns how many
/// elements it has.
#[inline(always)]
pub(crate) fn cell_elements(b: &[u8], f: impl FnMut(usize) -> Option<usize>) -> Option<usize> {
    // simd-json takes documents below 4 GiB
    if b.len() >= u32::MAX as usize {
        return None;
    }
    let start = skip_ws(b, 0);
    if b.get(start) != Some(&b'[') {
        return None;
    }
    let (end, n) = each_element(b, start, f)?;
    (skip_ws(b, end) == b.len()).then_some(n)
}

/// Walks the array whose `[` is at `b[i]`: `f(at)` reads (and checks) the
/// element starting at `at` and returns where it ends. Returns where the
/// array ends and how many elements it has.
#[inline(always)]
pub fn each_element(b: &[u8], i: usize, mut f: impl FnMut(usize) -> Option<usize>) -> Option<(usize, usize)> {
    let mut i = skip_ws(b, i + 1);
    if b.get(i) == Some(&b']') {
        return Some((i + 1, 0));
    }
    let mut n = 0;
    loop {
        n += 1;
        i = skip_ws(b, f(i)?);
        match *b.get(i)? {
            b',' => i = skip_ws(b, i + 1),
            b']' => return Some((i + 1, n)),
            _ => return None,
        }
    }
}

/// Walks the object whose `{` is at `b[i]`: `f(name, at)` reads (and
/// checks) the value of member `name` starting at `at` and returns where it
/// ends (`name` is `None` when it has an escape: its text is not the
/// name). Returns where the object ends.
#[inline(always)]
pub fn each_member(b: &[u8], i: usize, mut f: impl FnMut(Option<&[u8]>, usize) -> Option<usize>) -> Option<usize> {
    let mut i = skip_ws(b, i + 1);
    if b.get(i) == Some(&b'}') {
        return Some(i + 1);
    }
    loop {
        if b.get(i) != Some(&b'"') {
            return None;
        }
        let (end, escaped) = scan_string_escaped(b, i)?;
        let name = (!escaped).then(|| &b[i + 1..end - 1]);
        i = skip_ws(b, end);
        if b.get(i) != Some(&b':') {
            return None;
        }
        i = skip_ws(b, f(name, skip_ws(b, i + 1))?);
        match *b.get(i)? {
            b',' => i = skip_ws(b, i + 1),
            b'}' => return Some(i + 1),
            _ => return None,
        }
    }
}

/// Checks and skips the value at `b[at]` (most are strings).
#[inline(always)]
pub(crate) fn skip(b: &[u8], at: usize) -> Option<usize> {
    if b.get(at) == Some(&b'"') { scan_string(b, at) } else { scan_value(b, at) }
}

/// Where the JSON whitespace from `b[i]` on ends.
#[inline(always)]
pub fn skip_ws(b: &[u8], i: usize) -> usize {
    match b.get(i) {
        // compact JSON: no whitespace between tokens, one compare
        Some(&c) if c > b' ' => i,
        _ => skip_ws_loop(b, i),
    }
}

fn skip_ws_loop(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && is_json_ws(b[i]) {
        i += 1;
    }
    i
}

/// Checks the value starting at `b[i]` (containers iteratively, at most 64
/// deep); returns where it ends.
pub(crate) fn scan_value(b: &[u8], mut i: usize) -> Option<usize> {
    let mut objects: u64 = 0; // one bit per open container: 1 for an object
    let mut depth = 0u32;
    loop {
        // a value starts at b[i]
        match *b.get(i)? {
            b'"' => i = scan_string(b, i)?,
            open @ (b'[' | b'{') => {
                let object = open == b'{';
                i = skip_ws(b, i + 1);
                if b.get(i) == Some(&if object { b'}' } else { b']' }) {
                    i += 1;
                } else {
                    if depth == 64 {
                        return None;
                    }
                    objects = (objects << 1) | u64::from(object);
                    depth += 1;
                    if object {
                        i = scan_key(b, i)?;
                    }
                    continue;
                }
            }
            b't' => i = literal(b, i, b"true")?,
            b'f' => i = literal(b, i, b"false")?,
            b'n' => i = literal(b, i, b"null")?,
            b'-' | b'0'..=b'9' => i = scan_number(b, i)?,
            _ => return None,
        }
        // after a value: a comma and the next one, or closing brackets
        loop {
            if depth == 0 {
                return Some(i);
            }
            i = skip_ws(b, i);
            let object = objects & 1 == 1;
            match *b.get(i)? {
                b',' => {
                    i = skip_ws(b, i + 1);
                    if object {
                        i = scan_key(b, i)?;
                    }
                    break;
                }
                c if c == if object { b'}' } else { b']' } => {
                    i += 1;
                    objects >>= 1;
                    depth -= 1;
                }
                _ => return None,
            }
        }
    }
}

/// A member name, the colon and the space before the value.
fn scan_key(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let i = skip_ws(b, scan_string(b, i)?);
    (b.get(i) == Some(&b':')).then(|| skip_ws(b, i + 1))
}

/// `&text[start..end]`, inlined: the indexing operator calls an
/// out-of-line function, about 12 instructions per kept string in the
/// native evaluation's scanner. Both ends are at ASCII bytes.
#[inline(always)]
pub(crate) fn between(text: &str, start: usize, end: usize) -> &str {
    text.split_at(end).0.split_at(start).1
}

/// A string starting at the quote `b[i]`: no control characters, only the
/// one-letter escapes and `\u` escapes outside the surrogates (a surrogate
/// pair is left to the full parser).
#[inline]
pub fn scan_string(b: &[u8], i: usize) -> Option<usize> {
    scan_string_escaped(b, i).map(|(end, _)| end)
}

/// [`scan_string`], also telling whether the string has an escape.
#[inline(always)]
pub fn scan_string_escaped(b: &[u8], mut i: usize) -> Option<(usize, bool)> {
    let mut escaped = false;
    i += 1;
    loop {
        // sixteen bytes at a time (eight off x86-64) up to the first quote, backslash or control character
        #[cfg(target_arch = "x86_64")]
        while let Some(chunk) = b.get(i..i + 16) {
            let (m, quotes) = special_16(chunk.try_into().expect("sixteen bytes"));
            if m != 0 {
                let at = m.trailing_zeros();
                // most strings end at their first special byte: no second look at it
                if quotes >> at & 1 == 1 {
                    return Some((i + at as usize + 1, escaped));
                }
                i += at as usize;
                break;
            }
            i += 16;
        }
        #[cfg(not(target_arch = "x86_64"))]
        while let Some(chunk) = b.get(i..i + 8) {
            let m = special_bytes(u64::from_le_bytes(chunk.try_into().expect("eight bytes")));
            if m != 0 {
                i += (m.trailing_zeros() / 8) as usize;
                break;
            }
            i += 8;
        }
        match *b.get(i)? {
            b'"' => return Some((i + 1, escaped)),
            b'\\' => match *b.get(i + 1)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {
                    escaped = true;
                    i += 2
                }
                b'u' => {
                    // four hex digits outside the surrogates (pairs are left to the full parser)
                    let hex = std::str::from_utf8(b.get(i + 2..i + 6)?).ok()?;
                    if !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
                        return None;
                    }
                    let code = u32::from_str_radix(hex, 16).ok()?;
                    if (0xd800..0xe000).contains(&code) {
                        return None;
                    }
                    escaped = true;
                    i += 6
                }
                _ => return None,
            },
            0..=0x1f => return None,
            _ => i += 1,
        }
    }
}

/// The high bit of the first byte of `x` (little-endian) that is `"`, `\\`
/// or below 0x20 is set (bits above it may be set spuriously; the lowest
/// set bit is exact).
#[cfg_attr(target_arch = "x86_64", allow(dead_code, reason = "x86-64 has special_16; tested against it"))]
#[inline(always)]
fn special_bytes(x: u64) -> u64 {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let zero = |v: u64| v.wrapping_sub(LO) & !v & HI;
    zero(x ^ (LO * u64::from(b'"'))) | zero(x ^ (LO * u64::from(b'\\'))) | (x.wrapping_sub(LO * 0x20) & !x & HI)
}

/// One bit per byte of `chunk` that is `"`, `\\` or below 0x20, and one
/// per byte that is `"`: sixteen bytes in a few SSE2 instructions (x86-64's
/// baseline, so always there; `safe_arch` wraps them without `unsafe`).
/// Elsewhere strings are scanned eight bytes at a time with [`special_bytes`].
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn special_16(chunk: &[u8; 16]) -> (u32, u32) {
    use safe_arch::*;
    let v = load_unaligned_m128i(chunk);
    let quote = cmp_eq_mask_i8_m128i(v, set_splat_i8_m128i(b'"' as i8));
    let backslash = cmp_eq_mask_i8_m128i(v, set_splat_i8_m128i(b'\\' as i8));
    let low = set_splat_i8_m128i(0x1f);
    let control = cmp_eq_mask_i8_m128i(max_u8_m128i(v, low), low);
    let special = bitor_m128i(bitor_m128i(quote, backslash), control);
    (move_mask_i8_m128i(special) as u32, move_mask_i8_m128i(quote) as u32)
}

/// Checks the literal `word` (`true`, `false`, `null`) at `b[i]`; returns
/// where it ends.
pub fn literal(b: &[u8], i: usize, word: &[u8]) -> Option<usize> {
    (b.get(i..i + word.len()) == Some(word)).then_some(i + word.len())
}

/// `-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?` with at most 15 digits
/// and a one- or two-digit exponent: always a finite double.
fn scan_number(b: &[u8], mut i: usize) -> Option<usize> {
    let digits = |b: &[u8], mut i: usize| {
        let s = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        (i, i - s)
    };
    if b[i] == b'-' {
        i += 1;
    }
    let (mut end, mut n) = match *b.get(i)? {
        b'0' => (i + 1, 1),
        b'1'..=b'9' => digits(b, i),
        _ => return None,
    };
    if b.get(end) == Some(&b'.') {
        let (e, f) = digits(b, end + 1);
        if f == 0 {
            return None;
        }
        (end, n) = (e, n + f);
    }
    if matches!(b.get(end), Some(b'e' | b'E')) {
        let mut j = end + 1;
        if matches!(b.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        let (e, x) = digits(b, j);
        if x == 0 || x > 2 {
            return None;
        }
        end = e;
    }
    (n <= 15).then_some(end)
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
    fn array_len_counts_plain_arrays_and_is_unsure_of_the_rest() {
        let sure: [(&[u8], usize); 9] = [
            (b"[]", 0),
            (b" [ ] \n", 0),
            (b"[1, \"a\", {\"b\": [2, {}]}, null, true, false]", 6),
            (b"[1.5e10, -0, 0.1, -12.25E-3, 1e+99]", 5),
            (b"[\"a\\\"b\\\\c\\/\\n\\t\"]", 1),
            (b"[[[]], [[]]]", 2),
            (b"[{\"a\":1,\"a\":2}]", 1),
            ("[\"caf\u{e9}\"]".as_bytes(), 1),
            (b"[123456789012345]", 1),
        ];
        for (cell, n) in sure {
            assert_eq!(array_len(cell), Some(n), "{}", String::from_utf8_lossy(cell));
            assert!(matches!(parse(cell), Ok(Parsed::Document)));
        }
        // the cell's own array, then 64 levels within its element
        let deep65 = format!("{}1{}", "[".repeat(65), "]".repeat(65));
        assert_eq!(array_len(deep65.as_bytes()), Some(1));
        let in_object = format!("[{{\"a\": {}1{}}}]", "[".repeat(64), "]".repeat(64));
        assert_eq!(array_len(in_object.as_bytes()), Some(1));
        for cell in [
            &b""[..],
            b"null",
            b"{\"a\": 1}",
            b"\"x\"",
            b"[1,]",
            b"[,1]",
            b"[1 2]",
            b"[01]",
            b"[1.]",
            b"[.5]",
            b"[1e]",
            b"[1e400]",
            b"[1e100]",
            b"[1234567890123456]",
            b"[tru]",
            b"[nul]",
            b"[\"\\ud800\"]",
            b"[\"\\x\"]",
            b"[\"a\tb\"]",
            b"[\"a]",
            b"[1] x",
            b"[1]]",
            b"[{\"a\" 1}]",
            b"[{\"a\":}]",
            b"[{1:2}]",
            b"[{\"a\":1,}]",
            b"[\"\xff\"]",
            b"\xef\xbb\xbf[]",
            b"[NaN]",
            b"[-]",
            b"[1",
        ] {
            assert_eq!(array_len(cell), None, "{}", String::from_utf8_lossy(cell));
        }
        let deep66 = format!("{}1{}", "[".repeat(66), "]".repeat(66));
        assert_eq!(array_len(deep66.as_bytes()), None);
        let in_object = format!("[{{\"a\": {}1{}}}]", "[".repeat(65), "]".repeat(65));
        assert_eq!(array_len(in_object.as_bytes()), None);
    }

    #[test]
    fn array_len_finds_quotes_escapes_and_control_characters_at_every_position() {
        for pos in 0..24 {
            let a = "a".repeat(pos);
            let b = "é".repeat(pos / 2);
            for (cell, want) in [
                (format!("[\"{a}\", \"x\"]"), Some(2)),
                (format!("[\"{b}\", \"{a}\"]"), Some(2)),
                (format!("[\"{a}\\\"{a}\"]"), Some(1)),
                (format!("[\"{a}\\\\\", 1]"), Some(2)),
                (format!("[\"{a}\\u0041\"]"), Some(1)),
                (format!("[\"{a}\\u00e9\\uFFFF\\u0000\"]"), Some(1)),
                (format!("[\"{a}\\uD83D\\uDE00\"]"), None),
                (format!("[\"{a}\\udc00\"]"), None),
                (format!("[\"{a}\\u00g0\"]"), None),
                (format!("[\"{a}\\u00e\"]"), None),
                (format!("[\"{a}\u{1}\"]"), None),
                (format!("[\"{a}\n{a}\"]"), None),
                (format!("[\"{a}\u{7f}\"]"), Some(1)),
                (format!("[\"{a}"), None),
            ] {
                assert_eq!(array_len(cell.as_bytes()), want, "{cell:?}");
                if want.is_some() {
                    assert!(matches!(parse(cell.as_bytes()), Ok(Parsed::Document)), "{cell:?}");
                }
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn sixteen_and_eight_byte_scans_agree() {
        // every byte value at every position, over backgrounds of plain and high bytes
        for background in [b'a', 0x80, 0xff, b' ', b'!'] {
            for pos in 0..16 {
                for v in 0..=255u8 {
                    let mut chunk = [background; 16];
                    chunk[pos] = v;
                    let (m16, quotes) = special_16(&chunk);
                    assert_eq!(quotes & (1 << pos) != 0, v == b'"', "{chunk:?}");
                    let lo = special_bytes(u64::from_le_bytes(chunk[..8].try_into().unwrap()));
                    let hi = special_bytes(u64::from_le_bytes(chunk[8..].try_into().unwrap()));
                    // the lowest set bit of the SWAR masks is exact (higher ones may be spurious)
                    let first8 = if lo != 0 {
                        Some(lo.trailing_zeros() / 8)
                    } else if hi != 0 {
                        Some(8 + hi.trailing_zeros() / 8)
                    } else {
                        None
                    };
                    let first16 = (m16 != 0).then(|| m16.trailing_zeros());
                    assert_eq!(first16, first8, "{chunk:?}");
                    let special = v == b'"' || v == b'\\' || v < 0x20;
                    assert_eq!(m16 & (1 << pos) != 0, special, "{chunk:?}");
                }
            }
        }
    }

    #[test]
    fn error_names_the_offset() {
        let e = parse(b"[1, 2, x]").unwrap_err();
        assert_eq!(e.offset, 7, "{e}");
        assert!(e.to_string().ends_with("at byte 7"), "{e}");
    }
}
