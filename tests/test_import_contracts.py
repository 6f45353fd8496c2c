"""The hexagon's walls: the core is pure, adapters never reach into entry points."""

from __future__ import annotations

import ast
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STDLIB = set(sys.stdlib_module_names)


def imported_top_level_modules(package: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in (ROOT / package).rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(str(path.relative_to(ROOT)))
    return found


def test_finops_core_imports_only_the_standard_library_attrs_and_itself():
    outside = {
        module: files
        for module, files in imported_top_level_modules("finops_core").items()
        if module not in STDLIB and module not in {"attrs", "finops_core", "__future__"}
    }
    assert outside == {}


def test_adapters_never_import_entrypoints():
    assert "entrypoints" not in imported_top_level_modules("adapters")


def test_no_adapter_imports_another_adapter():
    crossings = []
    for path in (ROOT / "adapters").rglob("*.py"):
        own = path.relative_to(ROOT / "adapters").parts[0].removesuffix(".py")
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module]
                if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
                else []
            )
            for name in names:
                parts = name.split(".")
                if parts[0] == "adapters" and len(parts) > 1 and parts[1] != own:
                    crossings.append(f"{path.relative_to(ROOT)} imports {name}")
    assert crossings == []


def test_import_linter_contracts_hold():
    lint_imports = Path(sysconfig.get_path("scripts")) / "lint-imports"
    result = subprocess.run([str(lint_imports)], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout


def test_finops_core_imports_in_a_python_that_has_only_attrs(tmp_path):
    """Run the core with site-packages hidden except attrs: nothing else may be needed."""
    import attrs

    attrs_root = Path(attrs.__file__).resolve().parents[1]
    isolated = tmp_path / "site"
    isolated.mkdir()
    for name in ("attrs", "attr"):
        (isolated / name).symlink_to(attrs_root / name)
    code = (
        "import finops_core.catalogue, finops_core.pipeline, finops_core.queries, "
        "finops_core.usecases, "
        "finops_core.masters, finops_core.ports;"
        "from finops_core.events import validate_record;"
        "print(validate_record({'event_id': 'e'}).quarantine_reasons[0])"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-S",
            "-c",
            f"import sys; sys.path[:0] = [{str(isolated)!r}, {str(ROOT)!r}]; {code}",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "timestamp_invalid"
