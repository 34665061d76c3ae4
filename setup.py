"""Only what pyproject.toml cannot say: ship the top-level ``notebooks/`` inside the wheel.

The notebooks stay at the top of the checkout (where coordinators open them in JupyterLab);
a built wheel carries a copy in ``ent_audit/reports/notebooks`` so that an installed package
runs ``ent-audit report all`` exactly as the checkout does.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPyWithNotebooks(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:  # an editable install reads the checkout's notebooks/
            return
        target = Path(self.build_lib) / "ent_audit" / "reports" / "notebooks"
        self.mkpath(str(target))
        for notebook in sorted(Path("notebooks").glob("*.ipynb")):
            self.copy_file(str(notebook), str(target / notebook.name))


setup(cmdclass={"build_py": BuildPyWithNotebooks})
