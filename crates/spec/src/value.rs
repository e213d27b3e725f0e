//! Runtime values and the compiled expression tree.

use std::cmp::Ordering;

use simd_json::{Node, StaticNode};

use crate::text::Ymd;

/// A value during evaluation. Strings are borrowed from the input, the tape
/// or the row's arena (strings made by `lower`, `upper`, `trim`); JSON arrays
/// and objects stay on the tape (`Json` is the node and its children). A
/// plain copyable value: reading a local or a feature copies 24 bytes.
#[derive(Debug, Clone, Copy)]
pub enum Val<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a str),
    Date(Ymd),
    Json(&'a [Node<'a>]),
}

impl<'a> Val<'a> {
    pub fn is_null(&self) -> bool {
        matches!(self, Val::Null)
    }
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Val::Int(i) => Some(*i as f64),
            Val::Float(f) => Some(*f),
            _ => None,
        }
    }
    /// The value of the tape node that starts `nodes`.
    #[inline(always)]
    pub fn from_tape(nodes: &'a [Node<'a>]) -> Val<'a> {
        match nodes[0] {
            Node::String(s) => Val::Str(s),
            Node::Static(StaticNode::Null) => Val::Null,
            Node::Static(StaticNode::Bool(b)) => Val::Bool(b),
            Node::Static(StaticNode::I64(i)) => Val::Int(i),
            Node::Static(StaticNode::U64(u)) => i64::try_from(u).map_or(Val::Float(u as f64), Val::Int),
            Node::Static(StaticNode::F64(f)) => Val::Float(f),
            Node::Array { count, .. } | Node::Object { count, .. } => Val::Json(&nodes[..=count]),
        }
    }
    pub fn type_name(&self) -> &'static str {
        match self {
            Val::Null => "null",
            Val::Bool(_) => "boolean",
            Val::Int(_) | Val::Float(_) => "number",
            Val::Str(_) => "string",
            Val::Date(_) => "date",
            Val::Json(n) if matches!(n[0], Node::Array { .. }) => "array",
            Val::Json(_) => "object",
        }
    }
}

/// Number of nodes a tape value takes, itself included.
#[inline]
pub fn span(n: &Node<'_>) -> usize {
    match n {
        Node::Array { count, .. } | Node::Object { count, .. } => count + 1,
        _ => 1,
    }
}

/// The elements of a JSON array (nothing when it is not an array).
pub fn elements<'a>(v: &Val<'a>) -> ArrayIter<'a> {
    match v {
        Val::Json(nodes) if matches!(nodes[0], Node::Array { .. }) => ArrayIter { rest: &nodes[1..] },
        _ => ArrayIter { rest: &[] },
    }
}

#[derive(Debug)]
pub struct ArrayIter<'a> {
    rest: &'a [Node<'a>],
}

impl<'a> Iterator for ArrayIter<'a> {
    type Item = Val<'a>;
    #[inline(always)]
    fn next(&mut self) -> Option<Val<'a>> {
        let first = self.rest.first()?;
        let (head, tail) = self.rest.split_at(span(first));
        self.rest = tail;
        Some(Val::from_tape(head))
    }
}

/// Where the value of `obj.key` is within the object that starts `nodes`;
/// of duplicate keys the last wins; `None` when not an object or no such key.
pub fn field_range(nodes: &[Node<'_>], key: &str) -> Option<std::ops::Range<usize>> {
    let Node::Object { len, .. } = nodes[0] else { return None };
    let mut idx = 1;
    let mut found = None;
    for _ in 0..len {
        let Node::String(k) = nodes[idx] else { return None };
        idx += 1;
        let n = span(&nodes[idx]);
        if same_key(k, key) {
            found = Some(idx..idx + n);
        }
        idx += n;
    }
    found
}

/// `len(v)`: the number of elements of an array or members of an object.
#[inline]
pub fn len(v: &Val<'_>) -> Option<i64> {
    match v {
        Val::Json(nodes) => match nodes[0] {
            Node::Array { len, .. } | Node::Object { len, .. } => Some(len as i64),
            _ => None,
        },
        _ => None,
    }
}

/// The values of `keys` in the object `v`, found in one scan of its
/// members (of duplicate keys the last wins); all NULL when `v` is not an
/// object, NULL for a key it lacks.
#[inline]
pub fn members<'a, const N: usize>(v: &Val<'a>, keys: [&str; N]) -> [Val<'a>; N] {
    let mut out = [Val::Null; N];
    let Val::Json(nodes) = v else { return out };
    let Node::Object { len, .. } = nodes[0] else { return out };
    let mut idx = 1;
    for _ in 0..len {
        let Node::String(k) = nodes[idx] else { break };
        idx += 1;
        let n = span(&nodes[idx]);
        if let Some(i) = keys.iter().position(|key| same_key(key, k)) {
            out[i] = Val::from_tape(&nodes[idx..idx + n]);
        }
        idx += n;
    }
    out
}

/// Member look-ups of the current row. The first look-up in an object scans
/// its members once and records where every member the spec reads is (the
/// last duplicate wins); later look-ups of any of those members in the same
/// object are one table read. Entries of earlier rows are told apart by a
/// generation number.
#[derive(Debug, Clone)]
pub struct FieldCache {
    generation: u32,
    /// The spec's member names (`Program::field_keys`), by id.
    keys: Vec<Box<str>>,
    /// (key length mod 32, first byte) → first key id + 1 with that shape (0: none).
    shape: Box<[u8]>,
    /// The next key id + 1 with the same shape (0: none).
    next: Vec<u8>,
    objects: Box<[ObjectEntry]>,
    /// `date(s)` of the row's strings, by address: a spec parses the same
    /// date member for several features (a job's start for four of them).
    dates: Box<[DateEntry]>,
}

/// (generation, string address, string length, the date or `NO_DATE`).
type DateEntry = (u32, usize, usize, i32);
const NO_DATE: i32 = i32::MIN;

/// Members the object index holds; a spec reading more names looks the
/// others up by scanning.
const INDEXED: usize = 16;

#[derive(Debug, Clone, Copy, Default)]
struct ObjectEntry {
    generation: u32,
    object: usize,
    /// (value start, value length) per key id; length 0: no such member.
    at: [(u32, u32); INDEXED],
}

impl Default for FieldCache {
    fn default() -> Self {
        Self {
            generation: 1,
            keys: Vec::new(),
            shape: vec![0; 32 * 256].into_boxed_slice(),
            next: Vec::new(),
            objects: vec![ObjectEntry::default(); 256].into_boxed_slice(),
            dates: vec![(0, 0, 0, NO_DATE); 256].into_boxed_slice(),
        }
    }
}

impl FieldCache {
    /// Sets the member names of the spec about to be evaluated.
    pub fn prepare(&mut self, keys: &[Box<str>]) {
        if self.keys == keys {
            return;
        }
        self.keys = keys.to_vec();
        self.shape.fill(0);
        self.next = vec![0; keys.len()];
        for (id, k) in keys.iter().enumerate().take(INDEXED).rev() {
            let s = bucket(k.as_bytes());
            self.next[id] = self.shape[s];
            self.shape[s] = id as u8 + 1;
        }
        // generations restart: forget the entries of the last spec, dates too
        self.objects.fill(ObjectEntry::default());
        self.dates.fill((0, 0, 0, NO_DATE));
        self.generation = 1;
    }

    /// Forgets every entry (a new row reuses the same tape memory).
    pub fn next_row(&mut self) {
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.objects.fill(ObjectEntry::default());
            self.dates.fill((0, 0, 0, NO_DATE));
            self.generation = 1;
        }
    }

    /// `date(s)`, remembered for the row by the string's address.
    #[inline]
    pub fn date(&mut self, s: &str) -> Option<Ymd> {
        let p = s.as_ptr() as usize;
        let h = ((p >> 3) ^ (p >> 11)) & (self.dates.len() - 1);
        let e = &mut self.dates[h];
        if e.0 == self.generation && e.1 == p && e.2 == s.len() {
            return (e.3 != NO_DATE).then_some(Ymd(e.3));
        }
        let d = crate::text::parse_date(s);
        *e = (self.generation, p, s.len(), d.map_or(NO_DATE, |d| d.0));
        d
    }

    /// `v.key`, where `id` is `key`'s index in the spec's member names.
    #[inline]
    pub fn field<'a>(&mut self, v: &Val<'a>, key: &str, id: usize) -> Val<'a> {
        let Val::Json(nodes) = v else { return Val::Null };
        if id >= INDEXED || id >= self.keys.len() {
            return field_range(nodes, key).map_or(Val::Null, |r| Val::from_tape(&nodes[r]));
        }
        let obj = nodes.as_ptr() as usize;
        let h = ((obj >> 4) ^ (obj >> 12)) & (self.objects.len() - 1);
        let generation = self.generation;
        if self.objects[h].generation != generation || self.objects[h].object != obj {
            let Node::Object { len, .. } = nodes[0] else { return Val::Null };
            let FieldCache { keys, shape, next, objects, .. } = self;
            let e = &mut objects[h];
            (e.generation, e.object, e.at) = (generation, obj, [(0, 0); INDEXED]);
            // one scan of the object: where is every member the spec reads
            let mut idx = 1;
            for _ in 0..len {
                let Node::String(k) = nodes[idx] else { break };
                idx += 1;
                let n = span(&nodes[idx]);
                let mut id = shape[bucket(k.as_bytes())];
                while id != 0 {
                    let i = usize::from(id - 1);
                    if same_key(&keys[i], k) {
                        e.at[i] = (idx as u32, n as u32);
                        break;
                    }
                    id = next[i];
                }
                idx += n;
            }
        }
        let (start, len) = self.objects[h].at[id];
        if len == 0 { Val::Null } else { Val::from_tape(&nodes[start as usize..(start + len) as usize]) }
    }
}

/// The bucket of a member name in `FieldCache::shape`.
#[inline(always)]
fn bucket(k: &[u8]) -> usize {
    (k.len() & 31) * 256 + usize::from(k.first().copied().unwrap_or(0))
}

/// Key equality without a `memcmp` call for the short keys JSON documents use.
#[inline(always)]
fn same_key(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    if a.len() <= 16 {
        return a.iter().zip(b).all(|(x, y)| x == y);
    }
    a == b
}

pub fn index<'a>(v: &Val<'a>, i: i64) -> Val<'a> {
    let len = match v {
        Val::Json(nodes) => match nodes[0] {
            Node::Array { len, .. } => len as i64,
            _ => return Val::Null,
        },
        _ => return Val::Null,
    };
    let i = if i < 0 { len + i } else { i };
    if i < 0 || i >= len {
        return Val::Null;
    }
    elements(v).nth(i as usize).unwrap_or(Val::Null)
}

/// Order of two non-null values of comparable types.
pub fn compare(a: &Val<'_>, b: &Val<'_>) -> Option<Ordering> {
    match (a, b) {
        (Val::Int(x), Val::Int(y)) => Some(x.cmp(y)),
        (Val::Int(_) | Val::Float(_), Val::Int(_) | Val::Float(_)) => a.as_f64()?.partial_cmp(&b.as_f64()?),
        (Val::Str(x), Val::Str(y)) => Some(x.cmp(y)),
        (Val::Date(x), Val::Date(y)) => Some(x.cmp(y)),
        (Val::Bool(x), Val::Bool(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// Equality of non-null values: values of different types are not equal.
pub fn equal(a: &Val<'_>, b: &Val<'_>) -> bool {
    match (a, b) {
        (Val::Json(x), Val::Json(y)) => std::ptr::eq(*x, *y),
        // lengths first: most distinct strings differ in length, and no memcmp call
        (Val::Str(x), Val::Str(y)) => x.len() == y.len() && (x.is_empty() || x.as_bytes() == y.as_bytes()),
        _ => compare(a, b) == Some(Ordering::Equal),
    }
}

#[derive(Debug, Clone)]
pub enum Const {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Box<str>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    Len,
    Lower,
    Upper,
    Trim,
    Date,
    Year,
    Month,
    Day,
    Months,
    Coalesce,
    Greatest,
    Least,
    NullIf,
    If,
    IsObject,
    IsArray,
    IsString,
    IsNumber,
    Abs,
    Int,
    Float,
    RefDate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agg {
    Max,
    Min,
    Sum,
    Mean,
    Count,
    CountDistinct,
    Any,
    All,
    First,
    MaxBy,
    MinBy,
}

#[derive(Debug, Clone)]
pub enum Expr {
    Const(Const),
    Input(usize),
    JsonRoot(usize),
    Local(usize),
    Slot(usize),
    /// `inner.key`; the id indexes `Program::field_keys`.
    Field(Box<Expr>, Box<str>, usize),
    Index(Box<Expr>, i64),
    Spread(Box<Expr>),
    Neg(Box<Expr>),
    Not(Box<Expr>),
    Bin(BinOp, Box<Expr>, Box<Expr>),
    IsNull(Box<Expr>, bool),
    Call(Func, Vec<Expr>),
    Bind {
        slot: usize,
        value: Box<Expr>,
        body: Box<Expr>,
    },
    Agg {
        kind: Agg,
        value: Box<Expr>,
        var: usize,
        seq: Box<Expr>,
        cond: Option<Box<Expr>>,
    },
    KeywordRank {
        table: usize,
        args: Vec<Expr>,
        default: Option<i64>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(v: Val<'_>) -> String {
        match v {
            Val::Null => "null".into(),
            Val::Int(i) => i.to_string(),
            Val::Str(s) => s.to_string(),
            Val::Json(_) => v.type_name().into(),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn the_object_index_agrees_with_a_scan_for_every_key() {
        // 20 member names: ids 16.. are beyond the index and looked up by scanning
        let keys: Vec<Box<str>> = (0..20).map(|i| format!("k{i}").into()).collect();
        let mut doc = String::from("[{");
        for i in 0..20 {
            doc.push_str(&format!("\"k{i}\": {i}, "));
        }
        // duplicates: the last wins; an unknown key; a nested value to skip over
        doc.push_str(
            "\"k3\": \"again\", \"k17\": \"late\", \"other\": [1, {\"k1\": 0}], \"k5\": {\"x\": 1}}, {\"k0\": 7}, 5]",
        );
        let mut bytes = doc.into_bytes();
        let tape = simd_json::to_tape(&mut bytes).unwrap();
        let root = Val::from_tape(&tape.0);
        let items: Vec<Val<'_>> = elements(&root).collect();
        let mut cache = FieldCache::default();
        cache.prepare(&keys);
        for round in 0..2 {
            for (id, k) in keys.iter().enumerate() {
                let Val::Json(nodes) = items[0] else { panic!() };
                let scanned = field_range(nodes, k).map_or(Val::Null, |r| Val::from_tape(&nodes[r]));
                assert_eq!(text(cache.field(&items[0], k, id)), text(scanned), "{k}, round {round}");
            }
            assert_eq!(text(cache.field(&items[1], "k0", 0)), "7");
            assert_eq!(text(cache.field(&items[1], "k1", 1)), "null");
            assert_eq!(text(cache.field(&items[2], "k0", 0)), "null", "not an object");
            cache.next_row();
        }
        assert_eq!(text(cache.field(&items[0], "k3", 3)), "again");
        assert_eq!(text(cache.field(&items[0], "k17", 17)), "late");
        assert_eq!(text(cache.field(&items[0], "k5", 5)), "object");
    }
}
