"""The public surface is a contract: pin it, and keep `import imagebuild_nb` light."""

from __future__ import annotations

import subprocess
import sys

import imagebuild_nb

PUBLIC = [
    "BuildCancelledError", "BuildContext", "BuildFailedError", "BuilderUnavailableError",
    "DryRun", "ExistenceChecker", "ExistenceResult", "Image", "ImageBuild", "ImageBuildEngine",
    "ImageBuildError", "ImageBuildWidget", "ImageReference", "RegistryAuthError",
    "RegistryError", "ServiceError", "SpecError", "__version__", "as_image",
]


def test_all_is_sorted_and_pinned():
    assert imagebuild_nb.__all__ == sorted(imagebuild_nb.__all__)
    assert imagebuild_nb.__all__ == PUBLIC


def test_every_public_name_resolves():
    for name in imagebuild_nb.__all__:
        assert getattr(imagebuild_nb, name) is not None


def test_every_error_is_an_image_build_error():
    for name in PUBLIC:
        value = getattr(imagebuild_nb, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, imagebuild_nb.ImageBuildError)


def test_import_needs_no_jupyter_and_no_widgets():
    code = ("import sys, imagebuild_nb; "
            "print(sorted(m for m in ('ipywidgets', 'jupyter_server', 'IPython', 'tornado') "
            "if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                            text=True).stdout.strip()
    assert loaded == "[]"


def test_extension_entry_points_exist():
    assert callable(imagebuild_nb.load_ipython_extension)
    assert callable(imagebuild_nb.unload_ipython_extension)
    points = imagebuild_nb._jupyter_server_extension_points()
    assert points and all("module" in point for point in points)
