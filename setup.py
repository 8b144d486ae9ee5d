"""The one compiled part: the key=value scanner of the log parser (src/headwater/sources/_kvscan.c).

Everything else is configured in pyproject.toml. The extension is optional: without a C
compiler the package still installs and the log parser uses its numpy path (slower).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "headwater.sources._kvscan",
            ["src/headwater/sources/_kvscan.c"],
            extra_compile_args=["-O3"],
            optional=True,
        )
    ]
)
