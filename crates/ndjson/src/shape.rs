//! The schema: inferred over every line (a [`Shape`] per member path,
//! merged in input order), or given as Glue columns; either way a tree of
//! [`Column`]s of a [`Kind`] each, which is the Arrow schema written and the
//! Hive types registered.
//!
//! Widening, deterministic and documented in DESIGN.md "ndjson-converter":
//! - integers: `bigint` while every value fits a signed 64-bit integer;
//!   `decimal(38,0)` when one needs up to 38 digits; `string` (the literal
//!   text) beyond;
//! - integers with floats: `double` only when every integer is at most 2^53
//!   in magnitude (exact in a double), else `string`;
//! - any other mix of scalars: `string` (numbers as their literal text,
//!   booleans as `true`/`false`);
//! - an object or array mixed with anything else (object with array, or
//!   with a scalar): `json`, a string column holding every value as JSON
//!   text;
//! - a member that was only ever null, `{}` or `[]`: `string` (only nulls)
//!   or `json`;
//! - objects become structs (members in the order first seen), arrays
//!   lists of the merged element shape.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_schema::{DataType, Field, Fields, TimeUnit};

use crate::NdjsonError;
use crate::scan::{Event, Int};

/// What the values at one member path have been.
#[derive(Debug, Clone, Default)]
pub struct Shape {
    null: bool,
    boolean: bool,
    int: Option<Int>,
    float: bool,
    string: bool,
    object: Option<Members>,
    array: Option<Box<Shape>>,
}

/// `a == b` for member keys, inline: most are a few bytes, for which a
/// call of libc's `memcmp` (what `==` becomes) costs more than the compare.
#[inline(always)]
pub(crate) fn same_key(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let word = |s: &[u8], i: usize| u64::from_le_bytes(s[i..i + 8].try_into().expect("eight bytes"));
    let half = |s: &[u8], i: usize| u32::from_le_bytes(s[i..i + 4].try_into().expect("four bytes"));
    match n {
        0..4 => a.iter().zip(b).all(|(x, y)| x == y),
        4..8 => half(a, 0) == half(b, 0) && half(a, n - 4) == half(b, n - 4),
        _ => {
            let mut i = 0;
            while i + 8 < n {
                if word(a, i) != word(b, i) {
                    return false;
                }
                i += 8;
            }
            word(a, n - 8) == word(b, n - 8)
        }
    }
}

/// An object's member keys in order, looked up by the member that followed
/// the previous key in the last object read: objects mostly repeat an
/// order, so a lookup is mostly one comparison, and a hash lookup only
/// when the order changes.
#[derive(Debug, Clone, Default)]
pub(crate) struct Keys {
    keys: Vec<String>,
    index: HashMap<String, usize>,
    /// `follow[m]`: the member that came after member `m`; `first`: the
    /// first member.
    follow: Vec<usize>,
    first: usize,
}

impl Keys {
    pub(crate) fn new<'a>(keys: impl IntoIterator<Item = &'a str>) -> Self {
        let mut k = Keys::default();
        keys.into_iter().for_each(|key| {
            k.push(key);
        });
        k
    }

    /// The keys, in order.
    pub(crate) fn names(&self) -> &[String] {
        &self.keys
    }

    /// Adds `key` (not there yet) as the last member; returns its index.
    pub(crate) fn push(&mut self, key: &str) -> usize {
        let m = self.keys.len();
        self.keys.push(key.to_string());
        self.index.insert(key.to_string(), m);
        self.follow.push(m + 1);
        m
    }

    /// The member of key `key`.
    pub(crate) fn position(&self, key: &str) -> Option<usize> {
        self.index.get(key).copied()
    }

    /// The member of key `key`, which comes after member `prev` (`None`:
    /// first) in the object being read; remembered for the next object.
    #[inline]
    pub(crate) fn after(&mut self, prev: Option<usize>, key: &str) -> Option<usize> {
        let guess = prev.map_or(self.first, |p| self.follow[p]);
        let m = match self.keys.get(guess) {
            Some(k) if same_key(k, key) => guess,
            _ => self.position(key)?,
        };
        match prev {
            Some(p) => self.follow[p] = m,
            None => self.first = m,
        }
        Some(m)
    }
}

/// An object's members, in the order first seen.
#[derive(Debug, Clone, Default)]
struct Members {
    keys: Keys,
    shapes: Vec<Shape>,
}

impl Members {
    /// The shape of member `key`, added if new.
    fn slot(&mut self, key: &str) -> &mut Shape {
        let m = match self.keys.position(key) {
            Some(m) => m,
            None => self.add(key),
        };
        &mut self.shapes[m]
    }

    fn add(&mut self, key: &str) -> usize {
        self.shapes.push(Shape::default());
        self.keys.push(key)
    }

    /// The member of key `key` (added if new), which comes after member
    /// `prev` (`None`: first) in the object being read.
    #[inline]
    fn index_after(&mut self, prev: Option<usize>, key: &str) -> usize {
        match self.keys.after(prev, key) {
            Some(m) => m,
            None => {
                self.add(key);
                self.keys.after(prev, key).expect("just added")
            }
        }
    }
}

impl Shape {
    /// Nothing seen (an array only ever empty has this element shape).
    fn is_unseen(&self) -> bool {
        !(self.null || self.boolean || self.float || self.string)
            && self.int.is_none()
            && self.object.is_none()
            && self.array.is_none()
    }

    /// Adds the value whose events start at `events[k]` ([`crate::scan`]);
    /// returns the index after them.
    pub fn replay(&mut self, events: &[Event], k: usize) -> usize {
        match events[k] {
            Event::Null => self.null = true,
            Event::Bool(_) => self.boolean = true,
            Event::Int(class, _) => self.int(class),
            Event::Float(_) => self.float = true,
            Event::String(_) | Event::Escaped(_) => self.string = true,
            Event::Object { .. } => {
                let members = self.object.get_or_insert_with(Members::default);
                let (mut k, mut prev) = (k + 1, None);
                while let Event::Key(key) = events[k] {
                    let m = members.index_after(prev, key);
                    prev = Some(m);
                    k = members.shapes[m].replay(events, k + 1);
                }
                return k + 1;
            }
            Event::Array { .. } => {
                let element = self.array.get_or_insert_with(Box::default);
                let mut k = k + 1;
                while !matches!(events[k], Event::End) {
                    k = element.replay(events, k);
                }
                return k + 1;
            }
            Event::End | Event::Key(_) => unreachable!("a scan's events are balanced"),
        }
        k + 1
    }

    fn int(&mut self, class: Int) {
        self.int = Some(self.int.map_or(class, |c| c.max(class)));
    }

    /// Merges `other` (seen after `self`) into `self`.
    pub fn merge(&mut self, other: Shape) {
        self.null |= other.null;
        self.boolean |= other.boolean;
        self.float |= other.float;
        self.string |= other.string;
        if let Some(c) = other.int {
            self.int(c);
        }
        if let Some(o) = other.object {
            let mine = self.object.get_or_insert_with(Members::default);
            for (k, s) in o.keys.names().iter().zip(o.shapes) {
                mine.slot(k).merge(s);
            }
        }
        if let Some(a) = other.array {
            self.array.get_or_insert_with(Box::default).merge(*a);
        }
    }

    /// The top-level columns of lines of this shape (an object's).
    pub fn columns(&self) -> Vec<Column> {
        self.object.as_ref().map(resolve_members).unwrap_or_default()
    }

    /// The kind of column these values are written as.
    fn kind(&self) -> Kind {
        let scalar = self.boolean || self.int.is_some() || self.float || self.string;
        match (&self.object, &self.array) {
            (Some(_), Some(_)) => return Kind::Json,
            (Some(_), None) | (None, Some(_)) if scalar => return Kind::Json,
            (Some(m), None) if m.keys.names().is_empty() => return Kind::Json,
            (Some(m), None) => return Kind::Struct(resolve_members(m)),
            (None, Some(e)) if e.is_unseen() => return Kind::Json,
            (None, Some(e)) => return Kind::List(Box::new(e.kind())),
            (None, None) => {}
        }
        match (self.boolean, self.int, self.float, self.string) {
            (true, None, false, false) => Kind::Boolean,
            (false, Some(Int::Safe | Int::I64), false, false) => Kind::Int64,
            (false, Some(Int::Decimal), false, false) => Kind::Decimal(38, 0),
            (false, None, true, false) => Kind::Float64,
            (false, Some(Int::Safe), true, false) => Kind::Float64,
            _ => Kind::Text,
        }
    }
}

/// Columns of an object's members; a name equal to an earlier one but for
/// case (Glue and Athena fold case) gets `_2`, `_3`...
fn resolve_members(m: &Members) -> Vec<Column> {
    let mut taken: HashMap<String, usize> = HashMap::new();
    m.keys
        .names()
        .iter()
        .zip(&m.shapes)
        .map(|(k, s)| {
            let folded = k.to_lowercase();
            let n = taken.entry(folded).or_default();
            *n += 1;
            let name = if *n == 1 { k.clone() } else { format!("{k}_{n}") };
            Column { key: k.clone(), name, kind: s.kind() }
        })
        .collect()
}

/// How a column's values are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Boolean,
    Int32,
    Int64,
    Float32,
    Float64,
    /// Precision and scale.
    Decimal(u8, i8),
    /// Strings as they are, numbers as their literal text, booleans as
    /// `true`/`false`, objects and arrays as JSON text.
    Text,
    /// Every value as JSON text (strings quoted): Athena's `json_parse`
    /// reads it.
    Json,
    Struct(Vec<Column>),
    List(Box<Kind>),
}

/// One column or struct member: the JSON key it is read from and the name
/// it is written as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub key: String,
    pub name: String,
    pub kind: Kind,
}

/// Field metadata marking a string column that holds JSON text.
pub const JSON_TEXT: &str = "fleet.json";

impl Kind {
    pub fn data_type(&self) -> DataType {
        match self {
            Kind::Boolean => DataType::Boolean,
            Kind::Int32 => DataType::Int32,
            Kind::Int64 => DataType::Int64,
            Kind::Float32 => DataType::Float32,
            Kind::Float64 => DataType::Float64,
            Kind::Decimal(p, s) => DataType::Decimal128(*p, *s),
            Kind::Text | Kind::Json => DataType::Utf8,
            Kind::Struct(cols) => DataType::Struct(cols.iter().map(Column::field).collect::<Fields>()),
            Kind::List(e) => DataType::List(Arc::new(element_field(e))),
        }
    }

    /// The type as Glue columns and `FLEET_SCHEMA` spell it (`json` for a
    /// JSON-text string).
    pub fn hive(&self) -> String {
        match self {
            Kind::Boolean => "boolean".into(),
            Kind::Int32 => "int".into(),
            Kind::Int64 => "bigint".into(),
            Kind::Float32 => "float".into(),
            Kind::Float64 => "double".into(),
            Kind::Decimal(p, s) => format!("decimal({p},{s})"),
            Kind::Text => "string".into(),
            Kind::Json => "json".into(),
            Kind::Struct(cols) => {
                let m: Vec<String> = cols.iter().map(|c| format!("{}:{}", c.name, c.kind.hive())).collect();
                format!("struct<{}>", m.join(","))
            }
            Kind::List(e) => format!("array<{}>", e.hive()),
        }
    }

    /// Parses a Hive type (`bigint`, `array<struct<a:string>>`, `decimal(20,2)`,
    /// and `json`).
    pub fn parse(text: &str) -> Result<Kind, String> {
        let mut p = TypeParser { s: text.as_bytes(), i: 0 };
        let k = p.kind()?;
        p.ws();
        if p.i != p.s.len() {
            return Err(format!("unexpected {:?} at character {}", &text[p.i..], p.i + 1));
        }
        Ok(k)
    }
}

/// A list's element field (Arrow's conventional name).
pub fn element_field(e: &Kind) -> Field {
    Field::new("item", e.data_type(), true)
}

impl Column {
    pub fn field(&self) -> Field {
        let f = Field::new(&self.name, self.kind.data_type(), true);
        if self.kind == Kind::Json {
            f.with_metadata(std::collections::HashMap::from([(JSON_TEXT.to_string(), "true".to_string())]))
        } else {
            f
        }
    }
}

/// The column of the source file's URI.
pub const SOURCE_FILE: &str = "_source_file";
/// The column of the run's processing time.
pub const PROCESSING_TIMESTAMP: &str = "_processing_timestamp";

/// The Arrow schema of the output: the columns, then `_source_file` and
/// `_processing_timestamp`.
pub fn schema(columns: &[Column]) -> arrow_schema::SchemaRef {
    let mut fields: Vec<Field> = columns.iter().map(Column::field).collect();
    fields.push(Field::new(SOURCE_FILE, DataType::Utf8, false));
    fields.push(Field::new(
        PROCESSING_TIMESTAMP,
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        false,
    ));
    Arc::new(arrow_schema::Schema::new(fields))
}

/// A column of a schema file, as Glue's `Columns` list spells it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GlueColumn {
    #[serde(rename = "Name", alias = "name")]
    pub name: String,
    #[serde(rename = "Type", alias = "type")]
    pub r#type: String,
}

/// The columns of a schema file: a JSON list of `{"Name": ..., "Type": ...}`
/// (Glue's `StorageDescriptor.Columns`), names being JSON keys.
pub fn parse_schema(text: &str, origin: &str) -> Result<Vec<Column>, NdjsonError> {
    let bad = |reason: String| NdjsonError::Schema { origin: origin.to_string(), reason };
    let cols: Vec<GlueColumn> = serde_json::from_str(text)
        .map_err(|e| bad(format!("{e}; expected a JSON list of {{\"Name\": ..., \"Type\": ...}} (Glue columns)")))?;
    if cols.is_empty() {
        return Err(bad("no columns".into()));
    }
    let mut seen = std::collections::HashSet::new();
    cols.into_iter()
        .map(|c| {
            if c.name.is_empty() || !seen.insert(c.name.clone()) {
                return Err(bad(format!("column {:?} is empty or given twice", c.name)));
            }
            if c.name == SOURCE_FILE || c.name == PROCESSING_TIMESTAMP {
                return Err(bad(format!("column {:?} is written by the converter", c.name)));
            }
            let kind =
                Kind::parse(&c.r#type).map_err(|e| bad(format!("column {:?}: type {:?}: {e}", c.name, c.r#type)))?;
            Ok(Column { key: c.name.clone(), name: c.name, kind })
        })
        .collect()
}

/// The schema file of `columns` (what [`parse_schema`] reads back).
pub fn schema_file(columns: &[Column]) -> Vec<GlueColumn> {
    columns.iter().map(|c| GlueColumn { name: c.name.clone(), r#type: c.kind.hive() }).collect()
}

struct TypeParser<'a> {
    s: &'a [u8],
    i: usize,
}

impl TypeParser<'_> {
    fn ws(&mut self) {
        while self.s.get(self.i).is_some_and(u8::is_ascii_whitespace) {
            self.i += 1;
        }
    }
    fn expect(&mut self, c: u8) -> Result<(), String> {
        self.ws();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("expected '{}' at character {}", c as char, self.i + 1))
        }
    }
    fn word(&mut self) -> String {
        self.ws();
        let start = self.i;
        while self.s.get(self.i).is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_') {
            self.i += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
    }
    /// A struct member name: anything up to ':' (backquotes allowed).
    fn member(&mut self) -> Result<String, String> {
        self.ws();
        if self.s.get(self.i) == Some(&b'`') {
            let start = self.i + 1;
            let end = self.s[start..].iter().position(|&b| b == b'`').ok_or("unclosed '`'")? + start;
            self.i = end + 1;
            return Ok(String::from_utf8_lossy(&self.s[start..end]).into_owned());
        }
        let start = self.i;
        while self.s.get(self.i).is_some_and(|&b| b != b':' && b != b',' && b != b'>') {
            self.i += 1;
        }
        let name = String::from_utf8_lossy(&self.s[start..self.i]).trim().to_string();
        if name.is_empty() { Err(format!("expected a member name at character {}", start + 1)) } else { Ok(name) }
    }
    fn number(&mut self) -> Result<u32, String> {
        let w = self.word();
        w.parse().map_err(|_| format!("expected a number, found {w:?}"))
    }
    fn kind(&mut self) -> Result<Kind, String> {
        let at = self.i;
        let w = self.word().to_ascii_lowercase();
        Ok(match w.as_str() {
            "boolean" => Kind::Boolean,
            "int" | "integer" => Kind::Int32,
            "bigint" => Kind::Int64,
            "float" | "real" => Kind::Float32,
            "double" => Kind::Float64,
            "string" | "varchar" | "char" => {
                self.ws();
                if self.s.get(self.i) == Some(&b'(') {
                    self.i += 1;
                    self.number()?;
                    self.expect(b')')?;
                }
                Kind::Text
            }
            "json" => Kind::Json,
            "decimal" => {
                self.expect(b'(')?;
                let p = self.number()?;
                self.expect(b',')?;
                let s = self.number()?;
                self.expect(b')')?;
                if !(1..=38).contains(&p) || s > p {
                    return Err(format!("decimal({p},{s}): precision 1-38 and scale at most the precision"));
                }
                Kind::Decimal(p as u8, s as i8)
            }
            "array" => {
                self.expect(b'<')?;
                let e = self.kind()?;
                self.expect(b'>')?;
                Kind::List(Box::new(e))
            }
            "struct" => {
                self.expect(b'<')?;
                let mut cols = Vec::new();
                loop {
                    let name = self.member()?;
                    self.expect(b':')?;
                    let kind = self.kind()?;
                    cols.push(Column { key: name.clone(), name, kind });
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b'>') => {
                            self.i += 1;
                            break;
                        }
                        _ => return Err(format!("expected ',' or '>' at character {}", self.i + 1)),
                    }
                }
                Kind::Struct(cols)
            }
            "" => return Err(format!("expected a type at character {}", at + 1)),
            other => {
                return Err(format!(
                    "unknown type {other:?}; expected boolean, int, bigint, float, double, decimal(p,s), string, json, array<...> or struct<...>"
                ));
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn infer(lines: &[&str]) -> Vec<(String, String)> {
        let mut shape = Shape::default();
        for l in lines {
            let mut buf = l.as_bytes().to_vec();
            let tape = simd_json::to_tape(&mut buf).unwrap();
            let mut ev = Vec::new();
            crate::scan::from_tape(&tape.0, l.as_bytes(), &mut ev);
            shape.replay(&ev, 0);
        }
        shape.columns().into_iter().map(|c| (c.name, c.kind.hive())).collect()
    }

    #[test]
    fn keys_compare_as_strings_at_every_length() {
        let words: Vec<String> = (0..40).map(|n| "k".repeat(n)).chain((0..40).map(|n| "k".repeat(n) + "é")).collect();
        for a in &words {
            for b in &words {
                assert_eq!(same_key(a, b), a == b, "{a:?} {b:?}");
                if let Some(rest) = b.strip_prefix('k') {
                    let c = format!("x{rest}");
                    assert_eq!(same_key(a, &c), *a == c, "{a:?} {c:?}");
                }
            }
        }
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn widening_is_the_documented_one() {
        assert_eq!(
            infer(&[
                r#"{"i":1,"f":1,"big":9007199254740993,"u":18446744073709551615,"w":123456789012345678901234567890123456789,"b":true,"s":"x"}"#,
                r#"{"i":-2,"f":2.5,"big":1.5,"u":1,"w":1,"b":false,"s":null,"n":null,"e":[],"o":{}}"#,
            ]),
            pairs(&[
                ("i", "bigint"),
                ("f", "double"),
                ("big", "string"),
                ("u", "decimal(38,0)"),
                ("w", "string"),
                ("b", "boolean"),
                ("s", "string"),
                ("n", "string"),
                ("e", "json"),
                ("o", "json"),
            ])
        );
        assert_eq!(
            infer(&[r#"{"a":1,"b":{"x":1},"c":[1],"d":[{"p":1}]}"#, r#"{"a":"x","b":2,"c":{"y":1},"d":[{"q":"z"}]}"#]),
            pairs(&[("a", "string"), ("b", "json"), ("c", "json"), ("d", "array<struct<p:bigint,q:string>>")])
        );
        // a key first seen late is kept, in the order first seen
        let mut lines = vec![r#"{"a":1}"#; 30_000];
        lines.push(r#"{"a":2,"late":true,"A":3}"#);
        assert_eq!(infer(&lines), pairs(&[("a", "bigint"), ("late", "boolean"), ("A_2", "bigint")]));
    }

    #[test]
    fn hive_types_parse_and_print_back() {
        for t in ["bigint", "array<struct<a:string,b:array<double>>>", "decimal(20,2)", "json", "struct<x y:int>"] {
            assert_eq!(Kind::parse(t).unwrap().hive(), t);
        }
        assert_eq!(Kind::parse("varchar(10)").unwrap(), Kind::Text);
        assert!(Kind::parse("map<string,int>").unwrap_err().contains("unknown type \"map\""));
        assert!(Kind::parse("array<int").unwrap_err().contains("expected '>'"));
        let cols = parse_schema(r#"[{"Name":"id","Type":"bigint"},{"name":"doc","type":"json"}]"#, "x").unwrap();
        assert_eq!(cols[1].kind, Kind::Json);
        let e = parse_schema(r#"{"id":"bigint"}"#, "s3://b/schema.json").unwrap_err().to_string();
        assert!(e.contains("s3://b/schema.json") && e.contains("Glue columns"), "{e}");
    }
}
