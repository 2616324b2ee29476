"""The package's folders are the stages of the data's trip, and imports only run forward.

docs/design.md draws the picture; these tests keep it true. Every import of a migrainefhir
module anywhere in a module (top level, inside functions, under TYPE_CHECKING) counts.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "migrainefhir"
DESIGN = Path(__file__).resolve().parents[1] / "docs" / "design.md"

# The leaves every stage may use; they import only each other.
LEAVES = frozenset(
    {"problems", "errors", "codes", "ids", "schema", "report", "problem_codes", "terminology"}
)
# The stages in the order data flows through them; a stage imports only earlier ones.
STAGE_RANK = {
    "input": 1,
    "convert": 2,
    "validate": 3,
    "export": 4,
    "deliver": 5,
    "outcomes": 5,
    "conformance": 5,
}
# On top: the command line and the library API may import everything (but nothing imports cli).
TOP = frozenset({"cli", "pipeline", "__main__"})
MAX_TOP_LEVEL_MODULES = 12


def part_of(module: str) -> str:
    """`migrainefhir.input.readers` -> `input`; `migrainefhir` -> `` (the package root)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def imported_modules(source: str, module: str) -> set[str]:
    """Every migrainefhir module a module's source imports (absolute or relative)."""
    found: set[str] = set()
    package = module.rsplit(".", 1)[0]  # a module's package; for __init__, its own
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base]) if base else ".".join(anchor)
            found.add(base)
            # `from migrainefhir import codes` imports the module migrainefhir.codes (but
            # `__version__` is an attribute of the package root)
            if base == "migrainefhir":
                found.update(
                    f"migrainefhir.{alias.name}"
                    for alias in node.names
                    if not alias.name.startswith("__")
                )
    return {name for name in found if name == "migrainefhir" or name.startswith("migrainefhir.")}


def violation(importer: str, imported: str) -> str | None:
    """Why `importer` may not import `imported`, or None when the rule allows it."""
    source, target = part_of(importer), part_of(imported)
    if target in ("", "__init__") or (source == target and source != ""):
        return None  # the package root holds only __version__; a part may use itself
    if target == "cli" and source != "__main__":
        return "nothing but __main__ imports the command line"
    if source in TOP:
        return None
    if target in LEAVES:
        return None
    if target in TOP:
        return f"{importer} is below the library API and may not import {imported}"
    if source in LEAVES:
        return f"the leaf {source} may import only other leaves, not the stage {target}"
    if target not in STAGE_RANK:
        return f"{target} is not a known leaf or stage: add it to docs/design.md and this test"
    if source not in STAGE_RANK:
        return f"{source} is not a known leaf or stage: add it to docs/design.md and this test"
    if STAGE_RANK[target] >= STAGE_RANK[source]:
        return f"the stage {source} may import only earlier stages, not {target}"
    return None


def module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    return ".".join(relative.parts)


def package_modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_import_in_the_package_runs_forward() -> None:
    broken = [
        f"{module_name(path)} imports {target}: {why}"
        for path in package_modules()
        for target in sorted(imported_modules(path.read_text(), module_name(path)))
        if (why := violation(module_name(path), target)) is not None
    ]
    assert broken == []


@pytest.mark.parametrize(
    ("importer", "imported", "allowed"),
    [
        ("migrainefhir.export.job", "migrainefhir.input.readers", True),
        ("migrainefhir.export.job", "migrainefhir.validate.rules", True),
        ("migrainefhir.convert.diary", "migrainefhir.codes", True),
        ("migrainefhir.input.readers", "migrainefhir.export.shards", False),
        ("migrainefhir.validate.rules", "migrainefhir.export.job", False),
        ("migrainefhir.input.model", "migrainefhir.convert.context", False),
        ("migrainefhir.deliver.push", "migrainefhir.outcomes.metrics", False),
        ("migrainefhir.codes", "migrainefhir.input.records", False),
        ("migrainefhir.export.job", "migrainefhir.pipeline", False),
        ("migrainefhir.pipeline", "migrainefhir.cli", False),
        ("migrainefhir.__main__", "migrainefhir.cli", True),
        ("migrainefhir.pipeline", "migrainefhir.export.job", True),
        ("migrainefhir.export.job", "migrainefhir.newstage.x", False),
    ],
)
def test_the_rule_itself(importer: str, imported: str, allowed: bool) -> None:
    assert (violation(importer, imported) is None) is allowed


def test_imports_are_found_inside_functions_and_relative_ones_resolved() -> None:
    source = (
        "from __future__ import annotations\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from migrainefhir.export.job import export\n"
        "def f():\n    import migrainefhir.pipeline\n"
        "from . import shards\n"
        "from ..problems import Problem\n"
        "from migrainefhir import __version__, codes\n"
    )
    assert imported_modules(source, "migrainefhir.input.readers") == {
        "migrainefhir",
        "migrainefhir.codes",
        "migrainefhir.export.job",
        "migrainefhir.pipeline",
        "migrainefhir.input",
        "migrainefhir.problems",
    }


def test_at_most_twelve_modules_lie_directly_in_the_package() -> None:
    top_level = sorted(path.name for path in PACKAGE.glob("*.py"))
    assert len(top_level) <= MAX_TOP_LEVEL_MODULES, top_level


def test_every_top_level_module_and_folder_is_placed_in_the_picture() -> None:
    names = {path.stem for path in PACKAGE.glob("*.py")} | {
        path.name for path in PACKAGE.iterdir() if (path / "__init__.py").exists()
    }
    unplaced = names - LEAVES - TOP - set(STAGE_RANK) - {"__init__"}
    assert unplaced == set()


def test_every_sub_package_says_what_it_holds_and_what_it_may_import() -> None:
    for init in sorted(PACKAGE.glob("*/__init__.py")):
        docstring = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert "May import" in docstring or "may import" in docstring, init


def test_design_doc_names_every_stage_and_leaf() -> None:
    design = DESIGN.read_text()
    for name in sorted(set(STAGE_RANK) | LEAVES | TOP):
        shown = f"{name}/" if name in STAGE_RANK or name == "terminology" else f"{name}.py"
        assert shown in design, shown
