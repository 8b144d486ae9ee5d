"""Config of the `files` source's text-log formats: `format: log` and `format: jsonl`.

A log is configured, not coded: how lines group into records (a separator
line, a start line, or one line each), named-regex patterns that cut fields
out of lines, `key=value` pairs, and optional types per field. Presets give
the patterns of the common one-line formats.

```yaml
format: log
log:
  separator: '^---$'                    # a line matching this ends a record
  patterns:
    - regex: '^(?P<logged_at>\\S+ \\S+) \\[(?P<level>[^\\]]*)\\] (?P<component>\\S+) - '
      line: 1                           # only the record's first line
  pairs: {}                             # key=value pairs on every line
  fields:
    logged_at: {type: timestamp, format: '%Y-%m-%d %H:%M:%S'}
```

Regexes are written Python-style (`(?P<name>...)` or `(?<name>...)` named
groups) and run on RE2 (Arrow's compute kernels), so lookarounds and
backreferences are refused when the project is loaded, not at run time.
"""

from __future__ import annotations

import codecs
import re
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from headwater.config_base import Strict, one_ascii_char

FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
FieldTypeName = Literal["string", "integer", "double", "boolean", "timestamp"]
PresetName = Literal[
    "nginx_combined", "apache_combined", "apache_common", "syslog_rfc3164", "syslog_rfc5424"
]


def check_encoding(value: str) -> str:
    try:
        codecs.lookup(value)
        b"a".decode(value)  # refuses codecs that are not text encodings (rot13, base64)
    except LookupError:
        raise ValueError(f"unknown text encoding {value!r}") from None
    except UnicodeDecodeError:
        pass  # a text encoding that needs more than one byte: fine
    return value


# --------------------------------------------------------------------- regexes


def _scan_groups(regex: str) -> tuple[str, list[str]]:
    """The regex with unnamed groups made non-capturing and `(?<n>` spelled `(?P<n>`;
    and the group names in order. Escapes and character classes are skipped."""
    out: list[str] = []
    names: list[str] = []
    i, n = 0, len(regex)
    in_class = False
    while i < n:
        ch = regex[i]
        if ch == "\\":
            out.append(regex[i : i + 2])
            i += 2
            continue
        if in_class:
            if ch == "]":
                in_class = False
            out.append(ch)
            i += 1
            continue
        if ch == "[":
            in_class = True
            out.append(ch)
            i += 1
            # `]` right after `[` or `[^` is a literal bracket
            for lead in ("^", "]"):
                if i < n and regex[i] == lead:
                    out.append(lead)
                    i += 1
            continue
        if ch == "(":
            named = re.match(r"\(\?P?<([A-Za-z_][A-Za-z0-9_]*)>", regex[i:])
            if named:
                names.append(named.group(1))
                out.append(f"(?P<{named.group(1)}>")
                i += len(named.group(0))
                continue
            if regex.startswith("(?", i):
                out.append(ch)
            else:
                out.append("(?:")
            i += 1
            continue
        out.append(ch)
        i += 1
    return "".join(out), names


def to_re2(regex: str) -> str:
    """The pattern RE2 runs: named groups capture, every other group does not."""
    return _scan_groups(regex)[0]


def group_names(regex: str) -> list[str]:
    return _scan_groups(regex)[1]


def _compile_re2(regex: str) -> None:
    """Compile with the RE2 the parser uses; ValueError with RE2's message if it refuses."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        pc.match_substring_regex(pa.array([""], pa.string()), regex)
    except pa.ArrowInvalid as exc:
        detail = str(exc).removeprefix("Invalid regular expression: ")
        raise ValueError(
            f"regex {regex!r} is not supported: {detail} (patterns run on RE2: no lookaround, "
            "no backreferences)"
        ) from None


def _check_regex(value: str, what: str, need_names: bool) -> str:
    if not value:
        raise ValueError(f"{what} must not be empty")
    translated, names = _scan_groups(value)
    _compile_re2(translated)
    if need_names and not names:
        raise ValueError(f"{what} {value!r} has no named group such as (?P<level>...)")
    bad = [n for n in names if not FIELD_NAME.match(n)]
    if bad:
        raise ValueError(
            f"group name {bad[0]!r} in {what} {value!r} is not a column name "
            "(lower-case letters, digits and _, starting with a letter)"
        )
    if len(set(names)) != len(names):
        raise ValueError(f"{what} {value!r} names a group twice")
    return value


# --------------------------------------------------------------------- models


class FieldType(Strict):
    """The type of one field; short form: the type name alone (`status: integer`)."""

    type: FieldTypeName = "string"
    format: str | None = Field(
        default=None,
        description="strptime format for a timestamp; default: ISO 8601 (offsets applied)",
    )

    @model_validator(mode="after")
    def _format_for_timestamps(self) -> FieldType:
        if self.format is not None and self.type != "timestamp":
            raise ValueError(f"format applies to type timestamp only (the type is {self.type})")
        if self.format is not None and "%" not in self.format:
            raise ValueError(f"format {self.format!r} has no % directive (e.g. %Y-%m-%d %H:%M:%S)")
        return self


def _field_types(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: {"type": v} if isinstance(v, str) else v for k, v in value.items()}
    return value


def _check_field_names(value: dict[str, FieldType]) -> dict[str, FieldType]:
    bad = [n for n in value if not FIELD_NAME.match(n)]
    if bad:
        raise ValueError(
            f"field name {bad[0]!r} is not a column name "
            "(lower-case letters, digits and _, starting with a letter)"
        )
    return value


class LogPattern(Strict):
    """A named-group regex searched in the lines of a record; short form: the regex alone."""

    regex: str
    line: Literal["any"] | Annotated[int, Field(ge=1)] = Field(
        default="any", description="which line of a record: 1 is the first; any: every line"
    )
    optional: bool = Field(
        default=False, description="a record no line of which matches is kept, not quarantined"
    )

    @field_validator("regex")
    @classmethod
    def _valid(cls, value: str) -> str:
        return _check_regex(value, "pattern", need_names=True)

    @property
    def re2(self) -> str:
        return to_re2(self.regex)

    @property
    def names(self) -> list[str]:
        return group_names(self.regex)


class PairsOptions(Strict):
    """`key=value` pairs: keys are names, values unquoted (up to a delimiter) or quoted."""

    delimiters: list[str] = Field(
        default=[" ", "\t", "|"], description="characters that end an unquoted value"
    )
    quote: str = '"'
    equals: str = "="
    escape: str = Field(
        default="\\", description='in a quoted value, escapes the quote or itself; "" for none'
    )

    @field_validator("quote", "equals")
    @classmethod
    def _one_char(cls, value: str) -> str:
        return one_ascii_char(value)

    @field_validator("escape")
    @classmethod
    def _escape_char(cls, value: str) -> str:
        if value and (len(value) != 1 or not value.isascii() or value in "\r\n"):
            raise ValueError('expected a single ASCII character, or "" for no escapes')
        return value

    @field_validator("delimiters")
    @classmethod
    def _ascii(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("expected at least one delimiter")
        for char in value:
            if len(char) != 1 or not char.isascii() or char in "\r\n":
                raise ValueError(
                    f"delimiter {char!r}: expected single ASCII characters other than line breaks"
                )
        return value

    @model_validator(mode="after")
    def _distinct(self) -> PairsOptions:
        if self.quote == self.equals or self.quote in self.delimiters:
            raise ValueError("quote must differ from equals and from every delimiter")
        if self.equals in self.delimiters:
            raise ValueError("equals must not be one of the delimiters")
        if self.escape and (
            self.escape in (self.quote, self.equals) or self.escape in self.delimiters
        ):
            raise ValueError("escape must differ from quote, equals and every delimiter")
        return self


class TextOptions(Strict):
    """What both text-log formats share: the encoding and per-field types."""

    encoding: str = "utf-8"
    fields: dict[str, FieldType] = {}

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        return check_encoding(value)

    @field_validator("fields", mode="before")
    @classmethod
    def _short_types(cls, value: Any) -> Any:
        return _field_types(value)

    @field_validator("fields")
    @classmethod
    def _names(cls, value: dict[str, FieldType]) -> dict[str, FieldType]:
        return _check_field_names(value)


class LogOptions(TextOptions):
    """How `format: log` turns text lines into records and fields."""

    preset: PresetName | None = None
    separator: str | None = Field(
        default=None, description="regex: a line matching it ends a record (and is not data)"
    )
    start: str | None = Field(default=None, description="regex: a line matching it begins a record")
    patterns: list[LogPattern] = []
    pairs: PairsOptions | None = None
    rest: str | None = Field(
        default=None,
        description="field joining the lines of a record that no pattern matches (a stack "
        "trace); unset: such a line rejects its record",
    )

    @field_validator("rest")
    @classmethod
    def _rest_name(cls, value: str | None) -> str | None:
        if value is not None and not FIELD_NAME.match(value):
            raise ValueError(
                f"rest {value!r} is not a column name "
                "(lower-case letters, digits and _, starting with a letter)"
            )
        return value

    @field_validator("patterns", mode="before")
    @classmethod
    def _short_patterns(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"regex": v} if isinstance(v, str) else v for v in value]
        return value

    @field_validator("pairs", mode="before")
    @classmethod
    def _pairs_switch(cls, value: Any) -> Any:
        if value is True:
            return {}
        if value is False:
            return None
        return value

    @field_validator("separator", "start")
    @classmethod
    def _line_regex(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return _check_regex(value, "regex", need_names=False)

    @model_validator(mode="after")
    def _consistent(self) -> LogOptions:
        if self.separator is not None and self.start is not None:
            raise ValueError("set separator or start, not both")
        if self.preset is None and not self.patterns and self.pairs is None:
            raise ValueError("a log needs patterns, pairs or a preset to find fields")
        if self.preset is not None and (self.separator is not None or self.start is not None):
            raise ValueError(f"preset {self.preset} is a one-line format: no separator or start")
        if self.preset is not None:
            self.all_fields()  # a preset's types must not clash
        return self

    def all_patterns(self) -> list[LogPattern]:
        """The preset's patterns, then the configured ones."""
        preset = PRESETS[self.preset]["patterns"] if self.preset else []
        return [*(LogPattern.model_validate(p) for p in preset), *self.patterns]

    def all_fields(self) -> dict[str, FieldType]:
        """The preset's field types, overridden by the configured ones."""
        preset = PRESETS[self.preset]["fields"] if self.preset else {}
        merged = {k: FieldType.model_validate(v) for k, v in _field_types(preset).items()}
        return {**merged, **self.fields}

    def static_columns(self) -> list[str]:
        """Columns known before reading any file: pattern groups, then typed fields."""
        names: list[str] = []
        for pattern in self.all_patterns():
            names += [n for n in pattern.names if n not in names]
        if self.rest is not None and self.rest not in names:
            names.append(self.rest)
        return names + [n for n in self.all_fields() if n not in names]


class JsonLinesOptions(TextOptions):
    """`format: jsonl`: one JSON object per line; nested objects become `parent_child` columns."""


# --------------------------------------------------------------------- presets

_QUOTED = r'(?:[^"\\]|\\.)*'
_COMMON = (
    r"^(?P<remote_host>\S+) (?P<ident>\S+) (?P<remote_user>\S+) \[(?P<time>[^\]]+)\] "
    rf'"(?P<request>{_QUOTED})" (?P<status>\d{{3}}) (?:(?P<bytes>\d+)|-)'
)
_COMBINED = _COMMON + rf' "(?P<referer>{_QUOTED})" "(?P<user_agent>{_QUOTED})"'
_REQUEST = r'^\S+ \S+ \S+ \[[^\]]+\] "(?P<method>[A-Z]+) (?P<path>\S+) (?P<protocol>[^"\s]+)"'
_WEB_FIELDS = {
    "time": {"type": "timestamp", "format": "%d/%b/%Y:%H:%M:%S %z"},
    "status": "integer",
    "bytes": "integer",
}

PRESETS: dict[str, dict[str, Any]] = {
    "apache_common": {
        "patterns": [
            {"regex": _COMMON + "$"},
            {"regex": _REQUEST, "optional": True},
        ],
        "fields": _WEB_FIELDS,
    },
    "apache_combined": {
        "patterns": [{"regex": _COMBINED}, {"regex": _REQUEST, "optional": True}],
        "fields": _WEB_FIELDS,
    },
    "nginx_combined": {
        "patterns": [{"regex": _COMBINED}, {"regex": _REQUEST, "optional": True}],
        "fields": _WEB_FIELDS,
    },
    "syslog_rfc3164": {
        "patterns": [
            {
                "regex": r"^(?:<(?P<priority>\d{1,3})>)?"
                r"(?P<timestamp>[A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT\S+) "
                r"(?P<hostname>\S+) (?P<app_name>[^\s:\[]+)(?:\[(?P<procid>[^\]]*)\])?:? ?"
                r"(?P<message>.*)$"
            }
        ],
        "fields": {"priority": "integer"},
    },
    "syslog_rfc5424": {
        "patterns": [
            {
                "regex": r"^<(?P<priority>\d{1,3})>(?P<version>\d{1,2}) "
                r"(?:-|(?P<timestamp>\S+)) (?P<hostname>\S+) (?P<app_name>\S+) "
                r"(?P<procid>\S+) (?P<msgid>\S+) "
                r"(?P<structured_data>-|(?:\[(?:[^\]\\]|\\.)*\])+)(?: (?P<message>.*))?$"
            }
        ],
        "fields": {"priority": "integer", "version": "integer", "timestamp": "timestamp"},
    },
}
