from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]


FIXTURES = REPO_ROOT / "tests" / "fixtures"


@pytest.fixture(scope="session")
def official_dir() -> Path:
    """Folder with the authors' reference checkpoint and tensors, shipped in the repo (`tests/fixtures/official_parity`,
    copied from the fixtures the authors' code produced; see `tests/fixtures/README.md`)."""
    path = FIXTURES / "official_parity"
    if not (path / "expected.safetensors").is_file():
        pytest.fail(f"the reference fixtures are missing: {path} should be part of the checkout")
    return path


@pytest.fixture(scope="session")
def expected(official_dir) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(official_dir / "expected.safetensors"))


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    a = a.detach().double()
    b = b.detach().double()
    return ((a - b).norm() / b.norm()).item()
