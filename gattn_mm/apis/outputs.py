"""What the tools write never costs the user data: one run per work dir (a lock naming
the other run), no file overwritten that is not the tool's own output (a drawing
carries a mark saying it is one), and output paths checked before the work."""
import fcntl
import json
import os
import os.path as osp
import socket
import struct
import sys
import tempfile
import time
import zlib
from contextlib import ExitStack, contextmanager
from typing import Iterator, Optional, Sequence

LOCK_NAME = '.gattn_run.lock'
DRAWING_MARK = b'gattn-mm attention drawing'  # PNG tEXt 'Software' of every drawing


class WorkDirBusyError(RuntimeError):
    """Another run holds the work dir (the message names it)."""


def writable_file_problem(path: str) -> Optional[str]:
    """Why a file cannot be written at ``path`` (its folder must exist and take a new
    file: tried, not guessed from permission bits, which root ignores), or None."""
    if not str(path).strip():
        return 'empty'
    if osp.isdir(path):
        return 'is a folder'
    folder = osp.dirname(osp.abspath(path))
    if not osp.isdir(folder):
        return f'its folder {folder} does not exist'
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix='.gattn_probe_'):
            pass
    except OSError as err:
        return f'cannot write in {folder} ({err.strerror or err})'
    return None


def check_output_file(path: Optional[str], option: str) -> None:
    """Raise ``SystemExit`` naming ``option`` when ``path`` (if given) cannot be written,
    before any work is done."""
    problem = None if path is None else writable_file_problem(path)
    if problem:
        raise SystemExit(f'error: {option} {path}: {problem}; the results would be lost '
                         f'after the run')


@contextmanager
def work_dir_lock(work_dir: str, rank: Optional[int] = None) -> Iterator[None]:
    """Hold ``work_dir`` for one run: its lock file ``.gattn_run.lock`` (an advisory
    lock, released when the process ends however it ends) names this process, its
    command and start time. Another run of the same work dir is refused, naming
    them. In a distributed run, only rank 0 (``RANK``) takes it.

    Raises:
        WorkDirBusyError: while another process holds it.
    """
    rank = launcher_rank() if rank is None else rank
    if rank != 0:
        yield
        return
    os.makedirs(work_dir, exist_ok=True)
    path = osp.join(work_dir, LOCK_NAME)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise WorkDirBusyError(f'the work dir {work_dir} is in use by another run '
                                   f'({describe_holder(path)}); give this run another '
                                   f'--work-dir, or wait for that one to end') from None
        holder = dict(pid=os.getpid(), host=socket.gethostname(),
                      command=' '.join([osp.basename(sys.executable)] + sys.argv),
                      started=time.strftime('%Y-%m-%d %H:%M:%S'))
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextmanager
def exclusive_work_dir(work_dir: str) -> Iterator[None]:
    """:func:`work_dir_lock` for a tool: a busy work dir ends it with one line
    (``SystemExit``) naming the other run."""
    with ExitStack() as stack:
        try:
            stack.enter_context(work_dir_lock(work_dir))
        except WorkDirBusyError as err:
            raise SystemExit(f'error: {err}') from None
        yield


def launcher_rank() -> int:
    """This process's global rank as the launchers set it before mmengine starts
    (torchrun: RANK; Slurm: SLURM_PROCID; Open MPI, MPICH), 0 without a launcher."""
    for name in ('RANK', 'SLURM_PROCID', 'OMPI_COMM_WORLD_RANK', 'PMI_RANK'):
        if os.environ.get(name, '').isdigit():
            return int(os.environ[name])
    return 0


def describe_holder(path: str) -> str:
    """'pid N on HOST since TIME: COMMAND' from a lock file (or what is known)."""
    try:
        with open(path) as f:
            h = json.loads(f.read() or '{}')
        return (f'pid {h["pid"]} on {h["host"]} since {h["started"]}: '
                f'{h["command"]}')
    except (OSError, ValueError, KeyError):
        return f'its lock file {path}'


def mark_drawing(png: bytes) -> bytes:
    """The PNG ``png`` with a tEXt chunk (``Software``: ``DRAWING_MARK``) right after
    its header, the mark :func:`is_own_drawing` looks for."""
    text = b'Software\0' + DRAWING_MARK
    chunk = (struct.pack('>I', len(text)) + b'tEXt' + text +
             struct.pack('>I', zlib.crc32(b'tEXt' + text) & 0xffffffff))
    end_of_ihdr = 8 + 8 + 13 + 4  # signature, IHDR length + type, data, CRC
    return png[:end_of_ihdr] + chunk + png[end_of_ihdr:]


def is_own_drawing(path: str) -> bool:
    """Whether ``path`` is a PNG drawn by gattn-mm (its mark right after the header)."""
    try:
        with open(path, 'rb') as f:
            head = f.read(8 + 25 + 8 + 9 + len(DRAWING_MARK))
    except OSError:
        return False
    return head.startswith(b'\x89PNG\r\n\x1a\n') and head.endswith(DRAWING_MARK)


def foreign_files(paths: Sequence[str]) -> list:
    """Those of ``paths`` that exist and are not gattn-mm drawings."""
    return [p for p in paths if osp.lexists(p) and not is_own_drawing(p)]


def refuse_foreign_outputs(paths: Sequence[str], option: str) -> None:
    """Raise ``SystemExit`` naming ``option`` when writing ``paths`` would replace a
    file that is not a drawing of gattn-mm (a user's image, a link, ...): checked
    before the work."""
    refuse_overwriting(foreign_files(paths), option, 'is not a drawing of gattn-mm',
                       'the drawings to another folder')


def refuse_overwriting(foreign: Sequence[str], option: str, what: str,
                       instead: str) -> None:
    """Raise ``SystemExit`` naming ``option`` and the first of ``foreign`` (files
    gattn-mm did not write: ``what`` they are) unless there is none; ``instead``:
    where to write."""
    if foreign:
        more = f' (and {len(foreign) - 1} more)' if len(foreign) > 1 else ''
        raise SystemExit(f'error: {option}: {foreign[0]}{more} exists and {what}; it would '
                         f'be overwritten: move it, or write {instead}')
