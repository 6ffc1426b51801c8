"""The only place that reaches into pydantic's internals, for speed.

Two tricks, each checked against the public path by ``tests/test_fast.py``:

* :func:`trusted_event` builds an :class:`~sysevents.model.Event` from values
  already valid (read from the table, or validated as stored) at a fifth of
  the cost of ``Event.model_construct``: that counts at a thousand events a
  call;
* :func:`keep_details_text` / :func:`take_details_text` hand the details JSON
  text a field validator produced to the model being built, so that the text
  is serialized once per event (a field validator cannot set the model's
  private attributes itself).

Both depend on pydantic's layout (``__dict__``, ``__pydantic_fields_set__``,
``__pydantic_private__``); the supported pydantic versions are pinned in
``pyproject.toml`` and tested by the ``tests_lowest`` nox session.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, TypeVar

from .columns import FIELDS

if TYPE_CHECKING:
    from pydantic import BaseModel

M = TypeVar("M", bound="BaseModel")

_new_object = object.__new__
_set_attribute = object.__setattr__
_dumped = threading.local()


def fast_path_applies(model: type[BaseModel], fields: tuple[str, ...]) -> bool:
    """Whether ``model`` is the plain model the fast path was written for."""
    return (
        tuple(model.model_fields) == fields
        and not model.__pydantic_post_init__
        and not model.__private_attributes__
    )


# Whether the fast path applies, by model class (checked once per class).
_applies: dict[type[Any], bool] = {}


def trusted_event(event_class: type[M], values: dict[str, Any]) -> M:
    """An ``Event`` (``event_class``) from ``values``, unvalidated.

    ``values`` holds every stored field, already valid, in field order. Equal
    to ``event_class.model_validate(values)``; the dict becomes the model's own.
    """
    fast = _applies.get(event_class)
    if fast is None:
        fast = _applies[event_class] = fast_path_applies(event_class, FIELDS)
    if not fast:  # pragma: no cover - a model that needs the full path
        return event_class.model_construct(**values)
    event: M = _new_object(event_class)
    _set_attribute(event, "__dict__", values)
    _set_attribute(event, "__pydantic_fields_set__", set(FIELDS))
    _set_attribute(event, "__pydantic_extra__", None)
    _set_attribute(event, "__pydantic_private__", None)
    return event


def keep_details_text(details: Any, text: str | None) -> None:
    """Remember, for the model this thread is validating, the text of its ``details``."""
    _dumped.last = (details, text)


def take_details_text(model: BaseModel, details: Any) -> None:
    """Give ``model`` the details text its validator just produced, if it is for ``details``."""
    last = getattr(_dumped, "last", None)
    if last is None:
        return
    _dumped.last = None
    private = model.__pydantic_private__
    if last[0] is details and private is not None:
        private["_details_json"] = last


def details_text_of(model: BaseModel, details: Any) -> tuple[bool, str | None]:
    """``(True, text)`` if ``model`` holds the text of exactly these ``details``."""
    # The private dict itself: ``model._details_json`` goes through
    # BaseModel.__getattr__, several times slower, twice per event written.
    private = model.__pydantic_private__
    kept = private.get("_details_json") if private is not None else None
    if kept is not None and kept[0] is details:
        return True, kept[1]
    return False, None


def store_details_text(model: BaseModel, details: Any, text: str | None) -> None:
    """Let ``model`` keep ``text`` as the serialized form of ``details``."""
    private = model.__pydantic_private__
    if private is not None:
        private["_details_json"] = (details, text)
