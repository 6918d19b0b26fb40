"""The layers point one way: bot -> handlers -> dialogs -> common; storage -> common; no cycles.

Read from the source with ast (every import, also those inside functions), so nothing has to be
imported to check it.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "handlers", "dialogs", "storage", "common")
# What each layer may not import (a prefix matches the package and its modules).
FORBIDDEN = {
    "dialogs": ("sqlalchemy", "alembic", "redis", "flask", "flask_wtf", "werkzeug", "linebot", "storage", "bot",
                "handlers"),
    "storage": ("dialogs", "handlers", "bot", "flask", "linebot"),
    "common": ("dialogs", "handlers", "bot", "storage", "sqlalchemy", "redis", "flask", "linebot"),
    "handlers": ("bot", "flask", "linebot"),
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            found[_module_name(path)] = path
    return found


def _imports(name: str, path: Path, modules: set[str]) -> set[str]:
    """Every module ``name`` imports (absolute names; ``from x import y`` names x.y when it is a module)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                out.add(full if full in modules else base)
    return out


def _graph() -> dict[str, set[str]]:
    sources = _sources()
    modules = set(sources)
    return {name: _imports(name, path, modules) for name, path in sources.items()}


GRAPH = _graph()


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_a_layer_imports_only_what_it_may(layer):
    wrong = sorted(f"{module} imports {target}" for module, targets in GRAPH.items()
                   if module == layer or module.startswith(layer + ".")
                   for target in targets
                   if any(target == f or target.startswith(f + ".") for f in FORBIDDEN[layer]))
    assert not wrong, "\n".join(wrong)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), and modules importing themselves."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in graph:
                continue
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_there_is_no_import_cycle():
    assert _cycles(GRAPH) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_storage_implements_every_method_the_dialogs_ask():
    import inspect

    from dialogs.repository import Repository
    from storage.repository import StorageRepository

    asked = {name: member for name, member in inspect.getmembers(Repository, inspect.isfunction)
             if not name.startswith("_")}
    assert asked
    for name, declared in asked.items():
        implemented = getattr(StorageRepository, name, None)
        assert callable(implemented), f"StorageRepository has no {name}"
        assert list(inspect.signature(implemented).parameters) == list(inspect.signature(declared).parameters), name


def test_only_the_mock_line_platform_needs_the_chat_extra():
    mock_only = ("aiohttp", "fastjsonschema", "jsonschema")
    wrong = sorted(f"{module} imports {target}" for module, targets in GRAPH.items() if module != "bot.mockline"
                   for target in targets if target.split(".")[0] in mock_only)
    assert not wrong, "\n".join(wrong)
