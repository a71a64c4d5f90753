"""The benchmark's own correctness (scripts/benchmark.py): its floors must do the very same work
as the engine, and its report must keep the full run when a quick run writes. Speed itself is
measured by ``scripts/bench``, never here."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("licensing_benchmark", ROOT / "scripts" / "benchmark.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def row_counts(database) -> dict[str, int]:
    with database.read() as session:
        tables = inspect(session.connection()).get_table_names()
        return {table: session.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() for table in tables}  # noqa: S608


def test_the_billing_floor_writes_the_very_same_rows_as_the_billing_run(bench, database):
    # given licences billed and approved by the engine, and every row that run wrote
    bench.seed_licences(database, 12)
    before = row_counts(database)
    result = bench.run_billing(database, as_of=bench.BILLING_DAY, now=bench.BILLED_AT, actor="bench", approve_all=True)
    assert result.invoices_created == result.invoices_approved == 12
    grown = {table for table, count in row_counts(database).items() if count != before[table]}
    assert grown == set(bench.WRITTEN_TABLES), "the floor writes every table the billing run writes"
    written = bench.written_rows(database.url)
    # 24 rows a licence, and its approval's journal entry with 4 postings (receivables, revenue, deferred revenue, VAT)
    assert sum(len(rows) for table, (_columns, rows) in written.items() if table != "accounts") == 12 * (24 + 5) + 1

    # when those rows are removed again and the floor writes them with plain executemany
    with database.write() as session:
        for table in reversed(bench.WRITTEN_TABLES):
            session.execute(text(f"DELETE FROM {table}"))  # noqa: S608 - fixed table names
        session.execute(text("UPDATE accounts SET balance = 0"))
    assert bench.written_rows(database.url) != written
    bench.floor_write(database.url, written)

    # then the database holds exactly what the billing run left in it
    assert bench.written_rows(database.url) == written


def test_a_quick_run_rewrites_its_own_section_of_the_report_and_keeps_the_full_run(bench, tmp_path):
    path = tmp_path / "benchmarks.md"
    full, quick, later_quick = bench.Report(), bench.Report(), bench.Report()
    full.figures.append(bench.Figure("billing run (sqlite)", "10,000 licences", "2,300 licences/s", "4.0x the floor", ">= 2,000/s", True))
    quick.figures.append(bench.Figure("billing run (sqlite)", "300 licences", "1,400 licences/s", "5.0x the floor", "<= 10x floor", True))
    later_quick.figures.append(bench.Figure("billing run (sqlite)", "300 licences", "1,500 licences/s", "4.5x the floor", "<= 10x floor", False))

    bench.write_markdown(full, "full", None, path)
    bench.write_markdown(quick, "quick", "15.18", path)
    bench.write_markdown(later_quick, "quick", "15.18", path)

    report = path.read_text()
    assert report.startswith("# Benchmarks\n")
    assert report.count("## Last full run") == report.count("## Last quick run") == 1
    assert report.index("## Last full run") < report.index("## Last quick run")
    assert "| billing run (sqlite) | 10,000 licences | 2,300 licences/s | 4.0x the floor | >= 2,000/s | yes |" in report
    assert "1,400 licences/s" not in report
    assert "| billing run (sqlite) | 300 licences | 1,500 licences/s | 4.5x the floor | <= 10x floor | **no** |" in report
    assert "PostgreSQL 15.18" in report.split("## Last quick run")[1]
    assert "PostgreSQL not measured" in report.split("## Last quick run")[0]


def test_every_http_floor_debits_the_account_once_per_request_and_the_bare_get_reads_it(database_url, monkeypatch):
    # given the HTTP floors served on a fresh database of their own tables
    from fastapi.testclient import TestClient

    monkeypatch.setenv("BENCH_FLOOR_DATABASE_URL", database_url)
    spec = importlib.util.spec_from_file_location("licensing_bench_floor", ROOT / "scripts" / "bench_floor.py")
    floor = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, floor)  # its annotations are resolved through it
    spec.loader.exec_module(floor)
    floor.create_tables(database_url, accounts=2)
    try:
        client = TestClient(floor.app)
        # when each style of route takes 0.50 credits from account 1
        for style in ("stack", "async-core", "raw", "raw-model"):
            response = client.post(f"/{style}/accounts/1/debit", json={"credits": "0.50", "business_unit_id": "1"})
            assert response.status_code == 201, response.text
        # then the account lost 2.00, each request wrote one ledger row, and the other account is untouched
        assert client.get("/stack/accounts/1").json() == {"id": "1", "balance": "999998.00"}
        assert client.get("/stack/accounts/2").json()["balance"] == "1000000.00"
        with floor.DATABASE.reader.connect() as connection:
            ledger = connection.execute(text("SELECT account_id, credits, balance_after FROM floor_ledger ORDER BY id")).all()
        assert [(row[0], str(row[1]), str(row[2])) for row in ledger] == [
            (1, "-0.50", "999999.50"), (1, "-0.50", "999999.00"), (1, "-0.50", "999998.50"), (1, "-0.50", "999998.00"),
        ]
    finally:
        if floor._raw is not None:
            floor._raw.close()
        floor.DATABASE.dispose()


def test_a_command_s_peak_memory_is_its_own_not_the_benchmark_s(bench, tmp_path):
    """The benchmark's process grows to hundreds of MiB; a command it starts is a copy of it until
    it executes, and the ``ru_maxrss`` of its exit counted that copy (100,000 licences and 10,000
    both came out at the benchmark's 518 MiB). The peak measured is the command's own."""
    script = tmp_path / "allocates"
    script.write_text(f"#!{sys.executable}\nimport time\nblock = bytearray(40 * 1024 * 1024)\ntime.sleep(0.3)\n")
    script.chmod(0o755)
    ballast = bytearray(300 * 1024 * 1024)  # this process, as big as the benchmark gets
    ballast[::4096] = b"x" * len(ballast[::4096])  # touched: resident
    _seconds, peak_kib = bench.run_measured([str(script)], {})
    assert 40 * 1024 < peak_kib < 150 * 1024, peak_kib  # its 40 MiB and an interpreter, not our 300
