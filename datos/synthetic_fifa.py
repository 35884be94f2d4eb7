"""A realistic synthetic stand-in for the FIFA players data set of the seed project.

122,501 players x 110 features: 48 correlated numeric attributes (a latent "quality" factor,
a positional profile and an age curve drive them, as in the real game ratings) and 62 one-hot
columns from position, nationality, club, league and preferred foot. The target is a
heavy-tailed market value in euros, 0 to 123 M, driven mostly by overall, potential and age.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

N_PLAYERS = 122_501
MAX_VALUE_EUR = 123_000_000.0

NUMERIC_COLUMNS: tuple[str, ...] = (
    "age", "height_cm", "weight_kg", "overall", "potential", "international_reputation",
    "weak_foot", "skill_moves", "pace", "shooting", "passing", "dribbling", "defending",
    "physic", "attacking_crossing", "attacking_finishing", "attacking_heading_accuracy",
    "attacking_short_passing", "attacking_volleys", "skill_dribbling", "skill_curve",
    "skill_fk_accuracy", "skill_long_passing", "skill_ball_control", "movement_acceleration",
    "movement_sprint_speed", "movement_agility", "movement_reactions", "movement_balance",
    "power_shot_power", "power_jumping", "power_stamina", "power_strength", "power_long_shots",
    "mentality_aggression", "mentality_interceptions", "mentality_positioning",
    "mentality_vision", "mentality_penalties", "mentality_composure", "defending_marking",
    "defending_standing_tackle", "defending_sliding_tackle", "goalkeeping_diving",
    "goalkeeping_handling", "goalkeeping_kicking", "goalkeeping_positioning",
    "goalkeeping_reflexes",
)
POSITIONS = ("GK", "CB", "LB", "RB", "LWB", "RWB", "CDM", "CM", "CAM", "LM", "RM", "LW", "RW",
             "CF", "ST")
NATIONALITIES = ("England", "Germany", "Spain", "France", "Argentina", "Brazil", "Italy",
                 "Colombia", "Japan", "Netherlands", "Portugal", "United States", "Mexico",
                 "Poland", "Sweden", "Norway", "Ecuador", "Chile", "Uruguay", "Other")
CLUBS = ("Club 01", "Club 02", "Club 03", "Club 04", "Club 05", "Club 06", "Club 07", "Club 08",
         "Club 09", "Club 10", "Club 11", "Club 12", "Club 13", "Club 14", "Other club")
LEAGUES = ("Premier League", "La Liga", "Bundesliga", "Serie A", "Ligue 1", "Eredivisie",
           "Primeira Liga", "Liga MX", "MLS", "Other league")
FEET = ("Left", "Right")

CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("position", POSITIONS),
    ("nationality", NATIONALITIES),
    ("club", CLUBS),
    ("league", LEAGUES),
    ("preferred_foot", FEET),
)
N_NUMERIC = len(NUMERIC_COLUMNS)
N_ONE_HOT = sum(len(values) for _, values in CATEGORIES)
N_FEATURES = N_NUMERIC + N_ONE_HOT


@dataclass(frozen=True)
class FifaData:
    features: npt.NDArray[np.float64]  # (n_players, 110)
    market_value_eur: npt.NDArray[np.float64]  # (n_players,)
    feature_names: tuple[str, ...]
    categories: dict[str, npt.NDArray[np.int64]]  # raw category codes, for the CSV


def feature_names() -> tuple[str, ...]:
    one_hot = tuple(f"{name}_{value}" for name, values in CATEGORIES for value in values)
    return NUMERIC_COLUMNS + one_hot


def generate(n_players: int = N_PLAYERS, seed: int = 0) -> FifaData:
    rng = np.random.default_rng(seed)
    age = np.clip(rng.gamma(9.0, 2.9, n_players), 16, 42)
    quality = rng.normal(0.0, 1.0, n_players)  # the latent "how good" factor
    # Players peak around 27: potential above overall for the young, equal later.
    overall = np.clip(66 + 7 * quality - 0.04 * (age - 27) ** 2, 40, 94)
    potential = np.clip(overall + np.maximum(0, 27 - age) * rng.uniform(0.5, 2.0, n_players),
                        overall, 95)

    position = rng.choice(len(POSITIONS), n_players,
                          p=np.array([8, 14, 7, 7, 2, 2, 8, 12, 7, 5, 5, 4, 4, 2, 13]) / 100)
    goalkeeper = position == 0
    attacker = np.isin(position, (8, 11, 12, 13, 14))
    defender = np.isin(position, (1, 2, 3, 4, 5, 6))

    numeric = np.empty((n_players, N_NUMERIC))
    numeric[:, 0] = age
    numeric[:, 1] = rng.normal(181, 6.5, n_players) + 6 * goalkeeper
    numeric[:, 2] = 0.9 * (numeric[:, 1] - 100) + rng.normal(0, 5, n_players)
    numeric[:, 3] = overall
    numeric[:, 4] = potential
    numeric[:, 5] = np.clip(np.round(1 + np.maximum(0, overall - 70) / 6), 1, 5)
    numeric[:, 6] = rng.integers(1, 6, n_players)
    numeric[:, 7] = np.clip(np.round(2 + attacker + rng.normal(0, 0.8, n_players)), 1, 5)
    profile = np.where(attacker, 1.0, np.where(defender, -1.0, 0.0))
    for column in range(8, N_NUMERIC):
        name = NUMERIC_COLUMNS[column]
        lean = -profile if name.startswith(("defending", "mentality_inter")) else profile
        if name.startswith("goalkeeping"):
            base = np.where(goalkeeper, overall + rng.normal(0, 3, n_players),
                            rng.normal(11, 3, n_players))
        else:
            base = overall + 6 * lean + rng.normal(0, 6, n_players) - 25 * goalkeeper
        numeric[:, column] = np.clip(np.round(base), 1, 99)

    nationality = rng.choice(len(NATIONALITIES), n_players)
    league = rng.choice(len(LEAGUES), n_players,
                        p=np.array([7, 7, 6, 6, 6, 4, 4, 5, 5, 50]) / 100)
    club = np.where(quality > 1.2, rng.integers(0, 14, n_players), 14)
    foot = (rng.random(n_players) < 0.76).astype(np.int64)  # most players are right-footed
    codes = {"position": position, "nationality": nationality, "club": club,
             "league": league, "preferred_foot": foot}

    one_hot = np.zeros((n_players, N_ONE_HOT))
    offset = 0
    for name, values in CATEGORIES:
        one_hot[np.arange(n_players), offset + codes[name]] = 1.0
        offset += len(values)

    # Value grows exponentially with quality, shrinks with age past the peak, and top leagues
    # pay more: a heavy right tail with a few players near the 123 M cap.
    league_premium = np.where(league < 5, 0.45, 0.0)
    log_value = (
        0.21 * (overall - 66) + 0.06 * (potential - overall)
        - 0.012 * np.maximum(0, age - 29) ** 2 + league_premium
        + rng.normal(0, 0.35, n_players) + np.log(1.1e6)
    )
    value = np.clip(np.round(np.exp(log_value), -3), 0.0, MAX_VALUE_EUR)
    features = np.hstack([numeric, one_hot])
    return FifaData(features, value, feature_names(), codes)


def write_raw_csv(data: FifaData, path: str) -> None:
    """Write the data as the raw table a team keeps under datos/originales/."""
    header = ",".join((*NUMERIC_COLUMNS, *(name for name, _ in CATEGORIES), "value_eur"))
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(header + "\n")
        labels = {name: np.asarray(values) for name, values in CATEGORIES}
        for start in range(0, len(data.market_value_eur), 10_000):
            stop = start + 10_000
            numeric = data.features[start:stop, :N_NUMERIC]
            cats = [labels[name][data.categories[name][start:stop]] for name, _ in CATEGORIES]
            for i, row in enumerate(numeric):
                fields = [f"{v:g}" for v in row] + [str(c[i]) for c in cats]
                fields.append(f"{data.market_value_eur[start + i]:.0f}")
                handle.write(",".join(fields) + "\n")
