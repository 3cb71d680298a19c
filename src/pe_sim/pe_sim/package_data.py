"""Where a package finds its data files (configs, models, launch files), installed or not.

Every data file exists once, at the top of the repository: ``config/<kind>/``,
``models/`` and ``launch/``. Each package installs the folders it uses under
``<prefix>/share/<package>/`` with the same relative paths (``data_files`` in
its ``setup.py``, so colcon and pip install them alike):

==================  ================================
package             data
==================  ================================
pe_sim              ``config/scenarios``
pe_safety_filter    ``config/filter``
pe_training         ``config/training``
pe_policy           ``models``
pe_bringup          ``config/ros``, ``config/rqt``, ``config/viz``, ``launch``
==================  ================================

:func:`data_root` is the one rule that finds them: in a source checkout
(the package imported from ``<repo>/src/<package>/<package>``, as with
``pip install -e`` or ``colcon build --symlink-install``) it is ``<repo>``;
in an install (the package imported from
``<prefix>/lib/pythonX.Y/site-packages/<package>``) it is
``<prefix>/share/<package>``. A package only looks up its own name.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path


def data_root(package: str) -> Path:
    """The folder that holds ``package``'s data paths (``config/...``, ``models``, ``launch``)."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(f"package {package!r} is not importable")
    module_dir = Path(spec.origin).resolve().parent
    source_root = module_dir.parents[2]  # <repo>/src/<package>/<package>
    if (module_dir.parent / "setup.py").is_file() and (source_root / "src" / package).is_dir():
        return source_root
    share = module_dir.parents[3] / "share" / package  # <prefix>/lib/pythonX.Y/site-packages/<pkg>
    if share.is_dir():
        return share
    raise FileNotFoundError(f"no data folder of {package!r}: neither a source checkout around "
                            f"{module_dir} nor an install with {share}")


def data_path(package: str, relative: str) -> Path:
    """``relative`` (e.g. ``config/scenarios``) under ``package``'s :func:`data_root`."""
    return data_root(package) / relative


def resolve_named(name_or_path: str | Path, package: str, folder: str, what: str,
                  suffix: str = ".yaml") -> Path:
    """A file given as a path, or as a bare name looked up in ``package``'s ``folder``.

    A value with a path separator or the file suffix is a path (it must exist); anything
    else is a name: ``<folder>/<name><suffix>``. A missing file raises
    :class:`FileNotFoundError` listing the names that exist."""
    text = str(name_or_path)
    if "/" in text or text.endswith(suffix) or text.endswith(".yml"):
        path = Path(text)
        if not path.is_file():
            raise FileNotFoundError(f"{what} file '{text}' not found")
        return path
    directory = data_path(package, folder)
    found = directory / f"{text}{suffix}"
    if not found.is_file():
        available = sorted(p.name.removesuffix(suffix) for p in directory.glob(f"*{suffix}"))
        raise FileNotFoundError(f"no {what} named '{text}'; available: {', '.join(available)}")
    return found
