//! A tolerant tokenizer and parser for SMIv1 / SMIv2 MIB module text (RFC 1155, 1212, 2578, 2579).
//!
//! It understands only what name resolution and value rendering need: module headers, IMPORTS,
//! OID value assignments and the macro invocations that carry OIDs (MODULE-IDENTITY,
//! OBJECT-TYPE, NOTIFICATION-TYPE, TRAP-TYPE, groups, compliances…), TEXTUAL-CONVENTIONs and
//! plain type assignments. Everything else is skipped with a warning; no input panics.
//! The output is unresolved: names stay names until `mib.rs` links modules together.

use std::fmt;

/// One token with the line it starts on.
#[derive(Clone, Debug, PartialEq)]
enum Tok {
    /// Identifier or keyword (letters, digits, hyphens).
    Word(String),
    Num(i64),
    /// A double-quoted string (DESCRIPTION text and such).
    Str(String),
    /// `'0F'H` / `'0101'B` literals; their value never matters here.
    Lit,
    /// `::=`, `..`, or a single punctuation character.
    Sym(&'static str),
}

struct Token {
    tok: Tok,
    line: u32,
}

/// A problem in a module: not fatal for the other definitions in the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diag {
    pub module: String,
    pub line: u32,
    pub reason: String,
}

impl fmt::Display for Diag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.module, self.line, self.reason)
    }
}

/// One component of an OID value: `iso`, `3`, or `org(3)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OidPart {
    Name(String),
    Num(u32),
    NamedNum(String, u32),
}

/// The SYNTAX of an object or the right side of a type assignment, names unresolved.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyntaxSpec {
    /// `INTEGER`, `OCTET STRING`, `OBJECT IDENTIFIER`, `BITS`, `SEQUENCE`, `SEQUENCE OF`,
    /// `CHOICE`, or a type name such as `Counter32` or `DisplayString`.
    pub base: String,
    pub enums: Vec<(i64, String)>,
    /// `(SIZE (n))` with a single value.
    pub fixed_size: Option<u32>,
}

/// What macro (or plain `OBJECT IDENTIFIER`) defined an OID.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefKind {
    ObjectIdentifier,
    ModuleIdentity,
    ObjectIdentity,
    ObjectType,
    Notification,
    /// SMIv1 TRAP-TYPE: the OID is `enterprise.0.n`.
    Trap,
    /// Groups, compliances, capabilities: only the OID is kept.
    Other,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OidDef {
    pub name: String,
    pub line: u32,
    pub kind: DefKind,
    pub oid: Vec<OidPart>,
    pub syntax: Option<SyntaxSpec>,
    /// MAX-ACCESS / ACCESS keyword as written.
    pub access: Option<String>,
    /// INDEX names; `true` marks IMPLIED.
    pub index: Vec<(String, bool)>,
    pub augments: Option<String>,
    /// The UNITS clause text; net-snmp prints it after values.
    pub units: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypeDef {
    pub name: String,
    pub line: u32,
    /// True for TEXTUAL-CONVENTION, false for `Name ::= type`.
    pub is_tc: bool,
    pub display_hint: Option<String>,
    pub syntax: SyntaxSpec,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Module {
    pub name: String,
    /// `(from-module, symbols)`.
    pub imports: Vec<(String, Vec<String>)>,
    pub oids: Vec<OidDef>,
    pub types: Vec<TypeDef>,
}

impl Module {
    /// SMIv2 modules win over SMIv1 ones when both define a label (as in net-snmp).
    pub fn is_smiv2(&self) -> bool {
        matches!(
            self.name.as_str(),
            "SNMPv2-SMI" | "SNMPv2-TC" | "SNMPv2-CONF"
        ) || self.imports.iter().any(|(m, _)| m == "SNMPv2-SMI")
    }
}

/// Everything found in one file.
#[derive(Debug, Default)]
pub struct Parsed {
    pub modules: Vec<Module>,
    pub warnings: Vec<Diag>,
}

/// Parses all modules in `text`; `source` names the file in diagnostics before a module
/// name is known. Fails only when no module header is found at all.
pub fn parse(text: &str, source: &str) -> Result<Parsed, Diag> {
    let toks = tokenize(text);
    let mut p = Parser {
        toks,
        pos: 0,
        module: source.to_owned(),
        out: Parsed::default(),
    };
    while p.pos < p.toks.len() {
        if !p.module_header() {
            p.pos += 1;
            continue;
        }
        p.module_body();
    }
    if p.out.modules.is_empty() {
        return Err(Diag {
            module: source.to_owned(),
            line: 1,
            reason: "no `NAME DEFINITIONS ::= BEGIN` module header".into(),
        });
    }
    Ok(p.out)
}

fn tokenize(text: &str) -> Vec<Token> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut line = 1u32;
    while i < b.len() {
        let c = b[i];
        let start_line = line;
        match c {
            b'\n' => {
                line += 1;
                i += 1;
            }
            _ if c.is_ascii_whitespace() => i += 1,
            b'-' if b.get(i + 1) == Some(&b'-') => i = skip_comment(b, i + 2),
            b'"' => {
                let (s, next, lines) = quoted(b, i + 1, b'"');
                line += lines;
                i = next;
                out.push(Token {
                    tok: Tok::Str(s),
                    line: start_line,
                });
            }
            b'\'' => {
                let (_, next, lines) = quoted(b, i + 1, b'\'');
                line += lines;
                i = next;
                // the radix letter (H or B) belongs to the literal
                if b.get(i).is_some_and(|c| c.is_ascii_alphabetic()) {
                    i += 1;
                }
                out.push(Token {
                    tok: Tok::Lit,
                    line: start_line,
                });
            }
            b':' if b[i..].starts_with(b"::=") => {
                i += 3;
                out.push(sym("::=", line));
            }
            b'.' if b.get(i + 1) == Some(&b'.') => {
                i += 2;
                out.push(sym("..", line));
            }
            b'0'..=b'9' => i = number(b, i, false, line, &mut out),
            b'-' if b.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                i = number(b, i + 1, true, line, &mut out)
            }
            _ if c.is_ascii_alphabetic() => {
                let start = i;
                while i < b.len()
                    && (b[i].is_ascii_alphanumeric()
                        || b[i] == b'_'
                        || (b[i] == b'-' && b.get(i + 1) != Some(&b'-')))
                {
                    i += 1;
                }
                out.push(Token {
                    tok: Tok::Word(String::from_utf8_lossy(&b[start..i]).into_owned()),
                    line,
                });
            }
            _ => {
                i += utf8_len(c);
                if let Some(s) = punct(c) {
                    out.push(sym(s, line));
                }
            }
        }
    }
    out
}

fn sym(s: &'static str, line: u32) -> Token {
    Token {
        tok: Tok::Sym(s),
        line,
    }
}

fn punct(c: u8) -> Option<&'static str> {
    Some(match c {
        b'{' => "{",
        b'}' => "}",
        b'(' => "(",
        b')' => ")",
        b'[' => "[",
        b']' => "]",
        b',' => ",",
        b';' => ";",
        b'|' => "|",
        b'.' => ".",
        _ => return None,
    })
}

/// Keeps multi-byte UTF-8 sequences together so skipping never splits a char.
fn utf8_len(c: u8) -> usize {
    match c {
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF7 => 4,
        _ => 1,
    }
}

/// A comment ends at end of line or at the next `--` (X.208).
fn skip_comment(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i] != b'\n' {
        if b[i] == b'-' && b.get(i + 1) == Some(&b'-') {
            return i + 2;
        }
        i += 1;
    }
    i
}

/// Returns the contents, the index after the closing quote, and newlines crossed.
fn quoted(b: &[u8], start: usize, q: u8) -> (String, usize, u32) {
    let mut i = start;
    let mut lines = 0;
    while i < b.len() && b[i] != q {
        if b[i] == b'\n' {
            lines += 1;
        }
        i += 1;
    }
    let s = String::from_utf8_lossy(&b[start..i]).into_owned();
    (s, (i + 1).min(b.len()), lines)
}

fn number(b: &[u8], mut i: usize, neg: bool, line: u32, out: &mut Vec<Token>) -> usize {
    let start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let digits = std::str::from_utf8(&b[start..i]).unwrap_or("0");
    // out-of-range numbers saturate; they only occur in range constraints we ignore
    let v = digits.parse::<i64>().unwrap_or(i64::MAX);
    out.push(Token {
        tok: Tok::Num(if neg { -v } else { v }),
        line,
    });
    i
}

/// Macros whose invocation assigns an OID (`name MACRO ... ::= value`).
fn macro_kind(w: &str) -> Option<DefKind> {
    Some(match w {
        "MODULE-IDENTITY" => DefKind::ModuleIdentity,
        "OBJECT-IDENTITY" => DefKind::ObjectIdentity,
        "OBJECT-TYPE" => DefKind::ObjectType,
        "NOTIFICATION-TYPE" => DefKind::Notification,
        "TRAP-TYPE" => DefKind::Trap,
        "OBJECT-GROUP" | "NOTIFICATION-GROUP" | "MODULE-COMPLIANCE" | "AGENT-CAPABILITIES" => {
            DefKind::Other
        }
        _ => return None,
    })
}

struct Parser {
    toks: Vec<Token>,
    pos: usize,
    module: String,
    out: Parsed,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.tok)
    }

    fn peek_at(&self, n: usize) -> Option<&Tok> {
        self.toks.get(self.pos + n).map(|t| &t.tok)
    }

    fn line(&self) -> u32 {
        self.toks
            .get(self.pos)
            .or(self.toks.last())
            .map_or(1, |t| t.line)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).map(|t| t.tok.clone());
        self.pos += 1;
        t
    }

    fn is_sym(&self, s: &str) -> bool {
        matches!(self.peek(), Some(Tok::Sym(x)) if *x == s)
    }

    fn is_word(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(x)) if x == w)
    }

    fn eat_sym(&mut self, s: &str) -> bool {
        let yes = self.is_sym(s);
        if yes {
            self.pos += 1;
        }
        yes
    }

    fn eat_word(&mut self, w: &str) -> bool {
        let yes = self.is_word(w);
        if yes {
            self.pos += 1;
        }
        yes
    }

    fn word(&mut self) -> Option<String> {
        match self.peek() {
            Some(Tok::Word(w)) => {
                let w = w.clone();
                self.pos += 1;
                Some(w)
            }
            _ => None,
        }
    }

    fn warn(&mut self, line: u32, reason: impl Into<String>) {
        self.out.warnings.push(Diag {
            module: self.module.clone(),
            line,
            reason: reason.into(),
        });
    }

    /// Skips a balanced `open … close` group starting at the current `open`.
    fn skip_group(&mut self, open: &str, close: &str) {
        let mut depth = 0usize;
        while let Some(t) = self.next() {
            match t {
                Tok::Sym(s) if s == open => depth += 1,
                Tok::Sym(s) if s == close => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return;
                    }
                }
                _ => {}
            }
        }
    }

    /// `NAME [{ oid }] DEFINITIONS [tags] ::= BEGIN`; on success the module is open.
    fn module_header(&mut self) -> bool {
        let start = self.pos;
        let Some(name) = self.word() else {
            return false;
        };
        if self.is_sym("{") {
            self.skip_group("{", "}");
        }
        if !self.eat_word("DEFINITIONS") {
            self.pos = start;
            return false;
        }
        while matches!(self.peek(), Some(Tok::Word(w)) if w != "BEGIN") {
            self.pos += 1; // EXPLICIT TAGS, IMPLICIT TAGS, …
        }
        self.eat_sym("::=");
        if !self.eat_word("BEGIN") {
            self.pos = start;
            return false;
        }
        self.module = name.clone();
        self.out.modules.push(Module {
            name,
            ..Module::default()
        });
        true
    }

    fn current(&mut self) -> &mut Module {
        if self.out.modules.is_empty() {
            self.out.modules.push(Module::default());
        }
        let last = self.out.modules.len() - 1;
        &mut self.out.modules[last]
    }

    fn module_body(&mut self) {
        loop {
            let Some(tok) = self.peek().cloned() else {
                let line = self.line();
                self.warn(line, "unexpected end of file (missing END)");
                return;
            };
            let line = self.line();
            match tok {
                Tok::Word(w) if w == "END" => {
                    self.pos += 1;
                    return;
                }
                Tok::Word(w) if w == "IMPORTS" => {
                    self.pos += 1;
                    self.imports();
                }
                Tok::Word(w) if w == "EXPORTS" => {
                    while !matches!(self.next(), Some(Tok::Sym(";")) | None) {}
                }
                Tok::Word(w) => {
                    if !self.statement(w.clone(), line) {
                        self.warn(line, format!("skipped unrecognized construct at `{w}`"));
                        self.resync();
                    }
                }
                other => {
                    self.warn(line, format!("skipped unexpected token {other:?}"));
                    self.resync();
                }
            }
        }
    }

    /// Advances to the next token that can start a statement.
    fn resync(&mut self) {
        self.pos += 1;
        while let Some(t) = self.peek() {
            if let Tok::Word(w) = t {
                if w == "END" || self.starts_statement() {
                    return;
                }
            }
            self.pos += 1;
        }
    }

    fn starts_statement(&self) -> bool {
        let second = self.peek_at(1);
        match second {
            Some(Tok::Sym("::=")) => true,
            Some(Tok::Word(w)) => {
                macro_kind(w).is_some()
                    || w == "MACRO"
                    || (w == "OBJECT"
                        && matches!(self.peek_at(2), Some(Tok::Word(x)) if x == "IDENTIFIER"))
            }
            _ => false,
        }
    }

    fn imports(&mut self) {
        let mut symbols = Vec::new();
        loop {
            match self.next() {
                None | Some(Tok::Sym(";")) => return,
                Some(Tok::Word(w)) if w == "FROM" => {
                    if let Some(m) = self.word() {
                        let syms = std::mem::take(&mut symbols);
                        self.current().imports.push((m, syms));
                    }
                }
                Some(Tok::Word(w)) => symbols.push(w),
                Some(Tok::Sym("{")) => {
                    // `FROM MOD { oid }` module OID form
                    self.pos -= 1;
                    self.skip_group("{", "}");
                }
                _ => {}
            }
        }
    }

    /// One top-level statement starting with word `w`; false when unrecognized.
    fn statement(&mut self, w: String, line: u32) -> bool {
        match self.peek_at(1).cloned() {
            Some(Tok::Word(m)) if m == "MACRO" => {
                // macro definitions (in the SMI modules) are bodies of grammar text
                while !matches!(self.next(), Some(Tok::Word(e)) if e == "END") {
                    if self.pos >= self.toks.len() {
                        break;
                    }
                }
                true
            }
            Some(Tok::Sym("::=")) => {
                self.pos += 2;
                self.type_assignment(w, line);
                true
            }
            Some(Tok::Word(m)) if m == "OBJECT" => {
                if !matches!(self.peek_at(2), Some(Tok::Word(x)) if x == "IDENTIFIER") {
                    return false;
                }
                self.pos += 3;
                if !self.eat_sym("::=") {
                    self.warn(line, format!("`{w} OBJECT IDENTIFIER` without `::=`"));
                    return true;
                }
                self.oid_def(w, line, DefKind::ObjectIdentifier, Body::default());
                true
            }
            Some(Tok::Word(m)) => match macro_kind(&m) {
                Some(kind) => {
                    self.pos += 2;
                    let body = self.macro_body(kind == DefKind::ObjectType, line, &w);
                    self.oid_def(w, line, kind, body);
                    true
                }
                None => false,
            },
            _ => false,
        }
    }

    /// Reads the value after `::=` and records the definition.
    fn oid_def(&mut self, name: String, line: u32, kind: DefKind, body: Body) {
        let oid = if kind == DefKind::Trap {
            match (body.enterprise, self.peek().cloned()) {
                (Some(ent), Some(Tok::Num(n))) if (0..=u32::MAX as i64).contains(&n) => {
                    self.pos += 1;
                    vec![OidPart::Name(ent), OidPart::Num(0), OidPart::Num(n as u32)]
                }
                _ => {
                    self.warn(line, format!("TRAP-TYPE `{name}`: bad ENTERPRISE or value"));
                    return;
                }
            }
        } else {
            match self.oid_value() {
                Ok(o) => o,
                Err(reason) => {
                    self.warn(line, format!("`{name}`: {reason}"));
                    return;
                }
            }
        };
        self.current().oids.push(OidDef {
            name,
            line,
            kind,
            oid,
            syntax: body.syntax,
            access: body.access,
            index: body.index,
            augments: body.augments,
            units: body.units,
        });
    }

    fn oid_value(&mut self) -> Result<Vec<OidPart>, String> {
        if !self.eat_sym("{") {
            return Err("expected `{` starting an OID value".into());
        }
        let mut parts = Vec::new();
        loop {
            match self.next() {
                Some(Tok::Sym("}")) => break,
                Some(Tok::Num(n)) => parts.push(OidPart::Num(arc(n)?)),
                Some(Tok::Word(w)) => {
                    if self.eat_sym("(") {
                        let n = match self.next() {
                            Some(Tok::Num(n)) => arc(n)?,
                            _ => return Err(format!("expected a number in `{w}(…)`")),
                        };
                        if !self.eat_sym(")") {
                            return Err(format!("expected `)` after `{w}({n}`"));
                        }
                        parts.push(OidPart::NamedNum(w, n));
                    } else {
                        parts.push(OidPart::Name(w));
                    }
                }
                Some(t) => return Err(format!("unexpected {t:?} in OID value")),
                None => return Err("end of file inside OID value".into()),
            }
        }
        if parts.is_empty() {
            return Err("empty OID value".into());
        }
        Ok(parts)
    }

    /// Clauses of a macro invocation up to and including `::=`.
    fn macro_body(&mut self, object_type: bool, line: u32, name: &str) -> Body {
        let mut body = Body::default();
        loop {
            let Some(t) = self.peek().cloned() else {
                self.warn(line, format!("`{name}`: end of file before `::=`"));
                return body;
            };
            match t {
                Tok::Sym("::=") => {
                    self.pos += 1;
                    return body;
                }
                Tok::Sym("{") => self.skip_group("{", "}"),
                Tok::Word(w) if w == "END" && !object_type => return body,
                Tok::Word(w) => {
                    self.pos += 1;
                    self.clause(&w, &mut body);
                }
                _ => self.pos += 1,
            }
        }
    }

    fn clause(&mut self, w: &str, body: &mut Body) {
        match w {
            "SYNTAX" if body.syntax.is_none() => body.syntax = Some(self.syntax()),
            "ACCESS" | "MAX-ACCESS" => body.access = self.word(),
            "INDEX" => body.index = self.index_list(),
            "AUGMENTS" => body.augments = self.index_list().into_iter().next().map(|(n, _)| n),
            "ENTERPRISE" => body.enterprise = self.word(),
            "UNITS" => {
                if let Some(Tok::Str(s)) = self.peek().cloned() {
                    self.pos += 1;
                    body.units = Some(s);
                }
            }
            _ => {}
        }
    }

    fn index_list(&mut self) -> Vec<(String, bool)> {
        let mut out = Vec::new();
        if !self.eat_sym("{") {
            return out;
        }
        let mut implied = false;
        loop {
            match self.next() {
                None | Some(Tok::Sym("}")) => return out,
                Some(Tok::Word(w)) if w == "IMPLIED" => implied = true,
                Some(Tok::Word(w)) => {
                    // SMIv1 allows a bare type (`INDEX { OCTET STRING }`): keep its first word
                    if w == "OCTET" || w == "OBJECT" {
                        self.pos += 1;
                    }
                    out.push((w, implied));
                    implied = false;
                }
                _ => {}
            }
        }
    }

    /// `type [constraint] [{ enums }]`.
    fn syntax(&mut self) -> SyntaxSpec {
        let mut spec = SyntaxSpec::default();
        if self.is_sym("[") {
            self.skip_group("[", "]"); // [APPLICATION n]
        }
        let _tagging = self.eat_word("IMPLICIT") || self.eat_word("EXPLICIT");
        let Some(first) = self.word() else {
            return spec;
        };
        spec.base = match first.as_str() {
            "OCTET" if self.eat_word("STRING") => "OCTET STRING".into(),
            "OBJECT" if self.eat_word("IDENTIFIER") => "OBJECT IDENTIFIER".into(),
            "SEQUENCE" if self.eat_word("OF") => {
                let _ = self.word();
                "SEQUENCE OF".into()
            }
            _ => first,
        };
        if matches!(spec.base.as_str(), "SEQUENCE" | "CHOICE") {
            if self.is_sym("{") {
                self.skip_group("{", "}");
            }
            return spec;
        }
        loop {
            if self.is_sym("(") {
                if let Some(n) = self.constraint() {
                    spec.fixed_size = Some(n);
                }
            } else if self.is_sym("{") {
                spec.enums = self.enums();
            } else {
                return spec;
            }
        }
    }

    /// Skips a `( … )` constraint; returns n for `(SIZE (n))`.
    fn constraint(&mut self) -> Option<u32> {
        let start = self.pos;
        self.skip_group("(", ")");
        let end = self.pos.min(self.toks.len());
        let inner: Vec<&Tok> = self.toks[start.min(end)..end]
            .iter()
            .map(|t| &t.tok)
            .collect();
        match inner.as_slice() {
            [Tok::Sym("("), Tok::Word(s), Tok::Sym("("), Tok::Num(n), Tok::Sym(")"), Tok::Sym(")")]
                if s == "SIZE" =>
            {
                u32::try_from(*n).ok()
            }
            _ => None,
        }
    }

    /// `{ label(n), … }` for INTEGER enumerations and BITS.
    fn enums(&mut self) -> Vec<(i64, String)> {
        let mut out = Vec::new();
        self.pos += 1;
        loop {
            match self.next() {
                None | Some(Tok::Sym("}")) => return out,
                Some(Tok::Word(label)) if self.eat_sym("(") => {
                    if let Some(Tok::Num(n)) = self.peek().cloned() {
                        self.pos += 1;
                        out.push((n, label));
                    }
                    self.eat_sym(")");
                }
                _ => {}
            }
        }
    }

    /// `Name ::= TEXTUAL-CONVENTION …` or `Name ::= [APPLICATION n] IMPLICIT type`.
    fn type_assignment(&mut self, name: String, line: u32) {
        if self.eat_word("TEXTUAL-CONVENTION") {
            let mut hint = None;
            loop {
                match self.next() {
                    None => {
                        self.warn(line, format!("TEXTUAL-CONVENTION `{name}` without SYNTAX"));
                        return;
                    }
                    Some(Tok::Word(w)) if w == "DISPLAY-HINT" => {
                        if let Some(Tok::Str(s)) = self.peek().cloned() {
                            self.pos += 1;
                            hint = Some(s);
                        }
                    }
                    Some(Tok::Word(w)) if w == "SYNTAX" => break,
                    _ => {}
                }
            }
            let syntax = self.syntax();
            self.current().types.push(TypeDef {
                name,
                line,
                is_tc: true,
                display_hint: hint,
                syntax,
            });
            return;
        }
        let syntax = self.syntax();
        if syntax.base.is_empty() {
            self.warn(line, format!("type assignment `{name}`: no type"));
            return;
        }
        self.current().types.push(TypeDef {
            name,
            line,
            is_tc: false,
            display_hint: None,
            syntax,
        });
    }
}

fn arc(n: i64) -> Result<u32, String> {
    u32::try_from(n).map_err(|_| format!("OID arc {n} out of range"))
}

#[derive(Default)]
struct Body {
    syntax: Option<SyntaxSpec>,
    access: Option<String>,
    index: Vec<(String, bool)>,
    augments: Option<String>,
    enterprise: Option<String>,
    units: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
TEST-MIB DEFINITIONS ::= BEGIN
IMPORTS
    MODULE-IDENTITY, OBJECT-TYPE, Integer32 FROM SNMPv2-SMI -- comment -- -- another
    DisplayString FROM SNMPv2-TC;

testMib MODULE-IDENTITY
    LAST-UPDATED "200001010000Z"
    ORGANIZATION "x"
    CONTACT-INFO "multi
       line ::= { fake 1 }"
    DESCRIPTION "d"
    ::= { iso org(3) dod(6) 1 4 1 99999 }

Hint ::= TEXTUAL-CONVENTION
    DISPLAY-HINT "255a"
    STATUS current
    DESCRIPTION "x"
    SYNTAX OCTET STRING (SIZE (6))

Small ::= [APPLICATION 9] IMPLICIT INTEGER (0..10)

testEntry OBJECT-TYPE
    SYNTAX TestEntry
    MAX-ACCESS not-accessible
    STATUS current
    DESCRIPTION "e"
    INDEX { testIdx, IMPLIED testName }
    ::= { testMib 1 }

TestEntry ::= SEQUENCE { testIdx Integer32, testName DisplayString }

testState OBJECT-TYPE
    SYNTAX INTEGER { up(1), down(2), neg(-1) }
    MAX-ACCESS read-only
    STATUS current
    DESCRIPTION "s"
    DEFVAL { up }
    ::= { testEntry 3 }
END
"#;

    #[test]
    fn parses_sample() {
        let p = parse(SAMPLE, "sample").unwrap();
        assert_eq!(p.warnings, vec![]);
        let m = &p.modules[0];
        assert_eq!(m.name, "TEST-MIB");
        assert_eq!(m.imports[0].0, "SNMPv2-SMI");
        assert_eq!(m.imports[0].1.len(), 3);
        assert_eq!(m.imports[1].1, vec!["DisplayString"]);
        assert!(m.is_smiv2());
        let mi = &m.oids[0];
        assert_eq!(mi.kind, DefKind::ModuleIdentity);
        assert_eq!(mi.oid[1], OidPart::NamedNum("org".into(), 3));
        let e = &m.oids[1];
        assert_eq!(
            e.index,
            vec![("testIdx".into(), false), ("testName".into(), true)]
        );
        let s = &m.oids[2];
        let syn = s.syntax.as_ref().unwrap();
        assert_eq!(syn.base, "INTEGER");
        assert_eq!(syn.enums[2], (-1, "neg".into()));
        assert_eq!(s.access.as_deref(), Some("read-only"));
        let tc = &m.types[0];
        assert_eq!(tc.display_hint.as_deref(), Some("255a"));
        assert_eq!(tc.syntax.fixed_size, Some(6));
        assert_eq!(m.types[1].syntax.base, "INTEGER");
        assert_eq!(m.types[2].syntax.base, "SEQUENCE");
    }

    #[test]
    fn garbage_does_not_panic() {
        let mut seed = 0x1234_5678_u64;
        let alphabet: &[u8] = b"{}()[]:=.-'\"\n abcXYZ019 OBJECT-TYPE SYNTAX INDEX ::= BEGIN END";
        for len in 0..400 {
            let s: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    alphabet[(seed % alphabet.len() as u64) as usize]
                })
                .collect();
            let _ = parse(&String::from_utf8_lossy(&s), "garbage");
        }
        for cut in 0..SAMPLE.len() {
            if SAMPLE.is_char_boundary(cut) {
                let _ = parse(&SAMPLE[..cut], "truncated");
            }
        }
    }

    #[test]
    fn comment_ends_at_double_dash() {
        let p = parse(
            "M DEFINITIONS ::= BEGIN a OBJECT IDENTIFIER -- x -- ::= { iso 2 } END",
            "t",
        )
        .unwrap();
        assert_eq!(p.modules[0].oids.len(), 1);
    }
}
