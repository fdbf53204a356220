"""What an experiment module says about itself, for ``lossatlas list`` and ``lossatlas run NAME --help``.

Nothing here runs an experiment. From an experiment module (``Config``, ``QUICK`` and its
docstring; see :mod:`lossatlas.runner`) it derives:

* :func:`config_fields`: one :class:`FieldInfo` per Config field (name, type, default, the
  ``QUICK`` value where ``QUICK`` overrides it, one line of doc);
* :func:`field_docs`: that line of doc per field, from ``dataclasses.field(metadata={"doc":
  ...})`` if given, else the trailing ``# comment`` on the field's line in the class source,
  else empty. Experiments need not document fields twice: the comment they already write is
  the doc;
* :func:`quick_runtime`: the quick run's time as the module docstring's ``Runtime:`` block
  records it (``"31 s"``, ``"3-5 s"``; None when it records none);

and renders them as text no wider than a given terminal width (:func:`config_help`,
:func:`list_text`). Every reader tolerates what it cannot parse (no source, no docstring, a
``Config`` that fails to build) by leaving that part empty, never by raising.
"""
from __future__ import annotations

import ast
import dataclasses
import inspect
import io
import re
import shutil
import textwrap
import tokenize
from typing import Any, Iterable, Mapping

#: Width used when the terminal's is unknown; also the widest text :func:`terminal_width` returns.
DEFAULT_WIDTH = 100
MIN_WIDTH = 60
#: A docstring's runtime block: the line starting ``Runtime:`` and its indented continuation lines.
RUNTIME_HEADER = "Runtime:"
_DURATION = re.compile(r"(~?\d+(?:\.\d+)?(?:\s*[-\u2013]\s*\d+(?:\.\d+)?)?)\s*(s|sec|min|minutes?)\b")
_QUICK = re.compile(r"\bquick\b", re.IGNORECASE)
_HEADER = re.compile(r"^[A-Z][\w ]*:(\s|$)")


@dataclasses.dataclass(frozen=True)
class FieldInfo:
    """One Config field as ``run NAME --help`` shows it.

    Attributes:
      name: the field name (what ``--set NAME=VALUE`` takes).
      type: the annotation as written (``"float"``, ``"tuple"``, ``"int | None"``).
      default: the default value (from ``Config()``, so after ``__post_init__``), or
        :data:`NO_VALUE` when it has none or ``Config()`` cannot be built.
      quick: the ``QUICK`` value, or :data:`NO_VALUE` when ``QUICK`` leaves the field alone.
      doc: one line of doc, or ``""``.
      section: the comment line(s) heading the group of fields this one starts, or ``""``.
    """
    name: str
    type: str
    default: Any
    quick: Any
    doc: str = ""
    section: str = ""


class _NoValue:
    def __repr__(self) -> str:
        return "-"


#: Marks a missing default (required field) or a field ``QUICK`` does not override.
NO_VALUE = _NoValue()


def terminal_width() -> int:
    """The terminal's width (``$COLUMNS`` first), clamped to [MIN_WIDTH, DEFAULT_WIDTH]."""
    cols = shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns
    return max(MIN_WIDTH, min(DEFAULT_WIDTH, cols))


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, str):
        return annotation  # ``from __future__ import annotations``: as written
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def _source_comments(cls: type) -> tuple[dict[str, str], dict[str, str]]:
    """``({field: trailing comment}, {field: section comment above it})`` from one class's source.

    A trailing comment is a ``# ...`` after code on a line of the field's statement (its first
    line first), continued by whole-line comments just below that start in the same column. A
    section comment is a single whole-line comment right above a field (a block of several
    lines is an explanation, not a heading, and is left out). Empty dicts when the source is
    unavailable or does not parse.
    """
    try:
        src = textwrap.dedent(inspect.getsource(cls))
        tree = ast.parse(src)
        comments: dict[int, tuple[str, bool, int]] = {}  # line -> (text, whole line, column)
        for tok in tokenize.generate_tokens(io.StringIO(src).readline):
            if tok.type == tokenize.COMMENT:
                whole = not tok.line[:tok.start[1]].strip()
                comments[tok.start[0]] = (tok.string.lstrip("#").strip(), whole, tok.start[1])
    except (OSError, TypeError, SyntaxError, tokenize.TokenError, IndentationError, ValueError):
        return {}, {}
    klass = next((n for n in tree.body if isinstance(n, ast.ClassDef)), None)
    if klass is None:
        return {}, {}
    trailing, sections, used = {}, {}, set()
    for node in klass.body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        name, last = node.target.id, node.end_lineno or node.lineno
        for row in range(node.lineno, last + 1):
            text, whole, col = comments.get(row, ("", True, 0))
            if text and not whole:
                parts, nxt = [text], last + 1
                # a trailing comment continued on whole-line comments in its own column
                while nxt in comments and comments[nxt][1] and comments[nxt][2] == col:
                    parts.append(comments[nxt][0])
                    used.add(nxt)
                    nxt += 1
                trailing[name] = " ".join(parts)
                break
        above, row = [], node.lineno - 1
        while row >= 1 and row in comments and comments[row][1] and row not in used:
            above.append(comments[row][0])
            row -= 1
        if len(above) == 1 and above[0]:  # a one-line heading; a longer block explains, it is no heading
            sections[name] = above[0]
    return trailing, sections


def field_docs(cls: type) -> dict[str, str]:
    """One line of doc per field of the dataclass ``cls``.

    For each field, the first of:

    1. ``dataclasses.field(metadata={"doc": "..."})``;
    2. the trailing ``# comment`` on the field's line in the class source (the defining class,
       for a field inherited from a dataclass base);
    3. ``""``.

    Whitespace in the doc is collapsed to single spaces.

    Args:
      cls: a dataclass (an experiment's ``Config``).

    Returns:
      ``{field name: doc}`` for every field, in field order; empty if ``cls`` is not a dataclass.
    """
    if not dataclasses.is_dataclass(cls):
        return {}
    comments: dict[str, str] = {}
    for klass in reversed(cls.__mro__):  # subclasses' comments win
        if dataclasses.is_dataclass(klass):
            comments.update(_source_comments(klass)[0])
    out = {}
    for f in dataclasses.fields(cls):
        doc = f.metadata.get("doc") if f.metadata else None
        out[f.name] = _one_line(doc) if doc else comments.get(f.name, "")
    return out


def _sections(cls: type) -> dict[str, str]:
    out: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if dataclasses.is_dataclass(klass):
            out.update(_source_comments(klass)[1])
    return out


def config_fields(module) -> list[FieldInfo]:
    """The settable fields of an experiment module's ``Config``, in definition order.

    Args:
      module: an experiment module (``Config``; ``QUICK`` optional).

    Returns:
      One :class:`FieldInfo` per field that ``--set`` can change (``init=True``).
    """
    cls = module.Config
    quick = dict(getattr(module, "QUICK", None) or {})
    try:
        instance = cls()
    except Exception:  # noqa: BLE001 -- a Config with required fields: defaults from the fields
        instance = None
    docs, sections = field_docs(cls), _sections(cls)
    out = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        if instance is not None:
            default = getattr(instance, f.name, NO_VALUE)
        elif f.default is not dataclasses.MISSING:
            default = f.default
        else:
            default = NO_VALUE
        out.append(FieldInfo(name=f.name, type=_type_name(f.type), default=default,
                             quick=quick.get(f.name, NO_VALUE), doc=docs.get(f.name, ""),
                             section=sections.get(f.name, "")))
    return out


def quick_runtime(doc: str | None) -> str | None:
    """The quick run's time recorded in a module docstring's ``Runtime:`` block.

    The block is the line starting with ``Runtime:`` plus the lines after it up to a blank
    line or the next ``Header:`` line. The answer is the first duration (``<number> s``, a
    range ``3-5 s``, or in ``min``) after the word "quick" (any case) in that block.

    Args:
      doc: a module docstring (or None).

    Returns:
      The duration as written, e.g. ``"31 s"``, ``"3-5 s"``, ``"~1.5-2 min"``; None when the
      docstring has no runtime block or the block gives no quick duration.
    """
    if not doc:
        return None
    lines = inspect.cleandoc(doc).splitlines()
    start = next((i for i, ln in enumerate(lines) if ln.startswith(RUNTIME_HEADER)), None)
    if start is None:
        return None
    block = [lines[start][len(RUNTIME_HEADER):]]
    for ln in lines[start + 1:]:
        if not ln.strip() or _HEADER.match(ln):
            break
        block.append(ln)
    text = " ".join(" ".join(block).split())
    m = _QUICK.search(text)
    if m is None:
        return None
    d = _DURATION.search(text, m.end())
    return f"{d.group(1).replace(' ', '')} {d.group(2)}" if d else None


def format_value(value: Any) -> str:
    """A config value as ``--set`` would take it back (``repr``; ``-`` for :data:`NO_VALUE`)."""
    return repr(value)


def _wrap(text: str, width: int) -> list[str]:
    return textwrap.wrap(text, max(width, 20), break_long_words=False, break_on_hyphens=False) or [""]


def _columns(rows: list[list[str]], caps: list[int], last: list[str], width: int, indent: int = 2,
             min_last: int = 28) -> list[list[str]]:
    """Rows of aligned cells, the last column wrapped to the room left; one list of lines per row.

    Column widths follow the widest cell up to its cap. A wider cell pushes the cells after it
    to the right; a cell that would cross ``width`` starts a new line at its own column if it
    fits there, else it is wrapped at its spaces where it stands (a tuple's ``repr`` wraps
    after its commas). The last column goes right of the cells when they fit on one line, else under
    them; when the aligned columns leave it fewer than ``min_last`` characters it always goes
    under them, indented by 4.
    """
    widths = [min(cap, max((len(r[i]) for r in rows), default=0)) for i, cap in enumerate(caps)]
    starts = [indent + sum(w + 2 for w in widths[:i]) for i in range(len(widths))]
    lead = indent + sum(w + 2 for w in widths)
    if width - lead < min_last:
        lead = indent + 4
    out = []
    for cells, tail in zip(rows, last):
        lines = [""]
        for cell, start in zip(cells, starts):
            if not cell:
                continue
            pos = max(start, len(lines[-1]) + 2) if lines[-1].strip() else start
            fits_below = start + len(cell) <= width or width - pos < 20
            if pos + len(cell) > width and lines[-1].strip() and fits_below:
                lines.append("")
                pos = start
            pieces = _wrap(cell, width - pos) if pos + len(cell) > width else [cell]
            lines[-1] = lines[-1].ljust(pos) + pieces[0]
            lines += [" " * pos + piece for piece in pieces[1:]]
        wrapped = _wrap(tail, width - lead) if tail else []
        if wrapped and len(lines) == 1 and len(lines[0]) <= lead - 2:
            lines = [lines[0].ljust(lead) + wrapped.pop(0)]
        out.append([ln.rstrip() for ln in lines] + [" " * lead + w for w in wrapped])
    return out


def config_help(name: str, module, claim: str = "", width: int | None = None) -> str:
    """What ``lossatlas run NAME --help`` prints after the options: the claim, the quick
    runtime and a table of the Config's fields (name, type, default, quick value, doc), each
    group of fields under its section comment when the class source has one.

    Args:
      name: the experiment's registered name.
      module: its module.
      claim: its one-line claim (the registry's description).
      width: text width (default: :func:`terminal_width`).

    Returns:
      The text, ending in a newline.
    """
    width = width or terminal_width()
    fields = config_fields(module)
    runtime = quick_runtime(getattr(module, "__doc__", None))
    out = _wrap(f"{name}: {claim}" if claim else name, width)
    out += _wrap(f"quick run (--quick): {runtime or '?'}, as the module docstring records it "
                 f"(2 shared CPU cores)", width)
    has_quick = any(f.quick is not NO_VALUE for f in fields)
    header = ["FIELD", "TYPE", "DEFAULT"] + (["QUICK"] if has_quick else [])
    out += [""] + _wrap("config fields (--set FIELD=VALUE changes one; --quick applies the QUICK column):",
                        width)
    rows, docs = [header], ["DOC"]
    for f in fields:
        cells = [f.name, f.type, format_value(f.default)]
        if has_quick:
            cells.append("" if f.quick is NO_VALUE else format_value(f.quick))
        rows.append(cells)
        docs.append(f.doc)
    grouped = _columns(rows, [24, 10, 18, 14][:len(header)], docs, width)
    out += grouped[0]
    for f, lines in zip(fields, grouped[1:]):
        if f.section:
            out += ["  # " + s for s in _wrap(f.section, width - 4)]
        out += lines
    return "\n".join(out).rstrip() + "\n"


def list_text(names: Iterable[str], claims: Mapping[str, str], runtimes: Mapping[str, str | None],
              width: int | None = None) -> str:
    """What ``lossatlas list`` prints: name, quick runtime and claim, the claim wrapped.

    Args:
      names: the experiments, in the order to list them.
      claims: ``{name: one-line claim}``.
      runtimes: ``{name: quick runtime or None}`` (None prints ``?``).
      width: text width (default: :func:`terminal_width`).

    Returns:
      The text, ending in a newline.
    """
    width = width or terminal_width()
    names = list(names)
    rows = [["NAME", "QUICK"]] + [[n, runtimes.get(n) or "?"] for n in names]
    grouped = _columns(rows, [32, 12], ["CLAIM"] + [claims.get(n, "") for n in names], width, indent=0)
    note = ("QUICK: how long `lossatlas run NAME --quick` took, as each module's docstring records it "
            "(2 CPU cores shared with other jobs; ? where none is recorded). "
            "`lossatlas run NAME --help` lists NAME's config fields.")
    return "\n".join([ln for g in grouped for ln in g] + [""] + _wrap(note, width)) + "\n"
