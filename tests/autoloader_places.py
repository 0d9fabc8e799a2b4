"""Where the Auto Loader conformance tests put their files (a local folder or an S3 prefix) and
the stream they run over them."""

from __future__ import annotations

import io
import json
from pathlib import Path

from lakehouse_helpers import autoloader as al
from lakehouse_helpers import storage


class Place:
    """Where the source files and the schema history live: a local folder or an S3 prefix."""

    def __init__(self, kind: str, tmp_path: Path, settings):
        self.kind, self.tmp, self.settings = kind, tmp_path, settings
        if kind == "s3":
            from uuid import uuid4

            self.settings = settings.replace(s3_bucket=f"al-{uuid4().hex[:12]}")
            storage.ensure_bucket(self.settings)

    def url(self, *parts: str) -> str:
        rel = "/".join(p for p in parts if p)
        return self.settings.s3_url("al", rel) if self.kind == "s3" else str(self.tmp / rel)

    def put(self, rel: str, data: bytes) -> str:
        if self.kind == "s3":
            storage.s3_client(self.settings).put_object(Bucket=self.settings.s3_bucket, Key=f"al/{rel}", Body=data)
        else:
            path = self.tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        return self.url(rel)


def write_json(place: Place, rel: str, rows: list[dict]) -> str:
    return place.put(rel, "".join(json.dumps(r) + "\n" for r in rows).encode())


def write_csv(place: Place, rel: str, header: list[str], rows: list[list]) -> str:
    return place.put(rel, (",".join(header) + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows)).encode())


def write_parquet(place: Place, rel: str, table) -> str:
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(table, buf)
    return place.put(rel, buf.getvalue())


class Stream:
    """One Auto Loader stream (source and schema history in `place`) into a local Delta table."""

    def __init__(self, spark, place: Place, sub: str, fmt: str, **kwargs):
        self.spark, self.settings, self.fmt, self.kwargs = spark, place.settings, fmt, kwargs
        self.source = kwargs.pop("source", place.url(sub, "src"))
        self.schema_location = place.url(sub, "schema")
        local = place.tmp / "local" / sub
        self.checkpoint, self.out = str(local / "checkpoint"), str(local / "out")

    def df(self):
        return al.read_stream(self.spark, self.settings, self.source, self.fmt, schema_location=self.schema_location,
            **self.kwargs)

    def start(self, trigger=None):
        writer = self.df().writeStream.format("delta").option("mergeSchema", "true").option("checkpointLocation",
            self.checkpoint)
        return writer.trigger(**(trigger or {"availableNow": True})).start(self.out)

    def run(self):
        query = self.start()
        query.awaitTermination()
        return query

    def rows(self, order="_source_file"):
        if not Path(self.out).exists():
            return []
        return [r.asDict() for r in self.spark.read.format("delta").load(self.out).orderBy(order).collect()]

    def versions(self):
        return al.schema_versions(self.schema_location, al.s3_options(self.settings))

    def schema(self, version=None):
        versions = self.versions()
        entry = al.read_schema_version(self.schema_location, versions[-1] if version is None else version,
            al.s3_options(self.settings))
        return dict(map(tuple, entry["fields"]))
