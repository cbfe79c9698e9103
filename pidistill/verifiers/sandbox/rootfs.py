"""The candidates' root filesystem: a minimal read-only tree with Python in it and nothing else.

``enter_minimal_root`` replaces the root of the calling process's mount namespace (a private one,
made by the zygote) by that tree, the way bubblewrap builds its sandboxes:

1. Every mount becomes private, a scratch tmpfs is mounted on /tmp and ``pivot_root`` moves into
   it: the host's tree is now at /oldroot.
2. The new root is a small tmpfs at /newroot. It gets read-only binds of /usr, the Python prefixes
   and the interpreter's directory (from /oldroot), the /bin, /lib... symlinks of the host,
   /dev/{null,zero,random,urandom}, and the work tmpfs (the candidates' only writable place:
   noexec, ``tmpfs_mb`` big, owned by the candidates' uid).
3. The new root is remounted read-only, ``pivot_root`` moves into it and the old root is
   detached: the host's files are no longer in the namespace at all.

There is no /proc, /etc, /home, repository, results directory or host /tmp. The zygote that built
the tree lives in it too, so it imports nothing from the host afterwards (it imported its code
before). Mounts copied from a more privileged namespace keep their locked flags (nosuid, nodev,
noexec, atime): the read-only remounts keep them, which is what makes this work without root.
"""

from __future__ import annotations

import os
import re
import sys

from pidistill.verifiers.sandbox import libc

WORKDIR_CHOICES = ("/tmp", "/var/tmp", "/sandbox-tmp")
DEVICES = ("null", "zero", "random", "urandom")
TOP_LEVEL = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")


def bound_paths() -> list[str]:
    """Host directories the candidates see (read-only): the system and this Python, no more."""
    wanted = {"/usr", sys.base_prefix, sys.prefix, os.path.dirname(os.path.realpath(sys.executable))}
    wanted.update(p for p in TOP_LEVEL if os.path.isdir(p) and not os.path.islink(p))
    out: list[str] = []
    for path in sorted({os.path.realpath(p) for p in wanted}, key=len):
        if path == "/" or not os.path.isdir(path):
            continue
        if not any(path == b or path.startswith(b + "/") for b in out):
            out.append(path)
    return out


def _overlaps(a: str, b: str) -> bool:
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


def workdir_for(binds: list[str]) -> str:
    """Where the candidates' working directory goes: /tmp unless a bound path lies under it."""
    for path in WORKDIR_CHOICES:
        if not any(_overlaps(path, b) for b in binds):
            return path
    raise OSError("no place for the candidates' working directory")


_OCTAL = re.compile(r"\\([0-7]{3})")


def _mount_points_under(target: str, mountinfo: str) -> list[str]:
    points = []
    with open(mountinfo) as fh:
        for line in fh:
            point = _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), line.split()[4])  # \040 is a space
            if point == target or point.startswith(target + "/"):
                points.append(point)
    return points


def _ro_bind(src: str, target: str, mountinfo: str) -> None:
    libc.mount(src, target, None, libc.MS_BIND | libc.MS_REC)
    for point in _mount_points_under(target, mountinfo):
        flags = libc.MS_REMOUNT | libc.MS_BIND | libc.MS_RDONLY | libc.MS_NOSUID | libc.MS_NODEV
        if os.statvfs(point).f_flag & os.ST_NOEXEC:
            flags |= libc.MS_NOEXEC  # locked on from the host's mount: keep it
        libc.mount(None, point, None, flags)


def enter_minimal_root(tmpfs_mb: int, work_uid: int | None) -> str:
    """Make the minimal tree this mount namespace's root (see the module docstring); return the
    candidates' working directory in it."""
    binds = bound_paths()
    workdir = workdir_for(binds)
    links = {p: os.readlink(p) for p in TOP_LEVEL if os.path.islink(p)}

    libc.mount(None, "/", None, libc.MS_REC | libc.MS_PRIVATE)
    libc.mount("pidistill-base", "/tmp", "tmpfs", libc.MS_NOSUID | libc.MS_NODEV, "size=64k,mode=700")
    os.chdir("/tmp")
    os.mkdir("oldroot")
    os.mkdir("newroot")
    libc.pivot_root(".", "oldroot")
    os.chdir("/")
    new, old = "/newroot", "/oldroot"
    mountinfo = old + "/proc/self/mountinfo"

    libc.mount("pidistill-root", new, "tmpfs", libc.MS_NOSUID | libc.MS_NODEV, "size=64k,nr_inodes=4096,mode=755")
    for path in binds:
        os.makedirs(new + path, mode=0o755, exist_ok=True)
        _ro_bind(old + path, new + path, mountinfo)
    for path, dest in links.items():
        os.symlink(dest, new + path)
    os.mkdir(new + "/dev", 0o755)
    for dev in DEVICES:
        open(new + "/dev/" + dev, "w").close()
        libc.mount(old + "/dev/" + dev, new + "/dev/" + dev, None, libc.MS_BIND)
    os.makedirs(new + workdir, mode=0o755, exist_ok=True)
    libc.mount("pidistill-work", new + workdir, "tmpfs", libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC,
               f"size={int(tmpfs_mb)}m,nr_inodes=8192,mode=700")
    if work_uid is not None:
        os.chown(new + workdir, work_uid, work_uid)
    libc.mount(None, new, None, libc.MS_REMOUNT | libc.MS_BIND | libc.MS_RDONLY | libc.MS_NOSUID | libc.MS_NODEV)

    os.chdir(new)
    libc.pivot_root(".", ".")  # the old root now sits on top of the new one ...
    libc.umount2(".", libc.MNT_DETACH)  # ... and goes, with the host's whole tree under it
    os.chdir("/")
    return workdir


def wipe(path: str) -> None:
    """Remove everything in ``path`` (a candidate's working directory), never following links."""
    with os.scandir(path) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                import shutil  # rarely needed: most candidates write no directories

                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                try:
                    os.unlink(entry.path)
                except FileNotFoundError:
                    pass
    if os.listdir(path):
        raise OSError(f"could not empty {path}")
