"""Name -> entry tables for the extension points (cells, model types,
optimizers, data sources, evaluation methods, tasks).

Adding a variant is one `register` call in the module that implements it; the
config validation, error messages and the sweep smoke settings read the
names from here, so no list of choices is repeated elsewhere.
"""

import difflib
from typing import Generic, Iterator, TypeVar

Entry = TypeVar('Entry')


class Registry(Generic[Entry]):
  """An ordered name -> entry table for the config key `key`.

  `get` raises a one-line ValueError naming the key, the bad value, the
  choices and the closest name, so a typo fails at start-up.
  """

  def __init__(self, key: str):
    self.key = key
    self._entries: dict[str, Entry] = {}

  def register(self, name: str, entry: Entry | None = None):
    """`register(name, entry)`, or `@register(name)` over a class/function."""
    if entry is not None:
      self._add(name, entry)
      return entry

    def decorator(obj):
      self._add(name, obj)
      return obj

    return decorator

  def _add(self, name: str, entry: Entry) -> None:
    if name in self._entries:
      raise ValueError(f'{self.key}: {name!r} is registered twice')
    self._entries[name] = entry

  def unregister(self, name: str) -> None:
    """Removes an entry (tests that register a temporary one)."""
    del self._entries[name]

  def get(self, name: str) -> Entry:
    if name not in self._entries:
      raise ValueError(self.unknown(name))
    return self._entries[name]

  def unknown(self, name) -> str:
    """The one-line message for a name that is not registered."""
    message = f'{self.key}={name!r} is not one of {self.names()}'
    close = difflib.get_close_matches(str(name), self.names(), n=1)
    return message + (f' (did you mean {close[0]!r}?)' if close else '')

  def names(self) -> tuple[str, ...]:
    return tuple(self._entries)

  def items(self):
    return self._entries.items()

  def __contains__(self, name) -> bool:
    return name in self._entries

  def __iter__(self) -> Iterator[str]:
    return iter(tuple(self._entries))

  def __len__(self) -> int:
    return len(self._entries)

  def __repr__(self) -> str:
    return f'Registry({self.key!r}, {self.names()})'
