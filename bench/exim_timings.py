#!/usr/bin/env python3
"""Summarises what the Exim-as-client runs of run_exim_bench.sh print.

Reads the output of `exim4 -be` processes on stdin: each ${readsocket} call
left " START:END" ($tod_epoch_l before and after it, in microseconds).
Prints one line of counts and latency quantiles in the form exim_load uses.

  exim_timings.py PROCS WALL_SECONDS SERVER_CPU_SECONDS < outputs
"""

import re
import sys


def main() -> int:
    if len(sys.argv) != 4:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    procs, wall, cpu = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
    lat = sorted(int(end) - int(start)
                 for start, end in re.findall(r"(\d+):(\d+)", sys.stdin.read()))
    if not lat or wall <= 0:
        print("exim_timings.py: no timed calls in the input", file=sys.stderr)
        return 1
    n = len(lat)

    def q(p: float) -> int:
        return lat[min(n - 1, int(p * n))]

    line = (f"exim_procs={procs} calls={n} achieved={n / wall:.0f}/s p50_us={q(0.5)} "
            f"p99_us={q(0.99)} p999_us={q(0.999)} max_us={lat[-1]} server_cpu_s={cpu:.2f}")
    if cpu > 0:
        line += f" requests_per_cpu_s={n / cpu:.0f}"
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
