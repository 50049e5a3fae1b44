"""The shape of the code: layers, no import cycles, modules of a readable size, one error root.

The import graph is read from the source with ``ast`` (imports inside functions
count too), so a lazy import cannot hide a cycle or a dependency that runs
upwards. docs/architecture.md draws the same layers.
"""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
import pkgutil
from pathlib import Path

import appliance
import installer
from appliance.errors import ApplianceError

REPO = Path(__file__).resolve().parents[2]

#: Bottom to top. A module may import its own layer and the layers below it, never one
#: above; the longest prefix that matches a module's name places it ("appliance" alone
#: places only its __init__, so a new module must be given a layer here).
LAYERS: tuple[tuple[str, ...], ...] = (
    # The foundation: no part of the appliance, only what every part uses.
    ("appliance", "appliance.errors", "appliance.config", "appliance.hardware",
     "appliance.tiers", "appliance.logs", "appliance.systemd", "appliance.tasks",
     "appliance.jsonbounds", "appliance.progress", "appliance.remote_model"),
    # What the parts build on: trust, the default models, the node and its components.
    ("appliance.security", "appliance.models", "appliance.node"),
    # Talking to peers.
    ("appliance.net",),
    # The parts, each behind its own interface.
    ("appliance.llm", "appliance.world", "appliance.discovery", "appliance.voice",
     "appliance.tools", "appliance.agent", "appliance.intents", "appliance.wyoming"),
    # The HTTP server over them, with its middleware.
    ("appliance.web",),
    # The entry points: the processes' mains; nothing imports these but each other.
    ("appliance.daemon", "appliance.composition", "appliance.cli", "appliance.cli_models",
     "appliance.cli_voice", "appliance.cli_chat", "appliance.cli_pair", "appliance.cli_trust",
     "appliance.doctor",
     "appliance.llm.rpc.host",
     "installer"),
)
ROOTS = ("appliance", "installer")
#: Third-party packages of the HTTP server and client, which security/ does without.
HTTP_PACKAGES = {"aiohttp", "yarl", "multidict"}
#: Parts handed their collaborators by the daemon, which look up none through Node.get.
LOCATOR_FREE = ("appliance.voice",)
#: Lines a module may have ("about 400": a few over is not worth a split of its own); a
#: state machine is read as one piece, so it may be longer.
MAX_LINES = 420
LONGER = {
    "appliance/voice/pipeline.py": 650,  # the voice state machine
}


def test_every_error_of_the_project_derives_from_appliance_error() -> None:
    strays = []
    for name in _module_names():
        module = importlib.import_module(name)
        for cls in vars(module).values():
            if inspect.isclass(cls) and issubclass(cls, BaseException) \
                    and cls.__module__ == name and not issubclass(cls, ApplianceError):
                strays.append(f"{name}.{cls.__name__}")
    assert strays == [], "not under appliance.errors.ApplianceError: " + ", ".join(strays)


def test_no_module_imports_upwards() -> None:
    assert _upward(_graph()) == [], "\n".join(_upward(_graph()))


def test_every_module_has_a_layer() -> None:
    assert [m for m in _graph() if _layer(m) < 0] == []


def test_the_modules_have_no_import_cycle() -> None:
    cycles = _cycles(_graph())
    assert cycles == [], "\n".join(" -> ".join(c) for c in cycles)


def test_the_packages_of_appliance_have_no_import_cycle() -> None:
    """agent -> intents -> agent is a cycle even when no two modules import each other."""
    cycles = _cycles(_packages(_graph()))
    assert cycles == [], "\n".join(" -> ".join(c) for c in cycles)


def test_security_needs_no_http_library() -> None:
    """Trust is keys, certificates and signatures; the HTTP middleware lives in web/."""
    uses = {m: sorted(_external(m) & HTTP_PACKAGES) for m in _sources()
            if m.startswith("appliance.security")}
    assert {m: u for m, u in uses.items() if u} == {}


def test_voice_is_handed_its_collaborators() -> None:
    """The voice part gets the reply source, the timers and its settings from the daemon;
    it looks nothing up by name (``node.get("agent")``)."""
    lookups = {m: _node_lookups(m) for m in _sources() if m.startswith(LOCATOR_FREE)}
    assert {m: found for m, found in lookups.items() if found} == {}


def test_no_module_is_over_400_lines_but_the_voice_state_machine() -> None:
    sizes = {str(p.relative_to(REPO)): len(p.read_text().splitlines())
             for p in _sources().values()}
    too_long = {path: n for path, n in sizes.items() if n > LONGER.get(path, MAX_LINES)}
    assert too_long == {}, too_long


def test_the_checks_catch_an_upward_import_a_cycle_and_http_in_security() -> None:
    """The checks above can fail: made-up code with each fault is caught."""
    graph = {"appliance.config": {"appliance.web.app"}, "appliance.web.app": {"appliance.node"},
             "appliance.node": {"appliance.web.app"},
             "appliance.agent.loop": {"appliance.intents.a"},
             "appliance.intents.a": {"appliance.agent.tools"}, "appliance.agent.tools": set()}
    assert _upward(graph) == ["appliance.config (layer 0) imports appliance.web.app (layer 4)",
                              "appliance.node (layer 1) imports appliance.web.app (layer 4)"]
    assert _cycles(graph) == [["appliance.node", "appliance.web.app", "appliance.node"]]
    assert ["appliance.agent", "appliance.intents", "appliance.agent"] in _cycles(_packages(graph))
    tree = ast.parse("import ssl\ndef f():\n    from aiohttp import web\nfrom . import keys\n")
    names = _imported_names("appliance.security.made_up", False, tree)
    assert names == {"ssl", "aiohttp.web", "appliance.security.keys"}
    assert _layer("appliance") == 0 and _layer("appliance.made_up") == -1
    tree = ast.parse("def f(self):\n    self.node.get('agent')\n    d.get('agent')\n")
    assert _lookups_in(tree) == ["self.node.get('agent')"]


# ---------------------------------------------------------------- helpers


def _module_names() -> list[str]:
    names = []
    for package in (appliance, installer):
        names.append(package.__name__)
        names += [m.name for m in pkgutil.walk_packages(package.__path__,
                                                        package.__name__ + ".")]
    return names


def _layer(module: str) -> int:
    best, found = -1, ""
    for i, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            inside = module.startswith(prefix + ".") and prefix != "appliance"
            if (module == prefix or inside) and len(prefix) > len(found):
                best, found = i, prefix
    return best


def _upward(graph: dict[str, set[str]]) -> list[str]:
    return [f"{a} (layer {_layer(a)}) imports {b} (layer {_layer(b)})"
            for a, targets in sorted(graph.items()) for b in sorted(targets)
            if _layer(b) > _layer(a)]


@functools.cache
def _sources() -> dict[str, Path]:
    """Module name -> its file, for every module of the project."""
    files: dict[str, Path] = {}
    for package in ROOTS:
        for path in (REPO / package).rglob("*.py"):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            files[".".join(parts)] = path
    return files


@functools.cache
def _all_imports(module: str) -> frozenset[str]:
    path = _sources()[module]
    tree = ast.parse(path.read_text(), str(path))
    return frozenset(_imported_names(module, path.name == "__init__.py", tree))


def _external(module: str) -> set[str]:
    """The top-level names of what ``module`` imports from outside the project."""
    return {name.split(".")[0] for name in _all_imports(module)
            if name.split(".")[0] not in ROOTS}


def _graph() -> dict[str, set[str]]:
    """Module -> the project's modules it imports (anywhere in its code)."""
    files = _sources()
    graph: dict[str, set[str]] = {}
    for name in files:
        targets: set[str] = set()
        for target in _all_imports(name):
            while target and target not in files:
                target = target.rpartition(".")[0]
            if target and target != name:
                targets.add(target)
        graph[name] = targets
    return graph


def _packages(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The graph between appliance's top-level modules and packages (appliance.X); a
    process's main inside a package (llm.rpc.host) counts with the entry points, not it."""
    def top(module: str) -> str:
        return ".".join(module.split(".")[:2])

    out: dict[str, set[str]] = {}
    for a, targets in graph.items():
        if a.startswith("appliance.") and _layer(a) != len(LAYERS) - 1:
            out.setdefault(top(a), set()).update(
                top(b) for b in targets if b.startswith("appliance.") and top(b) != top(a))
    return out


def _imported_names(module: str, is_package: bool, tree: ast.AST) -> set[str]:
    """Every absolute name ``module`` imports, at the top or inside a function; for
    ``from X import y`` both X.y (a module, if it is one) and X."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                here = module.split(".") if is_package else module.split(".")[:-1]
                here = here[:len(here) - (node.level - 1)]
                base = ".".join(here + ([base] if base else []))
            files = _sources()
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                names.add(sub if sub in files or not _is_project(base) else base)
    return names


def _node_lookups(module: str) -> list[str]:
    path = _sources()[module]
    return _lookups_in(ast.parse(path.read_text(), str(path)))


def _lookups_in(tree: ast.AST) -> list[str]:
    """Calls ``<something node>.get("name")``: a component found by name."""
    return [ast.unparse(node) for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get" and "node" in ast.unparse(node.func.value).lower()
            and node.args and isinstance(node.args[0], ast.Constant)]


def _is_project(name: str) -> bool:
    return name.split(".")[0] in ROOTS


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle through each strongly connected group of modules (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return [_path_through(graph, group) for group in groups]


def _path_through(graph: dict[str, set[str]], group: list[str]) -> list[str]:
    """A cycle inside ``group``, from its first module back to it (breadth first)."""
    start, members = group[0], set(group)
    came: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph.get(v, set()) & members):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(came[path[-1]])
                    return [*reversed(path), start]
                if w not in came:
                    came[w] = v
                    nxt.append(w)
        frontier = nxt
    return group
