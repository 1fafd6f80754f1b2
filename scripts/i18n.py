"""Translation catalogues: `update` (extract, merge), `check` (complete, no fuzzy), `compile`.

    python scripts/i18n.py update    # after changing visible strings
    python scripts/i18n.py check     # every message translated in every language
    python scripts/i18n.py compile   # .po -> .mo (run by `make` before starting)

The English catalogue is complete by construction (each message is its own translation);
French translations are written in portal/translations/fr/LC_MESSAGES/messages.po.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from babel import Locale
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "portal" / "translations"
POT = TRANSLATIONS / "messages.pot"
LANGUAGES = ("en", "fr")
PYBABEL = [sys.executable, "-m", "babel.messages.frontend"]


def _po(language: str) -> Path:
    return TRANSLATIONS / language / "LC_MESSAGES" / "messages.po"


def update() -> None:
    subprocess.run(
        [
            *PYBABEL,
            "extract",
            "-F",
            str(ROOT / "babel.cfg"),
            "-k",
            "_l",
            "-k",
            "lazy_gettext",
            "-k",
            "N_",
            "--no-location",
            "--sort-output",
            "--omit-header",
            "-o",
            str(POT),
            ".",
        ],
        cwd=ROOT,
        check=True,
    )
    for language in LANGUAGES:
        if _po(language).exists():
            command = ["update", "--no-fuzzy-matching", "--ignore-obsolete"]
        else:
            command = ["init"]
        subprocess.run(
            [*PYBABEL, *command, "-i", str(POT), "-d", str(TRANSLATIONS), "-l", language],
            cwd=ROOT,
            check=True,
        )
    for language in LANGUAGES:
        path = _po(language)
        with path.open("rb") as handle:
            catalog = read_po(handle, locale=language)
        catalog.fuzzy = False  # a fresh header is fuzzy, and compile skips fuzzy catalogues
        catalog.header_comment = f"# {language} messages of the DevSecOps portal."
        # Not Babel's placeholders (« FULL NAME <EMAIL@ADDRESS> »), which a translation tool shows
        # as if someone had to be written to: the catalogue is the project's, changed by pull request.
        catalog.last_translator = "DevSecOps portal contributors"
        catalog.language_team = f"{Locale.parse(language).english_name} (DevSecOps portal)"
        catalog.msgid_bugs_address = ""
        if language == "en":  # English: the source text is the translation
            for message in catalog:
                # A plural message's string is a tuple of forms: empty forms are untranslated too.
                string = message.string
                untranslated = not any(string) if isinstance(string, tuple) else not string
                if message.id and untranslated:
                    message.string = message.id
        with path.open("wb") as handle:
            write_po(handle, catalog, sort_output=True, no_location=True)
        _drop_creation_date(path)


def _drop_creation_date(po: Path) -> None:
    """pybabel writes the time of each update into the header: a line that changes at every run
    and makes two branches' catalogues conflict for nothing."""
    lines = po.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [line for line in lines if not line.startswith('"POT-Creation-Date:')]
    if kept != lines:
        po.write_text("".join(kept), encoding="utf-8")


def check() -> int:
    problems = []
    with POT.open("rb") as handle:
        template_ids = {m.id for m in read_po(handle) if m.id}
    for language in LANGUAGES:
        with _po(language).open("rb") as handle:
            catalog = read_po(handle, locale=language)
        if catalog.fuzzy:
            problems.append(f"{language}: the catalogue header is marked fuzzy")
        ids = {m.id for m in catalog if m.id}
        for missing in sorted(template_ids - ids, key=str):
            problems.append(f"{language}: not in the catalogue: {missing!r}")
        for message in catalog:
            if not message.id:
                continue
            if not message.string or (isinstance(message.string, tuple) and not all(message.string)):
                problems.append(f"{language}: untranslated: {message.id!r}")
            if message.fuzzy:
                problems.append(f"{language}: fuzzy: {message.id!r}")
    for problem in problems:
        print(problem)
    return 1 if problems else 0


def compile_catalogues() -> None:
    subprocess.run([*PYBABEL, "-q", "compile", "-d", str(TRANSLATIONS)], cwd=ROOT, check=True)


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "check"
    if command == "update":
        update()
    elif command == "compile":
        compile_catalogues()
    elif command == "check":
        sys.exit(check())
    else:
        sys.exit(f"unknown command {command!r}: update, check or compile")
