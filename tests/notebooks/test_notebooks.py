"""The notebooks of notebooks/ run top to bottom, as a data scientist runs them: in a kernel
of this venv, against a real `vas up` and a real RTSP test camera, configured only through
VAS_URL, VAS_CLIENT_ID, VAS_CLIENT_SECRET and VAS_CAMERA_URL. A cell that raises fails the
test, and each notebook's last cell asserts its result, so a wrong answer fails too."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from tests.camera import CameraProfile
from tests.camera.fixtures import StartCamera
from tests.e2e.processes import VasProcess, clean_env, free_port
from tests.locks import exclusive

pytestmark = pytest.mark.slow

NOTEBOOK_DIR = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
# Not the camera's default size, so that "frames have the stream's resolution" means something.
CAMERA = CameraProfile(width=320, height=240, fps=15)
CELL_TIMEOUT_S = 120
# Variables of the test's own environment that must not leak into the kernel.
KERNEL_SCRUBBED = ("VAS_URL", "VAS_CLIENT_ID", "VAS_CLIENT_SECRET", "VAS_CLIENT_SECRET_FILE",
                   "VAS_CAMERA_URL", "MPLBACKEND")


@pytest.fixture(scope="session")
def kernel_name() -> str:
    """The python3 kernel of this venv (installed into the venv prefix if it is missing)."""
    kernels = Path(sys.prefix, "share", "jupyter", "kernels")
    with exclusive(kernels.parent / ".kernel-install.lock"):  # parallel test workers
        if not (kernels / "python3" / "kernel.json").is_file():
            subprocess.run([sys.executable, "-m", "ipykernel", "install", "--sys-prefix"],
                           check=True, capture_output=True)
    argv = KernelSpecManager().get_kernel_spec("python3").argv
    # "python" is what jupyter_client replaces with the running interpreter.
    assert argv[0] in ("python", sys.executable), f"the python3 kernel runs {argv[0]}"
    return "python3"


@pytest.fixture(autouse=True)
def jupyter_runtime_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Kernel connection files go to the test's directory, not ~/.local/share/jupyter."""
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "jupyter-runtime"))


@pytest.fixture
def vas_up(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """`vas up` as `make up` runs it, on a free port: its URL and the secret it printed."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = VasProcess("up", clean_env(VAS_PORT=str(port), VAS_DATA_DIR=str(tmp_path / "var")),
                      tmp_path)
    try:
        proc.wait_ready(url)
        printed = re.search(r"VAS_ADMIN_CLIENT_SECRET=(\S+)", proc.output)
        assert printed, proc.output
        yield url, printed[1]
    finally:
        proc.interrupt()


def kernel_env(url: str, **variables: str) -> dict[str, str]:
    env = {k: v for k, v in clean_env().items() if k not in KERNEL_SCRUBBED}
    return {**env, "VAS_URL": url, "VAS_CLIENT_ID": "admin", **variables}


def execute(nb: nbformat.NotebookNode, env: dict[str, str], kernel: str) -> None:
    """Run every cell in a fresh kernel started in notebooks/ (as JupyterLab would)."""
    client = NotebookClient(nb, kernel_name=kernel, timeout=CELL_TIMEOUT_S,
                            resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    client.execute(env=env)


def code_cells(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def printed(cell: nbformat.NotebookNode) -> str:
    return "".join(out.get("text", "") for out in cell.outputs if out.output_type == "stream")


def test_notebooks_are_stored_without_outputs_and_end_in_a_check() -> None:
    assert [path.name for path in NOTEBOOKS] == [
        "01_quickstart.ipynb", "02_live_frames.ipynb", "03_snapshots_and_clips.ipynb",
        "04_recorded_video.ipynb", "05_events.ipynb"]
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        cells = code_cells(nb)
        assert all(not c.outputs and c.execution_count is None for c in cells), path.name
        assert "assert " in cells[-1].source, f"{path.name}: the last cell checks nothing"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_runs_top_to_bottom(notebook: Path, vas_up: tuple[str, str],
                                     start_camera: StartCamera, kernel_name: str) -> None:
    url, secret = vas_up
    camera = start_camera(CAMERA)
    nb = nbformat.read(notebook, as_version=4)
    execute(nb, kernel_env(url, VAS_CLIENT_SECRET=secret, VAS_CAMERA_URL=camera.url),
            kernel_name)
    # The notebook registered the camera itself (VAS had no device) and checked its result.
    assert "ok" in printed(code_cells(nb)[-1])


def test_the_secret_comes_from_a_file_or_a_clear_error(
    vas_up: tuple[str, str], tmp_path: Path, kernel_name: str
) -> None:
    url, secret = vas_up
    nb = nbformat.read(NOTEBOOKS[0], as_version=4)
    login = next(i for i, cell in enumerate(nb.cells) if "await vas.token()" in cell.source)
    nb.cells = nb.cells[: login + 1]  # configuration and login only
    secret_file = tmp_path / "admin-secret"
    secret_file.write_text(secret + "\n")

    execute(nb, kernel_env(url, VAS_CLIENT_SECRET_FILE=str(secret_file)), kernel_name)
    assert "authenticated" in printed(code_cells(nb)[-1])

    with pytest.raises(CellExecutionError, match="export VAS_CLIENT_SECRET="):
        execute(nb, kernel_env(url), kernel_name)
