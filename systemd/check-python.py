"""make install: refuse a Python whose venv could not start inside the service's sandbox.

Run by `make install-venv` with the interpreter it is about to build the service's venv from.
A venv keeps links to that interpreter; the unit hides /root, /home and /run/user
(ProtectHome=yes) and gives the service its own /tmp and /var/tmp (PrivateTmp=yes), so a
pyenv or asdf Python under one of them makes a venv that fails with "No such file or directory"
only when systemd starts it. Exit status 2 (with what to do) stops make before anything is built.
"""

import os
import sys

# What the unit hides (not temporary files of ours).
HIDDEN_FROM_THE_SERVICE = ("/root", "/home", "/run/user", "/tmp", "/var/tmp")  # noqa: S108


def hidden_directory(path: str) -> str | None:
    """The directory of HIDDEN_FROM_THE_SERVICE that holds path, if any."""
    for directory in HIDDEN_FROM_THE_SERVICE:
        if path == directory or path.startswith(directory + "/"):
            return directory
    return None


def main() -> int:
    # What `python -m venv` links to: the base interpreter, even when run from another venv.
    executable: str = getattr(sys, "_base_executable", sys.executable)
    # The venv links the path as given; its target and the standard library must be visible too.
    for path in (executable, os.path.realpath(executable), sys.base_prefix):
        directory = hidden_directory(path)
        if directory is not None:
            subject = executable if path == executable else f"{executable} ({path})"
            print(  # noqa: T201 - make shows it to the person installing
                f"make install: {subject} is under {directory}, which the service cannot see "
                "(ProtectHome=yes, PrivateTmp=yes in authz-watcher.service): a venv made from "
                "it would not start there.\n"
                "Use a Python installed for the whole system, for example:\n"
                "    make install PYTHON=/usr/bin/python3",
                file=sys.stderr,
            )
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
