"""xmlp.save: the file it names and nothing else, replaced atomically (a temporary file beside
the target, created exclusively, renamed over it), links followed, the permission bits a
plain open() would give or the old file had, and directories refused."""

from __future__ import annotations

import errno
import os
import stat
import zipfile
from typing import Any

import numpy as np
import pytest

import xmlp
import xmlp.io.checkpoint


# -- the file ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["model.ckpt", "weights", "model.npz"])
def test_save_writes_exactly_the_path_given(tmp_path, name):
    model = xmlp.MLP(1, 3, 1, rng=0)
    xmlp.save(model, str(tmp_path / name))
    assert sorted(os.listdir(tmp_path)) == [name]
    assert zipfile.is_zipfile(tmp_path / name)


def test_save_replaces_atomically_and_leaves_no_temporary_files(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    first, second = xmlp.MLP(1, 3, 1, rng=0), xmlp.MLP(1, 3, 1, rng=1)
    xmlp.save(first, path)
    xmlp.save(second, path)  # replaces
    assert os.listdir(tmp_path) == ["m.npz"]
    loaded = xmlp.load(xmlp.MLP(1, 3, 1, rng=2), path)
    np.testing.assert_array_equal(loaded.linear1.weights, second.linear1.weights)

    def crash(file, **arrays):  # dies half-way through writing
        file.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(xmlp.io.checkpoint.np, "savez", crash)
    with pytest.raises(OSError, match="disk full"):
        xmlp.save(first, path)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["m.npz"]
    loaded = xmlp.load(xmlp.MLP(1, 3, 1, rng=2), path)  # the previous file, whole
    np.testing.assert_array_equal(loaded.linear1.weights, second.linear1.weights)


def test_save_writes_its_temporary_file_beside_the_target(tmp_path, monkeypatch):
    """The rename is atomic only within one directory (one file system): the temporary file
    must not be made in the working directory."""
    target_dir, cwd = tmp_path / "out", tmp_path / "cwd"
    target_dir.mkdir()
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    renames = []
    real_replace = os.replace

    def replace(src, dst):
        renames.append((os.fspath(src), os.fspath(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    xmlp.save(xmlp.MLP(1, 2, 1, rng=0), target_dir / "m.npz")
    [(src, dst)] = renames
    assert os.path.dirname(os.path.abspath(src)) == str(target_dir)
    assert os.path.basename(src).startswith(".m.npz.") and src.endswith(".tmp")
    assert dst == str(target_dir / "m.npz")
    assert os.listdir(cwd) == []


def test_saved_file_has_the_mode_open_would_give(tmp_path):
    """0o666 less the umask, as a plain open() would: no execute bits."""
    xmlp.save(xmlp.MLP(1, 2, 1, rng=0), tmp_path / "m.npz")
    with open(tmp_path / "plain", "wb"):
        pass
    mode = stat.S_IMODE(os.stat(tmp_path / "m.npz").st_mode)
    assert mode == stat.S_IMODE(os.stat(tmp_path / "plain").st_mode)
    assert mode & 0o111 == 0


# -- links and existing files ------------------------------------------------------------------
def saved_values(path: Any) -> np.ndarray:
    with np.load(path) as data:
        return data["linear1.weights"]


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="this system has no symbolic links")
def test_save_through_a_symlink_replaces_its_target(tmp_path):
    """A link is followed, as open(path, "w") would: the file it points to gets the new
    checkpoint and the link stays a link."""
    real_dir = tmp_path / "runs"
    real_dir.mkdir()
    real = real_dir / "model.npz"
    link = tmp_path / "latest.npz"
    first, second = xmlp.MLP(1, 3, 1, rng=0), xmlp.MLP(1, 3, 1, rng=1)
    xmlp.save(first, real)
    try:
        link.symlink_to(real)
    except OSError as exc:  # Windows without the privilege
        pytest.skip(f"cannot make a symbolic link here: {exc}")
    xmlp.save(second, link)
    assert link.is_symlink() and os.readlink(link) == str(real)
    np.testing.assert_array_equal(saved_values(real), second.linear1.weights)
    assert sorted(os.listdir(real_dir)) == ["model.npz"]  # no temporary file left behind
    assert sorted(os.listdir(tmp_path)) == ["latest.npz", "runs"]
    # a dangling link: the file is created where it points
    dangling = tmp_path / "next.npz"
    dangling.symlink_to(real_dir / "new.npz")
    xmlp.save(first, dangling)
    assert dangling.is_symlink()
    np.testing.assert_array_equal(saved_values(real_dir / "new.npz"), first.linear1.weights)


def _mode_of_a_new_save(path):
    """The permission bits of a model saved to a new file under umask 0o022."""
    umask = os.umask(0o022)
    try:
        xmlp.save(xmlp.MLP(1, 3, 1, rng=0), path)
    finally:
        os.umask(umask)
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.skipif(os.name != "posix", reason="permission bits are POSIX")
def test_save_keeps_the_permission_bits_of_an_existing_file(tmp_path):
    path = tmp_path / "m.npz"
    path.write_bytes(b"old")
    path.chmod(0o640)
    xmlp.save(xmlp.MLP(1, 3, 1, rng=0), path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    path.chmod(0o600)
    xmlp.save(xmlp.MLP(1, 3, 1, rng=1), path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert _mode_of_a_new_save(tmp_path / "new.npz") == 0o644  # 0o666 minus the umask


@pytest.mark.skipif(os.name != "posix", reason="permission bits are POSIX")
def test_save_keeps_the_permission_bits_without_fchmod(tmp_path, monkeypatch):
    """Where os has no fchmod (Windows), the temporary file gets the old file's bits by
    os.chmod before it replaces it; a new file still gets the umask's."""
    monkeypatch.delattr(os, "fchmod")
    path = tmp_path / "m.npz"
    path.write_bytes(b"old")
    path.chmod(0o640)
    xmlp.save(xmlp.MLP(1, 3, 1, rng=0), path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    np.testing.assert_array_equal(saved_values(path), xmlp.MLP(1, 3, 1, rng=0).linear1.weights)
    assert _mode_of_a_new_save(tmp_path / "new.npz") == 0o644
    assert sorted(os.listdir(tmp_path)) == ["m.npz", "new.npz"]


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="this system has no symbolic links")
def test_save_never_writes_through_a_file_at_its_temporary_name(tmp_path, monkeypatch):
    """The temporary file is created exclusively: a link planted at its name (by another user
    of a shared directory who guessed it) is refused, not followed."""
    monkeypatch.setattr(xmlp.io.checkpoint.secrets, "token_hex", lambda *args: "0" * 12)
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    planted = tmp_path / ".m.npz.000000000000.tmp"
    try:
        planted.symlink_to(victim)
    except OSError as exc:  # Windows without the privilege
        pytest.skip(f"cannot make a symbolic link here: {exc}")
    with pytest.raises(FileExistsError):
        xmlp.save(xmlp.MLP(1, 3, 1, rng=0), tmp_path / "m.npz")
    assert victim.read_bytes() == b"precious"
    assert sorted(os.listdir(tmp_path)) == [planted.name, "victim"]


# -- directories -------------------------------------------------------------------------------
def test_save_onto_a_directory_writes_nothing(tmp_path):
    target = tmp_path / "dir"
    target.mkdir()
    with pytest.raises(IsADirectoryError):
        xmlp.save(xmlp.MLP(1, 3, 1), target)
    assert os.listdir(target) == [] and sorted(os.listdir(tmp_path)) == ["dir"]


def test_save_into_a_missing_directory_is_an_oserror(tmp_path):
    with pytest.raises(FileNotFoundError):
        xmlp.save(xmlp.MLP(1, 3, 1), tmp_path / "no" / "m.npz")
    assert os.listdir(tmp_path) == []


def test_save_onto_a_directory_says_so(tmp_path):
    with pytest.raises(IsADirectoryError) as info:
        xmlp.save(xmlp.MLP(1, 2, 1), tmp_path)
    exc = info.value
    assert (exc.errno, exc.strerror, exc.filename) == (errno.EISDIR,
                                                       "save: the path is a directory",
                                                       str(tmp_path))
    assert str(exc) == f"[Errno {errno.EISDIR}] save: the path is a directory: {str(tmp_path)!r}"
