"""The write-back on the Snowflake (fakesnow) and BigQuery (local-bigquery) stand-ins, through the
real dialects and clients: the table, read with the warehouse's own SQL, equals `value --json` to
the cent, money is a fixed-point decimal, and a re-run replaces the as-of date's rows."""

from __future__ import annotations

import datetime as dt
import decimal
import json

import pytest
import sqlalchemy as sa

from valuetrack.config import ConnectionSettings
from valuetrack.connectors import get_connector
from valuetrack.writeback import columns, value_rows

AS_OF = "2026-06-30"


def _cent(x: float | None) -> decimal.Decimal | None:
    return None if x is None else decimal.Decimal(repr(x)).quantize(decimal.Decimal("0.01"), decimal.ROUND_HALF_UP)


@pytest.fixture(scope="module")
def demo_values(tmp_path_factory: pytest.TempPathFactory):
    """The demo's rows to write and its `value --json`, as of AS_OF."""
    import contextlib
    import io

    from valuetrack.cli import main
    from valuetrack.context import open_context
    from valuetrack.store.db import dispose_all

    folder = tmp_path_factory.mktemp("writeback-demo")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)
        mp.delenv("VALUETRACK_CONFIG", raising=False)
        mp.setenv("VALUETRACK_USER", "tester@example.com")
        assert main(["demo", "--scale", "0.1", "--as-of", AS_OF]) == 0
        assert main(["refresh", "--as-of", AS_OF]) == 0
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main(["value", "--as-of", AS_OF, "--json"]) == 0
        _, rows = value_rows(open_context(cwd=folder), dt.date.fromisoformat(AS_OF))
        dispose_all()
    return rows, json.loads(out.getvalue())


@pytest.mark.parametrize("warehouse", ["snowflake", "bigquery"])
def test_written_table_equals_value_json_to_the_cent(warehouse: str, request: pytest.FixtureRequest, demo_values) -> None:
    engine = request.getfixturevalue(f"{warehouse}_engine")
    rows, value = demo_values
    conn = ConnectionSettings("bi", engine.url.render_as_string(hide_password=True), {"write_tables": ["valuetrack_values"]})
    connector = get_connector(conn, engine=engine)
    # the day rows make the load slow on the emulators; to-date and month rows carry every column kind
    subset = [r for r in rows if r["period"] != "day"]
    assert connector.replace_rows("valuetrack_values", columns(), subset, key={"as_of": dt.date.fromisoformat(AS_OF)}) == 0
    assert connector.replace_rows("valuetrack_values", columns(), subset,
                                  key={"as_of": dt.date.fromisoformat(AS_OF)}) == len(subset)
    with engine.connect() as c:
        got = c.execute(sa.text("SELECT model, gross, cost, net, net_lo, net_hi, flags FROM valuetrack_values "
                                "WHERE period = 'to_date' ORDER BY model")).fetchall()
        count = c.execute(sa.text("SELECT COUNT(*) FROM valuetrack_values")).scalar()
    assert count == len(subset)
    expected = sorted(value["models"], key=lambda m: m["model"])
    assert [r[0] for r in got] == [m["model"] for m in expected]
    for r, m in zip(got, expected):
        assert all(v is None or isinstance(v, decimal.Decimal) for v in r[1:6]), r  # fixed-point, not float
        assert (r[1], r[2], r[3]) == (_cent(m["gross"]), _cent(m["cost"]), _cent(m["net"]))
        assert (r[4], r[5]) == ((_cent(m["ci_net"][0]), _cent(m["ci_net"][1])) if m["ci_net"] else (None, None))


def test_athena_writes_parquet_with_a_glue_table(athena_standin, demo_values) -> None:
    """moto runs no SQL: check the Parquet file (schema and cents) and the Glue table instead."""
    import io

    import boto3
    import pyarrow as pa
    import pyarrow.parquet as pq

    from standins import AWS

    rows, value = demo_values
    subset = [r for r in rows if r["period"] != "day"]
    bucket = athena_standin.bucket
    conn = ConnectionSettings("lake", "awsathena+rest://@athena.us-east-1.amazonaws.com:443/vt_lake", {
        "write_tables": ["valuetrack_values"], "write_location": f"s3://{bucket}/writeback/",
        "endpoint_url": athena_standin.endpoint, "region": AWS["region_name"],
        "aws_access_key_id": AWS["aws_access_key_id"], "aws_secret_access_key": AWS["aws_secret_access_key"]})
    connector = get_connector(conn)
    key = {"as_of": dt.date.fromisoformat(AS_OF)}
    assert connector.replace_rows("valuetrack_values", columns(), subset, key=key) == 0
    assert connector.replace_rows("valuetrack_values", columns(), subset, key=key) == len(subset)

    s3 = boto3.client("s3", endpoint_url=athena_standin.endpoint, **AWS)
    objects = s3.list_objects_v2(Bucket=bucket, Prefix="writeback/valuetrack_values/")["Contents"]
    assert [o["Key"] for o in objects] == [f"writeback/valuetrack_values/as_of={AS_OF}/part-00000.parquet"]
    table = pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=objects[0]["Key"])["Body"].read()))
    assert table.num_rows == len(subset)
    for name in ("gross", "cost", "net", "net_lo", "net_hi"):
        assert table.schema.field(name).type == pa.decimal128(18, 2)
    got = {r["model"]: r for r in table.to_pylist() if r["period"] == "to_date"}
    for m in value["models"]:
        assert (got[m["model"]]["net"], got[m["model"]]["cost"]) == (_cent(m["net"]), _cent(m["cost"]))

    glue = boto3.client("glue", endpoint_url=athena_standin.endpoint, **AWS)
    described = glue.get_table(DatabaseName="vt_lake", Name="valuetrack_values")["Table"]
    types = {c["Name"]: c["Type"] for c in described["StorageDescriptor"]["Columns"]}
    assert types["net"] == "decimal(18,2)" and types["period_start"] == "date" and types["roi"] == "double"
    assert described["PartitionKeys"] == [{"Name": "as_of", "Type": "date"}]
    parts = glue.get_partitions(DatabaseName="vt_lake", TableName="valuetrack_values")["Partitions"]
    assert [p["Values"] for p in parts] == [[AS_OF]]
    assert parts[0]["StorageDescriptor"]["Location"] == f"s3://{bucket}/writeback/valuetrack_values/as_of={AS_OF}/"
