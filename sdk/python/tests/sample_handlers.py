"""Handlers the runner tests load with python3 -m rtq.run sample_handlers."""

import os
import subprocess

import rtq


@rtq.handler("sample.add")
def add(task):
    task.progress(50, "adding")
    return {"sum": task.args["a"] + task.args["b"]}


@rtq.handler("sample.fail")
def fail(task):
    how = task.args.get("how")
    if how == "taskerror":
        raise rtq.TaskError("E_QUOTA", "over quota", {"used": 11})
    if how == "notjson":
        return {"when": object()}
    if how == "circular":
        loop = {}
        loop["self"] = loop
        return loop
    if how == "nan":
        return [float("nan")]
    return 1 / 0


@rtq.handler("sample.echo")
def echo(task):
    return task.args.get("value")


@rtq.handler("sample.slow")
def slow(task):
    step = 0
    while not task.cancelled:
        task.progress(step % 100, "working")
        if not task.sleep(task.args.get("seconds", 1) / 10):
            break
        step += 1
    return {"stopped": task.cancelled}


@rtq.handler("sample.noisy")
def noisy(task):
    print("print to stdout")
    os.write(1, b"os.write to fd 1\n")
    subprocess.run(["echo", "child echo"], check=True)
    task.log("careful", level="warning")
    return None
