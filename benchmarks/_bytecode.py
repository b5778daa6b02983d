"""Byte-compile the package before timing the command line, as `pip install` does.

This project's machines set PYTHONDONTWRITEBYTECODE, so without this every timed run would
recompile the package from source (about 45 ms each), which no installed copy ever does.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "watcher"


def compile_package() -> None:
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(PACKAGE)], check=True)
