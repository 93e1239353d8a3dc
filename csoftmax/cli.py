"""The `csoftmax` command line."""

from __future__ import annotations

import argparse
from collections.abc import Sequence


def _info(args: argparse.Namespace) -> int:
    from ._config import show_config

    show_config()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="csoftmax", description="Fast softmax regression: kernels, training, benchmarks."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    info = sub.add_parser("info", help="show how csoftmax was built and runs")
    info.set_defaults(run=_info)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
