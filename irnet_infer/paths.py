"""One wording for path errors in every command and API: "<what> 'path' does not exist",
"<what> 'path' is a directory, not a file", "cannot read <what> 'path': <reason>"."""
from __future__ import annotations

import os


def require_file(path: str | os.PathLike, what: str = "file") -> str:
    """`path` as a str if it names an existing file; else FileNotFoundError/IsADirectoryError
    worded as above."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise IsADirectoryError(f"{what} {path!r} is a directory, not a file")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{what} {path!r} does not exist")
    return path


def require_dir(path: str | os.PathLike, what: str = "directory") -> str:
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{what} {path!r} does not exist")
    if not os.path.isdir(path):
        raise NotADirectoryError(f"{what} {path!r} is a file, not a directory")
    return path


def describe_os_error(e: OSError) -> str:
    """An OSError as one line: our own messages as they are; the system's ("[Errno 2] No such
    file or directory: 'x'") reworded to the wording above."""
    if e.filename is None or not e.strerror:
        return str(e)
    name = os.fspath(e.filename)
    if isinstance(e, FileNotFoundError):
        return f"{name!r} does not exist"
    if isinstance(e, IsADirectoryError):
        return f"{name!r} is a directory, not a file"
    if isinstance(e, NotADirectoryError):
        return f"{name!r}: a part of the path is not a directory"
    return f"cannot read {name!r}: {e.strerror[:1].lower()}{e.strerror[1:]}"
