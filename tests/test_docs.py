"""The documentation site: every example script runs, the code of every guide runs as written, the
gallery shows every example, and the site builds in strict mode (a broken link, cross-reference or
snippet fails it). Scripts and guides run in their own process, in a temporary folder, on one thread
(what a reader's machine gives them, and steady on a shared one)."""
import ast
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
GUIDES = [ROOT / "docs" / "getting-started.md", *sorted((ROOT / "docs" / "guide").glob("*.md"))]
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def environment() -> dict:
    return {**os.environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "NO_MKDOCS_2_WARNING": "1"}


def missing_modules(code: str) -> list[str]:
    """The top-level packages ``code`` imports that are not installed (optional extras: nir)."""
    names = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return sorted(name for name in names if importlib.util.find_spec(name) is None)


def run_python(path: Path, cwd: Path, timeout: float = 300) -> None:
    code = path.read_text(encoding="utf-8")
    missing = missing_modules(code)
    if missing:
        pytest.skip(f"{path.name} imports {', '.join(missing)}, which is not installed")
    result = subprocess.run([sys.executable, str(path)], check=False, cwd=cwd, env=environment(),
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{path.name} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"


def test_there_are_examples_and_guides():
    assert 3 <= len(EXAMPLES) and len(GUIDES) >= 8


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda path: path.stem)
def test_example_runs(script, tmp_path):
    run_python(script, tmp_path)


def test_the_gallery_shows_every_example():
    gallery = (ROOT / "docs" / "examples.md").read_text(encoding="utf-8")
    for script in EXAMPLES:
        assert f'--8<-- "examples/{script.name}"' in gallery, f"docs/examples.md does not show {script.name}"


@pytest.mark.slow  # ~100 s on 2 cores: run with `pytest -m slow tests/test_docs.py` before a release
@pytest.mark.parametrize("page", GUIDES, ids=lambda path: path.stem)
def test_guide_code_runs(page, tmp_path):
    """A page's ```python blocks, in order, as one script (a later block may use an earlier one's names)."""
    blocks = PYTHON_BLOCK.findall(page.read_text(encoding="utf-8"))
    assert blocks, f"{page.name} has no python code"
    script = tmp_path / f"{page.stem}.py"
    script.write_text("\n".join(blocks), encoding="utf-8")
    run_python(script, tmp_path)


def test_site_builds_in_strict_mode(tmp_path):
    for module in ("mkdocs", "material", "mkdocstrings_handlers.python"):
        pytest.importorskip(module, reason="the docs extra is not installed: pip install -e '.[docs]'")
    site = tmp_path / "site"
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
                             str(ROOT / "mkdocs.yml"), "--site-dir", str(site)], check=False, cwd=ROOT,
                            env=environment(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    reference = (site / "reference" / "neurons" / "index.html").read_text(encoding="utf-8")
    assert 'id="neuroplastic.neurons.lif.LIF"' in reference  # the API reference was generated
    gallery = (site / "examples" / "index.html").read_text(encoding="utf-8")
    assert "closed_form" in gallery  # the examples' source was included
