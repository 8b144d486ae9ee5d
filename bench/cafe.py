"""Benchmark of the cafe template: branch CSV files -> PII-free warehouse.

Generates about N transactions (50 branches x 30 days, N / 1500 a branch-day)
into ``bench/out/<N>/inbox`` and times, in the same process:

- headwater: ``run()`` end to end on a fresh project (extract -> raw zone ->
  parse -> models -> checks -> Iceberg -> DuckDB warehouse), checked against
  the generator's counts;
- the floor: DuckDB reading the same CSV files and counting the rows;
- the baseline: the same transform written the common way (pandas per file,
  row-wise basket parsing in Python, ``to_sql`` into SQLite), timed on a
  sample of the files and extrapolated.

``--memory`` instead runs the headwater pipeline alone in a child process for
1M and 5M transactions and compares the children's peak RSS.

Results are printed as a markdown table and written to bench/out/results.json.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import hmac
import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

import duckdb

from benchkit import best_of, environment, log, print_profile, verdict
from headwater.project import Project
from headwater.runs.pipeline import run as run_pipeline
from headwater.runs.summary import RunSummary
from headwater.templates import init_project, template_dir
from headwater.templates.cafe import generator

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench" / "out"
RESULTS = OUT / "results.json"

BRANCHES = 50
DAYS = 30
SEED = 1
BRANCH_DAYS = BRANCHES * DAYS  # 1,500 files
SECRET = "bench"
MARKER = "generated.json"
BASELINE_DB = "baseline.sqlite"
PROFILE_FILE = "headwater.prof"
OLD_TRIES = ".headwater-old"  # earlier tries' lakes, set aside until the timed runs end
COLUMNS = ["ts", "branch", "customer_name", "basket", "total", "payment", "card_number"]

TARGET_VS_BASELINE = 20.0  # headwater transactions/s over baseline transactions/s, at least
TARGET_VS_FLOOR = 3.0  # headwater seconds over floor seconds, at most
TARGET_MEMORY_RATIO = 1.5  # peak RSS at 5M over peak RSS at 1M, at most
MIN_FREE_BYTES = 5 * 1024**3
DEFAULT_MEMORY_SIZES = (1_000_000, 5_000_000)
RESULT_PREFIX = "BENCH-RESULT "

T = TypeVar("T")


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Dataset:
    """One generated input: ``bench/out/<N>/`` holds the inbox and the project."""

    requested: int
    per_day: int
    root: Path
    files: int
    transactions: int
    items: int
    bytes: int

    @property
    def inbox(self) -> Path:
        return self.root / "inbox"


def per_day_for(transactions: int) -> int:
    return max(1, round(transactions / BRANCH_DAYS))


def _generator_fingerprint() -> str:
    """Hash of the generator's source: a changed generator invalidates old data."""
    return hashlib.sha256(Path(generator.__file__).read_bytes()).hexdigest()[:16]


def _marker_params(per_day: int) -> dict[str, Any]:
    return {
        "branches": BRANCHES,
        "days": DAYS,
        "seed": SEED,
        "per_day": per_day,
        "generator": _generator_fingerprint(),
    }


def _load_marker(root: Path, params: dict[str, Any]) -> dict[str, Any] | None:
    """The generator result recorded beside the inbox, if it matches ``params``."""
    marker = root / MARKER
    if not marker.is_file():
        return None
    try:
        recorded = json.loads(marker.read_text())
    except (OSError, ValueError):
        return None
    if recorded.get("params") != params:
        return None
    result: dict[str, Any] = recorded.get("result", {})
    on_disk = sum(1 for _ in (root / "inbox").glob("*.csv"))
    return result if on_disk == result.get("files") else None


def ensure_dataset(transactions: int, *, generate: bool = True) -> Dataset:
    """Generate ``bench/out/<N>/inbox`` unless a matching one is already there."""
    per_day = per_day_for(transactions)
    root = OUT / str(transactions)
    params = _marker_params(per_day)
    result = _load_marker(root, params)
    if result is None:
        if not generate:
            raise SystemExit(f"{root}: no generated data matching {params}")
        inbox = root / "inbox"
        shutil.rmtree(inbox, ignore_errors=True)
        (root / MARKER).unlink(missing_ok=True)
        log(
            f"generating {BRANCHES} branches x {DAYS} days x {per_day}/day "
            f"(seed {SEED}) into {inbox} ..."
        )
        start = time.perf_counter()
        made = generator.generate(inbox, branches=BRANCHES, days=DAYS, seed=SEED, per_day=per_day)
        seconds = time.perf_counter() - start
        result = asdict(made)
        (root / MARKER).write_text(
            json.dumps({"params": params, "result": result, "seconds": round(seconds, 3)}, indent=2)
        )
        log(
            f"  {made.files:,} files, {made.transactions:,} transactions, "
            f"{made.bytes_written / 1e6:,.0f} MB in {seconds:.1f} s"
        )
    else:
        log(
            f"reusing {root / 'inbox'}: {result['files']:,} files, "
            f"{result['transactions']:,} transactions, {result['bytes_written'] / 1e6:,.0f} MB"
        )
    return Dataset(
        requested=transactions,
        per_day=per_day,
        root=root,
        files=int(result["files"]),
        transactions=int(result["transactions"]),
        items=int(result["items"]),
        bytes=int(result["bytes_written"]),
    )


# --------------------------------------------------------------------------- headwater


@dataclass(frozen=True)
class HeadwaterResult:
    seconds: float
    cpu_seconds: float  # process CPU time, all threads (less sensitive to a busy machine)
    status: str
    error: str | None
    transactions: int  # rows in the warehouse table `transactions`
    items: int  # sum(quantity) in the warehouse table `transaction_items`
    rows_read: int
    rows_quarantined: int
    model_seconds: dict[str, float]
    checks_ok: bool  # succeeded and the warehouse holds what the generator wrote

    @property
    def tps(self) -> float:
        return self.transactions / self.seconds if self.seconds else 0.0


def fresh_project(data: Dataset) -> Path:
    """A fresh copy of the cafe template in ``data.root``, around the existing inbox.

    The previous try's ``.headwater`` is set aside under ``.headwater-old/``, not
    deleted: right after a mass deletion ext4 creates files slowly (its inode
    allocator skips recently deleted inodes, ``recently_deleted`` in a profile), which
    would charge this try for the previous one's cleanup. `discard_old_tries`
    deletes them once the timed runs are over.
    """
    root = data.root
    state = root / ".headwater"
    if state.exists():
        aside = root / OLD_TRIES / uuid.uuid4().hex
        aside.parent.mkdir(exist_ok=True)
        state.rename(aside)
    for entry in template_dir("cafe").iterdir():
        if entry.name == "inbox":
            continue
        target = root / entry.name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)
    init_project(root, "cafe", force=True)
    (root / ".env").write_text(f"HEADWATER_PII_SECRET={SECRET}\n")
    return root


def discard_old_tries(data: Dataset) -> None:
    """Delete what `fresh_project` set aside."""
    shutil.rmtree(data.root / OLD_TRIES, ignore_errors=True)


def _warehouse_counts(project: Project) -> tuple[int, int]:
    path = project.warehouse_path
    if not path.exists():
        return 0, 0
    con = duckdb.connect(str(path), read_only=True)
    try:
        tx = con.execute("SELECT count(*) FROM transactions").fetchone()
        items = con.execute("SELECT coalesce(sum(quantity), 0) FROM transaction_items").fetchone()
    except duckdb.Error as exc:
        log(f"  cannot read the warehouse: {exc}")
        return 0, 0
    finally:
        con.close()
    return int(tx[0]) if tx else 0, int(items[0]) if items else 0


def run_headwater(data: Dataset, *, profile_to: Path | None = None) -> HeadwaterResult:
    """Time one end-to-end run on a fresh project, then check the warehouse."""
    root = fresh_project(data)
    profiler = cProfile.Profile() if profile_to else None
    start, cpu_start = time.perf_counter(), time.process_time()
    if profiler is not None:
        profiler.enable()
    try:
        summary: RunSummary = run_pipeline(Project.load(root))
    finally:
        if profiler is not None:
            profiler.disable()
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start
    if profiler is not None and profile_to is not None:
        profiler.dump_stats(str(profile_to))
    project = Project.load(root)
    transactions, items = _warehouse_counts(project)
    sources = summary.sources.values()
    result = HeadwaterResult(
        seconds=seconds,
        cpu_seconds=cpu_seconds,
        status=summary.status,
        error=summary.error,
        transactions=transactions,
        items=items,
        rows_read=sum(s.rows_read for s in sources),
        rows_quarantined=sum(s.rows_quarantined for s in sources),
        model_seconds={name: round(m.seconds, 3) for name, m in summary.models.items()},
        checks_ok=summary.ok and transactions == data.transactions and items == data.items,
    )
    log(
        f"  run {result.status} in {seconds:.2f} s: warehouse holds {transactions:,} "
        f"transactions (generator: {data.transactions:,}), {items:,} items "
        f"(generator: {data.items:,}); rows read {result.rows_read:,}, "
        f"quarantined {result.rows_quarantined:,}"
    )
    if result.error:
        log(f"  error: {result.error}")
    if not result.checks_ok:
        log("  CHECK FAILED: the run did not succeed or the warehouse counts differ")
    return result


# --------------------------------------------------------------------------- floor


@dataclass(frozen=True)
class FloorResult:
    seconds: float
    cpu_seconds: float  # process CPU time, all threads (less sensitive to a busy machine)
    rows: int

    @property
    def tps(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def run_floor(data: Dataset) -> FloorResult:
    """DuckDB, fresh connection, reading every CSV and counting the rows."""
    pattern = str(data.inbox / "*.csv").replace("'", "''")
    start, cpu_start = time.perf_counter(), time.process_time()
    con = duckdb.connect()
    try:
        row = con.execute(
            f"SELECT count(*) FROM read_csv('{pattern}', header=false, all_varchar=true)"
        ).fetchone()
    finally:
        con.close()
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start
    rows = int(row[0]) if row else 0
    log(f"  counted {rows:,} rows in {seconds:.2f} s")
    return FloorResult(seconds=seconds, cpu_seconds=cpu_seconds, rows=rows)


# --------------------------------------------------------------------------- baseline


@dataclass(frozen=True)
class BaselineResult:
    seconds: float
    cpu_seconds: float  # process CPU time, all threads (less sensitive to a busy machine)
    files: int
    transactions: int  # rows written to the SQLite `transactions` table
    items: int  # sum of quantities written to `transaction_items`
    products: int
    branches: int

    @property
    def tps(self) -> float:
        return self.transactions / self.seconds if self.seconds else 0.0


def sample_files(inbox: Path, count: int) -> list[Path]:
    """``count`` files spread evenly over the sorted inbox (all branches, all days)."""
    files = sorted(inbox.glob("*.csv"))
    if count >= len(files):
        return files
    return [files[i * len(files) // count] for i in range(count)]


def baseline_transform(files: Sequence[Path], db_path: Path, secret: str) -> BaselineResult:
    """The transform as commonly written: pandas per file, Python loops, ``to_sql``.

    Same output tables as the cafe template (branches, products, transactions,
    transaction_items; no card number; customer name replaced by a keyed
    hash), into a SQLite file with pandas' default INSERT method. Money stays
    float, as it usually does in such code (less work than exact decimals).
    """
    import pandas as pd  # only the baseline needs pandas

    key = secret.encode()
    db_path.unlink(missing_ok=True)
    start, cpu_start = time.perf_counter(), time.process_time()
    con = sqlite3.connect(db_path)
    branch_ids: dict[str, int] = {}
    product_ids: dict[tuple[str, str | None, str | None], int] = {}
    product_prices: dict[int, float] = {}
    next_transaction = 1
    transactions = items = 0

    def customer_key(name: object) -> str | None:
        if not isinstance(name, str) or not name.strip():
            return None
        normalised = " ".join(name.split()).lower()
        return hmac.new(key, normalised.encode(), hashlib.sha256).hexdigest()[:16]

    def branch_id(name: str) -> int:
        return branch_ids.setdefault(name.strip(), len(branch_ids) + 1)

    for path in files:
        df = pd.read_csv(path, header=None, names=COLUMNS)
        df = df.drop(columns=["card_number"])
        df["customer_key"] = df["customer_name"].apply(customer_key)
        df = df.drop(columns=["customer_name"])
        df["transacted_at"] = pd.to_datetime(df["ts"], format="%d/%m/%Y %H:%M")
        df["transaction_id"] = range(next_transaction, next_transaction + len(df))
        next_transaction += len(df)
        df["branch_id"] = df["branch"].apply(branch_id)

        item_rows: list[dict[str, Any]] = []
        for row in df.itertuples(index=False):
            lines: dict[int, list[float]] = {}  # product_id -> [quantity, line total]
            for item in str(row.basket).split(", "):
                described, price_text = item.rsplit(" - ", 1)
                size, _, name = described.strip().partition(" ")
                if size not in ("Regular", "Large"):
                    size, name = "", described.strip()
                product, _, variant = name.partition(" - ")
                product_key = (product, variant or None, size or None)
                product_id = product_ids.setdefault(product_key, len(product_ids) + 1)
                price = float(price_text)
                product_prices[product_id] = price
                line = lines.setdefault(product_id, [0, 0.0])
                line[0] += 1
                line[1] += price
            for product_id, (quantity, line_total) in lines.items():
                item_rows.append(
                    {
                        "transaction_id": row.transaction_id,
                        "product_id": product_id,
                        "quantity": int(quantity),
                        "unit_price": round(line_total / quantity, 2),
                        "line_total": round(line_total, 2),
                    }
                )
                items += int(quantity)

        out = df[["transaction_id", "branch_id", "transacted_at", "total", "payment"]]
        out = out.assign(customer_key=df["customer_key"]).rename(
            columns={"payment": "payment_method"}
        )
        out.to_sql("transactions", con, if_exists="append", index=False)
        pd.DataFrame(item_rows).to_sql("transaction_items", con, if_exists="append", index=False)
        transactions += len(df)

    pd.DataFrame(
        {"branch_id": list(branch_ids.values()), "branch_name": list(branch_ids.keys())}
    ).to_sql("branches", con, if_exists="replace", index=False)
    pd.DataFrame(
        [
            {
                "product_id": pid,
                "product_name": name,
                "variant": variant,
                "size": size,
                "price": product_prices[pid],
            }
            for (name, variant, size), pid in product_ids.items()
        ]
    ).to_sql("products", con, if_exists="replace", index=False)
    con.commit()
    written = con.execute("SELECT count(*) FROM transactions").fetchone()
    con.close()
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start
    result = BaselineResult(
        seconds=seconds,
        cpu_seconds=cpu_seconds,
        files=len(files),
        transactions=int(written[0]) if written else 0,
        items=items,
        products=len(product_ids),
        branches=len(branch_ids),
    )
    log(
        f"  {result.files} files, {result.transactions:,} transactions, {items:,} items, "
        f"{result.products} products, {result.branches} branches in {seconds:.2f} s"
    )
    if result.transactions != transactions:
        log(f"  CHECK FAILED: SQLite holds {result.transactions:,}, read {transactions:,}")
    return result


# --------------------------------------------------------------------------- memory


@dataclass(frozen=True)
class MemoryResult:
    requested: int
    transactions: int
    bytes: int
    seconds: float
    cpu_seconds: float
    peak_rss_bytes: int
    status: str
    checks_ok: bool

    @property
    def tps(self) -> float:
        return self.transactions / self.seconds if self.seconds else 0.0


def _maxrss_bytes(kilo_or_bytes: int) -> int:
    """``ru_maxrss`` is KiB on Linux, bytes on macOS."""
    return kilo_or_bytes if sys.platform == "darwin" else kilo_or_bytes * 1024


def child_run(transactions: int) -> int:
    """In the child: only the pipeline, on data the parent generated."""
    data = ensure_dataset(transactions, generate=False)
    result = run_headwater(data)
    discard_old_tries(data)
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    payload = {**asdict(result), "self_maxrss_bytes": _maxrss_bytes(own)}
    print(RESULT_PREFIX + json.dumps(payload), flush=True)
    return 0 if result.checks_ok else 1


def measure_in_child(data: Dataset) -> MemoryResult:
    """Run the pipeline in a child process; its peak RSS comes from wait4()."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child-run", str(data.requested)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    payload: dict[str, Any] = {}
    for line in proc.stdout:
        if line.startswith(RESULT_PREFIX):
            payload = json.loads(line[len(RESULT_PREFIX) :])
        else:
            print(line, end="", flush=True)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    peak = _maxrss_bytes(usage.ru_maxrss)
    if not payload:
        log(f"  child failed (exit {proc.returncode}) without a result")
    log(f"  child peak RSS {peak / 2**20:,.0f} MiB (exit {proc.returncode})")
    return MemoryResult(
        requested=data.requested,
        transactions=data.transactions,
        bytes=data.bytes,
        seconds=float(payload.get("seconds", 0.0)),
        cpu_seconds=float(payload.get("cpu_seconds", 0.0)),
        peak_rss_bytes=peak,
        status=str(payload.get("status", "no result")),
        checks_ok=bool(payload.get("checks_ok", False)),
    )


# --------------------------------------------------------------------------- reporting


def fmt_int(value: float) -> str:
    return f"{value:,.0f}"


def save(section: str, payload: dict[str, Any]) -> None:
    """Merge one section (``throughput`` or ``memory``) into results.json."""
    OUT.mkdir(parents=True, exist_ok=True)
    try:
        results: dict[str, Any] = json.loads(RESULTS.read_text())
    except (OSError, ValueError):
        results = {}
    results[section] = payload
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    log(f"\nwrote {RESULTS.relative_to(REPO)} ({section})")


# --------------------------------------------------------------------------- modes


def throughput(args: argparse.Namespace) -> int:
    data = ensure_dataset(args.transactions)
    repeat = args.repeat

    log(f"\nfloor: DuckDB count(*) over {data.files:,} CSV files (best of {repeat})")
    floor = best_of(repeat, lambda: run_floor(data), lambda r: r.seconds)

    log(f"\nheadwater: run() end to end on a fresh project (best of {repeat})")
    hw = best_of(repeat, lambda: run_headwater(data), lambda r: r.seconds)

    baseline: BaselineResult | None = None
    if args.baseline_files > 0:
        files = sample_files(data.inbox, args.baseline_files)
        log(
            f"\nbaseline: pandas + row-wise parsing + to_sql(SQLite) on {len(files)} of "
            f"{data.files:,} files (best of {repeat})"
        )
        db = data.root / BASELINE_DB
        baseline = best_of(
            repeat, lambda: baseline_transform(files, db, SECRET), lambda r: r.seconds
        )

    if args.profile:
        prof = data.root / PROFILE_FILE
        log("\nprofiling one more headwater run (not timed) ...")
        run_headwater(data, profile_to=prof)
        print_profile(prof, "profile of the headwater run")
    discard_old_tries(data)

    vs_floor = hw.seconds / floor.seconds if floor.seconds else float("inf")
    vs_baseline = hw.tps / baseline.tps if baseline and baseline.tps else None
    lines = [
        "",
        f"## cafe benchmark: {data.transactions:,} transactions, {data.files:,} files, "
        f"{data.bytes / 1e6:,.0f} MB of CSV ({BRANCHES} branches x {DAYS} days x "
        f"~{data.per_day}/day), {os.cpu_count()} CPUs, best of {repeat}",
        "",
        "| step | transactions | seconds | CPU seconds | transactions/s | note |",
        "|---|---:|---:|---:|---:|---|",
        f"| headwater | {fmt_int(hw.transactions)} | {hw.seconds:.2f} | {hw.cpu_seconds:.2f} | "
        f"{fmt_int(hw.tps)} | "
        f"end to end, run {hw.status}, "
        f"warehouse {'matches' if hw.checks_ok else 'DOES NOT match'} the generator |",
        f"| floor | {fmt_int(floor.rows)} | {floor.seconds:.2f} | {floor.cpu_seconds:.2f} | "
        f"{fmt_int(floor.tps)} | "
        "DuckDB read_csv + count(*) |",
    ]
    if baseline is not None:
        full = data.transactions / baseline.tps if baseline.tps else float("inf")
        lines.append(
            f"| baseline | {fmt_int(baseline.transactions)} | {baseline.seconds:.2f} | "
            f"{baseline.cpu_seconds:.2f} | "
            f"{fmt_int(baseline.tps)} | pandas + Python loops + to_sql; sample of "
            f"{baseline.files} files, extrapolated: ~{full:,.0f} s for all "
            f"{data.files:,} files |"
        )
    lines += [
        "",
        "| ratio | value | target | verdict |",
        "|---|---:|---:|---|",
        f"| headwater seconds / floor seconds | {vs_floor:.1f} | <= {TARGET_VS_FLOOR:g} | "
        f"{verdict(vs_floor <= TARGET_VS_FLOOR)} |",
    ]
    if vs_baseline is not None:
        lines.append(
            f"| headwater transactions/s / baseline transactions/s | {vs_baseline:.1f}x | "
            f">= {TARGET_VS_BASELINE:g}x | {verdict(vs_baseline >= TARGET_VS_BASELINE)} |"
        )
    lines.append(
        f"| headwater warehouse = generator counts | {hw.checks_ok} | True | "
        f"{verdict(hw.checks_ok)} |"
    )
    log("\n".join(lines))

    save(
        "throughput",
        {
            **environment(),
            "repeat": repeat,
            "dataset": asdict(data) | {"root": str(data.root.relative_to(REPO))},
            "headwater": asdict(hw) | {"transactions_per_second": round(hw.tps)},
            "floor": asdict(floor) | {"rows_per_second": round(floor.tps)},
            "baseline": None
            if baseline is None
            else asdict(baseline)
            | {"transactions_per_second": round(baseline.tps), "extrapolated": True},
            "ratios": {
                "headwater_seconds_over_floor_seconds": round(vs_floor, 3),
                "target_vs_floor_max": TARGET_VS_FLOOR,
                "pass_vs_floor": vs_floor <= TARGET_VS_FLOOR,
                "headwater_tps_over_baseline_tps": None
                if vs_baseline is None
                else round(vs_baseline, 2),
                "target_vs_baseline_min": TARGET_VS_BASELINE,
                "pass_vs_baseline": None
                if vs_baseline is None
                else vs_baseline >= TARGET_VS_BASELINE,
            },
        },
    )
    return 0 if hw.checks_ok else 1


def memory(args: argparse.Namespace) -> int:
    sizes: list[int] = args.memory_sizes
    free = shutil.disk_usage(OUT if OUT.exists() else REPO).free
    if free < MIN_FREE_BYTES:
        log(
            f"refusing --memory: {free / 2**30:.1f} GiB free under {OUT}, need at least "
            f"{MIN_FREE_BYTES / 2**30:.0f} GiB (5M transactions are ~830 MB of CSV, "
            "plus the raw copy, Parquet and the warehouse)"
        )
        return 2
    datasets = [ensure_dataset(n) for n in sizes]
    results: list[MemoryResult] = []
    for data in datasets:
        log(f"\nmemory: headwater pipeline alone in a child process, {data.transactions:,} tx")
        runs = [measure_in_child(data) for _ in range(args.repeat)]
        # Best of K by time; the peak is the largest seen, to stay on the safe side.
        best = min(runs, key=lambda r: r.seconds if r.checks_ok else float("inf"))
        results.append(
            MemoryResult(**(asdict(best) | {"peak_rss_bytes": max(r.peak_rss_bytes for r in runs)}))
        )

    lines = [
        "",
        f"## cafe benchmark: peak memory of the headwater pipeline, {os.cpu_count()} CPUs",
        "",
        "| transactions | MB of CSV | seconds | CPU seconds | transactions/s | peak RSS (MiB) | run |",
        "|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        lines.append(
            f"| {fmt_int(r.transactions)} | {r.bytes / 1e6:,.0f} | {r.seconds:.2f} | "
            f"{r.cpu_seconds:.2f} | "
            f"{fmt_int(r.tps)} | {r.peak_rss_bytes / 2**20:,.0f} | "
            f"{r.status}{'' if r.checks_ok else ', CHECK FAILED'} |"
        )
    ratio = None
    if len(results) >= 2 and not all(r.checks_ok for r in results):
        lines += ["", "peak RSS ratio: n/a, a run failed (its peak is not comparable)"]
    elif len(results) >= 2 and results[0].peak_rss_bytes:
        ratio = results[-1].peak_rss_bytes / results[0].peak_rss_bytes
        size_ratio = results[-1].transactions / results[0].transactions
        lines += [
            "",
            "| ratio | value | target | verdict |",
            "|---|---:|---:|---|",
            f"| peak RSS {fmt_int(results[-1].transactions)} / peak RSS "
            f"{fmt_int(results[0].transactions)} (input {size_ratio:.1f}x) | {ratio:.2f} | "
            f"<= {TARGET_MEMORY_RATIO:g} | {verdict(ratio <= TARGET_MEMORY_RATIO)} |",
        ]
    log("\n".join(lines))
    save(
        "memory",
        {
            **environment(),
            "repeat": args.repeat,
            "runs": [asdict(r) | {"transactions_per_second": round(r.tps)} for r in results],
            "peak_ratio": None if ratio is None else round(ratio, 3),
            "target_peak_ratio_max": TARGET_MEMORY_RATIO,
            "pass": None if ratio is None else ratio <= TARGET_MEMORY_RATIO,
        },
    )
    return 0 if all(r.checks_ok for r in results) else 1


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark the cafe template against a DuckDB floor and a pandas baseline.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--transactions",
        type=int,
        default=1_000_000,
        help=f"about how many transactions to generate ({BRANCHES} branches x {DAYS} days)",
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="run each timed step K times, keep the best"
    )
    parser.add_argument(
        "--baseline-files",
        type=int,
        default=150,
        help="files the baseline runs on (it is slow; its rate is extrapolated); 0 skips it",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="after the timed runs, profile one more headwater run with cProfile",
    )
    parser.add_argument(
        "--memory",
        action="store_true",
        help="instead: peak RSS of the pipeline alone, in a child process, per size",
    )
    parser.add_argument(
        "--memory-sizes",
        type=int,
        nargs="+",
        default=list(DEFAULT_MEMORY_SIZES),
        help="transaction counts for --memory (smallest first)",
    )
    parser.add_argument("--child-run", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.transactions < BRANCH_DAYS:
        parser.error(f"--transactions must be at least {BRANCH_DAYS}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child_run is not None:
        return child_run(args.child_run)
    if args.memory:
        return memory(args)
    return throughput(args)


if __name__ == "__main__":
    sys.exit(main())
