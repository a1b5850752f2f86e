"""Write dvc_plots.html (DVC's plots page with Vega, Vega-Lite and Vega-Embed inline) and the three licences from the
npm packages' tarballs, and print the SHA-256 of each inlined file (README.md records them).

    npm pack vega@5.20.2 vega-lite@5.2.0 vega-embed@6.18.2
    python vendor/vega/build.py vega-5.20.2.tgz vega-lite-5.2.0.tgz vega-embed-6.18.2.tgz

Nothing is changed in the inlined files: each is the package's ``build/<name>.min.js`` byte for byte.
"""

from __future__ import annotations

import hashlib
import re
import sys
import tarfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PACKAGES = ("vega", "vega-lite", "vega-embed")  # in loading order: vega-embed needs the other two
PAGE = """<!DOCTYPE html>
<html>
<head>
    {{refresh_tag}}
    <meta charset="utf-8">
    <title>DVC Plot</title>
    <!-- DVC's page (dvc_render.html.PAGE_HTML) with Vega, Vega-Lite and Vega-Embed inline instead of from a CDN, so
         that it renders offline; written by vendor/vega/build.py, see vendor/vega/README.md -->
{scripts}
    <style>
        table {{
            border-spacing: 15px;
        }}
    </style>
</head>
<body>
    {{plot_divs}}
</body>
</html>
"""
SCRIPT = """    <!-- {name} {version}: build/{name}.min.js of the npm package, BSD-3-Clause (LICENSE-{name}) -->
    <script data-package="{name}@{version}">{code}</script>"""


def read_package(tarball: Path) -> tuple[str, str, str, str]:
    """(name, version, minified build, licence text) of an npm package tarball."""
    with tarfile.open(tarball) as tar:
        def text(member: str) -> str:
            return tar.extractfile(f"package/{member}").read().decode("utf-8")

        meta = re.search(r'"name":\s*"([^"]+)".*?"version":\s*"([^"]+)"', text("package.json"), re.S)
        name, version = meta.group(1), meta.group(2)
        return name, version, text(f"build/{name}.min.js"), text("LICENSE")


def main(tarballs: list[str]) -> int:
    found = {name: (version, code, licence) for name, version, code, licence in map(read_package, map(Path, tarballs))}
    missing = [name for name in PACKAGES if name not in found]
    if missing:
        print(f"error: no tarball of {', '.join(missing)} given; npm pack them first (see this file's docstring)")
        return 2
    scripts = []
    for name in PACKAGES:
        version, code, licence = found[name]
        if "</script" in code.lower() or "{plot_divs}" in code or "{refresh_tag}" in code:
            print(f"error: {name} {version}: its code cannot be inlined as it is (a </script or a DVC placeholder)")
            return 2
        scripts.append(SCRIPT.format(name=name, version=version, code=code))
        (HERE / f"LICENSE-{name}").write_text(licence, encoding="utf-8")
        print(f"{name} {version} build/{name}.min.js sha256 {hashlib.sha256(code.encode('utf-8')).hexdigest()}")
    (HERE / "dvc_plots.html").write_text(PAGE.format(scripts="\n".join(scripts)), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
