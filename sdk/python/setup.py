"""The optional C accelerator of rtq.Client.create_task (rtq/_speedups.c).
The package's metadata is in pyproject.toml. Without a C compiler or
Python's headers (Debian: python3-dev) the build of the extension fails
and the package installs without it: every call then takes the cffi
path, which does the same."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("rtq._speedups", ["rtq/_speedups.c"], optional=True,
                             extra_compile_args=["-std=c11", "-Wall", "-Wextra"])])
