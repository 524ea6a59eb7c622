"""Symbol extraction with the real tree-sitter grammars, one small real-world-shaped snippet per language."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from tui_agent.index.extract import chunk_lines, extract, skip_reason
from tui_agent.index.languages import QUERIES, language_for, parser_and_query

SNIPPETS = {
    "server.go": (
        "package main\n\nconst MaxItems = 10\n\ntype Server struct {\n\tname string\n}\n\n"
        "func NewServer(name string) *Server {\n\treturn &Server{name: name}\n}\n\n"
        "func (s *Server) Serve() error {\n\treturn run(s.name)\n}\n",
        [("MaxItems", "constant", "const MaxItems"), ("Server", "struct", "type Server struct"),
         ("NewServer", "function", "func NewServer"), ("Serve", "method", "func (s *Server) Serve")],
    ),
    "point.rs": (
        "const LIMIT: usize = 3;\npub struct Point { x: i32 }\n"
        "impl Point {\n    pub fn new(x: i32) -> Self { Point { x } }\n}\n"
        "fn compute(x: i32) -> f64 { x as f64 }\n",
        [("LIMIT", "constant", "const LIMIT"), ("Point", "struct", "pub struct Point"),
         ("new", "method", "pub fn new"), ("compute", "function", "fn compute")],
    ),
    "Account.java": (
        "package bank;\n\npublic class Account {\n    public static final int MAX_BALANCE = 100;\n"
        "    private int balance;\n\n    public void deposit(int amount) {\n        balance += amount;\n    }\n}\n",
        [("Account", "class", "public class Account"), ("MAX_BALANCE", "constant", "MAX_BALANCE = 100"),
         ("deposit", "method", "public void deposit")],
    ),
    "list.c": (
        "#include <stdlib.h>\n#define BUF_SIZE 64\n\ntypedef struct node { int v; } node_t;\n\n"
        "static int *\nmake_list(int n)\n{\n    return malloc(n * sizeof(int));\n}\n",
        [("BUF_SIZE", "constant", "#define BUF_SIZE"), ("node_t", "type", "typedef struct node"),
         ("make_list", "function", "static int *")],
    ),
    "shape.cpp": (
        "namespace geo {\nclass Shape {\npublic:\n    virtual double area() const = 0;\n};\n}\n"
        "template <typename T> T max_of(T a, T b) { return a > b ? a : b; }\n",
        [("Shape", "class", "class Shape"), ("area", "method", "virtual double area"),
         ("max_of", "function", "template <typename T>")],
    ),
    "widget.js": (
        'const API_URL = "http://x";\nconst handler = (req) => process(req);\n'
        "function process(req) { return new Widget(req); }\n"
        "class Widget {\n  render() { return draw(this.x); }\n}\n",
        [("API_URL", "constant", "const API_URL"), ("handler", "function", "const handler"),
         ("process", "function", "function process"), ("Widget", "class", "class Widget"),
         ("render", "method", "render()")],
    ),
    "shape.ts": (
        "interface Shape { area(): number; }\ntype Id = string;\n"
        "export class Circle implements Shape {\n  area(): number { return square(2); }\n}\n"
        "export function square(x: number): number { return x * x; }\n",
        [("Shape", "interface", "interface Shape"), ("Id", "type", "type Id"), ("Circle", "class", "export class"),
         ("square", "function", "export function square")],
    ),
    "app.py": (
        "import os\nMAX_SIZE = 10\n\nclass Base:\n    pass\n\nclass Foo(Base):\n    @property\n"
        "    def value(self) -> int:\n        return helper(1)\n\ndef helper(x):\n    return Foo()\n",
        [("MAX_SIZE", "constant", "MAX_SIZE ="), ("Foo", "class", "class Foo"), ("value", "method", "def value"),
         ("helper", "function", "def helper")],
    ),
}  # fmt: skip


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.split("\n"), 1) if needle in line)


def test_every_language_has_an_offline_grammar_and_a_valid_query():
    for language in QUERIES:
        parser, query = parser_and_query(language)
        assert parser.parse(b"x").root_node is not None
        assert query.pattern_count > 0


@pytest.mark.parametrize("filename", sorted(SNIPPETS))
def test_definitions_found_at_their_lines(filename):
    text, expected = SNIPPETS[filename]
    result = extract(filename, text.encode())
    assert result.language == language_for(filename)
    found = {(s[0], s[1]): s for s in result.symbols}
    for name, kind, marker in expected:
        assert (name, kind) in found, f"{name} ({kind}) not in {sorted(found)}"
        symbol = found[(name, kind)]
        assert symbol[2] == _line_of(text, marker)
        assert symbol[4], "every definition has a signature"


def test_methods_know_their_class_and_references_are_collected():
    text, _ = SNIPPETS["app.py"]
    result = extract("app.py", text.encode())
    value = next(s for s in result.symbols if s[0] == "value")
    assert value[5] == "Foo"
    assert value[4] == "def value(self) -> int"
    refs = {name for name, *_ in result.refs}
    assert {"helper", "Foo", "Base", "property"} <= refs
    go = extract("server.go", SNIPPETS["server.go"][0].encode())
    serve = next(s for s in go.symbols if s[0] == "Serve")
    assert serve[5] == "Server"


def test_real_module_matches_python_ast():
    """Every function and class of the real json.decoder module, at the line ast reports."""
    source = Path(json.__file__).with_name("decoder.py").read_text(encoding="utf-8")
    result = extract("json/decoder.py", source.encode())
    found = {(s[0], s[2]) for s in result.symbols}
    truth = {
        (node.name, node.lineno)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef | ast.ClassDef)
    }
    assert truth and truth <= found


def test_other_text_is_chunked_but_has_no_symbols():
    text = "\n".join(f"line {i} of the notes" for i in range(120))
    result = extract("NOTES.txt", text.encode())
    assert result.language is None and result.symbols == []
    assert result.chunks[0][0] == 1 and result.chunks[-1][1] == 120
    assert all(end - start < 50 for start, end, _ in result.chunks)


def test_binary_generated_and_minified_content_is_skipped():
    assert skip_reason("x.dat", b"abc\0def") == "binary"
    assert skip_reason("x.go", b"// Code generated by protoc. DO NOT EDIT.\npackage x\n") == "generated"
    assert skip_reason("x.js", b"var a=1;" * 2000) == "minified"
    assert skip_reason("x.py", b"def f():\n    return 1\n") == ""
    assert extract("x.bin", b"\0\1\2").symbols == []


def test_chunks_start_at_definitions():
    lines = [f"x{i}" for i in range(100)]
    chunks = chunk_lines(lines, {30, 60})
    starts = [c[0] for c in chunks]
    assert 30 in starts and 60 in starts
    assert chunks[-1][1] == 100


def test_broken_source_still_yields_what_parses():
    result = extract("bad.py", b"def ok():\n    return 1\n\ndef broken(:\n")
    assert ("ok", "function") in {(s[0], s[1]) for s in result.symbols}
