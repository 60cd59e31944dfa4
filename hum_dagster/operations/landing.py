"""The landing location: new source files dropped into a folder or an ``s3://`` prefix.

An uploader puts the data file(s) first and then a sidecar ``<name>.source.yaml`` holding
the catalog fields of the new source (``task``, ``language``, ``format``, optional
``file`` — the data file's name, default ``<name>.<format>`` or the only other file
with that stem —, ``split`` and ``options``). The sidecar is the *done marker*: nothing is
registered without it. Because some uploaders write files in any order, a source is
registered only when its data file's fingerprint (size and modification time or ETag)
is the same on two consecutive scans, so a file still growing is never registered.

Registration appends the entry, with absolute locations, to a *landing catalog* (YAML,
the same format as ``assets/catalog.yaml``) written atomically. The Dagster side
(``hum_dagster/defs/automation.py``) adds the names as partitions and launches runs.
No Dagster import here.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass
from typing import Any

import yaml

from hum_dagster.readers.catalog import NAME_RE, CatalogError, load_catalog
from hum_dagster.store import fsio

SIDECAR_SUFFIX = ".source.yaml"
CATALOG_NAME = "_landing_catalog.yaml"
PATH_OPTIONS = ("schema", "pid2name")  # options that name files next to the data file


@dataclass(frozen=True)
class Landed:
    name: str
    sidecar: str  # full path or URI
    data: str  # full path or URI of the data file
    entry: dict[str, Any]  # the catalog entry (absolute locations)
    fingerprint: str  # of the data file(s) and the sidecar


def _uri(root: str, path: str) -> str:
    if "://" in root:
        return f"{root.split('://', 1)[0]}://{path}"
    return path


def _fingerprint(info: dict[str, Any]) -> str:
    modified = info.get("mtime") or info.get("LastModified") or info.get("last_modified")
    return f"{info.get('size')}:{info.get('ETag') or info.get('etag') or modified}"


def scan(root: str) -> tuple[list[Landed], list[str]]:
    """Sources in the landing location that have a sidecar; and problems (one line each)."""
    fs, base = fsio.filesystem(root)
    try:
        listing = fs.ls(base, detail=True)
    except FileNotFoundError:
        return [], []
    fs.invalidate_cache(base)
    listing = fs.ls(base, detail=True)
    files = {
        posixpath.basename(item["name"]): item for item in listing if item.get("type") == "file"
    }
    landed: list[Landed] = []
    problems: list[str] = []
    for filename, info in sorted(files.items()):
        if not filename.endswith(SIDECAR_SUFFIX):
            continue
        name = filename[: -len(SIDECAR_SUFFIX)]
        sidecar = _uri(root, info["name"])
        try:
            raw = yaml.safe_load(fsio.read_bytes(sidecar).decode("utf-8")) or {}
            if not isinstance(raw, dict):
                raise ValueError("expected a mapping")
        except (ValueError, yaml.YAMLError, UnicodeDecodeError) as exc:
            problems.append(f"{sidecar}: not a usable sidecar: {exc}")
            continue
        name = str(raw.pop("name", name))
        if not NAME_RE.match(name):
            problems.append(f"{sidecar}: source name {name!r} must match {NAME_RE.pattern}")
            continue
        data_name = raw.pop("file", None)
        if data_name is None:
            stem = filename[: -len(SIDECAR_SUFFIX)]
            guesses = [
                f
                for f in files
                if f != filename and not f.endswith(SIDECAR_SUFFIX) and f.rsplit(".", 1)[0] == stem
            ]
            data_name = guesses[0] if len(guesses) == 1 else None
        if data_name is None or data_name not in files:
            problems.append(f"{sidecar}: data file {data_name or '(unnamed)'} not found next to it")
            continue
        options = dict(raw.pop("options", None) or {})
        prints = [_fingerprint(files[data_name]), _fingerprint(info)]
        for key in PATH_OPTIONS:
            if (
                key in options
                and "://" not in str(options[key])
                and not os.path.isabs(str(options[key]))
            ):
                extra = posixpath.basename(str(options[key]))
                if extra in files:
                    prints.append(_fingerprint(files[extra]))
                options[key] = _uri(root, files[extra]["name"]) if extra in files else options[key]
        entry = {
            "name": name,
            **raw,
            "location": _uri(root, files[data_name]["name"]),
            "options": options,
        }
        landed.append(Landed(name, sidecar, entry["location"], entry, "|".join(prints)))
    return landed, problems


def read_catalog(path: str) -> list[dict[str, Any]]:
    try:
        data = yaml.safe_load(fsio.read_bytes(path).decode("utf-8")) or {}
    except FileNotFoundError:
        return []
    return list(data.get("sources") or [])


def register(catalog_path: str, entries: list[dict[str, Any]]) -> list[str]:
    """Add or replace ``entries`` in the landing catalog (atomic); return the names written.

    The result is validated with :func:`hum_dagster.readers.catalog.load_catalog` first, so a bad
    sidecar (unknown task or format) raises ``CatalogError`` and nothing is written.
    """
    current = {e["name"]: e for e in read_catalog(catalog_path)}
    for entry in entries:
        current[entry["name"]] = entry
    text = "# Written by the landing sensor; one entry per landed source.\n" + yaml.safe_dump(
        {"sources": [current[n] for n in sorted(current)]}, allow_unicode=True, sort_keys=False
    )
    check = f"{os.environ.get('TMPDIR', '/tmp')}/hum-landing-{os.getpid()}.yaml"
    with open(check, "w", encoding="utf-8") as handle:
        handle.write(text)
    try:
        load_catalog(check)
    finally:
        os.remove(check)
    fsio.write_bytes_atomic(catalog_path, text.encode("utf-8"))
    return [e["name"] for e in entries]


def validate_entry(entry: dict[str, Any]) -> str | None:
    """None when ``entry`` is a valid catalog entry, else the reason."""
    check = f"{os.environ.get('TMPDIR', '/tmp')}/hum-landing-check-{os.getpid()}.yaml"
    with open(check, "w", encoding="utf-8") as handle:
        yaml.safe_dump({"sources": [entry]}, handle, allow_unicode=True)
    try:
        load_catalog(check)
        return None
    except CatalogError as exc:
        return str(exc).replace(check, entry.get("location", "sidecar"))
    finally:
        os.remove(check)
