"""`tui-agent index`, `tui-agent search` and `tui-agent symbol`: the code index for humans.

The index itself (tree-sitter, SQLite) is imported inside the commands so ``tui-agent --help`` stays instant.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import typer

PATH_HELP = "Workspace directory (default: the current directory)."


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.command("index")(index_command)
    app.command("search")(search_command)
    app.command("symbol")(symbol_command)


def index_command(
    path: Path = typer.Argument(Path("."), help=PATH_HELP, show_default=False),
    status: bool = typer.Option(False, "--status", help="Show what the index holds; do not refresh."),
    workers: int = typer.Option(0, "--workers", "-j", help="Parse processes for a cold build (0: one per core)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
) -> None:
    """Build or refresh the code index of a workspace (tree-sitter symbols and full text)."""
    index = _open(path)
    try:
        if status:
            info = asdict(index.status())
            if as_json:
                typer.echo(json.dumps(info))
                return
            if info["generation"] == 0:
                typer.echo(f"No index yet for {index.root}: run `tui-agent index {path}` to build it.")
                return
            _print_status(info)
            return
        stats = _refresh(index, workers or None, show_progress=not as_json)
        info = asdict(index.status())
        summary = {
            "files": info["files"],
            "symbols": info["symbols"],
            "seconds": round(stats.seconds, 3),
            "added": stats.added,
            "changed": stats.changed,
            "removed": stats.removed,
            "database": info["database"],
        }
        if as_json:
            typer.echo(json.dumps(summary))
            return
        changes = f"{stats.added} added, {stats.changed} changed, {stats.removed} removed"
        typer.echo(
            f"Indexed {summary['files']} files, {summary['symbols']} symbols in {stats.seconds:.2f} s ({changes})."
        )
    finally:
        index.close()


def search_command(
    query: str = typer.Argument(..., help="Words to look for in the code."),
    path: Path = typer.Option(Path("."), "--path", "-C", help=PATH_HELP, show_default=False),
    k: int = typer.Option(5, "--k", "-k", min=1, max=100, help="How many results."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of rich text."),
) -> None:
    """Search the workspace's code (BM25 over code chunks), best matches first."""
    from tui_agent.index.query import search

    if not query.strip():
        _fail("the query is empty; pass words to look for")
    index = _open(path)
    try:
        _refresh(index, None, show_progress=not as_json)
        hits = search(index.conn, index.root, query, k)
    finally:
        index.close()
    if as_json:
        typer.echo(json.dumps([asdict(h) for h in hits]))
        return
    from rich.console import Console
    from rich.syntax import Syntax

    console = Console()
    if not hits:
        console.print(f"No matches for {query!r}.")
        return
    for hit in hits:
        where = f"[bold cyan]{hit.path}:{hit.line}[/]" + (f"  [dim]in {hit.symbol}[/]" if hit.symbol else "")
        console.print(where)
        code = "\n".join(text for _, text in hit.context)
        lexer = Syntax.guess_lexer(hit.path, code)
        first = hit.context[0][0] if hit.context else hit.line
        console.print(
            Syntax(code, lexer, line_numbers=True, start_line=first, highlight_lines={hit.line}, word_wrap=True)
        )


def symbol_command(
    name: str = typer.Argument(..., help="A function, class, method or constant name (Class.method works too)."),
    path: Path = typer.Option(Path("."), "--path", "-C", help=PATH_HELP, show_default=False),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of rich text."),
) -> None:
    """Where a symbol is defined and where it is used."""
    from tui_agent.index.query import find_symbol

    if not name.strip():
        _fail("the name is empty; pass a function, class or constant name")
    index = _open(path)
    try:
        _refresh(index, None, show_progress=not as_json)
        result = find_symbol(index.conn, index.root, name, max_definitions=50, max_references=50)
    finally:
        index.close()
    if as_json:
        typer.echo(json.dumps(asdict(result)))
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    if not result.definitions and not result.references:
        similar = f" Similar names: {', '.join(result.similar)}." if result.similar else ""
        console.print(f"No symbol named {name!r}.{escape(similar)}")
        raise typer.Exit(1)
    if result.definitions:
        table = Table(title=f"Definitions of {escape(name)}", title_justify="left", show_edge=False)
        for column in ("Location", "Kind", "Signature"):
            table.add_column(column, overflow="fold")
        for d in result.definitions:
            kind = f"{d.kind} in {d.scope}" if d.scope else d.kind
            table.add_row(f"{d.path}:{d.line}", kind, escape(d.signature))
        console.print(table)
    else:
        console.print(f"No definition of {escape(name)} in this workspace.")
    if result.references:
        console.print(f"\n[bold]References[/] ({result.total_references} in {result.reference_files} files)")
        for r in result.references:
            console.print(f"  [cyan]{r.path}:{r.line}[/]  {escape(r.text)}")
        more = result.total_references - len(result.references)
        if more > 0:
            console.print(f"  [dim]... {more} more[/]")


def _open(path: Path):
    """Open a workspace's index, turning a bad path or unusable index into a one-line error."""
    from tui_agent.index.store import IndexUnavailable
    from tui_agent.index.workspace import WorkspaceIndex

    try:
        index = WorkspaceIndex(path)
    except IndexUnavailable as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"{path}: {exc.strerror or exc}")
    for notice in index.notices:
        typer.echo(f"Notice: {notice}", err=True)
    return index


def _refresh(index, workers: int | None, show_progress: bool):
    """Refresh with a progress bar on stderr (shown only when there are files to parse)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from tui_agent.index.store import IndexUnavailable

    before = len(index.notices)
    console = Console(stderr=True)
    bar = Progress(
        TextColumn("Indexing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console, transient=True
    )
    task = None

    def progress(done: int, total: int) -> None:
        nonlocal task
        if not show_progress:
            return
        if task is None:
            bar.start()
            task = bar.add_task("index", total=total)
        bar.update(task, completed=done)

    try:
        return index.refresh(progress=progress, workers=workers)
    except IndexUnavailable as exc:
        _fail(str(exc))
    finally:
        if task is not None:
            bar.stop()
        for notice in index.notices[before:]:
            typer.echo(f"Notice: {notice}", err=True)


def _print_status(info: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(show_header=False, show_edge=False, box=None)
    table.add_column(style="bold")
    table.add_column()
    labels = {
        "root": "Workspace",
        "database": "Index file",
        "files": "Files",
        "skipped": "Skipped (binary, generated)",
        "symbols": "Symbols",
        "references": "References",
        "chunks": "Text chunks",
        "bytes": "Size on disk",
        "generation": "Generation",
    }
    for key, label in labels.items():
        value = info[key]
        if key == "bytes":
            value = f"{value / 1e6:.1f} MB"
        table.add_row(label, str(value))
    Console().print(table)


def _fail(message: str) -> None:
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(2)
