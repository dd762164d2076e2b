"""``python -m bench.octolaunch serve ...``: runs OctoPrint with benchmark-only
process probes, switched on by environment variables (none of this is in the
plugin):

- ``FLUXPRINT_BENCH_GC=<file>``: records every cyclic-GC run of the OctoPrint
  process (generation, duration, objects collected) through ``gc.callbacks`` and
  rewrites ``<file>`` as JSON once a second, so the benchmark can line the latency
  tail up against collector pauses.
- ``FLUXPRINT_BENCH_GC_FREEZE=1``: ``gc.freeze()`` once OctoPrint has started (the
  objects alive then are never scanned again by the collector), to measure what
  that buys.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import threading
import time


class GcRecorder:
    def __init__(self, path: str):
        self.path = path
        self.runs: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self.collected = {0: 0, 1: 0, 2: 0}
        self._t0 = 0.0
        self._lock = threading.Lock()

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
            return
        ms = (time.perf_counter() - self._t0) * 1000
        gen = info.get("generation", 0)
        with self._lock:
            self.runs[gen].append(ms)
            self.collected[gen] += info.get("collected", 0)

    def dump(self) -> None:
        with self._lock:
            data = {
                "pid": os.getpid(),
                "time": time.time(),
                "frozen": gc.get_freeze_count(),
                "generations": {
                    str(g): {
                        "runs": len(v),
                        "total_ms": sum(v),
                        "max_ms": max(v) if v else 0.0,
                        "over_10ms": sum(1 for x in v if x > 10),
                        "collected": self.collected[g],
                    }
                    for g, v in self.runs.items()
                },
            }
        if os.environ.get("FLUXPRINT_BENCH_GC_TYPES") == "1":
            # diagnostic (slow): what lives in the oldest generation, by type
            from collections import Counter

            counts = Counter(type(o).__name__ for o in gc.get_objects(generation=2))
            data["gen2_types"] = dict(counts.most_common(40))
            data["gen2_total"] = sum(counts.values())
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(data, f)
        os.replace(tmp, self.path)

    def start(self) -> None:
        gc.callbacks.append(self)

        def loop() -> None:
            while True:
                time.sleep(1.0)
                try:
                    self.dump()
                except Exception:
                    pass

        threading.Thread(target=loop, name="bench-gc", daemon=True).start()


def _freeze_after_startup() -> None:
    from octoprint.events import Events, eventManager

    def frozen(event, payload) -> None:
        gc.collect()
        gc.freeze()

    # the same singleton OctoPrint's server uses; Startup fires once it is up
    eventManager().subscribe(Events.STARTUP, frozen)


def main() -> None:
    path = os.environ.get("FLUXPRINT_BENCH_GC")
    if path:
        GcRecorder(path).start()
    if os.environ.get("FLUXPRINT_BENCH_GC_FREEZE") == "1":
        _freeze_after_startup()
    import octoprint

    sys.argv[0] = "octoprint"
    octoprint.main()


if __name__ == "__main__":
    main()
