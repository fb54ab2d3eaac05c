"""What a run folder records so that ``fit --rerun`` can reproduce it from the folder alone.

A run keeps its inputs byte for byte in ``inputs/`` (``data.csv``, ``prior-1.toml``, ``prior-2.toml``, ...
in the order of ``--prior``, and ``bias.toml`` with ``--bias``; bundled ones too), their sha256 in the
manifest's ``inputs`` table (``bias`` is null without a bias model), and
its settings as typed data in ``rerun`` (never a command line, never a path)::

    "tool": "bayes_rescue", "manifest_version": 2,
    "inputs": {"data": "<sha256>", "priors": ["<sha256>", ...], "bias": "<sha256>" or null},
    "rerun": {"model": "hierarchical", "draws": 1000, "tune": 1000, "chains": 4, "seed": 20250531,
              "target_accept": 0.95, "prior_draws": 4000, "mcid": [0.05, 0.1], "rope": 0.02,
              "robust": 0.0, "discount": 1.0, "keep_going": false, "no_figures": false}

:func:`read_manifest` reads a manifest defensively (regular file, size cap, depth, types);
:func:`rerun_settings` accepts exactly the keys above with their types (a string is accepted only for the
model) and :func:`verify_inputs` checks that ``inputs/`` holds exactly the recorded files with the recorded
hashes. A prior modified by ``--robust``/``--discount`` is stored as its base file plus those settings.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

from bayes_rescue.data.files import list_inside, read_input_bytes, read_inside
from bayes_rescue.errors import InputError

MANIFEST_VERSION = 2
INPUTS = "inputs"
DATA_FILE = "data.csv"
BIAS_FILE = "bias.toml"

#: The settings a rerun needs, and the type each must have.
RERUN_KEYS: dict[str, type | tuple[type, ...]] = {
    "model": str,
    "draws": int,
    "tune": int,
    "chains": int,
    "seed": int,
    "target_accept": float,
    "prior_draws": int,
    "mcid": list,
    "rope": float,
    "robust": float,
    "discount": float,
    "keep_going": bool,
    "no_figures": bool,
}


def prior_file(k: int) -> str:
    """Name of the ``k``-th (0-based) prior file in ``inputs/``."""
    return f"prior-{k + 1}.toml"


def _sha(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def write_inputs(folder: Path, data_raw: bytes, prior_raws: list[bytes], bias_raw: bytes | None = None) -> dict:
    """Write the inputs byte for byte into ``folder/inputs/``; return the manifest's ``inputs`` table."""
    from bayes_rescue.outputs.safewrite import path_inside

    root = path_inside(folder, INPUTS)
    root.mkdir()
    path_inside(folder, f"{INPUTS}/{DATA_FILE}").write_bytes(data_raw)
    for k, raw in enumerate(prior_raws):
        path_inside(folder, f"{INPUTS}/{prior_file(k)}").write_bytes(raw)
    if bias_raw is not None:
        path_inside(folder, f"{INPUTS}/{BIAS_FILE}").write_bytes(bias_raw)
    return {
        "data": _sha(data_raw),
        "priors": [_sha(r) for r in prior_raws],
        "bias": None if bias_raw is None else _sha(bias_raw),
    }


def source_bytes(origin: str, sha256: str, *, what: str, field: str) -> bytes:
    """The bytes an input was parsed from: a bundled resource (``bundled:<name>``) or a user's file,
    read again and checked against the hash of what was parsed (a file changed meanwhile is refused).

    Parameters
    ----------
    origin
        ``bundled:<name>`` (``bundled:bias/<name>`` for a bias model) or a path, as recorded by the loader.
    sha256
        The hash the loader computed.
    what, field
        For the message: ``"counts file"``/``"--data"``, ``"prior file"``/``"--prior"`` or
        ``"bias model file"``/``"--bias"``.
    """
    from importlib import resources

    if origin.startswith("bundled:"):
        name = origin.removeprefix("bundled:")
        root = resources.files("bayes_rescue")
        if field == "--data":
            res = root / "data" / f"{name}.csv"
        elif name.startswith("bias/"):
            res = root / "priors" / "bias" / f"{name.removeprefix('bias/')}.toml"
        else:
            res = root / "priors" / f"{name}.toml"
        raw = res.read_bytes()
    else:
        raw = read_input_bytes(origin, field=field, what=what)
    if _sha(raw) != sha256:
        raise InputError("changed while it was being read; run again", source=origin, field=field)
    return raw


def read_manifest(path: Path) -> dict:
    """Read a run's ``manifest.json`` (a regular file of at most 10 MB, JSON, an object).

    Raises
    ------
    InputError
        Missing, not a regular file, too large, not UTF-8 JSON, nested too deeply, or not an object.
    """
    path = Path(path)
    raw = read_inside(path.parent, path.name, field="--rerun", what="manifest file")  # not through a symlink
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        why = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:80]
        raise InputError(f"is not a bayes_rescue manifest ({why})", source=path, field="--rerun") from None
    if not isinstance(doc, dict):
        raise InputError("is not a bayes_rescue manifest (not a JSON object)", source=path, field="--rerun")
    return doc


def _bad(path: Path, key: str, why: str) -> InputError:
    return InputError(why, source=path, field=key)


def rerun_settings(doc: dict, path: Path) -> dict:
    """The ``rerun`` table of a manifest, checked: exactly :data:`RERUN_KEYS`, each of its type
    (``mcid`` a list of 1 to 20 numbers), finite numbers. Ranges are checked by the ``fit`` parser.

    Raises
    ------
    InputError
        Not a manifest of this tool and version, or a key missing, unknown or of the wrong type.
    """
    if doc.get("tool") != "bayes_rescue" or doc.get("manifest_version") != MANIFEST_VERSION:
        raise _bad(
            path,
            "manifest_version",
            f"is not a version-{MANIFEST_VERSION} bayes_rescue manifest (runs written before inputs/ was kept"
            " cannot be rerun safely; run them again)",
        )
    table = doc.get("rerun")
    if not isinstance(table, dict):
        raise _bad(path, "rerun", "must be a table of settings")
    if set(table) != set(RERUN_KEYS):
        extra, missing = sorted(set(table) - set(RERUN_KEYS)), sorted(set(RERUN_KEYS) - set(table))
        raise _bad(path, "rerun", f"unknown keys {extra} / missing keys {missing}")
    out = {}
    for key, kind in RERUN_KEYS.items():
        v = table[key]
        if kind is float and isinstance(v, int) and not isinstance(v, bool):
            v = float(v)
        if (kind is int and isinstance(v, bool)) or not isinstance(v, kind):
            raise _bad(path, f"rerun.{key}", f"must be {kind.__name__}, got {type(v).__name__}")
        if kind is float and not math.isfinite(v):
            raise _bad(path, f"rerun.{key}", "must be finite")
        if key == "mcid":
            if not (1 <= len(v) <= 20) or not all(
                isinstance(m, int | float) and not isinstance(m, bool) and math.isfinite(m) for m in v
            ):
                raise _bad(path, "rerun.mcid", "must be a list of 1 to 20 numbers")
            v = [float(m) for m in v]
        if kind is str and len(v) > 40:
            raise _bad(path, f"rerun.{key}", "is too long")
        out[key] = v
    return out


def settings_argv(settings: dict) -> list[str]:
    """The ``fit`` options for checked ``settings`` (so that the parser checks every range again)."""
    argv = [
        f"--model={settings['model']}",
        *(f"--{k.replace('_', '-')}={settings[k]!r}" for k in ("draws", "tune", "chains", "seed")),
        *(f"--{k.replace('_', '-')}={settings[k]!r}" for k in ("target_accept", "prior_draws", "rope")),
        f"--robust={settings['robust']!r}",
        f"--discount={settings['discount']!r}",
        "--mcid",
        *(repr(m) for m in settings["mcid"]),
    ]
    if settings["keep_going"]:
        argv.append("--keep-going")
    if settings["no_figures"]:
        argv.append("--no-figures")
    return argv


def verify_inputs(doc: dict, run_dir: Path, path: Path) -> tuple[bytes, list[bytes], bytes | None]:
    """Check that ``run_dir/inputs`` holds exactly the files the manifest's ``inputs`` table records,
    with those hashes, and return their bytes: the data file's, the prior files' (in order) and the bias
    model file's (or None). Nothing is read through a symbolic link: ``inputs/`` and each file in it are
    opened with ``O_NOFOLLOW`` (:func:`~bayes_rescue.data.files.read_inside`), and anything but a regular
    file is refused, so that the bytes checked are the bytes parsed.

    Raises
    ------
    InputError
        A malformed ``inputs`` table, a missing, extra, changed or symlinked file.
    """
    table = doc.get("inputs")
    if not (
        isinstance(table, dict)
        and set(table) == {"data", "priors", "bias"}
        and isinstance(table["data"], str)
        and isinstance(table["priors"], list)
        and 1 <= len(table["priors"]) <= 100
        and all(isinstance(h, str) for h in table["priors"])
        and (table["bias"] is None or isinstance(table["bias"], str))
    ):
        raise _bad(path, "inputs", "must be a table {data: sha256, priors: [sha256, ...], bias: sha256 or null}")
    root = Path(run_dir) / INPUTS
    expected = {DATA_FILE: table["data"], **{prior_file(k): h for k, h in enumerate(table["priors"])}}
    if table["bias"] is not None:
        expected[BIAS_FILE] = table["bias"]
    present = set(list_inside(run_dir, INPUTS, field="--rerun"))
    if present != set(expected):
        shown = sorted(present) if len(present) <= 110 else f"{len(present)} files"
        raise InputError(
            f"inputs/ holds {shown}, the manifest records {sorted(expected)}", source=run_dir, field="inputs"
        )
    raws = {}
    for name, digest in expected.items():
        raw = read_inside(run_dir, f"{INPUTS}/{name}", field="inputs", what="recorded input")
        if _sha(raw) != digest:
            raise InputError("does not match the sha256 in the manifest", source=root / name, field="inputs")
        raws[name] = raw
    priors = [raws[prior_file(k)] for k in range(len(table["priors"]))]
    return raws[DATA_FILE], priors, raws.get(BIAS_FILE)
