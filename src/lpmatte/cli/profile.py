"""`lpmatte profile` (not implemented yet)."""

from lpmatte.errors import LpmatteError


def register(subparsers) -> None:
    parser = subparsers.add_parser("profile", help="(not implemented yet)")
    parser.set_defaults(func=run)


def run(args) -> int:
    raise LpmatteError("'lpmatte profile' is not implemented yet")
