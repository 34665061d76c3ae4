"""The provider's account export, as the generator writes it: one writer, one file format.

Both the activity generator (:mod:`ent_audit.synth.activity`) and the retention inputs
(:mod:`ent_audit.synth.retention`) write their accounts through :func:`write_accounts`, in the
format the one reader (:func:`ent_audit.analyses.activity.inputs.read_accounts`) reads by
default: ``;``, UTF-8 with BOM, French headers, labels and dates.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ent_audit.aaf.population import Profile

ACCOUNT_COLUMNS = (
    "Identifiant",
    "Profil",
    "UAI",
    "Activé",
    "Date d'activation",
    "Dernière connexion",
)
"""The export's header (the reader's default mapping, ``ACCOUNT_COLUMNS``)."""

PROFILE_FR = {
    Profile.PUPIL: "Élève",
    Profile.GUARDIAN: "Parent",
    Profile.TEACHER: "Enseignant",
    Profile.DIRECTOR: "Directeur",
    Profile.OTHER_STAFF: "Personnel",
}
"""How the provider labels each profile."""


def write_accounts(accounts: pd.DataFrame, path: Path) -> Path:
    """Write ``accounts`` (columns ``jointure``, ``profile``, ``uai``, ``activated``,
    ``activation`` and ``last_login`` (datetimes, NaT when never)) as the provider's export.
    ``profile`` is a :class:`Profile` or its position in ``tuple(Profile)`` (the activity
    generator's codes)."""
    profiles = tuple(Profile)
    if pd.api.types.is_integer_dtype(accounts["profile"]):
        profile = pd.Series(
            np.array([PROFILE_FR[p] for p in profiles])[accounts["profile"].to_numpy()],
            index=accounts.index,
        )
    else:
        profile = accounts["profile"].map(lambda p: PROFILE_FR[Profile(p)])
    out = pd.DataFrame(
        {
            ACCOUNT_COLUMNS[0]: accounts["jointure"],
            ACCOUNT_COLUMNS[1]: profile,
            ACCOUNT_COLUMNS[2]: accounts["uai"],
            ACCOUNT_COLUMNS[3]: np.where(accounts["activated"], "Oui", "Non"),
            ACCOUNT_COLUMNS[4]: accounts["activation"].dt.strftime("%d/%m/%Y").fillna(""),
            ACCOUNT_COLUMNS[5]: accounts["last_login"].dt.strftime("%d/%m/%Y %H:%M").fillna(""),
        }
    )
    out.to_csv(path, sep=";", index=False, encoding="utf-8-sig")
    return path
