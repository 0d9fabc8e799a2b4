"""Files Auto Loader cannot read, handled the way Databricks documents it for `cloudFiles`.

- A corrupt file (a Parquet file cut short, random bytes, a page that does not decode) fails the
  stream by default, naming the file (Spark's `FAILED_READ_FILE`). With `ignoreCorruptFiles=true`
  or a `badRecordsPath` it is skipped instead; rows read before the damage are kept, as Spark
  keeps them. A malformed JSON line is not a corrupt file: it goes to the rescued data column.
- A file that was listed but is gone when read fails the stream (`FAILED_READ_FILE.FILE_NOT_EXIST`)
  unless `ignoreMissingFiles=true`, except when it is already in the ledger: a file that failed
  the stream as corrupt and was then moved away (what the error tells the user to do) is skipped
  on the restart, and so is a skipped file moved away before its micro-batch was replayed.

Every such file is accounted for in a ledger, one JSON record per file (its path, what happened,
the reason, the rows read before the damage): under `<badRecordsPath>/bad_files/` when that
option is set (Databricks keeps its bad-file records there), else `<schemaLocation>/_bad_files/`.
The record is named after the path, so a replayed micro-batch rewrites it instead of counting the
file twice. Storage that cannot be reached is never taken for a corrupt file: the error is raised.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator

from lakehouse_helpers.pipeline.autoloader.files import _exists, _read_bytes, _write_text, filesystem
from lakehouse_helpers.pipeline.autoloader.schema import AutoLoaderError, _get
from lakehouse_helpers.runtime import errors

BAD_FILES_DIR = "_bad_files"


def _on(options: dict, key: str) -> bool:
    return str(_get(options, key, "false")).lower() == "true"


def skips_corrupt(options: dict) -> bool:
    return _on(options, "ignoreCorruptFiles") or bool(_get(options, "badRecordsPath"))


def ledger_dir(options: dict) -> str | None:
    """Where the records of unreadable files go (None: no schemaLocation nor badRecordsPath)."""
    bad = _get(options, "badRecordsPath")
    if bad:
        return f"{bad.rstrip('/')}/bad_files"
    location = _get(options, "schemaLocation")
    return f"{location.rstrip('/')}/{BAD_FILES_DIR}" if location else None


def _record_path(options: dict, path: str) -> str | None:
    folder = ledger_dir(options)
    return f"{folder}/{hashlib.sha1(path.encode()).hexdigest()[:20]}.json" if folder else None


def recorded(options: dict, path: str) -> dict | None:
    where = _record_path(options, path)
    if where is None or not _exists(where, options):
        return None
    return json.loads(_read_bytes(where, options))


def record(options: dict, path: str, status: str, reason: str, rows_read: int = 0) -> None:
    where = _record_path(options, path)
    if where is not None:
        entry = {"path": path, "status": status, "reason": reason, "rows_read": rows_read,
                 "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        _write_text(where, json.dumps(entry) + "\n", options)


def read_ledger(location: str, options: dict) -> list[dict]:
    """Every record under a ledger folder (see `ledger_dir`), ordered by path."""
    from pyarrow import fs as pafs

    filesys, base = filesystem(location, options)
    infos = filesys.get_file_info(pafs.FileSelector(base, allow_not_found=True))
    entries = [json.loads(_read_bytes(f"{location.rstrip('/')}/{i.base_name}", options))
               for i in infos if i.base_name.endswith(".json")]
    return sorted(entries, key=lambda e: e["path"])


def _reason(exc: BaseException) -> str:
    """The error's type and first line, printable (a decoder may quote the bad byte itself)."""
    return f"{type(exc).__name__}: {errors.first_line(exc, 300).rstrip('. ')}"


def unreadable(path: str, options: dict, exc: BaseException, rows_read: int = 0) -> None:
    """Decide what a file that raised `exc` while being read becomes: return to skip it (it is
    recorded), or raise an AutoLoaderError that names it and says what to do."""
    try:
        present = _exists(path, options)
    except Exception as probe:  # noqa: BLE001 - the storage itself fails: not the file's fault
        raise AutoLoaderError(
            f"Cannot read file {path}: {_reason(exc)} (and cannot reach its storage: {_reason(probe)})") from exc
    if present and not isinstance(exc, FileNotFoundError):
        if skips_corrupt(options):
            record(options, path, "skipped", _reason(exc), rows_read)
            return
        record(options, path, "failed", _reason(exc), rows_read)
        raise AutoLoaderError(
            f"[FAILED_READ_FILE.NO_HINT] Encountered error while reading file {path}: {_reason(exc)}. "
            f"Move the file out of the source folder and restart the stream (it is then skipped; "
            f"the record stays in {ledger_dir(options)}), or set ignoreCorruptFiles=true to skip corrupt files."
        ) from exc
    before = recorded(options, path)
    if before is not None:  # already accounted for (it failed or was skipped), and moved away since
        if before["status"] == "failed":
            record(options, path, "removed", before["reason"], before.get("rows_read", 0))
        return
    if _on(options, "ignoreMissingFiles"):
        record(options, path, "missing", _reason(exc), rows_read)
        return
    raise AutoLoaderError(
        f"[FAILED_READ_FILE.FILE_NOT_EXIST] File {path} was listed but does not exist any more. "
        "Put it back, or set ignoreMissingFiles=true to skip files removed before they were read."
    ) from exc


def _read_errors() -> tuple:
    import pyarrow as pa

    return (OSError, EOFError, pa.ArrowException)


def guarded(path: str, options: dict, batches: Callable[[], Iterator], count: Callable = lambda b: 0) -> Iterator:
    """The items `batches()` yields for one file; if reading it fails, `unreadable` decides.
    Only the reading is guarded: an error where the items are used is not the file's."""
    errors, rows = _read_errors(), 0
    try:
        it = iter(batches())
        while True:
            try:
                item = next(it)
            except StopIteration:
                return
            rows += count(item)
            yield item
    except errors as exc:
        unreadable(path, options, exc, rows)


def columns_or_skip(group: list[dict], options: dict, read: Callable[[list[dict]], list]) -> list:
    """`read(group)` (the columns of a group of files); when a file of the group cannot be read,
    file by file, so the error names it, and without the files that are skipped."""
    try:
        return read(group)
    except _read_errors() as exc:
        if len(group) == 1:
            unreadable(group[0]["path"], options, exc)
            return []
    return [c for f in group for c in columns_or_skip([f], options, read)]
