"""Every tutorial notebook runs top to bottom, and matches its generator script."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))
CELL_TIMEOUT = 300  # seconds per cell; the notebooks take a few seconds in all

nbformat = pytest.importorskip("nbformat")


def _load_build():
    spec = importlib.util.spec_from_file_location("notebooks_build", NOTEBOOKS / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_there_are_notebooks():
    assert [p.name for p in PATHS] == ["01_autograd_basics.ipynb", "02_rosenbrock.ipynb",
                                       "03_gradient_descent_3d.ipynb", "04_regression_lab.ipynb",
                                       "05_simple_network.ipynb", "06_benchmarks.ipynb"]


def test_notebooks_match_their_generator():
    build = _load_build()
    assert sorted(build.NOTEBOOKS) == [p.name for p in PATHS]
    for p in PATHS:
        assert p.read_text(encoding="utf-8") == build.render(build.NOTEBOOKS[p.name]), (
            f"{p.name} differs from notebooks/build.py: run python notebooks/build.py")


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_no_outputs_committed(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.id


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_notebook_runs(path):
    pytest.importorskip("ipykernel")
    nbclient = pytest.importorskip("nbclient")
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOKS)}})
    try:
        client.execute()
    except CellExecutionError as err:
        pytest.fail(f"{path.name} failed:\n{err}", pytrace=False)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert not errors
