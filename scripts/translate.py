"""Set French translations from a small YAML/JSON mapping file: `python scripts/translate.py FILE`.

A convenience for maintainers: `{"English msgid": "traduction"}` pairs are written into
portal/translations/fr/LC_MESSAGES/messages.po (run `scripts/i18n.py update` first).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from babel.messages.pofile import read_po, write_po

PO = Path(__file__).resolve().parent.parent / "portal/translations/fr/LC_MESSAGES/messages.po"


def main(mapping_file: str) -> int:
    mapping = json.loads(Path(mapping_file).read_text(encoding="utf-8"))
    with PO.open("rb") as handle:
        catalog = read_po(handle, locale="fr")
    unknown = [msgid for msgid in mapping if msgid not in catalog]
    for message in catalog:
        if message.id in mapping:
            message.string = mapping[message.id]
    catalog.fuzzy = False
    with PO.open("wb") as handle:
        write_po(handle, catalog, sort_output=True, no_location=True)
    for msgid in unknown:
        print(f"not in the catalogue: {msgid!r}")
    return 1 if unknown else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
