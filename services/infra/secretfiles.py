"""Files that hold secrets (development only: generated under IMAGEPIPE_VAR_DIR/secrets):
the directory is 0700 and each file is created 0600 in one step, never readable by others even
for a moment."""

from __future__ import annotations

import os
from pathlib import Path


def private_dir(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)  # mkdir's mode is masked by the umask, and an older folder may be wider
    return path


def create_private_file(path: Path, text: str) -> bool:
    """Write `text` to a new file readable by its owner only. False (nothing written) when the
    file exists already: another process generated it first, and theirs is kept."""
    private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as out:
        out.write(text)
    return True
