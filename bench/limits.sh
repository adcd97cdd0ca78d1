#!/bin/sh
# limits.sh - the figures of a queue's fleet-wide limits (protocol 2),
# docs/OPERATIONS.md section 8.7:
#   1. 4 workers on a queue limited to 50/s: the start rate over 20 s and
#      its deviation from 50/s; Redis commands per second with the fleet
#      idle and with the queue sitting at its limit (bench/tools/limits.py);
#   2. rtq-bench's drain (20,000 tasks, one worker of 50 slots): the
#      worker serving the bench queue alone, serving it and an empty
#      unlimited queue (--other-queue), and serving it and a queue sitting
#      at a limit of 10/s with a backlog (--limit-other 10); medians of 3.
#
#   bench/limits.sh [BUILD_DIR] [--drain-only]      (default: build)
# Needs a build with rtq-worker, rtq and rtq-bench, and Debian's
# python3-redis (scripts/install-deps.sh --interop).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
only_drain=${2:-}
work=$(mktemp -d /tmp/rtq-limits-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT INT TERM

if [ "$only_drain" != --drain-only ]; then
  echo "== rate limit: 4 workers, 50/s, 20 s" >&2
  /usr/bin/python3 "$root/bench/tools/limits.py" "$build" --workers 4 --rate 50 --seconds 20
fi

echo "== drain without and with a limited queue beside it (medians of 3)" >&2
# Under protocol 2 the workers cap each done list at max_task_history and
# delete the tasks pushed out; rtq-bench reads every task back, so the cap
# must hold the whole drain.
export RTQ_MAX_TASK_HISTORY=1000000
# Interleaved, so that a change in the machine's load falls on every
# variant: plain (the workers serve the bench queue), two (they also serve
# an empty, unlimited queue), limited (that queue holds a backlog at 10/s).
for i in 1 2 3; do
  for variant in plain two limited; do
    case $variant in
      plain) extra="" ;;
      two) extra="--other-queue" ;;
      limited) extra="--limit-other 10" ;;
    esac
    # shellcheck disable=SC2086
    "$build/bench/rtq-bench" --protocol 2 --only single,drain -n 20000 --quiet --json $extra \
      > "$work/drain-$variant-$i.json"
  done
done
for variant in plain two limited; do
  "$build/bench/rtq-bench" --median "$work"/drain-$variant-*.json > "$work/drain-$variant.json"
  /usr/bin/python3 - "$variant" "$work"/drain-$variant-*.json "$work/drain-$variant.json" <<'PY'
import json, sys
variant, files = sys.argv[1], sys.argv[2:]
runs = [json.load(open(f))["drain"]["tasks_per_s"] for f in files[:-1]]
med = json.load(open(files[-1]))["drain"]
print(json.dumps({"drain": variant, "runs_tasks_per_s": [round(x) for x in runs],
                  "median_tasks_per_s": round(med["tasks_per_s"]),
                  "median_redis_cpu_us_per_task": round(med.get("redis_cpu_us_per_task", 0), 1),
                  "median_commands_per_task": round(med.get("commands_per_task", 0), 2)}))
PY
done
