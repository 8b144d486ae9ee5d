"""The compiled parts of the text parsers, both optional: the key=value scanner of the log
parser (src/headwater/sources/_kvscan.c) and the span copier of the CSV and log parsers
(src/headwater/sources/_spans.c).

Everything else is configured in pyproject.toml. Without a C compiler the package still
installs and the parsers use their numpy and Arrow paths (slower).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "headwater.sources._kvscan",
            ["src/headwater/sources/_kvscan.c"],
            extra_compile_args=["-O3"],
            optional=True,
        ),
        Extension(
            "headwater.sources._spans",
            ["src/headwater/sources/_spans.c"],
            extra_compile_args=["-O3"],
            optional=True,
        ),
    ]
)
