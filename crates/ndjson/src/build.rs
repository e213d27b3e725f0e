//! Lines to Arrow columns: each line's tape is checked against the columns
//! (a line that does not fit is quarantined whole, nothing of it written)
//! and then appended, member by member, into builders of the columns'
//! kinds. Numbers written as text or decimals come from their literal text
//! ([`Literals`]), so no number passes through a double on its way to a
//! string.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Decimal128Builder, Float32Builder, Float64Builder, Int32Builder, Int64Builder, StringBuilder,
};
use arrow_array::{ArrayRef, ListArray, StructArray};
use arrow_buffer::{NullBufferBuilder, OffsetBuffer, ScalarBuffer};
use arrow_schema::{FieldRef, Fields};
use simd_json::{Node, StaticNode};

use crate::literal::Literals;
use crate::shape::{Column, Kind, element_field};

/// Why a line does not fit the columns: where and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// Member keys from the root, innermost last (array elements as `[i]`).
    pub path: Vec<String>,
    pub message: String,
}

impl Mismatch {
    fn new(message: String) -> Self {
        Self { path: Vec::new(), message }
    }
    fn within(mut self, step: String) -> Self {
        self.path.insert(0, step);
        self
    }
    /// The member as a JSON pointer (`/user/tags/0`), empty for the line.
    pub fn pointer(&self) -> String {
        self.path.iter().map(|s| format!("/{s}")).collect()
    }
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{} at member {}", self.message, self.pointer())
        }
    }
}

/// What a node is, for messages.
fn found(tape: &[Node], i: usize, lit: &mut Literals) -> String {
    match tape[i] {
        Node::String(s) => {
            let s: String = s.chars().take(40).collect();
            format!("the string {s:?}")
        }
        Node::Object { .. } => "an object".into(),
        Node::Array { .. } => "an array".into(),
        Node::Static(StaticNode::Bool(b)) => format!("{b}"),
        Node::Static(StaticNode::Null) => "null".into(),
        Node::Static(StaticNode::I64(v)) => format!("{v}"),
        Node::Static(StaticNode::U64(v)) => format!("{v}"),
        Node::Static(StaticNode::F64(_)) => lit.text(i).to_string(),
    }
}

/// The index after the value at `tape[i]`.
fn after(tape: &[Node], i: usize) -> usize {
    match tape[i] {
        Node::Object { count, .. } | Node::Array { count, .. } => i + count + 1,
        _ => i + 1,
    }
}

/// A column being built.
#[derive(Debug)]
enum Builder {
    Boolean(BooleanBuilder),
    Int32(Int32Builder),
    Int64(Int64Builder),
    Float32(Float32Builder),
    Float64(Float64Builder),
    Decimal(Decimal128Builder, u8, i8),
    Text(StringBuilder),
    Json(StringBuilder),
    Struct(Box<StructBuilder>),
    List(Box<ListBuilder>),
}

#[derive(Debug)]
struct StructBuilder {
    fields: Fields,
    index: HashMap<String, usize>,
    /// The member keys, and which member followed which in the last object
    /// looked up (`follow[len]`: the first): lines mostly repeat an order,
    /// so a lookup is mostly one comparison.
    keys: Vec<Box<str>>,
    follow: Vec<usize>,
    children: Vec<Builder>,
    nulls: NullBufferBuilder,
    /// Which members the object being checked or appended had (`seen[m] == stamp`).
    stamp: u32,
    seen: Vec<u32>,
}

#[derive(Debug)]
struct ListBuilder {
    field: FieldRef,
    offsets: Vec<i32>,
    nulls: NullBufferBuilder,
    child: Builder,
}

impl StructBuilder {
    fn new(columns: &[Column]) -> Self {
        Self {
            fields: columns.iter().map(Column::field).collect(),
            index: columns.iter().enumerate().map(|(i, c)| (c.key.clone(), i)).collect(),
            keys: columns.iter().map(|c| c.key.as_str().into()).collect(),
            follow: (1..=columns.len()).chain([0]).collect(),
            children: columns.iter().map(|c| Builder::new(&c.kind)).collect(),
            nulls: NullBufferBuilder::new(0),
            stamp: 0,
            seen: vec![0; columns.len()],
        }
    }

    fn next_stamp(&mut self) -> u32 {
        self.stamp = self.stamp.wrapping_add(1);
        if self.stamp == 0 {
            self.seen.iter_mut().for_each(|s| *s = 0);
            self.stamp = 1;
        }
        self.stamp
    }

    /// The member of key `key` coming after member `prev` (`keys.len()`
    /// for the first).
    #[inline]
    fn member(&mut self, prev: usize, key: &str) -> Option<usize> {
        let guess = self.follow[prev];
        let m = match self.keys.get(guess) {
            Some(k) if crate::shape::same_key(k, key) => guess,
            _ => *self.index.get(key)?,
        };
        self.follow[prev] = m;
        Some(m)
    }

    /// Checks the object at `tape[i]`.
    fn check_object(&mut self, tape: &[Node], i: usize, lit: &mut Literals) -> Result<usize, Mismatch> {
        let Node::Object { len, .. } = tape[i] else { unreachable!("checked by the caller") };
        let stamp = self.next_stamp();
        let mut j = i + 1;
        let mut prev = self.keys.len();
        for _ in 0..len {
            let Node::String(key) = tape[j] else { unreachable!("object keys are strings") };
            let Some(m) = self.member(prev, key) else {
                return Err(Mismatch::new("a member the schema does not have".into()).within(key.to_string()));
            };
            prev = m;
            if self.seen[m] == stamp {
                return Err(Mismatch::new("a member given twice".into()).within(key.to_string()));
            }
            self.seen[m] = stamp;
            j = self.children[m].check(tape, j + 1, lit).map_err(|e| e.within(key.to_string()))?;
        }
        Ok(j)
    }

    /// Appends the (checked) object at `tape[i]`.
    fn append_object(&mut self, tape: &[Node], i: usize, lit: &mut Literals) -> usize {
        let Node::Object { len, .. } = tape[i] else { unreachable!("checked") };
        let stamp = self.next_stamp();
        let mut j = i + 1;
        let mut prev = self.keys.len();
        for _ in 0..len {
            let Node::String(key) = tape[j] else { unreachable!("object keys are strings") };
            let m = self.member(prev, key).expect("checked");
            prev = m;
            self.seen[m] = stamp;
            j = self.children[m].append(tape, j + 1, lit);
        }
        for (m, child) in self.children.iter_mut().enumerate() {
            if self.seen[m] != stamp {
                child.append_null();
            }
        }
        self.nulls.append_non_null();
        j
    }

    fn append_null(&mut self) {
        self.children.iter_mut().for_each(Builder::append_null);
        self.nulls.append_null();
    }

    fn finish_children(&mut self) -> Vec<ArrayRef> {
        self.children.iter_mut().map(Builder::finish).collect()
    }
}

impl Builder {
    /// What the column takes, for messages.
    fn expected(&self) -> String {
        match self {
            Builder::Boolean(_) => "boolean".into(),
            Builder::Int32(_) => "int".into(),
            Builder::Int64(_) => "bigint".into(),
            Builder::Float32(_) => "float".into(),
            Builder::Float64(_) => "double".into(),
            Builder::Decimal(_, p, s) => format!("decimal({p},{s})"),
            Builder::Text(_) => "string".into(),
            Builder::Json(_) => "json".into(),
            Builder::Struct(_) => "an object".into(),
            Builder::List(_) => "an array".into(),
        }
    }

    /// Checks that the value at `tape[i]` fits; returns the index after it.
    fn check(&mut self, tape: &[Node], i: usize, lit: &mut Literals) -> Result<usize, Mismatch> {
        let node = tape[i];
        let fits = match (&*self, node) {
            (_, Node::Static(StaticNode::Null)) | (Builder::Text(_) | Builder::Json(_), _) => true,
            (Builder::Boolean(_), Node::Static(StaticNode::Bool(_))) => true,
            (Builder::Int32(_), Node::Static(StaticNode::I64(v))) => i32::try_from(v).is_ok(),
            (Builder::Int32(_), Node::Static(StaticNode::U64(v))) => i32::try_from(v).is_ok(),
            (Builder::Int64(_), Node::Static(StaticNode::I64(_))) => true,
            (Builder::Int64(_), Node::Static(StaticNode::U64(v))) => i64::try_from(v).is_ok(),
            (Builder::Float32(_) | Builder::Float64(_), Node::Static(StaticNode::F64(_))) => true,
            // an integer goes into a double only when the double holds it exactly
            (Builder::Float32(_) | Builder::Float64(_), Node::Static(StaticNode::I64(v))) => {
                v.unsigned_abs() <= 1 << 53
            }
            (Builder::Float32(_) | Builder::Float64(_), Node::Static(StaticNode::U64(v))) => v <= 1 << 53,
            (Builder::Decimal(_, p, s), Node::Static(StaticNode::I64(_) | StaticNode::U64(_) | StaticNode::F64(_))) => {
                decimal(lit.text(i), *p, *s).is_some()
            }
            (Builder::Struct(_), Node::Object { .. }) | (Builder::List(_), Node::Array { .. }) => true,
            _ => false,
        };
        if !fits {
            return Err(Mismatch::new(format!("expected {}, found {}", self.expected(), found(tape, i, lit))));
        }
        match (self, node) {
            (Builder::Struct(s), Node::Object { .. }) => s.check_object(tape, i, lit),
            (Builder::List(l), Node::Array { len, .. }) => {
                let mut j = i + 1;
                for n in 0..len {
                    j = l.child.check(tape, j, lit).map_err(|m| m.within(n.to_string()))?;
                }
                Ok(j)
            }
            _ => Ok(after(tape, i)),
        }
    }

    fn new(kind: &Kind) -> Self {
        match kind {
            Kind::Boolean => Builder::Boolean(BooleanBuilder::new()),
            Kind::Int32 => Builder::Int32(Int32Builder::new()),
            Kind::Int64 => Builder::Int64(Int64Builder::new()),
            Kind::Float32 => Builder::Float32(Float32Builder::new()),
            Kind::Float64 => Builder::Float64(Float64Builder::new()),
            Kind::Decimal(p, s) => Builder::Decimal(
                Decimal128Builder::new().with_precision_and_scale(*p, *s).expect("validated precision"),
                *p,
                *s,
            ),
            Kind::Text => Builder::Text(StringBuilder::new()),
            Kind::Json => Builder::Json(StringBuilder::new()),
            Kind::Struct(cols) => Builder::Struct(Box::new(StructBuilder::new(cols))),
            Kind::List(e) => Builder::List(Box::new(ListBuilder {
                field: Arc::new(element_field(e)),
                offsets: vec![0],
                nulls: NullBufferBuilder::new(0),
                child: Builder::new(e),
            })),
        }
    }

    fn append_null(&mut self) {
        match self {
            Builder::Boolean(b) => b.append_null(),
            Builder::Int32(b) => b.append_null(),
            Builder::Int64(b) => b.append_null(),
            Builder::Float32(b) => b.append_null(),
            Builder::Float64(b) => b.append_null(),
            Builder::Decimal(b, ..) => b.append_null(),
            Builder::Text(b) | Builder::Json(b) => b.append_null(),
            Builder::Struct(s) => s.append_null(),
            Builder::List(l) => {
                l.offsets.push(*l.offsets.last().expect("starts with 0"));
                l.nulls.append_null();
            }
        }
    }

    /// Appends the checked value at `tape[i]`; returns the index after it.
    fn append(&mut self, tape: &[Node], i: usize, lit: &mut Literals) -> usize {
        let node = tape[i];
        if matches!(node, Node::Static(StaticNode::Null)) {
            self.append_null();
            return i + 1;
        }
        match (self, node) {
            (Builder::Boolean(b), Node::Static(StaticNode::Bool(v))) => b.append_value(v),
            (Builder::Int32(b), Node::Static(StaticNode::I64(v))) => b.append_value(v as i32),
            (Builder::Int32(b), Node::Static(StaticNode::U64(v))) => b.append_value(v as i32),
            (Builder::Int64(b), Node::Static(StaticNode::I64(v))) => b.append_value(v),
            (Builder::Int64(b), Node::Static(StaticNode::U64(v))) => b.append_value(v as i64),
            (Builder::Float32(b), Node::Static(s)) => b.append_value(number(s) as f32),
            (Builder::Float64(b), Node::Static(s)) => b.append_value(number(s)),
            (Builder::Decimal(b, p, s), _) => match decimal(lit.text(i), *p, *s) {
                Some(v) => b.append_value(v),
                None => b.append_null(), // not reached: checked
            },
            (Builder::Text(b), Node::String(s)) => b.append_value(s),
            (Builder::Text(b), Node::Static(StaticNode::Bool(v))) => b.append_value(if v { "true" } else { "false" }),
            (Builder::Text(b), Node::Static(StaticNode::F64(_))) => b.append_value(lit.text(i)),
            (Builder::Text(b) | Builder::Json(b), _) => {
                let mut s = String::new();
                let j = write_json(tape, i, lit, &mut s);
                b.append_value(&s);
                return j;
            }
            (Builder::Struct(s), Node::Object { .. }) => return s.append_object(tape, i, lit),
            (Builder::List(l), Node::Array { len, .. }) => {
                let mut j = i + 1;
                for _ in 0..len {
                    j = l.child.append(tape, j, lit);
                }
                l.offsets.push(l.offsets.last().expect("starts with 0") + len as i32);
                l.nulls.append_non_null();
                return j;
            }
            (b, _) => {
                // not reached: the line was checked
                b.append_null();
            }
        }
        after(tape, i)
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::Boolean(b) => Arc::new(b.finish()),
            Builder::Int32(b) => Arc::new(b.finish()),
            Builder::Int64(b) => Arc::new(b.finish()),
            Builder::Float32(b) => Arc::new(b.finish()),
            Builder::Float64(b) => Arc::new(b.finish()),
            Builder::Decimal(b, ..) => Arc::new(b.finish()),
            Builder::Text(b) | Builder::Json(b) => Arc::new(b.finish()),
            Builder::Struct(s) => {
                let children = s.finish_children();
                let nulls = s.nulls.finish();
                Arc::new(StructArray::new(s.fields.clone(), children, nulls))
            }
            Builder::List(l) => {
                let offsets = std::mem::replace(&mut l.offsets, vec![0]);
                let child = l.child.finish();
                Arc::new(ListArray::new(
                    l.field.clone(),
                    OffsetBuffer::new(ScalarBuffer::from(offsets)),
                    child,
                    l.nulls.finish(),
                ))
            }
        }
    }
}

/// A number node as a double (checked to be exact for integers).
fn number(s: StaticNode) -> f64 {
    match s {
        StaticNode::I64(v) => v as f64,
        StaticNode::U64(v) => v as f64,
        StaticNode::F64(v) => v,
        _ => 0.0,
    }
}

/// The number `text` (a JSON number literal) as a decimal of precision
/// `p` and scale `s`, when it is one exactly.
pub fn decimal(text: &str, p: u8, s: i8) -> Option<i128> {
    let (neg, t) = match text.strip_prefix('-') {
        Some(t) => (true, t),
        None => (false, text),
    };
    let (mantissa, exp) = match t.find(['e', 'E']) {
        Some(k) => (&t[..k], t[k + 1..].parse::<i32>().ok()?),
        None => (t, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    // digits of int.frac, shifted so that the value is digits * 10^(exp - frac.len())
    let digits = int.bytes().chain(frac.bytes()).skip_while(|&b| b == b'0');
    let mut shift = exp - frac.len() as i32 + s as i32;
    let mut v: i128 = 0;
    let mut trailing = Vec::new();
    for d in digits {
        trailing.push(d - b'0');
    }
    // drop zeros that the scale cannot hold, refuse other digits
    while shift < 0 {
        match trailing.pop() {
            Some(0) => shift += 1,
            None => return Some(0),
            Some(_) => return None,
        }
    }
    for d in trailing {
        v = v.checked_mul(10)?.checked_add(d as i128)?;
    }
    for _ in 0..shift {
        v = v.checked_mul(10)?;
    }
    if v >= 10i128.checked_pow(p as u32)? {
        return None;
    }
    Some(if neg { -v } else { v })
}

/// Writes the value at `tape[i]` as JSON text; returns the index after it.
pub fn write_json(tape: &[Node], i: usize, lit: &mut Literals, out: &mut String) -> usize {
    match tape[i] {
        Node::String(s) => escape(s, out),
        Node::Static(StaticNode::Null) => out.push_str("null"),
        Node::Static(StaticNode::Bool(b)) => out.push_str(if b { "true" } else { "false" }),
        Node::Static(StaticNode::I64(v)) => {
            let _ = write!(out, "{v}");
        }
        Node::Static(StaticNode::U64(v)) => {
            let _ = write!(out, "{v}");
        }
        Node::Static(StaticNode::F64(_)) => out.push_str(lit.text(i)),
        Node::Object { len, .. } => {
            out.push('{');
            let mut j = i + 1;
            for m in 0..len {
                if m > 0 {
                    out.push(',');
                }
                let Node::String(key) = tape[j] else { unreachable!("object keys are strings") };
                escape(key, out);
                out.push(':');
                j = write_json(tape, j + 1, lit, out);
            }
            out.push('}');
            return j;
        }
        Node::Array { len, .. } => {
            out.push('[');
            let mut j = i + 1;
            for m in 0..len {
                if m > 0 {
                    out.push(',');
                }
                j = write_json(tape, j, lit, out);
            }
            out.push(']');
            return j;
        }
    }
    i + 1
}

/// `s` as a JSON string.
fn escape(s: &str, out: &mut String) {
    out.push('"');
    if !s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        out.push_str(s);
    } else {
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if (c as u32) < 0x20 => {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                }
                c => out.push(c),
            }
        }
    }
    out.push('"');
}

/// The rows of a batch of lines, built into the top-level columns.
#[derive(Debug)]
pub struct Rows {
    root: StructBuilder,
    pub len: usize,
}

impl Rows {
    pub fn new(columns: &[Column]) -> Self {
        Self { root: StructBuilder::new(columns), len: 0 }
    }

    /// Adds the line whose tape is `tape` (parsed from `line`), or says why
    /// it does not fit (and adds nothing).
    pub fn add(&mut self, tape: &[Node], line: &[u8]) -> Result<(), Mismatch> {
        let mut lit = Literals::new(line);
        if !matches!(tape[0], Node::Object { .. }) {
            return Err(Mismatch::new(format!("expected a JSON object per line, found {}", found(tape, 0, &mut lit))));
        }
        self.root.check_object(tape, 0, &mut lit)?;
        self.root.append_object(tape, 0, &mut lit);
        self.len += 1;
        Ok(())
    }

    /// The columns built (in the order of the columns).
    pub fn finish(mut self) -> Vec<ArrayRef> {
        self.root.finish_children()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Decimal128Type, Int64Type};

    #[test]
    fn decimals_are_exact_or_refused() {
        assert_eq!(decimal("123456789012345678901234567890", 38, 0), Some(123456789012345678901234567890));
        assert_eq!(decimal("-1.50", 10, 2), Some(-150));
        assert_eq!(decimal("1.5e2", 10, 0), Some(150));
        assert_eq!(decimal("0.000", 5, 0), Some(0));
        assert_eq!(decimal("1.25", 10, 1), None);
        assert_eq!(decimal("100", 2, 0), None);
        assert_eq!(decimal("1e40", 38, 0), None);
    }

    fn build(columns: &[Column], lines: &[&str]) -> (Vec<ArrayRef>, Vec<Result<(), Mismatch>>) {
        let mut rows = Rows::new(columns);
        let results = lines
            .iter()
            .map(|l| {
                let mut buf = l.as_bytes().to_vec();
                let tape = simd_json::to_tape(&mut buf).unwrap();
                rows.add(&tape.0, l.as_bytes())
            })
            .collect();
        (rows.finish(), results)
    }

    #[test]
    fn values_land_in_their_columns_and_misfits_add_nothing() {
        let cols = crate::shape::parse_schema(
            r#"[{"Name":"id","Type":"bigint"},{"Name":"big","Type":"decimal(38,0)"},{"Name":"t","Type":"string"},
                {"Name":"j","Type":"json"},{"Name":"u","Type":"struct<n:bigint,tags:array<string>>"}]"#,
            "test",
        )
        .unwrap();
        let (arrays, results) = build(
            &cols,
            &[
                r#"{"id":1,"big":18446744073709551616,"t":1.50,"j":"x","u":{"tags":["a","b"],"n":2}}"#,
                r#"{"id":2.5}"#,
                r#"{"id":3,"u":{"n":"x"}}"#,
                r#"{"id":4,"zz":1}"#,
                r#"{"id":5,"id":6}"#,
                r#"[1]"#,
                r#"{"id":7,"t":{"a":[1,"q\"r"]},"j":{"k":1.0E300}}"#,
            ],
        );
        let errs: Vec<String> = results.iter().filter_map(|r| r.as_ref().err().map(|e| e.to_string())).collect();
        assert_eq!(
            errs,
            [
                "expected bigint, found 2.5 at member /id",
                "expected bigint, found the string \"x\" at member /u/n",
                "a member the schema does not have at member /zz",
                "a member given twice at member /id",
                "expected a JSON object per line, found an array",
            ]
        );
        assert_eq!(arrays[0].as_primitive::<Int64Type>().values().to_vec(), [1, 7]);
        assert_eq!(arrays[1].as_primitive::<Decimal128Type>().value(0), 18446744073709551616);
        let t = arrays[2].as_string::<i32>();
        assert_eq!((t.value(0), t.value(1)), ("1.50", r#"{"a":[1,"q\"r"]}"#));
        let j = arrays[3].as_string::<i32>();
        assert_eq!((j.value(0), j.value(1)), (r#""x""#, r#"{"k":1.0E300}"#));
        let u = arrays[4].as_struct();
        assert!(u.is_valid(0) && u.is_null(1));
        assert_eq!(u.column(0).as_primitive::<Int64Type>().value(0), 2);
        let tags = u.column(1).as_list::<i32>();
        assert_eq!(tags.value(0).as_string::<i32>().iter().flatten().collect::<Vec<_>>(), ["a", "b"]);
    }
}
