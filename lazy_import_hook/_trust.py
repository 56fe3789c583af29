"""Who besides this user (and root) can write a file or folder whose group
bits allow writing: the group's other members, or, where a POSIX access
control list is set, its entries (the group bits then show the list's mask,
not the group's own right); and who a folder's default access control list
lets write what is made in it. A warm start with a private target never
imports this module: the group bits are looked at only when set, the
default list only when a plan is checked afresh.
"""

from __future__ import annotations

import os

# Linux's xattr form of an access control list (linux/posix_acl_xattr.h):
# a 4-byte version (2), then 8-byte entries: tag, permissions, id.
_ACL_ATTRIBUTE = "system.posix_acl_access"
_DEFAULT_ACL = "system.posix_acl_default"  # what a folder's new files and folders get, whatever the umask
_ACL_VERSION = 2
_USER, _GROUP_OBJ, _GROUP, _MASK, _OTHER = 0x02, 0x04, 0x08, 0x10, 0x20
_WRITE = 0x02
_others_by_group: dict[int, str] = {}  # gid -> why others may be in it ("" for none), once per process


def group_writers(st: os.stat_result, where: str | int | None) -> str | None:
    """Who else can write through the group bits of `st` ("group 100, which
    alice also belongs to", "user 1001, through an access control list"), or
    None. `where`, a path or an open descriptor, is needed to read an access
    control list; without it only the group is looked at."""
    entries = _acl_entries(where) if where is not None else None
    if entries is None:
        return _group_writers(st.st_gid)
    return entries if isinstance(entries, str) else _acl_writers(entries, st.st_gid)


def inherited_writers(folder: str) -> str | None:
    """Who else a default access control list on `folder` lets write what
    is made in it, or None. The kernel ignores the umask then: an installer
    making folders with mode 0777 gives them the list's rights."""
    entries = _acl_entries(folder, _DEFAULT_ACL)
    if entries is None:
        return None
    if isinstance(entries, str):
        return entries
    if any(tag == _OTHER and perm & _WRITE for tag, perm, _ in entries):
        return "every user, through a default access control list (getfacl shows it)"
    return _acl_writers(entries, os.getegid())


def _acl_writers(entries: Entries, owning_group: int) -> str | None:
    mask = next((perm for tag, perm, _ in entries if tag == _MASK), 7)
    for tag, perm, ident in entries:
        who = _entry_writer(tag, ident, owning_group) if perm & mask & _WRITE else None
        if who:
            return who
    return None


def _entry_writer(tag: int, ident: int, owning_group: int) -> str | None:
    """Who else one entry of an access control list lets write, or None."""
    listed = "through an access control list (getfacl shows it)"
    if tag == _USER:
        return f"user {ident}, {listed}" if ident not in (os.geteuid(), 0) else None
    if tag == _GROUP:
        who = _group_writers(ident)
        return f"{who}, {listed}" if who else None
    return _group_writers(owning_group) if tag == _GROUP_OBJ else None


def _group_writers(gid: int) -> str | None:
    """Why a group's write right lets another user write, or None: only
    this user's private group may write (Debian's user private groups: the
    group named after the user, with no other member). A shared primary
    group (`users`) may not, nor one whose members cannot all be seen (a
    directory service need not list them)."""
    if gid != os.getegid():
        return f"group {gid}"
    if gid not in _others_by_group:
        _others_by_group[gid] = _not_private(gid)
    why = _others_by_group[gid]
    return f"group {gid}, {why}" if why else None


def _not_private(gid: int) -> str:
    """Why `gid` is not this user's private group ("" when it is)."""
    import grp
    import pwd

    me = os.geteuid()
    try:
        user, group = pwd.getpwuid(me), grp.getgrgid(gid)
    except KeyError:  # a uid or gid the system does not name (a container's --user uid:gid)
        return "which this system does not name, so other users may be in it"
    if group.gr_name != user.pw_name or user.pw_gid != gid:
        return f"({group.gr_name}), not the private group of user {user.pw_name}"
    others = sorted({*group.gr_mem, *(p.pw_name for p in pwd.getpwall() if p.pw_gid == gid)} - {user.pw_name})
    more = f" and {len(others) - 3} more" if len(others) > 3 else ""
    return f"which {', '.join(others[:3])}{more} also belong to" if others else ""


Entries = list[tuple[int, int, int]]  # (tag, permissions, id)


def _acl_entries(where: str | int, attribute: str = _ACL_ATTRIBUTE) -> Entries | str | None:
    """The access control list's (tag, permissions, id) entries; None when
    there is none (or no such thing here); a reason when it cannot be read."""
    getxattr = getattr(os, "getxattr", None)
    if getxattr is None:
        return None
    try:
        raw = getxattr(where, attribute)
    except OSError:  # none set (ENODATA), or a file system without them
        return None
    import struct

    if len(raw) < 4 or (len(raw) - 4) % 8 or struct.unpack_from("<I", raw)[0] != _ACL_VERSION:
        return "an access control list of a form this check cannot read (getfacl shows it)"
    return [struct.unpack_from("<HHI", raw, offset) for offset in range(4, len(raw), 8)]
