"""Independent reference: RBesT's ``read_mix_json`` and jsonlite's ``fromJSON`` simplification, replayed in Python
from their R sources (no package code), so that the tests can say whether R would read a JSON file we write.

Sources (fetched from GitHub mirrors of CRAN):

- jsonlite 2.0.1, ``R/simplify.R`` (``simplify``, ``is.matrixlist``), ``R/is.scalarlist.R``, ``R/is.recordlist.R``,
  ``R/list_to_vec.R``: ``fromJSON(txt)`` parses JSON objects to named lists, arrays to unnamed lists, then with its
  defaults (``simplifyVector = simplifyDataFrame = simplifyMatrix = TRUE``) turns an unnamed list of scalars into
  an atomic vector and an unnamed list of equally long scalar lists into a matrix by ``rbind`` (one row each);
  an unnamed list of named lists would become a data frame (not modelled: raises).
- RBesT 1.8-2, ``R/mixjson.R``: ``read_mix_json`` does ``mix <- mix_list$comp; attributes(mix) <- mix_list$meta;
  attr(mix, "link") <- link_map[[mix_list$meta$link]]`` and rescales row 1 (the weights) to sum 1.
- R's ``attributes<-`` sets ``dim`` first; ``dim`` must multiply to the object's length and ``dimnames`` must be a
  list (R's C ``dimnamesgets``: "'dimnames' must be a list") of one vector per dimension, each as long as that
  extent ("length of 'dimnames' [i] not equal to array extent").
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field


class RError(Exception):
    """What R would stop with."""


class RVector(list):
    """An R atomic vector (from a JSON array of scalars)."""


@dataclass
class RMatrix:
    """An R matrix from ``do.call(rbind, rows)``; ``attrs`` holds what ``attributes<-`` set."""

    rows: list[list]
    attrs: dict = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.rows), len(self.rows[0])


def _is_scalar(x) -> bool:
    return not isinstance(x, (list, dict))


def _is_scalarlist(x) -> bool:
    return isinstance(x, list) and all(_is_scalar(i) for i in x)


def simplify(x):
    """jsonlite's ``simplify`` with its defaults, on ``json.loads`` output (dict = named list, list = unnamed)."""
    if not isinstance(x, (list, dict)) or not x:
        return x
    if isinstance(x, list) and any(isinstance(i, dict) for i in x) and all(isinstance(i, dict) or i is None for i in x):
        raise NotImplementedError("a record list: jsonlite would make a data frame")
    if isinstance(x, list) and _is_scalarlist(x):
        return RVector(x)
    if isinstance(x, dict):
        return {k: simplify(v) for k, v in x.items()}
    out = [simplify(i) for i in x]
    atomic = all(isinstance(o, RVector) or _is_scalar(o) for o in out)
    lengths = {len(o) if isinstance(o, RVector) else 1 for o in out}
    if atomic and len(lengths) == 1 and all(_is_scalarlist(i) for i in x):
        return RMatrix([list(o) if isinstance(o, RVector) else [o] for o in out])
    return out


LINK_MAP = ("identity", "logit", "log")  # RBesT R/dlink.R link_map names


def read_mix_json(text: str) -> RMatrix:
    """RBesT's ``read_mix_json`` (rescale = TRUE) on the JSON ``text``; raises :class:`RError` where R would."""
    mix_list = simplify(json.loads(text))
    mix = mix_list["comp"]
    meta = mix_list["meta"]
    if not isinstance(mix, RMatrix):
        raise RError("comp is not a matrix")
    dim = meta["dim"]
    n = sum(len(r) for r in mix.rows)
    if not isinstance(dim, RVector) or math.prod(dim) != n:
        raise RError(f"dims [product {math.prod(dim)}] do not match the length of object [{n}]")
    if list(dim) != list(mix.shape):  # attributes<- refills the data column-major; a transposed dim scrambles it
        raise RError("dim does not match the matrix written row by row")
    dimnames = meta.get("dimnames")
    if dimnames is not None:
        if not isinstance(dimnames, list):
            raise RError("'dimnames' must be a list")
        if len(dimnames) != len(dim):
            raise RError("length of 'dimnames' must match that of 'dims'")
        for i, (names, extent) in enumerate(zip(dimnames, dim, strict=True)):
            if names is not None and len(names) != extent:
                raise RError(f"length of 'dimnames' [{i + 1}] not equal to array extent")
    link = meta["link"]
    if not isinstance(link, RVector) or len(link) != 1 or link[0] not in LINK_MAP:
        raise RError("link_map[[link]]: subscript out of bounds")
    mix.attrs = {k: v for k, v in meta.items() if k != "dim"}
    w = mix.rows[0]
    mix.rows[0] = [x / sum(w) for x in w]
    return mix
