import os
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]


def _find_fixtures() -> Path | None:
    candidates = []
    if os.environ.get("AXLSTM_FIXTURES"):
        candidates.append(Path(os.environ["AXLSTM_FIXTURES"]))
    candidates += [REPO_ROOT.parent / "shared" / "fixtures", REPO_ROOT / "shared" / "fixtures"]
    for path in candidates:
        if (path / "official_parity" / "expected.safetensors").exists():
            return path
    return None


@pytest.fixture(scope="session")
def official_dir() -> Path:
    """Folder with the authors' reference checkpoint and tensors (`../shared/fixtures/official_parity`)."""
    path = _find_fixtures()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("the reference fixtures (../shared/fixtures) are missing on CI")
        pytest.skip("reference fixtures not found (set AXLSTM_FIXTURES)")
    return path / "official_parity"


@pytest.fixture(scope="session")
def expected(official_dir) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(official_dir / "expected.safetensors"))


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    a = a.detach().double()
    b = b.detach().double()
    return ((a - b).norm() / b.norm()).item()
