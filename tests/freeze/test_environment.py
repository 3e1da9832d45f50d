"""Reading an environment: names, versions, origins and the import names each provides."""

from __future__ import annotations

from pathlib import Path

from imagebuild_nb.freeze import read_environment
from tests.freeze.conftest import write_dist


def test_import_names_of_an_editable_install_come_from_the_folder_its_pth_adds(
        site: Path, tmp_path: Path) -> None:
    # hatchling's editable form: no top_level.txt, one .pth naming the project folder.
    project = tmp_path / "project"
    (project / "mypkg").mkdir(parents=True)
    (project / "mypkg" / "__init__.py").write_text("")
    (project / "helpers.py").write_text("")
    (project / "setup.py").write_text("")
    (project / "docs").mkdir()  # not a package
    write_dist(site, "mypkg", "0.1", requested=True, direct_url={
        "url": project.as_uri(), "dir_info": {"editable": True}})
    info = site / "mypkg-0.1.dist-info"
    (info / "top_level.txt").unlink()
    (site / "_mypkg.pth").write_text(f"{project}\n")
    (info / "RECORD").write_text("_mypkg.pth,,\nmypkg-0.1.dist-info/METADATA,,\n")
    dist = read_environment([str(site)]).distributions["mypkg"]
    assert dist.modules == ("helpers", "mypkg")
    assert dist.origin.kind == "folder" and dist.origin.editable
    assert dist.origin.local_path == str(project)


def test_import_names_from_installed_files_when_there_is_no_top_level_txt(site: Path) -> None:
    write_dist(site, "scikit-learn", "1.5.2", requested=True)
    info = site / "scikit_learn-1.5.2.dist-info"
    (info / "top_level.txt").unlink()
    (info / "RECORD").write_text("sklearn/__init__.py,,\nsklearn/base.py,,\n"
                                 "scikit_learn.libs/libgomp.so,,\n"
                                 "scikit_learn-1.5.2.dist-info/METADATA,,\n")
    dist = read_environment([str(site)]).distributions["scikit-learn"]
    assert dist.modules == ("sklearn",)
    assert (dist.display_name, dist.version) == ("scikit-learn", "1.5.2")
