"""The seccomp filter of the tool sandbox: a classic BPF program, assembled here.

bubblewrap loads it (``--seccomp FD``) just before it runs the tool. It
refuses, with EPERM, the system calls a shell or Python snippet never needs
and that widen what a sandboxed process can reach: tracing other processes,
mounting, new namespaces (``unshare``, ``setns``, ``clone`` with a
``CLONE_NEW*`` flag), the kernel keyring, BPF, userfaultfd, perf events,
io_uring, kernel modules and kexec, swap, reboot, accounting, quotas,
chroot, file handles, the kernel log, and pushing characters into a
terminal (``TIOCSTI``/``TIOCLINUX``). ``clone3`` gets ENOSYS, because its
flags sit in memory a filter cannot read; the C library then falls back to
``clone``, whose flags are checked. A call from another ABI than the
native one (32-bit ``int 0x80`` or x32 on x86-64) gets ENOSYS too, so
nothing slips past under a different number.

The program is a list of ``struct sock_filter`` (8 bytes each: code, jt,
jf, k) over ``struct seccomp_data`` (nr at offset 0, arch at 4, args from
16). Numbers are per architecture (x86-64, aarch64); a test checks them
against libseccomp's own tables.
"""

from __future__ import annotations

import errno
import os
import platform
import struct
from dataclasses import dataclass

from appliance.errors import ApplianceError

# BPF instruction classes and modes (linux/bpf_common.h).
_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JGE_K = 0x35
_JSET_K = 0x45
_RET_K = 0x06

RET_ALLOW = 0x7FFF0000
_RET_ERRNO = 0x00050000
_OFF_NR, _OFF_ARCH, _OFF_ARG0, _OFF_ARG1 = 0, 4, 16, 24

#: What a filtered call returns.
DENY = _RET_ERRNO | errno.EPERM
UNSUPPORTED = _RET_ERRNO | errno.ENOSYS

CLONE_NEW_FLAGS = (0x00020000 | 0x02000000 | 0x04000000 | 0x08000000  # NS CGROUP UTS IPC
                   | 0x10000000 | 0x20000000 | 0x40000000 | 0x00000080)  # USER PID NET TIME
TIOCSTI, TIOCLINUX = 0x5412, 0x541C
X32_SYSCALL_BIT = 0x40000000

#: Denied outright (EPERM), by name.
DENIED = (
    "ptrace", "process_vm_readv", "process_vm_writev",
    "mount", "umount2", "pivot_root", "open_tree", "move_mount", "fsopen", "fsconfig",
    "fsmount", "fspick", "mount_setattr", "chroot",
    "unshare", "setns",
    "keyctl", "add_key", "request_key",
    "bpf", "userfaultfd", "perf_event_open",
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load",
    "swapon", "swapoff", "reboot", "acct", "quotactl",
    "open_by_handle_at", "name_to_handle_at", "syslog", "lookup_dcookie",
)


@dataclass(frozen=True)
class Arch:
    """One architecture: its audit token and system call numbers."""

    name: str
    audit: int
    numbers: dict[str, int]
    x32_bit: bool = False


X86_64 = Arch("x86_64", 0xC000003E, {
    "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311,
    "mount": 165, "umount2": 166, "pivot_root": 155, "open_tree": 428, "move_mount": 429,
    "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "mount_setattr": 442,
    "chroot": 161, "unshare": 272, "setns": 308, "keyctl": 250, "add_key": 248,
    "request_key": 249, "bpf": 321, "userfaultfd": 323, "perf_event_open": 298,
    "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
    "init_module": 175, "finit_module": 313, "delete_module": 176, "kexec_load": 246,
    "kexec_file_load": 320, "swapon": 167, "swapoff": 168, "reboot": 169, "acct": 163,
    "quotactl": 179, "open_by_handle_at": 304, "name_to_handle_at": 303, "syslog": 103,
    "lookup_dcookie": 212, "clone": 56, "clone3": 435, "ioctl": 16,
}, x32_bit=True)

AARCH64 = Arch("aarch64", 0xC00000B7, {
    "ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271,
    "mount": 40, "umount2": 39, "pivot_root": 41, "open_tree": 428, "move_mount": 429,
    "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "mount_setattr": 442,
    "chroot": 51, "unshare": 97, "setns": 268, "keyctl": 219, "add_key": 217,
    "request_key": 218, "bpf": 280, "userfaultfd": 282, "perf_event_open": 241,
    "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
    "init_module": 105, "finit_module": 273, "delete_module": 106, "kexec_load": 104,
    "kexec_file_load": 294, "swapon": 224, "swapoff": 225, "reboot": 142, "acct": 89,
    "quotactl": 60, "open_by_handle_at": 265, "name_to_handle_at": 264, "syslog": 116,
    "lookup_dcookie": 18, "clone": 220, "clone3": 435, "ioctl": 29,
})

ARCHES = {"x86_64": X86_64, "aarch64": AARCH64}


class SeccompUnavailable(ApplianceError):
    """No filter is known for this machine's architecture."""


def native_arch() -> Arch:
    machine = platform.machine()
    arch = ARCHES.get({"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine))
    if arch is None:
        raise SeccompUnavailable(f"no seccomp filter for the {machine} architecture")
    return arch


def program(arch: Arch) -> bytes:
    """The filter for ``arch`` as bwrap's ``--seccomp`` reads it: packed sock_filters."""
    # Instructions as (code, jump-if-true label, jump-if-false label, k); a label is the
    # name of a return below or None (the next instruction).
    ins: list[tuple[int, str | None, str | None, int]] = [
        (_LD_W_ABS, None, None, _OFF_ARCH),
        (_JEQ_K, None, "unsupported", arch.audit),
        (_LD_W_ABS, None, None, _OFF_NR),
    ]
    if arch.x32_bit:
        ins.append((_JGE_K, "unsupported", None, X32_SYSCALL_BIT))
    for name in DENIED:
        ins.append((_JEQ_K, "deny", None, arch.numbers[name]))
    ins.append((_JEQ_K, "unsupported", None, arch.numbers["clone3"]))
    ins.append((_JEQ_K, None, "not_clone", arch.numbers["clone"]))
    ins.append((_LD_W_ABS, None, None, _OFF_ARG0))  # the flags (their low 32 bits)
    ins.append((_JSET_K, "deny", "allow", CLONE_NEW_FLAGS))
    labels = {"not_clone": len(ins)}
    ins.append((_JEQ_K, None, "allow", arch.numbers["ioctl"]))
    ins.append((_LD_W_ABS, None, None, _OFF_ARG1))  # the request
    ins.append((_JEQ_K, "deny", None, TIOCSTI))
    ins.append((_JEQ_K, "deny", "allow", TIOCLINUX))
    returns = {"allow": RET_ALLOW, "deny": DENY, "unsupported": UNSUPPORTED}
    for label in returns:
        labels[label] = len(ins)
        ins.append((_RET_K, None, None, returns[label]))
    out = bytearray()
    for at, (code, jt, jf, k) in enumerate(ins):
        out += struct.pack("=HBBI", code, _jump(labels, jt, at), _jump(labels, jf, at), k)
    return bytes(out)


def program_fd(arch: Arch | None = None) -> int:
    """A file descriptor (inheritable, at offset 0) holding the filter, for ``--seccomp``."""
    data = program(arch or native_arch())
    fd = os.memfd_create("hybrid-agent-seccomp", 0)  # without MFD_CLOEXEC: bwrap reads it
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _jump(labels: dict[str, int], label: str | None, at: int) -> int:
    if label is None:
        return 0
    offset = labels[label] - at - 1
    if not 0 <= offset <= 255:
        raise ValueError(f"seccomp jump of {offset} from instruction {at}")
    return offset
