"""Replacing a whole folder of artifacts so that no reader, and no crash, ever sees it half-written."""
import contextlib
import os
import pathlib
import shutil
import tempfile
from collections.abc import Iterator


@contextlib.contextmanager
def replacing_directory(directory: pathlib.Path) -> Iterator[pathlib.Path]:
    """Yields an empty folder beside `directory` to write into. When the block ends without an error the folder
    takes `directory`'s place (an old one is renamed aside first, then removed); otherwise it is removed."""
    directory = pathlib.Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = pathlib.Path(tempfile.mkdtemp(prefix=f".{directory.name}-staging-", dir=directory.parent))
    try:
        yield staging
        staging.chmod(0o755)  # mkdtemp makes it owner-only
        if directory.exists():
            retired = pathlib.Path(tempfile.mkdtemp(prefix=f".{directory.name}-retired-", dir=directory.parent))
            os.replace(directory, retired / directory.name)
            os.replace(staging, directory)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
