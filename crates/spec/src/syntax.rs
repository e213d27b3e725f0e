//! Lexer and parser of spec files into an untyped syntax tree.
//!
//! A statement is one line; newlines inside `(`, `[` and `{` are ignored, so
//! a long expression can be wrapped inside parentheses. `#` starts a comment.

use crate::SpecError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Ident(String),
    Int(i64),
    Float(f64),
    Str(String),
    Sym(&'static str),
    Newline,
    Eof,
}

impl std::fmt::Display for Tok {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Tok::Ident(s) => write!(f, "`{s}`"),
            Tok::Int(i) => write!(f, "`{i}`"),
            Tok::Float(x) => write!(f, "`{x}`"),
            Tok::Str(s) => write!(f, "{s:?}"),
            Tok::Sym(s) => write!(f, "`{s}`"),
            Tok::Newline => write!(f, "end of line"),
            Tok::Eof => write!(f, "end of file"),
        }
    }
}

const SYMBOLS: [&str; 22] =
    ["==", "!=", "<=", ">=", "=>", "(", ")", "[", "]", "{", "}", ",", ":", ".", "=", "<", ">", "+", "-", "*", "/", "%"];

pub fn lex(src: &str) -> Result<Vec<(Tok, Pos)>, SpecError> {
    let mut out = Vec::new();
    let bytes = src.as_bytes();
    let (mut i, mut line, mut line_start) = (0usize, 1usize, 0usize);
    let mut depth = 0i32;
    let err = |line: usize, col: usize, msg: String| SpecError::Syntax { line, column: col, message: msg };
    while i < bytes.len() {
        let c = bytes[i];
        let pos = Pos { line, column: src[line_start..i].chars().count() + 1 };
        match c {
            b'\n' => {
                if depth == 0 && !matches!(out.last(), Some((Tok::Newline, _)) | None) {
                    out.push((Tok::Newline, pos));
                }
                i += 1;
                line += 1;
                line_start = i;
            }
            b' ' | b'\t' | b'\r' => i += 1,
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'"' => {
                let mut s = String::new();
                i += 1;
                loop {
                    let Some(ch) = src[i..].chars().next() else {
                        return Err(err(pos.line, pos.column, "unterminated string".into()));
                    };
                    i += ch.len_utf8();
                    match ch {
                        '"' => break,
                        '\n' => return Err(err(pos.line, pos.column, "unterminated string".into())),
                        '\\' => {
                            let e = src[i..].chars().next().unwrap_or(' ');
                            i += e.len_utf8();
                            s.push(match e {
                                'n' => '\n',
                                't' => '\t',
                                '"' => '"',
                                '\\' => '\\',
                                _ => return Err(err(pos.line, pos.column, format!("unknown escape `\\{e}`"))),
                            });
                        }
                        _ => s.push(ch),
                    }
                }
                out.push((Tok::Str(s), pos));
            }
            b'0'..=b'9' => {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'_') {
                    i += 1;
                }
                let is_float = i + 1 < bytes.len() && bytes[i] == b'.' && bytes[i + 1].is_ascii_digit();
                if is_float {
                    i += 1;
                    while i < bytes.len() && bytes[i].is_ascii_digit() {
                        i += 1;
                    }
                }
                let text = src[start..i].replace('_', "");
                let tok = if is_float {
                    Tok::Float(text.parse().map_err(|_| err(pos.line, pos.column, format!("bad number `{text}`")))?)
                } else {
                    Tok::Int(
                        text.parse()
                            .map_err(|_| err(pos.line, pos.column, format!("integer `{text}` out of range")))?,
                    )
                };
                out.push((tok, pos));
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                out.push((Tok::Ident(src[start..i].to_string()), pos));
            }
            _ => {
                let Some(sym) = SYMBOLS.iter().find(|s| src[i..].starts_with(**s)) else {
                    let ch = src[i..].chars().next().unwrap_or(' ');
                    return Err(err(pos.line, pos.column, format!("unexpected character `{ch}`")));
                };
                match *sym {
                    "(" | "[" | "{" => depth += 1,
                    ")" | "]" | "}" => depth -= 1,
                    _ => {}
                }
                i += sym.len();
                out.push((Tok::Sym(sym), pos));
            }
        }
    }
    let pos = Pos { line, column: src[line_start..].chars().count() + 1 };
    if depth == 0 && !matches!(out.last(), Some((Tok::Newline, _)) | None) {
        out.push((Tok::Newline, pos));
    }
    out.push((Tok::Eof, pos));
    Ok(out)
}

#[derive(Debug, Clone)]
pub enum Ast {
    Int(i64),
    Float(f64),
    Str(String),
    Bool(bool),
    Null,
    Name(String),
    Field(Box<Node>, String),
    Index(Box<Node>, i64),
    Spread(Box<Node>),
    Neg(Box<Node>),
    Not(Box<Node>),
    Binary(&'static str, Box<Node>, Box<Node>),
    IsNull(Box<Node>, bool),
    Call {
        name: String,
        args: Vec<Node>,
        named: Vec<(String, Node)>,
    },
    /// `f(value for var in seq if cond)`
    Comprehension {
        name: String,
        value: Box<Node>,
        var: String,
        seq: Box<Node>,
        cond: Option<Box<Node>>,
    },
}

#[derive(Debug, Clone)]
pub struct Node {
    pub ast: Ast,
    pub pos: Pos,
}

#[derive(Debug, Clone)]
pub enum Stmt {
    Input { name: String, ty: String, pos: Pos },
    Json { name: String, root: Option<String>, pos: Pos },
    Id { name: String, pos: Pos },
    Keywords { name: String, groups: Vec<(i64, Vec<(String, Pos)>)>, pos: Pos },
    Def { name: String, params: Vec<String>, body: Node, pos: Pos },
    Let { name: String, body: Node, pos: Pos },
    Feature { name: String, ty: String, not_null: bool, body: Node, pos: Pos },
}

pub struct Parser {
    toks: Vec<(Tok, Pos)>,
    at: usize,
}

impl Parser {
    pub fn new(src: &str) -> Result<Self, SpecError> {
        Ok(Self { toks: lex(src)?, at: 0 })
    }

    fn peek(&self) -> &Tok {
        &self.toks[self.at].0
    }
    fn pos(&self) -> Pos {
        self.toks[self.at].1
    }
    fn bump(&mut self) -> (Tok, Pos) {
        let t = self.toks[self.at].clone();
        if self.at + 1 < self.toks.len() {
            self.at += 1;
        }
        t
    }
    fn error<T>(&self, expected: &str) -> Result<T, SpecError> {
        let p = self.pos();
        Err(SpecError::Syntax {
            line: p.line,
            column: p.column,
            message: format!("expected {expected}, found {}", self.peek()),
        })
    }
    fn eat(&mut self, sym: &str) -> bool {
        if matches!(self.peek(), Tok::Sym(s) if *s == sym) {
            self.bump();
            true
        } else {
            false
        }
    }
    fn expect(&mut self, sym: &str) -> Result<(), SpecError> {
        if self.eat(sym) { Ok(()) } else { self.error(&format!("`{sym}`")) }
    }
    fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Tok::Ident(s) if s == kw)
    }
    fn eat_kw(&mut self, kw: &str) -> bool {
        if self.is_kw(kw) {
            self.bump();
            true
        } else {
            false
        }
    }
    fn ident(&mut self, what: &str) -> Result<String, SpecError> {
        match self.peek().clone() {
            Tok::Ident(s) => {
                self.bump();
                Ok(s)
            }
            _ => self.error(what),
        }
    }
    fn end_of_statement(&mut self) -> Result<(), SpecError> {
        match self.peek() {
            Tok::Newline => {
                self.bump();
                Ok(())
            }
            Tok::Eof => Ok(()),
            _ => self.error("end of line"),
        }
    }

    pub fn statements(&mut self) -> Result<Vec<Stmt>, SpecError> {
        let mut out = Vec::new();
        loop {
            while matches!(self.peek(), Tok::Newline) {
                self.bump();
            }
            if matches!(self.peek(), Tok::Eof) {
                return Ok(out);
            }
            let pos = self.pos();
            let kw = self.ident("a statement (`input`, `json`, `id`, `keywords`, `def`, `let` or `feature`)")?;
            let stmt = match kw.as_str() {
                "input" => {
                    let name = self.ident("a column name")?;
                    self.expect(":")?;
                    let ty = self.ident("a type")?;
                    Stmt::Input { name, ty, pos }
                }
                "json" => {
                    let name = self.ident("a column name")?;
                    let root = if self.eat(":") { Some(self.ident("`array`, `object` or `any`")?) } else { None };
                    Stmt::Json { name, root, pos }
                }
                "id" => Stmt::Id { name: self.ident("a column name")?, pos },
                "keywords" => self.keywords(pos)?,
                "def" => {
                    let name = self.ident("a function name")?;
                    self.expect("(")?;
                    let mut params = Vec::new();
                    while !self.eat(")") {
                        params.push(self.ident("a parameter name")?);
                        if !self.eat(",") {
                            self.expect(")")?;
                            break;
                        }
                    }
                    self.expect("=")?;
                    Stmt::Def { name, params, body: self.expr()?, pos }
                }
                "let" => {
                    let name = self.ident("a name")?;
                    self.expect("=")?;
                    Stmt::Let { name, body: self.expr()?, pos }
                }
                "feature" => {
                    let name = self.ident("a feature name")?;
                    self.expect(":")?;
                    let ty = self.ident("a type")?;
                    let not_null = if self.eat_kw("not") {
                        if !self.eat_kw("null") {
                            return self.error("`null` after `not`");
                        }
                        true
                    } else {
                        false
                    };
                    self.expect("=")?;
                    Stmt::Feature { name, ty, not_null, body: self.expr()?, pos }
                }
                _ => {
                    return Err(SpecError::Syntax {
                        line: pos.line,
                        column: pos.column,
                        message: format!(
                            "expected a statement (`input`, `json`, `id`, `keywords`, `def`, `let` or `feature`), found `{kw}`"
                        ),
                    });
                }
            };
            self.end_of_statement()?;
            out.push(stmt);
        }
    }

    /// `keywords NAME { 5: "phd", "ph d"  4: "master" ... }`
    fn keywords(&mut self, pos: Pos) -> Result<Stmt, SpecError> {
        let name = self.ident("a keyword table name")?;
        self.expect("{")?;
        let mut groups = Vec::new();
        loop {
            if self.eat("}") {
                break;
            }
            let rank = match self.peek().clone() {
                Tok::Int(i) => {
                    self.bump();
                    i
                }
                Tok::Sym("-") => {
                    self.bump();
                    match self.bump().0 {
                        Tok::Int(i) => -i,
                        _ => return self.error("a rank (an integer)"),
                    }
                }
                _ => return self.error("a rank (an integer) or `}`"),
            };
            self.expect(":")?;
            let mut words = Vec::new();
            loop {
                let p = self.pos();
                match self.peek().clone() {
                    Tok::Str(s) => {
                        self.bump();
                        words.push((s, p));
                    }
                    _ => return self.error("a keyword string"),
                }
                if !self.eat(",") {
                    break;
                }
            }
            groups.push((rank, words));
        }
        Ok(Stmt::Keywords { name, groups, pos })
    }

    pub fn expr(&mut self) -> Result<Node, SpecError> {
        self.or()
    }
    fn or(&mut self) -> Result<Node, SpecError> {
        let mut l = self.and()?;
        while self.is_kw("or") {
            let pos = self.bump().1;
            let r = self.and()?;
            l = Node { ast: Ast::Binary("or", Box::new(l), Box::new(r)), pos };
        }
        Ok(l)
    }
    fn and(&mut self) -> Result<Node, SpecError> {
        let mut l = self.not()?;
        while self.is_kw("and") {
            let pos = self.bump().1;
            let r = self.not()?;
            l = Node { ast: Ast::Binary("and", Box::new(l), Box::new(r)), pos };
        }
        Ok(l)
    }
    fn not(&mut self) -> Result<Node, SpecError> {
        if self.is_kw("not") {
            let pos = self.bump().1;
            let inner = self.not()?;
            return Ok(Node { ast: Ast::Not(Box::new(inner)), pos });
        }
        self.cmp()
    }
    fn cmp(&mut self) -> Result<Node, SpecError> {
        let l = self.add()?;
        if self.is_kw("is") {
            let pos = self.bump().1;
            let negated = self.eat_kw("not");
            if !self.eat_kw("null") {
                return self.error("`null` after `is`");
            }
            return Ok(Node { ast: Ast::IsNull(Box::new(l), negated), pos });
        }
        for op in ["==", "!=", "<=", ">=", "<", ">"] {
            if matches!(self.peek(), Tok::Sym(s) if *s == op) {
                let pos = self.bump().1;
                let r = self.add()?;
                return Ok(Node { ast: Ast::Binary(op, Box::new(l), Box::new(r)), pos });
            }
        }
        Ok(l)
    }
    fn add(&mut self) -> Result<Node, SpecError> {
        let mut l = self.mul()?;
        loop {
            let op = match self.peek() {
                Tok::Sym(s @ ("+" | "-")) => *s,
                _ => return Ok(l),
            };
            let pos = self.bump().1;
            let r = self.mul()?;
            l = Node { ast: Ast::Binary(op, Box::new(l), Box::new(r)), pos };
        }
    }
    fn mul(&mut self) -> Result<Node, SpecError> {
        let mut l = self.unary()?;
        loop {
            let op = match self.peek() {
                Tok::Sym(s @ ("*" | "/" | "%")) => *s,
                _ => return Ok(l),
            };
            let pos = self.bump().1;
            let r = self.unary()?;
            l = Node { ast: Ast::Binary(op, Box::new(l), Box::new(r)), pos };
        }
    }
    fn unary(&mut self) -> Result<Node, SpecError> {
        if matches!(self.peek(), Tok::Sym("-")) {
            let pos = self.bump().1;
            let inner = self.unary()?;
            return Ok(Node { ast: Ast::Neg(Box::new(inner)), pos });
        }
        self.postfix()
    }
    fn postfix(&mut self) -> Result<Node, SpecError> {
        let mut n = self.primary()?;
        loop {
            let pos = self.pos();
            if self.eat(".") {
                let f = self.ident("a field name after `.`")?;
                n = Node { ast: Ast::Field(Box::new(n), f), pos };
            } else if self.eat("[") {
                let ast = match self.bump().0 {
                    Tok::Sym("*") => Ast::Spread(Box::new(n)),
                    Tok::Int(i) => Ast::Index(Box::new(n), i),
                    Tok::Str(s) => Ast::Field(Box::new(n), s),
                    tok => {
                        if tok != Tok::Eof {
                            self.at -= 1;
                        }
                        return self.error("`*`, an index or a quoted key inside `[]`");
                    }
                };
                self.expect("]")?;
                n = Node { ast, pos };
            } else {
                return Ok(n);
            }
        }
    }
    fn primary(&mut self) -> Result<Node, SpecError> {
        let (tok, pos) = self.bump();
        let ast = match tok {
            Tok::Int(i) => Ast::Int(i),
            Tok::Float(f) => Ast::Float(f),
            Tok::Str(s) => Ast::Str(s),
            Tok::Sym("(") => {
                let inner = self.expr()?;
                self.expect(")")?;
                return Ok(inner);
            }
            Tok::Ident(name) => match name.as_str() {
                "true" => Ast::Bool(true),
                "false" => Ast::Bool(false),
                "null" => Ast::Null,
                _ if self.eat("(") => return self.call(name, pos),
                _ => Ast::Name(name),
            },
            tok => {
                if tok != Tok::Eof {
                    self.at -= 1;
                }
                return self.error("an expression");
            }
        };
        Ok(Node { ast, pos })
    }
    fn call(&mut self, name: String, pos: Pos) -> Result<Node, SpecError> {
        let mut args = Vec::new();
        let mut named = Vec::new();
        if self.eat(")") {
            return Ok(Node { ast: Ast::Call { name, args, named }, pos });
        }
        loop {
            // named argument `name = expr`
            if let (Tok::Ident(n), Some((Tok::Sym("="), _))) = (self.peek().clone(), self.toks.get(self.at + 1)) {
                self.bump();
                self.bump();
                named.push((n, self.expr()?));
            } else {
                let value = self.expr()?;
                if args.is_empty() && named.is_empty() && self.eat_kw("for") {
                    let var = self.ident("a loop variable after `for`")?;
                    if !self.eat_kw("in") {
                        return self.error("`in`");
                    }
                    let seq = self.expr()?;
                    let cond = if self.eat_kw("if") { Some(Box::new(self.expr()?)) } else { None };
                    self.expect(")")?;
                    let ast = Ast::Comprehension { name, value: Box::new(value), var, seq: Box::new(seq), cond };
                    return Ok(Node { ast, pos });
                }
                args.push(value);
            }
            if self.eat(")") {
                break;
            }
            if !self.eat(",") {
                return self.error("`,` or `)`");
            }
        }
        Ok(Node { ast: Ast::Call { name, args, named }, pos })
    }
}
