"""File access through pyarrow's filesystems: local paths and s3a:// / s3:// URLs, in the Spark
driver (listing, the discovery log, the schema history) and in the Python workers (reading)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from lakehouse_helpers.runtime.storage import S3Connection

FILE_LOG_NAME = "files.jsonl"
_FILESYSTEMS: dict[S3Connection, object] = {}


def filesystem(path: str, options: dict):
    """(pyarrow FileSystem, path inside it) for a local path or an S3 URL."""
    from pyarrow import fs

    m = re.match(r"^s3a?://([^/]+)/?(.*)$", path)
    if not m:
        return fs.LocalFileSystem(), re.sub(r"^file:(//)?", "", path)
    conn = S3Connection.from_options(options)
    if conn not in _FILESYSTEMS:  # one client per endpoint and key, not one per file
        kwargs = {"region": conn.region}
        if conn.endpoint:
            kwargs.update(endpoint_override=conn.host, scheme=conn.scheme, force_virtual_addressing=not conn.path_style)
        if conn.access_key:
            kwargs.update(access_key=conn.access_key, secret_key=conn.secret_key)
        _FILESYSTEMS[conn] = fs.S3FileSystem(**kwargs)
    return _FILESYSTEMS[conn], f"{m.group(1)}/{m.group(2)}".rstrip("/")


def _to_url(original_root: str, fs_root: str, fs_path: str) -> str:
    """Map a path inside the filesystem back to the user's URL form."""
    return original_root.rstrip("/") + fs_path[len(fs_root.rstrip("/")) :]


def list_files(root: str, options: dict) -> list[dict]:
    """Data files under root, recursively; hidden and `_`-prefixed names are skipped like Spark."""
    from pyarrow import fs as pafs

    filesys, base = filesystem(root, options)
    try:
        infos = filesys.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
    except FileNotFoundError:
        return []
    files = []
    for info in infos:
        if info.type != pafs.FileType.File:
            continue
        rel = info.path[len(base) :].lstrip("/")
        if any(part.startswith(("_", ".")) for part in rel.split("/")):
            continue
        mtime = info.mtime.timestamp() if info.mtime else 0.0
        files.append({"path": _to_url(root, base, info.path), "size": info.size, "mtime": mtime, "rel": rel})
    return sorted(files, key=lambda f: (f["mtime"], f["path"]))


def _partition_values(rel: str) -> dict[str, str]:
    return dict(seg.split("=", 1) for seg in rel.split("/")[:-1] if "=" in seg)


def _read_bytes(path: str, options: dict) -> bytes:
    """A whole (small) file: the discovery log, a schema version."""
    filesys, p = filesystem(path, options)
    with filesys.open_input_stream(p) as fh:
        return fh.read()


def _write_text(path: str, text: str, options: dict) -> None:
    filesys, p = filesystem(path, options)
    parent = p.rsplit("/", 1)[0]
    filesys.create_dir(parent, recursive=True)
    with filesys.open_output_stream(p) as fh:
        fh.write(text.encode())


def _exists(path: str, options: dict) -> bool:
    from pyarrow import fs as pafs

    filesys, p = filesystem(path, options)
    return filesys.get_file_info(p).type != pafs.FileType.NotFound


def open_stream(path: str, options: dict):
    """A sequential input stream (data files are read front to back, never whole)."""
    filesys, p = filesystem(path, options)
    return filesys.open_input_stream(p)


def open_random_access(path: str, options: dict):
    """A seekable file (Parquet reads its footer first)."""
    filesys, p = filesystem(path, options)
    return filesys.open_input_file(p)


def line_blocks(path: str, options: dict, block_bytes: int) -> Iterator:
    """The file in pyarrow buffers of about `block_bytes`, each cut after a line end, so no
    line is split between blocks (a line longer than a block makes that one block longer).
    Read at offsets, so a block is never copied to join the end of one read to the next."""
    with open_random_access(path, options) as fh:
        size, offset = fh.size(), 0
        while offset < size:
            want = block_bytes
            while True:
                fh.seek(offset)
                buf = fh.read_buffer(min(want, size - offset))
                cut = _last_line_end(buf) if offset + buf.size < size else buf.size
                if cut:
                    break
                want *= 2  # a line longer than the block
            offset += cut
            yield buf.slice(0, cut)


def _last_line_end(buf) -> int:
    """The length of `buf` up to its last line end (0: none)."""
    tail = 64 * 1024
    while True:
        start = max(0, buf.size - tail)
        chunk = buf.slice(start).to_pybytes()
        cut = max(chunk.rfind(b"\n"), chunk.rfind(b"\r"))
        if cut >= 0:
            return start + cut + 1
        if start == 0:
            return 0
        tail *= 4
