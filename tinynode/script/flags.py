"""Script verification flags with Core's names (Core `script/interpreter.h`, `policy/policy.h`)."""

from __future__ import annotations

from enum import IntFlag

__all__ = ["ScriptFlags", "MANDATORY_FLAGS", "STANDARD_FLAGS", "ALL_FLAGS", "parse_flags", "format_flags"]


class ScriptFlags(IntFlag):
    """Bit values follow Core's `SCRIPT_VERIFY_*` order (the witness/taproot bits are not used)."""

    NONE = 0
    P2SH = 1 << 0
    STRICTENC = 1 << 1
    DERSIG = 1 << 2
    LOW_S = 1 << 3
    NULLDUMMY = 1 << 4
    SIGPUSHONLY = 1 << 5
    MINIMALDATA = 1 << 6
    DISCOURAGE_UPGRADABLE_NOPS = 1 << 7
    CLEANSTACK = 1 << 8
    CHECKLOCKTIMEVERIFY = 1 << 9
    CHECKSEQUENCEVERIFY = 1 << 10
    MINIMALIF = 1 << 13  # accepted; in Core it only affects witness scripts, so no legacy effect
    NULLFAIL = 1 << 14
    CONST_SCRIPTCODE = 1 << 16


#: What consensus enforces today for non-witness scripts (Core's mandatory flags minus segwit).
MANDATORY_FLAGS = (ScriptFlags.P2SH | ScriptFlags.DERSIG | ScriptFlags.CHECKLOCKTIMEVERIFY
                   | ScriptFlags.CHECKSEQUENCEVERIFY | ScriptFlags.NULLDUMMY)

#: Core's STANDARD_SCRIPT_VERIFY_FLAGS restricted to the flags a legacy node implements.
STANDARD_FLAGS = (MANDATORY_FLAGS | ScriptFlags.STRICTENC | ScriptFlags.LOW_S | ScriptFlags.SIGPUSHONLY
                  | ScriptFlags.MINIMALDATA | ScriptFlags.DISCOURAGE_UPGRADABLE_NOPS | ScriptFlags.CLEANSTACK
                  | ScriptFlags.MINIMALIF | ScriptFlags.NULLFAIL | ScriptFlags.CONST_SCRIPTCODE)

#: Every flag tinynode implements.
ALL_FLAGS = STANDARD_FLAGS


def parse_flags(text: str) -> ScriptFlags:
    """Parse Core's comma-separated flag list ("P2SH,DERSIG"; "" or "NONE" = no flags).

    Raises KeyError for a flag tinynode does not know (e.g. WITNESS)."""
    flags = ScriptFlags.NONE
    for name in text.split(","):
        name = name.strip()
        if not name or name == "NONE":
            continue
        flags |= ScriptFlags[name]
    return flags


def format_flags(flags: int) -> str:
    """The inverse of `parse_flags` (names in bit order, "NONE" when empty)."""
    names = [f.name for f in ScriptFlags if f.value and flags & f.value]
    return ",".join(names) if names else "NONE"
