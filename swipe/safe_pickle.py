"""Bounded reading of pickles: predictions files, checkpoints and exported models.

A hostile file must not run code, and must not cost unbounded time or memory either: a few
kilobytes of pickle can nest lists a hundred thousand deep, or share one list so that walking the
result visits billions of objects. Before anything is unpickled, :func:`check_pickle` reads the
opcode stream (nothing is built) and refuses a stream that is larger, has more objects, nests
deeper or expands further than its :class:`PickleLimits`. Torch files (zip archives) are checked
record by record first (:func:`check_torch_file`), then loaded with ``weights_only=True``.
"""

from __future__ import annotations

import io
import pickle
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


class UnsafeFileError(ValueError):
    """A file is larger, deeper or more complex than its limits allow, or names code to run.

    Parameters
    ----------
    where : str
        The file.
    reason : str
        What is wrong with it; the message is ``"<where>: <reason>"``.
    """

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(where, reason)
        self.where = where
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


@dataclass(frozen=True)
class PickleLimits:
    """Bounds on a pickle.

    Attributes
    ----------
    max_bytes : int
        Size of the pickle (for torch files: of the whole file).
    max_objects : int
        Objects the stream creates, and containers a walk of the result visits (a container
        shared ``k`` times counts ``k`` times).
    max_containers : int
        Lists, dicts, sets and tuples holding containers the stream creates (these cost the most
        memory; a tuple of scalars counts as a scalar).
    max_depth : int
        Nesting of containers.
    """

    max_bytes: int
    max_objects: int
    max_containers: int
    max_depth: int


# A predictions file holds a few dozen objects however many curves (its columns are strings and
# bytes; metadata holds the model config, a few levels deep): 4 GB hold about 100 million
# candidates. The object limit admits files of the older list-per-curve form up to about 230,000
# candidates and is scanned in well under a second.
PREDICTIONS_LIMITS = PickleLimits(
    max_bytes=4 << 30, max_objects=1_000_000, max_containers=250_000, max_depth=64
)
# The pickle inside a checkpoint holds structure only (tensor data are separate records).
TORCH_LIMITS = PickleLimits(
    max_bytes=16 << 30, max_objects=1_000_000, max_containers=250_000, max_depth=64
)
# Records of a torch zip file: one per tensor storage, plus a few.
MAX_TORCH_RECORDS = 100_000

_MARK = object()

# What each opcode does to the stack (pickle protocols 0 to 5), and how its argument is read.
(_SCALAR, _EMPTY, _MARK_OP, _FROM_MARK, _ADD_FROM_MARK, _TUPLE1, _TUPLE2, _TUPLE3, _APPEND, _SETITEM,
 _POP, _POP_MARK, _DUP, _PUT, _MEMOIZE, _GET, _CODE, _STOP, _NOTHING, _REFUSED) = range(20)
_ACTION = [-1] * 256
for _ops, _action in (
    (b"FIJKLMNSTUVXGBC\x88\x89\x8a\x8b\x8c\x8d\x8e\x96", _SCALAR),
    (b"]})\x8f", _EMPTY),
    (b"(", _MARK_OP),
    (b"ltd\x91", _FROM_MARK),  # LIST, TUPLE, DICT, FROZENSET
    (b"eu\x90", _ADD_FROM_MARK),  # APPENDS, SETITEMS, ADDITEMS
    (b"\x85", _TUPLE1), (b"\x86", _TUPLE2), (b"\x87", _TUPLE3),
    (b"a", _APPEND), (b"s", _SETITEM), (b"0", _POP), (b"1", _POP_MARK), (b"2", _DUP),
    (b"pqr", _PUT), (b"\x94", _MEMOIZE), (b"ghj", _GET),
    (b"cRbioPQ\x81\x92\x93", _CODE),  # globals, calls, object building, persistent ids
    (b".", _STOP), (b"\x80\x95", _NOTHING),  # PROTO, FRAME
    (b"\x82\x83\x84\x97\x98", _REFUSED),  # extension registry, out-of-band buffers
):
    for _op in _ops:
        _ACTION[_op] = _action
# Arguments: none, fixed size (skipped), a 1- or 4-byte number (memo keys), a 1-, 4- or 8-byte
# length prefix, text up to a newline, two lines.
_NO_ARG, _SKIP, _U1, _U4, _LEN1, _LEN4, _LEN8, _LINE, _TWO_LINES = range(9)
_ARG = [_NO_ARG] * 256
_SKIP_SIZE = [0] * 256
for _ops, _kind in ((b"hq\x80", _U1), (b"jr", _U4), (b"UC\x8a\x8c", _LEN1), (b"TXB\x8b", _LEN4),
                    (b"\x8d\x8e\x96", _LEN8), (b"FILSVPgp", _LINE), (b"ci", _TWO_LINES)):
    for _op in _ops:
        _ARG[_op] = _kind
for _op, _size in ((b"J", 4), (b"K", 1), (b"M", 2), (b"G", 8), (b"\x82", 1), (b"\x83", 2), (b"\x84", 4),
                   (b"\x95", 8)):
    _ARG[_op[0]], _SKIP_SIZE[_op[0]] = _SKIP, _size


def check_pickle(data: bytes, limits: PickleLimits, where: str, allow_code: bool = False) -> None:
    """Refuse a pickle beyond ``limits`` without unpickling it.

    Parameters
    ----------
    data : bytes
        The pickle.
    limits : PickleLimits
    where : str
        The file, for messages.
    allow_code : bool
        Let globals, calls and persistent ids through (torch files, whose loader checks them
        against its own list); otherwise they are refused.

    Raises
    ------
    UnsafeFileError
        ``"<where>: <reason>"``.
    """
    if len(data) > limits.max_bytes:
        raise UnsafeFileError(where, f"{len(data)} bytes, more than the limit of {limits.max_bytes}")
    # The stack holds None for a scalar, _MARK, or the number of a container node; children[n]
    # lists the container nodes that node n holds (None: none).
    children: list[list[int] | None] = []
    stack: list[Any] = []
    marks: list[int] = []
    memo: dict[int, Any] = {}
    pos, end, count = 0, len(data), 0
    max_objects, max_memo, max_containers = limits.max_objects, limits.max_objects, limits.max_containers
    push = stack.append
    unpack4 = struct.Struct("<I").unpack_from
    unpack8 = struct.Struct("<Q").unpack_from

    def fail(reason: str) -> UnsafeFileError:
        return UnsafeFileError(where, f"{reason} (at byte {pos})")

    def to_mark() -> list[Any]:
        if not marks:
            raise fail("corrupt pickle: no mark")
        k = marks.pop()
        items = stack[k + 1 :]
        del stack[k:]
        return items

    def new(items: list[Any]) -> None:
        if len(children) >= max_containers:
            raise fail(f"more than {max_containers} containers")
        children.append([i for i in items if i is not None] or None)
        push(len(children) - 1)

    def add(target: Any, items: list[Any]) -> None:
        if type(target) is not int:
            raise fail("corrupt pickle: adding to a value that is not a container")
        kids = [i for i in items if i is not None]
        if kids:
            held = children[target]
            if held is None:
                children[target] = kids
            else:
                held.extend(kids)

    try:
        while True:
            op = data[pos]
            pos += 1
            count += 1
            if count > max_objects:
                raise fail(f"more than {max_objects} objects")
            # Fast paths for what predictions files are made of: floats, short strings, memo
            # puts and gets, pairs.
            if op == 0x47:  # BINFLOAT
                pos += 8
                push(None)
                continue
            if op == 0x94:  # MEMOIZE
                if len(memo) > max_memo:
                    raise fail(f"memo index {len(memo)} beyond the limit of {max_memo}")
                memo[len(memo)] = stack[-1]
                continue
            if op == 0x8C:  # SHORT_BINUNICODE
                pos += 1 + data[pos]
                push(None)
                continue
            if op == 0x6A or op == 0x68:  # LONG_BINGET, BINGET
                if op == 0x68:
                    arg = data[pos]
                    pos += 1
                else:
                    arg = unpack4(data, pos)[0]
                    pos += 4
                if arg not in memo:
                    raise fail(f"corrupt pickle: memo key {arg} not defined")
                push(memo[arg])
                continue
            if op == 0x86 and len(stack) >= 2 and stack[-1] is None and stack[-2] is None:
                del stack[-1]  # TUPLE2 of two scalars: a scalar for depth and size
                continue
            if op == 0x28:  # MARK
                marks.append(len(stack))
                push(_MARK)
                continue
            if op == 0x65:  # APPENDS
                items = to_mark()
                add(stack[-1], items)
                continue
            if op == 0x5D:  # EMPTY_LIST
                new([])
                continue
            if op == 0x4E or op == 0x4B or op == 0x4A:  # NONE, BININT1, BININT
                pos += 0 if op == 0x4E else 1 if op == 0x4B else 4
                push(None)
                continue
            kind = _ARG[op]
            arg = 0
            if kind:
                if kind == _SKIP:
                    pos += _SKIP_SIZE[op]
                elif kind == _U1:
                    arg = data[pos]
                    pos += 1
                elif kind == _LEN1:
                    pos += 1 + data[pos]
                elif kind == _LEN4:
                    pos += 4 + unpack4(data, pos)[0]
                elif kind == _U4:
                    arg = unpack4(data, pos)[0]
                    pos += 4
                elif kind == _LEN8:
                    pos += 8 + unpack8(data, pos)[0]
                else:
                    start = pos
                    for _ in range(2 if kind == _TWO_LINES else 1):
                        newline = data.find(b"\n", pos)
                        if newline < 0:
                            raise fail("truncated pickle")
                        pos = newline + 1
                    if op in b"gp":
                        arg = int(data[start : pos - 1])
                if pos > end:
                    raise fail("truncated pickle")
            action = _ACTION[op]
            if action == _SCALAR:
                stack.append(None)
            elif action == _GET:
                if arg not in memo:
                    raise fail(f"corrupt pickle: memo key {arg} not defined")
                stack.append(memo[arg])
            elif action == _MEMOIZE or action == _PUT:
                index = len(memo) if action == _MEMOIZE else arg
                if index > max_memo:
                    raise fail(f"memo index {index} beyond the limit of {max_memo}")
                memo[index] = stack[-1]
            elif action == _TUPLE2 or action == _TUPLE1 or action == _TUPLE3:
                n = action - _TUPLE1 + 1
                items = stack[-n:]
                if len(items) < n or _MARK in items:
                    raise fail("corrupt pickle")
                del stack[-n:]
                if any(i is not None for i in items):
                    new(items)
                else:  # a tuple of scalars only is immutable: a scalar for depth and size
                    push(None)
            elif action == _MARK_OP:
                marks.append(len(stack))
                stack.append(_MARK)
            elif action == _EMPTY:
                new([])
            elif action == _ADD_FROM_MARK:
                items = to_mark()
                add(stack[-1], items)
            elif action == _FROM_MARK:
                new(to_mark())
            elif action == _APPEND or action == _SETITEM:
                items = [stack.pop() for _ in range(1 if action == _APPEND else 2)]
                if _MARK in items:
                    raise fail("corrupt pickle")
                add(stack[-1], items)
            elif action == _POP:
                if stack.pop() is _MARK:
                    marks.pop()
            elif action == _POP_MARK:
                to_mark()
            elif action == _DUP:
                if stack[-1] is _MARK:
                    raise fail("corrupt pickle")
                stack.append(stack[-1])
            elif action == _CODE:
                if not allow_code:
                    raise UnsafeFileError(where, _refusal(data))
                _apply_code(op, stack, new, to_mark)
            elif action == _STOP:
                break
            elif action == _REFUSED:
                raise fail(f"refusing pickle opcode {op:#04x} (extension or out-of-band buffer)")
            elif action != _NOTHING:
                raise fail(f"unknown pickle opcode {op:#04x}")
    except IndexError:
        raise fail("truncated or corrupt pickle") from None
    except struct.error as err:
        raise fail(f"truncated pickle: {err}") from None
    except ValueError as err:
        if isinstance(err, UnsafeFileError):
            raise
        raise fail(f"corrupt pickle: {err}") from None
    _check_shape(children, limits, where)


def _apply_code(op: int, stack: list[Any], new: Any, to_mark: Any) -> None:
    """The stack effect of an opcode that builds objects: the result holds what it was made of."""
    if op in b"cP":  # GLOBAL, PERSID
        items: list[Any] = []
    elif op == 0x93:  # STACK_GLOBAL
        items = []
        del stack[-2:]
    elif op in b"R\x81Q":  # REDUCE, NEWOBJ: args; BINPERSID: the id
        items = [stack.pop()]
        if op != ord("Q"):
            stack.pop()
    elif op == 0x92:  # NEWOBJ_EX
        items = [stack.pop(), stack.pop()]
        stack.pop()
    elif op == ord("b"):  # BUILD: the object and its state
        items = [stack.pop(), stack.pop()]
    else:  # INST, OBJ
        items = to_mark()
    if _MARK in items:
        raise ValueError("a mark where a value should be")
    new(items)


def _check_shape(children: list[list[int] | None], limits: PickleLimits, where: str) -> None:
    """Refuse cycles, nesting deeper than ``limits.max_depth`` and results whose walk visits
    more than ``limits.max_objects`` objects; iterative, each container visited once."""
    depth = [0] * len(children)
    size = [0] * len(children)
    state = bytearray(len(children))  # 0 new, 1 open, 2 done
    for root in range(len(children)):
        if state[root]:
            continue
        path = [(root, 0)]
        state[root] = 1
        while path:
            node, k = path[-1]
            kids = children[node] or ()
            if k < len(kids):
                path[-1] = (node, k + 1)
                child = kids[k]
                if state[child] == 1:
                    raise UnsafeFileError(where, "a container holds itself")
                if state[child] == 0:
                    state[child] = 1
                    path.append((child, 0))
                    if len(path) > limits.max_depth:
                        raise UnsafeFileError(where, f"nested deeper than {limits.max_depth} levels")
                continue
            path.pop()
            state[node] = 2
            depth[node] = 1 + max((depth[c] for c in kids), default=0)
            size[node] = 1 + sum(size[c] for c in kids)
            if depth[node] > limits.max_depth:
                raise UnsafeFileError(where, f"nested deeper than {limits.max_depth} levels")
            if size[node] > limits.max_objects:
                raise UnsafeFileError(
                    where, f"shared containers expand to more than {limits.max_objects} objects"
                )


def _refusal(data: bytes) -> str:
    """What the restricted unpickler says of a stream that names code: it stops there, within the
    bounds the scan has checked so far."""
    try:
        _PlainUnpickler(io.BytesIO(data)).load()
    except pickle.UnpicklingError as err:
        return str(err)
    except Exception:  # noqa: BLE001 - any other failure: the generic message below
        pass
    return "refusing to load code: plain data only"


class _PlainUnpickler(pickle.Unpickler):
    """Builds plain containers and scalars; never looks up a global."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name}: plain data only")

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("refusing a persistent id: plain data only")


def plain_loads(data: bytes, where: str, limits: PickleLimits = PREDICTIONS_LIMITS) -> Any:
    """Unpickle plain data (dicts, lists, tuples, sets, strings, bytes, numbers, None) within
    ``limits``; anything else, or anything beyond, is an :class:`UnsafeFileError`."""
    check_pickle(data, limits, where)
    try:
        return _PlainUnpickler(io.BytesIO(data)).load()
    except pickle.UnpicklingError as err:
        raise UnsafeFileError(where, str(err)) from None
    except (EOFError, ValueError, TypeError, KeyError, IndexError, AttributeError, MemoryError) as err:
        raise UnsafeFileError(where, f"corrupt pickle: {type(err).__name__}: {err}") from None


def check_torch_file(source: Path | bytes, where: str, limits: PickleLimits = TORCH_LIMITS) -> None:
    """Refuse a ``torch.save`` file beyond ``limits`` before torch reads it: its size, the number
    and sizes of its zip records (each stored record fits in the file), and its pickle
    (:func:`check_pickle`, globals allowed: ``torch.load(weights_only=True)`` checks those)."""
    size = len(source) if isinstance(source, bytes) else source.stat().st_size
    if size > limits.max_bytes:
        raise UnsafeFileError(where, f"{size} bytes, more than the limit of {limits.max_bytes}")
    try:
        with zipfile.ZipFile(io.BytesIO(source) if isinstance(source, bytes) else source) as archive:
            records = archive.infolist()
            if len(records) > MAX_TORCH_RECORDS:
                raise UnsafeFileError(where, f"{len(records)} records, more than {MAX_TORCH_RECORDS}")
            pickles = [r for r in records if r.filename.endswith("/data.pkl") or r.filename == "data.pkl"]
            if len(pickles) != 1:
                raise UnsafeFileError(where, "not a torch file (no single data.pkl record)")
            for record in records:
                if record.file_size > size or record.compress_type != zipfile.ZIP_STORED:
                    raise UnsafeFileError(
                        where, f"record {record.filename!r} is compressed or larger than the file"
                    )
            data = archive.read(pickles[0])
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
        if isinstance(err, UnsafeFileError):
            raise
        raise UnsafeFileError(where, f"not a readable torch file ({err})") from None
    check_pickle(data, limits, where, allow_code=True)


def torch_load(source: Path | bytes, where: str, mmap: bool = False,
               map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(..., weights_only=True)`` onto ``map_location`` after :func:`check_torch_file`.

    Raises
    ------
    UnsafeFileError
        The file is beyond the limits, or torch cannot or will not load it.
    """
    import torch

    check_torch_file(source, where)
    try:
        if isinstance(source, bytes):
            return torch.load(io.BytesIO(source), map_location=map_location, weights_only=True)
        return torch.load(source, map_location=map_location, weights_only=True, mmap=mmap)
    except Exception as err:  # torch raises many types for a damaged or unsafe file
        raise UnsafeFileError(where, f"cannot load: {err}") from None
