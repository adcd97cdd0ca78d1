// Handlers the runner test loads.
'use strict';

class QuotaError extends Error {
  constructor() { super('over quota'); this.code = 'E_QUOTA'; this.details = { used: 11 }; }
}

module.exports = {
  'node.add': async (task) => {
    task.progress(50, 'adding');
    return { sum: task.args.a + task.args.b };
  },
  'node.fail': (task) => {
    if (task.args.how === 'quota') throw new QuotaError();
    return JSON.parse('{not json');
  },
  'node.slow': async (task) => {
    let steps = 0;
    while (!task.cancelled) {
      task.progress(steps % 100, 'working');
      if (!(await task.sleep(1000))) break;
      steps++;
    }
    console.log('stopped by', task.cancelReason);
    return { stopped: task.cancelled, reason: task.cancelReason };
  },
};
