"""Make `import phoenix_npu` work from a source checkout (package not installed)."""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
try:
    import phoenix_npu  # noqa: F401
except ImportError:
    sys.path.insert(0, str(ROOT / "python"))
