"""A training process dies with the process that started it: a trainer killed mid-job must not leave a worker, or
one of the worker's data-parallel processes, training and publishing behind its back."""
import ctypes
import os
import signal
import threading
import time

PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """SIGKILL when `parent` dies. Armed before anything heavy is imported; a parent that died before it was armed
    is caught by the check after it (this process is then a child of init or a subreaper)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass  # not Linux: the watcher thread below still notices
    if os.getppid() != parent:
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()
