"""Text from outside the code (a signer's name, a comment, a reason quoting them) made safe for the report's Markdown and HTML."""

import html
import re

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|~])")  # what can start emphasis, code, a link or a table cell mid-line


def escape(text) -> str:
    """Shown as typed, on one line, in the Markdown and in the HTML rendered from it."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(" ".join(str(text).split()), quote=False))
