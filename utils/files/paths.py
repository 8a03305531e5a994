"""The paths a script is given, checked before its work starts: a file to read that is a folder or missing gets a
message naming the setting, what was found and what to give instead."""

import os


def check_file(path: str, setting: str, expected: str, suffixes: tuple = (), hint: str = "") -> None:
    """Raises ValueError unless path is a file.

    Args:
        expected: what the setting takes, e.g. "a weights file (.weights.h5)".
        suffixes: for a folder given instead, its files with these suffixes are named as candidates.
        hint: how to get such a file, for a missing one.
    """
    if os.path.isfile(path):
        return
    if os.path.isdir(path):
        names = sorted(n for n in os.listdir(path) if n.endswith(suffixes)) if suffixes else []
        candidates = f" It holds {', '.join(names[:5])}{' ...' if len(names) > 5 else ''}." if names else ""
        example = f" e.g. --{setting} {os.path.join(path, names[0])}" if names else ""
        raise ValueError(f"{setting}={path!r}: a folder; expected {expected}.{candidates} Give the file,{example}.")
    shell = " (a '~' inside quotes is not expanded by the shell: write the path without quotes, or in full)"
    hint = f" {hint}" if hint else ""
    raise ValueError(f"{setting}={path!r}: no such file{shell if '~' in path else ''}. Expected {expected}.{hint}")
