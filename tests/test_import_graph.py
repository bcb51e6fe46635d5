"""python/phoenix_npu has no import cycles: every import of a package module by another, at
module level or inside a function (read with ast), points one way."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "python" / "phoenix_npu"


def _modules() -> dict[str, Path]:
    out = {}
    for f in PACKAGE.rglob("*.py"):
        parts = list(f.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


def import_graph() -> dict[str, dict[str, int]]:
    """module -> {imported package module: line}; `from . import x` counts as importing x."""
    mods = _modules()
    graph: dict[str, dict[str, int]] = {m: {} for m in mods}
    for mod, path in mods.items():
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = mod.split(".") if is_pkg else mod.split(".")[:-1]
                    base = base[:len(base) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                names = [target] + [f"{target}.{a.name}" for a in node.names]
            else:
                continue
            for name in names:
                while name and name not in mods:
                    name = name.rpartition(".")[0]
                # a module importing its own package's __init__ (for a submodule) is not an edge
                if name and name != mod and not mod.startswith(name + "."):
                    graph[mod].setdefault(name, node.lineno)
    return graph


def find_cycle(graph: dict[str, dict[str, int]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in graph[m]:
            if state.get(n) == 1:
                return stack[stack.index(n):] + [n]
            if n not in state and (found := visit(n)):
                return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (found := visit(m)):
            return found
    return None


def test_the_graph_sees_function_level_imports():
    graph = import_graph()
    assert "phoenix_npu.whisper.cluster" in graph["phoenix_npu.whisper.batch"]  # inside make_executor
    assert "phoenix_npu.whisper.jobs" in graph["phoenix_npu.whisper.cluster"]
    assert find_cycle({"a": {"b": 1}, "b": {"c": 2}, "c": {"a": 3}}) == ["a", "b", "c", "a"]


def test_no_import_cycles():
    graph = import_graph()
    cycle = find_cycle(graph)
    where = [f"{a} (line {graph[a][b]}) -> {b}" for a, b in zip(cycle, cycle[1:])] if cycle else []
    assert cycle is None, "import cycle:\n  " + "\n  ".join(where)


def _reachable(graph: dict[str, dict[str, int]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo += list(graph.get(m, ()))
    return seen


def test_one_engine_one_path():
    """The CLI and the batch worker reach the faster-whisper engine and never the Optimum
    integration; Ray's side (cluster) knows jobs, not the batch runner."""
    graph = import_graph()
    cli = _reachable(graph, "phoenix_npu.whisper.transcribe_cli")
    assert "phoenix_npu.whisper.faster" in cli and "phoenix_npu.whisper.batch" in cli
    assert "phoenix_npu.whisper.optimum_pipeline" not in cli
    assert "phoenix_npu.whisper.batch" not in _reachable(graph, "phoenix_npu.whisper.cluster")
