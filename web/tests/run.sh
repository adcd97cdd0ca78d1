#!/bin/sh
# web/tests/run.sh [BUILD_DIR] - rtq-web against real parts, outside ctest:
#
#   1. promtool check metrics accepts /metrics (Debian's prometheus package)
#   2. a real Prometheus on loopback scrapes rtq-web (bearer token from a
#      file) and its query API returns rtq_tasks_total with the right value
#   3. headless chromium driven by puppeteer-core (browser/): overview, a
#      task appearing live, its progress bar moving, cancel, XSS payloads;
#      screenshots land in BUILD_DIR/screenshots/ and their paths are printed
#
# Starts its own redis-server (unix socket only), rtq-worker, rtq-web and
# prometheus in a temp dir and stops them at exit. Needs
# `scripts/install-deps.sh --web` and a built tree (default build/).
set -eu

root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
for b in web/rtq-web worker/rtq-worker client/rtq; do
  [ -x "$build/$b" ] || { echo "run.sh: $build/$b is not built" >&2; exit 2; }
done
for c in redis-server redis-cli promtool prometheus node npm curl; do
  command -v $c >/dev/null 2>&1 || { echo "run.sh: $c is missing (scripts/install-deps.sh --web)" >&2; exit 2; }
done
[ -x /usr/bin/chromium ] || { echo "run.sh: /usr/bin/chromium is missing (scripts/install-deps.sh --web)" >&2; exit 2; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/rtq-web-test.XXXXXX")
pids=""
cleanup() {
  for p in $pids; do kill "$p" 2>/dev/null || true; done
  for p in $pids; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_for SECONDS COMMAND...: runs COMMAND every 0.1 s until it succeeds.
wait_for() {
  n=$(($1 * 10)); shift
  while ! "$@" >/dev/null 2>&1; do
    n=$((n - 1))
    [ "$n" -gt 0 ] || return 1
    sleep 0.1
  done
}

sock=$tmp/redis.sock
redis-server --port 0 --unixsocket "$sock" --save '' --appendonly no --dir "$tmp" >"$tmp/redis.log" 2>&1 &
pids="$pids $!"
wait_for 10 redis-cli -s "$sock" ping || { echo "run.sh: redis-server did not start" >&2; cat "$tmp/redis.log"; exit 1; }
redis="unix://$sock"

token=web-test-token-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
printf '%s\n' "$token" >"$tmp/token"
"$build/worker/rtq-worker" --redis "$redis" --demo-handlers --concurrency 4 --progress-interval 100ms \
  >"$tmp/worker.log" 2>&1 &
pids="$pids $!"
"$build/web/rtq-web" --listen 127.0.0.1:0 --redis "$redis" --auth-token-file "$tmp/token" >"$tmp/web.log" 2>&1 &
pids="$pids $!"
wait_for 10 grep -q 'url=http://' "$tmp/web.log" || { echo "run.sh: rtq-web did not start" >&2; cat "$tmp/web.log"; exit 1; }
url=$(sed -n 's/.*url=\(http:[^ ]*\).*/\1/p' "$tmp/web.log" | head -n 1)
hostport=${url#http://}
hostport=${hostport%/}
echo "run.sh: rtq-web at $url"

# Some history: two completed, one failed.
rtq() { "$build/client/rtq" --redis "$redis" "$@"; }
for i in 1 2; do rtq enqueue rtq.echo "{\"i\":$i}" --wait=20 >/dev/null; done
rtq enqueue rtq.fail '{}' --wait=20 >/dev/null || true

echo "==== promtool check metrics"
curl -sf -H "Authorization: Bearer $token" "${url}metrics" >"$tmp/metrics.txt"
promtool check metrics <"$tmp/metrics.txt"
grep -q '^rtq_tasks_total{queue="default",status="completed"} 2$' "$tmp/metrics.txt" || {
  echo "run.sh: /metrics lacks the completed count" >&2; cat "$tmp/metrics.txt"; exit 1; }
# The three runs (two echo, one fail) in the run-time histogram.
grep -q '^rtq_task_run_seconds_count{queue="default"} 3$' "$tmp/metrics.txt" &&
  grep -q '^rtq_task_run_seconds_bucket{queue="default",le="+Inf"} 3$' "$tmp/metrics.txt" || {
  echo "run.sh: /metrics lacks the run-time histogram" >&2; cat "$tmp/metrics.txt"; exit 1; }
echo "promtool: ok"

echo "==== prometheus scrapes rtq-web"
prom_port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
cat >"$tmp/prometheus.yml" <<YML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: rtq-web
    authorization:
      type: Bearer
      credentials_file: $tmp/token
    static_configs:
      - targets: ['$hostport']
YML
promtool check config "$tmp/prometheus.yml" >/dev/null
prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/prom" \
  --web.listen-address="127.0.0.1:$prom_port" >"$tmp/prometheus.log" 2>&1 &
pids="$pids $!"
query="http://127.0.0.1:$prom_port/api/v1/query?query=rtq_tasks_total%7Bqueue%3D%22default%22%2Cstatus%3D%22completed%22%7D"
scraped() { curl -sf "$query" | grep -q '"value":\[[0-9.]*,"2"\]'; }
wait_for 60 scraped || { echo "run.sh: prometheus never had rtq_tasks_total" >&2; tail -20 "$tmp/prometheus.log"; curl -s "$query"; exit 1; }
echo "prometheus: $(curl -sf "$query")"
# The histogram as Prometheus reads it: its count, and a quantile over the
# buckets (the three runs are instant, so the median is within le 0.005).
hquery="http://127.0.0.1:$prom_port/api/v1/query?query=rtq_task_run_seconds_count%7Bqueue%3D%22default%22%7D"
curl -sf "$hquery" | grep -q '"value":\[[0-9.]*,"3"\]' || {
  echo "run.sh: prometheus lacks rtq_task_run_seconds_count" >&2; curl -s "$hquery"; exit 1; }
qquery="http://127.0.0.1:$prom_port/api/v1/query?query=histogram_quantile(0.5%2Crtq_task_run_seconds_bucket%7Bqueue%3D%22default%22%7D)"
curl -sf "$qquery" | grep -q '"value":\[[0-9.]*,"0\.00[0-9]*"\]' || {
  echo "run.sh: prometheus histogram_quantile over rtq_task_run_seconds_bucket failed" >&2; curl -s "$qquery"; exit 1; }
echo "prometheus: $(curl -sf "$qquery")"

echo "==== browser (chromium + puppeteer-core)"
(cd "$root/web/tests/browser" && { [ -d node_modules/puppeteer-core ] || npm ci --no-audit --no-fund; })
RTQ_WEB_URL=$url RTQ_WEB_TOKEN=$token RTQ_REDIS_URL=$redis RTQ_CLI=$build/client/rtq \
  RTQ_REDIS_CLI_SOCK=$sock RTQ_SCREENSHOT_DIR=$build/screenshots \
  node --test "$root/web/tests/browser/dashboard.test.mjs"
