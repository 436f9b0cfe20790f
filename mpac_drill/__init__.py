"""mpac-drill: chaos drills that measure the MPAC DR runbook's RTO and RPO."""

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

try:
    __version__ = version("mpac-drill")
except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    __version__ = "0.0.0"

#: The repository root (the package is installed editable, experiments live beside it).
PROJECT_ROOT = Path(__file__).resolve().parent.parent
EXPERIMENTS_DIR = PROJECT_ROOT / "experiments"
TARGETS_DIR = EXPERIMENTS_DIR / "targets"
CATALOG_PATH = EXPERIMENTS_DIR / "catalog.yaml"

__all__ = ["__version__", "PROJECT_ROOT", "EXPERIMENTS_DIR", "TARGETS_DIR", "CATALOG_PATH"]
