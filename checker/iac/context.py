"""What a template's parameters and pseudo-parameters resolve to in one environment."""
from __future__ import annotations

from collections.abc import Callable
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
    # the account, read (sts:GetCallerIdentity) only when a template asks for AWS::AccountId
    account_of: Optional[Callable[[], Optional[str]]] = field(default=None, compare=False, repr=False)

    def account_id(self) -> Optional[str]:
        return self.account or (self.account_of() if self.account_of is not None else None)
