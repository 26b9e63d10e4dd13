"""Helpers for the latent-APIM tests: wide (lavaan) tables <-> SessionData, lavaan rows."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import pandas as pd

from apim.data.session import SessionData
from apim.model.latent import LatentAPIMSpec, latent_values

REFERENCE = Path(__file__).resolve().parents[1] / "reference"

LAVAAN_TERMS = {  # (level, lhs, rhs) -> effect name stem
    (1, "yP", "xP"): "patient.actor.within", (1, "yP", "xT"): "patient.partner.within",
    (1, "yT", "xT"): "therapist.actor.within", (1, "yT", "xP"): "therapist.partner.within",
    (2, "yP", "xP"): "patient.actor.between", (2, "yP", "xT"): "patient.partner.between",
    (2, "yT", "xT"): "therapist.actor.between", (2, "yT", "xP"): "therapist.partner.between",
}


def long_from_wide(table: pd.DataFrame) -> SessionData:
    """Columns dyad, session, xP, xT, yP, yT -> long SessionData with roles patient,
    therapist and variables x, y."""
    parts = []
    for role, suffix in (("patient", "P"), ("therapist", "T")):
        parts.append(pd.DataFrame({"dyad": table["dyad"], "session": table["session"],
                                   "role": role, "x": table[f"x{suffix}"],
                                   "y": table[f"y{suffix}"]}))
    frame = pd.concat(parts, ignore_index=True).sort_values(["dyad", "session", "role"])
    return SessionData.from_long(frame.reset_index(drop=True), dyad="dyad",
                                 session="session", role="role",
                                 roles=("patient", "therapist"))


def lavaan_effects(reference: pd.DataFrame) -> pd.DataFrame:
    """lavaan's regression rows as (term stem -> est, se)."""
    rows = {}
    for r in reference[reference["op"] == "~"].itertuples():
        rows[LAVAAN_TERMS[(int(r.level), r.lhs, r.rhs)]] = (r.est, r.se)
    return pd.DataFrame(rows, index=["est", "se"]).T


def lavaan_stat(reference: pd.DataFrame, name: str) -> float:
    return float(reference.loc[(reference["op"] == "stat") & (reference["lhs"] == name),
                               "est"].iloc[0])


def wide(data: SessionData, x: str = "x", y: str = "y") -> pd.DataFrame:
    """Columns dyad, session, xP, xT, yP, yT; sessions with any missing rating dropped."""
    table = latent_values(data, LatentAPIMSpec(y, (x,))).drop(columns="group")
    table.columns = ["dyad", "session", "xP", "xT", "yP", "yT"]
    return table.dropna().reset_index(drop=True)


def kashy(shared: Path) -> SessionData:
    """The Kashy diary couples (roles 1, 2 as in the published tests)."""
    return SessionData.from_pairwise(shared / "kashy_diary" / "kashy_person_period_pairwise.csv",
                                     dyad="dyadid", session="Day", role="person", roles=(1, 2))


def run_lavaan(table: pd.DataFrame, out: Path) -> pd.DataFrame:
    """Fit lavaan_latent.R to ``table`` and read its output."""
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "data.csv"
        table.to_csv(source, index=False)
        subprocess.run(["Rscript", str(REFERENCE / "lavaan_latent.R"), str(source), str(out)],
                       check=True, capture_output=True)
    return pd.read_csv(out)
