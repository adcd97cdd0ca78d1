"""check_static.py ROOT CONFIG EXPOSED ACL - what tests/containers/run.sh
checks without running anything: the compose configuration as docker-compose
resolved it (plain, with deploy/compose/expose-redis.yml, with
deploy/compose/acl.yml), the Kubernetes manifests in deploy/k8s/, and that
deploy/redis/users.acl.example has the rules of
docs/OPERATIONS.md section 3.
Run with Debian's /usr/bin/python3 (python3-yaml)."""
import glob
import os
import re
import sys

import yaml

root, plain, exposed, acl = sys.argv[1:5]


def load(path):
    with open(path) as f:
        return yaml.safe_load(f)


def check(cond, msg):
    if not cond:
        sys.exit(f"check_static: FAIL: {msg}")


def arg_after(cmd, flag):
    return cmd[cmd.index(flag) + 1] if flag in cmd else None


rtq_services = ("broker", "worker", "producer", "web")

c = load(plain)["services"]
redis = c["redis"]
check("ports" not in redis, "redis is published without the expose-redis override")
check(arg_after(redis["command"], "--requirepass") == "x", "redis has no --requirepass from .env")
check(arg_after(redis["command"], "--protected-mode") == "yes", "protected-mode is not set to yes")
for name in rtq_services:
    url = c[name]["environment"]["RTQ_REDIS_URL"]
    check(url == "redis://:x@redis:6379/0", f"{name}: RTQ_REDIS_URL is {url}")
    check(c[name].get("image") == "rtq:latest", f"{name}: image {c[name].get('image')}")
worker_cmd = c["worker"]["command"]
check(arg_after(worker_cmd, "--isolation") == "process", "the compose worker runs without --isolation process")
check(c["worker"]["healthcheck"]["test"] == ["CMD", "rtq-worker", "--health"], "worker healthcheck")
check(c["broker"]["healthcheck"]["test"] == ["CMD", "rtq-broker", "--health"], "broker healthcheck")
web = c["web"]
check(web["environment"]["RTQ_WEB_TOKEN"] == "t", "web: RTQ_WEB_TOKEN is not from .env")
wports = web.get("ports", [])
check(len(wports) == 1 and (wports[0].get("host_ip") if isinstance(wports[0], dict)
                            else str(wports[0]).split(":")[0]) == "127.0.0.1",
      f"web is published beyond 127.0.0.1: {wports}")
check("--auth-token-file" in " ".join(web["command"]), "web runs without --auth-token-file")
print("  compose: password from .env, protected-mode yes, Redis not published, "
      "RTQ_REDIS_URL for broker/worker/producer/web, worker --isolation process, health commands, "
      "rtq-web on 127.0.0.1 with the token from .env")

# The cluster profile: three cluster-enabled nodes with the password, and
# its broker and workers on a redis+cluster:// URL naming all three.
for i in (1, 2, 3):
    node = c[f"cluster-redis-{i}"]
    check(node.get("profiles") == ["cluster"], f"cluster-redis-{i} is not in the cluster profile")
    check(arg_after(node["command"], "--cluster-enabled") == "yes", f"cluster-redis-{i} is not cluster-enabled")
    check(arg_after(node["command"], "--requirepass") == "x", f"cluster-redis-{i} has no --requirepass from .env")
    check("ports" not in node, f"cluster-redis-{i} is published")
for name in ("cluster-broker", "cluster-worker"):
    check(c[name].get("profiles") == ["cluster"], f"{name} is not in the cluster profile")
    url = c[name]["environment"]["RTQ_REDIS_URL"]
    want = "redis+cluster://:x@cluster-redis-1:6379,cluster-redis-2:6379,cluster-redis-3:6379"
    check(url == want, f"{name}: RTQ_REDIS_URL is {url}")
check(arg_after(c["cluster-worker"]["command"], "--isolation") == "process", "cluster-worker isolation")
print("  compose cluster profile: 3 cluster-enabled nodes with the password, not published; "
      "broker and workers on redis+cluster://")

e = load(exposed)["services"]["redis"]
ports = e.get("ports", [])
check(len(ports) == 1 and str(ports[0]).startswith("127.0.0.1:"), f"expose-redis: {ports}")
print("  expose-redis.yml publishes Redis on 127.0.0.1 only")

a = load(acl)["services"]
check("--aclfile" in a["redis"]["command"] and "--requirepass" not in a["redis"]["command"], "acl.yml redis command")
for name, user in (("broker", "rtq-broker:b"), ("worker", "rtq-worker:w"), ("producer", "rtq-producer:p"),
                   ("web", "rtq-monitor:m")):
    url = a[name]["environment"]["RTQ_REDIS_URL"]
    check(url == f"redis://{user}@redis:6379/0", f"acl.yml {name}: {url}")
check(a["web"]["environment"]["RTQ_WEB_FLAGS"] == "--read-only", "acl.yml: web is not --read-only")
print("  acl.yml: redis --aclfile, a user per role in each RTQ_REDIS_URL, rtq-web read-only as the monitor")

# The ACL file example: its rules are OPERATIONS.md section 3's, word for
# word.
ops = open(os.path.join(root, "docs/OPERATIONS.md")).read()
section = ops[ops.index("## 3. A Redis user per role"):ops.index("## 4. ")]
example = "users.acl.example"
want = {m.group(1): m.group(2) for m in re.finditer(r"^ACL SETUSER (\S+) (.*)$", section, re.M)}
have = {}
for line in open(os.path.join(root, "deploy/redis", example)):
    words = line.split(None, 2)
    check(len(words) >= 2 and words[0] == "user", f"{example}: not a user line: {line!r}")
    have[words[1]] = words[2].strip() if len(words) > 2 else ""
check(have.pop("default", None) == "off", f"{example}: the default user is not off")
check(want and have == want, f"{example} differs from docs/OPERATIONS.md section 3")
print(f"  {example}: the {len(want)} roles of docs/OPERATIONS.md, default user off")

# Kubernetes manifests: they parse, and each Deployment has a liveness
# probe running the binary's --health and a grace above the shutdown grace.
docs = []
for path in sorted(glob.glob(os.path.join(root, "deploy/k8s/*.yaml"))):
    with open(path) as f:
        docs += [(path, d) for d in yaml.safe_load_all(f) if d is not None]
deployments = [(p, d) for p, d in docs if d.get("kind") == "Deployment"]
check(any(d["metadata"]["name"] == "rtq-worker" for _, d in deployments), "no rtq-worker Deployment")
for path, d in deployments:
    spec = d["spec"]["template"]["spec"]
    check(spec["containers"], f"{path}: no container")
    for ctr in spec["containers"]:
        probe = ctr["livenessProbe"]["exec"]["command"]
        check(probe[0] == ctr["command"][0] and probe[1:] == ["--health"], f"{path}: liveness probe {probe}")
        grace = arg_after(ctr["command"], "--shutdown-grace")
        if grace is not None:
            check(grace.endswith("s") and spec["terminationGracePeriodSeconds"] > int(grace[:-1]),
                  f"{path}: terminationGracePeriodSeconds is not above --shutdown-grace {grace}")
print(f"  deploy/k8s: {len(docs)} documents parse; {len(deployments)} Deployments with liveness probes "
      "and a termination grace above the shutdown grace")
