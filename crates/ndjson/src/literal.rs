//! The literal text of a line's numbers. simd-json's tape holds a number
//! as a value: exact for integers up to 2^64, a double beyond (and for
//! every float). Where the text matters (an integer wider than 64 bits, a
//! number written into a string or JSON-text column, a decimal) it is read
//! back from the line, which simd-json has not changed (it unescapes
//! strings in its own copy).
//!
//! The tape's nodes are the line's values and keys in document order, so
//! the n-th node starts at the n-th token that opens a value or key (`{`,
//! `[`, `"`, a number or a literal): one scan of a valid line finds them.

use simd_json::{Node, StaticNode};

/// A line and, once needed, where each of its tape nodes starts.
#[derive(Debug)]
pub struct Literals<'a> {
    line: &'a [u8],
    starts: Option<Vec<u32>>,
}

fn is_number_byte(b: u8) -> bool {
    matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
}

impl<'a> Literals<'a> {
    /// `line` must be the valid JSON the tape was parsed from.
    pub fn new(line: &'a [u8]) -> Self {
        Self { line, starts: None }
    }

    fn starts(&mut self) -> &[u32] {
        self.starts.get_or_insert_with(|| token_starts(self.line))
    }

    /// The literal text of the number node `tape[i]`.
    pub fn text(&mut self, i: usize) -> &'a str {
        let line = self.line;
        let start = self.starts().get(i).map_or(line.len(), |&s| s as usize);
        let end = line[start..].iter().position(|&b| !is_number_byte(b)).map_or(line.len(), |p| start + p);
        // number bytes are ASCII
        std::str::from_utf8(&line[start..end]).unwrap_or_default()
    }

    /// For a double node `tape[i]` that is an integer literal too wide for
    /// 64 bits (simd-json made it a double): its number of digits.
    pub fn integer_digits(&mut self, tape: &[Node], i: usize) -> Option<usize> {
        let Node::Static(StaticNode::F64(v)) = tape[i] else { return None };
        // below 2^63 every integer literal is an I64 or U64 node already
        if v.fract() != 0.0 || v.abs() < 9.2e18 {
            return None;
        }
        let t = self.text(i);
        (!t.bytes().any(|b| matches!(b, b'.' | b'e' | b'E'))).then(|| t.trim_start_matches('-').len())
    }
}

/// Where each value or key of the valid JSON `b` starts, in document order.
fn token_starts(b: &[u8]) -> Vec<u32> {
    let mut v = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                v.push(i as u32);
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'{' | b'[' => {
                v.push(i as u32);
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                v.push(i as u32);
                while i < b.len() && is_number_byte(b[i]) {
                    i += 1;
                }
            }
            b't' | b'f' | b'n' => {
                v.push(i as u32);
                while i < b.len() && b[i].is_ascii_alphabetic() {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_come_back_as_written() {
        let line =
            br#" {"a\"b": [1.50, -0, {"c": 123456789012345678901234567890}], "d": 1e400x, "e": true, "f": 2E+3}"#;
        // (the tape is parsed from the valid part; here only the scan is checked)
        let starts = token_starts(line);
        let texts: Vec<&str> = starts
            .iter()
            .map(|&s| {
                let s = s as usize;
                let e = line[s..].iter().position(|&b| !is_number_byte(b)).map_or(line.len(), |p| s + p);
                std::str::from_utf8(&line[s..e]).unwrap()
            })
            .filter(|t| !t.is_empty())
            .collect();
        assert_eq!(texts, ["1.50", "-0", "123456789012345678901234567890", "1e400", "2E+3"]);

        let src = br#"{"x":[18446744073709551616,-9223372036854775809,1.5e30,2.0]}"#;
        let mut buf = src.to_vec();
        let tape = simd_json::to_tape(&mut buf).unwrap();
        let mut lit = Literals::new(src);
        assert_eq!(lit.integer_digits(&tape.0, 3), Some(20));
        assert_eq!(lit.integer_digits(&tape.0, 4), Some(19));
        assert_eq!(lit.integer_digits(&tape.0, 5), None);
        assert_eq!(lit.text(5), "1.5e30");
        assert_eq!(lit.text(6), "2.0");
    }
}
