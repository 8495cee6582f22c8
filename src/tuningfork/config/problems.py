"""Problems found in a study file, reported as ``FILE:LINE: FIELD: message``: the YAML
node tree (for line numbers), duplicate keys, and the list of problems itself."""

from __future__ import annotations

import re
from typing import Any

import yaml

from tuningfork.exceptions import ConfigError

Loc = tuple[str | int, ...]


class Loader(yaml.SafeLoader):
    """SafeLoader that also reads exponent floats without a dot (``1e-4``) as numbers."""


Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


class Problems:
    """Problems found so far: (location path, message, whether `loc` ends with a key that
    may be missing from the file)."""

    def __init__(self) -> None:
        self.items: list[tuple[Loc, str, bool]] = []

    def add(self, loc: Loc, message: str, *, show_field: bool = True) -> None:
        self.items.append((tuple(loc), message, show_field))

    def __bool__(self) -> bool:
        return bool(self.items)

    def raise_if_any(self, source: str, root: yaml.Node | None) -> None:
        """Raise one ConfigError listing every problem, sorted by line."""
        if not self.items:
            return
        lines: list[tuple[int, int, str]] = []
        for index, (loc, message, show_field) in enumerate(self.items):
            line = line_of(root, loc) if root is not None else None
            where = f"{source}:{line}" if line is not None else source
            field = field_path(loc) if show_field and loc else ""
            text = f"{where}: {field}: {message}" if field else f"{where}: {message}"
            lines.append((line or 0, index, text))
        texts = [text for _, _, text in sorted(lines)]
        unique = list(dict.fromkeys(texts))
        raise ConfigError("\n".join(unique), unique)


def field_path(loc: Loc) -> str:
    """('scheduler', 'any_of', 0, 'eta') -> 'scheduler.any_of[0].eta'."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def line_of(root: yaml.Node, loc: Loc) -> int:
    """1-based line of the deepest node of `loc` present in the YAML tree: the line of the
    key for a mapping entry, of the item for a list entry."""
    node = root
    line = node.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in reversed(node.value):  # the last duplicate wins
                if isinstance(key_node, yaml.ScalarNode) and key_node.value == str(part):
                    line = key_node.start_mark.line + 1
                    node = value_node
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if not 0 <= part < len(node.value):
                return line
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def compose(text: str, source: str) -> tuple[yaml.Node | None, Any]:
    """The YAML node tree and the data it constructs; ConfigError on a syntax error."""
    loader = Loader(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        detail = error.problem or str(error)
        context = error.context_mark
        if error.context and context is not None:
            detail += f" ({error.context} at line {context.line + 1})"
        raise ConfigError(f"{where}: YAML syntax error: {detail}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{source}: YAML syntax error: {error}") from None
    finally:
        loader.dispose()
    return root, data


def kind_text(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the text {value!r}"
    return f"{type(value).__name__} {value!r}"


def check_duplicates(node: yaml.Node, loc: Loc, problems: Problems) -> None:
    """Duplicate mapping keys (YAML would silently keep the last one)."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                if key_node.value in seen:
                    line = key_node.start_mark.line + 1
                    problems.add(
                        (*loc, key_node.value),
                        f"duplicate key {key_node.value!r} (line {line}); give each key once",
                    )
                seen.add(key_node.value)
                check_duplicates(value_node, (*loc, key_node.value), problems)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            check_duplicates(item, (*loc, index), problems)
