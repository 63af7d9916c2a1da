"""The layout rules docs/architecture.md states, checked on the source itself: module size, no
import cycle, and which package may depend on which. They read the code with `ast`; nothing is
imported or run."""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = "hangar"
MAX_LINES = 400
# A module over MAX_LINES says why in its docstring, in a sentence starting with this.
REASON_MARKER = "One module because"


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_imports(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    """Imports that run when the module is imported (not those under `if TYPE_CHECKING:`)."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def _resolve(module: str, is_package: bool, node: ast.Import | ast.ImportFrom) -> set[str]:
    if isinstance(node, ast.Import):
        names = {alias.name for alias in node.names}
    else:
        base = node.module or ""
        if node.level:
            anchor = module.split(".") if is_package else module.split(".")[:-1]
            anchor = anchor[: len(anchor) - (node.level - 1)]
            base = ".".join([*anchor, base] if base else anchor)
        # `from pkg import name`: an edge to pkg.name when it is a module, else to pkg.
        names = {f"{base}.{alias.name}" for alias in node.names} | {base}
    return {name for name in names if name in MODULES}


def _import_graph() -> dict[str, set[str]]:
    graph = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        is_package = path.name == "__init__.py"
        edges: set[str] = set()
        for node in _runtime_imports(tree):
            edges |= _resolve(module, is_package, node)
        graph[module] = edges - {module}
    return graph


GRAPH = _import_graph()


def _cycle_from(start: str) -> list[str] | None:
    path: list[str] = []
    on_path: set[str] = set()
    done: set[str] = set()

    def visit(node: str) -> list[str] | None:
        path.append(node)
        on_path.add(node)
        for target in sorted(GRAPH[node]):
            if target in on_path:
                return [*path[path.index(target) :], target]
            if target not in done and (found := visit(target)):
                return found
        on_path.discard(path.pop())
        done.add(node)
        return None

    return visit(start)


def _is_parent_package_edge(cycle: list[str]) -> bool:
    """A package's __init__ importing its own submodule, which imports a sibling through the
    package, is how Python packages work, not a design cycle."""
    return any(b.startswith(a + ".") for a, b in itertools.pairwise(cycle))


def test_no_module_is_longer_than_the_limit_without_a_reason() -> None:
    too_long = []
    for module, path in MODULES.items():
        text = path.read_text()
        lines = text.count("\n")
        docstring = ast.get_docstring(ast.parse(text)) or ""
        if lines > MAX_LINES and REASON_MARKER not in docstring:
            too_long.append(f"{module}: {lines} lines")
    assert too_long == [], f"over {MAX_LINES} lines with no '{REASON_MARKER} ...' at the top"


def test_there_is_no_import_cycle() -> None:
    cycles = []
    for module in MODULES:
        cycle = _cycle_from(module)
        if cycle and not _is_parent_package_edge(cycle):
            cycles.append(" -> ".join(cycle))
    assert cycles == []


# The packages, bottom to top, and the packages each may import besides the top-level modules
# (errors, output, reference, manifest, imagelist, results). Anything not listed is forbidden:
# no package imports one above it.
ALLOWED: dict[str, set[str]] = {
    "sigstore": set(),  # the signature formats: pure
    "registry": set(),  # the OCI client knows nothing of signatures or of the run
    "keys": {"sigstore"},  # key files, passphrases, key backends
    "policy": {"sigstore", "keys"},  # policy.json as containers/image evaluates it
    "attachments": {"sigstore", "registry"},  # the write protocol
    "operations": {"sigstore", "registry", "keys", "policy", "attachments"},
    "runner": set(),  # runs any worker over a list: knows no operation
    # the library API: a list run prepared, logged in, run, summed up
    "api": {"sigstore", "registry", "keys", "policy", "attachments", "operations", "runner"},
    "cli": {"sigstore", "registry", "keys", "policy", "operations", "runner", "api"},
}
TOP_LEVEL = {"errors", "output", "reference", "manifest", "imagelist", "results"}
MAX_TOP_LEVEL_MODULES = 10
# The CLI parses flags, calls hangar.api and prints: what grows is the library, not this.
MAX_CLI_LINES = 1800


def _package(module: str) -> str:
    """hangar.registry.client -> registry; hangar.errors -> errors; hangar -> ''."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_every_package_is_in_the_table() -> None:
    packages = {_package(m) for m, path in MODULES.items() if path.name == "__init__.py"}
    assert packages - {""} == set(ALLOWED)


def test_at_most_ten_modules_sit_directly_in_the_package() -> None:
    top = sorted(p.name for p in (SRC / PACKAGE).glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top


def test_the_cli_stays_thin() -> None:
    lines = sum(
        path.read_text().count("\n")
        for module, path in MODULES.items()
        if _package(module) == "cli"
    )
    assert lines <= MAX_CLI_LINES, f"cli/ has {lines} lines: move the logic into hangar.api"


def test_top_level_modules_import_no_package() -> None:
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in GRAPH.items()
        if _package(module) in TOP_LEVEL
        for target in targets
        if _package(target) not in TOP_LEVEL | {""}
    )
    assert wrong == []


def test_packages_import_only_what_the_table_allows() -> None:
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in GRAPH.items()
        if _package(module) in ALLOWED
        for target in targets
        if _package(target) not in ALLOWED[_package(module)] | TOP_LEVEL | {"", _package(module)}
    )
    assert wrong == []


def _source_imports(module: str) -> set[str]:
    """Every module name a module imports (runtime or not), outside hangar too."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(MODULES[module].read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def test_the_cli_uses_no_http_library_and_no_private_registry_module() -> None:
    wrong = sorted(
        f"{module} imports {name}"
        for module in MODULES
        if _package(module) == "cli"
        for name in _source_imports(module)
        if name.split(".")[0] == "aiohttp" or name.startswith("hangar.registry._")
    )
    assert wrong == []


# What reads files, the environment or the terminal; sigstore/ gets bytes and returns bytes.
_IMPURE_CALLS = {"open", "input", "getpass"}
_IMPURE_ATTRIBUTES = {"environ", "getenv", "stdin", "read_text", "read_bytes", "write_text"}


def test_the_sigstore_package_reads_no_file_environment_or_terminal() -> None:
    found = []
    for module, path in MODULES.items():
        if not module.startswith("hangar.sigstore"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            name = None
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                name = node.func.id if node.func.id in _IMPURE_CALLS else None
            elif isinstance(node, ast.Attribute) and node.attr in _IMPURE_ATTRIBUTES:
                name = node.attr
            elif isinstance(node, ast.alias) and node.name in {"getpass", "termios"}:
                name = node.name
            if name:
                found.append(f"{module}:{getattr(node, 'lineno', '?')} {name}")
    assert found == []


def test_the_checker_sees_a_cycle_and_an_upward_edge() -> None:
    """The graph walk itself: a known edge is found, so an empty result above means something."""
    assert "hangar.registry.client" in GRAPH["hangar.operations.signing"] or any(
        t.startswith("hangar.registry") for t in GRAPH["hangar.operations.signing"]
    )
    GRAPH["hangar.sigstore.payload"].add("hangar.operations.signing")
    try:
        assert _cycle_from("hangar.operations.signing") is not None
    finally:
        GRAPH["hangar.sigstore.payload"].discard("hangar.operations.signing")
