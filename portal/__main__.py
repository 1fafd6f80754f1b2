"""`python -m portal check-config [FILE]`: validate the configuration and secrets, start nothing."""

from __future__ import annotations

import argparse
import os
import sys

from .config import ConfigError, load_settings


def main(argv: list[str] | None = None) -> int:
    """Print the verdict on the configuration; exit 0 when valid, 2 when not."""
    parser = argparse.ArgumentParser(prog="python -m portal")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check-config", help="validate PORTAL_CONFIG and its secrets")
    check.add_argument("file", nargs="?", help="configuration file (default: $PORTAL_CONFIG)")
    args = parser.parse_args(argv)

    try:
        settings = load_settings(os.environ, args.file)
    except ConfigError as error:
        print(f"configuration invalid: {error}", file=sys.stderr)
        return 2
    config = settings.config
    widgets = [name for name, section in config.widgets if section.enabled]
    print(
        f"configuration OK: {settings.source} "
        f"({len(widgets)} widgets enabled: {', '.join(widgets) or 'none'}; {len(config.tiles)} tiles)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
