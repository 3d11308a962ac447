"""Script verification flags with Core's names and bit values (Core `script/interpreter.h`,
`policy/policy.h`)."""

from __future__ import annotations

from enum import IntFlag

__all__ = ["ScriptFlags", "MANDATORY_FLAGS", "STANDARD_FLAGS", "ALL_FLAGS", "TAPROOT_FLAGS",
           "parse_flags", "format_flags"]


class ScriptFlags(IntFlag):
    """Core's `SCRIPT_VERIFY_*` bits, in Core's order (bit n = the n-th enumerator)."""

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
    WITNESS = 1 << 11
    DISCOURAGE_UPGRADABLE_WITNESS_PROGRAM = 1 << 12
    MINIMALIF = 1 << 13  # only witness v0 scripts (and tapscript) are affected, as in Core
    NULLFAIL = 1 << 14
    WITNESS_PUBKEYTYPE = 1 << 15
    CONST_SCRIPTCODE = 1 << 16
    # Taproot (BIP341/342)
    TAPROOT = 1 << 17
    DISCOURAGE_UPGRADABLE_TAPROOT_VERSION = 1 << 18
    DISCOURAGE_OP_SUCCESS = 1 << 19
    DISCOURAGE_UPGRADABLE_PUBKEYTYPE = 1 << 20


#: The taproot bits (TAPROOT and its three DISCOURAGE_* policy bits).
TAPROOT_FLAGS = (ScriptFlags.TAPROOT | ScriptFlags.DISCOURAGE_UPGRADABLE_TAPROOT_VERSION
                 | ScriptFlags.DISCOURAGE_OP_SUCCESS | ScriptFlags.DISCOURAGE_UPGRADABLE_PUBKEYTYPE)

#: Core's MANDATORY_SCRIPT_VERIFY_FLAGS (policy/policy.h).
MANDATORY_FLAGS = (ScriptFlags.P2SH | ScriptFlags.DERSIG | ScriptFlags.NULLDUMMY
                   | ScriptFlags.CHECKLOCKTIMEVERIFY | ScriptFlags.CHECKSEQUENCEVERIFY
                   | ScriptFlags.WITNESS | ScriptFlags.TAPROOT)

#: Core's STANDARD_SCRIPT_VERIFY_FLAGS (SIGPUSHONLY is not in it: policy checks push-only
#: scriptSigs itself, "scriptsig-not-pushonly").
STANDARD_FLAGS = (MANDATORY_FLAGS | ScriptFlags.STRICTENC | ScriptFlags.MINIMALDATA
                  | ScriptFlags.DISCOURAGE_UPGRADABLE_NOPS | ScriptFlags.CLEANSTACK
                  | ScriptFlags.MINIMALIF | ScriptFlags.NULLFAIL | ScriptFlags.LOW_S
                  | ScriptFlags.DISCOURAGE_UPGRADABLE_WITNESS_PROGRAM
                  | ScriptFlags.WITNESS_PUBKEYTYPE | ScriptFlags.CONST_SCRIPTCODE
                  | ScriptFlags.DISCOURAGE_UPGRADABLE_TAPROOT_VERSION
                  | ScriptFlags.DISCOURAGE_OP_SUCCESS | ScriptFlags.DISCOURAGE_UPGRADABLE_PUBKEYTYPE)

#: Every flag tinynode implements.
ALL_FLAGS = STANDARD_FLAGS | ScriptFlags.SIGPUSHONLY


def parse_flags(text: str) -> ScriptFlags:
    """Parse Core's comma-separated flag list ("P2SH,DERSIG"; "" or "NONE" = no flags), every
    name Core's vector files use. Raises KeyError for an unknown name."""
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
