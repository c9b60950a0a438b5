"""MkDocs hook: serve the repository's ``figures/`` (the committed pictures and ``gains.md``) in the site.

The figures live beside the experiments that make them, not under ``docs/``; the pages link them as
``figures/NAME.png``, as README does.
"""

from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File, InclusionLevel

ROOT = Path(__file__).resolve().parents[2]


def on_files(files, config):
    for path in sorted((ROOT / "figures").glob("*.png")):
        files.append(File.generated(config, f"figures/{path.name}", abs_src_path=str(path),
                                    inclusion=InclusionLevel.NOT_IN_NAV))
    gains = ROOT / "figures" / "gains.md"  # the full table behind figures/gains.png
    files.append(File.generated(config, "figures/gains.md", abs_src_path=str(gains),
                                inclusion=InclusionLevel.NOT_IN_NAV))
    return files
