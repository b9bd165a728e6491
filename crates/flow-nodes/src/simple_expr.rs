//! Simple comparisons evaluated without Rhai. Expressions such as `status == "active" && age >= 18`
//! are the common case of filters and cost Rhai a few hundred nanoseconds per record (a runtime
//! state per evaluation, a string allocated per bound field). An expression made only of field
//! names, string and integer literals, `true`/`false`, comparisons, `&&`, `||` and parentheses is
//! also compiled here, into a tree evaluated straight on the record.
//!
//! The tree answers only where its answer is certainly Rhai's: strings with strings, integers
//! with integers, bools with bools (equality only). Anything else (a missing field, a null, a
//! float, mixed types) makes it give up on that record, and the caller evaluates it with Rhai,
//! which gives the result or the error it always gave.

use std::cmp::Ordering;

use compact_str::CompactString;
use flow_model::{Record, Value};

/// Rhai counts a handful of operations per node of such an expression; the tree does not count,
/// so it is used only when `max_operations` leaves this much room per node and Rhai could not
/// have stopped the evaluation.
const OPERATIONS_PER_NODE: u64 = 8;

/// Words Rhai reserves: an expression using one is left to Rhai.
const KEYWORDS: &[&str] = &[
    "as",
    "break",
    "call",
    "catch",
    "const",
    "continue",
    "curry",
    "debug",
    "do",
    "else",
    "eval",
    "export",
    "false",
    "fn",
    "for",
    "global",
    "if",
    "import",
    "in",
    "is_def_fn",
    "is_def_var",
    "is_shared",
    "let",
    "loop",
    "print",
    "private",
    "return",
    "switch",
    "this",
    "throw",
    "true",
    "try",
    "type_of",
    "until",
    "while",
    "Fn",
];

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(CompactString),
    Str(CompactString),
    Int(i64),
    Bool(bool),
    Cmp(Cmp),
    And,
    Or,
    Open,
    Close,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    fn accepts(self, o: Ordering) -> bool {
        match self {
            Cmp::Eq => o.is_eq(),
            Cmp::Ne => o.is_ne(),
            Cmp::Lt => o.is_lt(),
            Cmp::Le => o.is_le(),
            Cmp::Gt => o.is_gt(),
            Cmp::Ge => o.is_ge(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Field(CompactString),
    Str(CompactString),
    Int(i64),
    Bool(bool),
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    /// A bool on its own (a field or a literal).
    Is(Operand),
    Compare(Operand, Cmp, Operand),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
}

/// A value as the tree compares it.
enum Scalar<'a> {
    Str(&'a str),
    Int(i64),
    Bool(bool),
}

/// An expression compiled for direct evaluation.
#[derive(Debug)]
pub(crate) struct SimpleExpr {
    root: Node,
}

impl SimpleExpr {
    /// The tree of `source` when it is such a simple expression and `max_operations` could not
    /// stop Rhai evaluating it; `None` leaves the expression to Rhai.
    pub(crate) fn compile(source: &str, max_operations: u64) -> Option<Self> {
        let tokens = tokenize(source)?;
        let mut parser = Parser { tokens: &tokens, at: 0 };
        let root = parser.or()?;
        if parser.at != tokens.len() {
            return None;
        }
        (count(&root).saturating_mul(OPERATIONS_PER_NODE) <= max_operations).then_some(Self { root })
    }

    /// The expression's value on `record`, or `None` where Rhai must decide.
    #[inline]
    pub(crate) fn eval(&self, record: &Record) -> Option<bool> {
        eval(&self.root, record)
    }
}

fn count(node: &Node) -> u64 {
    match node {
        Node::Is(_) => 1,
        Node::Compare(..) => 3,
        Node::And(a, b) | Node::Or(a, b) => 1 + count(a) + count(b),
    }
}

fn eval(node: &Node, r: &Record) -> Option<bool> {
    match node {
        Node::Is(operand) => match scalar(operand, r)? {
            Scalar::Bool(b) => Some(b),
            _ => None,
        },
        Node::Compare(a, cmp, b) => {
            let order = match (scalar(a, r)?, scalar(b, r)?) {
                (Scalar::Str(x), Scalar::Str(y)) => x.cmp(y),
                (Scalar::Int(x), Scalar::Int(y)) => x.cmp(&y),
                (Scalar::Bool(x), Scalar::Bool(y)) if matches!(cmp, Cmp::Eq | Cmp::Ne) => x.cmp(&y),
                _ => return None,
            };
            Some(cmp.accepts(order))
        }
        // Both short-circuit, as Rhai's do: the right side is not looked at when the left decides.
        Node::And(a, b) => Some(eval(a, r)? && eval(b, r)?),
        Node::Or(a, b) => Some(eval(a, r)? || eval(b, r)?),
    }
}

#[inline]
fn scalar<'a>(operand: &'a Operand, r: &'a Record) -> Option<Scalar<'a>> {
    Some(match operand {
        Operand::Field(name) => match r.get(name)? {
            Value::String(s) => Scalar::Str(s),
            Value::Int(i) => Scalar::Int(*i),
            Value::Bool(b) => Scalar::Bool(*b),
            _ => return None,
        },
        Operand::Str(s) => Scalar::Str(s),
        Operand::Int(i) => Scalar::Int(*i),
        Operand::Bool(b) => Scalar::Bool(*b),
    })
}

/// The tokens of `source`, or `None` at anything outside the simple subset.
fn tokenize(source: &str) -> Option<Vec<Token>> {
    let bytes = source.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let next = bytes.get(i + 1).copied();
        let (token, len) = match (c, next) {
            (b' ' | b'\t' | b'\n' | b'\r', _) => {
                i += 1;
                continue;
            }
            (b'=', Some(b'=')) => (Token::Cmp(Cmp::Eq), 2),
            (b'!', Some(b'=')) => (Token::Cmp(Cmp::Ne), 2),
            (b'<', Some(b'=')) => (Token::Cmp(Cmp::Le), 2),
            (b'>', Some(b'=')) => (Token::Cmp(Cmp::Ge), 2),
            (b'&', Some(b'&')) => (Token::And, 2),
            (b'|', Some(b'|')) => (Token::Or, 2),
            // Shifts and other operators that start like a comparison are Rhai's.
            (b'<' | b'>', Some(b'<' | b'>')) => return None,
            (b'<', _) => (Token::Cmp(Cmp::Lt), 1),
            (b'>', _) => (Token::Cmp(Cmp::Gt), 1),
            (b'(', _) => (Token::Open, 1),
            (b')', _) => (Token::Close, 1),
            (b'"', _) => {
                let len = bytes[i + 1..].iter().position(|&b| b == b'"')?;
                let text = &source[i + 1..i + 1 + len];
                // Escapes and line continuations are Rhai's to read.
                if text.contains(['\\', '\n', '\r']) {
                    return None;
                }
                (Token::Str(text.into()), len + 2)
            }
            (b'0'..=b'9', _) => {
                let len = bytes[i..].iter().position(|b| !b.is_ascii_digit()).unwrap_or(bytes.len() - i);
                // Floats, hex, separators, exponents and suffixes are Rhai's to read.
                if bytes.get(i + len).is_some_and(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.')) {
                    return None;
                }
                let text = &source[i..i + len];
                if text.len() > 1 && text.starts_with('0') {
                    return None;
                }
                (Token::Int(text.parse().ok()?), len)
            }
            (b'a'..=b'z' | b'A'..=b'Z' | b'_', _) => {
                let len = bytes[i..]
                    .iter()
                    .position(|b| !(b.is_ascii_alphanumeric() || *b == b'_'))
                    .unwrap_or(bytes.len() - i);
                let word = &source[i..i + len];
                let token = match word {
                    "true" => Token::Bool(true),
                    "false" => Token::Bool(false),
                    "_" => return None,
                    w if KEYWORDS.contains(&w) => return None,
                    w => Token::Ident(w.into()),
                };
                (token, len)
            }
            _ => return None,
        };
        out.push(token);
        i += len;
    }
    Some(out)
}

/// Precedence as in Rhai: `||` binds loosest, then `&&`, then comparisons, which do not chain.
struct Parser<'t> {
    tokens: &'t [Token],
    at: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn or(&mut self) -> Option<Node> {
        let mut left = self.and()?;
        while self.peek() == Some(&Token::Or) {
            self.at += 1;
            left = Node::Or(Box::new(left), Box::new(self.and()?));
        }
        Some(left)
    }

    fn and(&mut self) -> Option<Node> {
        let mut left = self.comparison()?;
        while self.peek() == Some(&Token::And) {
            self.at += 1;
            left = Node::And(Box::new(left), Box::new(self.comparison()?));
        }
        Some(left)
    }

    fn comparison(&mut self) -> Option<Node> {
        if self.peek() == Some(&Token::Open) {
            self.at += 1;
            let inner = self.or()?;
            return (self.next()? == Token::Close).then_some(inner);
        }
        let left = self.operand()?;
        let Some(Token::Cmp(cmp)) = self.peek().cloned() else { return Some(Node::Is(left)) };
        self.at += 1;
        Some(Node::Compare(left, cmp, self.operand()?))
    }

    fn operand(&mut self) -> Option<Operand> {
        Some(match self.next()? {
            Token::Ident(name) => Operand::Field(name),
            Token::Str(s) => Operand::Str(s),
            Token::Int(i) => Operand::Int(i),
            Token::Bool(b) => Operand::Bool(b),
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};

    use rhai::{Dynamic, Engine, Scope};

    use super::*;
    use crate::script::to_dynamic;

    fn records() -> Vec<Record> {
        vec![
            Record::from([("status", "active".into()), ("age", 31.into()), ("ok", true.into())]),
            Record::from([("status", "idle".into()), ("age", 17.into()), ("ok", false.into())]),
            Record::from([("status", Value::Null), ("age", Value::Float(20.0)), ("ok", 1.into())]),
            Record::from([("age", "old".into())]),
        ]
    }

    /// Rhai's answer for `source` on `r` (`None` for an error), and the operations it counted.
    fn rhai(source: &str, r: &Record) -> (Option<bool>, u64) {
        let mut engine = Engine::new();
        let ops = Arc::new(AtomicU64::new(0));
        let seen = Arc::clone(&ops);
        engine.on_progress(move |n| {
            seen.fetch_max(n, AtomicOrdering::Relaxed);
            None
        });
        let mut scope = Scope::new();
        for (k, v) in r.iter() {
            scope.push_constant_dynamic(k.as_str(), to_dynamic(v));
        }
        let value = engine.eval_expression_with_scope::<Dynamic>(&mut scope, source);
        (value.ok().and_then(|v| v.as_bool().ok()), ops.load(AtomicOrdering::Relaxed))
    }

    #[test]
    fn answers_only_what_rhai_answers_the_same_way() {
        let sources = [
            "status == \"active\"",
            "status != \"active\"",
            "\"b\" < status",
            "age >= 18 && status == \"active\"",
            "age < 18 || (status == \"idle\" && ok)",
            "ok == true || age > 100",
            "ok",
            "age > 20 && age <= 31 && status >= \"a\"",
            "(age > 20 || age < 10) && (ok || status < \"b\")",
        ];
        for source in sources {
            let expr = SimpleExpr::compile(source, 10_000).expect(source);
            for (i, r) in records().iter().enumerate() {
                let (expected, ops) = rhai(source, r);
                assert!(ops <= count(&expr.root) * OPERATIONS_PER_NODE, "{source}: {ops} operations");
                if let Some(fast) = expr.eval(r) {
                    assert_eq!(Some(fast), expected, "{source} on record {i}");
                }
            }
        }
        let active = SimpleExpr::compile("status == \"active\"", 10_000).expect("simple");
        assert_eq!(active.eval(&records()[0]), Some(true));
        // A null, another type or a missing field is Rhai's to judge.
        assert_eq!(active.eval(&records()[2]), None);
        assert_eq!(active.eval(&records()[3]), None);
    }

    #[test]
    fn leaves_everything_else_to_rhai() {
        for source in [
            "age + 1 > 2",
            "age > 1.5",
            "age > -1",
            "age > 0x10",
            "age > 1_000",
            "name == \"a\\\"b\"",
            "a == b == c",
            "a < = b",
            "a << 2 == 4",
            "!ok",
            "a & b",
            "a | b",
            "x.y == 1",
            "f(x)",
            "this == 1",
            "a == 'c'",
            "(a == 1",
            "a == 1)",
            "a ==",
            "",
            "// comment\na == 1",
            "a == 1; b",
            "é == 1",
            "a == 01",
        ] {
            assert!(SimpleExpr::compile(source, 10_000).is_none(), "{source}");
        }
        // Rhai could stop this one for its operations: left to Rhai.
        assert!(SimpleExpr::compile("a == 1 && b == 2", 10).is_none());
        assert!(SimpleExpr::compile("a == 1 && b == 2", 100).is_some());
    }
}
