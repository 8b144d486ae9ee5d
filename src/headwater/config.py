"""The project file, `headwater.yaml`, as typed pydantic models.

Loading does three things, in order: parse YAML, replace `${VAR}` and
`${VAR:-default}` in every string from the environment (the process
environment first, then a `.env` file beside the project file), and validate.
Any failure raises `ConfigError` naming the file, the key path, the bad value
and what was expected. Secrets are `SecretStr`: they never appear in a repr,
a log line or an error message.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    Discriminator,
    Field,
    SecretStr,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from headwater.config_base import NAME_PATTERN, Strict, one_ascii_char
from headwater.config_formats import JsonLinesOptions, LogOptions, check_encoding
from headwater.config_schedule import AlertsConfig, LoggingConfig, RetryConfig, ScheduleConfig
from headwater.errors import ConfigError

PROJECT_FILE = "headwater.yaml"
Severity = Literal["warn", "quarantine", "error"]
__all__ = ["NAME_PATTERN", "Strict"]


# --------------------------------------------------------------------- sources


class CsvOptions(Strict):
    """How the `files` source splits CSV text into rows and columns."""

    columns: list[str] | None = None
    header: Literal["auto"] | bool = "auto"
    delimiter: str = ","
    quote: str = '"'
    encoding: str = "utf-8"
    trim: bool = True

    @field_validator("delimiter", "quote")
    @classmethod
    def _one_char(cls, value: str) -> str:
        return one_ascii_char(value)

    @field_validator("columns")
    @classmethod
    def _column_names(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("expected at least one column name")
        for name in value:
            if not re.match(NAME_PATTERN, name):
                raise ValueError(f"column name {name!r} must match {NAME_PATTERN}")
        if len(set(value)) != len(value):
            raise ValueError("column names must be unique")
        return value

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        return check_encoding(value)


PiiPolicyName = Literal["drop", "hash", "mask"]


class PiiPolicy(Strict):
    """What happens to a protected column before anything reaches the lake."""

    policy: PiiPolicyName
    normalize: bool = True
    keep_last: int = Field(default=4, ge=0, le=8)


def _policy_from_short_form(value: Any) -> Any:
    return {"policy": value} if isinstance(value, str) else value


class S3Options(Strict):
    """How to reach an S3 API. Unset keys come from the standard AWS chain
    (environment, `~/.aws`, instance role); `AWS_ENDPOINT_URL` included."""

    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: SecretStr | None = None
    session_token: SecretStr | None = None
    path_style: bool | None = Field(
        default=None, description="path-style URLs; default: on when an endpoint is set"
    )
    sse: Literal["none", "AES256", "aws:kms"] = "none"
    kms_key_id: str | None = None

    @model_validator(mode="after")
    def _kms(self) -> S3Options:
        if self.kms_key_id and self.sse != "aws:kms":
            raise ValueError("kms_key_id is set, which needs sse: aws:kms")
        return self


class FilesSource(Strict):
    """Files dropped in a folder or under an `s3://` prefix: every file matching `glob`,
    parsed as CSV, text logs (`format: log`) or JSON lines (`format: jsonl`)."""

    kind: Literal["files"]
    path: str
    s3: S3Options | None = Field(
        default=None, description="for an s3:// path; default: the lake's lake.s3 settings"
    )
    glob: str = "*.csv"
    format: Literal["csv", "log", "jsonl"] = "csv"
    csv: CsvOptions = CsvOptions()
    log: LogOptions | None = Field(default=None, description="for format: log")
    jsonl: JsonLinesOptions | None = Field(default=None, description="for format: jsonl")
    pii: dict[str, PiiPolicy] = {}
    chunk_mb: int = Field(default=32, ge=1, le=1024)

    @field_validator("pii", mode="before")
    @classmethod
    def _short_policies(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: _policy_from_short_form(v) for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _format_options(self) -> FilesSource:
        given = {"csv", "log", "jsonl"} & self.model_fields_set
        stray = sorted(k for k in given if k != self.format)
        if stray:
            raise ValueError(f"{stray[0]} options are given but format is {self.format}")
        if self.format == "log" and self.log is None:
            raise ValueError(
                "format log needs a log section (patterns, pairs or a preset; "
                "see docs/sources/logs.md)"
            )
        return self

    @model_validator(mode="after")
    def _pii_columns_exist(self) -> FilesSource:
        columns = self.csv.columns if self.format == "csv" else None
        if self.format == "log" and self.log is not None and self.log.pairs is None:
            columns = self.log.static_columns()  # no pairs: the patterns name every column
        where = "csv.columns" if self.format == "csv" else "the log patterns"
        if columns is not None:
            missing = [c for c in self.pii if c not in columns]
            if missing:
                raise ValueError(f"pii names column(s) {missing} that are not in {where} {columns}")
        return self

    @property
    def text_options(self) -> LogOptions | JsonLinesOptions | None:
        """The options of a text-log format (None for csv)."""
        if self.format == "log":
            return self.log
        if self.format == "jsonl":
            return self.jsonl or JsonLinesOptions()
        return None


SQL_SCHEMES = ("postgresql", "postgres", "mysql", "mariadb", "sqlite", "oracle", "mssql")


class SqlTable(Strict):
    """One table (or query) of a `sql` source."""

    query: str | None = Field(
        default=None, description="a SELECT to extract instead of the whole table"
    )
    key: list[str] | None = Field(
        default=None, description="primary key; default: read from the database catalog"
    )
    cursor: str | None = Field(
        default=None,
        description="incremental cursor column; default: the source's cursor setting",
    )

    @field_validator("key", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class SqlSource(Strict):
    """Tables of a relational database, extracted incrementally on a cursor column."""

    kind: Literal["sql"]
    url: SecretStr = Field(description="postgresql://, mysql://, sqlite:///, oracle://, mssql://")
    schema_name: str | None = Field(
        default=None, description="schema to read; default: the connection's default schema"
    )
    include: list[str] = ["*"]
    exclude: list[str] = []
    tables: dict[str, SqlTable] = {}
    cursor: str = Field(
        default="auto",
        description="auto (last_updated, updated_at, ...), a column name, or none",
    )
    overlap_seconds: int = Field(default=300, ge=0)
    prefix: str = Field(default="", pattern=r"^[a-z0-9_]*$")

    @field_validator("url")
    @classmethod
    def _scheme(cls, value: SecretStr) -> SecretStr:
        scheme = value.get_secret_value().split("://", 1)[0].split("+", 1)[0].lower()
        if scheme not in SQL_SCHEMES:
            raise ValueError(
                f"scheme {scheme!r} is not supported (expected one of {', '.join(SQL_SCHEMES)})"
            )
        return value

    @field_validator("tables", mode="before")
    @classmethod
    def _list_of_tables(cls, value: Any) -> Any:
        if isinstance(value, list):
            return {str(v): {} for v in value}
        if isinstance(value, Mapping):
            return {k: ({} if v is None else v) for k, v in value.items()}
        return value

    @property
    def discovers(self) -> bool:
        """Whether the tables are found in the database's catalog at run time."""
        return not self.tables


SourceConfig = Annotated[FilesSource | SqlSource, Field(discriminator="kind")]


# ---------------------------------------------------------------------- models


class AcceptedValuesArgs(Strict):
    column: str
    values: list[str | int | float | bool]


class RangeArgs(Strict):
    column: str
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _some_bound(self) -> RangeArgs:
        if self.min is None and self.max is None:
            raise ValueError("range needs min, max or both")
        return self


class RelationshipsArgs(Strict):
    column: str
    to: str
    field: str


class CheckBase(Strict):
    severity: Severity = "error"
    name: str | None = None
    message: str | None = Field(
        default=None, description="SQL expression giving the reason text for a failing row"
    )


class NotNullCheck(CheckBase):
    not_null: str | list[str]


class UniqueCheck(CheckBase):
    unique: str | list[str]

    @property
    def columns(self) -> list[str]:
        """The key's columns: one, or those of a composite key."""
        return [self.unique] if isinstance(self.unique, str) else list(self.unique)


class AcceptedValuesCheck(CheckBase):
    accepted_values: AcceptedValuesArgs


class RangeCheck(CheckBase):
    range: RangeArgs


class ExpressionCheck(CheckBase):
    expression: str


class RelationshipsCheck(CheckBase):
    relationships: RelationshipsArgs


CHECK_KINDS = ("not_null", "unique", "accepted_values", "range", "expression", "relationships")


def _check_kind(value: Any) -> str | None:
    """Which check a mapping is: the one check-kind key it holds."""
    if isinstance(value, dict):
        kinds = [k for k in CHECK_KINDS if k in value]
    else:
        kinds = [k for k in CHECK_KINDS if getattr(value, k, None) is not None]
    return kinds[0] if len(kinds) == 1 else None


CheckConfig = Annotated[
    Annotated[NotNullCheck, Tag("not_null")]
    | Annotated[UniqueCheck, Tag("unique")]
    | Annotated[AcceptedValuesCheck, Tag("accepted_values")]
    | Annotated[RangeCheck, Tag("range")]
    | Annotated[ExpressionCheck, Tag("expression")]
    | Annotated[RelationshipsCheck, Tag("relationships")],
    Discriminator(
        _check_kind,
        custom_error_type="check_kind",
        custom_error_message=f"expected a check with exactly one of: {', '.join(CHECK_KINDS)}",
    ),
]


class ModelConfig(Strict):
    """Settings of one model, from its SQL header block or the project file."""

    materialized: Literal["table", "incremental", "view", "ephemeral"] = "table"
    strategy: Literal["append", "merge"] = "append"
    unique_key: list[str] = []
    latest_by: str | None = None
    publish: bool = False
    checks: list[CheckConfig] = []
    description: str | None = None

    @field_validator("unique_key", mode="before")
    @classmethod
    def _key_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _consistent(self) -> ModelConfig:
        if self.materialized == "incremental" and self.strategy == "merge" and not self.unique_key:
            raise ValueError("an incremental model with strategy 'merge' needs unique_key")
        if self.latest_by and self.strategy != "merge":
            raise ValueError("latest_by only applies to strategy 'merge'")
        if self.materialized in ("view", "ephemeral") and self.publish:
            raise ValueError(
                f"a {self.materialized} model is not stored in the lake, so it cannot be published"
            )
        if self.materialized == "ephemeral" and self.checks:
            raise ValueError(
                "an ephemeral model is inlined into the models that read it, so it cannot have "
                "checks (use materialized: view)"
            )
        return self


# --------------------------------------------------------------------- project


LAKE_SCHEMES = ("file", "s3")


class LakeConfig(Strict):
    url: str = ".headwater/lake"
    s3: S3Options = S3Options()

    @field_validator("url")
    @classmethod
    def _supported(cls, value: str) -> str:
        scheme = re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://", value)
        if scheme and scheme.group(1).lower() not in LAKE_SCHEMES:
            raise ValueError(
                f"lake scheme {scheme.group(1)!r} is not supported "
                "(expected a local path, a file:// URL or s3://bucket/prefix)"
            )
        if scheme and scheme.group(1).lower() == "s3" and not re.match(r"^s3://[^/]+", value):
            raise ValueError("an s3 lake URL needs a bucket: s3://bucket/prefix")
        return value


class StateConfig(Strict):
    url: str = "sqlite:///.headwater/state.db"

    @field_validator("url")
    @classmethod
    def _supported(cls, value: str) -> str:
        if not re.match(r"^(sqlite|postgres|postgresql)(\+[a-z0-9]+)?://", value):
            raise ValueError(
                "expected sqlite:///path/state.db or postgresql://user@host:port/database"
            )
        return value


def _memory_size(value: str) -> str:
    if not re.fullmatch(r"\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)", value.strip()):
        raise ValueError("expected a size such as 512MB or 2GB")
    return value.strip()


# A DuckDB memory size: a number and a unit.
MemorySize = Annotated[str, AfterValidator(_memory_size)]


class DuckDBWarehouseConfig(Strict):
    type: Literal["duckdb"] = "duckdb"
    path: str = ".headwater/warehouse.duckdb"
    # Past it, the load's written blocks leave memory (they are on disk already)
    # and a large merge spills; without it DuckDB would keep 80% of the RAM.
    memory_limit: MemorySize = "512MB"


class PostgresWarehouseConfig(Strict):
    type: Literal["postgres"]
    url: SecretStr = Field(description="postgresql://user:password@host:port/database")
    schema_name: str = Field(default="public", pattern=NAME_PATTERN)


class RedshiftWarehouseConfig(Strict):
    type: Literal["redshift"]
    url: SecretStr = Field(description="redshift://user:password@host:5439/database")
    schema_name: str = Field(default="public", pattern=NAME_PATTERN)
    iam_role: str = Field(description="ARN of the role Redshift assumes to read the staging")
    staging_url: str = Field(pattern=r"^s3://[^/]+", description="s3://bucket/prefix for COPY")
    s3: S3Options = S3Options()


WarehouseConfig = Annotated[
    DuckDBWarehouseConfig | PostgresWarehouseConfig | RedshiftWarehouseConfig,
    Field(discriminator="type"),
]


class EngineConfig(Strict):
    memory_limit: MemorySize = "2GB"
    threads: int = Field(default=0, ge=0, description="0 means one per core")
    batch_mb: int = Field(
        default=512,
        ge=1,
        description="new input landed by one run is processed in batches of at most this size",
    )


class PiiConfig(Strict):
    secret: SecretStr | None = None


class ProjectConfig(Strict):
    name: str = Field(pattern=NAME_PATTERN)
    lake: LakeConfig = LakeConfig()
    state: StateConfig = StateConfig()
    warehouse: WarehouseConfig = DuckDBWarehouseConfig()
    engine: EngineConfig = EngineConfig()
    pii: PiiConfig = PiiConfig()
    sources: dict[str, SourceConfig] = {}
    models: dict[str, dict[str, Any]] = {}
    schedule: ScheduleConfig = ScheduleConfig()
    retries: RetryConfig = RetryConfig()
    alerts: AlertsConfig = AlertsConfig()
    logging: LoggingConfig = LoggingConfig()

    @field_validator("warehouse", mode="before")
    @classmethod
    def _duckdb_by_default(cls, value: Any) -> Any:
        if isinstance(value, Mapping) and "type" not in value:
            return {"type": "duckdb", **value}
        return value

    @field_validator("sources", "models")
    @classmethod
    def _names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            if not re.match(NAME_PATTERN, name):
                raise ValueError(f"name {name!r} must match {NAME_PATTERN}")
        return value

    @model_validator(mode="after")
    def _sources_named_exist(self) -> ProjectConfig:
        named: list[tuple[str, str]] = []
        for i, trigger in enumerate(self.schedule.triggers):
            named += [(f"schedule.triggers.{i}.sources", s) for s in trigger.sources or ()]
            files = getattr(trigger, "files", None)
            if files is not None:
                if files in self.sources and not isinstance(self.sources[files], FilesSource):
                    raise ValueError(
                        f"schedule.triggers.{i}.files: source {files!r} is not a files source"
                    )
                named.append((f"schedule.triggers.{i}.files", files))
        named += [
            (f"alerts.staleness.{i}.source", rule.source)
            for i, rule in enumerate(self.alerts.staleness)
        ]
        for where, name in named:
            if name not in self.sources:
                known = ", ".join(sorted(self.sources)) or "none"
                raise ValueError(f"{where}: no source named {name!r} (sources: {known})")
        return self

    @model_validator(mode="after")
    def _secret_when_hashing(self) -> ProjectConfig:
        hashing = [
            f"sources.{s}.pii.{c}"
            for s, src in self.sources.items()
            if isinstance(src, FilesSource)
            for c, p in src.pii.items()
            if p.policy == "hash"
        ]
        if hashing and (self.pii.secret is None or not self.pii.secret.get_secret_value()):
            raise ValueError(
                f"{hashing[0]} uses policy 'hash', which needs pii.secret "
                "(for example pii.secret: ${HEADWATER_PII_SECRET})"
            )
        return self


# ------------------------------------------------------------------- loading

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def read_dotenv(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a `.env` file; `#` comments and blank lines skipped."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key.strip()):
            raise ConfigError(f"{path}:{number}: expected KEY=VALUE")
        values[key.strip()] = value.strip().strip("'\"")
    return values


def interpolate(node: Any, env: Mapping[str, str], file: Path, path: str = "") -> Any:
    """Replace `${VAR}` / `${VAR:-default}` in every string of a YAML tree."""
    if isinstance(node, dict):
        return {
            k: interpolate(v, env, file, f"{path}.{k}" if path else str(k)) for k, v in node.items()
        }
    if isinstance(node, list):
        return [interpolate(v, env, file, f"{path}[{i}]") for i, v in enumerate(node)]
    if not isinstance(node, str):
        return node

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise ConfigError(
            f"{file}: {path}: {match.group(0)} refers to environment variable {name}, "
            "which is not set (set it, put it in .env, or write ${" + name + ":-default})"
        )

    return _VAR.sub(replace, node)


def _key_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _locate(tree: Any, loc: tuple[int | str, ...]) -> tuple[tuple[int | str, ...], bool, Any]:
    """The key path as the user wrote it, and the value there if it exists.

    pydantic inserts tags (a union member's name, a discriminator value such
    as `files`) into error locations; parts that do not exist in the tree at
    their level are such tags and are left out, except the last part (a
    missing key is reported by its name).
    """
    node = tree
    path: list[int | str] = []
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        following = None if last else loc[i + 1]
        if (
            isinstance(node, dict)
            and part in node
            and following is not None
            and following in node
            and not (isinstance(node[part], dict) and following in node[part])
        ):
            continue  # a tag that happens to equal a key (a check's kind): skip it
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[int(part)]
        elif last and isinstance(node, dict):
            path.append(part)  # a missing key of a mapping
            return tuple(path), False, None
        elif last:
            return tuple(path), True, node  # a union member's tag after a scalar value
        else:
            continue
        path.append(part)
    return tuple(path), True, node


def validation_error(
    file: Path | str, exc: ValidationError, tree: Any, prefix: str = "", raw: Any = None
) -> ConfigError:
    """Turn pydantic's errors into one message: file, key path, bad value, expectation.

    `raw` is the tree before `${VAR}` interpolation: a value that came from the
    environment is shown as the `${VAR}` written, never as what it resolved to.
    """
    lines: list[tuple[str, str, str]] = []
    secret_words = ("secret", "password", "token", "key")
    for err in exc.errors():
        loc, found, value = _locate(tree, tuple(err["loc"]))
        key = _key_path(loc)
        full = f"{prefix}.{key}" if prefix and key else (prefix or key)
        if err["type"] == "extra_forbidden":
            lines.append((full, "unknown key", ""))
            continue
        if raw is not None and found:
            _, raw_found, raw_value = _locate(raw, loc)
            if raw_found and isinstance(raw_value, str) and "${" in raw_value:
                value = raw_value
        shown = f" (got {value!r})" if found and loc else ""
        if any(w in full.lower() for w in secret_words) and not (
            isinstance(value, str) and value.startswith("${")
        ):
            shown = " (value hidden)" if found else ""
        message = err["msg"].removeprefix("Value error, ")
        lines.append((full, message, shown))
    # Several alternatives failing for one key (e.g. 'auto' or a boolean) read as one line.
    merged: dict[str, tuple[list[str], str]] = {}
    for key, message, shown in lines:
        messages, _ = merged.setdefault(key, ([], shown))
        if message not in messages:
            messages.append(message)
    unique = [
        f"{key + ': ' if key else ''}{' or '.join(m)}{shown}" for key, (m, shown) in merged.items()
    ]
    body = unique[0] if len(unique) == 1 else "\n  " + "\n  ".join(unique)
    return ConfigError(f"{file}: {body}")


def load_yaml(file: Path) -> Any:
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{file}: not found (run `headwater init` to create a project)") from None
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read: {exc.strerror}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{file}:{where}: not valid YAML: {problem}") from None


def load_project_config(file: Path, environ: Mapping[str, str] | None = None) -> ProjectConfig:
    """Read, interpolate and validate a project file."""
    tree = load_yaml(file)
    if not isinstance(tree, dict):
        raise ConfigError(f"{file}: expected a mapping of settings at the top level")
    env = {**read_dotenv(file.parent / ".env"), **(os.environ if environ is None else environ)}
    resolved = interpolate(tree, env, file)
    try:
        return ProjectConfig.model_validate(resolved)
    except ValidationError as exc:
        raise validation_error(file, exc, resolved, raw=tree) from None


def parse_model_config(file: Path | str, tree: Any, prefix: str = "") -> ModelConfig:
    """Validate one model's settings (from its SQL header or the project file)."""
    if tree is None:
        tree = {}
    if not isinstance(tree, dict):
        raise ConfigError(f"{file}: {prefix or 'header'}: expected a mapping of settings")
    try:
        return ModelConfig.model_validate(tree)
    except ValidationError as exc:
        raise validation_error(file, exc, tree, prefix) from None
