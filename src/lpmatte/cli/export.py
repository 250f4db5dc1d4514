"""`lpmatte export` (not implemented yet)."""

from lpmatte.errors import LpmatteError


def register(subparsers) -> None:
    parser = subparsers.add_parser("export", help="(not implemented yet)")
    parser.set_defaults(func=run)


def run(args) -> int:
    raise LpmatteError("'lpmatte export' is not implemented yet")
