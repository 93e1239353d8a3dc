"""Build csoftmax with classic scikit-build: ``python setup.py bdist_wheel``.

``pip install .`` uses pyproject.toml (scikit-build-core) instead; both run
the same CMakeLists.txt.  This path needs ``pip install scikit-build cython
numpy cmake ninja`` first.
"""

import re
from pathlib import Path

from skbuild import setup

here = Path(__file__).parent
version = re.search(
    r'^__version__ = "([^"]+)"', (here / "csoftmax" / "__init__.py").read_text(), re.M
).group(1)

setup(
    name="csoftmax",
    version=version,
    description="Fast, exact softmax regression: C/OpenMP kernels behind a NumPy-style API",
    packages=["csoftmax"],
    package_data={"csoftmax": ["*.pxd", "*.pyx"]},
    python_requires=">=3.9",
    install_requires=["numpy>=1.25", "scipy>=1.10", "threadpoolctl>=3", "tqdm>=4"],
    extras_require={
        "test": [
            "pytest>=7",
            "hypothesis>=6",
            "pytest-benchmark>=4",
            "cython>=3.0",
            "setuptools",
            "matplotlib>=3.5",
        ],
        "plot": ["matplotlib>=3.5"],
    },
    entry_points={"console_scripts": ["csoftmax = csoftmax.cli:main"]},
)
