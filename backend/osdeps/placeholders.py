"""Files that only look local: cloud-sync placeholders and editor/temp files.

* iCloud Drive (macOS) keeps evicted files as ``.<name>.icloud`` stubs;
* macOS File Provider (iCloud, Dropbox, OneDrive, Google Drive) marks evicted files
  ``SF_DATALESS`` in ``st_flags`` (untested here);
* Windows cloud files (OneDrive, Dropbox, iCloud for Windows) carry the
  ``RECALL_ON_DATA_ACCESS``/``RECALL_ON_OPEN``/``OFFLINE`` attributes (untested here).
Reading any of these would make the sync client download the file, so they are skipped until
they are local.
"""

from __future__ import annotations

import os
import stat as stat_mod

_SF_DATALESS = 0x40000000
_WIN_OFFLINE = 0x00001000
_WIN_RECALL_ON_OPEN = 0x00040000
_WIN_RECALL_ON_DATA_ACCESS = 0x00400000
_TEMP_SUFFIXES = (".tmp", ".temp", ".swp", ".swx", ".part", ".crdownload", ".download", ".partial", "~")
_TEMP_PREFIXES = ("~$", ".~lock.", ".#")


def is_placeholder(name: str, st: os.stat_result) -> bool:
    if name.startswith(".") and name.endswith(".icloud"):
        return True
    if getattr(st, "st_flags", 0) & _SF_DATALESS:
        return True
    attrs = getattr(st, "st_file_attributes", 0)
    return bool(attrs & (_WIN_OFFLINE | _WIN_RECALL_ON_OPEN | _WIN_RECALL_ON_DATA_ACCESS))


def is_temporary(name: str) -> bool:
    lower = name.lower()
    return lower.startswith(_TEMP_PREFIXES) or lower.endswith(_TEMP_SUFFIXES)


def is_regular(st: os.stat_result) -> bool:
    return stat_mod.S_ISREG(st.st_mode)
