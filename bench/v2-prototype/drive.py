#!/usr/bin/python3
"""Prototype driver for the v2 scripts: Redis CPU and memory per task."""
import os, sys, time, redis
port = int(sys.argv[1]); N = int(sys.argv[2]); B = int(sys.argv[3]) if len(sys.argv) > 3 else 64
r = redis.Redis(port=port)
here = os.path.dirname(os.path.abspath(__file__))
pre = open(os.path.join(here, 'prelude.lua')).read()
S = {n: r.register_script(pre + open(os.path.join(here, n + '.lua')).read()) for n in ('create', 'take', 'finish')}
ns, q = 'rtq', 'default'
tag = '{%s:%s}' % (ns, q)
K = lambda s: tag + ':' + s
wid = 'w-host-12345-abcdef'
def cpu():
    i = r.info('cpu'); return i['used_cpu_user'] + i['used_cpu_sys']
def mem(): return r.info('memory')['used_memory']
r.flushall(); r.config_resetstat()
m0 = mem()
c0 = cpu(); t0 = time.time()
seq = 0
p = r.pipeline(transaction=False)
for start in range(0, N, B):
    args = [K('ev'), K('t:')]
    for i in range(start, min(N, start + B)):
        seq += 1
        args += ['01JF%016d%03d' % (seq, 7), 'rtq.noop', '', '', '', '', '', '']
    S['create'](keys=[K('q'), K('delayed'), K('stats')], args=args, client=p)
    if (start // B) % 20 == 19: p.execute()
p.execute()
c1 = cpu(); t1 = time.time()
print('create: %.2f us Redis CPU/task, %.0f tasks/s (python-bound)' % ((c1 - c0) / N * 1e6, N / (t1 - t0)))
done = 0
c0 = cpu(); t0 = time.time()
while True:
    rep = S['take'](keys=[K('q'), K('p:' + wid), K('running')], args=[wid, '300000', K('ev'), K('t:'), str(B)])
    if not rep: break
    fa = [wid, '86400', K('ev'), K('t:'), K('w:')]
    for e in rep:
        if e[0] == b'ok': fa += [e[1], str(e[3]), 'completed', '']
    S['finish'](keys=[K('p:' + wid), K('running'), K('stats'), K('delayed'), K('done:completed'), K('done:failed'), K('done:cancelled'), K('done:timeout')], args=fa)
    done += len(rep)
c1 = cpu(); t1 = time.time()
print('drain: %d tasks, %.2f us Redis CPU/task, %.0f tasks/s (python-bound)' % (done, (c1 - c0) / N * 1e6, N / (t1 - t0)))
kept = min(N, 10000); print('memory per finished task: %.0f B (%d kept)' % ((mem() - m0) / kept, kept))
print('encoding of a task hash:', r.object('encoding', K('t:') + '01JF%016d%03d' % (N, 7)))
sl = r.slowlog_get(100)
print('slowlog entries:', len(sl), [ (e['duration'], e['command'][:40]) for e in sl[:5]])
cs = r.info('commandstats')
tot = 0
for k, v in sorted(cs.items(), key=lambda kv: -kv[1]['usec']):
    print('%-22s calls %8d  usec/call %6.2f  usec/task %6.2f' % (k, v['calls'], v['usec_per_call'], v['usec'] / N))
