"""The shape of the code, machine-checked: the layer contract, no import cycles, the linter, thin commands."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGE = REPO_ROOT / "gan_translate"
#: Command functions parse, call the library and report; longer ones hide library work (issue 14).
MAX_COMMAND_FUNCTION_LINES = 60


def _tool(name: str) -> str:
    """A console script of this environment (the venv's, not whatever is first on PATH)."""
    beside = Path(sys.executable).with_name(name)
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: pip install -e '.[dev]'")
    return found


def test_layer_contract_holds() -> None:
    """pyproject.toml's [tool.importlinter] layers: commands on top, nothing imports a layer above its own
    (imports inside functions count too)."""
    result = subprocess.run([_tool("lint-imports")], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_no_import_cycles() -> None:
    import grimp

    graph = grimp.build_graph("gan_translate")
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(module: str) -> None:  # Tarjan's strongly connected components
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    assert not cycles, f"import cycles: {cycles}"


def test_ruff_finds_nothing() -> None:
    targets = ["gan_translate", "tests", "benchmarks", "datasets", "train.py"]
    result = subprocess.run([_tool("ruff"), "check", "--output-format", "concise", *targets], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def _long_functions(folder: Path, limit: int, root: Path = REPO_ROOT) -> list[str]:
    found = []
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                if length > limit:
                    found.append(f"{path.relative_to(root)}:{node.lineno} {node.name} ({length} lines)")
    return found


def test_command_functions_are_short() -> None:
    assert not _long_functions(PACKAGE / "commands", MAX_COMMAND_FUNCTION_LINES)


def test_the_length_check_measures_functions(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(70))
    (tmp_path / "long.py").write_text(f"def long():\n{body}\n\n\ndef short():\n    return 1\n")
    assert _long_functions(tmp_path, MAX_COMMAND_FUNCTION_LINES, root=tmp_path) == ["long.py:1 long (71 lines)"]


def test_architecture_doc_names_every_module() -> None:
    """docs/ARCHITECTURE.md is the map: every module and package of the library is on it."""
    text = (REPO_ROOT / "docs" / "ARCHITECTURE.md").read_text()
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "__init__.py" and path.parent == PACKAGE:
            continue
        name = path.parent.name + "/" if path.name == "__init__.py" else path.name
        if name not in text:
            missing.append(str(path.relative_to(PACKAGE)))
    assert not missing, f"docs/ARCHITECTURE.md does not mention: {missing}"


#: The top of the package is its bands (docs/ARCHITECTURE.md); a new module goes inside one of them.
MAX_TOP_LEVEL_ENTRIES = 16


def test_the_top_level_is_the_bands() -> None:
    """At most 16 entries at the top of gan_translate/ (``__init__`` / ``__main__`` aside), each named in the
    layer contract and drawn in the bands of docs/ARCHITECTURE.md and CONTRIBUTING.md."""
    import tomllib

    entries = sorted(
        path.stem for path in PACKAGE.iterdir()
        if path.name not in {"__init__.py", "__main__.py"} and not path.name.startswith((".", "_"))
        and (path.suffix == ".py" or (path.is_dir() and (path / "__init__.py").exists()))
    )
    assert len(entries) <= MAX_TOP_LEVEL_ENTRIES, entries
    contract = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"][0]
    in_contract = {name.strip().removeprefix("gan_translate.") for layer in contract["layers"] for name in layer.split("|")}
    assert set(entries) - in_contract == set(), "top-level entries missing from the layer contract"
    architecture = (REPO_ROOT / "docs" / "ARCHITECTURE.md").read_text()
    bands = architecture[architecture.index("## The layers"):architecture.index("## Where a new piece goes")]
    contributing = (REPO_ROOT / "CONTRIBUTING.md").read_text()
    for entry in entries:
        shown = f"{entry}/" if (PACKAGE / entry).is_dir() else f"{entry}.py"
        assert shown in bands, f"docs/ARCHITECTURE.md's bands do not draw {shown}"
        assert shown in contributing, f"CONTRIBUTING.md does not place {shown} in a band"


def _names_a_model(source: str) -> bool:
    """Whether an expression's last name is what the code calls a model (``model``, ``self.model``, ``pl_module``,
    ``served.sampler``, ...)."""
    last = source.split(".")[-1].lower()
    return last.endswith(("model", "module")) or last == "sampler"


def _imported_names(tree: ast.AST) -> dict[str, str]:
    """local name -> the module it was imported from (``from gan_translate.models import DCGAN``: DCGAN -> ...)."""
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                names[alias.asname or alias.name] = node.module
    return names


def _is_model_class(expression: ast.expr, imported: dict[str, str]) -> bool:
    """A class of gan_translate.models, or a generator / discriminator network class of gan_translate.nn."""
    if isinstance(expression, ast.Tuple):
        return any(_is_model_class(element, imported) for element in expression.elts)
    name = ast.unparse(expression).split(".")[-1]
    module = imported.get(ast.unparse(expression).split(".")[0], "")
    return module.startswith("gan_translate.models") or (
        module.startswith("gan_translate.nn") and name.endswith(("Generator", "Discriminator"))
    )


def _model_probes(package: Path) -> list[str]:
    """Where code outside ``models/`` asks what a model is by probing it instead of reading what it declares
    (``capabilities``, ``translators``, ``sampler_spec``, ``image_channels``, ...): ``hasattr`` on a model,
    ``inspect.signature`` of a model's method, ``hparams.get(...)`` / ``hparams[...]`` reads, and ``isinstance`` against
    a model class or a generator / discriminator class (``nn/`` itself may tell its own networks apart)."""
    found: list[tuple[str, int, int, str]] = []
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package).as_posix()
        if relative.startswith("models/"):
            continue
        tree = ast.parse(path.read_text(), str(path))
        imported = _imported_names(tree)
        for node in ast.walk(tree):
            probe = ""
            if isinstance(node, ast.Call) and node.args:
                function, first = ast.unparse(node.func), node.args[0]
                if function == "hasattr" and _names_a_model(ast.unparse(first)):
                    probe = "hasattr on a model"
                elif function.endswith("signature") and isinstance(first, ast.Attribute) and _names_a_model(ast.unparse(first.value)):
                    probe = "inspect.signature of a model's method"
                elif (function == "isinstance" and len(node.args) == 2 and not relative.startswith("nn/")
                      and _is_model_class(node.args[1], imported)):
                    probe = "isinstance against a model or network class"
            if isinstance(node, ast.Call) and ast.unparse(node.func).endswith("hparams.get"):
                probe = "hparams.get"
            if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) and ast.unparse(node.value).endswith("hparams"):
                probe = "hparams[...]"
            if probe:
                found.append((relative, node.lineno, node.col_offset, f"{relative}:{node.lineno} {probe}: {ast.unparse(node)[:80]}"))
    return [text for *_, text in sorted(found)]


def test_nothing_outside_models_probes_a_model() -> None:
    """Models say what they are (issue 26): generate, serve, export and the rest read the model's declarations,
    so a new model never needs a probe of its names taught to them."""
    probes = _model_probes(PACKAGE)
    assert not probes, "\n".join(probes)


def test_the_probe_check_finds_probes(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "own.py").write_text("def f(self):\n    return hasattr(self.model, 'x')\n")  # models/ may
    (tmp_path / "probes.py").write_text(
        "import inspect\n"
        "from gan_translate.models import StyleGAN2\n"
        "from gan_translate.nn.stylegan2 import StyleGAN2Generator, ModulatedConv2d\n"
        "def f(model, served, net, x):\n"
        "    a = hasattr(model, 'mixing_grid')\n"
        "    b = 'psi' in inspect.signature(model.decode).parameters\n"
        "    c = model.hparams.get('latent_dim') or served.sampler.hparams.get('z_dim')\n"
        "    d = isinstance(net, StyleGAN2Generator) or isinstance(model, (int, StyleGAN2))\n"
        "    e = int(model.hparams['resolution'])\n"
        "    return isinstance(x, (int, ModulatedConv2d)) and hasattr(x, 'shape')  # not models: fine\n"
    )
    kinds = [probe.split(" ", 1)[1].split(":")[0] for probe in _model_probes(tmp_path)]
    assert kinds == ["hasattr on a model", "inspect.signature of a model's method", "hparams.get", "hparams.get",
                     "isinstance against a model or network class", "isinstance against a model or network class",
                     "hparams[...]"], kinds
