"""DataLoader worker processes that leave the stopping to the main process, and are killed at exit."""
from __future__ import annotations

import atexit
import multiprocessing
import signal


def ignore_stop_signals(_worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: Ctrl-C and SIGTERM reach the whole process group, but it is the
    main process that decides when to stop (and saves first); a worker that died of them would break it.

    The main process must call ``kill_workers_at_exit``: multiprocessing ends daemonic children at exit
    with SIGTERM and waits for them, which would wait forever."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def error_line(exc: BaseException) -> str:
    """The message of ``exc`` on one line. An error raised in a DataLoader worker comes back with the worker's
    traceback in its text ("Caught X in DataLoader worker process 0. Original Traceback ..."), whose last line
    is the error itself."""
    text = str(exc).strip()
    if "Original Traceback" not in text:
        return text
    last = text.splitlines()[-1]
    return last.split(": ", 1)[1] if ": " in last else last


def kill_workers_at_exit() -> None:
    """At interpreter exit (also after an uncaught error), SIGKILL the daemonic child processes (the
    DataLoader workers, which ignore SIGTERM) before multiprocessing's own exit handler joins them.
    Registered once; atexit runs it before the handler multiprocessing registered on import."""
    global _KILL_REGISTERED
    if not _KILL_REGISTERED:
        atexit.register(_kill_daemonic_children)
        _KILL_REGISTERED = True


_KILL_REGISTERED = False


def _kill_daemonic_children() -> None:
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # torch's handler would raise "worker killed" at each kill
    for child in multiprocessing.active_children():
        if child.daemon:
            child.kill()
            child.join(5)
