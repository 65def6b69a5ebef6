"""The scikit-learn estimator checks that do not apply to these estimators, with the reason
(pass it to ``check_estimator(..., expected_failed_checks=...)`` or
``parametrize_with_checks(..., expected_failed_checks=expected_failed_checks)``)."""

from __future__ import annotations

from typing import Any

__all__ = ["expected_failed_checks"]

# check name -> why it cannot apply (see docs/sklearn.md)
_NOT_APPLICABLE: dict[str, str] = {}


def expected_failed_checks(estimator: Any = None) -> dict[str, str]:
    """{check name: reason} for the checks marked not applicable (the same for both
    estimators)."""
    return dict(_NOT_APPLICABLE)
