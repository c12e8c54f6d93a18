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


def imported_modules(source: str, module: str, is_package: bool = False) -> set[str]:
    """Every module ``source`` (the text of ``module``) names in an import: absolute, relative (``from . import x``,
    resolved against ``module``'s package) or dynamic (``importlib.import_module("...")`` or ``__import__("...")``
    with a literal name), each with the names it takes from it (``from a import b`` -> ``a`` and ``a.b``)."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package[: len(package) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            imported.add(base)
            imported.update(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            function = node.func
            name = function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", "")
            if name in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                imported.add(node.args[0].value)
    return {name for name in imported if name.startswith(PACKAGES)}


def import_graph() -> dict[str, set[str]]:
    """Module -> the pwslib and studies modules it imports anywhere in its source."""
    modules = {module_name(path): path for package in PACKAGES for path in (ROOT / package).rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        imported = imported_modules(path.read_text(), name, is_package=path.name == "__init__.py")
        graph[name] = {module for module in imported if module in modules and module != name}
    return graph


def test_relative_and_dynamic_imports_are_seen():
    """A planted upward import in each form the graph must not miss."""
    planted = (
        "from ..experiments import grid\n"
        "from . import targets\n"
        "def late():\n"
        "    import importlib\n"
        "    importlib.import_module('studies.datacard')\n"
        "    __import__('pwslib.reproduce')\n"
    )
    seen = imported_modules(planted, "pwslib.method.losses")
    assert {"pwslib.experiments", "pwslib.experiments.grid", "pwslib.method.targets", "studies.datacard"} <= seen
    assert "pwslib.reproduce" in seen
    graph = {"pwslib.method.losses": seen & {"pwslib.experiments.grid", "studies.datacard", "pwslib.reproduce"}}
    assert upward_imports(graph) == [
        "pwslib.method.losses -> pwslib.experiments.grid",
        "pwslib.method.losses -> pwslib.reproduce",
        "pwslib.method.losses -> studies.datacard",
    ]
    assert imported_modules("from .toy import PRESETS\n", "pwslib.data", is_package=True) == {
        "pwslib.data.toy",
        "pwslib.data.toy.PRESETS",
    }


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
    "foundations": ("pwslib", "io", "schedule", "config", "distributed", "data", "model"),
    "method": ("method", "pretraining", "metrics"),  # method/: targets, matching, losses, memory_bank, pseudo_labels
    "runs": ("command_line", "runs", "assembly", "train", "evaluate"),
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


def test_every_test_file_the_docs_cite_exists():
    """The recipes name the test that fails while a step is missing: a moved test must not leave a dead name."""
    import re

    cited = set()
    for page in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]:
        cited.update(re.findall(r"`(tests/[\w/]+\.py)", page.read_text()))
    assert "tests/method/test_losses.py" in cited
    assert sorted(path for path in cited if not (ROOT / path).exists()) == []
