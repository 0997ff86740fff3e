"""Addresses shown as text: long ones wrap where a reader expects (after a slash), not
inside a word ("team.ht|ml")."""

from __future__ import annotations

import re

from django import template
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

# After each run of slashes of the path, and before a query or a fragment.
_BREAKS = re.compile(r"(/+)(?=.)|(?=[?#])")


@register.filter
def breakable_url(value: object) -> SafeString:
    """The address escaped, then with <wbr> (a line may break here) after its path's slashes:
    escaping first means nothing from the address itself is ever marked safe. The scheme's
    "//" is kept whole."""
    text = str(conditional_escape(value))
    scheme, sep, rest = text.partition("://") if "://" in text[:12] else ("", "", text)
    return mark_safe(scheme + sep + _BREAKS.sub(lambda m: (m.group(1) or "") + "<wbr>", rest))  # noqa: S308
