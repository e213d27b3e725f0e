//! Lines to Arrow columns: each line's events ([`crate::scan`]) are checked
//! against the columns (a line that does not fit is quarantined whole,
//! nothing of it written) and then appended, member by member, into
//! builders of the columns' kinds. Numbers come as their literal text, so
//! none passes through a double on its way to a string or a decimal.

use std::fmt::Write;
use std::sync::Arc;

use crate::scan::{Event, Int, unescape};
use crate::shape::{Column, Keys, Kind, element_field};
use arrow_array::builder::{
    BooleanBuilder, Decimal128Builder, Float32Builder, Float64Builder, Int32Builder, Int64Builder, StringBuilder,
};
use arrow_array::{ArrayRef, ListArray, StructArray};
use arrow_buffer::{NullBufferBuilder, OffsetBuffer, ScalarBuffer};
use arrow_schema::{FieldRef, Fields};

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

/// What a value is, for messages.
fn found(ev: &[Event], i: usize) -> String {
    match ev[i] {
        Event::String(s) => {
            let s: String = s.chars().take(40).collect();
            format!("the string {s:?}")
        }
        Event::Escaped(raw) => {
            let mut s = String::new();
            let _ = unescape(raw, &mut s);
            found(&[Event::String(&s)], 0)
        }
        Event::Object { .. } => "an object".into(),
        Event::Array { .. } => "an array".into(),
        Event::Bool(b) => format!("{b}"),
        Event::Null => "null".into(),
        Event::Int(_, t) | Event::Float(t) => t.to_string(),
        Event::Key(k) => format!("the key {k:?}"),
        Event::End => "the end".into(),
    }
}

/// The index after the value at `ev[i]`.
fn after(ev: &[Event], i: usize) -> usize {
    match ev[i] {
        Event::Object { end } | Event::Array { end } => end as usize,
        _ => i + 1,
    }
}

/// An integer literal's value, when it fits 64 bits signed.
fn int64(text: &str) -> Option<i64> {
    text.parse().ok()
}

/// An integer literal's value as a double, when the double holds it exactly.
fn exact_double(class: Int, text: &str) -> Option<f64> {
    (class == Int::Safe).then(|| int64(text).map(|v| v as f64)).flatten()
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
    keys: Keys,
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
            keys: Keys::new(columns.iter().map(|c| c.key.as_str())),
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

    /// Checks the object at `ev[i]`.
    fn check_object(&mut self, ev: &[Event], i: usize, slots: &mut [u32]) -> Result<usize, Mismatch> {
        let stamp = self.next_stamp();
        let mut j = i + 1;
        let mut prev = None;
        while let Event::Key(key) = ev[j] {
            let Some(m) = self.keys.after(prev, key) else {
                return Err(Mismatch::new("a member the schema does not have".into()).within(key.to_string()));
            };
            prev = Some(m);
            slots[j] = m as u32;
            if self.seen[m] == stamp {
                return Err(Mismatch::new("a member given twice".into()).within(key.to_string()));
            }
            self.seen[m] = stamp;
            j = self.children[m].check(ev, j + 1, slots).map_err(|e| e.within(key.to_string()))?;
        }
        Ok(j + 1)
    }

    /// Appends the (checked) object at `ev[i]`; `slots[j]` is the member
    /// of the key `ev[j]`, as the check found it.
    fn append_object(&mut self, ev: &[Event], i: usize, slots: &[u32]) -> usize {
        let stamp = self.next_stamp();
        let mut j = i + 1;
        while let Event::Key(_) = ev[j] {
            let m = slots[j] as usize;
            self.seen[m] = stamp;
            j = self.children[m].append(ev, j + 1, slots);
        }
        for (m, child) in self.children.iter_mut().enumerate() {
            if self.seen[m] != stamp {
                child.append_null();
            }
        }
        self.nulls.append_non_null();
        j + 1
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

    /// Checks that the value at `ev[i]` fits; returns the index after it.
    fn check(&mut self, ev: &[Event], i: usize, slots: &mut [u32]) -> Result<usize, Mismatch> {
        let e = ev[i];
        let fits = match (&*self, e) {
            (_, Event::Null) | (Builder::Text(_) | Builder::Json(_), _) => true,
            (Builder::Boolean(_), Event::Bool(_)) => true,
            (Builder::Int32(_), Event::Int(_, t)) => int64(t).is_some_and(|v| i32::try_from(v).is_ok()),
            (Builder::Int64(_), Event::Int(_, t)) => int64(t).is_some(),
            (Builder::Float32(_) | Builder::Float64(_), Event::Float(_)) => true,
            // an integer goes into a double only when the double holds it exactly
            (Builder::Float32(_) | Builder::Float64(_), Event::Int(class, t)) => exact_double(class, t).is_some(),
            (Builder::Decimal(_, p, s), Event::Int(_, t) | Event::Float(t)) => decimal(t, *p, *s).is_some(),
            (Builder::Struct(_), Event::Object { .. }) | (Builder::List(_), Event::Array { .. }) => true,
            _ => false,
        };
        if !fits {
            return Err(Mismatch::new(format!("expected {}, found {}", self.expected(), found(ev, i))));
        }
        match (self, e) {
            (Builder::Struct(s), Event::Object { .. }) => s.check_object(ev, i, slots),
            (Builder::List(l), Event::Array { .. }) => {
                let (mut j, mut n) = (i + 1, 0usize);
                while !matches!(ev[j], Event::End) {
                    j = l.child.check(ev, j, slots).map_err(|m| m.within(n.to_string()))?;
                    n += 1;
                }
                Ok(j + 1)
            }
            _ => Ok(after(ev, i)),
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

    /// Appends the checked value at `ev[i]`; returns the index after it.
    fn append(&mut self, ev: &[Event], i: usize, slots: &[u32]) -> usize {
        let e = ev[i];
        if matches!(e, Event::Null) {
            self.append_null();
            return i + 1;
        }
        match (self, e) {
            (Builder::Boolean(b), Event::Bool(v)) => b.append_value(v),
            (Builder::Int32(b), Event::Int(_, t)) => b.append_value(int64(t).unwrap_or_default() as i32),
            (Builder::Int64(b), Event::Int(_, t)) => b.append_value(int64(t).unwrap_or_default()),
            (Builder::Float32(b), Event::Int(_, t) | Event::Float(t)) => b.append_value(double(t) as f32),
            (Builder::Float64(b), Event::Int(_, t) | Event::Float(t)) => b.append_value(double(t)),
            (Builder::Decimal(b, p, s), Event::Int(_, t) | Event::Float(t)) => match decimal(t, *p, *s) {
                Some(v) => b.append_value(v),
                None => b.append_null(), // not reached: checked
            },
            (Builder::Text(b), Event::String(s) | Event::Int(_, s) | Event::Float(s)) => b.append_value(s),
            (Builder::Text(b), Event::Escaped(raw)) => {
                // the text goes straight into the builder's value
                let _ = unescape(raw, b);
                b.append_value("");
            }
            (Builder::Text(b), Event::Bool(v)) => b.append_value(if v { "true" } else { "false" }),
            (Builder::Text(b) | Builder::Json(b), _) => {
                // the JSON text goes straight into the builder's value (a
                // string builder's writes do not fail)
                let _ = write_json(ev, i, b);
                b.append_value("");
                return after(ev, i);
            }
            (Builder::Struct(s), Event::Object { .. }) => return s.append_object(ev, i, slots),
            (Builder::List(l), Event::Array { .. }) => {
                let (mut j, mut n) = (i + 1, 0i32);
                while !matches!(ev[j], Event::End) {
                    j = l.child.append(ev, j, slots);
                    n += 1;
                }
                l.offsets.push(l.offsets.last().expect("starts with 0") + n);
                l.nulls.append_non_null();
                return j + 1;
            }
            (b, _) => {
                // not reached: the line was checked
                b.append_null();
            }
        }
        after(ev, i)
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

/// A number literal as a double (checked to be exact for integers).
fn double(text: &str) -> f64 {
    text.parse().unwrap_or_default()
}

/// The number `text` (a JSON number literal) as a decimal of precision
/// `p` and scale `s`, when it is one exactly.
pub fn decimal(text: &str, p: u8, s: i8) -> Option<i128> {
    let (neg, t) = match text.strip_prefix('-') {
        Some(t) => (true, t),
        None => (false, text),
    };
    let (mantissa, exp) = match t.find(['e', 'E']) {
        Some(k) => {
            // an exponent beyond ±2^40 (even beyond i64) leaves only a zero in range
            const FAR: i64 = 1 << 40;
            let e = &t[k + 1..];
            let exp = e.parse::<i64>().unwrap_or(if e.starts_with('-') { -FAR } else { FAR });
            (&t[..k], exp.clamp(-FAR, FAR))
        }
        None => (t, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    // digits of int.frac, shifted so that the value is digits * 10^(exp - frac.len())
    let mut digits: Vec<u8> = int.bytes().chain(frac.bytes()).skip_while(|&b| b == b'0').map(|d| d - b'0').collect();
    if digits.is_empty() {
        return Some(0);
    }
    let mut shift = exp - frac.len() as i64 + i64::from(s);
    // drop zeros that the scale cannot hold, refuse other digits
    while shift < 0 {
        match digits.pop() {
            Some(0) => shift += 1,
            None => return Some(0),
            Some(_) => return None,
        }
    }
    // 38 digits at most
    if digits.len() as i64 + shift > 38 {
        return None;
    }
    let mut v: i128 = 0;
    for d in digits {
        v = v.checked_mul(10)?.checked_add(i128::from(d))?;
    }
    for _ in 0..shift {
        v = v.checked_mul(10)?;
    }
    if v >= 10i128.checked_pow(u32::from(p))? {
        return None;
    }
    Some(if neg { -v } else { v })
}

/// Writes the value at `ev[i]` as JSON text; returns the index after it.
pub fn write_json(ev: &[Event], i: usize, out: &mut impl Write) -> Result<usize, std::fmt::Error> {
    match ev[i] {
        Event::String(s) => escape(s, out)?,
        Event::Escaped(raw) => {
            let mut s = String::with_capacity(raw.len());
            unescape(raw, &mut s)?;
            escape(&s, out)?
        }
        Event::Null => out.write_str("null")?,
        Event::Bool(b) => out.write_str(if b { "true" } else { "false" })?,
        Event::Int(_, t) | Event::Float(t) => out.write_str(t)?,
        Event::Object { end } => {
            out.write_char('{')?;
            let mut j = i + 1;
            while let Event::Key(key) = ev[j] {
                if j > i + 1 {
                    out.write_char(',')?;
                }
                escape(key, out)?;
                out.write_char(':')?;
                j = write_json(ev, j + 1, out)?;
            }
            out.write_char('}')?;
            return Ok(end as usize);
        }
        Event::Array { end } => {
            out.write_char('[')?;
            let mut j = i + 1;
            while !matches!(ev[j], Event::End) {
                if j > i + 1 {
                    out.write_char(',')?;
                }
                j = write_json(ev, j, out)?;
            }
            out.write_char(']')?;
            return Ok(end as usize);
        }
        Event::Key(_) | Event::End => unreachable!("values only"),
    }
    Ok(i + 1)
}

/// Writes `s` as a JSON string.
fn escape(s: &str, out: &mut impl Write) -> std::fmt::Result {
    out.write_char('"')?;
    if !s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        out.write_str(s)?;
    } else {
        for c in s.chars() {
            match c {
                '"' => out.write_str("\\\"")?,
                '\\' => out.write_str("\\\\")?,
                '\n' => out.write_str("\\n")?,
                '\r' => out.write_str("\\r")?,
                '\t' => out.write_str("\\t")?,
                c if (c as u32) < 0x20 => write!(out, "\\u{:04x}", c as u32)?,
                c => out.write_char(c)?,
            }
        }
    }
    out.write_char('"')
}

/// The rows of a batch of lines, built into the top-level columns.
#[derive(Debug)]
pub struct Rows {
    root: StructBuilder,
    /// The member of each key event of the line being added.
    slots: Vec<u32>,
    pub len: usize,
}

impl Rows {
    pub fn new(columns: &[Column]) -> Self {
        Self { root: StructBuilder::new(columns), slots: Vec::new(), len: 0 }
    }

    /// Adds the line whose events are `ev`, or says why it does not fit
    /// the columns (and adds nothing).
    pub fn add(&mut self, ev: &[Event]) -> Result<(), Mismatch> {
        if !matches!(ev[0], Event::Object { .. }) {
            return Err(Mismatch::new(format!("expected a JSON object per line, found {}", found(ev, 0))));
        }
        self.slots.resize(ev.len(), 0);
        self.root.check_object(ev, 0, &mut self.slots)?;
        self.root.append_object(ev, 0, &self.slots);
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
        // exponents far out of range: a zero is still zero, anything else too large or too small
        assert_eq!(decimal("0e2147483647", 38, 0), Some(0));
        assert_eq!(decimal("0.0e99999999999999999999", 10, 2), Some(0));
        assert_eq!(decimal("1e2147483647", 38, 0), None);
        assert_eq!(decimal("1e-2147483648", 38, 0), None);
        assert_eq!(decimal("5e99999999999999999999", 38, 0), None);
    }

    fn build(columns: &[Column], lines: &[&str]) -> (Vec<ArrayRef>, Vec<Result<(), Mismatch>>) {
        let mut rows = Rows::new(columns);
        let results = lines
            .iter()
            .map(|l| {
                let mut buf = l.as_bytes().to_vec();
                let tape = simd_json::to_tape(&mut buf).unwrap();
                let mut ev = Vec::new();
                crate::scan::from_tape(&tape.0, l.as_bytes(), &mut ev);
                rows.add(&ev)
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
