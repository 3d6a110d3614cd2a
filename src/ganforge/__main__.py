"""``python -m ganforge``."""

from ganforge.cli import entry

entry()
