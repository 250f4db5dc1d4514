"""The package's shape: imports flow one way between its folders, with no circle between
modules and no private name taken from another module."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "lpmatte"

# a module may import from its own layer's packages and from any lower layer
LAYERS = [
    {"version"},
    {"errors", "paths", "files", "trimap", "devices", "metrics"},
    {"model", "media"},
    {"data"},
    {"inference"},
    {"api"},
    {"apps", "evaluation", "training", "serve"},
    {"cli"},
    {"__init__", "__main__"},
]

# packages that never import each other, whatever their layers: the paper's network knows
# nothing of image files or training data, so it can be read (and exported) on its own
APART = [{"model", "media"}, {"model", "data"}]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path):
    """(imported module, names) for every import statement, at any depth of the file."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("lpmatte"):
            yield node.module, [alias.name for alias in node.names]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("lpmatte"):
                    yield alias.name, []


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    edges = {}
    for name, path in modules.items():
        targets = set()
        for module, names in imports_of(path):
            for imported in [f"{module}.{n}" for n in names] + [module]:
                if imported in modules:  # `from pkg import submodule` or a module itself
                    targets.add(imported)
                    break
        edges[name] = targets - {name}
    return edges


def package_of(module: str) -> str:
    return module.split(".")[1] if "." in module else "__init__"


def layer_of(module: str) -> int:
    return next(i for i, names in enumerate(LAYERS) if package_of(module) in names)


def test_no_import_circle_between_modules():
    edges, state, path = graph(), {}, []

    def visit(node):
        state[node] = "open"
        path.append(node)
        for target in edges.get(node, ()):
            if state.get(target) == "open":
                circle = path[path.index(target):] + [target]
                raise AssertionError("import circle: " + " -> ".join(circle))
            if target not in state:
                visit(target)
        state[node] = "done"
        path.pop()

    for node in sorted(edges):
        if node not in state:
            visit(node)


def test_imports_flow_down_the_layers():
    wrong = [f"{source} imports {target}" for source, targets in graph().items()
             for target in targets if layer_of(target) > layer_of(source)]
    assert not wrong, "\n".join(sorted(wrong))


def test_packages_kept_apart_import_nothing_of_each_other():
    wrong = [f"{source} imports {target}" for source, targets in graph().items()
             for target in targets
             if any({package_of(source), package_of(target)} == pair for pair in APART)]
    assert not wrong, "\n".join(sorted(wrong))


def test_every_package_has_a_layer():
    packages = {package_of(module) for module in graph()}
    assert packages <= set().union(*LAYERS), packages - set().union(*LAYERS)


def test_no_private_name_crosses_modules():
    crossing = []
    for path in PACKAGE.rglob("*.py"):
        for module, names in imports_of(path):
            crossing += [f"{module_name(path)}: {module}.{n}" for n in names
                         if n.startswith("_") and not n.startswith("__")]
    assert not crossing, "\n".join(crossing)
