//! Expression evaluation over one row.

use std::cmp::Ordering;

use arrow_array::{
    Array, BinaryArray, BinaryViewArray, BooleanArray, Date32Array, Float32Array, Float64Array, Int8Array, Int16Array,
    Int32Array, Int64Array, LargeBinaryArray, LargeStringArray, StringArray, StringViewArray, UInt8Array, UInt16Array,
    UInt32Array, UInt64Array,
};

use crate::compile::{KeywordTable, Program};
use crate::text::{Ymd, for_each_word};
use crate::value::{Agg, BinOp, Const, Expr, FieldCache, Func, Val, compare, elements, equal, index};

/// A typed view of one input column of the current batch.
#[derive(Debug, Clone, Copy)]
pub enum Column<'a> {
    Utf8(&'a StringArray),
    LargeUtf8(&'a LargeStringArray),
    Utf8View(&'a StringViewArray),
    Binary(&'a BinaryArray),
    LargeBinary(&'a LargeBinaryArray),
    BinaryView(&'a BinaryViewArray),
    I8(&'a Int8Array),
    I16(&'a Int16Array),
    I32(&'a Int32Array),
    I64(&'a Int64Array),
    U8(&'a UInt8Array),
    U16(&'a UInt16Array),
    U32(&'a UInt32Array),
    U64(&'a UInt64Array),
    F32(&'a Float32Array),
    F64(&'a Float64Array),
    Bool(&'a BooleanArray),
    Date32(&'a Date32Array),
    Null,
}

macro_rules! get {
    ($a:expr, $row:expr, $f:expr) => {
        if $a.is_null($row) { Val::Null } else { $f($a.value($row)) }
    };
}

impl<'a> Column<'a> {
    pub fn str(&self, row: usize) -> Option<&'a str> {
        match self {
            Column::Utf8(a) => (!a.is_null(row)).then(|| a.value(row)),
            Column::LargeUtf8(a) => (!a.is_null(row)).then(|| a.value(row)),
            Column::Utf8View(a) => (!a.is_null(row)).then(|| a.value(row)),
            _ => None,
        }
    }
    /// The bytes of a string or binary cell (a JSON document).
    pub fn bytes(&self, row: usize) -> Option<&'a [u8]> {
        match self {
            Column::Binary(a) => (!a.is_null(row)).then(|| a.value(row)),
            Column::LargeBinary(a) => (!a.is_null(row)).then(|| a.value(row)),
            Column::BinaryView(a) => (!a.is_null(row)).then(|| a.value(row)),
            _ => self.str(row).map(str::as_bytes),
        }
    }
    pub fn get(&self, row: usize) -> Val<'a> {
        match self {
            Column::Utf8(_) | Column::LargeUtf8(_) | Column::Utf8View(_) => self.str(row).map_or(Val::Null, Val::Str),
            Column::Binary(_) | Column::LargeBinary(_) | Column::BinaryView(_) => Val::Null,
            Column::I8(a) => get!(a, row, |v| Val::Int(i64::from(v))),
            Column::I16(a) => get!(a, row, |v| Val::Int(i64::from(v))),
            Column::I32(a) => get!(a, row, |v| Val::Int(i64::from(v))),
            Column::I64(a) => get!(a, row, Val::Int),
            Column::U8(a) => get!(a, row, |v| Val::Int(i64::from(v))),
            Column::U16(a) => get!(a, row, |v| Val::Int(i64::from(v))),
            Column::U32(a) => get!(a, row, |v| Val::Int(i64::from(v))),
            Column::U64(a) => get!(a, row, |v: u64| i64::try_from(v).map_or(Val::Float(v as f64), Val::Int)),
            Column::F32(a) => get!(a, row, |v| Val::Float(f64::from(v))),
            Column::F64(a) => get!(a, row, Val::Float),
            Column::Bool(a) => get!(a, row, Val::Bool),
            Column::Date32(a) => get!(a, row, |d: i32| ymd_from_days(d).map_or(Val::Null, Val::Date)),
            Column::Null => Val::Null,
        }
    }
}

fn ymd_from_days(z: i32) -> Option<Ymd> {
    let d = fleet_contract::Date::from_days_since_epoch(i64::from(z));
    Ymd::new(d.year, d.month, d.day)
}

/// Everything an expression can see while one row is evaluated.
pub struct Cx<'a, 'e> {
    pub prog: &'a Program,
    pub inputs: &'e [Column<'a>],
    pub row: usize,
    pub roots: &'e [Val<'a>],
    pub slots: &'e [Val<'a>],
    pub locals: &'e mut [Val<'a>],
    pub fields: &'e mut FieldCache,
    pub ref_date: Ymd,
    /// Strings made while evaluating the row (`lower`, `upper`).
    pub arena: &'a bumpalo::Bump,
}

fn truthy(v: &Val<'_>) -> bool {
    matches!(v, Val::Bool(true))
}

fn num_result(x: Option<i64>, f: impl FnOnce() -> f64) -> Val<'static> {
    match x {
        Some(i) => Val::Int(i),
        None => {
            let f = f();
            if f.is_finite() { Val::Float(f) } else { Val::Null }
        }
    }
}

impl<'a> Cx<'a, '_> {
    pub fn eval(&mut self, e: &'a Expr) -> Val<'a> {
        match e {
            Expr::Const(c) => match c {
                Const::Null => Val::Null,
                Const::Bool(b) => Val::Bool(*b),
                Const::Int(i) => Val::Int(*i),
                Const::Float(f) => Val::Float(*f),
                Const::Str(s) => Val::Str(s),
            },
            Expr::Input(i) => self.inputs[*i].get(self.row),
            Expr::JsonRoot(i) => self.roots[*i],
            Expr::Local(i) => self.locals[*i],
            Expr::Slot(i) => self.slots[*i],
            Expr::Field(inner, key, id) => {
                let v = self.eval(inner);
                self.fields.field(&v, key, *id)
            }
            Expr::Index(inner, i) => {
                let v = self.eval(inner);
                index(&v, *i)
            }
            Expr::Spread(inner) => self.eval(inner),
            Expr::Neg(inner) => match self.eval(inner) {
                Val::Int(i) => num_result(i.checked_neg(), || -(i as f64)),
                Val::Float(f) => Val::Float(-f),
                _ => Val::Null,
            },
            Expr::Not(inner) => match self.eval(inner) {
                Val::Bool(b) => Val::Bool(!b),
                _ => Val::Null,
            },
            Expr::IsNull(inner, negated) => Val::Bool(self.eval(inner).is_null() != *negated),
            Expr::Bin(op, l, r) => self.binary(*op, l, r),
            Expr::Call(f, args) => self.call(*f, args),
            Expr::Bind { slot, value, body } => {
                let v = self.eval(value);
                self.locals[*slot] = v;
                self.eval(body)
            }
            Expr::Agg { kind, value, var, seq, cond } => self.aggregate(*kind, value, *var, seq, cond.as_deref()),
            Expr::KeywordRank { table, args, default } => self.keyword_rank(*table, args, *default),
        }
    }

    fn keyword_rank(&mut self, table: usize, args: &'a [Expr], default: Option<i64>) -> Val<'a> {
        let t = &self.prog.keywords[table];
        let mut best: Option<i64> = None;
        for a in args {
            if let Expr::Spread(inner) = a {
                let v = self.eval(inner);
                for el in elements(&v) {
                    if let Val::Str(s) = el {
                        rank_text(t, s, &mut best);
                    }
                }
            } else if let Val::Str(s) = self.eval(a) {
                rank_text(t, s, &mut best);
            }
        }
        best.or(default).map_or(Val::Null, Val::Int)
    }

    fn binary(&mut self, op: BinOp, l: &'a Expr, r: &'a Expr) -> Val<'a> {
        if matches!(op, BinOp::And | BinOp::Or) {
            // Three-valued logic as in SQL.
            let a = self.eval(l);
            let short = if op == BinOp::And { Val::Bool(false) } else { Val::Bool(true) };
            if matches!((&a, &short), (Val::Bool(x), Val::Bool(y)) if x == y) {
                return short;
            }
            let b = self.eval(r);
            return match (a, b) {
                (_, b @ Val::Bool(_)) if matches!((&b, &short), (Val::Bool(x), Val::Bool(y)) if x == y) => short,
                (Val::Bool(_), Val::Bool(y)) => Val::Bool(y),
                _ => Val::Null,
            };
        }
        let a = self.eval(l);
        let b = self.eval(r);
        if a.is_null() || b.is_null() {
            return Val::Null;
        }
        match op {
            BinOp::Eq => Val::Bool(equal(&a, &b)),
            BinOp::Ne => Val::Bool(!equal(&a, &b)),
            BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => match compare(&a, &b) {
                None => Val::Null,
                Some(o) => Val::Bool(match op {
                    BinOp::Lt => o == Ordering::Less,
                    BinOp::Le => o != Ordering::Greater,
                    BinOp::Gt => o == Ordering::Greater,
                    _ => o != Ordering::Less,
                }),
            },
            _ => arith(op, &a, &b),
        }
    }

    fn call(&mut self, f: Func, args: &'a [Expr]) -> Val<'a> {
        match f {
            Func::Coalesce => {
                for a in args {
                    let v = self.eval(a);
                    if !v.is_null() {
                        return v;
                    }
                }
                Val::Null
            }
            Func::If => {
                let c = self.eval(&args[0]);
                self.eval(&args[if truthy(&c) { 1 } else { 2 }])
            }
            Func::Greatest | Func::Least => {
                let mut best = self.eval(&args[0]);
                if best.is_null() {
                    return Val::Null;
                }
                for a in &args[1..] {
                    let v = self.eval(a);
                    match compare(&v, &best) {
                        None => return Val::Null,
                        Some(Ordering::Greater) if f == Func::Greatest => best = v,
                        Some(Ordering::Less) if f == Func::Least => best = v,
                        _ => {}
                    }
                }
                best
            }
            Func::RefDate => Val::Date(self.ref_date),
            // a row's date strings are parsed once (per-row memo)
            Func::Date => match self.eval(&args[0]) {
                Val::Str(s) => self.fields.date(s).map_or(Val::Null, Val::Date),
                d @ Val::Date(_) => d,
                _ => Val::Null,
            },
            _ => {
                let a = self.eval(&args[0]);
                let b = if args.len() > 1 { self.eval(&args[1]) } else { Val::Null };
                scalar(f, a, b, self.arena)
            }
        }
    }

    fn aggregate(&mut self, kind: Agg, value: &'a Expr, var: usize, seq: &'a Expr, cond: Option<&'a Expr>) -> Val<'a> {
        let seq = self.eval(seq);
        let mut best: Option<(Val<'a>, Val<'a>)> = None; // (key, element) for max/min/max_by/min_by
        let (mut count, mut isum, mut fsum, mut is_float, mut overflow) = (0i64, 0i64, 0f64, false, false);
        let mut distinct: Vec<Val<'a>> = Vec::new();
        let mut seen_false = false;
        for el in elements(&seq) {
            self.locals[var] = el;
            if let Some(c) = cond {
                let c = self.eval(c);
                if !truthy(&c) {
                    continue;
                }
            }
            let v = self.eval(value);
            if v.is_null() {
                continue;
            }
            match kind {
                Agg::Max | Agg::Min | Agg::MaxBy | Agg::MinBy => {
                    let want = if matches!(kind, Agg::Max | Agg::MaxBy) { Ordering::Greater } else { Ordering::Less };
                    let replace = match &best {
                        None => true,
                        Some((k, _)) => compare(&v, k) == Some(want),
                    };
                    if replace {
                        let el = if matches!(kind, Agg::MaxBy | Agg::MinBy) { self.locals[var] } else { Val::Null };
                        best = Some((v, el));
                    }
                }
                Agg::Sum | Agg::Mean => match v {
                    Val::Int(i) => {
                        count += 1;
                        fsum += i as f64;
                        match isum.checked_add(i) {
                            Some(s) => isum = s,
                            None => overflow = true,
                        }
                    }
                    Val::Float(f) => {
                        count += 1;
                        fsum += f;
                        is_float = true;
                    }
                    _ => {}
                },
                Agg::Count => count += 1,
                Agg::CountDistinct => {
                    if !distinct.iter().any(|d| equal(d, &v)) {
                        distinct.push(v);
                    }
                }
                Agg::Any => {
                    if truthy(&v) {
                        return Val::Bool(true);
                    }
                }
                Agg::All => seen_false |= matches!(v, Val::Bool(false)),
                Agg::First => return v,
            }
        }
        match kind {
            Agg::Max | Agg::Min => best.map_or(Val::Null, |(k, _)| k),
            Agg::MaxBy | Agg::MinBy => best.map_or(Val::Null, |(_, e)| e),
            Agg::Sum if count == 0 => Val::Null,
            Agg::Sum if is_float || overflow => Val::Float(fsum),
            Agg::Sum => Val::Int(isum),
            Agg::Mean if count == 0 => Val::Null,
            Agg::Mean => Val::Float(fsum / count as f64),
            Agg::Count => Val::Int(count),
            Agg::CountDistinct => Val::Int(distinct.len() as i64),
            Agg::Any => Val::Bool(false),
            Agg::All => Val::Bool(!seen_false),
            Agg::First => Val::Null,
        }
    }
}

fn arith<'a>(op: BinOp, a: &Val<'a>, b: &Val<'a>) -> Val<'a> {
    if let (Val::Int(x), Val::Int(y)) = (a, b) {
        let (x, y) = (*x, *y);
        return match op {
            BinOp::Add => num_result(x.checked_add(y), || x as f64 + y as f64),
            BinOp::Sub => num_result(x.checked_sub(y), || x as f64 - y as f64),
            BinOp::Mul => num_result(x.checked_mul(y), || x as f64 * y as f64),
            BinOp::Div if y == 0 => Val::Null,
            BinOp::Div => Val::Float(x as f64 / y as f64),
            BinOp::Rem => x.checked_rem_euclid(y).map_or(Val::Null, Val::Int),
            _ => Val::Null,
        };
    }
    let (Some(x), Some(y)) = (a.as_f64(), b.as_f64()) else { return Val::Null };
    let r = match op {
        BinOp::Add => x + y,
        BinOp::Sub => x - y,
        BinOp::Mul => x * y,
        BinOp::Div if y == 0.0 => return Val::Null,
        BinOp::Div => x / y,
        BinOp::Rem if y == 0.0 => return Val::Null,
        BinOp::Rem => x.rem_euclid(y),
        _ => return Val::Null,
    };
    if r.is_finite() { Val::Float(r) } else { Val::Null }
}

fn scalar<'a>(f: Func, a: Val<'a>, b: Val<'a>, arena: &'a bumpalo::Bump) -> Val<'a> {
    match (f, a) {
        (Func::Len, v) => crate::value::len(&v).map_or(Val::Null, Val::Int),
        (Func::Lower, Val::Str(s)) => Val::Str(if s.bytes().any(|b| b.is_ascii_uppercase()) {
            let t = arena.alloc_str(s);
            t.make_ascii_lowercase();
            t
        } else {
            s
        }),
        (Func::Upper, Val::Str(s)) => Val::Str(if s.bytes().any(|b| b.is_ascii_lowercase()) {
            let t = arena.alloc_str(s);
            t.make_ascii_uppercase();
            t
        } else {
            s
        }),
        (Func::Trim, Val::Str(s)) => Val::Str(s.trim_matches(is_space)),
        (Func::Year, Val::Date(d)) => Val::Int(i64::from(d.year())),
        (Func::Month, Val::Date(d)) => Val::Int(i64::from(d.month())),
        (Func::Day, Val::Date(d)) => Val::Int(i64::from(d.day())),
        (Func::Months, Val::Date(a)) => match b {
            Val::Date(b) => Val::Int(a.months_until(b)),
            _ => Val::Null,
        },
        (Func::NullIf, a) => {
            if !a.is_null() && !b.is_null() && equal(&a, &b) {
                Val::Null
            } else {
                a
            }
        }
        (Func::IsObject, v) => Val::Bool(matches!(v, Val::Json(n) if matches!(n[0], simd_json::Node::Object { .. }))),
        (Func::IsArray, v) => Val::Bool(matches!(v, Val::Json(n) if matches!(n[0], simd_json::Node::Array { .. }))),
        (Func::IsString, v) => Val::Bool(matches!(v, Val::Str(_))),
        (Func::IsNumber, v) => Val::Bool(matches!(v, Val::Int(_) | Val::Float(_))),
        (Func::Abs, Val::Int(i)) => num_result(i.checked_abs(), || (i as f64).abs()),
        (Func::Abs, Val::Float(x)) => Val::Float(x.abs()),
        (Func::Int, Val::Int(i)) => Val::Int(i),
        (Func::Int, Val::Float(x)) if x.is_finite() && x.abs() < 9.2e18 => Val::Int(x.trunc() as i64),
        (Func::Int, Val::Bool(b)) => Val::Int(i64::from(b)),
        (Func::Int, Val::Str(s)) => s.trim().parse().map_or(Val::Null, Val::Int),
        (Func::Float, Val::Int(i)) => Val::Float(i as f64),
        (Func::Float, Val::Float(x)) => Val::Float(x),
        (Func::Float, Val::Str(s)) => {
            s.trim().parse::<f64>().ok().filter(|f| f.is_finite()).map_or(Val::Null, Val::Float)
        }
        _ => Val::Null,
    }
}

/// Whitespace as Python's `str.strip()` sees it: Unicode White_Space plus the
/// information separators U+001C..U+001F, so that `trim` agrees with the
/// tools data engineers check us against.
pub(crate) fn is_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// The larger of `a` and `b`, `b` when `a` is `None`.
#[inline]
pub(crate) fn max_opt(a: Option<i64>, b: i64) -> Option<i64> {
    Some(a.map_or(b, |a| a.max(b)))
}

/// Raises `best` to the highest rank of a keyword (one word, or two
/// consecutive words) found in `text`.
///
/// Texts of up to [`SHORT_TEXT`] bytes (job titles, degrees) are
/// normalised once into a buffer where the words are separated by one
/// space, so that every word and every pair of consecutive words is a slice
/// of it, looked up in place; longer texts go word by word
/// ([`rank_words`]). The two agree (`rank_text_agrees_with_rank_words`).
#[inline]
pub(crate) fn rank_text(t: &KeywordTable, text: &str, best: &mut Option<i64>) {
    let b = text.as_bytes();
    if b.len() > SHORT_TEXT {
        return rank_words(t, text, best);
    }
    // the words of `text` as `for_each_word` splits them, one space apart,
    // with room after them for the 16-byte loads of `get_in`
    let mut buf = [0u8; SHORT_TEXT + 16];
    let mut words = [(0u8, 0u8); SHORT_TEXT / 2 + 1];
    let (mut n, mut nw, mut in_word) = (0usize, 0usize, false);
    for &c in b {
        let c = c.to_ascii_lowercase();
        if c == b'.' {
            continue;
        }
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            if !in_word {
                words[nw].0 = n as u8;
                in_word = true;
            }
            buf[n] = c;
            n += 1;
        } else if in_word {
            words[nw].1 = n as u8;
            nw += 1;
            buf[n] = b' ';
            n += 1;
            in_word = false;
        }
    }
    if in_word {
        words[nw].1 = n as u8;
        nw += 1;
    }
    let mut prev: Option<(usize, usize)> = None;
    for &(s, e) in &words[..nw] {
        let (s, e) = (usize::from(s), usize::from(e));
        let fits = e - s <= t.max_word;
        if fits && let Some(r) = t.ranks.get_in(&buf, s, e) {
            *best = max_opt(*best, r);
        }
        // a pair of words is the slice from the first's start to the second's end
        if t.has_pairs
            && fits
            && let Some((ps, pe)) = prev
            && pe - ps <= t.max_word
            && let Some(r) = t.ranks.get_in(&buf, ps, e)
        {
            *best = max_opt(*best, r);
        }
        prev = Some((s, e));
    }
}

/// The keyword rank of recent texts, per thread: job titles, seniority
/// levels and degree names repeat from row to row, and a look-up here (a
/// hash of at most four words of the text and one compare) costs a fraction
/// of ranking the text again. Direct-mapped: a text evicts the one in its
/// slot. Texts longer than 32 bytes are not kept. Valid for one program's
/// tables: [`RankMemo::prepare`] empties it when the program changes.
#[derive(Debug)]
pub(crate) struct RankMemo {
    /// The program whose tables the ranks are of (a `Weak` keeps its
    /// address from being reused while held).
    prog: std::sync::Weak<crate::compile::Program>,
    slots: Box<[MemoSlot]>,
}

#[derive(Debug, Clone, Copy, Default)]
struct MemoSlot {
    /// The text's bytes as four words ([`memo_key`]), length + 1 (0: empty), table.
    key: [u64; 4],
    len: u8,
    table: u8,
    rank: Option<i64>,
}

const MEMO_SLOTS: usize = 1024;

impl Default for RankMemo {
    fn default() -> Self {
        RankMemo { prog: std::sync::Weak::new(), slots: vec![MemoSlot::default(); MEMO_SLOTS].into_boxed_slice() }
    }
}

impl RankMemo {
    /// Empties the memo unless it holds ranks of `prog`'s tables.
    pub(crate) fn prepare(&mut self, prog: &std::sync::Arc<crate::compile::Program>) {
        if !std::ptr::eq(self.prog.as_ptr(), std::sync::Arc::as_ptr(prog)) {
            self.prog = std::sync::Arc::downgrade(prog);
            self.slots.fill(MemoSlot::default());
        }
    }

    /// [`rank_text`] of `text` in `tables[table]`, remembered.
    #[inline]
    pub(crate) fn rank(&mut self, tables: &[KeywordTable], table: usize, text: &str, best: &mut Option<i64>) {
        let b = text.as_bytes();
        if b.len() > 32 || table > usize::from(u8::MAX) {
            return rank_text(&tables[table], text, best);
        }
        let key = memo_key(b);
        let h = (key[0] ^ key[1].rotate_left(17) ^ key[2].rotate_left(31) ^ key[3].rotate_left(47))
            ^ ((b.len() as u64) << 8 | table as u64);
        let slot = &mut self.slots[(h.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 54) as usize % MEMO_SLOTS];
        let r = if slot.key == key && usize::from(slot.len) == b.len() + 1 && usize::from(slot.table) == table {
            slot.rank
        } else {
            let mut r = None;
            rank_text(&tables[table], text, &mut r);
            *slot = MemoSlot { key, len: b.len() as u8 + 1, table: table as u8, rank: r };
            r
        };
        if let Some(r) = r {
            *best = max_opt(*best, r);
        }
    }
}

/// The bytes of a text of at most 32 bytes as four words that, with its
/// length, tell it from every other (overlapping loads cover all its bytes).
#[inline(always)]
fn memo_key(b: &[u8]) -> [u64; 4] {
    let word = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("eight bytes"));
    let n = b.len();
    match n {
        16.. => [word(0), word(8), word(n - 16), word(n - 8)],
        8.. => [word(0), word(n - 8), 0, 0],
        _ => [b.iter().rev().fold(0u64, |k, &c| (k << 8) | u64::from(c)), 0, 0, 0],
    }
}

/// Texts up to this long are ranked in one buffer ([`rank_text`]).
const SHORT_TEXT: usize = 128;

/// [`rank_text`] word by word, for texts of any length.
fn rank_words(t: &KeywordTable, text: &str, best: &mut Option<i64>) {
    let mut prev = [0u8; 48];
    let mut prev_len: Option<usize> = None;
    let mut pair = [0u8; 97];
    for_each_word(text, |w| {
        let Some(w) = w else {
            prev_len = None;
            return;
        };
        if w.len() <= t.max_word
            && let Some(r) = t.ranks.get(w)
        {
            *best = max_opt(*best, r);
        }
        if t.has_pairs {
            if let Some(pl) = prev_len
                && pl <= t.max_word
                && w.len() <= t.max_word
            {
                let n = pl + 1 + w.len();
                pair[..pl].copy_from_slice(&prev[..pl]);
                pair[pl] = b' ';
                pair[pl + 1..n].copy_from_slice(w);
                if let Some(r) = t.ranks.get(&pair[..n]) {
                    *best = max_opt(*best, r);
                }
            }
            prev[..w.len()].copy_from_slice(w);
            prev_len = Some(w.len());
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::parse_date;

    /// Texts of up to 140 bytes made of keywords, near-keywords, long words and separators.
    fn random_texts(n: usize) -> Vec<String> {
        let long = "abcdefghijklmnopqrstuvwxyz0123456789";
        let tokens = [
            "Senior",
            "sr.",
            "Ph.D",
            "ph",
            "d",
            "PhD",
            "high",
            "School",
            "VP",
            "abcdefghij",
            "chief",
            "intern",
            "international",
            "principalengineer",
            "PrincipalEngineer",
            long,
            &"x".repeat(49),
            "3",
            "é",
            " ",
            " ",
            "  ",
            ".",
            "-",
            "/",
            ", ",
            "\t",
            "&",
            "..",
            "ceo",
        ];
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        (0..n)
            .map(|_| {
                let want_len = (next() % 140) as usize;
                let mut text = String::new();
                while text.len() < want_len {
                    text.push_str(tokens[(next() % tokens.len() as u64) as usize]);
                }
                text
            })
            .collect()
    }

    /// The built-in spec's tables and one with words and pairs longer than
    /// 16 bytes (not packed) and a word of 36.
    fn tables() -> Vec<KeywordTable> {
        let long = "abcdefghijklmnopqrstuvwxyz0123456789";
        let mut tables = crate::Spec::predict_age().prog.keywords.clone();
        let custom = [("principalengineer", 3), ("senior principalengineer", 5), (long, 1), ("vp abcdefghij", 6)];
        tables.push(KeywordTable {
            ranks: crate::packed::PackedMap::new(custom.iter().map(|(k, r)| (k.as_bytes(), *r))),
            has_pairs: true,
            max_word: long.len(),
        });
        tables
    }

    #[test]
    fn rank_text_agrees_with_rank_words() {
        let tables = tables();
        let mut checked = 0;
        for text in random_texts(20_000) {
            for t in &tables {
                let (mut a, mut b) = (None, None);
                rank_text(t, &text, &mut a);
                rank_words(t, &text, &mut b);
                assert_eq!(a, b, "{text:?}");
                checked += usize::from(a.is_some());
            }
        }
        // many texts hold a keyword, so the agreement is not only on None
        assert!(checked > 5_000, "{checked}");
    }

    #[test]
    fn the_rank_memo_agrees_with_rank_text() {
        let tables = tables();
        // few distinct texts, so that most look-ups hit, and enough to evict
        let texts = random_texts(3_000);
        let mut memo = RankMemo::default();
        memo.prepare(&crate::Spec::predict_age().prog);
        for round in 0..3 {
            for (i, text) in texts.iter().enumerate() {
                let t = (i + round) % tables.len();
                let (mut a, mut b) = (Some(-1), Some(-1));
                rank_text(&tables[t], text, &mut a);
                memo.rank(&tables, t, text, &mut b);
                assert_eq!(a, b, "{text:?} in table {t}, round {round}");
            }
        }
        // texts that differ in one byte only, at every position of 1..=32 bytes
        for n in 1..=32 {
            let base: String = "senior ".chars().cycle().take(n).collect();
            for i in 0..n {
                let mut v = base.clone().into_bytes();
                v[i] = b'x';
                for text in [&base, &String::from_utf8(v).unwrap()] {
                    let (mut a, mut b) = (None, None);
                    rank_text(&tables[1], text, &mut a);
                    memo.rank(&tables, 1, text, &mut b);
                    assert_eq!(a, b, "{text:?}");
                }
            }
        }
        // another program's tables: the memo starts over ("senior" is not a
        // degree, so the memo holds no rank for it in table 0 now)
        let mut r = None;
        memo.rank(&tables, 0, "senior", &mut r);
        assert_eq!(r, None);
        let other = crate::Spec::parse("input pid: string\njson j\nid pid\nkeywords k {\n  9: \"senior\"\n}\nfeature pid: string = pid\nfeature r: int32 = keyword_rank(k, j[*], default = 0)\n").unwrap();
        memo.prepare(&other.prog);
        let mut r = None;
        memo.rank(&other.prog.keywords, 0, "senior", &mut r);
        assert_eq!(r, Some(9));
    }

    #[test]
    fn epoch_days_round_trip() {
        for s in ["1970-01-01", "2000-02-29", "1900-03-01", "2025-07-01", "0001-01-01", "9999-12-31"] {
            let d = parse_date(s).unwrap();
            assert_eq!(ymd_from_days(d.days_since_epoch()), Some(d), "{s}");
        }
    }
}
