"""`lpmatte train` (not implemented yet)."""

from lpmatte.errors import LpmatteError


def register(subparsers) -> None:
    parser = subparsers.add_parser("train", help="(not implemented yet)")
    parser.set_defaults(func=run)


def run(args) -> int:
    raise LpmatteError("'lpmatte train' is not implemented yet")
