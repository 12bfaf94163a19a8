"""The one part of the packaging that pyproject.toml cannot say: the dashboard goes into the wheel.

The dashboard (``app.py``, ``pages/``, ``assets/``, ``.streamlit/config.toml``)
sits at the checkout's root, where ``streamlit run app.py``, ``make app`` and
the tests open it. An installed wheel carries it as
``afterburn_core/dashboard/``, laid out the same (``app.py`` imports
``pages.common`` from its own folder), where ``afterburn serve`` finds it.
pyproject.toml's package discovery cannot add a package kept outside the
package folder, so the package list and that mapping are here; everything else
is in pyproject.toml.
"""

from setuptools import find_namespace_packages, setup
from setuptools.command.build_py import build_py

DASHBOARD = "afterburn_core.dashboard"


class BuildPy(build_py):
    """Takes only ``app.py`` from the root for the dashboard package (the root also holds this script)."""

    def find_package_modules(self, package, package_dir):
        modules = super().find_package_modules(package, package_dir)
        return [module for module in modules if package != DASHBOARD or module[1] == "app"]


setup(
    packages=[*find_namespace_packages(include=["afterburn_core", "afterburn_core.*"]),
              DASHBOARD, f"{DASHBOARD}.pages"],
    package_dir={DASHBOARD: ".", f"{DASHBOARD}.pages": "pages"},
    cmdclass={"build_py": BuildPy},
)
