// Helpers of figures.sh (Node's own fetch, nothing from npm):
//   node figures.mjs latency URL N TOKEN  sequential GETs on one kept-alive
//                                         connection: median and p99 in ms
//   node figures.mjs sse URL N TOKEN      holds N event streams open and
//                                         reads them until SIGTERM
const [mode, url, nArg, token] = process.argv.slice(2);
const n = Number(nArg);
const headers = token ? {Authorization: 'Bearer ' + token} : {};

if (mode === 'latency') {
  const ms = [];
  for (let i = 0; i < n + 20; i++) {
    const t0 = process.hrtime.bigint();
    const r = await fetch(url, {headers});
    await r.arrayBuffer();
    if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
    if (i >= 20) ms.push(Number(process.hrtime.bigint() - t0) / 1e6);  // 20 warm-up requests
  }
  ms.sort((a, b) => a - b);
  const q = p => ms[Math.min(ms.length - 1, Math.floor(p * ms.length))];
  console.log(`median_ms=${q(0.5).toFixed(2)} p99_ms=${q(0.99).toFixed(2)} n=${ms.length}`);
} else if (mode === 'sse') {
  let bytes = 0, open = 0;
  const ctl = new AbortController();
  process.on('SIGTERM', () => { console.log(`sse_clients=${open} bytes=${bytes}`); ctl.abort(); process.exit(0); });
  await Promise.all(Array.from({length: n}, async () => {
    const r = await fetch(url, {headers, signal: ctl.signal});
    open++;
    const reader = r.body.getReader();
    for (;;) {
      const {value, done} = await reader.read();
      if (done) break;
      bytes += value.length;
    }
  })).catch(() => {});
} else {
  console.error('usage: figures.mjs latency|sse URL N [TOKEN]');
  process.exit(2);
}
