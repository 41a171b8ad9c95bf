"""Named payloads per endpoint, kept in ``payloads.toml`` beside the config. Imports no
Textual. Written atomically and privately, like the config (payloads may hold secrets)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import tomli_w

from .config import write_private


@dataclass
class PayloadLibrary:
    path: Path
    #: endpoint name -> payload name -> JSON text
    items: dict[str, dict[str, str]] = field(default_factory=dict)
    error: str | None = None

    @classmethod
    def load(cls, path: Path) -> PayloadLibrary:
        library = cls(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return library
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
            library.error = f"{path}: {err}"
            return library
        for endpoint, named in data.items():
            if isinstance(named, dict):
                library.items[str(endpoint)] = {
                    str(name): text for name, text in named.items() if isinstance(text, str)
                }
        return library

    def names(self, endpoint: str) -> list[str]:
        return sorted(self.items.get(endpoint, {}))

    def get(self, endpoint: str, name: str) -> str | None:
        return self.items.get(endpoint, {}).get(name)

    def put(self, endpoint: str, name: str, text: str) -> None:
        self.items.setdefault(endpoint, {})[name] = text
        self.save()

    def delete(self, endpoint: str, name: str) -> None:
        named = self.items.get(endpoint, {})
        if named.pop(name, None) is not None:
            if not named:
                self.items.pop(endpoint, None)
            self.save()

    def save(self) -> None:
        if self.error:
            raise ValueError(f"Not saving payloads: {self.error}; the file was left as it is.")
        write_private(self.path, tomli_w.dumps(self.items).encode())
