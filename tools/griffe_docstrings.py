"""Read pipework's docstrings as Sphinx would, for mkdocstrings (a griffe extension).

pipework's docstrings follow Sphinx's conventions: ``:param:`` and ``:raises:``
field lists, ``::`` before a literal block, double backticks for literal text and
single backticks for the *default role*, a reference to a Python object
(`Pipeline`, `Pipeline.run`). griffe parses the field lists but renders the rest
as Markdown, where a single-backticked name is only code and ``Example::`` keeps
its two colons. This extension, listed in mkdocs.yml, rewrites each docstring of
the package before griffe parses it:

- A single-backticked dotted name becomes a cross-reference, resolved as Python
  would from where the docstring is (the module's imports, the class's members),
  then as a path from ``pipework``. A name that pipework defines links to its
  entry in the reference, or stays code when it is internal and has none; a name
  that Python or an installed package defines (``asyncio.run``, ``ValueError``)
  stays code, for want of their inventories offline. Any other name, a typo or a
  name since renamed or removed, becomes a reference to nothing, which
  ``mkdocs build --strict`` reports with the docstring's file and line. Only
  the docstrings the reference renders are checked.
- ``Example::`` and an indented block after it become ``Example:`` and a fenced
  Python block.
- ``:raises A, B: why`` documents each of ``A`` and ``B``, and ``:raises: why``
  (Sphinx's untyped form) documents ``Exception``.
- A function that takes ``**options: Unpack[SomeTypedDict]`` (in its own
  signature or its overloads') shows those keys as keyword-only parameters, so
  the options its docstring documents are in its signature, as type checkers
  see them. Its overloads are left as written: they show how types flow.
"""

from __future__ import annotations

import builtins
import contextlib
import importlib.util
import re
from typing import Any

from griffe import (
    Alias,
    AliasResolutionError,
    Class,
    CyclicAliasError,
    Expr,
    ExprName,
    ExprSubscript,
    Extension,
    Function,
    Module,
    NameResolutionError,
    Object,
    Parameter,
    ParameterKind,
    Parameters,
)

# A single-backticked span that is not part of a double-backticked one.
_DEFAULT_ROLE = re.compile(r"(?<![`\w])`([A-Za-z_][\w.]*)(\(\))?`(?![`\w])")
_LITERAL_BLOCK = re.compile(r"::\s*$")
_FIELD = re.compile(r"^(\s*):raises?((?:\s+[^:]+)?):(.*)$")
# What looking a path up in griffe's modules raises when nothing is there.
_NOT_FOUND = (KeyError, ValueError, AliasResolutionError, CyclicAliasError)
# Annotations around a TypedDict key that say nothing about the value.
_QUALIFIERS = frozenset({"Required", "NotRequired", "ReadOnly"})


class SphinxDocstrings(Extension):
    """Rewrite the docstrings of a loaded package as described in the module docstring."""

    def on_package(self, *, pkg: Module, **kwargs: Any) -> None:  # noqa: ARG002
        """Rewrite every docstring in the package, once all its modules are loaded."""
        for obj in _objects(pkg):
            if isinstance(obj, Function):
                _expand_options(obj)
            if obj.docstring is not None:
                obj.docstring.value = _rewrite(obj.docstring.value, obj, pkg)


def _objects(obj: Object) -> list[Object]:
    """``obj`` and everything defined in it (aliases, that is imports, excluded)."""
    found = [obj]
    for member in obj.members.values():
        if not isinstance(member, Alias):
            found.extend(_objects(member))
    return found


def _rewrite(text: str, obj: Object, pkg: Module) -> str:
    return _literal_blocks(_fields(_DEFAULT_ROLE.sub(lambda m: _reference(m, obj, pkg), text)))


def _reference(match: re.Match[str], obj: Object, pkg: Module) -> str:
    name, call = match.group(1), match.group(2) or ""
    target = _resolve(name, obj, pkg)
    if target is not None:
        # Optional: it links if the reference documents it, and is code if it is internal.
        return f'<autoref identifier="{target}" optional><code>{name}{call}</code></autoref>'
    if _is_external(name, obj):
        return match.group(0)
    return f"[`{name}{call}`][{name}]"  # a reference to nothing: an error under --strict


def _resolve(name: str, obj: Object, pkg: Module) -> str | None:
    """Find the pipework object that ``name`` means where ``obj`` is; its path, or None."""
    head, _, rest = name.partition(".")
    candidates = [name, f"{pkg.name}.{name}"]
    try:
        resolved = obj.resolve(head)
    except NameResolutionError:
        pass
    else:
        candidates.insert(0, resolved + (f".{rest}" if rest else ""))
    for path in candidates:
        try:
            found = pkg.modules_collection.get_member(path)
        except _NOT_FOUND:
            continue
        if found is not None and path.split(".", 1)[0] == pkg.name:
            return path
    return None


def _is_external(name: str, obj: Object) -> bool:
    """Whether ``name`` is Python's or another package's, imported where ``obj`` is or not."""
    head = name.split(".", 1)[0]
    with contextlib.suppress(NameResolutionError):
        head = obj.resolve(head).split(".", 1)[0]
    return hasattr(builtins, head) or importlib.util.find_spec(head) is not None


def _fields(text: str) -> str:
    lines = []
    for line in text.splitlines():
        match = _FIELD.match(line)
        if match is None:
            lines.append(line)
            continue
        indent, types, why = match.groups()
        kinds = [t.strip() for t in types.split(",") if t.strip()] or ["Exception"]
        lines.extend(f"{indent}:raises {kind}:{why}" for kind in kinds)
    return "\n".join(lines)


def _literal_blocks(text: str) -> str:
    """Turn reST's ``text::`` and the indented block after it into Markdown."""
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not _LITERAL_BLOCK.search(line) or i + 1 >= len(lines) or lines[i + 1].strip():
            out.append(line)
            i += 1
            continue
        lead = _LITERAL_BLOCK.sub("", line)
        if lead.strip():
            out.append(lead + ":")
        indent = len(line) - len(line.lstrip())
        block, i = _indented_block(lines, i + 1, indent)
        if not block:
            continue
        depth = min(len(b) - len(b.lstrip()) for b in block if b.strip())
        pad = " " * indent
        out += ["", f"{pad}```python", *[pad + b[depth:] for b in block], f"{pad}```"]
    return "\n".join(out)


def _indented_block(lines: list[str], start: int, indent: int) -> tuple[list[str], int]:
    """Take the lines indented deeper than ``indent`` from ``start`` on, and the index after."""
    i = start
    while i < len(lines) and not lines[i].strip():
        i += 1
    block: list[str] = []
    while i < len(lines) and (
        not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent
    ):
        block.append(lines[i])
        i += 1
    while block and not block[-1].strip():
        block.pop()
        i -= 1
    return block, i


def _expand_options(func: Function) -> None:
    """Show the keys of ``**options: Unpack[TD]`` as keyword-only parameters of ``func``."""
    var_keyword = _var_keyword(func)
    if var_keyword is None:
        return
    signatures = func.overloads or [func]
    keys: dict[str, Parameter] = {}
    required: list[set[str]] = []
    for signature in signatures:
        options = _var_keyword(signature)
        typed = _typed_dict(options.annotation, func) if options is not None else None
        if options is not None and typed is None:
            return  # an open **kwargs: what it takes is not written down
        named = [p for p in signature.parameters if p.kind is ParameterKind.keyword_only]
        required.append({p.name for p in named if p.default is None})
        for param in named:
            keys.setdefault(param.name, param)
        for key, annotation in (typed or {}).items():
            # A TypedDict of options is total=False: each key may be left out.
            keys.setdefault(key, _keyword(key, annotation, _OPTIONAL))
    own = {p.name for p in func.parameters}
    always = set.intersection(*required)
    added = [
        p if p.name in always or p.default is not None else _optional(p)
        for name, p in keys.items()
        if name not in own
    ]
    kept = [p for p in func.parameters if p is not var_keyword]
    func.parameters = Parameters(*kept, *added)


# The default of a parameter that may be left out, written as typeshed does.
_OPTIONAL = "..."


def _var_keyword(func: Function) -> Parameter | None:
    return next((p for p in func.parameters if p.kind is ParameterKind.var_keyword), None)


def _keyword(name: str, annotation: str | Expr | None, default: str | None) -> Parameter:
    return Parameter(name, annotation=annotation, kind=ParameterKind.keyword_only, default=default)


def _optional(param: Parameter) -> Parameter:
    return _keyword(param.name, param.annotation, _OPTIONAL)


Annotation = str | Expr | None


def _typed_dict(annotation: Annotation, func: Function) -> dict[str, Annotation] | None:
    """Read the keys and value types of the TypedDict in ``Unpack[TypedDict]``, in order."""
    if not (isinstance(annotation, ExprSubscript) and str(annotation.left) == "Unpack"):
        return None
    inner = annotation.slice
    if not isinstance(inner, ExprName):
        return None
    try:
        cls = func.modules_collection.get_member(inner.canonical_path)
    except _NOT_FOUND:
        return None
    if not isinstance(cls, Class):
        return None
    keys: dict[str, Annotation] = {}
    for each in [*reversed(cls.mro()), cls]:
        for member in each.members.values():
            if member.is_attribute and not member.name.startswith("_"):
                keys.setdefault(member.name, _unqualified(member.annotation))
    return keys


def _unqualified(annotation: Annotation) -> Annotation:
    while isinstance(annotation, ExprSubscript) and str(annotation.left) in _QUALIFIERS:
        annotation = annotation.slice
    return annotation
