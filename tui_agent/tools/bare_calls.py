"""Tool calls that stand alone as statements print their text.

A model often writes ``search_code("Parser")`` on a line of its own, as if the call showed what it found. The tool
returns its text, the statement drops it, the observation comes back empty, and the model goes on to invent the
result (the 1.5B teacher did so in most of its failed codebase runs). Such a call is run as
``print(search_code("Parser"))`` instead, through IPython's AST transformers, so output keeps its order with the
cell's other prints. Calls whose value is used (assigned, printed, passed on) are left alone.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable


class PrintBareToolCalls(ast.NodeTransformer):
    """Wraps each expression statement that is a direct call to one of ``names`` in ``print(...)``."""

    def __init__(self, names: Iterable[str]) -> None:
        super().__init__()
        self.names = frozenset(names)

    def visit_Expr(self, node: ast.Expr) -> ast.AST:
        call = node.value
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id in self.names:
            printed = ast.Call(func=ast.Name(id="print", ctx=ast.Load()), args=[call], keywords=[])
            return ast.fix_missing_locations(ast.copy_location(ast.Expr(value=printed), node))
        return node


def install(shell, names: Iterable[str]) -> None:
    """Add the transformer to an IPython shell once (``install`` of the prelude runs again after a restart)."""
    transformers = shell.ast_transformers
    transformers[:] = [t for t in transformers if not isinstance(t, PrintBareToolCalls)]
    transformers.append(PrintBareToolCalls(names))
