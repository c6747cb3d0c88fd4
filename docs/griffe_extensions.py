"""Griffe extensions for the API reference (``mkdocs.yml`` loads them; nothing in the library imports them).

``SphinxRoles``: the docstrings are written in reStructuredText's manner, which Markdown would print as
it stands. Three things are translated, in the reference only (the docstrings are not changed):

- Sphinx's roles (``:class:`~neuroplastic.tasks.Task```, ``:func:`.own```, ``:meth:`Task.batches```)
  become links to the object's entry where Griffe finds the object (searched from the docstring's own
  scope outwards, as Sphinx does), as *optional* cross-references: an object that the reference does
  not show (a private helper, the command line) is shown as code, not a broken link, so the strict
  build only fails on links written in the pages themselves;
- the ``::`` that introduces a literal block becomes ``:`` (the indented block is already Markdown's
  code block);
- a simple table (``===== =====`` borders) is shown as preformatted text.
"""
from __future__ import annotations

import re

import griffe

_LITERAL = re.compile(r"([ \t]?)::(?=\n[ \t]*\n[ \t]+\S)")
_BORDER = re.compile(r"^[ \t]*=+( +=+)+[ \t]*$")
_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|data|attr|exc|obj|const):"
                   r"`(?P<tilde>~?)(?P<target>[\w.]+)(?:\(\))?`")


class SphinxRoles(griffe.Extension):
    def on_package(self, *, pkg: griffe.Module, **kwargs) -> None:
        self._rewrite(pkg, pkg)

    def _rewrite(self, obj, pkg) -> None:
        if obj.docstring is not None:
            text = _ROLE.sub(lambda match: self._link(match, obj, pkg), obj.docstring.value)
            text = _LITERAL.sub(lambda match: "" if match[1] else ":", text)
            obj.docstring.value = _preformatted_tables(text)
        for member in getattr(obj, "members", {}).values():
            if not member.is_alias:
                self._rewrite(member, pkg)

    def _link(self, match: re.Match, obj, pkg) -> str:
        target = match["target"].lstrip(".")
        shown = target.rsplit(".", 1)[-1] if match["tilde"] else target
        scope, paths = obj, []
        while scope is not None:
            paths.append(f"{scope.path}.{target}")
            scope = scope.parent
        paths.append(target)
        for path in paths:
            found = self._find(pkg, path)
            if found is not None:
                return f'<autoref identifier="{found}" optional><code>{shown}</code></autoref>'
        return f"<code>{shown}</code>"

    @staticmethod
    def _find(pkg, path: str) -> str | None:
        head, _, rest = path.partition(".")
        if head != pkg.name:
            return None
        try:
            found = pkg.get_member(rest) if rest else pkg
            return found.final_target.path if found.is_alias else found.path
        except (KeyError, AttributeError, griffe.AliasResolutionError, griffe.CyclicAliasError):  # none, or outside
            return None


def _preformatted_tables(text: str) -> str:
    """Simple tables (a top border, a border under the header, a bottom border) indented into code blocks."""
    lines, borders, out = text.split("\n"), 0, []
    for line in lines:
        if _BORDER.match(line):
            borders += 1
            if borders == 1 and out and out[-1].strip():
                out.append("")
        out.append("    " + line if borders else line)
        if borders == 3:
            borders = 0
            out.append("")
    return "\n".join(out)
