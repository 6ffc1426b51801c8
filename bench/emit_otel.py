"""What OpenTelemetry costs ``emit()``: no OpenTelemetry, OpenTelemetry imported with no span,
and a span current (its ids are then read and queued with the event).

Each case runs in a fresh interpreter (whether ``opentelemetry.trace`` is
imported is what ``emit()`` looks at), timing ``--calls`` calls of
``EventLogger.emit`` on a queue nobody drains, ``--runs`` times; the median
is printed, in nanoseconds per call.

    python bench/emit_otel.py [--calls 200000] [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import textwrap

CASE = textwrap.dedent(
    """
    import sys, time
    import sysevents
    case, calls = sys.argv[1], int(sys.argv[2])
    emitter = sysevents.EventLogger(sysevents.MemoryEventRepository(), max_queue=calls + 1)
    emit = emitter.emit

    def timed():
        started = time.perf_counter()
        for _ in range(calls):
            emit("deploy", "v1.2 is live", details={"version": "1.2"})
        return (time.perf_counter() - started) / calls * 1e9

    if case == "without OpenTelemetry":
        result = timed()
        assert "opentelemetry.trace" not in sys.modules
    else:
        from opentelemetry.sdk.trace import TracerProvider
        tracer = TracerProvider().get_tracer("bench")
        if case == "OpenTelemetry imported, no span":
            result = timed()
        else:
            with tracer.start_as_current_span("work"):
                result = timed()
    print(result)
    """
)
CASES = ["without OpenTelemetry", "OpenTelemetry imported, no span", "span active"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    results: dict[str, list[float]] = {case: [] for case in CASES}
    for _ in range(args.runs):
        for case in CASES:
            done = subprocess.run(
                [sys.executable, "-c", CASE, case, str(args.calls)],
                capture_output=True,
                text=True,
                check=True,
            )
            results[case].append(float(done.stdout))
    base = statistics.median(results[CASES[0]])
    print("| emit() | ns per call (median) | vs without |")
    print("| --- | ---: | ---: |")
    for case in CASES:
        value = statistics.median(results[case])
        print(f"| {case} | {value:,.0f} | {value / base:.2f}× |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
