#!/usr/bin/env bash
# run.sh - runs docker-compose.yml for real, with Debian's podman (4.3) and
# docker-compose (1.29), and checks what a deployment relies on:
#
#   images    debian:bookworm-slim (and :bookworm) built with debootstrap and
#             `podman import`, a stand-in for redis:7.0-bookworm (Debian's
#             redis-server), both only when missing (they stay cached), then
#             the project's Dockerfile
#   up        `up -d --scale worker=3` under a unique project name; every
#             container turns healthy (the test runs the healthchecks: podman
#             here has no systemd to run them)
#   load      1,000 tasks enqueued from a container all complete; `rtq
#             workers` lists 3 workers and each ran some (task hash `worker`)
#   kill      `podman kill` of a worker with tasks running: they are
#             redelivered and completed, 0 lost
#   stop      `docker-compose stop worker` (SIGTERM) mid-task: each worker
#             finishes or hands back its tasks and exits 0 within
#             stop_grace_period; started again, the workers complete the rest
#   crash     `rtq.crash` with force (a SIGSEGV in the handler): the task
#             fails WORKER_CRASH, every worker container still runs with the
#             same id, start time, restart count and worker id, and the next
#             task completes (the workers run in process isolation)
#   down      `down -v` leaves no container, network, volume or process
#   cluster   the `cluster` profile: 3 Redis Cluster primaries, the broker
#             and `--scale cluster-worker=2`; 100 tasks into each of three
#             queues (one per primary) all complete, both workers ran some,
#             every primary holds keys; then down -v as above
#
# Also static checks: compose refuses to start without RTQ_REDIS_PASSWORD,
# Redis is not published, deploy/ YAML parses, the ACL example matches
# docs/OPERATIONS.md. Prints the time of each phase.
#
#   tests/containers/run.sh            as root; installs what is missing
#   --keep                             leave the project up on failure (debug)
#   RTQ_DEBIAN_MIRROR=URL              debootstrap mirror (deb.debian.org)
#
# Only what it creates is touched: containers, network and volume carry the
# project's label and name; the podman API service it starts is stopped by
# its PID. Budget: under 5 minutes cold (images built), about 1.5 warm.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
here=$root/tests/containers
keep=0
for arg in "$@"; do
  case $arg in
    --keep) keep=1 ;;
    -h | --help) sed -n '2,41p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $arg (see --help)" >&2; exit 2 ;;
  esac
done

"$root/scripts/install-deps.sh" --containers
export CONTAINERS_CONF=$here/containers.conf
py=/usr/bin/python3

# ---- phases and their times -------------------------------------------
started=$SECONDS
phase_name=""
phase_started=$SECONDS
timings=()
phase_end() {
  [ -n "$phase_name" ] || return 0
  timings+=("$(printf '%-34s %4ss' "$phase_name" "$((SECONDS - phase_started))")")
  printf -- '---- %s: %ss\n' "$phase_name" "$((SECONDS - phase_started))"
  phase_name=""
}
phase() {
  phase_end
  phase_name=$1
  phase_started=$SECONDS
  printf '\n==== containers: %s ====\n' "$1"
}
say() { printf '  [%3ss] %s\n' "$((SECONDS - phase_started))" "$*"; }
die() {
  printf 'run.sh: FAIL: %s\n' "$*" >&2
  exit 1
}

# ---- the project and its cleanup ---------------------------------------
proj="rtqct$$$(date +%s | tail -c 6)"
tmp=$(mktemp -d /tmp/rtq-containers.XXXXXX)
sock=$tmp/podman.sock
export DOCKER_HOST=unix://$sock
export COMPOSE_INTERACTIVE_NO_CLI=1
svc_pid=""
health_pid=""
project_up=0
label="com.docker.compose.project=$proj"

files=(-f "$root/docker-compose.yml")
env_file=$tmp/compose.env
dc() { docker-compose --ansi never -p "$proj" "${files[@]}" --env-file "$env_file" "$@"; }
ours() { podman ps -a -q --filter "label=$label"; }
# up -d waits for the healthchecks it depends on, without a limit of its own.
dc_up() {
  timeout 180 docker-compose --ansi never -p "$proj" "${files[@]}" --env-file "$env_file" up -d "$@" 2>&1 |
    sed 's/^/  /'
  [ "${PIPESTATUS[0]}" = 0 ] || die "docker-compose up $* failed"
}

main_pid=$BASHPID
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  # A subshell (the healthcheck loop, a pipeline) that ends runs this trap
  # too; only the script itself cleans up.
  [ "$BASHPID" = "$main_pid" ] || exit "$rc"
  phase_end
  if [ -n "$health_pid" ]; then
    rm -f "$tmp/health-loop"
    kill "$health_pid" 2>/dev/null || true
    wait "$health_pid" 2>/dev/null || true
  fi
  if [ "$rc" -ne 0 ] && [ "$project_up" = 1 ]; then
    echo "---- logs of the failed run (last 30 lines per service) ----"
    dc logs --no-color --tail 30 2>&1 | tail -150 || true
  fi
  if [ "$project_up" = 1 ] && [ "$keep" = 1 ] && [ "$rc" -ne 0 ]; then
    echo "run.sh: --keep: project $proj left up; DOCKER_HOST=$DOCKER_HOST (service pid $svc_pid)"
    exit "$rc"
  fi
  if [ "$project_up" = 1 ]; then
    dc down -v --remove-orphans -t 5 >/dev/null 2>&1 || true
    # Whatever compose left (it failed half way): only this project's.
    local ids
    ids=$(ours || true)
    [ -z "$ids" ] || podman rm -f $ids >/dev/null 2>&1 || true
    podman network rm "${proj}_default" >/dev/null 2>&1 || true
    podman volume rm "${proj}_redis-data" >/dev/null 2>&1 || true
    # And any other volume of the project (the cluster profile's).
    local vols
    vols=$(podman volume ls -q --filter "label=$label" 2>/dev/null || true)
    [ -z "$vols" ] || podman volume rm -f $vols >/dev/null 2>&1 || true
  fi
  if [ -n "$svc_pid" ]; then
    kill "$svc_pid" 2>/dev/null || true
    wait "$svc_pid" 2>/dev/null || true
  fi
  # A debootstrap that died may have left /proc, /sys or /dev mounted in
  # its root: unmount them (they are ours), and never remove across a mount.
  local m
  for m in $(findmnt -rn -o TARGET | grep "^$tmp/" | sort -r); do umount -l "$m" || true; done
  rm -rf --one-file-system "$tmp" 2>/dev/null || true
  if [ "$rc" -eq 0 ]; then
    printf '\n==== containers: phase times ====\n'
    printf '  %s\n' "${timings[@]}"
    printf '  %-34s %4ss\n' "total" "$((SECONDS - started))"
  else
    printf '\n==== containers: FAILED (exit %s) after %ss ====\n' "$rc" "$((SECONDS - started))"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Polls a command until it succeeds; fails the run after timeout seconds.
wait_for() {
  local timeout=$1 what=$2
  shift 2
  local end=$((SECONDS + timeout))
  until "$@"; do
    [ "$SECONDS" -lt "$end" ] || die "timed out after ${timeout}s waiting for: $what"
    sleep 0.5
  done
}

# ---- static checks -----------------------------------------------------
phase "static checks"
: >"$tmp/empty.env" # not the checkout's .env, which a user may have
# shellcheck disable=SC2016 # the message is compose's, not ours
if out=$(env -u RTQ_REDIS_PASSWORD RTQ_WEB_TOKEN=t docker-compose -f "$root/docker-compose.yml" --env-file "$tmp/empty.env" config -q 2>&1); then
  die "compose accepted a configuration without RTQ_REDIS_PASSWORD"
fi
echo "$out" | grep -q 'set RTQ_REDIS_PASSWORD in .env' || die "unclear error without a password: $out"
say "without RTQ_REDIS_PASSWORD compose refuses: $(echo "$out" | tail -1 | cut -c1-100)..."
if out=$(env -u RTQ_WEB_TOKEN RTQ_REDIS_PASSWORD=x docker-compose -f "$root/docker-compose.yml" --env-file "$tmp/empty.env" config -q 2>&1); then
  die "compose accepted a configuration without RTQ_WEB_TOKEN"
fi
echo "$out" | grep -q 'set RTQ_WEB_TOKEN in .env' || die "unclear error without a web token: $out"
say "without RTQ_WEB_TOKEN compose refuses too"
RTQ_REDIS_PASSWORD=x RTQ_WEB_TOKEN=t docker-compose -f "$root/docker-compose.yml" --env-file "$tmp/empty.env" config >"$tmp/config.yml"
RTQ_REDIS_PASSWORD=x RTQ_WEB_TOKEN=t docker-compose -f "$root/docker-compose.yml" -f "$root/deploy/compose/expose-redis.yml" \
  --env-file "$tmp/empty.env" config >"$tmp/config-exposed.yml"
RTQ_REDIS_PASSWORD=x RTQ_WEB_TOKEN=t RTQ_BROKER_PASSWORD=b RTQ_WORKER_PASSWORD=w RTQ_PRODUCER_PASSWORD=p \
  RTQ_MONITOR_PASSWORD=m docker-compose -f "$root/docker-compose.yml" -f "$root/deploy/compose/acl.yml" \
  --env-file "$tmp/empty.env" config >"$tmp/config-acl.yml"
"$py" "$here/check_static.py" "$root" "$tmp/config.yml" "$tmp/config-exposed.yml" "$tmp/config-acl.yml"

# ---- the podman API service -------------------------------------------
phase "podman service"
podman system service --time=0 "unix://$sock" >"$tmp/service.log" 2>&1 &
svc_pid=$!
wait_for 20 "the podman socket" test -S "$sock"
say "podman $(podman version --format '{{.Client.Version}}'), $(docker-compose version --short), pid $svc_pid"

# ---- base images ------------------------------------------------------
base=docker.io/library/debian:bookworm-slim
redis_image=docker.io/library/redis:7.0-bookworm
phase "base image (debootstrap + import)"
if podman image exists "$base"; then
  say "$base present (cached)"
else
  mirror=${RTQ_DEBIAN_MIRROR:-http://deb.debian.org/debian}
  rootfs=$tmp/rootfs
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$tmp/debootstrap.log" 2>&1 ||
    { tail -20 "$tmp/debootstrap.log"; die "debootstrap failed"; }
  # What the official slim image leaves out: package lists and caches, docs.
  rm -rf "$rootfs"/var/cache/apt/* "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* \
    "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/*
  printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-exclude /usr/share/man/*' \
    'path-exclude /usr/share/info/*' 'path-exclude /usr/share/locale/*' \
    >"$rootfs/etc/dpkg/dpkg.cfg.d/slim"
  printf 'APT::Install-Recommends "false";\n' >"$rootfs/etc/apt/apt.conf.d/slim"
  rm -f "$rootfs/etc/apt/sources.list"
  cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<'EOF'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  tar -C "$rootfs" -c . | podman import --change 'CMD ["bash"]' \
    - "$base" >"$tmp/import.log" 2>&1 ||
    { cat "$tmp/import.log"; die "podman import failed"; }
  rm -rf --one-file-system "$rootfs"
  say "built $base: $(podman image inspect -f '{{.Size}}' "$base" | awk '{printf "%.0f MB", $1/1e6}')"
fi
podman image exists docker.io/library/debian:bookworm || podman tag "$base" docker.io/library/debian:bookworm

# The Redis stand-in builds (network-bound apt) while the rtq image builds.
redis_pid=""
if podman image exists "$redis_image"; then
  say "$redis_image present (cached)"
else
  podman build -q --layers -t "$redis_image" -f "$here/redis.Containerfile" "$here" \
    >"$tmp/build-redis.log" 2>&1 &
  redis_pid=$!
fi

phase "rtq image (Dockerfile)"
image=localhost/rtq-test:latest
build_image=localhost/rtq-test-build:latest
# The build stage gets a tag of its own too, so that the layers of a
# previous build (cached by --layers) can be removed by id once replaced,
# without touching anybody else's images.
old_ids=$(podman image inspect -f '{{.Id}}' "$image" "$build_image" 2>/dev/null || true)
{ podman build --layers --target build -t "$build_image" -f "$root/Dockerfile" "$root" &&
  podman build --layers -t "$image" -f "$root/Dockerfile" "$root"; } >"$tmp/build-rtq.log" 2>&1 ||
  { tail -40 "$tmp/build-rtq.log"; die "the rtq image did not build"; }
new_ids=$(podman image inspect -f '{{.Id}}' "$image" "$build_image")
for id in $old_ids; do
  case " $(echo $new_ids) " in *" $id "*) ;; *) podman rmi "$id" >/dev/null 2>&1 || true ;; esac
done
say "$image: $(podman image inspect -f '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1/1e6}')"
if [ -n "$redis_pid" ]; then
  wait "$redis_pid" || { tail -30 "$tmp/build-redis.log"; die "the redis stand-in did not build"; }
  say "built $redis_image (waited $((SECONDS - phase_started))s in all)"
fi

# ---- up ------------------------------------------------------------------
phase "up --scale worker=3"
password=$(od -An -N18 -tx1 /dev/urandom | tr -d ' \n')
web_token=$(od -An -N18 -tx1 /dev/urandom | tr -d ' \n')
web_port=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# Short heartbeats and grace so that the kill and stop phases take seconds,
# in the same proportions as the defaults (grace < stop_grace_period).
cat >"$tmp/compose.env" <<EOF
RTQ_REDIS_PASSWORD=$password
RTQ_IMAGE=$image
RTQ_SHUTDOWN_GRACE=6s
RTQ_STOP_GRACE_PERIOD=12s
RTQ_HEARTBEAT_INTERVAL=1s
RTQ_HEARTBEAT_TTL=5s
RTQ_WEB_TOKEN=$web_token
RTQ_WEB_PORT=$web_port
EOF
stop_grace=12

# No systemd here, so nothing runs the healthchecks: this loop does, for
# the containers of the project named in the file, until the file goes
# (bounded: 15 min).
echo "$label" >"$tmp/health-loop"
(
  end=$((SECONDS + 900))
  while [ "$SECONDS" -lt "$end" ] && l=$(cat "$tmp/health-loop" 2>/dev/null); do
    for c in $(podman ps -q --filter "label=$l" --filter status=running 2>/dev/null); do
      podman healthcheck run "$c" >/dev/null 2>&1 || true
    done
    sleep 2
  done
) &
health_pid=$!

project_up=1
dc_up --scale worker=3
broker=${proj}_broker_1
redisc=${proj}_redis_1
webc=${proj}_web_1
workers=("${proj}_worker_1" "${proj}_worker_2" "${proj}_worker_3")
all=("$redisc" "$broker" "$webc" "${workers[@]}")
container_ids=$(ours | tr '\n' ' ')

health_of() { podman inspect -f '{{.State.Health.Status}}' "$1" 2>/dev/null; }
all_healthy() {
  local c
  for c in "${all[@]}"; do [ "$(health_of "$c")" = healthy ] || return 1; done
}
wait_for 60 "every container healthy" all_healthy
for c in "${all[@]}"; do say "$c: $(health_of "$c")"; done

# Redis is reachable from the project's network only, and with the password.
[ -z "$(podman port "$redisc" 2>/dev/null)" ] || die "redis is published: $(podman port "$redisc")"
podman exec "$redisc" redis-cli ping 2>&1 | grep -q NOAUTH || die "redis answers without a password"
[ "$(podman exec "$redisc" redis-cli -a "$password" --no-auth-warning config get protected-mode | tail -1)" = yes ] ||
  die "protected-mode is not yes"
say "redis: not published, NOAUTH without the password, protected-mode yes"

# ---- helpers that run the rtq CLI in the broker's container ------------
# The test's own CLI calls reach Redis by its address on the project's
# network, not by the name `redis`: podman 4.3's DNS (aardvark-dns) here
# fails to resolve names for seconds while a container of the network is
# killed or stopped, which would fail a fresh CLI process (the rtq services
# keep their connections, and reconnect with backoff). Exit status 4
# ("Redis unreachable") is still retried a few times; only the output of
# the call that succeeded is passed on.
redis_ip() { podman inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$redisc"; }
rtq_as() {
  local url=$1 try rc out
  shift
  for try in 1 2 3 4 5 6 7 8 9 10; do
    rc=0
    out=$(podman exec -e RTQ_LOG_LEVEL=WARNING -e "RTQ_REDIS_URL=$url" "$broker" rtq "$@") || rc=$?
    if [ "$rc" != 4 ]; then
      [ -z "$out" ] || printf '%s\n' "$out"
      return "$rc"
    fi
    echo "  (rtq $1: Redis unreachable, try $try of 10)" >&2
    sleep 1
  done
  return "$rc"
}
cli_url="redis://:$password@$(redis_ip):6379/0"
exec_env=(-e "RTQ_REDIS_URL=$cli_url")
rtq() { rtq_as "$cli_url" "$@"; }
json() { "$py" -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
status_count() { rtq stats --json | json "d['statuses'].get('$1', 0)"; }
redelivered() { rtq stats --json | json "sum(q['counters'].get('redelivered', 0) for q in d['queues'])"; }
worker_id_of() { # the rtq worker id running in container $1 (its host name)
  local host
  host=$(podman inspect -f '{{.Config.Hostname}}' "$1")
  rtq workers --json | json "' '.join(w['id'] for w in d if w['host'] == '$host')"
}
# enqueue N ARGS_JSON: N rtq.sleep tasks, from inside the broker's container,
# four loops at a time. Prints nothing; fails when any enqueue fails.
enqueue() {
  podman exec "${exec_env[@]}" -e RTQ_LOG_LEVEL=WARNING -e N="$1" -e ARGS="$2" "$broker" sh -c '
    per=$((N / 4)); fail=0; pids=""
    for j in 1 2 3 4; do
      ( i=0; while [ $i -lt $per ]; do rtq enqueue rtq.sleep "$ARGS" >/dev/null || exit 1; i=$((i + 1)); done ) &
      pids="$pids $!"
    done
    for p in $pids; do wait "$p" || fail=1; done
    exit $fail'
}
completed_is() { [ "$(status_count completed)" = "$1" ]; }

# ---- load ----------------------------------------------------------------
phase "load: 1000 tasks, 3 workers"
[ "$(rtq workers --json | json 'len(d)')" = 3 ] || die "rtq workers does not list 3 workers"
rtq workers | sed 's/^/  /'
t=$SECONDS
enqueue 1000 '{"seconds":0.05,"steps":1}'
say "enqueued 1000 tasks from $broker in $((SECONDS - t))s"
wait_for 120 "1000 tasks completed" completed_is 1000
for s in failed pending running; do [ "$(status_count "$s")" = 0 ] || die "$(status_count "$s") tasks $s"; done
rtq list --status completed --limit 10000 --json >"$tmp/load.json"
"$py" - "$tmp/load.json" <<'EOF'
import collections, json, sys
tasks = json.load(open(sys.argv[1]))
per = collections.Counter(t["worker"] for t in tasks)
assert len(tasks) == 1000, len(tasks)
for w, n in sorted(per.items()):
    print(f"  worker {w}: {n} tasks")
assert len(per) == 3 and min(per.values()) > 0, f"expected 3 workers with tasks each, got {dict(per)}"
EOF
say "1000 of 1000 completed, 0 failed; every worker ran some"

# ---- web -------------------------------------------------------------------
# The dashboard, from the host through its loopback-only port: the API
# needs the token, shows the load above, and /metrics is Prometheus text.
web_check() { # web_check MODE: "rw", or "ro" (read-only, as the monitor)
  "$py" "$here/web_check.py" "$web_port" "$web_token" "$1"
}
phase "web: rtq-web through its loopback port"
web_check rw || die "rtq-web checks failed"

# ---- kill ----------------------------------------------------------------
phase "kill: podman kill mid-load"
victim=${workers[2]}
victim_id=$(worker_id_of "$victim")
[ -n "$victim_id" ] || die "no worker id for $victim"
redelivered_before=$(redelivered)
enqueue 300 '{"seconds":4,"steps":4}'
victim_busy() { [ "$(rtq workers --json | json "sum(w['busy'] for w in d if w['id'] == '$victim_id')")" -ge 10 ]; }
wait_for 30 "$victim running tasks" victim_busy
podman kill "$victim" >/dev/null
# What it held when it died: running under its id (nothing can finish them
# now; the broker takes them back only after the heartbeat TTL, 5 s).
rtq list --status running --limit 10000 --json |
  json "'\n'.join(t['id'] for t in d if t['worker'] == '$victim_id')" >"$tmp/victim.ids"
say "killed $victim ($victim_id) running $(wc -l <"$tmp/victim.ids") tasks"
[ -s "$tmp/victim.ids" ] || die "the victim held no task when it was killed"
wait_for 90 "1300 tasks completed" completed_is 1300
for s in failed pending running; do [ "$(status_count "$s")" = 0 ] || die "$(status_count "$s") tasks $s"; done
redelivered_after=$(redelivered)
# Each task the victim was running ended completed, by another worker.
podman exec -i "${exec_env[@]}" "$broker" sh -c 'while read -r id; do rtq status "$id" --json; echo; done' \
  <"$tmp/victim.ids" >"$tmp/victim.json"
"$py" - "$tmp/victim.json" "$victim_id" <<'EOF'
import json, sys
text, victim = open(sys.argv[1]).read(), sys.argv[2]
dec, tasks, i = json.JSONDecoder(), [], 0
while i < len(text):
    if text[i].isspace():
        i += 1
        continue
    t, i = dec.raw_decode(text, i)
    tasks.append(t)
done = [t for t in tasks if t["status"] == "completed" and t["worker"] != victim]
print(f"  the victim's {len(tasks)} running tasks: {len(done)} completed by another worker")
assert tasks and len(done) == len(tasks), [t["id"] for t in tasks if t not in done]
EOF
[ "$redelivered_after" -gt "$redelivered_before" ] || die "no redelivery counted"
say "1300 of 1300 completed, 0 lost, $((redelivered_after - redelivered_before)) redelivered"
say "$victim after the kill: $(podman inspect -f '{{.State.Status}}' "$victim") (restart: unless-stopped)"

# ---- stop ----------------------------------------------------------------
phase "stop: docker-compose stop worker"
# Short tasks (2 s) finish within the grace (6 s); long ones (15 s, started
# a few seconds before the stop) outlive it and are handed back.
enqueue 8 '{"seconds":15,"steps":15}'
enqueue 40 '{"seconds":2,"steps":2}'
running_is_48() { [ "$(status_count running)" -ge 48 ]; }
wait_for 30 "48 tasks running" running_is_48
# The killed worker may have been restarted (restart: unless-stopped) or not.
running_workers=()
for c in "${workers[@]}"; do
  [ "$(podman inspect -f '{{.State.Status}}' "$c")" = running ] && running_workers+=("$c")
done
t=$SECONDS
stop_at=$(date +%s.%N)
dc stop worker 2>&1 | sed 's/^/  /'
took=$((SECONDS - t))
for c in "${running_workers[@]}"; do
  code=$(podman inspect -f '{{.State.ExitCode}}' "$c")
  st=$(podman inspect -f '{{.State.Status}}' "$c")
  # The container's own end, against the time docker-compose stop began.
  fin=$(date -d "$(podman inspect -f '{{.State.FinishedAt}}' "$c" | sed 's/ [A-Z]*$//')" +%s.%N)
  secs=$(awk -v a="$fin" -v b="$stop_at" 'BEGIN { printf "%.1f", a - b }')
  say "$c: $st, exit code $code, $secs s after the stop began"
  [ "$code" = 0 ] || die "$c exited with $code"
  awk -v s="$secs" -v g="$stop_grace" 'BEGIN { exit !(s < g) }' || die "$c took ${secs}s"
done
podman logs --tail 4 "${running_workers[0]}" 2>&1 | cut -c1-220 | sed 's/^/    /'
[ "$took" -lt "$stop_grace" ] || die "stop took ${took}s, not within stop_grace_period ${stop_grace}s"
[ "$(status_count running)" = 0 ] || die "$(status_count running) tasks still running after the stop"
pending=$(status_count pending)
say "stopped in ${took}s (stop_grace_period ${stop_grace}s): $((1348 - $(status_count completed) - pending)) lost, $pending handed back"
[ "$pending" -ge 1 ] || die "no task was handed back"
[ "$(($(status_count completed) + pending))" = 1348 ] || die "tasks lost in the stop"
dc_up --scale worker=3
wait_for 60 "1348 tasks completed after the restart" completed_is 1348
[ "$(status_count failed)" = 0 ] || die "$(status_count failed) tasks failed"
say "started again: 1348 of 1348 completed"

# ---- crash ---------------------------------------------------------------------
phase "crash: rtq.crash force"
# The compose workers run handlers in process isolation: a handler that
# crashes (rtq.crash with force, a SIGSEGV) takes its forked child down,
# not the worker. The task fails WORKER_CRASH; every worker container keeps
# running, with the same container id, start time and restart count, and
# its worker id; the next task completes.
state_of() { podman inspect -f '{{.Id}} {{.State.Status}} {{.State.StartedAt}} {{.RestartCount}}' "$1"; }
declare -A before_state before_wid
for c in "${workers[@]}"; do
  before_state[$c]=$(state_of "$c")
  before_wid[$c]=$(worker_id_of "$c")
  case ${before_state[$c]} in *" running "*) ;; *) die "$c is not running: ${before_state[$c]}" ;; esac
  [ -n "${before_wid[$c]}" ] || die "no worker id for $c"
done
crash_id=crash-$proj
rtq enqueue rtq.crash '{"force":true}' --retries 0 --id "$crash_id" >/dev/null || die "enqueue rtq.crash failed"
crash_status() { rtq status "$crash_id" --json | json "d['status']"; }
crash_ended() { case $(crash_status) in failed | completed | cancelled | timeout | dead) return 0 ;; *) return 1 ;; esac; }
wait_for 60 "the rtq.crash task ended" crash_ended
rtq status "$crash_id" --json >"$tmp/crash.json"
crash_line=$("$py" -c 'import json,sys; d=json.load(open(sys.argv[1])); e=d.get("error") or {}; print(d["status"], e.get("code") or d.get("error_code"), d["worker"])' "$tmp/crash.json")
read -r crash_st crash_code crash_wid <<<"$crash_line"
say "rtq.crash ended $crash_st $crash_code on worker $crash_wid"
[ "$crash_st" = failed ] || die "rtq.crash ended $crash_st, not failed: $(cat "$tmp/crash.json")"
[ "$crash_code" = WORKER_CRASH ] || die "rtq.crash failed with $crash_code, not WORKER_CRASH"
ran_it=""
for c in "${workers[@]}"; do
  [ "${before_wid[$c]}" = "$crash_wid" ] && ran_it=$c
  [ "$(state_of "$c")" = "${before_state[$c]}" ] || die "$c changed: ${before_state[$c]} -> $(state_of "$c")"
  [ "$(worker_id_of "$c")" = "${before_wid[$c]}" ] || die "$c's worker id changed"
done
[ -n "$ran_it" ] || die "no worker container had the id $crash_wid"
say "$ran_it ran it and still runs: $(state_of "$ran_it" | cut -c1-12)..., no restart, same worker id"
rtq enqueue rtq.echo '{"after":"crash"}' --id "after-$crash_id" >/dev/null || die "enqueue after the crash failed"
after_completed() { [ "$(rtq status "after-$crash_id" --json | json "d['status']")" = completed ]; }
wait_for 60 "the task after the crash completed" after_completed
say "the next task completed"

# ---- down ------------------------------------------------------------------
# down -v, then nothing of the project may be left: containers, network,
# volume, or a conmon/runc process naming one of its containers.
down_and_check() {
  local left="" id
  container_ids="$container_ids $(ours | tr '\n' ' ')"
  dc down -v -t "$stop_grace" 2>&1 | sed 's/^/  /'
  project_up=0
  [ -z "$(ours)" ] || die "containers left: $(ours)"
  ! podman network exists "${proj}_default" || die "network ${proj}_default left"
  [ -z "$(podman volume ls -q --filter "label=$label")" ] || die "volumes left: $(podman volume ls -q --filter "label=$label")"
  ! podman volume exists "${proj}_redis-data" || die "volume ${proj}_redis-data left"
  for id in $container_ids; do
    if ps -eo args= | grep -v grep | grep -q "$id"; then left="$left $id"; fi
  done
  [ -z "$left" ] || die "processes left for containers:$left"
  say "no container, network, volume or process of $proj left"
}
phase "down -v"
down_and_check

# ---- acl: a Redis user per role ----------------------------------------------
phase "acl: deploy/compose/acl.yml"
# The example ACL file with this run's passwords, plus an admin to read the
# ACL LOG. It lives in the temp dir, named by RTQ_REDIS_ACLFILE.
proj=${proj}acl
label="com.docker.compose.project=$proj"
echo "$label" >"$tmp/health-loop"
container_ids=""
newpw() { od -An -N12 -tx1 /dev/urandom | tr -d ' \n'; }
pw_broker=$(newpw)
pw_worker=$(newpw)
pw_producer=$(newpw)
pw_monitor=$(newpw)
pw_admin=$(newpw)
aclfile=$tmp/users.acl
sed -e "s/>CHANGE-ME-broker />$pw_broker /" -e "s/>CHANGE-ME-worker />$pw_worker /" \
  -e "s/>CHANGE-ME-producer />$pw_producer /" -e "s/>CHANGE-ME-monitor />$pw_monitor /" \
  "$root/deploy/redis/users.acl.example" >"$aclfile"
echo "user admin on >$pw_admin ~* &* +@all" >>"$aclfile"
chmod 644 "$aclfile"
! grep -q CHANGE-ME "$aclfile" || die "the test's ACL file still has a CHANGE-ME password"
env_file=$tmp/compose-acl.env
{
  cat "$tmp/compose.env"
  echo "RTQ_BROKER_PASSWORD=$pw_broker"
  echo "RTQ_WORKER_PASSWORD=$pw_worker"
  echo "RTQ_PRODUCER_PASSWORD=$pw_producer"
  echo "RTQ_MONITOR_PASSWORD=$pw_monitor"
  echo "RTQ_REDIS_ACLFILE=$aclfile"
} >"$env_file"
files+=(-f "$root/deploy/compose/acl.yml")
project_up=1
broker=${proj}_broker_1
redisc=${proj}_redis_1
# The namespace's mark, the admin's once, before any rtq process starts
# (docs/OPERATIONS.md section 3): no role may write it, nor read the keys
# the start-up check looks at when it is missing.
set_mark() {
  local out
  out=$(podman exec "$redisc" redis-cli --user admin --pass "$pw_admin" --no-auth-warning \
    SET '{rtq}:version' 2 NX 2>&1) && { [ "$out" = OK ] || [ -z "$out" ]; }
}
dc_up redis
wait_for 60 "the namespace's mark set" set_mark
dc_up --scale worker=1
say "up"
all=("$redisc" "$broker" "${proj}_web_1" "${proj}_worker_1")
wait_for 60 "every container healthy" all_healthy
say "every container healthy"
podman exec "$redisc" redis-cli ping 2>&1 | grep -q NOAUTH || die "the default user is not off"
# Tasks come from the producer role; the CLI reads as the monitor.
exec_env=(-e "RTQ_REDIS_URL=redis://rtq-producer:$pw_producer@$(redis_ip):6379/0")
rtq() { rtq_as "redis://rtq-monitor:$pw_monitor@$(redis_ip):6379/0" "$@"; }
enqueue 20 '{"seconds":0.1,"steps":1}'
say "enqueued 20 tasks as rtq-producer"
wait_for 60 "20 tasks completed" completed_is 20
[ "$(status_count failed)" = 0 ] || die "$(status_count failed) tasks failed"
# What the roles were refused, apart from CONFIG GET (the eviction check).
podman exec "$redisc" redis-cli --user admin --pass "$pw_admin" --no-auth-warning ACL LOG 128 >"$tmp/acl.log"
denied=$(grep -A1 -x object "$tmp/acl.log" | grep -v -x -e object -e -- | grep -v '^config' | sort -u || true)
[ -z "$denied" ] || die "ACL denials: $denied"
web_check ro || die "rtq-web (monitor role, read-only) checks failed"
say "broker, worker, producer and rtq-web (monitor) log in as their roles: 20 of 20 completed, no denial but CONFIG GET"
down_and_check

# ---- cluster: the compose file's cluster profile -------------------------------
phase "cluster: profile, 3 primaries, 2 workers"
# A Redis Cluster of three primaries (cluster-init joins them), its broker
# and two workers serving alpha, delta and reports, one queue on each
# primary. Tasks into the three queues all complete, both workers ran some,
# every primary holds keys; then down -v as above.
proj=${proj%acl}cl
label="com.docker.compose.project=$proj"
echo "$label" >"$tmp/health-loop"
container_ids=""
env_file=$tmp/compose.env
files=(-f "$root/docker-compose.yml" --profile cluster)
project_up=1
dc_up --scale cluster-worker=2 cluster-broker cluster-worker
nodes=("${proj}_cluster-redis-1_1" "${proj}_cluster-redis-2_1" "${proj}_cluster-redis-3_1")
broker=${proj}_cluster-broker_1
all=("${nodes[@]}" "$broker" "${proj}_cluster-worker_1" "${proj}_cluster-worker_2")
wait_for 60 "every container healthy" all_healthy
[ "$(podman inspect -f '{{.State.ExitCode}}' "${proj}_cluster-init_1")" = 0 ] || die "cluster-init failed"
say "$(podman logs "${proj}_cluster-init_1" 2>&1 | tail -1 | sed "s/\x1b\[[0-9;]*m//g"); every container healthy"
# Only the profile's services run: not the single-node redis, broker, web.
for c in $(podman ps -a --format '{{.Names}}' --filter "label=$label"); do
  case $c in "${proj}_cluster-"*) ;; *) die "$c runs under the cluster profile" ;; esac
done
ip_of() { podman inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$1"; }
cluster_url="redis+cluster://:$password@$(ip_of "${nodes[0]}"):6379,$(ip_of "${nodes[1]}"):6379,$(ip_of "${nodes[2]}"):6379"
rtq() { rtq_as "$cluster_url" "$@"; }
t=$SECONDS
podman exec -e "RTQ_REDIS_URL=$cluster_url" -e RTQ_LOG_LEVEL=WARNING "$broker" sh -c '
  fail=0; pids=""
  for q in alpha delta reports; do
    ( i=0; while [ $i -lt 100 ]; do rtq enqueue rtq.sleep "{\"seconds\":0.02,\"steps\":1}" --queue $q >/dev/null || exit 1; i=$((i + 1)); done ) &
    pids="$pids $!"
  done
  for p in $pids; do wait "$p" || fail=1; done
  exit $fail' || die "enqueue into the cluster failed"
say "enqueued 300 tasks (100 each into alpha, delta, reports) in $((SECONDS - t))s"
wait_for 60 "300 tasks completed on the cluster" completed_is 300
for s in failed pending running; do [ "$(status_count "$s")" = 0 ] || die "$(status_count "$s") tasks $s"; done
rtq list --status completed --limit 1000 --json >"$tmp/cluster.json"
"$py" - "$tmp/cluster.json" <<'EOF'
import collections, json, sys
tasks = json.load(open(sys.argv[1]))
assert len(tasks) == 300, len(tasks)
per_worker = collections.Counter(t["worker"] for t in tasks)
per_queue = collections.Counter(t["queue"] for t in tasks)
print(f"  per queue: {dict(sorted(per_queue.items()))}; per worker: {sorted(per_worker.values())}")
assert per_queue == {"alpha": 100, "delta": 100, "reports": 100}, per_queue
assert len(per_worker) == 2 and min(per_worker.values()) > 0, per_worker
EOF
for n in "${nodes[@]}"; do
  keys=$(podman exec -e "REDISCLI_AUTH=$password" "$n" redis-cli dbsize)
  say "$n: $keys keys"
  [ "$keys" -gt 0 ] || die "$n holds no key: the queues are not spread over the shards"
done
down_and_check

# ---- the podman service -------------------------------------------------------
phase "stop the podman service"
rm -f "$tmp/health-loop"
kill "$health_pid" 2>/dev/null || true
wait "$health_pid" 2>/dev/null || true
health_pid=""
kill "$svc_pid"
wait "$svc_pid" 2>/dev/null || true
! kill -0 "$svc_pid" 2>/dev/null || die "the podman service ($svc_pid) still runs"
svc_pid=""
say "podman service stopped"
phase_end
