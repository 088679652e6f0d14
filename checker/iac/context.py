"""What a template's parameters and pseudo-parameters resolve to in one environment."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional


@dataclass(frozen=True)
class TemplateContext:
    """What a template's parameters and pseudo-parameters resolve to in one environment."""

    parameters: dict = field(default_factory=dict)    # environments.<env>.parameters
    region: Optional[str] = None
    account: Optional[str] = None
    stack: Optional[str] = None                        # environments.<env>.stack
    environment: str = ""                              # named in problems ("" : the template's defaults)
