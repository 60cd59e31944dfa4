"""Services started by ``hum run`` end when ``hum run`` does, however it ends.

``hum run`` stops its code server and daemon itself; if it is killed (``kill -9``, a
closed terminal), they must not run on. Each service module calls ``exit_with_parent()``:
a thread that ends the service's process group when the process that started it is gone
(``HUM_PARENT_PID``).
"""

from __future__ import annotations

import os
import signal
import threading
import time


def exit_with_parent(interval: float = 2.0) -> None:
    parent = int(os.environ.get("HUM_PARENT_PID") or 0)
    if not parent:
        return

    def watch() -> None:
        while True:
            time.sleep(interval)
            try:
                os.kill(parent, 0)
            except ProcessLookupError:
                os.killpg(os.getpgrp(), signal.SIGKILL)  # as abrupt as the parent's end
                return

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
