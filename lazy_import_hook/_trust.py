"""Who besides this user (and root) can write a file or folder whose group
bits allow writing: the group's other members, or, where a POSIX access
control list is set, its entries (the group bits then show the list's mask,
not the group's own right). Only looked at when those bits are set, so a
warm start with a private target never imports this module.
"""

from __future__ import annotations

import os

# Linux's xattr form of an access control list (linux/posix_acl_xattr.h):
# a 4-byte version (2), then 8-byte entries: tag, permissions, id.
_ACL_ATTRIBUTE = "system.posix_acl_access"
_ACL_VERSION = 2
_USER, _GROUP_OBJ, _GROUP, _MASK = 0x02, 0x04, 0x08, 0x10
_WRITE = 0x02
_others_by_group: dict[int, str] = {}  # gid -> the other users in it ("" for none), once per process


def group_writers(st: os.stat_result, where: str | int | None) -> str | None:
    """Who else can write through the group bits of `st` ("group 100, which
    alice also belongs to", "user 1001, through an access control list"), or
    None. `where`, a path or an open descriptor, is needed to read an access
    control list; without it only the group is looked at."""
    entries = _acl_entries(where) if where is not None else None
    if entries is None:
        return _group_writers(st.st_gid)
    if isinstance(entries, str):
        return entries
    mask = next((perm for tag, perm, _ in entries if tag == _MASK), 7)
    for tag, perm, ident in entries:
        who = _entry_writer(tag, ident, st.st_gid) if perm & mask & _WRITE else None
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
    """Why a group's write right lets another user write, or None: a group
    this process is not in by default, or one other users are members of (a
    shared primary group such as `users`; a private group is fine)."""
    if gid != os.getegid():
        return f"group {gid}"
    others = _others_in(gid)
    return f"group {gid}, which {others} also belong to" if others else None


def _others_in(gid: int) -> str:
    """The other users whose primary or supplementary group `gid` is (a few names)."""
    if gid not in _others_by_group:
        import grp
        import pwd

        me = os.geteuid()
        try:
            members = set(grp.getgrgid(gid).gr_mem)
        except KeyError:  # a group the system does not name (a container's --user uid:gid)
            members = set()
        members.update(p.pw_name for p in pwd.getpwall() if p.pw_gid == gid)
        try:
            members.discard(pwd.getpwuid(me).pw_name)
        except KeyError:
            pass
        names = sorted(members)
        more = f" and {len(names) - 3} more" if len(names) > 3 else ""
        _others_by_group[gid] = ", ".join(names[:3]) + more
    return _others_by_group[gid]


def _acl_entries(where: str | int) -> list[tuple[int, int, int]] | str | None:
    """The access control list's (tag, permissions, id) entries; None when
    there is none (or no such thing here); a reason when it cannot be read."""
    getxattr = getattr(os, "getxattr", None)
    if getxattr is None:
        return None
    try:
        raw = getxattr(where, _ACL_ATTRIBUTE)
    except OSError:  # none set (ENODATA), or a file system without them
        return None
    import struct

    if len(raw) < 4 or (len(raw) - 4) % 8 or struct.unpack_from("<I", raw)[0] != _ACL_VERSION:
        return "an access control list of a form this check cannot read (getfacl shows it)"
    return [struct.unpack_from("<HHI", raw, offset) for offset in range(4, len(raw), 8)]
