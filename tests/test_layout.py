"""The data flows one way: fetch -> read -> store -> analyses -> reports. Imports must agree."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).parents[1] / "ent_audit"

ALLOWED = {
    # subpackage: what it may import from ent_audit (besides itself)
    "aaf": {"exceptions", "io", "checks", "memory"},
    "store": {"aaf", "exceptions", "io", "checks", "memory"},
    "transfer": {"aaf", "store", "exceptions", "io", "checks"},
    # The generator is beside the flow; it shares the French calendar of working days.
    "synth": {"aaf", "exceptions", "io", "checks", "transfer"},
    "analyses": {
        "aaf",
        "store",
        "transfer",
        "exceptions",
        "io",
        "checks",
        "privacy",
        "quality",
        "memory",
    },
    # ``memory`` (allocators, a leaf like ``io``) is set by whoever owns a process: the CLI, a
    # report's kernel (``reports.notebook``), the explorer, a Complet's parse helper
    # (``aaf.staged``); the store and the analyses hand back what a big step freed
    # (``release_unused``, ``trim_heap``).
    "reports": {"aaf", "store", "analyses", "exceptions", "io", "checks", "privacy", "memory"},
}


def imports(path: Path) -> set[str]:
    """Top-level ``ent_audit`` subpackages or modules a file imports (``aaf``, ``cli``…)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
            if node.module == "ent_audit":
                names = [f"ent_audit.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "ent_audit" and len(parts) > 1:
                out.add(parts[1])
    return out


def modules() -> list[tuple[str, Path]]:
    return [
        (p.relative_to(PACKAGE).parts[0].removesuffix(".py"), p)
        for p in sorted(PACKAGE.rglob("*.py"))
    ]


def test_every_module_imports_only_what_lies_upstream_of_it():
    wrong = []
    for top, path in modules():
        if top not in ALLOWED:
            continue
        for name in imports(path) - ALLOWED[top] - {top}:
            wrong.append(f"{path.relative_to(PACKAGE)} imports ent_audit.{name}")
    assert not wrong, "\n".join(wrong)


def test_analyses_never_import_reports_or_the_command_line():
    for top, path in modules():
        if top == "analyses":
            assert not imports(path) & {"reports", "cli"}, path


def test_nothing_imports_the_command_line():
    users = [path for _, path in modules() if path.name != "cli.py" and "cli" in imports(path)]
    assert users == []


def test_the_import_checker_sees_both_import_forms(tmp_path):
    p = tmp_path / "m.py"
    p.write_text(
        "from ent_audit import cli\nimport ent_audit.reports.runner\n"
        "from ent_audit.aaf.schema import KINDS\n"
    )
    assert imports(p) == {"cli", "reports", "aaf"}


def test_the_public_imports_of_the_readme_keep_working():
    import ent_audit
    import ent_audit.quality
    import ent_audit.store

    assert ent_audit.Store is ent_audit.store.Store
    assert callable(ent_audit.load) and callable(ent_audit.quality.audit)
    assert set(ent_audit.__all__) <= set(dir(ent_audit))
