//! Feature specs: a small declarative language that says which JSON columns
//! of a raw table to parse and which typed features to derive from them,
//! and the evaluator that runs it row by row over Arrow batches, parsing
//! each JSON cell once with simd-json.
//!
//! ```
//! use arrow_array::{RecordBatch, StringArray, cast::AsArray, types::Int16Type};
//! use std::sync::Arc;
//!
//! let spec = fleet_spec::Spec::parse(r#"
//!     input pid: string
//!     json jobs
//!     id pid
//!     feature pid: string not null = pid
//!     feature n_jobs: int16 = len(jobs)
//!     feature first_year: int16 = min(year(date(j.start)) for j in jobs)
//! "#).unwrap();
//! let batch = RecordBatch::try_from_iter([
//!     ("pid", Arc::new(StringArray::from(vec!["a", "b"])) as _),
//!     ("jobs", Arc::new(StringArray::from(vec![r#"[{"start":"2019-02"},{"start":"2011"}]"#, "[1,"])) as _),
//! ]).unwrap();
//! let eval = spec.bind(&batch.schema(), fleet_spec::Ymd::new(2025, 7, 1).unwrap()).unwrap();
//! let out = eval.evaluate(&batch, 0..2, &mut fleet_spec::Workspace::default());
//! assert_eq!(out.columns[2].as_primitive::<Int16Type>().value(0), 2011);
//! assert!(out.columns[1].is_null(1)); // the cell "[1," is rejected
//! assert_eq!(out.rejects[0].column, "jobs");
//! ```
//!
//! The language is described in `docs/SPEC.md`; the built-in predict-age
//! spec is [`PREDICT_AGE`].

pub mod cell;
mod compile;
mod eval;
mod native;
mod packed;
mod syntax;
pub mod text;
mod value;

use std::ops::Range;
use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Date32Builder, Float32Builder, Float64Builder, Int8Builder, Int16Builder, Int32Builder,
    Int64Builder, StringBuilder,
};
use arrow_array::{ArrayRef, RecordBatch, cast::AsArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use simd_json::Tape;

pub use cell::{CellError, CellParser, Parsed};
pub use compile::{InputType, JsonRoot, OutType};
pub use fleet_contract::{REJECT_PREFIX_BYTES, Reject};
pub use text::Ymd;

use compile::{Program, StepKind};
use eval::{Column, Cx};
use value::Val;

/// The predict-age spec of FEATURES.md §3, the default.
pub const PREDICT_AGE: &str = include_str!("../specs/predict-age.spec");

/// An example spec for JSON Resume documents (jsonresume.org schema).
pub const JSON_RESUME: &str = include_str!("../specs/json-resume.spec");

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// The spec text is wrong; line and column are 1-based.
    #[error("spec line {line}, column {column}: {message}")]
    Syntax { line: usize, column: usize, message: String },
    /// The input table lacks a column the spec reads, or has it with the wrong type.
    #[error("input column `{column}`: {message}")]
    Input { column: String, message: String },
}

/// A parsed and checked spec, ready to bind to an input schema.
#[derive(Debug, Clone)]
pub struct Spec {
    prog: Arc<Program>,
    schema: SchemaRef,
    /// The text is the built-in predict-age spec: evaluated by `native`.
    native: bool,
}

impl Spec {
    /// Parses and checks a spec; errors carry line and column.
    pub fn parse(src: &str) -> Result<Self, SpecError> {
        let stmts = syntax::Parser::new(src)?.statements()?;
        let prog = compile::compile(stmts)?;
        let fields: Vec<Field> = prog
            .steps
            .iter()
            .filter_map(|s| match s.kind {
                StepKind::Feature { ty, not_null } => Some(Field::new(&s.name, arrow_type(ty), !not_null)),
                StepKind::Let => None,
            })
            .collect();
        let native = src == PREDICT_AGE && native::check(&prog);
        Ok(Self { prog: Arc::new(prog), schema: Arc::new(Schema::new(fields)), native })
    }

    /// The built-in predict-age spec.
    pub fn predict_age() -> Self {
        Self::parse(PREDICT_AGE).expect("the built-in predict-age spec is valid")
    }

    /// Whether this is the built-in predict-age text, which runs as
    /// compiled-in Rust (the same output as the interpreter, faster); any
    /// other spec is interpreted.
    pub fn is_native(&self) -> bool {
        self.native
    }

    /// The schema of the feature table this spec writes.
    pub fn output_schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// The raw columns the spec reads: scalar inputs, then JSON columns.
    pub fn input_columns(&self) -> Vec<&str> {
        self.prog.inputs.iter().map(|i| i.name.as_str()).chain(self.prog.json.iter().map(String::as_str)).collect()
    }

    /// The declared type of a scalar input column.
    pub fn input_type(&self, name: &str) -> Option<InputType> {
        self.prog.inputs.iter().find(|i| i.name == name).map(|i| i.ty)
    }

    /// The name of the row id column (`id`), used in reject records.
    pub fn id_column(&self) -> Option<&str> {
        self.prog.id.map(|i| self.prog.inputs[i].name.as_str())
    }

    /// The JSON columns, in the order of their reject statistics.
    pub fn json_columns(&self) -> Vec<&str> {
        self.prog.json.iter().map(String::as_str).collect()
    }

    /// Checks the spec against an input schema and fixes the reference date.
    pub fn bind(&self, input: &Schema, reference_date: Ymd) -> Result<Evaluator, SpecError> {
        let find = |name: &str| {
            input.index_of(name).map_err(|_| SpecError::Input {
                column: name.to_string(),
                message: format!(
                    "missing from the input; it has {}",
                    input.fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>().join(", ")
                ),
            })
        };
        let mut inputs = Vec::new();
        for decl in &self.prog.inputs {
            let idx = find(&decl.name)?;
            let dt = input.field(idx).data_type();
            let ok = match decl.ty {
                InputType::String => matches!(dt, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View),
                InputType::Int => dt.is_integer(),
                InputType::Float => dt.is_numeric(),
                InputType::Bool => dt == &DataType::Boolean,
                InputType::Date => dt == &DataType::Date32,
            };
            if !ok && dt != &DataType::Null {
                return Err(SpecError::Input {
                    column: decl.name.clone(),
                    message: format!("has type {dt}, but the spec declares it {:?}", decl.ty),
                });
            }
            inputs.push(idx);
        }
        let mut json = Vec::new();
        for name in &self.prog.json {
            let idx = find(name)?;
            let dt = input.field(idx).data_type();
            let text = matches!(dt, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View);
            let binary = matches!(dt, DataType::Binary | DataType::LargeBinary | DataType::BinaryView);
            if !(text || binary || dt == &DataType::Null) {
                return Err(SpecError::Input {
                    column: name.clone(),
                    message: format!(
                        "has type {dt}; a JSON column must be a string (Utf8) or binary column holding a JSON document"
                    ),
                });
            }
            json.push(idx);
        }
        Ok(Evaluator { spec: self.clone(), inputs, json, reference_date, native: self.native })
    }
}

fn arrow_type(t: OutType) -> DataType {
    match t {
        OutType::Int8 => DataType::Int8,
        OutType::Int16 => DataType::Int16,
        OutType::Int32 => DataType::Int32,
        OutType::Int64 => DataType::Int64,
        OutType::Float32 => DataType::Float32,
        OutType::Float64 => DataType::Float64,
        OutType::Bool => DataType::Boolean,
        OutType::String => DataType::Utf8,
        OutType::Date => DataType::Date32,
    }
}

/// The features of a range of rows.
#[derive(Debug)]
pub struct Evaluated {
    pub columns: Vec<ArrayRef>,
    pub rejects: Vec<Reject>,
    /// Rows with at least one rejected cell.
    pub rows_rejected: usize,
    /// Bytes of JSON text read.
    pub json_bytes: u64,
}

impl Evaluated {
    pub fn into_batch(self, schema: SchemaRef) -> Result<RecordBatch, arrow_schema::ArrowError> {
        RecordBatch::try_new(schema, self.columns)
    }
}

/// Per-thread scratch space: one reusable parser and tape per JSON column.
#[derive(Debug, Default)]
pub struct Workspace {
    parsers: Vec<CellParser>,
    tapes: Vec<Tape<'static>>,
    roots: Vec<Val<'static>>,
    slots: Vec<Val<'static>>,
    locals: Vec<Val<'static>>,
    fields: value::FieldCache,
    /// Strings made during a row, freed all at once before the next.
    arena: bumpalo::Bump,
    /// Keyword ranks of recent texts (the native evaluation).
    ranks: eval::RankMemo,
    /// The members the native evaluation reads, row by row.
    extract: native::Extract<'static>,
}

/// A spec bound to an input schema and a reference date.
#[derive(Debug, Clone)]
pub struct Evaluator {
    spec: Spec,
    inputs: Vec<usize>,
    json: Vec<usize>,
    reference_date: Ymd,
    native: bool,
}

enum Builder {
    I8(Int8Builder),
    I16(Int16Builder),
    I32(Int32Builder),
    I64(Int64Builder),
    F32(Float32Builder),
    F64(Float64Builder),
    Bool(BooleanBuilder),
    Str(StringBuilder),
    Date(Date32Builder),
}

fn int_in<T: TryFrom<i64>>(v: &Val<'_>) -> Option<T> {
    match v {
        Val::Int(i) => T::try_from(*i).ok(),
        Val::Float(f) if f.is_finite() && f.fract() == 0.0 && f.abs() < 9.2e18 => T::try_from(*f as i64).ok(),
        _ => None,
    }
}

impl Builder {
    fn new(t: OutType, n: usize) -> Self {
        match t {
            OutType::Int8 => Builder::I8(Int8Builder::with_capacity(n)),
            OutType::Int16 => Builder::I16(Int16Builder::with_capacity(n)),
            OutType::Int32 => Builder::I32(Int32Builder::with_capacity(n)),
            OutType::Int64 => Builder::I64(Int64Builder::with_capacity(n)),
            OutType::Float32 => Builder::F32(Float32Builder::with_capacity(n)),
            OutType::Float64 => Builder::F64(Float64Builder::with_capacity(n)),
            OutType::Bool => Builder::Bool(BooleanBuilder::with_capacity(n)),
            OutType::String => Builder::Str(StringBuilder::with_capacity(n, n * 16)),
            OutType::Date => Builder::Date(Date32Builder::with_capacity(n)),
        }
    }
    /// Appends `v` converted to the column type; a value that does not fit
    /// (out of range, wrong type) is NULL, or the type's zero value when
    /// `zero_for_null`. Returns whether the value did not fit.
    fn push(&mut self, v: &Val<'_>, zero_for_null: bool) -> bool {
        fn put<T: Default>(f: impl FnOnce(Option<T>), x: Option<T>, zero: bool) -> bool {
            let missing = x.is_none();
            f(if missing && zero { Some(T::default()) } else { x });
            missing
        }
        match self {
            Builder::I8(b) => put(|x| b.append_option(x), int_in::<i8>(v), zero_for_null),
            Builder::I16(b) => put(|x| b.append_option(x), int_in::<i16>(v), zero_for_null),
            Builder::I32(b) => put(|x| b.append_option(x), int_in::<i32>(v), zero_for_null),
            Builder::I64(b) => put(|x| b.append_option(x), int_in::<i64>(v), zero_for_null),
            Builder::F32(b) => put(|x| b.append_option(x), v.as_f64().map(|f| f as f32), zero_for_null),
            Builder::F64(b) => put(|x| b.append_option(x), v.as_f64(), zero_for_null),
            Builder::Bool(b) => {
                put(|x| b.append_option(x), if let Val::Bool(x) = v { Some(*x) } else { None }, zero_for_null)
            }
            Builder::Date(b) => put(
                |x| b.append_option(x),
                if let Val::Date(d) = v { Some(d.days_since_epoch()) } else { None },
                zero_for_null,
            ),
            Builder::Str(b) => {
                let s: Option<std::borrow::Cow<'_, str>> = match v {
                    Val::Str(s) => Some(std::borrow::Cow::Borrowed(*s)),
                    Val::Int(i) => Some(i.to_string().into()),
                    Val::Float(f) => Some(f.to_string().into()),
                    Val::Date(d) => Some(d.to_string().into()),
                    Val::Bool(x) => Some(if *x { "true" } else { "false" }.into()),
                    _ => None,
                };
                let missing = s.is_none();
                match s {
                    Some(s) => b.append_value(s),
                    None if zero_for_null => b.append_value(""),
                    None => b.append_null(),
                }
                missing
            }
        }
    }
    fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::I8(b) => Arc::new(b.finish()),
            Builder::I16(b) => Arc::new(b.finish()),
            Builder::I32(b) => Arc::new(b.finish()),
            Builder::I64(b) => Arc::new(b.finish()),
            Builder::F32(b) => Arc::new(b.finish()),
            Builder::F64(b) => Arc::new(b.finish()),
            Builder::Bool(b) => Arc::new(b.finish()),
            Builder::Str(b) => Arc::new(b.finish()),
            Builder::Date(b) => Arc::new(b.finish()),
        }
    }
}

/// Reuses an emptied vector's allocation for values of another lifetime.
fn recycle<'b>(v: Vec<Val<'_>>, n: usize) -> Vec<Val<'b>> {
    let mut v: Vec<Val<'b>> = emptied(v);
    v.resize(n, Val::Null);
    v
}

/// `v` emptied, its allocation reused for another type of the same size
/// (in practice: the same type with another lifetime).
pub(crate) fn emptied<T, U>(mut v: Vec<T>) -> Vec<U> {
    v.clear();
    v.into_iter().map(|_| unreachable!("emptied")).collect()
}

fn column(a: &ArrayRef) -> Column<'_> {
    use arrow_array::types::*;
    match a.data_type() {
        DataType::Utf8 => Column::Utf8(a.as_string::<i32>()),
        DataType::LargeUtf8 => Column::LargeUtf8(a.as_string::<i64>()),
        DataType::Utf8View => Column::Utf8View(a.as_string_view()),
        DataType::Binary => Column::Binary(a.as_binary::<i32>()),
        DataType::LargeBinary => Column::LargeBinary(a.as_binary::<i64>()),
        DataType::BinaryView => Column::BinaryView(a.as_binary_view()),
        DataType::Int8 => Column::I8(a.as_primitive::<Int8Type>()),
        DataType::Int16 => Column::I16(a.as_primitive::<Int16Type>()),
        DataType::Int32 => Column::I32(a.as_primitive::<Int32Type>()),
        DataType::Int64 => Column::I64(a.as_primitive::<Int64Type>()),
        DataType::UInt8 => Column::U8(a.as_primitive::<UInt8Type>()),
        DataType::UInt16 => Column::U16(a.as_primitive::<UInt16Type>()),
        DataType::UInt32 => Column::U32(a.as_primitive::<UInt32Type>()),
        DataType::UInt64 => Column::U64(a.as_primitive::<UInt64Type>()),
        DataType::Float32 => Column::F32(a.as_primitive::<Float32Type>()),
        DataType::Float64 => Column::F64(a.as_primitive::<Float64Type>()),
        DataType::Boolean => Column::Bool(a.as_boolean()),
        DataType::Date32 => Column::Date32(a.as_primitive::<Date32Type>()),
        _ => Column::Null,
    }
}

fn first_non_ws(cell: &[u8]) -> usize {
    cell.iter().position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r')).unwrap_or(0)
}

impl Evaluator {
    pub fn spec(&self) -> &Spec {
        &self.spec
    }
    pub fn reference_date(&self) -> Ymd {
        self.reference_date
    }
    /// Whether rows are evaluated by the compiled-in Rust version of the
    /// built-in spec rather than the interpreter (the spec's text is
    /// exactly [`PREDICT_AGE`]). Both give the same output.
    pub fn is_native(&self) -> bool {
        self.native
    }
    /// The same evaluator on the interpreter, for comparisons and tests.
    pub fn interpreted(mut self) -> Self {
        self.native = false;
        self
    }

    /// Evaluates the features of `rows` of `batch` (which must have the
    /// schema given to [`Spec::bind`]).
    pub fn evaluate(&self, batch: &RecordBatch, rows: Range<usize>, ws: &mut Workspace) -> Evaluated {
        let prog = &*self.spec.prog;
        let n = rows.len();
        let inputs: Vec<Column<'_>> = self.inputs.iter().map(|&i| column(batch.column(i))).collect();
        let json: Vec<Column<'_>> = self.json.iter().map(|&i| column(batch.column(i))).collect();
        let mut builders: Vec<(bool, Builder)> = prog
            .steps
            .iter()
            .filter_map(|s| match s.kind {
                StepKind::Feature { ty, not_null } => Some((not_null, Builder::new(ty, n))),
                StepKind::Let => None,
            })
            .collect();
        ws.parsers.resize_with(json.len(), CellParser::default);
        ws.tapes.resize_with(json.len(), || Tape(Vec::new()));
        let mut out = Evaluated { columns: vec![], rejects: vec![], rows_rejected: 0, json_bytes: 0 };
        let roots_kind = &prog.json_roots;
        ws.fields.prepare(&prog.field_keys);
        ws.ranks.prepare(&self.spec.prog);
        for row in rows {
            let Workspace { parsers, tapes, roots, slots, locals, fields, arena, ranks, extract } = ws;
            let mut ex = std::mem::take(extract).recycle();
            fields.next_row();
            arena.reset();
            let arena = &*arena;
            // The tapes, emptied and re-lent for this row's lifetime (no allocation).
            let mut live: Vec<Tape<'_>> = std::mem::take(tapes).into_iter().map(Tape::reset).collect();
            let mut rejected = 0u64;
            for (k, (parser, t)) in parsers.iter_mut().zip(live.iter_mut()).enumerate() {
                let text = json[k].str(row);
                let cell = text.map_or_else(|| json[k].bytes(row).unwrap_or_default(), str::as_bytes);
                out.json_bytes += cell.len() as u64;
                // Fast paths, each sure of what it accepts; simd-json decides the rest.
                // Only `len(col)` is read: counted, no tape. The native evaluation
                // reads its few members of education and work_experience straight
                // from the text, no tape either.
                let counted = prog.counted_only & (1 << k) != 0 && roots_kind[k] != JsonRoot::Object;
                let scanned = self.native && k < native::SCANNED;
                // String columns are valid UTF-8 already; binary cells (the
                // Parquet reader leaves JSON columns unchecked) are checked here.
                if (counted || scanned)
                    && let Some(text) = text.or_else(|| simdutf8::basic::from_utf8(cell).ok())
                {
                    if counted && let Some(len) = cell::array_len_text(text) {
                        t.0.clear();
                        t.0.push(simd_json::Node::Array { len, count: 0 });
                        continue;
                    }
                    // read straight from the text: the tape stays empty, and unread
                    if scanned && ex.scan(k, text) {
                        t.0.clear();
                        continue;
                    }
                }
                match parser.parse(cell, t) {
                    Ok(Parsed::Empty) => t.0.clear(),
                    Ok(Parsed::Document) => {
                        let ok = match roots_kind[k] {
                            JsonRoot::Array => matches!(t.0[0], simd_json::Node::Array { .. }),
                            JsonRoot::Object => matches!(t.0[0], simd_json::Node::Object { .. }),
                            JsonRoot::Any => true,
                        };
                        if !ok {
                            let found = Val::from_tape(&t.0).type_name();
                            let want = if roots_kind[k] == JsonRoot::Array { "array" } else { "object" };
                            rejected |= 1 << k;
                            let msg = format!("expected a JSON {want}, found {found} at byte {}", first_non_ws(cell));
                            out.rejects.push(self.reject(&inputs, row, k, msg, cell));
                            t.0.clear();
                        }
                    }
                    Err(e) => {
                        rejected |= 1 << k;
                        out.rejects.push(self.reject(&inputs, row, k, e.to_string(), cell));
                        t.0.clear();
                    }
                }
            }
            if rejected != 0 {
                out.rows_rejected += 1;
            }
            let mut row_roots = recycle(std::mem::take(roots), 0);
            row_roots.extend(live.iter().zip(roots_kind).map(|(t, kind)| match (t.0.is_empty(), kind) {
                (false, _) => Val::from_tape(&t.0[..]),
                (true, JsonRoot::Array) => Val::Json(&cell::EMPTY_ARRAY[..]),
                (true, JsonRoot::Object) => Val::Json(&cell::EMPTY_OBJECT[..]),
                (true, JsonRoot::Any) => Val::Null,
            }));
            let mut row_slots = recycle(std::mem::take(slots), prog.steps.len());
            let mut row_locals = recycle(std::mem::take(locals), prog.n_locals);
            if self.native {
                native::evaluate_row(
                    &prog.keywords,
                    ranks,
                    &mut ex,
                    &inputs,
                    row,
                    &row_roots,
                    self.reference_date,
                    &mut row_slots,
                );
                // a step reading a rejected column is NULL (as the interpreter skips it)
                for (slot, step) in row_slots.iter_mut().zip(&prog.steps) {
                    if step.reads & rejected != 0 {
                        *slot = Val::Null;
                    }
                }
            } else {
                for (i, step) in prog.steps.iter().enumerate() {
                    row_slots[i] = if step.reads & rejected != 0 {
                        Val::Null
                    } else {
                        let (done, _) = row_slots.split_at_mut(i);
                        let mut cx = Cx {
                            prog,
                            inputs: &inputs,
                            row,
                            roots: &row_roots,
                            slots: done,
                            locals: &mut row_locals,
                            fields,
                            ref_date: self.reference_date,
                            arena,
                        };
                        cx.eval(&step.expr)
                    };
                }
            }
            let mut b = 0;
            for (step, v) in prog.steps.iter().zip(&row_slots) {
                if let StepKind::Feature { .. } = step.kind {
                    let (not_null, builder) = &mut builders[b];
                    b += 1;
                    if builder.push(v, *not_null) && *not_null {
                        out.rejects.push(Reject {
                            row,
                            id: self.id(&inputs, row),
                            column: step.name.clone(),
                            message: format!(
                                "{} in a `not null` feature; written as the type's zero value",
                                v.type_name()
                            ),
                            prefix: String::new(),
                        });
                    }
                }
            }
            *extract = ex.recycle();
            *roots = recycle(row_roots, 0);
            *slots = recycle(row_slots, 0);
            *locals = recycle(row_locals, 0);
            *tapes = live.into_iter().map(Tape::reset).collect();
        }
        out.columns = builders.iter_mut().map(|(_, b)| b.finish()).collect();
        out
    }

    fn id(&self, inputs: &[Column<'_>], row: usize) -> String {
        match self.spec.prog.id.map(|i| inputs[i].get(row)) {
            Some(Val::Str(s)) => s.to_string(),
            Some(Val::Int(i)) => i.to_string(),
            _ => String::new(),
        }
    }

    fn reject(&self, inputs: &[Column<'_>], row: usize, k: usize, message: String, cell: &[u8]) -> Reject {
        Reject {
            row,
            id: self.id(inputs, row),
            column: self.spec.prog.json[k].clone(),
            message,
            prefix: Reject::prefix_of(cell),
        }
    }
}
