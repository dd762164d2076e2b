"""setuptools shim (the metadata lives in pyproject.toml) with one build step:
the translations are compiled when the package is built, never committed.

translations/<locale>/LC_MESSAGES/messages.po (the source, kept in git) becomes
octoprint_fluxprint/translations/<locale>/LC_MESSAGES/messages.mo in the built
package, next to a copy of the .po: OctoPrint renders the Jinja2 templates from
the .mo and serves the JavaScript strings from the .po.

Works for a wheel, for sdist -> wheel (the sdist carries translations/ and this
file) and for an editable install (compiled into the source tree, git-ignored).
"""

import os
import shutil

import setuptools
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.join(HERE, "translations")
PACKAGE = "octoprint_fluxprint"
DOMAIN = "messages"


def compile_catalogs(source_dir=SOURCE, target_dir=None):
    """Compiles every ``<locale>/LC_MESSAGES/messages.po`` under ``source_dir``
    into ``target_dir`` (default: the package in the source tree); returns the
    locales. Fails on a catalogue with errors rather than shipping it."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    if target_dir is None:
        target_dir = os.path.join(HERE, PACKAGE, "translations")
    built = []
    if not os.path.isdir(source_dir):
        return built
    for locale in sorted(os.listdir(source_dir)):
        po_path = os.path.join(source_dir, locale, "LC_MESSAGES", DOMAIN + ".po")
        if not os.path.isfile(po_path):
            continue
        with open(po_path, "rb") as f:
            catalog = read_po(f, locale=locale, domain=DOMAIN)
        errors = [
            (message.id, error) for message, errors in catalog.check() for error in errors
        ]
        if errors:
            raise ValueError(f"{po_path}: {errors[:3]}")
        out_dir = os.path.join(target_dir, locale, "LC_MESSAGES")
        os.makedirs(out_dir, exist_ok=True)
        with open(os.path.join(out_dir, DOMAIN + ".mo"), "wb") as f:
            write_mo(f, catalog, use_fuzzy=False)
        shutil.copyfile(po_path, os.path.join(out_dir, DOMAIN + ".po"))
        built.append(locale)
    return built


class BuildPyWithCatalogs(build_py):
    def run(self):
        super().run()
        if self.dry_run:
            return
        if getattr(self, "editable_mode", False):
            target = os.path.join(HERE, PACKAGE, "translations")
        else:
            target = os.path.join(self.build_lib, PACKAGE, "translations")
        locales = compile_catalogs(SOURCE, target)
        self.announce(f"compiled catalogues: {', '.join(locales) or 'none'}", level=2)


if __name__ == "__main__":  # setuptools' build backend runs this file as __main__
    setuptools.setup(cmdclass={"build_py": BuildPyWithCatalogs})
