"""Public couples data sets used to check apim against published analyses.

- :func:`load_acitelli`: 148 married couples, one measurement each (cross-sectional), bundled.
  The file is ``acipair.RData`` of the R package dyadr (R. L. Garcia), distributed under CC0
  (dyadr's ``DESCRIPTION``: ``License: CC0``), converted to CSV without changing a value
  (``acitelli_dyadr.csv``; conversion described in ``ACITELLI.md`` beside it). Source study:
  Acitelli (1997), the standard example of Kenny's APIM workshops.
- :func:`load_kashy`: 103 dating couples, 14-day diary (Campbell, Simpson, Boldry & Kashy,
  2005), from the dyadic-analysis workshop of R. L. Garcia; not bundled (no licence).
- :func:`load_bolger_laurenceau`: 100 simulated couples, 21 days, from Bolger & Laurenceau
  (2013, *Intensive Longitudinal Methods*, ch. 8); not bundled (no licence).

The two unbundled files are read from a local copy when ``path`` is given; otherwise they are
downloaded once from a commit-pinned address and checked against a pinned SHA-256 with the
optional package ``pooch`` (``pip install pooch``), and cached in pooch's cache folder
for apim.

Examples
--------
>>> couples = load_acitelli()
>>> couples.n_dyads, couples.roles
(148, ('Husband', 'Wife'))
>>> sorted(couples.variables)[:3]
['COtherPos', 'CTension', 'OtherPos']
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pandas as pd

from apim.data.io import read_table
from apim.data.session import SessionData
from apim.errors import DataError, DataWarning, UnsupportedFileError

__all__ = ["load_acitelli", "load_kashy", "load_bolger_laurenceau", "acitelli_path",
           "PublicFile", "KASHY", "BOLGER_LAURENCEAU", "sha256"]


@dataclass(frozen=True)
class PublicFile:
    """A public data file: where it is and what its bytes must hash to."""

    name: str
    url: str
    sha256: str
    filename: str


KASHY = PublicFile(
    name="Kashy diary couples",
    url="https://raw.githubusercontent.com/RandiLGarcia/2day-dyad-workshop/"
        "0348fdf0d701babc8540dde71a9b2674562eb047/Data/kashy%20person-period%20pairwise.csv",
    sha256="96c26f3112ef2cf6aa43ab8c81be60c0ad8d9e6c100735d30ba44f5166b072ac",
    filename="kashy_person_period_pairwise.csv")
BOLGER_LAURENCEAU = PublicFile(
    name="Bolger-Laurenceau chapter 8 dyads",
    url="https://raw.githubusercontent.com/MoonDataAnalysis/RandMLM/"
        "c3f858d7b876835c270be08500c7d33ca4bfe637/BLdyads_long.csv",
    sha256="ee7c319028e595a5d9f128a9763b9ab1e29ed1e8aa5181d49f8bd917ec4c8ce6",
    filename="BLdyads_long.csv")


def sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes (hex).

    Examples
    --------
    >>> len(sha256(acitelli_path()))
    64
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def acitelli_path() -> str:
    """Path of the bundled ``acitelli_dyadr.csv``."""
    return str(resources.files("apim.datasets").joinpath("acitelli_dyadr.csv"))


def load_acitelli() -> SessionData:
    """The Acitelli couples: 148 married couples, each spouse measured once.

    Roles ``Husband`` (the reference, as in Kenny's workshops) and ``Wife``; dyad
    ``CoupleID``; no session column (cross-sectional: stored as session 1). Variables, each
    spouse's own: ``SelfPos`` and ``OtherPos`` (mean of 5 positive self- and
    partner-descriptions), ``Satisfaction`` (1-4), ``Tension`` (1-4), ``SimHob`` (similar
    hobbies, -1/0/1), ``COtherPos`` and ``CTension`` (centred at 4.2635 and 2.4307), and
    the couple's ``Yearsmar`` (years married, centred). The partner columns of the source
    (``_P``) are checked against the partner's own row and dropped; ``Partnum``,
    ``Gender_A`` and ``Gender_P`` repeat the role and are dropped.
    """
    frame = pd.read_csv(acitelli_path())
    frame = frame.drop(columns=["Partnum", "Gender_A", "Gender_P"])
    return SessionData.from_pairwise(frame, dyad="CoupleID", role="Gender",
                                     roles=("Husband", "Wife"))


def _local_or_download(spec: PublicFile, path: str | Path | None) -> Path:
    if path is not None:
        local = Path(path)
        if not local.is_file():
            raise UnsupportedFileError(
                f"{spec.name}: file {str(local)!r} does not exist; pass the path of a local "
                f"copy of {spec.filename}, or no path to download it")
        found = sha256(local)
        if found != spec.sha256:
            warnings.warn(
                f"{spec.name}: {str(local)!r} differs from the published file (SHA-256 "
                f"{found[:12]}... instead of {spec.sha256[:12]}...); results may not match "
                "published analyses", DataWarning, stacklevel=3)
        return local
    try:
        import pooch
    except ImportError as error:
        raise UnsupportedFileError(
            f"downloading the {spec.name} data needs the optional package pooch "
            "(pip install pooch); or download "
            f"{spec.url} yourself and pass path=") from error
    try:
        fetched = pooch.retrieve(spec.url, known_hash=f"sha256:{spec.sha256}",
                                 fname=spec.filename, path=pooch.os_cache("apim"),
                                 progressbar=False)
    except Exception as error:  # network, HTTP or checksum failure: one clear message
        message = " ".join(str(error).split())[:300]
        raise DataError(
            f"could not download the {spec.name} data from {spec.url} "
            f"({type(error).__name__}: {message}); check the connection, or download the "
            "file yourself and pass path=") from error
    return Path(fetched)


def load_kashy(path: str | Path | None = None) -> SessionData:
    """The Kashy diary couples: 103 dating couples, 14 days, both partners daily.

    Roles ``1`` (man, the reference) and ``2`` (woman), dyad ``dyadid``, session ``Day``.
    Variables as in the source (pairwise person-period file of Garcia's workshop): each
    partner's ``conflict`` and ``satisf`` (1-7), their grand-mean-centred ``Cconflict`` and
    ``Csatisf``, ``Cavoid`` (attachment avoidance, centred), ``dayOfWeek``, ``time`` (Day -
    7.5), ``genderE``, ``genderS``, ``woman``, ``man``. Two quirks of the source header are
    repaired before its partner columns are checked: the second ``Cavoid_A`` is the
    partner's (``Cavoid_P``), and ``Csatis_P`` is ``Csatisf_P``.

    Parameters
    ----------
    path : path, optional
        A local copy of ``kashy person-period pairwise.csv``; default: download it (pinned
        address and SHA-256, see :data:`KASHY`).
    """
    with warnings.catch_warnings():  # the repeated header name is repaired right here
        warnings.filterwarnings("ignore", message=".*two columns named 'Cavoid_A'",
                                category=DataWarning)
        frame = read_table(_local_or_download(KASHY, path))
    frame = frame.rename(columns={"Cavoid_A (column 12)": "Cavoid_A",
                                  "Cavoid_A (column 13)": "Cavoid_P", "Csatis_P": "Csatisf_P"})
    return SessionData.from_pairwise(frame, dyad="dyadid", session="Day", role="person",
                                     roles=(1, 2))


def load_bolger_laurenceau(path: str | Path | None = None) -> SessionData:
    """Bolger & Laurenceau's (2013, ch. 8) simulated dyadic diary: 100 couples, 21 days.

    Roles ``f`` (female, the reference) and ``m``; dyad ``coupleid``; session ``time``
    (day 0-20). Variables: each partner's ``reldis`` (end-of-day relationship
    dissatisfaction, 0-10), ``wrkstrs`` (work stressors), ``wrkstrsc`` (grand-mean
    centred), ``wrkstrsc_b`` and ``wrkstrsc_w`` (its between- and within-person parts),
    ``personid``, and the shared ``time7c`` ((time - 10.5) / 7). The data are simulated.

    Parameters
    ----------
    path : path, optional
        A local copy of ``BLdyads_long.csv`` (a dyad-wide file despite its name); default:
        download it (pinned address and SHA-256, see :data:`BOLGER_LAURENCEAU`).
    """
    frame = read_table(_local_or_download(BOLGER_LAURENCEAU, path))
    return SessionData.from_wide(frame, dyad="coupleid", session="time", roles=("f", "m"))
