// Handlers test_worker_exec runs under rtq-worker --exec (node rtq-runner.js).
'use strict';
module.exports = {
  'js.add': async (task) => {
    await task.progress(60, 'adding in node');
    return { sum: task.args.a + task.args.b, runner: 'node' };
  },
};
