//! Spec errors are reported at load time with line and column.

use fleet_spec::{Spec, SpecError};

fn error_at(src: &str) -> (usize, usize, String) {
    match Spec::parse(src) {
        Err(SpecError::Syntax { line, column, message }) => (line, column, message),
        other => panic!("expected a syntax error, got {other:?}"),
    }
}

const HEAD: &str = "input pid: string\njson jobs\n";

#[test]
fn errors_name_line_column_and_what_was_expected() {
    let cases: &[(&str, (usize, usize), &str)] = &[
        ("feature n: int16 = len(jobs", (4, 1), "expected `,` or `)`, found end of file"),
        ("feature n: int16 = len(job)", (3, 24), "unknown name `job`"),
        ("feature n: int12 = len(jobs)", (3, 1), "unknown feature type `int12`"),
        ("feature n: int16 = lenn(jobs)", (3, 20), "unknown function `lenn`"),
        ("feature n: int16 = max(jobs)", (3, 20), "write `max(EXPR for x in ARRAY)`"),
        ("feature n: int16 = len(jobs, jobs)", (3, 20), "len() takes 1 argument(s), found 2"),
        ("feature n: int16 = sum(1 for j in jobs if)", (3, 42), "expected an expression"),
        ("feature n: int16 = \"abc", (3, 20), "unterminated string"),
        ("feature n: int16 = len(jobs) $", (3, 30), "unexpected character `$`"),
        ("feature n: int16 = len(jobs) len(jobs)", (3, 30), "expected end of line"),
        ("feature n: int16 = keyword_rank(nope, \"x\")", (3, 33), "`nope` is not a keyword table"),
        ("keywords k { 1: \"a b c\" }\nfeature n: int8 = keyword_rank(k, \"x\")", (3, 17), "must be one or two words"),
        (
            "keywords k { 1: \"a\", \"Ph.D\"\n 2: \"phd\" }\nfeature n: int8 = keyword_rank(k, \"x\")",
            (4, 5),
            "keyword \"phd\" appears twice in `k`",
        ),
        ("feature pid: string = pid\nfeature pid: string = pid", (4, 1), "`pid` is already defined"),
        ("feature n: int16 = jobs[*]", (3, 24), "`[*]` is only allowed"),
        ("frobnicate x", (3, 1), "expected a statement"),
        ("def f(x) = x + 1\nfeature n: int16 = f(1, 2)", (4, 20), "f() takes 1 argument(s), found 2"),
        ("def f(x) = j.start\nfeature n: int16 = max(f(1) for j in jobs)", (3, 12), "unknown name `j`"),
        ("json x: list\nfeature n: int16 = len(x)", (3, 1), "unknown JSON root `list`"),
        ("id nope\nfeature n: int16 = len(jobs)", (3, 1), "`id nope` must name an `input` column"),
    ];
    for (body, (line, col), msg) in cases {
        let (l, c, m) = error_at(&format!("{HEAD}{body}\n"));
        assert!(m.contains(msg), "{body:?}: message {m:?} lacks {msg:?}");
        assert_eq!((l, c), (*line, *col), "{body:?}: {m}");
    }
}

#[test]
fn the_display_form_names_line_and_column() {
    let e = Spec::parse("input pid: string\n\n  feature x: int8 = (1 +\n 2\n").unwrap_err();
    assert_eq!(e.to_string(), "spec line 5, column 1: expected `)`, found end of file");
}

#[test]
fn a_spec_needs_a_feature() {
    let (l, c, m) = error_at(HEAD);
    assert_eq!((l, c), (1, 1));
    assert!(m.contains("at least one `feature`"));
}

#[test]
fn wrapped_expressions_and_comments_parse() {
    let spec = Spec::parse(
        "# a comment\ninput pid: string # trailing\njson jobs\nfeature n: int16 = least(\n  len(jobs),  # count\n  32767\n)\n",
    )
    .unwrap();
    assert_eq!(spec.output_schema().fields().len(), 1);
    assert_eq!(spec.input_columns(), ["pid", "jobs"]);
}
