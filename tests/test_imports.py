"""The import graph points one way: a test walks every ``pwslib`` and ``studies`` import (top level and inside
functions), fails on a cycle, naming it, and on an import up the layers of docs/architecture.md."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "pwslib"
PACKAGES = ("pwslib", "studies")  # studies import pwslib; pwslib never imports a study


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the pwslib and studies modules it imports anywhere in its source."""
    modules = {module_name(path): path for package in PACKAGES for path in (ROOT / package).rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(PACKAGES):
                imported.add(node.module)
                imported.update(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names if alias.name.startswith(PACKAGES))
        graph[name] = {module for module in imported if module in modules and module != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` as [a, b, ..., a], or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return stack[stack.index(target) :] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_package_has_no_import_cycle():
    graph = import_graph()
    assert "pwslib.train" in graph and "pwslib.metrics" in graph["pwslib.train"]
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


# The layers of docs/architecture.md, bottom first: a module imports only modules of its own layer or below.
LAYERS = {
    "foundations": ("pwslib", "io", "config", "distributed", "data", "model"),
    "method": ("method", "pretraining", "metrics"),  # method/: targets, matching, losses, memory_bank, pseudo_labels
    "runs": ("runs", "train", "evaluate"),
    "figures": ("viz",),  # the package: figures, explorer
    "experiments": ("experiments",),  # the package: tables, schedules, grid, report, analysis, notebook, cli
    "commands": ("reproduce",),
    "studies": ("studies",),  # the whole package: one investigation per module, never imported by pwslib
}


def layer_of(module: str) -> int:
    """The layer index of a module (``pwslib.data.toy`` is in the layer of ``data``, ``studies.*`` in studies)."""
    parts = module.split(".")
    name = "studies" if parts[0] == "studies" else parts[1] if len(parts) > 1 else "pwslib"
    for index, members in enumerate(LAYERS.values()):
        if name in members:
            return index
    raise AssertionError(f"{module} is in no layer of LAYERS: place it (and in docs/architecture.md)")


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{a} -> {b}" for a, targets in graph.items() for b in targets if layer_of(b) > layer_of(a))


def test_every_import_points_down_the_layers():
    assert upward_imports(import_graph()) == []


def test_the_layer_check_catches_an_upward_import():
    assert upward_imports({"pwslib.method.losses": {"pwslib.experiments"}}) == ["pwslib.method.losses -> pwslib.experiments"]
    assert upward_imports({"pwslib.experiments": {"studies.datacard"}}) == ["pwslib.experiments -> studies.datacard"]


def test_the_studies_import_the_library_and_the_library_no_study():
    graph = import_graph()
    assert "studies.recipe" in graph and "pwslib.experiments.grid" in graph["studies.recipe"]
    assert not [f"{a} -> {b}" for a, targets in graph.items() if a.startswith("pwslib") for b in targets if b.startswith("studies")]


def test_the_architecture_page_draws_the_same_layers():
    page = (ROOT / "docs" / "architecture.md").read_text()
    diagram = page.split("```")[1]
    rows = {line.split()[0]: line.split()[1:] for line in diagram.strip().splitlines() if line.strip()}
    for layer, members in LAYERS.items():
        drawn = {word.strip("/").removesuffix(".py") for word in rows.get(layer, [])}
        assert set(members) - {"pwslib"} <= drawn, f"docs/architecture.md's {layer} row lacks {set(members) - drawn}"
    studies = {path.stem for path in (ROOT / "studies").glob("*.py")} - {"__init__"}
    drawn = {word.removesuffix(".py") for word in page.split("```")[1].split() if word.endswith(".py")}
    assert studies <= drawn, f"docs/architecture.md's studies/ row lacks {studies - drawn}"
