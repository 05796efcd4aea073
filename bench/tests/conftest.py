"""Put ``bench/`` on ``sys.path`` so the tests import :mod:`peerbench` as the CLI does."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
