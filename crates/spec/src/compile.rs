//! Syntax tree to program: resolves names, inlines `def`s, checks calls,
//! builds keyword tables and records which JSON columns each step reads.

use std::collections::HashMap;

use crate::SpecError;
use crate::packed::PackedMap;
use crate::syntax::{Ast, Node, Pos, Stmt};
use crate::text::for_each_word;
use crate::value::{Agg, BinOp, Const, Expr, Func};

/// Type of a scalar input column as the spec declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputType {
    String,
    Int,
    Float,
    Bool,
    Date,
}

/// Arrow type of an output feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutType {
    Int8,
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    Bool,
    String,
    Date,
}

/// What a JSON column must hold; anything else is a rejected cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonRoot {
    /// An array (the default); an empty cell behaves like `[]`.
    Array,
    /// An object; an empty cell behaves like `{}`.
    Object,
    /// Any JSON value; an empty cell is NULL.
    Any,
}

#[derive(Debug, Clone)]
pub struct InputDecl {
    pub name: String,
    pub ty: InputType,
}

#[derive(Debug, Clone)]
pub enum StepKind {
    Let,
    Feature { ty: OutType, not_null: bool },
}

#[derive(Debug, Clone)]
pub struct Step {
    pub name: String,
    pub kind: StepKind,
    pub expr: Expr,
    /// Bit i set when the step reads JSON column i, directly or through
    /// another step; a rejected cell in any of them makes the step NULL.
    pub reads: u64,
}

/// Single words and two-word phrases with their ranks, keyed by the bytes
/// of the normalised words ("ph d" is `b"ph d"`).
#[derive(Debug, Clone, Default)]
pub struct KeywordTable {
    pub ranks: PackedMap<i64>,
    pub has_pairs: bool,
    pub max_word: usize,
}

#[derive(Debug, Clone)]
pub struct Program {
    pub inputs: Vec<InputDecl>,
    pub json: Vec<String>,
    pub json_roots: Vec<JsonRoot>,
    pub id: Option<usize>,
    pub keywords: Vec<KeywordTable>,
    pub steps: Vec<Step>,
    pub n_locals: usize,
    /// The member names the spec reads (`x.name`), by id: one scan of an
    /// object finds all of them (see `FieldCache`).
    pub field_keys: Vec<Box<str>>,
    /// Bit i set when JSON column i is only ever counted (`len(col)`):
    /// its cells are checked and counted without building a tape.
    pub counted_only: u64,
}

struct Def {
    params: Vec<String>,
    body: Node,
}

#[derive(Clone, Copy)]
enum Name {
    Input(usize),
    Json(usize),
    Step(usize),
    Keywords(usize),
    Def,
}

struct Compiler {
    prog: Program,
    names: HashMap<String, Name>,
    defs: HashMap<String, Def>,
    scope: Vec<(String, usize)>,
    reads: u64,
    depth: usize,
}

fn err<T>(pos: Pos, message: impl Into<String>) -> Result<T, SpecError> {
    Err(SpecError::Syntax { line: pos.line, column: pos.column, message: message.into() })
}

pub fn compile(stmts: Vec<Stmt>) -> Result<Program, SpecError> {
    let mut c = Compiler {
        prog: Program {
            inputs: vec![],
            json: vec![],
            json_roots: vec![],
            id: None,
            keywords: vec![],
            steps: vec![],
            n_locals: 0,
            field_keys: vec![],
            counted_only: 0,
        },
        names: HashMap::new(),
        defs: HashMap::new(),
        scope: vec![],
        reads: 0,
        depth: 0,
    };
    let mut id_decl = None;
    for stmt in stmts {
        match stmt {
            Stmt::Input { name, ty, pos } => {
                let ty = match ty.as_str() {
                    "string" => InputType::String,
                    "int8" | "int16" | "int32" | "int64" | "int" => InputType::Int,
                    "float32" | "float64" | "float" => InputType::Float,
                    "bool" | "boolean" => InputType::Bool,
                    "date" => InputType::Date,
                    _ => {
                        return err(
                            pos,
                            format!("unknown input type `{ty}`; expected string, int32, int64, float64, bool or date"),
                        );
                    }
                };
                c.declare(&name, Name::Input(c.prog.inputs.len()), pos)?;
                c.prog.inputs.push(InputDecl { name, ty });
            }
            Stmt::Json { name, root, pos } => {
                if c.prog.json.len() == 64 {
                    return err(pos, "at most 64 JSON columns");
                }
                c.prog.json_roots.push(match root.as_deref() {
                    None | Some("array") => JsonRoot::Array,
                    Some("object") => JsonRoot::Object,
                    Some("any") => JsonRoot::Any,
                    Some(other) => {
                        return err(pos, format!("unknown JSON root `{other}`; expected array, object or any"));
                    }
                });
                c.declare(&name, Name::Json(c.prog.json.len()), pos)?;
                c.prog.json.push(name);
            }
            Stmt::Id { name, pos } => id_decl = Some((name, pos)),
            Stmt::Keywords { name, groups, pos } => {
                let table = keyword_table(&name, groups)?;
                c.declare(&name, Name::Keywords(c.prog.keywords.len()), pos)?;
                c.prog.keywords.push(table);
            }
            Stmt::Def { name, params, body, pos } => {
                c.declare(&name, Name::Def, pos)?;
                c.defs.insert(name, Def { params, body });
            }
            Stmt::Let { name, body, pos } => c.step(name, StepKind::Let, body, pos)?,
            Stmt::Feature { name, ty, not_null, body, pos } => {
                let ty = match ty.as_str() {
                    "int8" => OutType::Int8,
                    "int16" => OutType::Int16,
                    "int32" => OutType::Int32,
                    "int64" => OutType::Int64,
                    "float32" => OutType::Float32,
                    "float64" => OutType::Float64,
                    "bool" | "boolean" => OutType::Bool,
                    "string" => OutType::String,
                    "date" => OutType::Date,
                    _ => {
                        return err(
                            pos,
                            format!(
                                "unknown feature type `{ty}`; expected int8, int16, int32, int64, float32, float64, bool, string or date"
                            ),
                        );
                    }
                };
                c.step(name, StepKind::Feature { ty, not_null }, body, pos)?;
            }
        }
    }
    if let Some((name, pos)) = id_decl {
        match c.prog.inputs.iter().position(|i| i.name == name) {
            Some(i) => c.prog.id = Some(i),
            None => return err(pos, format!("`id {name}` must name an `input` column")),
        }
    }
    if !c.prog.steps.iter().any(|s| matches!(s.kind, StepKind::Feature { .. })) {
        return err(Pos { line: 1, column: 1 }, "a spec needs at least one `feature`");
    }
    let mut used = 0;
    for s in &c.prog.steps {
        roots_used(&s.expr, &mut used);
    }
    let all = match c.prog.json.len() {
        0 => 0,
        n => u64::MAX >> (64 - n),
    };
    c.prog.counted_only = all & !used;
    Ok(c.prog)
}

/// Sets bit i of `used` for every use of JSON root i other than `len(root)`.
fn roots_used(e: &Expr, used: &mut u64) {
    match e {
        Expr::Call(Func::Len, args) if matches!(args.as_slice(), [Expr::JsonRoot(_)]) => {}
        Expr::JsonRoot(i) => *used |= 1 << i,
        Expr::Const(_) | Expr::Input(_) | Expr::Local(_) | Expr::Slot(_) => {}
        Expr::Field(x, ..) | Expr::Index(x, _) | Expr::Spread(x) | Expr::Neg(x) | Expr::Not(x) | Expr::IsNull(x, _) => {
            roots_used(x, used)
        }
        Expr::Bin(_, a, b) => {
            roots_used(a, used);
            roots_used(b, used);
        }
        Expr::Call(_, args) | Expr::KeywordRank { args, .. } => args.iter().for_each(|a| roots_used(a, used)),
        Expr::Bind { value, body, .. } => {
            roots_used(value, used);
            roots_used(body, used);
        }
        Expr::Agg { value, seq, cond, .. } => {
            roots_used(value, used);
            roots_used(seq, used);
            if let Some(c) = cond {
                roots_used(c, used);
            }
        }
    }
}

fn keyword_table(name: &str, groups: Vec<(i64, Vec<(String, Pos)>)>) -> Result<KeywordTable, SpecError> {
    let mut t = KeywordTable::default();
    let mut ranks: HashMap<Vec<u8>, i64> = HashMap::new();
    for (rank, words) in groups {
        for (kw, pos) in words {
            let mut parts: Vec<Vec<u8>> = Vec::new();
            let mut long = false;
            for_each_word(&kw, |w| match w {
                Some(w) => parts.push(w.to_vec()),
                None => long = true,
            });
            if long || parts.is_empty() || parts.len() > 2 {
                return err(
                    pos,
                    format!("keyword {kw:?} must be one or two words of a-z and 0-9, each at most 48 characters"),
                );
            }
            t.max_word = t.max_word.max(parts.iter().map(Vec::len).max().unwrap_or(0));
            t.has_pairs |= parts.len() == 2;
            let key = parts.join(&b' ');
            if ranks.insert(key, rank).is_some() {
                return err(pos, format!("keyword {kw:?} appears twice in `{name}`"));
            }
        }
    }
    t.ranks = PackedMap::new(ranks.iter().map(|(k, r)| (k.as_slice(), *r)));
    Ok(t)
}

impl Compiler {
    fn declare(&mut self, name: &str, n: Name, pos: Pos) -> Result<(), SpecError> {
        // A feature may take the name of the input column it copies; later uses mean the feature.
        let shadows_input = matches!((self.names.get(name), n), (Some(Name::Input(_)), Name::Step(_)));
        if name == "ref_date" || (self.names.insert(name.to_string(), n).is_some() && !shadows_input) {
            return err(pos, format!("`{name}` is already defined"));
        }
        Ok(())
    }

    fn step(&mut self, name: String, kind: StepKind, body: Node, pos: Pos) -> Result<(), SpecError> {
        self.reads = 0;
        let expr = self.expr(&body)?;
        let reads = self.reads;
        self.declare(&name, Name::Step(self.prog.steps.len()), pos)?;
        self.prog.steps.push(Step { name, kind, expr, reads });
        Ok(())
    }

    fn local(&mut self) -> usize {
        self.prog.n_locals += 1;
        self.prog.n_locals - 1
    }

    fn expr(&mut self, n: &Node) -> Result<Expr, SpecError> {
        let b = |c: &mut Self, n: &Node| c.expr(n).map(Box::new);
        Ok(match &n.ast {
            Ast::Int(i) => Expr::Const(Const::Int(*i)),
            Ast::Float(f) => Expr::Const(Const::Float(*f)),
            Ast::Str(s) => Expr::Const(Const::Str(s.clone().into())),
            Ast::Bool(v) => Expr::Const(Const::Bool(*v)),
            Ast::Null => Expr::Const(Const::Null),
            Ast::Name(name) => {
                if let Some((_, slot)) = self.scope.iter().rev().find(|(s, _)| s == name) {
                    return Ok(Expr::Local(*slot));
                }
                match self.names.get(name) {
                    Some(Name::Input(i)) => Expr::Input(*i),
                    Some(Name::Json(i)) => {
                        self.reads |= 1 << i;
                        Expr::JsonRoot(*i)
                    }
                    Some(Name::Step(i)) => {
                        self.reads |= self.prog.steps[*i].reads;
                        Expr::Slot(*i)
                    }
                    Some(Name::Keywords(_)) => {
                        return err(n.pos, format!("keyword table `{name}` can only be used in keyword_rank()"));
                    }
                    Some(Name::Def) => return err(n.pos, format!("`{name}` is a function; call it as `{name}(...)`")),
                    None if name == "ref_date" => Expr::Call(Func::RefDate, vec![]),
                    None => {
                        return err(
                            n.pos,
                            format!(
                                "unknown name `{name}`; define it with `input`, `json`, `let` or `feature` above its use"
                            ),
                        );
                    }
                }
            }
            Ast::Field(inner, f) => {
                let keys = &mut self.prog.field_keys;
                let id = keys.iter().position(|k| **k == **f).unwrap_or_else(|| {
                    keys.push(f.clone().into());
                    keys.len() - 1
                });
                Expr::Field(b(self, inner)?, f.clone().into(), id)
            }
            Ast::Index(inner, i) => Expr::Index(b(self, inner)?, *i),
            Ast::Spread(_) => {
                return err(n.pos, "`[*]` is only allowed as an argument of keyword_rank() or after `in`");
            }
            Ast::Neg(inner) => Expr::Neg(b(self, inner)?),
            Ast::Not(inner) => Expr::Not(b(self, inner)?),
            Ast::IsNull(inner, neg) => Expr::IsNull(b(self, inner)?, *neg),
            Ast::Binary(op, l, r) => {
                let op = match *op {
                    "+" => BinOp::Add,
                    "-" => BinOp::Sub,
                    "*" => BinOp::Mul,
                    "/" => BinOp::Div,
                    "%" => BinOp::Rem,
                    "==" => BinOp::Eq,
                    "!=" => BinOp::Ne,
                    "<" => BinOp::Lt,
                    "<=" => BinOp::Le,
                    ">" => BinOp::Gt,
                    ">=" => BinOp::Ge,
                    "and" => BinOp::And,
                    _ => BinOp::Or,
                };
                Expr::Bin(op, b(self, l)?, b(self, r)?)
            }
            Ast::Call { name, args, named } => self.call(n.pos, name, args, named)?,
            Ast::Comprehension { name, value, var, seq, cond } => {
                let kind = match name.as_str() {
                    "max" => Agg::Max,
                    "min" => Agg::Min,
                    "sum" => Agg::Sum,
                    "mean" | "avg" => Agg::Mean,
                    "count" => Agg::Count,
                    "count_distinct" => Agg::CountDistinct,
                    "any" => Agg::Any,
                    "all" => Agg::All,
                    "first" => Agg::First,
                    "max_by" => Agg::MaxBy,
                    "min_by" => Agg::MinBy,
                    _ => {
                        return err(
                            n.pos,
                            format!(
                                "`{name}(... for ... in ...)` is not an aggregate; expected max, min, sum, mean, count, count_distinct, any, all, first, max_by or min_by"
                            ),
                        );
                    }
                };
                let seq = match &seq.ast {
                    Ast::Spread(inner) => self.expr(inner)?,
                    _ => self.expr(seq)?,
                };
                let slot = self.local();
                self.scope.push((var.clone(), slot));
                let value = self.expr(value);
                let cond = cond.as_ref().map(|c| self.expr(c)).transpose();
                self.scope.pop();
                Expr::Agg { kind, value: Box::new(value?), var: slot, seq: Box::new(seq), cond: cond?.map(Box::new) }
            }
        })
    }

    fn call(&mut self, pos: Pos, name: &str, args: &[Node], named: &[(String, Node)]) -> Result<Expr, SpecError> {
        if name == "keyword_rank" {
            return self.keyword_rank(pos, args, named);
        }
        if let Some((n, node)) = named.first() {
            return err(node.pos, format!("{name}() takes no named argument `{n}`"));
        }
        if let Some(def) = self.defs.get(name) {
            if def.params.len() != args.len() {
                return err(pos, format!("{name}() takes {} argument(s), found {}", def.params.len(), args.len()));
            }
            self.depth += 1;
            if self.depth > 64 {
                return err(pos, "functions nested more than 64 deep");
            }
            let (params, body) = (def.params.clone(), def.body.clone());
            let mut binds = Vec::new();
            for (p, a) in params.iter().zip(args) {
                let value = self.expr(a)?;
                binds.push((p.clone(), self.local(), value));
            }
            // A def body sees only its parameters and global names, not the caller's loop variables.
            let saved = std::mem::take(&mut self.scope);
            self.scope = binds.iter().map(|(p, s, _)| (p.clone(), *s)).collect();
            let body = self.expr(&body);
            self.scope = saved;
            self.depth -= 1;
            let mut e = body?;
            for (_, slot, value) in binds.into_iter().rev() {
                e = Expr::Bind { slot, value: Box::new(value), body: Box::new(e) };
            }
            return Ok(e);
        }
        let (f, min, max) = match name {
            "len" => (Func::Len, 1, 1),
            "lower" => (Func::Lower, 1, 1),
            "upper" => (Func::Upper, 1, 1),
            "trim" => (Func::Trim, 1, 1),
            "date" => (Func::Date, 1, 1),
            "year" => (Func::Year, 1, 1),
            "month" => (Func::Month, 1, 1),
            "day" => (Func::Day, 1, 1),
            "months" => (Func::Months, 2, 2),
            "coalesce" => (Func::Coalesce, 1, usize::MAX),
            "greatest" => (Func::Greatest, 1, usize::MAX),
            "least" => (Func::Least, 1, usize::MAX),
            "nullif" => (Func::NullIf, 2, 2),
            "if" => (Func::If, 3, 3),
            "is_object" => (Func::IsObject, 1, 1),
            "is_array" => (Func::IsArray, 1, 1),
            "is_string" => (Func::IsString, 1, 1),
            "is_number" => (Func::IsNumber, 1, 1),
            "abs" => (Func::Abs, 1, 1),
            "int" => (Func::Int, 1, 1),
            "float" => (Func::Float, 1, 1),
            "max" | "min" | "sum" | "mean" | "avg" | "count" | "count_distinct" | "any" | "all" | "first"
            | "max_by" | "min_by" => {
                return err(
                    pos,
                    format!(
                        "{name}() aggregates over an array: write `{name}(EXPR for x in ARRAY)`; for two values use greatest() or least()"
                    ),
                );
            }
            _ => return err(pos, format!("unknown function `{name}`")),
        };
        if args.len() < min || args.len() > max {
            let want = if min == max { format!("{min}") } else { format!("at least {min}") };
            return err(pos, format!("{name}() takes {want} argument(s), found {}", args.len()));
        }
        let args = args.iter().map(|a| self.expr(a)).collect::<Result<_, _>>()?;
        Ok(Expr::Call(f, args))
    }

    fn keyword_rank(&mut self, pos: Pos, args: &[Node], named: &[(String, Node)]) -> Result<Expr, SpecError> {
        let Some(Node { ast: Ast::Name(tname), pos: tpos }) = args.first() else {
            return err(pos, "keyword_rank() takes a keyword table first: keyword_rank(TABLE, text, ..., default = N)");
        };
        let Some(Name::Keywords(table)) = self.names.get(tname).copied() else {
            return err(
                *tpos,
                format!("`{tname}` is not a keyword table; declare it with `keywords {tname} {{ ... }}`"),
            );
        };
        let mut default = None;
        for (n, node) in named {
            if n != "default" {
                return err(node.pos, format!("keyword_rank() takes no named argument `{n}`; expected `default`"));
            }
            default = Some(match &node.ast {
                Ast::Int(i) => *i,
                Ast::Neg(inner) if matches!(inner.ast, Ast::Int(_)) => match inner.ast {
                    Ast::Int(i) => -i,
                    _ => unreachable!(),
                },
                _ => return err(node.pos, "`default` must be an integer"),
            });
        }
        let mut out = Vec::new();
        for a in &args[1..] {
            out.push(match &a.ast {
                Ast::Spread(inner) => Expr::Spread(Box::new(self.expr(inner)?)),
                _ => self.expr(a)?,
            });
        }
        Ok(Expr::KeywordRank { table, args: out, default })
    }
}
