"""The format check every FieldLab file description shares: its 'format' name and a version this build reads."""
from __future__ import annotations


def check_format(document, expected: str, supported: int, where: str, error: type[Exception], what: str) -> int:
    """The document's version; ``error`` naming ``where`` when it is not a ``what`` (format ``expected``), its
    version is not a positive whole number, or it is newer than ``supported`` (then: please update FieldLab)."""
    if not isinstance(document, dict) or document.get("format") != expected:
        found = repr(document.get("format"))[:60] if isinstance(document, dict) else f"a JSON {type(document).__name__}"
        raise error(f"{where}: not a FieldLab {what} (format {found})")
    version = document.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise error(f"{where}: invalid {what} format version {str(version)[:20]!r}")
    if version > supported:
        shown = str(version) if version < 10**15 else f"~10^{len(str(version)) - 1}"
        raise error(f"{where}: saved by a newer FieldLab ({what} format {shown}; this one reads up to {supported}): "
                    "please update FieldLab")
    return version
